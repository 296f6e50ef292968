//! The run folder's format, read and written only here: `config.json` (the [`TrainConfig`]),
//! `metrics.jsonl` (one [`TrainEvent`] per line, appended as they happen), `state.json` (the
//! [`RunState`] of the last checkpoint), `checkpoint-<step>/` (model + optimiser), `model.bpk`
//! (the final model) and `name.txt` (the name the studio shows, when the run was renamed). The
//! trainer writes it; the CLI, the Train panel and studies read it back, also while it grows
//! ([`RunFile`]).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::prelude::*;
use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

use super::config::{OptimizerConfig, TrainConfig};
use super::error::TrainError;
use crate::fsutil::{fnv1a, write_atomic};
use crate::model::{RetinaFace, load_model, save_model};

/// What the trainer reports; each is also a line of `metrics.jsonl` (tagged by `"event"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Started {
        epochs: u32,
        steps_per_epoch: usize,
        resumed_at_step: u64,
        /// What each training device is ("NVIDIA H100 (Vulkan, discrete)", "CPU (flex, 16
        /// threads)"), the main one first. Absent in files written before it was recorded.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        devices: Vec<String>,
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
    /// FNV-1a of the checkpoint's `optimizer.bin`: a file changed or copied from another run is
    /// refused instead of restarting the momentum of the parameters it does not fit. `None` in
    /// checkpoints written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_hash: Option<u64>,
}

impl RunState {
    /// Before the first step of a run seeded with `seed`.
    pub fn start(seed: u64) -> RunState {
        RunState { epoch: 1, batch: 0, step: 0, seed, checkpoint: String::new(), optimizer_hash: None }
    }
}

/// The largest checkpoint part read back (`optimizer.bin`: twice a ResNet50's weights, ~220 MB).
const MAX_CHECKPOINT_PART_BYTES: u64 = 4 << 30;

/// The largest `name.txt` read back: a name is a few words.
const MAX_NAME_BYTES: u64 = 4096;

/// The folder of the checkpoint written at `step`.
fn checkpoint_name(step: u64) -> String {
    format!("checkpoint-{step:08}")
}

