//! The Dataset panel: splits, events, filters and the image list on the left; the image with its
//! faces in the middle, where boxes and landmarks are edited; the face inspector on the right.

mod assist;
mod canvas;
mod filters;
mod inspector;
mod recovery;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use egui::{Key, Modifiers};
use image::RgbImage;

pub use assist::Assist;
use canvas::Drag;
pub use canvas::Tool;
pub use filters::{Filters, Tri};
pub use recovery::PendingRecovery;

use super::edit::{EditHistory, ImageRef, faces};
use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::overlay::ColorBy;
use super::thumbnails::Thumbnails;
use super::viewer::ImageView;
use super::widgets::{choice_ui, text_field_ui};
use crate::dataset::{Dataset, LoadReport, SplitKind};

type LoadResult = Result<(Dataset, LoadReport), String>;

/// What the panel asks of the shell after a frame.
#[derive(Clone, Debug, PartialEq)]
pub enum DatasetRequest {
    /// Opening `PathBuf` would drop unsaved edits: ask the user first.
    ConfirmOpen(PathBuf),
}

pub struct DatasetPanel {
    jobs: Jobs,
    notices: Notices,
    pub dataset: Option<Dataset>,
    loading: Option<(PathBuf, Task<LoadResult>)>,
    /// A folder that finished loading this frame (for the recent list).
    pub opened: Option<PathBuf>,
    pub path_field: String,
    pub split: SplitKind,
    pub event: Option<String>,
    pub filters: Filters,
    applied: Option<(SplitKind, Option<String>, Filters, u64)>,
    /// Bumped by every change of the faces, so the list is re-filtered.
    generation: u64,
    pub visible: Vec<usize>,
    events: Vec<(String, usize)>,
    pub selected: Option<usize>,
    pub selected_face: Option<usize>,
    pub view: ImageView,
    image_task: Option<(ImageRef, Task<Result<RgbImage, String>>)>,
    shown_image: Option<ImageRef>,
    thumbnails: Thumbnails,
    pub history: EditHistory,
    pub tool: Tool,
    drag: Option<Drag>,
    pub color_by: ColorBy,
    /// Faces drawn over the image in the last frame.
    pub drawn_faces: usize,
    pub request: Option<DatasetRequest>,
    /// Where the recovery files of unsaved edits go (see `recovery`): the user's state folder by
    /// default; tests point it at a temporary folder so that they never write into the home.
    pub recovery_dir: PathBuf,
    /// An earlier session's unsaved edits found for the dataset just opened, until the user
    /// answers.
    pending_recovery: Option<PendingRecovery>,
    /// The history revision the recovery file is in step with (written then, or removed on
    /// purpose); `None` has the next frame check.
    recovery_revision: Option<u64>,
    /// The last write, so that the file is written at most every few seconds.
    recovery_written_at: Option<Instant>,
    /// A failed write was reported; further failures are not, until a write succeeds.
    recovery_failed: bool,
    /// The model's suggestions and the review queue.
    pub assist: Assist,
    /// Whether the keyboard shortcut overlay is open.
    pub show_shortcuts: bool,
}

/// Every shortcut of the panel, as the overlay lists them.
const SHORTCUTS: [(&str, &str); 21] = [
    ("Down, Right, Page Down", "next image in the list"),
    ("Up, Left, Page Up", "previous image in the list"),
    ("Home / End", "first / last image in the list"),
    ("Tab / Shift+Tab", "next / previous face"),
    ("D", "draw tool"),
    ("Escape", "select tool"),
    ("Delete", "delete the selected face"),
    ("A", "accept the selected suggestion (the best one if none is selected)"),
    ("R", "reject the selected suggestion (the best one if none is selected)"),
    ("N", "next suspect of the review queue"),
    ("Enter", "apply the selected suspect's fix (take the predicted box or landmarks, add, delete)"),
    ("F", "fit the image to the view"),
    ("Z", "zoom to the selected face"),
    ("Ctrl+Z", "undo"),
    ("Ctrl+Shift+Z", "redo"),
    ("Ctrl+S", "save"),
    ("Ctrl+O", "open a dataset folder"),
    ("? / F1", "show or hide this list"),
    ("Click", "select a face or a suggestion"),
    ("Drag", "move a box, a corner or a landmark; pan on empty space"),
    ("Scroll", "zoom"),
];

