//! The studio's own work per frame (layout, overlay geometry, channel draining: everything but
//! the renderer), measured through egui_kittest without a renderer. Target: under 8 ms
//! - while a training runs in the background (Train panel with live charts),
//! - while browsing a 12,880-image split (scrolling the list with thumbnails),
//! - on an image with 1,000 faces with landmarks (Dataset panel overlay, one face selected),
//! - switching images in the Dataset panel with a model's predictions shown.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{IMAGES, write_wider_scale_tree};
use egui::{Event, MouseWheelUnit, Pos2, Vec2};
use egui_kittest::Harness;
use facestudio::app::{Settings, Studio, Tab, TrainForm};
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::train::TrainConfig;
use image::{Rgb, RgbImage};

const TARGET_MS: f64 = 8.0;

fn studio(paths: Vec<PathBuf>) -> Harness<'static, Studio> {
    Harness::builder().with_size([1400.0, 900.0]).build_eframe(move |_cc| Studio::new(Settings::default(), paths))
}

fn wait(harness: &mut Harness<'_, Studio>, what: &str, done: impl Fn(&Studio) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Times `frames` frames, calling `before` ahead of each (input events, a pause for workers).
fn time_frames(
    harness: &mut Harness<'_, Studio>,
    frames: usize,
    mut before: impl FnMut(&mut Harness<'_, Studio>, usize),
) -> Vec<f64> {
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        before(harness, i);
        let start = Instant::now();
        harness.step();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times
}

fn row(name: &str, mut times: Vec<f64>) {
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let median = pct(0.5);
    println!(
        "{name:<46} {median:>8.2} {:>8.2} {:>8.2} {:>6}  {}",
        pct(0.95),
        times[times.len() - 1],
        times.len(),
        if median < TARGET_MS { "ok" } else { "MISSED" }
    );
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg).unwrap();
    bytes
}

/// One 1024×768 image with 1,000 faces, each with landmarks.
fn write_crowd(root: &Path) {
    let images = root.join("WIDER_train/images/0--Crowd");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("crowd.jpg"), jpeg(1024, 768)).unwrap();
    let (mut gt, mut labels) = (String::from("0--Crowd/crowd.jpg\n1000\n"), String::from("# 0--Crowd/crowd.jpg\n"));
    for i in 0..1000 {
        let (x, y) = ((i % 40) * 25 + 2, (i / 40) * 30 + 2);
        gt.push_str(&format!("{x} {y} 20 24 {} 0 0 0 {} 0 \n", i % 3, i % 2));
        labels.push_str(&format!("{x} {y} 20 24"));
        for (dx, dy) in [(6, 9), (14, 9), (10, 14), (7, 19), (13, 19)] {
            labels.push_str(&format!(" {}.0 {}.0 0.0", x + dx, y + dy));
        }
        labels.push_str(" 0.9\n");
    }
    std::fs::create_dir_all(root.join("wider_face_split")).unwrap();
    std::fs::create_dir_all(root.join("retinaface_gt_v1.1/train")).unwrap();
    std::fs::write(root.join("wider_face_split/wider_face_train_bbx_gt.txt"), gt).unwrap();
    std::fs::write(root.join("retinaface_gt_v1.1/train/label.txt"), labels).unwrap();
}

