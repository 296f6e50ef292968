//! Model help while annotating: a detector runs over chosen images in the background, and its
//! faces that no annotation covers are offered as suggestions to accept or reject; annotated
//! faces without landmarks take those of the prediction matching them; the review queue ranks
//! the annotations the model disagrees with most, each with a one-click fix. The matching is the
//! library's (`crate::annotate`), the same as `dataset prelabel` and `dataset review`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, unbounded};
use egui::{Color32, Painter, Pos2, Rect, Stroke};

use super::DatasetPanel;
use crate::annotate::{Suspect, SuspectKind, Thresholds, face_from, match_image, review};
use crate::app::edit::{ImageRef, faces};
use crate::app::jobs::Task;
use crate::app::model_picker::{LoadedModel, ModelChoice, load_detector, model_picker_ui};
use crate::app::overlay::{LANDMARK_RADIUS, draw_score, landmark_color};
use crate::app::viewer::ImageTransform;
use crate::dataset::SplitKind;
use crate::detect::{
    CandidateLimits, Candidates, DetectError, Detection, Detector, FaceFilter, Outcome, RunOptions, run_over,
};
use crate::geometry::BBox;
use crate::model::DeviceChoice;

/// Suggestions are drawn in a colour no annotation box uses.
const SUGGESTION: Color32 = Color32::from_rgb(255, 80, 220);

type PredictResult = (u64, ImageRef, Candidates);

/// The model, its cached predictions and what the user decided about them.
pub struct Assist {
    pub model_path: String,
    /// The network of a PyTorch checkpoint; `None` for facestudio model files.
    pub preset: Option<String>,
    pub device: DeviceChoice,
    detector: Option<Arc<Detector>>,
    pub model_label: Option<String>,
    /// What the loaded model runs on.
    pub device_label: Option<String>,
    model_task: Option<Task<Result<LoadedModel, String>>>,
    /// Bumped when the model or the dataset changes, so late results of older runs are dropped.
    run_id: u64,
    results_tx: Sender<PredictResult>,
    results: Receiver<PredictResult>,
    /// The prediction job; its value is how many images could not be read.
    running: Option<Task<Result<usize, String>>>,
    /// Candidates per image, kept while the model and the dataset stay: the sliders re-filter
    /// them without running the network again. Ordered, so split-wide actions go in image order.
    predictions: BTreeMap<ImageRef, Candidates>,
    pub confidence: f32,
    pub nms: f32,
    pub show: bool,
    /// Predictions the user turned down, by their box's bits, so that they stay hidden whatever
    /// the sliders do.
    rejected: BTreeMap<ImageRef, HashSet<[u32; 4]>>,
    /// Index into the shown image's suggestions.
    pub selected_suggestion: Option<usize>,
    suspects: Vec<Suspect>,
    /// The split the suspects' image indexes belong to.
    suspects_split: SplitKind,
    pub selected_suspect: Option<usize>,
    /// The last image's suggestions and what they were computed from: the overlay, the panel
    /// and the keys ask for them every frame, and filtering (NMS) plus matching to the faces is
    /// not free on a crowded image.
    suggestions: RefCell<Option<(SuggestionKey, Vec<Detection>)>>,
}

/// What an image's suggestions depend on: the image, whether it is predicted yet, the sliders,
/// the faces (the edit history's revision) and how many of its predictions were rejected.
type SuggestionKey = (ImageRef, bool, u32, u32, u64, usize);

impl Assist {
    pub fn new() -> Assist {
        let (results_tx, results) = unbounded();
        Assist {
            model_path: String::new(),
            preset: None,
            device: DeviceChoice::Auto,
            detector: None,
            model_label: None,
            device_label: None,
            model_task: None,
            run_id: 0,
            results_tx,
            results,
            running: None,
            predictions: BTreeMap::new(),
            confidence: FaceFilter::DISPLAY.confidence,
            nms: FaceFilter::DISPLAY.nms_threshold,
            show: true,
            rejected: BTreeMap::new(),
            selected_suggestion: None,
            suspects: Vec::new(),
            suspects_split: SplitKind::Train,
            selected_suspect: None,
            suggestions: RefCell::new(None),
        }
    }

