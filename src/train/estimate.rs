//! What a run's steps cost on its devices, measured before it starts: a few real training steps
//! (the loader's decoding and augmentation, forward, assignment, OHEM loss, backward, SGD) of the
//! run's network at its size and batch, so the Train panel can say what an epoch will take
//! instead of leaving the user to find out an hour in.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;

use super::config::TrainConfig;
use super::error::TrainError;
use super::loader::{EpochLoader, LoaderPlan, TrainImage};
use super::parallel::Replicas;
use super::probe::synthetic_samples;
use crate::dataset::augment::Sample;
use crate::dataset::{Dataset, SplitKind};
use crate::model::RetinaFace;

/// Steps run before the timing starts: a GPU compiles its kernels in the first.
pub const WARM_UP_STEPS: usize = 1;

/// The timing of a few steps of a run, and what an epoch of it costs.
#[derive(Clone, Debug, PartialEq)]
pub struct StepEstimate {
    /// The median of the timed steps, in seconds: from one step's loss to the next, as the
    /// trainer runs them (waiting for the loader included, when it is the slower).
    pub seconds_per_step: f64,
    pub timed_steps: usize,
    /// The training images of the dataset (what an epoch goes through); `None` when it could not
    /// be read.
    pub images: Option<usize>,
    /// The trainer's steps per epoch (`images / batch`).
    pub steps_per_epoch: Option<usize>,
    /// Why synthetic images of the run's size were timed instead of the dataset's; `None`: the
    /// dataset's own images were.
    pub synthetic: Option<String>,
    /// What each device is, the main one first.
    pub devices: Vec<String>,
    /// What the devices said on opening (`auto`'s GPU that did not start).
    pub notices: Vec<String>,
}

impl StepEstimate {
    /// Seconds of training an epoch takes (validation and checkpoints not counted).
    pub fn epoch_seconds(&self) -> Option<f64> {
        self.steps_per_epoch.map(|steps| steps as f64 * self.seconds_per_step)
    }
}

/// Times `steps` training steps (after [`WARM_UP_STEPS`]) of `config`'s network on its devices,
/// with fresh weights (the backbone weights do not change the cost and are not loaded), on the
/// train split of `config.data` through the run's loader, or on synthetic images of the run's
/// size when the dataset cannot be read. `on_step` hears the steps done so far
/// (`WARM_UP_STEPS + steps` in all) and stops the measurement with `Break`
/// ([`TrainError::Cancelled`]). Nothing is written.
pub fn estimate_step_seconds(
    config: &TrainConfig,
    steps: usize,
    mut on_step: impl FnMut(usize) -> ControlFlow<()>,
) -> Result<StepEstimate, TrainError> {
    let resolved = config.resolve()?;
    let steps = steps.max(1);
    let opened = config.device.devices().iter().map(|d| d.open()).collect::<Result<Vec<_>, _>>()?;
    let devices: Vec<String> = opened.iter().map(|o| o.label.clone()).collect();
    let notices: Vec<String> = opened.iter().filter_map(|o| o.notice.clone()).collect();
    let autodiff: Vec<Device> = opened.into_iter().map(|o| o.device.autodiff()).collect();
    let mut model = RetinaFace::new(&resolved.model, &autodiff[0]);
    let mut optim = config.optimizer.build();
    let replicas = Replicas::new(autodiff, &model, config.image_size);

    let (mut batches, images, mut synthetic) = Batches::open(config);
    let steps_per_epoch = images.map(|n| n / config.batch);
    let total = WARM_UP_STEPS + steps;
    // Each loss read waits for the forward pass, which needs the previous update: the time
    // between two reads is one whole step on any device (the benchmarks time it so too).
    let mut reads = Vec::with_capacity(total);
    while reads.len() < total {
        let samples = batches.next(config, &mut synthetic);
        let output = replicas.step(&model, &samples, &resolved.setup)?;
        reads.push(Instant::now());
        if let Some(grads) = output.grads {
            let lr = resolved.schedule.rate(1, reads.len() - 1, steps_per_epoch.unwrap_or(total));
            model = optim.step(lr, model, grads);
        }
        if on_step(reads.len()).is_break() {
            return Err(TrainError::Cancelled);
        }
    }
    let mut times: Vec<f64> = reads[WARM_UP_STEPS - 1..].windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    times.sort_by(f64::total_cmp);
    Ok(StepEstimate {
        seconds_per_step: times[times.len() / 2],
        timed_steps: times.len(),
        images,
        steps_per_epoch,
        synthetic,
        devices,
        notices,
    })
}

