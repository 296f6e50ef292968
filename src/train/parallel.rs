//! Data-parallel training over several devices with burn's multi-device primitives, the way
//! burn-train's multi-device strategy does it (optimisation on the main device): the model is
//! forked to every device, each replica runs forward and backward on its share of the batch on
//! its own thread, the gradients are moved to the main device and summed, and the optimiser
//! steps there. One device is the same code with one share.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use super::error::TrainError;
use super::run_folder::StageTerms;
use super::step::{Batch, LossSetup, anchor_tensor, batch_loss};
use crate::dataset::augment::Sample;
use crate::detect::DeviceReadError;
use crate::model::RetinaFace;

/// The training devices (the first is the main one) with their anchors for one input size.
pub struct Replicas {
    devices: Vec<Device>,
    anchors: Vec<Tensor<2>>,
}

/// One step's loss (summed over stages, weighted like a single batch) and the gradients on the
/// main device.
pub struct StepOutput {
    pub loss: f32,
    pub stages: Vec<StageTerms>,
    /// `None` when the loss is not finite: nothing to apply.
    pub grads: Option<GradientsParams>,
}

impl Replicas {
    /// `devices` must be autodiff devices; the first is the main device.
    pub fn new(devices: Vec<Device>, model: &RetinaFace, size: u32) -> Replicas {
        let anchors = devices.iter().map(|d| anchor_tensor(&model.config.anchors, size, size, d)).collect();
        Replicas { devices, anchors }
    }

    pub fn main(&self) -> &Device {
        &self.devices[0]
    }

    /// Loss and gradients of `samples`, split into one contiguous share per device (a batch
    /// smaller than the device count uses fewer devices). Each share's loss is weighted by its
    /// share of the images, so the summed gradient is that of the batch's mean loss.
    pub fn step(&self, model: &RetinaFace, samples: &[Sample], setup: &LossSetup) -> Result<StepOutput, TrainError> {
        let shares = split_evenly(samples.len(), self.devices.len());
        let total_images = samples.len().max(1) as f32;
        // The main replica runs on this thread: batch norm keeps its running statistics per
        // thread, and only the main model's statistics are kept (as in burn-train); running it
        // on a fresh thread each step would leave them behind on threads that no longer exist.
        let share = |i: usize, replica: RetinaFace| {
            let range = shares[i].clone();
            let weight = range.len() as f32 / total_images;
            replica_step(replica, &samples[range], &self.anchors[i], &self.devices[i], setup, weight)
        };
        let results: Vec<Result<ReplicaOutput, TrainError>> = std::thread::scope(|scope| {
            let others: Vec<_> = (1..shares.len())
                .map(|i| {
                    let replica = model.clone().fork(&self.devices[i]);
                    scope.spawn(move || share(i, replica))
                })
                .collect();
            let mut results = vec![share(0, model.clone())];
            results.extend(others.into_iter().map(|h| h.join().unwrap_or(Err(TrainError::ThreadPanicked))));
            results
        });
        let mut loss = 0.0f32;
        let mut stages: Vec<StageTerms> = Vec::new();
        let mut accumulator = GradientsAccumulator::<RetinaFace>::new();
        let mut finite = true;
        for result in results {
            let output = result?;
            loss += output.loss;
            if stages.is_empty() {
                stages = output
                    .stages
                    .iter()
                    .map(|_| StageTerms { classification: 0.0, boxes: 0.0, landmarks: 0.0 })
                    .collect();
            }
            for (sum, s) in stages.iter_mut().zip(&output.stages) {
                sum.classification += s.classification;
                sum.boxes += s.boxes;
                sum.landmarks += s.landmarks;
            }
            match output.grads {
                Some(grads) => accumulator.accumulate(model, grads.to_device(self.main(), model)),
                None => finite = false,
            }
        }
        let grads = (finite && loss.is_finite()).then(|| accumulator.grads());
        Ok(StepOutput { loss, stages, grads })
    }
}

struct ReplicaOutput {
    loss: f32,
    stages: Vec<StageTerms>,
    grads: Option<GradientsParams>,
}

/// Forward and backward of one share on its device; values already weighted.
fn replica_step(
    model: RetinaFace,
    samples: &[Sample],
    anchors: &Tensor<2>,
    device: &Device,
    setup: &LossSetup,
    weight: f32,
) -> Result<ReplicaOutput, TrainError> {
    let batch = Batch::new(samples, &model.config.input, device);
    let (total, losses) = batch_loss(&model, &batch, anchors, setup);
    let read = |t: &Tensor<1>| {
        t.clone().try_into_vec_as::<f32>().map(|v| v[0] * weight).map_err(|e| DeviceReadError(e.to_string()))
    };
    let loss = read(&total)?;
    let stages = losses
        .iter()
        .map(|s| {
            Ok(StageTerms {
                classification: read(&s.classification)?,
                boxes: read(&s.boxes)?,
                landmarks: read(&s.landmarks)?,
            })
        })
        .collect::<Result<Vec<_>, DeviceReadError>>()?;
    let grads = loss.is_finite().then(|| GradientsParams::from_grads((total * weight).backward(), &model));
    Ok(ReplicaOutput { loss, stages, grads })
}

