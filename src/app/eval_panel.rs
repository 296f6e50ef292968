//! The Evaluate panel: a model (run over the ground truth's images) or a prediction folder,
//! scored with the official WIDER FACE protocol in the background; the AP table, PR curves with
//! their operating points, AP by size and attribute, landmark accuracy (`eval_details`), and an
//! error browser that shows true positives, false positives and missed faces over each image (its
//! list recomputed on a worker thread when the threshold, setting or sort changes: `eval_rows`).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use egui::Color32;
use image::RgbImage;

use super::eval_details::{breakdown_ui, current_point_text, landmarks_ui, operating_points_ui, pr_curves_ui};
use super::eval_rows::{ImageRow, RowsKey, RowsWorker, SortBy, error_rows};
use super::jobs::{Jobs, Task};
use super::model_picker::{ModelChoice, model_picker_ui, open_model};
use super::notices::Notices;
use super::viewer::ImageView;
use super::widgets::{choice_ui, stage_choice_ui, text_field_ui};
use crate::dataset::SplitKind;
use crate::detect::{EvalImage, detect_images};
use crate::eval::{
    EvalDetails, EvalOptions, EvalReport, FaceVerdict, GroundTruth, OperatingPoint, Predictions, Verdict, curve_point,
    evaluate,
};
use crate::model::DeviceChoice;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Model,
    Predictions,
}

/// A finished evaluation with what the error browser needs.
pub struct EvalOutcome {
    pub report: EvalReport,
    /// Operating points, AP by size and attribute, landmark accuracy.
    pub details: EvalDetails,
    pub gt: Arc<GroundTruth>,
    pub predictions: Arc<Predictions>,
    pub images_dir: Option<PathBuf>,
}

/// What the evaluation job hands back: the outcome and the error list of its first setting at
/// the threshold and sort of when it started (its key's generation is the panel's to set).
struct Evaluated {
    outcome: EvalOutcome,
    rows_key: RowsKey,
    rows: Vec<ImageRow>,
}

pub struct EvalPanel {
    jobs: Jobs,
    notices: Notices,
    pub gt_dir: String,
    pub split: SplitKind,
    /// Needed for the official ground truth; a dataset folder knows its images.
    pub images_dir: String,
    pub source: Source,
    pub model_path: String,
    pub preset: Option<String>,
    pub device: DeviceChoice,
    /// The scoring stage of the model; `None`: its last.
    pub stage: Option<usize>,
    pub pred_dir: String,
    task: Option<Task<Result<Evaluated, String>>>,
    pub outcome: Option<EvalOutcome>,
    /// Counts the outcomes, so that an error list of an earlier one is never shown.
    generation: u64,
    pub setting: String,
    /// Normalised score from which predictions count in the browser.
    pub threshold: f64,
    pub sort: SortBy,
    /// What `rows` were computed for.
    rows_key: Option<RowsKey>,
    /// The error list shown: the last one computed, until the one for the current setting,
    /// threshold and sort arrives from `rows_worker`.
    pub rows: Vec<ImageRow>,
    /// Started on the first change of the error list's setting, threshold or sort.
    rows_worker: Option<RowsWorker>,
    pub selected: Option<usize>,
    view: ImageView,
    shown: Option<usize>,
    image_task: Option<(usize, Task<Result<RgbImage, String>>)>,
}

