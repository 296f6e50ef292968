//! The result of an evaluation, serialisable so a run can be saved and compared later.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::curves::PrPoint;
use super::options::EvalOptions;

/// An image named as in the submission layout: event folder and image name without extension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImageKey {
    pub event: String,
    pub name: String,
}

/// How raw scores were mapped to the `[0, 1]` range that the thresholds sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScoreNormalisation {
    /// `(score - min) / (max - min)` with the true minimum and maximum over all predictions of
    /// the ground-truth images (`norm_score.m`, which however starts from min = 1, max = 0).
    MinMax { min: f64, max: f64 },
    /// Scores used as given: there were no predictions, or all scores were equal (min–max would
    /// divide 0 by 0; the Python port then reports AP = 0).
    Unchanged,
}

impl ScoreNormalisation {
    pub fn apply(&self, score: f64) -> f64 {
        match *self {
            Self::MinMax { min, max } => (score - min) / (max - min),
            Self::Unchanged => score,
        }
    }
}

/// Something the caller should know; the evaluation still ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvalWarning {
    /// All predictions have the same score, so scores were not normalised.
    ConstantScores { score: f64 },
    /// No ground-truth image has a prediction: every AP is 0.
    NoPredictions,
    /// Ground-truth images without a prediction entry (file); evaluated as having none.
    MissingPredictionFiles { count: usize },
    /// Prediction entries for images that the ground truth does not have; not evaluated.
    UnknownImages { count: usize },
    /// A setting keeps no face, so its recall (and AP) is 0.
    NoKeptFaces { setting: String },
}

impl fmt::Display for EvalWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConstantScores { score } => {
                write!(f, "all predictions have the score {score}: scores were not normalised")
            }
            Self::NoPredictions => write!(f, "no ground-truth image has a prediction"),
            Self::MissingPredictionFiles { count } => write!(
                f,
                "{count} ground-truth images have no prediction file and count as having no \
                 detections"
            ),
            Self::UnknownImages { count } => write!(
                f,
                "{count} prediction files are for images that are not in the ground truth and \
                 were not evaluated"
            ),
            Self::NoKeptFaces { setting } => {
                write!(f, "setting `{setting}` keeps no face: its recall is 0")
            }
        }
    }
}

/// One setting's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingResult {
    pub name: String,
    /// VOC average precision of `curve`.
    pub ap: f64,
    /// The recall denominator: the setting's kept faces over all images (`count_face`).
    pub faces: usize,
    /// One point per threshold, from the highest threshold down to 0.
    pub curve: Vec<PrPoint>,
}

/// The result of [`super::evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub options: EvalOptions,
    /// Ground-truth images.
    pub images: usize,
    /// Ground-truth face boxes.
    pub faces: usize,
    /// Predictions on ground-truth images (those on unknown images are not counted).
    pub detections: usize,
    pub score_normalisation: ScoreNormalisation,
    /// In the order of the ground truth's settings.
    pub settings: Vec<SettingResult>,
    /// Ground-truth images with no prediction entry, sorted.
    pub missing_prediction_files: Vec<ImageKey>,
    /// Prediction entries for images not in the ground truth, sorted.
    pub unknown_prediction_images: Vec<ImageKey>,
    pub warnings: Vec<EvalWarning>,
}

impl EvalReport {
    pub fn setting(&self, name: &str) -> Option<&SettingResult> {
        self.settings.iter().find(|s| s.name == name)
    }
}