    pub fn has_model(&self) -> bool {
        self.detector.is_some()
    }

    pub fn is_predicting(&self) -> bool {
        self.running.is_some()
    }

    /// Whether `image` has cached predictions of the current model.
    pub fn is_predicted(&self, image: ImageRef) -> bool {
        self.predictions.contains_key(&image)
    }

    /// How many images of `split` have cached predictions.
    pub fn predicted_in(&self, split: SplitKind) -> usize {
        self.predictions.keys().filter(|i| i.split == split).count()
    }

    /// The sliders' filter (the candidates hold their floor: no slider goes below it).
    fn filter(&self) -> FaceFilter {
        FaceFilter { confidence: self.confidence, nms_threshold: self.nms, ..FaceFilter::DISPLAY }
    }

    /// Forgets every prediction and decision: they belong to a model or a dataset that is gone.
    pub(super) fn clear(&mut self) {
        self.run_id += 1;
        if let Some(task) = self.running.take() {
            task.progress.cancel();
        }
        self.predictions.clear();
        self.rejected.clear();
        self.selected_suggestion = None;
        self.suspects.clear();
        self.selected_suspect = None;
        self.suggestions.replace(None);
    }
}

impl Default for Assist {
    fn default() -> Self {
        Assist::new()
    }
}

/// A box as hashable bits: a rejected prediction is found again exactly.
fn box_key(bbox: &BBox) -> [u32; 4] {
    bbox.corners().map(f32::to_bits)
}

impl DatasetPanel {
    /// Loads the model named by the Model section in the background.
    pub fn load_assist_model(&mut self, ctx: &egui::Context) {
        let a = &self.assist;
        let task = load_detector(&self.jobs, &self.notices, ctx, &a.model_path, a.preset.clone(), a.device, None);
        self.assist.model_task = Some(task);
    }

    /// Runs the model over the `images` not predicted yet, in one background job; their
    /// candidates arrive through the channel as each image is done.
    pub fn predict_images(&mut self, ctx: &egui::Context, images: Vec<ImageRef>) {
        let Some(detector) = self.assist.detector.clone() else {
            self.notices.error("Load a model first");
            return;
        };
        let todo: Vec<(ImageRef, PathBuf)> = images
            .into_iter()
            .filter(|image| !self.assist.predictions.contains_key(image))
            .filter_map(|image| self.image_path(image).map(|path| (image, path)))
            .collect();
        if todo.is_empty() {
            return;
        }
        // One job at a time: what the older one already sent stays (same model).
        if let Some(task) = self.assist.running.take() {
            task.progress.cancel();
        }
        let results = self.assist.results_tx.clone();
        let run = self.assist.run_id;
        let repaint = ctx.clone();
        let on = self.assist.device_label.as_deref().map(|d| format!(" on {d}")).unwrap_or_default();
        let label = format!("Predicting faces in {} image(s){on}", todo.len());
        self.assist.running = Some(self.jobs.spawn(label, ctx, move |progress| {
            progress.set_total(todo.len());
            // Consecutive images of one size share a network run (WIDER's often do), as `dataset
            // review` runs them; results still arrive image by image.
            let options = RunOptions { batch: 4, limits: CandidateLimits::EVALUATION, ..RunOptions::default() };
            let paths: Vec<&Path> = todo.iter().map(|(_, path)| path.as_path()).collect();
            let mut skipped = 0;
            let ended = run_over(&detector, &paths, &options, |outcome| {
                let image = todo[outcome.index()].0;
                match outcome {
                    Outcome::Detected(detected) => {
                        let candidates = detected.stages.into_iter().next().unwrap_or_default();
                        if results.send((run, image, candidates)).is_err() {
                            return ControlFlow::Break(());
                        }
                        repaint.request_repaint();
                    }
                    Outcome::Skipped { .. } => skipped += 1,
                }
                progress.advance();
                if progress.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            });
            match ended {
                Ok(()) | Err(DetectError::Cancelled) => Ok(skipped),
                Err(err) => Err(err.to_string()),
            }
        }));
    }

