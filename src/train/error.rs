//! Why a training run, a study or a probe could not go on.

use std::path::PathBuf;

use crate::dataset::DatasetError;
use crate::detect::{DetectError, DeviceReadError};
use crate::eval::{GroundTruthError, PlotError, PredictionError};
use crate::model::{ConfigError, DeviceError, ImportError, ModelFileError};

use super::schedule::ScheduleError;

/// NaN/inf losses in a row that stop a run.
pub const MAX_BAD_STEPS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting out of range or naming nothing (checked before a run starts).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Preset(#[from] ConfigError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: there is no checkpoint to resume (no state.json); start the run without --resume", dir.display())]
    NoCheckpoint { dir: PathBuf },
    #[error("{}: the checkpoint holds a {found} network but this run trains {expected}; resume with the run's own settings or start a new run folder", path.display())]
    OtherNetwork { path: PathBuf, found: String, expected: String },
    /// A file the run wrote itself (`state.json`, `optimizer.bin`) that cannot be read back.
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{} has no {split} split", path.display())]
    MissingSplit { path: PathBuf, split: &'static str },
    #[error("the train split has {images} images, fewer than one batch of {batch}")]
    TooFewImages { images: usize, batch: usize },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error(transparent)]
    Backbone(#[from] ImportError),
    #[error(transparent)]
    Network(#[from] DeviceReadError),
    #[error("a training thread panicked")]
    ThreadPanicked,
    #[error("{MAX_BAD_STEPS} non-finite losses in a row: lower the learning rate or check the data")]
    Diverged,
    #[error(transparent)]
    GroundTruth(#[from] GroundTruthError),
    #[error(transparent)]
    Predictions(#[from] PredictionError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("another study (process {pid}) is running in {}", dir.display())]
    StudyRunning { pid: u32, dir: PathBuf },
    /// One variant of a study failed.
    #[error("{preset}: {message}")]
    Variant { preset: String, message: String },
    /// Some of a study's variants failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Variants(Vec<TrainError>),
    /// Stopped on request (a study resumes from its checkpoints).
    #[error("cancelled (a study resumes from its checkpoints)")]
    Cancelled,
}

impl TrainError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { action, path, source }
    }
}
