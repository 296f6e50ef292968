//! YOLO-face labels, the layout yolov5-face and yolov8-face train on: per image a text file with
//! one line per face, `0 cx cy w h x1 y1 x2 y2 x3 y3 x4 y4 x5 y5` (class 0, the box centre and
//! size, then the landmarks in the crate's order), every x divided by the image width and every
//! y by its height, six decimals; a face without landmarks has all ten landmark values `-1`.
//!
//! An import also reads the ultralytics pose layout with `kpt_shape: [5, 3]`: per face
//! `0 cx cy w h x1 y1 v1 … x5 y5 v5`, v = 2 visible, 1 occluded, 0 missing (a face without
//! landmarks has every v 0), so its landmark flags are carried.
//!
//! An export folder is laid out as ultralytics expects: `images/<split>/<path>` (hard links to
//! the dataset's images, copies where linking fails), `labels/<split>/<path with .txt>` (an
//! image without faces gets an empty file) and the list `<split>.txt` of `./images/<split>/<path>`
//! lines. yolov5 and ultralytics read `./` entries relative to the list's folder and find each
//! label by replacing the last `images` folder of the image's path with `labels` and the
//! extension with `.txt`; an import finds them the same way.
//!
//! Not carried by an export: the WIDER attributes and the invalid flag (every face is one to
//! train on), the landmark flags (occluded points read back visible), the RetinaFace score, and
//! positions beyond
//! six decimals of the image size (a value is within half a millionth of the width or height, a
//! box corner, centre ± half the size, within a millionth).

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use super::{
    AnnotatedImage, InterchangeError, Listed, Position, image_size, normalized_image_path, read_bounded, resolve_image,
    resolved, utf8,
};
use crate::dataset::{Face, FaceLandmarks, LandmarkFlag, Origin, SplitKind};
use crate::geometry::{BBox, Landmarks, Point};

/// The names of a label line's first five values, for errors.
const BOX_FIELDS: [&str; 5] = ["class", "cx", "cy", "w", "h"];

/// The name of value `k` of a label line whose landmarks have `per_point` values each (`x y`, or
/// `x y v` in the pose layout), for errors: `cx`, `landmark 3 y`.
fn field_name(per_point: usize, k: usize) -> String {
    match k.checked_sub(BOX_FIELDS.len()) {
        None => BOX_FIELDS[k].into(),
        Some(j) => format!("landmark {} {}", j / per_point, ["x", "y", "v"][j % per_point]),
    }
}

/// Where an export puts the image `path` of a `kind` split, relative to the export folder.
pub fn image_entry(kind: SplitKind, path: &str) -> String {
    format!("images/{}/{path}", kind.name())
}

/// The label file of an image, by the YOLO rule: the last `images` folder of its path becomes
/// `labels` and the extension `.txt`. `None` when the path has no `images` folder.
fn label_path(image: &Path) -> Option<PathBuf> {
    let components: Vec<Component> = image.components().collect();
    let at = components.iter().rposition(|c| c.as_os_str() == "images")?;
    let mut label: PathBuf = components[..at].iter().collect();
    label.push("labels");
    label.extend(&components[at + 1..]);
    label.set_extension("txt");
    Some(label)
}

/// The label files and the list of an export to `out`, in the order to write them (the list
/// last, so that it only names a complete set). Image paths are relative to `images_dir`.
pub fn files(
    images: &[AnnotatedImage],
    kind: SplitKind,
    out: &Path,
    images_dir: &Path,
) -> Result<Vec<(PathBuf, Vec<u8>)>, InterchangeError> {
    let mut files = Vec::with_capacity(images.len() + 1);
    let mut owners: std::collections::HashMap<PathBuf, &str> = std::collections::HashMap::new();
    let mut list = String::new();
    for image in images {
        if image.width == 0 || image.height == 0 {
            let message = "the image has no pixels (width or height 0): YOLO coordinates are fractions of its size";
            return Err(InterchangeError::ImageSize { path: images_dir.join(&image.path), message: message.into() });
        }
        let entry = image_entry(kind, &image.path);
        // The entry starts with `images/`, so it always has a label path.
        let label = out.join(label_path(Path::new(&entry)).unwrap_or_default());
        if let Some(first) = owners.insert(label.clone(), &image.path) {
            return Err(InterchangeError::LabelClash { first: first.into(), second: image.path.clone(), label });
        }
        files.push((label, label_text(image).into_bytes()));
        list.push_str("./");
        list.push_str(&entry);
        list.push('\n');
    }
    files.push((out.join(format!("{}.txt", kind.name())), list.into_bytes()));
    Ok(files)
}

