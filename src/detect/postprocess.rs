//! From raw head outputs to faces: softmax, confidence threshold, decode, top-k, NMS, keep-top-k.
//! The candidates before NMS are kept, so a caller (the studio's sliders) can re-filter them for
//! another confidence or NMS threshold without running the network again.

use crate::geometry::{Anchor, AreaConvention, BBox, Landmarks, Point, Variance, decode_box, decode_landmarks, nms};

/// What a network run keeps of its anchors: the candidates every later filter starts from.
/// Defaults: the evaluation settings of the report (§4.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CandidateLimits {
    /// Candidates need a score strictly greater than this; no filter can go below it.
    pub floor: f32,
    /// Candidates kept (by score) before NMS.
    pub top_k: usize,
}

impl CandidateLimits {
    /// Score > 0.02, top 5000 (the report, §4.3; Pytorch_Retinaface).
    pub const EVALUATION: CandidateLimits = CandidateLimits { floor: 0.02, top_k: 5000 };
}

impl Default for CandidateLimits {
    fn default() -> Self {
        CandidateLimits::EVALUATION
    }
}

/// What turns candidates into faces, cheap to change after the network ran (the studio's
/// sliders): confidence, NMS, keep-top-k.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaceFilter {
    /// Faces need a score strictly greater than this (and than the candidates' floor).
    pub confidence: f32,
    /// A box is dropped when its IoU with a better kept box is greater than this (in `[0, 1]`).
    pub nms_threshold: f32,
    /// Faces kept after NMS.
    pub keep_top_k: usize,
    /// The reference detector measures NMS overlap with the `+1` pixel convention.
    pub nms_convention: AreaConvention,
}

impl FaceFilter {
    /// Confidence > 0.02, NMS 0.4, keep 750 (the report, §4.3; Pytorch_Retinaface).
    pub const EVALUATION: FaceFilter = FaceFilter {
        confidence: 0.02,
        nms_threshold: 0.4,
        keep_top_k: 750,
        nms_convention: AreaConvention::PlusOnePixel,
    };

    /// For looking at photos: confidence 0.5.
    pub const DISPLAY: FaceFilter = FaceFilter { confidence: 0.5, ..FaceFilter::EVALUATION };
}

impl Default for FaceFilter {
    fn default() -> Self {
        FaceFilter::EVALUATION
    }
}

/// One detected face, in pixels of the original image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    /// `None` for models without a landmark head.
    pub landmarks: Option<Landmarks>,
}

/// The raw outputs of the last head stage (and of the earlier ones, for the cascade) for one
/// image, one row per anchor read (all of them, or those above a floor), in anchor order.
pub struct RawOutputs<'a> {
    /// The anchor of each row (indexes into the anchor list).
    pub anchors: &'a [u32],
    /// Face probability per row (softmax of the class logits).
    pub scores: &'a [f32],
    /// `[rows × 4]` box regressions of each stage, first stage first.
    pub boxes: &'a [&'a [f32]],
    /// `[rows × 10]` landmark regressions of the last stage.
    pub landmarks: Option<&'a [f32]>,
}

/// Every face candidate above the candidate floor, best first, at most `top_k`: what NMS starts
/// from. Re-filtering with a higher confidence takes a prefix, so the result equals running the
/// whole pipeline again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidates {
    floor: f32,
    faces: Vec<Detection>,
}

/// Box corners in image pixels: the network works on a rescaled copy of the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageFromInput {
    pub scale_x: f32,
    pub scale_y: f32,
}

impl Candidates {
    /// Keeps the anchors scoring above `limits.floor`, decodes them (through the cascade stages),
    /// best first, at most `limits.top_k`.
    pub fn from_raw(
        raw: &RawOutputs,
        anchors: &[Anchor],
        variance: Variance,
        to_image: ImageFromInput,
        limits: &CandidateLimits,
    ) -> Candidates {
        let rows = raw.scores.len().min(raw.anchors.len());
        let mut order: Vec<usize> = (0..rows).filter(|&i| raw.scores[i] > limits.floor).collect();
        // Descending score; index order for ties, as a stable sort gives.
        order.sort_by(|&a, &b| raw.scores[b].total_cmp(&raw.scores[a]));
        order.truncate(limits.top_k);
        let faces = order
            .into_iter()
            .filter_map(|i| {
                let mut anchor = *anchors.get(raw.anchors[i] as usize)?;
                let mut corners = [0.0f32; 4];
                for (stage, boxes) in raw.boxes.iter().enumerate() {
                    if stage > 0 {
                        anchor = Anchor::from_corners(corners);
                    }
                    corners = decode_box(boxes[4 * i..4 * i + 4].try_into().ok()?, &anchor, variance);
                }
                let [x1, y1, x2, y2] = corners;
                let bbox = BBox::new(
                    x1 * to_image.scale_x,
                    y1 * to_image.scale_y,
                    x2 * to_image.scale_x,
                    y2 * to_image.scale_y,
                )
                .ok()?;
                let landmarks = match raw.landmarks {
                    Some(l) => {
                        let flat = decode_landmarks(l[10 * i..10 * i + 10].try_into().ok()?, &anchor, variance);
                        let points = std::array::from_fn(|k| Point {
                            x: flat[2 * k] * to_image.scale_x,
                            y: flat[2 * k + 1] * to_image.scale_y,
                        });
                        if points.iter().any(|p| !p.x.is_finite() || !p.y.is_finite()) {
                            return None;
                        }
                        Some(Landmarks { points })
                    }
                    None => None,
                };
                Some(Detection { bbox, score: raw.scores[i], landmarks })
            })
            .collect();
        Candidates { floor: limits.floor, faces }
    }