/// `checkpoint-<digits>`: the only names `state.json` may point at, so neither a resume nor the
/// removal of the previous checkpoint can reach outside the run folder.
fn is_checkpoint_name(name: &str) -> bool {
    name.strip_prefix("checkpoint-").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A run folder.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFolder {
    dir: PathBuf,
}

impl RunFolder {
    pub fn new(dir: impl Into<PathBuf>) -> RunFolder {
        RunFolder { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The final model (written when the run ends, stopped or not).
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.bpk")
    }

    /// The checkpoint folder written at `step` (its `model.bpk` holds the weights of that step).
    pub fn checkpoint_dir(&self, step: u64) -> PathBuf {
        self.dir.join(checkpoint_name(step))
    }

    /// The model of the checkpoint written at `step`.
    pub fn checkpoint_model_path(&self, step: u64) -> PathBuf {
        self.checkpoint_dir(step).join("model.bpk")
    }

    /// The run's [`TrainConfig`].
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `name.txt`: the run's display name. Renaming never moves the folder, which configs,
    /// `--resume` and studies name by its path.
    pub fn name_path(&self) -> PathBuf {
        self.dir.join("name.txt")
    }

    /// The display name the run was given, if any (its first line, trimmed).
    pub fn read_name(&self) -> Option<String> {
        let text = crate::fsutil::read_text_limited(&self.name_path(), MAX_NAME_BYTES).ok()?;
        let name = text.lines().next().unwrap_or_default().trim();
        (!name.is_empty()).then(|| name.to_string())
    }

    /// Gives the run a display name, atomically; an empty name removes it, so the folder's name
    /// shows again.
    pub fn write_name(&self, name: &str) -> Result<(), TrainError> {
        let path = self.name_path();
        let name = name.lines().next().unwrap_or_default().trim();
        if name.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io("remove", &path)(err)),
                _ => Ok(()),
            };
        }
        if name.len() as u64 > MAX_NAME_BYTES {
            let message = format!("a run's name takes at most {MAX_NAME_BYTES} bytes, got {}", name.len());
            return Err(TrainError::Invalid { field: "name", message });
        }
        write_atomic(&path, name.as_bytes()).map_err(TrainError::io("write", &path))
    }

    /// Whether this folder holds a run (what the Train panel lists).
    pub fn is_run(&self) -> bool {
        self.metrics_path().is_file()
    }

    /// Whether there is a checkpoint to resume from.
    pub fn has_checkpoint(&self) -> bool {
        self.state_path().is_file()
    }

    /// Creates the folder and writes `config.json`.
    pub fn create(&self, config: &TrainConfig) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.dir).map_err(TrainError::io("create", &self.dir))?;
        let path = self.config_path();
        let json = serde_json::to_string_pretty(config)
            .map_err(|e| TrainError::Corrupt { path: path.clone(), message: e.to_string() })?;
        write_atomic(&path, json.as_bytes()).map_err(TrainError::io("write", &path))
    }

    /// The events written so far (a line being written is left out).
    pub fn read_metrics(&self) -> std::io::Result<Vec<TrainEvent>> {
        let text = crate::fsutil::read_text_limited(&self.metrics_path(), 4 << 30)?;
        Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }

    /// Whether the run ended by itself (or at its step limit `max_steps`), leaving its model.
    pub fn is_finished(&self, max_steps: Option<u64>) -> bool {
        self.model_path().is_file()
            && self.read_metrics().is_ok_and(|events| {
                events.iter().rev().find_map(|e| match e {
                    TrainEvent::Finished { step, stopped } => Some(!stopped || max_steps.is_some_and(|m| *step >= m)),
                    TrainEvent::Started { .. } => Some(false),
                    _ => None,
                }) == Some(true)
            })
    }

    /// The last checkpoint: its position, model (on `device`) and optimiser.
    pub fn read_checkpoint(
        &self,
        optimizer: &OptimizerConfig,
        device: &Device,
    ) -> Result<(RetinaFace, ModuleOptimizer, RunState), TrainError> {
        let path = self.state_path();
        let text = crate::fsutil::read_text_limited(&path, 1 << 20).map_err(TrainError::io("read", &path))?;
        let state: RunState = serde_json::from_str(&text)
            .map_err(|e| TrainError::Corrupt { path: path.clone(), message: e.to_string() })?;
        if !is_checkpoint_name(&state.checkpoint) {
            let message =
                format!("names {:?}, not a checkpoint folder of this run (checkpoint-<step>)", state.checkpoint);
            return Err(TrainError::Corrupt { path, message });
        }
        let dir = self.dir.join(&state.checkpoint);
        let model = load_model(&dir.join("model.bpk"), device)?;
        let optim_path = dir.join("optimizer.bin");
        let bytes = crate::fsutil::read_limited(&optim_path, MAX_CHECKPOINT_PART_BYTES)
            .map_err(TrainError::io("read", &optim_path))?;
        let corrupt = |message: String| TrainError::Corrupt { path: optim_path.clone(), message };
        if state.optimizer_hash.is_some_and(|h| h != fnv1a(&bytes)) {
            return Err(corrupt(
                "is not the file this checkpoint wrote (changed, damaged or copied from another run)".into(),
            ));
        }
        let record = OptimizerRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| corrupt(format!("cannot restore the optimiser: {e}")))?;
        let saved = record.len();
        let optim = optimizer.build().load_record(record);
        // burn skips the state of parameters it cannot match (another network's file) and would
        // silently restart their momentum: every state saved must find its parameter.
        let restored = optim.to_record().len();
        if restored != saved {
            return Err(corrupt(format!(
                "only {restored} of the {saved} optimiser states fit this checkpoint's network: the file belongs \
                 to another run"
            )));
        }
        Ok((model, optim, state))
    }

    /// Writes model + optimiser into a new folder, then points `state.json` at it (atomically),
    /// then removes the previous folder: a kill at any moment leaves a complete checkpoint to
    /// resume from. Returns the new folder.
    pub fn write_checkpoint(
        &self,
        model: &RetinaFace,
        optim: &ModuleOptimizer,
        state: &mut RunState,
    ) -> Result<PathBuf, TrainError> {
        let name = checkpoint_name(state.step);
        let dir = self.dir.join(&name);
        std::fs::create_dir_all(&dir).map_err(TrainError::io("create", &dir))?;
        save_model(model, &self.checkpoint_model_path(state.step))?;
        let optim_path = dir.join("optimizer.bin");
        let bytes = optim.into_bytes().map_err(|e| TrainError::Corrupt {
            path: optim_path.clone(),
            message: format!("cannot save the optimiser: {e}"),
        })?;
        write_atomic(&optim_path, &bytes).map_err(TrainError::io("write", &optim_path))?;
        state.optimizer_hash = Some(fnv1a(&bytes));
        let previous = std::mem::replace(&mut state.checkpoint, name);
        let path = self.state_path();
        let json = serde_json::to_string_pretty(state)
            .map_err(|e| TrainError::Corrupt { path: path.clone(), message: e.to_string() })?;
        write_atomic(&path, json.as_bytes()).map_err(TrainError::io("write", &path))?;
        if is_checkpoint_name(&previous) && previous != state.checkpoint {
            let _ = std::fs::remove_dir_all(self.dir.join(previous));
        }
        Ok(dir)
    }

    /// Removes what a killed run can leave behind, inside this folder only: temporary files of
    /// interrupted atomic writes, and checkpoint folders `state.json` no longer points at (the
    /// previous one, when the kill came between the new `state.json` and its removal). Returns
    /// what it removed.
    pub fn clean_leftovers(&self) -> Vec<PathBuf> {
        let current = std::fs::read_to_string(self.state_path())
            .ok()
            .and_then(|t| serde_json::from_str::<RunState>(&t).ok())
            .map(|s| s.checkpoint)
            // Only a state that names a checkpoint that is there decides what is an orphan: a
            // damaged state.json must not cost the run its checkpoints.
            .filter(|c| is_checkpoint_name(c) && self.dir.join(c).is_dir());
        let mut removed = Vec::new();
        let entries = |dir: &Path| -> Vec<PathBuf> {
            std::fs::read_dir(dir).map_or_else(|_| Vec::new(), |e| e.filter_map(|e| e.ok().map(|e| e.path())).collect())
        };
        let is_temp = |path: &Path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') && n.contains(".tmp-"))
        };
        for path in entries(&self.dir) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if is_temp(&path) && std::fs::remove_file(&path).is_ok() {
                removed.push(path);
            } else if real_dir && is_checkpoint_name(&name) {
                if current.as_ref().is_some_and(|c| *c != name) {
                    if std::fs::remove_dir_all(&path).is_ok() {
                        removed.push(path);
                    }
                } else {
                    for inner in entries(&path) {
                        if is_temp(&inner) && std::fs::remove_file(&inner).is_ok() {
                            removed.push(inner);
                        }
                    }
                }
            }
        }
        removed
    }

    /// Writes the final model.
    pub fn write_model(&self, model: &RetinaFace) -> Result<(), TrainError> {
        Ok(save_model(model, &self.model_path())?)
    }
}

