//! The report's ablation (its Table 2) as one study: the report's four variants and `paper-r50`
//! trained one after another (or several at once, one per device), each in its own run folder
//! under the study folder so the whole study resumes where it stopped, then evaluated on the
//! validation split by every head stage and tabulated beside the report's and the paper's numbers.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::TrainConfig;
use super::error::TrainError;
use super::run_folder::{RunFolder, TrainEvent};
use super::trainer::{Control, spawn};
use crate::dataset::{Dataset, SplitKind};
use crate::detect::{Detector, EvalImage, ScoringStage, detect_images_per_stage};
use crate::eval::{EvalOptions, GroundTruth, evaluate};
use crate::model::DeviceSet;

/// One row of the study.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AblationVariant {
    pub preset: &'static str,
    /// The row's name in the report's Table 2.
    pub name: &'static str,
    /// Easy / medium / hard AP on WIDER FACE val as the report measured it.
    pub report: Option<[f64; 3]>,
    /// The RetinaFace paper's row for the same configuration, where it has one.
    pub paper: Option<[f64; 3]>,
}

/// The report's variants (Table 2) and the paper's full model, which the report could not build.
pub const ABLATION: [AblationVariant; 5] = [
    AblationVariant {
        preset: "seed-baseline",
        name: "Baseline",
        report: Some([0.842, 0.864, 0.769]),
        paper: Some([0.958, 0.952, 0.899]),
    },
    AblationVariant {
        preset: "seed-context",
        name: "Context Module without Landmark",
        report: Some([0.865, 0.878, 0.767]),
        paper: None,
    },
    AblationVariant {
        preset: "seed-context-landmarks",
        name: "Context Module with Landmark",
        report: Some([0.873, 0.883, 0.783]),
        paper: None,
    },
    AblationVariant { preset: "seed-full", name: "Full Model", report: Some([0.842, 0.854, 0.752]), paper: None },
    AblationVariant {
        preset: "paper-r50",
        name: "Full Model with deformable context (the paper's)",
        report: None,
        paper: Some([0.966, 0.959, 0.912]),
    },
];

/// What a study runs: the training template (its `preset` and `out` are set per variant), the
/// study folder and, optionally, the official ground truth to evaluate on.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    pub train: TrainConfig,
    pub out: PathBuf,
    /// The variants' presets, in order (default: [`ABLATION`]).
    pub presets: Vec<String>,
    /// The folder of `wider_face_val.mat` and its image folder: easy/medium/hard AP. Without it the
    /// dataset's val split is the ground truth (one setting, "all").
    pub official: Option<(PathBuf, PathBuf)>,
}

/// The study's progress.
#[derive(Clone, Debug, PartialEq)]
pub enum StudyEvent {
    /// A variant's training already finished in an earlier session.
    Skipped {
        preset: String,
    },
    Training {
        preset: String,
        event: TrainEvent,
    },
    Evaluating {
        preset: String,
    },
}

/// One evaluated variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StudyRow {
    pub preset: String,
    pub name: String,
    /// AP per setting scored by each head stage, first stage first.
    pub stages: Vec<Vec<(String, f64)>>,
    pub report: Option<[f64; 3]>,
    pub paper: Option<[f64; 3]>,
}

impl StudyRow {
    /// AP per setting from the detector's stage (the last).
    pub fn ap(&self) -> &[(String, f64)] {
        self.stages.last().map_or(&[], Vec::as_slice)
    }
}

fn variant_info(preset: &str) -> (String, Option<[f64; 3]>, Option<[f64; 3]>) {
    match ABLATION.iter().find(|v| v.preset == preset) {
        Some(v) => (v.name.to_string(), v.report, v.paper),
        None => (preset.to_string(), None, None),
    }
}

/// The study's callbacks: progress events (called from the training threads) and whether to stop.
pub struct StudyHooks<'a> {
    pub on_event: &'a (dyn Fn(StudyEvent) + Sync),
    /// Polled while training; `true` stops the running variants (each checkpoints, so the study
    /// resumes from there) and ends the study with an error.
    pub should_stop: &'a (dyn Fn() -> bool + Sync),
}