    pub fn len(&self) -> usize {
        self.faces.len()
    }

    /// The candidates of several passes over one photo (test-time augmentation) as one set, best
    /// first (ties in pass order), so that [`Candidates::filter`]'s NMS merges them.
    pub fn merged(parts: Vec<Candidates>) -> Candidates {
        let floor = parts.iter().map(|c| c.floor).fold(f32::INFINITY, f32::min);
        let mut faces: Vec<Detection> = parts.into_iter().flat_map(|c| c.faces).collect();
        faces.sort_by(|a, b| b.score.total_cmp(&a.score));
        Candidates { floor: if floor.is_finite() { floor } else { 0.0 }, faces }
    }

    /// The candidates found in the horizontally mirrored photo, mapped back onto the photo
    /// (`image_width` wide): boxes and landmarks mirrored, left and right points swapped back.
    pub fn unmirrored(self, image_width: u32) -> Candidates {
        let faces = self
            .faces
            .into_iter()
            .map(|d| Detection {
                bbox: d.bbox.flip_horizontal(image_width),
                score: d.score,
                landmarks: d.landmarks.map(|l| l.flip_horizontal(image_width)),
            })
            .collect();
        Candidates { floor: self.floor, faces }
    }

    pub fn is_empty(&self) -> bool {
        self.faces.is_empty()
    }

