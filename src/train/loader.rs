//! Batches assembled on worker threads ahead of the training step: each worker decodes and
//! augments every `workers`-th batch into its own bounded queue and the consumer takes them
//! round-robin, so the order and content depend only on the seed (never on thread timing) and
//! at most `workers × depth` batches are in memory.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, bounded};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::dataset::augment::{AugmentConfig, AugmentFace, Sample, augment};
use crate::dataset::{ImageEntry, Split};
use crate::detect::{ImageError, load_image};

/// One training image: where it is and its faces (degenerate boxes already left out).
#[derive(Clone, Debug)]
pub struct TrainImage {
    pub path: PathBuf,
    pub faces: Vec<AugmentFace>,
}

impl TrainImage {
    pub fn from_split(split: &Split) -> Vec<TrainImage> {
        split
            .images
            .iter()
            .map(|image: &ImageEntry| TrainImage {
                path: split.image_path(image),
                faces: image
                    .faces
                    .iter()
                    .filter(|f| !f.bbox.is_degenerate() && !f.is_invalid())
                    .map(|f| AugmentFace { bbox: f.bbox, landmarks: f.landmarks.map(|l| l.points) })
                    .collect(),
            })
            .collect()
    }
}

/// A batch of augmented samples, or the first of its images that could not be read.
pub type LoadedBatch = Result<Vec<Sample>, ImageError>;

/// The order of the images in `epoch`: a permutation seeded by (seed, epoch).
pub fn epoch_order(count: usize, seed: u64, epoch: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ (u64::from(epoch) << 32)));
    order
}

/// Streams the batches of one epoch starting at batch `first`.
pub struct EpochLoader {
    queues: Vec<Receiver<LoadedBatch>>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    first: usize,
    batches: usize,
}

/// Which batches of which epoch an `EpochLoader` makes, and with how many threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoaderPlan {
    /// Side of the square samples (the training size).
    pub size: u32,
    pub batch: usize,
    /// The run's seed: with the epoch it fixes the image order and every augmentation.
    pub seed: u64,
    /// 1-based.
    pub epoch: u32,
    /// The first batch to make (a resumed run starts mid-epoch).
    pub first: usize,
    pub workers: usize,
    /// Batches each worker may have ready ahead of the training step.
    pub depth: usize,
}

impl EpochLoader {
    pub fn start(
        images: std::sync::Arc<Vec<TrainImage>>,
        augment_config: AugmentConfig,
        plan: LoaderPlan,
    ) -> EpochLoader {
        let LoaderPlan { size, batch, seed, epoch, first, workers, depth } = plan;
        let order = std::sync::Arc::new(epoch_order(images.len(), seed, epoch));
        let batches = images.len() / batch.max(1);
        let workers_n = workers.max(1);
        let mut queues = Vec::new();
        let mut handles = Vec::new();
        for w in 0..workers_n {
            let (tx, rx) = bounded::<LoadedBatch>(depth.max(1));
            queues.push(rx);
            let (images, order, config) = (images.clone(), order.clone(), augment_config.clone());
            handles.push(std::thread::spawn(move || {
                let mut index = first + w;
                while index < batches {
                    let samples: LoadedBatch = (0..batch)
                        .map(|k| {
                            let i = order[index * batch + k];
                            let image = &images[i];
                            let photo = load_image(&image.path)?;
                            // Per-sample RNG: the same sample whatever thread made it.
                            let mut rng = ChaCha8Rng::seed_from_u64(
                                seed ^ (u64::from(epoch) << 40) ^ (i as u64).wrapping_mul(0x9e37_79b9),
                            );
                            Ok(augment(&Sample { image: photo, faces: image.faces.clone() }, size, &config, &mut rng))
                        })
                        .collect();
                    if tx.send(samples).is_err() {
                        return;
                    }
                    index += workers_n;
                }
            }));
        }
        EpochLoader { queues, workers: handles, next: first, first, batches }
    }
}

impl Iterator for EpochLoader {
    type Item = (usize, LoadedBatch);

    fn next(&mut self) -> Option<(usize, LoadedBatch)> {
        if self.next >= self.batches || self.queues.is_empty() {
            return None;
        }
        let queue = &self.queues[(self.next - self.first) % self.queues.len()];
        let batch = queue.recv().ok()?;
        let index = self.next;
        self.next += 1;
        Some((index, batch))
    }
}

impl Drop for EpochLoader {
    fn drop(&mut self) {
        // Closing the queues lets blocked workers finish; then wait for them.
        self.queues.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};
    use crate::dataset::{Dataset, SplitKind};

    fn batches(images: &std::sync::Arc<Vec<TrainImage>>, workers: usize, seed: u64) -> Vec<(usize, Vec<Sample>)> {
        let plan = LoaderPlan { size: 64, batch: 2, seed, epoch: 3, first: 1, workers, depth: 1 };
        EpochLoader::start(images.clone(), AugmentConfig::default(), plan)
            .map(|(index, batch)| (index, batch.expect("synthetic images decode")))
            .collect()
    }

    /// The promise of the module doc: the batches depend on the seed alone, not on how many
    /// threads make them or which finishes first.
    #[test]
    fn batches_depend_on_the_seed_not_on_the_threads() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(16, 3)).unwrap();
        let (dataset, _) = Dataset::open(dir.path()).unwrap();
        let images = std::sync::Arc::new(TrainImage::from_split(dataset.split(SplitKind::Train).unwrap()));
        let one = batches(&images, 1, 7);
        assert_eq!(one.first().map(|(i, _)| *i), Some(1), "starts at the plan's first batch");
        assert_eq!(one.len(), images.len() / 2 - 1);
        assert_eq!(batches(&images, 3, 7), one, "three workers make the same batches in the same order");
        assert_ne!(batches(&images, 3, 8), one, "another seed, other batches");
    }
}