/// Sends events and appends them to `metrics.jsonl`.
pub struct EventLog {
    sender: Sender<TrainEvent>,
    file: Option<std::fs::File>,
}

impl EventLog {
    /// A log that only sends, until [`EventLog::append_to`] gives it a run folder.
    pub fn unwritten(sender: Sender<TrainEvent>) -> EventLog {
        EventLog { sender, file: None }
    }

    /// From now on, also appends every event to the folder's `metrics.jsonl`. A last line left
    /// half-written by a killed run is cut first, so the next event starts a line of its own.
    pub fn append_to(&mut self, folder: &RunFolder) -> Result<(), TrainError> {
        let path = folder.metrics_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(TrainError::io("open", &path))?;
        cut_partial_line(&file).map_err(TrainError::io("repair", &path))?;
        self.file = Some(file);
        Ok(())
    }

    /// Sends `event` and appends it as one line, in one write: a kill leaves whole lines and at
    /// most a partial last one (which the next run cuts).
    pub fn send(&mut self, event: TrainEvent) {
        if let (Some(file), Ok(mut line)) = (&mut self.file, serde_json::to_string(&event)) {
            line.push('\n');
            let _ = file.write_all(line.as_bytes()).and_then(|()| file.flush());
        }
        let _ = self.sender.send(event);
    }
}

