//! Comparing evaluations in the Evaluate panel: evaluations kept for comparison ([`KeptRun`]),
//! the table of AP per setting with the difference to the first row (as `eval` prints it for
//! several models), the colours of the overlaid PR curves, and the faces one run recalls and the
//! other misses ([`compare_faces`], over `eval::face_differences`). That walks every image of the
//! ground truth twice, so it runs on a worker thread ([`DiffWorker`]): the latest request wins
//! (queued ones are dropped) and the panel shows the previous list until the new one arrives.

use std::sync::Arc;

use super::latest_worker::{LatestJob, LatestWorker};
use egui::Color32;

use super::viewer::ImageTransform;
use crate::eval::{
    EvalOptions, EvalReport, Evaluator, FaceBox, FaceRef, GroundTruth, PredictedBox, Predictions, ScoreNormalisation,
    face_differences,
};

/// An evaluation kept for comparison: what the table and the curves read (its report) and what an
/// [`Evaluator`] is built from (the ground truth and the predictions, shared with the outcome they
/// came from, not copied).
pub struct KeptRun {
    /// Tells kept runs apart (the error browser's modes, the comparison's key).
    pub id: u64,
    /// The model file or prediction folder, plus " (TTA)" when the model ran with test-time
    /// augmentation.
    pub name: String,
    /// The panel's evaluation it came from (one evaluation is kept once).
    pub generation: u64,
    pub report: EvalReport,
    pub gt: Arc<GroundTruth>,
    pub predictions: Arc<Predictions>,
    /// Ticked runs are compared with the current outcome.
    pub ticked: bool,
}

/// Whether two ground truths hold the same images, faces and settings (an evaluation reads its
/// ground truth anew; the evaluation job then shares a kept run's when it is the same).
pub fn same_ground_truth(a: &GroundTruth, b: &GroundTruth) -> bool {
    a.images() == b.images() && a.settings() == b.settings()
}

/// The kept runs compared with the current outcome, whose ground truth is `current_gt`: those
/// ticked and evaluated on that very ground truth (the same `Arc`), in the order kept.
pub fn compared_runs<'a>(kept: &'a [KeptRun], current_gt: Option<&Arc<GroundTruth>>) -> Vec<&'a KeptRun> {
    let Some(gt) = current_gt else { return Vec::new() };
    kept.iter().filter(|r| r.ticked && Arc::ptr_eq(&r.gt, gt)).collect()
}

/// What the error browser lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorsMode {
    /// Every image with its matches (the error list).
    All,
    /// The faces the current outcome recalls and the kept run `id` misses.
    FoundByCurrent(u64),
    /// The faces the kept run `id` recalls and the current outcome misses.
    FoundByRun(u64),
}

impl ErrorsMode {
    /// The kept run a comparison mode is about.
    pub fn run(self) -> Option<u64> {
        match self {
            ErrorsMode::All => None,
            ErrorsMode::FoundByCurrent(id) | ErrorsMode::FoundByRun(id) => Some(id),
        }
    }
}

/// The choices of the "Errors" combo: every image, then per compared run both directions.
pub fn errors_choices(current: &str, runs: &[&KeptRun]) -> Vec<(ErrorsMode, String)> {
    let mut choices = vec![(ErrorsMode::All, "All images".to_string())];
    for run in runs {
        choices.push((ErrorsMode::FoundByCurrent(run.id), format!("Found by {current}, missed by {}", run.name)));
        choices.push((ErrorsMode::FoundByRun(run.id), format!("Found by {}, missed by {current}", run.name)));
    }
    choices
}

/// An AP cell of the comparison table: the AP and its difference to the first row's, as
/// `facestudio eval` prints several models ("0.9012 (-0.0123)"; the first row "(+0.0000)").
pub fn ap_cell(ap: f64, first: f64) -> String {
    format!("{ap:.4} ({:+.4})", ap - first)
}

/// The comparison table: a row per run (`(name, report)`, the current outcome first), a column
/// per setting of the first, each cell the AP with its difference to the first row's.
pub fn comparison_table_ui(ui: &mut egui::Ui, rows: &[(&str, &EvalReport)]) {
    let Some(&(_, first)) = rows.first() else { return };
    egui::Grid::new("compare-table").striped(true).num_columns(first.settings.len() + 1).show(ui, |ui| {
        ui.strong("model");
        for setting in &first.settings {
            ui.strong(format!("{} AP", setting.name));
        }
        ui.end_row();
        for &(name, report) in rows {
            ui.label(name);
            for base in &first.settings {
                match report.setting(&base.name) {
                    Some(setting) => ui.label(ap_cell(setting.ap, base.ap)),
                    None => ui.label("-"),
                };
            }
            ui.end_row();
        }
    });
}

/// One colour per compared run (its overlaid curve, its detections over the image), in the
/// order of [`compared_runs`]; apart from the settings' colours of the PR plot.
const RUN_COLORS: [Color32; 4] = [
    Color32::from_rgb(230, 80, 200),
    Color32::from_rgb(0, 190, 190),
    Color32::from_rgb(200, 180, 40),
    Color32::from_rgb(170, 170, 170),
];

