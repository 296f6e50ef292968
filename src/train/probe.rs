//! Controlled learning runs: a network trained on a fixed handful of images (letterboxed, no
//! augmentation, a fixed order) and measured on those same images, stage by stage. The
//! per-family overfit tests, the `presets_learn` benchmark and the diagnosis of a setup that does
//! not learn share it: a network that cannot fit a few images it sees every step cannot learn
//! faces, and one that fits them in training mode but not at inference has a train/inference
//! mismatch (the AP from the training-mode outputs is measured beside the detector's).

use std::collections::HashSet;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;

use super::config::OptimizerConfig;
use super::error::TrainError;
use super::run_folder::StageTerms;
use super::step::{Batch, LossSetup, anchor_tensor, batch_loss_detailed};
use crate::dataset::augment::{AugmentFace, Sample, letterbox};
use crate::dataset::synth::{SynthConfig, render_train_images};
use crate::detect::{
    CandidateLimits, Candidates, Detector, DeviceReadError, FaceFilter, HostOutputs, ImageFromInput, InputSize,
    RawOutputs, ScoringStage, to_predicted_boxes,
};
use crate::eval::{EvalOptions, FaceBox, GroundTruth, GtImage, Predictions, SettingSpec, evaluate};
use crate::geometry::Anchor;
use crate::model::{RetinaFace, RetinaFaceConfig};

/// How long and how fast a probe trains.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeConfig {
    /// Optimiser steps in all.
    pub steps: usize,
    /// Images per step; the samples are cycled through in a fixed order.
    pub batch: usize,
    /// The learning rate after the warm-up (SGD, momentum 0.9, weight decay 5e-4).
    pub lr: f64,
    /// Steps of linear warm-up from `lr / 100`.
    pub warmup: usize,
    /// Measure every this many steps, and after the last one.
    pub measure_every: usize,
    /// Recompute the batch-norm statistics on the images before each measurement, as the
    /// trainer does at each epoch end (off: the running averages, to see the lag they have).
    pub recompute_batch_norm: bool,
    /// Seeds the weight initialisation.
    pub seed: u64,
}

impl ProbeConfig {
    fn rate(&self, step: usize) -> f64 {
        if step < self.warmup {
            let start = self.lr / 100.0;
            start + (self.lr - start) * step as f64 / self.warmup as f64
        } else {
            self.lr
        }
    }
}

/// One head stage at one point of a probe.
#[derive(Clone, Debug, PartialEq)]
pub struct StageMeasure {
    /// AP over every face of the images, scored by this stage, batch norm on its running
    /// statistics: what the detector gets.
    pub ap: f64,
    /// The same from the training-mode outputs of the last pass over the images (batch norm on
    /// each batch's own statistics, weights up to one pass older).
    pub ap_training_mode: f64,
    /// Positive anchors per image (last pass).
    pub positives_per_image: f64,
    /// Fraction of the faces that no anchor learns (last pass).
    pub unmatched_faces: f64,
    /// Mean loss terms (last pass).
    pub terms: StageTerms,
}

/// The state of a probe after `step` steps.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbePoint {
    pub step: usize,
    pub seconds: f64,
    pub stages: Vec<StageMeasure>,
}

/// Sums of one stage's statistics over a pass.
#[derive(Default)]
struct PassSums {
    images: usize,
    faces: usize,
    positives: f64,
    unmatched: usize,
    terms: [f64; 3],
    steps: usize,
}

/// `count` synthetic training pictures (the `dataset synth` generator, in memory) letterboxed to
/// `size`², drawn about that size so that few faces shrink below what the anchors can learn.
pub fn synthetic_samples(count: usize, size: u32, seed: u64) -> Vec<Sample> {
    let config = SynthConfig {
        min_size: (size * 5 / 4, size),
        max_size: (size * 3 / 2, size * 5 / 4),
        ..SynthConfig::new(count, seed)
    };
    render_train_images(&config)
        .into_iter()
        .map(|(image, faces)| {
            let faces =
                faces.iter().map(|f| AugmentFace { bbox: f.bbox, landmarks: f.landmarks.map(|l| l.points) }).collect();
            letterbox(&Sample { image, faces }, size)
        })
        .collect()
}

/// The ground truth of `samples` (event `probe`, image `i`), every face counted.
pub fn samples_ground_truth(samples: &[Sample]) -> GroundTruth {
    let images: Vec<GtImage> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| GtImage {
            event: "probe".into(),
            name: i.to_string(),
            boxes: s
                .faces
                .iter()
                .map(|f| {
                    let [x, y, w, h] = f.bbox.to_xywh();
                    FaceBox { x: f64::from(x), y: f64::from(y), w: f64::from(w), h: f64::from(h) }
                })
                .collect(),
            details: Vec::new(),
        })
        .collect();
    let keep = samples.iter().map(|s| (0..s.faces.len()).collect()).collect();
    GroundTruth::new(images, vec![SettingSpec { name: crate::eval::ALL_FACES.into(), keep }])
        .unwrap_or_else(|e| unreachable!("sample boxes are finite and named uniquely: {e}"))
}

