//! Comparing two models on one ground truth face by face: which faces one recalls and the other
//! misses, at a confidence each model is read at.

use serde::{Deserialize, Serialize};

use super::evaluator::Evaluator;
use super::image_matches::FaceVerdict;

/// A face of the ground truth: its image and its 0-based index there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceRef {
    pub event: String,
    pub name: String,
    pub face: usize,
}

/// Per setting, the kept faces one model recalls and the other misses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceDifference {
    pub setting: String,
    /// Recalled by the first model only.
    pub only_first: Vec<FaceRef>,
    /// Recalled by the second model only.
    pub only_second: Vec<FaceRef>,
}

/// The faces `first` and `second` (two evaluations of one ground truth) disagree on, per setting,
/// each model's detections taken down to the raw score `confidence` (each through its own score
/// normalisation, as its curve is).
pub fn face_differences(first: &Evaluator, second: &Evaluator, confidence: f64) -> Vec<FaceDifference> {
    let gt = first.gt;
    let thresholds = [first.normalisation().apply(confidence), second.normalisation().apply(confidence)];
    gt.settings()
        .iter()
        .map(|setting| {
            let mut difference =
                FaceDifference { setting: setting.name().to_string(), only_first: Vec::new(), only_second: Vec::new() };
            for image in gt.images() {
                let verdicts = |evaluator: &Evaluator, threshold: f64| {
                    evaluator
                        .image_matches(setting.name(), &image.event, &image.name, threshold)
                        .map(|m| m.faces)
                        .unwrap_or_default()
                };
                let (a, b) = (verdicts(first, thresholds[0]), verdicts(second, thresholds[1]));
                let recalled = |v: Option<&FaceVerdict>| matches!(v, Some(FaceVerdict::Recalled { .. }));
                for face in 0..image.boxes.len() {
                    let face_ref = || FaceRef { event: image.event.clone(), name: image.name.clone(), face };
                    match (recalled(a.get(face)), recalled(b.get(face))) {
                        (true, false) => difference.only_first.push(face_ref()),
                        (false, true) => difference.only_second.push(face_ref()),
                        _ => {}
                    }
                }
            }
            difference
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalOptions, FaceBox, GroundTruth, GtImage, PredictedBox, Predictions, SettingSpec};

    #[test]
    fn faces_one_model_finds_and_the_other_misses_are_listed() {
        let boxes: Vec<FaceBox> = (0..4).map(|i| FaceBox { x: 100.0 * i as f64, y: 0.0, w: 40.0, h: 40.0 }).collect();
        let gt = GroundTruth::new(
            vec![GtImage { event: "e".into(), name: "a".into(), boxes: boxes.clone(), details: Vec::new() }],
            vec![SettingSpec { name: "all".into(), keep: vec![vec![0, 1, 2, 3]] }],
        )
        .unwrap();
        let predict = |faces: &[(usize, f64)]| {
            let mut p = Predictions::new();
            let det = |&(f, score): &(usize, f64)| {
                let b = boxes[f];
                PredictedBox { x: b.x, y: b.y, w: b.w, h: b.h, score, landmarks: None }
            };
            p.insert("e", "a", faces.iter().map(det).collect()).unwrap();
            p
        };
        // A finds faces 0, 1 and (weakly) 2; B finds 1, 3.
        let (a, b) = (predict(&[(0, 0.9), (1, 0.8), (2, 0.1)]), predict(&[(1, 0.9), (3, 0.7)]));
        let (ea, eb) =
            (Evaluator::new(&gt, &a, &EvalOptions::OFFICIAL), Evaluator::new(&gt, &b, &EvalOptions::OFFICIAL));
        let faces = |refs: &[FaceRef]| refs.iter().map(|f| f.face).collect::<Vec<_>>();
        let all = face_differences(&ea, &eb, 0.0);
        assert_eq!((faces(&all[0].only_first), faces(&all[0].only_second)), (vec![0, 2], vec![3]));
        // At 0.5, A's weak detection of face 2 no longer counts.
        let confident = face_differences(&ea, &eb, 0.5);
        assert_eq!(faces(&confident[0].only_first), vec![0]);
    }
}
