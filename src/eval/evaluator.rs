//! The dataset-level evaluation: score normalisation, the threshold sweep and the sums over
//! images of the official `wider_eval.m` (`norm_score`, `image_pr_info`, `dataset_pr_info`).

use std::ops::Range;

use super::curves::{Counts, pr_curve, voc_ap};
use super::ground_truth::GroundTruth;
use super::options::EvalOptions;
use super::predictions::{PredictedBox, Predictions};
use super::protocol::{BestMatch, Corners, Outcome, best_matches, walk};
use super::report::{EvalReport, EvalWarning, ImageKey, ScoreNormalisation, SettingResult};

/// Evaluates `predictions` against every setting of `gt`.
pub fn evaluate(gt: &GroundTruth, predictions: &Predictions, options: &EvalOptions) -> EvalReport {
    Evaluator::new(gt, predictions, options).report()
}

/// An evaluation prepared once (score normalisation, threshold table) for the full report and for
/// browsing single images with [`Evaluator::image_matches`], so both use the same numbers.
#[derive(Debug, Clone)]
pub struct Evaluator<'a> {
    pub(super) gt: &'a GroundTruth,
    pub(super) predictions: &'a Predictions,
    pub(super) options: EvalOptions,
    pub(super) normalisation: ScoreNormalisation,
    thresholds: Vec<f64>,
}

/// Images evaluated on one thread before the work is split: thread start-up costs more than
/// evaluating this many typical images.
const IMAGES_PER_THREAD: usize = 256;

