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

pub use error::{InterchangeError, Position};

use crate::dataset::label_txt::LabelStyle;
use crate::dataset::layout::discover;
use crate::dataset::text::{MAX_ANNOTATION_BYTES, check_relative_path};
use crate::dataset::wider_gt::WiderGtStyle;
use crate::dataset::{
    Attributes, Blur, Dataset, Expression, Face, Illumination, ImageEntry, LandmarkFlag, Occlusion, Pose, SourceFile,
    SourceStyle, Split, SplitKind,
};

/// The five landmark names, in the crate's order ([`crate::geometry::Landmarks`]): left and
/// right mean image-left and image-right (smaller x first for a frontal face), as in RetinaFace,
/// not the person's own left. COCO keypoint names and CVAT point labels use them.
pub const LANDMARK_NAMES: [&str; 5] = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"];

/// The label every format gives faces (COCO category, CVAT label, YOLO class 0).
pub const FACE_LABEL: &str = "face";

/// The largest image file linked or copied into place (as the detector's photo limit).
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
                dropped.attributes +=
                    usize::from(crate::dataset::Attributes { invalid: false, ..a } != Default::default());
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
    /// Annotation files written: those whose content changed (one for COCO and CVAT; the labels
    /// and the list for YOLO-face).
    pub files: usize,
    /// Images linked or copied beside a YOLO-face export's labels (those already there are not
    /// counted).
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

/// Images an annotation file names, each with where the file names it, for the errors found
/// once the whole file is read (an image listed twice, missing, or outside the images folder).
#[derive(Debug)]
struct Listed {
    images: Vec<AnnotatedImage>,
    positions: Vec<Position>,
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

/// Writes the `kind` split of `dataset` to `out` in `format`: a file for COCO and CVAT, a folder
/// for YOLO-face. An output on the dataset's own files (its annotation files, anything in their
/// folders or in an images folder) is refused before anything is written. The files are written
/// together and atomically; an existing file with other content is replaced keeping a `.bak`
/// copy, and so is a different image at a YOLO-face image's place.
pub fn export_split(
    dataset: &Dataset,
    kind: SplitKind,
    format: InterchangeFormat,
    out: &Path,
) -> Result<ExportSummary, InterchangeError> {
    let split = dataset
        .split(kind)
        .ok_or_else(|| InterchangeError::NoSplit { root: dataset.root.clone(), split: kind.name() })?;
    if !split.is_annotated() {
        return Err(InterchangeError::NotAnnotated { split: split.kind.name() });
    }
    let images = annotated_images(split)?;
    let (files, image_targets) = match format {
        InterchangeFormat::Coco => (vec![(out.to_path_buf(), coco::write(&images, kind).into_bytes())], Vec::new()),
        InterchangeFormat::Cvat => (vec![(out.to_path_buf(), cvat::write(&images, kind).into_bytes())], Vec::new()),
        InterchangeFormat::YoloFace => {
            let files = yolo::files(&images, kind, out, &split.images_dir)?;
            let targets = images
                .iter()
                .map(|image| (split.images_dir.join(&image.path), out.join(yolo::image_entry(kind, &image.path))))
                .collect();
            (files, targets)
        }
    };
    let outputs = files.iter().map(|(path, _)| path.as_path()).chain(image_targets.iter().map(|(_, t)| t.as_path()));
    check_outside_dataset(dataset, outputs)?;
    let plans = plan_images(image_targets)?;
    let files = changed_files(files);
    let images_placed = place_images(&plans)?;
    write_files(&files)?;
    Ok(ExportSummary {
        images: images.len(),
        faces: images.iter().map(|i| i.faces.len()).sum(),
        files: files.len(),
        images_placed,
        dropped: format.dropped(&images),
    })
}

/// The real path `path` has or will have: its longest existing ancestor with every symlink
/// resolved, then the rest by name, as creating those folders will make them (so `..` after a
/// folder that does not exist yet is that folder's parent).
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let path = if path.as_os_str().is_empty() { Path::new(".") } else { path };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing: Vec<Component> = absolute.components().collect();
    let mut missing = Vec::new();
    let mut real = loop {
        let here: PathBuf = existing.iter().collect();
        if let Ok(real) = std::fs::canonicalize(&here) {
            break real;
        }
        match existing.last() {
            Some(Component::Normal(_) | Component::ParentDir | Component::CurDir) => missing.extend(existing.pop()),
            _ => break here,
        }
    };
    for part in missing.into_iter().rev() {
        match part {
            Component::ParentDir => {
                real.pop();
            }
            Component::Normal(name) => real.push(name),
            _ => {}
        }
    }
    real
}

/// Where a write to `path` lands: its folder [`resolved`], and its name (a file is replaced by a
/// rename, so a symlink at `path` itself is replaced, not followed).
fn write_location(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(folder), Some(name)) => resolved(folder).join(name),
        _ => resolved(path),
    }
}

