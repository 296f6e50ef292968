//! `facestudio dataset prelabel` and `facestudio dataset review`: a detector over a split, its
//! faces added where nobody drew one, and the annotations most likely to be wrong, ranked.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facestudio::annotate::{PrelabelCounts, Thresholds, predict_split, prelabel, review};
use facestudio::dataset::{Dataset, SplitKind};
use facestudio::detect::{Detection, FaceFilter, Outcome};
use facestudio::model::{DeviceChoice, PRESETS};
use indicatif::{ProgressBar, ProgressStyle};

/// The model and the split both commands run over.
#[derive(Args, Debug)]
pub struct ModelOnSplit {
    /// The dataset folder.
    root: PathBuf,
    /// A facestudio model file, or a PyTorch .pth / .safetensors checkpoint together with --preset.
    #[arg(long)]
    weights: PathBuf,
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: Option<String>,
    #[arg(long, default_value = "train")]
    split: SplitKind,
    /// auto (the best GPU found, else the CPU), cpu, wgpu[:N], vulkan[:N], metal, dx12[:N] or
    /// cuda[:N]; `facestudio devices` lists them.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

#[derive(Args, Debug)]
pub struct PrelabelArgs {
    #[command(flatten)]
    on: ModelOnSplit,
    /// Predictions at least this confident that no face covers (IoU < 0.3 with every face) are
    /// added, with their box and five landmarks.
    #[arg(long, default_value_t = Thresholds::default().min_score, value_parser = super::unit_interval)]
    min_score: f32,
    /// Also give faces without landmarks those of the prediction matching them (IoU ≥ 0.5).
    #[arg(long)]
    fill_landmarks: bool,
    /// Count what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print {"images": N, "added": N, "landmarks_filled": N}.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    #[command(flatten)]
    on: ModelOnSplit,
    /// One JSON object per suspect and line, most likely mistakes first.
    #[arg(long)]
    json: bool,
    /// Suspects printed.
    #[arg(long, default_value_t = 50)]
    top: usize,
}

/// The split's predictions (faces scoring at least 0.3, NMS 0.4), with a progress bar.
fn predictions(on: &ModelOnSplit) -> anyhow::Result<(Dataset, Vec<Vec<Detection>>)> {
    let (dataset, _) =
        Dataset::open(&on.root).with_context(|| format!("cannot open the dataset in {}", on.root.display()))?;
    let split =
        dataset.split(on.split).with_context(|| format!("{} has no {} split", on.root.display(), on.split.name()))?;
    let detector = super::load_detector(&on.weights, on.preset.as_deref(), on.device)?;
    let progress = ProgressBar::new(split.images.len() as u64);
    progress.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")?);
    let filter = FaceFilter { confidence: Thresholds::default().seen_score, ..FaceFilter::EVALUATION };
    let predicted = predict_split(&detector, split, &filter, |outcome| {
        if let Outcome::Skipped { error, .. } = outcome {
            progress.suspend(|| eprintln!("skipped: {error}"));
        }
        progress.inc(1);
        ControlFlow::Continue(())
    })?;
    progress.finish_and_clear();
    Ok((dataset, predicted))
}

pub fn prelabel_run(args: PrelabelArgs) -> anyhow::Result<ExitCode> {
    let (mut dataset, predicted) = predictions(&args.on)?;
    let thresholds = Thresholds { min_score: args.min_score, ..Thresholds::default() };
    let split = dataset.split_mut(args.on.split).context("the split went away")?;
    let counts: PrelabelCounts = prelabel(split, &predicted, &thresholds, args.fill_landmarks);
    if !args.dry_run {
        let written = dataset.save()?;
        for file in &written {
            eprintln!("wrote {}", file.display());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&counts)?);
    } else {
        let how = if args.dry_run { "would add" } else { "added" };
        println!(
            "{} images, {how} {} face(s), {} landmark set(s) filled{}",
            counts.images,
            counts.added,
            counts.landmarks_filled,
            if args.dry_run { " (dry run: nothing written)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn review_run(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let (dataset, predicted) = predictions(&args.on)?;
    let split = dataset.split(args.on.split).context("the split went away")?;
    let suspects = review(split, &predicted, &Thresholds::default());
    for suspect in suspects.iter().take(args.top) {
        let image = &split.images[suspect.image].path;
        let corners = suspect.bbox.corners();
        if args.json {
            let prediction = suspect.prediction.map(|p| {
                serde_json::json!({
                    "box": p.bbox.corners(),
                    "score": p.score,
                    "landmarks": p.landmarks.map(|l| l.to_flat()),
                })
            });
            let line = serde_json::json!({
                "image": image,
                "kind": suspect.kind.name(),
                "score": suspect.score,
                "box": corners,
                "prediction": prediction,
            });
            println!("{line}");
        } else {
            let [x1, y1, x2, y2] = corners;
            println!("{:.3}  {:<22} {image}  [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}]", suspect.score, suspect.kind.name());
        }
    }
    if !args.json {
        eprintln!(
            "{} suspect(s) in {}, {} shown",
            suspects.len(),
            describe(&args.on.root, args.on.split),
            suspects.len().min(args.top)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(root: &Path, split: SplitKind) -> String {
    format!("the {} split of {}", split.name(), root.display())
}
