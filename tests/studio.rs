//! The studio driven headlessly through egui_kittest: every panel, as a user would use it.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui::{Event, Key, Modifiers, PointerButton, Pos2, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facestudio::app::{ErrorsMode, Settings, Source, Studio, TTA_LABEL, Tab, TrainForm};
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::dataset::{Dataset, Face, Split, SplitKind};
use facestudio::eval::{GroundTruth, OPERATING_THRESHOLDS, ScoreNormalisation};
use facestudio::model::DeviceChoice;
use facestudio::train::TrainConfig;

/// The studio as the window shows it, with its recovery files in `recovery` (never in the home
/// folder of whoever runs the tests).
fn studio(settings: Settings, paths: Vec<PathBuf>, recovery: &Path) -> Harness<'static, Studio> {
    let recovery = recovery.to_path_buf();
    Harness::builder().with_size([1400.0, 900.0]).build_eframe(move |_cc| {
        let mut studio = Studio::new(settings, paths);
        studio.dataset.recovery_dir = recovery;
        studio
    })
}

/// Steps frames until `done` holds (background jobs finish on their own threads).
fn step_until(harness: &mut Harness<'_, Studio>, what: &str, timeout_s: u64, done: impl Fn(&Studio) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    while !done(harness.state()) {
        let errors: Vec<String> =
            harness.state().notices.all().into_iter().filter(|n| n.is_error).map(|n| n.text).collect();
        assert!(errors.is_empty(), "while waiting for {what}: {errors:?}");
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.step();
}

/// A file dropped on the window, as the windowing layer hands it over.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn synth(dir: &Path, images: usize) {
    generate(dir, &SynthConfig::new(images, 21)).unwrap();
}

/// A primary-button drag in small moves, as a hand would do it.
fn drag(harness: &mut Harness<'_, Studio>, from: Pos2, by: Vec2) {
    harness.event(Event::PointerMoved(from));
    harness.step();
    harness.event(Event::PointerButton {
        pos: from,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    harness.step();
    for i in 1..=5 {
        harness.event(Event::PointerMoved(from + by * (i as f32 / 5.0)));
        harness.step();
    }
    let to = from + by;
    harness.event(Event::PointerButton {
        pos: to,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    harness.step();
    harness.step();
}

#[test]
fn browse_select_an_image_and_see_its_faces() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 8);
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    step_until(&mut harness, "the dataset", 60, |s| s.dataset.dataset.is_some());
    assert_eq!(harness.state().tab, Tab::Dataset);
    let (dataset, _) = Dataset::open(dir.path()).unwrap();
    let split = dataset.split(SplitKind::Train).unwrap();
    let image = split.images.iter().find(|i| i.faces.len() >= 2).expect("an image with faces");
    let name = image.path.rsplit('/').next().unwrap().to_string();
    harness.get_by_label_contains(&name).click();
    step_until(&mut harness, "the image", 30, |s| s.dataset.drawn_faces > 0);
    assert_eq!(harness.state().dataset.drawn_faces, image.faces.len());
    harness.get_by_label(&format!("{} faces", image.faces.len()));
    assert_eq!(harness.state().recent(), &[dir.path().to_path_buf()]);
}

/// A first start with nothing open shows the start page; from it, a synthetic dataset is written
/// into the folder given and opens in the Dataset panel.
#[test]
fn the_start_page_generates_a_synthetic_dataset_and_opens_it() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("try-me");
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), Vec::new(), recovery.path());
    harness.step();
    assert_eq!(harness.state().tab, Tab::Start);
    assert_eq!(harness.state().title(), "facestudio");
    for (panel, _) in facestudio::app::PANELS {
        harness.get_by_label(&format!("{panel}:"));
    }
    harness.state_mut().start.synth_dir = target.display().to_string();
    harness.state_mut().start.synth_images = 6;
    harness.get_by_label("Generate synthetic dataset").click();
    harness.step();
    assert!(harness.state().start.is_generating());
    step_until(&mut harness, "the generated dataset", 120, |s| s.dataset.dataset.is_some());
    assert_eq!(harness.state().tab, Tab::Dataset);
    let opened = harness.state().dataset.dataset.as_ref().unwrap();
    assert_eq!(opened.root, target);
    assert_eq!(opened.split(SplitKind::Train).unwrap().images.len(), 6);
    assert!(opened.split(SplitKind::Val).is_some_and(|s| !s.images.is_empty()));
    assert!(harness.state().notices.all().iter().any(|n| n.text.starts_with("Generated ") && !n.is_error));
    assert_eq!(harness.state().title(), "try-me — facestudio");
    assert_eq!(harness.state().recent(), &[target.clone()]);
    // The Train and Evaluate forms point at it.
    assert_eq!(PathBuf::from(&harness.state().train.form.data), target);
    assert_eq!(PathBuf::from(&harness.state().evaluate.gt_dir), target);
    // The next generation would not overwrite the dataset just written.
    assert_ne!(PathBuf::from(&harness.state().start.synth_dir), target);
}

