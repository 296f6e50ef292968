//! Ground truth: the images, their face boxes and, per setting, which faces count.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::error::GroundTruthError;
use crate::dataset::Attributes;

/// A box as WIDER FACE writes it: top-left corner, width and height, in pixels.
///
/// The protocol turns it into corners with `x2 = x + w`, `y2 = y + h` (as `image_evaluation` in
/// the official `wider_eval.m` does), so `w` and `h` are not validated: the official ground truth
/// itself holds boxes of width 0 and one of width −2, which the tool keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// One ground-truth image, named as in the submission format: the event folder and the image
/// name without extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GtImage {
    pub event: String,
    pub name: String,
    pub boxes: Vec<FaceBox>,
    /// Empty, or one per box: what the ground truth knows of each face beyond its box.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FaceDetails>,
}

/// A face's attributes and landmarks where the ground truth has them: dataset folders carry both
/// (landmarks from a RetinaFace `label.txt`), the official `.mat` the attributes only.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FaceDetails {
    pub attributes: Option<Attributes>,
    /// The five landmarks `[x, y]` (left eye, right eye, nose, left and right mouth corner).
    pub landmarks: Option<[[f64; 2]; 5]>,
}

/// Input of [`GroundTruth::new`]: a setting's name and, per image (in the order of the images),
/// the 0-based indexes of the faces that the setting evaluates.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingSpec {
    pub name: String,
    pub keep: Vec<Vec<usize>>,
}

/// Which faces of one image a setting evaluates (the official `gt_list{i}{j}`).
///
/// Stored as one flag per face, so it always has the image's length and cannot name a face twice
/// or one that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepList {
    kept: Vec<bool>,
    count: usize,
}

impl KeepList {
    /// Whether face `face` (0-based) is evaluated; faces that are not are "ignored" by the
    /// protocol.
    pub fn contains(&self, face: usize) -> bool {
        self.kept.get(face).copied().unwrap_or(false)
    }

    /// Number of kept faces: what the image adds to the recall denominator (`count_face`).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The kept faces' 0-based indexes, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.kept.iter().enumerate().filter_map(|(i, &k)| k.then_some(i))
    }
}

/// A named subset of the faces (the official "easy", "medium", "hard"), one keep list per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    name: String,
    keep: Vec<KeepList>,
    kept_faces: usize,
}

impl Setting {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keep list of image `image` (index into [`GroundTruth::images`]).
    pub fn keep(&self, image: usize) -> Option<&KeepList> {
        self.keep.get(image)
    }

    /// All keep lists, in the order of [`GroundTruth::images`].
    pub fn keep_lists(&self) -> &[KeepList] {
        &self.keep
    }

    /// Total of kept faces: the recall denominator (`count_face` in the official tool).
    pub fn kept_faces(&self) -> usize {
        self.kept_faces
    }
}

/// A validated ground truth: unique images, finite boxes, and settings whose keep lists match the
/// images one to one.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    images: Vec<GtImage>,
    settings: Vec<Setting>,
    index: HashMap<String, HashMap<String, usize>>,
}

