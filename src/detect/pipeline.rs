//! "Run a model over many images", written once: decode, batch photos of one size, run the
//! network, decode the candidates of each scoring stage, hand each image's result to the caller
//! in input order. `detect`, `eval --weights`, the trainer's validation, the ablation study and
//! the studio's Detect and Evaluate panels all go through [`run_over`]; the caller's callback
//! reports progress and cancels.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::detector::{Detector, ScoringStage};
use super::error::DetectError;
use super::image::{ImageError, InputSize, check_pixels, load_image, preprocess};
use super::postprocess::{CandidateLimits, Candidates};
use super::tta::{Tta, detect_tta};

/// How the network runs over the images.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    /// The size each photo is given to the network at.
    pub size: InputSize,
    /// Consecutive photos of one size run through the network together, at most this many.
    pub batch: usize,
    pub limits: CandidateLimits,
    /// The head stages that score faces, one set of candidates each, from one network run.
    /// Empty: the detector's own stage.
    pub stages: Vec<ScoringStage>,
    /// Test-time augmentation: every photo at several scales and mirrored, the candidates
    /// merged (photos then run one at a time; `size` is ignored).
    pub tta: Option<Tta>,
}

impl Default for RunOptions {
    /// The evaluation protocol: original size, the evaluation's candidate limits, one photo at a
    /// time (WIDER's photos rarely share a size).
    fn default() -> Self {
        RunOptions {
            size: InputSize::Original,
            batch: 1,
            limits: CandidateLimits::EVALUATION,
            stages: Vec::new(),
            tta: None,
        }
    }
}

/// One image's candidates.
pub struct Detected {
    /// Its position in the list given to [`run_over`].
    pub index: usize,
    pub path: PathBuf,
    pub image: RgbImage,
    /// One set per scoring stage, in the order asked.
    pub stages: Vec<Candidates>,
}

impl Detected {
    /// The candidates of the (first) scoring stage.
    pub fn candidates(&self) -> &Candidates {
        &self.stages[0]
    }
}

/// What happened to one image, in input order.
pub enum Outcome {
    Detected(Detected),
    /// The image could not be read; detection goes on with the next.
    Skipped {
        index: usize,
        path: PathBuf,
        error: ImageError,
    },
}

impl Outcome {
    pub fn index(&self) -> usize {
        match self {
            Outcome::Detected(d) => d.index,
            Outcome::Skipped { index, .. } => *index,
        }
    }
}

/// Detects faces in every image of `paths`, calling `on_outcome` once per image in their order.
/// Returning `Break` from it cancels: the result is then [`DetectError::Cancelled`]. A network
/// failure ends the run with its error.
pub fn run_over<P: AsRef<Path>>(
    detector: &Detector,
    paths: &[P],
    options: &RunOptions,
    mut on_outcome: impl FnMut(Outcome) -> ControlFlow<()>,
) -> Result<(), DetectError> {
    let stages = if options.stages.is_empty() { vec![detector.stage()] } else { options.stages.clone() };
    let batch = options.batch.max(1);
    // Decoded photos waiting for a batch of their size.
    let mut pending: Vec<(usize, PathBuf, RgbImage)> = Vec::new();
    let flush = |pending: &mut Vec<(usize, PathBuf, RgbImage)>,
                 on_outcome: &mut dyn FnMut(Outcome) -> ControlFlow<()>|
     -> Result<(), DetectError> {
        if pending.is_empty() {
            return Ok(());
        }
        if let Some(tta) = &options.tta {
            for (index, path, image) in pending.drain(..) {
                let stages = detect_tta(detector, &image, tta, &options.limits, &stages)?;
                if on_outcome(Outcome::Detected(Detected { index, path, image, stages })).is_break() {
                    return Err(DetectError::Cancelled);
                }
            }
            return Ok(());
        }
        let inputs: Vec<_> =
            pending.iter().map(|(_, _, image)| preprocess(image, options.size, &detector.config().input)).collect();
        let outputs = detector.forward_stages(&inputs.iter().collect::<Vec<_>>(), &stages, options.limits.floor)?;
        for (k, (index, path, image)) in pending.drain(..).enumerate() {
            let stages =
                outputs.iter().map(|per_stage| detector.candidates(&per_stage[k], &inputs[k], &options.limits));
            let detected = Detected { index, path, image, stages: stages.collect() };
            if on_outcome(Outcome::Detected(detected)).is_break() {
                return Err(DetectError::Cancelled);
            }
        }
        Ok(())
    };
    for (index, path) in paths.iter().enumerate() {
        let path = path.as_ref().to_path_buf();
        let loaded = load_image(&path).and_then(|image| {
            // The network input, not only the photo, must fit the pixel limit (`--scale`; with
            // TTA each pass checks its own).
            let size = if options.tta.is_some() { InputSize::Original } else { options.size };
            let (w, h) = size.applied(image.width(), image.height());
            check_pixels(&path, w, h).map(|()| image)
        });
        match loaded {
            Ok(image) => {
                let same_size = pending.first().is_none_or(|(_, _, p)| p.dimensions() == image.dimensions());
                if !same_size || pending.len() >= batch {
                    flush(&mut pending, &mut on_outcome)?;
                }
                pending.push((index, path, image));
            }
            Err(error) => {
                // Earlier images first: outcomes keep the input order.
                flush(&mut pending, &mut on_outcome)?;
                if on_outcome(Outcome::Skipped { index, path, error }).is_break() {
                    return Err(DetectError::Cancelled);
                }
            }
        }
    }
    flush(&mut pending, &mut on_outcome)
}