#[test]
fn move_a_box_undo_redo_save_and_find_the_change_after_reloading() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 8);
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    step_until(&mut harness, "the dataset", 60, |s| s.dataset.dataset.is_some());
    let (dataset, _) = Dataset::open(dir.path()).unwrap();
    let split = dataset.split(SplitKind::Train).unwrap();
    let (index, image) = split
        .images
        .iter()
        .enumerate()
        .find(|(_, i)| i.faces.iter().any(|f| f.bbox.width() > 40.0))
        .expect("an image with a big face");
    let face = image.faces.iter().position(|f| f.bbox.width() > 40.0).unwrap();
    let original = image.faces[face].bbox;
    let name = image.path.rsplit('/').next().unwrap().to_string();
    harness.get_by_label_contains(&name).click();
    step_until(&mut harness, "the image", 30, |s| s.dataset.drawn_faces > 0);

    // Select the face with a click (the inspector opens), then drag it: grab it near its top-left
    // corner, away from the landmarks and the corner handles, towards the middle of the image (a
    // box is kept inside the image).
    let rect = harness.state().dataset.face_screen_rect(face).unwrap();
    let grab = rect.min + rect.size() * 0.15;
    harness.event(Event::PointerMoved(grab));
    harness.event(Event::PointerButton {
        pos: grab,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    harness.step();
    harness.event(Event::PointerButton {
        pos: grab,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    for _ in 0..3 {
        harness.step();
    }
    assert_eq!(harness.state().dataset.selected_face, Some(face));

    let rect = harness.state().dataset.face_screen_rect(face).unwrap();
    let grab = rect.min + rect.size() * 0.15;
    let view = harness.state().dataset.view.transform.unwrap();
    let scale = view.scale;
    let [w, h] = harness.state().dataset.view.image_size();
    let middle = view.to_screen(facestudio::geometry::Point { x: w as f32 / 2.0, y: h as f32 / 2.0 });
    let by = Vec2::new(30.0 * (middle.x - rect.center().x).signum(), 15.0 * (middle.y - rect.center().y).signum());
    drag(&mut harness, grab, by);
    harness.step();
    assert_eq!(harness.state().dataset.view.transform, Some(view), "the image stayed put under the edit");
    let current = |h: &Harness<'_, Studio>| {
        h.state().dataset.dataset.as_ref().unwrap().split(SplitKind::Train).unwrap().images[index].faces[face].bbox
    };
    let moved = current(&harness);
    assert!((moved.x1() - original.x1() - by.x / scale).abs() < 1.0, "{moved:?} vs {original:?}, {by:?}");
    assert!((moved.y1() - original.y1() - by.y / scale).abs() < 1.0, "{moved:?} vs {original:?}, {by:?}");
    assert!(harness.state().dataset.has_unsaved_changes());
    harness.get_by_label("* unsaved");
    let folder = dir.path().file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(harness.state().title(), format!("{folder} * — facestudio"));

    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(current(&harness), original, "undo");
    assert!(!harness.state().dataset.has_unsaved_changes());
    harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    harness.step();
    assert_eq!(current(&harness), moved, "redo");

    harness.get_by_label("Save").click();
    harness.step();
    assert!(!harness.state().dataset.has_unsaved_changes());
    assert_eq!(harness.state().title(), format!("{folder} — facestudio"));
    let (reloaded, _) = Dataset::open(dir.path()).unwrap();
    let saved = reloaded.split(SplitKind::Train).unwrap().images[index].faces[face].bbox;
    assert!((saved.x1() - moved.x1()).abs() <= 1.0 && (saved.y1() - moved.y1()).abs() <= 1.0, "{saved:?}");
    assert!(dir.path().join("wider_face_split/wider_face_train_bbx_gt.txt.bak").is_file());
}

#[test]
fn opening_another_folder_with_unsaved_changes_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 4);
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    step_until(&mut harness, "the dataset", 60, |s| s.dataset.dataset.is_some());
    let first = harness.state().dataset.visible[0];
    harness.state_mut().dataset.selected = Some(first);
    step_until(&mut harness, "the image", 30, |s| s.dataset.view.transform.is_some());
    harness.state_mut().dataset.tool = facestudio::app::Tool::Draw;
    let rect = harness.state().dataset.view.transform.map(|t| t.origin).unwrap();
    drag(&mut harness, rect + Vec2::new(5.0, 5.0), Vec2::new(40.0, 40.0));
    assert!(harness.state().dataset.has_unsaved_changes(), "a new face was drawn");
    let path = dir.path().to_path_buf();
    let ctx = harness.ctx.clone();
    harness.state_mut().dataset.open(&ctx, &path);
    harness.step();
    harness.step();
    harness.get_by_label("Unsaved changes");
    harness.get_by_label("Cancel").click();
    harness.step();
    harness.step();
    assert!(harness.state().dataset.has_unsaved_changes(), "cancel keeps the edits");
    assert!(harness.query_by_label("Unsaved changes").is_none());
}

/// The faces of image `index` of `split` as the studio holds them.
fn faces_of(studio: &Studio, split: SplitKind, index: usize) -> Vec<Face> {
    studio.dataset.dataset.as_ref().unwrap().split(split).unwrap().images[index].faces.clone()
}

/// Waits for the studio to open the dataset in `dir`, deletes the first face of the first image
/// that has one with the inspector's button, and waits for the recovery file. Returns the image
/// and its faces after the edit.
fn delete_a_face(harness: &mut Harness<'_, Studio>, dir: &Path) -> (SplitKind, usize, Vec<Face>) {
    step_until(harness, "the dataset", 60, |s| s.dataset.dataset.is_some());
    assert!(harness.state().dataset.pending_recovery().is_none(), "nothing to recover yet");
    let split = harness.state().dataset.split;
    let (index, before) = {
        let images = &harness.state().dataset.dataset.as_ref().unwrap().split(split).unwrap().images;
        let index = images.iter().position(|i| !i.faces.is_empty()).expect("an image with faces");
        (index, images[index].faces.clone())
    };
    harness.state_mut().dataset.selected = Some(index);
    harness.state_mut().dataset.selected_face = Some(0);
    harness.step();
    harness.get_by_label("Delete face").click();
    harness.step();
    harness.step();
    let after = faces_of(harness.state(), split, index);
    assert_eq!(after.as_slice(), &before[1..], "the first face is gone");
    assert!(harness.state().dataset.has_unsaved_changes());
    step_until(harness, "the recovery file", 10, |s| s.dataset.recovery_path().is_some_and(|p| p.is_file()));
    let path = harness.state().dataset.recovery_path().unwrap();
    assert!(!path.starts_with(dir), "the dataset folder is the user's: {}", path.display());
    (split, index, after)
}

#[test]
fn unsaved_edits_survive_a_crash_and_are_restored_as_unsaved_changes() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 4);
    let files_before = dataset_files(dir.path());
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    let (split, index, edited) = delete_a_face(&mut harness, dir.path());
    let path = harness.state().dataset.recovery_path().unwrap();
    assert!(path.starts_with(recovery.path()));
    // The crash: the studio goes without saving or asking.
    drop(harness);
    assert!(path.is_file(), "the recovery file outlives the studio");
    // Not assert_eq: a failure would print every image's bytes.
    assert!(dataset_files(dir.path()) == files_before, "nothing was written into the dataset");

    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    step_until(&mut harness, "the recovery offer", 60, |s| s.dataset.pending_recovery().is_some());
    assert_eq!(harness.state().dataset.pending_recovery().unwrap().image_count(), 1);
    assert_ne!(faces_of(harness.state(), split, index), edited, "the files still hold the old faces");
    harness.step();
    harness.get_by_label_contains("Unsaved edits from an earlier session were found (1 image, written");
    harness.get_by_label("Restore").click();
    harness.step();
    harness.step();
    assert!(harness.state().dataset.pending_recovery().is_none());
    assert!(harness.query_by_label("Restore").is_none(), "the question is gone");
    assert_eq!(faces_of(harness.state(), split, index), edited, "the edit is back");
    assert!(harness.state().dataset.has_unsaved_changes(), "and unsaved");
    assert!(path.is_file(), "kept until the restored edits are saved");
    assert!(harness.state().notices.all().iter().all(|n| !n.is_error), "{:?}", harness.state().notices.all());

    // One undoable edit: undo gives the faces on disk back, and nothing is left to recover.
    harness.state_mut().dataset.undo();
    assert!(!harness.state().dataset.has_unsaved_changes());
    step_until(&mut harness, "the recovery file to go", 10, |_| !path.exists());
}

#[test]
fn saving_removes_the_recovery_file_and_discarding_the_offer_deletes_it() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 4);
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    let (split, index, edited) = delete_a_face(&mut harness, dir.path());
    let path = harness.state().dataset.recovery_path().unwrap();
    harness.get_by_label("Save").click();
    harness.step();
    harness.step();
    assert!(!harness.state().dataset.has_unsaved_changes());
    assert!(!path.exists(), "saved edits need no recovery");
    let (reloaded, _) = Dataset::open(dir.path()).unwrap();
    assert_eq!(reloaded.split(split).unwrap().images[index].faces, edited);
    drop(harness);

    // A file left by a crash, turned down: it is deleted and nothing changes.
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    let (split, index, _) = delete_a_face(&mut harness, dir.path());
    let saved = reloaded.split(split).unwrap().images[index].faces.clone();
    drop(harness);
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    step_until(&mut harness, "the recovery offer", 60, |s| s.dataset.pending_recovery().is_some());
    harness.step();
    harness.get_by_label("Discard").click();
    harness.step();
    harness.step();
    assert!(harness.state().dataset.pending_recovery().is_none());
    assert!(!path.exists(), "discarded");
    assert!(!harness.state().dataset.has_unsaved_changes());
    assert_eq!(faces_of(harness.state(), split, index), saved);
}

