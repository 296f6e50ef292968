//! Annotation interchange: a split's faces written as, and read back from, the files other
//! annotation and training tools use — COCO keypoints JSON (`coco.rs`), CVAT for images 1.1 XML
//! (`cvat.rs`) and YOLO-face label folders (`yolo.rs`, the yolov5-face / yolov8-face layout). An
//! import becomes a split in the official WIDER layout (split file and RetinaFace `label.txt`),
//! written by the dataset's own writers, so it opens, trains and evaluates like any dataset.
//!
//! What each format cannot carry is listed in its module; [`Dropped`] counts it for an export.

mod coco;
mod cvat;
mod error;
mod yolo;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use image::ImageDecoder;
use image::metadata::Orientation;

pub use error::{InterchangeError, Position};

use super::label_txt::LabelStyle;
use super::layout::discover;
use super::text::{MAX_ANNOTATION_BYTES, check_relative_path};
use super::wider_gt::WiderGtStyle;
use super::{
    Attributes, Blur, Dataset, Expression, Face, Illumination, ImageEntry, LandmarkFlag, Occlusion, Pose, SourceFile,
    SourceStyle, Split, SplitKind,
};

/// The five landmark names, in the crate's order ([`crate::geometry::Landmarks`]): left and
/// right mean image-left and image-right (smaller x first for a frontal face), as in RetinaFace,
/// not the person's own left. COCO keypoint names and CVAT point labels use them.
pub const LANDMARK_NAMES: [&str; 5] = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"];

/// The label every format gives faces (COCO category, CVAT label, YOLO class 0).
pub const FACE_LABEL: &str = "face";

/// The largest image file whose header is read for its size (as the detector's photo limit).
const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// The interchange formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterchangeFormat {
    /// COCO keypoints JSON: one file for the split.
    Coco,
    /// CVAT for images 1.1 XML: one file for the split.
    Cvat,
    /// YOLO-face: a folder of `labels/<split>/…/<stem>.txt`, the images beside them under
    /// `images/<split>/`, and the list `<split>.txt`.
    YoloFace,
}

impl InterchangeFormat {
    pub const ALL: [InterchangeFormat; 3] =
        [InterchangeFormat::Coco, InterchangeFormat::Cvat, InterchangeFormat::YoloFace];

    /// The name the command line takes.
    pub fn name(self) -> &'static str {
        match self {
            InterchangeFormat::Coco => "coco",
            InterchangeFormat::Cvat => "cvat",
            InterchangeFormat::YoloFace => "yolo-face",
        }
    }

    /// What an export of `images` in this format leaves out (all zero for COCO and CVAT).
    pub fn dropped(self, images: &[AnnotatedImage]) -> Dropped {
        let mut dropped = Dropped::default();
        if self != InterchangeFormat::YoloFace {
            return dropped;
        }
        for face in images.iter().flat_map(|image| &image.faces) {
            if let Some(a) = face.attributes {
                dropped.attributes += usize::from(super::Attributes { invalid: false, ..a } != Default::default());
                dropped.invalid += usize::from(a.invalid);
            }
            dropped.scores += usize::from(face.score.is_some());
            dropped.occluded_points +=
                face.landmarks.map_or(0, |lm| lm.flags.iter().filter(|&&f| f == LandmarkFlag::Occluded).count());
        }
        dropped
    }
}

impl fmt::Display for InterchangeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for InterchangeFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<InterchangeFormat, String> {
        InterchangeFormat::ALL
            .into_iter()
            .find(|f| f.name() == text)
            .ok_or_else(|| format!("expected coco, cvat or yolo-face, got {text:?}"))
    }
}

/// An image with its size and faces: what every interchange format records per image (YOLO's
/// normalised coordinates and COCO's `images` need the size).
#[derive(Clone, Debug, PartialEq)]
pub struct AnnotatedImage {
    /// Relative to the images folder, `/`-separated, as [`ImageEntry::path`].
    pub path: String,
    /// The upright size (after the EXIF orientation, as the detector and the studio see it).
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
}

/// What an export could not write, counted so the user hears about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Faces with a WIDER attribute other than the default (blur, expression, illumination,
    /// occlusion, pose).
    pub attributes: usize,
    /// Faces marked invalid.
    pub invalid: usize,
    /// Landmarks flagged occluded.
    pub occluded_points: usize,
    /// Faces with a RetinaFace annotation score.
    pub scores: usize,
}

