//! COCO keypoints JSON, as pycocotools, mmpose and CVAT's COCO importer read it: `images` (id,
//! `file_name` relative to the images folder, width, height), one category `face` (id 1) whose
//! keypoints are [`LANDMARK_NAMES`] with a skeleton, and per face an annotation with
//! `bbox [x, y, w, h]`, `keypoints` (`x, y, v` for each landmark: v = 2 visible, 1 occluded,
//! 0 missing; a face without landmarks has fifteen zeros), `num_keypoints`, `area`, `iscrowd` 0,
//! the WIDER attributes and the invalid flag under `attributes` (`{"blur": "clear", …,
//! "invalid": false}`; absent for a face without attributes) and the RetinaFace `score` where the
//! face has one.
//!
//! Everything a face holds is carried: coordinates are written as the shortest decimal that reads
//! back to the same `f32`, and a box's width and height as the exact difference of its corners
//! (an `f64`), which an import adds back in `f64`, so `x + w` is the far corner again, to the bit
//! (for any box whose far corner is not 2²⁸ times smaller than its size: one in pixels of an
//! image). An import reads the category named `face` only, takes the landmarks by keypoint name
//! (any order; other keypoints are ignored), takes the attributes present (the missing ones
//! default, unknown keys ignored), reads `iscrowd: 1` (a crowd region, not one face) as a face
//! marked invalid unless its attributes say `"invalid": false`, and does not read `area`,
//! `num_keypoints` or `segmentation` (they follow from the rest or have no WIDER meaning).

use std::collections::HashMap;
use std::path::Path;

use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

use super::{
    AnnotatedImage, FACE_LABEL, InterchangeError, LANDMARK_NAMES, Listed, PartialAttributes, Position,
    normalized_image_path,
};
use crate::dataset::{Face, FaceLandmarks, LandmarkFlag, Origin, SplitKind};
use crate::geometry::{BBox, Landmarks, Point};

/// The face category's id in an export.
const FACE_CATEGORY: u64 = 1;

/// Lines between the five landmarks (1-based keypoint indices, as COCO's skeletons): the eyes,
/// each eye to the nose, the nose to each mouth corner, the mouth.
const SKELETON: [[usize; 2]; 6] = [[1, 2], [1, 3], [2, 3], [3, 4], [3, 5], [4, 5]];

#[derive(Serialize, Deserialize)]
struct CocoFile {
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    info: Option<Info>,
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    categories: Vec<Category>,
}

#[derive(Serialize, Default)]
struct Info {
    description: String,
}

#[derive(Serialize, Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Serialize, Deserialize)]
struct Category {
    id: u64,
    name: String,
    #[serde(skip_deserializing)]
    supercategory: String,
    #[serde(default)]
    keypoints: Option<Vec<String>>,
    #[serde(skip_deserializing)]
    skeleton: Vec<[usize; 2]>,
}

#[derive(Serialize, Deserialize)]
struct CocoAnnotation {
    id: u64,
    image_id: u64,
    category_id: u64,
    /// `[x, y, w, h]`: the corner as `f32` values hold it, the size as the `f64` difference of the
    /// corners.
    #[serde(serialize_with = "corner_and_size")]
    bbox: [f64; 4],
    #[serde(skip_deserializing)]
    area: f64,
    #[serde(default)]
    iscrowd: u8,
    #[serde(default, serialize_with = "keypoints_with_integer_visibility")]
    keypoints: Option<Vec<f32>>,
    #[serde(skip_deserializing)]
    num_keypoints: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attributes: Option<PartialAttributes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
}

/// The corner as the shortest decimal of its `f32` (`123.86934`, not `123.86933898925781`), the
/// size as the shortest decimal of its `f64`.
fn corner_and_size<S: Serializer>(bbox: &[f64; 4], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(4))?;
    seq.serialize_element(&(bbox[0] as f32))?;
    seq.serialize_element(&(bbox[1] as f32))?;
    seq.serialize_element(&bbox[2])?;
    seq.serialize_element(&bbox[3])?;
    seq.end()
}

/// Coordinates as floats, each visibility as the integer COCO tools write (`2`, not `2.0`).
fn keypoints_with_integer_visibility<S: Serializer>(
    values: &Option<Vec<f32>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let values = values.as_deref().unwrap_or_default();
    let mut seq = serializer.serialize_seq(Some(values.len()))?;
    for (i, v) in values.iter().enumerate() {
        if i % 3 == 2 {
            seq.serialize_element(&(*v as u8))?;
        } else {
            seq.serialize_element(v)?;
        }
    }
    seq.end()
}

