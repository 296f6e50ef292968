//! Ground truth from a dataset split, for the synthetic data and custom datasets that have no
//! official easy/medium/hard lists: one setting, `all`, that keeps every face not marked invalid.

use std::path::{Path, PathBuf};

use super::error::GroundTruthError;
use super::ground_truth::{FaceBox, FaceDetails, GroundTruth, GtImage, SettingSpec};
use crate::dataset::{Dataset, Split, SplitKind};

/// The name of the single setting of a dataset split's ground truth.
pub const ALL_FACES: &str = "all";

impl GroundTruth {
    /// Images are named like WIDER prediction files: event folder and file stem.
    pub fn from_split(split: &Split) -> Result<GroundTruth, GroundTruthError> {
        let mut images = Vec::with_capacity(split.images.len());
        let mut keep = Vec::with_capacity(split.images.len());
        for image in &split.images {
            let boxes = image
                .faces
                .iter()
                .map(|f| {
                    let [x, y, w, h] = f.bbox.to_xywh();
                    FaceBox { x: x as f64, y: y as f64, w: w as f64, h: h as f64 }
                })
                .collect();
            keep.push(image.faces.iter().enumerate().filter(|(_, f)| !f.is_invalid()).map(|(i, _)| i).collect());
            let details = image
                .faces
                .iter()
                .map(|f| FaceDetails {
                    attributes: f.attributes,
                    landmarks: f.landmarks.map(|l| l.points.points.map(|p| [p.x as f64, p.y as f64])),
                })
                .collect();
            images.push(GtImage { event: image.event().to_string(), name: image.stem().to_string(), boxes, details });
        }
        GroundTruth::new(images, vec![SettingSpec { name: ALL_FACES.into(), keep }])
    }

    /// The ground truth in `dir`: the official folder with `wider_face_val.mat` and the
    /// easy/medium/hard lists, or `split` of a dataset folder. For a dataset, also the folder its
    /// images are in (`<images>/<event>/<name>.jpg`).
    pub fn open(dir: &Path, split: SplitKind) -> Result<(GroundTruth, Option<PathBuf>), GroundTruthError> {
        if dir.join("wider_face_val.mat").is_file() {
            return Ok((GroundTruth::from_official_dir(dir)?, None));
        }
        let (dataset, _) = Dataset::open(dir)
            .map_err(|e| GroundTruthError::Dataset { dir: dir.to_path_buf(), message: e.to_string() })?;
        let split =
            dataset.split(split).ok_or(GroundTruthError::NoSplit { dir: dataset.root.clone(), split: split.name() })?;
        Ok((GroundTruth::from_split(split)?, Some(split.images_dir.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};
    use crate::dataset::{Dataset, SplitKind};
    use crate::eval::{EvalOptions, PredictedBox, Predictions, evaluate};

    #[test]
    fn exact_boxes_of_a_synthetic_split_give_ap_one() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(8, 5)).unwrap();
        let (dataset, _) = Dataset::open(dir.path()).unwrap();
        let val = dataset.split(SplitKind::Val).unwrap();
        let gt = GroundTruth::from_split(val).unwrap();
        assert_eq!(gt.face_count(), val.images.iter().map(|i| i.faces.len()).sum::<usize>());
        let mut predictions = Predictions::new();
        for (n, image) in val.images.iter().enumerate() {
            let detections = image
                .faces
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let [x, y, w, h] = f.bbox.to_xywh();
                    let score = 0.5 + 0.4 * ((n * 7 + i * 3) % 10) as f64 / 10.0;
                    PredictedBox { x: x as f64, y: y as f64, w: w as f64, h: h as f64, score, landmarks: None }
                })
                .collect();
            predictions.insert(image.event(), image.stem(), detections).unwrap();
        }
        let report = evaluate(&gt, &predictions, &EvalOptions::OFFICIAL);
        let ap = report.setting(ALL_FACES).unwrap().ap;
        assert!((ap - 1.0).abs() < 1e-9, "AP {ap}");
    }
}
