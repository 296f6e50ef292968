//! Everything an evaluation reports beyond the APs, computed together: what `eval` prints and the
//! studio's Evaluate panel shows.

use super::breakdown::{BucketResult, breakdown};
use super::ground_truth::GroundTruth;
use super::landmarks::{LandmarkAccuracy, landmark_accuracy};
use super::operating::{OperatingPoint, operating_points};
use super::predictions::Predictions;
use super::report::EvalReport;

/// The evaluation's details, per setting where they are per setting.
#[derive(Clone, Debug, Default)]
pub struct EvalDetails {
    /// Per setting, in the report's order: the points at the usual confidences, then best F1.
    pub operating_points: Vec<(String, Vec<OperatingPoint>)>,
    /// AP per size bucket and attribute value, per setting.
    pub buckets: Vec<BucketResult>,
    /// `None` when no face could be scored (no landmarks in the ground truth or predictions).
    pub landmarks: Option<LandmarkAccuracy>,
}

impl EvalDetails {
    /// The details of `report` (the evaluation of `predictions` against `gt`). The breakdown
    /// evaluates every bucket as a setting of its own: run it off the UI thread.
    pub fn compute(gt: &GroundTruth, predictions: &Predictions, report: &EvalReport) -> EvalDetails {
        EvalDetails {
            operating_points: report
                .settings
                .iter()
                .map(|s| (s.name.clone(), operating_points(&s.curve, report.score_normalisation)))
                .collect(),
            buckets: breakdown(gt, predictions, &report.options),
            landmarks: landmark_accuracy(gt, predictions),
        }
    }

    /// The operating points of `setting` (empty for a setting it does not know).
    pub fn operating_points(&self, setting: &str) -> &[OperatingPoint] {
        self.operating_points.iter().find(|(name, _)| name == setting).map(|(_, p)| p.as_slice()).unwrap_or_default()
    }
}