/// One line per face, normalised to the image size.
pub fn label_text(image: &AnnotatedImage) -> String {
    let (width, height) = (f64::from(image.width), f64::from(image.height));
    let mut out = String::new();
    for face in &image.faces {
        let [x1, y1, x2, y2] = face.bbox.corners().map(f64::from);
        let (cx, cy) = ((x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height);
        let (w, h) = ((x2 - x1) / width, (y2 - y1) / height);
        // Writing into a String cannot fail.
        let _ = write!(out, "0 {cx:.6} {cy:.6} {w:.6} {h:.6}");
        match &face.landmarks {
            Some(lm) => {
                for p in lm.points.points {
                    let _ = write!(out, " {:.6} {:.6}", f64::from(p.x) / width, f64::from(p.y) / height);
                }
            }
            None => out.push_str(&" -1".repeat(10)),
        }
        out.push('\n');
    }
    out
}

/// Reads a YOLO-face split. `input` is the list file, or a folder: its `<split>.txt` where there
/// is one, else every image under `images_dir` (sorted by path; folders that are symlinks are not
/// followed). List entries are relative to the list's folder (with or without `./`) or absolute,
/// as ultralytics reads them, and must lie inside `images_dir` (whose real path is
/// `real_images`) once symlinks are followed. An image without a label file has no faces, as YOLO
/// reads it. Returns the file the images were listed in (for errors) and the images, each a
/// regular file inside the images folder.
pub fn read(
    input: &Path,
    images_dir: &Path,
    real_images: &Path,
    kind: SplitKind,
) -> Result<(PathBuf, Listed), InterchangeError> {
    let list = if input.is_dir() { input.join(format!("{}.txt", kind.name())) } else { input.to_path_buf() };
    let (source, listed) = if input.is_dir() && !list.exists() {
        let found = images_under(images_dir)?;
        let entries =
            found.into_iter().map(|rel| (Position::Item(format!("image {rel:?}")), rel.clone(), images_dir.join(rel)));
        (images_dir.to_path_buf(), entries.collect())
    } else {
        let entries = list_entries(&list, images_dir, real_images)?;
        (list, entries)
    };
    let mut images = Vec::with_capacity(listed.len());
    let mut positions = Vec::with_capacity(listed.len());
    for (position, rel, image_path) in listed {
        let real = resolve_image(&source, &position, &rel, &image_path, real_images)?;
        let (width, height) = image_size(&real)?;
        let Some(label) = label_path(&image_path) else {
            let message = format!(
                "the image {rel:?} is not in a folder named images: YOLO finds a label by replacing the images folder with labels"
            );
            return Err(InterchangeError::malformed(&source, position, message));
        };
        let faces = match std::fs::symlink_metadata(&label) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            _ => parse_label(&label, utf8(&label, &read_bounded(&label)?)?, width, height)?,
        };
        images.push(AnnotatedImage { path: rel, width, height, faces });
        positions.push(position);
    }
    Ok((source, Listed { images, positions }))
}

