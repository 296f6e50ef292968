//! Axis-aligned boxes in pixel coordinates.

use serde::{Deserialize, Serialize};

use super::{GeometryError, Point};

/// An axis-aligned box `x1, y1, x2, y2` in pixels, continuous coordinates (a box covering the
/// single pixel at column 0 is `0, 0, 1, 1`).
///
/// Fields are private so that every `BBox` in the program is finite and ordered
/// (`x1 <= x2`, `y1 <= y2`); code that takes a `BBox` never has to re-check. Zero width or
/// height is allowed because real annotations contain such boxes (see [`BBox::is_degenerate`]).
///
/// Serialized as the array `[x1, y1, x2, y2]`; deserializing validates like [`BBox::new`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[f32; 4]", into = "[f32; 4]")]
pub struct BBox {
    x1: f32,
    y1: f32,
    x2: f32,
    y2: f32,
}

/// Returns `value` if finite, otherwise an error naming it.
fn finite(name: &'static str, value: f32) -> Result<f32, GeometryError> {
    if value.is_finite() { Ok(value) } else { Err(GeometryError::NonFinite { name, value }) }
}

/// Returns `value` if finite and not negative, otherwise an error naming it.
fn non_negative(name: &'static str, value: f32) -> Result<f32, GeometryError> {
    if finite(name, value)? < 0.0 { Err(GeometryError::Negative { name, value }) } else { Ok(value) }
}

impl BBox {
    /// Builds a box from its corners; all must be finite with `x1 <= x2` and `y1 <= y2`.
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Result<Self, GeometryError> {
        let x1 = finite("x1", x1)?;
        let y1 = finite("y1", y1)?;
        let x2 = finite("x2", x2)?;
        let y2 = finite("y2", y2)?;
        if x1 > x2 {
            return Err(GeometryError::InvertedX { x1, x2 });
        }
        if y1 > y2 {
            return Err(GeometryError::InvertedY { y1, y2 });
        }
        Ok(Self { x1, y1, x2, y2 })
    }

    /// Builds a box from its top-left corner and size (`x2 = x + w`, `y2 = y + h`), the layout
    /// of WIDER FACE annotations. Width and height must be finite and `>= 0`.
    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> Result<Self, GeometryError> {
        let x = finite("x", x)?;
        let y = finite("y", y)?;
        let w = non_negative("width", w)?;
        let h = non_negative("height", h)?;
        Self::new(x, y, x + w, y + h)
    }

    pub fn x1(&self) -> f32 {
        self.x1
    }

    pub fn y1(&self) -> f32 {
        self.y1
    }

    pub fn x2(&self) -> f32 {
        self.x2
    }

    pub fn y2(&self) -> f32 {
        self.y2
    }

    /// `x2 - x1`, never negative.
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    /// `y2 - y1`, never negative.
    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    /// `width * height` (continuous convention, no `+1`).
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// True when the box has zero width or zero height: it covers no area, cannot be encoded
    /// against an anchor (log of zero) and has IoU 0 with everything.
    pub fn is_degenerate(&self) -> bool {
        self.width() == 0.0 || self.height() == 0.0
    }

