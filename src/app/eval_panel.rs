//! The Evaluate panel: a model (run over the ground truth's images, optionally with test-time
//! augmentation) or a prediction folder, scored with the official WIDER FACE protocol in the
//! background; the AP table, PR curves with their operating points, AP by size and attribute,
//! landmark accuracy (`eval_details`), and an error browser that shows true positives, false
//! positives and missed faces over each image (its list recomputed on a worker thread when the
//! threshold, setting or sort changes: `eval_rows`). Evaluations kept for comparison and ticked
//! add a table of AP with the difference to the current one, their PR curves, and error-browser
//! modes listing the faces one run finds and the other misses (`eval_compare`, on another worker
//! thread).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use egui::Color32;
use image::RgbImage;

use super::eval_compare::{
    CURRENT_COLOR, DiffKey, DiffRequest, DiffResult, DiffWorker, DrawnRun, ErrorsMode, FaceEntry, KeptRun,
    compared_runs, comparison_table_ui, draw_comparison, errors_choices, run_color, same_ground_truth,
};
use super::eval_details::{breakdown_ui, current_point_text, landmarks_ui, operating_points_ui, pr_curves_ui};
use super::eval_rows::{ImageRow, RowsKey, RowsRequest, RowsWorker, SortBy, error_rows};
use super::jobs::{Jobs, Task};
use super::model_picker::{ModelChoice, model_picker_ui, open_model};
use super::notices::Notices;
use super::viewer::{ImageTransform, ImageView};
use super::widgets::{choice_ui, list_keys, list_row_ui, stage_choice_ui, text_field_ui};
use crate::dataset::SplitKind;
use crate::detect::{EvalImage, Outcome, Tta, detect_images, detect_images_tta};
use crate::eval::{
    EvalDetails, EvalOptions, EvalReport, FaceBox, FaceVerdict, GroundTruth, ImageMatches, OperatingPoint, Predictions,
    Verdict, curve_point, evaluate, raw_score,
};
use crate::model::DeviceChoice;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Model,
    Predictions,
}

/// The label of the test-time augmentation checkbox (`Tta::default()`).
pub const TTA_LABEL: &str = "Test-time augmentation (scales 0.5-2, mirrored)";

/// A finished evaluation with what the error browser needs.
pub struct EvalOutcome {
    pub report: EvalReport,
    /// Operating points, AP by size and attribute, landmark accuracy.
    pub details: EvalDetails,
    pub gt: Arc<GroundTruth>,
    pub predictions: Arc<Predictions>,
    pub images_dir: Option<PathBuf>,
    /// The model file or prediction folder evaluated, as typed in the form.
    pub source: String,
    /// Whether the model ran with test-time augmentation.
    pub tta: bool,
}

