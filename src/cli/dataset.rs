//! `facestudio dataset stats|check|synth|prelabel|review|export|import`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use facestudio::dataset::stats::{DatasetStats, SIZE_BINS};
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::dataset::{Dataset, LoadReport, Severity, SplitKind};
use facestudio::interchange::{InterchangeFormat, export_split, read_annotations, write_official_split};

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Counts per split: images, faces, landmarks, invalid faces, events, face sizes, attributes.
    Stats {
        /// The dataset folder (official WIDER FACE tree, Pytorch_Retinaface layout, or a folder above one).
        root: PathBuf,
        /// Print JSON: {"splits": {"train": {"images": N, "faces": N, ...}, ...}}.
        #[arg(long)]
        json: bool,
    },
    /// Lists every problem of every annotation file in one pass; exits with 1 if there are errors.
    Check { root: PathBuf },
    /// Writes a synthetic WIDER FACE dataset (images, split files, RetinaFace labels).
    Synth {
        #[arg(long)]
        out: PathBuf,
        /// Training images; validation gets a quarter as many (at least 2).
        #[arg(long, default_value_t = 200)]
        images: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write into a folder that already holds files (annotation files keep a .bak copy).
        #[arg(long)]
        force: bool,
    },
    /// Runs a model over a split and adds the faces it finds that no annotation covers (score ≥
    /// --min-score, IoU < 0.3 with every face), with box and landmarks, to the split file and
    /// label.txt; --fill-landmarks also gives faces without landmarks those of the prediction
    /// matching them (IoU ≥ 0.5). Only changed files are written (atomically, with .bak).
    Prelabel(super::annotate::PrelabelArgs),
    /// Runs a model over a split and lists the annotations most likely to be wrong, ranked:
    /// missing_face (a prediction ≥ 0.8 that no face covers, IoU < 0.3), unmatched_annotation (a
    /// face no prediction ≥ 0.3 covers), box_mismatch (matched, IoU < 0.7), landmark_mismatch
    /// (matched, mean point error over √(box area) > 0.15).
    Review(super::annotate::ReviewArgs),
    /// Writes a split's faces for other tools: COCO keypoints JSON (--out FILE), CVAT for images
    /// 1.1 XML (--out FILE) or a YOLO-face folder (--out DIR: images/<split>/, labels/<split>/,
    /// <split>.txt). Says what the format cannot carry (YOLO-face: attributes, invalid flags,
    /// landmark flags, scores). An --out on the dataset's own annotation or image folders is
    /// refused; files (and YOLO-face images) replaced with other content keep a .bak copy.
    Export {
        /// The dataset folder.
        root: PathBuf,
        /// coco, cvat or yolo-face.
        #[arg(long)]
        format: InterchangeFormat,
        #[arg(long, default_value = "train")]
        split: SplitKind,
        #[arg(long)]
        out: PathBuf,
    },
    /// Reads COCO keypoints JSON, CVAT for images 1.1 XML or YOLO-face labels into a dataset
    /// folder in the official layout (WIDER_<split>/images, the split file and label.txt); the
    /// images are hard-linked (or copied) from --images. A split that already has annotation
    /// files is refused without --force.
    Import {
        /// The COCO or CVAT file; for yolo-face the list file, or the folder holding <split>.txt
        /// (without one, every image under --images is read).
        input: PathBuf,
        /// coco, cvat or yolo-face.
        #[arg(long)]
        format: InterchangeFormat,
        /// The folder the image paths of the annotations are relative to.
        #[arg(long)]
        images: PathBuf,
        /// The dataset folder to write.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "train")]
        split: SplitKind,
        /// Write over the split's annotation files (keeping .bak copies) and images that differ.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(command: DatasetCommand) -> anyhow::Result<ExitCode> {
    match command {
        DatasetCommand::Stats { root, json } => {
            let (dataset, report) =
                Dataset::open(&root).with_context(|| format!("cannot open the dataset in {}", root.display()))?;
            print_warnings(&report);
            let stats = DatasetStats::of(&dataset);
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print_stats(&dataset, &stats);
            }
            Ok(ExitCode::SUCCESS)
        }
        DatasetCommand::Check { root } => {
            let problems = Dataset::check(&root)?;
            for problem in &problems {
                println!("{problem}");
            }
            let errors = problems.iter().filter(|p| p.severity() == Severity::Error).count();
            println!("{} error(s), {} warning(s)", errors, problems.len() - errors);
            if errors == 0 {
                let (_, report) = Dataset::open(&root)?;
                print_merges(&report);
            }
            Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        DatasetCommand::Prelabel(args) => super::annotate::prelabel_run(args),
        DatasetCommand::Review(args) => super::annotate::review_run(args),
        DatasetCommand::Export { root, format, split, out } => {
            let (dataset, report) =
                Dataset::open(&root).with_context(|| format!("cannot open the dataset in {}", root.display()))?;
            print_warnings(&report);
            let summary = export_split(&dataset, split, format, &out)
                .with_context(|| format!("cannot export the {} split as {format}", split.name()))?;
            if !summary.dropped.is_empty() {
                eprintln!("warning: {format} cannot carry {}; they are not in the export", summary.dropped);
            }
            println!("wrote {} images with {} faces to {} ({format})", summary.images, summary.faces, out.display());
            Ok(ExitCode::SUCCESS)
        }
        DatasetCommand::Import { input, format, images, out, split, force } => {
            let read = read_annotations(&input, format, &images, split)
                .with_context(|| format!("cannot import {} as {format}", input.display()))?;
            let summary = write_official_split(&out, split, &images, read, force)
                .with_context(|| format!("cannot write the {} split into {}", split.name(), out.display()))?;
            println!(
                "imported {} images with {} faces into the {} split of {} ({} image(s) linked or copied, {} annotation file(s) written)",
                summary.images,
                summary.faces,
                split.name(),
                out.display(),
                summary.images_placed,
                summary.files.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        DatasetCommand::Synth { out, images, seed, force } => {
            let summary = generate(&out, &SynthConfig { overwrite: force, ..SynthConfig::new(images, seed) })?;
            println!("wrote {} images with {} faces to {}", summary.images, summary.faces, summary.root.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_warnings(report: &LoadReport) {
    for warning in &report.warnings {
        eprintln!("{warning}");
    }
}

fn print_merges(report: &LoadReport) {
    for merge in &report.merges {
        let (wider, label) = (merge.only_in_wider.len(), merge.only_in_label.len());
        if merge.matched == 0 && wider == 0 && label == 0 {
            continue;
        }
        let split = merge.split.map_or("?", |s| s.name());
        println!(
            "{split}: {} face(s) in both files, {wider} only in the WIDER split file, {label} only in label.txt",
            merge.matched
        );
        for face in merge.only_in_wider.iter().chain(&merge.only_in_label) {
            let [x, y, w, h] = face.bbox.to_xywh();
            println!("  {}:{}: {} box {x} {y} {w} {h} has no counterpart", face.file.display(), face.line, face.image);
        }
    }
}

fn print_stats(dataset: &Dataset, stats: &DatasetStats) {
    println!("dataset: {}", dataset.root.display());
    for (name, s) in &stats.splits {
        println!("\n[{name}]");
        println!("  images               {:>8}", s.images);
        println!("  faces                {:>8}", s.faces);
        println!("  faces with landmarks {:>8}", s.faces_with_landmarks);
        println!("  invalid faces        {:>8}", s.invalid_faces);
        println!("  images without faces {:>8}", s.images_without_faces);
        println!("  events               {:>8}", s.events);
        println!("  face size (longer side, px):");
        for (bin, _) in SIZE_BINS {
            println!("    {bin:>8} {:>8}", s.face_sizes.get(bin).copied().unwrap_or(0));
        }
        for (attribute, values) in &s.attributes {
            let values: Vec<String> = values.iter().map(|(v, n)| format!("{v} {n}")).collect();
            println!("  {attribute:<13} {}", values.join(", "));
        }
    }
}
