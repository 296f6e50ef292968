//! Why annotations could not be exported or imported: each error names the file and, for a file
//! that does not parse, the position (line and column, line, or the item) and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::dataset::DatasetError;

/// Where in a file a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// 1-based line and column (JSON syntax and type errors, as serde_json reports them).
    LineColumn(usize, usize),
    /// 1-based line (XML elements, YOLO label lines, list entries).
    Line(usize),
    /// A named item where the parser has no line: `annotation id 17`, `categories`.
    Item(String),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::LineColumn(line, column) => write!(f, ":{line}:{column}"),
            Position::Line(line) => write!(f, ":{line}"),
            Position::Item(item) => write!(f, ": {item}"),
        }
    }
}

/// Why an export or an import stopped. Nothing is written before every input has been read and
/// checked, so an error in an annotation file leaves the output as it was.
#[derive(Debug, thiserror::Error)]
pub enum InterchangeError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}{position}: {message}", path.display())]
    Malformed { path: PathBuf, position: Position, message: String },
    #[error("cannot read the size of the image {}: {message}", path.display())]
    ImageSize { path: PathBuf, message: String },
    #[error("{} is not a folder (--images names the folder the image paths are relative to)", .0.display())]
    NoImagesFolder(PathBuf),
    #[error("{}: the image {} does not exist", file.display(), image.display())]
    MissingImage { file: PathBuf, image: PathBuf },
    #[error("the {split} split has only an image list, no faces to export")]
    NotAnnotated { split: &'static str },
    #[error("the images {first:?} and {second:?} would share the YOLO label file {}", label.display())]
    LabelClash { first: String, second: String, label: PathBuf },
    #[error(
        "{} already holds annotation files of the {split} split ({}): --force writes over them, keeping .bak copies",
        root.display(), list(files)
    )]
    SplitExists { root: PathBuf, split: &'static str, files: Vec<PathBuf> },
    #[error("{} already exists with other content: --force replaces it", .0.display())]
    ImageExists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot write the output: {0}")]
    Batch(#[from] crate::fsutil::BatchWriteError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

impl InterchangeError {
    pub(crate) fn malformed(path: &Path, position: Position, message: impl Into<String>) -> InterchangeError {
        InterchangeError::Malformed { path: path.to_path_buf(), position, message: message.into() }
    }
}

fn list(files: &[PathBuf]) -> String {
    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_like_compiler_locations() {
        let err = InterchangeError::malformed(Path::new("a.json"), Position::LineColumn(3, 14), "expected `,`");
        assert_eq!(err.to_string(), "a.json:3:14: expected `,`");
        let err = InterchangeError::malformed(Path::new("a.json"), Position::Item("annotation id 7".into()), "bad");
        assert_eq!(err.to_string(), "a.json: annotation id 7: bad");
    }

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