    /// A loaded model, arrived predictions, an ended prediction job.
    pub(super) fn assist_logic(&mut self) {
        if let Some(task) = &self.assist.model_task
            && let Some(result) = task.poll()
        {
            self.assist.model_task = None;
            match result {
                Ok(LoadedModel { detector, device }) => {
                    self.assist.model_label =
                        Some(format!("{} ({}) on {device}", self.assist.model_path.trim(), detector.config().preset));
                    self.assist.device_label = Some(device);
                    self.assist.clear();
                    self.assist.detector = Some(Arc::new(detector));
                }
                Err(err) => self.notices.error(format!("Cannot load the model: {err}")),
            }
        }
        // Read before draining: a job that ended has sent everything, so nothing is left behind.
        let ended = self.assist.running.as_ref().filter(|t| !t.is_running()).map(|t| t.poll());
        while let Ok((run, image, candidates)) = self.assist.results.try_recv() {
            if run == self.assist.run_id {
                self.assist.predictions.insert(image, candidates);
            }
        }
        if let Some(value) = ended {
            self.assist.running = None;
            match value {
                Some(Ok(0)) => {}
                Some(Ok(skipped)) => self.notices.info(format!("{skipped} image(s) could not be read")),
                Some(Err(err)) => self.notices.error(format!("Prediction failed: {err}")),
                None => self.notices.error("Prediction stopped unexpectedly"),
            }
        }
    }

    /// `image`'s predictions under the sliders, minus the rejected; `None` when not predicted.
    fn predictions_of(&self, image: ImageRef) -> Option<Vec<Detection>> {
        let candidates = self.assist.predictions.get(&image)?;
        let rejected = self.assist.rejected.get(&image);
        let kept = candidates.filter(&self.assist.filter());
        Some(kept.into_iter().filter(|d| rejected.is_none_or(|r| !r.contains(&box_key(&d.bbox)))).collect())
    }

    /// `image`'s suggestions: the predictions no annotated face covers, best first.
    fn suggestions_of(&self, image: ImageRef) -> Vec<Detection> {
        let a = &self.assist;
        let rejected = a.rejected.get(&image).map_or(0, HashSet::len);
        let predicted = a.predictions.contains_key(&image);
        let key = (image, predicted, a.confidence.to_bits(), a.nms.to_bits(), self.history.revision(), rejected);
        if let Some((cached, suggestions)) = &*a.suggestions.borrow()
            && *cached == key
        {
            return suggestions.clone();
        }
        let suggestions = self.compute_suggestions(image);
        a.suggestions.replace(Some((key, suggestions.clone())));
        suggestions
    }

    fn compute_suggestions(&self, image: ImageRef) -> Vec<Detection> {
        let Some(predicted) = self.predictions_of(image) else { return Vec::new() };
        let list = self.dataset.as_ref().and_then(|d| faces(d, image)).unwrap_or_default();
        let t = Thresholds::default();
        let m = match_image(list, &predicted, &t);
        predicted.into_iter().enumerate().filter(|(p, _)| m.prediction_best[*p] < t.cover).map(|(_, d)| d).collect()
    }

    /// The shown image's suggestions, best first.
    pub fn suggestions(&self) -> Vec<Detection> {
        self.current().map(|image| self.suggestions_of(image)).unwrap_or_default()
    }

    /// The one the keys act on: the selected suggestion, or the best one.
    pub(super) fn target_suggestion(&self) -> usize {
        self.assist.selected_suggestion.unwrap_or(0)
    }

    /// Adds suggestion `index` of the shown image as a face (one undo step) and selects it.
    pub fn accept_suggestion(&mut self, index: usize) -> bool {
        let Some(image) = self.current() else { return false };
        let Some(prediction) = self.suggestions_of(image).get(index).copied() else { return false };
        let Some(dataset) = &mut self.dataset else { return false };
        let added = self.history.apply(dataset, image, |list| {
            list.push(face_from(&prediction));
            list.len() - 1
        });
        self.assist.selected_suggestion = None;
        let Some(added) = added else { return false };
        self.selected_face = Some(added);
        self.generation += 1;
        true
    }

