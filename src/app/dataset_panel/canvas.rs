//! The image canvas: faces drawn over the image, and the mouse editing of boxes, corners and
//! landmarks (what a press lands on decides the drag).

use egui::Pos2;

use super::DatasetPanel;
use crate::app::edit::{ImageRef, faces, faces_mut};
use crate::app::overlay::{self, LANDMARK_RADIUS};
use crate::app::viewer::ImageTransform;
use crate::dataset::Face;
use crate::geometry::{BBox, Point};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Click selects; drag moves a box, a corner or a landmark; dragging empty space pans.
    Select,
    /// Dragging draws a new face.
    Draw,
}

/// A mouse drag in progress, with the faces as they were when it began (one undo step).
#[derive(Clone, Debug)]
pub(super) enum Drag {
    Pan,
    Move { face: usize, grab: Point, original: BBox, before: Vec<Face> },
    Corner { face: usize, corner: usize, before: Vec<Face> },
    Landmark { face: usize, point: usize, before: Vec<Face> },
    NewBox { start: Point, current: Point },
}

impl DatasetPanel {
    /// The image with its faces, and the mouse editing over it.
    pub(super) fn image_area_ui(&mut self, ui: &mut egui::Ui) {
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
        let Some(input) = self.view.show_ui(ui, pans) else {
            self.drawn_faces = 0;
            return;
        };
        self.interact_ui(ui, &input.response, &input.transform, current);
        self.suggestion_click_ui(&input.response, &input.transform, current);
        let painter = ui.painter_at(input.response.rect);
        let Some(list) = self.dataset.as_ref().and_then(|d| faces(d, current)) else { return };
        for (i, face) in list.iter().enumerate() {
            overlay::draw_face(&painter, &input.transform, face, self.color_by, self.selected_face == Some(i));
        }
        self.suggestions_overlay_ui(&painter, &input.transform, current);
        if let Some(Drag::NewBox { start, current }) = &self.drag
            && let Ok(bbox) = corners_box(*start, *current)
        {
            overlay::draw_box(&painter, &input.transform, &bbox, overlay::SELECTED, 2.0);
        }
        self.drawn_faces = list.len();
    }

    /// Mouse editing: what the press lands on decides the drag.
    fn interact_ui(&mut self, ui: &egui::Ui, response: &egui::Response, t: &ImageTransform, image: ImageRef) {
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
                // These changed the faces frame by frame: one edit from the faces at the press.
                Some(Drag::Move { before, .. } | Drag::Corner { before, .. } | Drag::Landmark { before, .. }) => {
                    self.history.record(dataset, image, before);
                    self.generation += 1;
                }
                Some(Drag::NewBox { start, current }) => {
                    if let Ok(bbox) = corners_box(start, current)
                        && bbox.width() >= 2.0
                        && bbox.height() >= 2.0
                        && let Some(added) = self.history.apply(dataset, image, |list| {
                            list.push(Face::new(bbox));
                            list.len() - 1
                        })
                    {
                        self.selected_face = Some(added);
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

#[cfg(test)]
mod tests {
    use super::*;

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
