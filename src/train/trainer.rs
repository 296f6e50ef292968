//! The trainer: runs on its own thread, reports through a `crossbeam-channel` of events, obeys a
//! control channel (pause / resume / stop), appends every event to `<run>/metrics.jsonl`, and
//! checkpoints (model, optimiser, position, seed) atomically every epoch and on stop, so a run
//! killed at any moment resumes from its last checkpoint with the same step count and schedule.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};
use serde::{Deserialize, Serialize};

use super::loader::{EpochLoader, LoaderPlan, TrainImage};
use super::parallel::Replicas;
use super::schedule::{LrSchedule, sgd};
use super::step::{Batch, LOSS_SETUPS, LossSetup};
use super::validate::{DetectProgress, EvalImage, detect_images_per_stage};
use crate::dataset::augment::AugmentConfig;
use crate::dataset::{Dataset, SplitKind};
use crate::detect::{Detector, ScoringStage};
use crate::eval::{EvalOptions, GroundTruth, evaluate};
use crate::geometry::Variance;
use crate::model::{DeviceSet, RetinaFace, RetinaFaceConfig, load_backbone, load_model, save_model};

/// Everything a run needs; saved as `<out>/config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub preset: String,
    /// Train the preset's network narrowed to this ResNet width (`RetinaFaceConfig::shrunk`): a
    /// CPU-sized trial of a ResNet50 preset. `None`: the preset as it is.
    #[serde(default)]
    pub width: Option<f32>,
    pub out: PathBuf,
    pub epochs: u32,
    pub batch: usize,
    pub image_size: u32,
    pub lr_schedule: String,
    /// One device, or several that train data-parallel (`wgpu:0,wgpu:1`).
    #[serde(with = "device_text")]
    pub device: DeviceSet,
    pub backbone_weights: Option<PathBuf>,
    /// Stop after this many steps in total (for quick runs); the checkpoint is written.
    pub max_steps: Option<u64>,
    /// The anchor matching and loss setup by name (`LOSS_SETUPS`); `None`: the default,
    /// Pytorch_Retinaface's (`LossSetup::default`).
    #[serde(default)]
    pub loss: Option<String>,
    /// The box and landmark codec's variance instead of the preset's (saved in the model file, so
    /// detection decodes with it): `(1, 1)` is the report's own formulas.
    #[serde(default)]
    pub variance: Option<Variance>,
    /// Validation AP every this many epochs (0: never).
    pub val_every: u32,
    pub seed: u64,
    pub workers: usize,
    pub augment: AugmentConfig,
}