/// Truncates `file` after its last newline (an empty file or one ending in a newline is left).
fn cut_partial_line(mut file: &std::fs::File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Look back in blocks: an event line is a few hundred bytes.
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
            }
            return Ok(());
        }
        end = start;
    }
    file.set_len(0)
}

/// Plot series, each a list of `[x, y]`.
pub type Series = BTreeMap<String, Vec<[f64; 2]>>;

/// The curves of one run, built from its events (live or read back from `metrics.jsonl`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurves {
    /// Loss terms by step: `total`, `s1 classification`, `s1 boxes`, … per head stage.
    pub losses: Series,
    pub lr: Vec<[f64; 2]>,
    pub images_per_s: Vec<[f64; 2]>,
    /// AP per setting, by epoch.
    pub ap: Series,
    pub epochs: u32,
    pub steps_per_epoch: usize,
    pub last_step: u64,
    pub epoch: u32,
    pub eta_s: f32,
    pub status: String,
    pub finished: bool,
    /// What the run trains on (`TrainEvent::Started`'s devices).
    pub devices: Vec<String>,
    /// The first step of each epoch, `(step, epoch)`, in order: which epoch a loss point is of.
    pub epoch_starts: Vec<(u64, u32)>,
    /// The step each epoch's validation ran at: the checkpoint of that step holds the weights
    /// that AP was measured on.
    pub val_steps: BTreeMap<u32, u64>,
}

impl RunCurves {
    pub fn push(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::Started { epochs, steps_per_epoch, resumed_at_step, devices } => {
                self.epochs = *epochs;
                self.steps_per_epoch = *steps_per_epoch;
                self.devices = devices.clone();
                self.finished = false;
                self.status =
                    if *resumed_at_step > 0 { format!("resumed at step {resumed_at_step}") } else { "started".into() };
            }
            TrainEvent::Step { step, epoch, loss, stages, lr, images_per_s, eta_s } => {
                let x = *step as f64;
                self.losses.entry("total".into()).or_default().push([x, *loss as f64]);
                for (i, s) in stages.iter().enumerate() {
                    for (name, value) in
                        [("classification", s.classification), ("boxes", s.boxes), ("landmarks", s.landmarks)]
                    {
                        self.losses.entry(format!("s{} {name}", i + 1)).or_default().push([x, value as f64]);
                    }
                }
                if self.epoch_starts.last().is_none_or(|&(_, e)| e != *epoch) {
                    self.epoch_starts.push((*step, *epoch));
                }
                self.lr.push([x, *lr]);
                self.images_per_s.push([x, *images_per_s as f64]);
                self.last_step = *step;
                self.epoch = *epoch;
                self.eta_s = *eta_s;
                self.status = "training".into();
            }
            TrainEvent::Val { epoch, step, .. } => {
                self.val_steps.insert(*epoch, *step);
                for (series, value) in event.val_series() {
                    self.ap.entry(series).or_default().push([*epoch as f64, value]);
                }
            }
            TrainEvent::Paused { step } => self.status = format!("paused at step {step}"),
            TrainEvent::Resumed { .. } => self.status = "training".into(),
            TrainEvent::Error { message } => self.status = format!("error: {message}"),
            TrainEvent::Finished { step, stopped } => {
                self.finished = true;
                self.status =
                    if *stopped { format!("stopped at step {step}") } else { format!("finished at step {step}") };
            }
            TrainEvent::EpochEnd { .. } | TrainEvent::Checkpoint { .. } | TrainEvent::Warning { .. } => {}
        }
    }

    /// Fraction of the run done, when known.
    pub fn fraction(&self) -> Option<f32> {
        let total = self.epochs as u64 * self.steps_per_epoch as u64;
        (total > 0).then(|| (self.last_step as f32 / total as f32).min(1.0))
    }

    pub fn point_count(&self) -> usize {
        self.losses.get("total").map_or(0, Vec::len)
    }

    /// The epoch `step` was trained in, as the run's step events said.
    pub fn epoch_at(&self, step: u64) -> Option<u32> {
        let after = self.epoch_starts.partition_point(|&(first, _)| first <= step);
        after.checked_sub(1).map(|i| self.epoch_starts[i].1)
    }
}

