//! Detection: photos → preprocessing → network → faces with scores and landmarks → exports.
//! [`run_over`] is the one loop that runs a model over many images.

mod detector;
mod draw;
mod error;
mod evaluation;
mod export;
mod image;
mod pipeline;
mod postprocess;
mod tta;

pub use detector::{Detector, HostOutputs, ScoringStage};
pub use draw::{LANDMARK_COLORS, annotate};
pub use error::{DetectError, DeviceReadError, StageError};
pub use evaluation::{EvalImage, detect_images, detect_images_per_stage, detect_images_tta, to_predicted_boxes};
pub use export::{ExportFormat, ImageDetections, output_clashes, output_path};
pub use image::{
    DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageError, InputSize, NetworkInput, check_pixels, collect_images,
    has_image_extension, load_image, max_pixels, normalize, preprocess, set_max_pixels, upright_size,
};
pub use pipeline::{Detected, Outcome, RunOptions, run_over};
pub use postprocess::{CandidateLimits, Candidates, Detection, FaceFilter, ImageFromInput, RawOutputs};
pub use tta::{Tta, detect_tta};
