//! The face inspector: the selected face's box, attributes and landmark flags, edited as
//! undoable changes, and the list of the image's faces.

use super::DatasetPanel;
use crate::app::edit::faces;
use crate::app::overlay;
use crate::app::widgets::choice_ui;
use crate::dataset::{Blur, Expression, Face, FaceLandmarks, Illumination, LandmarkFlag, Occlusion, Pose};
use crate::geometry::{BBox, Landmarks, Point};

impl DatasetPanel {
    pub(super) fn delete_selected_face(&mut self) {
        let (Some(current), Some(face)) = (self.current(), self.selected_face) else { return };
        let Some(dataset) = &mut self.dataset else { return };
        let removed = self.history.apply(dataset, current, |list| (face < list.len()).then(|| list.remove(face)));
        if removed.flatten().is_some() {
            self.selected_face = None;
            self.generation += 1;
        }
    }

    /// Applies `change` to the selected face as one undoable edit.
    fn edit_selected(&mut self, change: impl FnOnce(&mut Face)) {
        let (Some(current), Some(face)) = (self.current(), self.selected_face) else { return };
        let Some(dataset) = &mut self.dataset else { return };
        if self.history.apply(dataset, current, |list| list.get_mut(face).map(change)).flatten().is_some() {
            self.generation += 1;
        }
    }

    /// The selected face's box, attributes and landmarks, then the image's face list.
    pub(super) fn inspector_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Face");
        let face = self
            .current()
            .zip(self.selected_face)
            .and_then(|(image, i)| self.dataset.as_ref().and_then(|d| faces(d, image)).and_then(|l| l.get(i)))
            .cloned();
        let Some(face) = face else {
            ui.weak("Click a face to inspect it. Draw adds one; Delete removes the selected one.");
            self.face_list_ui(ui);
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
        attribute_ui(ui, "blur", &mut attributes.blur, Blur::ALL, Blur::name);
        attribute_ui(ui, "expression", &mut attributes.expression, Expression::ALL, Expression::name);
        attribute_ui(ui, "illumination", &mut attributes.illumination, Illumination::ALL, Illumination::name);
        attribute_ui(ui, "occlusion", &mut attributes.occlusion, Occlusion::ALL, Occlusion::name);
        attribute_ui(ui, "pose", &mut attributes.pose, Pose::ALL, Pose::name);
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
        self.face_list_ui(ui);
    }

    fn face_list_ui(&mut self, ui: &mut egui::Ui) {
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
}

fn attribute_ui<T: Copy + PartialEq>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut T,
    all: &[T],
    name: fn(T) -> &'static str,
) {
    choice_ui(ui, egui::ComboBox::from_label(label), value, all.iter().map(|v| (*v, name(*v).to_string())));
}

/// Where the five points sit on an average frontal face, relative to its box.
fn default_landmarks(bbox: &BBox) -> FaceLandmarks {
    let rel = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)];
    let points = rel.map(|(rx, ry)| Point { x: bbox.x1() + rx * bbox.width(), y: bbox.y1() + ry * bbox.height() });
    FaceLandmarks { points: Landmarks { points }, flags: [LandmarkFlag::Visible; 5] }
}