/// A run folder followed through its `metrics.jsonl`, read incrementally as it grows.
pub struct RunFile {
    pub dir: PathBuf,
    pub curves: RunCurves,
    offset: u64,
    partial: String,
    pub overlay: bool,
    /// The name it was given (`name.txt`), read when the run is first listed.
    pub display_name: Option<String>,
}

impl RunFile {
    pub fn new(dir: PathBuf) -> RunFile {
        let display_name = RunFolder::new(&dir).read_name();
        RunFile { dir, curves: RunCurves::default(), offset: 0, partial: String::new(), overlay: false, display_name }
    }

    /// Its display name, else its folder's name.
    pub fn name(&self) -> String {
        self.display_name.clone().unwrap_or_else(|| self.folder_name())
    }

    pub fn folder_name(&self) -> String {
        self.dir.file_name().map_or_else(|| self.dir.display().to_string(), |n| n.to_string_lossy().into())
    }

    /// Renames the run (written to its folder at once; empty: back to the folder's name).
    pub fn rename(&mut self, name: &str) -> Result<(), TrainError> {
        let folder = RunFolder::new(&self.dir);
        folder.write_name(name)?;
        self.display_name = folder.read_name();
        Ok(())
    }

    /// Reads the lines appended since the last call.
    pub fn refresh(&mut self) -> std::io::Result<()> {
        let mut file = std::fs::File::open(RunFolder::new(&self.dir).metrics_path())?;
        let len = file.metadata()?.len();
        if len < self.offset {
            // Rewritten from scratch (a new run in the same folder).
            *self = RunFile {
                overlay: self.overlay,
                display_name: self.display_name.take(),
                ..RunFile::new(self.dir.clone())
            };
        }
        if len == self.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            if let Ok(event) = serde_json::from_str::<TrainEvent>(line.trim()) {
                self.curves.push(&event);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: u64) -> TrainEvent {
        TrainEvent::Step {
            step,
            epoch: 1,
            loss: 3.0,
            stages: vec![StageTerms { classification: 1.0, boxes: 1.5, landmarks: 0.5 }; 2],
            lr: 0.01,
            images_per_s: 20.0,
            eta_s: 60.0,
        }
    }

    #[test]
    fn curves_have_a_series_per_term_and_stage() {
        let mut curves = RunCurves::default();
        let devices = vec!["CPU (flex, 2 threads)".to_string()];
        curves.push(&TrainEvent::Started { epochs: 2, steps_per_epoch: 10, resumed_at_step: 0, devices });
        curves.push(&step(1));
        curves.push(&step(2));
        curves.push(&TrainEvent::Val { epoch: 1, step: 2, ap: vec![("all".into(), 0.5)], stages: Vec::new() });
        assert_eq!(curves.losses.len(), 7, "{:?}", curves.losses.keys().collect::<Vec<_>>());
        assert_eq!(curves.losses["s2 boxes"], vec![[1.0, 1.5], [2.0, 1.5]]);
        assert_eq!(curves.ap["all"], vec![[1.0, 0.5]]);
        assert_eq!(curves.fraction(), Some(0.1));
        assert_eq!(curves.devices, ["CPU (flex, 2 threads)"]);
        let stages = vec![vec![("all".into(), 0.4)], vec![("all".into(), 0.5)]];
        curves.push(&TrainEvent::Val { epoch: 2, step: 4, ap: vec![("all".into(), 0.5)], stages });
        assert_eq!(curves.ap["all · stage 1"], vec![[2.0, 0.4]], "with the cascade, one curve per stage");
        assert_eq!(curves.ap["all · stage 2"], vec![[2.0, 0.5]]);
    }

    #[test]
    fn curves_know_the_epoch_of_each_step_and_the_step_of_each_validation() {
        let mut curves = RunCurves::default();
        for (s, in_epoch) in [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)] {
            let mut event = step(s);
            if let TrainEvent::Step { epoch, .. } = &mut event {
                *epoch = in_epoch;
            }
            curves.push(&event);
        }
        curves.push(&TrainEvent::Val { epoch: 2, step: 4, ap: vec![("all".into(), 0.5)], stages: Vec::new() });
        assert_eq!(curves.epoch_starts, [(1, 1), (3, 2), (5, 3)]);
        let epochs: Vec<Option<u32>> = [0, 1, 2, 3, 4, 5, 9].map(|s| curves.epoch_at(s)).to_vec();
        assert_eq!(epochs, [None, Some(1), Some(1), Some(2), Some(2), Some(3), Some(3)]);
        assert_eq!(curves.val_steps.get(&2), Some(&4));
        let folder = RunFolder::new("runs/a");
        assert_eq!(folder.checkpoint_dir(4), Path::new("runs/a/checkpoint-00000004"), "the name write_checkpoint uses");
    }

