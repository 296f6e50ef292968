//! Training: anchor assignment, the OHEM multi-task loss, learning-rate schedules and SGD.

mod assign;
mod loss;
mod schedule;
mod step;

pub use assign::{
    Assignment, FaceTargets, MatchThresholds, assign, corners, encode_boxes, encode_landmarks, iou_matrix,
};
pub use loss::{LossConfig, LossMasks, StageLoss, multibox_loss};
pub use schedule::{LrSchedule, SCHEDULES, ScheduleError, sgd};
pub use step::{Batch, LossSetup, anchor_tensor, batch_loss, decode_to_anchors};
