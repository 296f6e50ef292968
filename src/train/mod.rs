//! Training: anchor assignment, the OHEM multi-task loss, learning-rate schedules, SGD, data loading and the background trainer.

mod assign;
mod loader;
mod loss;
mod parallel;
mod schedule;
mod step;
mod trainer;
mod validate;

pub use assign::{
    Assignment, FaceTargets, MatchThresholds, assign, corners, encode_boxes, encode_landmarks, iou_matrix,
};
pub use loader::{EpochLoader, LoaderPlan, TrainImage};
pub use loss::{LossConfig, LossMasks, StageLoss, multibox_loss};
pub use parallel::{Replicas, StepOutput};
pub use schedule::{LrSchedule, SCHEDULES, ScheduleError, sgd};
pub use step::{Batch, LOSS_SETUPS, LossSetup, anchor_tensor, batch_loss, decode_to_anchors};
pub use trainer::{Control, RunState, StageTerms, TrainConfig, TrainEvent, TrainerHandle, read_metrics, spawn};
pub use validate::{DetectProgress, EvalImage, detect_images};