/// Where the timed batches come from.
enum Batches {
    /// The run's loader over the train split, epoch after epoch (a small split is gone round
    /// again).
    Dataset { images: Arc<Vec<TrainImage>>, loader: EpochLoader, epoch: u32 },
    /// One batch of synthetic samples, used for every step.
    Synthetic(Vec<Sample>),
}

impl Batches {
    /// The dataset's loader and its image count, or synthetic batches and why.
    fn open(config: &TrainConfig) -> (Batches, Option<usize>, Option<String>) {
        match train_images(config) {
            Ok(images) => {
                let count = images.len();
                let loader = EpochLoader::start(images.clone(), config.augment.clone(), plan(config, 1));
                (Batches::Dataset { images, loader, epoch: 1 }, Some(count), None)
            }
            Err(why) => (Batches::synthetic(config), None, Some(why)),
        }
    }

    fn synthetic(config: &TrainConfig) -> Batches {
        Batches::Synthetic(synthetic_samples(config.batch, config.image_size, config.seed))
    }

    /// The next batch. An image of the dataset that cannot be read switches to synthetic
    /// batches, saying so in `synthetic`.
    fn next(&mut self, config: &TrainConfig, synthetic: &mut Option<String>) -> Vec<Sample> {
        loop {
            let unreadable = match self {
                Batches::Synthetic(samples) => return samples.clone(),
                Batches::Dataset { images, loader, epoch } => match loader.next() {
                    Some((_, Ok(samples))) => return samples,
                    Some((_, Err(err))) => err.to_string(),
                    None => {
                        *epoch += 1;
                        *loader = EpochLoader::start(images.clone(), config.augment.clone(), plan(config, *epoch));
                        continue;
                    }
                },
            };
            *synthetic = Some(format!("an image of the dataset cannot be read: {unreadable}"));
            *self = Batches::synthetic(config);
        }
    }
}

/// The train split's images, or why there is no batch to take from it.
fn train_images(config: &TrainConfig) -> Result<Arc<Vec<TrainImage>>, String> {
    let (dataset, _) = Dataset::open(&config.data).map_err(|e| format!("{}: {e}", config.data.display()))?;
    let split = dataset
        .split(SplitKind::Train)
        .ok_or_else(|| TrainError::MissingSplit { path: config.data.clone(), split: "train" }.to_string())?;
    let images = TrainImage::from_split(split);
    if images.len() < config.batch {
        return Err(TrainError::TooFewImages { images: images.len(), batch: config.batch }.to_string());
    }
    Ok(Arc::new(images))
}

fn plan(config: &TrainConfig, epoch: u32) -> LoaderPlan {
    LoaderPlan {
        size: config.image_size,
        batch: config.batch,
        seed: config.seed,
        epoch,
        first: 0,
        workers: config.workers,
        depth: 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};

    fn trial(data: &std::path::Path) -> TrainConfig {
        TrainConfig { workers: 1, ..TrainConfig::trial(data, data.join("never-written")) }
    }

    #[test]
    fn the_estimate_times_steps_of_the_datasets_images_and_scales_them_to_an_epoch() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(5, 3)).unwrap();
        let config = trial(dir.path());
        let mut heard = Vec::new();
        let estimate = estimate_step_seconds(&config, 2, |done| {
            heard.push(done);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(heard, [1, 2, 3], "the warm-up step, then the two timed ones");
        assert_eq!(estimate.synthetic, None, "the dataset's own images");
        assert_eq!((estimate.images, estimate.steps_per_epoch), (Some(5), Some(2)), "5 images, batch 2");
        assert_eq!(estimate.timed_steps, 2);
        assert!(estimate.seconds_per_step > 0.0 && estimate.seconds_per_step.is_finite(), "{estimate:?}");
        assert_eq!(estimate.epoch_seconds(), Some(2.0 * estimate.seconds_per_step));
        assert_eq!(estimate.devices.len(), 1, "the trial trains on the CPU alone");
        assert!(!config.out.exists(), "an estimate writes no run folder");
    }

    #[test]
    fn an_unreadable_dataset_is_timed_on_synthetic_images_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-dataset-here");
        let estimate = estimate_step_seconds(&trial(&missing), 1, |_| ControlFlow::Continue(())).unwrap();
        let why = estimate.synthetic.as_deref().expect("synthetic images were timed");
        assert!(why.contains("no-dataset-here"), "{why}");
        assert_eq!((estimate.images, estimate.epoch_seconds()), (None, None), "no epoch to scale to");
        assert!(estimate.seconds_per_step > 0.0);
    }

    #[test]
    fn a_stopped_estimate_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let result = estimate_step_seconds(&trial(&dir.path().join("none")), 3, |done| {
            if done == 1 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        assert!(matches!(result, Err(TrainError::Cancelled)), "{result:?}");
    }
}
