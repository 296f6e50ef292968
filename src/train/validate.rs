//! Running a detector over a set of evaluation images: what `eval --weights`, the trainer's
//! validation and the studio's Evaluate panel share.

use std::path::PathBuf;

use crate::detect::{DetectOptions, Detector, InputSize, load_image};
use crate::eval::{Detection as EvalDetection, Predictions};

/// An image of a ground truth: how the evaluation names it and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalImage {
    pub event: String,
    pub name: String,
    pub path: PathBuf,
}

/// What happened to one image, for a progress display.
pub enum DetectProgress<'a> {
    Done,
    Skipped(&'a str),
}

/// Detects faces in every image with the evaluation settings at the original size (the protocol).
/// An image that cannot be read is reported through `progress` and left without predictions,
/// which the evaluation counts as a missing file.
pub fn detect_images(
    detector: &Detector,
    images: &[EvalImage],
    mut progress: impl FnMut(DetectProgress),
) -> Result<Predictions, String> {
    let options = DetectOptions::EVALUATION;
    let mut predictions = Predictions::new();
    for image in images {
        let photo = match load_image(&image.path) {
            Ok(photo) => photo,
            Err(err) => {
                progress(DetectProgress::Skipped(&err.to_string()));
                continue;
            }
        };
        let faces = detector.detect(&photo, InputSize::Original, &options).map_err(|e| e.to_string())?.filter(&options);
        let detections = faces
            .iter()
            .map(|d| {
                let [x, y, w, h] = d.bbox.to_xywh();
                EvalDetection { x: x as f64, y: y as f64, w: w as f64, h: h as f64, score: d.score as f64 }
            })
            .collect();
        predictions.insert(image.event.as_str(), image.name.as_str(), detections).map_err(|e| e.to_string())?;
        progress(DetectProgress::Done);
    }
    Ok(predictions)
}