    #[test]
    fn a_run_keeps_its_display_name_in_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = RunFile::new(dir.path().to_path_buf());
        assert_eq!(run.display_name, None);
        run.rename("  baseline, lr 0.01\nignored ").unwrap();
        assert_eq!(run.name(), "baseline, lr 0.01", "one line, trimmed");
        assert_eq!(RunFile::new(dir.path().to_path_buf()).name(), "baseline, lr 0.01", "read back by a new listing");
        assert!(run.rename(&"x".repeat(5000)).is_err(), "a name longer than it is read back is refused");
        assert_eq!(run.name(), "baseline, lr 0.01");
        run.rename("").unwrap();
        assert!(!RunFolder::new(dir.path()).name_path().exists(), "an empty name removes the file");
        assert_eq!(run.name(), run.folder_name());
    }

    #[test]
    fn a_growing_metrics_file_is_followed_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let line = |e: &TrainEvent| serde_json::to_string(e).unwrap() + "\n";
        std::fs::write(&path, line(&step(1)) + &line(&step(2))[..20]).unwrap();
        let mut run = RunFile::new(dir.path().to_path_buf());
        run.refresh().unwrap();
        assert_eq!(run.curves.point_count(), 1, "the half-written line waits");
        std::fs::write(&path, line(&step(1)) + &line(&step(2)) + &line(&step(3))).unwrap();
        run.refresh().unwrap();
        assert_eq!(run.curves.point_count(), 3);
        std::fs::write(&path, line(&step(7))).unwrap();
        run.refresh().unwrap();
        assert_eq!(run.curves.losses["total"], vec![[7.0, 3.0]], "a rewritten file starts over");
    }

    #[test]
    fn a_half_written_last_event_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let folder = RunFolder::new(dir.path());
        let whole = serde_json::to_string(&step(1)).unwrap() + "\n";
        std::fs::write(folder.metrics_path(), whole.clone() + &whole[..25]).unwrap();
        let (tx, _rx) = crossbeam_channel::unbounded();
        let mut log = EventLog::unwritten(tx);
        log.append_to(&folder).unwrap();
        log.send(step(2));
        let events = folder.read_metrics().unwrap();
        assert_eq!(events, vec![step(1), step(2)], "the partial line is gone, the new event whole");
    }

    #[test]
    fn leftovers_of_a_killed_run_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let folder = RunFolder::new(dir.path().join("run"));
        let root = folder.dir();
        for d in ["checkpoint-00000004", "checkpoint-00000008", "notes"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let mut state = RunState::start(1);
        state.checkpoint = "checkpoint-00000008".into();
        std::fs::write(folder.state_path(), serde_json::to_string(&state).unwrap()).unwrap();
        std::fs::write(root.join(".state.json.tmp-1-00ff"), b"x").unwrap();
        std::fs::write(root.join("checkpoint-00000008/.optimizer.bin.tmp-1-ab"), b"x").unwrap();
        std::fs::write(root.join("keep.txt"), b"mine").unwrap();
        let removed = folder.clean_leftovers();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(!root.join("checkpoint-00000004").exists() && root.join("checkpoint-00000008").exists());
        assert!(root.join("notes").exists() && root.join("keep.txt").exists());
        state.checkpoint = "../run".into();
        std::fs::write(folder.state_path(), serde_json::to_string(&state).unwrap()).unwrap();
        assert!(folder.clean_leftovers().is_empty(), "a bad state.json removes no checkpoint");
        assert!(root.join("checkpoint-00000008").exists());
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let folder = RunFolder::new(dir.path());
        std::fs::write(folder.state_path(), "{ not json").unwrap();
        let err = folder.read_checkpoint(&OptimizerConfig::default(), &Device::flex()).err().unwrap().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
