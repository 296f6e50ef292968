//! Greedy non-maximum suppression.

use super::GeometryError;

/// How box areas (and overlap widths) are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaConvention {
    /// `(x2 − x1)(y2 − y1)`: boxes are continuous regions, as everywhere else in this module.
    Continuous,
    /// `(x2 − x1 + 1)(y2 − y1 + 1)` and overlap width `max(0, xx2 − xx1 + 1)`: boxes are
    /// inclusive pixel ranges, as in `py_cpu_nms` of the reference detectors. Needed to
    /// reproduce their detections exactly; it also makes boxes that merely touch overlap.
    PlusOnePixel,
}

impl AreaConvention {
    /// What is added to every extent. Adding `0.0` is exact in f32, so one code path serves
    /// both conventions without changing `Continuous` results.
    fn extent_offset(self) -> f32 {
        match self {
            AreaConvention::Continuous => 0.0,
            AreaConvention::PlusOnePixel => 1.0,
        }
    }
}

/// Greedy NMS over `boxes` (`[x1, y1, x2, y2]`) with one score each.
///
/// Boxes are visited by descending score (equal scores: lower index first); each box not yet
/// suppressed is kept and suppresses every later box whose IoU with it is strictly greater
/// than `iou_threshold` (a box at exactly the threshold survives, as with `ovr <= thresh` in
/// `py_cpu_nms`). Returns the kept indices into `boxes`, by descending score.
///
/// Arithmetic is f32 in the reference's operation order, so with
/// [`AreaConvention::PlusOnePixel`] the result equals `py_cpu_nms` on float32 arrays (up to
/// the order of exactly tied scores, which numpy's unstable argsort leaves unspecified).
/// A pair whose union is 0 has no defined IoU and never suppresses.
///
/// Errors: `boxes` and `scores` of different lengths, more than `u32::MAX` boxes, a NaN
/// score, a non-finite coordinate, a box with `x2 < x1` or `y2 < y1` (decoded boxes never
/// are), or a threshold outside `[0, 1]`.
pub fn nms(
    boxes: &[[f32; 4]],
    scores: &[f32],
    iou_threshold: f32,
    convention: AreaConvention,
) -> Result<Vec<usize>, GeometryError> {
    validate(boxes, scores, iou_threshold)?;
    let by_score = score_order(scores);
    let sorted = XSorted::new(boxes, &by_score, convention.extent_offset());

    // Indexed by position in `sorted`, so the inner loop reads it contiguously.
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (rank, &index) in (0u32..).zip(&by_score) {
        let slot = sorted.slot_of_rank[rank as usize] as usize;
        if suppressed[slot] {
            continue;
        }
        keep.push(index);
        sorted.suppress_later_overlaps(slot, rank, iou_threshold, &mut suppressed);
    }
    Ok(keep)
}

/// Checks the preconditions of [`nms`], which its speed-ups rely on.
fn validate(boxes: &[[f32; 4]], scores: &[f32], iou_threshold: f32) -> Result<(), GeometryError> {
    if boxes.len() != scores.len() {
        return Err(GeometryError::LengthMismatch { boxes: boxes.len(), scores: scores.len() });
    }
    if u32::try_from(boxes.len()).is_err() {
        return Err(GeometryError::TooManyBoxes { count: boxes.len() });
    }
    if !(0.0..=1.0).contains(&iou_threshold) {
        return Err(GeometryError::InvalidIouThreshold { value: iou_threshold });
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(GeometryError::NanScore { index });
    }
    for (index, &[x1, y1, x2, y2]) in boxes.iter().enumerate() {
        if let Some(&value) = [x1, y1, x2, y2].iter().find(|c| !c.is_finite()) {
            return Err(GeometryError::NonFiniteNmsBox { index, value });
        }
        if x1 > x2 || y1 > y2 {
            return Err(GeometryError::InvertedNmsBox { index, corners: [x1, y1, x2, y2] });
        }
    }
    Ok(())
}

