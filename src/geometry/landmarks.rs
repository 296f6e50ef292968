//! The five facial landmarks of RetinaFace.

use serde::{Deserialize, Serialize};

use super::Point;

/// Five facial landmarks in pixels, in the order of RetinaFace and WIDER FACE: left eye,
/// right eye, nose, left mouth corner, right mouth corner, where "left" means image-left
/// (smaller x for a frontal face), not the person's left.
///
/// The order is part of the meaning, so a horizontal flip must swap the left/right pairs as
/// well as mirror x (see [`Landmarks::flip_horizontal`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Landmarks {
    pub points: [Point; 5],
}

impl Landmarks {
    pub const LEFT_EYE: usize = 0;
    pub const RIGHT_EYE: usize = 1;
    pub const NOSE: usize = 2;
    pub const LEFT_MOUTH: usize = 3;
    pub const RIGHT_MOUTH: usize = 4;

    /// Builds landmarks from `[x0, y0, x1, y1, …, x4, y4]`, the layout of annotation files and
    /// of the network's landmark head.
    pub fn from_flat(flat: [f32; 10]) -> Self {
        Self { points: std::array::from_fn(|i| Point::new(flat[2 * i], flat[2 * i + 1])) }
    }

    /// `[x0, y0, x1, y1, …, x4, y4]`, the inverse of [`Landmarks::from_flat`].
    pub fn to_flat(&self) -> [f32; 10] {
        std::array::from_fn(|i| {
            let p = self.points[i / 2];
            if i % 2 == 0 { p.x } else { p.y }
        })
    }

    /// The landmarks in the horizontally mirrored image: `x -> image_width - x` (continuous
    /// coordinates, as for [`super::BBox::flip_horizontal`]), and the eyes and mouth corners
    /// swapped so that index 0 is again the image-left eye.
    pub fn flip_horizontal(&self, image_width: u32) -> Self {
        let w = image_width as f32;
        let mut points = self.points.map(|p| Point::new(w - p.x, p.y));
        points.swap(Self::LEFT_EYE, Self::RIGHT_EYE);
        points.swap(Self::LEFT_MOUTH, Self::RIGHT_MOUTH);
        Self { points }
    }

    /// Moves every point by `(dx, dy)`.
    pub fn translate(&self, dx: f32, dy: f32) -> Self {
        Self { points: self.points.map(|p| Point::new(p.x + dx, p.y + dy)) }
    }

    /// Multiplies x by `sx` and y by `sy` (resizing the image by those factors).
    pub fn scale(&self, sx: f32, sy: f32) -> Self {
        Self { points: self.points.map(|p| Point::new(p.x * sx, p.y * sy)) }
    }

    /// Mean of the five points.
    pub fn centroid(&self) -> Point {
        let (sx, sy) = self.points.iter().fold((0.0, 0.0), |(sx, sy), p| (sx + p.x, sy + p.y));
        let n = self.points.len() as f32;
        Point::new(sx / n, sy / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> Landmarks {
        Landmarks::from_flat([30.0, 40.0, 70.0, 41.0, 50.0, 60.0, 35.0, 80.0, 66.0, 79.0])
    }

    #[test]
    fn index_constants_follow_retinaface_order() {
        let lm = face();
        assert!(lm.points[Landmarks::LEFT_EYE].x < lm.points[Landmarks::RIGHT_EYE].x);
        assert!(lm.points[Landmarks::LEFT_MOUTH].x < lm.points[Landmarks::RIGHT_MOUTH].x);
        assert_eq!(lm.points[Landmarks::NOSE], Point::new(50.0, 60.0));
    }

    #[test]
    fn flat_round_trip() {
        let flat = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let lm = Landmarks::from_flat(flat);
        assert_eq!(lm.points[1], Point::new(3.0, 4.0));
        assert_eq!(lm.to_flat(), flat);
    }

    #[test]
    fn flip_horizontal_mirrors_x_and_swaps_left_right_pairs() {
        let flipped = face().flip_horizontal(100);
        assert_eq!(
            flipped.to_flat(),
            // Old right eye (70, 41) becomes the new left eye at (30, 41), and so on.
            [30.0, 41.0, 70.0, 40.0, 50.0, 60.0, 34.0, 79.0, 65.0, 80.0]
        );
        assert!(flipped.points[Landmarks::LEFT_EYE].x < flipped.points[Landmarks::RIGHT_EYE].x);
    }

    #[test]
    fn flip_horizontal_twice_is_identity() {
        assert_eq!(face().flip_horizontal(123).flip_horizontal(123), face());
    }

    #[test]
    fn translate_moves_every_point() {
        let moved = face().translate(1.0, -2.0);
        for (a, b) in moved.points.iter().zip(face().points.iter()) {
            assert_eq!(*a, Point::new(b.x + 1.0, b.y - 2.0));
        }
    }

    #[test]
    fn scale_multiplies_x_and_y_separately() {
        let scaled = face().scale(2.0, 0.5);
        assert_eq!(scaled.points[Landmarks::NOSE], Point::new(100.0, 30.0));
    }

    #[test]
    fn centroid_is_mean_of_points() {
        // x: (30+70+50+35+66)/5 = 50.2, y: (40+41+60+80+79)/5 = 60.
        let c = face().centroid();
        assert!((c.x - 50.2).abs() < 1e-5 && (c.y - 60.0).abs() < 1e-5, "{c:?}");
    }
}
