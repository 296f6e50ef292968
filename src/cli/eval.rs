//! `facestudio eval`: WIDER FACE AP of a prediction folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facestudio::dataset::SplitKind;
use facestudio::detect::{EvalImage, Outcome, detect_images, detect_images_tta};
use facestudio::eval::{
    BucketResult, EvalOptions, EvalReport, FAILURE_ERROR, GroundTruth, LandmarkAccuracy, OperatingPoint, Predictions,
    breakdown, evaluate, landmark_accuracy, operating_points, write_curves_csv, write_curves_png,
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
    /// Print one JSON object: {"easy": AP, "medium": AP, "hard": AP, "images": N,
    /// "missing_prediction_files": N, "operating_points", "by_size", "by_attribute", and
    /// "landmarks" where the ground truth and the predictions have them}; see the README.
    #[arg(long)]
    json: bool,
    /// Also write the PR curves as CSV (setting,threshold,precision,recall).
    #[arg(long)]
    curves_csv: Option<PathBuf>,
    /// Also draw the PR curves as a PNG.
    #[arg(long)]
    curves_png: Option<PathBuf>,
    #[command(flatten)]
    tta: super::TtaArgs,
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
    let on_outcome = |outcome: &Outcome| {
        if let Outcome::Skipped { error, .. } = outcome {
            progress.suspend(|| eprintln!("skipped: {error}"));
        }
        progress.inc(1);
        std::ops::ControlFlow::Continue(())
    };
    let predictions = match args.tta.tta() {
        Some(tta) => detect_images_tta(&detector, &list, &tta, on_outcome)?,
        None => detect_images(&detector, &list, on_outcome)?,
    };
    progress.finish_and_clear();
    Ok(predictions)
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if args.tta.tta && args.pred.is_some() {
        anyhow::bail!("--tta runs a model over the images: use it with --weights, not --pred");
    }
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
    let details = Details {
        operating_points: report
            .settings
            .iter()
            .map(|s| (s.name.clone(), operating_points(&s.curve, report.score_normalisation)))
            .collect(),
        buckets: breakdown(&gt, &predictions, &EvalOptions::OFFICIAL),
        landmarks: landmark_accuracy(&gt, &predictions),
        single_setting: report.settings.len() == 1,
        tta: args.tta.tta && args.pred.is_none(),
    };
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
        println!("{}", serde_json::to_string(&summary_json(&report, &details)?)?);
    } else {
        print_table(&report, &details);
    }
    Ok(ExitCode::SUCCESS)
}

/// What the evaluation adds to the APs: operating points, AP by size and attribute, landmarks.
struct Details {
    operating_points: Vec<(String, Vec<OperatingPoint>)>,
    buckets: Vec<BucketResult>,
    landmarks: Option<LandmarkAccuracy>,
    /// A dataset folder's one setting: its buckets are not nested under the setting's name.
    single_setting: bool,
    /// The predictions came from a model with test-time augmentation.
    tta: bool,
}

impl Details {
    /// `{bucket: AP}` of one group of one setting (`null` for a bucket without faces).
    fn group_json(&self, setting: &str, group: &str) -> serde_json::Value {
        let buckets = self.buckets.iter().filter(|b| b.setting == setting && b.group == group);
        let aps = buckets.map(|b| (b.bucket.clone(), if b.faces > 0 { b.ap.into() } else { serde_json::Value::Null }));
        serde_json::Value::Object(aps.collect())
    }

    /// `by_size` (`{bucket: AP}`) and `by_attribute` (`{attribute: {value: AP}}`), nested under
    /// each setting's name when there are several (the official easy/medium/hard).
    fn by_json(&self, settings: &[String]) -> (serde_json::Value, serde_json::Value) {
        let attributes = |setting: &str| -> serde_json::Value {
            let mut groups: Vec<&str> = Vec::new();
            for b in self.buckets.iter().filter(|b| b.setting == setting && b.group != "size") {
                if !groups.contains(&b.group.as_str()) {
                    groups.push(&b.group);
                }
            }
            serde_json::Value::Object(
                groups.into_iter().map(|g| (g.to_string(), self.group_json(setting, g))).collect(),
            )
        };
        if self.single_setting {
            let setting = settings.first().map_or("", String::as_str);
            return (self.group_json(setting, "size"), attributes(setting));
        }
        let per = |f: &dyn Fn(&str) -> serde_json::Value| {
            serde_json::Value::Object(settings.iter().map(|s| (s.clone(), f(s))).collect())
        };
        (per(&|s| self.group_json(s, "size")), per(&attributes))
    }
}

/// The machine-readable summary: one AP per setting, the counts, then the details.
fn summary_json(report: &EvalReport, details: &Details) -> anyhow::Result<serde_json::Value> {
    let mut object = serde_json::Map::new();
    for setting in &report.settings {
        object.insert(setting.name.clone(), setting.ap.into());
    }
    object.insert("images".into(), report.images.into());
    object.insert("missing_prediction_files".into(), report.missing_prediction_files.len().into());
    object.insert("tta".into(), details.tta.into());
    let points = details.operating_points.iter().map(|(s, p)| Ok((s.clone(), serde_json::to_value(p)?)));
    object.insert("operating_points".into(), serde_json::Value::Object(points.collect::<anyhow::Result<_>>()?));
    let settings: Vec<String> = report.settings.iter().map(|s| s.name.clone()).collect();
    let (by_size, by_attribute) = details.by_json(&settings);
    object.insert("by_size".into(), by_size);
    object.insert("by_attribute".into(), by_attribute);
    if let Some(landmarks) = &details.landmarks {
        object.insert(
            "landmarks".into(),
            serde_json::json!({
                "nme": landmarks.nme,
                "failure_rate": landmarks.failure_rate,
                "faces": landmarks.faces,
                "per_point": landmarks.per_point,
            }),
        );
    }
    Ok(serde_json::Value::Object(object))
}

fn print_table(report: &EvalReport, details: &Details) {
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
    println!();
    println!("{:<10} {:>10} {:>10} {:>8} {:>8}", "setting", "confidence", "precision", "recall", "F1");
    for (setting, points) in &details.operating_points {
        for p in points {
            let best = if p.best_f1 { "  (best F1)" } else { "" };
            println!("{setting:<10} {:>10.4} {:>10.4} {:>8.4} {:>8.4}{best}", p.threshold, p.precision, p.recall, p.f1);
        }
    }
    println!();
    println!("{:<10} {:<13} {:<12} {:>8} {:>7}", "setting", "by", "bucket", "AP", "faces");
    for b in &details.buckets {
        println!("{:<10} {:<13} {:<12} {:>8.4} {:>7}", b.setting, b.group, b.bucket, b.ap, b.faces);
    }
    if let Some(l) = &details.landmarks {
        println!();
        let points: Vec<String> = l.per_point.iter().map(|e| format!("{e:.4}")).collect();
        println!(
            "landmarks: NME {:.4}, failure rate (error > {FAILURE_ERROR}) {:.4}, {} faces; per point (left eye, right eye, nose, mouth left, mouth right) {}",
            l.nme,
            l.failure_rate,
            l.faces,
            points.join(" ")
        );
    }
}