pub fn run_color(index: usize) -> Color32 {
    RUN_COLORS[index % RUN_COLORS.len()]
}

/// The current outcome's detections over the image in a comparison mode.
pub const CURRENT_COLOR: Color32 = Color32::from_rgb(70, 150, 255);
/// The face picked in a comparison mode's list.
pub const PICKED_FACE_COLOR: Color32 = Color32::from_rgb(255, 220, 0);

/// A face of the ground truth by index: image (into `GroundTruth::images`) and face (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaceEntry {
    pub image: usize,
    pub face: usize,
}

/// One setting's faces that only one of the two runs recalls.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingFaces {
    pub setting: String,
    /// Recalled by the current outcome, missed by the kept run.
    pub only_current: Vec<FaceEntry>,
    /// Recalled by the kept run, missed by the current outcome.
    pub only_run: Vec<FaceEntry>,
}

/// Per setting of `gt`, the kept faces that `current` recalls and `run` misses and the other way
/// round, each read at the raw score `confidence` through its own score normalisation
/// (`eval::face_differences`, the current outcome as its first model).
pub fn compare_faces(gt: &GroundTruth, current: &Predictions, run: &Predictions, confidence: f64) -> Vec<SettingFaces> {
    let first = Evaluator::new(gt, current, &EvalOptions::OFFICIAL);
    let second = Evaluator::new(gt, run, &EvalOptions::OFFICIAL);
    let entries = |refs: Vec<FaceRef>| -> Vec<FaceEntry> {
        refs.into_iter()
            .filter_map(|f| Some(FaceEntry { image: gt.find_image(&f.event, &f.name)?, face: f.face }))
            .collect()
    };
    face_differences(&first, &second, confidence)
        .into_iter()
        .map(|d| SettingFaces {
            setting: d.setting,
            only_current: entries(d.only_first),
            only_run: entries(d.only_second),
        })
        .collect()
}

/// What a comparison list is computed for: the panel's evaluation (`generation`), the kept run,
/// and the raw confidence (kept as its bits so that keys compare exactly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffKey {
    pub generation: u64,
    pub run: u64,
    confidence_bits: u64,
}

impl DiffKey {
    pub fn new(generation: u64, run: u64, confidence: f64) -> DiffKey {
        DiffKey { generation, run, confidence_bits: confidence.to_bits() }
    }

    /// The raw score from which both runs' detections count.
    pub fn confidence(&self) -> f64 {
        f64::from_bits(self.confidence_bits)
    }
}

/// A comparison to compute: `current`'s and `run`'s predictions face by face, for `key`.
pub struct DiffRequest {
    pub key: DiffKey,
    pub gt: Arc<GroundTruth>,
    pub current: Arc<Predictions>,
    pub run: Arc<Predictions>,
}

impl LatestJob for DiffRequest {
    type Key = DiffKey;
    type Done = DiffResult;

    fn key(&self) -> &DiffKey {
        &self.key
    }

    fn run(self, _stale: &dyn Fn() -> bool) -> Option<DiffResult> {
        let settings = compare_faces(&self.gt, &self.current, &self.run, self.key.confidence());
        Some(DiffResult { key: self.key, settings })
    }

    fn done_key(done: &DiffResult) -> &DiffKey {
        &done.key
    }
}

/// A finished comparison: every setting's faces, both directions.
pub struct DiffResult {
    pub key: DiffKey,
    pub settings: Vec<SettingFaces>,
}

impl DiffResult {
    /// The faces of `setting` listed in `mode` (`None`: the setting is unknown, or `mode` is
    /// [`ErrorsMode::All`]).
    pub fn entries(&self, setting: &str, mode: ErrorsMode) -> Option<&[FaceEntry]> {
        let faces = self.settings.iter().find(|s| s.setting == setting)?;
        match mode {
            ErrorsMode::All => None,
            ErrorsMode::FoundByCurrent(_) => Some(faces.only_current.as_slice()),
            ErrorsMode::FoundByRun(_) => Some(faces.only_run.as_slice()),
        }
    }
}

/// The thread that compares two runs face by face, the latest request winning.
pub type DiffWorker = LatestWorker<DiffRequest>;

/// The detections of one run that a comparison counts: those whose score, through the run's own
/// normalisation, reaches the raw `confidence` through it.
pub fn counted_detections(
    detections: &[PredictedBox],
    normalisation: ScoreNormalisation,
    confidence: f64,
) -> impl Iterator<Item = &PredictedBox> {
    let threshold = normalisation.apply(confidence);
    detections.iter().filter(move |d| normalisation.apply(d.score) >= threshold)
}

/// One run's detections as drawn over the image in a comparison mode.
pub struct DrawnRun<'a> {
    pub detections: &'a [PredictedBox],
    pub normalisation: ScoreNormalisation,
    pub color: Color32,
}

