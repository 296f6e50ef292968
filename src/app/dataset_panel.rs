//! The Dataset panel: splits, events, filters and the image list on the left; the image with its
//! faces in the middle, where boxes and landmarks are edited; the face inspector on the right.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use egui::{Key, Modifiers, Pos2};
use image::RgbImage;

use super::edit::{EditHistory, ImageRef, faces, faces_mut};
use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::overlay::{self, ColorBy, LANDMARK_RADIUS};
use super::thumbnails::Thumbnails;
use super::viewer::{ImageTransform, ImageView};
use super::widgets::text_field;
use crate::dataset::{
    Blur, Dataset, Expression, Face, FaceLandmarks, Illumination, LandmarkFlag, LoadReport, Occlusion, Pose, Split,
    SplitKind,
};
use crate::geometry::{BBox, Landmarks, Point};

/// A three-way filter on a yes/no property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tri {
    #[default]
    Any,
    Yes,
    No,
}

impl Tri {
    fn accepts(self, value: bool) -> bool {
        match self {
            Tri::Any => true,
            Tri::Yes => value,
            Tri::No => !value,
        }
    }
}

/// Which images the list shows: those with at least one face passing every face filter, named
/// like the search text. With every filter open, images without faces show too.
#[derive(Clone, Debug, PartialEq)]
pub struct Filters {
    pub landmarks: Tri,
    pub invalid: Tri,
    pub blur: Option<Blur>,
    pub occlusion: Option<Occlusion>,
    pub pose: Option<Pose>,
    /// Face width range in pixels.
    pub min_size: f32,
    pub max_size: f32,
    pub search: String,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            landmarks: Tri::Any,
            invalid: Tri::Any,
            blur: None,
            occlusion: None,
            pose: None,
            min_size: 0.0,
            max_size: f32::INFINITY,
            search: String::new(),
        }
    }
}

impl Filters {
    fn face_filters_open(&self) -> bool {
        Filters { search: self.search.clone(), ..Filters::default() } == *self
    }

    fn accepts_face(&self, face: &Face) -> bool {
        let a = face.attributes;
        let width = face.bbox.width();
        self.landmarks.accepts(face.landmarks.is_some())
            && self.invalid.accepts(face.is_invalid())
            && self.blur.is_none_or(|b| a.is_some_and(|a| a.blur == b))
            && self.occlusion.is_none_or(|o| a.is_some_and(|a| a.occlusion == o))
            && self.pose.is_none_or(|p| a.is_some_and(|a| a.pose == p))
            && width >= self.min_size
            && width <= self.max_size
    }

