//! The Evaluate panel's error list: per ground-truth image its matches under one setting at one
//! score threshold, sorted by missed faces or false positives. It takes tens of milliseconds on
//! the full validation set, so it runs on a worker thread ([`RowsWorker`]): the latest request
//! wins (requests queued behind a newer one are dropped, and a computation stops when a newer
//! request arrives), and the panel shows the previous list until the new one arrives.

use std::sync::Arc;

use super::latest_worker::{LatestJob, LatestWorker};

use crate::eval::{EvalOptions, Evaluator, GroundTruth, ImageMatches, Predictions};

/// One image of the error browser.
pub struct ImageRow {
    pub index: usize,
    pub matches: ImageMatches,
    pub missed: usize,
    pub false_positives: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Missed,
    FalsePositives,
}

/// What a list is computed for. `generation` tells the panel's evaluations apart (a list of an
/// earlier evaluation that arrives late is dropped); the threshold is kept as its bits so that
/// keys compare exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowsKey {
    pub generation: u64,
    pub setting: String,
    threshold_bits: u64,
    pub sort: SortBy,
}

impl RowsKey {
    pub fn new(generation: u64, setting: &str, threshold: f64, sort: SortBy) -> RowsKey {
        RowsKey { generation, setting: setting.to_string(), threshold_bits: threshold.to_bits(), sort }
    }

    /// The normalised score from which predictions count.
    pub fn threshold(&self) -> f64 {
        f64::from_bits(self.threshold_bits)
    }

    /// The same list for the panel's evaluation `generation`.
    pub fn with_generation(mut self, generation: u64) -> RowsKey {
        self.generation = generation;
        self
    }
}

/// How many images are matched between two looks at `stop`.
const IMAGES_BETWEEN_CHECKS: usize = 64;

/// The error list for `key`: every image of `gt` (those the setting does not know are left out)
/// with its matches, most missed faces (or false positives) first. `None` when `stop` returned
/// true (it is asked every [`IMAGES_BETWEEN_CHECKS`] images).
pub fn error_rows(
    gt: &GroundTruth,
    predictions: &Predictions,
    key: &RowsKey,
    stop: impl Fn() -> bool,
) -> Option<Vec<ImageRow>> {
    let evaluator = Evaluator::new(gt, predictions, &EvalOptions::OFFICIAL);
    let threshold = key.threshold();
    let mut rows = Vec::with_capacity(gt.images().len());
    for (index, image) in gt.images().iter().enumerate() {
        if index % IMAGES_BETWEEN_CHECKS == 0 && stop() {
            return None;
        }
        let Ok(matches) = evaluator.image_matches(&key.setting, &image.event, &image.name, threshold) else {
            continue;
        };
        let (missed, false_positives) = (matches.missed(), matches.false_positives());
        rows.push(ImageRow { index, matches, missed, false_positives });
    }
    match key.sort {
        SortBy::Missed => rows.sort_by_key(|r| (std::cmp::Reverse(r.missed), std::cmp::Reverse(r.false_positives))),
        SortBy::FalsePositives => {
            rows.sort_by_key(|r| (std::cmp::Reverse(r.false_positives), std::cmp::Reverse(r.missed)))
        }
    }
    Some(rows)
}

/// An error list to compute: for `key`, over `gt` and `predictions`.
pub struct RowsRequest {
    pub key: RowsKey,
    pub gt: Arc<GroundTruth>,
    pub predictions: Arc<Predictions>,
}

/// A finished list.
pub struct RowsResult {
    pub key: RowsKey,
    pub rows: Vec<ImageRow>,
}

impl LatestJob for RowsRequest {
    type Key = RowsKey;
    type Done = RowsResult;

    fn key(&self) -> &RowsKey {
        &self.key
    }

    fn run(self, stale: &dyn Fn() -> bool) -> Option<RowsResult> {
        let rows = error_rows(&self.gt, &self.predictions, &self.key, stale)?;
        Some(RowsResult { key: self.key, rows })
    }

    fn done_key(done: &RowsResult) -> &RowsKey {
        &done.key
    }
}

/// The thread that computes error lists, the latest request winning.
pub type RowsWorker = LatestWorker<RowsRequest>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{FaceBox, GtImage, PredictedBox, SettingSpec};

    fn ground_truth() -> (GroundTruth, Predictions) {
        let face = |x: f64| FaceBox { x, y: 0.0, w: 40.0, h: 40.0 };
        let images = (0..3)
            .map(|i| GtImage {
                event: "e".into(),
                name: format!("{i}"),
                boxes: (0..=i).map(|k| face(100.0 * k as f64)).collect(),
                details: Vec::new(),
            })
            .collect();
        let keep = vec![vec![0], vec![0, 1], vec![0, 1, 2]];
        let gt = GroundTruth::new(images, vec![SettingSpec { name: "all".into(), keep }]).unwrap();
        let mut predictions = Predictions::new();
        for i in 0..3 {
            // Image i: its first face found at score 0.9, the others missed; a false positive at 0.2.
            let det = |x: f64, score| PredictedBox { x, y: 0.0, w: 40.0, h: 40.0, score, landmarks: None };
            predictions.insert("e", format!("{i}"), vec![det(0.0, 0.9), det(900.0, 0.2)]).unwrap();
        }
        (gt, predictions)
    }

    #[test]
    fn rows_are_sorted_and_a_stop_request_is_honoured() {
        let (gt, predictions) = ground_truth();
        let key = RowsKey::new(1, "all", 0.0, SortBy::Missed);
        let rows = error_rows(&gt, &predictions, &key, || false).unwrap();
        assert_eq!(rows.iter().map(|r| (r.index, r.missed)).collect::<Vec<_>>(), vec![(2, 2), (1, 1), (0, 0)]);
        assert!(rows.iter().all(|r| r.false_positives == 1 && r.matches.score_threshold == 0.0));
        // Above the false positives' normalised score (0) and below the faces' (1).
        let above = RowsKey::new(1, "all", 0.5, SortBy::FalsePositives);
        let rows = error_rows(&gt, &predictions, &above, || false).unwrap();
        assert!(rows.iter().all(|r| r.false_positives == 0));
        assert!(error_rows(&gt, &predictions, &key, || true).is_none());
        assert_eq!(key.threshold(), 0.0);
    }

    #[test]
    fn the_worker_delivers_the_latest_request() {
        let (gt, predictions) = ground_truth();
        let (gt, predictions) = (Arc::new(gt), Arc::new(predictions));
        let ctx = egui::Context::default();
        let mut worker = RowsWorker::spawn(&ctx);
        for t in [0.1, 0.2, 0.3, 0.6] {
            let key = RowsKey::new(1, "all", t, SortBy::Missed);
            assert!(worker.request(RowsRequest { key, gt: gt.clone(), predictions: predictions.clone() }));
        }
        let latest = RowsKey::new(1, "all", 0.6, SortBy::Missed);
        assert_eq!(worker.pending(), Some(&latest));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(result) = worker.poll()
                && result.key == latest
            {
                assert_eq!(result.rows.len(), 3);
                assert!(result.rows.iter().all(|r| r.matches.score_threshold == 0.6));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the latest list never arrived");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(worker.pending().is_none());
    }
}