    /// Confidence threshold (the floor at least), NMS, keep-top-k: the final faces, best first.
    pub fn filter(&self, filter: &FaceFilter) -> Vec<Detection> {
        let confidence = filter.confidence.max(self.floor);
        let kept = &self.faces[..self.faces.partition_point(|d| d.score > confidence)];
        let corners: Vec<[f32; 4]> = kept.iter().map(|d| d.bbox.corners()).collect();
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        let threshold = filter.nms_threshold.clamp(0.0, 1.0);
        // Boxes are finite and ordered and the threshold is in range, so NMS cannot fail.
        let keep = nms(&corners, &scores, threshold, filter.nms_convention).unwrap_or_default();
        keep.into_iter().take(filter.keep_top_k).map(|i| kept[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::AnchorSpec;
    use crate::test_support::{assets, read_npy_f32, reference_dir};

    fn every(rows: usize) -> Vec<u32> {
        (0..rows as u32).collect()
    }

    #[test]
    fn raising_the_confidence_on_cached_candidates_equals_a_fresh_run() {
        let anchors: Vec<Anchor> = (0..50)
            .map(|i| Anchor { cx: (i % 10) as f32 * 12.0, cy: (i / 10) as f32 * 12.0, w: 16.0, h: 16.0 })
            .collect();
        let scores: Vec<f32> = (0..50).map(|i| ((i * 37) % 50) as f32 / 50.0).collect();
        let boxes = vec![0.0f32; 200];
        let rows = every(50);
        let raw = RawOutputs { anchors: &rows, scores: &scores, boxes: &[&boxes], landmarks: None };
        let unit = ImageFromInput { scale_x: 1.0, scale_y: 1.0 };
        let cached =
            Candidates::from_raw(&raw, &anchors, Variance::PYTORCH_RETINAFACE, unit, &CandidateLimits::EVALUATION);
        for confidence in [0.1, 0.5, 0.9] {
            let filter = FaceFilter { confidence, ..FaceFilter::EVALUATION };
            let limits = CandidateLimits { floor: confidence, ..CandidateLimits::EVALUATION };
            let fresh =
                Candidates::from_raw(&raw, &anchors, Variance::PYTORCH_RETINAFACE, unit, &limits).filter(&filter);
            assert_eq!(cached.filter(&filter), fresh, "confidence {confidence}");
        }
        let below_the_floor = FaceFilter { confidence: 0.0, ..FaceFilter::EVALUATION };
        assert!(cached.filter(&below_the_floor).iter().all(|d| d.score > 0.02), "no filter goes below the floor");
    }

    #[test]
    fn cascade_decodes_the_second_stage_against_the_first_stages_boxes() {
        let anchors = [Anchor { cx: 50.0, cy: 50.0, w: 20.0, h: 20.0 }];
        // Stage 1 doubles the box to 40 px (ln 2 / 0.2 in size); stage 2 shifts it right by
        // 10 · 0.1 · 40 = 40 px: relative to the first stage's box, not to the 20 px anchor.
        let stage1 = [0.0, 0.0, std::f32::consts::LN_2 / 0.2, std::f32::consts::LN_2 / 0.2];
        let stage2 = [10.0, 0.0, 0.0, 0.0];
        let raw = RawOutputs { anchors: &[0], scores: &[0.9], boxes: &[&stage1, &stage2], landmarks: None };
        let unit = ImageFromInput { scale_x: 1.0, scale_y: 1.0 };
        let c = Candidates::from_raw(&raw, &anchors, Variance::PYTORCH_RETINAFACE, unit, &CandidateLimits::EVALUATION);
        let corners = c.filter(&FaceFilter::EVALUATION)[0].bbox.corners();
        let expected = [70.0, 30.0, 110.0, 70.0];
        assert!(corners.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-3), "{corners:?}");
    }

    /// The reference's raw outputs (already softmaxed) through our post-processing give its 192
    /// detections; boxes and landmarks within 1e-2 px (the reference README's tolerance).
    #[test]
    fn reference_raw_outputs_give_the_reference_detections() {
        let Some(assets) = assets("reference_raw_outputs_give_the_reference_detections") else { return };
        let dir = reference_dir(&assets, "detect");
        let n = 26_240;
        let conf = read_npy_f32(&dir.join("test_raw_conf_softmax.npy"), &[n, 2]);
        let loc = read_npy_f32(&dir.join("test_raw_loc.npy"), &[n, 4]);
        let landms = read_npy_f32(&dir.join("test_raw_landms.npy"), &[n, 10]);
        let expected = read_npy_f32(&dir.join("test_detections.npy"), &[192, 15]);
        let scores: Vec<f32> = conf.chunks(2).map(|c| c[1]).collect();
        let anchors = AnchorSpec::fd1mb().generate(1024, 624);
        let rows = every(n as usize);
        let n = n as usize;
        let raw = RawOutputs { anchors: &rows, scores: &scores, boxes: &[&loc], landmarks: Some(&landms) };
        // Normalised anchors times the image size are the pixel anchors: decode in pixels directly.
        let unit = ImageFromInput { scale_x: 1.0, scale_y: 1.0 };
        let limits = CandidateLimits::EVALUATION;
        let detections = Candidates::from_raw(&raw, &anchors, Variance::PYTORCH_RETINAFACE, unit, &limits)
            .filter(&FaceFilter::EVALUATION);
        // Only the rows above the floor, as a thresholded read-back gives them: the same faces.
        let kept: Vec<usize> = (0..n).filter(|&i| scores[i] > limits.floor).collect();
        let pick = |values: &[f32], k: usize| -> Vec<f32> {
            kept.iter().flat_map(|&i| values[i * k..(i + 1) * k].to_vec()).collect()
        };
        let (sparse_rows, sparse_scores) = (kept.iter().map(|&i| i as u32).collect::<Vec<_>>(), pick(&scores, 1));
        let (sparse_loc, sparse_landms) = (pick(&loc, 4), pick(&landms, 10));
        let sparse = RawOutputs {
            anchors: &sparse_rows,
            scores: &sparse_scores,
            boxes: &[&sparse_loc],
            landmarks: Some(&sparse_landms),
        };
        assert!(kept.len() < n / 10, "the floor keeps few anchors: {}", kept.len());
        let from_sparse = Candidates::from_raw(&sparse, &anchors, Variance::PYTORCH_RETINAFACE, unit, &limits)
            .filter(&FaceFilter::EVALUATION);
        assert_eq!(from_sparse, detections);
        assert_eq!(detections.len(), 192);
        for (d, row) in detections.iter().zip(expected.chunks(15)) {
            let ours = d.bbox.corners();
            assert!(ours.iter().zip(&row[..4]).all(|(a, b)| (a - b).abs() < 1e-2), "{ours:?} vs {:?}", &row[..4]);
            assert!((d.score - row[4]).abs() < 1e-6);
            let lm = d.landmarks.unwrap().to_flat();
            assert!(lm.iter().zip(&row[5..]).all(|(a, b)| (a - b).abs() < 1e-2));
        }
    }
}
