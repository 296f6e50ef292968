//! What is drawn over an image: boxes coloured by what matters about them, and the five
//! landmarks with one colour per index (the detector's PNG export uses the same colours).

use egui::{Color32, Painter, Pos2, Stroke, StrokeKind};

use super::viewer::ImageTransform;
use crate::dataset::{Blur, Face, LandmarkFlag, Occlusion, Pose};
use crate::detect::LANDMARK_COLORS;
use crate::geometry::{BBox, Landmarks};

/// Which attribute the box colour shows in the Dataset panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ColorBy {
    #[default]
    Blur,
    Occlusion,
    Pose,
    Invalid,
}

impl ColorBy {
    pub const ALL: [ColorBy; 4] = [ColorBy::Blur, ColorBy::Occlusion, ColorBy::Pose, ColorBy::Invalid];

    pub fn name(self) -> &'static str {
        match self {
            ColorBy::Blur => "blur",
            ColorBy::Occlusion => "occlusion",
            ColorBy::Pose => "pose",
            ColorBy::Invalid => "invalid",
        }
    }
}

const GOOD: Color32 = Color32::from_rgb(60, 220, 90);
const MID: Color32 = Color32::from_rgb(250, 200, 40);
const BAD: Color32 = Color32::from_rgb(240, 70, 60);
const UNKNOWN: Color32 = Color32::from_rgb(150, 170, 255);
/// Invalid faces are always grey: neither trained on nor evaluated.
const INVALID: Color32 = Color32::from_gray(140);
pub const SELECTED: Color32 = Color32::WHITE;

/// The box colour of a dataset face under `by`.
pub fn face_color(face: &Face, by: ColorBy) -> Color32 {
    let Some(a) = face.attributes else { return UNKNOWN };
    if a.invalid {
        return INVALID;
    }
    match by {
        ColorBy::Blur => [GOOD, MID, BAD][Blur::ALL.iter().position(|b| *b == a.blur).unwrap_or(0)],
        ColorBy::Occlusion => [GOOD, MID, BAD][Occlusion::ALL.iter().position(|o| *o == a.occlusion).unwrap_or(0)],
        ColorBy::Pose => [GOOD, BAD][Pose::ALL.iter().position(|p| *p == a.pose).unwrap_or(0)],
        ColorBy::Invalid => GOOD,
    }
}

pub fn landmark_color(index: usize) -> Color32 {
    let [r, g, b] = LANDMARK_COLORS[index % 5];
    Color32::from_rgb(r, g, b)
}

/// Screen radius of a landmark dot; also the grab radius of editing.
pub const LANDMARK_RADIUS: f32 = 3.5;

pub fn draw_box(painter: &Painter, t: &ImageTransform, bbox: &BBox, color: Color32, width: f32) {
    painter.rect_stroke(t.rect_to_screen(bbox.corners()), 0.0, Stroke::new(width, color), StrokeKind::Middle);
}

/// The five points; occluded points (flag 1) are drawn hollow.
pub fn draw_landmarks(painter: &Painter, t: &ImageTransform, points: &Landmarks, flags: Option<&[LandmarkFlag; 5]>) {
    for (i, p) in points.points.iter().enumerate() {
        let pos = t.to_screen(*p);
        let color = landmark_color(i);
        match flags.map(|f| f[i]) {
            Some(LandmarkFlag::Occluded) => {
                painter.circle_stroke(pos, LANDMARK_RADIUS, Stroke::new(1.5, color));
            }
            _ => {
                painter.circle_filled(pos, LANDMARK_RADIUS, color);
            }
        }
    }
}

pub fn draw_face(painter: &Painter, t: &ImageTransform, face: &Face, by: ColorBy, selected: bool) {
    let color = if selected { SELECTED } else { face_color(face, by) };
    draw_box(painter, t, &face.bbox, color, if selected { 2.5 } else { 1.5 });
    if let Some(l) = &face.landmarks {
        draw_landmarks(painter, t, &l.points, Some(&l.flags));
    }
    if selected {
        for corner in box_handles(t, &face.bbox) {
            painter.rect_filled(egui::Rect::from_center_size(corner, egui::vec2(7.0, 7.0)), 1.0, SELECTED);
        }
    }
}

/// Screen positions of the four corner handles: top-left, top-right, bottom-right, bottom-left.
pub fn box_handles(t: &ImageTransform, bbox: &BBox) -> [Pos2; 4] {
    let r = t.rect_to_screen(bbox.corners());
    [r.left_top(), r.right_top(), r.right_bottom(), r.left_bottom()]
}

/// A score label above a box.
pub fn draw_score(painter: &Painter, t: &ImageTransform, bbox: &BBox, score: f32, color: Color32) {
    let pos = t.to_screen(crate::geometry::Point { x: bbox.x1(), y: bbox.y1() });
    painter.text(
        pos - egui::vec2(0.0, 1.0),
        egui::Align2::LEFT_BOTTOM,
        format!("{score:.2}"),
        egui::FontId::proportional(11.0),
        color,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Attributes;

    #[test]
    fn invalid_faces_are_grey_whatever_the_colouring() {
        let mut face = Face::new(BBox::new(0.0, 0.0, 10.0, 10.0).unwrap());
        face.attributes = Some(Attributes { invalid: true, blur: Blur::Heavy, ..Attributes::default() });
        for by in ColorBy::ALL {
            assert_eq!(face_color(&face, by), INVALID);
        }
        face.attributes = Some(Attributes { blur: Blur::Heavy, ..Attributes::default() });
        assert_eq!(face_color(&face, ColorBy::Blur), BAD);
        assert_eq!(face_color(&face, ColorBy::Pose), GOOD);
    }
}
