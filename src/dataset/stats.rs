//! Counts and histograms of a dataset, for `dataset stats` and the studio's Dataset panel.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Attributes, Blur, Dataset, Expression, Illumination, Occlusion, Pose, Split};

/// Upper edges (exclusive) of the face-size bins, in pixels of the face's longer side: the WIDER
/// FACE scale groups people talk about (tiny < 10 px … large ≥ 300 px).
pub const SIZE_BINS: [(&str, f32); 7] = [
    ("<10", 10.0),
    ("10-20", 20.0),
    ("20-50", 50.0),
    ("50-100", 100.0),
    ("100-200", 200.0),
    ("200-300", 300.0),
    (">=300", f32::INFINITY),
];

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SplitStats {
    pub images: usize,
    pub faces: usize,
    pub faces_with_landmarks: usize,
    pub invalid_faces: usize,
    pub images_without_faces: usize,
    pub events: usize,
    /// Faces per size bin (`SIZE_BINS`), by the longer box side.
    pub face_sizes: BTreeMap<&'static str, usize>,
    /// Per attribute name, faces per value name; faces without attributes are not counted.
    pub attributes: BTreeMap<&'static str, BTreeMap<&'static str, usize>>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DatasetStats {
    pub splits: BTreeMap<&'static str, SplitStats>,
}

impl DatasetStats {
    pub fn of(dataset: &Dataset) -> DatasetStats {
        DatasetStats { splits: dataset.splits.iter().map(|s| (s.kind.name(), SplitStats::of(s))).collect() }
    }
}

impl SplitStats {
    pub fn of(split: &Split) -> SplitStats {
        let mut stats = SplitStats {
            images: split.images.len(),
            face_sizes: SIZE_BINS.iter().map(|(name, _)| (*name, 0)).collect(),
            ..SplitStats::default()
        };
        let mut events = BTreeSet::new();
        for image in &split.images {
            events.insert(image.event());
            if image.faces.is_empty() && split.is_annotated() {
                stats.images_without_faces += 1;
            }
            for face in &image.faces {
                stats.faces += 1;
                stats.faces_with_landmarks += usize::from(face.landmarks.is_some());
                stats.invalid_faces += usize::from(face.is_invalid());
                let side = face.bbox.width().max(face.bbox.height());
                let bin = SIZE_BINS.iter().find(|(_, upper)| side < *upper).map_or(">=300", |(name, _)| name);
                *stats.face_sizes.entry(bin).or_default() += 1;
                if let Some(a) = face.attributes {
                    stats.count_attributes(a);
                }
            }
        }
        stats.events = events.len();
        stats
    }

    fn count_attributes(&mut self, a: Attributes) {
        let mut add = |attribute: &'static str, value: &'static str| {
            *self.attributes.entry(attribute).or_default().entry(value).or_default() += 1;
        };
        add(Blur::FIELD, a.blur.name());
        add(Expression::FIELD, a.expression.name());
        add(Illumination::FIELD, a.illumination.name());
        add("invalid", if a.invalid { "True" } else { "False" });
        add(Occlusion::FIELD, a.occlusion.name());
        add(Pose::FIELD, a.pose.name());
    }
}