    /// Hides suggestion `index` of the shown image for good (until another model loads).
    pub fn reject_suggestion(&mut self, index: usize) -> bool {
        let Some(image) = self.current() else { return false };
        let Some(prediction) = self.suggestions_of(image).get(index).copied() else { return false };
        self.assist.rejected.entry(image).or_default().insert(box_key(&prediction.bbox));
        self.assist.selected_suggestion = None;
        true
    }

    /// Adds every suggestion of `image` (one undo step); returns how many.
    fn accept_all_in(&mut self, image: ImageRef) -> usize {
        let suggestions = self.suggestions_of(image);
        if suggestions.is_empty() {
            return 0;
        }
        let Some(dataset) = &mut self.dataset else { return 0 };
        if self.history.apply(dataset, image, |list| list.extend(suggestions.iter().map(face_from))).is_none() {
            return 0;
        }
        self.generation += 1;
        suggestions.len()
    }

    /// Gives the faces of `image` without landmarks those of the prediction matching them at
    /// IoU ≥ `fill` (one undo step); returns how many faces got some.
    fn fill_landmarks_in(&mut self, image: ImageRef) -> usize {
        let Some(predicted) = self.predictions_of(image) else { return 0 };
        let t = Thresholds::default();
        let Some(dataset) = &mut self.dataset else { return 0 };
        let filled = self.history.apply(dataset, image, |list| {
            let m = match_image(list.as_slice(), &predicted, &t);
            let mut filled = 0;
            for &(f, p, iou) in &m.pairs {
                if iou >= t.fill && list[f].landmarks.is_none() && predicted[p].landmarks.is_some() {
                    list[f].landmarks = face_from(&predicted[p]).landmarks;
                    filled += 1;
                }
            }
            filled
        });
        let filled = filled.unwrap_or(0);
        if filled > 0 {
            self.generation += 1;
        }
        filled
    }

    /// The predicted images of the current split, in image order.
    fn predicted_images(&self) -> Vec<ImageRef> {
        self.assist.predictions.keys().filter(|i| i.split == self.split).copied().collect()
    }

    /// Accepts every suggestion of every predicted image of the split (one undo step per image).
    pub fn accept_all_in_split(&mut self) -> usize {
        self.predicted_images().into_iter().map(|image| self.accept_all_in(image)).sum()
    }

    /// Fills landmarks over every predicted image of the split (one undo step per image).
    pub fn fill_landmarks_in_split(&mut self) -> usize {
        self.predicted_images().into_iter().map(|image| self.fill_landmarks_in(image)).sum()
    }

    /// Ranks the current split's likely mistakes from the cached predictions (an image without
    /// any counts as predicted empty); returns how many were found.
    pub fn find_mistakes(&mut self) -> usize {
        let Some(count) = self.dataset.as_ref().and_then(|d| d.split(self.split)).map(|s| s.images.len()) else {
            return 0;
        };
        let predictions: Vec<Vec<Detection>> = (0..count)
            .map(|index| self.predictions_of(ImageRef { split: self.split, index }).unwrap_or_default())
            .collect();
        let Some(split) = self.dataset.as_ref().and_then(|d| d.split(self.split)) else { return 0 };
        self.assist.suspects = review(split, &predictions, &Thresholds::default());
        self.assist.suspects_split = self.split;
        self.assist.selected_suspect = None;
        self.assist.suspects.len()
    }

    /// The review queue, most likely mistakes first.
    pub fn suspects(&self) -> &[Suspect] {
        &self.assist.suspects
    }

    /// Shows suspect `k`: its image, its face.
    pub fn select_suspect(&mut self, k: usize) {
        let Some(suspect) = self.assist.suspects.get(k) else { return };
        let (image, face) = (suspect.image, suspect.face);
        self.split = self.assist.suspects_split;
        self.select_image(Some(image));
        self.selected_face = face;
        self.assist.selected_suspect = Some(k);
        // Zoomed to the face, with room around it to see the prediction beside the annotation.
        let [x1, y1, x2, y2] = self.assist.suspects[k].bbox.corners();
        let (mx, my) = ((x2 - x1) * 0.5, (y2 - y1) * 0.5);
        self.view.focus([x1 - mx, y1 - my, x2 + mx, y2 + my]);
    }

