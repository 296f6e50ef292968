//! Model-assisted annotation: a detector's faces beside a split's annotations. They are matched
//! by box overlap; the matches pre-label faces nobody drew, fill landmarks that are missing, and
//! rank the annotations most likely to be wrong (the review queue). What the CLI's
//! `dataset prelabel` / `dataset review` and the studio share.

use std::ops::ControlFlow;

use serde::Serialize;

use crate::dataset::{Face, FaceLandmarks, LandmarkFlag, Split};
use crate::detect::{DetectError, Detection, Detector, FaceFilter, Outcome, RunOptions, run_over};
use crate::geometry::{BBox, iou_matrix};

/// The overlaps and scores that decide what a prediction says about an annotation. Defaults:
/// the values `dataset prelabel` and `dataset review` document.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// A prediction covers an annotated face when their IoU is at least this (0.3).
    pub cover: f32,
    /// Matched boxes agree when their IoU is at least this (0.7); below, `box_mismatch`.
    pub box_agree: f32,
    /// Landmarks are filled from a prediction whose IoU with the face is at least this (0.5).
    pub fill: f32,
    /// Landmarks disagree when their mean point distance, over the square root of the box
    /// area, is above this (0.15: a left/right swap is about 0.3).
    pub landmark_error: f32,
    /// Predictions at least this confident are faces (0.8): pre-labelled, or `missing_face`.
    pub min_score: f32,
    /// Predictions below this never count, not even as covering a face (0.3).
    pub seen_score: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { cover: 0.3, box_agree: 0.7, fill: 0.5, landmark_error: 0.15, min_score: 0.8, seen_score: 0.3 }
    }
}

/// What kind of mistake a suspect probably is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspectKind {
    /// A confident prediction no annotation covers.
    MissingFace,
    /// An annotated face no prediction covers (a false box, or a face the model cannot see).
    UnmatchedAnnotation,
    /// Matched, but the boxes disagree.
    BoxMismatch,
    /// Matched, but the landmarks disagree (a left/right swap, points on another face).
    LandmarkMismatch,
}

impl SuspectKind {
    pub fn name(self) -> &'static str {
        match self {
            SuspectKind::MissingFace => "missing_face",
            SuspectKind::UnmatchedAnnotation => "unmatched_annotation",
            SuspectKind::BoxMismatch => "box_mismatch",
            SuspectKind::LandmarkMismatch => "landmark_mismatch",
        }
    }
}

/// One likely annotation mistake.
#[derive(Clone, Debug, PartialEq)]
pub struct Suspect {
    /// The image's index in its split.
    pub image: usize,
    pub kind: SuspectKind,
    /// How sure it is a mistake, in [0, 1].
    pub score: f32,
    /// The annotated face (`None` for `missing_face`).
    pub face: Option<usize>,
    /// The prediction that points at it (`None` for `unmatched_annotation`).
    pub prediction: Option<Detection>,
    /// The annotated box, or the prediction's for `missing_face`.
    pub bbox: BBox,
}

/// The predictions of one image matched to its faces: one-to-one, best overlap first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageMatch {
    /// `(face, prediction, IoU)` with IoU ≥ `cover`.
    pub pairs: Vec<(usize, usize, f32)>,
    /// Per face, its best IoU with any counted prediction.
    pub face_best: Vec<f32>,
    /// Per prediction, its best IoU with any face.
    pub prediction_best: Vec<f32>,
}

/// Matches the predictions scoring at least `seen_score` to `faces`, greedily by IoU.
pub fn match_image(faces: &[Face], predictions: &[Detection], t: &Thresholds) -> ImageMatch {
    let boxes: Vec<BBox> = faces.iter().map(|f| f.bbox).collect();
    let counted: Vec<usize> = (0..predictions.len()).filter(|&p| predictions[p].score >= t.seen_score).collect();
    let predicted: Vec<BBox> = counted.iter().map(|&p| predictions[p].bbox).collect();
    let iou = iou_matrix(&boxes, &predicted);
    let at = |f: usize, k: usize| iou[f * predicted.len() + k];
    let mut face_best = vec![0.0f32; faces.len()];
    let mut prediction_best = vec![0.0f32; predictions.len()];
    let mut candidates = Vec::new();
    for f in 0..faces.len() {
        for (k, &p) in counted.iter().enumerate() {
            let v = at(f, k);
            face_best[f] = face_best[f].max(v);
            prediction_best[p] = prediction_best[p].max(v);
            if v >= t.cover {
                candidates.push((f, p, v));
            }
        }
    }
    candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
    let (mut face_taken, mut prediction_taken) = (vec![false; faces.len()], vec![false; predictions.len()]);
    let mut pairs = Vec::new();
    for (f, p, v) in candidates {
        if !face_taken[f] && !prediction_taken[p] {
            face_taken[f] = true;
            prediction_taken[p] = true;
            pairs.push((f, p, v));
        }
    }
    ImageMatch { pairs, face_best, prediction_best }
}