/// Every file under `dir` with its bytes.
fn dataset_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn train_a_tiny_model_and_watch_points_arrive_then_pause_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 8);
    let runs = tempfile::tempdir().unwrap();
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), Vec::new(), recovery.path());
    harness.get_by_label("Train").click();
    harness.step();
    harness.state_mut().train.form =
        TrainForm::from_config(&TrainConfig::trial(dir.path(), runs.path().join("ui-run")));
    harness.state_mut().train.runs_dir = runs.path().display().to_string();
    harness.get_by_label("Start").click();
    step_until(&mut harness, "chart points", 120, |s| s.train.live.as_ref().is_some_and(|(_, c)| c.point_count() >= 2));
    harness.get_by_label("Pause").click();
    step_until(&mut harness, "the pause", 60, |s| {
        s.train.live.as_ref().is_some_and(|(_, c)| c.status.contains("paused"))
    });
    let points = harness.state().train.live.as_ref().unwrap().1.point_count();
    // In the background the window title says how far the run got.
    let title = harness.state().window_title(false);
    assert!(title.contains("% Training ") && title.ends_with("facestudio"), "{title}");
    assert_eq!(harness.state().window_title(true), "facestudio");
    for _ in 0..20 {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(harness.state().train.live.as_ref().unwrap().1.point_count(), points, "no steps while paused");
    harness.get_by_label("Stop").click();
    step_until(&mut harness, "the stop", 60, |s| !s.train.is_running());
    let curves = &harness.state().train.live.as_ref().unwrap().1;
    assert!(curves.finished && curves.status.contains("stopped"), "{}", curves.status);
    let notices = harness.state().notices.all();
    assert!(notices.iter().any(|n| n.text.contains("ui-run stopped after")), "a notice says so: {notices:?}");
    assert!(runs.path().join("ui-run/metrics.jsonl").is_file());
}

/// The Detect panel runs on `auto` unless told otherwise; the device is a labelled combo listing
/// `auto` (with what it picks), the CPU and the adapters wgpu found.
#[test]
fn the_device_is_picked_in_a_labelled_combo_and_auto_by_default() {
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), Vec::new(), recovery.path());
    harness.get_by_label("Detect").click();
    harness.step();
    assert_eq!(harness.state().detect.device, DeviceChoice::Auto);
    harness.get_by_role_and_label(Role::ComboBox, "Device").click();
    harness.run();
    harness.get_by_label("CPU").click();
    harness.run();
    assert_eq!(harness.state().detect.device, DeviceChoice::Cpu);
}

#[test]
fn drop_a_photo_detect_27_faces_move_the_slider_and_export() {
    let Some(assets) = common::assets("drop_a_photo_detect_27_faces_move_the_slider_and_export") else { return };
    let out = tempfile::tempdir().unwrap();
    let settings = Settings {
        model_path: assets.join("weights/mobilenet0.25_Final.pth").display().to_string(),
        model_preset: Some("fd1mb-mnet".into()),
        ..Settings::default()
    };
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(settings, Vec::new(), recovery.path());
    harness.get_by_label("Detect").click();
    harness.step();
    harness.state_mut().detect.device = DeviceChoice::Cpu;
    harness.get_by_label("Load model").click();
    harness.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(assets.join("photos/test.jpg"))));
    step_until(&mut harness, "the detections", 180, |s| {
        s.detect.photos.first().is_some_and(|p| p.candidates.is_some())
    });
    harness.get_by_label("27 faces");
    let passes = harness.state().detect.forward_passes.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(passes, 1);

    harness.get_by_role_and_label(Role::Slider, "confidence").set_value_accesskit(0.9);
    harness.step();
    harness.step();
    let count = harness.state_mut().detect.detections().unwrap().len();
    assert!(count < 27 && count > 0, "{count} faces at 0.9");
    harness.get_by_label(&format!("{count} faces"));
    assert_eq!(harness.state().detect.forward_passes.load(std::sync::atomic::Ordering::Relaxed), passes);

    harness.state_mut().detect.export_dir = out.path().display().to_string();
    for format in ["CSV", "WIDER txt", "PNG"] {
        harness.get_by_label(format).click();
        harness.step();
    }
    harness.get_by_label("Export all").click();
    harness.step();
    for ext in ["json", "csv", "txt", "png"] {
        assert!(out.path().join(format!("photos/test.{ext}")).is_file(), "photos/test.{ext} missing");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("photos/test.json")).unwrap()).unwrap();
    assert_eq!(json["detections"].as_array().unwrap().len(), count);

    // The loaded checkpoint leaves as ONNX, from the panel it is loaded in.
    harness.get_by_label("Model export").click();
    harness.step();
    let onnx = out.path().join("mobilenet.onnx");
    harness.state_mut().detect.model_export.out = onnx.display().to_string();
    harness.get_by_label("Export model").click();
    harness.step();
    assert!(harness.state().detect.model_export.is_running(), "{:?}", harness.state().notices.all());
    step_until(&mut harness, "the export", 120, |s| !s.detect.model_export.is_running());
    assert!(std::fs::metadata(&onnx).is_ok_and(|m| m.len() > 100_000), "{} written", onnx.display());
    assert!(harness.state().notices.all().iter().any(|n| n.text.starts_with("Wrote ") && !n.is_error));
}

#[test]
fn evaluate_a_prediction_folder_and_browse_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 8);
    let (dataset, _) = Dataset::open(dir.path()).unwrap();
    let val = dataset.split(SplitKind::Val).unwrap();
    let pred = tempfile::tempdir().unwrap();
    // The ground truth itself, minus the first face of the first image: AP below 1, one miss.
    for (i, image) in val.images.iter().enumerate() {
        let folder = pred.path().join(image.event());
        std::fs::create_dir_all(&folder).unwrap();
        let faces: Vec<_> = image.faces.iter().skip(usize::from(i == 0)).collect();
        let mut text = format!("{}\n{}\n", image.stem(), faces.len());
        for f in faces {
            let [x, y, w, h] = f.bbox.to_xywh();
            text.push_str(&format!("{x} {y} {w} {h} 0.9\n"));
        }
        std::fs::write(folder.join(format!("{}.txt", image.stem())), text).unwrap();
    }
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = evaluate_in_the_panel(dir.path(), pred.path(), recovery.path());
    let ap = harness.state().evaluate.outcome.as_ref().unwrap().report.settings[0].ap;
    assert!(ap > 0.5 && ap < 1.0, "{ap}");
    let done = format!("done: AP all {ap:.4}");
    assert!(harness.state().notices.all().iter().any(|n| n.text.contains(&done)), "a notice says it is done");
    harness.get_by_label(&format!("{ap:.4}"));
    let rows = &harness.state().evaluate.rows;
    assert_eq!(rows.len(), val.images.len());
    assert_eq!(rows[0].missed, 1, "the image with the dropped face comes first");
    let label = format!("{}/{}: 1 missed", val.images[0].event(), val.images[0].stem());
    harness.get_by_label_contains(&label).click();
    step_until(&mut harness, "the error image", 30, |s| s.evaluate.selected.is_some());
}