    /// The suspect after the selected one (the first when none is).
    pub fn next_suspect(&mut self) {
        let next = self.assist.selected_suspect.map_or(0, |k| k + 1);
        if next < self.assist.suspects.len() {
            self.select_suspect(next);
        }
    }

    /// Drops suspect `k` from the queue and shows the one taking its place.
    pub fn dismiss_suspect(&mut self, k: usize) {
        if k >= self.assist.suspects.len() {
            return;
        }
        self.assist.suspects.remove(k);
        self.assist.selected_suspect = None;
        if k < self.assist.suspects.len() {
            self.select_suspect(k);
        }
    }

    /// Applies the fix suspect `k` offers (one undo step), then dismisses it.
    pub fn fix_suspect(&mut self, k: usize) {
        let Some(suspect) = self.assist.suspects.get(k).cloned() else { return };
        let image = ImageRef { split: self.assist.suspects_split, index: suspect.image };
        let Some(dataset) = &mut self.dataset else { return };
        let changed = match (suspect.kind, suspect.face, suspect.prediction) {
            (SuspectKind::BoxMismatch, Some(f), Some(p)) => {
                self.history.apply(dataset, image, |list| list.get_mut(f).map(|face| face.bbox = p.bbox))
            }
            (SuspectKind::LandmarkMismatch, Some(f), Some(p)) => self
                .history
                .apply(dataset, image, |list| list.get_mut(f).map(|face| face.landmarks = face_from(&p).landmarks)),
            (SuspectKind::MissingFace, _, Some(p)) => self.history.apply(dataset, image, |list| {
                list.push(face_from(&p));
                Some(())
            }),
            (SuspectKind::UnmatchedAnnotation, Some(f), _) => {
                let removed = self.history.apply(dataset, image, |list| (f < list.len()).then(|| list.remove(f)));
                if removed.flatten().is_some() {
                    // The faces after it moved up one: the queue's indexes follow them.
                    for other in self.assist.suspects.iter_mut().filter(|s| s.image == suspect.image) {
                        other.face = match other.face {
                            Some(g) if g > f => Some(g - 1),
                            g => g,
                        };
                    }
                    self.selected_face = None;
                    Some(Some(()))
                } else {
                    None
                }
            }
            _ => None,
        };
        if changed.flatten().is_some() {
            self.generation += 1;
        }
        self.dismiss_suspect(k);
    }

    /// The Model and Review sections of the right column.
    pub(super) fn assist_ui(&mut self, ui: &mut egui::Ui) {
        ui.separator();
        egui::CollapsingHeader::new("Model").default_open(false).show(ui, |ui| self.model_ui(ui));
        egui::CollapsingHeader::new("Review").default_open(false).show(ui, |ui| self.review_ui(ui));
    }