/// Trains one variant (resuming an interrupted one); `Err` with the trainer's message, or
/// `Cancelled` when the study was asked to stop.
fn train_variant(config: TrainConfig, hooks: &StudyHooks) -> Result<(), TrainError> {
    let on_event = hooks.on_event;
    let preset = config.preset.clone();
    let folder = RunFolder::new(&config.out);
    if folder.is_finished(config.max_steps) {
        on_event(StudyEvent::Skipped { preset });
        return Ok(());
    }
    let failed = |message: String| TrainError::Variant { preset: preset.clone(), message };
    let handle = spawn(config, folder.has_checkpoint()).map_err(|e| failed(e.to_string()))?;
    let mut failure = None;
    let mut stop_sent = false;
    loop {
        let event = match handle.events.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(event) => event,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if !stop_sent && (hooks.should_stop)() {
                    let _ = handle.control.send(Control::Stop);
                    stop_sent = true;
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        if let TrainEvent::Error { message } = &event {
            failure = Some(failed(message.clone()));
        }
        on_event(StudyEvent::Training { preset: preset.clone(), event });
    }
    handle.join();
    if stop_sent {
        return Err(TrainError::Cancelled);
    }
    failure.map_or(Ok(()), Err)
}

/// The ground truth and its images.
fn ground_truth(config: &StudyConfig) -> Result<(GroundTruth, Vec<EvalImage>), TrainError> {
    match &config.official {
        Some((gt_dir, images)) => {
            let gt = GroundTruth::from_official_dir(gt_dir)?;
            let list = EvalImage::list(&gt, images);
            Ok((gt, list))
        }
        None => {
            let (dataset, _) = Dataset::open(&config.train.data)?;
            let val = dataset
                .split(SplitKind::Val)
                .ok_or_else(|| TrainError::MissingSplit { path: config.train.data.clone(), split: "val" })?;
            let gt = GroundTruth::from_split(val)?;
            Ok((gt, EvalImage::from_split(val)))
        }
    }
}

/// AP per setting of a trained model, scored by each stage.
fn evaluate_run(
    run: &RunFolder,
    gt: &GroundTruth,
    images: &[EvalImage],
    devices: &DeviceSet,
) -> Result<Vec<Vec<(String, f64)>>, TrainError> {
    let device =
        *devices.devices().first().ok_or(TrainError::Invalid { field: "device", message: "no device given".into() })?;
    let detector = Detector::load(&run.model_path(), None, device)?;
    let scoring = ScoringStage::all(detector.config().stages());
    let predictions = detect_images_per_stage(&detector, images, &scoring, |_| std::ops::ControlFlow::Continue(()))?;
    Ok(predictions
        .iter()
        .map(|p| evaluate(gt, p, &EvalOptions::OFFICIAL).settings.iter().map(|s| (s.name.clone(), s.ap)).collect())
        .collect())
}

/// Runs the study: trains what is not trained yet (one variant per device at a time), evaluates
/// every variant and writes `ablation.md`, `ablation.json` and `ablation_ap.png` into the study
/// folder.
pub fn run_study(config: &StudyConfig, hooks: &StudyHooks) -> Result<Vec<StudyRow>, TrainError> {
    let run_dir = |preset: &str| config.out.join(preset);
    for preset in &config.presets {
        TrainConfig { preset: preset.clone(), out: run_dir(preset), ..config.train.clone() }.validate()?;
    }
    std::fs::create_dir_all(&config.out).map_err(TrainError::io("create", &config.out))?;
    let _lock = StudyLock::take(&config.out)?;
    let devices = config.train.device.devices().to_vec();
    let jobs: Vec<TrainConfig> = config
        .presets
        .iter()
        .map(|preset| TrainConfig { preset: preset.clone(), out: run_dir(preset), ..config.train.clone() })
        .collect();
    // Variant i trains on device i mod n; each device works through its variants in order.
    let failures: Vec<TrainError> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..devices.len().min(jobs.len()))
            .map(|d| {
                let mine: Vec<TrainConfig> = jobs
                    .iter()
                    .skip(d)
                    .step_by(devices.len())
                    .map(|job| TrainConfig { device: DeviceSet::single(devices[d].clone()), ..job.clone() })
                    .collect();
                scope.spawn(move || {
                    mine.into_iter().filter_map(|job| train_variant(job, hooks).err()).collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|_| vec![TrainError::ThreadPanicked])).collect()
    });
    // A stop cancels the study, unless a variant also failed: then its error is what matters.
    let (cancelled, failures): (Vec<_>, Vec<_>) =
        failures.into_iter().partition(|f| matches!(f, TrainError::Cancelled));
    if !failures.is_empty() {
        return Err(TrainError::Variants(failures));
    }
    if !cancelled.is_empty() {
        return Err(TrainError::Cancelled);
    }
    let (gt, images) = ground_truth(config)?;
    let mut rows = Vec::with_capacity(config.presets.len());
    for preset in &config.presets {
        (hooks.on_event)(StudyEvent::Evaluating { preset: preset.clone() });
        let stages = evaluate_run(&RunFolder::new(run_dir(preset)), &gt, &images, &config.train.device)?;
        let (name, report, paper) = variant_info(preset);
        rows.push(StudyRow { preset: preset.clone(), name, stages, report, paper });
    }
    write_outputs(config, &rows)?;
    Ok(rows)
}