impl DatasetPanel {
    pub fn new(jobs: Jobs, notices: Notices) -> DatasetPanel {
        DatasetPanel {
            jobs,
            notices,
            dataset: None,
            loading: None,
            opened: None,
            path_field: String::new(),
            split: SplitKind::Train,
            event: None,
            filters: Filters::default(),
            applied: None,
            generation: 0,
            visible: Vec::new(),
            events: Vec::new(),
            selected: None,
            selected_face: None,
            view: ImageView::default(),
            image_task: None,
            shown_image: None,
            thumbnails: Thumbnails::new(2, 600),
            history: EditHistory::new(),
            tool: Tool::Select,
            drag: None,
            color_by: ColorBy::default(),
            drawn_faces: 0,
            request: None,
            recovery_dir: recovery::default_recovery_dir(),
            pending_recovery: None,
            recovery_revision: None,
            recovery_written_at: None,
            recovery_failed: false,
            assist: Assist::new(),
            show_shortcuts: false,
        }
    }

    /// The image the viewer shows (decoded), which trails the selection while it loads.
    pub fn shown_image(&self) -> Option<ImageRef> {
        self.shown_image
    }

    pub fn has_unsaved_changes(&self) -> bool {
        self.dataset.is_some() && self.history.has_unsaved_changes()
    }

    /// Opens a dataset folder in the background; with unsaved edits, asks the shell to confirm.
    pub fn open(&mut self, ctx: &egui::Context, path: &Path) {
        if self.has_unsaved_changes() {
            self.request = Some(DatasetRequest::ConfirmOpen(path.to_path_buf()));
            return;
        }
        self.open_discarding(ctx, path);
    }

    /// Opens `path`, dropping any unsaved edits (after the user said so).
    pub fn open_discarding(&mut self, ctx: &egui::Context, path: &Path) {
        let target = path.to_path_buf();
        self.path_field = path.display().to_string();
        let task = self.jobs.spawn(format!("Opening {}", path.display()), ctx, move |_| {
            Dataset::open(&target).map_err(|e| e.to_string())
        });
        self.loading = Some((path.to_path_buf(), task));
    }

    /// Writes the edited annotation files (atomically, keeping `.bak` copies); the recovery file
    /// of the edits goes.
    pub fn save(&mut self) -> bool {
        let Some(dataset) = &self.dataset else { return false };
        match dataset.save() {
            Ok(written) => {
                self.history.mark_saved();
                self.remove_recovery();
                self.notices.info(format!("Saved {} annotation file(s)", written.len()));
                true
            }
            Err(err) => {
                self.notices.error(format!("Save failed: {err}"));
                false
            }
        }
    }

    pub fn undo(&mut self) {
        if let Some(dataset) = &mut self.dataset
            && let Some(image) = self.history.undo(dataset)
        {
            self.after_history_step(image);
        }
    }

    pub fn redo(&mut self) {
        if let Some(dataset) = &mut self.dataset
            && let Some(image) = self.history.redo(dataset)
        {
            self.after_history_step(image);
        }
    }

    fn after_history_step(&mut self, image: ImageRef) {
        self.generation += 1;
        self.split = image.split;
        self.select_image(Some(image.index));
    }

    fn select_image(&mut self, index: Option<usize>) {
        if self.selected != index {
            self.selected_face = None;
            self.drag = None;
            self.assist.selected_suggestion = None;
        }
        self.selected = index;
    }

    fn current(&self) -> Option<ImageRef> {
        self.selected.map(|index| ImageRef { split: self.split, index })
    }

    /// Background work that finished: a loaded dataset, a decoded image; the recovery file kept
    /// in step with the edits.
    pub fn logic(&mut self, ctx: &egui::Context) {
        self.thumbnails.update(ctx);
        if let Some((path, task)) = &self.loading
            && let Some(result) = task.poll()
        {
            let path = path.clone();
            self.loading = None;
            match result {
                Ok((dataset, report)) => {
                    for warning in report.warnings.iter().take(5) {
                        self.notices.info(format!("{}: {warning}", dataset.root.display()));
                    }
                    if report.warnings.len() > 5 {
                        self.notices.info(format!("… and {} more warnings", report.warnings.len() - 5));
                    }
                    self.split = dataset
                        .splits
                        .iter()
                        .find(|s| s.is_annotated())
                        .or(dataset.splits.first())
                        .map_or(SplitKind::Train, |s| s.kind);
                    self.dataset = Some(dataset);
                    self.history = EditHistory::new();
                    self.event = None;
                    self.applied = None;
                    self.shown_image = None;
                    self.view.clear();
                    self.select_image(None);
                    self.assist.clear();
                    self.recovery_on_open();
                    self.opened = Some(path);
                }
                Err(err) => self.notices.error(format!("Cannot open {}: {err}", path.display())),
            }
        }
        if let Some((image, task)) = &self.image_task
            && let Some(result) = task.poll()
        {
            let image = *image;
            self.image_task = None;
            match result {
                Ok(picture) => {
                    self.view.set_image(ctx, "dataset-image", &picture);
                    self.shown_image = Some(image);
                }
                Err(err) => {
                    self.notices.error(err);
                    self.view.clear();
                    self.shown_image = Some(image);
                }
            }
        }
        self.assist_logic();
        self.refilter();
        self.request_image(ctx);
        self.keep_recovery(ctx);
    }

