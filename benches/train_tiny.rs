//! Trains the `tiny` preset on a synthetic dataset on the CPU and prints its validation AP curve
//! (all faces, at the original image size, as the evaluation protocol does) with the time it
//! took. Target: AP ≥ 0.8 within a few minutes.
//!
//! Knobs: `FACESTUDIO_BENCH_IMAGES` (300), `FACESTUDIO_BENCH_EPOCHS` (36), `FACESTUDIO_BENCH_SIZE`
//! (192), `FACESTUDIO_BENCH_BATCH` (8), `FACESTUDIO_BENCH_SCHEDULE` (paper),
//! `FACESTUDIO_BENCH_VAL_EVERY` (3), `FACESTUDIO_BENCH_OUT` (keep the run folder there; the
//! studio's Train panel can overlay it).

use std::time::Instant;

use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::train::{TrainConfig, TrainEvent, spawn};

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let images: usize = knob("FACESTUDIO_BENCH_IMAGES", 300);
    let data = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    generate(data.path(), &SynthConfig::new(images, 8)).unwrap();
    let config = TrainConfig {
        data: data.path().to_path_buf(),
        preset: "tiny".into(),
        out: std::env::var_os("FACESTUDIO_BENCH_OUT").map_or_else(|| runs.path().join("tiny"), Into::into),
        epochs: knob("FACESTUDIO_BENCH_EPOCHS", 36),
        batch: knob("FACESTUDIO_BENCH_BATCH", 8),
        image_size: knob("FACESTUDIO_BENCH_SIZE", 192),
        lr_schedule: knob("FACESTUDIO_BENCH_SCHEDULE", "paper".to_string()),
        val_every: knob("FACESTUDIO_BENCH_VAL_EVERY", 3),
        seed: 1,
        ..TrainConfig::default()
    };
    println!(
        "tiny on {images} synthetic images ({} val), {} epochs, batch {}, {} px, schedule {}, CPU",
        images / 4,
        config.epochs,
        config.batch,
        config.image_size,
        config.lr_schedule
    );
    println!("{:>6} {:>8} {:>10} {:>10}", "epoch", "step", "AP (all)", "minutes");
    let start = Instant::now();
    let handle = spawn(config, false).unwrap_or_else(|e| panic!("{e}"));
    let mut best = (0.0f64, 0u32, 0.0f64);
    let mut reached = None;
    let mut images_per_s = 0.0f32;
    for event in handle.events.iter() {
        match event {
            TrainEvent::Val { epoch, step, ap, .. } => {
                let value = ap.first().map_or(0.0, |(_, v)| *v);
                let minutes = start.elapsed().as_secs_f64() / 60.0;
                println!("{epoch:>6} {step:>8} {value:>10.4} {minutes:>10.2}");
                if value > best.0 {
                    best = (value, epoch, minutes);
                }
                if value >= 0.8 && reached.is_none() {
                    reached = Some((epoch, minutes));
                }
            }
            TrainEvent::Step { images_per_s: speed, .. } => images_per_s = speed,
            TrainEvent::Error { message } => panic!("training failed: {message}"),
            TrainEvent::Finished { .. } => break,
            _ => {}
        }
    }
    handle.join();
    println!(
        "training speed {images_per_s:.1} images/s; best AP {:.4} at epoch {} ({:.1} min)",
        best.0, best.1, best.2
    );
    match reached {
        Some((epoch, minutes)) => println!("AP >= 0.8 first reached at epoch {epoch}, after {minutes:.1} min"),
        None => println!("AP >= 0.8 not reached"),
    }
}
