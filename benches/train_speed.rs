//! Training throughput: images/s of full training steps (forward, assignment, OHEM loss of both
//! head stages, backward, SGD) at 640×640, with the peak resident memory of the process.
//!
//! Defaults: `seed-full`, batch 2, CPU. On a GPU machine:
//! `FACESTUDIO_BENCH_DEVICE=wgpu FACESTUDIO_BENCH_BATCHES=10,32 cargo bench --bench train_speed`.
//! Other knobs: `FACESTUDIO_BENCH_PRESET`, `FACESTUDIO_BENCH_SIZE`, `FACESTUDIO_BENCH_STEPS`.

use std::sync::Arc;
use std::time::Instant;

use burn::optim::GradientsParams;
use facestudio::dataset::augment::AugmentConfig;
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::dataset::{Dataset, SplitKind};
use facestudio::model::{DeviceChoice, RetinaFace, RetinaFaceConfig};
use facestudio::train::{
    Batch, EpochLoader, LoaderPlan, LossSetup, OptimizerConfig, TrainImage, anchor_tensor, batch_loss,
};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    // As the trainer does: freed activations are kept for the next step (train/allocator.rs).
    facestudio::train::keep_freed_memory();
    let choice: DeviceChoice = env_or("FACESTUDIO_BENCH_DEVICE", "cpu").parse().expect("cpu, wgpu[:N] or cuda[:N]");
    let preset = env_or("FACESTUDIO_BENCH_PRESET", "seed-full");
    let size: u32 = env_or("FACESTUDIO_BENCH_SIZE", "640").parse().unwrap();
    let steps: usize = env_or("FACESTUDIO_BENCH_STEPS", "5").parse().unwrap();
    let batches: Vec<usize> =
        env_or("FACESTUDIO_BENCH_BATCHES", "2").split(',').map(|b| b.trim().parse().unwrap()).collect();
    let device = choice.open().expect("the device opens").device.autodiff();
    let data = tempfile::tempdir().unwrap();
    let largest = batches.iter().copied().max().unwrap_or(2);
    generate(data.path(), &SynthConfig::new(largest * (steps + 2), 7)).unwrap();
    let (dataset, _) = Dataset::open(data.path()).unwrap();
    let images = Arc::new(TrainImage::from_split(dataset.split(SplitKind::Train).unwrap()));
    let config = RetinaFaceConfig::preset(&preset).unwrap();
    let setup = LossSetup::default();

    println!("training throughput: {preset}, {size}×{size}, device {choice}, {steps} timed steps after 2 warm-up");
    println!("{:>6} {:>12} {:>10} {:>14}", "batch", "s/step", "images/s", "peak RSS MiB");
    for batch in batches {
        let mut model = RetinaFace::new(&config, &device);
        let mut optim = OptimizerConfig::default().build();
        let anchors = anchor_tensor(&config.anchors, size, size, &device);
        let plan = LoaderPlan { size, batch, seed: 1, epoch: 1, first: 0, workers: 2, depth: 2 };
        let loader = EpochLoader::start(images.clone(), AugmentConfig::default(), plan);
        // Each loss read waits for the forward pass, which needs the previous step's update: the
        // time between two reads is one whole step, on any device.
        let mut reads = Vec::new();
        for (_, loaded) in loader.take(steps + 2) {
            let samples = loaded.expect("synthetic batches load");
            let batch_tensors = Batch::new(&samples, &config.input, &device);
            let (total, _) = batch_loss(&model, &batch_tensors, &anchors, &setup);
            let loss = total.clone().try_into_vec_as::<f32>().unwrap()[0];
            reads.push(Instant::now());
            assert!(loss.is_finite(), "loss {loss}");
            let grads = GradientsParams::from_grads(total.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
        let mut times: Vec<f64> = reads.windows(2).skip(1).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!("{batch:>6} {median:>12.3} {:>10.2} {:>14.0}", batch as f64 / median, peak_rss_mib());
    }
}