fn visibility(flag: LandmarkFlag) -> f32 {
    match flag {
        LandmarkFlag::Visible => 2.0,
        LandmarkFlag::Occluded => 1.0,
    }
}

/// The COCO file of a split's images (ids from 1, in the split's order).
pub fn write(images: &[AnnotatedImage], kind: SplitKind) -> String {
    let mut annotations = Vec::new();
    for (i, image) in images.iter().enumerate() {
        for face in &image.faces {
            // The difference of two f32 values is exact in f64 (within 2²⁹ of each other in scale).
            let [x1, y1, x2, y2] = face.bbox.corners().map(f64::from);
            let (w, h) = (x2 - x1, y2 - y1);
            let (keypoints, num_keypoints) = match &face.landmarks {
                Some(lm) => {
                    let values = lm.points.points.iter().zip(lm.flags).flat_map(|(p, f)| [p.x, p.y, visibility(f)]);
                    (values.collect(), LANDMARK_NAMES.len())
                }
                None => (vec![0.0; 3 * LANDMARK_NAMES.len()], 0),
            };
            annotations.push(CocoAnnotation {
                id: annotations.len() as u64 + 1,
                image_id: i as u64 + 1,
                category_id: FACE_CATEGORY,
                bbox: [x1, y1, w, h],
                area: w * h,
                iscrowd: 0,
                keypoints: Some(keypoints),
                num_keypoints,
                attributes: face.attributes.map(PartialAttributes::from),
                score: face.score,
            });
        }
    }
    let file = CocoFile {
        info: Some(Info { description: format!("facestudio export of the {} split", kind.name()) }),
        images: images
            .iter()
            .enumerate()
            .map(|(i, image)| CocoImage {
                id: i as u64 + 1,
                file_name: image.path.clone(),
                width: image.width,
                height: image.height,
            })
            .collect(),
        annotations,
        categories: vec![Category {
            id: FACE_CATEGORY,
            name: FACE_LABEL.into(),
            supercategory: FACE_LABEL.into(),
            keypoints: Some(LANDMARK_NAMES.map(String::from).to_vec()),
            skeleton: SKELETON.to_vec(),
        }],
    };
    // Plain structs of strings, integers and finite floats: serde_json has nothing to refuse.
    serde_json::to_string(&file).expect("a COCO file always serializes")
}

/// Reads a COCO keypoints file. Syntax and type errors name serde_json's line and column; a
/// problem with a value names the image or annotation id.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Listed, InterchangeError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let file: CocoFile = serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text);
        InterchangeError::malformed(path, Position::LineColumn(e.line(), e.column()), message)
    })?;
    let Some(category) = file.categories.iter().find(|c| c.name == FACE_LABEL) else {
        let names: Vec<&str> = file.categories.iter().map(|c| c.name.as_str()).collect();
        let message = format!("no category named \"{FACE_LABEL}\" (found {names:?})");
        return Err(InterchangeError::malformed(path, Position::Item("categories".into()), message));
    };
    let keypoint_names = category.keypoints.as_deref().unwrap_or_default();
    let order = keypoint_order(keypoint_names).map_err(|message| {
        InterchangeError::malformed(path, Position::Item(format!("category \"{FACE_LABEL}\"")), message)
    })?;
    let mut index = HashMap::with_capacity(file.images.len());
    let mut images = Vec::with_capacity(file.images.len());
    let mut positions = Vec::with_capacity(file.images.len());
    for image in file.images {
        let position = || Position::Item(format!("image id {}", image.id));
        let name = normalized_image_path(&image.file_name)
            .map_err(|message| InterchangeError::malformed(path, position(), message))?;
        if index.insert(image.id, images.len()).is_some() {
            return Err(InterchangeError::malformed(path, position(), "the image id is used twice"));
        }
        images.push(AnnotatedImage { path: name, width: image.width, height: image.height, faces: Vec::new() });
        positions.push(position());
    }
    for annotation in file.annotations.into_iter().filter(|a| a.category_id == category.id) {
        let position = Position::Item(format!("annotation id {}", annotation.id));
        let Some(&i) = index.get(&annotation.image_id) else {
            let message = format!("image_id {} is not in \"images\"", annotation.image_id);
            return Err(InterchangeError::malformed(path, position, message));
        };
        let face = face_of(annotation, order, keypoint_names.len())
            .map_err(|message| InterchangeError::malformed(path, position, message))?;
        images[i].faces.push(face);
    }
    Ok(Listed { images, positions })
}

