//! Can each preset learn? Two modes (`FACESTUDIO_BENCH_MODE`):
//!
//! - `train` (default): the real trainer (augmentation, the preset's own loss setup, precise
//!   batch-norm statistics, validation on the val split at the original size) on a synthetic
//!   dataset, every preset narrowed to a CPU-sized width; prints validation AP per head stage
//!   against epochs and minutes. Knobs: `FACESTUDIO_BENCH_IMAGES` (200), `FACESTUDIO_BENCH_EPOCHS`
//!   (10), `FACESTUDIO_BENCH_SIZE` (192), `FACESTUDIO_BENCH_BATCH` (4), `FACESTUDIO_BENCH_SCHEDULE`
//!   (paper), `FACESTUDIO_BENCH_LOSS` (a loss setup instead of each preset's own).
//! - `probe`: the diagnosis. Trains from scratch on a handful of images (letterboxed, no
//!   augmentation) and prints, per head stage, the AP on those same images against steps: from
//!   the detector and from the training-mode outputs (batch statistics), with positives per
//!   image, the share of faces no anchor learns, and the loss terms. A setup that fits in training
//!   mode but not at inference has a train/inference mismatch; one that fits in neither cannot
//!   learn. Knobs: `FACESTUDIO_BENCH_VARIANTS` (`;`-separated changes applied one run each, e.g.
//!   `loss=pytorch-retinaface`, `variance=0.1/0.2`, `cascade=off`; `base` is the preset as it is;
//!   several changes in one variant are joined with `+`), `FACESTUDIO_BENCH_IMAGES` (8),
//!   `FACESTUDIO_BENCH_SIZE` (128), `FACESTUDIO_BENCH_STEPS` (300), `FACESTUDIO_BENCH_BATCH` (4),
//!   `FACESTUDIO_BENCH_LR` (0.01), `FACESTUDIO_BENCH_MEASURE_EVERY` (50),
//!   `FACESTUDIO_BENCH_PRECISE_BN` (1; 0 reads the running averages).
//!
//! Both: `FACESTUDIO_BENCH_PRESETS` (comma-separated; default every trainable preset),
//! `FACESTUDIO_BENCH_WIDTH` (0.25: ResNet width, FPN channels scaled with it; 1 is the real network).

use std::time::Instant;

use burn::prelude::*;
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::model::RetinaFaceConfig;
use facestudio::train::{
    LossSetup, ProbeConfig, TrainConfig, TrainEvent, Variant, run_probe, spawn, synthetic_samples,
};

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const ALL_TRAINABLE: &str = "seed-baseline,seed-context,seed-context-landmarks,seed-full,paper-r50,pytorch-retinaface-r50,pytorch-retinaface-mnet,tiny";

fn main() {
    match knob("FACESTUDIO_BENCH_MODE", "train".to_string()).as_str() {
        "probe" => probe_mode(),
        _ => train_mode(),
    }
}

fn train_mode() {
    let presets: String = knob("FACESTUDIO_BENCH_PRESETS", ALL_TRAINABLE.to_string());
    let images: usize = knob("FACESTUDIO_BENCH_IMAGES", 200);
    let width: f32 = knob("FACESTUDIO_BENCH_WIDTH", 0.25);
    let data = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    generate(data.path(), &SynthConfig::new(images, 1)).unwrap();
    let template = TrainConfig {
        data: data.path().to_path_buf(),
        preset: String::new(),
        width: Some(width),
        out: runs.path().to_path_buf(),
        epochs: knob("FACESTUDIO_BENCH_EPOCHS", 10),
        batch: knob("FACESTUDIO_BENCH_BATCH", 4),
        image_size: knob("FACESTUDIO_BENCH_SIZE", 192),
        lr_schedule: knob("FACESTUDIO_BENCH_SCHEDULE", "paper".to_string()),
        loss: std::env::var("FACESTUDIO_BENCH_LOSS").ok(),
        val_every: 2,
        seed: 1,
        ..TrainConfig::default()
    };
    println!(
        "the trainer on {images} synthetic images ({} val), {} epochs, batch {}, {} px, schedule {}, width {width}, CPU",
        images / 4,
        template.epochs,
        template.batch,
        template.image_size,
        template.lr_schedule
    );
    println!("{:<24} {:>6} {:>8} {:>8}  validation AP (all faces)", "preset", "epoch", "step", "minutes");
    for preset in presets.split(',').filter(|p| !p.is_empty()) {
        let config = TrainConfig { preset: preset.to_string(), out: runs.path().join(preset), ..template.clone() };
        let start = Instant::now();
        let handle = spawn(config, false).unwrap_or_else(|e| panic!("{preset}: {e}"));
        for event in handle.events.iter() {
            match &event {
                TrainEvent::Val { epoch, step, .. } => {
                    let aps: Vec<String> = event.val_series().iter().map(|(n, ap)| format!("{n} {ap:.3}")).collect();
                    let minutes = start.elapsed().as_secs_f64() / 60.0;
                    println!("{preset:<24} {epoch:>6} {step:>8} {minutes:>8.2}  {}", aps.join(", "));
                }
                TrainEvent::Error { message } => panic!("{preset}: {message}"),
                TrainEvent::Finished { .. } => break,
                _ => {}
            }
        }
        handle.join();
    }
}