impl EvalOutcome {
    /// How the comparison names it: the model file or prediction folder, plus " (TTA)".
    pub fn name(&self) -> String {
        if self.tta { format!("{} (TTA)", self.source) } else { self.source.clone() }
    }
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
    /// Run the model with test-time augmentation (`Tta::default()`: scales 0.5, 1, 1.5, 2, each
    /// also mirrored, the longer side capped at 2150).
    pub tta: bool,
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
    /// Evaluations kept for comparison, in the order kept.
    pub kept: Vec<KeptRun>,
    /// The id of the last run kept.
    last_run_id: u64,
    /// What the error browser lists: every image, or the faces one of two runs recalls and the
    /// other misses.
    pub errors_mode: ErrorsMode,
    /// The comparison shown in a comparison mode: the last one computed for its run, until the
    /// one at the current confidence arrives from `diff_worker`.
    differences: Option<DiffResult>,
    /// Started when a comparison mode is first picked.
    diff_worker: Option<DiffWorker>,
    /// The face picked in a comparison mode's list (it stays picked when the list changes).
    pub diff_selected: Option<FaceEntry>,
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
            tta: false,
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
            kept: Vec::new(),
            last_run_id: 0,
            errors_mode: ErrorsMode::All,
            differences: None,
            diff_worker: None,
            diff_selected: None,
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
        let tta = (source == Source::Model && self.tta).then(Tta::default);
        let source_name = match source {
            Source::Model => self.model_path.trim().to_string(),
            Source::Predictions => self.pred_dir.trim().to_string(),
        };
        let label = match source {
            Source::Model if tta.is_some() => format!("Evaluating on {} with TTA", device.describe()),
            Source::Model => format!("Evaluating on {}", device.describe()),
            Source::Predictions => "Evaluating".to_string(),
        };
        // A kept run's ground truth is shared when the job reads the same one, so that the two
        // can be compared (and the ground truth is held once).
        let kept_gts: Vec<Arc<GroundTruth>> = self.kept.iter().map(|r| r.gt.clone()).collect();
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
                    let on_outcome = |_: &Outcome| {
                        progress.advance();
                        if progress.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                    };
                    let detected = match &tta {
                        Some(tta) => detect_images_tta(&detector, &list, tta, on_outcome),
                        None => detect_images(&detector, &list, on_outcome),
                    };
                    detected.map_err(|e| format!("evaluation {e}"))?
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
            let gt = kept_gts.into_iter().find(|kept| same_ground_truth(kept, &gt)).unwrap_or_else(|| Arc::new(gt));
            let outcome = EvalOutcome {
                report,
                details,
                gt,
                predictions: Arc::new(predictions),
                images_dir,
                source: source_name,
                tta: tta.is_some(),
            };
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
                    let aps: Vec<String> =
                        outcome.report.settings.iter().map(|s| format!("{} {:.4}", s.name, s.ap)).collect();
                    self.notices.info(format!("Evaluation of {} done: AP {}", outcome.name(), aps.join(", ")));
                    self.generation += 1;
                    self.setting = rows_key.setting.clone();
                    self.outcome = Some(outcome);
                    self.rows = rows;
                    self.rows_key = Some(rows_key.with_generation(self.generation));
                    if let Some(worker) = &mut self.rows_worker {
                        worker.forget_pending();
                    }
                    if let Some(worker) = &mut self.diff_worker {
                        worker.forget_pending();
                    }
                    self.differences = None;
                    self.diff_selected = None;
                    self.selected = None;
                    self.shown = None;
                    self.view.clear();
                }
                Err(err) => self.notices.error(format!("Evaluation failed: {err}")),
            }
        }
        // A comparison mode lasts as long as its run is compared (kept, ticked, same ground truth).
        let still_compared = self.errors_mode.run().is_none_or(|id| self.compared().iter().any(|r| r.id == id));
        if !still_compared {
            self.errors_mode = ErrorsMode::All;
            self.diff_selected = None;
        }
        self.update_rows(ctx);
        self.update_differences(ctx);
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
        if !worker.request(RowsRequest { key: wanted.clone(), gt: gt.clone(), predictions: predictions.clone() }) {
            // The thread is gone (a bug made it panic): another one.
            let mut fresh = RowsWorker::spawn(ctx);
            fresh.request(RowsRequest { key: wanted, gt, predictions });
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

    /// The kept runs compared with the current outcome: ticked and of its ground truth, in the
    /// order kept.
    pub fn compared(&self) -> Vec<&KeptRun> {
        compared_runs(&self.kept, self.outcome.as_ref().map(|o| &o.gt))
    }

    /// Keeps the current outcome for comparison (once), unticked.
    pub fn keep_current(&mut self) {
        let Some(outcome) = &self.outcome else { return };
        if self.kept.iter().any(|r| r.generation == self.generation) {
            return;
        }
        self.last_run_id += 1;
        self.kept.push(KeptRun {
            id: self.last_run_id,
            name: outcome.name(),
            generation: self.generation,
            report: outcome.report.clone(),
            gt: outcome.gt.clone(),
            predictions: outcome.predictions.clone(),
            ticked: false,
        });
    }

    /// The raw confidence the comparison modes read both runs at: the score-threshold slider's
    /// normalised score taken back to a raw score through the current outcome's normalisation
    /// (`raw_score`), so that the current outcome's faces are counted exactly as in the error
    /// list; the kept run is read at the same raw confidence through its own normalisation (as
    /// `eval::face_differences` reads both; `facestudio eval --compare-at` is the CLI's fixed
    /// confidence instead).
    pub fn compare_confidence(&self) -> Option<f64> {
        let outcome = self.outcome.as_ref()?;
        Some(raw_score(outcome.report.score_normalisation, self.threshold))
    }

    /// The key of the comparison the browser should show now (`None` in the All mode).
    fn wanted_differences(&self) -> Option<DiffKey> {
        let run = self.errors_mode.run()?;
        Some(DiffKey::new(self.generation, run, self.compare_confidence()?))
    }

    /// The faces listed in a comparison mode: of its run and the browser's setting, at the
    /// confidence last computed (the previous one while the new one is on its way). `None` in the
    /// All mode, or before the first comparison of this run arrives.
    pub fn difference_entries(&self) -> Option<&[FaceEntry]> {
        let run = self.errors_mode.run()?;
        let result = self.differences.as_ref().filter(|d| d.key.generation == self.generation && d.key.run == run)?;
        result.entries(&self.setting, self.errors_mode)
    }

    /// Whether the comparison shown is the one of the current mode and confidence.
    pub fn differences_are_current(&self) -> bool {
        self.wanted_differences().is_some_and(|wanted| self.differences.as_ref().is_some_and(|d| d.key == wanted))
    }

    /// Whether a comparison is on its way.
    pub fn differences_pending(&self) -> bool {
        self.diff_worker.as_ref().is_some_and(|w| w.pending().is_some())
    }

    /// Takes a finished comparison, and asks the worker for the current one when neither the one
    /// shown nor the one on its way is it. Never waits.
    fn update_differences(&mut self, ctx: &egui::Context) {
        if let Some(result) = self.diff_worker.as_mut().and_then(DiffWorker::poll)
            && result.key.generation == self.generation
        {
            self.differences = Some(result);
        }
        let Some(wanted) = self.wanted_differences() else { return };
        let shown = self.differences.as_ref().map(|d| &d.key);
        let pending = self.diff_worker.as_ref().and_then(DiffWorker::pending);
        if shown == Some(&wanted) || pending == Some(&wanted) {
            return;
        }
        let (Some(outcome), Some(run)) = (&self.outcome, self.kept.iter().find(|r| r.id == wanted.run)) else {
            return;
        };
        let (gt, current, other) = (outcome.gt.clone(), outcome.predictions.clone(), run.predictions.clone());
        let worker = self.diff_worker.get_or_insert_with(|| DiffWorker::spawn(ctx));
        if !worker.request(DiffRequest {
            key: wanted.clone(),
            gt: gt.clone(),
            current: current.clone(),
            run: other.clone(),
        }) {
            // The thread is gone (a bug made it panic): another one.
            let mut fresh = DiffWorker::spawn(ctx);
            fresh.request(DiffRequest { key: wanted, gt, current, run: other });
            self.diff_worker = Some(fresh);
        }
    }

    /// Picks a face of a comparison mode's list: its image opens, zoomed to it.
    fn select_difference(&mut self, entry: FaceEntry) {
        self.diff_selected = Some(entry);
        let face = self.outcome.as_ref().and_then(|o| o.gt.images().get(entry.image)?.boxes.get(entry.face).copied());
        if let Some(b) = face {
            self.view.focus([b.x as f32, b.y as f32, (b.x + b.w) as f32, (b.y + b.h) as f32]);
        }
    }

    /// The image the browser shows: the picked row's, or the picked face's in a comparison mode.
    fn selected_image(&self) -> Option<usize> {
        match self.errors_mode {
            ErrorsMode::All => self.selected.and_then(|s| self.rows.get(s)).map(|row| row.index),
            ErrorsMode::FoundByCurrent(_) | ErrorsMode::FoundByRun(_) => self.diff_selected.map(|e| e.image),
        }
    }

    /// The ground-truth image drawn in the view, once loaded.
    pub fn shown_image(&self) -> Option<usize> {
        self.shown.filter(|_| self.view.has_image())
    }

    fn request_image(&mut self, ctx: &egui::Context) {
        let (Some(index), Some(outcome)) = (self.selected_image(), &self.outcome) else { return };
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
                self.kept_runs_ui(ui);
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
                    ui.label(format!("Predictions: {}", outcome.source));
                    if outcome.tta {
                        ui.label("with TTA (scales 0.5, 1, 1.5, 2, each mirrored)");
                    }
                    ui.label(format!("{} images, {} faces, {} predictions", r.images, r.faces, r.detections));
                    if !r.missing_prediction_files.is_empty() {
                        ui.label(format!("{} images without predictions", r.missing_prediction_files.len()));
                    }
                });
            });
            {
                // The compared runs, as (name, report), in the order kept.
                let others: Vec<(&str, &EvalReport)> = compared_runs(&self.kept, Some(&outcome.gt))
                    .into_iter()
                    .map(|r| (r.name.as_str(), &r.report))
                    .collect();
                if !others.is_empty() {
                    ui.separator();
                    let name = outcome.name();
                    let mut rows: Vec<(&str, &EvalReport)> = vec![(name.as_str(), &outcome.report)];
                    rows.extend(others.iter().copied());
                    ui.strong("Comparison: AP with the difference to the first row");
                    comparison_table_ui(ui, &rows);
                }
                let current = self.current_point();
                let top = (ui.available_height() * 0.45).max(200.0);
                ui.horizontal_top(|ui| {
                    let plot_size = egui::vec2((ui.available_width() * 0.6).max(240.0), top);
                    pr_curves_ui(ui, &outcome.report, &outcome.details, &self.setting, current, &others, plot_size);
                    ui.separator();
                    ui.vertical(|ui| {
                        egui::ScrollArea::vertical().id_salt("eval-details").max_height(top).show(ui, |ui| {
                            operating_points_ui(ui, &outcome.details);
                            breakdown_ui(ui, &outcome.details);
                            landmarks_ui(ui, &outcome.details);
                        });
                    });
                });
            }
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
                ui.checkbox(&mut self.tta, TTA_LABEL).on_hover_text(
                    "Runs every image at scales 0.5, 1, 1.5 and 2 (the longer side capped at 2150 pixels), each \
                     also mirrored, and merges the detections before NMS, as the published WIDER numbers are \
                     produced; about eight times the work",
                );
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

    /// "Keep for comparison" and the kept runs, each with its tick (compared with the current
    /// outcome when ticked; runs of another ground truth cannot be) and a remove button.
    fn kept_runs_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Compare");
        let kept_already = self.kept.iter().any(|r| r.generation == self.generation);
        let keep = ui
            .add_enabled(self.outcome.is_some() && !kept_already, egui::Button::new("Keep for comparison"))
            .on_hover_text("Keeps this evaluation to compare the next ones of the same ground truth with")
            .on_disabled_hover_text(if kept_already { "This evaluation is kept" } else { "Run an evaluation first" });
        if keep.clicked() {
            self.keep_current();
        }
        let current_gt = self.outcome.as_ref().map(|o| o.gt.clone());
        let mut removed = None;
        for run in &mut self.kept {
            let comparable = current_gt.as_ref().is_some_and(|gt| Arc::ptr_eq(gt, &run.gt));
            ui.horizontal(|ui| {
                ui.add_enabled(comparable, egui::Checkbox::new(&mut run.ticked, run.name.clone()))
                    .on_hover_text("Compare with the current evaluation: AP table, PR curves, faces in Errors")
                    .on_disabled_hover_text("Evaluated on another ground truth: it cannot be compared with this one");
                if ui.small_button("Remove").on_hover_text("Forget this kept evaluation").clicked() {
                    removed = Some(run.id);
                }
            });
        }
        if let Some(id) = removed {
            self.kept.retain(|r| r.id != id);
        }
        if self.kept.is_empty() {
            ui.weak("Keep an evaluation, run another, then tick the kept one to compare them");
        }
    }

    fn browser_list_ui(&mut self, ui: &mut egui::Ui) {
        let Some(outcome) = &self.outcome else { return };
        ui.horizontal(|ui| {
            ui.heading("Errors");
            if self.rows_pending() || self.differences_pending() {
                ui.spinner().on_hover_text("Updating the list for the new threshold, setting, sort or comparison");
            }
        });
        let choices = {
            let compared = compared_runs(&self.kept, Some(&outcome.gt));
            (!compared.is_empty()).then(|| errors_choices(&outcome.name(), &compared))
        };
        if let Some(choices) = choices {
            let before = self.errors_mode;
            choice_ui(ui, egui::ComboBox::from_label("Errors"), &mut self.errors_mode, choices).on_hover_text(
                "Every image with its errors, or the faces one evaluation recalls and the other misses \
                 at the score threshold's confidence",
            );
            if self.errors_mode != before {
                self.diff_selected = None;
            }
        }
        let settings = outcome.report.settings.iter().map(|s| (s.name.clone(), s.name.clone()));
        choice_ui(ui, egui::ComboBox::from_label("Setting"), &mut self.setting, settings);
        ui.add(egui::Slider::new(&mut self.threshold, 0.0..=1.0).text("score threshold"))
            .on_hover_text("The normalised score from which predictions count in the list and the images");
        if let Some(point) = self.current_point() {
            ui.label(current_point_text(&point)).on_hover_text(
                "Precision, recall and F1 of the setting's curve at this threshold (the cross on the curve)",
            );
        }
        match self.errors_mode {
            ErrorsMode::All => self.rows_list_ui(ui),
            ErrorsMode::FoundByCurrent(_) | ErrorsMode::FoundByRun(_) => self.differences_list_ui(ui),
        }
    }

    /// The error list: every image with its missed faces, false and true positives.
    fn rows_list_ui(&mut self, ui: &mut egui::Ui) {
        let Some(outcome) = &self.outcome else { return };
        ui.horizontal(|ui| {
            ui.label("Sort by");
            ui.selectable_value(&mut self.sort, SortBy::Missed, "missed faces");
            ui.selectable_value(&mut self.sort, SortBy::FalsePositives, "false positives");
        });
        let mut clicked = None;
        let keyed = list_keys(ui.ctx(), self.rows.len(), self.selected, 10);
        let shown = keyed.or(self.selected);
        let mut rows = egui::ScrollArea::vertical().id_salt("eval-rows").max_height(400.0);
        if let Some(i) = keyed {
            // Rows wrap, so this offset is a first guess; the row scrolls itself fully into view
            // once it is drawn.
            rows = rows.vertical_scroll_offset((i as f32 * 18.0 - 100.0).max(0.0));
        }
        rows.show_rows(ui, 18.0, self.rows.len(), |ui, range| {
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
                if list_row_ui(ui, i, shown, keyed, text) {
                    clicked = Some(i);
                }
            }
        });
        if let Some(i) = clicked.or(keyed) {
            self.selected = Some(i);
        }
    }

    /// A comparison mode's list: the faces one run recalls and the other misses, one per line
    /// (faces numbered from 1 in the ground truth's order).
    fn differences_list_ui(&mut self, ui: &mut egui::Ui) {
        let Some(outcome) = &self.outcome else { return };
        let Some(run) = self.errors_mode.run().and_then(|id| self.kept.iter().find(|r| r.id == id)) else { return };
        let Some(entries) = self.difference_entries() else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak("Comparing the two evaluations over every image");
            });
            return;
        };
        let (found, missed) = match self.errors_mode {
            ErrorsMode::FoundByRun(_) => (run.name.clone(), outcome.name()),
            ErrorsMode::All | ErrorsMode::FoundByCurrent(_) => (outcome.name(), run.name.clone()),
        };
        let confidence = self.differences.as_ref().map_or(0.0, |d| d.key.confidence());
        ui.label(format!(
            "{} faces found by {found} and missed by {missed} at confidence {confidence:.3}",
            entries.len()
        ));
        let mut clicked = None;
        egui::ScrollArea::vertical().id_salt("eval-differences").max_height(400.0).show_rows(
            ui,
            18.0,
            entries.len(),
            |ui, range| {
                for entry in &entries[range] {
                    let image = &outcome.gt.images()[entry.image];
                    let text = format!("{}/{}: face {}", image.event, image.name, entry.face + 1);
                    if ui.selectable_label(self.diff_selected == Some(*entry), text).clicked() {
                        clicked = Some(*entry);
                    }
                }
            },
        );
        if let Some(entry) = clicked {
            self.select_difference(entry);
        }
    }

    fn image_view_ui(&mut self, ui: &mut egui::Ui) {
        let comparing = self.errors_mode != ErrorsMode::All;
        let Some(index) = self.selected_image() else {
            ui.weak(if comparing {
                "Pick a face in the list to see it (yellow) with the detections of both evaluations"
            } else {
                "Pick an image in the error list to see its true positives (green), false positives (red) and missed faces (orange)"
            });
            return;
        };
        if self.outcome.as_ref().is_some_and(|o| o.images_dir.is_none()) {
            ui.weak("Fill in Images to see the pictures");
            return;
        }
        if self.shown != Some(index) || !self.view.has_image() {
            ui.spinner();
            return;
        }
        if comparing {
            self.comparison_image_ui(ui, index);
            return;
        }
        let Some(row) = self.selected.and_then(|s| self.rows.get(s)) else { return };
        let Some(outcome) = &self.outcome else { return };
        let boxes = &outcome.gt.images()[row.index].boxes;
        let Some(input) = self.view.show_ui(ui, true) else { return };
        let painter = ui.painter_at(input.response.rect);
        draw_matches(&painter, input.transform, boxes, &row.matches);
    }

    /// A comparison mode's image: the picked face, the current outcome's and the run's detections
    /// that count at the comparison's confidence, a line naming the colours above it.
    fn comparison_image_ui(&mut self, ui: &mut egui::Ui, index: usize) {
        let Some(outcome) = &self.outcome else { return };
        let compared = compared_runs(&self.kept, Some(&outcome.gt));
        let Some(id) = self.errors_mode.run() else { return };
        let Some((k, run)) = compared.iter().enumerate().find(|(_, r)| r.id == id) else { return };
        let Some(confidence) = self.compare_confidence() else { return };
        let image = &outcome.gt.images()[index];
        let mine = outcome.predictions.get(&image.event, &image.name).unwrap_or_default();
        let theirs = run.predictions.get(&image.event, &image.name).unwrap_or_default();
        ui.label(format!(
            "yellow: the picked face; blue: {}; {}: {} (detections from confidence {confidence:.3})",
            outcome.name(),
            color_name(k),
            run.name
        ));
        let faces = &image.boxes;
        let picked = self.diff_selected.filter(|e| e.image == index).map(|e| e.face);
        let runs = [
            DrawnRun { detections: mine, normalisation: outcome.report.score_normalisation, color: CURRENT_COLOR },
            DrawnRun { detections: theirs, normalisation: run.report.score_normalisation, color: run_color(k) },
        ];
        let Some(input) = self.view.show_ui(ui, true) else { return };
        let painter = ui.painter_at(input.response.rect);
        draw_comparison(&painter, input.transform, faces, picked, &runs, confidence);
    }
}

/// The name of a compared run's colour (`eval_compare::run_color`), for the line over the image.
fn color_name(index: usize) -> &'static str {
    ["magenta", "teal", "olive", "grey"][index % 4]
}

/// The error list's image: faces recalled (blue), missed (orange) or not kept (grey), and the
/// predictions that count: true positives (green) and false positives (red).
fn draw_matches(painter: &egui::Painter, t: ImageTransform, boxes: &[FaceBox], matches: &ImageMatches) {
    let stroke = |c: Color32| egui::Stroke::new(1.5, c);
    let rect = |x: f64, y: f64, w: f64, h: f64| t.rect_to_screen([x as f32, y as f32, (x + w) as f32, (y + h) as f32]);
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
