//! Where a training step's time goes, on the CPU: forward, anchor assignment, the OHEM loss,
//! backward and the SGD update, timed apart (burn's flex backend runs eagerly, so each part's
//! wall time is its own), for Pytorch_Retinaface's MobileNet at 640×640, batch 8, on synthetic
//! images (a few faces each) — the configuration `../shared/reference/perf/time_train_step.py`
//! times. `FACESTUDIO_BENCH_PRESET` and `FACESTUDIO_BENCH_BATCH` change it.
//! Then crowded images: one `seed-full` step (102,300 anchors at 640²) on a batch holding one
//! image with 10 faces, then one with 1,000, with the peak memory each adds.

use std::sync::Arc;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use facestudio::dataset::augment::AugmentConfig;
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::dataset::{Dataset, SplitKind};
use facestudio::model::{RetinaFace, RetinaFaceConfig};
use facestudio::train::{
    Batch, EpochLoader, FaceTargets, LoaderPlan, LossSetup, OptimizerConfig, TrainImage, anchor_tensor, assign,
    multibox_loss,
};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // As the trainer does: freed activations are kept for the next step (train/allocator.rs).
    facestudio::train::keep_freed_memory();
    let preset = env_or("FACESTUDIO_BENCH_PRESET", "pytorch-retinaface-mnet");
    let batch: usize = env_or("FACESTUDIO_BENCH_BATCH", "8").parse().unwrap();
    let (size, steps) = (640u32, 4usize);
    let device = Device::flex().autodiff();
    let data = tempfile::tempdir().unwrap();
    generate(data.path(), &SynthConfig::new(batch * (steps + 1), 7)).unwrap();
    let (dataset, _) = Dataset::open(data.path()).unwrap();
    let images = Arc::new(TrainImage::from_split(dataset.split(SplitKind::Train).unwrap()));
    let config = RetinaFaceConfig::preset(&preset).unwrap();
    let setup = LossSetup::default();
    let mut model = RetinaFace::new(&config, &device);
    let mut optim = OptimizerConfig::default().build();
    let anchors = anchor_tensor(&config.anchors, size, size, &device);
    let plan = LoaderPlan { size, batch, seed: 1, epoch: 1, first: 0, workers: 2, depth: 2 };
    let loader = EpochLoader::start(images, AugmentConfig::default(), plan);
    let parts = ["forward", "assignment", "loss (OHEM)", "backward", "SGD update", "whole step"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); parts.len()];
    let mut faces = Vec::new();
    for (step, (_, loaded)) in loader.take(steps + 1).enumerate() {
        let samples = loaded.expect("synthetic batches load");
        let batch_tensors = Batch::new(&samples, &config.input, &device);
        faces.extend(batch_tensors.targets.iter().map(|t| t.len() as f64));
        let t0 = Instant::now();
        let output = model.forward(batch_tensors.images.clone());
        let t1 = Instant::now();
        let head = &output.stages[0];
        let assignments: Vec<_> =
            batch_tensors.targets.iter().map(|t| assign(&anchors, t, setup.first, config.variance)).collect();
        // Assignment is built lazily on some backends: read one value so it is done here.
        let _ = assignments[0].labels.clone().sum().into_scalar::<i64>();
        let t2 = Instant::now();
        let (loss, _) =
            multibox_loss(head.logits.clone(), head.boxes.clone(), head.landmarks.clone(), &assignments, &setup.loss);
        let value = loss.total.clone().into_scalar::<f32>();
        let t3 = Instant::now();
        let grads = GradientsParams::from_grads(loss.total.backward(), &model);
        let t4 = Instant::now();
        model = optim.step(1e-3, model, grads);
        let t5 = Instant::now();
        assert!(value.is_finite(), "loss {value}");
        if step > 0 {
            for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t0, t5)].into_iter().enumerate() {
                times[k].push((b - a).as_secs_f64());
            }
        }
    }
    let whole = median(times[5].clone());
    let faces = faces.iter().sum::<f64>() / faces.len().max(1) as f64;
    println!(
        "training step on the CPU: {preset}, {size}×{size}, batch {batch}, {faces:.1} faces an image (median of {steps})"
    );
    println!("| part | s | share |");
    println!("|---|---:|---:|");
    for (part, t) in parts.iter().zip(times) {
        let m = median(t);
        println!("| {part} | {m:.3} | {:.0} % |", 100.0 * m / whole);
    }
    loader_rate(&images_for_loader(), size);
    crowded();
}