impl Dropped {
    pub fn is_empty(&self) -> bool {
        *self == Dropped::default()
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            (self.attributes, "face(s) with WIDER attributes"),
            (self.invalid, "invalid flag(s)"),
            (self.occluded_points, "occluded landmark flag(s)"),
            (self.scores, "annotation score(s)"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        f.write_str(&parts.join(", "))
    }
}

/// What [`export_split`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub images: usize,
    pub faces: usize,
    /// Annotation files written (one for COCO and CVAT; the labels and the list for YOLO-face).
    pub files: usize,
    /// Images linked or copied beside a YOLO-face export's labels.
    pub images_placed: usize,
    pub dropped: Dropped,
}

/// What [`write_official_split`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    pub images: usize,
    pub faces: usize,
    /// Images linked or copied into `WIDER_<split>/images` (those already there are not counted).
    pub images_placed: usize,
    /// The annotation files written (the ones whose content changed).
    pub files: Vec<PathBuf>,
}

/// The split's images with their sizes, read from the image headers only (no pixel is decoded).
pub fn annotated_images(split: &Split) -> Result<Vec<AnnotatedImage>, InterchangeError> {
    split
        .images
        .iter()
        .map(|image| {
            let (width, height) = image_size(&split.image_path(image))?;
            Ok(AnnotatedImage { path: image.path.clone(), width, height, faces: image.faces.clone() })
        })
        .collect()
}

/// Writes `split` to `out` in `format`: a file for COCO and CVAT, a folder for YOLO-face. The
/// files are written together and atomically (an existing output is replaced whole).
pub fn export_split(split: &Split, format: InterchangeFormat, out: &Path) -> Result<ExportSummary, InterchangeError> {
    if !split.is_annotated() {
        return Err(InterchangeError::NotAnnotated { split: split.kind.name() });
    }
    let images = annotated_images(split)?;
    let mut images_placed = 0;
    let files = match format {
        InterchangeFormat::Coco => vec![(out.to_path_buf(), coco::write(&images, split.kind).into_bytes())],
        InterchangeFormat::Cvat => vec![(out.to_path_buf(), cvat::write(&images, split.kind).into_bytes())],
        InterchangeFormat::YoloFace => {
            let files = yolo::files(&images, split.kind, out)?;
            for image in &images {
                let target = out.join(yolo::image_entry(split.kind, &image.path));
                images_placed += usize::from(place_image(&split.images_dir.join(&image.path), &target, true)?);
            }
            files
        }
    };
    write_files(&files)?;
    Ok(ExportSummary {
        images: images.len(),
        faces: images.iter().map(|i| i.faces.len()).sum(),
        files: files.len(),
        images_placed,
        dropped: format.dropped(&images),
    })
}

/// Reads the annotations of `input` in `format`: a COCO or CVAT file, or for YOLO-face the list
/// file (or the folder holding `<split>.txt`). Image paths are relative to `images_dir`; a path
/// leaving it, an image listed twice or an image file that does not exist is an error.
pub fn read_annotations(
    input: &Path,
    format: InterchangeFormat,
    images_dir: &Path,
    kind: SplitKind,
) -> Result<Vec<AnnotatedImage>, InterchangeError> {
    if !images_dir.is_dir() {
        return Err(InterchangeError::NoImagesFolder(images_dir.to_path_buf()));
    }
    let (file, images) = match format {
        InterchangeFormat::Coco => (input.to_path_buf(), coco::parse(input, &read_bounded(input)?)?),
        InterchangeFormat::Cvat => (input.to_path_buf(), cvat::parse(input, utf8(input, &read_bounded(input)?)?)?),
        InterchangeFormat::YoloFace => yolo::read(input, images_dir, kind)?,
    };
    let mut seen = HashSet::new();
    for image in &images {
        if !seen.insert(image.path.as_str()) {
            let position = Position::Item(format!("image {:?}", image.path));
            return Err(InterchangeError::malformed(&file, position, "the image is listed twice"));
        }
        let path = images_dir.join(&image.path);
        if !path.is_file() {
            return Err(InterchangeError::MissingImage { file: file.clone(), image: path });
        }
    }
    Ok(images)
}