/// Mean landmark distance over the square root of the annotated box's area.
fn landmark_error(face: &Face, prediction: &Detection) -> Option<f32> {
    let (a, b) = (face.landmarks?.points, prediction.landmarks?);
    let scale = (face.bbox.width() * face.bbox.height()).sqrt().max(1.0);
    let mean = a.points.iter().zip(&b.points).map(|(p, q)| (p.x - q.x).hypot(p.y - q.y)).sum::<f32>() / 5.0;
    Some(mean / scale)
}

/// The likely mistakes of one image, unsorted.
pub fn image_suspects(image: usize, faces: &[Face], predictions: &[Detection], t: &Thresholds) -> Vec<Suspect> {
    let m = match_image(faces, predictions, t);
    let mut suspects = Vec::new();
    for (p, prediction) in predictions.iter().enumerate() {
        if prediction.score >= t.min_score && m.prediction_best[p] < t.cover {
            let kind = SuspectKind::MissingFace;
            suspects.push(Suspect {
                image,
                kind,
                score: prediction.score,
                face: None,
                prediction: Some(*prediction),
                bbox: prediction.bbox,
            });
        }
    }
    let matched: Vec<Option<(usize, f32)>> =
        (0..faces.len()).map(|f| m.pairs.iter().find(|(g, _, _)| *g == f).map(|&(_, p, v)| (p, v))).collect();
    for (f, face) in faces.iter().enumerate().filter(|(_, face)| !face.is_invalid()) {
        match matched[f] {
            None => suspects.push(Suspect {
                image,
                kind: SuspectKind::UnmatchedAnnotation,
                // Nothing overlaps at all: as sure as it gets without a model that sees it.
                score: 0.7 * (1.0 - m.face_best[f] / t.cover).clamp(0.0, 1.0),
                face: Some(f),
                prediction: None,
                bbox: face.bbox,
            }),
            Some((p, iou)) => {
                let prediction = predictions[p];
                if iou < t.box_agree {
                    let disagreement = (t.box_agree - iou) / (t.box_agree - t.cover).max(1e-6);
                    suspects.push(Suspect {
                        image,
                        kind: SuspectKind::BoxMismatch,
                        score: (prediction.score * disagreement).clamp(0.0, 1.0),
                        face: Some(f),
                        prediction: Some(prediction),
                        bbox: face.bbox,
                    });
                }
                if let Some(error) = landmark_error(face, &prediction)
                    && error > t.landmark_error
                {
                    suspects.push(Suspect {
                        image,
                        kind: SuspectKind::LandmarkMismatch,
                        score: (prediction.score * (error / (2.0 * t.landmark_error)).min(1.0)).clamp(0.0, 1.0),
                        face: Some(f),
                        prediction: Some(prediction),
                        bbox: face.bbox,
                    });
                }
            }
        }
    }
    suspects
}

/// Every image's suspects, most likely mistakes first.
pub fn review(split: &Split, predictions: &[Vec<Detection>], t: &Thresholds) -> Vec<Suspect> {
    let mut all: Vec<Suspect> = split
        .images
        .iter()
        .zip(predictions)
        .enumerate()
        .flat_map(|(i, (image, predicted))| image_suspects(i, &image.faces, predicted, t))
        .collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.image.cmp(&b.image)));
    all
}

/// A prediction as an annotated face: its box, its five landmarks (all visible), default
/// attributes.
pub fn face_from(prediction: &Detection) -> Face {
    let mut face = Face::new(prediction.bbox);
    face.landmarks = prediction.landmarks.map(|points| FaceLandmarks { points, flags: [LandmarkFlag::Visible; 5] });
    face
}

/// What [`prelabel`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PrelabelCounts {
    pub images: usize,
    pub added: usize,
    pub landmarks_filled: usize,
}

/// Adds every prediction scoring at least `min_score` that no face covers (IoU < `cover`) as a
/// face; with `fill_landmarks`, faces without landmarks take those of the prediction matching
/// them at IoU ≥ `fill`. Faces it does not touch keep their origin, so saving writes them back
/// byte for byte.
pub fn prelabel(
    split: &mut Split,
    predictions: &[Vec<Detection>],
    t: &Thresholds,
    fill_landmarks: bool,
) -> PrelabelCounts {
    let mut counts = PrelabelCounts::default();
    for (image, predicted) in split.images.iter_mut().zip(predictions) {
        counts.images += 1;
        let m = match_image(&image.faces, predicted, t);
        if fill_landmarks {
            for &(f, p, iou) in &m.pairs {
                let face = &mut image.faces[f];
                if iou >= t.fill && face.landmarks.is_none() && predicted[p].landmarks.is_some() {
                    face.landmarks = face_from(&predicted[p]).landmarks;
                    counts.landmarks_filled += 1;
                }
            }
        }
        for (p, prediction) in predicted.iter().enumerate() {
            if prediction.score >= t.min_score && m.prediction_best[p] < t.cover {
                image.faces.push(face_from(prediction));
                counts.added += 1;
            }
        }
    }
    counts
}