/// Maps a non-NaN f32 to a u32 whose unsigned order is the float order, with -0.0 and 0.0
/// mapped alike (as numpy compares them). Sorting integer keys is several times faster than
/// sorting with a float comparator.
fn order_key(v: f32) -> u32 {
    let bits = (v + 0.0).to_bits(); // -0.0 + 0.0 = +0.0
    if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 }
}

/// Packs a sort key and an index (< 2^32, checked by [`validate`]) so that one integer sort
/// orders by key, then by index.
fn packed(key: u32, index: usize) -> u64 {
    (u64::from(key) << 32) | index as u64
}

/// The low 32 bits of a [`packed`] value.
fn unpacked_index(packed: u64) -> usize {
    (packed & 0xFFFF_FFFF) as usize
}

/// Indices of `scores` by descending score, equal scores by ascending index (what a stable
/// descending sort gives).
fn score_order(scores: &[f32]) -> Vec<usize> {
    let mut keys: Vec<u64> = scores.iter().enumerate().map(|(i, &s)| packed(!order_key(s), i)).collect();
    keys.sort_unstable();
    keys.into_iter().map(unpacked_index).collect()
}

/// The boxes sorted by `x1`, as separate arrays (so the inner loop vectorises), with each
/// box's score rank and extents measured under the chosen convention.
///
/// Sorting by `x1` bounds the search: a box can only exceed IoU `t` with box `i` if its width
/// (with offset) is below `w_i / t`, because IoU ≤ min(w) / max(w) (the intersection is at
/// most the narrower width times the lower height, the union at least the larger area).
/// Overlapping boxes therefore have `x1` in `(x1_i − w_i / t, x2_i + off)`, a contiguous range
/// of this order found by binary search.
struct XSorted {
    x1: Vec<f32>,
    y1: Vec<f32>,
    x2: Vec<f32>,
    y2: Vec<f32>,
    area: Vec<f32>,
    /// Score rank of the box at each position.
    rank: Vec<u32>,
    /// Position of the box with each score rank.
    slot_of_rank: Vec<u32>,
    /// Extent offset of the [`AreaConvention`].
    off: f32,
}

impl XSorted {
    fn new(boxes: &[[f32; 4]], by_score: &[usize], off: f32) -> Self {
        let mut keys: Vec<u64> =
            by_score.iter().enumerate().map(|(rank, &i)| packed(order_key(boxes[i][0]), rank)).collect();
        keys.sort_unstable();
        let n = keys.len();
        let mut sorted = Self {
            x1: Vec::with_capacity(n),
            y1: Vec::with_capacity(n),
            x2: Vec::with_capacity(n),
            y2: Vec::with_capacity(n),
            area: Vec::with_capacity(n),
            rank: Vec::with_capacity(n),
            slot_of_rank: vec![0; n],
            off,
        };
        // Ranks and slots are < n <= u32::MAX (checked by `validate`): the casts are exact.
        for (slot, key) in keys.into_iter().enumerate() {
            let rank = unpacked_index(key);
            let [x1, y1, x2, y2] = boxes[by_score[rank]];
            sorted.x1.push(x1);
            sorted.y1.push(y1);
            sorted.x2.push(x2);
            sorted.y2.push(y2);
            sorted.area.push((x2 - x1 + off) * (y2 - y1 + off));
            sorted.rank.push(rank as u32);
            sorted.slot_of_rank[rank] = slot as u32;
        }
        sorted
    }