impl GroundTruth {
    /// Builds a ground truth from a caller's own dataset (e.g. one setting named "all" whose keep
    /// lists name every face). Keep indexes are 0-based.
    pub fn new(images: Vec<GtImage>, settings: Vec<SettingSpec>) -> Result<Self, GroundTruthError> {
        if settings.is_empty() {
            return Err(GroundTruthError::NoSettings);
        }
        let mut index: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (i, image) in images.iter().enumerate() {
            if let Some(face) = image.boxes.iter().position(|b| ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite())) {
                return Err(GroundTruthError::NonFiniteBox {
                    event: image.event.clone(),
                    name: image.name.clone(),
                    face,
                });
            }
            if !image.details.is_empty() && image.details.len() != image.boxes.len() {
                return Err(GroundTruthError::DetailsCount {
                    event: image.event.clone(),
                    name: image.name.clone(),
                    boxes: image.boxes.len(),
                    details: image.details.len(),
                });
            }
            let names = index.entry(image.event.clone()).or_default();
            if names.insert(image.name.clone(), i).is_some() {
                return Err(GroundTruthError::DuplicateImage { event: image.event.clone(), name: image.name.clone() });
            }
        }
        let mut built: Vec<Setting> = Vec::with_capacity(settings.len());
        for spec in settings {
            if spec.name.is_empty() || built.iter().any(|s| s.name == spec.name) {
                return Err(GroundTruthError::BadSettingName { name: spec.name });
            }
            if spec.keep.len() != images.len() {
                return Err(GroundTruthError::KeepListCount {
                    setting: spec.name,
                    expected: images.len(),
                    found: spec.keep.len(),
                });
            }
            let mut keep = Vec::with_capacity(images.len());
            for (image, faces) in images.iter().zip(&spec.keep) {
                let mut kept = vec![false; image.boxes.len()];
                for &face in faces {
                    match kept.get_mut(face) {
                        Some(flag) if !*flag => *flag = true,
                        _ => {
                            return Err(GroundTruthError::BadKeepIndex {
                                setting: spec.name,
                                event: image.event.clone(),
                                name: image.name.clone(),
                                index: face,
                                faces: image.boxes.len(),
                            });
                        }
                    }
                }
                keep.push(KeepList { kept, count: faces.len() });
            }
            let kept_faces = keep.iter().map(KeepList::len).sum();
            built.push(Setting { name: spec.name, keep, kept_faces });
        }
        Ok(Self { images, settings: built, index })
    }

    pub fn images(&self) -> &[GtImage] {
        &self.images
    }

    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.name == name)
    }

    /// Index into [`Self::images`] of the image `event`/`name`.
    pub fn find_image(&self, event: &str, name: &str) -> Option<usize> {
        self.index.get(event)?.get(name).copied()
    }

    /// Distinct events, in the order of their first image.
    pub fn events(&self) -> Vec<&str> {
        let mut events: Vec<&str> = Vec::new();
        for image in &self.images {
            if !events.contains(&image.event.as_str()) {
                events.push(&image.event);
            }
        }
        events
    }

    /// Number of face boxes over all images.
    pub fn face_count(&self) -> usize {
        self.images.iter().map(|i| i.boxes.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::test_support::official_gt;

    fn image(event: &str, name: &str, faces: usize) -> GtImage {
        GtImage {
            event: event.into(),
            name: name.into(),
            boxes: (0..faces).map(|i| FaceBox { x: 10.0 * i as f64, y: 0.0, w: 5.0, h: 5.0 }).collect(),
            details: Vec::new(),
        }
    }

    #[test]
    fn generic_constructor_builds_keep_lists() {
        let gt = GroundTruth::new(
            vec![image("e", "a", 3), image("e", "b", 0)],
            vec![SettingSpec { name: "all".into(), keep: vec![vec![2, 0], vec![]] }],
        );
        let gt = match gt {
            Ok(gt) => gt,
            Err(e) => panic!("{e}"),
        };
        let all = gt.setting("all").map(|s| (s.kept_faces(), s.keep_lists().len()));
        assert_eq!(all, Some((2, 2)));
        let keep = gt.settings()[0].keep(0).map(|k| k.iter().collect::<Vec<_>>());
        assert_eq!(keep, Some(vec![0, 2]));
        assert_eq!(gt.find_image("e", "b"), Some(1));
        assert_eq!(gt.events(), vec!["e"]);
        assert_eq!(gt.face_count(), 3);
    }

    #[test]
    fn generic_constructor_rejects_bad_input() {
        let spec = |keep: Vec<Vec<usize>>| SettingSpec { name: "all".into(), keep };
        let dup = GroundTruth::new(vec![image("e", "a", 1), image("e", "a", 1)], vec![spec(vec![vec![], vec![]])]);
        assert!(matches!(dup, Err(GroundTruthError::DuplicateImage { .. })));
        let out_of_range = GroundTruth::new(vec![image("e", "a", 2)], vec![spec(vec![vec![2]])]);
        assert!(matches!(out_of_range, Err(GroundTruthError::BadKeepIndex { index: 2, .. })));
        let repeated = GroundTruth::new(vec![image("e", "a", 2)], vec![spec(vec![vec![1, 1]])]);
        assert!(matches!(repeated, Err(GroundTruthError::BadKeepIndex { index: 1, .. })));
        let count = GroundTruth::new(vec![image("e", "a", 2)], vec![spec(vec![])]);
        assert!(matches!(count, Err(GroundTruthError::KeepListCount { found: 0, .. })));
        assert!(matches!(GroundTruth::new(vec![image("e", "a", 2)], vec![]), Err(GroundTruthError::NoSettings)));
        let mut nan = image("e", "a", 2);
        nan.boxes[1].w = f64::NAN;
        assert!(matches!(
            GroundTruth::new(vec![nan], vec![spec(vec![vec![]])]),
            Err(GroundTruthError::NonFiniteBox { face: 1, .. })
        ));
    }

    #[test]
    fn official_ground_truth_has_the_published_counts() {
        let Some(gt) = official_gt("official_ground_truth_has_the_published_counts") else {
            return;
        };
        assert_eq!(gt.events().len(), 61);
        assert_eq!(gt.images().len(), 3226);
        assert_eq!(gt.face_count(), 39708);
        let kept: Vec<(&str, usize)> = gt.settings().iter().map(|s| (s.name(), s.kept_faces())).collect();
        assert_eq!(kept, vec![("easy", 7211), ("medium", 13319), ("hard", 31958)]);
        let first = &gt.images()[0];
        assert_eq!(
            (first.event.as_str(), first.name.as_str(), first.boxes.len()),
            ("0--Parade", "0_Parade_marchingband_1_465", 126)
        );
        let hard = gt.setting("hard").and_then(|s| s.keep(0));
        assert_eq!(hard.map(|k| k.iter().collect::<Vec<_>>()), Some(vec![30, 31, 124]));
    }
}