/// A training split of 64 synthetic images for the loader's rate.
fn images_for_loader() -> (tempfile::TempDir, Arc<Vec<TrainImage>>) {
    let data = tempfile::tempdir().unwrap();
    generate(data.path(), &SynthConfig::new(64, 11)).unwrap();
    let (dataset, _) = Dataset::open(data.path()).unwrap();
    let images = Arc::new(TrainImage::from_split(dataset.split(SplitKind::Train).unwrap()));
    (data, images)
}

/// Images/s the loader decodes and augments at `size` with the default workers, beside the step.
fn loader_rate((_data, images): &(tempfile::TempDir, Arc<Vec<TrainImage>>), size: u32) {
    let workers = facestudio::train::default_workers();
    let batch = 8;
    let plan = LoaderPlan { size, batch, seed: 2, epoch: 1, first: 0, workers, depth: 2 };
    let loader = EpochLoader::start(images.clone(), AugmentConfig::default(), plan);
    let start = Instant::now();
    let loaded: usize = loader.map(|(_, b)| b.map_or(0, |s| s.len())).sum();
    let rate = loaded as f64 / start.elapsed().as_secs_f64();
    println!();
    println!("loader: {loaded} images at {size}×{size}, {workers} worker(s): {rate:.1} images/s");
}

/// Peak (VmHWM) and current (VmRSS) resident memory in MiB; `reset` starts a new peak (Linux:
/// the peak becomes the current size).
fn memory(reset: bool) -> (f64, f64) {
    if reset {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let read = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (read("VmHWM:"), read("VmRSS:"))
}

/// One training step of `seed-full` at 640² on one image with 10 and with 1,000 faces.
fn crowded() {
    let device = Device::flex().autodiff();
    let config = RetinaFaceConfig::preset("seed-full").unwrap();
    let model = RetinaFace::new(&config, &device);
    let anchors = anchor_tensor(&config.anchors, 640, 640, &device);
    let setup = LossSetup::default();
    println!();
    println!("crowded images: seed-full, 640×640, batch 1, {} anchors", anchors.dims()[0]);
    println!("| faces | step s | peak RSS MiB during the step |");
    println!("|---:|---:|---:|");
    for faces in [10usize, 1000] {
        // Faces 8–40 px (normalised coordinates), scattered over the image.
        let corner = Tensor::<2>::random([faces, 2], Distribution::Uniform(0.0, 0.93), &device);
        let size = Tensor::<2>::random([faces, 1], Distribution::Uniform(8.0 / 640.0, 40.0 / 640.0), &device);
        let targets = FaceTargets {
            boxes: Tensor::cat(vec![corner.clone(), corner + size.expand([faces, 2])], 1),
            landmarks: Tensor::zeros([faces, 10], &device),
            has_landmarks: Tensor::ones([faces], &device),
        };
        let images = Tensor::<4>::random([1, 3, 640, 640], Distribution::Uniform(-1.0, 1.0), &device);
        memory(true);
        let start = Instant::now();
        let output = model.forward(images);
        let head = &output.stages[0];
        let assignments = vec![assign(&anchors, &targets, setup.first, config.variance)];
        let (loss, _) =
            multibox_loss(head.logits.clone(), head.boxes.clone(), head.landmarks.clone(), &assignments, &setup.loss);
        let _grads = GradientsParams::from_grads(loss.total.backward(), &model);
        let seconds = start.elapsed().as_secs_f64();
        let (peak, _) = memory(false);
        println!("| {faces} | {seconds:.2} | {peak:.0} |");
    }
}
