//! Geometry core: boxes, landmarks, IoU, anchors, the anchor codec and NMS.
//!
//! Conventions, pinned by the tests of each file:
//! - Boxes are `x1, y1, x2, y2` in pixels, f32, continuous coordinates (the `+1` pixel area
//!   convention exists only in [`nms`], to reproduce the reference detectors).
//! - Landmarks are five points: left eye, right eye, nose, left mouth corner, right mouth
//!   corner, "left" meaning image-left. A horizontal flip mirrors x and swaps the pairs.
//! - Anchors are `(cx, cy, w, h)`, ordered by level (finest stride first), row, column, size.
//! - The codec follows Pytorch_Retinaface, variance `(0.1, 0.2)` there, `(1, 1)` in the report.
//!
//! Nothing here depends on the rest of the crate.

mod anchors;
mod bbox;
mod codec;
mod error;
mod iou;
mod landmarks;
mod nms;
mod point;
#[cfg(test)]
mod reference_tests;

pub use anchors::{Anchor, AnchorLevel, AnchorSpec, FeatureMapSize};
pub use bbox::BBox;
pub use codec::{MAX_LOG_SCALE, Variance, decode_box, decode_landmarks, encode_box, encode_landmarks};
pub use error::GeometryError;
pub use iou::iou_matrix;
pub use landmarks::Landmarks;
pub use nms::{AreaConvention, nms};
pub use point::Point;