/// The studio with `pred` evaluated against the dataset in `gt` in the Evaluate panel.
fn evaluate_in_the_panel(gt: &Path, pred: &Path, recovery: &Path) -> Harness<'static, Studio> {
    let mut harness = studio(Settings::default(), Vec::new(), recovery);
    harness.get_by_label("Evaluate").click();
    harness.step();
    {
        let panel = &mut harness.state_mut().evaluate;
        panel.gt_dir = gt.display().to_string();
        panel.source = Source::Predictions;
        panel.pred_dir = pred.display().to_string();
    }
    // The form changed (a folder instead of a model): lay it out before clicking.
    harness.step();
    harness.get_by_label("Run evaluation").click();
    step_until(&mut harness, "the evaluation", 60, |s| s.evaluate.outcome.is_some());
    harness
}

/// The line under the score-threshold slider, computed here from the report: the curve's point
/// of the smallest swept threshold at or above the slider's normalised score, with the raw
/// confidence of that score.
fn expected_current_point(studio: &Studio) -> String {
    let panel = &studio.evaluate;
    let report = &panel.outcome.as_ref().unwrap().report;
    let curve = &report.setting(&panel.setting).unwrap().curve;
    let t = panel.threshold;
    let (precision, recall) =
        curve.iter().take_while(|p| p.threshold >= t).last().map_or((0.0, 0.0), |p| (p.precision, p.recall));
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let confidence = match report.score_normalisation {
        ScoreNormalisation::MinMax { min, max } => min + t * (max - min),
        ScoreNormalisation::Unchanged => t,
    };
    format!("current point: confidence {confidence:.3}, precision {precision:.3}, recall {recall:.3}, F1 {f1:.3}")
}

/// Exact boxes with spread scores: the operating points table (best-F1 row marked) and the AP
/// breakdown show; moving the threshold slider moves the current point at once, and the error
/// list follows from the worker thread (the previous list shown meanwhile).
#[test]
fn evaluate_shows_operating_points_and_the_slider_moves_the_current_point() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 16);
    let (dataset, _) = Dataset::open(dir.path()).unwrap();
    let val = dataset.split(SplitKind::Val).unwrap();
    let pred = tempfile::tempdir().unwrap();
    // Every face with its own box, scores cycling over 0.1 … 0.91; a false positive in each
    // image's corner.
    let mut n = 0;
    for image in &val.images {
        let folder = pred.path().join(image.event());
        std::fs::create_dir_all(&folder).unwrap();
        let mut lines = Vec::new();
        for f in &image.faces {
            let [x, y, w, h] = f.bbox.to_xywh();
            lines.push(format!("{x} {y} {w} {h} {:.2}", 0.1 + 0.09 * (n % 10) as f64));
            n += 1;
        }
        lines.push("0 0 6 6 0.5".to_string());
        let text = format!("{}\n{}\n{}\n", image.stem(), lines.len(), lines.join("\n"));
        std::fs::write(folder.join(format!("{}.txt", image.stem())), text).unwrap();
    }
    assert!(n >= 3, "faces with different scores");
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = evaluate_in_the_panel(dir.path(), pred.path(), recovery.path());

    let details = &harness.state().evaluate.outcome.as_ref().unwrap().details;
    let points = details.operating_points("all").to_vec();
    assert_eq!(points.len(), OPERATING_THRESHOLDS.len() + 1, "{points:?}");
    assert!(points.last().unwrap().best_f1 && points.iter().filter(|p| p.best_f1).count() == 1);
    assert!(details.buckets.iter().any(|b| b.group == "size" && b.faces > 0));
    assert!(details.landmarks.is_none(), "a prediction folder has no landmarks");
    harness.get_by_label("Operating points: all");
    harness.get_by_label("best F1");
    harness.get_by_label_contains("No face could be scored");
    harness.get_by_label("AP by size and attribute: all").click();
    for _ in 0..10 {
        harness.step();
    }
    harness.get_by_label("small");

    // The current point at the default threshold, then at 0.9.
    assert!(harness.state().evaluate.rows_are_current());
    let before = expected_current_point(harness.state());
    harness.get_by_label(&before);
    let found = |s: &Studio| s.evaluate.rows.iter().map(|r| r.matches.true_positives()).sum::<usize>();
    let found_before = found(harness.state());
    harness.get_by_role_and_label(Role::Slider, "score threshold").set_value_accesskit(0.9);
    harness.step();
    let threshold = harness.state().evaluate.threshold;
    assert!((threshold - 0.9).abs() < 1e-6, "{threshold}");
    assert!(!harness.state().evaluate.rows.is_empty(), "the previous list stays until the new one arrives");
    let after = expected_current_point(harness.state());
    assert_ne!(after, before);
    harness.step();
    harness.get_by_label(&after);
    assert!(harness.query_by_label(&before).is_none());
    step_until(&mut harness, "the error list at the new threshold", 30, |s| s.evaluate.rows_are_current());
    let rows = &harness.state().evaluate.rows;
    assert_eq!(rows.len(), val.images.len());
    assert!(rows.iter().all(|r| r.matches.score_threshold == threshold));
    assert!(found(harness.state()) < found_before, "fewer faces found from a higher threshold");
    assert!(!harness.state().evaluate.rows_pending());
}

/// A prediction folder with every face of `val` at its exact box (score 0.9), except image
/// `drop`, whose file lists no face.
fn exact_predictions(val: &Split, drop: Option<usize>) -> tempfile::TempDir {
    let pred = tempfile::tempdir().unwrap();
    for (i, image) in val.images.iter().enumerate() {
        let folder = pred.path().join(image.event());
        std::fs::create_dir_all(&folder).unwrap();
        let faces: Vec<&Face> = if drop == Some(i) { Vec::new() } else { image.faces.iter().collect() };
        let mut text = format!("{}\n{}\n", image.stem(), faces.len());
        for f in faces {
            let [x, y, w, h] = f.bbox.to_xywh();
            text.push_str(&format!("{x} {y} {w} {h} 0.9\n"));
        }
        std::fs::write(folder.join(format!("{}.txt", image.stem())), text).unwrap();
    }
    pred
}

/// Picks `choice` in the error browser's "Errors" combo.
fn pick_errors_mode(harness: &mut Harness<'_, Studio>, choice: &str) {
    harness.get_by_role_and_label(Role::ComboBox, "Errors").click();
    harness.step();
    harness.step();
    harness.get_by_label(choice).click();
    harness.step();
    harness.step();
}