    /// The indexes of the split's images that pass, in file order.
    pub fn apply(&self, split: &Split, event: Option<&str>) -> Vec<usize> {
        let search = self.search.to_lowercase();
        let open = self.face_filters_open();
        split
            .images
            .iter()
            .enumerate()
            .filter(|(_, image)| event.is_none_or(|e| image.event() == e))
            .filter(|(_, image)| search.is_empty() || image.path.to_lowercase().contains(&search))
            .filter(|(_, image)| open || image.faces.iter().any(|f| self.accepts_face(f)))
            .map(|(i, _)| i)
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Click selects; drag moves a box, a corner or a landmark; dragging empty space pans.
    Select,
    /// Dragging draws a new face.
    Draw,
}

/// A mouse drag in progress, with the faces as they were when it began (one undo step).
#[derive(Clone, Debug)]
enum Drag {
    Pan,
    Move { face: usize, grab: Point, original: BBox, before: Vec<Face> },
    Corner { face: usize, corner: usize, before: Vec<Face> },
    Landmark { face: usize, point: usize, before: Vec<Face> },
    NewBox { start: Point, current: Point },
}

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
}

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
        }
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

    /// Writes the edited annotation files (atomically, keeping `.bak` copies).
    pub fn save(&mut self) -> bool {
        let Some(dataset) = &self.dataset else { return false };
        match dataset.save() {
            Ok(written) => {
                self.history.mark_saved();
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
        }
        self.selected = index;
    }

    fn current(&self) -> Option<ImageRef> {
        self.selected.map(|index| ImageRef { split: self.split, index })
    }

    /// Background work that finished: a loaded dataset, a decoded image.
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
        self.refilter();
        self.request_image(ctx);
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
        self.shortcuts(ui);
        egui::Panel::left("dataset-browser").default_size(300.0).resizable(true).show(ui, |ui| {
            self.browser(ui);
        });
        egui::Panel::right("face-inspector").exact_size(270.0).show(ui, |ui| {
            // Scrolls instead of growing: a taller inspector must never push the image around.
            egui::ScrollArea::vertical().id_salt("inspector").show(ui, |ui| self.inspector(ui));
        });
        egui::CentralPanel::default().show(ui, |ui| {
            self.toolbar(ui);
            self.image_area(ui);
        });
    }

    fn shortcuts(&mut self, ui: &mut egui::Ui) {
        if ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        let redo = ui.input_mut(|i| i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z));
        let undo = !redo && ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Z));
        let delete = ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Delete));
        let save = ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::S));
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

    fn browser(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let field = text_field(ui, "Folder", &mut self.path_field, "path to a WIDER FACE folder");
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
        egui::CollapsingHeader::new("Filters").default_open(false).show(ui, |ui| self.filter_controls(ui));
        text_field(ui, "Search", &mut self.filters.search, "file name");
        ui.label(format!("{} images shown", self.visible.len()));
        ui.separator();
        self.image_list(ui);
    }

    fn filter_controls(&mut self, ui: &mut egui::Ui) {
        let f = &mut self.filters;
        tri_combo(ui, "Landmarks", &mut f.landmarks, ["any", "has", "lacks"]);
        tri_combo(ui, "Invalid", &mut f.invalid, ["any", "only invalid", "only valid"]);
        option_combo(ui, "Blur", &mut f.blur, Blur::ALL, |b| b.name());
        option_combo(ui, "Occlusion", &mut f.occlusion, Occlusion::ALL, |o| o.name());
        option_combo(ui, "Pose", &mut f.pose, Pose::ALL, |p| p.name());
        ui.horizontal(|ui| {
            ui.label("Face width");
            ui.add(egui::DragValue::new(&mut f.min_size).range(0.0..=10_000.0).suffix(" px"));
            ui.label("to");
            let mut max = if f.max_size.is_finite() { f.max_size } else { 10_000.0 };
            if ui.add(egui::DragValue::new(&mut max).range(0.0..=10_000.0).suffix(" px")).changed() {
                f.max_size = if max >= 10_000.0 { f32::INFINITY } else { max };
            }
        });
        if ui.button("Clear filters").clicked() {
            self.filters = Filters { search: std::mem::take(&mut self.filters.search), ..Filters::default() };
        }
    }

    fn image_list(&mut self, ui: &mut egui::Ui) {
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

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        // Wrapped: a toolbar wider than the panel would widen the panel's content and make the
        // image below re-fit whenever a label in it changes length.
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.tool, Tool::Select, "Select").on_hover_text(
                "Click a face to select it; drag a box, a corner or a landmark to move it; drag empty space to pan",
            );
            ui.selectable_value(&mut self.tool, Tool::Draw, "Draw").on_hover_text("Drag to draw a new face");
            ui.separator();
            egui::ComboBox::from_label("Colour by").selected_text(self.color_by.name()).show_ui(ui, |ui| {
                for by in ColorBy::ALL {
                    ui.selectable_value(&mut self.color_by, by, by.name());
                }
            });
            if ui.button("Fit").clicked() {
                self.view.fit();
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

    fn image_area(&mut self, ui: &mut egui::Ui) {
        let Some(current) = self.current() else {
            self.drawn_faces = 0;
            ui.centered_and_justified(|ui| ui.weak("Select an image in the list"));
            return;
        };
        if self.shown_image != Some(current) {
            self.drawn_faces = 0;
            ui.centered_and_justified(|ui| ui.spinner());
            return;
        }
        let pans = matches!(self.drag, Some(Drag::Pan));
        let Some(input) = self.view.show(ui, pans) else {
            self.drawn_faces = 0;
            return;
        };
        self.interact(ui, &input.response, &input.transform, current);
        let painter = ui.painter_at(input.response.rect);
        let Some(list) = self.dataset.as_ref().and_then(|d| faces(d, current)) else { return };
        for (i, face) in list.iter().enumerate() {
            overlay::draw_face(&painter, &input.transform, face, self.color_by, self.selected_face == Some(i));
        }
        if let Some(Drag::NewBox { start, current }) = &self.drag
            && let Ok(bbox) = corners_box(*start, *current)
        {
            overlay::draw_box(&painter, &input.transform, &bbox, overlay::SELECTED, 2.0);
        }
        self.drawn_faces = list.len();
    }

    /// Mouse editing: what the press lands on decides the drag.
    fn interact(&mut self, ui: &egui::Ui, response: &egui::Response, t: &ImageTransform, image: ImageRef) {
        let Some(dataset) = &mut self.dataset else { return };
        let size = self.view.image_size();
        // The drag is recognised a few pixels after the press: it starts where the button went down.
        if response.drag_started_by(egui::PointerButton::Primary)
            && let Some(pos) = ui.input(|i| i.pointer.press_origin()).or(response.interact_pointer_pos())
        {
            let list = faces(dataset, image).unwrap_or_default();
            let before = list.to_vec();
            self.drag = Some(match (self.tool, hit_test(list, self.selected_face, t, pos)) {
                (_, Some(Hit::Corner(face, corner))) => Drag::Corner { face, corner, before },
                (_, Some(Hit::Landmark(face, point))) => {
                    self.selected_face = Some(face);
                    Drag::Landmark { face, point, before }
                }
                (Tool::Select, Some(Hit::Body(face))) => {
                    self.selected_face = Some(face);
                    Drag::Move { face, grab: t.to_image(pos), original: list[face].bbox, before }
                }
                (Tool::Draw, _) => {
                    let p = clamp_point(t.to_image(pos), size);
                    Drag::NewBox { start: p, current: p }
                }
                (Tool::Select, None) => Drag::Pan,
            });
        }
        if response.dragged_by(egui::PointerButton::Primary)
            && let Some(pos) = response.interact_pointer_pos()
        {
            let p = clamp_point(t.to_image(pos), size);
            let list = faces_mut(dataset, image);
            match (&mut self.drag, list) {
                (Some(Drag::Move { face, grab, original, .. }), Some(list)) => {
                    // The box keeps its size and stays inside the image.
                    let within = |d: f32, lo: f32, hi: f32| d.max(lo).min(hi.max(lo));
                    let dx = within(p.x - grab.x, -original.x1(), size[0] as f32 - original.x2());
                    let dy = within(p.y - grab.y, -original.y1(), size[1] as f32 - original.y2());
                    if let Some(f) = list.get_mut(*face)
                        && let Ok(moved) = original.translate(dx, dy)
                    {
                        f.bbox = moved;
                    }
                }
                (Some(Drag::Corner { face, corner, .. }), Some(list)) => {
                    if let Some(f) = list.get_mut(*face) {
                        let [x1, y1, x2, y2] = f.bbox.corners();
                        let opposite = match corner {
                            0 => Point { x: x2, y: y2 },
                            1 => Point { x: x1, y: y2 },
                            2 => Point { x: x1, y: y1 },
                            _ => Point { x: x2, y: y1 },
                        };
                        if let Ok(bbox) = corners_box(opposite, p) {
                            f.bbox = bbox;
                            // The dragged corner may have crossed the opposite one.
                            *corner = corner_index(opposite, p);
                        }
                    }
                }
                (Some(Drag::Landmark { face, point, .. }), Some(list)) => {
                    if let Some(l) = list.get_mut(*face).and_then(|f| f.landmarks.as_mut()) {
                        l.points.points[*point] = p;
                    }
                }
                (Some(Drag::NewBox { current, .. }), _) => *current = p,
                _ => {}
            }
        }
        if response.drag_stopped() {
            match self.drag.take() {
                Some(Drag::Move { before, .. } | Drag::Corner { before, .. } | Drag::Landmark { before, .. }) => {
                    self.history.record(dataset, image, before);
                    self.generation += 1;
                }
                Some(Drag::NewBox { start, current }) => {
                    if let Ok(bbox) = corners_box(start, current)
                        && bbox.width() >= 2.0
                        && bbox.height() >= 2.0
                        && let Some(list) = faces_mut(dataset, image)
                    {
                        let before = list.clone();
                        list.push(Face::new(bbox));
                        self.selected_face = Some(list.len() - 1);
                        self.history.record(dataset, image, before);
                        self.generation += 1;
                    }
                }
                Some(Drag::Pan) | None => {}
            }
        }
        if response.clicked()
            && let Some(pos) = response.interact_pointer_pos()
        {
            let list = faces(dataset, image).unwrap_or_default();
            self.selected_face = match hit_test(list, self.selected_face, t, pos) {
                Some(Hit::Body(face) | Hit::Landmark(face, _) | Hit::Corner(face, _)) => Some(face),
                None => None,
            };
        }
    }

    fn delete_selected_face(&mut self) {
        let (Some(current), Some(face)) = (self.current(), self.selected_face) else { return };
        let Some(dataset) = &mut self.dataset else { return };
        let Some(list) = faces_mut(dataset, current) else { return };
        if face >= list.len() {
            return;
        }
        let before = list.clone();
        list.remove(face);
        self.selected_face = None;
        self.history.record(dataset, current, before);
        self.generation += 1;
    }

    /// Applies `change` to the selected face as one undoable edit.
    fn edit_selected(&mut self, change: impl FnOnce(&mut Face)) {
        let (Some(current), Some(face)) = (self.current(), self.selected_face) else { return };
        let Some(dataset) = &mut self.dataset else { return };
        let Some(list) = faces_mut(dataset, current) else { return };
        let before = list.clone();
        let Some(target) = list.get_mut(face) else { return };
        change(target);
        self.history.record(dataset, current, before);
        self.generation += 1;
    }

    fn inspector(&mut self, ui: &mut egui::Ui) {
        ui.heading("Face");
        let face = self
            .current()
            .zip(self.selected_face)
            .and_then(|(image, i)| self.dataset.as_ref().and_then(|d| faces(d, image)).and_then(|l| l.get(i)))
            .cloned();
        let Some(face) = face else {
            ui.weak("Click a face to inspect it. Draw adds one; Delete removes the selected one.");
            self.face_list(ui);
            return;
        };
        let [x, y, w, h] = face.bbox.to_xywh();
        ui.label(format!("box x {x:.1}, y {y:.1}, {w:.1} × {h:.1} px"));
        if let Some(score) = face.score {
            ui.label(format!("annotation score {score:.2}"));
        }
        let mut attributes = face.attributes.unwrap_or_default();
        let before = attributes;
        ui.checkbox(&mut attributes.invalid, "invalid (not trained on, not evaluated)");
        enum_combo(ui, "blur", &mut attributes.blur, Blur::ALL, |v| v.name());
        enum_combo(ui, "expression", &mut attributes.expression, Expression::ALL, |v| v.name());
        enum_combo(ui, "illumination", &mut attributes.illumination, Illumination::ALL, |v| v.name());
        enum_combo(ui, "occlusion", &mut attributes.occlusion, Occlusion::ALL, |v| v.name());
        enum_combo(ui, "pose", &mut attributes.pose, Pose::ALL, |v| v.name());
        if attributes != before {
            self.edit_selected(|f| f.attributes = Some(attributes));
        }
        ui.separator();
        match face.landmarks {
            Some(landmarks) => {
                let names = ["left eye", "right eye", "nose", "left mouth", "right mouth"];
                let mut flags = landmarks.flags;
                for (i, name) in names.iter().enumerate() {
                    ui.horizontal(|ui| {
                        let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                        ui.painter().circle_filled(rect.center(), 4.0, overlay::landmark_color(i));
                        let mut occluded = flags[i] == LandmarkFlag::Occluded;
                        let p = landmarks.points.points[i];
                        if ui.checkbox(&mut occluded, format!("{name} ({:.0}, {:.0}) occluded", p.x, p.y)).changed() {
                            flags[i] = if occluded { LandmarkFlag::Occluded } else { LandmarkFlag::Visible };
                        }
                    });
                }
                if flags != landmarks.flags {
                    self.edit_selected(|f| {
                        if let Some(l) = &mut f.landmarks {
                            l.flags = flags;
                        }
                    });
                }
                if ui.button("Remove landmarks").clicked() {
                    self.edit_selected(|f| f.landmarks = None);
                }
            }
            None => {
                if ui
                    .button("Add landmarks")
                    .on_hover_text("Five points placed in the box, to drag into place")
                    .clicked()
                {
                    self.edit_selected(|f| f.landmarks = Some(default_landmarks(&f.bbox)));
                }
            }
        }
        ui.separator();
        if ui.button("Delete face").clicked() {
            self.delete_selected_face();
        }
        self.face_list(ui);
    }

    fn face_list(&mut self, ui: &mut egui::Ui) {
        let Some(list) = self.current().and_then(|image| self.dataset.as_ref().and_then(|d| faces(d, image))) else {
            return;
        };
        ui.separator();
        let mut clicked = None;
        egui::ScrollArea::vertical().id_salt("faces").max_height(300.0).show_rows(ui, 18.0, list.len(), |ui, rows| {
            for i in rows {
                let [x, y, w, h] = list[i].bbox.to_xywh();
                let text = format!("#{i}: {w:.0}×{h:.0} at ({x:.0}, {y:.0})");
                if ui.selectable_label(self.selected_face == Some(i), text).clicked() {
                    clicked = Some(i);
                }
            }
        });
        if clicked.is_some() {
            self.selected_face = clicked;
        }
    }

    /// Screen rectangle of face `index` of the shown image in the last frame (tests drive drags
    /// with it).
    pub fn face_screen_rect(&self, index: usize) -> Option<egui::Rect> {
        let t = self.view.transform?;
        let list = faces(self.dataset.as_ref()?, self.current()?)?;
        Some(t.rect_to_screen(list.get(index)?.bbox.corners()))
    }
}

