//! Operating points: precision, recall and F1 at the confidences people deploy at, and at the
//! threshold of best F1, read off a setting's curve.

use serde::{Deserialize, Serialize};

use super::curves::PrPoint;
use super::report::ScoreNormalisation;

/// The raw confidences reported: the evaluation's floor, then typical deployment thresholds.
pub const OPERATING_THRESHOLDS: [f64; 5] = [0.02, 0.3, 0.5, 0.7, 0.9];

/// Precision, recall and F1 of the predictions scoring at least `threshold` (a raw score).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// The threshold of best F1 over the curve (the last point of a list).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub best_f1: bool,
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 }
}

/// The raw score whose normalised score is `normalised`.
pub fn raw_score(normalisation: ScoreNormalisation, normalised: f64) -> f64 {
    match normalisation {
        ScoreNormalisation::MinMax { min, max } => min + normalised * (max - min),
        ScoreNormalisation::Unchanged => normalised,
    }
}

/// The curve's point at the normalised score `normalised`, read as
/// [`operating_points`] reads its confidences: the point of the
/// smallest swept threshold at or above it; nothing recalled when every swept threshold is
/// below it. Its `threshold` is the raw confidence of `normalised`.
pub fn curve_point(curve: &[PrPoint], normalisation: ScoreNormalisation, normalised: f64) -> OperatingPoint {
    // The curve's thresholds descend: the last one still at or above `normalised`.
    let (precision, recall) =
        curve.iter().take_while(|p| p.threshold >= normalised).last().map_or((0.0, 0.0), |p| (p.precision, p.recall));
    OperatingPoint {
        threshold: raw_score(normalisation, normalised),
        precision,
        recall,
        f1: f1(precision, recall),
        best_f1: false,
    }
}

fn point(p: &PrPoint, threshold: f64, best_f1: bool) -> OperatingPoint {
    OperatingPoint { threshold, precision: p.precision, recall: p.recall, f1: f1(p.precision, p.recall), best_f1 }
}

/// The points at [`OPERATING_THRESHOLDS`], then the best-F1 point. Each is the curve's point of
/// the smallest swept threshold at or above the confidence (the sweep's steps are 1/1000 of the
/// normalised score range); a confidence above every prediction recalls nothing.
pub fn operating_points(curve: &[PrPoint], normalisation: ScoreNormalisation) -> Vec<OperatingPoint> {
    let mut points: Vec<OperatingPoint> = OPERATING_THRESHOLDS
        .iter()
        .map(|&threshold| OperatingPoint {
            threshold,
            ..curve_point(curve, normalisation, normalisation.apply(threshold))
        })
        .collect();
    let best = curve
        .iter()
        .max_by(|a, b| f1(a.precision, a.recall).total_cmp(&f1(b.precision, b.recall)))
        .map(|p| point(p, raw_score(normalisation, p.threshold), true));
    points.extend(best);
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(threshold: f64, precision: f64, recall: f64) -> PrPoint {
        PrPoint { threshold, precision, recall, proposals: 0, recalled: 0 }
    }

    #[test]
    fn points_are_read_at_the_confidences_and_the_best_f1_is_found() {
        // Normalised thresholds 0.9 … 0.0 over raw scores 0 … 2 (raw = 2 · normalised).
        let curve = [p(0.9, 1.0, 0.1), p(0.6, 0.9, 0.5), p(0.3, 0.8, 0.8), p(0.0, 0.4, 0.9)];
        let normalisation = ScoreNormalisation::MinMax { min: 0.0, max: 2.0 };
        let points = operating_points(&curve, normalisation);
        assert_eq!(points.len(), 6);
        // Raw 0.5 is normalised 0.25: the point of threshold 0.3.
        let at = |t: f64| points.iter().find(|o| o.threshold == t && !o.best_f1).unwrap();
        assert_eq!((at(0.5).precision, at(0.5).recall), (0.8, 0.8));
        // Raw 0.02 is normalised 0.01: the 0.0 point would count predictions below it.
        assert_eq!((at(0.02).precision, at(0.02).recall), (0.8, 0.8));
        // Raw 1.9 would be normalised 0.95, above every swept threshold; raw 0.9 is 0.45.
        assert_eq!(at(0.9).recall, 0.5);
        let best = points.last().unwrap();
        assert!(best.best_f1);
        assert_eq!(best.threshold, 0.6, "the raw score of normalised 0.3");
        assert!((best.f1 - 0.8).abs() < 1e-12);
        let nothing = operating_points(&curve[..1], ScoreNormalisation::MinMax { min: 0.0, max: 0.1 });
        assert_eq!(nothing[4].recall, 0.0, "0.9 is above every prediction");
    }

    #[test]
    fn the_point_at_a_normalised_score_is_the_operating_points_reading() {
        let curve = [p(0.9, 1.0, 0.1), p(0.6, 0.9, 0.5), p(0.3, 0.8, 0.8), p(0.0, 0.4, 0.9)];
        let normalisation = ScoreNormalisation::MinMax { min: 0.0, max: 2.0 };
        let point = curve_point(&curve, normalisation, 0.25);
        assert_eq!((point.threshold, point.precision, point.recall), (0.5, 0.8, 0.8), "raw 0.5, the 0.3 point");
        assert_eq!(curve_point(&curve, normalisation, 0.6).recall, 0.5, "on a swept threshold: its point");
        let nothing = curve_point(&curve, normalisation, 0.95);
        assert_eq!((nothing.precision, nothing.recall, nothing.f1), (0.0, 0.0, 0.0));
    }
}