/// Folder A (exact boxes) is evaluated and kept, folder B (one image's faces dropped) evaluated
/// after it; ticking A compares them: the table has B (the current evaluation) first with
/// "(+0.0000)" and A with its AP's difference to B's (positive: A finds more), and the "Errors"
/// combo lists exactly the dropped faces as found by A and missed by B once the comparison
/// arrives from its worker thread; picking one opens its image.
#[test]
fn keep_an_evaluation_and_compare_the_next_one_with_it() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 8);
    let (dataset, _) = Dataset::open(dir.path()).unwrap();
    let val = dataset.split(SplitKind::Val).unwrap();
    let kept_faces = |i: usize| val.images[i].faces.iter().filter(|f| !f.is_invalid()).count();
    let dropped = (0..val.images.len()).max_by_key(|&i| kept_faces(i)).unwrap();
    let expected = kept_faces(dropped);
    assert!(expected >= 1, "an image with faces to drop");
    let (pred_a, pred_b) = (exact_predictions(val, None), exact_predictions(val, Some(dropped)));
    let (name_a, name_b) = (pred_a.path().display().to_string(), pred_b.path().display().to_string());
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = evaluate_in_the_panel(dir.path(), pred_a.path(), recovery.path());
    let ap_a = harness.state().evaluate.outcome.as_ref().unwrap().report.settings[0].ap;
    harness.get_by_label("Keep for comparison").click();
    harness.step();
    harness.step();
    {
        let kept = &harness.state().evaluate.kept;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, name_a);
        assert!(!kept[0].ticked, "kept unticked");
    }

    harness.state_mut().evaluate.pred_dir = name_b.clone();
    harness.step();
    harness.get_by_label("Run evaluation").click();
    step_until(&mut harness, "the second evaluation", 60, |s| {
        s.evaluate.outcome.as_ref().is_some_and(|o| o.source == name_b)
    });
    let ap_b = harness.state().evaluate.outcome.as_ref().unwrap().report.settings[0].ap;
    assert!(ap_b < ap_a, "B misses faces: {ap_b} vs {ap_a}");
    assert!(harness.query_by_role_and_label(Role::ComboBox, "Errors").is_none(), "nothing ticked yet");

    harness.get_by_role_and_label(Role::CheckBox, &name_a).click();
    harness.step();
    harness.step();
    assert!(harness.state().evaluate.kept[0].ticked);
    assert_eq!(harness.state().evaluate.compared().len(), 1, "one ground truth: A can be compared");
    harness.get_by_label("all AP");
    harness.get_by_label(&format!("{ap_b:.4} (+0.0000)"));
    let difference = ap_a - ap_b;
    harness.get_by_label(&format!("{ap_a:.4} (+{difference:.4})"));

    let id_a = harness.state().evaluate.kept[0].id;
    pick_errors_mode(&mut harness, &format!("Found by {name_a}, missed by {name_b}"));
    assert_eq!(harness.state().evaluate.errors_mode, ErrorsMode::FoundByRun(id_a));
    step_until(&mut harness, "the comparison", 30, |s| s.evaluate.differences_are_current());
    let gt = GroundTruth::open(dir.path(), SplitKind::Val).unwrap().0;
    let (event, stem) = (val.images[dropped].event(), val.images[dropped].stem());
    let image = gt.find_image(event, stem).unwrap();
    let entries = harness.state().evaluate.difference_entries().unwrap().to_vec();
    assert_eq!(entries.len(), expected, "exactly the dropped faces: {entries:?}");
    assert!(entries.iter().all(|e| e.image == image), "{entries:?}");
    harness.get_by_label_contains(&format!("{expected} faces found by {name_a} and missed by {name_b}"));
    harness.get_by_label(&format!("{event}/{stem}: face {}", entries[0].face + 1)).click();
    step_until(&mut harness, "the picked face's image", 30, |s| s.evaluate.shown_image() == Some(image));
    assert_eq!(harness.state().evaluate.diff_selected, Some(entries[0]));

    // The other direction: B finds nothing A misses (the same comparison, no new computation).
    pick_errors_mode(&mut harness, &format!("Found by {name_b}, missed by {name_a}"));
    assert_eq!(harness.state().evaluate.errors_mode, ErrorsMode::FoundByCurrent(id_a));
    step_until(&mut harness, "the comparison", 30, |s| s.evaluate.differences_are_current());
    assert_eq!(harness.state().evaluate.difference_entries().map(|e| e.len()), Some(0));
    assert_eq!(harness.state().evaluate.diff_selected, None, "a new mode picks nothing");

    // Unticked, the comparison goes and the browser lists every image again.
    harness.get_by_role_and_label(Role::CheckBox, &name_a).click();
    harness.step();
    harness.step();
    assert_eq!(harness.state().evaluate.errors_mode, ErrorsMode::All);
    assert!(harness.query_by_label(&format!("{ap_b:.4} (+0.0000)")).is_none());
}

/// With a model as the source, the form offers test-time augmentation (off by default); a
/// prediction folder has no model to run, so no checkbox.
#[test]
fn the_tta_checkbox_is_offered_when_a_model_runs() {
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), Vec::new(), recovery.path());
    harness.get_by_label("Evaluate").click();
    harness.step();
    assert_eq!(harness.state().evaluate.source, Source::Model);
    assert!(!harness.state().evaluate.tta, "off by default");
    harness.get_by_role_and_label(Role::CheckBox, TTA_LABEL).click();
    harness.step();
    assert!(harness.state().evaluate.tta);
    harness.get_by_label("Prediction folder").click();
    harness.step();
    harness.step();
    assert_eq!(harness.state().evaluate.source, Source::Predictions);
    assert!(harness.query_by_role_and_label(Role::CheckBox, TTA_LABEL).is_none());
}

#[test]
fn keys_step_through_images_and_faces_and_open_the_shortcut_list() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 8);
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    step_until(&mut harness, "the dataset", 60, |s| s.dataset.dataset.is_some());
    harness.step();
    let visible = harness.state().dataset.visible.clone();
    assert!(visible.len() >= 3, "{visible:?}");
    harness.state_mut().dataset.selected = Some(visible[0]);
    harness.step();
    harness.key_press(Key::ArrowDown);
    harness.step();
    assert_eq!(harness.state().dataset.selected, Some(visible[1]), "ArrowDown: the next shown image");
    let split = harness.state().dataset.split;
    step_until(&mut harness, "the viewer showing it", 30, |s| {
        s.dataset.shown_image().is_some_and(|shown| shown.split == split && shown.index == visible[1])
    });
    let faces = harness.state().dataset.dataset.as_ref().unwrap().split(split).unwrap().images[visible[1]].faces.len();
    assert_eq!(harness.state().dataset.drawn_faces, faces, "its faces drawn");
    harness.key_press(Key::PageDown);
    harness.step();
    assert_eq!(harness.state().dataset.selected, Some(visible[2]));
    harness.key_press(Key::ArrowUp);
    harness.step();
    assert_eq!(harness.state().dataset.selected, Some(visible[1]), "ArrowUp: the previous one");
    harness.key_press(Key::End);
    harness.step();
    assert_eq!(harness.state().dataset.selected, visible.last().copied(), "End: the last one");
    harness.key_press(Key::Home);
    harness.step();
    assert_eq!(harness.state().dataset.selected, Some(visible[0]), "Home: the first one");

    let split = harness.state().dataset.split;
    let with_faces =
        *visible.iter().find(|&&i| faces_of(harness.state(), split, i).len() >= 2).expect("an image with two faces");
    harness.state_mut().dataset.selected = Some(with_faces);
    harness.state_mut().dataset.selected_face = None;
    harness.step();
    harness.key_press(Key::Tab);
    harness.step();
    assert_eq!(harness.state().dataset.selected_face, Some(0), "Tab selects the first face");
    harness.key_press(Key::Tab);
    harness.step();
    assert_eq!(harness.state().dataset.selected_face, Some(1), "and then the next");
    harness.key_press_modifiers(Modifiers::SHIFT, Key::Tab);
    harness.step();
    assert_eq!(harness.state().dataset.selected_face, Some(0), "Shift+Tab goes back");
    assert!(!harness.ctx.egui_wants_keyboard_input(), "Tab moved no widget focus: the keys stay the panel's");

    harness.key_press(Key::D);
    harness.step();
    assert_eq!(harness.state().dataset.tool, facestudio::app::Tool::Draw);
    harness.key_press(Key::Escape);
    harness.step();
    assert_eq!(harness.state().dataset.tool, facestudio::app::Tool::Select);

    assert!(harness.query_by_label("Keyboard shortcuts").is_none());
    harness.key_press(Key::Questionmark);
    harness.step();
    harness.step();
    assert!(harness.state().dataset.show_shortcuts);
    harness.get_by_label("Keyboard shortcuts");
    harness.get_by_label("next suspect of the review queue");
    harness.key_press(Key::F1);
    harness.step();
    harness.step();
    assert!(!harness.state().dataset.show_shortcuts, "F1 closes it again");
}

