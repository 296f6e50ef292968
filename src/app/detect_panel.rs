//! The Detect panel: photos dropped or opened, a model picked, faces found in the background.
//! The network runs once per photo; the confidence and NMS sliders re-filter the cached
//! candidates, so moving them is instant.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender, unbounded};
use image::RgbImage;

use super::jobs::{Jobs, Task};
use super::model_export::{ModelExport, ModelSource};
use super::model_picker::{LoadedModel, ModelChoice, load_detector, model_picker_ui};
use super::notices::Notices;
use super::overlay;
use super::viewer::ImageView;
use super::widgets::{list_keys, list_row_ui, stage_choice_ui, text_field_ui};
use crate::detect::{
    CandidateLimits, Candidates, DetectError, Detection, Detector, ExportFormat, FaceFilter, ImageDetections,
    InputSize, Outcome, RunOptions, run_over,
};
use crate::model::DeviceChoice;

/// One photo of the session.
pub struct Photo {
    pub path: PathBuf,
    pub image: Option<Arc<RgbImage>>,
    pub candidates: Option<Candidates>,
    pub error: Option<String>,
}

/// What a photo's network run keeps: the evaluation's floor, so the confidence slider can go down
/// to it without running the network again.
const DETECT_LIMITS: CandidateLimits = CandidateLimits::EVALUATION;

type DetectResult = (u64, usize, Result<(Arc<RgbImage>, Candidates), String>);

pub struct DetectPanel {
    jobs: Jobs,
    notices: Notices,
    pub model_path: String,
    /// The network of a PyTorch checkpoint; `None` for facestudio model files.
    pub preset: Option<String>,
    pub device: DeviceChoice,
    /// The scoring stage; `None`: the model's last.
    pub stage: Option<usize>,
    /// Longest photo side given to the network; 0 keeps the original size.
    pub max_size: u32,
    detector: Option<Arc<Detector>>,
    pub model_label: Option<String>,
    /// What the loaded model runs on.
    pub device_label: Option<String>,
    model_task: Option<Task<Result<LoadedModel, String>>>,
    /// What the model being loaded, then the loaded one, was read from.
    loading_source: Option<ModelSource>,
    pub loaded_source: Option<ModelSource>,
    pub model_export: ModelExport,
    pub photos: Vec<Photo>,
    pub selected: Option<usize>,
    pub confidence: f32,
    pub nms: f32,
    /// Network runs so far (the sliders must not add any).
    pub forward_passes: Arc<AtomicUsize>,
    /// Bumped when the photo list or the model changes, so late results of old runs are dropped.
    run_id: u64,
    results_tx: Sender<DetectResult>,
    results: Receiver<DetectResult>,
    running: Option<Task<()>>,
    filtered: Option<(usize, f32, f32, Vec<Detection>)>,
    view: ImageView,
    shown: Option<usize>,
    pub export_dir: String,
    pub export_formats: Vec<ExportFormat>,
    /// The typed path of photos to add.
    pub add_field: String,
}

impl DetectPanel {
    pub fn new(jobs: Jobs, notices: Notices) -> DetectPanel {
        let (results_tx, results) = unbounded();
        let model_export = ModelExport::new(jobs.clone(), notices.clone());
        DetectPanel {
            jobs,
            notices,
            model_path: String::new(),
            preset: None,
            device: DeviceChoice::Auto,
            stage: None,
            max_size: 0,
            detector: None,
            model_label: None,
            device_label: None,
            model_task: None,
            loading_source: None,
            loaded_source: None,
            model_export,
            photos: Vec::new(),
            selected: None,
            confidence: FaceFilter::DISPLAY.confidence,
            nms: FaceFilter::DISPLAY.nms_threshold,
            forward_passes: Arc::new(AtomicUsize::new(0)),
            run_id: 0,
            results_tx,
            results,
            running: None,
            filtered: None,
            view: ImageView::default(),
            shown: None,
            export_dir: "detections".into(),
            export_formats: vec![ExportFormat::Json],
            add_field: String::new(),
        }
    }

    /// Loads the model named by the form in the background.
    pub fn load_model(&mut self, ctx: &egui::Context) {
        self.loading_source =
            Some(ModelSource { path: PathBuf::from(self.model_path.trim()), preset: self.preset.clone() });
        self.model_task = Some(load_detector(
            &self.jobs,
            &self.notices,
            ctx,
            &self.model_path,
            self.preset.clone(),
            self.device,
            self.stage,
        ));
    }

