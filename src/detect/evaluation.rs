//! A detector over an evaluation's images, into predictions the protocol scores: what
//! `eval --weights`, the trainer's validation, the ablation study and the studio's Evaluate panel
//! share (all through [`run_over`]).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::detector::{Detector, ScoringStage};
use super::error::DetectError;
use super::pipeline::{Outcome, RunOptions, run_over};
use super::postprocess::{Detection, FaceFilter};
use super::tta::Tta;
use crate::dataset::Split;
use crate::eval::{GroundTruth, PredictedBox, Predictions};

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

/// Detector faces as the evaluation reads them (`x y w h score`).
pub fn to_predicted_boxes(faces: &[Detection]) -> Vec<PredictedBox> {
    faces
        .iter()
        .map(|d| {
            let [x, y, w, h] = d.bbox.to_xywh();
            PredictedBox {
                x: x as f64,
                y: y as f64,
                w: w as f64,
                h: h as f64,
                score: d.score as f64,
                landmarks: d.landmarks.map(|l| l.points.map(|p| [f64::from(p.x), f64::from(p.y)])),
            }
        })
        .collect()
}

/// Detects faces in every image with the evaluation settings at the original size (the protocol).
/// An image that cannot be read is reported through `progress` and left without predictions,
/// which the evaluation counts as a missing file. `progress` breaks to cancel.
pub fn detect_images(
    detector: &Detector,
    images: &[EvalImage],
    progress: impl FnMut(&Outcome) -> ControlFlow<()>,
) -> Result<Predictions, DetectError> {
    Ok(detect_images_per_stage(detector, images, &[detector.stage()], progress)?.pop().unwrap_or_default())
}

/// [`detect_images`] scored by each of `stages` (one network run per image): one set of
/// predictions per stage, in the order asked.
pub fn detect_images_per_stage(
    detector: &Detector,
    images: &[EvalImage],
    stages: &[ScoringStage],
    progress: impl FnMut(&Outcome) -> ControlFlow<()>,
) -> Result<Vec<Predictions>, DetectError> {
    let options = RunOptions { stages: stages.to_vec(), ..RunOptions::default() };
    detect_with(detector, images, &options, progress)
}

/// [`detect_images`] with test-time augmentation (`eval --tta`).
pub fn detect_images_tta(
    detector: &Detector,
    images: &[EvalImage],
    tta: &Tta,
    progress: impl FnMut(&Outcome) -> ControlFlow<()>,
) -> Result<Predictions, DetectError> {
    let options = RunOptions { stages: vec![detector.stage()], tta: Some(tta.clone()), ..RunOptions::default() };
    Ok(detect_with(detector, images, &options, progress)?.pop().unwrap_or_default())
}

/// One set of predictions per scoring stage of `options`, at the evaluation's filter.
fn detect_with(
    detector: &Detector,
    images: &[EvalImage],
    options: &RunOptions,
    mut progress: impl FnMut(&Outcome) -> ControlFlow<()>,
) -> Result<Vec<Predictions>, DetectError> {
    let filter = FaceFilter::EVALUATION;
    let stages = &options.stages;
    let paths: Vec<&Path> = images.iter().map(|i| i.path.as_path()).collect();
    let mut predictions: Vec<Predictions> = stages.iter().map(|_| Predictions::new()).collect();
    let mut failed = None;
    run_over(detector, &paths, options, |outcome| {
        if let Outcome::Detected(detected) = &outcome {
            let image = &images[detected.index];
            for (candidates, predictions) in detected.stages.iter().zip(&mut predictions) {
                let boxes = to_predicted_boxes(&candidates.filter(&filter));
                if let Err(err) = predictions.insert(image.event.as_str(), image.name.as_str(), boxes) {
                    failed = Some(err);
                    return ControlFlow::Break(());
                }
            }
        }
        progress(&outcome)
    })
    .map_err(|err| failed.take().map_or(err, DetectError::from))?;
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
        assert!(matches!(result, Err(DetectError::Cancelled)));
        assert_eq!(calls, 1);
        let all = detect_images(&detector, &list, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(all.image_count(), 3);
    }
}