/// A synthetic dataset whose first image is replaced by the real `test.jpg` (27 faces), its
/// faces unannotated, the fd1mb model loaded in the Dataset panel and that image predicted, its
/// suggestions shown from `confidence`.
struct PredictedPhoto {
    harness: Harness<'static, Studio>,
    dir: tempfile::TempDir,
    _recovery: tempfile::TempDir,
    split: SplitKind,
    index: usize,
}

fn predicted_photo(assets: &Path, confidence: f32) -> PredictedPhoto {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 4);
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), vec![dir.path().to_path_buf()], recovery.path());
    step_until(&mut harness, "the dataset", 60, |s| s.dataset.dataset.is_some());
    let split = harness.state().dataset.split;
    let index = harness.state().dataset.visible[0];
    let image = facestudio::app::ImageRef { split, index };
    let path = {
        let data = harness.state().dataset.dataset.as_ref().unwrap();
        let s = data.split(split).unwrap();
        s.image_path(&s.images[index])
    };
    std::fs::copy(assets.join("photos/test.jpg"), &path).unwrap();
    harness.state_mut().dataset.dataset.as_mut().unwrap().split_mut(split).unwrap().images[index].faces.clear();
    harness.state_mut().dataset.selected = Some(index);
    step_until(&mut harness, "the image", 30, |s| s.dataset.view.transform.is_some());
    {
        let assist = &mut harness.state_mut().dataset.assist;
        assist.model_path = assets.join("weights/mobilenet0.25_Final.pth").display().to_string();
        assist.preset = Some("fd1mb-mnet".into());
        assist.device = DeviceChoice::Cpu;
        assist.confidence = confidence;
    }
    let ctx = harness.ctx.clone();
    harness.state_mut().dataset.load_assist_model(&ctx);
    step_until(&mut harness, "the model", 180, |s| s.dataset.assist.has_model());
    harness.state_mut().dataset.predict_images(&ctx, vec![image]);
    step_until(&mut harness, "the predictions", 180, |s| {
        s.dataset.assist.is_predicted(image) && !s.dataset.assist.is_predicting()
    });
    PredictedPhoto { harness, dir, _recovery: recovery, split, index }
}

#[test]
fn predict_an_image_accept_a_suggestion_undo_save_and_reload() {
    let Some(assets) = common::assets("predict_an_image_accept_a_suggestion_undo_save_and_reload") else { return };
    let PredictedPhoto { mut harness, dir, _recovery, split, index } = predicted_photo(&assets, 0.3);
    assert_eq!(harness.state().dataset.assist.predicted_in(split), 1);
    let found = harness.state_mut().dataset.find_mistakes();
    assert_eq!(found, harness.state().dataset.suspects().len());
    let suggestions = harness.state().dataset.suggestions();
    assert!(suggestions.len() >= 10, "the model finds the photo's faces: {}", suggestions.len());
    let confident = suggestions.iter().filter(|d| d.score >= 0.8).count();
    assert!(confident > 0 && found >= confident, "each confident suggestion is a missing face in the review queue");

    assert!(harness.state_mut().dataset.accept_suggestion(0));
    harness.step();
    let faces = faces_of(harness.state(), split, index);
    assert_eq!(faces.len(), 1);
    let accepted = faces[0].clone();
    assert!(accepted.landmarks.is_some(), "the prediction's landmarks came with it");
    assert_eq!(accepted.bbox, suggestions[0].bbox);
    harness.state_mut().dataset.undo();
    harness.step();
    assert!(faces_of(harness.state(), split, index).is_empty(), "undo");
    assert!(harness.state_mut().dataset.accept_suggestion(0));
    harness.step();
    assert!(harness.state_mut().dataset.save());
    let (reloaded, _) = Dataset::open(dir.path()).unwrap();
    let saved = &reloaded.split(split).unwrap().images[index].faces;
    assert!(
        saved.iter().any(|f| f.landmarks.is_some()
            && (f.bbox.x1() - accepted.bbox.x1()).abs() <= 1.0
            && (f.bbox.y1() - accepted.bbox.y1()).abs() <= 1.0),
        "{saved:?}"
    );
}

/// The model's own faces as the annotation of a real photo, one box then shifted by a planted
/// mistake: the review queue puts it first, `N` walks to it and `Enter` takes the predicted box.
#[test]
fn walk_the_review_queue_with_the_keyboard_and_fix_a_planted_mistake() {
    let Some(assets) = common::assets("walk_the_review_queue_with_the_keyboard_and_fix_a_planted_mistake") else {
        return;
    };
    let PredictedPhoto { mut harness, dir: _dir, _recovery, split, index } = predicted_photo(&assets, 0.8);
    let accepted = harness.state_mut().dataset.accept_all_in_split();
    assert!(accepted >= 10, "the photo's confident faces become the annotation ({accepted})");
    // The planted mistake: face 0 moved by half its width.
    let (planted, original) = {
        let data = harness.state_mut().dataset.dataset.as_mut().unwrap();
        let face = &mut data.split_mut(split).unwrap().images[index].faces[0];
        let original = face.bbox;
        face.bbox = original.translate(original.width() * 0.45, 0.0).unwrap();
        (face.bbox, original)
    };
    let found = harness.state_mut().dataset.find_mistakes();
    assert!(found >= 1);
    let first = harness.state().dataset.suspects()[0].clone();
    assert_eq!((first.kind, first.face), (facestudio::annotate::SuspectKind::BoxMismatch, Some(0)), "{first:?}");
    assert_eq!(first.bbox, planted);
    let fitted = harness.state().dataset.view.transform.unwrap().scale;
    harness.key_press(egui::Key::N);
    harness.step();
    harness.step();
    let zoomed = harness.state().dataset.view.transform.unwrap().scale;
    assert!(zoomed > fitted * 1.5, "the view zooms to the suspect ({fitted} → {zoomed})");
    assert_eq!(harness.state().dataset.selected, Some(index));
    assert_eq!(harness.state().dataset.selected_face, Some(0), "the suspect's face is selected");
    harness.key_press(egui::Key::Enter);
    harness.step();
    let fixed = faces_of(harness.state(), split, index)[0].bbox;
    let iou = fixed.iou(&original);
    assert!(iou > 0.9, "the predicted box replaced the planted one (IoU {iou} with the true box)");
    assert!(harness.state().dataset.has_unsaved_changes());
    harness.state_mut().dataset.undo();
    harness.step();
    assert_eq!(faces_of(harness.state(), split, index)[0].bbox, planted, "one undo step");
}

