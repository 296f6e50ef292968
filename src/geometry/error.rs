//! The one error type of the geometry module.

/// What was wrong with an input to the geometry module, with the offending value.
///
/// Geometry works on untrusted numbers (annotation files, network outputs, configs), so every
/// constructor that can be handed a bad value returns this instead of panicking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    /// A coordinate or size was NaN or infinite.
    #[error("{name} must be finite, got {value}")]
    NonFinite { name: &'static str, value: f32 },

    /// A box whose left edge lies right of its right edge.
    #[error("box has x1 = {x1} greater than x2 = {x2}; corners must satisfy x1 <= x2")]
    InvertedX { x1: f32, x2: f32 },

    /// A box whose top edge lies below its bottom edge.
    #[error("box has y1 = {y1} greater than y2 = {y2}; corners must satisfy y1 <= y2")]
    InvertedY { y1: f32, y2: f32 },

    /// A width, height or scale factor that must not be negative.
    #[error("{name} must be >= 0, got {value}")]
    Negative { name: &'static str, value: f32 },

    /// A box with zero width or height where a positive size is needed (log-space encoding).
    #[error("cannot encode a degenerate box (width {width}, height {height}): both must be > 0")]
    DegenerateBox { width: f32, height: f32 },

    /// A size that must be strictly positive (anchor sizes, codec variances).
    #[error("{name} must be finite and > 0, got {value}")]
    NotPositive { name: &'static str, value: f32 },

    /// An anchor level with stride 0 would put every anchor centre at the origin.
    #[error("anchor stride must be >= 1, got 0")]
    ZeroStride,

    /// An anchor level without sizes produces no anchors and shifts every later index.
    #[error("anchor level with stride {stride} has no anchor sizes")]
    NoAnchorSizes { stride: u32 },

    /// An anchor spec without levels produces no anchors at all.
    #[error("anchor spec has no levels")]
    NoAnchorLevels,

    /// Levels must go finest first, since anchor order (and so the order of head outputs)
    /// depends on it.
    #[error("anchor strides must increase level by level (finest first), got {previous} then {next}")]
    StridesNotIncreasing { previous: u32, next: u32 },

    /// An IoU threshold outside [0, 1] (or NaN) is almost certainly a unit mistake.
    #[error("IoU threshold must lie in [0, 1], got {value}")]
    InvalidIouThreshold { value: f32 },

    /// NMS needs one score per box.
    #[error("NMS got {boxes} boxes but {scores} scores")]
    LengthMismatch { boxes: usize, scores: usize },

    /// A NaN score has no place in the score order.
    #[error("NMS score at index {index} is NaN")]
    NanScore { index: usize },

    /// NMS indexes boxes with 32-bit ranks.
    #[error("NMS supports at most 2^32 - 1 boxes, got {count}")]
    TooManyBoxes { count: usize },

    /// NMS bounds its search by box widths, which needs ordered corners.
    #[error("NMS box at index {index} is {corners:?}; corners must satisfy x1 <= x2 and y1 <= y2")]
    InvertedNmsBox { index: usize, corners: [f32; 4] },

    /// A NaN or infinite box coordinate would make overlaps meaningless.
    #[error("NMS box at index {index} has a non-finite coordinate: {value}")]
    NonFiniteNmsBox { index: usize, value: f32 },
}
