//! Why detection could not go on.

use crate::eval::PredictionError;
use crate::model::{DeviceError, ModelFileError};

/// The network could not run on a batch or hand its outputs back (mixed input sizes, a lost GPU,
/// an out-of-memory error).
#[derive(Debug, thiserror::Error)]
#[error("cannot run the network: {0}")]
pub struct DeviceReadError(pub String);

/// A head stage asked for that the model does not have.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("stage {asked} does not exist: this model has {stages} head stage(s) (1 = first, 2 = the cascade)")]
pub struct StageError {
    pub asked: usize,
    pub stages: usize,
}

/// Why detection could not go on (an unreadable image is not one: it is an `Outcome::Skipped`).
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The model file or checkpoint (its errors name the file; a bad preset name does not need to).
    #[error(transparent)]
    Weights(#[from] ModelFileError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Network(#[from] DeviceReadError),
    #[error(transparent)]
    Predictions(#[from] PredictionError),
    /// The caller's callback asked to stop.
    #[error("cancelled")]
    Cancelled,
}
