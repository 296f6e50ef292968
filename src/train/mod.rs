//! Training: the run's config, anchor assignment, the OHEM multi-task loss, learning-rate
//! schedules, SGD, data loading, the background trainer and the run folder it writes, and the
//! timing of a few steps before a run starts.

mod allocator;
mod assign;
mod config;
mod error;
mod estimate;
mod loader;
mod loss;
mod parallel;
mod probe;
mod run_folder;
mod schedule;
mod step;
mod study;
mod trainer;
mod variant;

pub use allocator::{keep_freed_memory, release_cached_memory};
pub use assign::{
    Assignment, FaceTargets, MatchThresholds, assign, corners, encode_boxes, encode_landmarks, iou_matrix,
};
pub use config::{MIN_IMAGE_SIZE, OptimizerConfig, TrainConfig, default_workers};
pub use error::{MAX_BAD_STEPS, TrainError};
pub use estimate::{StepEstimate, WARM_UP_STEPS, estimate_step_seconds};
pub use loader::{EpochLoader, LoaderPlan, TrainImage};
pub use loss::{LossConfig, LossMasks, StageLoss, multibox_loss};
pub use parallel::{Replicas, StepOutput};
pub use probe::{ProbeConfig, ProbePoint, StageMeasure, run_probe, samples_ground_truth, synthetic_samples};
pub use run_folder::{EventLog, RunCurves, RunFile, RunFolder, RunState, Series, StageTerms, TrainEvent};
pub use schedule::{LrSchedule, SCHEDULES, ScheduleError, sgd};
pub use step::{
    Batch, BatchLoss, LOSS_SETUPS, LossSetup, anchor_tensor, batch_loss, batch_loss_detailed, decode_to_anchors,
};
pub use study::{ABLATION, AblationVariant, StudyConfig, StudyEvent, StudyHooks, StudyRow, markdown_table, run_study};
pub use trainer::{Control, TrainerHandle, spawn};
pub use variant::{Change, Variant, VariantError};