enum Hit {
    /// A corner handle of the selected face (0 top-left, clockwise).
    Corner(usize, usize),
    Landmark(usize, usize),
    Body(usize),
}

/// What is under `pos`: the selected face's corners first, then landmarks, then the smallest box
/// containing the point (nested faces stay reachable).
fn hit_test(list: &[Face], selected: Option<usize>, t: &ImageTransform, pos: Pos2) -> Option<Hit> {
    let grab = 6.0;
    if let Some(s) = selected
        && let Some(face) = list.get(s)
    {
        for (corner, handle) in overlay::box_handles(t, &face.bbox).into_iter().enumerate() {
            if handle.distance(pos) <= grab {
                return Some(Hit::Corner(s, corner));
            }
        }
    }
    for (i, face) in list.iter().enumerate() {
        if let Some(l) = &face.landmarks {
            for (j, p) in l.points.points.iter().enumerate() {
                if t.to_screen(*p).distance(pos) <= LANDMARK_RADIUS + 2.0 {
                    return Some(Hit::Landmark(i, j));
                }
            }
        }
    }
    list.iter()
        .enumerate()
        .filter(|(_, f)| t.rect_to_screen(f.bbox.corners()).contains(pos))
        .min_by(|a, b| a.1.bbox.area().total_cmp(&b.1.bbox.area()))
        .map(|(i, _)| Hit::Body(i))
}