/// The annotation files of a split in the official layout under `root`.
fn official_files(root: &Path, kind: SplitKind) -> (PathBuf, PathBuf) {
    let s = kind.name();
    (
        root.join("wider_face_split").join(format!("wider_face_{s}_bbx_gt.txt")),
        root.join("retinaface_gt_v1.1").join(s).join("label.txt"),
    )
}

/// Writes `images` as the `kind` split of the dataset in `root`, in the official layout:
/// `WIDER_<split>/images/…` (each image hard-linked from `images_dir`, or copied where linking
/// fails), `wider_face_split/wider_face_<split>_bbx_gt.txt` and
/// `retinaface_gt_v1.1/<split>/label.txt`, through the dataset's own writers and
/// [`Dataset::save`] (atomic, all files together). Other splits in `root` are left alone; a split
/// that already has annotation files there is refused unless `force`, which writes over them
/// keeping `.bak` copies (and replaces images that differ).
pub fn write_official_split(
    root: &Path,
    kind: SplitKind,
    images_dir: &Path,
    images: Vec<AnnotatedImage>,
    force: bool,
) -> Result<ImportSummary, InterchangeError> {
    let (gt, labels) = official_files(root, kind);
    let mut existing: Vec<PathBuf> = [&gt, &labels].into_iter().filter(|p| p.exists()).cloned().collect();
    if let Ok((base, splits)) = discover(root)
        && base == root
    {
        let found = splits.into_iter().filter(|s| s.kind == kind);
        for path in found.flat_map(|s| [s.wider_gt, s.label_txt, s.file_list]).flatten() {
            if !existing.contains(&path) {
                existing.push(path);
            }
        }
    }
    if !existing.is_empty() && !force {
        return Err(InterchangeError::SplitExists { root: root.to_path_buf(), split: kind.name(), files: existing });
    }
    let target_images = root.join(format!("WIDER_{}", kind.name())).join("images");
    let mut images_placed = 0;
    for image in &images {
        images_placed +=
            usize::from(place_image(&images_dir.join(&image.path), &target_images.join(&image.path), force)?);
    }
    for path in [&gt, &labels] {
        create_parent(path)?;
    }
    let faces = images.iter().map(|i| i.faces.len()).sum();
    let count = images.len();
    let order: Vec<usize> = (0..count).collect();
    let split = Split {
        kind,
        images_dir: target_images,
        images: images.into_iter().map(|i| ImageEntry { path: i.path, faces: i.faces }).collect(),
        sources: vec![
            SourceFile { path: gt, style: SourceStyle::WiderGt(WiderGtStyle::default()), order: order.clone() },
            SourceFile { path: labels, style: SourceStyle::LabelTxt(LabelStyle::default()), order },
        ],
    };
    let files = Dataset { root: root.to_path_buf(), splits: vec![split] }.save()?;
    Ok(ImportSummary { images: count, faces, images_placed, files })
}

/// The upright size of an image from its header: the EXIF orientation is applied (a photo turned
/// by 90° has its sides swapped), as the detector and the studio show it. A FIFO or a folder is an
/// error, never a blocked read.
pub fn image_size(path: &Path) -> Result<(u32, u32), InterchangeError> {
    let fail = |message: String| InterchangeError::ImageSize { path: path.to_path_buf(), message };
    crate::fsutil::check_regular(path, MAX_IMAGE_BYTES).map_err(|e| fail(e.to_string()))?;
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let reader = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?;
    let mut decoder = reader.into_decoder().map_err(|e| fail(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    let turned = matches!(
        decoder.orientation().map_err(|e| fail(e.to_string()))?,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    );
    Ok(if turned { (height, width) } else { (width, height) })
}

/// Puts the image `source` at `target`: nothing when `target` is that file or holds the same
/// bytes, else a hard link (no copy of the pixels), else an atomic copy. A different file at
/// `target` is replaced only with `replace`. Returns whether anything was written.
fn place_image(source: &Path, target: &Path, replace: bool) -> Result<bool, InterchangeError> {
    let read = |path: &Path| {
        crate::fsutil::read_limited(path, MAX_IMAGE_BYTES)
            .map_err(|source| InterchangeError::Read { path: path.to_path_buf(), source })
    };
    let write_error = |source| InterchangeError::Write { path: target.to_path_buf(), source };
    let real_source =
        std::fs::canonicalize(source).map_err(|e| InterchangeError::Read { path: source.to_path_buf(), source: e })?;
    let exists = std::fs::symlink_metadata(target).is_ok();
    if exists {
        if std::fs::canonicalize(target).is_ok_and(|t| t == real_source) {
            return Ok(false);
        }
        let same_length = std::fs::metadata(target)
            .ok()
            .zip(std::fs::metadata(&real_source).ok())
            .is_some_and(|(t, s)| t.is_file() && t.len() == s.len());
        if same_length && read(target)? == read(&real_source)? {
            return Ok(false);
        }
        if !replace {
            return Err(InterchangeError::ImageExists(target.to_path_buf()));
        }
    }
    create_parent(target)?;
    if !exists && std::fs::hard_link(&real_source, target).is_ok() {
        return Ok(true);
    }
    crate::fsutil::write_atomic(target, &read(&real_source)?).map_err(write_error)?;
    Ok(true)
}

fn create_parent(path: &Path) -> Result<(), InterchangeError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| InterchangeError::Write { path: parent.to_path_buf(), source })
}

