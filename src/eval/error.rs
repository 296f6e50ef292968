//! Error types of the evaluation module.
//!
//! Every error that comes from a file names that file, and where it can, the MATLAB field or the
//! 1-based line that was wrong, so a user can fix the file without reading this code.

use std::path::PathBuf;

/// Why a ground truth could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum GroundTruthError {
    /// The file could not be read from disk.
    #[error("cannot read {file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `matrw` rejected the bytes (not a MAT v5/v7 file, truncated, corrupted).
    #[error("{file}: not a readable MAT-file: {reason}")]
    MatFormat { file: PathBuf, reason: String },
    /// A variable that the official tool loads is not in the file.
    #[error("{file}: missing key `{key}`")]
    MissingKey { file: PathBuf, key: &'static str },
    /// A field has the wrong MATLAB type or shape. `field` is written in MATLAB notation with
    /// 1-based indexes, e.g. `face_bbx_list{3}{12}`.
    #[error("{file}: `{field}`: expected {expected}, found {found}")]
    Shape { file: PathBuf, field: String, expected: String, found: String },
    /// A setting file does not describe the same events and images as `wider_face_val.mat`.
    #[error("{file}: `{field}` is {found}, but {reference} has {expected}")]
    Inconsistent { file: PathBuf, field: String, reference: PathBuf, expected: String, found: String },
    /// The same (event, image) pair appears twice.
    #[error("image {event}/{name} appears more than once")]
    DuplicateImage { event: String, name: String },
    /// A face box has a NaN or infinite coordinate.
    #[error("image {event}/{name}: face {face} (0-based) has a non-finite coordinate")]
    NonFiniteBox { event: String, name: String, face: usize },
    /// No setting was given: nothing could be evaluated.
    #[error("image {event}/{name}: {details} face details for {boxes} boxes")]
    DetailsCount { event: String, name: String, boxes: usize, details: usize },

    #[error("the ground truth needs at least one setting (keep lists)")]
    NoSettings,
    /// A setting has an empty name or shares its name with another setting.
    #[error("setting name `{name}` is empty or used twice")]
    BadSettingName { name: String },
    /// A setting does not have exactly one keep list per image.
    #[error("setting `{setting}` has {found} keep lists for {expected} images")]
    KeepListCount { setting: String, expected: usize, found: usize },
    /// A keep list names a face that the image does not have, or names it twice.
    #[error(
        "setting `{setting}`, image {event}/{name}: keep index {index} (0-based) is out of range \
         or repeated (the image has {faces} faces)"
    )]
    BadKeepIndex { setting: String, event: String, name: String, index: usize, faces: usize },
    /// A dataset folder given as ground truth could not be opened.
    #[error("cannot open the dataset in {dir}: {message}")]
    Dataset { dir: PathBuf, message: String },
    /// The dataset has no such split.
    #[error("the dataset in {dir} has no {split} split")]
    NoSplit { dir: PathBuf, split: &'static str },
}

/// Why predictions could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum PredictionError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An event folder or prediction file name is not valid UTF-8, so it cannot name an image.
    #[error("{path}: the name is not valid UTF-8")]
    NonUtf8Name { path: PathBuf },
    /// A line of a prediction file does not follow the submission format.
    #[error("{file}:{line}: {problem}")]
    Malformed {
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected and what was found.
        problem: String,
    },
    /// An in-memory detection has a NaN or infinite value.
    #[error("{event}/{name}: detection {index} (0-based) has a non-finite value")]
    NonFinite { event: String, name: String, index: usize },
}

/// A lookup for the error browser named something the ground truth does not have.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    #[error("no setting named `{0}` in the ground truth")]
    UnknownSetting(String),
    #[error("no image {event}/{name} in the ground truth")]
    UnknownImage { event: String, name: String },
}

/// The curve CSV could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct CsvError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Why the PR curve plot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the PR curve plot {}: {message}", path.display())]
pub struct PlotError {
    pub path: PathBuf,
    pub message: String,
}