fn main() {
    println!("studio frame time (ms; app work without the renderer), target median < {TARGET_MS} ms");
    println!("{:<46} {:>8} {:>8} {:>8} {:>6}", "scenario", "median", "p95", "max", "frames");

    // A WIDER-size split, scrolled.
    let big = tempfile::tempdir().unwrap();
    write_wider_scale_tree(big.path(), &jpeg(160, 120));
    let mut harness = studio(vec![big.path().to_path_buf()]);
    wait(&mut harness, "the 12,880-image split", |s| s.dataset.dataset.is_some());
    assert_eq!(harness.state().dataset.visible.len(), IMAGES);
    let first = harness.state().dataset.visible[0];
    harness.state_mut().dataset.selected = Some(first);
    wait(&mut harness, "the first image", |s| s.dataset.view.transform.is_some());
    let list = Pos2::new(150.0, 600.0);
    let scroll = time_frames(&mut harness, 300, |h, _| {
        h.event(Event::PointerMoved(list));
        h.event(Event::MouseWheel {
            unit: MouseWheelUnit::Point,
            delta: Vec2::new(0.0, -120.0),
            modifiers: Default::default(),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
        });
    });
    row("browse 12,880 images: scrolling the list", scroll);
    let filter = time_frames(&mut harness, 40, |h, i| {
        h.state_mut().dataset.filters.min_size = (i % 4) as f32 * 50.0;
    });
    row("browse 12,880 images: a filter changing", filter);
    drop(harness);

    // An image with 1,000 faces.
    let crowd = tempfile::tempdir().unwrap();
    write_crowd(crowd.path());
    let mut harness = studio(vec![crowd.path().to_path_buf()]);
    wait(&mut harness, "the crowd dataset", |s| s.dataset.dataset.is_some());
    harness.state_mut().dataset.selected = Some(0);
    wait(&mut harness, "the crowd image", |s| s.dataset.drawn_faces == 1000);
    harness.state_mut().dataset.selected_face = Some(500);
    let crowd_frames = time_frames(&mut harness, 200, |h, i| {
        h.event(Event::PointerMoved(Pos2::new(700.0 + (i % 50) as f32, 400.0)));
    });
    row("image with 1,000 faces: overlay, pointer moving", crowd_frames);
    drop(harness);

    // Switching images with a model's predictions shown (a random tiny network: thousands of
    // candidates per image, more than a trained one gives).
    let data = tempfile::tempdir().unwrap();
    generate(data.path(), &SynthConfig::new(12, 5)).unwrap();
    let model_dir = tempfile::tempdir().unwrap();
    let model_path = model_dir.path().join("tiny.bpk");
    let device = burn::prelude::Device::flex();
    let tiny =
        facestudio::model::RetinaFace::new(&facestudio::model::RetinaFaceConfig::preset("tiny").unwrap(), &device);
    facestudio::model::save_model(&tiny, &model_path).unwrap();
    let mut harness = studio(vec![data.path().to_path_buf()]);
    wait(&mut harness, "the synthetic dataset", |s| s.dataset.dataset.is_some());
    let first = harness.state().dataset.visible[0];
    harness.state_mut().dataset.selected = Some(first);
    harness.state_mut().dataset.assist.model_path = model_path.display().to_string();
    let ctx = harness.ctx.clone();
    harness.state_mut().dataset.load_assist_model(&ctx);
    wait(&mut harness, "the model", |s| s.dataset.assist.has_model());
    let split = harness.state().dataset.split;
    let all: Vec<facestudio::app::ImageRef> =
        harness.state().dataset.visible.iter().map(|&index| facestudio::app::ImageRef { split, index }).collect();
    let count = all.len();
    harness.state_mut().dataset.predict_images(&ctx, all);
    wait(&mut harness, "the predictions", |s| {
        s.dataset.assist.predicted_in(split) == count && !s.dataset.assist.is_predicting()
    });
    // A switch every 8th frame, the image decoded in between (as when stepping with the keys).
    let switching = time_frames(&mut harness, 240, |h, i| {
        std::thread::sleep(Duration::from_millis(4));
        if i % 8 == 0 {
            h.key_press(if i % 16 == 0 { egui::Key::ArrowDown } else { egui::Key::ArrowUp });
        }
    });
    let shown = harness.state().dataset.suggestions().len();
    row(&format!("switching images, predictions shown ({shown} here)"), switching);
    drop(harness);

    // Training in the background, Train panel open.
    let data = tempfile::tempdir().unwrap();
    generate(data.path(), &SynthConfig::new(16, 3)).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let mut harness = studio(Vec::new());
    harness.state_mut().tab = Tab::Train;
    let trial = TrainConfig { epochs: 1000, ..TrainConfig::trial(data.path(), runs.path().join("bench")) };
    harness.state_mut().train.form = TrainForm::from_config(&trial);
    harness.state_mut().train.start();
    wait(&mut harness, "training steps", |s| s.train.live.as_ref().is_some_and(|(_, c)| c.point_count() >= 20));
    let training = time_frames(&mut harness, 200, |_, _| std::thread::sleep(Duration::from_millis(20)));
    let points = harness.state().train.live.as_ref().map_or(0, |(_, c)| c.point_count());
    row(&format!("training in the background ({points} steps charted)"), training);
    harness.state_mut().train.control(facestudio::train::Control::Stop);
    wait(&mut harness, "the stop", |s| !s.train.is_running());
}