mod device_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::DeviceSet;

    pub fn serialize<S: Serializer>(device: &DeviceSet, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&device.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceSet, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What the trainer reports; each is also a line of `metrics.jsonl` (tagged by `"event"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Started {
        epochs: u32,
        steps_per_epoch: usize,
        resumed_at_step: u64,
    },
    Step {
        step: u64,
        epoch: u32,
        /// The summed loss of all stages.
        loss: f32,
        /// Per stage: classification, boxes, landmarks.
        stages: Vec<StageTerms>,
        lr: f64,
        images_per_s: f32,
        eta_s: f32,
    },
    EpochEnd {
        epoch: u32,
        step: u64,
        mean_loss: f32,
    },
    Val {
        epoch: u32,
        step: u64,
        /// AP per setting, scored by the detector's stage (the last).
        ap: Vec<(String, f64)>,
        /// With the cascade: AP per setting scored by each stage, first stage first, so a run
        /// shows whether the cascade helps. Empty for single-stage models.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stages: Vec<Vec<(String, f64)>>,
    },
    Checkpoint {
        epoch: u32,
        step: u64,
        path: PathBuf,
    },
    Warning {
        message: String,
    },
    Error {
        message: String,
    },
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    Finished {
        step: u64,
        stopped: bool,
    },
}

impl TrainEvent {
    /// A validation event's APs as named series: the settings themselves for a single-stage model,
    /// `"<setting> · stage N"` per stage with the cascade (the CLI and the Train panel's curves).
    pub fn val_series(&self) -> Vec<(String, f64)> {
        match self {
            TrainEvent::Val { ap, stages, .. } if stages.is_empty() => ap.clone(),
            TrainEvent::Val { stages, .. } => stages
                .iter()
                .enumerate()
                .flat_map(|(i, aps)| aps.iter().map(move |(name, v)| (format!("{name} · stage {}", i + 1), *v)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageTerms {
    pub classification: f32,
    pub boxes: f32,
    pub landmarks: f32,
}

/// Commands to a running trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Stop,
}

/// The position a checkpoint holds (`state.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Epoch (1-based) the next step belongs to.
    pub epoch: u32,
    /// Batch index within that epoch of the next step.
    pub batch: usize,
    /// Steps done in total.
    pub step: u64,
    pub seed: u64,
    /// The checkpoint folder, relative to the run folder.
    pub checkpoint: String,
}

/// A running trainer.
pub struct TrainerHandle {
    pub events: Receiver<TrainEvent>,
    pub control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl TrainerHandle {
    /// Waits for the trainer thread to end.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// NaN/inf losses in a row that stop the run.
const MAX_BAD_STEPS: u32 = 5;

/// Starts training on a new thread. With `resume`, continues from `<out>/state.json`.
pub fn spawn(config: TrainConfig, resume: bool) -> TrainerHandle {
    let (events_tx, events) = unbounded();
    let (control, control_rx) = unbounded();
    let thread = std::thread::spawn(move || {
        let mut log = EventLog { sender: events_tx, file: None };
        if let Err(message) = run(&config, resume, &mut log, &control_rx) {
            log.send(TrainEvent::Error { message });
        }
    });
    TrainerHandle { events, control, thread: Some(thread) }
}

/// Sends events and appends them to `metrics.jsonl`.
struct EventLog {
    sender: Sender<TrainEvent>,
    file: Option<std::fs::File>,
}

impl EventLog {
    fn send(&mut self, event: TrainEvent) {
        if let (Some(file), Ok(line)) = (&mut self.file, serde_json::to_string(&event)) {
            let _ = writeln!(file, "{line}");
        }
        let _ = self.sender.send(event);
    }
}

fn run(config: &TrainConfig, resume: bool, log: &mut EventLog, control: &Receiver<Control>) -> Result<(), String> {
    std::fs::create_dir_all(&config.out).map_err(|e| format!("cannot create {}: {e}", config.out.display()))?;
    let metrics = config.out.join("metrics.jsonl");
    log.file = Some(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics)
            .map_err(|e| format!("cannot open {}: {e}", metrics.display()))?,
    );
    let config_json = serde_json::to_string_pretty(config).map_err(|e| e.to_string())?;
    crate::fsutil::write_atomic(&config.out.join("config.json"), config_json.as_bytes()).map_err(|e| e.to_string())?;

    let (dataset, _) = Dataset::open(&config.data).map_err(|e| e.to_string())?;
    let train =
        dataset.split(SplitKind::Train).ok_or_else(|| format!("{} has no train split", config.data.display()))?;
    let images = Arc::new(TrainImage::from_split(train));
    let steps_per_epoch = images.len() / config.batch.max(1);
    if steps_per_epoch == 0 {
        return Err(format!("the train split has {} images, fewer than one batch of {}", images.len(), config.batch));
    }
    let devices = config
        .device
        .devices()
        .iter()
        .map(|d| d.open().map(|device| device.autodiff()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let device = devices.first().cloned().ok_or("no training device given")?;
    let model_config = RetinaFaceConfig::preset(&config.preset).map_err(|e| e.to_string())?;
    let model_config = match config.width {
        Some(width) if !(width > 0.0 && width <= 1.0) => {
            return Err(format!("the network width must be in (0, 1], got {width}"));
        }
        Some(width) => model_config.shrunk(width),
        None => model_config,
    };
    let model_config = RetinaFaceConfig { variance: config.variance.unwrap_or(model_config.variance), ..model_config };
    model_config.validate().map_err(|e| e.to_string())?;
    let schedule = LrSchedule::preset(&config.lr_schedule).map_err(|e| e.to_string())?.rescaled(config.epochs);
    let setup = match &config.loss {
        Some(name) => LossSetup::preset(name)
            .ok_or_else(|| format!("unknown loss setup {name:?}; setups: {}", LOSS_SETUPS.join(", ")))?,
        None => LossSetup::default(),
    };

    let state_path = config.out.join("state.json");
    let (mut model, mut optim, mut state) = if resume && state_path.exists() {
        let state: RunState = serde_json::from_str(&std::fs::read_to_string(&state_path).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", state_path.display()))?;
        let dir = config.out.join(&state.checkpoint);
        let model = load_model(&dir.join("model.bpk"), &device).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(dir.join("optimizer.bin")).map_err(|e| e.to_string())?;
        let optim = sgd(0.9, 5e-4)
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| format!("cannot restore the optimiser: {e}"))?;
        (model, optim, state)
    } else {
        // The run's seed fixes the initial weights too, not only the data order and augmentation.
        device.seed(config.seed);
        let mut model = RetinaFace::new(&model_config, &device);
        if let Some(weights) = &config.backbone_weights {
            load_backbone(&mut model, weights).map_err(|e| e.to_string())?;
        }
        let state = RunState { epoch: 1, batch: 0, step: 0, seed: config.seed, checkpoint: String::new() };
        (model, sgd(0.9, 5e-4), state)
    };
    log.send(TrainEvent::Started { epochs: config.epochs, steps_per_epoch, resumed_at_step: state.step });

    let replicas = Replicas::new(devices, &model, config.image_size);
    let augment_config = AugmentConfig { size: config.image_size, ..config.augment.clone() };
    let total_steps = u64::from(config.epochs) * steps_per_epoch as u64;
    let mut bad_steps = 0u32;
    let started = Instant::now();
    let first_step = state.step;
    let mut stopped = false;
    'epochs: while state.epoch <= config.epochs {
        let epoch = state.epoch;
        let plan = LoaderPlan {
            batch: config.batch,
            seed: state.seed,
            epoch,
            first: state.batch,
            workers: config.workers,
            depth: 2,
        };
        let loader = EpochLoader::start(images.clone(), augment_config.clone(), plan);
        let mut epoch_loss = (0.0f64, 0usize);
        for (index, loaded) in loader {
            match poll_control(control, log, state.step) {
                Flow::Continue => {}
                Flow::Stop => {
                    stopped = true;
                    break 'epochs;
                }
            }
            let samples = match loaded {
                Ok(samples) => samples,
                Err(message) => {
                    log.send(TrainEvent::Warning { message: format!("batch {index} skipped: {message}") });
                    state.batch = index + 1;
                    continue;
                }
            };
            let lr = schedule.rate(epoch, index, steps_per_epoch);
            let output = replicas.step(&model, &samples, &setup)?;
            let loss = output.loss;
            state.batch = index + 1;
            let Some(grads) = output.grads else {
                bad_steps += 1;
                log.send(TrainEvent::Warning {
                    message: format!("step {}: loss is {loss}; batch skipped", state.step + 1),
                });
                if bad_steps >= MAX_BAD_STEPS {
                    return Err(format!(
                        "{MAX_BAD_STEPS} non-finite losses in a row: lower the learning rate or check the data"
                    ));
                }
                continue;
            };
            bad_steps = 0;
            model = optim.step(lr, model, grads);
            state.step += 1;
            epoch_loss = (epoch_loss.0 + f64::from(loss), epoch_loss.1 + 1);
            let elapsed = started.elapsed().as_secs_f32().max(1e-6);
            let done = (state.step - first_step) as f32;
            log.send(TrainEvent::Step {
                step: state.step,
                epoch,
                loss,
                stages: output.stages,
                lr,
                images_per_s: done * config.batch as f32 / elapsed,
                eta_s: (total_steps.saturating_sub(state.step)) as f32 * elapsed / done,
            });
            if config.max_steps.is_some_and(|max| state.step >= max) {
                stopped = true;
                break 'epochs;
            }
        }
        let mean_loss = if epoch_loss.1 > 0 { (epoch_loss.0 / epoch_loss.1 as f64) as f32 } else { f32::NAN };
        log.send(TrainEvent::EpochEnd { epoch, step: state.step, mean_loss });
        state.epoch += 1;
        state.batch = 0;
        recompute_statistics(&mut model, &images, &augment_config, config, epoch, replicas.main());
        checkpoint(config, &model, &optim, &mut state, log)?;
        if config.val_every > 0 && epoch % config.val_every == 0 {
            validate(&dataset, &model, epoch, state.step, log);
        }
    }
    if stopped {
        recompute_statistics(&mut model, &images, &augment_config, config, state.epoch, replicas.main());
        checkpoint(config, &model, &optim, &mut state, log)?;
    }
    save_model(&model.valid(), &config.out.join("model.bpk")).map_err(|e| e.to_string())?;
    log.send(TrainEvent::Finished { step: state.step, stopped });
    Ok(())
}

/// Batches whose statistics replace the batch norms' running averages at each epoch end.
const STATISTICS_BATCHES: usize = 16;

/// Recomputes the batch-norm statistics for the weights as they are at the end of `epoch`, on
/// augmented training batches (other draws than the epoch's own). The running averages lag
/// behind weights that are still moving; a detector read from them scores every anchor alike
/// (the report presets' AP ≈ 0.01 with a low training loss). Training itself uses batch
/// statistics, so this changes only what validation, checkpoints and the saved model see.
fn recompute_statistics(
    model: &mut RetinaFace,
    images: &Arc<Vec<TrainImage>>,
    augment: &AugmentConfig,
    config: &TrainConfig,
    epoch: u32,
    device: &Device,
) {
    let plan = LoaderPlan {
        batch: config.batch,
        seed: config.seed ^ 0x5ca1_ab1e,
        epoch,
        first: 0,
        workers: config.workers,
        depth: 2,
    };
    let input = model.config.input;
    let batches: Vec<Tensor<4>> = EpochLoader::start(images.clone(), augment.clone(), plan)
        .take(STATISTICS_BATCHES)
        .filter_map(|(_, loaded)| loaded.ok())
        .map(|samples| Batch::new(&samples, &input, device).images)
        .collect();
    model.recompute_batch_norm(batches);
}

enum Flow {
    Continue,
    Stop,
}

/// Applies pending commands; while paused, blocks until resumed or stopped.
fn poll_control(control: &Receiver<Control>, log: &mut EventLog, step: u64) -> Flow {
    let mut paused = false;
    loop {
        let command = if paused { control.recv().map_err(|_| TryRecvError::Disconnected) } else { control.try_recv() };
        match command {
            Ok(Control::Stop) => return Flow::Stop,
            Ok(Control::Pause) if !paused => {
                paused = true;
                log.send(TrainEvent::Paused { step });
            }
            Ok(Control::Resume) if paused => {
                paused = false;
                log.send(TrainEvent::Resumed { step });
            }
            Ok(_) => {}
            Err(TryRecvError::Empty) => return Flow::Continue,
            // The controller is gone: a paused run stops, a running one goes on.
            Err(TryRecvError::Disconnected) => return if paused { Flow::Stop } else { Flow::Continue },
        }
    }
}

/// Writes model + optimiser into a new folder, then points `state.json` at it (atomically), then
/// removes the previous folder: a kill at any moment leaves a complete checkpoint to resume from.
fn checkpoint(
    config: &TrainConfig,
    model: &RetinaFace,
    optim: &ModuleOptimizer,
    state: &mut RunState,
    log: &mut EventLog,
) -> Result<(), String> {
    let name = format!("checkpoint-{:08}", state.step);
    let dir = config.out.join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    save_model(model, &dir.join("model.bpk")).map_err(|e| e.to_string())?;
    let bytes = optim.into_bytes().map_err(|e| format!("cannot save the optimiser: {e}"))?;
    crate::fsutil::write_atomic(&dir.join("optimizer.bin"), &bytes).map_err(|e| e.to_string())?;
    let previous = std::mem::replace(&mut state.checkpoint, name);
    let json = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    crate::fsutil::write_atomic(&config.out.join("state.json"), json.as_bytes()).map_err(|e| e.to_string())?;
    if !previous.is_empty() && previous != state.checkpoint {
        let _ = std::fs::remove_dir_all(config.out.join(previous));
    }
    log.send(TrainEvent::Checkpoint { epoch: state.epoch.saturating_sub(1), step: state.step, path: dir });
    Ok(())
}

/// AP of the current model on the val split (one setting, "all"), with the evaluation settings.
fn validate(dataset: &Dataset, model: &RetinaFace, epoch: u32, step: u64, log: &mut EventLog) {
    let Some(val) = dataset.split(SplitKind::Val) else {
        log.send(TrainEvent::Warning { message: "no val split: validation skipped".into() });
        return;
    };
    let result = (|| -> Result<Vec<Vec<(String, f64)>>, String> {
        let gt = GroundTruth::from_split(val).map_err(|e| e.to_string())?;
        let inference = model.valid();
        let device = inference.devices().first().cloned().unwrap_or_else(Device::flex);
        let stages = inference.config.stages();
        let detector = Detector::new(inference, device);
        let images = EvalImage::from_split(val);
        let scoring = ScoringStage::all(stages);
        let mut skipped = Vec::new();
        let predictions = detect_images_per_stage(&detector, &images, &scoring, |event| {
            if let DetectProgress::Skipped(err) = event {
                skipped.push(err.to_string());
            }
            std::ops::ControlFlow::Continue(())
        })?;
        for message in skipped {
            log.send(TrainEvent::Warning { message: format!("validation image skipped: {message}") });
        }
        Ok(predictions
            .iter()
            .map(|p| {
                let report = evaluate(&gt, p, &EvalOptions::OFFICIAL);
                report.settings.iter().map(|s| (s.name.clone(), s.ap)).collect()
            })
            .collect())
    })();
    match result {
        Ok(mut per_stage) => {
            let ap = per_stage.last().cloned().unwrap_or_default();
            if per_stage.len() < 2 {
                per_stage.clear();
            }
            log.send(TrainEvent::Val { epoch, step, ap, stages: per_stage })
        }
        Err(message) => log.send(TrainEvent::Warning { message: format!("validation failed: {message}") }),
    }
}

/// Reads a run's events back (the studio shows runs started elsewhere from this file).
pub fn read_metrics(path: &Path) -> std::io::Result<Vec<TrainEvent>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};

    fn config(data: &Path, out: &Path) -> TrainConfig {
        TrainConfig {
            width: None,
            data: data.to_path_buf(),
            preset: "tiny".into(),
            out: out.to_path_buf(),
            epochs: 50,
            batch: 2,
            image_size: 96,
            lr_schedule: "paper".into(),
            device: DeviceSet::default(),
            backbone_weights: None,
            max_steps: None,
            loss: None,
            variance: None,
            val_every: 0,
            seed: 1,
            workers: 2,
            augment: AugmentConfig::default(),
        }
    }

    fn next_matching(handle: &TrainerHandle, wanted: impl Fn(&TrainEvent) -> bool) -> TrainEvent {
        loop {
            let event = handle.events.recv_timeout(std::time::Duration::from_secs(120)).expect("an event within 120 s");
            if let TrainEvent::Error { message } = &event {
                panic!("training failed: {message}");
            }
            if wanted(&event) {
                return event;
            }
        }
    }

    fn first_error(handle: &TrainerHandle) -> String {
        handle
            .events
            .iter()
            .find_map(|e| match e {
                TrainEvent::Error { message } => Some(message),
                _ => None,
            })
            .expect("an error event")
    }

    #[test]
    fn pause_resume_and_stop_are_obeyed_and_stop_writes_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        generate(&dir.path().join("data"), &SynthConfig::new(8, 2)).unwrap();
        let handle = spawn(config(&dir.path().join("data"), &dir.path().join("run")), false);
        next_matching(&handle, |e| matches!(e, TrainEvent::Step { .. }));
        handle.control.send(Control::Pause).unwrap();
        let paused_at = match next_matching(&handle, |e| matches!(e, TrainEvent::Paused { .. })) {
            TrainEvent::Paused { step } => step,
            _ => unreachable!(),
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(handle.events.try_iter().all(|e| !matches!(e, TrainEvent::Step { .. })), "no step while paused");
        handle.control.send(Control::Resume).unwrap();
        next_matching(&handle, |e| matches!(e, TrainEvent::Resumed { .. }));
        next_matching(&handle, |e| matches!(e, TrainEvent::Step { step, .. } if *step > paused_at));
        handle.control.send(Control::Stop).unwrap();
        next_matching(&handle, |e| matches!(e, TrainEvent::Checkpoint { .. }));
        match next_matching(&handle, |e| matches!(e, TrainEvent::Finished { .. })) {
            TrainEvent::Finished { stopped, .. } => assert!(stopped),
            _ => unreachable!(),
        }
        let events = read_metrics(&dir.path().join("run/metrics.jsonl")).unwrap();
        assert!(matches!(events.first(), Some(TrainEvent::Started { .. })));
        assert!(events.iter().any(|e| matches!(e, TrainEvent::Paused { .. })));
        assert!(dir.path().join("run/config.json").exists());
        handle.join();
    }

    #[test]
    fn a_named_loss_setup_trains_and_an_unknown_one_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        generate(&dir.path().join("data"), &SynthConfig::new(4, 2)).unwrap();
        let mut named = config(&dir.path().join("data"), &dir.path().join("run"));
        named.loss = Some("report".into());
        named.max_steps = Some(1);
        let handle = spawn(named, false);
        next_matching(&handle, |e| matches!(e, TrainEvent::Finished { .. }));
        handle.join();
        let saved: TrainConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/config.json")).unwrap()).unwrap();
        assert_eq!(saved.loss.as_deref(), Some("report"));

        let mut unknown = config(&dir.path().join("data"), &dir.path().join("run2"));
        unknown.loss = Some("focal".into());
        let handle = spawn(unknown, false);
        let message = first_error(&handle);
        assert!(message.contains("\"focal\"") && message.contains("pytorch-retinaface"), "{message}");
    }

    #[test]
    fn a_dataset_without_enough_images_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        generate(&dir.path().join("data"), &SynthConfig::new(1, 2)).unwrap();
        let handle = spawn(config(&dir.path().join("data"), &dir.path().join("run")), false);
        let message = first_error(&handle);
        assert!(message.contains("fewer than one batch"), "{message}");
    }
}
