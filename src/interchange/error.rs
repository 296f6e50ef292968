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
    #[error(transparent)]
    Image(#[from] crate::detect::ImageError),
    #[error("{} is not a folder (--images names the folder the image paths are relative to)", .0.display())]
    NoImagesFolder(PathBuf),
    #[error("{}{position}: the image {} does not exist", file.display(), image.display())]
    MissingImage { file: PathBuf, position: Position, image: PathBuf },
    #[error("{}{position}: the image {} is not a regular file (a folder, FIFO, socket or device)", file.display(), image.display())]
    NotAFile { file: PathBuf, position: Position, image: PathBuf },
    #[error("the dataset in {} has no {split} split", root.display())]
    NoSplit { root: PathBuf, split: &'static str },
    #[error("the {split} split has only an image list, no faces to export")]
    NotAnnotated { split: &'static str },
    #[error("the images {first:?} and {second:?} would share the YOLO label file {}", label.display())]
    LabelClash { first: String, second: String, label: PathBuf },
    #[error(
        "the export would write {}, which is the dataset's own {} or inside it: an export never writes over the dataset it reads; choose an --out outside its annotation and image folders",
        path.display(), protected.display()
    )]
    IntoDataset { path: PathBuf, protected: PathBuf },
    #[error(
        "{} already holds annotation files of the {split} split ({}): --force writes over them, keeping .bak copies",
        root.display(), list(files)
    )]
    SplitExists { root: PathBuf, split: &'static str, files: Vec<PathBuf> },
    #[error(
        "{} already exists with other content{}: nothing was written; --force replaces them, keeping .bak copies",
        first.display(), if *count > 1 { format!(" (and {} other image(s))", count - 1) } else { String::new() }
    )]
    ImagesExist { first: PathBuf, count: usize },
    #[error("{} is in the way of an image and is not a regular file (a folder, FIFO or broken symlink): nothing was written", .0.display())]
    NotAFileToReplace(PathBuf),
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

/// The 1-based lines of byte offsets of `text` asked for in increasing order, counted as the
/// offsets move on: each byte is looked at once, however many offsets are asked for (an offset
/// before the last one asked for counts again from the start).
pub(crate) struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(text: &'a str) -> LineCounter<'a> {
        LineCounter { text, offset: 0, line: 1 }
    }

    /// The line holding byte `offset`.
    pub(crate) fn at(&mut self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        if end < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        self.line += self.text.as_bytes()[self.offset..end].iter().filter(|&&b| b == b'\n').count();
        self.offset = end;
        self.line
    }
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

    #[test]
    fn the_line_counter_agrees_with_line_of_forwards_and_backwards() {
        let text = "a\nbb\n\nccc\nd";
        let mut lines = LineCounter::new(text);
        for offset in [0, 1, 2, 5, 6, 7, 12, 99, 3, 0, 8] {
            assert_eq!(lines.at(offset), line_of(text, offset), "offset {offset}");
        }
    }
}