/// An error stays until dismissed and can be copied whole (to paste into a bug report).
#[test]
fn an_error_notice_copies_its_text() {
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), Vec::new(), recovery.path());
    harness.state().notices.error("cannot read /tmp/x.jpg: broken JPEG at byte 42");
    // The status bar grows to hold the notice: let its layout settle before clicking.
    for _ in 0..3 {
        harness.step();
    }
    harness.get_by_label("Copy").click();
    // The click is a press and a release: look at the output of the next few frames.
    let copied = (0..4).any(|_| {
        harness.step();
        harness.output().platform_output.commands.iter().any(|c| {
            matches!(c, egui::OutputCommand::CopyText(text) if text == "cannot read /tmp/x.jpg: broken JPEG at byte 42")
        })
    });
    assert!(copied, "no CopyText command");
    assert_eq!(harness.state().notices.all().len(), 1, "copying does not dismiss");
}

/// The Detect panel's photo list moves with Down, Up, Page Down and End, as every list does.
#[test]
fn keys_move_through_the_detect_panels_photos() {
    let dir = tempfile::tempdir().unwrap();
    let photos: Vec<PathBuf> = (0..14)
        .map(|i| {
            let path = dir.path().join(format!("p{i:02}.png"));
            image::RgbImage::from_pixel(40, 30, image::Rgb([i * 10, 80, 120])).save(&path).unwrap();
            path
        })
        .collect();
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = studio(Settings::default(), photos, recovery.path());
    step_until(&mut harness, "the photos", 60, |s| s.detect.photos.len() == 14);
    harness.state_mut().detect.selected = Some(0);
    harness.step();
    for (key, expected) in
        [(Key::ArrowDown, 1), (Key::PageDown, 11), (Key::End, 13), (Key::ArrowUp, 12), (Key::Home, 0)]
    {
        harness.key_press(key);
        harness.step();
        assert_eq!(harness.state().detect.selected, Some(expected), "{key:?}");
    }
}

/// A finished run folder as the trainer leaves it: 3 epochs of 10 steps of a two-stage network,
/// AP 0.4, 0.6 and 0.5 after them, its config, and the checkpoint of epoch 2 still there.
fn finished_run(runs: &Path, name: &str) -> PathBuf {
    use facestudio::train::{RunFolder, StageTerms, TrainEvent};
    let dir = runs.join(name);
    let folder = RunFolder::new(&dir);
    folder.create(&TrainConfig::trial("data", &dir)).unwrap();
    let devices = vec!["CPU (flex, 2 threads)".to_string()];
    let mut events = vec![TrainEvent::Started { epochs: 3, steps_per_epoch: 10, resumed_at_step: 0, devices }];
    for step in 1..=30u64 {
        // A falling loss with a wiggle, so smoothing changes it.
        let loss = 3.0 - step as f32 * 0.05 + if step % 2 == 0 { 0.3 } else { -0.3 };
        let terms = StageTerms { classification: loss / 2.0, boxes: loss / 3.0, landmarks: loss / 6.0 };
        let epoch = ((step - 1) / 10 + 1) as u32;
        events.push(TrainEvent::Step {
            step,
            epoch,
            loss,
            stages: vec![terms; 2],
            lr: 0.01,
            images_per_s: 20.0,
            eta_s: 0.0,
        });
        if step % 10 == 0 {
            events.push(TrainEvent::Checkpoint { epoch, step, path: folder.checkpoint_dir(step) });
            let ap = [0.4, 0.6, 0.5][epoch as usize - 1];
            events.push(TrainEvent::Val { epoch, step, ap: vec![("all".into(), ap)], stages: Vec::new() });
        }
    }
    events.push(TrainEvent::Finished { step: 30, stopped: false });
    let lines: String = events.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    std::fs::write(folder.metrics_path(), lines).unwrap();
    let best = folder.checkpoint_model_path(20);
    std::fs::create_dir_all(best.parent().unwrap()).unwrap();
    std::fs::write(best, b"weights").unwrap();
    dir
}

/// The studio on its Train tab with `form`, listing the runs in `runs`.
fn train_tab(runs: &Path, form: TrainForm, recovery: &Path) -> Harness<'static, Studio> {
    let settings = Settings { runs_dir: Some(runs.display().to_string()), train_form: form, ..Settings::default() };
    let mut harness = studio(settings, Vec::new(), recovery);
    harness.state_mut().tab = Tab::Train;
    // The panels come in over the first frames: let the layout settle before clicking.
    for _ in 0..3 {
        harness.step();
    }
    harness
}

/// Ticks a listed run so its curves show, and lets the side list come in.
fn overlay_run(harness: &mut Harness<'_, Studio>, name: &str) {
    harness.get_by_label_contains(&format!("{name}: step 30")).click();
    for _ in 0..3 {
        harness.step();
    }
}

fn plotted_terms(harness: &Harness<'_, Studio>) -> Vec<String> {
    harness.state().train.plotted_losses().into_iter().map(|l| l.term).collect()
}

#[test]
fn a_loss_term_switched_off_in_the_side_list_leaves_the_loss_chart() {
    let runs = tempfile::tempdir().unwrap();
    let run = finished_run(runs.path(), "run-a");
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = train_tab(runs.path(), TrainForm::default(), recovery.path());
    overlay_run(&mut harness, "run-a");
    assert_eq!(plotted_terms(&harness).len(), 7, "total and three terms per stage: {:?}", plotted_terms(&harness));
    harness.get_by_role_and_label(Role::CheckBox, "s1 boxes").click();
    harness.step();
    harness.step();
    assert!(!harness.state().train.charts.is_shown(&run, "s1 boxes"));
    let shown = plotted_terms(&harness);
    assert!(shown.len() == 6 && !shown.iter().any(|t| t == "s1 boxes"), "{shown:?}");
    // The run's own checkbox, half ticked now, shows all its terms, then hides them.
    harness.get_by_role_and_label(Role::CheckBox, "run-a").click();
    harness.step();
    harness.step();
    assert_eq!(plotted_terms(&harness).len(), 7);
    harness.get_by_role_and_label(Role::CheckBox, "run-a").click();
    harness.step();
    harness.step();
    assert!(plotted_terms(&harness).is_empty(), "{:?}", plotted_terms(&harness));
}

