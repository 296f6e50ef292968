//! Detection latency on the CPU backend, split into preprocessing / network / post-processing:
//! `fd1mb-mnet` on a 1024×768 photo (the shared checkpoint when FACESTUDIO_ASSETS is set) and
//! `seed-full` at 640×640 (random weights: the time does not depend on them).
//! Then the whole pipeline the CLI and the studio use (`detect::run_over`: decode, preprocess,
//! network, candidates, filter) over `test.jpg` at its own size, to set beside
//! `../shared/reference/perf/time_inference.py … test.jpg` (network + post at 1024×624).
//! Then the report's and Pytorch_Retinaface's ResNet-50 networks at 640² and 1024×768, the share of
//! each inference lever on fd1mb (the unfolded model on burn, the folded one on burn, the folded
//! one on the CPU kernels), and the peak memory of detecting a 4000×3000 photo.
//! Target on 2 cores: the fd1mb row's network time ≤ 0.8× PyTorch's, measured beside it with
//! `../shared/reference/perf/time_inference.py` (its `ncnn_sample.jpg 1024x768` line).

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::Device;
use facestudio::detect::HostOutputs;
use facestudio::detect::{
    CandidateLimits, Detector, FaceFilter, InputSize, Outcome, RunOptions, ScoringStage, load_image, preprocess,
    run_over,
};
use facestudio::model::{
    InferenceEngine, InferenceNet, RetinaFace, RetinaFaceConfig, RetinaFaceOutput, import_checkpoint,
};
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
        let outputs = detector.forward(&[&input], limits.floor).unwrap().remove(0);
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

    for preset in ["seed-full", "pytorch-retinaface-r50"] {
        let config = RetinaFaceConfig::preset(preset).expect("preset");
        let detector = Detector::new(RetinaFace::new(&config, &device), device.clone());
        for (w, h) in [(640, 640), (1024, 768)] {
            let sized = image::imageops::resize(&photo, w, h, image::imageops::FilterType::Triangle);
            time(&detector, &sized, 1);
            let [pre, net, post, _] = time(&detector, &sized, 3);
            println!("| {preset} (random weights) | {w}×{h} | {pre:.1} | {net:.1} | {post:.2} | - |");
        }
    }
    let model = fd1mb_model(&assets, &device);
    levers(&model, &photo, &device);
    peak_memory(&Detector::new(model, device.clone()));
}

fn fd1mb_model(assets: &Option<PathBuf>, device: &Device) -> RetinaFace {
    let config = RetinaFaceConfig::preset("fd1mb-mnet").expect("preset");
    match assets {
        Some(dir) => {
            import_checkpoint(&dir.join("weights/mobilenet0.25_Final.pth"), &config, device).expect("checkpoint")
        }
        None => RetinaFace::new(&config, device),
    }
}

/// fd1mb's network time (forward and the read-back the detector does) by lever, one run.
fn levers(model: &RetinaFace, photo: &RgbImage, device: &Device) {
    let input = preprocess(photo, InputSize::Original, &model.config.input);
    let shape = [1, 3, input.height as usize, input.width as usize];
    let x = || burn::tensor::Tensor::<4>::from_data(burn::tensor::TensorData::new(input.data.clone(), shape), device);
    let stage = [ScoringStage::last(&model.config)];
    let timed = |run: &dyn Fn() -> RetinaFaceOutput| {
        let mut times = Vec::new();
        for i in 0..8 {
            let start = Instant::now();
            HostOutputs::read(&run(), &stage, input.width, input.height, CandidateLimits::EVALUATION.floor)
                .expect("read");
            if i > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        median(times)
    };
    let unfolded = timed(&|| model.forward(x()));
    let burn = InferenceNet::with_engine(model, device, InferenceEngine::Burn).expect("burn runs every layer");
    let folded = timed(&|| burn.forward(x()));
    let cpu = InferenceNet::with_engine(model, device, InferenceEngine::CpuKernels).expect("CPU kernels");
    let kernels = timed(&|| cpu.forward(x()));
    println!();
    println!("| fd1mb-mnet network at 1024×768, one run | ms | vs unfolded |");
    println!("|---|---|---|");
    println!("| unfolded model on burn flex (before) | {unfolded:.1} | 1.00× |");
    println!("| BatchNorm folded, siblings stacked, on burn flex | {folded:.1} | {:.2}× |", folded / unfolded);
    println!("| the same on the CPU kernels (the default) | {kernels:.1} | {:.2}× |", kernels / unfolded);
}

/// Peak resident memory (VmHWM, reset first) of detecting one 4000×3000 photo on the CPU.
fn peak_memory(detector: &Detector) {
    let photo = RgbImage::from_fn(4000, 3000, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
    let read_kib = |key: &str| -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let before = read_kib("VmRSS:");
    // Writing 5 resets the peak (Linux ≥ 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let start = Instant::now();
    let faces = detector.detect(&photo, InputSize::Original, &CandidateLimits::EVALUATION).expect("detect").len();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    match (before, read_kib("VmHWM:"), reset) {
        (Some(before), Some(peak), true) => println!(
            "\n4000×3000 photo, fd1mb-mnet on the CPU: {ms:.0} ms, {faces} candidates, peak RSS {:.0} MiB ({:.0} MiB above the {:.0} MiB before)",
            peak as f64 / 1024.0,
            peak.saturating_sub(before) as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        _ => println!("\n4000×3000 photo, fd1mb-mnet on the CPU: {ms:.0} ms (peak memory not readable here)"),
    }
}
