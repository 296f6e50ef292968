//! Detection latency on the CPU backend, split into preprocessing / network / post-processing:
//! `fd1mb-mnet` on a 1024×768 photo (the shared checkpoint when FACESTUDIO_ASSETS is set) and
//! `seed-full` at 640×640 (random weights: the time does not depend on them).
//! Then the whole pipeline the CLI and the studio use (`detect::run_over`: decode, preprocess,
//! network, candidates, filter) over `test.jpg` at its own size, to set beside
//! `../shared/reference/perf/time_inference.py … test.jpg` (network + post at 1024×624).
//! Targets on 2 cores: fd1mb network ≤ ~100 ms (the reference PyTorch CPU run), post < 2 ms.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::Device;
use facestudio::detect::{
    CandidateLimits, Detector, FaceFilter, InputSize, Outcome, RunOptions, load_image, preprocess, run_over,
};
use facestudio::model::{RetinaFace, RetinaFaceConfig, import_checkpoint};
use image::RgbImage;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(detector: &Detector, photo: &RgbImage, runs: usize) -> [f64; 4] {
    let (limits, filter) = (CandidateLimits::EVALUATION, FaceFilter::EVALUATION);
    let (mut pre, mut net, mut post) = (Vec::new(), Vec::new(), Vec::new());
    let mut faces = 0;
    for _ in 0..runs {
        let t0 = Instant::now();
        let input = preprocess(photo, InputSize::Original, &detector.config().input);
        let t1 = Instant::now();
        let outputs = detector.forward(&[&input]).unwrap().remove(0);
        let t2 = Instant::now();
        let detections = detector.candidates(&outputs, &input, &limits).filter(&filter);
        let t3 = Instant::now();
        faces = detections.iter().filter(|d| d.score >= 0.5).count();
        pre.push((t1 - t0).as_secs_f64() * 1e3);
        net.push((t2 - t1).as_secs_f64() * 1e3);
        post.push((t3 - t2).as_secs_f64() * 1e3);
    }
    [median(pre), median(net), median(post), faces as f64]
}

fn main() {
    let device = Device::flex();
    let assets = std::env::var_os("FACESTUDIO_ASSETS").map(PathBuf::from);
    let fd1mb = RetinaFaceConfig::preset("fd1mb-mnet").expect("preset");
    let (model, photo, source) = match &assets {
        Some(dir) => {
            let model = import_checkpoint(&dir.join("weights/mobilenet0.25_Final.pth"), &fd1mb, &device)
                .expect("shared checkpoint");
            let photo = load_image(&dir.join("photos/test.jpg")).expect("test.jpg");
            let photo = image::imageops::resize(&photo, 1024, 768, image::imageops::FilterType::Triangle);
            (model, photo, "shared checkpoint, test.jpg resized to 1024×768")
        }
        None => (
            RetinaFace::new(&fd1mb, &device),
            RgbImage::from_fn(1024, 768, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])),
            "random weights, generated image (FACESTUDIO_ASSETS unset)",
        ),
    };
    println!("| model | input | preprocess ms | network ms | post-process ms | faces ≥ 0.5 |");
    println!("|---|---|---|---|---|---|");
    let detector = Detector::new(model, device.clone());
    time(&detector, &photo, 2);
    let [pre, net, post, faces] = time(&detector, &photo, 11);
    println!("| fd1mb-mnet ({source}) | 1024×768 | {pre:.1} | {net:.1} | {post:.2} | {faces} |");

    if let Some(dir) = &assets {
        let path = dir.join("photos/test.jpg");
        let (mut times, mut faces) = (Vec::new(), 0);
        for run in 0..12 {
            let start = Instant::now();
            run_over(&detector, std::slice::from_ref(&path), &RunOptions::default(), |outcome| {
                if let Outcome::Detected(d) = outcome {
                    faces = d.candidates().filter(&FaceFilter::EVALUATION).iter().filter(|f| f.score >= 0.5).count();
                }
                std::ops::ControlFlow::Continue(())
            })
            .expect("the pipeline runs");
            if run > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let total = median(times);
        println!(
            "| fd1mb-mnet, `run_over` end to end (decode + all of the above) | test.jpg 1024×624 | {total:.1} total | | | {faces} |"
        );
    }

    let seed = RetinaFaceConfig::preset("seed-full").expect("preset");
    let detector = Detector::new(RetinaFace::new(&seed, &device), device);
    let square = image::imageops::resize(&photo, 640, 640, image::imageops::FilterType::Triangle);
    time(&detector, &square, 1);
    let [pre, net, post, _] = time(&detector, &square, 5);
    println!("| seed-full (random weights) | 640×640 | {pre:.1} | {net:.1} | {post:.2} | - |");
}