/// Runs `detector` over every image of `split` (the one detection pipeline), keeping the faces
/// `filter` passes, in the split's image order. An unreadable image has no predictions and is
/// reported through `progress`, which breaks to cancel.
pub fn predict_split(
    detector: &Detector,
    split: &Split,
    filter: &FaceFilter,
    mut progress: impl FnMut(&Outcome) -> ControlFlow<()>,
) -> Result<Vec<Vec<Detection>>, DetectError> {
    let paths: Vec<std::path::PathBuf> = split.images.iter().map(|image| split.image_path(image)).collect();
    let mut predictions = vec![Vec::new(); paths.len()];
    let options = RunOptions { batch: 4, ..RunOptions::default() };
    run_over(detector, &paths, &options, |outcome| {
        if let Outcome::Detected(detected) = &outcome {
            predictions[detected.index] = detected.candidates().filter(filter);
        }
        progress(&outcome)
    })?;
    Ok(predictions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{Landmarks, Point};

    fn face(x: f32, y: f32, size: f32, landmarks: bool) -> Face {
        let mut f = Face::new(BBox::new(x, y, x + size, y + size).unwrap());
        if landmarks {
            f.landmarks = Some(FaceLandmarks { points: points(x, y, size, false), flags: [LandmarkFlag::Visible; 5] });
        }
        f
    }

    /// Eyes, nose, mouth corners of a box; `swapped` puts the left eye where the right one is.
    fn points(x: f32, y: f32, size: f32, swapped: bool) -> Landmarks {
        let rel = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)];
        let mut pts = rel.map(|(rx, ry)| Point { x: x + rx * size, y: y + ry * size });
        if swapped {
            pts.swap(0, 1);
        }
        Landmarks { points: pts }
    }

    fn prediction(x: f32, y: f32, size: f32, score: f32, swapped: bool) -> Detection {
        Detection {
            bbox: BBox::new(x, y, x + size, y + size).unwrap(),
            score,
            landmarks: Some(points(x, y, size, swapped)),
        }
    }

    #[test]
    fn each_kind_of_mistake_is_found_and_agreement_is_not() {
        let t = Thresholds::default();
        let faces = [
            face(0.0, 0.0, 40.0, true),    // agrees with its prediction
            face(100.0, 0.0, 40.0, true),  // its prediction is shifted: box mismatch
            face(200.0, 0.0, 40.0, true),  // left/right swapped: landmark mismatch
            face(300.0, 0.0, 40.0, false), // nothing predicted here
        ];
        let predictions = [
            prediction(1.0, 0.0, 40.0, 0.99, false),
            // Shifted box, landmarks where the face's are.
            Detection { landmarks: faces[1].landmarks.map(|l| l.points), ..prediction(112.0, 8.0, 40.0, 0.95, false) },
            prediction(200.0, 0.0, 40.0, 0.97, true),
            prediction(500.0, 0.0, 40.0, 0.9, false), // a face nobody drew
            prediction(600.0, 0.0, 40.0, 0.5, false), // too unsure to call missing
        ];
        let suspects = image_suspects(0, &faces, &predictions, &t);
        let kinds: Vec<(SuspectKind, Option<usize>)> = suspects.iter().map(|s| (s.kind, s.face)).collect();
        assert_eq!(
            kinds,
            [
                (SuspectKind::MissingFace, None),
                (SuspectKind::BoxMismatch, Some(1)),
                (SuspectKind::LandmarkMismatch, Some(2)),
                (SuspectKind::UnmatchedAnnotation, Some(3)),
            ]
        );
        assert!(suspects.iter().all(|s| (0.0..=1.0).contains(&s.score)));
    }

    #[test]
    fn prelabel_adds_uncovered_confident_faces_and_fills_landmarks_once() {
        let dir = tempfile::tempdir().unwrap();
        crate::dataset::synth::generate(dir.path(), &crate::dataset::synth::SynthConfig::new(4, 1)).unwrap();
        let (mut dataset, _) = crate::dataset::Dataset::open(dir.path()).unwrap();
        let split = dataset.split_mut(crate::dataset::SplitKind::Val).unwrap();
        let mut first = split.images[0].faces[0].clone();
        first.landmarks = None;
        split.images[0].faces = vec![first.clone()];
        let b = first.bbox;
        let over = Detection { bbox: b, score: 0.99, landmarks: Some(points(b.x1(), b.y1(), b.width(), false)) };
        let elsewhere = prediction(b.x2() + 50.0, b.y2() + 50.0, 30.0, 0.9, false);
        let mut predictions = vec![Vec::new(); split.images.len()];
        predictions[0] = vec![over, elsewhere];
        let t = Thresholds::default();
        let counts = prelabel(split, &predictions, &t, true);
        assert_eq!(counts, PrelabelCounts { images: split.images.len(), added: 1, landmarks_filled: 1 });
        assert_eq!(split.images[0].faces.len(), 2);
        assert!(split.images[0].faces.iter().all(|f| f.landmarks.is_some()));
        let again = prelabel(split, &predictions, &t, true);
        assert_eq!((again.added, again.landmarks_filled), (0, 0), "nothing is added twice");
    }
}