fn all_faces_ap(gt: &GroundTruth, predictions: &Predictions) -> f64 {
    evaluate(gt, predictions, &EvalOptions::OFFICIAL).settings.first().map_or(0.0, |s| s.ap)
}

/// Trains a fresh `config` network on `samples` (all of one size) on `device` (an autodiff device)
/// and measures it every `probe.measure_every` steps; `on_point` sees each measurement as it is made.
pub fn run_probe(
    config: &RetinaFaceConfig,
    setup: &LossSetup,
    samples: &[Sample],
    probe: &ProbeConfig,
    device: &Device,
    mut on_point: impl FnMut(&ProbePoint),
) -> Result<Vec<ProbePoint>, TrainError> {
    let invalid = |message: &str| TrainError::Invalid { field: "samples", message: message.into() };
    let first = samples.first().ok_or_else(|| invalid("a probe needs at least one image"))?;
    let (width, height) = first.image.dimensions();
    if samples.iter().any(|s| s.image.dimensions() != (width, height)) {
        return Err(invalid("the probe's images must share one size"));
    }
    fn read_error(e: impl std::fmt::Display) -> DeviceReadError {
        DeviceReadError(e.to_string())
    }
    let batch_size = probe.batch.clamp(1, samples.len());
    let batches: Vec<Batch> = samples.chunks(batch_size).map(|c| Batch::new(c, &config.input, device)).collect();
    let anchors = anchor_tensor(&config.anchors, width, height, device);
    let host_anchors: Vec<Anchor> = config.anchors.generate(width, height);
    let gt = samples_ground_truth(samples);
    let stages = config.stages();
    let (limits, filter) = (CandidateLimits::EVALUATION, FaceFilter::EVALUATION);
    let unit = ImageFromInput { scale_x: 1.0, scale_y: 1.0 };

    device.seed(probe.seed);
    let mut model = RetinaFace::new(config, device);
    let mut optim = OptimizerConfig::default().build();
    let started = Instant::now();
    let mut points = Vec::new();
    let mut sums: Vec<PassSums> = (0..stages).map(|_| PassSums::default()).collect();
    let mut training_predictions: Vec<Predictions> = (0..stages).map(|_| Predictions::new()).collect();
    let measure_every = probe.measure_every.max(1);
    for step in 0..probe.steps {
        let index = step % batches.len();
        let batch = &batches[index];
        let detail = batch_loss_detailed(&model, batch, &anchors, setup);
        // The last pass before a measurement is the one measured.
        let next_measure = ((step / measure_every) + 1) * measure_every;
        let measured_pass = next_measure.min(probe.steps) - step <= batches.len();
        if measured_pass {
            let host = HostOutputs::read(&detail.output, &ScoringStage::all(stages), width, height, limits.floor)?;
            for (stage, sum) in sums.iter_mut().enumerate() {
                let loss = &detail.stages[stage];
                let read = |t: &Tensor<1>| t.clone().try_into_vec_as::<f32>().map(|v| f64::from(v[0]));
                for (term, t) in sum.terms.iter_mut().zip([&loss.classification, &loss.boxes, &loss.landmarks]) {
                    *term += read(t).map_err(read_error)?;
                }
                sum.steps += 1;
                for (assignment, targets) in detail.assignments[stage].iter().zip(&batch.targets) {
                    let positive = assignment.positive.clone().int().try_into_vec_as::<i64>().map_err(read_error)?;
                    let face = assignment.face.clone().try_into_vec_as::<i64>().map_err(read_error)?;
                    let matched: HashSet<i64> =
                        positive.iter().zip(&face).filter(|(p, _)| **p != 0).map(|(_, f)| *f).collect();
                    sum.images += 1;
                    sum.faces += targets.len();
                    sum.positives += positive.iter().filter(|p| **p != 0).count() as f64;
                    sum.unmatched += targets.len().saturating_sub(matched.len());
                }
                for (k, out) in host[stage].iter().enumerate() {
                    let boxes: Vec<&[f32]> = out.boxes.iter().map(Vec::as_slice).collect();
                    let raw = RawOutputs {
                        anchors: &out.anchors,
                        scores: &out.scores,
                        boxes: &boxes,
                        landmarks: out.landmarks.as_deref(),
                    };
                    let faces =
                        Candidates::from_raw(&raw, &host_anchors, config.variance, unit, &limits).filter(&filter);
                    let image = index * batch_size + k;
                    training_predictions[stage].insert("probe", image.to_string(), to_predicted_boxes(&faces))?;
                }
            }
        }
        let loss = detail.total.clone().try_into_vec_as::<f32>().map_err(read_error)?[0];
        if loss.is_finite() {
            let grads = GradientsParams::from_grads(detail.total.backward(), &model);
            model = optim.step(probe.rate(step), model, grads);
        }
        let done = step + 1;
        if done % measure_every == 0 || done == probe.steps {
            if probe.recompute_batch_norm {
                model.recompute_batch_norm(batches.iter().map(|b| b.images.clone()));
            }
            let inference = model.valid();
            let inner = inference.devices().first().cloned().unwrap_or_else(Device::flex);
            let detector = Detector::new(inference, inner);
            let mut predictions: Vec<Predictions> = (0..stages).map(|_| Predictions::new()).collect();
            for (i, sample) in samples.iter().enumerate() {
                let per_stage =
                    detector.detect_stages(&sample.image, InputSize::Original, &limits, &ScoringStage::all(stages))?;
                for (candidates, predictions) in per_stage.iter().zip(&mut predictions) {
                    let faces = to_predicted_boxes(&candidates.filter(&filter));
                    predictions.insert("probe", i.to_string(), faces)?;
                }
            }
            let mut measures = Vec::with_capacity(stages);
            for (stage, sum) in sums.iter_mut().enumerate() {
                let steps = sum.steps.max(1) as f64;
                measures.push(StageMeasure {
                    ap: all_faces_ap(&gt, &predictions[stage]),
                    ap_training_mode: all_faces_ap(&gt, &training_predictions[stage]),
                    positives_per_image: sum.positives / sum.images.max(1) as f64,
                    unmatched_faces: sum.unmatched as f64 / sum.faces.max(1) as f64,
                    terms: StageTerms {
                        classification: (sum.terms[0] / steps) as f32,
                        boxes: (sum.terms[1] / steps) as f32,
                        landmarks: (sum.terms[2] / steps) as f32,
                    },
                });
                *sum = PassSums::default();
            }
            training_predictions = (0..stages).map(|_| Predictions::new()).collect();
            let point = ProbePoint { step: done, seconds: started.elapsed().as_secs_f64(), stages: measures };
            on_point(&point);
            points.push(point);
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trains `preset` (narrowed to width 1/8 where it is a ResNet) on four synthetic images and
    /// returns the AP the detector gets on them, per measurement (last stage).
    fn overfit(preset: &str, steps: usize) -> Vec<f64> {
        let config = RetinaFaceConfig::preset(preset).unwrap().shrunk(0.125);
        let setup = LossSetup::default();
        let samples = synthetic_samples(4, 96, 3);
        let probe = ProbeConfig {
            steps,
            batch: 4,
            lr: 0.01,
            warmup: 5,
            measure_every: steps / 3,
            recompute_batch_norm: true,
            seed: 1,
        };
        let points = run_probe(&config, &setup, &samples, &probe, &Device::flex().autodiff(), |p| {
            let aps: Vec<String> = p.stages.iter().map(|s| format!("{:.3}/{:.3}", s.ap, s.ap_training_mode)).collect();
            eprintln!("{preset} step {} ({:.1} s): AP {}", p.step, p.seconds, aps.join(" "));
        })
        .unwrap();
        points.iter().map(|p| p.stages.last().unwrap().ap).collect()
    }

    fn assert_learns(preset: &str, steps: usize) {
        let ap = overfit(preset, steps);
        let (first, last) = (ap[0], *ap.last().unwrap());
        // An unlearnable setup stays near 0 (the report presets were at 0.003–0.01). The first
        // measure is a third of the way in, not the untrained network: a fast start (paper-r50
        // was at 0.29 there once, with tests drawing weights in parallel) leaves less to gain.
        assert!(last >= 0.35 && last >= first + 0.1, "{preset} does not learn: AP {ap:?}");
    }

    /// The report's family with the cascade: both stages are scored (the detector reads the second).
    #[test]
    fn p2_p6_with_cascade_learns() {
        assert_learns("seed-full", 60);
    }

    #[test]
    fn p2_p6_without_cascade_learns() {
        assert_learns("seed-context-landmarks", 60);
    }

    #[test]
    fn p3_p5_mobilenet_learns() {
        assert_learns("pytorch-retinaface-mnet", 60);
    }

    #[test]
    fn deformable_context_learns() {
        assert_learns("paper-r50", 60);
    }
}
