//! The Evaluate panel: a model (run over the ground truth's images) or a prediction folder,
//! scored with the official WIDER FACE protocol in the background; the AP table, PR curves, and
//! an error browser that shows true positives, false positives and missed faces over each image.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use egui::Color32;
use egui_plot::{Legend, Line, Plot};
use image::RgbImage;

use super::jobs::{Jobs, Task};
use super::model_picker::{ModelChoice, model_picker_ui, open_model};
use super::notices::Notices;
use super::viewer::ImageView;
use super::widgets::{choice_ui, stage_choice_ui, text_field_ui};
use crate::dataset::SplitKind;
use crate::detect::{EvalImage, detect_images};
use crate::eval::{
    EvalOptions, EvalReport, Evaluator, FaceVerdict, GroundTruth, ImageMatches, Predictions, Verdict, evaluate,
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
    pub gt: Arc<GroundTruth>,
    pub predictions: Arc<Predictions>,
    pub images_dir: Option<PathBuf>,
}

/// One image of the error browser.
pub struct ImageRow {
    pub index: usize,
    pub matches: ImageMatches,
    pub missed: usize,
    pub false_positives: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Missed,
    FalsePositives,
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
    task: Option<Task<Result<EvalOutcome, String>>>,
    pub outcome: Option<EvalOutcome>,
    pub setting: String,
    /// Normalised score from which predictions count in the browser.
    pub threshold: f64,
    pub sort: SortBy,
    rows_key: Option<(String, u64, SortBy)>,
    pub rows: Vec<ImageRow>,
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
            setting: String::new(),
            threshold: 0.5,
            sort: SortBy::Missed,
            rows_key: None,
            rows: Vec::new(),
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
            Ok(EvalOutcome { report, gt: Arc::new(gt), predictions: Arc::new(predictions), images_dir })
        }));
    }

    pub fn logic(&mut self, ctx: &egui::Context) {
        if let Some(task) = &self.task
            && let Some(result) = task.poll()
        {
            self.task = None;
            match result {
                Ok(outcome) => {
                    for warning in outcome.report.warnings.iter().take(3) {
                        self.notices.info(format!("Evaluation: {warning}"));
                    }
                    self.setting = outcome.report.settings.last().map(|s| s.name.clone()).unwrap_or_default();
                    self.outcome = Some(outcome);
                    self.rows_key = None;
                    self.selected = None;
                    self.shown = None;
                    self.view.clear();
                }
                Err(err) => self.notices.error(format!("Evaluation failed: {err}")),
            }
        }
        self.update_rows();
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

    fn update_rows(&mut self) {
        let Some(outcome) = &self.outcome else { return };
        let key = (self.setting.clone(), self.threshold.to_bits(), self.sort);
        if self.rows_key.as_ref() == Some(&key) {
            return;
        }
        let evaluator = Evaluator::new(&outcome.gt, &outcome.predictions, &EvalOptions::OFFICIAL);
        let mut rows: Vec<ImageRow> = outcome
            .gt
            .images()
            .iter()
            .enumerate()
            .filter_map(|(index, image)| {
                let matches = evaluator.image_matches(&self.setting, &image.event, &image.name, self.threshold).ok()?;
                let (missed, false_positives) = (matches.missed(), matches.false_positives());
                Some(ImageRow { index, matches, missed, false_positives })
            })
            .collect();
        match self.sort {
            SortBy::Missed => rows.sort_by_key(|r| (std::cmp::Reverse(r.missed), std::cmp::Reverse(r.false_positives))),
            SortBy::FalsePositives => {
                rows.sort_by_key(|r| (std::cmp::Reverse(r.false_positives), std::cmp::Reverse(r.missed)))
            }
        }
        self.rows = rows;
        self.rows_key = Some(key);
        self.selected = None;
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
            let curves_height = (ui.available_height() * 0.4).max(150.0);
            Plot::new("pr-curves")
                .height(curves_height)
                .legend(Legend::default())
                .x_axis_label("recall")
                .y_axis_label("precision")
                .include_x(0.0)
                .include_x(1.0)
                .include_y(0.0)
                .include_y(1.0)
                .show(ui, |plot| {
                    for s in &outcome.report.settings {
                        let points: Vec<[f64; 2]> = s.curve.iter().map(|p| [p.recall, p.precision]).collect();
                        plot.line(Line::new(format!("{} (AP {:.3})", s.name, s.ap), points));
                    }
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
        ui.heading("Errors");
        let settings = outcome.report.settings.iter().map(|s| (s.name.clone(), s.name.clone()));
        choice_ui(ui, egui::ComboBox::from_label("Setting"), &mut self.setting, settings);
        ui.add(egui::Slider::new(&mut self.threshold, 0.0..=1.0).text("score threshold"));
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
