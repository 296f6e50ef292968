//! Reading a split's files and merging them: the WIDER split file gives the images, boxes and
//! attributes; `label.txt` adds landmarks to the same faces, matched by image path and box.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::error::{DatasetError, Problem, ProblemKind};
use super::face::{Face, Origin, SourceLine};
use super::layout::{SplitFiles, discover};
use super::source::ParsedImage;
use super::text::TextFile;
use super::{
    Dataset, ImageEntry, LoadReport, SourceFile, SourceStyle, Split, SplitKind, file_list, label_txt, wider_gt,
};
use crate::geometry::BBox;

/// How the WIDER split file and `label.txt` of a split agreed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MergeReport {
    pub split: Option<SplitKind>,
    /// Faces found in both files (same image, same box).
    pub matched: usize,
    pub only_in_wider: Vec<UnmatchedFace>,
    pub only_in_label: Vec<UnmatchedFace>,
}

/// A face that only one of the two files has.
#[derive(Clone, Debug, Serialize)]
pub struct UnmatchedFace {
    pub file: PathBuf,
    pub line: usize,
    pub image: String,
    pub bbox: BBox,
}

/// A face while its split is being merged: the lines it came from.
struct Pending {
    face: Face,
    wider: Option<(SourceLine, usize)>,
    label: Option<(SourceLine, usize)>,
}

struct PendingImage {
    path: String,
    /// The file and line that first listed the image, for problems about the image itself.
    listed_at: (PathBuf, usize),
    faces: Vec<Pending>,
}

pub(super) fn load(root: &Path) -> Result<(Dataset, LoadReport, Vec<Problem>), DatasetError> {
    let (base, layout) = discover(root)?;
    let mut problems = Vec::new();
    let mut report = LoadReport::default();
    let mut splits = Vec::new();
    for files in layout {
        let (split, merge) = load_split(files, &mut problems);
        report.merges.push(merge);
        splits.push(split);
    }
    Ok((Dataset { root: base, splits }, report, problems))
}