    fn refilter(&mut self) {
        let key = (self.split, self.event.clone(), self.filters.clone(), self.generation);
        if self.applied.as_ref() == Some(&key) {
            return;
        }
        let Some(split) = self.dataset.as_ref().and_then(|d| d.split(self.split)) else {
            self.visible.clear();
            self.events.clear();
            return;
        };
        let mut events: BTreeMap<String, usize> = BTreeMap::new();
        for image in &split.images {
            *events.entry(image.event().to_string()).or_default() += 1;
        }
        self.events = events.into_iter().collect();
        self.visible = self.filters.apply(split, self.event.as_deref());
        self.applied = Some(key);
    }

    fn request_image(&mut self, ctx: &egui::Context) {
        let Some(current) = self.current() else { return };
        if self.shown_image == Some(current) || self.image_task.as_ref().is_some_and(|(i, _)| *i == current) {
            return;
        }
        let Some(path) = self.image_path(current) else { return };
        let task =
            self.jobs.spawn("Loading image", ctx, move |_| crate::detect::load_image(&path).map_err(|e| e.to_string()));
        self.image_task = Some((current, task));
    }

    fn image_path(&self, image: ImageRef) -> Option<PathBuf> {
        let split = self.dataset.as_ref()?.split(image.split)?;
        split.images.get(image.index).map(|entry| split.image_path(entry))
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.shortcuts_ui(ui);
        egui::Panel::left("dataset-browser").default_size(300.0).resizable(true).show(ui, |ui| {
            self.browser_ui(ui);
        });
        egui::Panel::right("face-inspector").exact_size(270.0).show(ui, |ui| {
            // Scrolls instead of growing: a taller inspector must never push the image around.
            egui::ScrollArea::vertical().id_salt("inspector").show(ui, |ui| {
                self.inspector_ui(ui);
                self.assist_ui(ui);
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            self.toolbar_ui(ui);
            self.image_area_ui(ui);
        });
        self.shortcut_overlay_ui(ui.ctx());
    }

    /// Keeps Tab for the faces while no widget has the keyboard: egui would otherwise give the
    /// focus to the first widget of the window, and every shortcut would stop working. Called
    /// before any widget of the frame is laid out.
    pub fn claim_tab_key(&self, ctx: &egui::Context) {
        if !ctx.egui_wants_keyboard_input() && ctx.input(|i| i.key_pressed(Key::Tab)) {
            ctx.memory_mut(|m| m.move_focus(egui::FocusDirection::None));
        }
    }

    /// Selects the next (or previous) shown image, stopping at the ends of the list; the first
    /// when the selected one is not shown.
    fn step_image(&mut self, forward: bool) {
        let Some(last) = self.visible.len().checked_sub(1) else { return };
        let position = self.selected.and_then(|s| self.visible.iter().position(|&i| i == s));
        let next = match (position, forward) {
            (None, _) => 0,
            (Some(p), true) => (p + 1).min(last),
            (Some(p), false) => p.saturating_sub(1),
        };
        self.select_image(Some(self.visible[next]));
    }

    /// The next (or previous) face of the shown image, wrapping around.
    fn step_face(&mut self, forward: bool) {
        let count =
            self.current().and_then(|image| self.dataset.as_ref().and_then(|d| faces(d, image))).map_or(0, |l| l.len());
        if count == 0 {
            return;
        }
        self.selected_face = Some(match (self.selected_face, forward) {
            (None, true) => 0,
            (None, false) => count - 1,
            (Some(f), true) => (f + 1) % count,
            (Some(f), false) => (f + count - 1) % count,
        });
    }

    /// The list of shortcuts, while it is open.
    fn shortcut_overlay_ui(&mut self, ctx: &egui::Context) {
        egui::Window::new("Keyboard shortcuts")
            .open(&mut self.show_shortcuts)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("shortcut-list").striped(true).show(ui, |ui| {
                    for (keys, what) in SHORTCUTS {
                        ui.strong(keys);
                        ui.label(what);
                        ui.end_row();
                    }
                });
            });
    }