fn probe_mode() {
    let presets: String = knob("FACESTUDIO_BENCH_PRESETS", ALL_TRAINABLE.to_string());
    let variants: String = knob("FACESTUDIO_BENCH_VARIANTS", "base".to_string());
    let width: f32 = knob("FACESTUDIO_BENCH_WIDTH", 0.25);
    let size: u32 = knob("FACESTUDIO_BENCH_SIZE", 128);
    let probe = ProbeConfig {
        steps: knob("FACESTUDIO_BENCH_STEPS", 300),
        batch: knob("FACESTUDIO_BENCH_BATCH", 4),
        lr: knob("FACESTUDIO_BENCH_LR", 0.01),
        warmup: knob("FACESTUDIO_BENCH_WARMUP", 20),
        measure_every: knob("FACESTUDIO_BENCH_MEASURE_EVERY", 50),
        recompute_batch_norm: knob("FACESTUDIO_BENCH_PRECISE_BN", 1) == 1,
        seed: 1,
    };
    let images: usize = knob("FACESTUDIO_BENCH_IMAGES", 8);
    let samples = synthetic_samples(images, size, 7);
    let faces: usize = samples.iter().map(|s| s.faces.len()).sum();
    println!(
        "{images} synthetic images ({faces} faces) at {size}², batch {}, lr {} (warm-up {}), width {width}, CPU",
        probe.batch, probe.lr, probe.warmup
    );
    println!(
        "{:<24} {:<28} {:>5} {:>6} {:>2} {:>6} {:>7} {:>6} {:>7} {:>6} {:>6} {:>6}",
        "preset", "variant", "step", "min", "st", "AP", "AP(trn)", "pos/im", "no-pos", "cls", "box", "landm"
    );
    let device = Device::flex().autodiff();
    for preset in presets.split(',').filter(|p| !p.is_empty()) {
        for variant_text in variants.split(';').filter(|v| !v.is_empty()) {
            let base = RetinaFaceConfig::preset(preset).unwrap_or_else(|e| panic!("{e}"));
            let variant: Variant = variant_text.parse().unwrap_or_else(|e| panic!("{e}"));
            let mut config = base.shrunk(width);
            let mut setup = LossSetup::default();
            variant.apply(&mut config, &mut setup).unwrap_or_else(|e| panic!("{e}"));
            let start = Instant::now();
            run_probe(&config, &setup, &samples, &probe, &device, |point| {
                for (stage, m) in point.stages.iter().enumerate() {
                    println!(
                        "{preset:<24} {variant_text:<28} {:>5} {:>6.2} {:>2} {:>6.3} {:>7.3} {:>6.1} {:>7.3} {:>6.3} {:>6.3} {:>6.3}",
                        point.step,
                        start.elapsed().as_secs_f64() / 60.0,
                        stage + 1,
                        m.ap,
                        m.ap_training_mode,
                        m.positives_per_image,
                        m.unmatched_faces,
                        m.terms.classification,
                        m.terms.boxes,
                        m.terms.landmarks,
                    );
                }
            })
            .unwrap_or_else(|e| panic!("{preset} {variant_text}: {e}"));
        }
    }
}
