//! Anchor assignment (the report's "What was difficult"): which anchors learn which face.
//!
//! Per image, on the training device: the IoU of every anchor with every face; anchors at or above
//! the positive threshold are positives, below the negative threshold negative candidates (the
//! rest are ignored); each face's best anchor is forced positive unless that best IoU is below the
//! validity threshold. This is Pytorch_Retinaface's `match` (`utils/box_utils.py`), generalised
//! to two thresholds as the report's first (0.7/0.3) and cascade (0.5/0.4) heads need.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::geometry::Variance;

/// Thresholds of one head stage.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchThresholds {
    /// IoU at or above which an anchor is a positive.
    pub positive: f32,
    /// IoU below which an anchor is a negative candidate for OHEM.
    pub negative: f32,
    /// A face whose best anchor overlaps it less than this gets no forced positive.
    pub valid: f32,
}

impl MatchThresholds {
    /// Pytorch_Retinaface `train.py`: `MultiBoxLoss(2, 0.35, …, 0.35)` and validity 0.2.
    pub const PYTORCH_RETINAFACE: MatchThresholds = MatchThresholds { positive: 0.35, negative: 0.35, valid: 0.2 };
    /// The report's first head (§3.5, OHEM paragraph).
    pub const REPORT_FIRST: MatchThresholds = MatchThresholds { positive: 0.7, negative: 0.3, valid: 0.2 };
    /// The report's cascade head.
    pub const REPORT_CASCADE: MatchThresholds = MatchThresholds { positive: 0.5, negative: 0.4, valid: 0.2 };
}

/// The faces of one image on the device, in the anchors' coordinate space.
#[derive(Clone, Debug)]
pub struct FaceTargets {
    /// `[n, 4]` corners `x1 y1 x2 y2`.
    pub boxes: Tensor<2>,
    /// `[n, 10]` landmark coordinates (any value where the face has none).
    pub landmarks: Tensor<2>,
    /// `[n]` 1.0 for faces with landmarks, 0.0 without.
    pub has_landmarks: Tensor<1>,
}

