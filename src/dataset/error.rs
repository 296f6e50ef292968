//! Every way annotation files can be wrong, each naming the file, the 1-based line and what was
//! expected, so a user can fix the file without reading our code.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a dataset on disk. Parsing goes on after a problem so that
/// `dataset check` can list them all in one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number; `None` for problems about a whole file.
    pub line: Option<usize>,
    pub kind: ProblemKind,
}

/// How serious a [`Problem`] is: errors stop `Dataset::open`, warnings are reported with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProblemKind {
    #[error("the file is empty")]
    EmptyFile,
    #[error("invalid UTF-8 (byte {byte} of the line); annotation files must be UTF-8 text")]
    InvalidUtf8 { byte: usize },
    #[error("expected an image path, found {found:?}{hint}")]
    ExpectedPath { found: String, hint: &'static str },
    #[error("expected the number of faces (a non-negative integer) after the image path, found {found:?}")]
    ExpectedCount { found: String },
    #[error("the face count says {declared} but {found} face line(s) follow")]
    CountMismatch { declared: usize, found: usize },
    #[error("expected {expected}, found {found} value(s)")]
    WrongValueCount { expected: &'static str, found: usize },
    #[error("{field}: expected a number, found {token:?}")]
    NotANumber { field: &'static str, token: String },
    #[error("{field}: {value} is not allowed; expected {expected}")]
    InvalidValue { field: String, value: String, expected: &'static str },
    #[error("the box has a negative size (w = {w}, h = {h})")]
    NegativeSize { w: f32, h: f32 },
    #[error("the box has zero size (w = {w}, h = {h}); it is kept but cannot be trained on")]
    ZeroSize { w: f32, h: f32 },
    #[error(
        "landmarks are partly missing (point {point} is -1 but others are given); write all 15 values as -1.0 or none"
    )]
    PartialLandmarks { point: usize },
    #[error("a face line before the first '# <image path>' header")]
    FaceBeforeHeader,
    #[error("the image path {path:?} leaves the dataset root (absolute or with '..')")]
    PathOutsideRoot { path: String },
    #[error("the image {path:?} is listed twice (first at line {first_line})")]
    DuplicateImage { path: String, first_line: usize },
    #[error("the image file {} does not exist", path.display())]
    MissingImage { path: PathBuf },
    #[error("cannot read the file: {message}")]
    Unreadable { message: String },
}

impl ProblemKind {
    pub fn severity(&self) -> Severity {
        match self {
            ProblemKind::ZeroSize { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl Problem {
    pub fn new(file: &Path, line: Option<usize>, kind: ProblemKind) -> Problem {
        Problem { file: file.to_path_buf(), line, kind }
    }

    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity() {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match self.line {
            Some(line) => write!(f, "{}:{}: {}: {}", self.file.display(), line, level, self.kind),
            None => write!(f, "{}: {}: {}", self.file.display(), level, self.kind),
        }
    }
}

/// Why a dataset could not be opened or saved.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{} does not exist or is not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("no WIDER FACE dataset in {}: looked for {looked_for}", root.display())]
    NotFound { root: PathBuf, looked_for: String },
    #[error("{}", summarize(.0))]
    Invalid(Vec<Problem>),
    #[error("{} already holds files: give an empty or new folder (or --force to write over it, keeping .bak copies of the annotation files)", .0.display())]
    NotEmpty(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A save stopped: which file, and which were already written.
    #[error("cannot save: {0}")]
    Save(#[from] crate::fsutil::BatchWriteError),
}

fn summarize(problems: &[Problem]) -> String {
    const SHOWN: usize = 10;
    let mut text = problems.iter().take(SHOWN).map(|p| p.to_string()).collect::<Vec<_>>().join("\n");
    if problems.len() > SHOWN {
        text.push_str(&format!("\n… and {} more (run `facestudio dataset check` for all)", problems.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_message_names_file_line_and_expectation() {
        let p = Problem::new(
            Path::new("wider_face_split/wider_face_val_bbx_gt.txt"),
            Some(7),
            ProblemKind::WrongValueCount { expected: "10 values", found: 9 },
        );
        assert_eq!(
            p.to_string(),
            "wider_face_split/wider_face_val_bbx_gt.txt:7: error: expected 10 values, found 9 value(s)"
        );
    }
}
