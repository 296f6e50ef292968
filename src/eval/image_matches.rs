//! The error browser's view of one image: which predictions are true positives, false positives
//! or ignored, and which faces were missed, at one normalised score threshold.

use serde::{Deserialize, Serialize};

use super::error::LookupError;
use super::evaluator::Evaluator;
use super::predictions::PredictedBox;
use super::protocol::{Corners, Outcome, best_matches, walk};

/// What a prediction is at the chosen threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Recalls a kept face for the first time.
    TruePositive,
    /// Recalls nothing new: too little overlap, or a face already recalled by a better-scored
    /// prediction (a duplicate).
    FalsePositive,
    /// Its best face is not kept by the setting: neither true nor false positive.
    Ignored,
    /// Its normalised score is below the threshold: not evaluated.
    BelowThreshold,
}

/// What a ground-truth face is at the chosen threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaceVerdict {
    /// Recalled by the prediction at this index of [`ImageMatches::detections`].
    Recalled { detection: usize },
    /// Kept by the setting and not recalled.
    Missed,
    /// Not kept by the setting (does not count).
    NotKept,
}

/// One prediction with its evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectionMatch {
    /// As inserted or read, with the raw score.
    pub detection: PredictedBox,
    pub normalised_score: f64,
    /// Index of the face it overlaps most (first among equals); `None` when the image has no
    /// faces.
    pub best_face: Option<usize>,
    /// Overlap with `best_face` (0 without faces).
    pub best_iou: f64,
    pub verdict: Verdict,
}

/// One image under one setting at one normalised score threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMatches {
    pub score_threshold: f64,
    /// Whether the image counts in the curves. The official tool skips images without faces or
    /// without predictions; predictions on a face-less image are shown as false positives here
    /// but cost no precision in the report.
    pub counted: bool,
    /// All predictions of the image, in evaluation order (descending score).
    pub detections: Vec<DetectionMatch>,
    /// One entry per ground-truth face, in ground-truth order.
    pub faces: Vec<FaceVerdict>,
}

impl ImageMatches {
    fn count(&self, verdict: Verdict) -> usize {
        self.detections.iter().filter(|d| d.verdict == verdict).count()
    }

    pub fn true_positives(&self) -> usize {
        self.count(Verdict::TruePositive)
    }

    pub fn false_positives(&self) -> usize {
        self.count(Verdict::FalsePositive)
    }

    pub fn ignored(&self) -> usize {
        self.count(Verdict::Ignored)
    }

    /// Kept faces that no prediction above the threshold recalled.
    pub fn missed(&self) -> usize {
        self.faces.iter().filter(|f| **f == FaceVerdict::Missed).count()
    }
}

impl Evaluator<'_> {
    /// Evaluates one image of one setting, counting the predictions whose normalised score is
    /// `>= score_threshold` (the same predictions as the curve point at that threshold, and the
    /// same matching rule and normalisation as [`Evaluator::report`]).
    pub fn image_matches(
        &self,
        setting: &str,
        event: &str,
        name: &str,
        score_threshold: f64,
    ) -> Result<ImageMatches, LookupError> {
        let unknown_image = || LookupError::UnknownImage { event: event.to_string(), name: name.to_string() };
        let setting = self.gt.setting(setting).ok_or_else(|| LookupError::UnknownSetting(setting.to_string()))?;
        let index = self.gt.find_image(event, name).ok_or_else(unknown_image)?;
        let keep = setting.keep(index).ok_or_else(unknown_image)?;
        let boxes = &self.gt.images()[index].boxes;
        let detections = self.predictions.get(event, name).unwrap_or_default();

        let mut matches: Vec<DetectionMatch> = detections
            .iter()
            .map(|d| {
                let normalised_score = self.normalisation.apply(d.score);
                DetectionMatch {
                    detection: *d,
                    normalised_score,
                    best_face: None,
                    best_iou: 0.0,
                    verdict: if normalised_score >= score_threshold {
                        Verdict::FalsePositive
                    } else {
                        Verdict::BelowThreshold
                    },
                }
            })
            .collect();
        let mut faces: Vec<FaceVerdict> = (0..boxes.len())
            .map(|f| if keep.contains(f) { FaceVerdict::Missed } else { FaceVerdict::NotKept })
            .collect();
        if !boxes.is_empty() {
            let corners: Vec<Corners> = boxes.iter().map(Corners::of_face).collect();
            let mut best = Vec::with_capacity(detections.len());
            best_matches(&corners, detections, &mut best);
            for (m, b) in matches.iter_mut().zip(&best) {
                m.best_face = Some(b.face);
                m.best_iou = b.iou;
            }
            // Predictions are in evaluation order, so those above the threshold are a prefix and
            // the walk over it is the official one truncated at that threshold.
            let above = matches.iter().take_while(|m| m.verdict != Verdict::BelowThreshold).count();
            let iou = self.options.iou_threshold;
            walk(&best[..above], iou, keep, &mut Vec::new(), boxes.len(), |k, outcome| {
                matches[k].verdict = match outcome {
                    Outcome::Recalls(face) => {
                        faces[face] = FaceVerdict::Recalled { detection: k };
                        Verdict::TruePositive
                    }
                    Outcome::Proposal => Verdict::FalsePositive,
                    Outcome::Ignored => Verdict::Ignored,
                };
            });
        }
        Ok(ImageMatches {
            score_threshold,
            counted: !boxes.is_empty() && !detections.is_empty(),
            detections: matches,
            faces,
        })
    }
}