fn clamp_point(p: Point, [w, h]: [u32; 2]) -> Point {
    Point { x: p.x.clamp(0.0, w as f32), y: p.y.clamp(0.0, h as f32) }
}

fn corners_box(a: Point, b: Point) -> Result<BBox, crate::geometry::GeometryError> {
    BBox::new(a.x.min(b.x), a.y.min(b.y), a.x.max(b.x), a.y.max(b.y))
}

/// Which corner (0 top-left, clockwise) `p` is, relative to the opposite corner.
fn corner_index(opposite: Point, p: Point) -> usize {
    match (p.x >= opposite.x, p.y >= opposite.y) {
        (false, false) => 0,
        (true, false) => 1,
        (true, true) => 2,
        (false, true) => 3,
    }
}

/// Where the five points sit on an average frontal face, relative to its box.
fn default_landmarks(bbox: &BBox) -> FaceLandmarks {
    let rel = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)];
    let points = rel.map(|(rx, ry)| Point { x: bbox.x1() + rx * bbox.width(), y: bbox.y1() + ry * bbox.height() });
    FaceLandmarks { points: Landmarks { points }, flags: [LandmarkFlag::Visible; 5] }
}

fn tri_combo(ui: &mut egui::Ui, label: &str, value: &mut Tri, names: [&str; 3]) {
    let index = |t: Tri| match t {
        Tri::Any => 0,
        Tri::Yes => 1,
        Tri::No => 2,
    };
    egui::ComboBox::from_label(label).selected_text(names[index(*value)]).show_ui(ui, |ui| {
        for (t, name) in [Tri::Any, Tri::Yes, Tri::No].into_iter().zip(names) {
            ui.selectable_value(value, t, name);
        }
    });
}

