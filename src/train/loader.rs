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
use crate::detect::load_image;

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

/// A batch of augmented samples, or the images that could not be read.
pub type LoadedBatch = Result<Vec<Sample>, String>;

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
        let LoaderPlan { batch, seed, epoch, first, workers, depth } = plan;
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
                            let photo = load_image(&image.path).map_err(|e| e.to_string())?;
                            // Per-sample RNG: the same sample whatever thread made it.
                            let mut rng = ChaCha8Rng::seed_from_u64(
                                seed ^ (u64::from(epoch) << 40) ^ (i as u64).wrapping_mul(0x9e37_79b9),
                            );
                            Ok(augment(&Sample { image: photo, faces: image.faces.clone() }, &config, &mut rng))
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