/// The entries of a list file: where the list names each, its path relative to `images_dir`
/// (the folder the entry is in, with symlinks resolved, then its name, so an image that is a
/// symlink keeps its own name), and the path as the list names it (where its label is found).
/// A relative entry with `..`, or one whose folder is not inside the images folder, is refused;
/// whether the image itself is a regular file inside it is [`resolve_image`]'s check.
fn list_entries(
    list: &Path,
    images_dir: &Path,
    real_images: &Path,
) -> Result<Vec<(Position, String, PathBuf)>, InterchangeError> {
    let bytes = read_bounded(list)?;
    let text = utf8(list, &bytes)?;
    let base = list.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.trim();
        if entry.is_empty() {
            continue;
        }
        let position = || Position::Line(i + 1);
        let named = if Path::new(entry).is_absolute() {
            PathBuf::from(entry)
        } else {
            let relative =
                normalized_image_path(entry).map_err(|m| InterchangeError::malformed(list, position(), m))?;
            base.join(relative)
        };
        let outside = || {
            let message = format!("the image {entry:?} is not inside the images folder {}", images_dir.display());
            InterchangeError::malformed(list, position(), message)
        };
        let (Some(folder), Some(name)) = (named.parent(), named.file_name().and_then(|n| n.to_str())) else {
            return Err(outside());
        };
        // A folder that does not exist is found inside or outside the images folder by name; the
        // missing image is then resolve_image's error.
        let real_folder = resolved(folder);
        let Ok(within) = real_folder.strip_prefix(real_images) else {
            return Err(outside());
        };
        let mut parts: Vec<String> =
            within.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        parts.push(name.to_string());
        entries.push((position(), parts.join("/"), named));
    }
    Ok(entries)
}

/// Every image file under `dir`, relative and `/`-separated, sorted. Not
/// [`crate::detect::collect_images`]: that walk follows folder symlinks (which may lead out of
/// the images folder, and an import takes only what is inside it) and lists a file reached by two
/// names once; here every regular file (or symlink to one) with an image extension under the
/// folder is an image of the split, by its own name.
fn images_under(dir: &Path) -> Result<Vec<String>, InterchangeError> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let folder = dir.join(&rel);
        let entries =
            std::fs::read_dir(&folder).map_err(|source| InterchangeError::Read { path: folder.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| InterchangeError::Read { path: folder.clone(), source })?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let kind = entry.file_type().map_err(|source| InterchangeError::Read { path: entry.path(), source })?;
            if kind.is_dir() {
                pending.push(rel.join(&name));
            } else if crate::detect::has_image_extension(Path::new(&name)) && entry.path().is_file() {
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).chain([name]).collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads one label file: lines of 15 values (class, box, five landmarks as `x y`), 20 (class,
/// box, five landmarks as `x y v`: the ultralytics pose layout with `kpt_shape: [5, 3]`) or 5
/// (class and box).
pub fn parse_label(path: &Path, text: &str, width: u32, height: u32) -> Result<Vec<Face>, InterchangeError> {
    let (width, height) = (f64::from(width), f64::from(height));
    let mut faces = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let error = |message: String| InterchangeError::malformed(path, Position::Line(i + 1), message);
        let tokens: Vec<&str> = line.split_ascii_whitespace().collect();
        let per_point = match tokens.len() {
            0 => continue,
            5 => 0,
            15 => 2,
            20 => 3,
            n => {
                return Err(error(format!(
                    "expected 15 values (class cx cy w h, five landmarks as x y), 20 (five landmarks as x y v) or 5 (class cx cy w h), found {n}"
                )));
            }
        };
        let field = |k: usize| field_name(per_point, k);
        let mut values = [0.0f64; 20];
        for (k, token) in tokens.iter().enumerate() {
            values[k] = token
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| error(format!("{}: expected a number, found {token:?}", field(k))))?;
        }
        if values[0] != 0.0 {
            return Err(error(format!("class: expected 0 (face, the only class), found {:?}", tokens[0])));
        }
        let [cx, cy, w, h] = [values[1], values[2], values[3], values[4]];
        if w < 0.0 || h < 0.0 {
            return Err(error(format!("w, h: a box has no negative size, found {w} {h}")));
        }
        // In pixels, a value can leave the range of an f32 coordinate (`1e300`).
        let pixels = |fields: &str, values: [f64; 2]| {
            let scaled = values.map(|v| v as f32);
            if scaled.iter().all(|v| v.is_finite()) {
                Ok(scaled)
            } else {
                let message = format!(
                    "{fields}: {} {} pixels in a {width}×{height} image is beyond the range of a coordinate",
                    values[0], values[1]
                );
                Err(error(message))
            }
        };
        let [x1, x2] = pixels("cx, w", [cx * width - w * width / 2.0, cx * width + w * width / 2.0])?;
        let [y1, y2] = pixels("cy, h", [cy * height - h * height / 2.0, cy * height + h * height / 2.0])?;
        let bbox = BBox::new(x1, y1, x2, y2).map_err(|e| error(format!("box: {e}")))?;
        let normalised = match per_point {
            0 => None,
            2 => landmarks_of(&values[5..15]).map_err(|k| {
                error(format!(
                    "{}: landmark {k} is -1 (missing) while others are given; a face has all five landmarks or none (all ten values -1)",
                    field(5 + 2 * k)
                ))
            })?,
            _ => pose_landmarks_of(&values[5..20]).map_err(|(k, message)| error(format!("{}: {message}", field(7 + 3 * k))))?,
        };
        let landmarks = match normalised {
            Some((lm, flags)) => {
                let mut points = [Point::default(); 5];
                for (k, point) in points.iter_mut().enumerate() {
                    let fields = format!("landmark {k} x, y");
                    let [x, y] = pixels(&fields, [lm[2 * k] * width, lm[2 * k + 1] * height])?;
                    *point = Point::new(x, y);
                }
                Some(FaceLandmarks { points: Landmarks { points }, flags })
            }
            None => None,
        };
        faces.push(Face { bbox, landmarks, attributes: None, score: None, origin: Origin::default() });
    }
    Ok(faces)
}