/// Refuses an export whose `outputs` would land on the dataset it reads: on a split's annotation
/// file (or the file a symlink there points to), inside the folder of one (which holds the other
/// splits' files too), or inside a split's images folder.
fn check_outside_dataset<'a>(
    dataset: &Dataset,
    outputs: impl Iterator<Item = &'a Path>,
) -> Result<(), InterchangeError> {
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for split in &dataset.splits {
        folders.push(resolved(&split.images_dir));
        for source in &split.sources {
            folders.extend(source.path.parent().map(resolved));
            files.push(write_location(&source.path));
            files.extend(std::fs::canonicalize(&source.path));
        }
    }
    for output in outputs {
        let at = write_location(output);
        let protected = files.iter().find(|f| **f == at).or_else(|| folders.iter().find(|f| at.starts_with(f)));
        if let Some(protected) = protected {
            return Err(InterchangeError::IntoDataset { path: output.to_path_buf(), protected: protected.clone() });
        }
    }
    Ok(())
}

/// The files of `files` whose content differs from what is on disk (an export written again
/// rewrites nothing and leaves no `.bak` of an identical file).
fn changed_files(files: Vec<(PathBuf, Vec<u8>)>) -> Vec<(PathBuf, Vec<u8>)> {
    files
        .into_iter()
        .filter(|(path, bytes)| {
            let limit = bytes.len() as u64;
            !crate::fsutil::read_limited(path, limit).is_ok_and(|old| old == *bytes)
        })
        .collect()
}

/// Reads the annotations of `input` in `format`: a COCO or CVAT file, or for YOLO-face the list
/// file (or the folder holding `<split>.txt`). Image paths are relative to `images_dir` (`./a.jpg`
/// and `x//a.jpg` read as `a.jpg` and `x/a.jpg`); a path leaving it (with `..`, or through a
/// symlink), an image listed twice or an image that is not a regular file is an error naming the
/// entry and where the file names it.
pub fn read_annotations(
    input: &Path,
    format: InterchangeFormat,
    images_dir: &Path,
    kind: SplitKind,
) -> Result<Vec<AnnotatedImage>, InterchangeError> {
    if !images_dir.is_dir() {
        return Err(InterchangeError::NoImagesFolder(images_dir.to_path_buf()));
    }
    let real_images = std::fs::canonicalize(images_dir)
        .map_err(|source| InterchangeError::Read { path: images_dir.to_path_buf(), source })?;
    let (file, listed) = match format {
        InterchangeFormat::Coco => (input.to_path_buf(), coco::parse(input, &read_bounded(input)?)?),
        InterchangeFormat::Cvat => (input.to_path_buf(), cvat::parse(input, utf8(input, &read_bounded(input)?)?)?),
        // The YOLO reader resolves each image itself: it reads its size to scale the labels.
        InterchangeFormat::YoloFace => yolo::read(input, images_dir, &real_images, kind)?,
    };
    let mut seen = HashSet::new();
    for (image, position) in listed.images.iter().zip(&listed.positions) {
        if !seen.insert(image.path.as_str()) {
            let message = format!("the image {:?} is listed twice", image.path);
            return Err(InterchangeError::malformed(&file, position.clone(), message));
        }
        if format != InterchangeFormat::YoloFace {
            resolve_image(&file, position, &image.path, &images_dir.join(&image.path), &real_images)?;
        }
    }
    Ok(listed.images)
}

/// The real path of the image at `path`, which `file` names as `entry` at `position`: it must be
/// a regular file inside the images folder (whose real path is `real_images`) once every symlink
/// is followed, so a symlink leading out of the folder is refused as `..` is.
fn resolve_image(
    file: &Path,
    position: &Position,
    entry: &str,
    path: &Path,
    real_images: &Path,
) -> Result<PathBuf, InterchangeError> {
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (file, position, image) = (file.to_path_buf(), position.clone(), path.to_path_buf());
            return Err(InterchangeError::MissingImage { file, position, image });
        }
        Err(source) => return Err(InterchangeError::Read { path: path.to_path_buf(), source }),
    };
    if !real.starts_with(real_images) {
        let message = format!(
            "the image {entry:?} is {}, not inside the images folder {} (symlinks followed)",
            real.display(),
            real_images.display()
        );
        return Err(InterchangeError::malformed(file, position.clone(), message));
    }
    if !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
        let (file, position, image) = (file.to_path_buf(), position.clone(), path.to_path_buf());
        return Err(InterchangeError::NotAFile { file, position, image });
    }
    Ok(real)
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
/// [`Dataset::save`] (atomic, all files together). Other splits in `root` are left alone. Every
/// image is checked before anything is written: a split that already has annotation files
/// there, or an image place holding a different image, is refused unless `force`, which writes
/// over them keeping `.bak` copies.
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
    let plans = plan_images(images.iter().map(|i| (images_dir.join(&i.path), target_images.join(&i.path))).collect())?;
    let replaced: Vec<&ImagePlan> = plans.iter().filter(|p| p.placement == Placement::Replace).collect();
    if let Some(first) = replaced.first()
        && !force
    {
        return Err(InterchangeError::ImagesExist { first: first.target.clone(), count: replaced.len() });
    }
    let images_placed = place_images(&plans)?;
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

