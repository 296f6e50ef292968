//! Precision–recall curves and the VOC average precision, as `dataset_pr_info` and `VOCap` in the
//! official `wider_eval.m` compute them.

use serde::{Deserialize, Serialize};

/// One point of a setting's curve: all predictions whose normalised score is `>= threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    /// Predictions counted (not ignored) at this threshold: the precision denominator.
    pub proposals: u64,
    /// Kept faces recalled at this threshold.
    pub recalled: u64,
}

/// Per-threshold counts summed over images (`org_pr_cruve` in the official tool), indexed by
/// threshold step `t - 1` for `t = 1..=thresholds`.
#[derive(Debug, Clone, Default)]
pub(super) struct Counts {
    pub(super) proposals: Vec<u64>,
    pub(super) recalled: Vec<u64>,
}

impl Counts {
    pub(super) fn zeros(steps: usize) -> Self {
        Self { proposals: vec![0; steps], recalled: vec![0; steps] }
    }

    pub(super) fn add(&mut self, other: &Self) {
        let pairs = [(&mut self.proposals, &other.proposals), (&mut self.recalled, &other.recalled)];
        for (mine, theirs) in pairs {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
    }
}

/// Turns per-step increments (what each prediction adds at the first threshold it passes) into
/// the curve: precision = recalled / proposals (0 where nothing is proposed; MATLAB gives NaN
/// there, which its `max` skips, so the AP is the same), recall = recalled / `count_face` (0 when
/// the setting has no faces).
pub(super) fn pr_curve(increments: &Counts, thresholds: &[f64], count_face: usize) -> Vec<PrPoint> {
    let (mut proposals, mut recalled) = (0u64, 0u64);
    thresholds
        .iter()
        .zip(increments.proposals.iter().zip(&increments.recalled))
        .map(|(&threshold, (&p, &r))| {
            proposals += p;
            recalled += r;
            PrPoint {
                threshold,
                precision: ratio(recalled, proposals as f64),
                recall: ratio(recalled, count_face as f64),
                proposals,
                recalled,
            }
        })
        .collect()
}

fn ratio(numerator: u64, denominator: f64) -> f64 {
    if denominator == 0.0 { 0.0 } else { numerator as f64 / denominator }
}

/// VOC average precision (`VOCap`): the area under the monotone precision envelope,
/// `mrec = [0; rec; 1]`, `mpre = [0; prec; 0]`, summed where recall changes.
pub fn voc_ap(curve: &[PrPoint]) -> f64 {
    let mrec: Vec<f64> =
        std::iter::once(0.0).chain(curve.iter().map(|p| p.recall)).chain(std::iter::once(1.0)).collect();
    let mut mpre: Vec<f64> =
        std::iter::once(0.0).chain(curve.iter().map(|p| p.precision)).chain(std::iter::once(0.0)).collect();
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    (1..mrec.len()).filter(|&i| mrec[i] != mrec[i - 1]).map(|i| (mrec[i] - mrec[i - 1]) * mpre[i]).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(precision: f64, recall: f64) -> PrPoint {
        PrPoint { threshold: 0.0, precision, recall, proposals: 0, recalled: 0 }
    }

    #[test]
    fn voc_ap_uses_the_precision_envelope() {
        assert_eq!(voc_ap(&[]), 0.0);
        assert_eq!(voc_ap(&[point(1.0, 1.0)]), 1.0);
        // Recall 0.5 at precision 1, then 0.5 more at precision 2/3; the dip to 0.5 in between
        // is lifted by the envelope.
        let ap = voc_ap(&[point(1.0, 0.5), point(0.5, 0.5), point(2.0 / 3.0, 1.0)]);
        assert!((ap - 5.0 / 6.0).abs() < 1e-15, "{ap}");
    }

    #[test]
    fn pr_curve_accumulates_increments() {
        let increments = Counts { proposals: vec![1, 0, 1, 1], recalled: vec![1, 0, 0, 1] };
        let curve = pr_curve(&increments, &[0.75, 0.5, 0.25, 0.0], 4);
        let pr: Vec<(f64, f64)> = curve.iter().map(|p| (p.precision, p.recall)).collect();
        assert_eq!(pr, vec![(1.0, 0.25), (1.0, 0.25), (0.5, 0.25), (2.0 / 3.0, 0.5)]);
        let empty = pr_curve(&Counts::zeros(2), &[0.5, 0.0], 0);
        assert!(empty.iter().all(|p| p.precision == 0.0 && p.recall == 0.0));
    }
}
