//! Training: anchor assignment, the OHEM multi-task loss, (to come) schedules and the trainer.

mod assign;
mod loss;

pub use assign::{
    Assignment, FaceTargets, MatchThresholds, assign, corners, encode_boxes, encode_landmarks, iou_matrix,
};
pub use loss::{LossConfig, LossMasks, StageLoss, multibox_loss};
