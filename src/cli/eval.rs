//! `facestudio eval`: WIDER FACE AP of a prediction folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facestudio::dataset::SplitKind;
use facestudio::detect::{EvalImage, Outcome, detect_images};
use facestudio::eval::{
    EvalOptions, EvalReport, GroundTruth, Predictions, evaluate, write_curves_csv, write_curves_png,
};
use facestudio::model::{DeviceChoice, PRESETS};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Ground truth: the official folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat
    /// (easy/medium/hard AP), or a dataset folder (one setting, "all": every face not marked invalid).
    #[arg(long)]
    gt: PathBuf,
    /// Predictions in the WIDER submission format: <pred>/<event>/<image>.txt.
    #[arg(long, required_unless_present = "weights", conflicts_with = "weights")]
    pred: Option<PathBuf>,
    /// Run this model over the ground truth's images first (evaluation settings: confidence > 0.02,
    /// top 5000, NMS 0.4, keep 750, original size).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The preset of a PyTorch checkpoint given as --weights.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: Option<String>,
    /// The head stage that scores faces: 1 (the first) or 2 (the cascade's; default: the last).
    #[arg(long)]
    stage: Option<usize>,
    /// The images of the ground truth: <images>/<event>/<name>.jpg (e.g. WIDER_val/images); a
    /// dataset folder given as --gt knows its own.
    #[arg(long)]
    images: Option<PathBuf>,
    /// For --weights: auto (the best GPU found, else the CPU), cpu, wgpu[:N], vulkan[:N], metal,
    /// dx12[:N] or cuda[:N]; `facestudio devices` lists them.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// The split of a dataset folder given as --gt.
    #[arg(long, default_value = "val")]
    split: SplitKind,
    /// Print {"easy": AP, "medium": AP, "hard": AP, "images": N, "missing_prediction_files": N}.
    #[arg(long)]
    json: bool,
    /// Also write the PR curves as CSV (setting,threshold,precision,recall).
    #[arg(long)]
    curves_csv: Option<PathBuf>,
    /// Also draw the PR curves as a PNG.
    #[arg(long)]
    curves_png: Option<PathBuf>,
}

/// Runs the detector over every image of the ground truth, with a progress bar. An image that
/// cannot be read is reported and left without predictions (the evaluation counts it as missing).
fn detect_ground_truth(
    gt: &GroundTruth,
    args: &EvalArgs,
    weights: &Path,
    images: &Path,
) -> anyhow::Result<Predictions> {
    let detector = super::load_detector(weights, args.preset.as_deref(), args.device)?.with_stage(args.stage)?;
    let progress = ProgressBar::new(gt.images().len() as u64);
    progress.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")?);
    let list = EvalImage::list(gt, images);
    let predictions = detect_images(&detector, &list, |outcome| {
        if let Outcome::Skipped { error, .. } = outcome {
            progress.suspend(|| eprintln!("skipped: {error}"));
        }
        progress.inc(1);
        std::ops::ControlFlow::Continue(())
    })?;
    progress.finish_and_clear();
    Ok(predictions)
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let (gt, dataset_images) = GroundTruth::open(&args.gt, args.split)?;
    let predictions = match (&args.pred, &args.weights, &args.images) {
        (Some(pred), _, _) => {
            Predictions::read_dir(pred).with_context(|| format!("cannot read predictions from {}", pred.display()))?
        }
        (None, Some(weights), Some(images)) => detect_ground_truth(&gt, &args, weights, images)?,
        (None, Some(weights), None) => match &dataset_images {
            Some(images) => detect_ground_truth(&gt, &args, weights, images)?,
            None => anyhow::bail!("the official ground truth names no image folder: give --images DIR"),
        },
        _ => anyhow::bail!("give --pred DIR, or --weights MODEL (with --images DIR for the official ground truth)"),
    };
    let report = evaluate(&gt, &predictions, &EvalOptions::OFFICIAL);
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(path) = &args.curves_csv {
        write_curves_csv(&report, path)?;
    }
    if let Some(path) = &args.curves_png {
        write_curves_png(&report, path)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary_json(&report))?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The machine-readable summary: one AP per setting, then the counts.
fn summary_json(report: &EvalReport) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for setting in &report.settings {
        object.insert(setting.name.clone(), setting.ap.into());
    }
    object.insert("images".into(), report.images.into());
    object.insert("missing_prediction_files".into(), report.missing_prediction_files.len().into());
    serde_json::Value::Object(object)
}

fn print_table(report: &EvalReport) {
    println!("{:<10} {:>8}", "setting", "AP");
    for setting in &report.settings {
        println!("{:<10} {:>8.4}", setting.name, setting.ap);
    }
    println!(
        "{} images, {} faces, {} detections, {} missing prediction file(s)",
        report.images,
        report.faces,
        report.detections,
        report.missing_prediction_files.len()
    );
}