/// The ten normalised landmark values of a yolov5-face line (every point visible: the layout has
/// no flags), `None` when all are -1; `Err(k)` when point `k` is missing (both -1) and others
/// are not.
fn landmarks_of(values: &[f64]) -> Result<Option<([f64; 10], [LandmarkFlag; 5])>, usize> {
    if values.iter().all(|&v| v == -1.0) {
        return Ok(None);
    }
    if let Some(k) = (0..5).find(|&k| values[2 * k] == -1.0 && values[2 * k + 1] == -1.0) {
        return Err(k);
    }
    Ok(Some((std::array::from_fn(|i| values[i]), [LandmarkFlag::Visible; 5])))
}

/// The landmarks of a pose line's fifteen `x y v` values (v = 2 visible, 1 occluded, 0 missing):
/// `None` when every point is missing; the point and what is wrong with its `v` when one is
/// missing while others are given, or `v` is another number.
fn pose_landmarks_of(values: &[f64]) -> Result<Option<([f64; 10], [LandmarkFlag; 5])>, (usize, String)> {
    if (0..5).all(|k| values[3 * k + 2] == 0.0) {
        return Ok(None);
    }
    let mut flags = [LandmarkFlag::Visible; 5];
    for (k, flag) in flags.iter_mut().enumerate() {
        *flag = match values[3 * k + 2] {
            2.0 => LandmarkFlag::Visible,
            1.0 => LandmarkFlag::Occluded,
            0.0 => {
                let message = format!(
                    "landmark {k} is missing (v = 0) while others are given; a face has all five landmarks or none"
                );
                return Err((k, message));
            }
            v => return Err((k, format!("expected 0 (missing), 1 (occluded) or 2 (visible), found {v}"))),
        };
    }
    Ok(Some((std::array::from_fn(|i| values[3 * (i / 2) + i % 2]), flags)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interchange::tests::{sample_images, write_image};

    /// Six decimals of the normalised value: a value is within 0.5e-6 of the side, a corner
    /// (centre ± half the size) within 1e-6 of it; f32 rounding of ~1000 px adds 1e-4 px.
    fn tolerance(image: &AnnotatedImage) -> f32 {
        1e-6 * image.width.max(image.height) as f32 + 1e-4
    }

    fn close(a: [f32; 4], b: [f32; 4], tol: f32) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn labels_read_back_to_the_same_boxes_and_landmarks_within_six_decimals() {
        for image in sample_images() {
            let faces = parse_label(Path::new("l.txt"), &label_text(&image), image.width, image.height).unwrap();
            assert_eq!(faces.len(), image.faces.len());
            let tol = tolerance(&image);
            for (back, face) in faces.iter().zip(&image.faces) {
                assert!(close(back.bbox.corners(), face.bbox.corners(), tol), "{back:?} vs {face:?}");
                assert_eq!(back.landmarks.is_some(), face.landmarks.is_some());
                if let (Some(a), Some(b)) = (back.landmarks, face.landmarks) {
                    for (p, q) in a.points.points.iter().zip(b.points.points) {
                        assert!((p.x - q.x).abs() <= tol && (p.y - q.y).abs() <= tol, "{p:?} vs {q:?}");
                    }
                    assert_eq!(a.flags, [LandmarkFlag::Visible; 5], "YOLO has no landmark flags");
                }
                assert_eq!((back.attributes, back.score), (None, None), "YOLO has no attributes or scores");
            }
        }
    }

    #[test]
    fn a_face_without_landmarks_is_written_with_ten_minus_ones() {
        let image = sample_images().into_iter().find(|i| i.faces.iter().any(|f| f.landmarks.is_none())).unwrap();
        let text = label_text(&image);
        let line = text.lines().find(|l| l.ends_with(" -1")).unwrap();
        assert_eq!(line.split(' ').filter(|t| *t == "-1").count(), 10, "{line}");
        assert_eq!(line.split(' ').nth(1).unwrap().split('.').nth(1).unwrap().len(), 6, "six decimals: {line}");
    }

    #[test]
    fn a_bad_number_names_the_file_line_and_field() {
        let text = "0 0.5 0.5 0.2 0.2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n0 0.5 0.5 0.2 0.2 0.4 0.4 0.6 0.4 0.5 0.5 0.4 zero 0.6 0.6\n";
        let err = parse_label(Path::new("labels/a.txt"), text, 100, 100).unwrap_err().to_string();
        assert_eq!(err, "labels/a.txt:2: landmark 3 y: expected a number, found \"zero\"");
    }

    #[test]
    fn wrong_value_counts_a_class_other_than_face_and_partial_landmarks_are_errors() {
        let err = |text: &str| parse_label(Path::new("a.txt"), text, 10, 10).unwrap_err().to_string();
        assert!(err("0 0.5 0.5 0.2\n").contains("a.txt:1: expected 15 values"));
        assert!(err("\n1 0.5 0.5 0.2 0.2\n").contains("a.txt:2: class"));
        let partial = err("0 0.5 0.5 0.2 0.2 0.4 0.4 -1 -1 0.5 0.5 0.4 0.6 0.6 0.6\n");
        assert!(partial.contains("landmark 1 x: landmark 1 is -1"), "{partial}");
    }

    #[test]
    fn values_beyond_the_range_of_a_coordinate_in_pixels_name_the_field_and_line() {
        let err = |text: &str| parse_label(Path::new("a.txt"), text, 100, 100).unwrap_err().to_string();
        let landmark = err("0 0.5 0.5 0.2 0.2 0.4 0.4 0.6 0.4 0.5 0.5 1e300 0.6 0.6 0.6\n");
        assert!(
            landmark.starts_with("a.txt:1: landmark 3 x, y:") && landmark.contains("beyond the range"),
            "{landmark}"
        );
        let size = err("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 1e300 0.2\n");
        assert!(size.starts_with("a.txt:2: cx, w:") && size.contains("beyond the range"), "{size}");
        let centre = err("0 0.5 1e300 0.2 0.2\n");
        assert!(centre.starts_with("a.txt:1: cy, h:"), "{centre}");
    }

    #[test]
    fn an_image_without_pixels_is_named_by_its_full_path() {
        let mut images = sample_images();
        images[0].width = 0;
        let err = files(&images, SplitKind::Train, Path::new("out"), Path::new("photos")).unwrap_err();
        let path = Path::new("photos").join(&images[0].path);
        assert!(matches!(&err, InterchangeError::ImageSize { path: p, .. } if *p == path), "{err}");
    }

    #[test]
    fn pose_lines_carry_the_landmark_flags() {
        let text = "0 0.5 0.5 0.4 0.4 0.4 0.4 2 0.6 0.4 1 0.5 0.5 2 0.4 0.6 2 0.6 0.6 2.0\n\
                    0 0.5 0.5 0.2 0.2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let faces = parse_label(Path::new("a.txt"), text, 100, 50).unwrap();
        let lm = faces[0].landmarks.unwrap();
        assert_eq!(lm.points.to_flat(), [40.0, 20.0, 60.0, 20.0, 50.0, 25.0, 40.0, 30.0, 60.0, 30.0]);
        assert_eq!(lm.flags[1], LandmarkFlag::Occluded, "v = 1");
        assert_eq!(lm.flags.iter().filter(|&&f| f == LandmarkFlag::Visible).count(), 4);
        assert_eq!(faces[1].landmarks, None, "every v 0: no landmarks");
        let err = |text: &str| parse_label(Path::new("a.txt"), text, 10, 10).unwrap_err().to_string();
        let partial = err("0 0.5 0.5 0.2 0.2 0.4 0.4 2 0 0 0 0.5 0.5 2 0.4 0.6 2 0.6 0.6 2\n");
        assert!(partial.starts_with("a.txt:1: landmark 1 v: landmark 1 is missing"), "{partial}");
        let odd = err("0 0.5 0.5 0.2 0.2 0.4 0.4 2 0.6 0.4 2 0.5 0.5 3 0.4 0.6 2 0.6 0.6 2\n");
        assert!(odd.starts_with("a.txt:1: landmark 2 v: expected 0 (missing), 1 (occluded) or 2"), "{odd}");
    }

    #[test]
    fn box_only_lines_are_faces_without_landmarks() {
        let faces = parse_label(Path::new("a.txt"), "0 0.5 0.25 0.5 0.5\n", 200, 100).unwrap();
        assert_eq!(faces[0].bbox.corners(), [50.0, 0.0, 150.0, 50.0]);
        assert_eq!(faces[0].landmarks, None);
    }

    #[test]
    fn the_label_of_an_image_replaces_its_last_images_folder() {
        let label = label_path(Path::new("data/images/train/0--Parade/a.jpg")).unwrap();
        assert_eq!(label, Path::new("data/labels/train/0--Parade/a.txt"));
        assert_eq!(label_path(Path::new("data/photos/a.jpg")), None);
    }

    #[test]
    fn two_images_sharing_a_label_file_are_refused() {
        let mut images = sample_images();
        images.truncate(1);
        let mut twin = images[0].clone();
        twin.path = twin.path.replace(".jpg", ".png");
        images.push(twin);
        let err = files(&images, SplitKind::Train, Path::new("out"), Path::new("photos")).unwrap_err();
        assert!(matches!(err, InterchangeError::LabelClash { .. }), "{err}");
    }

    #[test]
    fn list_entries_leaving_the_list_folder_are_rejected_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images/train");
        write_image(&images.join("a.png"), 8, 8);
        let list = dir.path().join("train.txt");
        std::fs::write(&list, "./images/train/a.png\n../outside/images/b.png\n").unwrap();
        let err = read(&list, &images, &images.canonicalize().unwrap(), SplitKind::Train).unwrap_err().to_string();
        assert!(err.contains("train.txt:2") && err.contains("../outside/images/b.png"), "{err}");
        std::fs::write(&list, "./images/train/a.png\n./elsewhere/images/a.png\n").unwrap();
        let err = read(&list, &images, &images.canonicalize().unwrap(), SplitKind::Train).unwrap_err().to_string();
        assert!(err.contains("train.txt:2") && err.contains("not inside the images folder"), "{err}");
    }

    fn read_list(list: &Path, images: &Path) -> Result<Vec<AnnotatedImage>, InterchangeError> {
        read(list, images, &images.canonicalize().unwrap(), SplitKind::Train).map(|(_, listed)| listed.images)
    }

    #[test]
    fn absolute_entries_inside_the_images_folder_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images/train");
        write_image(&images.join("e/a.png"), 8, 4);
        let list = dir.path().join("train.txt");
        std::fs::write(&list, format!("{}\n", images.join("e/a.png").display())).unwrap();
        let found = read_list(&list, &images).unwrap();
        assert_eq!((found[0].path.as_str(), found[0].width), ("e/a.png", 8));
        let elsewhere = dir.path().join("other/images/b.png");
        write_image(&elsewhere, 8, 4);
        std::fs::write(&list, format!("{}\n{}\n", images.join("e/a.png").display(), elsewhere.display())).unwrap();
        let err = read_list(&list, &images).unwrap_err().to_string();
        assert!(err.contains("train.txt:2") && err.contains("not inside the images folder"), "{err}");
    }

    /// ultralytics datasets often keep `images/` elsewhere and link it in: the images folder is
    /// found through the link, not refused.
    #[cfg(unix)]
    #[test]
    fn an_images_folder_behind_a_symlink_is_read_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        write_image(&photos.join("a.png"), 6, 6);
        let export = dir.path().join("export");
        std::fs::create_dir_all(export.join("images")).unwrap();
        std::os::unix::fs::symlink(&photos, export.join("images/train")).unwrap();
        std::fs::create_dir_all(export.join("labels/train")).unwrap();
        std::fs::write(export.join("labels/train/a.txt"), "0 0.5 0.5 0.5 0.5\n").unwrap();
        std::fs::write(export.join("train.txt"), "./images/train/a.png\n").unwrap();
        let found = read_list(&export.join("train.txt"), &export.join("images/train")).unwrap();
        assert_eq!(found[0].path, "a.png");
        assert_eq!(found[0].faces.len(), 1, "the label is found beside the list's entry");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_leading_out_of_the_images_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images/train");
        write_image(&images.join("a.png"), 6, 6);
        let secret = dir.path().join("secret.png");
        write_image(&secret, 6, 6);
        std::os::unix::fs::symlink(&secret, images.join("b.png")).unwrap();
        std::fs::write(dir.path().join("train.txt"), "./images/train/a.png\n./images/train/b.png\n").unwrap();
        let err = read_list(&dir.path().join("train.txt"), &images).unwrap_err().to_string();
        assert!(err.contains("train.txt:2") && err.contains("b.png") && err.contains("not inside"), "{err}");
        std::fs::remove_file(dir.path().join("train.txt")).unwrap();
        let err = read(dir.path(), &images, &images.canonicalize().unwrap(), SplitKind::Train).unwrap_err();
        assert!(err.to_string().contains("image \"b.png\"") && err.to_string().contains("not inside"), "{err}");
    }

    #[test]
    fn a_folder_without_a_list_takes_every_image_under_the_images_folder() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images/val");
        write_image(&images.join("b/2.png"), 20, 10);
        write_image(&images.join("a.png"), 10, 10);
        std::fs::write(images.join("notes.md"), "not an image").unwrap();
        let labels = dir.path().join("labels/val/b");
        std::fs::create_dir_all(&labels).unwrap();
        std::fs::write(labels.join("2.txt"), "0 0.5 0.5 0.5 0.5\n").unwrap();
        let (_, found) = read(dir.path(), &images, &images.canonicalize().unwrap(), SplitKind::Val).unwrap();
        let found = found.images;
        let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["a.png", "b/2.png"]);
        assert!(found[0].faces.is_empty());
        assert_eq!(found[1].faces[0].bbox.corners(), [5.0, 2.5, 15.0, 7.5]);
    }
}
