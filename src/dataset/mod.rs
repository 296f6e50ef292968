//! WIDER FACE datasets on disk: the official split files, the RetinaFace `label.txt` landmark
//! annotations and the Pytorch_Retinaface layout, merged into one [`Dataset`] and saved back in
//! the formats they came from, byte for byte where nothing changed.

pub mod augment;
mod error;
mod face;
pub(crate) mod file_list;
pub(crate) mod label_txt;
pub(crate) mod layout;
mod merge;
mod source;
pub mod stats;
pub mod synth;
pub(crate) mod text;
pub(crate) mod wider_gt;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{DatasetError, Problem, ProblemKind, Severity};
pub use face::{
    Attributes, Blur, Expression, Face, FaceLandmarks, Illumination, LandmarkFlag, Occlusion, Origin, Pose,
};
pub use merge::{MergeReport, UnmatchedFace};
pub use source::Format;

use file_list::FileListStyle;
use label_txt::LabelStyle;
use wider_gt::WiderGtStyle;

/// The three WIDER FACE splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    Train,
    Val,
    Test,
}

impl SplitKind {
    pub const ALL: [SplitKind; 3] = [SplitKind::Train, SplitKind::Val, SplitKind::Test];

    pub fn name(self) -> &'static str {
        match self {
            SplitKind::Train => "train",
            SplitKind::Val => "val",
            SplitKind::Test => "test",
        }
    }
}

impl std::str::FromStr for SplitKind {
    type Err = String;

    fn from_str(text: &str) -> Result<SplitKind, String> {
        SplitKind::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| format!("expected train, val or test, got {text:?}"))
    }
}

/// A dataset: its splits, each with images and their faces.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The folder holding the dataset (the opened folder, or the sub-folder it was found in).
    pub root: PathBuf,
    pub splits: Vec<Split>,
}

/// One split and the files it was read from.
#[derive(Clone, Debug)]
pub struct Split {
    pub kind: SplitKind,
    /// Image paths are relative to this folder.
    pub images_dir: PathBuf,
    pub images: Vec<ImageEntry>,
    pub(crate) sources: Vec<SourceFile>,
}

/// An image and its faces.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageEntry {
    /// Relative to the split's image folder, `/`-separated: `<event>/<name>.jpg`.
    pub path: String,
    pub faces: Vec<Face>,
}

impl ImageEntry {
    /// The WIDER event folder (`0--Parade`), which the evaluation groups images by.
    pub fn event(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(event, _)| event)
    }

    /// The file name without its extension, as WIDER prediction files name images.
    pub fn stem(&self) -> &str {
        let name = self.path.rsplit_once('/').map_or(self.path.as_str(), |(_, name)| name);
        name.rsplit_once('.').map_or(name, |(stem, _)| stem)
    }
}

/// An annotation file of a split, with what saving it needs to reproduce it.
#[derive(Clone, Debug)]
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) style: SourceStyle,
    /// Indexes into `Split::images`, in this file's order.
    pub(crate) order: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum SourceStyle {
    WiderGt(WiderGtStyle),
    LabelTxt(LabelStyle),
    FileList(FileListStyle),
}

impl SourceStyle {
    fn format(self) -> Format {
        match self {
            SourceStyle::WiderGt(_) => Format::WiderGt,
            SourceStyle::LabelTxt(_) => Format::LabelTxt,
            SourceStyle::FileList(_) => Format::FileList,
        }
    }
}

impl Split {
    /// The annotation files this split was read from and will be saved to.
    pub fn source_files(&self) -> impl Iterator<Item = (&Path, Format)> {
        self.sources.iter().map(|s| (s.path.as_path(), s.style.format()))
    }

    /// False for a test split known only from an image list: it has images but no faces to show.
    pub fn is_annotated(&self) -> bool {
        self.sources.iter().any(|s| s.style.format() != Format::FileList)
    }

    pub fn image_path(&self, image: &ImageEntry) -> PathBuf {
        self.images_dir.join(&image.path)
    }

    /// The text each source file would have if saved now.
    fn render(&self, source: &SourceFile) -> String {
        let images = source.order.iter().map(|&i| (self.images[i].path.as_str(), self.images[i].faces.as_slice()));
        match source.style {
            SourceStyle::WiderGt(style) => wider_gt::write(images, style),
            SourceStyle::LabelTxt(style) => label_txt::write(images, style),
            SourceStyle::FileList(style) => file_list::write(images.map(|(p, _)| p), style),
        }
    }
}

/// What opening a dataset found besides the data: warnings and how the files were merged.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub warnings: Vec<Problem>,
    pub merges: Vec<MergeReport>,
}

/// Whether `path` holds a dataset (annotation files in a known layout, in it or a sub-folder):
/// what the studio checks to tell a dataset folder from a folder of photos.
pub fn is_dataset_folder(path: &Path) -> bool {
    layout::discover(path).is_ok()
}

impl Dataset {
    /// Opens the dataset in `root` (or in a sub-folder of it). Any error in any file fails the
    /// open with every problem listed; warnings (zero-size boxes) come back in the report.
    pub fn open(root: &Path) -> Result<(Dataset, LoadReport), DatasetError> {
        let (dataset, report, problems) = merge::load(root)?;
        let (errors, warnings): (Vec<Problem>, Vec<Problem>) =
            problems.into_iter().partition(|p| p.severity() == Severity::Error);
        if !errors.is_empty() {
            return Err(DatasetError::Invalid(errors));
        }
        Ok((dataset, LoadReport { warnings, ..report }))
    }

    /// Every problem of the dataset in `root`, errors and warnings, in file order.
    pub fn check(root: &Path) -> Result<Vec<Problem>, DatasetError> {
        merge::load(root).map(|(_, _, problems)| problems)
    }

    pub fn split(&self, kind: SplitKind) -> Option<&Split> {
        self.splits.iter().find(|s| s.kind == kind)
    }

    pub fn split_mut(&mut self, kind: SplitKind) -> Option<&mut Split> {
        self.splits.iter_mut().find(|s| s.kind == kind)
    }

    /// Writes every annotation file whose content changed, keeping the previous version as
    /// `<name>.bak`, all together ([`crate::fsutil::write_all_atomic`]: every new version is on
    /// disk before the first replaces its file). Returns the files written.
    pub fn save(&self) -> Result<Vec<PathBuf>, DatasetError> {
        let mut changed = Vec::new();
        for split in &self.splits {
            for source in &split.sources {
                let text = split.render(source);
                if std::fs::read(&source.path).is_ok_and(|old| old == text.as_bytes()) {
                    continue;
                }
                changed.push((source.path.clone(), text.into_bytes()));
            }
        }
        crate::fsutil::write_all_atomic(&changed, true)?;
        Ok(changed.into_iter().map(|(path, _)| path).collect())
    }
}
