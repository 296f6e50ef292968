//! A 2-D point in pixel coordinates.

use serde::{Deserialize, Serialize};

/// A point in pixel coordinates (x to the right, y down).
///
/// Fields are public because every pair of floats is a meaningful point; validation happens
/// where points become boxes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    /// Builds a point from its coordinates.
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_serializes_as_named_fields() {
        let json = serde_json::to_string(&Point::new(1.5, -2.0)).expect("serialize");
        assert_eq!(json, r#"{"x":1.5,"y":-2.0}"#);
        let back: Point = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, Point::new(1.5, -2.0));
    }
}