/// Where each of [`LANDMARK_NAMES`] is among the category's keypoints; `None` when it names none.
fn keypoint_order(names: &[String]) -> Result<Option<[usize; 5]>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut order = [0; 5];
    for (slot, wanted) in order.iter_mut().zip(LANDMARK_NAMES) {
        *slot = names.iter().position(|n| n == wanted).ok_or_else(|| {
            format!("keypoints: expected the names {LANDMARK_NAMES:?} (in any order), found {names:?}")
        })?;
    }
    Ok(Some(order))
}

/// The box of `[x, y, w, h]`: the corner as `f32`, the far corner the `f64` sum rounded to `f32`
/// (exactly the far corner an export wrote).
fn bbox_of(xywh: [f64; 4]) -> Result<BBox, String> {
    // serde_json reads only finite f64 values (a larger number is its error); an f32 or a sum
    // can still be out of range, which BBox::new refuses.
    let [x, y, w, h] = xywh;
    if w < 0.0 || h < 0.0 {
        return Err(format!("bbox {xywh:?}: a box has no negative width or height"));
    }
    let (x1, y1) = (x as f32, y as f32);
    let (x2, y2) = ((f64::from(x1) + w) as f32, (f64::from(y1) + h) as f32);
    BBox::new(x1, y1, x2, y2).map_err(|e| format!("bbox {xywh:?}: {e} (beyond the range of a coordinate)"))
}

fn face_of(annotation: CocoAnnotation, order: Option<[usize; 5]>, keypoint_count: usize) -> Result<Face, String> {
    let bbox = bbox_of(annotation.bbox)?;
    let crowd = match annotation.iscrowd {
        0 => false,
        1 => true,
        other => return Err(format!("iscrowd: expected 0 or 1, found {other}")),
    };
    let keypoints = annotation.keypoints.unwrap_or_default();
    let landmarks = match order {
        _ if keypoints.is_empty() => None,
        None => return Err("keypoints are given but the face category names none".into()),
        Some(order) => {
            if keypoints.len() != 3 * keypoint_count {
                return Err(format!(
                    "keypoints has {} values, expected {} (x, y, v for each of the category's {keypoint_count} keypoints)",
                    keypoints.len(),
                    3 * keypoint_count
                ));
            }
            landmarks_of(&keypoints, order)?
        }
    };
    if let Some(score) = annotation.score.filter(|s| !s.is_finite()) {
        return Err(format!("score: expected a finite number, found {score}"));
    }
    let mut attributes = annotation.attributes.unwrap_or_default();
    // A crowd region is not a face to train on; an explicit `"invalid": false` still wins.
    if crowd && attributes.invalid.is_none() {
        attributes.invalid = Some(true);
    }
    Ok(Face {
        bbox,
        landmarks,
        attributes: attributes.into_attributes(),
        score: annotation.score,
        origin: Origin::default(),
    })
}

