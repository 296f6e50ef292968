//! YOLO-face labels, the layout yolov5-face and yolov8-face train on: per image a text file with
//! one line per face, `0 cx cy w h x1 y1 x2 y2 x3 y3 x4 y4 x5 y5` (class 0, the box centre and
//! size, then the landmarks in the crate's order), every x divided by the image width and every
//! y by its height, six decimals; a face without landmarks has all ten landmark values `-1`.
//!
//! An export folder is laid out as ultralytics expects: `images/<split>/<path>` (hard links to
//! the dataset's images, copies where linking fails), `labels/<split>/<path with .txt>` (an
//! image without faces gets an empty file) and the list `<split>.txt` of `./images/<split>/<path>`
//! lines. yolov5 and ultralytics read `./` entries relative to the list's folder and find each
//! label by replacing the last `images` folder of the image's path with `labels` and the
//! extension with `.txt`; an import finds them the same way.
//!
//! Not carried: the WIDER attributes and the invalid flag (every face is one to train on), the
//! landmark flags (occluded points read back visible), the RetinaFace score, and positions beyond
//! six decimals of the image size (a value is within half a millionth of the width or height, a
//! box corner, centre ± half the size, within a millionth).

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use super::{AnnotatedImage, InterchangeError, Position, check_image_path, image_size, read_bounded, utf8};
use crate::dataset::{Face, FaceLandmarks, LandmarkFlag, Origin, SplitKind};
use crate::geometry::{BBox, Landmarks, Point};

/// Image files a folder import takes (the formats the crate decodes).
const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

const FIELDS: [&str; 15] = [
    "class",
    "cx",
    "cy",
    "w",
    "h",
    "landmark 0 x",
    "landmark 0 y",
    "landmark 1 x",
    "landmark 1 y",
    "landmark 2 x",
    "landmark 2 y",
    "landmark 3 x",
    "landmark 3 y",
    "landmark 4 x",
    "landmark 4 y",
];

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
/// last, so that it only names a complete set).
pub fn files(
    images: &[AnnotatedImage],
    kind: SplitKind,
    out: &Path,
) -> Result<Vec<(PathBuf, Vec<u8>)>, InterchangeError> {
    let mut files = Vec::with_capacity(images.len() + 1);
    let mut owners: std::collections::HashMap<PathBuf, &str> = std::collections::HashMap::new();
    let mut list = String::new();
    for image in images {
        if image.width == 0 || image.height == 0 {
            let message = "the image has no pixels (width or height 0): YOLO coordinates are fractions of its size";
            return Err(InterchangeError::ImageSize { path: PathBuf::from(&image.path), message: message.into() });
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
/// followed). List entries are relative to the list's folder (with or without `./`) and must lie
/// inside `images_dir`. An image without a label file has no faces, as YOLO reads it. Returns the
/// file the images were listed in (for errors) and the images.
pub fn read(
    input: &Path,
    images_dir: &Path,
    kind: SplitKind,
) -> Result<(PathBuf, Vec<AnnotatedImage>), InterchangeError> {
    let list = if input.is_dir() { input.join(format!("{}.txt", kind.name())) } else { input.to_path_buf() };
    let (source, listed) = if input.is_dir() && !list.exists() {
        let found = images_under(images_dir)?;
        (images_dir.to_path_buf(), found.into_iter().map(|rel| (rel.clone(), images_dir.join(rel))).collect())
    } else {
        let entries = list_entries(&list, images_dir)?;
        (list, entries)
    };
    let mut images = Vec::with_capacity(listed.len());
    for (rel, image_path) in listed {
        let (width, height) = image_size(&images_dir.join(&rel))?;
        let Some(label) = label_path(&image_path) else {
            let message = format!(
                "the image {rel:?} is not in a folder named images: YOLO finds a label by replacing the images folder with labels"
            );
            return Err(InterchangeError::malformed(&source, Position::Item(format!("image {rel:?}")), message));
        };
        let faces = match std::fs::symlink_metadata(&label) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            _ => parse_label(&label, utf8(&label, &read_bounded(&label)?)?, width, height)?,
        };
        images.push(AnnotatedImage { path: rel, width, height, faces });
    }
    Ok((source, images))
}

/// The entries of a list file: each image's path relative to `images_dir`, and as the list
/// names it (where its label is found).
fn list_entries(list: &Path, images_dir: &Path) -> Result<Vec<(String, PathBuf)>, InterchangeError> {
    let bytes = read_bounded(list)?;
    let text = utf8(list, &bytes)?;
    let canonical = |path: &Path| {
        std::fs::canonicalize(path).map_err(|source| InterchangeError::Read { path: path.to_path_buf(), source })
    };
    let base = list.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (real_base, real_images) = (canonical(base)?, canonical(images_dir)?);
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.trim();
        if entry.is_empty() {
            continue;
        }
        let position = || Position::Line(i + 1);
        let relative = entry.strip_prefix("./").unwrap_or(entry);
        check_image_path(list, position(), relative)?;
        let rel = real_base.join(relative);
        let Some(rel) = rel.strip_prefix(&real_images).ok().filter(|r| !r.as_os_str().is_empty()) else {
            let message = format!("the image {entry:?} is not inside the images folder {}", images_dir.display());
            return Err(InterchangeError::malformed(list, position(), message));
        };
        let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        entries.push((rel.join("/"), base.join(relative)));
    }
    Ok(entries)
}

/// Every image file under `dir`, relative and `/`-separated, sorted.
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
            } else if entry.path().is_file()
                && Path::new(&name)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).chain([name]).collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads one label file: lines of 15 values (class, box, five landmarks) or 5 (class and box).