impl FaceTargets {
    pub fn len(&self) -> usize {
        self.boxes.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What each anchor of one image learns.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// `[P]`: 1 positive with landmarks, −1 positive without landmarks, 0 otherwise (Pytorch_Retinaface's `conf_t`).
    pub labels: Tensor<1, Int>,
    /// `[P]` positives.
    pub positive: Tensor<1, Bool>,
    /// `[P]` negative candidates (OHEM picks the hardest of these).
    pub negative_candidate: Tensor<1, Bool>,
    /// `[P, 4]` encoded boxes of each anchor's face (read at positives only).
    pub loc: Tensor<2>,
    /// `[P, 10]` encoded landmarks (read at positives with landmarks only).
    pub landmarks: Tensor<2>,
    /// `[P]` the face each anchor was matched to (meaningful at positives only): which faces got
    /// no positive at all is read from it.
    pub face: Tensor<1, Int>,
}

/// `(cx, cy, w, h)` → corners.
pub fn corners(anchors: &Tensor<2>) -> Tensor<2> {
    let centre = anchors.clone().narrow(1, 0, 2);
    let half = anchors.clone().narrow(1, 2, 2) / 2.0;
    Tensor::cat(vec![centre.clone() - half.clone(), centre + half], 1)
}

/// `[n, P]` IoU of corner boxes, continuous area convention (no `+1`), as `jaccard`.
pub fn iou_matrix(faces: &Tensor<2>, anchors: &Tensor<2>) -> Tensor<2> {
    let [n, _] = faces.dims();
    let [p, _] = anchors.dims();
    let f = faces.clone().unsqueeze_dim::<3>(1).expand([n, p, 4]);
    let a = anchors.clone().unsqueeze_dim::<3>(0).expand([n, p, 4]);
    let lo = f.clone().narrow(2, 0, 2).max_pair(a.clone().narrow(2, 0, 2));
    let hi = f.clone().narrow(2, 2, 2).min_pair(a.clone().narrow(2, 2, 2));
    let wh = (hi - lo).clamp_min(0.0);
    let inter = (wh.clone().narrow(2, 0, 1) * wh.narrow(2, 1, 1)).squeeze_dim::<2>(2);
    let area = |b: Tensor<3>| {
        let size = b.clone().narrow(2, 2, 2) - b.narrow(2, 0, 2);
        (size.clone().narrow(2, 0, 1) * size.narrow(2, 1, 1)).squeeze_dim::<2>(2)
    };
    let union = area(f) + area(a) - inter.clone();
    inter / union
}

/// Encodes matched corner boxes against anchors (DESIGN.md codec).
pub fn encode_boxes(matched: Tensor<2>, anchors: &Tensor<2>, v: Variance) -> Tensor<2> {
    let a_xy = anchors.clone().narrow(1, 0, 2);
    let a_wh = anchors.clone().narrow(1, 2, 2);
    let lo = matched.clone().narrow(1, 0, 2);
    let hi = matched.narrow(1, 2, 2);
    let g_xy = ((lo.clone() + hi.clone()) / 2.0 - a_xy) / (a_wh.clone() * v.center);
    let g_wh = ((hi - lo) / a_wh).log() / v.size;
    Tensor::cat(vec![g_xy, g_wh], 1)
}

/// Encodes matched landmarks `[P, 10]` against anchors.
pub fn encode_landmarks(matched: Tensor<2>, anchors: &Tensor<2>, v: Variance) -> Tensor<2> {
    let [p, _] = matched.dims();
    let points = matched.reshape([p, 5, 2]);
    let a_xy = anchors.clone().narrow(1, 0, 2).unsqueeze_dim::<3>(1);
    let a_wh = anchors.clone().narrow(1, 2, 2).unsqueeze_dim::<3>(1);
    ((points - a_xy) / (a_wh * v.center)).reshape([p, 10])
}

/// At most this many face–anchor pairs are held at once (IoU and the forced-positive test): a
/// crowded WIDER image (1,000 faces) against 102,300 anchors would otherwise need 1.6 GB per
/// `[faces, anchors, 4]` intermediate. 8 Mi pairs keep each chunk's intermediates near 130 MB.
const PAIRS_PER_CHUNK: usize = 8 << 20;

/// Assigns the faces of one image to `anchors` (`[P, 4]`, `cx cy w h`).
pub fn assign(
    anchors: &Tensor<2>,
    targets: &FaceTargets,
    thresholds: MatchThresholds,
    variance: Variance,
) -> Assignment {
    let [p, _] = anchors.dims();
    assign_in_chunks(anchors, targets, thresholds, variance, (PAIRS_PER_CHUNK / p.max(1)).max(1))
}

/// [`assign`] taking `chunk` faces at a time against all anchors: the best face of each anchor is
/// reduced over the chunks (an earlier face keeps a tie, as one `max` over all faces does), the
/// best anchor of each face and the forced positives per chunk (a later face keeps a shared
/// anchor, as before). The result does not depend on `chunk`.
fn assign_in_chunks(
    anchors: &Tensor<2>,
    targets: &FaceTargets,
    thresholds: MatchThresholds,
    variance: Variance,
    chunk: usize,
) -> Assignment {
    let device = anchors.device();
    let [p, _] = anchors.dims();
    let n = targets.len();
    if n == 0 {
        return Assignment {
            labels: Tensor::zeros([p], &device),
            positive: Tensor::<1>::zeros([p], &device).greater_scalar(0.0),
            negative_candidate: Tensor::<1>::zeros([p], &device).equal_scalar(0.0),
            loc: Tensor::zeros([p, 4], &device),
            landmarks: Tensor::zeros([p, 10], &device),
            face: Tensor::zeros([p], &device),
        };
    }
    let anchor_corners = corners(anchors);
    let anchor_index = Tensor::<1, Int>::arange(0..p as i64, &device).reshape([1, p]);
    let mut best: Option<(Tensor<1>, Tensor<1, Int>)> = None;
    let mut forced_face: Option<Tensor<1, Int>> = None;
    for first in (0..n).step_by(chunk.max(1)) {
        let m = chunk.min(n - first);
        let overlaps = iou_matrix(&targets.boxes.clone().narrow(0, first, m), &anchor_corners);
        // Best anchor of each face (first index among ties, as torch's max).
        let (best_anchor_overlap, best_anchor) = overlaps.clone().max_dim_with_indices(1);
        // Best face of each anchor within the chunk, then over the chunks so far.
        let (overlap, face) = overlaps.max_dim_with_indices(0);
        let (overlap, face) = (overlap.reshape([p]), face.reshape([p]) + first as i64);
        best = Some(match best {
            None => (overlap, face),
            Some((so_far, so_far_face)) => {
                let better = overlap.clone().greater(so_far.clone());
                (so_far.mask_where(better.clone(), overlap), so_far_face.mask_where(better, face))
            }
        });
        // forced[j, a]: anchor a is the best anchor of face j, and face j is valid. A valid face
        // takes its best anchor; a later face wins a shared one. Unlike the reference, an invalid
        // face takes nothing: there it re-points its best anchor too, which can hand a positive
        // anchor the box of a face too small to learn (the reference README's "quirk"). Every
        // value the reference's loss reads is unchanged by this (parity-tested).
        let valid = best_anchor_overlap.greater_equal_elem(thresholds.valid).expand([m, p]);
        let forced = anchor_index.clone().equal(best_anchor.expand([m, p])).bool_and(valid);
        let face_number = Tensor::<1, Int>::arange(first as i64 + 1..(first + m) as i64 + 1, &device).reshape([m, 1]);
        let chunk_forced = (forced.int() * face_number).max_dim(0).reshape([p]);
        forced_face = Some(match forced_face {
            None => chunk_forced,
            Some(so_far) => so_far.max_pair(chunk_forced),
        });
    }
    let (Some((best_face_overlap, best_face)), Some(forced_face)) = (best, forced_face) else {
        unreachable!("an image with faces has at least one chunk")
    };
    let is_forced = forced_face.clone().greater_elem(0);
    let best_face_overlap = best_face_overlap.mask_fill(is_forced.clone(), 2.0);
    let best_face = best_face.mask_where(is_forced, forced_face - 1);

    let face_label = targets.has_landmarks.clone().mul_scalar(2.0).sub_scalar(1.0).int();
    let positive = best_face_overlap.clone().greater_equal_elem(thresholds.positive);
    let negative_candidate = best_face_overlap.lower_elem(thresholds.negative).bool_and(positive.clone().bool_not());
    let labels = face_label.select(0, best_face.clone()).mask_fill(positive.clone().bool_not(), 0);
    let loc = encode_boxes(targets.boxes.clone().select(0, best_face.clone()), anchors, variance);
    let landmarks = encode_landmarks(targets.landmarks.clone().select(0, best_face.clone()), anchors, variance);
    Assignment { labels, positive, negative_candidate, loc, landmarks, face: best_face }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor2(rows: &[[f32; 4]], device: &Device) -> Tensor<2> {
        let data: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(data, [rows.len(), 4]), device)
    }