    /// Positions `start..end` that can hold a box with IoU above `threshold` with the box at
    /// `slot` (see the type's documentation). The margins (1 % on the width ratio, a pixel
    /// plus 0.1 % of the coordinates on the ends) exceed f32 rounding in the IoU by orders of
    /// magnitude, so the window never misses a box that the exact formula would suppress.
    fn window(&self, slot: usize, threshold: f32) -> (usize, usize) {
        let (x1, x2) = (self.x1[slot], self.x2[slot]);
        let reach = if threshold > 0.0 { (x2 - x1 + self.off) / threshold * 1.01 } else { f32::INFINITY };
        let slack = 1.0 + 1e-3 * (x1.abs() + x2.abs());
        let (lo, hi) = (x1 - reach - slack, x2 + self.off + slack);
        let start = self.x1.partition_point(|&v| v < lo);
        let end = start + self.x1[start..].partition_point(|&v| v <= hi);
        (start, end)
    }

    /// Marks as suppressed every box ranked after `rank` whose IoU with the box at `slot`
    /// exceeds `threshold`.
    ///
    /// Branch-free over the window so that it vectorises; re-marking an already suppressed
    /// box is harmless. Operation order is `py_cpu_nms`'s: `w = max(0, min(x2) − max(x1) + off)`,
    /// `ovr = inter / (area_i + area_j − inter)`.
    fn suppress_later_overlaps(&self, slot: usize, rank: u32, threshold: f32, suppressed: &mut [bool]) {
        let (ax1, ay1, ax2, ay2) = (self.x1[slot], self.y1[slot], self.x2[slot], self.y2[slot]);
        let area = self.area[slot];
        let off = self.off;
        let (start, end) = self.window(slot, threshold);
        let m = end - start;
        // Equal-length slices let the compiler drop bounds checks in the loop.
        let x1 = &self.x1[start..][..m];
        let y1 = &self.y1[start..][..m];
        let x2 = &self.x2[start..][..m];
        let y2 = &self.y2[start..][..m];
        let areas = &self.area[start..][..m];
        let ranks = &self.rank[start..][..m];
        let suppressed = &mut suppressed[start..][..m];
        for j in 0..m {
            let w = fmax(fmin(ax2, x2[j]) - fmax(ax1, x1[j]) + off, 0.0);
            let h = fmax(fmin(ay2, y2[j]) - fmax(ay1, y1[j]) + off, 0.0);
            let inter = w * h;
            let over = inter / (area + areas[j] - inter) > threshold;
            suppressed[j] |= over & (ranks[j] > rank);
        }
    }
}