fn option_combo<T: Copy + PartialEq>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut Option<T>,
    all: &[T],
    name: fn(T) -> &'static str,
) {
    egui::ComboBox::from_label(label).selected_text(value.map_or("any", name)).show_ui(ui, |ui| {
        ui.selectable_value(value, None, "any");
        for v in all {
            ui.selectable_value(value, Some(*v), name(*v));
        }
    });
}

fn enum_combo<T: Copy + PartialEq>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut T,
    all: &[T],
    name: fn(T) -> &'static str,
) {
    egui::ComboBox::from_label(label).selected_text(name(*value)).show_ui(ui, |ui| {
        for v in all {
            ui.selectable_value(value, *v, name(*v));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};

    #[test]
    fn filters_select_images_by_their_faces_and_name() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(12, 5)).unwrap();
        let (dataset, _) = Dataset::open(dir.path()).unwrap();
        let split = dataset.split(SplitKind::Train).unwrap();
        let all = Filters::default().apply(split, None);
        assert_eq!(all.len(), split.images.len());
        let big = Filters { min_size: 60.0, ..Filters::default() }.apply(split, None);
        assert!(big.len() < all.len());
        for i in &big {
            assert!(split.images[*i].faces.iter().any(|f| f.bbox.width() >= 60.0));
        }
        let name = split.images[3].stem().to_string();
        let found = Filters { search: name.to_uppercase(), ..Filters::default() }.apply(split, None);
        assert_eq!(found, vec![3]);
        let event = split.images[0].event().to_string();
        assert!(Filters::default().apply(split, Some(&event)).iter().all(|i| split.images[*i].event() == event));
        let heavy = Filters { blur: Some(Blur::Heavy), ..Filters::default() }.apply(split, None);
        for i in &heavy {
            assert!(split.images[*i].faces.iter().any(|f| f.attributes.is_some_and(|a| a.blur == Blur::Heavy)));
        }
    }

    #[test]
    fn dragging_a_corner_across_the_opposite_one_keeps_a_valid_box() {
        let a = Point { x: 10.0, y: 10.0 };
        let b = Point { x: 4.0, y: 20.0 };
        let bbox = corners_box(a, b).unwrap();
        assert_eq!(bbox.corners(), [4.0, 10.0, 10.0, 20.0]);
        assert_eq!(corner_index(a, b), 3);
    }

    #[test]
    fn the_smallest_box_under_the_pointer_wins() {
        let outer = Face::new(BBox::new(0.0, 0.0, 100.0, 100.0).unwrap());
        let inner = Face::new(BBox::new(40.0, 40.0, 60.0, 60.0).unwrap());
        let t = ImageTransform { origin: Pos2::ZERO, scale: 1.0 };
        let list = [outer, inner];
        assert!(matches!(hit_test(&list, None, &t, Pos2::new(50.0, 50.0)), Some(Hit::Body(1))));
        assert!(matches!(hit_test(&list, None, &t, Pos2::new(10.0, 50.0)), Some(Hit::Body(0))));
        assert!(matches!(hit_test(&list, Some(1), &t, Pos2::new(61.0, 59.0)), Some(Hit::Corner(1, 2))));
        assert!(hit_test(&list, None, &t, Pos2::new(150.0, 50.0)).is_none());
    }
}
