//! Detection: photos → preprocessing → network → faces with scores and landmarks → exports.

mod detector;
mod draw;
mod export;
mod image;
mod postprocess;

pub use detector::{Detector, DeviceReadError, HostOutputs, ScoringStage, StageError};
pub use draw::{LANDMARK_COLORS, annotate};
pub use export::{ExportFormat, ImageDetections};
pub use image::{
    IMAGE_EXTENSIONS, ImageError, InputSize, NetworkInput, collect_images, has_image_extension, load_image, normalize,
    preprocess,
};
pub use postprocess::{Candidates, DetectOptions, Detection, ImageFromInput, RawOutputs, anchor_from_corners};