fn load_split(files: SplitFiles, problems: &mut Vec<Problem>) -> (Split, MergeReport) {
    let mut images: Vec<PendingImage> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut sources = Vec::new();
    let mut merge = MergeReport { split: Some(files.kind), ..MergeReport::default() };

    let readers: [(Option<&PathBuf>, Reader); 3] = [
        (files.wider_gt.as_ref(), read_wider_gt),
        (files.label_txt.as_ref(), read_label_txt),
        (files.file_list.as_ref(), read_file_list),
    ];
    // The files are independent until the merge: read and parse them side by side.
    let outcomes: Vec<(&PathBuf, Result<Parsed, Problem>, Vec<Problem>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .into_iter()
            .filter_map(|(path, reader)| path.map(|path| (path, reader)))
            .map(|(path, reader)| {
                scope.spawn(move || {
                    let mut problems = Vec::new();
                    let parsed = TextFile::read(path).map(|file| {
                        let (images, style) = reader(&file, &mut problems);
                        (file.text, images, style)
                    });
                    (path, parsed, problems)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("annotation parsing does not panic")).collect()
    });
    for (path, parsed, file_problems) in outcomes {
        problems.extend(file_problems);
        let (text, parsed, style) = match parsed {
            Ok(parsed) => parsed,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let mut order = Vec::with_capacity(parsed.len());
        let mut seen: HashMap<usize, usize> = HashMap::new();
        for image in parsed {
            let idx = *index.entry(image.path.clone()).or_insert_with(|| {
                images.push(PendingImage {
                    path: image.path.clone(),
                    listed_at: (path.clone(), image.line),
                    faces: Vec::new(),
                });
                images.len() - 1
            });
            if let Some(&first_line) = seen.get(&idx) {
                let kind = ProblemKind::DuplicateImage { path: image.path, first_line };
                problems.push(Problem::new(path, Some(image.line), kind));
                continue;
            }
            seen.insert(idx, image.line);
            order.push(idx);
            match style {
                SourceStyle::WiderGt(_) => add_wider_faces(&mut images[idx], image, &text),
                SourceStyle::LabelTxt(_) => add_label_faces(&mut images[idx], image, &text, &mut merge.matched),
                SourceStyle::FileList(_) => {}
            }
        }
        sources.push(SourceFile { path: path.clone(), style, order });
    }

    let both = files.wider_gt.as_ref().zip(files.label_txt.as_ref());
    problems.extend(missing_images(&images, &files.images_dir));
    for image in &images {
        let Some((wider_path, label_path)) = both else { continue };
        for pending in &image.faces {
            let unmatched = |file: &PathBuf, line: usize| UnmatchedFace {
                file: file.clone(),
                line,
                image: image.path.clone(),
                bbox: pending.face.bbox,
            };
            match (&pending.wider, &pending.label) {
                (Some((_, line)), None) => merge.only_in_wider.push(unmatched(wider_path, *line)),
                (None, Some((_, line))) => merge.only_in_label.push(unmatched(label_path, *line)),
                _ => {}
            }
        }
    }

    let images = images
        .into_iter()
        .map(|image| ImageEntry {
            path: image.path,
            faces: image
                .faces
                .into_iter()
                .map(|p| Face {
                    origin: Origin::read(p.face.clone(), p.wider.map(|w| w.0), p.label.map(|l| l.0)),
                    ..p.face
                })
                .collect(),
        })
        .collect();
    (Split { kind: files.kind, images_dir: files.images_dir, images, sources }, merge)
}

/// One problem per image file that does not exist. Checked on two threads: for a WIDER-size split
/// the file-system look-ups are a good part of opening it.
fn missing_images(images: &[PendingImage], images_dir: &Path) -> Vec<Problem> {
    let check = |chunk: &[PendingImage]| -> Vec<Problem> {
        chunk
            .iter()
            .filter(|image| !images_dir.join(&image.path).is_file())
            .map(|image| {
                let (file, line) = &image.listed_at;
                Problem::new(file, Some(*line), ProblemKind::MissingImage { path: images_dir.join(&image.path) })
            })
            .collect()
    };
    let (first, second) = images.split_at(images.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| check(second));
        let mut problems = check(first);
        problems.extend(other.join().expect("checking image files does not panic"));
        problems
    })
}

type Reader = fn(&TextFile, &mut Vec<Problem>) -> (Vec<ParsedImage>, SourceStyle);

/// A parsed file: its text (which the faces' source lines point into), images and style.
type Parsed = (Arc<str>, Vec<ParsedImage>, SourceStyle);

fn read_wider_gt(file: &TextFile, problems: &mut Vec<Problem>) -> (Vec<ParsedImage>, SourceStyle) {
    let (images, style) = wider_gt::parse(file, problems);
    (images, SourceStyle::WiderGt(style))
}

fn read_label_txt(file: &TextFile, problems: &mut Vec<Problem>) -> (Vec<ParsedImage>, SourceStyle) {
    let (images, style) = label_txt::parse(file, problems);
    (images, SourceStyle::LabelTxt(style))
}

fn read_file_list(file: &TextFile, problems: &mut Vec<Problem>) -> (Vec<ParsedImage>, SourceStyle) {
    let (images, style) = file_list::parse(file, problems);
    (images, SourceStyle::FileList(style))
}

fn add_wider_faces(image: &mut PendingImage, parsed: ParsedImage, file: &Arc<str>) {
    for (i, pf) in parsed.faces.into_iter().enumerate() {
        let line = SourceLine { index: i as u32, file: file.clone(), span: pf.span };
        image.faces.push(Pending { face: pf.face, wider: Some((line, pf.line)), label: None });
    }
}

/// Gives each `label.txt` face to the first face of the image with the same box that has no
/// landmark line yet (exact duplicates exist in WIDER FACE); the rest become faces of their own.
/// Linear in the faces: the faces still without a landmark line are queued by box, so an image
/// of 100,000 faces merges in milliseconds (a search per face made it quadratic).
fn add_label_faces(image: &mut PendingImage, parsed: ParsedImage, file: &Arc<str>, matched: &mut usize) {
    // Box corners as bits (with −0 read as 0, as `==` on floats does): equal boxes, equal keys.
    let key = |b: &crate::geometry::BBox| b.corners().map(|v| if v == 0.0 { 0.0f32.to_bits() } else { v.to_bits() });
    let mut waiting: std::collections::HashMap<[u32; 4], std::collections::VecDeque<usize>> =
        std::collections::HashMap::new();
    for (i, p) in image.faces.iter().enumerate().filter(|(_, p)| p.label.is_none()) {
        waiting.entry(key(&p.face.bbox)).or_default().push_back(i);
    }
    for (i, pf) in parsed.faces.into_iter().enumerate() {
        let line = (SourceLine { index: i as u32, file: file.clone(), span: pf.span }, pf.line);
        match waiting.get_mut(&key(&pf.face.bbox)).and_then(|queue| queue.pop_front()) {
            Some(index) => {
                let pending = &mut image.faces[index];
                pending.face.landmarks = pf.face.landmarks;
                pending.face.score = pf.face.score;
                pending.label = Some(line);
                *matched += 1;
            }
            None => image.faces.push(Pending { face: pf.face, wider: None, label: Some(line) }),
        }
    }
}
