//! Landmark accuracy (the RetinaFace paper's NME): how far the detector's five points are from
//! the annotated ones, on faces it found.

use serde::{Deserialize, Serialize};

use super::ground_truth::{FaceBox, GroundTruth};
use super::predictions::{PredictedBox, Predictions};

/// Detections at or above this score are matched (the operating point people look at).
pub const LANDMARK_SCORE: f64 = 0.5;
/// A detection matches its face at this IoU or more.
pub const LANDMARK_IOU: f64 = 0.5;
/// A face whose error exceeds this is a failure.
pub const FAILURE_ERROR: f64 = 0.1;
/// The CED curve's errors: 0 to 0.2 in steps of 0.005.
const CED_STEPS: usize = 40;
const CED_MAX: f64 = 0.2;

/// The landmark accuracy over the matched faces that have landmarks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandmarkAccuracy {
    /// Mean normalised error: per face (1/5) Σ ‖p − g‖ / √(w·h) of its annotated box.
    pub nme: f64,
    /// Fraction of faces whose error is above [`FAILURE_ERROR`].
    pub failure_rate: f64,
    /// Faces scored.
    pub faces: usize,
    /// Mean normalised error per point: left eye, right eye, nose, left and right mouth corner.
    pub per_point: [f64; 5],
    /// The cumulative error distribution: `[error, fraction of faces with an error ≤ it]`.
    pub ced: Vec<[f64; 2]>,
}

/// IoU of continuous areas (corners `x + w`, no `+1`).
fn iou(a: &FaceBox, d: &PredictedBox) -> f64 {
    let w = (a.x + a.w).min(d.x + d.w) - a.x.max(d.x);
    let h = (a.y + a.h).min(d.y + d.h) - a.y.max(d.y);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (a.w * a.h + d.w * d.h - inter)
}