/// The five landmarks from `x, y, v` triples: all missing (v = 0) is a face without landmarks;
/// some missing is an error, as the dataset keeps all five or none.
fn landmarks_of(values: &[f32], order: [usize; 5]) -> Result<Option<FaceLandmarks>, String> {
    let triple = |k: usize| [values[3 * order[k]], values[3 * order[k] + 1], values[3 * order[k] + 2]];
    if (0..5).all(|k| triple(k)[2] == 0.0) {
        return Ok(None);
    }
    let mut points = [Point::default(); 5];
    let mut flags = [LandmarkFlag::Visible; 5];
    for k in 0..5 {
        let [x, y, v] = triple(k);
        let name = LANDMARK_NAMES[k];
        flags[k] = match v {
            2.0 => LandmarkFlag::Visible,
            1.0 => LandmarkFlag::Occluded,
            0.0 => {
                return Err(format!(
                    "keypoint {name} is missing (v = 0) while others are given; a face has all five landmarks or none"
                ));
            }
            _ => return Err(format!("keypoint {name}: v is {v}; expected 0 (missing), 1 (occluded) or 2 (visible)")),
        };
        if !x.is_finite() || !y.is_finite() {
            return Err(format!("keypoint {name}: expected finite coordinates, found {x}, {y}"));
        }
        points[k] = Point::new(x, y);
    }
    Ok(Some(FaceLandmarks { points: Landmarks { points }, flags }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Attributes, Blur};
    use crate::interchange::tests::sample_images;

    fn parse_text(text: &str) -> Result<Vec<AnnotatedImage>, InterchangeError> {
        parse(Path::new("faces.json"), text.as_bytes()).map(|listed| listed.images)
    }

    #[test]
    fn round_trip_keeps_every_face_landmark_flag_attribute_and_score() {
        let images = sample_images();
        let back = parse_text(&write(&images, SplitKind::Train)).unwrap();
        assert_eq!(back, images);
    }

    #[test]
    fn export_has_the_keypoint_layout_coco_tools_expect() {
        let images = sample_images();
        let json: serde_json::Value = serde_json::from_str(&write(&images, SplitKind::Val)).unwrap();
        let category = &json["categories"][0];
        assert_eq!(category["name"], "face");
        assert_eq!(category["keypoints"], serde_json::json!(LANDMARK_NAMES));
        let first = &json["annotations"][0];
        assert_eq!(first["iscrowd"], 0);
        assert_eq!(first["num_keypoints"], 5);
        assert_eq!(first["keypoints"].as_array().unwrap().len(), 15);
        assert!(first["keypoints"][2].is_u64(), "visibility is an integer: {}", first["keypoints"][2]);
        let occluded = json["annotations"].as_array().unwrap().iter().find(|a| a["keypoints"][5] == 1).unwrap();
        assert_eq!(occluded["attributes"]["invalid"], true);
        assert_eq!(occluded["attributes"]["blur"], "heavy");
    }

    #[test]
    fn truncated_json_names_the_file_line_and_column() {
        let text = write(&sample_images(), SplitKind::Train);
        let err = parse_text(&text[..text.len() / 2]).unwrap_err();
        assert!(
            matches!(&err, InterchangeError::Malformed { position: Position::LineColumn(1, c), .. } if *c > 1),
            "{err}"
        );
        assert!(err.to_string().starts_with("faces.json:1:"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_line_and_column() {
        let err = parse_text("{\"images\": [\n{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": \"wide\", \"height\": 2}],\n\"categories\": []}")
            .unwrap_err();
        assert!(matches!(err, InterchangeError::Malformed { position: Position::LineColumn(2, _), .. }), "{err}");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn a_file_name_leaving_the_images_folder_is_rejected_by_name() {
        let text = r#"{"images": [{"id": 3, "file_name": "../secret/x.jpg", "width": 4, "height": 4}],
            "categories": [{"id": 1, "name": "face"}]}"#;
        let err = parse_text(text).unwrap_err().to_string();
        assert!(err.contains("image id 3") && err.contains("../secret/x.jpg") && err.contains("leaves"), "{err}");
        let absolute = text.replace("../secret/x.jpg", "/etc/x.jpg");
        assert!(parse_text(&absolute).unwrap_err().to_string().contains("/etc/x.jpg"));
    }

    #[test]
    fn some_keypoints_missing_is_an_error_naming_the_annotation() {
        let text = r#"{"images": [{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}],
            "annotations": [{"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4],
              "keypoints": [1, 1, 2, 2, 1, 2, 0, 0, 0, 3, 3, 2, 4, 3, 2]}],
            "categories": [{"id": 1, "name": "face", "keypoints": ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]}]}"#;
        let err = parse_text(text).unwrap_err().to_string();
        assert!(err.contains("annotation id 8") && err.contains("nose is missing"), "{err}");
    }

    #[test]
    fn keypoints_are_taken_by_name_whatever_their_order() {
        let text = r#"{"images": [{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 8, 8],
              "keypoints": [5, 6, 2, 1, 2, 2, 7, 2, 1, 3, 4, 2, 2, 6, 2, 9, 9, 2]}],
            "categories": [{"id": 7, "name": "face",
              "keypoints": ["nose", "left_eye", "right_eye", "chin", "mouth_left", "mouth_right"]}]}"#;
        let images = parse_text(text).unwrap();
        let lm = images[0].faces[0].landmarks.unwrap();
        assert_eq!(lm.points.to_flat(), [1.0, 2.0, 7.0, 2.0, 5.0, 6.0, 2.0, 6.0, 9.0, 9.0]);
        assert_eq!(lm.flags[1], LandmarkFlag::Occluded, "right_eye had v = 1");
    }

    #[test]
    fn an_annotation_of_an_unknown_image_is_an_error() {
        let text = r#"{"images": [], "annotations": [{"id": 4, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}],
            "categories": [{"id": 1, "name": "face"}]}"#;
        let err = parse_text(text).unwrap_err().to_string();
        assert!(err.contains("annotation id 4") && err.contains("image_id 2"), "{err}");
    }

    fn one_box(x1: f32, y1: f32, x2: f32, y2: f32) -> Vec<AnnotatedImage> {
        let face = Face {
            bbox: BBox::new(x1, y1, x2, y2).unwrap(),
            landmarks: None,
            attributes: None,
            score: None,
            origin: Origin::default(),
        };
        vec![AnnotatedImage { path: "a.jpg".into(), width: 2000, height: 2000, faces: vec![face] }]
    }

    #[test]
    fn a_box_whose_f32_width_would_round_reads_back_to_the_same_corners() {
        // In f32, 494.01431 − 123.86934 rounds, and 123.86934 + that reads back 494.01428.
        let (x1, x2) = (123.86934f32, 494.01431f32);
        assert_ne!(x1 + (x2 - x1), x2, "the case f32 arithmetic gets wrong");
        let images = one_box(x1, 7.25, x2, 300.5);
        let text = write(&images, SplitKind::Train);
        assert!(text.contains("\"bbox\":[123.86934,7.25,"), "the corner as its f32 decimal: {text}");
        assert_eq!(parse_text(&text).unwrap(), images);
    }

    proptest::proptest! {
        /// Any box in pixels of an image (corners within ±20000, any fraction) reads back to the
        /// same f32 corners, to the bit.
        #[test]
        fn boxes_read_back_exactly(a in -20000.0f32..20000.0, b in -20000.0f32..20000.0,
                                   c in -20000.0f32..20000.0, d in -20000.0f32..20000.0) {
            let images = one_box(a.min(b), c.min(d), a.max(b), c.max(d));
            let back = parse_text(&write(&images, SplitKind::Train)).unwrap();
            proptest::prop_assert_eq!(back[0].faces[0].bbox.corners(), images[0].faces[0].bbox.corners());
        }
    }

    #[test]
    fn a_crowd_region_is_an_invalid_face_unless_its_attributes_say_otherwise() {
        let file = |annotation: &str| {
            format!(
                r#"{{"images": [{{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}}],
                "annotations": [{annotation}], "categories": [{{"id": 1, "name": "face"}}]}}"#
            )
        };
        let face = |annotation: &str| parse_text(&file(annotation)).unwrap()[0].faces[0].attributes;
        let crowd = r#"{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": 1"#;
        assert_eq!(face(&format!("{crowd}}}")), Some(Attributes { invalid: true, ..Attributes::default() }));
        let blurred = format!(r#"{crowd}, "attributes": {{"blur": "heavy"}}}}"#);
        assert_eq!(face(&blurred), Some(Attributes { invalid: true, blur: Blur::Heavy, ..Attributes::default() }));
        let kept = format!(r#"{crowd}, "attributes": {{"invalid": false}}}}"#);
        assert_eq!(face(&kept), Some(Attributes::default()), "an explicit invalid: false wins");
        let single = r#"{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": 0}"#;
        assert_eq!(face(single), None);
        let odd = r#"{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": 3}"#;
        let err = parse_text(&file(odd)).unwrap_err().to_string();
        assert!(err.contains("annotation id 5") && err.contains("iscrowd"), "{err}");
    }

    #[test]
    fn numbers_beyond_the_range_of_a_coordinate_are_refused_by_field() {
        let file = |annotation: &str| {
            format!(
                r#"{{"images": [{{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}}],
                "annotations": [{{"id": 6, "image_id": 1, "category_id": 1, {annotation}}}],
                "categories": [{{"id": 1, "name": "face", "keypoints": {LANDMARK_NAMES:?}}}]}}"#
            )
        };
        let keypoints = |first: &str| format!("[{first}, 1, 2, 2, 2, 2, 3, 3, 2, 4, 4, 2, 5, 5, 2]");
        for (annotation, field) in [
            (r#""bbox": [1e300, 0, 4, 4]"#.to_string(), "x1"),
            (r#""bbox": [0, 0, 1e300, 4]"#.to_string(), "x2"),
            (r#""bbox": [0, 0, 4, 4], "score": 1e39"#.to_string(), "score"),
            (format!(r#""bbox": [0, 0, 4, 4], "keypoints": {}"#, keypoints("1e39")), "left_eye"),
        ] {
            let err = parse_text(&file(&annotation)).unwrap_err().to_string();
            assert!(err.contains("annotation id 6") && err.contains(field), "{annotation}: {err}");
        }
        let err = parse_text(&file(r#""bbox": [NaN, 0, 4, 4]"#)).unwrap_err().to_string();
        assert!(err.starts_with("faces.json:2:") && err.contains("expected value"), "JSON has no NaN: {err}");
    }

    #[test]
    fn a_file_without_a_face_category_says_what_it_found() {
        let err = parse_text(r#"{"images": [], "categories": [{"id": 1, "name": "person"}]}"#).unwrap_err().to_string();
        assert!(err.contains("categories") && err.contains("person"), "{err}");
    }
}
