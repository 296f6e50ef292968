//! The trainer: runs on its own thread, reports through a `crossbeam-channel` of events, obeys a
//! control channel (pause / resume / stop), logs every event to the run folder and checkpoints
//! there every epoch and on stop (`run_folder`), so a run killed at any moment resumes from its
//! last checkpoint with the same step count and schedule.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};

use super::config::{Resolved, TrainConfig};
use super::error::{MAX_BAD_STEPS, TrainError};
use super::loader::{EpochLoader, LoaderPlan, TrainImage};
use super::parallel::Replicas;
use super::run_folder::{EventLog, RunFolder, RunState, TrainEvent};
use super::step::Batch;
use crate::dataset::augment::AugmentConfig;
use crate::dataset::{Dataset, SplitKind};
use crate::detect::{Detector, EvalImage, Outcome, ScoringStage, detect_images_per_stage};
use crate::eval::{EvalOptions, GroundTruth, evaluate};
use crate::model::{RetinaFace, RetinaFaceConfig, load_backbone};

/// Commands to a running trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Stop,
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

/// Checks `config` ([`TrainConfig::validate`]), then starts training on a new thread. With
/// `resume`, continues from the run folder's last checkpoint (if it has one). What fails after
/// the start (an unreadable dataset, a lost device) arrives as a [`TrainEvent::Error`].
pub fn spawn(config: TrainConfig, resume: bool) -> Result<TrainerHandle, TrainError> {
    let resolved = config.resolve()?;
    super::keep_freed_memory();
    if resume && !RunFolder::new(&config.out).has_checkpoint() {
        return Err(TrainError::NoCheckpoint { dir: config.out.clone() });
    }
    let (events_tx, events) = unbounded();
    let (control, control_rx) = unbounded();
    let out = config.out.clone();
    let thread = std::thread::Builder::new()
        .name("trainer".into())
        .spawn(move || {
            let mut log = EventLog::unwritten(events_tx);
            let outcome = catch_panic(|| run(&config, resolved, resume, &mut log, &control_rx));
            super::release_cached_memory();
            if let Err(message) = outcome {
                log.send(TrainEvent::Error { message });
            }
        })
        .map_err(TrainError::io("start the trainer thread for", out))?;
    Ok(TrainerHandle { events, control, thread: Some(thread) })
}

/// Runs `work`; its error, or a panic in it (a bug, or a library's on input it should have
/// refused), becomes the message of an error event: a crashed trainer is never a success.
fn catch_panic(work: impl FnOnce() -> Result<(), TrainError>) -> Result<(), String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(payload) => {
            Err(format!("the trainer stopped on an internal error: {}", crate::guard::panic_message(payload.as_ref())))
        }
    }
}

/// The model, optimiser and position a run starts from: its last checkpoint when resuming, else
/// fresh weights from the run's seed (and the backbone weights, if given). A checkpoint of
/// another network (the run's settings changed) is an error, never a silent fresh start.
fn start_or_resume(
    config: &TrainConfig,
    model_config: &RetinaFaceConfig,
    folder: &RunFolder,
    resume: bool,
    device: &Device,
) -> Result<(RetinaFace, ModuleOptimizer, RunState), TrainError> {
    if resume {
        let (model, optim, state) = folder.read_checkpoint(&config.optimizer, device)?;
        if model.config != *model_config {
            return Err(TrainError::OtherNetwork {
                path: folder.dir().join(&state.checkpoint),
                found: model.config.preset.clone(),
                expected: model_config.preset.clone(),
            });
        }
        return Ok((model, optim, state));
    }
    // The run's seed fixes the initial weights too, not only the data order and augmentation.
    device.seed(config.seed);
    let mut model = RetinaFace::new(model_config, device);
    if let Some(weights) = &config.backbone_weights {
        load_backbone(&mut model, weights)?;
    }
    Ok((model, config.optimizer.build(), RunState::start(config.seed)))
}