/// Per face scored, the normalised error of each point. Detections with score ≥
/// [`LANDMARK_SCORE`] are taken in descending score order; each matches the not-yet-matched,
/// not-invalid face of highest IoU when that IoU is ≥ [`LANDMARK_IOU`]; a matched face with
/// annotated landmarks, matched by a detection with landmarks, is scored.
fn point_errors(gt: &GroundTruth, predictions: &Predictions) -> Vec<[f64; 5]> {
    let mut scored = Vec::new();
    for image in gt.images() {
        let Some(detections) = predictions.get(&image.event, &image.name) else { continue };
        let invalid = |f: usize| image.details.get(f).and_then(|d| d.attributes).is_some_and(|a| a.invalid);
        let mut matched = vec![false; image.boxes.len()];
        // `Predictions` keeps each image's detections in descending score order.
        for d in detections.iter().take_while(|d| d.score >= LANDMARK_SCORE) {
            let best = (0..image.boxes.len())
                .filter(|&f| !matched[f] && !invalid(f))
                .map(|f| (f, iou(&image.boxes[f], d)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((face, _)) = best.filter(|(_, overlap)| *overlap >= LANDMARK_IOU) else { continue };
            matched[face] = true;
            let truth = image.details.get(face).and_then(|d| d.landmarks);
            let (Some(truth), Some(points)) = (truth, d.landmarks) else { continue };
            let b = &image.boxes[face];
            let scale = (b.w * b.h).sqrt();
            if scale > 0.0 {
                scored.push(std::array::from_fn(|k| {
                    ((points[k][0] - truth[k][0]).powi(2) + (points[k][1] - truth[k][1]).powi(2)).sqrt() / scale
                }));
            }
        }
    }
    scored
}

/// `None` when no face could be scored (the ground truth or the predictions have no landmarks).
pub fn landmark_accuracy(gt: &GroundTruth, predictions: &Predictions) -> Option<LandmarkAccuracy> {
    let scored = point_errors(gt, predictions);
    if scored.is_empty() {
        return None;
    }
    let faces = scored.len();
    let errors: Vec<f64> = scored.iter().map(|p| p.iter().sum::<f64>() / 5.0).collect();
    let per_point = std::array::from_fn(|k| scored.iter().map(|p| p[k]).sum::<f64>() / faces as f64);
    let ced = (0..=CED_STEPS)
        .map(|s| {
            let x = CED_MAX * s as f64 / CED_STEPS as f64;
            [x, errors.iter().filter(|&&e| e <= x).count() as f64 / faces as f64]
        })
        .collect();
    Some(LandmarkAccuracy {
        nme: errors.iter().sum::<f64>() / faces as f64,
        failure_rate: errors.iter().filter(|&&e| e > FAILURE_ERROR).count() as f64 / faces as f64,
        faces,
        per_point,
        ced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Attributes;
    use crate::eval::{FaceDetails, GtImage, SettingSpec};

    const TRUTH: [[f64; 2]; 5] = [[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]];

    #[test]
    fn the_error_of_a_hand_computed_case() {
        // A 100×64 box (√(w·h) = 80) with landmarks; an invalid face; a face without landmarks.
        let boxes = vec![
            FaceBox { x: 0.0, y: 0.0, w: 100.0, h: 64.0 },
            FaceBox { x: 300.0, y: 0.0, w: 50.0, h: 50.0 },
            FaceBox { x: 500.0, y: 0.0, w: 50.0, h: 50.0 },
        ];
        let invalid = Attributes { invalid: true, ..Attributes::default() };
        let details = vec![
            FaceDetails { attributes: None, landmarks: Some(TRUTH) },
            FaceDetails { attributes: Some(invalid), landmarks: Some(TRUTH) },
            FaceDetails { attributes: None, landmarks: None },
        ];
        let gt = GroundTruth::new(
            vec![GtImage { event: "e".into(), name: "a".into(), boxes: boxes.clone(), details }],
            vec![SettingSpec { name: "all".into(), keep: vec![vec![0, 2]] }],
        )
        .unwrap();
        // Points off by (3, 4) = 5 px, (0, 8) = 8 px, 0, 0 and (6, 8) = 10 px: e = 23 / 5 / 80.
        let mut moved = TRUTH;
        moved[0] = [33.0, 44.0];
        moved[1] = [70.0, 48.0];
        moved[4] = [71.0, 88.0];
        let det =
            |b: &FaceBox, score, landmarks| PredictedBox { x: b.x + 1.0, y: b.y, w: b.w, h: b.h, score, landmarks };
        let mut predictions = Predictions::new();
        predictions
            .insert(
                "e",
                "a",
                vec![
                    det(&boxes[0], 0.9, Some(moved)),
                    // A second detection of the same face: the face is matched already.
                    det(&boxes[0], 0.8, Some(TRUTH)),
                    det(&boxes[1], 0.9, Some(TRUTH)),
                    det(&boxes[2], 0.9, Some(TRUTH)),
                    // Below the score: not matched.
                    det(&boxes[0], 0.4, Some(TRUTH)),
                ],
            )
            .unwrap();
        let accuracy = landmark_accuracy(&gt, &predictions).unwrap();
        assert_eq!(accuracy.faces, 1, "the invalid face and the face without landmarks are not scored");
        let expected = (5.0 + 8.0 + 10.0) / 5.0 / 80.0;
        assert!((accuracy.nme - expected).abs() < 1e-12, "{}", accuracy.nme);
        assert_eq!(accuracy.per_point, [5.0 / 80.0, 8.0 / 80.0, 0.0, 0.0, 10.0 / 80.0]);
        assert_eq!(accuracy.failure_rate, 0.0);
        assert_eq!(accuracy.ced.first().unwrap(), &[0.0, 0.0]);
        assert_eq!(accuracy.ced.last().unwrap(), &[0.2, 1.0]);
        let mut without = Predictions::new();
        without.insert("e", "a", vec![det(&boxes[0], 0.9, None)]).unwrap();
        assert!(landmark_accuracy(&gt, &without).is_none());
    }
}