    /// Adds photos (files, or folders searched for images) and detects faces in them.
    pub fn add_photos(&mut self, paths: &[PathBuf]) {
        match crate::detect::collect_images(paths) {
            Ok(found) => {
                let first_new = self.photos.len();
                self.photos.extend(found.into_iter().map(|path| Photo {
                    path,
                    image: None,
                    candidates: None,
                    error: None,
                }));
                if self.selected.is_none() && self.photos.len() > first_new {
                    self.selected = Some(first_new);
                }
            }
            Err(err) => self.notices.error(err.to_string()),
        }
    }

    pub fn clear_photos(&mut self) {
        self.photos.clear();
        self.selected = None;
        self.shown = None;
        self.filtered = None;
        self.view.clear();
        self.restart();
    }

    fn restart(&mut self) {
        self.run_id += 1;
        if let Some(task) = self.running.take() {
            task.progress.cancel();
        }
    }

    /// The faces of the selected photo under the current sliders.
    pub fn detections(&mut self) -> Option<&[Detection]> {
        let index = self.selected?;
        let candidates = self.photos.get(index)?.candidates.as_ref()?;
        let stale =
            self.filtered.as_ref().is_none_or(|(i, c, n, _)| (*i, *c, *n) != (index, self.confidence, self.nms));
        if stale {
            let filter = self.filter();
            self.filtered = Some((index, self.confidence, self.nms, candidates.filter(&filter)));
        }
        self.filtered.as_ref().map(|(_, _, _, d)| d.as_slice())
    }

    /// The sliders' filter (the candidates hold their floor: no slider goes below it).
    fn filter(&self) -> FaceFilter {
        FaceFilter { confidence: self.confidence, nms_threshold: self.nms, ..FaceFilter::EVALUATION }
    }

    pub fn logic(&mut self, ctx: &egui::Context) {
        if let Some(task) = &self.model_task
            && let Some(result) = task.poll()
        {
            self.model_task = None;
            match result {
                Ok(LoadedModel { detector, device }) => {
                    self.model_label =
                        Some(format!("{} ({}) on {device}", self.model_path.trim(), detector.config().preset));
                    self.device_label = Some(device);
                    self.detector = Some(Arc::new(detector));
                    self.loaded_source = self.loading_source.take();
                    for photo in &mut self.photos {
                        photo.candidates = None;
                        photo.error = None;
                    }
                    self.filtered = None;
                    self.restart();
                }
                Err(err) => self.notices.error(format!("Cannot load the model: {err}")),
            }
        }
        self.model_export.logic();
        // Whether the job ended is read before draining: every result it sent is then drained
        // below, so no photo is detected twice.
        // A finished job has sent its value before it stopped running, so a missing value means
        // its thread died.
        let ended = self.running.as_ref().filter(|t| !t.is_running()).map(|t| t.poll().is_some());
        while let Ok((run, index, result)) = self.results.try_recv() {
            if run != self.run_id {
                continue;
            }
            if let Some(photo) = self.photos.get_mut(index) {
                match result {
                    Ok((image, candidates)) => {
                        photo.image = Some(image);
                        photo.candidates = Some(candidates);
                    }
                    Err(err) => {
                        self.notices.error(err.clone());
                        photo.error = Some(err);
                    }
                }
            }
        }
        match ended {
            Some(true) => self.running = None,
            Some(false) => {
                // The job's thread died (a panic in the network): mark what it left undone, or
                // the next frame would start it again on the same photos.
                self.running = None;
                for photo in self.photos.iter_mut().filter(|p| p.candidates.is_none() && p.error.is_none()) {
                    photo.error = Some(format!("{}: detection stopped unexpectedly", photo.path.display()));
                }
                self.notices.error("Detection stopped unexpectedly; the photos left are marked as failed");
            }
            None => {}
        }
        self.start_detection(ctx);
    }

