//! WIDER FACE evaluation, reproducing the official MATLAB tool (`wider_eval.m` and its helpers
//! `read_pred`, `norm_score`, `boxoverlap`, `image_evaluation`, `image_pr_info`,
//! `dataset_pr_info`, `VOCap`) number for number, without the defects of the popular Python port
//! (no per-image sort, 0/0 on constant scores, `rstrip('.jpg')` names, crashes on trailing spaces
//! or missing files).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use facestudio::eval::{EvalOptions, GroundTruth, Predictions, evaluate, write_curves_csv};
//! let gt = GroundTruth::from_official_dir("assets/widerface_eval")?;
//! let predictions = Predictions::read_dir("predictions")?;
//! let report = evaluate(&gt, &predictions, &EvalOptions::OFFICIAL);
//! for setting in &report.settings {
//!     println!("{}: AP {:.4}", setting.name, setting.ap);
//! }
//! write_curves_csv(&report, "curves.csv")?;
//! # Ok(())
//! # }
//! ```
//!
//! The protocol, per setting (easy / medium / hard keep a subset of each image's faces):
//! scores are min–max normalised once over all predictions; per image the predictions are taken
//! in descending score order, each matched to the face it overlaps most; a match (IoU `>=` 0.5)
//! on a face outside the keep list makes the prediction "ignored", a match on a kept face not yet
//! recalled recalls it; every other non-ignored prediction is a false positive. Precision and
//! recall are swept over 1000 score thresholds and the AP is the VOC area under the curve.

mod breakdown;
mod compare;
mod csv;
mod curves;
mod details;
mod error;
mod evaluator;
mod from_dataset;
mod ground_truth;
mod image_matches;
mod landmarks;
mod mat_guard;
mod official;
mod operating;
mod options;
mod plot;
mod predictions;
mod protocol;
mod report;

pub use breakdown::{BucketResult, SIZE_BUCKETS, breakdown};
pub use compare::{FaceDifference, FaceRef, face_differences};
pub use csv::write_curves_csv;
pub use curves::{PrPoint, voc_ap};
pub use details::EvalDetails;
pub use error::{CsvError, GroundTruthError, LookupError, PlotError, PredictionError};
pub use evaluator::{Evaluator, evaluate};
pub use from_dataset::ALL_FACES;
pub use ground_truth::{FaceBox, FaceDetails, GroundTruth, GtImage, KeepList, Setting, SettingSpec};
pub use image_matches::{DetectionMatch, FaceVerdict, ImageMatches, Verdict};
pub use landmarks::{FAILURE_ERROR, LandmarkAccuracy, landmark_accuracy};
pub use operating::{OPERATING_THRESHOLDS, OperatingPoint, curve_point, operating_points, raw_score};
pub use options::EvalOptions;
pub use plot::{write_compare_png, write_curves_png, write_series_png};
pub use predictions::{PredictedBox, Predictions};
pub use report::{EvalReport, EvalWarning, ImageKey, ScoreNormalisation, SettingResult};

#[cfg(test)]
mod test_support {
    use std::sync::OnceLock;

    use super::GroundTruth;

    pub(crate) use crate::test_support::assets;

    /// The official validation ground truth, loaded once for all tests.
    pub(crate) fn official_gt(test: &str) -> Option<&'static GroundTruth> {
        static GT: OnceLock<GroundTruth> = OnceLock::new();
        let dir = assets(test)?.join("widerface_eval");
        Some(GT.get_or_init(|| GroundTruth::from_official_dir(&dir).unwrap_or_else(|e| panic!("{e}"))))
    }
}
