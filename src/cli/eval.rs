//! `facestudio eval`: WIDER FACE AP of a prediction folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facestudio::dataset::SplitKind;
use facestudio::detect::{EvalImage, Outcome, detect_images, detect_images_tta};
use facestudio::eval::{
    EvalDetails, EvalOptions, EvalReport, Evaluator, FAILURE_ERROR, FaceDifference, GroundTruth, Predictions, evaluate,
    face_differences, write_compare_png, write_curves_csv, write_curves_png,
};
use facestudio::model::{DeviceChoice, PRESETS};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Ground truth: the official folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat
    /// (easy/medium/hard AP), or a dataset folder (one setting, "all": every face not marked invalid).
    #[arg(long)]
    gt: PathBuf,
    /// Predictions in the WIDER submission format: <pred>/<event>/<image>.txt. Give several
    /// (and/or several --weights) to compare models: a table of AP with the difference to the
    /// first, and the faces each finds that the first misses.
    #[arg(long, required_unless_present = "weights")]
    pred: Vec<PathBuf>,
    /// Run this model over the ground truth's images first (evaluation settings: confidence > 0.02,
    /// top 5000, NMS 0.4, keep 750, original size); repeat to compare models (after any --pred).
    #[arg(long)]
    weights: Vec<PathBuf>,
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
    /// When comparing models: the confidence each is read at for the faces one finds and another
    /// misses.
    #[arg(long, default_value_t = 0.5, value_parser = super::unit_interval)]
    compare_at: f32,
    /// Also write the PR curves as CSV (setting,threshold,precision,recall; one model only).
    #[arg(long)]
    curves_csv: Option<PathBuf>,
    /// Also draw the PR curves as a PNG (every model's, overlaid, when comparing).
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
    if args.tta.tta && !args.pred.is_empty() {
        anyhow::bail!("--tta runs a model over the images: use it with --weights, not --pred");
    }
    let (gt, dataset_images) = GroundTruth::open(&args.gt, args.split)?;
    let mut models: Vec<(String, Predictions)> = Vec::new();
    for pred in &args.pred {
        let predictions =
            Predictions::read_dir(pred).with_context(|| format!("cannot read predictions from {}", pred.display()))?;
        models.push((pred.display().to_string(), predictions));
    }
    for weights in &args.weights {
        let images = match (&args.images, &dataset_images) {
            (Some(images), _) | (None, Some(images)) => images,
            (None, None) => anyhow::bail!("the official ground truth names no image folder: give --images DIR"),
        };
        models.push((weights.display().to_string(), detect_ground_truth(&gt, &args, weights, images)?));
    }
    if models.len() > 1 {
        return compare(&gt, &models, &args);
    }
    let Some((_, predictions)) = models.pop() else {
        anyhow::bail!("give --pred DIR, or --weights MODEL (with --images DIR for the official ground truth)")
    };
    let report = evaluate(&gt, &predictions, &EvalOptions::OFFICIAL);
    let details = Details {
        computed: EvalDetails::compute(&gt, &predictions, &report),
        single_setting: report.settings.len() == 1,
        tta: args.tta.tta,
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

/// Several models on one ground truth: AP per setting with the difference to the first, and per
/// model the kept faces it recalls that the first misses and the other way round (each read at
/// `--compare-at`); `--curves-png` overlays every model's curves.
fn compare(gt: &GroundTruth, models: &[(String, Predictions)], args: &EvalArgs) -> anyhow::Result<ExitCode> {
    if args.curves_csv.is_some() {
        anyhow::bail!("--curves-csv writes one model's curves: compare models with --curves-png or --json");
    }
    let evaluators: Vec<Evaluator> =
        models.iter().map(|(_, p)| Evaluator::new(gt, p, &EvalOptions::OFFICIAL)).collect();
    let reports: Vec<EvalReport> = evaluators.iter().map(Evaluator::report).collect();
    for ((name, _), report) in models.iter().zip(&reports) {
        for warning in &report.warnings {
            eprintln!("warning: {name}: {warning}");
        }
    }
    // The first model against itself differs nowhere: nothing to walk.
    let agree = reports[0].settings.iter().map(|s| FaceDifference {
        setting: s.name.clone(),
        only_first: Vec::new(),
        only_second: Vec::new(),
    });
    let differences: Vec<Vec<FaceDifference>> = std::iter::once(agree.collect())
        .chain(evaluators[1..].iter().map(|e| face_differences(&evaluators[0], e, f64::from(args.compare_at))))
        .collect();
    if let Some(path) = &args.curves_png {
        let named: Vec<(&str, &EvalReport)> = models.iter().map(|(n, _)| n.as_str()).zip(&reports).collect();
        write_compare_png(&named, path)?;
    }
    let first = &reports[0];
    if args.json {
        let entries: Vec<serde_json::Value> = models
            .iter()
            .zip(&reports)
            .zip(&differences)
            .map(|(((name, _), report), diffs)| {
                let mut entry = serde_json::Map::new();
                entry.insert("model".into(), name.clone().into());
                let (mut diff, mut found, mut missed) =
                    (serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new());
                for (setting, base) in report.settings.iter().zip(&first.settings) {
                    entry.insert(setting.name.clone(), setting.ap.into());
                    diff.insert(setting.name.clone(), (setting.ap - base.ap).into());
                }
                for d in diffs {
                    found.insert(d.setting.clone(), d.only_second.len().into());
                    missed.insert(d.setting.clone(), d.only_first.len().into());
                }
                entry.insert("diff".into(), diff.into());
                entry.insert("found_not_by_first".into(), found.into());
                entry.insert("missed_found_by_first".into(), missed.into());
                serde_json::Value::Object(entry)
            })
            .collect();
        let json = serde_json::json!({ "models": entries, "images": first.images, "compare_at": args.compare_at });
        println!("{}", serde_json::to_string(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = models.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(5).max(5);
    print!("{:<width$}", "model");
    for setting in &first.settings {
        print!(" {:>18}", setting.name);
    }
    println!();
    for ((name, _), report) in models.iter().zip(&reports) {
        print!("{name:<width$}");
        for (setting, base) in report.settings.iter().zip(&first.settings) {
            print!(" {:>8.4} ({:>+7.4})", setting.ap, setting.ap - base.ap);
        }
        println!();
    }
    println!();
    println!("kept faces recalled at confidence {} by one model and not the first:", args.compare_at);
    for ((name, _), diffs) in models.iter().zip(&differences).skip(1) {
        let parts: Vec<String> =
            diffs.iter().map(|d| format!("{} +{} / -{}", d.setting, d.only_second.len(), d.only_first.len())).collect();
        println!("{name:<width$} {}", parts.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the evaluation adds to the APs (operating points, AP by size and attribute,
/// landmarks), and how to print it.
struct Details {
    computed: EvalDetails,
    /// A dataset folder's one setting: its buckets are not nested under the setting's name.
    single_setting: bool,
    /// The predictions came from a model with test-time augmentation.
    tta: bool,
}

impl Details {
    /// `{bucket: AP}` of one group of one setting (`null` for a bucket without faces).
    fn group_json(&self, setting: &str, group: &str) -> serde_json::Value {
        let buckets = self.computed.buckets.iter().filter(|b| b.setting == setting && b.group == group);
        let aps = buckets.map(|b| (b.bucket.clone(), if b.faces > 0 { b.ap.into() } else { serde_json::Value::Null }));
        serde_json::Value::Object(aps.collect())
    }

    /// `by_size` (`{bucket: AP}`) and `by_attribute` (`{attribute: {value: AP}}`), nested under
    /// each setting's name when there are several (the official easy/medium/hard).
    fn by_json(&self, settings: &[String]) -> (serde_json::Value, serde_json::Value) {
        let attributes = |setting: &str| -> serde_json::Value {
            let mut groups: Vec<&str> = Vec::new();
            for b in self.computed.buckets.iter().filter(|b| b.setting == setting && b.group != "size") {
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
    let points = details.computed.operating_points.iter().map(|(s, p)| Ok((s.clone(), serde_json::to_value(p)?)));
    object.insert("operating_points".into(), serde_json::Value::Object(points.collect::<anyhow::Result<_>>()?));
    let settings: Vec<String> = report.settings.iter().map(|s| s.name.clone()).collect();
    let (by_size, by_attribute) = details.by_json(&settings);
    object.insert("by_size".into(), by_size);
    object.insert("by_attribute".into(), by_attribute);
    if let Some(landmarks) = &details.computed.landmarks {
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
    for (setting, points) in &details.computed.operating_points {
        for p in points {
            let best = if p.best_f1 { "  (best F1)" } else { "" };
            println!("{setting:<10} {:>10.4} {:>10.4} {:>8.4} {:>8.4}{best}", p.threshold, p.precision, p.recall, p.f1);
        }
    }
    println!();
    println!("{:<10} {:<13} {:<12} {:>8} {:>7}", "setting", "by", "bucket", "AP", "faces");
    for b in &details.computed.buckets {
        println!("{:<10} {:<13} {:<12} {:>8.4} {:>7}", b.setting, b.group, b.bucket, b.ap, b.faces);
    }
    if let Some(l) = &details.computed.landmarks {
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