#[cfg(test)]
mod tests {
    use burn::prelude::Device;

    use super::*;
    use crate::detect::FaceFilter;

    /// Every candidate, so that tiny score differences between batch shapes cannot reorder NMS.
    const NO_NMS: FaceFilter = FaceFilter { nms_threshold: 1.0, keep_top_k: usize::MAX, ..FaceFilter::EVALUATION };
    use crate::model::{RetinaFace, RetinaFaceConfig};

    fn detector() -> Detector {
        let device = Device::flex();
        Detector::new(RetinaFace::new(&RetinaFaceConfig::preset("tiny").unwrap(), &device), device)
    }

    /// Photos of two sizes, an unreadable file between them.
    fn photos(dir: &Path) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for (i, (w, h)) in [(64, 48), (64, 48), (0, 0), (64, 48), (48, 64)].into_iter().enumerate() {
            let path = dir.join(format!("{i}.png"));
            if w == 0 {
                std::fs::write(&path, b"not a png").unwrap();
            } else {
                RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 4) as u8, (i * 40) as u8]))
                    .save(&path)
                    .unwrap();
            }
            paths.push(path);
        }
        paths
    }

    #[test]
    fn batched_results_equal_one_at_a_time_in_input_order_with_skips_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let paths = photos(dir.path());
        let detector = detector();
        let collect = |batch: usize| {
            let mut seen = Vec::new();
            let options = RunOptions { batch, ..RunOptions::default() };
            run_over(&detector, &paths, &options, |outcome| {
                seen.push(match outcome {
                    Outcome::Detected(d) => (d.index, Some(d.candidates().filter(&NO_NMS))),
                    Outcome::Skipped { index, error, .. } => {
                        assert!(error.to_string().contains("2.png"), "{error}");
                        (index, None)
                    }
                });
                ControlFlow::Continue(())
            })
            .unwrap();
            seen
        };
        let single = collect(1);
        assert_eq!(single.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert!(single[2].1.is_none());
        let batched = collect(8);
        assert_eq!(batched.len(), single.len());
        for ((i, a), (_, b)) in single.iter().zip(&batched) {
            let (Some(a), Some(b)) = (a, b) else { continue };
            assert_eq!(a.len(), b.len(), "image {i}");
            for (x, y) in a.iter().zip(b) {
                assert!((x.score - y.score).abs() < 1e-4, "image {i}: {} vs {}", x.score, y.score);
            }
        }
    }

    #[test]
    fn a_break_cancels_and_every_stage_is_scored_from_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let paths = photos(dir.path());
        let detector = detector();
        let mut calls = 0;
        let result = run_over(&detector, &paths, &RunOptions::default(), |_| {
            calls += 1;
            ControlFlow::Break(())
        });
        assert!(matches!(result, Err(DetectError::Cancelled)));
        assert_eq!(calls, 1);
        let options = RunOptions { stages: ScoringStage::all(2), ..RunOptions::default() };
        run_over(&detector, &paths[..1], &options, |outcome| {
            let Outcome::Detected(d) = outcome else { panic!("0.png is readable") };
            assert_eq!(d.stages.len(), 2);
            ControlFlow::Continue(())
        })
        .unwrap();
    }
}