fn run(
    config: &TrainConfig,
    resolved: Resolved,
    resume: bool,
    log: &mut EventLog,
    control: &Receiver<Control>,
) -> Result<(), TrainError> {
    let folder = RunFolder::new(&config.out);
    folder.create(config)?;
    if resume {
        for path in folder.clean_leftovers() {
            log.send(TrainEvent::Warning {
                message: format!("removed {}, left by an interrupted run", path.display()),
            });
        }
    }
    log.append_to(&folder)?;

    let (dataset, _) = Dataset::open(&config.data)?;
    let train = dataset
        .split(SplitKind::Train)
        .ok_or_else(|| TrainError::MissingSplit { path: config.data.clone(), split: "train" })?;
    let images = Arc::new(TrainImage::from_split(train));
    let steps_per_epoch = images.len() / config.batch;
    if steps_per_epoch == 0 {
        return Err(TrainError::TooFewImages { images: images.len(), batch: config.batch });
    }
    let opened = config.device.devices().iter().map(|d| d.open()).collect::<Result<Vec<_>, _>>()?;
    // `auto`'s GPU that did not start: the run goes on on the CPU, and says so.
    for notice in opened.iter().filter_map(|o| o.notice.clone()) {
        log.send(TrainEvent::Warning { message: notice });
    }
    let labels: Vec<String> = opened.iter().map(|o| o.label.clone()).collect();
    let devices: Vec<Device> = opened.into_iter().map(|o| o.device.autodiff()).collect();
    let device = devices[0].clone();
    let (mut model, mut optim, mut state) = start_or_resume(config, &resolved.model, &folder, resume, &device)?;
    let (schedule, setup) = (resolved.schedule, resolved.setup);
    log.send(TrainEvent::Started {
        epochs: config.epochs,
        steps_per_epoch,
        resumed_at_step: state.step,
        devices: labels,
    });

    let replicas = Replicas::new(devices, &model, config.image_size);
    let augment_config = config.augment.clone();
    let total_steps = u64::from(config.epochs) * steps_per_epoch as u64;
    let mut bad_steps = 0u32;
    let started = Instant::now();
    let first_step = state.step;
    let mut stopped = false;
    'epochs: while state.epoch <= config.epochs {
        let epoch = state.epoch;
        let plan = LoaderPlan {
            size: config.image_size,
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
                    return Err(TrainError::Diverged);
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
        checkpoint(&folder, &model, &optim, &mut state, log)?;
        if config.val_every > 0 && epoch % config.val_every == 0 {
            validate(&dataset, &model, epoch, state.step, log);
        }
    }
    if stopped {
        recompute_statistics(&mut model, &images, &augment_config, config, state.epoch, replicas.main());
        checkpoint(&folder, &model, &optim, &mut state, log)?;
    }
    folder.write_model(&model.valid())?;
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
        size: config.image_size,
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

/// Checkpoints into the run folder and says so.
fn checkpoint(
    folder: &RunFolder,
    model: &RetinaFace,
    optim: &ModuleOptimizer,
    state: &mut RunState,
    log: &mut EventLog,
) -> Result<(), TrainError> {
    let path = folder.write_checkpoint(model, optim, state)?;
    log.send(TrainEvent::Checkpoint { epoch: state.epoch.saturating_sub(1), step: state.step, path });
    Ok(())
}

/// AP of the current model on the val split (one setting, "all"), with the evaluation settings.
fn validate(dataset: &Dataset, model: &RetinaFace, epoch: u32, step: u64, log: &mut EventLog) {
    let Some(val) = dataset.split(SplitKind::Val) else {
        log.send(TrainEvent::Warning { message: "no val split: validation skipped".into() });
        return;
    };
    let result = (|| -> Result<Vec<Vec<(String, f64)>>, TrainError> {
        let gt = GroundTruth::from_split(val)?;
        let inference = model.valid();
        let device = inference.devices().first().cloned().unwrap_or_else(Device::flex);
        let stages = inference.config.stages();
        let detector = Detector::new(inference, device);
        let images = EvalImage::from_split(val);
        let scoring = ScoringStage::all(stages);
        let mut skipped = Vec::new();
        let predictions = detect_images_per_stage(&detector, &images, &scoring, |outcome| {
            if let Outcome::Skipped { error, .. } = outcome {
                skipped.push(error.to_string());
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
        Err(err) => log.send(TrainEvent::Warning { message: format!("validation failed: {err}") }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};

    fn config(data: &Path, out: &Path) -> TrainConfig {
        TrainConfig { image_size: 96, ..TrainConfig::trial(data, out) }
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
        let handle = spawn(config(&dir.path().join("data"), &dir.path().join("run")), false).unwrap();
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
        let events = RunFolder::new(dir.path().join("run")).read_metrics().unwrap();
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
        let handle = spawn(named, false).unwrap();
        next_matching(&handle, |e| matches!(e, TrainEvent::Finished { .. }));
        handle.join();
        let saved: TrainConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/config.json")).unwrap()).unwrap();
        assert_eq!(saved.loss.as_deref(), Some("report"));

        let mut unknown = config(&dir.path().join("data"), &dir.path().join("run2"));
        unknown.loss = Some("focal".into());
        let message = spawn(unknown, false).err().expect("refused before the thread starts").to_string();
        assert!(message.contains("\"focal\"") && message.contains("pytorch-retinaface"), "{message}");
        assert!(!dir.path().join("run2").exists(), "nothing written for a refused config");
    }

    fn finish(config: TrainConfig, resume: bool) -> Result<(), String> {
        let handle = spawn(config, resume).map_err(|e| e.to_string())?;
        let mut error = None;
        for event in handle.events.iter() {
            if let TrainEvent::Error { message } = event {
                error = Some(message);
            }
        }
        handle.join();
        error.map_or(Ok(()), Err)
    }

    /// `--resume` says what it does: nothing to resume, a state file pointing outside the run, an
    /// optimiser of another network: errors naming the file, never a silent fresh start.
    #[test]
    fn resume_refuses_what_it_cannot_resume_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        generate(&data, &SynthConfig::new(4, 2)).unwrap();
        let one_step = |out: &str, width: Option<f32>| TrainConfig {
            max_steps: Some(1),
            width,
            ..config(&data, &dir.path().join(out))
        };
        let err = spawn(one_step("run", None), true).err().unwrap().to_string();
        assert!(err.contains("no checkpoint to resume"), "{err}");
        finish(one_step("run", None), false).unwrap();
        finish(one_step("other", Some(0.5)), false).unwrap();
        let run = RunFolder::new(dir.path().join("run"));
        let read_state = |folder: &RunFolder| -> RunState {
            serde_json::from_str(&std::fs::read_to_string(folder.state_path()).unwrap()).unwrap()
        };
        let resumed = TrainConfig { max_steps: Some(2), ..one_step("run", None) };
        finish(resumed.clone(), true).unwrap();
        let good = read_state(&run);
        assert_eq!(good.step, 2, "resumed from step 1");

        let escaping = RunState { checkpoint: "../other".into(), ..good.clone() };
        std::fs::write(run.state_path(), serde_json::to_string(&escaping).unwrap()).unwrap();
        let err = finish(resumed.clone(), true).unwrap_err();
        assert!(err.contains("state.json") && err.contains("not a checkpoint folder"), "{err}");

        std::fs::write(run.state_path(), serde_json::to_string(&good).unwrap()).unwrap();
        let other = RunFolder::new(dir.path().join("other"));
        let theirs = other.dir().join(read_state(&other).checkpoint).join("optimizer.bin");
        std::fs::copy(theirs, run.dir().join(&good.checkpoint).join("optimizer.bin")).unwrap();
        let err = finish(resumed, true).unwrap_err();
        assert!(err.contains("optimizer.bin") && err.contains("another run"), "{err}");
        std::fs::write(run.dir().join(&good.checkpoint).join("optimizer.bin"), b"\x00garbage").unwrap();
        let err = finish(TrainConfig { max_steps: Some(3), ..one_step("run", None) }, true).unwrap_err();
        assert!(err.contains("optimizer.bin"), "{err}");
    }

    #[test]
    fn a_panic_in_the_trainer_is_an_error_not_a_success() {
        let message = catch_panic(|| panic!("index out of bounds")).unwrap_err();
        assert!(message.contains("internal error") && message.contains("index out of bounds"), "{message}");
        assert_eq!(catch_panic(|| Ok(())), Ok(()));
        assert!(catch_panic(|| Err(TrainError::Diverged)).unwrap_err().contains("non-finite"));
    }

    #[test]
    fn a_dataset_without_enough_images_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        generate(&dir.path().join("data"), &SynthConfig::new(1, 2)).unwrap();
        let handle = spawn(config(&dir.path().join("data"), &dir.path().join("run")), false).unwrap();
        let message = first_error(&handle);
        assert!(message.contains("fewer than one batch"), "{message}");
    }
}