/// The upright size of an image from its header ([`crate::detect::upright_size`]: the EXIF
/// orientation applied, the header parsed under the decoders' limits and panic guard; a FIFO or
/// a folder is an error, never a blocked read).
pub fn image_size(path: &Path) -> Result<(u32, u32), InterchangeError> {
    Ok(crate::detect::upright_size(path)?)
}

/// What putting an image at its place takes, found before anything is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// The place is that file, or holds the same bytes.
    Present,
    /// Nothing is at the place.
    New,
    /// A different image is at the place.
    Replace,
}

/// An image to put at `target`, from the file whose real path is `source`.
struct ImagePlan {
    source: PathBuf,
    target: PathBuf,
    placement: Placement,
}

/// Checks every `(source, target)` pair, reading but writing nothing: which places already hold
/// their image, which are free and which hold another one. Something other than a regular file
/// at a place (a folder, a FIFO, a broken symlink) is an error, as it cannot be kept as `.bak`.
fn plan_images(pairs: Vec<(PathBuf, PathBuf)>) -> Result<Vec<ImagePlan>, InterchangeError> {
    let read = |path: &Path| {
        crate::fsutil::read_limited(path, MAX_IMAGE_BYTES)
            .map_err(|source| InterchangeError::Read { path: path.to_path_buf(), source })
    };
    pairs
        .into_iter()
        .map(|(source, target)| {
            let source =
                std::fs::canonicalize(&source).map_err(|e| InterchangeError::Read { path: source, source: e })?;
            let placement = match std::fs::symlink_metadata(&target) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Placement::New,
                Err(e) => return Err(InterchangeError::Read { path: target, source: e }),
                Ok(_) if std::fs::canonicalize(&target).is_ok_and(|t| t == source) => Placement::Present,
                Ok(_) => {
                    let (Ok(there), Ok(here)) = (std::fs::metadata(&target), std::fs::metadata(&source)) else {
                        return Err(InterchangeError::NotAFileToReplace(target));
                    };
                    if !there.is_file() {
                        return Err(InterchangeError::NotAFileToReplace(target));
                    }
                    if there.len() == here.len() && read(&target)? == read(&source)? {
                        Placement::Present
                    } else {
                        Placement::Replace
                    }
                }
            };
            Ok(ImagePlan { source, target, placement })
        })
        .collect()
}

/// Puts the planned images in place: a hard link (no copy of the pixels) where the place is free,
/// else an atomic copy; a replaced image is kept as `.bak`. Returns how many were written.
fn place_images(plans: &[ImagePlan]) -> Result<usize, InterchangeError> {
    let mut placed = 0;
    for plan in plans.iter().filter(|p| p.placement != Placement::Present) {
        let write_error = |source| InterchangeError::Write { path: plan.target.clone(), source };
        create_parent(&plan.target)?;
        if plan.placement == Placement::New && std::fs::hard_link(&plan.source, &plan.target).is_ok() {
            placed += 1;
            continue;
        }
        let bytes = crate::fsutil::read_limited(&plan.source, MAX_IMAGE_BYTES)
            .map_err(|source| InterchangeError::Read { path: plan.source.clone(), source })?;
        match plan.placement {
            Placement::Replace => crate::fsutil::write_atomic_with_backup(&plan.target, &bytes),
            _ => crate::fsutil::write_atomic(&plan.target, &bytes),
        }
        .map_err(write_error)?;
        placed += 1;
    }
    Ok(placed)
}

fn create_parent(path: &Path) -> Result<(), InterchangeError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| InterchangeError::Write { path: parent.to_path_buf(), source })
}

/// Writes an export's files together and atomically, creating their folders first; a file that
/// is replaced is kept as `.bak`.
fn write_files(files: &[(PathBuf, Vec<u8>)]) -> Result<(), InterchangeError> {
    let folders: HashSet<&Path> = files.iter().filter_map(|(path, _)| path.parent()).collect();
    for folder in folders {
        if !folder.as_os_str().is_empty() {
            std::fs::create_dir_all(folder)
                .map_err(|source| InterchangeError::Write { path: folder.to_path_buf(), source })?;
        }
    }
    crate::fsutil::write_all_atomic(files, true)?;
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

/// An image path from an annotation file, relative to the images folder, in the one spelling
/// the dataset keeps: `/`-separated, without `.` or empty components (`./a.jpg` is `a.jpg`,
/// `x//a.jpg` is `x/a.jpg`), so each image has one key in the duplicate check and one line in
/// `label.txt`. An absolute path, one with `..` or one naming no file is an error message.
fn normalized_image_path(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("the image path is empty".into());
    }
    check_relative_path(name)
        .map_err(|_| format!("the image path {name:?} leaves the images folder (absolute or with '..')"))?;
    let parts: Vec<&str> = name.split('/').filter(|part| !part.is_empty() && *part != ".").collect();
    if parts.is_empty() {
        return Err(format!("the image path {name:?} names no file"));
    }
    Ok(parts.join("/"))
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