    /// The midpoint `((x1 + x2) / 2, (y1 + y2) / 2)`.
    pub fn center(&self) -> Point {
        Point::new((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// Area of the overlap with `other`, 0 when they do not overlap (or only touch).
    pub fn intersection_area(&self, other: &BBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        w * h
    }

    /// Intersection over union in the continuous convention; 0 when the union is 0 (two
    /// degenerate boxes), so the result is always a number in [0, 1].
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection_area(other);
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// Moves the box by `(dx, dy)`. Fails on a non-finite offset or if a corner overflows.
    pub fn translate(&self, dx: f32, dy: f32) -> Result<Self, GeometryError> {
        let dx = finite("dx", dx)?;
        let dy = finite("dy", dy)?;
        Self::new(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)
    }

    /// Multiplies x coordinates by `sx` and y coordinates by `sy` (resizing an image by those
    /// factors). Factors must be finite and `>= 0`: a negative factor would mirror the box,
    /// which is [`BBox::flip_horizontal`]'s job.
    pub fn scale(&self, sx: f32, sy: f32) -> Result<Self, GeometryError> {
        let sx = non_negative("sx", sx)?;
        let sy = non_negative("sy", sy)?;
        Self::new(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)
    }

    /// Clamps the box to the image `[0, width] x [0, height]`. A box entirely outside the
    /// image becomes a degenerate box on the image border.
    pub fn clip(&self, width: u32, height: u32) -> Self {
        let (w, h) = (width as f32, height as f32);
        // Clamping is monotone, so the corner order (the invariant) is preserved.
        Self {
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
            x2: self.x2.clamp(0.0, w),
            y2: self.y2.clamp(0.0, h),
        }
    }

    /// The box in the horizontally mirrored image: `x -> image_width - x` (continuous
    /// coordinates, so the mirror of the image `[0, W]` is itself), with the corners swapped
    /// so that `x1 <= x2` still holds.
    pub fn flip_horizontal(&self, image_width: u32) -> Self {
        let w = image_width as f32;
        // Subtraction from the same value is monotone (decreasing) in f32, so
        // `w - x2 <= w - x1`; `w` and the corners are finite and the result cannot overflow.
        Self { x1: w - self.x2, y1: self.y1, x2: w - self.x1, y2: self.y2 }
    }

    /// `[x1, y1, width, height]`.
    pub fn to_xywh(&self) -> [f32; 4] {
        [self.x1, self.y1, self.width(), self.height()]
    }

    /// `[x1, y1, x2, y2]`.
    pub fn corners(&self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }
}

impl TryFrom<[f32; 4]> for BBox {
    type Error = GeometryError;

    fn try_from([x1, y1, x2, y2]: [f32; 4]) -> Result<Self, Self::Error> {
        Self::new(x1, y1, x2, y2)
    }
}

impl From<BBox> for [f32; 4] {
    fn from(b: BBox) -> Self {
        b.corners()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bb(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox::new(x1, y1, x2, y2).expect("valid test box")
    }

    #[test]
    fn new_accepts_ordered_finite_corners() {
        let b = bb(1.0, 2.0, 3.0, 5.0);
        assert_eq!((b.x1(), b.y1(), b.x2(), b.y2()), (1.0, 2.0, 3.0, 5.0));
        assert!(!b.is_degenerate());
    }

    #[test]
    fn new_accepts_zero_size_box_as_degenerate() {
        assert!(bb(4.0, 4.0, 4.0, 9.0).is_degenerate());
        assert!(bb(4.0, 4.0, 9.0, 4.0).is_degenerate());
    }

    #[test]
    fn new_rejects_inverted_x() {
        assert_eq!(BBox::new(5.0, 0.0, 4.0, 1.0), Err(GeometryError::InvertedX { x1: 5.0, x2: 4.0 }));
    }

    #[test]
    fn new_rejects_inverted_y() {
        assert_eq!(BBox::new(0.0, 3.0, 1.0, 2.5), Err(GeometryError::InvertedY { y1: 3.0, y2: 2.5 }));
    }

    #[test]
    fn new_rejects_non_finite_coordinate_and_names_it() {
        let err = BBox::new(0.0, 0.0, f32::INFINITY, 1.0).unwrap_err();
        assert_eq!(err.to_string(), "x2 must be finite, got inf");
        let err = BBox::new(0.0, f32::NAN, 1.0, 1.0).unwrap_err();
        assert_eq!(err.to_string(), "y1 must be finite, got NaN");
    }

    #[test]
    fn inverted_box_error_message_names_values() {
        let err = BBox::new(5.0, 0.0, 4.0, 1.0).unwrap_err();
        assert_eq!(err.to_string(), "box has x1 = 5 greater than x2 = 4; corners must satisfy x1 <= x2");
    }

    #[test]
    fn from_xywh_sets_far_corner_to_origin_plus_size() {
        let b = BBox::from_xywh(10.0, 20.0, 30.0, 40.0).expect("valid");
        assert_eq!(b.corners(), [10.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn from_xywh_accepts_zero_size() {
        assert!(BBox::from_xywh(1.0, 1.0, 0.0, 0.0).expect("valid").is_degenerate());
    }

    #[test]
    fn from_xywh_rejects_negative_width_naming_the_value() {
        let err = BBox::from_xywh(0.0, 0.0, -2.5, 1.0).unwrap_err();
        assert_eq!(err, GeometryError::Negative { name: "width", value: -2.5 });
        assert_eq!(err.to_string(), "width must be >= 0, got -2.5");
    }

    #[test]
    fn from_xywh_rejects_negative_height() {
        assert_eq!(BBox::from_xywh(0.0, 0.0, 1.0, -1.0), Err(GeometryError::Negative { name: "height", value: -1.0 }));
    }

    #[test]
    fn from_xywh_rejects_overflowing_far_corner() {
        assert!(matches!(
            BBox::from_xywh(f32::MAX, 0.0, f32::MAX, 1.0),
            Err(GeometryError::NonFinite { name: "x2", .. })
        ));
    }

    #[test]
    fn width_height_area_and_center() {
        let b = bb(2.0, 4.0, 8.0, 7.0);
        assert_eq!(b.width(), 6.0);
        assert_eq!(b.height(), 3.0);
        assert_eq!(b.area(), 18.0);
        assert_eq!(b.center(), Point::new(5.0, 5.5));
    }

    #[test]
    fn to_xywh_and_corners() {
        let b = bb(2.0, 4.0, 8.0, 7.0);
        assert_eq!(b.to_xywh(), [2.0, 4.0, 6.0, 3.0]);
        assert_eq!(b.corners(), [2.0, 4.0, 8.0, 7.0]);
    }

    #[test]
    fn intersection_area_of_overlapping_boxes() {
        assert_eq!(bb(0.0, 0.0, 10.0, 10.0).intersection_area(&bb(5.0, 2.0, 15.0, 20.0)), 40.0);
    }

    #[test]
    fn iou_hand_computed() {
        // Overlap 5x10 = 50, union 100 + 100 - 50 = 150.
        let iou = bb(0.0, 0.0, 10.0, 10.0).iou(&bb(5.0, 0.0, 15.0, 10.0));
        assert!((iou - 1.0 / 3.0).abs() < 1e-7, "{iou}");
    }

    #[test]
    fn iou_is_symmetric() {
        let (a, b) = (bb(0.0, 1.0, 7.0, 9.0), bb(3.0, -2.0, 11.0, 5.0));
        assert_eq!(a.iou(&b), b.iou(&a));
    }

    #[test]
    fn iou_of_identical_boxes_is_one() {
        let b = bb(1.5, 2.5, 9.0, 4.0);
        assert_eq!(b.iou(&b), 1.0);
    }

    #[test]
    fn iou_of_touching_boxes_is_zero() {
        assert_eq!(bb(0.0, 0.0, 1.0, 1.0).iou(&bb(1.0, 0.0, 2.0, 1.0)), 0.0);
    }

    #[test]
    fn iou_of_disjoint_boxes_is_zero() {
        assert_eq!(bb(0.0, 0.0, 1.0, 1.0).iou(&bb(5.0, 5.0, 6.0, 6.0)), 0.0);
    }

    #[test]
    fn iou_of_two_degenerate_boxes_is_zero() {
        let b = bb(3.0, 3.0, 3.0, 3.0);
        assert_eq!(b.iou(&b), 0.0);
    }

    #[test]
    fn translate_moves_all_corners() {
        let b = bb(1.0, 2.0, 3.0, 4.0).translate(10.0, -1.0).expect("valid");
        assert_eq!(b.corners(), [11.0, 1.0, 13.0, 3.0]);
    }

    #[test]
    fn translate_rejects_non_finite_offset() {
        assert!(matches!(
            bb(1.0, 2.0, 3.0, 4.0).translate(f32::NAN, 0.0),
            Err(GeometryError::NonFinite { name: "dx", .. })
        ));
    }

    #[test]
    fn translate_rejects_overflow() {
        assert!(bb(0.0, 0.0, f32::MAX, 1.0).translate(f32::MAX, 0.0).is_err());
    }

    #[test]
    fn scale_multiplies_x_and_y_separately() {
        let b = bb(1.0, 2.0, 3.0, 4.0).scale(2.0, 0.5).expect("valid");
        assert_eq!(b.corners(), [2.0, 1.0, 6.0, 2.0]);
    }

    #[test]
    fn scale_rejects_negative_factor() {
        assert_eq!(bb(1.0, 2.0, 3.0, 4.0).scale(1.0, -2.0), Err(GeometryError::Negative { name: "sy", value: -2.0 }));
    }

    #[test]
    fn clip_clamps_to_image() {
        let b = bb(-5.0, 10.0, 120.0, 90.0).clip(100, 80);
        assert_eq!(b.corners(), [0.0, 10.0, 100.0, 80.0]);
    }

    #[test]
    fn clip_of_box_outside_image_is_degenerate() {
        let b = bb(150.0, 10.0, 170.0, 20.0).clip(100, 80);
        assert_eq!(b.corners(), [100.0, 10.0, 100.0, 20.0]);
        assert!(b.is_degenerate());
    }

    #[test]
    fn flip_horizontal_mirrors_x_and_keeps_order() {
        let b = bb(10.0, 5.0, 30.0, 15.0).flip_horizontal(100);
        assert_eq!(b.corners(), [70.0, 5.0, 90.0, 15.0]);
    }

    #[test]
    fn flip_horizontal_twice_is_identity() {
        let b = bb(10.25, 5.0, 30.5, 15.0);
        assert_eq!(b.flip_horizontal(640).flip_horizontal(640), b);
    }

    #[test]
    fn serializes_as_corner_array() {
        let json = serde_json::to_string(&bb(1.0, 2.0, 3.5, 4.0)).expect("serialize");
        assert_eq!(json, "[1.0,2.0,3.5,4.0]");
        let back: BBox = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, bb(1.0, 2.0, 3.5, 4.0));
    }

    #[test]
    fn deserialize_rejects_inverted_box() {
        let err = serde_json::from_str::<BBox>("[3.0,0.0,1.0,1.0]").unwrap_err();
        assert!(err.to_string().contains("x1 = 3 greater than x2 = 1"), "{err}");
    }
}
