//! Running a detector over a set of evaluation images: what `eval --weights`, the trainer's
//! validation and the studio's Evaluate panel share.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::dataset::Split;
use crate::detect::{DetectOptions, Detection, Detector, InputSize, ScoringStage, load_image};
use crate::eval::{Detection as EvalDetection, GroundTruth, Predictions};

/// An image of a ground truth: how the evaluation names it and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalImage {
    pub event: String,
    pub name: String,
    pub path: PathBuf,
}

impl EvalImage {
    /// The images of `gt` under `images`, laid out as WIDER does: `<images>/<event>/<name>.jpg`.
    pub fn list(gt: &GroundTruth, images: &Path) -> Vec<EvalImage> {
        gt.images()
            .iter()
            .map(|image| EvalImage {
                event: image.event.clone(),
                name: image.name.clone(),
                path: images.join(&image.event).join(format!("{}.jpg", image.name)),
            })
            .collect()
    }
}

impl EvalImage {
    /// The images of a dataset split, named as its ground truth ([`GroundTruth::from_split`]) names them.
    pub fn from_split(split: &Split) -> Vec<EvalImage> {
        split
            .images
            .iter()
            .map(|image| EvalImage {
                event: image.event().into(),
                name: image.stem().into(),
                path: split.image_path(image),
            })
            .collect()
    }
}

/// What happened to one image, for a progress display.
pub enum DetectProgress<'a> {
    Done,
    Skipped(&'a str),
}

/// Detector faces as the evaluation reads them (`x y w h score`).
pub(crate) fn to_eval_detections(faces: &[Detection]) -> Vec<EvalDetection> {
    faces
        .iter()
        .map(|d| {
            let [x, y, w, h] = d.bbox.to_xywh();
            EvalDetection { x: x as f64, y: y as f64, w: w as f64, h: h as f64, score: d.score as f64 }
        })
        .collect()
}

/// Detects faces in every image with the evaluation settings at the original size (the protocol).
/// An image that cannot be read is reported through `progress` and left without predictions,
/// which the evaluation counts as a missing file. `progress` breaks to cancel (an error).
pub fn detect_images(
    detector: &Detector,
    images: &[EvalImage],
    progress: impl FnMut(DetectProgress) -> ControlFlow<()>,
) -> Result<Predictions, String> {
    Ok(detect_images_per_stage(detector, images, &[detector.stage()], progress)?.pop().unwrap_or_default())
}

/// [`detect_images`] scored by each of `stages` (one network run per image): one set of
/// predictions per stage, in the order asked.
pub fn detect_images_per_stage(
    detector: &Detector,
    images: &[EvalImage],
    stages: &[ScoringStage],
    mut progress: impl FnMut(DetectProgress) -> ControlFlow<()>,
) -> Result<Vec<Predictions>, String> {
    let cancelled = || "cancelled".to_string();
    let options = DetectOptions::EVALUATION;
    let mut predictions: Vec<Predictions> = stages.iter().map(|_| Predictions::new()).collect();
    for image in images {
        let photo = match load_image(&image.path) {
            Ok(photo) => photo,
            Err(err) => {
                if progress(DetectProgress::Skipped(&err.to_string())).is_break() {
                    return Err(cancelled());
                }
                continue;
            }
        };
        let per_stage =
            detector.detect_stages(&photo, InputSize::Original, &options, stages).map_err(|e| e.to_string())?;
        for (candidates, predictions) in per_stage.iter().zip(&mut predictions) {
            let detections = to_eval_detections(&candidates.filter(&options));
            predictions.insert(image.event.as_str(), image.name.as_str(), detections).map_err(|e| e.to_string())?;
        }
        if progress(DetectProgress::Done).is_break() {
            return Err(cancelled());
        }
    }
    Ok(predictions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};
    use crate::dataset::{Dataset, SplitKind};
    use crate::model::{RetinaFace, RetinaFaceConfig};
    use burn::prelude::Device;

    #[test]
    fn every_image_is_listed_and_a_break_cancels() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(12, 4)).unwrap();
        let (gt, images) = GroundTruth::open(dir.path(), SplitKind::Val).unwrap();
        let list = EvalImage::list(&gt, &images.unwrap());
        assert_eq!(list.len(), 3);
        assert!(list.iter().all(|i| i.path.is_file()), "{list:?}");
        let (dataset, _) = Dataset::open(dir.path()).unwrap();
        assert_eq!(dataset.split(SplitKind::Val).unwrap().images.len(), 3);

        let device = Device::flex();
        let detector = Detector::new(RetinaFace::new(&RetinaFaceConfig::preset("tiny").unwrap(), &device), device);
        let mut calls = 0;
        let result = detect_images(&detector, &list, |_| {
            calls += 1;
            ControlFlow::Break(())
        });
        assert_eq!(result.unwrap_err(), "cancelled");
        assert_eq!(calls, 1);
        let all = detect_images(&detector, &list, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(all.image_count(), 3);
    }
}