/// `study.lock` in the study folder, holding the process id: two studies in one folder would train
/// into the same run folders. A lock whose process is gone (a killed study) is taken over.
struct StudyLock(PathBuf);

impl StudyLock {
    fn take(dir: &Path) -> Result<StudyLock, TrainError> {
        let path = dir.join("study.lock");
        let own = std::process::id();
        if let Some(pid) = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<u32>().ok())
            && pid != own
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            return Err(TrainError::StudyRunning { pid, dir: dir.to_path_buf() });
        }
        crate::fsutil::write_atomic(&path, own.to_string().as_bytes()).map_err(TrainError::io("write", &path))?;
        Ok(StudyLock(path))
    }
}

impl Drop for StudyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fmt_triple(values: Option<[f64; 3]>) -> String {
    values.map_or_else(|| "—".to_string(), |v| format!("{:.3} / {:.3} / {:.3}", v[0], v[1], v[2]))
}

fn fmt_aps(aps: &[(String, f64)]) -> String {
    aps.iter().map(|(name, ap)| format!("{name} {ap:.3}")).collect::<Vec<_>>().join(", ")
}

/// The table as Markdown: this run's AP (and the first stage's, with the cascade) beside the
/// report's and the paper's easy / medium / hard.
pub fn markdown_table(rows: &[StudyRow], config: &StudyConfig) -> String {
    let t = &config.train;
    let mut text = format!(
        "# The report's ablation (Table 2), this run\n\n{} epochs, batch {}, {} px, schedule {}, device {}{}{}.\n\
         Ground truth: {}.\n\n",
        t.epochs,
        t.batch,
        t.image_size,
        t.lr_schedule,
        t.device,
        t.width.map_or_else(String::new, |w| format!(", width {w}")),
        t.backbone_weights
            .as_ref()
            .map_or_else(|| ", backbone from scratch".to_string(), |w| format!(", backbone {}", w.display())),
        match &config.official {
            Some((dir, _)) => format!("official WIDER FACE val ({})", dir.display()),
            None => format!("the val split of {} (all faces)", t.data.display()),
        }
    );
    text.push_str("| variant | preset | AP (this run) | first stage | report (E / M / H) | paper (E / M / H) |\n");
    text.push_str("|---|---|---|---|---|---|\n");
    for row in rows {
        let first = if row.stages.len() > 1 { fmt_aps(&row.stages[0]) } else { "—".into() };
        text.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            row.name,
            row.preset,
            fmt_aps(row.ap()),
            first,
            fmt_triple(row.report),
            fmt_triple(row.paper)
        ));
    }
    text
}

fn write_outputs(config: &StudyConfig, rows: &[StudyRow]) -> Result<(), TrainError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = config.out.join(name);
        crate::fsutil::write_atomic(&path, bytes).map_err(TrainError::io("write", path))
    };
    write("ablation.md", markdown_table(rows, config).as_bytes())?;
    let json = serde_json::to_string_pretty(&serde_json::json!({ "variants": rows }))
        .map_err(|e| TrainError::Corrupt { path: config.out.join("ablation.json"), message: e.to_string() })?;
    write("ablation.json", json.as_bytes())?;
    let curves: Vec<(String, Vec<(f64, f64)>)> = config
        .presets
        .iter()
        .map(|preset| {
            let events = RunFolder::new(config.out.join(preset)).read_metrics().unwrap_or_default();
            let points = events
                .iter()
                .filter_map(|e| match e {
                    TrainEvent::Val { epoch, ap, .. } => ap.first().map(|(_, v)| (f64::from(*epoch), *v)),
                    _ => None,
                })
                .collect();
            (preset.clone(), points)
        })
        .collect();
    crate::eval::write_series_png(
        &config.out.join("ablation_ap.png"),
        "Validation AP per variant",
        "epoch",
        "AP",
        &curves,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_study_in_the_same_folder_is_refused_and_a_dead_ones_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = StudyLock::take(dir.path()).unwrap();
        // A live process other than this one holds the folder: process 1 always exists.
        std::fs::write(dir.path().join("study.lock"), "1").unwrap();
        let err = StudyLock::take(dir.path()).err().unwrap().to_string();
        assert!(err.contains("process 1") && err.contains("is running"), "{err}");
        drop(lock);
        // A process id that cannot be running (beyond Linux's pid_max): a killed study's lock.
        std::fs::write(dir.path().join("study.lock"), "4294967294").unwrap();
        let taken = StudyLock::take(dir.path()).unwrap();
        let holder = std::fs::read_to_string(dir.path().join("study.lock")).unwrap();
        assert_eq!(holder, std::process::id().to_string());
        drop(taken);
        assert!(!dir.path().join("study.lock").exists(), "the lock goes with the study");
    }
}
