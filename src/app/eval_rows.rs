//! The Evaluate panel's error list: per ground-truth image its matches under one setting at one
//! score threshold, sorted by missed faces or false positives. It takes tens of milliseconds on
//! the full validation set, so it runs on a worker thread ([`RowsWorker`]): the latest request
//! wins (requests queued behind a newer one are dropped, and a computation stops when a newer
//! request arrives), and the panel shows the previous list until the new one arrives.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};

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

struct Request {
    key: RowsKey,
    gt: Arc<GroundTruth>,
    predictions: Arc<Predictions>,
}

/// A finished list.
pub struct RowsResult {
    pub key: RowsKey,
    pub rows: Vec<ImageRow>,
}

/// A thread that computes error lists, one at a time, the latest request winning. It ends when
/// the worker is dropped, once the list it is computing, if any, is done.
pub struct RowsWorker {
    requests: Sender<Request>,
    results: Receiver<RowsResult>,
    /// The key last asked for, until its list arrives.
    pending: Option<RowsKey>,
}

impl RowsWorker {
    /// Starts the thread; `ctx` is repainted when a list is ready.
    pub fn spawn(ctx: &egui::Context) -> RowsWorker {
        let (requests, inbox) = unbounded::<Request>();
        let (outbox, results) = unbounded::<RowsResult>();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            while let Ok(mut request) = inbox.recv() {
                // Only the newest of the queued requests is worth computing.
                while let Ok(newer) = inbox.try_recv() {
                    request = newer;
                }
                // A newer request makes this list stale.
                let stale = || !inbox.is_empty();
                let Some(rows) = error_rows(&request.gt, &request.predictions, &request.key, stale) else {
                    continue;
                };
                if outbox.send(RowsResult { key: request.key, rows }).is_err() {
                    break;
                }
                ctx.request_repaint();
            }
        });
        RowsWorker { requests, results, pending: None }
    }

    /// Asks for the list of `key`; a list asked for before and not yet started is dropped.
    /// `false` when the thread is gone (it panicked): the caller starts another.
    pub fn request(&mut self, key: RowsKey, gt: Arc<GroundTruth>, predictions: Arc<Predictions>) -> bool {
        let sent = self.requests.send(Request { key: key.clone(), gt, predictions }).is_ok();
        self.pending = sent.then_some(key);
        sent
    }

    /// The key asked for whose list has not arrived yet.
    pub fn pending(&self) -> Option<&RowsKey> {
        self.pending.as_ref()
    }

    /// The newest list that has arrived since the last call, if any (older ones are dropped).
    pub fn poll(&mut self) -> Option<RowsResult> {
        let mut newest = None;
        loop {
            match self.results.try_recv() {
                Ok(result) => newest = Some(result),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Some(result) = &newest
            && self.pending.as_ref() == Some(&result.key)
        {
            self.pending = None;
        }
        newest
    }

    /// Forgets the pending request (a new evaluation replaced the one it was for).
    pub fn forget_pending(&mut self) {
        self.pending = None;
    }
}

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
            assert!(worker.request(RowsKey::new(1, "all", t, SortBy::Missed), gt.clone(), predictions.clone()));
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