    fn model_ui(&mut self, ui: &mut egui::Ui) {
        let a = &mut self.assist;
        model_picker_ui(
            ui,
            "assist-preset",
            ModelChoice { path: &mut a.model_path, preset: &mut a.preset, device: &mut a.device },
        );
        ui.horizontal(|ui| {
            let loading = self.assist.model_task.is_some();
            let can_load = !loading && !self.assist.model_path.trim().is_empty();
            if ui.add_enabled(can_load, egui::Button::new("Load model")).clicked() {
                self.load_assist_model(ui.ctx());
            }
            if loading {
                ui.spinner();
            }
        });
        match &self.assist.model_label {
            Some(label) => ui.label(format!("Loaded: {label}")),
            None => ui.weak("No model loaded"),
        };
        let ready = self.assist.has_model() && !self.assist.is_predicting();
        ui.horizontal_wrapped(|ui| {
            if ui.add_enabled(ready && self.selected.is_some(), egui::Button::new("Predict this image")).clicked()
                && let Some(image) = self.current()
            {
                self.predict_images(ui.ctx(), vec![image]);
            }
            if ui.add_enabled(ready, egui::Button::new("Predict shown images")).clicked() {
                let shown = self.visible.iter().map(|&index| ImageRef { split: self.split, index }).collect();
                self.predict_images(ui.ctx(), shown);
            }
            if ui.add_enabled(ready, egui::Button::new("Predict split")).clicked()
                && let Some(count) = self.dataset.as_ref().and_then(|d| d.split(self.split)).map(|s| s.images.len())
            {
                let all = (0..count).map(|index| ImageRef { split: self.split, index }).collect();
                self.predict_images(ui.ctx(), all);
            }
        });
        if self.assist.is_predicting() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Predicting…");
            });
        }
        ui.label(format!("{} image(s) of this split predicted", self.assist.predicted_in(self.split)));
        let floor = Thresholds::default().seen_score;
        ui.add(egui::Slider::new(&mut self.assist.confidence, floor..=1.0).text("confidence"))
            .on_hover_text("Predictions below 0.3 never count, not even as covering a face");
        ui.add(egui::Slider::new(&mut self.assist.nms, 0.05..=0.95).text("NMS IoU"));
        ui.checkbox(&mut self.assist.show, "Show predictions");
        ui.separator();
        let suggestions = self.suggestions();
        let selected = self.assist.selected_suggestion.filter(|&s| s < suggestions.len());
        match selected {
            Some(s) => {
                ui.label(format!("{} suggestion(s); #{s} selected ({:.2})", suggestions.len(), suggestions[s].score))
            }
            None => ui.label(format!("{} suggestion(s) on this image", suggestions.len())),
        };
        ui.horizontal_wrapped(|ui| {
            let any = !suggestions.is_empty();
            if ui.add_enabled(any, egui::Button::new("Accept")).on_hover_text("A").clicked() {
                self.accept_suggestion(self.target_suggestion());
            }
            if ui.add_enabled(any, egui::Button::new("Reject")).on_hover_text("R").clicked() {
                self.reject_suggestion(self.target_suggestion());
            }
            if ui.add_enabled(any, egui::Button::new("Accept all on this image")).clicked()
                && let Some(image) = self.current()
            {
                self.accept_all_in(image);
            }
            if ui.button("Accept all in the split").clicked() {
                let n = self.accept_all_in_split();
                self.notices.info(format!("Accepted {n} suggestion(s)"));
            }
            if ui.button("Fill landmarks").clicked()
                && let Some(image) = self.current()
            {
                let n = self.fill_landmarks_in(image);
                self.notices.info(format!("Filled the landmarks of {n} face(s)"));
            }
            if ui.button("Fill landmarks in the split").clicked() {
                let n = self.fill_landmarks_in_split();
                self.notices.info(format!("Filled the landmarks of {n} face(s)"));
            }
        });
    }

    fn review_ui(&mut self, ui: &mut egui::Ui) {
        let total = self.dataset.as_ref().and_then(|d| d.split(self.split)).map_or(0, |s| s.images.len());
        ui.label(format!(
            "Uses the cached predictions: {} of {total} image(s) of this split predicted; the others count as empty",
            self.assist.predicted_in(self.split)
        ));
        if ui.button("Find likely mistakes").clicked() {
            self.find_mistakes();
        }
        if self.assist.suspects.is_empty() {
            ui.weak("No suspects");
            return;
        }
        let split = self.dataset.as_ref().and_then(|d| d.split(self.assist.suspects_split));
        let mut clicked = None;
        egui::ScrollArea::vertical().id_salt("suspects").max_height(220.0).show_rows(
            ui,
            18.0,
            self.assist.suspects.len(),
            |ui, rows| {
                for k in rows {
                    let s = &self.assist.suspects[k];
                    let name = split
                        .and_then(|split| split.images.get(s.image))
                        .map_or("?", |image| image.path.rsplit('/').next().unwrap_or(&image.path));
                    let text = format!("{} {:.2} {name}", s.kind.name(), s.score);
                    if ui.selectable_label(self.assist.selected_suspect == Some(k), text).clicked() {
                        clicked = Some(k);
                    }
                }
            },
        );
        if let Some(k) = clicked {
            self.select_suspect(k);
        }
        let Some(k) = self.assist.selected_suspect.filter(|&k| k < self.assist.suspects.len()) else {
            ui.weak("Select a suspect (N: the next one)");
            return;
        };
        let fix = match self.assist.suspects[k].kind {
            SuspectKind::BoxMismatch => "Use predicted box",
            SuspectKind::LandmarkMismatch => "Use predicted landmarks",
            SuspectKind::MissingFace => "Add face",
            // Not "Delete face": the inspector has that button already.
            SuspectKind::UnmatchedAnnotation => "Delete annotated face",
        };
        let (fixed, dismissed) = ui.horizontal(|ui| (ui.button(fix).clicked(), ui.button("Dismiss").clicked())).inner;
        if fixed {
            self.fix_suspect(k);
        } else if dismissed {
            self.dismiss_suspect(k);
        }
    }

    /// A click in Select mode that hit no face selects the suggestion under it.
    pub(super) fn suggestion_click_ui(&mut self, response: &egui::Response, t: &ImageTransform, image: ImageRef) {
        if !response.clicked() || self.tool != super::Tool::Select {
            return;
        }
        if self.selected_face.is_some() {
            self.assist.selected_suggestion = None;
            return;
        }
        let Some(pos) = response.interact_pointer_pos() else { return };
        self.assist.selected_suggestion = self
            .suggestions_of(image)
            .iter()
            .enumerate()
            .filter(|(_, d)| t.rect_to_screen(d.bbox.corners()).contains(pos))
            .min_by(|a, b| a.1.bbox.area().total_cmp(&b.1.bbox.area()))
            .map(|(i, _)| i);
    }

    /// The shown image's suggestions: dashed boxes with their scores, hollow landmarks.
    pub(super) fn suggestions_overlay_ui(&self, painter: &Painter, t: &ImageTransform, image: ImageRef) {
        if !self.assist.show {
            return;
        }
        for (i, d) in self.suggestions_of(image).iter().enumerate() {
            let selected = self.assist.selected_suggestion == Some(i);
            let stroke = Stroke::new(if selected { 2.5 } else { 1.5 }, SUGGESTION);
            draw_dashed_rect(painter, t.rect_to_screen(d.bbox.corners()), stroke);
            draw_score(painter, t, &d.bbox, d.score, SUGGESTION);
            if let Some(l) = &d.landmarks {
                for (k, p) in l.points.iter().enumerate() {
                    painter.circle_stroke(t.to_screen(*p), LANDMARK_RADIUS, Stroke::new(1.5, landmark_color(k)));
                }
            }
        }
        // The selected suspect's prediction beside its annotation, matched or not.
        let suspect = self.assist.selected_suspect.and_then(|k| self.assist.suspects.get(k));
        if let Some(suspect) = suspect.filter(|s| s.image == image.index && self.assist.suspects_split == image.split)
            && let Some(d) = &suspect.prediction
        {
            draw_dashed_rect(painter, t.rect_to_screen(d.bbox.corners()), Stroke::new(2.5, SUGGESTION));
            draw_score(painter, t, &d.bbox, d.score, SUGGESTION);
            if let Some(l) = &d.landmarks {
                for (k, p) in l.points.iter().enumerate() {
                    painter.circle_stroke(t.to_screen(*p), LANDMARK_RADIUS, Stroke::new(1.5, landmark_color(k)));
                }
            }
        }
    }
}

/// A rectangle of short dashes: predictions must not look like annotations.
fn draw_dashed_rect(painter: &Painter, rect: Rect, stroke: Stroke) {
    let corners: [Pos2; 4] = [rect.left_top(), rect.right_top(), rect.right_bottom(), rect.left_bottom()];
    for k in 0..4 {
        let (a, b) = (corners[k], corners[(k + 1) % 4]);
        // Dashes and gaps of about 5 points each.
        let pieces = ((a.distance(b) / 5.0).ceil() as usize).max(1);
        for piece in (0..pieces).step_by(2) {
            let from = piece as f32 / pieces as f32;
            let to = ((piece + 1) as f32 / pieces as f32).min(1.0);
            painter.line_segment([a.lerp(b, from), a.lerp(b, to)], stroke);
        }
    }
}
