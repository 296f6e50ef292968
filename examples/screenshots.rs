//! Renders the README's screenshots from the running studio (egui_kittest with the wgpu
//! renderer; lavapipe is enough): `FACESTUDIO_ASSETS=../shared/assets cargo run --release
//! --example screenshots` writes docs/screenshots/{start,dataset,train,evaluate,detect}.png. With
//! `FACESTUDIO_SCREENSHOT_RUNS=DIR` the Train panel also overlays the runs in DIR (e.g. one kept
//! by the `train_tiny` benchmark).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use facestudio::app::{Settings, Source, Studio, Tab, TrainForm};
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::train::TrainConfig;

fn studio(settings: Settings, paths: Vec<PathBuf>) -> Harness<'static, Studio> {
    Harness::builder().wgpu().with_size([1400.0, 860.0]).build_eframe(move |_cc| Studio::new(settings, paths))
}

fn wait(harness: &mut Harness<'_, Studio>, what: &str, timeout_s: u64, done: impl Fn(&Studio) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..5 {
        harness.step();
    }
}

fn save(harness: &mut Harness<'_, Studio>, out: &Path, name: &str) {
    let image = harness.render().expect("a wgpu adapter (install mesa-vulkan-drivers)");
    let path = out.join(format!("{name}.png"));
    image.save(&path).unwrap();
    println!("wrote {}", path.display());
}

fn main() {
    let out = PathBuf::from("docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let assets = std::env::var_os("FACESTUDIO_ASSETS").map(PathBuf::from);
    let data = tempfile::tempdir().unwrap();
    generate(data.path(), &SynthConfig::new(40, 4)).unwrap();

    // Start: what a first start shows, with the folder just generated among the recent ones.
    let settings = Settings { recent: vec![data.path().to_path_buf()], ..Settings::default() };
    let mut harness = studio(settings, Vec::new());
    wait(&mut harness, "the start page", 5, |s| s.tab == Tab::Start);
    save(&mut harness, &out, "start");
    drop(harness);

    // Dataset: an image with its faces, one selected.
    let mut harness = studio(Settings::default(), vec![data.path().to_path_buf()]);
    wait(&mut harness, "the dataset", 60, |s| s.dataset.dataset.is_some());
    let pick = {
        let dataset = harness.state().dataset.dataset.as_ref().unwrap();
        let split = dataset.split(harness.state().dataset.split).unwrap();
        (0..split.images.len()).max_by_key(|&i| split.images[i].faces.len().min(6)).unwrap()
    };
    harness.state_mut().dataset.selected = Some(pick);
    wait(&mut harness, "the image", 30, |s| s.dataset.drawn_faces > 0);
    harness.state_mut().dataset.selected_face = Some(0);
    harness.step();
    save(&mut harness, &out, "dataset");
    drop(harness);

    // Train: a short tiny run with validation every epoch.
    let runs = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), Vec::new());
    harness.state_mut().tab = Tab::Train;
    let trial = TrainConfig {
        epochs: 6,
        batch: 4,
        image_size: 128,
        val_every: 1,
        ..TrainConfig::trial(data.path(), runs.path().join("tiny-synthetic"))
    };
    harness.state_mut().train.form = TrainForm::from_config(&trial);
    let model = match std::env::var_os("FACESTUDIO_SCREENSHOT_RUNS") {
        Some(dir) => {
            // Finished runs, overlaid (their curves come from metrics.jsonl).
            let dir = PathBuf::from(dir);
            let train = &mut harness.state_mut().train;
            train.runs_dir = dir.display().to_string();
            train.scan_runs();
            for run in &mut train.runs {
                run.overlay = true;
            }
            let first = train.runs.first().map(|r| r.dir.join("model.bpk"));
            wait(&mut harness, "the runs", 30, |s| s.train.runs.iter().all(|r| r.curves.point_count() > 0));
            first.expect("a run with metrics.jsonl in FACESTUDIO_SCREENSHOT_RUNS")
        }
        None => {
            harness.state_mut().train.start();
            wait(&mut harness, "the run", 900, |s| !s.train.is_running());
            runs.path().join("tiny-synthetic/model.bpk")
        }
    };
    save(&mut harness, &out, "train");
    drop(harness);

    // Evaluate: the real MobileNet checkpoint when the assets are there, else the tiny model.
    let mut harness = studio(Settings::default(), Vec::new());
    harness.state_mut().tab = Tab::Evaluate;
    {
        let panel = &mut harness.state_mut().evaluate;
        panel.gt_dir = data.path().display().to_string();
        panel.source = Source::Model;
        match &assets {
            Some(dir) => {
                panel.model_path = dir.join("weights/mobilenet0.25_Final.pth").display().to_string();
                panel.preset = Some("fd1mb-mnet".into());
            }
            None => panel.model_path = model.display().to_string(),
        }
    }
    let ctx = harness.ctx.clone();
    harness.state_mut().evaluate.run(&ctx);
    wait(&mut harness, "the evaluation", 600, |s| s.evaluate.outcome.is_some());
    harness.state_mut().evaluate.selected = Some(0);
    wait(&mut harness, "the error image", 30, |s| !s.evaluate.is_running());
    for _ in 0..30 {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    save(&mut harness, &out, "evaluate");
    drop(harness);

    // Detect: the shared photo with the real checkpoint.
    let Some(assets) = assets else {
        println!("FACESTUDIO_ASSETS is not set: no Detect screenshot");
        return;
    };
    let settings = Settings {
        model_path: assets.join("weights/mobilenet0.25_Final.pth").display().to_string(),
        model_preset: Some("fd1mb-mnet".into()),
        ..Settings::default()
    };
    let mut harness = studio(settings, vec![assets.join("photos/test.jpg")]);
    let ctx = harness.ctx.clone();
    harness.state_mut().detect.load_model(&ctx);
    wait(&mut harness, "the detections", 300, |s| s.detect.photos.first().is_some_and(|p| p.candidates.is_some()));
    save(&mut harness, &out, "detect");
}