/// `min` for non-NaN inputs; unlike `f32::min` it compiles to one SIMD instruction.
fn fmin(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

/// `max` for non-NaN inputs; unlike `f32::max` it compiles to one SIMD instruction.
fn fmax(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;
    use AreaConvention::{Continuous, PlusOnePixel};

    /// Direct port of `py_cpu_nms` (list-based, O(n²)) with a stable score sort.
    fn naive_nms(boxes: &[[f32; 4]], scores: &[f32], thresh: f32, c: AreaConvention) -> Vec<usize> {
        let iou = |a: &[f32; 4], b: &[f32; 4]| -> f32 {
            match c {
                Continuous => {
                    let ba = BBox::new(a[0], a[1], a[2], a[3]).expect("valid");
                    let bb = BBox::new(b[0], b[1], b[2], b[3]).expect("valid");
                    ba.iou(&bb)
                }
                PlusOnePixel => {
                    let area = |r: &[f32; 4]| (r[2] - r[0] + 1.0) * (r[3] - r[1] + 1.0);
                    let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
                    let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
                    let inter = w * h;
                    inter / (area(a) + area(b) - inter)
                }
            }
        };
        let mut order: Vec<usize> = (0..boxes.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut keep = Vec::new();
        while let Some((&i, rest)) = order.split_first() {
            keep.push(i);
            order = rest.iter().copied().filter(|&j| iou(&boxes[i], &boxes[j]) <= thresh).collect();
        }
        keep
    }

    /// Xorshift generator of floats in [0, 1), so that tests need no random-number crate.
    fn uniform(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// Boxes scattered over a `region`-pixel square with sides up to `max_side` (some zero, many
    /// thin), on a half-pixel grid so that exact IoU ties happen, and scores on a coarse grid so
    /// that exact score ties happen.
    fn scattered_case(seed: u64, n: usize, region: f32, max_side: f32) -> (Vec<[f32; 4]>, Vec<f32>) {
        let mut next = uniform(seed);
        let half = |v: f32| (v * 2.0).round() / 2.0;
        let mut boxes = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        for _ in 0..n {
            let (x, y) = (half(next() * region), half(next() * region));
            let (w, h) = (half(next().powi(2) * max_side), half(next().powi(2) * max_side));
            boxes.push([x, y, x + w, y + h]);
            scores.push((next() * 20.0).floor() / 20.0);
        }
        (boxes, scores)
    }

    /// Detector-like output on a 1024×624 image: `n` candidates jittered around `faces` faces
    /// of 10 to 300 pixels.
    fn clustered_case(seed: u64, n: usize, faces: usize) -> (Vec<[f32; 4]>, Vec<f32>) {
        let mut next = uniform(seed);
        let faces: Vec<[f32; 4]> =
            (0..faces).map(|_| [next() * 1024.0, next() * 624.0, 10.0 * 30f32.powf(next()), next()]).collect();
        let mut boxes = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        for _ in 0..n {
            let [cx, cy, size, quality] = faces[(next() * faces.len() as f32) as usize % faces.len()];
            let side = size * (0.8 + 0.4 * next());
            let x = cx + (next() - 0.5) * 0.3 * size;
            let y = cy + (next() - 0.5) * 0.3 * size;
            boxes.push([x - side / 2.0, y - side / 2.0, x + side / 2.0, y + side / 2.0]);
            scores.push(quality * next());
        }
        (boxes, scores)
    }

    /// Asserts that [`nms`] equals the naive port for both conventions and many thresholds.
    fn assert_matches_naive(boxes: &[[f32; 4]], scores: &[f32], what: &str) {
        for c in [Continuous, PlusOnePixel] {
            for thresh in [0.0, 0.05, 0.3, 0.4, 0.5, 0.7, 1.0] {
                let fast = nms(boxes, scores, thresh, c).expect("valid");
                let slow = naive_nms(boxes, scores, thresh, c);
                assert_eq!(fast, slow, "{what}, {c:?}, threshold {thresh}");
            }
        }
    }

    #[test]
    fn drops_lower_scored_overlapping_box() {
        let boxes = [[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [50.0, 50.0, 60.0, 60.0]];
        let keep = nms(&boxes, &[0.8, 0.9, 0.1], 0.5, Continuous).expect("valid");
        assert_eq!(keep, [1, 2]);
    }

    #[test]
    fn returns_kept_indices_by_descending_score() {
        let boxes = [[0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0], [9.0, 9.0, 10.0, 10.0]];
        let keep = nms(&boxes, &[0.2, 0.7, 0.5], 0.5, Continuous).expect("valid");
        assert_eq!(keep, [1, 2, 0]);
    }

    #[test]
    fn continuous_box_at_exactly_threshold_survives() {
        // Overlap 50, union 100: IoU exactly 0.5.
        let boxes = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]];
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.5, Continuous).expect("valid"), [0, 1]);
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.49, Continuous).expect("valid"), [0]);
    }

    #[test]
    fn plus_one_box_at_exactly_threshold_survives() {
        // Areas 10*10 = 100 and 10*5 = 50, overlap 50, union 100: IoU exactly 0.5.
        let boxes = [[0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 4.0]];
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.5, PlusOnePixel).expect("valid"), [0, 1]);
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.49, PlusOnePixel).expect("valid"), [0]);
    }

    #[test]
    fn touching_boxes_overlap_only_with_plus_one_pixel() {
        // +1 convention: areas 2*2 = 4, overlap 1 column * 2 rows = 2, IoU 2/6 = 1/3.
        let boxes = [[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]];
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.3, Continuous).expect("valid"), [0, 1]);
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.3, PlusOnePixel).expect("valid"), [0]);
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.34, PlusOnePixel).expect("valid"), [0, 1]);
    }

    #[test]
    fn equal_scores_keep_lower_index_first() {
        // Boxes 0 and 2 overlap heavily with the same score: index 0 wins.
        let boxes = [[0.0, 0.0, 10.0, 10.0], [50.0, 0.0, 60.0, 10.0], [0.0, 0.0, 10.0, 9.0]];
        for c in [Continuous, PlusOnePixel] {
            assert_eq!(nms(&boxes, &[0.5, 0.9, 0.5], 0.4, c).expect("valid"), [1, 0]);
        }
    }

    #[test]
    fn zero_area_boxes_never_suppress_in_continuous() {
        let boxes = [[3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]];
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.0, Continuous).expect("valid"), [0, 1]);
    }

    #[test]
    fn empty_input_keeps_nothing() {
        assert!(nms(&[], &[], 0.4, PlusOnePixel).expect("valid").is_empty());
    }

    #[test]
    fn matches_naive_reference_on_dense_small_boxes() {
        for seed in 1..=10u64 {
            let (boxes, scores) = scattered_case(seed * 7919, 300, 60.0, 20.0);
            assert_matches_naive(&boxes, &scores, &format!("seed {seed}"));
        }
    }

    #[test]
    fn matches_naive_reference_on_multi_scale_boxes() {
        for seed in 1..=10u64 {
            let (boxes, scores) = scattered_case(seed * 104_729, 400, 1000.0, 400.0);
            assert_matches_naive(&boxes, &scores, &format!("seed {seed}"));
        }
    }

    #[test]
    fn matches_naive_reference_on_clustered_detections() {
        let (boxes, scores) = clustered_case(7, 1000, 60);
        assert_matches_naive(&boxes, &scores, "clustered");
    }

    #[test]
    fn rejects_length_mismatch() {
        assert_eq!(
            nms(&[[0.0, 0.0, 1.0, 1.0]], &[], 0.4, Continuous),
            Err(GeometryError::LengthMismatch { boxes: 1, scores: 0 })
        );
    }

    #[test]
    fn rejects_nan_score() {
        let boxes = [[0.0, 0.0, 1.0, 1.0]; 2];
        assert_eq!(nms(&boxes, &[0.5, f32::NAN], 0.4, Continuous), Err(GeometryError::NanScore { index: 1 }));
    }

    #[test]
    fn rejects_non_finite_box() {
        let err = nms(&[[0.0, 0.0, f32::INFINITY, 1.0]], &[0.5], 0.4, Continuous).unwrap_err();
        assert_eq!(err.to_string(), "NMS box at index 0 has a non-finite coordinate: inf");
    }

    #[test]
    fn rejects_inverted_box() {
        let err = nms(&[[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0]], &[0.5, 0.4], 0.4, Continuous).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NMS box at index 1 is [2.0, 0.0, 1.0, 1.0]; corners must satisfy x1 <= x2 and y1 <= y2"
        );
    }

    #[test]
    fn rejects_threshold_outside_unit_interval() {
        for bad in [-0.1, 1.5, f32::NAN] {
            assert!(matches!(nms(&[], &[], bad, Continuous), Err(GeometryError::InvalidIouThreshold { .. })));
        }
    }

    /// Timing check, not run by default: `cargo test --release -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing only"]
    fn timing_5000_clustered_boxes() {
        let (boxes, scores) = clustered_case(42, 5000, 300);
        let runs = 200;
        let start = std::time::Instant::now();
        let mut kept = 0;
        for _ in 0..runs {
            kept = nms(&boxes, &scores, 0.4, PlusOnePixel).expect("valid").len();
        }
        let per_call = start.elapsed() / runs;
        println!("nms on 5000 clustered boxes: {per_call:?} per call, {kept} kept");
    }
}
