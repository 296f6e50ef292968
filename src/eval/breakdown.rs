//! AP by face size and by attribute, with the protocol's own ignore mechanism: a bucket is a
//! setting whose keep list is the base setting's intersected with the bucket, so a prediction on
//! a face outside the bucket is ignored exactly as one on a face outside a setting's keep list.

use serde::{Deserialize, Serialize};

use super::evaluator::evaluate;
use super::ground_truth::{FaceBox, FaceDetails, GroundTruth, SettingSpec};
use super::options::EvalOptions;
use super::predictions::Predictions;
use crate::dataset::{Attributes, Blur, Expression, Illumination, Occlusion, Pose};

/// COCO's size buckets by annotated box area: small < 32², medium 32²–96², large ≥ 96².
pub const SIZE_BUCKETS: [&str; 3] = ["small", "medium", "large"];

/// The AP of one bucket of one setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketResult {
    pub setting: String,
    /// `size`, or an attribute: `blur`, `occlusion`, `pose`, `illumination`, `expression`.
    pub group: String,
    pub bucket: String,
    pub ap: f64,
    /// Faces of the setting in the bucket.
    pub faces: usize,
}

fn size_bucket(b: &FaceBox) -> &'static str {
    let area = b.w * b.h;
    if area < 32.0 * 32.0 {
        "small"
    } else if area < 96.0 * 96.0 {
        "medium"
    } else {
        "large"
    }
}

type AttributeValue = fn(&Attributes) -> &'static str;

/// Each attribute's group name, its values' names and how to read it from a face.
fn attribute_groups() -> Vec<(&'static str, Vec<&'static str>, AttributeValue)> {
    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| name(*v)).collect()
    }
    vec![
        ("blur", names(Blur::ALL, Blur::name), |a| a.blur.name()),
        ("occlusion", names(Occlusion::ALL, Occlusion::name), |a| a.occlusion.name()),
        ("pose", names(Pose::ALL, Pose::name), |a| a.pose.name()),
        ("illumination", names(Illumination::ALL, Illumination::name), |a| a.illumination.name()),
        ("expression", names(Expression::ALL, Expression::name), |a| a.expression.name()),
    ]
}

/// AP per size bucket, and per attribute value where the ground truth has attributes, for every
/// setting of `gt`. Bucket names are lower case (`clear`, `heavy`, …).
pub fn breakdown(gt: &GroundTruth, predictions: &Predictions, options: &EvalOptions) -> Vec<BucketResult> {
    let images = gt.images();
    let has_attributes = images.iter().any(|i| i.details.iter().any(|d| d.attributes.is_some()));
    // (group, bucket, which faces of an image it holds)
    let mut buckets: Vec<(&str, String, Box<dyn Fn(&FaceBox, Option<&FaceDetails>) -> bool>)> = Vec::new();
    for size in SIZE_BUCKETS {
        buckets.push(("size", size.to_string(), Box::new(move |b, _| size_bucket(b) == size)));
    }
    if has_attributes {
        for (group, values, read) in attribute_groups() {
            for value in values {
                buckets.push((
                    group,
                    value.to_lowercase(),
                    Box::new(move |_, d| d.and_then(|d| d.attributes.as_ref()).is_some_and(|a| read(a) == value)),
                ));
            }
        }
    }
    let mut specs = Vec::new();
    let mut labels = Vec::new();
    for setting in gt.settings() {
        for (group, bucket, holds) in &buckets {
            let keep = images
                .iter()
                .zip(setting.keep_lists())
                .map(|(image, keep)| keep.iter().filter(|&f| holds(&image.boxes[f], image.details.get(f))).collect())
                .collect();
            specs.push(SettingSpec { name: format!("{}/{group}/{bucket}", setting.name()), keep });
            labels.push((setting.name().to_string(), group.to_string(), bucket.clone()));
        }
    }
    let Ok(bucketed) = GroundTruth::new(images.to_vec(), specs) else {
        unreachable!("the buckets' keep lists are subsets of valid ones, named uniquely")
    };
    let report = evaluate(&bucketed, predictions, options);
    report
        .settings
        .into_iter()
        .zip(labels)
        .map(|(result, (setting, group, bucket))| BucketResult {
            setting,
            group,
            bucket,
            ap: result.ap,
            faces: result.faces,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{GtImage, PredictedBox};

    fn face(x: f64, size: f64) -> FaceBox {
        FaceBox { x, y: 0.0, w: size, h: size }
    }

    /// A bucket's AP is the AP of a run whose keep lists hold only the bucket's faces.
    #[test]
    fn a_buckets_ap_equals_a_filtered_runs() {
        let boxes = vec![face(0.0, 20.0), face(100.0, 50.0), face(300.0, 120.0), face(500.0, 25.0)];
        let details: Vec<FaceDetails> = [Blur::Clear, Blur::Heavy, Blur::Clear, Blur::Normal]
            .into_iter()
            .map(|blur| FaceDetails { attributes: Some(Attributes { blur, ..Attributes::default() }), landmarks: None })
            .collect();
        let image = GtImage { event: "e".into(), name: "a".into(), boxes: boxes.clone(), details };
        let gt = GroundTruth::new(
            vec![image.clone()],
            vec![SettingSpec { name: "all".into(), keep: vec![vec![0, 1, 2, 3]] }],
        )
        .unwrap();
        // Finds the small face at 0 and the large one, misses the small one at 500, one false positive.
        let mut predictions = Predictions::new();
        let det = |b: &FaceBox, score| PredictedBox { x: b.x, y: b.y, w: b.w, h: b.h, score, landmarks: None };
        predictions
            .insert(
                "e",
                "a",
                vec![det(&boxes[0], 0.9), det(&boxes[2], 0.8), det(&face(800.0, 30.0), 0.85), det(&boxes[1], 0.3)],
            )
            .unwrap();
        let results = breakdown(&gt, &predictions, &EvalOptions::OFFICIAL);
        let get = |group: &str, bucket: &str| results.iter().find(|r| r.group == group && r.bucket == bucket).unwrap();
        for (group, bucket, keep) in [
            ("size", "small", vec![0, 3]),
            ("size", "medium", vec![1]),
            ("size", "large", vec![2]),
            ("blur", "clear", vec![0, 2]),
        ] {
            let filtered =
                GroundTruth::new(vec![image.clone()], vec![SettingSpec { name: "x".into(), keep: vec![keep.clone()] }])
                    .unwrap();
            let expected = evaluate(&filtered, &predictions, &EvalOptions::OFFICIAL).settings[0].ap;
            assert_eq!(get(group, bucket).ap, expected, "{group}/{bucket}");
            assert_eq!(get(group, bucket).faces, keep.len());
        }
        assert_eq!(get("blur", "heavy").faces, 1);
        assert_eq!(results.len(), 3 + 3 + 3 + 2 + 2 + 2, "sizes and every attribute value");
        let no_attributes = GroundTruth::new(
            vec![GtImage { details: Vec::new(), ..image }],
            vec![SettingSpec { name: "all".into(), keep: vec![vec![0, 1, 2, 3]] }],
        )
        .unwrap();
        assert_eq!(breakdown(&no_attributes, &predictions, &EvalOptions::OFFICIAL).len(), 3, "sizes only");
    }
}