impl<'a> Evaluator<'a> {
    pub fn new(gt: &'a GroundTruth, predictions: &'a Predictions, options: &EvalOptions) -> Self {
        // Like `norm_score.m`, only predictions for ground-truth images take part.
        let (min, max) = gt
            .images()
            .iter()
            .filter_map(|image| predictions.get(&image.event, &image.name))
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| (lo.min(d.score), hi.max(d.score)));
        let normalisation =
            if min < max { ScoreNormalisation::MinMax { min, max } } else { ScoreNormalisation::Unchanged };
        let steps = options.thresholds.get();
        let thresholds = (1..=steps).map(|t| 1.0 - f64::from(t) / f64::from(steps)).collect();
        Self { gt, predictions, options: *options, normalisation, thresholds }
    }

    pub fn normalisation(&self) -> ScoreNormalisation {
        self.normalisation
    }

    /// The sweep's thresholds, from `1 - 1/thresholds` down to 0.
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// The first threshold step (0-based) whose threshold the normalised `score` reaches
    /// (`score >= threshold`), or `thresholds().len()` when it reaches none. The official tool
    /// instead searches every threshold for the last such prediction (`find(..., 'last')`); since
    /// predictions are sorted by score that prediction is the last one whose step is `<= t`, so
    /// adding each prediction's contribution at its own step and summing the steps gives the
    /// same counts in one pass.
    fn step_of(&self, score: f64) -> usize {
        let normalised = self.normalisation.apply(score);
        self.thresholds.partition_point(|&t| t > normalised)
    }

    /// The full evaluation of every setting.
    pub fn report(&self) -> EvalReport {
        let images = self.gt.images();
        let detections: Vec<Option<&[PredictedBox]>> =
            images.iter().map(|image| self.predictions.get(&image.event, &image.name)).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(images.len().div_ceil(IMAGES_PER_THREAD))
            .max(1);
        let counts = if threads == 1 {
            self.accumulate(&detections, 0..images.len(), 1)
        } else {
            std::thread::scope(|scope| {
                let detections = &detections;
                let handles: Vec<_> = (1..threads)
                    .map(|first| scope.spawn(move || self.accumulate(detections, first..images.len(), threads)))
                    .collect();
                let mut total = self.accumulate(detections, 0..images.len(), threads);
                for handle in handles {
                    // A panic on another thread is a bug here, not bad input: re-raise it.
                    let part = handle.join().unwrap_or_else(|payload| std::panic::resume_unwind(payload));
                    for (t, p) in total.iter_mut().zip(&part) {
                        t.add(p);
                    }
                }
                total
            })
        };

        let settings: Vec<SettingResult> = self
            .gt
            .settings()
            .iter()
            .zip(&counts)
            .map(|(setting, counts)| {
                let curve = pr_curve(counts, &self.thresholds, setting.kept_faces());
                SettingResult {
                    name: setting.name().to_string(),
                    ap: voc_ap(&curve),
                    faces: setting.kept_faces(),
                    curve,
                }
            })
            .collect();

        let mut missing: Vec<ImageKey> = images
            .iter()
            .zip(&detections)
            .filter(|(_, d)| d.is_none())
            .map(|(image, _)| key(&image.event, &image.name))
            .collect();
        missing.sort_unstable();
        let mut unknown: Vec<ImageKey> = self
            .predictions
            .iter()
            .filter(|(event, name, _)| self.gt.find_image(event, name).is_none())
            .map(|(event, name, _)| key(event, name))
            .collect();
        unknown.sort_unstable();
        let detection_count: usize = detections.iter().flatten().map(|d| d.len()).sum();

        let mut warnings = Vec::new();
        if detection_count == 0 {
            warnings.push(EvalWarning::NoPredictions);
        } else if self.normalisation == ScoreNormalisation::Unchanged {
            let score = detections.iter().flatten().find_map(|d| d.first()).map_or(0.0, |d| d.score);
            warnings.push(EvalWarning::ConstantScores { score });
        }
        if !missing.is_empty() {
            warnings.push(EvalWarning::MissingPredictionFiles { count: missing.len() });
        }
        if !unknown.is_empty() {
            warnings.push(EvalWarning::UnknownImages { count: unknown.len() });
        }
        warnings.extend(
            settings.iter().filter(|s| s.faces == 0).map(|s| EvalWarning::NoKeptFaces { setting: s.name.clone() }),
        );

        EvalReport {
            options: self.options,
            images: images.len(),
            faces: self.gt.face_count(),
            detections: detection_count,
            score_normalisation: self.normalisation,
            settings,
            missing_prediction_files: missing,
            unknown_prediction_images: unknown,
            warnings,
        }
    }

    /// Per setting, what each prediction adds at its threshold step, over the images
    /// `range.step_by(stride)` (interleaved, so crowded events are shared between threads).
    /// Images without faces or without predictions add nothing, as in the official tool.
    fn accumulate(&self, detections: &[Option<&[PredictedBox]>], range: Range<usize>, stride: usize) -> Vec<Counts> {
        let steps = self.thresholds.len();
        let settings = self.gt.settings();
        let mut counts = vec![Counts::zeros(steps); settings.len()];
        let (mut faces, mut best, mut step_of, mut recalled) =
            (Vec::<Corners>::new(), Vec::<BestMatch>::new(), Vec::new(), Vec::new());
        let images = self.gt.images();
        for i in range.step_by(stride) {
            let (Some(dets), boxes) = (detections[i], &images[i].boxes) else {
                continue;
            };
            if dets.is_empty() || boxes.is_empty() {
                continue;
            }
            faces.clear();
            faces.extend(boxes.iter().map(Corners::of_face));
            best_matches(&faces, dets, &mut best);
            step_of.clear();
            step_of.extend(dets.iter().map(|d| self.step_of(d.score)));
            for (setting, counts) in settings.iter().zip(&mut counts) {
                let Some(keep) = setting.keep(i) else {
                    continue;
                };
                let iou = self.options.iou_threshold;
                walk(&best, iou, keep, &mut recalled, boxes.len(), |k, outcome| {
                    let step = step_of[k];
                    if step < steps {
                        match outcome {
                            Outcome::Recalls(_) => {
                                counts.proposals[step] += 1;
                                counts.recalled[step] += 1;
                            }
                            Outcome::Proposal => counts.proposals[step] += 1,
                            Outcome::Ignored => {}
                        }
                    }
                });
            }
        }
        counts
    }
}