/// Writes an export's files together and atomically, creating their folders first (an export
/// is derived data: the previous one is replaced without a `.bak`).
fn write_files(files: &[(PathBuf, Vec<u8>)]) -> Result<(), InterchangeError> {
    let folders: HashSet<&Path> = files.iter().filter_map(|(path, _)| path.parent()).collect();
    for folder in folders {
        if !folder.as_os_str().is_empty() {
            std::fs::create_dir_all(folder)
                .map_err(|source| InterchangeError::Write { path: folder.to_path_buf(), source })?;
        }
    }
    crate::fsutil::write_all_atomic(files, false)?;
    Ok(())
}

/// An annotation file read whole within the annotation limit (a FIFO or folder is an error).
fn read_bounded(path: &Path) -> Result<Vec<u8>, InterchangeError> {
    crate::fsutil::read_limited(path, MAX_ANNOTATION_BYTES)
        .map_err(|source| InterchangeError::Read { path: path.to_path_buf(), source })
}

/// The file's text, without a UTF-8 byte-order mark; invalid UTF-8 is an error at its line.
fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, InterchangeError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        InterchangeError::malformed(path, Position::Line(line), "invalid UTF-8; annotation files must be UTF-8 text")
    })
}

/// An image path from an annotation file: relative, inside the images folder.
fn check_image_path(file: &Path, position: Position, name: &str) -> Result<(), InterchangeError> {
    if name.is_empty() {
        return Err(InterchangeError::malformed(file, position, "the image path is empty"));
    }
    check_relative_path(name).map_err(|_| {
        let message = format!("the image path {name:?} leaves the images folder (absolute or with '..')");
        InterchangeError::malformed(file, position, message)
    })
}

/// The WIDER attributes as COCO and CVAT files hold them, each optional on import: files from
/// other tools carry their own keys (CVAT's `occluded`), which are ignored, missing ones default,
/// and a face with none of these has no attributes.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(super) struct PartialAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) blur: Option<Blur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) expression: Option<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) illumination: Option<Illumination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) invalid: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) occlusion: Option<Occlusion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pose: Option<Pose>,
}

impl From<Attributes> for PartialAttributes {
    fn from(a: Attributes) -> PartialAttributes {
        PartialAttributes {
            blur: Some(a.blur),
            expression: Some(a.expression),
            illumination: Some(a.illumination),
            invalid: Some(a.invalid),
            occlusion: Some(a.occlusion),
            pose: Some(a.pose),
        }
    }
}

impl PartialAttributes {
    pub(super) fn into_attributes(self) -> Option<Attributes> {
        let any = self.blur.is_some()
            || self.expression.is_some()
            || self.illumination.is_some()
            || self.invalid.is_some()
            || self.occlusion.is_some()
            || self.pose.is_some();
        any.then(|| Attributes {
            blur: self.blur.unwrap_or_default(),
            expression: self.expression.unwrap_or_default(),
            illumination: self.illumination.unwrap_or_default(),
            invalid: self.invalid.unwrap_or_default(),
            occlusion: self.occlusion.unwrap_or_default(),
            pose: self.pose.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests;
