//! Times `evaluate` on the full WIDER FACE validation set with noisy generated predictions.
//!
//! Uses the official ground truth when `FACESTUDIO_ASSETS` is set, otherwise a generated one of
//! the same size (3226 images in 61 events, 39708 faces). Predictions: every face jittered by up
//! to ±10 %, plus about 30 % extra false positives, all with random scores, from a fixed seed.
//! Run with `cargo bench --bench eval_widerface`.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use facestudio::eval::{
    EvalDetails, EvalOptions, EvalReport, FaceBox, GroundTruth, GtImage, PredictedBox, Predictions, SettingSpec,
    evaluate,
};

const RUNS: usize = 15;
const SEED: u64 = 0x5EED_FACE_2024_0001;
const IMAGES: usize = 3226;
const EVENTS: usize = 61;
const FACES: usize = 39708;

/// A seeded generator: the same predictions on every run and machine.
struct Rng(ChaCha8Rng);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0.random()
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// A ground truth shaped like the validation set: heavy-tailed faces per image (a few crowds of
/// hundreds), keep lists nested like easy ⊂ medium ⊂ hard with about the official sizes.
fn generated_ground_truth(rng: &mut Rng) -> Result<GroundTruth, String> {
    let weights: Vec<f64> = (0..IMAGES).map(|_| (1.0 - rng.unit()).powf(-0.6)).collect();
    let total: f64 = weights.iter().sum();
    let spare = (FACES - IMAGES) as f64;
    let mut counts: Vec<usize> = weights.iter().map(|w| 1 + (w / total * spare) as usize).collect();
    let short = FACES - counts.iter().sum::<usize>();
    for count in counts.iter_mut().take(short) {
        *count += 1;
    }
    let mut images = Vec::with_capacity(IMAGES);
    let mut keeps = [Vec::new(), Vec::new(), Vec::new()];
    for (i, &n) in counts.iter().enumerate() {
        let mut boxes = Vec::with_capacity(n);
        let mut keep = [Vec::new(), Vec::new(), Vec::new()];
        for face in 0..n {
            let w = rng.range(8.0, 120.0);
            boxes.push(FaceBox {
                x: rng.range(0.0, 1024.0 - w).round(),
                y: rng.range(0.0, 768.0 - w).round(),
                w: w.round(),
                h: (w * rng.range(1.0, 1.4)).round(),
            });
            let r = rng.unit();
            for (list, share) in keep.iter_mut().zip([0.1816, 0.3354, 0.8048]) {
                if r < share {
                    list.push(face);
                }
            }
        }
        images.push(GtImage {
            event: format!("{}--Event", i % EVENTS),
            name: format!("image_{i}"),
            boxes,
            details: Vec::new(),
        });
        for (all, mine) in keeps.iter_mut().zip(keep) {
            all.push(mine);
        }
    }
    let settings = ["easy", "medium", "hard"]
        .into_iter()
        .zip(keeps)
        .map(|(name, keep)| SettingSpec { name: name.into(), keep })
        .collect();
    GroundTruth::new(images, settings).map_err(|e| e.to_string())
}

/// Every face jittered (position ±10 % of its size, size ×0.9–1.1) plus ~30 % false positives.
fn noisy_predictions(gt: &GroundTruth, rng: &mut Rng) -> Result<Predictions, String> {
    let mut predictions = Predictions::new();
    for image in gt.images() {
        let mut dets: Vec<PredictedBox> = image
            .boxes
            .iter()
            .map(|b| PredictedBox {
                x: b.x + 0.1 * b.w * rng.range(-1.0, 1.0),
                y: b.y + 0.1 * b.h * rng.range(-1.0, 1.0),
                w: b.w * rng.range(0.9, 1.1),
                h: b.h * rng.range(0.9, 1.1),
                score: rng.unit(),
                landmarks: None,
            })
            .collect();
        let false_positives = (0.3 * image.boxes.len() as f64 + rng.unit()) as usize;
        for _ in 0..false_positives {
            let w = rng.range(8.0, 120.0);
            dets.push(PredictedBox {
                x: rng.range(0.0, 1024.0 - w),
                y: rng.range(0.0, 768.0 - w),
                w,
                h: w * 1.2,
                score: rng.unit(),
                landmarks: None,
            });
        }
        predictions.insert(image.event.as_str(), image.name.as_str(), dets).map_err(|e| e.to_string())?;
    }
    Ok(predictions)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> ExitCode {
    let mut rng = Rng(ChaCha8Rng::seed_from_u64(SEED));
    let (gt, source) = match std::env::var_os("FACESTUDIO_ASSETS") {
        Some(assets) => {
            let dir = PathBuf::from(assets).join("widerface_eval");
            match GroundTruth::from_official_dir(&dir) {
                Ok(gt) => (gt, "official"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => {
            println!("FACESTUDIO_ASSETS is not set: using a generated ground truth of the same size");
            match generated_ground_truth(&mut rng) {
                Ok(gt) => (gt, "generated"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let predictions = match noisy_predictions(&gt, &mut rng) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    let options = EvalOptions::OFFICIAL;
    let mut report: Option<EvalReport> = None;
    let mut times: Vec<Duration> = (0..=RUNS)
        .map(|_| {
            let start = Instant::now();
            report = Some(evaluate(&gt, &predictions, &options));
            start.elapsed()
        })
        .skip(1) // warm-up
        .collect();
    times.sort_unstable();
    let Some(report) = report else {
        return ExitCode::FAILURE;
    };
    // Everything beyond the APs: operating points, AP by size (and attribute with the official
    // ground truth: 3 settings × 15 buckets), landmark accuracy.
    let mut details_times: Vec<Duration> = (0..=5)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(EvalDetails::compute(&gt, &predictions, &report));
            start.elapsed()
        })
        .skip(1)
        .collect();
    details_times.sort_unstable();

    println!(
        "ground truth: {source}, {} images, {} faces; predictions: {} (seed {SEED:#x}); \
         {} threads available",
        report.images,
        report.faces,
        report.detections,
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    println!();
    println!("| benchmark | runs | median ms | min ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| evaluate (IoU 0.5, 1000 thresholds, 3 settings) | {RUNS} | {:.2} | {:.2} | {:.2} |",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
    println!(
        "| details (operating points, AP by size and attribute, landmarks) | 5 | {:.2} | {:.2} | {:.2} |",
        ms(details_times[details_times.len() / 2]),
        ms(details_times[0]),
        ms(details_times[details_times.len() - 1]),
    );
    println!();
    println!("| setting | kept faces | AP |");
    println!("|---|---:|---:|");
    for s in &report.settings {
        println!("| {} | {} | {:.6} |", s.name, s.faces, s.ap);
    }
    ExitCode::SUCCESS
}