fn key(event: &str, name: &str) -> ImageKey {
    ImageKey { event: event.to_string(), name: name.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::test_support::{assets, official_gt};
    use crate::eval::{FaceBox, FaceVerdict, GtImage, LookupError, SettingSpec, Verdict};

    fn face(x: f64, y: f64) -> FaceBox {
        FaceBox { x, y, w: 20.0, h: 20.0 }
    }

    fn on(b: FaceBox, score: f64) -> PredictedBox {
        PredictedBox { x: b.x, y: b.y, w: b.w, h: b.h, score, landmarks: None }
    }

    fn options(thresholds: u32) -> EvalOptions {
        use std::num::NonZeroU32;
        EvalOptions { thresholds: NonZeroU32::new(thresholds).unwrap_or(NonZeroU32::MIN), ..EvalOptions::OFFICIAL }
    }

    /// Images `e/<name>` with their faces and the keep list of the single setting "s".
    fn gt(images: &[(&str, Vec<FaceBox>, Vec<usize>)]) -> GroundTruth {
        let spec = SettingSpec { name: "s".into(), keep: images.iter().map(|(_, _, keep)| keep.clone()).collect() };
        let images = images
            .iter()
            .map(|(name, boxes, _)| GtImage {
                event: "e".into(),
                name: (*name).into(),
                boxes: boxes.clone(),
                details: Vec::new(),
            })
            .collect();
        GroundTruth::new(images, vec![spec]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn preds(images: &[(&str, Vec<PredictedBox>)]) -> Predictions {
        let mut preds = Predictions::new();
        for (name, dets) in images {
            preds.insert("e", *name, dets.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        preds
    }

    fn setting(report: &EvalReport) -> &SettingResult {
        report.setting("s").unwrap_or_else(|| panic!("no setting s"))
    }

    fn last_point(report: &EvalReport) -> (u64, u64) {
        let last = setting(report).curve.last().copied();
        last.map_or((0, 0), |p| (p.proposals, p.recalled))
    }

    fn verdicts(ev: &Evaluator, name: &str, threshold: f64) -> Vec<Verdict> {
        ev.image_matches("s", "e", name, threshold)
            .unwrap_or_else(|e| panic!("{e}"))
            .detections
            .iter()
            .map(|d| d.verdict)
            .collect()
    }

    /// Reproducible scores.
    struct Rng(rand_chacha::ChaCha8Rng);

    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(rand::SeedableRng::seed_from_u64(seed))
        }

        fn unit(&mut self) -> f64 {
            rand::Rng::random(&mut self.0)
        }
    }

    #[test]
    fn prediction_on_a_face_outside_the_keep_list_is_neither_tp_nor_fp() {
        let (a, b) = (face(0.0, 0.0), face(100.0, 0.0));
        let gt = gt(&[("img", vec![a, b], vec![0])]);
        let far = on(face(300.0, 300.0), 0.1);
        let with = preds(&[("img", vec![on(a, 0.9), on(b, 0.8), far])]);
        let without = preds(&[("img", vec![on(a, 0.9), far])]);
        let report = evaluate(&gt, &with, &EvalOptions::OFFICIAL);
        // Counted as a false positive it would make the final precision 1/3.
        assert_eq!(last_point(&report), (2, 1));
        assert_eq!(setting(&report).curve, setting(&evaluate(&gt, &without, &EvalOptions::OFFICIAL)).curve);
        let ev = Evaluator::new(&gt, &with, &EvalOptions::OFFICIAL);
        let matches = ev.image_matches("s", "e", "img", 0.0);
        let matches = matches.unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<Verdict> = matches.detections.iter().map(|d| d.verdict).collect();
        assert_eq!(kinds, vec![Verdict::TruePositive, Verdict::Ignored, Verdict::FalsePositive]);
        assert_eq!(matches.faces, vec![FaceVerdict::Recalled { detection: 0 }, FaceVerdict::NotKept]);
        let counts = (matches.true_positives(), matches.false_positives(), matches.ignored(), matches.missed());
        assert_eq!(counts, (1, 1, 1, 0));
    }

    #[test]
    fn a_duplicate_prediction_costs_precision() {
        let (a, b) = (face(0.0, 0.0), face(100.0, 0.0));
        let gt = gt(&[("img", vec![a, b], vec![0, 1])]);
        let duplicate = PredictedBox { x: 1.0, ..on(a, 0.8) };
        let with = preds(&[("img", vec![on(a, 0.9), duplicate, on(b, 0.1)])]);
        let without = preds(&[("img", vec![on(a, 0.9), on(b, 0.1)])]);
        let report = evaluate(&gt, &with, &EvalOptions::OFFICIAL);
        assert!((setting(&report).ap - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(last_point(&report), (3, 2));
        let clean = evaluate(&gt, &without, &EvalOptions::OFFICIAL);
        assert_eq!(setting(&clean).ap, 1.0);
        let ev = Evaluator::new(&gt, &with, &EvalOptions::OFFICIAL);
        assert_eq!(
            verdicts(&ev, "img", 0.0),
            vec![Verdict::TruePositive, Verdict::FalsePositive, Verdict::TruePositive]
        );
    }

    #[test]
    fn threshold_sweep_matches_a_hand_computed_curve() {
        // Two kept faces; scores 1 (on A), 0.5 (nothing), 0 (on B), already normalised.
        // Thresholds 0.75, 0.5, 0.25, 0: P/R = 1/0.5, 0.5/0.5, 0.5/0.5, 2/3/1; the envelope
        // gives AP = 0.5 * 1 + 0.5 * 2/3 = 5/6.
        let (a, b) = (face(0.0, 0.0), face(100.0, 0.0));
        let gt = gt(&[("img", vec![a, b], vec![0, 1])]);
        let preds = preds(&[("img", vec![on(a, 1.0), on(face(300.0, 0.0), 0.5), on(b, 0.0)])]);
        let report = evaluate(&gt, &preds, &options(4));
        let curve: Vec<(f64, f64, f64)> =
            setting(&report).curve.iter().map(|p| (p.threshold, p.precision, p.recall)).collect();
        assert_eq!(curve, vec![(0.75, 1.0, 0.5), (0.5, 0.5, 0.5), (0.25, 0.5, 0.5), (0.0, 2.0 / 3.0, 1.0)]);
        assert!((setting(&report).ap - 5.0 / 6.0).abs() < 1e-15);
        let official = evaluate(&gt, &preds, &EvalOptions::OFFICIAL);
        assert!((setting(&official).ap - 5.0 / 6.0).abs() < 1e-15);
        assert_eq!(setting(&official).curve.len(), 1000);
        // Threshold 0.5 is reached by the score 0.5 (`>=`).
        let at_half = setting(&official).curve[499];
        assert_eq!((at_half.threshold, at_half.proposals), (0.5, 2));
    }

    #[test]
    fn equal_scores_are_not_normalised_and_a_warning_is_given() {
        let (a, b) = (face(0.0, 0.0), face(100.0, 0.0));
        let gt = gt(&[("img", vec![a, b], vec![0, 1])]);
        let preds = preds(&[("img", vec![on(a, 0.7), on(b, 0.7), on(face(300.0, 0.0), 0.7)])]);
        let report = evaluate(&gt, &preds, &EvalOptions::OFFICIAL);
        assert_eq!(report.score_normalisation, ScoreNormalisation::Unchanged);
        assert_eq!(report.warnings, vec![EvalWarning::ConstantScores { score: 0.7 }]);
        // Every threshold <= 0.7 sees all three: precision 2/3 at recall 1 (the Python port
        // divides 0 by 0 here and reports 0).
        assert!((setting(&report).ap - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(setting(&report).curve[299].proposals, 3);
        assert_eq!(setting(&report).curve[298].proposals, 0);
    }

    #[test]
    fn missing_prediction_file_is_counted_and_means_no_predictions() {
        let (a, b) = (face(0.0, 0.0), face(100.0, 0.0));
        let gt = gt(&[("a", vec![a], vec![0]), ("b", vec![b], vec![0])]);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("e")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("e/a.txt"), "a\n1\n0 0 20 20 0.9\n0 0 1 1\n").unwrap_or_else(|e| panic!("{e}"));
        let msg = Predictions::read_dir(dir.path()).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("a.txt:4:"), "{msg}");
        std::fs::write(dir.path().join("e/a.txt"), "a\n1\n0 0 20 20 0.9\n").unwrap_or_else(|e| panic!("{e}"));
        let preds = Predictions::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let report = evaluate(&gt, &preds, &EvalOptions::OFFICIAL);
        let b_key = ImageKey { event: "e".into(), name: "b".into() };
        assert_eq!(report.missing_prediction_files, vec![b_key]);
        assert!(report.warnings.contains(&EvalWarning::MissingPredictionFiles { count: 1 }));
        // b's face still counts in the recall denominator.
        assert_eq!(setting(&report).faces, 2);
        assert_eq!(setting(&report).ap, 0.5);
    }

    #[test]
    fn line_order_in_prediction_files_does_not_change_the_result() {
        let faces = vec![face(0.0, 0.0), face(100.0, 0.0), face(200.0, 0.0)];
        let gt = gt(&[("img", faces, vec![0, 2])]);
        // Two equal-score predictions on face 0 (only one can recall it), one on the ignored
        // face 1, an equal-score pair elsewhere.
        let lines = [
            "0 0 20 20 0.5",
            "2 1 20 20 0.5",
            "100 0 20 20 0.5",
            "200 0 20 20 0.25",
            "500 0 20 20 0.25",
            "700 0 20 20 0.9",
        ];
        let mut reports = Vec::new();
        for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [1, 3, 5, 0, 2, 4]] {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            std::fs::create_dir(dir.path().join("e")).unwrap_or_else(|e| panic!("{e}"));
            let body: Vec<&str> = order.iter().map(|&i| lines[i]).collect();
            let text = format!("img.jpg\n6\n{}\n", body.join("\n"));
            std::fs::write(dir.path().join("e/img.txt"), text).unwrap_or_else(|e| panic!("{e}"));
            let preds = Predictions::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let ev = Evaluator::new(&gt, &preds, &EvalOptions::OFFICIAL);
            let matches = ev.image_matches("s", "e", "img", 0.0).unwrap_or_else(|e| panic!("{e}"));
            reports.push((ev.report(), matches));
        }
        assert!(reports.windows(2).all(|w| w[0] == w[1]));
        let verdicts: Vec<(f64, Verdict)> =
            reports[0].1.detections.iter().map(|d| (d.detection.x, d.verdict)).collect();
        assert_eq!(
            verdicts,
            vec![
                (700.0, Verdict::FalsePositive),
                (0.0, Verdict::TruePositive),
                (2.0, Verdict::FalsePositive),
                (100.0, Verdict::Ignored),
                (200.0, Verdict::TruePositive),
                (500.0, Verdict::FalsePositive),
            ]
        );
    }

    #[test]
    fn image_matches_agree_with_every_curve_point() {
        let (a, b) = (face(0.0, 0.0), face(100.0, 0.0));
        let gt = gt(&[("img", vec![a, b, face(200.0, 0.0)], vec![0, 1])]);
        let preds = preds(&[(
            "img",
            vec![
                on(a, 0.9),
                PredictedBox { x: 2.0, ..on(a, 0.7) },
                on(face(200.0, 0.0), 0.6),
                on(face(400.0, 0.0), 0.3),
                on(b, 0.2),
            ],
        )]);
        let ev = Evaluator::new(&gt, &preds, &EvalOptions::OFFICIAL);
        let report = ev.report();
        for point in &setting(&report).curve {
            let m = ev.image_matches("s", "e", "img", point.threshold).unwrap_or_else(|e| panic!("{e}"));
            let tp = m.true_positives() as u64;
            assert_eq!((tp, tp + m.false_positives() as u64), (point.recalled, point.proposals));
            assert_eq!(m.missed() as u64, 2 - point.recalled);
        }
        assert_eq!(ev.image_matches("x", "e", "img", 0.0), Err(LookupError::UnknownSetting("x".into())));
        assert!(matches!(ev.image_matches("s", "e", "nope", 0.0), Err(LookupError::UnknownImage { .. })));
    }

    #[test]
    fn unknown_images_and_faceless_images_are_not_evaluated() {
        let a = face(0.0, 0.0);
        let gt = gt(&[("img", vec![a], vec![0]), ("empty", vec![], vec![])]);
        let preds = preds(&[("img", vec![on(a, 0.9)]), ("empty", vec![on(a, 0.5)]), ("img.jpg", vec![on(a, 0.1)])]);
        let report = evaluate(&gt, &preds, &EvalOptions::OFFICIAL);
        assert_eq!(report.unknown_prediction_images.len(), 1);
        assert!(report.warnings.contains(&EvalWarning::UnknownImages { count: 1 }));
        // Only predictions on ground-truth images are normalised and counted.
        assert_eq!(report.detections, 2);
        assert_eq!(report.score_normalisation, ScoreNormalisation::MinMax { min: 0.5, max: 0.9 });
        // The face-less image is skipped, as in the official tool: precision stays 1.
        assert_eq!(last_point(&report), (1, 1));
        assert_eq!(setting(&report).ap, 1.0);
        let ev = Evaluator::new(&gt, &preds, &EvalOptions::OFFICIAL);
        let empty = ev.image_matches("s", "e", "empty", 0.0).unwrap_or_else(|e| panic!("{e}"));
        assert!(!empty.counted);
        assert_eq!(empty.false_positives(), 1);
    }

    #[test]
    fn exact_boxes_with_varied_scores_give_ap_one() {
        let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
        let images: Vec<(String, Vec<FaceBox>)> = (0..40)
            .map(|i| {
                let faces = (0..1 + i % 7).map(|k| face(30.0 * k as f64, 10.0 * rng.unit())).collect();
                (format!("img{i}"), faces)
            })
            .collect();
        let spec: Vec<(&str, Vec<FaceBox>, Vec<usize>)> =
            images.iter().map(|(n, f)| (n.as_str(), f.clone(), (0..f.len()).collect())).collect();
        let gt = gt(&spec);
        let dets: Vec<(&str, Vec<PredictedBox>)> =
            images.iter().map(|(n, f)| (n.as_str(), f.iter().map(|&b| on(b, rng.unit())).collect())).collect();
        let report = evaluate(&gt, &preds(&dets), &EvalOptions::OFFICIAL);
        assert!((setting(&report).ap - 1.0).abs() < 1e-12);
        assert!(report.warnings.is_empty());
    }

    #[test]
    fn official_exact_boxes_with_random_scores_give_ap_near_one() {
        let Some(gt) = official_gt("official_exact_boxes_with_random_scores_give_ap_near_one") else {
            return;
        };
        let mut rng = Rng::new(42);
        let mut preds = Predictions::new();
        for image in gt.images() {
            let dets = image.boxes.iter().map(|&b| on(b, rng.unit())).collect();
            preds.insert(image.event.as_str(), image.name.as_str(), dets).unwrap_or_else(|e| panic!("{e}"));
        }
        let report = evaluate(gt, &preds, &EvalOptions::OFFICIAL);
        for s in &report.settings {
            // Just below 1: the ground truth's width −2 box and its duplicate box cannot both
            // be recalled.
            assert!(s.ap > 0.9998 && s.ap < 1.0, "{}: {}", s.name, s.ap);
        }
    }

    #[test]
    fn reference_perfect_randscore_gives_the_published_ap() {
        let Some(assets) = assets("reference_perfect_randscore_gives_the_published_ap") else {
            return;
        };
        let Some(gt) = official_gt("reference_perfect_randscore_gives_the_published_ap") else {
            return;
        };
        let zip_path = assets.join("../reference/eval/prediction_perfect_randscore.zip");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = std::fs::File::open(&zip_path).unwrap_or_else(|e| panic!("{e}"));
        zip::ZipArchive::new(file)
            .and_then(|mut archive| archive.extract(dir.path()))
            .unwrap_or_else(|e| panic!("{}: {e}", zip_path.display()));
        let preds = Predictions::read_dir(dir.path().join("perfect_randscore")).unwrap_or_else(|e| panic!("{e}"));
        let report = evaluate(gt, &preds, &EvalOptions::OFFICIAL);
        assert_eq!(report.images, 3226);
        assert!(report.missing_prediction_files.is_empty());
        assert!(report.unknown_prediction_images.is_empty());
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let expected = [("easy", 0.9999434869987024), ("medium", 0.9999693025858654), ("hard", 0.9999218229704124)];
        for (name, ap) in expected {
            let got = report.setting(name).map_or(f64::NAN, |s| s.ap);
            assert!((got - ap).abs() < 1e-9, "{name}: {got} vs {ap}");
        }
    }

    #[test]
    fn report_round_trips_through_json() {
        let a = face(0.0, 0.0);
        let gt = gt(&[("img", vec![a], vec![0]), ("other", vec![a], vec![0])]);
        let report = evaluate(&gt, &preds(&[("img", vec![on(a, 0.9)])]), &options(10));
        let json = serde_json::to_string(&report).unwrap_or_else(|e| panic!("{e}"));
        let back: EvalReport = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, report);
        assert!(json.contains("\"kind\":\"missing_prediction_files\""), "{json}");
    }
}