#[test]
fn the_smoothing_slider_smooths_the_plotted_losses_as_tensorboard_does() {
    let runs = tempfile::tempdir().unwrap();
    finished_run(runs.path(), "run-a");
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = train_tab(runs.path(), TrainForm::default(), recovery.path());
    overlay_run(&mut harness, "run-a");
    let raw = harness.state().train.runs[0].curves.losses["total"].clone();
    let total = |h: &Harness<'_, Studio>| h.state().train.plotted_losses().into_iter().find(|l| l.term == "total");
    assert_eq!(total(&harness).unwrap().points, raw, "no smoothing at first");
    harness.get_by_role_and_label(Role::Slider, "Smoothing").set_value_accesskit(0.9);
    harness.step();
    harness.step();
    let w = harness.state().train.charts.smoothing;
    assert!((w - 0.9).abs() < 1e-6, "{w}");
    let smoothed = total(&harness).unwrap();
    // The second point: (w·(1 − w)·v₀ + (1 − w)·v₁) / (1 − w²), the moving average debiased.
    let expected = (w * (1.0 - w) * raw[0][1] + (1.0 - w) * raw[1][1]) / (1.0 - w * w);
    assert!((smoothed.points[1][1] - expected).abs() < 1e-9, "{} vs {expected}", smoothed.points[1][1]);
    assert_eq!(smoothed.raw, raw, "the logged values stay behind, faintly");
}

#[test]
fn the_log_scale_plots_the_losses_as_log10() {
    let runs = tempfile::tempdir().unwrap();
    finished_run(runs.path(), "run-a");
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = train_tab(runs.path(), TrainForm::default(), recovery.path());
    overlay_run(&mut harness, "run-a");
    harness.get_by_role_and_label(Role::CheckBox, "Log scale").click();
    harness.step();
    harness.step();
    assert!(harness.state().train.charts.log_scale);
    let raw = harness.state().train.runs[0].curves.losses["total"].clone();
    let total = harness.state().train.plotted_losses().into_iter().find(|l| l.term == "total").unwrap();
    let expected: Vec<[f64; 2]> = raw.iter().map(|&[x, y]| [x, y.log10()]).collect();
    assert_eq!(total.points, expected);
}

#[test]
fn a_renamed_run_keeps_its_name_after_a_restart() {
    let runs = tempfile::tempdir().unwrap();
    let run = finished_run(runs.path(), "run-a");
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = train_tab(runs.path(), TrainForm::default(), recovery.path());
    harness.get_by_label("Rename").click();
    harness.step();
    harness.step();
    harness.get_by_role_and_label(Role::TextInput, "New name").set_text_value_accesskit("baseline 640");
    harness.step();
    harness.get_by_label("Save name").click();
    harness.step();
    harness.step();
    assert_eq!(harness.state().train.runs[0].name(), "baseline 640");
    harness.get_by_label_contains("baseline 640: step 30");
    assert_eq!(std::fs::read_to_string(run.join("name.txt")).unwrap(), "baseline 640");
    assert!(run.is_dir() && !runs.path().join("baseline 640").exists(), "the folder itself stays");
    drop(harness);

    let mut harness = train_tab(runs.path(), TrainForm::default(), recovery.path());
    assert_eq!(harness.state().train.runs.len(), 1);
    assert_eq!(harness.state().train.runs[0].name(), "baseline 640", "read back from the run folder");
    overlay_run(&mut harness, "baseline 640");
    harness.get_by_role_and_label(Role::CheckBox, "baseline 640");
}

#[test]
fn the_best_epoch_is_marked_with_its_checkpoint_and_the_config_shown_beside_the_curves() {
    let runs = tempfile::tempdir().unwrap();
    let run = finished_run(runs.path(), "run-a");
    let recovery = tempfile::tempdir().unwrap();
    let mut harness = train_tab(runs.path(), TrainForm::default(), recovery.path());
    overlay_run(&mut harness, "run-a");
    let checkpoint = run.join("checkpoint-00000020/model.bpk");
    harness.get_by_label(&format!("best: epoch 2, AP 0.600 — {}", checkpoint.display()));
    assert!(harness.query_by_label("optimizer.momentum").is_none(), "the config starts folded");
    harness.get_by_label("Config").click();
    harness.step();
    harness.step();
    harness.get_by_label("optimizer.momentum");
    harness.get_by_label("lr_schedule");
}

#[test]
fn the_train_form_proposes_what_fits_the_cpu_and_offers_it_again_after_an_edit() {
    let runs = tempfile::tempdir().unwrap();
    let recovery = tempfile::tempdir().unwrap();
    let on_cpu = TrainForm { device: "cpu".into(), ..TrainForm::default() };
    assert_eq!((on_cpu.preset.as_str(), on_cpu.image_size, on_cpu.batch), ("seed-full", 640, 8), "a GPU's run");
    let mut harness = train_tab(runs.path(), on_cpu, recovery.path());
    let form = &harness.state().train.form;
    assert_eq!((form.preset.as_str(), form.image_size, form.batch), ("tiny", 256, 4));
    harness.get_by_label("Preset, image size and batch: the defaults for the CPU (tiny at 256², batch 4)");
    assert!(harness.query_by_label("Use defaults for this device").is_none());
    harness.state_mut().train.form.batch = 3;
    harness.step();
    harness.step();
    assert_eq!(harness.state().train.form.batch, 3, "an edit is the user's");
    harness.get_by_label("Use defaults for this device").click();
    harness.step();
    harness.step();
    assert_eq!(harness.state().train.form.batch, 4);
}

#[test]
fn the_train_form_warns_when_the_dataset_has_no_val_split() {
    let with_val = tempfile::tempdir().unwrap();
    synth(with_val.path(), 6);
    let without_val = tempfile::tempdir().unwrap();
    synth(without_val.path(), 6);
    std::fs::remove_file(without_val.path().join("wider_face_split/wider_face_val_bbx_gt.txt")).unwrap();
    std::fs::remove_dir_all(without_val.path().join("retinaface_gt_v1.1/val")).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let recovery = tempfile::tempdir().unwrap();
    let form = TrainForm::from_config(&TrainConfig::trial(with_val.path(), runs.path().join("r")));
    let form = TrainForm { val_every: 1, ..form };
    let mut harness = train_tab(runs.path(), form, recovery.path());
    step_until(&mut harness, "the dataset read", 60, |s| s.train.dataset_summary().is_some());
    assert!(harness.state().train.warnings().is_empty(), "{:?}", harness.state().train.warnings());
    assert!(harness.query_by_label_contains("no val split").is_none());
    harness.state_mut().train.form.data = without_val.path().display().to_string();
    step_until(&mut harness, "the other dataset read", 60, |s| s.train.dataset_summary().is_some());
    harness.get_by_label_contains("The dataset has no val split: no validation AP curve is drawn");
}

#[test]
fn estimate_times_a_few_steps_and_shows_the_time_per_epoch() {
    let data = tempfile::tempdir().unwrap();
    synth(data.path(), 8);
    let runs = tempfile::tempdir().unwrap();
    let recovery = tempfile::tempdir().unwrap();
    let form = TrainForm::from_config(&TrainConfig::trial(data.path(), runs.path().join("timed")));
    let mut harness = train_tab(runs.path(), form, recovery.path());
    harness.get_by_label("Estimate").click();
    harness.step();
    assert!(harness.state().train.is_estimating());
    step_until(&mut harness, "the estimate", 120, |s| s.train.estimate().is_some());
    let estimate = harness.state().train.estimate().unwrap().clone();
    assert_eq!((estimate.images, estimate.steps_per_epoch, estimate.synthetic.clone()), (Some(8), Some(4), None));
    harness.get_by_label_contains(&format!("≈ {:.3} s/step, ≈", estimate.seconds_per_step));
    harness.get_by_label_contains("per epoch (8 images, 4 steps) on CPU");
    assert!(!runs.path().join("timed").exists(), "an estimate writes no run");
}