    /// Runs the network over every photo that has no result yet, one job for all of them.
    fn start_detection(&mut self, ctx: &egui::Context) {
        let Some(detector) = &self.detector else { return };
        if self.running.is_some() {
            return;
        }
        let todo: Vec<(usize, PathBuf)> = self
            .photos
            .iter()
            .enumerate()
            .filter(|(_, p)| p.candidates.is_none() && p.error.is_none())
            .map(|(i, p)| (i, p.path.clone()))
            .collect();
        if todo.is_empty() {
            return;
        }
        let detector = detector.clone();
        let results = self.results_tx.clone();
        let run = self.run_id;
        let size = if self.max_size == 0 { InputSize::Original } else { InputSize::MaxSize(self.max_size) };
        let passes = self.forward_passes.clone();
        let ctx2 = ctx.clone();
        let on = self.device_label.as_deref().map(|d| format!(" on {d}")).unwrap_or_default();
        let label = format!("Detecting faces in {} photo(s){on}", todo.len());
        self.running = Some(self.jobs.spawn(label, ctx, move |progress| {
            progress.set_total(todo.len());
            // One photo per network run, so each shows as soon as it is done.
            let options = RunOptions { size, limits: DETECT_LIMITS, ..RunOptions::default() };
            let paths: Vec<&Path> = todo.iter().map(|(_, path)| path.as_path()).collect();
            let mut first = 0;
            while first < paths.len() {
                let mut next = first;
                let ended = run_over(&detector, &paths[first..], &options, |outcome| {
                    next = first + outcome.index() + 1;
                    let result = match outcome {
                        Outcome::Detected(detected) => {
                            passes.fetch_add(1, Ordering::Relaxed);
                            let candidates = detected.stages.into_iter().next().unwrap_or_default();
                            Ok((Arc::new(detected.image), candidates))
                        }
                        Outcome::Skipped { error, .. } => Err(error.to_string()),
                    };
                    progress.advance();
                    if results.send((run, todo[next - 1].0, result)).is_err() || progress.is_cancelled() {
                        return std::ops::ControlFlow::Break(());
                    }
                    ctx2.request_repaint();
                    std::ops::ControlFlow::Continue(())
                });
                match ended {
                    // The network failed on the photo after the last one reported (one photo per
                    // run): that photo fails (a GPU out of memory on one huge photo), the rest go on.
                    Err(DetectError::Network(err)) if next < paths.len() => {
                        progress.advance();
                        if results.send((run, todo[next].0, Err(err.to_string()))).is_err() {
                            return;
                        }
                        first = next + 1;
                    }
                    _ => return,
                }
            }
        }));
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::left("detect-controls").default_size(300.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls_ui(ui));
        });
        egui::CentralPanel::default().show(ui, |ui| self.photo_view_ui(ui));
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Model");
        let choice = ModelChoice { path: &mut self.model_path, preset: &mut self.preset, device: &mut self.device };
        model_picker_ui(ui, "detect-preset", choice);
        stage_choice_ui(ui, "detect-stage", &mut self.stage);
        ui.horizontal(|ui| {
            ui.label("Max size");
            ui.add(egui::DragValue::new(&mut self.max_size).range(0..=8192).suffix(" px"))
                .on_hover_text("Longest photo side given to the network; 0 keeps the original size");
        });
        ui.horizontal(|ui| {
            let loading = self.model_task.is_some();
            if ui.add_enabled(!loading && !self.model_path.trim().is_empty(), egui::Button::new("Load model")).clicked()
            {
                self.load_model(ui.ctx());
            }
            if loading {
                ui.spinner();
            }
        });
        match &self.model_label {
            Some(label) => ui.label(format!("Loaded: {label}")),
            None => ui.weak("No model loaded"),
        };
        ui.collapsing("Model export", |ui| self.model_export.ui(ui, self.loaded_source.as_ref()));
        ui.separator();
        ui.heading("Thresholds");
        ui.add(egui::Slider::new(&mut self.confidence, DETECT_LIMITS.floor..=1.0).text("confidence"));
        ui.add(egui::Slider::new(&mut self.nms, 0.05..=0.95).text("NMS IoU"));
        if let Some(n) = self.detections().map(|d| d.len()) {
            ui.strong(format!("{n} faces"));
        }
        ui.separator();
        ui.heading("Photos");
        ui.weak("Drop photos or folders on the window, or type a path:");
        ui.horizontal(|ui| {
            text_field_ui(ui, "Path", &mut self.add_field, "photo or folder");
            if ui.button("Add").clicked() && !self.add_field.trim().is_empty() {
                let path = PathBuf::from(self.add_field.trim());
                self.add_photos(&[path]);
                self.add_field.clear();
            }
        });
        if !self.photos.is_empty() && ui.button("Clear photos").clicked() {
            self.clear_photos();
        }
        let mut clicked = None;
        let keyed = list_keys(ui.ctx(), self.photos.len(), self.selected, 10);
        let shown = keyed.or(self.selected);
        for (i, photo) in self.photos.iter().enumerate() {
            let name =
                photo.path.file_name().map_or_else(|| photo.path.display().to_string(), |n| n.to_string_lossy().into());
            let state = match (&photo.candidates, &photo.error) {
                (_, Some(_)) => "error",
                (Some(_), _) => "done",
                _ if self.detector.is_none() => "needs a model",
                _ => "waiting",
            };
            if list_row_ui(ui, i, shown, keyed, format!("{name}  [{state}]")) {
                clicked = Some(i);
            }
        }
        if let Some(i) = clicked.or(keyed) {
            self.selected = Some(i);
        }
        ui.separator();
        ui.heading("Export");
        text_field_ui(ui, "Export folder", &mut self.export_dir, "where the files go");
        ui.horizontal(|ui| {
            for (format, name) in [
                (ExportFormat::Json, "JSON"),
                (ExportFormat::Csv, "CSV"),
                (ExportFormat::Wider, "WIDER txt"),
                (ExportFormat::Png, "PNG"),
            ] {
                let mut on = self.export_formats.contains(&format);
                if ui.checkbox(&mut on, name).changed() {
                    self.export_formats.retain(|f| *f != format);
                    if on {
                        self.export_formats.push(format);
                    }
                }
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Export this photo").clicked()
                && let Some(i) = self.selected
            {
                self.export(&[i]);
            }
            if ui.button("Export all").clicked() {
                let all: Vec<usize> = (0..self.photos.len()).collect();
                self.export(&all);
            }
        });
    }

    /// Writes the chosen formats for `indexes` under the export folder, with the current sliders.
    pub fn export(&mut self, indexes: &[usize]) -> usize {
        let out = PathBuf::from(self.export_dir.trim());
        let filter = self.filter();
        let chosen: Vec<PathBuf> = indexes.iter().filter_map(|&i| self.photos.get(i).map(|p| p.path.clone())).collect();
        let clashes = crate::detect::output_clashes(&out, &chosen);
        if let Some((file, photos)) = clashes.first() {
            let photos: Vec<String> = photos.iter().map(|p| p.display().to_string()).collect();
            self.notices.error(format!(
                "Not exported: {} photo group(s) would share result files ({} for {}); export them into separate folders",
                clashes.len(),
                file.display(),
                photos.join(", ")
            ));
            return 0;
        }
        let mut written = 0;
        for &i in indexes {
            let Some(photo) = self.photos.get(i) else { continue };
            let (Some(image), Some(candidates)) = (&photo.image, &photo.candidates) else {
                self.notices.error(format!("{}: not detected yet, not exported", photo.path.display()));
                continue;
            };
            let result = ImageDetections {
                image: photo.path.clone(),
                width: image.width(),
                height: image.height(),
                detections: candidates.filter(&filter),
            };
            match result.write(&out, &self.export_formats, Some(image)) {
                Ok(files) => written += files.len(),
                Err(err) => self.notices.error(format!("Cannot export to {}: {err}", out.display())),
            }
        }
        self.notices.info(format!("Exported {written} file(s) to {}", out.display()));
        written
    }

    fn photo_view_ui(&mut self, ui: &mut egui::Ui) {
        let Some(index) = self.selected else {
            ui.centered_and_justified(|ui| ui.weak("Drop photos here"));
            return;
        };
        if self.shown != Some(index)
            && let Some(image) = self.photos.get(index).and_then(|p| p.image.clone())
        {
            self.view.set_image(ui.ctx(), "detect-photo", &image);
            self.shown = Some(index);
        }
        if self.shown != Some(index) {
            let text = match self.photos.get(index) {
                Some(Photo { error: Some(err), .. }) => err.clone(),
                _ if self.detector.is_none() => "Load a model to detect faces".to_string(),
                _ => "Detecting…".to_string(),
            };
            ui.centered_and_justified(|ui| ui.label(text));
            return;
        }
        let detections = self.detections().map(<[Detection]>::to_vec).unwrap_or_default();
        let Some(input) = self.view.show_ui(ui, true) else { return };
        let painter = ui.painter_at(input.response.rect);
        let color = egui::Color32::from_rgb(60, 220, 90);
        for d in &detections {
            overlay::draw_box(&painter, &input.transform, &d.bbox, color, 1.5);
            overlay::draw_score(&painter, &input.transform, &d.bbox, d.score, color);
            if let Some(l) = &d.landmarks {
                overlay::draw_landmarks(&painter, &input.transform, l, None);
            }
        }
    }

    /// Whether a dropped file is a model rather than a photo.
    pub fn is_model_file(path: &Path) -> bool {
        path.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["bpk", "pth", "pt", "safetensors"].contains(&e.to_ascii_lowercase().as_str()))
    }
}