    fn bools(t: Tensor<1, Bool>) -> Vec<bool> {
        t.int().try_into_vec_as::<i64>().unwrap().into_iter().map(|v| v != 0).collect()
    }

    /// Crowded images are assigned a few faces at a time: every chunk size gives the same
    /// assignment, ties and shared best anchors included.
    #[test]
    fn chunked_assignment_equals_the_whole_one() {
        let device = Device::flex();
        // 13 faces on a grid of 12×12 anchors, with duplicates (ties) and tiny faces (invalid).
        let mut boxes = Vec::new();
        for i in 0..13 {
            let (x, y) = ((i % 5) as f32 * 13.0, (i / 5) as f32 * 17.0);
            let size = if i % 4 == 3 { 2.0 } else { 12.0 + i as f32 };
            boxes.push([x, y, x + size, y + size]);
        }
        boxes.push(boxes[2]);
        let n = boxes.len();
        let landmarks: Vec<f32> = (0..n * 10).map(|v| v as f32 * 0.7).collect();
        let targets = FaceTargets {
            boxes: tensor2(&boxes, &device),
            landmarks: Tensor::from_data(TensorData::new(landmarks, [n, 10]), &device),
            has_landmarks: Tensor::from_data(
                TensorData::new((0..n).map(|i| (i % 2) as f32).collect::<Vec<_>>(), [n]),
                &device,
            ),
        };
        let anchors: Vec<[f32; 4]> =
            (0..144).map(|a| [(a % 12) as f32 * 6.0 + 3.0, (a / 12) as f32 * 6.0 + 3.0, 16.0, 16.0]).collect();
        let anchors = tensor2(&anchors, &device);
        let read = |a: &Assignment| {
            (
                a.labels.clone().try_into_vec_as::<i64>().unwrap(),
                bools(a.positive.clone()),
                bools(a.negative_candidate.clone()),
                a.face.clone().try_into_vec_as::<i64>().unwrap(),
                a.loc.clone().try_into_vec_as::<f32>().unwrap(),
            )
        };
        let whole = read(&assign_in_chunks(
            &anchors,
            &targets,
            MatchThresholds::PYTORCH_RETINAFACE,
            Variance::PYTORCH_RETINAFACE,
            n,
        ));
        assert!(whole.1.iter().filter(|p| **p).count() > 5, "positives");
        for chunk in [1, 2, 5, 13] {
            let chunked = assign_in_chunks(
                &anchors,
                &targets,
                MatchThresholds::PYTORCH_RETINAFACE,
                Variance::PYTORCH_RETINAFACE,
                chunk,
            );
            let chunked = read(&chunked);
            assert_eq!(chunked.0, whole.0, "labels, chunk {chunk}");
            assert_eq!(chunked.1, whole.1, "positives, chunk {chunk}");
            assert_eq!(chunked.2, whole.2, "negatives, chunk {chunk}");
            assert_eq!(chunked.3, whole.3, "faces, chunk {chunk}");
            let same_loc = chunked.4.iter().zip(&whole.4).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same_loc, "encoded boxes, chunk {chunk}");
        }
    }

    #[test]
    fn report_thresholds_leave_anchors_between_them_ignored() {
        let device = Device::flex();
        // One 10×10 face at the origin; anchors (cx, cy, w, h) overlapping it by IoU 1, 0.5, 0.1.
        let face = FaceTargets {
            boxes: tensor2(&[[0.0, 0.0, 10.0, 10.0]], &device),
            landmarks: Tensor::zeros([1, 10], &device),
            has_landmarks: Tensor::ones([1], &device),
        };
        let anchors = tensor2(
            &[[5.0, 5.0, 10.0, 10.0], [5.0, 5.0 + 10.0 / 3.0, 10.0, 10.0], [5.0, 5.0 + 90.0 / 11.0, 10.0, 10.0]],
            &device,
        );
        let a = assign(&anchors, &face, MatchThresholds::REPORT_FIRST, Variance::UNIT);
        assert_eq!(bools(a.positive), [true, false, false]);
        assert_eq!(bools(a.negative_candidate), [false, false, true], "IoU 0.5 lies between 0.3 and 0.7: ignored");
        assert_eq!(a.labels.try_into_vec_as::<i64>().unwrap(), [1, 0, 0]);
    }

    #[test]
    fn a_face_whose_best_anchor_is_poor_is_still_forced_positive_when_valid() {
        let device = Device::flex();
        let face = FaceTargets {
            boxes: tensor2(&[[0.0, 0.0, 10.0, 10.0]], &device),
            landmarks: Tensor::zeros([1, 10], &device),
            has_landmarks: Tensor::zeros([1], &device),
        };
        // IoU 0.25 with a 20×20 anchor: below 0.7 but above the validity threshold 0.2.
        let anchors = tensor2(&[[10.0, 10.0, 20.0, 20.0], [100.0, 100.0, 20.0, 20.0]], &device);
        let a = assign(&anchors, &face, MatchThresholds::REPORT_FIRST, Variance::UNIT);
        assert_eq!(bools(a.positive), [true, false]);
        assert_eq!(a.labels.try_into_vec_as::<i64>().unwrap(), [-1, 0], "a face without landmarks is labelled -1");
    }

    #[test]
    fn a_face_too_small_for_any_anchor_does_not_take_over_a_positive() {
        let device = Device::flex();
        // Face 1 overlaps no anchor: all its IoUs are 0, so its "best" anchor is anchor 0, which
        // face 0 owns. The reference would re-point anchor 0 to face 1; we keep face 0.
        let faces = FaceTargets {
            boxes: tensor2(&[[0.0, 0.0, 10.0, 10.0], [200.0, 200.0, 201.0, 201.0]], &device),
            landmarks: Tensor::zeros([2, 10], &device),
            has_landmarks: Tensor::ones([2], &device),
        };
        let anchors = tensor2(&[[5.0, 5.0, 10.0, 10.0], [50.0, 50.0, 10.0, 10.0]], &device);
        let a = assign(&anchors, &faces, MatchThresholds::PYTORCH_RETINAFACE, Variance::PYTORCH_RETINAFACE);
        let loc = a.loc.try_into_vec_as::<f32>().unwrap();
        assert!(loc[..4].iter().all(|v| v.abs() < 1e-6), "anchor 0 still encodes face 0 exactly: {:?}", &loc[..4]);
    }

    #[test]
    fn an_image_without_faces_has_only_negative_candidates() {
        let device = Device::flex();
        let none = FaceTargets {
            boxes: Tensor::zeros([0, 4], &device),
            landmarks: Tensor::zeros([0, 10], &device),
            has_landmarks: Tensor::zeros([0], &device),
        };
        let anchors = tensor2(&[[5.0, 5.0, 10.0, 10.0], [50.0, 5.0, 10.0, 10.0]], &device);
        let a = assign(&anchors, &none, MatchThresholds::PYTORCH_RETINAFACE, Variance::PYTORCH_RETINAFACE);
        assert_eq!(bools(a.positive), [false, false]);
        assert_eq!(bools(a.negative_candidate), [true, true]);
    }
}