/// A comparison mode's image: the ground truth's faces (the picked one thick, in
/// [`PICKED_FACE_COLOR`], the others thin and grey), then each run's counted detections in its
/// colour, each later run's a little wider so that boxes of both that coincide stay visible.
pub fn draw_comparison(
    painter: &egui::Painter,
    t: ImageTransform,
    faces: &[FaceBox],
    picked: Option<usize>,
    runs: &[DrawnRun<'_>],
    confidence: f64,
) {
    let rect = |x: f64, y: f64, w: f64, h: f64| t.rect_to_screen([x as f32, y as f32, (x + w) as f32, (y + h) as f32]);
    for (i, b) in faces.iter().enumerate() {
        let stroke = if picked == Some(i) {
            egui::Stroke::new(3.0, PICKED_FACE_COLOR)
        } else {
            egui::Stroke::new(1.0, Color32::from_gray(150))
        };
        painter.rect_stroke(rect(b.x, b.y, b.w, b.h), 0.0, stroke, egui::StrokeKind::Outside);
    }
    for (k, run) in runs.iter().enumerate() {
        let stroke = egui::Stroke::new(1.5 + k as f32, run.color);
        for d in counted_detections(run.detections, run.normalisation, confidence) {
            painter.rect_stroke(rect(d.x, d.y, d.w, d.h), 0.0, stroke, egui::StrokeKind::Middle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{GtImage, SettingSpec};

    fn ground_truth() -> GroundTruth {
        let face = |x: f64| FaceBox { x, y: 0.0, w: 40.0, h: 40.0 };
        let images = (0..2)
            .map(|i| GtImage {
                event: "e".into(),
                name: format!("{i}"),
                boxes: vec![face(0.0), face(100.0)],
                details: Vec::new(),
            })
            .collect();
        GroundTruth::new(images, vec![SettingSpec { name: "all".into(), keep: vec![vec![0, 1], vec![0, 1]] }]).unwrap()
    }

    fn predictions(faces: &[(usize, f64)]) -> Predictions {
        let mut p = Predictions::new();
        for i in 0..2 {
            let boxes = faces
                .iter()
                .map(|&(f, score)| PredictedBox {
                    x: 100.0 * f as f64,
                    y: 0.0,
                    w: 40.0,
                    h: 40.0,
                    score,
                    landmarks: None,
                })
                .collect();
            p.insert("e", format!("{i}"), boxes).unwrap();
        }
        p
    }

    #[test]
    fn faces_are_listed_by_image_index_per_direction() {
        let gt = ground_truth();
        // Current: both faces of each image; the run: the first face only.
        let (current, run) = (predictions(&[(0, 0.9), (1, 0.8)]), predictions(&[(0, 0.9), (1, 0.1)]));
        let faces = compare_faces(&gt, &current, &run, 0.5);
        assert_eq!(faces.len(), 1);
        assert_eq!(faces[0].only_current, vec![FaceEntry { image: 0, face: 1 }, FaceEntry { image: 1, face: 1 }]);
        assert!(faces[0].only_run.is_empty());
        let result = DiffResult { key: DiffKey::new(1, 7, 0.5), settings: faces };
        assert_eq!(result.entries("all", ErrorsMode::FoundByCurrent(7)).map(<[FaceEntry]>::len), Some(2));
        assert_eq!(result.entries("all", ErrorsMode::FoundByRun(7)).map(<[FaceEntry]>::len), Some(0));
        assert_eq!(result.entries("hard", ErrorsMode::FoundByRun(7)), None);
        // Read low enough, the run's weak detection recalls the second face too.
        assert!(compare_faces(&gt, &current, &run, 0.05)[0].only_current.is_empty());
    }

    #[test]
    fn cells_show_the_difference_to_the_first_row() {
        assert_eq!(ap_cell(0.9012, 0.9135), "0.9012 (-0.0123)");
        assert_eq!(ap_cell(0.9135, 0.9135), "0.9135 (+0.0000)");
        assert_eq!(ap_cell(0.95, 0.9), "0.9500 (+0.0500)");
    }

    #[test]
    fn the_combo_offers_both_directions_per_run() {
        let gt = Arc::new(ground_truth());
        let p = Arc::new(predictions(&[(0, 0.9)]));
        let report = crate::eval::evaluate(&gt, &p, &EvalOptions::OFFICIAL);
        let run =
            KeptRun { id: 3, name: "A".into(), generation: 1, report, gt: gt.clone(), predictions: p, ticked: true };
        let kept = [run];
        let compared = compared_runs(&kept, Some(&gt));
        assert_eq!(compared.len(), 1);
        let names: Vec<String> = errors_choices("B", &compared).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["All images", "Found by B, missed by A", "Found by A, missed by B"]);
        // Another ground truth, even an equal one, is not compared until the job shares it.
        let other = Arc::new(ground_truth());
        assert!(compared_runs(&kept, Some(&other)).is_empty());
        assert!(same_ground_truth(&gt, &other));
    }
}
