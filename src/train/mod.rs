//! Training: anchor assignment, the OHEM multi-task loss, learning-rate schedules, SGD, data loading and the background trainer.

mod assign;
mod loader;
mod loss;
mod parallel;
mod probe;
mod schedule;
mod step;
mod study;
mod trainer;
mod validate;
mod variant;

pub use assign::{
    Assignment, FaceTargets, MatchThresholds, assign, corners, encode_boxes, encode_landmarks, iou_matrix,
};
pub use loader::{EpochLoader, LoaderPlan, TrainImage};
pub use loss::{LossConfig, LossMasks, StageLoss, multibox_loss};
pub use parallel::{Replicas, StepOutput};
pub use probe::{ProbeConfig, ProbePoint, StageMeasure, run_probe, samples_ground_truth, synthetic_samples};
pub use schedule::{LrSchedule, SCHEDULES, ScheduleError, sgd};
pub use step::{
    Batch, BatchLoss, LOSS_SETUPS, LossSetup, anchor_tensor, batch_loss, batch_loss_detailed, decode_to_anchors,
};
pub use study::{ABLATION, AblationVariant, StudyConfig, StudyEvent, StudyHooks, StudyRow, markdown_table, run_study};
pub use trainer::{Control, RunState, StageTerms, TrainConfig, TrainEvent, TrainerHandle, read_metrics, spawn};
pub use validate::{DetectProgress, EvalImage, detect_images, detect_images_per_stage};
pub use variant::{Change, Variant, VariantError};