    fn shortcuts_ui(&mut self, ui: &mut egui::Ui) {
        if ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        let redo = ui.input_mut(|i| i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z));
        let undo = !redo && ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Z));
        let delete = ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Delete));
        let save = ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::S));
        let pressed = |key: Key| ui.input_mut(|i| i.consume_key(Modifiers::NONE, key));
        let next_image = [Key::ArrowDown, Key::ArrowRight, Key::PageDown].into_iter().any(pressed);
        let previous_image = [Key::ArrowUp, Key::ArrowLeft, Key::PageUp].into_iter().any(pressed);
        let first_image = pressed(Key::Home);
        let last_image = pressed(Key::End);
        // Shift+Tab first: the plain pattern also matches a press with Shift.
        let previous_face = ui.input_mut(|i| i.consume_key(Modifiers::SHIFT, Key::Tab));
        let next_face = pressed(Key::Tab);
        let draw = pressed(Key::D);
        let select = pressed(Key::Escape);
        let accept = pressed(Key::A);
        let reject = pressed(Key::R);
        let next_suspect = pressed(Key::N);
        let fix = pressed(Key::Enter);
        let fit = pressed(Key::F);
        let zoom = pressed(Key::Z);
        let overlay = [Key::Questionmark, Key::F1].into_iter().any(pressed);
        if next_image {
            self.step_image(true);
        }
        if first_image && let Some(&first) = self.visible.first() {
            self.select_image(Some(first));
        }
        if last_image && let Some(&last) = self.visible.last() {
            self.select_image(Some(last));
        }
        if previous_image {
            self.step_image(false);
        }
        if previous_face || next_face {
            self.step_face(next_face);
        }
        if draw {
            self.tool = Tool::Draw;
        }
        if select {
            self.tool = Tool::Select;
        }
        if accept {
            self.accept_suggestion(self.target_suggestion());
        }
        if reject {
            self.reject_suggestion(self.target_suggestion());
        }
        if next_suspect {
            self.next_suspect();
        }
        if fix && let Some(k) = self.assist.selected_suspect {
            self.fix_suspect(k);
        }
        if fit {
            self.view.fit();
        }
        if zoom
            && let Some(face) = self.current().zip(self.selected_face).and_then(|(image, f)| {
                self.dataset.as_ref().and_then(|d| faces(d, image)).and_then(|list| list.get(f)).map(|face| face.bbox)
            })
        {
            let [x1, y1, x2, y2] = face.corners();
            let (mx, my) = ((x2 - x1) * 0.5, (y2 - y1) * 0.5);
            self.view.focus([x1 - mx, y1 - my, x2 + mx, y2 + my]);
        }
        if overlay {
            self.show_shortcuts = !self.show_shortcuts;
        }
        if redo {
            self.redo();
        }
        if undo {
            self.undo();
        }
        if delete {
            self.delete_selected_face();
        }
        if save {
            self.save();
        }
    }

    fn browser_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let field = text_field_ui(ui, "Folder", &mut self.path_field, "path to a WIDER FACE folder");
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            if (ui.button("Open").clicked() || entered) && !self.path_field.trim().is_empty() {
                let path = PathBuf::from(self.path_field.trim());
                self.open(ui.ctx(), &path);
            }
        });
        if self.loading.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading annotations…");
            });
        }
        let Some(dataset) = &self.dataset else {
            ui.weak(
                "Open a dataset folder (type its path, use File > Open dataset…, or drop the folder on the window).",
            );
            return;
        };
        ui.label(format!("{}", dataset.root.display()));
        let splits: Vec<(SplitKind, usize, usize)> = dataset
            .splits
            .iter()
            .map(|s| (s.kind, s.images.len(), s.images.iter().map(|i| i.faces.len()).sum()))
            .collect();
        ui.horizontal_wrapped(|ui| {
            for (kind, images, faces) in splits {
                let text = format!("{} ({images} images, {faces} faces)", kind.name());
                if ui.selectable_label(self.split == kind, text).clicked() && self.split != kind {
                    self.split = kind;
                    self.event = None;
                    self.select_image(None);
                }
            }
        });
        ui.separator();
        egui::CollapsingHeader::new("Events").default_open(false).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("events").max_height(160.0).show(ui, |ui| {
                if ui.selectable_label(self.event.is_none(), "All events").clicked() {
                    self.event = None;
                }
                for (event, count) in &self.events {
                    let selected = self.event.as_deref() == Some(event.as_str());
                    if ui.selectable_label(selected, format!("{event} ({count})")).clicked() {
                        self.event = Some(event.clone());
                    }
                }
            });
        });
        egui::CollapsingHeader::new("Filters").default_open(false).show(ui, |ui| self.filters.controls_ui(ui));
        text_field_ui(ui, "Search", &mut self.filters.search, "file name");
        ui.label(format!("{} images shown", self.visible.len()));
        ui.separator();
        self.image_list_ui(ui);
    }

    fn image_list_ui(&mut self, ui: &mut egui::Ui) {
        let Some(split) = self.dataset.as_ref().and_then(|d| d.split(self.split)) else { return };
        let row_height = 40.0;
        let mut clicked = None;
        egui::ScrollArea::vertical().id_salt("images").auto_shrink([false, false]).show_rows(
            ui,
            row_height,
            self.visible.len(),
            |ui, rows| {
                for row in rows {
                    let index = self.visible[row];
                    let image = &split.images[index];
                    ui.horizontal(|ui| {
                        ui.set_height(row_height - 4.0);
                        let thumb_size = egui::vec2(48.0, 36.0);
                        match self.thumbnails.get(&split.image_path(image)) {
                            Some(texture) => {
                                let size = texture.size_vec2();
                                let scale = (thumb_size.x / size.x).min(thumb_size.y / size.y);
                                ui.add(egui::Image::new((texture.id(), size * scale)));
                            }
                            None => {
                                ui.allocate_exact_size(thumb_size, egui::Sense::hover());
                            }
                        }
                        let name = image.path.rsplit('/').next().unwrap_or(&image.path);
                        let text = format!("{name}  ({} faces)", image.faces.len());
                        if ui.selectable_label(self.selected == Some(index), text).clicked() {
                            clicked = Some(index);
                        }
                    });
                }
            },
        );
        if clicked.is_some() {
            self.select_image(clicked);
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        // Wrapped: a toolbar wider than the panel would widen the panel's content and make the
        // image below re-fit whenever a label in it changes length.
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.tool, Tool::Select, "Select").on_hover_text(
                "Click a face to select it; drag a box, a corner or a landmark to move it; drag empty space to pan",
            );
            ui.selectable_value(&mut self.tool, Tool::Draw, "Draw").on_hover_text("Drag to draw a new face");
            ui.separator();
            let by = ColorBy::ALL.map(|by| (by, by.name().to_string()));
            choice_ui(ui, egui::ComboBox::from_label("Colour by"), &mut self.color_by, by);
            if ui.button("Fit").clicked() {
                self.view.fit();
            }
            if ui.selectable_label(self.show_shortcuts, "Shortcuts").on_hover_text("? or F1").clicked() {
                self.show_shortcuts = !self.show_shortcuts;
            }
            ui.separator();
            if ui.add_enabled(self.history.can_undo(), egui::Button::new("Undo")).clicked() {
                self.undo();
            }
            if ui.add_enabled(self.history.can_redo(), egui::Button::new("Redo")).clicked() {
                self.redo();
            }
            let unsaved = self.has_unsaved_changes();
            if ui.add_enabled(unsaved, egui::Button::new("Save")).clicked() {
                self.save();
            }
            // One fixed-size slot: the toolbar keeps its size, so the image never re-fits.
            let (text, color) = if unsaved {
                ("* unsaved", ui.visuals().warn_fg_color)
            } else {
                ("saved", ui.visuals().weak_text_color())
            };
            ui.add_sized([64.0, 20.0], egui::Label::new(egui::RichText::new(text).color(color)));
            ui.separator();
            if let Some(current) = self.current()
                && let Some(list) = self.dataset.as_ref().and_then(|d| faces(d, current))
            {
                ui.label(format!("{} faces", list.len()));
            }
        });
    }

    /// Screen rectangle of face `index` of the shown image in the last frame (tests drive drags
    /// with it).
    pub fn face_screen_rect(&self, index: usize) -> Option<egui::Rect> {
        let t = self.view.transform?;
        let list = faces(self.dataset.as_ref()?, self.current()?)?;
        Some(t.rect_to_screen(list.get(index)?.bbox.corners()))
    }
}