/// `n` items in `parts` contiguous ranges whose sizes differ by at most one, none empty.
fn split_evenly(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .filter(|r| !r.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};
    use crate::dataset::{Dataset, SplitKind};
    use crate::model::RetinaFaceConfig;
    use crate::train::{OptimizerConfig, TrainImage, sgd};

    #[test]
    fn shares_are_even_and_cover_everything() {
        assert_eq!(split_evenly(5, 2), vec![0..3, 3..5]);
        assert_eq!(split_evenly(2, 4), vec![0..1, 1..2]);
        assert_eq!(split_evenly(8, 1), vec![0..8]);
    }

    fn sample(size: u32) -> Sample {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(2, 9)).unwrap();
        let (dataset, _) = Dataset::open(dir.path()).unwrap();
        let images = TrainImage::from_split(dataset.split(SplitKind::Train).unwrap());
        let config = crate::dataset::augment::AugmentConfig::default();
        let photo = crate::detect::load_image(&images[0].path).unwrap();
        let original = Sample { image: photo, faces: images[0].faces.clone() };
        crate::dataset::augment::augment(
            &original,
            size,
            &config,
            &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(5),
        )
    }

    /// Two replicas, each given one copy of the same image, must produce exactly the gradient of
    /// one device given both copies: the shares' weighted gradients add up to the batch's.
    #[test]
    fn two_replicas_give_the_gradient_of_the_whole_batch() {
        let device = Device::flex().autodiff();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let model = RetinaFace::new(&config, &device);
        let setup = LossSetup::default();
        let s = sample(64);
        let batch = [s.clone(), s];
        let one = Replicas::new(vec![device.clone()], &model, 64).step(&model, &batch, &setup).unwrap();
        let two = Replicas::new(vec![device.clone(), device.clone()], &model, 64).step(&model, &batch, &setup).unwrap();
        assert!((one.loss - two.loss).abs() <= 1e-4 * one.loss.abs(), "{} vs {}", one.loss, two.loss);
        // Plain SGD turns each gradient into a weight change; the two updated models
        // must then compute the same thing. Compared in training mode (batch statistics): a
        // fresh network's running statistics can blow inference outputs up to 1e14, where float
        // noise alone exceeds any tolerance.
        let step = |grads| sgd(0.0, 0.0).step(0.01, model.clone(), grads);
        let (a, b) = (step(one.grads.unwrap()), step(two.grads.unwrap()));
        let input = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Default, &device);
        let base = model.forward(input.clone()).last().logits.clone();
        let (out_a, out_b) = (a.forward(input.clone()).last().logits.clone(), b.forward(input).last().logits.clone());
        let moved = (out_a.clone() - base).abs().max().into_scalar::<f32>();
        let diff = (out_a - out_b).abs().max().into_scalar::<f32>();
        assert!(moved > 1e-4, "the step changed nothing ({moved})");
        // OHEM ranks negatives whose losses tie exactly at initialisation (flat padding); which
        // of the tied ones a batch of two or two batches of one pick may differ, so the updates
        // agree closely but not to float precision. A wrong share weight would be off by 2×.
        assert!(diff <= 0.2 * moved, "two replicas differ by {diff} (the step moved outputs by {moved})");
    }

    /// Batch norm's running statistics are kept per thread: steps through `Replicas` on one
    /// device must leave the model exactly as plain steps on this thread do (a replica on a
    /// fresh thread each step once left inference with stale statistics and AP 0).
    #[test]
    fn steps_on_one_device_keep_the_running_statistics() {
        let device = Device::flex().autodiff();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let setup = LossSetup::default();
        let start = RetinaFace::new(&config, &device);
        let batch = [sample(64)];
        let replicas = Replicas::new(vec![device.clone()], &start, 64);
        let anchors = anchor_tensor(&config.anchors, 64, 64, &device);
        let (mut a, mut b) = (start.clone(), start);
        let (mut optim_a, mut optim_b) = (OptimizerConfig::default().build(), OptimizerConfig::default().build());
        for _ in 0..3 {
            let grads = replicas.step(&a, &batch, &setup).unwrap().grads.unwrap();
            a = optim_a.step(0.01, a, grads);
            let tensors = Batch::new(&batch, &config.input, &device);
            let (total, _) = batch_loss(&b, &tensors, &anchors, &setup);
            let grads = GradientsParams::from_grads(total.backward(), &b);
            b = optim_b.step(0.01, b, grads);
        }
        let input = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Default, &Device::flex());
        let out_a = a.valid().forward(input.clone()).last().logits.clone();
        let out_b = b.valid().forward(input).last().logits.clone();
        let diff = (out_a - out_b).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-4, "inference differs by {diff}");
    }
}