impl EvalPanel {
    pub fn new(jobs: Jobs, notices: Notices) -> EvalPanel {
        EvalPanel {
            jobs,
            notices,
            gt_dir: String::new(),
            split: SplitKind::Val,
            images_dir: String::new(),
            source: Source::Model,
            model_path: String::new(),
            preset: None,
            device: DeviceChoice::Auto,
            stage: None,
            pred_dir: String::new(),
            task: None,
            outcome: None,
            generation: 0,
            setting: String::new(),
            threshold: 0.5,
            sort: SortBy::Missed,
            rows_key: None,
            rows: Vec::new(),
            rows_worker: None,
            selected: None,
            view: ImageView::default(),
            shown: None,
            image_task: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Starts the evaluation the form describes.
    pub fn run(&mut self, ctx: &egui::Context) {
        if self.task.is_some() {
            return;
        }
        let gt_dir = PathBuf::from(self.gt_dir.trim());
        let split = self.split;
        let images_field = self.images_dir.trim().to_string();
        let source = self.source;
        let model = PathBuf::from(self.model_path.trim());
        let preset = self.preset.clone();
        let stage = self.stage;
        let device = self.device;
        let pred_dir = PathBuf::from(self.pred_dir.trim());
        let (threshold, sort) = (self.threshold, self.sort);
        let label = match source {
            Source::Model => format!("Evaluating on {}", device.describe()),
            Source::Predictions => "Evaluating".to_string(),
        };
        let notices = self.notices.clone();
        self.task = Some(self.jobs.spawn(label, ctx, move |progress| {
            let (gt, dataset_images) = GroundTruth::open(&gt_dir, split).map_err(|e| e.to_string())?;
            let images_dir = if images_field.is_empty() { dataset_images } else { Some(PathBuf::from(images_field)) };
            let predictions = match source {
                Source::Predictions => {
                    Predictions::read_dir(&pred_dir).map_err(|e| format!("{}: {e}", pred_dir.display()))?
                }
                Source::Model => {
                    let images = images_dir.clone().ok_or(
                        "the official ground truth names no image folder: fill in Images (e.g. WIDER_val/images)",
                    )?;
                    let detector = open_model(&notices, &model, preset.as_deref(), device, stage)?.detector;
                    let list = EvalImage::list(&gt, &images);
                    progress.set_total(list.len());
                    // An unreadable image is left without predictions: the report counts it as
                    // missing and says so.
                    detect_images(&detector, &list, |_| {
                        progress.advance();
                        if progress.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                    })
                    .map_err(|e| format!("evaluation {e}"))?
                }
            };
            let report = evaluate(&gt, &predictions, &EvalOptions::OFFICIAL);
            let cancelled = || "evaluation cancelled".to_string();
            if progress.is_cancelled() {
                return Err(cancelled());
            }
            let details = EvalDetails::compute(&gt, &predictions, &report);
            // The browser's first list, so it shows with the report.
            let setting = report.settings.last().map(|s| s.name.clone()).unwrap_or_default();
            let rows_key = RowsKey::new(0, &setting, threshold, sort);
            let rows = error_rows(&gt, &predictions, &rows_key, || progress.is_cancelled()).ok_or_else(cancelled)?;
            let outcome =
                EvalOutcome { report, details, gt: Arc::new(gt), predictions: Arc::new(predictions), images_dir };
            Ok(Evaluated { outcome, rows_key, rows })
        }));
    }

    pub fn logic(&mut self, ctx: &egui::Context) {
        if let Some(task) = &self.task
            && let Some(result) = task.poll()
        {
            self.task = None;
            match result {
                Ok(Evaluated { outcome, rows_key, rows }) => {
                    for warning in outcome.report.warnings.iter().take(3) {
                        self.notices.info(format!("Evaluation: {warning}"));
                    }
                    self.generation += 1;
                    self.setting = rows_key.setting.clone();
                    self.outcome = Some(outcome);
                    self.rows = rows;
                    self.rows_key = Some(rows_key.with_generation(self.generation));
                    if let Some(worker) = &mut self.rows_worker {
                        worker.forget_pending();
                    }
                    self.selected = None;
                    self.shown = None;
                    self.view.clear();
                }
                Err(err) => self.notices.error(format!("Evaluation failed: {err}")),
            }
        }
        self.update_rows(ctx);
        if let Some((index, task)) = &self.image_task
            && let Some(result) = task.poll()
        {
            let index = *index;
            self.image_task = None;
            self.shown = Some(index);
            match result {
                Ok(image) => self.view.set_image(ctx, "eval-image", &image),
                Err(err) => {
                    self.notices.error(err);
                    self.view.clear();
                }
            }
        }
        self.request_image(ctx);
    }

    /// The key of the error list the browser should show now.
    fn wanted_rows(&self) -> RowsKey {
        RowsKey::new(self.generation, &self.setting, self.threshold, self.sort)
    }

    /// Whether the error list shown is the one of the current setting, threshold and sort (after
    /// a change it is recomputed on a worker thread and the previous list stays until then).
    pub fn rows_are_current(&self) -> bool {
        self.rows_key.as_ref() == Some(&self.wanted_rows())
    }

    /// Whether a recomputed error list is on its way.
    pub fn rows_pending(&self) -> bool {
        self.rows_worker.as_ref().is_some_and(|w| w.pending().is_some())
    }

    /// Takes a finished error list, and asks the worker for the current one when neither the
    /// list shown nor the one on its way is it. Never waits.
    fn update_rows(&mut self, ctx: &egui::Context) {
        let wanted = self.wanted_rows();
        if let Some(result) = self.rows_worker.as_mut().and_then(RowsWorker::poll)
            && result.key.generation == self.generation
            && self.rows_key.as_ref() != Some(&wanted)
        {
            // Newer than the list shown even when not yet the wanted one (the slider is moving).
            self.set_rows(result.key, result.rows);
        }
        let Some(outcome) = &self.outcome else { return };
        let pending = self.rows_worker.as_ref().and_then(RowsWorker::pending);
        if self.rows_key.as_ref() == Some(&wanted) || pending == Some(&wanted) {
            return;
        }
        let (gt, predictions) = (outcome.gt.clone(), outcome.predictions.clone());
        let worker = self.rows_worker.get_or_insert_with(|| RowsWorker::spawn(ctx));
        if !worker.request(wanted.clone(), gt.clone(), predictions.clone()) {
            // The thread is gone (a bug made it panic): another one.
            let mut fresh = RowsWorker::spawn(ctx);
            fresh.request(wanted, gt, predictions);
            self.rows_worker = Some(fresh);
        }
    }

    /// Shows `rows`, keeping the selected image selected when it is still listed.
    fn set_rows(&mut self, key: RowsKey, rows: Vec<ImageRow>) {
        let selected_image = self.selected.and_then(|s| self.rows.get(s)).map(|row| row.index);
        self.rows = rows;
        self.selected = selected_image.and_then(|image| self.rows.iter().position(|row| row.index == image));
        self.rows_key = Some(key);
    }

    /// The point of the score threshold on the browser's setting's curve.
    pub fn current_point(&self) -> Option<OperatingPoint> {
        let outcome = self.outcome.as_ref()?;
        let setting = outcome.report.setting(&self.setting)?;
        Some(curve_point(&setting.curve, outcome.report.score_normalisation, self.threshold))
    }

    fn request_image(&mut self, ctx: &egui::Context) {
        let (Some(row), Some(outcome)) = (self.selected.and_then(|s| self.rows.get(s)), &self.outcome) else { return };
        let index = row.index;
        if self.shown == Some(index) || self.image_task.as_ref().is_some_and(|(i, _)| *i == index) {
            return;
        }
        let Some(dir) = &outcome.images_dir else {
            return;
        };
        let image = &outcome.gt.images()[index];
        let path = dir.join(&image.event).join(format!("{}.jpg", image.name));
        let task =
            self.jobs.spawn("Loading image", ctx, move |_| crate::detect::load_image(&path).map_err(|e| e.to_string()));
        self.image_task = Some((index, task));
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::left("eval-form").default_size(300.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                self.form_ui(ui);
                ui.separator();
                self.browser_list_ui(ui);
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let Some(outcome) = &self.outcome else {
                ui.centered_and_justified(|ui| ui.weak("Run an evaluation to see AP and PR curves"));
                return;
            };
            ui.horizontal(|ui| {
                egui::Grid::new("ap-table").striped(true).show(ui, |ui| {
                    ui.strong("setting");
                    ui.strong("AP");
                    ui.strong("faces");
                    ui.end_row();
                    for s in &outcome.report.settings {
                        ui.label(&s.name);
                        ui.label(format!("{:.4}", s.ap));
                        ui.label(s.faces.to_string());
                        ui.end_row();
                    }
                });
                ui.separator();
                ui.vertical(|ui| {
                    let r = &outcome.report;
                    ui.label(format!("{} images, {} faces, {} predictions", r.images, r.faces, r.detections));
                    if !r.missing_prediction_files.is_empty() {
                        ui.label(format!("{} images without predictions", r.missing_prediction_files.len()));
                    }
                });
            });
            let current = self.current_point();
            let top = (ui.available_height() * 0.45).max(200.0);
            ui.horizontal_top(|ui| {
                let plot_size = egui::vec2((ui.available_width() * 0.6).max(240.0), top);
                pr_curves_ui(ui, &outcome.report, &outcome.details, &self.setting, current, plot_size);
                ui.separator();
                ui.vertical(|ui| {
                    egui::ScrollArea::vertical().id_salt("eval-details").max_height(top).show(ui, |ui| {
                        operating_points_ui(ui, &outcome.details);
                        breakdown_ui(ui, &outcome.details);
                        landmarks_ui(ui, &outcome.details);
                    });
                });
            });
            self.image_view_ui(ui);
        });
    }

    fn form_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Ground truth");
        text_field_ui(ui, "Folder", &mut self.gt_dir, "dataset folder or official .mat folder");
        ui.horizontal(|ui| {
            ui.label("Split");
            for kind in [SplitKind::Val, SplitKind::Train] {
                ui.selectable_value(&mut self.split, kind, kind.name());
            }
        });
        text_field_ui(ui, "Images", &mut self.images_dir, "only for the official .mat folder");
        ui.heading("Predictions");
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.source, Source::Model, "Run a model");
            ui.selectable_value(&mut self.source, Source::Predictions, "Prediction folder");
        });
        match self.source {
            Source::Model => {
                let choice =
                    ModelChoice { path: &mut self.model_path, preset: &mut self.preset, device: &mut self.device };
                model_picker_ui(ui, "eval-preset", choice);
                stage_choice_ui(ui, "eval-stage", &mut self.stage);
            }
            Source::Predictions => {
                text_field_ui(ui, "Folder", &mut self.pred_dir, "<folder>/<event>/<image>.txt");
            }
        }
        ui.horizontal(|ui| {
            if ui.add_enabled(self.task.is_none(), egui::Button::new("Run evaluation")).clicked() {
                self.run(ui.ctx());
            }
            if self.task.is_some() {
                ui.spinner();
            }
        });
    }

    fn browser_list_ui(&mut self, ui: &mut egui::Ui) {
        let Some(outcome) = &self.outcome else { return };
        ui.horizontal(|ui| {
            ui.heading("Errors");
            if self.rows_pending() {
                ui.spinner().on_hover_text("Updating the list for the new threshold, setting or sort");
            }
        });
        let settings = outcome.report.settings.iter().map(|s| (s.name.clone(), s.name.clone()));
        choice_ui(ui, egui::ComboBox::from_label("Setting"), &mut self.setting, settings);
        ui.add(egui::Slider::new(&mut self.threshold, 0.0..=1.0).text("score threshold"))
            .on_hover_text("The normalised score from which predictions count in the list and the images");
        if let Some(point) = self.current_point() {
            ui.label(current_point_text(&point)).on_hover_text(
                "Precision, recall and F1 of the setting's curve at this threshold (the cross on the curve)",
            );
        }
        ui.horizontal(|ui| {
            ui.label("Sort by");
            ui.selectable_value(&mut self.sort, SortBy::Missed, "missed faces");
            ui.selectable_value(&mut self.sort, SortBy::FalsePositives, "false positives");
        });
        let mut clicked = None;
        egui::ScrollArea::vertical().id_salt("eval-rows").max_height(400.0).show_rows(
            ui,
            18.0,
            self.rows.len(),
            |ui, range| {
                for i in range {
                    let row = &self.rows[i];
                    let image = &outcome.gt.images()[row.index];
                    let text = format!(
                        "{}/{}: {} missed, {} FP, {} TP",
                        image.event,
                        image.name,
                        row.missed,
                        row.false_positives,
                        row.matches.true_positives()
                    );
                    if ui.selectable_label(self.selected == Some(i), text).clicked() {
                        clicked = Some(i);
                    }
                }
            },
        );
        if clicked.is_some() {
            self.selected = clicked;
        }
    }

    fn image_view_ui(&mut self, ui: &mut egui::Ui) {
        let Some(row) = self.selected.and_then(|s| self.rows.get(s)) else {
            ui.weak("Pick an image in the error list to see its true positives (green), false positives (red) and missed faces (orange)");
            return;
        };
        if self.outcome.as_ref().is_some_and(|o| o.images_dir.is_none()) {
            ui.weak("Fill in Images to see the pictures");
            return;
        }
        if self.shown != Some(row.index) || !self.view.has_image() {
            ui.spinner();
            return;
        }
        let Some(outcome) = &self.outcome else { return };
        let boxes = &outcome.gt.images()[row.index].boxes;
        let matches = &row.matches;
        let Some(input) = self.view.show_ui(ui, true) else { return };
        let t = input.transform;
        let painter = ui.painter_at(input.response.rect);
        let stroke = |c: Color32| egui::Stroke::new(1.5, c);
        let rect =
            |x: f64, y: f64, w: f64, h: f64| t.rect_to_screen([x as f32, y as f32, (x + w) as f32, (y + h) as f32]);
        for (b, verdict) in boxes.iter().zip(&matches.faces) {
            let color = match verdict {
                FaceVerdict::Missed => Color32::from_rgb(255, 150, 0),
                FaceVerdict::Recalled { .. } => Color32::from_rgb(60, 140, 255),
                FaceVerdict::NotKept => Color32::from_gray(120),
            };
            painter.rect_stroke(rect(b.x, b.y, b.w, b.h), 0.0, stroke(color), egui::StrokeKind::Middle);
        }
        for d in &matches.detections {
            let color = match d.verdict {
                Verdict::TruePositive => Color32::from_rgb(60, 220, 90),
                Verdict::FalsePositive => Color32::from_rgb(240, 60, 60),
                Verdict::Ignored | Verdict::BelowThreshold => continue,
            };
            let r = rect(d.detection.x, d.detection.y, d.detection.w, d.detection.h);
            painter.rect_stroke(r, 0.0, stroke(color), egui::StrokeKind::Middle);
        }
    }
}