pub fn parse_label(path: &Path, text: &str, width: u32, height: u32) -> Result<Vec<Face>, InterchangeError> {
    let (width, height) = (f64::from(width), f64::from(height));
    let mut faces = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let error = |message: String| InterchangeError::malformed(path, Position::Line(i + 1), message);
        let tokens: Vec<&str> = line.split_ascii_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        if tokens.len() != 5 && tokens.len() != 15 {
            return Err(error(format!(
                "expected 15 values (class cx cy w h, five landmarks as x y) or 5 (class cx cy w h), found {}",
                tokens.len()
            )));
        }
        let mut values = [0.0f64; 15];
        for (k, token) in tokens.iter().enumerate() {
            values[k] = token
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| error(format!("{}: expected a number, found {token:?}", FIELDS[k])))?;
        }
        if values[0] != 0.0 {
            return Err(error(format!("class: expected 0 (face, the only class), found {:?}", tokens[0])));
        }
        let [cx, cy, w, h] = [values[1], values[2], values[3], values[4]];
        if w < 0.0 || h < 0.0 {
            return Err(error(format!("w, h: a box has no negative size, found {w} {h}")));
        }
        let corner = |c: f64, size: f64, side: f64| (c * side - size * side / 2.0) as f32;
        let (x1, y1) = (corner(cx, w, width), corner(cy, h, height));
        let (x2, y2) = (corner(cx, -w, width), corner(cy, -h, height));
        let bbox = BBox::new(x1, y1, x2, y2).map_err(|e| error(format!("box: {e}")))?;
        let landmarks = if tokens.len() == 15 {
            landmarks_of(&values[5..]).map_err(|k| {
                error(format!(
                    "{}: landmark {k} is -1 (missing) while others are given; a face has all five landmarks or none (all ten values -1)",
                    FIELDS[5 + 2 * k]
                ))
            })?
        } else {
            None
        };
        let landmarks = landmarks.map(|lm: [f64; 10]| FaceLandmarks {
            points: Landmarks {
                points: std::array::from_fn(|k| {
                    Point::new((lm[2 * k] * width) as f32, (lm[2 * k + 1] * height) as f32)
                }),
            },
            flags: [LandmarkFlag::Visible; 5],
        });
        faces.push(Face { bbox, landmarks, attributes: None, score: None, origin: Origin::default() });
    }
    Ok(faces)
}

/// The ten normalised landmark values, `None` when all are -1; `Err(k)` when point `k` is
/// missing (both -1) and others are not.
fn landmarks_of(values: &[f64]) -> Result<Option<[f64; 10]>, usize> {
    if values.iter().all(|&v| v == -1.0) {
        return Ok(None);
    }
    if let Some(k) = (0..5).find(|&k| values[2 * k] == -1.0 && values[2 * k + 1] == -1.0) {
        return Err(k);
    }
    Ok(Some(std::array::from_fn(|i| values[i])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::interchange::tests::{sample_images, write_image};

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
        let err = files(&images, SplitKind::Train, Path::new("out")).unwrap_err();
        assert!(matches!(err, InterchangeError::LabelClash { .. }), "{err}");
    }

    #[test]
    fn list_entries_leaving_the_list_folder_are_rejected_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images/train");
        write_image(&images.join("a.png"), 8, 8);
        let list = dir.path().join("train.txt");
        std::fs::write(&list, "./images/train/a.png\n../outside/images/b.png\n").unwrap();
        let err = read(&list, &images, SplitKind::Train).unwrap_err().to_string();
        assert!(err.contains("train.txt:2") && err.contains("../outside/images/b.png"), "{err}");
        std::fs::write(&list, "./images/train/a.png\n./elsewhere/images/a.png\n").unwrap();
        let err = read(&list, &images, SplitKind::Train).unwrap_err().to_string();
        assert!(err.contains("train.txt:2") && err.contains("not inside the images folder"), "{err}");
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
        let (_, found) = read(dir.path(), &images, SplitKind::Val).unwrap();
        let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["a.png", "b/2.png"]);
        assert!(found[0].faces.is_empty());
        assert_eq!(found[1].faces[0].bbox.corners(), [5.0, 2.5, 15.0, 7.5]);
    }
}
