//! The per-image matching rule of the official tool (`boxoverlap` and `image_evaluation` in
//! `wider_eval.m`), shared by the full evaluation and the error browser so both always agree.

use super::ground_truth::{FaceBox, KeepList};
use super::predictions::PredictedBox;

/// A box as corners plus its area, with MATLAB's inclusive-pixel "+1" convention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Corners {
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
    area: f64,
}

impl Corners {
    /// `x2 = x + w` first, then `(x2 - x1 + 1)`, in that order: `(x + w) - x` is not always `w`
    /// in floating point, and the official tool computes it this way.
    fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        let (x2, y2) = (x + w, y + h);
        Self { x1: x, y1: y, x2, y2, area: (x2 - x + 1.0) * (y2 - y + 1.0) }
    }

    pub(super) fn of_face(b: &FaceBox) -> Self {
        Self::new(b.x, b.y, b.w, b.h)
    }

    pub(super) fn of_detection(d: &PredictedBox) -> Self {
        Self::new(d.x, d.y, d.w, d.h)
    }
}

/// `boxoverlap(a, b)` of the official tool for one ground-truth box `a` and one prediction `b`:
/// intersection over union with `w = min(x2) - max(x1) + 1` (likewise `h`), and 0 where `w <= 0`
/// or `h <= 0`. Where both are positive the union is at least the larger area, so no NaN.
pub(super) fn overlap(a: &Corners, b: &Corners) -> f64 {
    let w = a.x2.min(b.x2) - a.x1.max(b.x1) + 1.0;
    let h = a.y2.min(b.y2) - a.y1.max(b.y1) + 1.0;
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (a.area + b.area - inter)
}

/// The face a prediction overlaps most, as MATLAB's `[max_overlap, idx] = max(overlap_list)`:
/// the first index among equal maxima.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BestMatch {
    pub(super) face: usize,
    pub(super) iou: f64,
}

/// Fills `out` with the best match of every detection against `faces` (which must not be empty).
/// The result does not depend on the setting, so it is computed once per image.
pub(super) fn best_matches(faces: &[Corners], detections: &[PredictedBox], out: &mut Vec<BestMatch>) {
    out.clear();
    out.extend(detections.iter().map(|d| {
        let b = Corners::of_detection(d);
        let mut best = BestMatch { face: 0, iou: f64::NEG_INFINITY };
        for (face, a) in faces.iter().enumerate() {
            let iou = overlap(a, &b);
            if iou > best.iou {
                best = BestMatch { face, iou };
            }
        }
        best
    }));
}

/// What one prediction does, in evaluation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// A proposal that recalls this kept face for the first time (a true positive).
    Recalls(usize),
    /// A proposal that recalls nothing new: no overlap `>=` the threshold, or a face that an
    /// earlier prediction already recalled (a false positive; this is why duplicates cost
    /// precision).
    Proposal,
    /// Its best face is not in the keep list: neither a true nor a false positive.
    Ignored,
}

/// `image_evaluation` for one setting: walks the predictions in evaluation order and reports each
/// one's outcome. `recalled` is scratch of one flag per face, reset here.
pub(super) fn walk(
    best: &[BestMatch],
    iou_threshold: f64,
    keep: &KeepList,
    recalled: &mut Vec<bool>,
    faces: usize,
    mut visit: impl FnMut(usize, Outcome),
) {
    recalled.clear();
    recalled.resize(faces, false);
    for (k, m) in best.iter().enumerate() {
        let outcome = if m.iou < iou_threshold {
            Outcome::Proposal
        } else if !keep.contains(m.face) {
            Outcome::Ignored
        } else if std::mem::replace(&mut recalled[m.face], true) {
            Outcome::Proposal
        } else {
            Outcome::Recalls(m.face)
        };
        visit(k, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corners(x: f64, y: f64, w: f64, h: f64) -> Corners {
        Corners::new(x, y, w, h)
    }

    #[test]
    fn overlap_uses_the_plus_one_convention() {
        let a = corners(0.0, 0.0, 9.0, 9.0);
        assert_eq!(a.area, 100.0);
        assert_eq!(overlap(&a, &a), 1.0);
        // Shifted by 5 px: 5×10 = 50 shared pixels of 150.
        let b = corners(5.0, 0.0, 9.0, 9.0);
        assert_eq!(overlap(&a, &b), 50.0 / 150.0);
        // Touching at one pixel column (x = 9) still overlaps: w = 9 - 9 + 1 = 1.
        let c = corners(9.0, 0.0, 9.0, 9.0);
        assert_eq!(overlap(&a, &c), 10.0 / 190.0);
        assert_eq!(overlap(&a, &corners(10.0, 0.0, 9.0, 9.0)), 0.0);
        // The official ground truth's width −2 box overlaps nothing, not even itself.
        let bad = corners(1026.0, 474.0, -2.0, 23.0);
        assert_eq!(overlap(&bad, &bad), 0.0);
        // A width-0 box is one pixel column wide.
        let thin = corners(706.0, 94.0, 0.0, 1.0);
        assert_eq!(overlap(&thin, &thin), 1.0);
    }

    #[test]
    fn best_match_takes_the_first_of_equal_maxima() {
        let faces = [corners(0.0, 0.0, 9.0, 9.0), corners(0.0, 0.0, 9.0, 9.0)];
        let det = PredictedBox { x: 0.0, y: 0.0, w: 9.0, h: 9.0, score: 1.0, landmarks: None };
        let mut out = Vec::new();
        best_matches(&faces, &[det], &mut out);
        assert_eq!(out, vec![BestMatch { face: 0, iou: 1.0 }]);
        let far = PredictedBox { x: 100.0, ..det };
        best_matches(&faces, &[far], &mut out);
        assert_eq!(out, vec![BestMatch { face: 0, iou: 0.0 }]);
    }
}
