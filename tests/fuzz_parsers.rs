//! Property tests of every parser facestudio has: arbitrary bytes and mutated valid files go into
//! the dataset files, prediction files, MATLAB ground truth, model files and checkpoints, photos,
//! run-folder files and config JSON, and each must give back a value or an error, never a panic
//! (proptest catches a panic and reports the smallest input it found that causes it).
//!
//! Bounded on purpose: a fixed seed (`FACESTUDIO_FUZZ_SEED=<u64>` explores another one), a few
//! dozen to a few hundred cases per parser, small inputs, no failure files written. The whole
//! file runs in seconds in release mode. Tests that need the shared real files
//! (`$FACESTUDIO_ASSETS`) print a SKIPPED line without them.

mod common;

use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use burn::prelude::Device;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::dataset::{Dataset, DatasetError};
use facestudio::detect::load_image;
use facestudio::eval::{GroundTruth, Predictions};
use facestudio::model::{
    PRESETS, RetinaFace, RetinaFaceConfig, import_checkpoint, load_model, load_weights, save_model,
};
use facestudio::train::{
    OptimizerConfig, RunCurves, RunFile, RunFolder, RunState, StageTerms, TrainConfig, TrainEvent,
};
use matrw::{CellArray, MatFile, MatVariable, MatlabType, NumericArray, save_matfile_v7};
use proptest::arbitrary::any;
use proptest::collection::vec;
use proptest::sample::{Index, select};
use proptest::strategy::{Just, Strategy};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use proptest::{prop_assert, prop_oneof};

// ---------------------------------------------------------------------------------------------
// The runner

const DEFAULT_SEED: u64 = 0x00fa_ce5e_ed00_2024;

fn config(cases: u32, max_shrink_iters: u32) -> Config {
    let seed = std::env::var("FACESTUDIO_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    Config { cases, max_shrink_iters, failure_persistence: None, rng_seed: RngSeed::Fixed(seed), ..Config::default() }
}

/// Runs `test` on `cases` values of `strategy`; a failed assertion or a panic fails the test
/// with the (shrunk) input.
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    max_shrink_iters: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(config(cases, max_shrink_iters));
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{name}: {error}");
    }
}

// ---------------------------------------------------------------------------------------------
// Text inputs: random bytes, soups of tokens, and edits of a valid file

/// Words the text formats are made of, and the values that break naive parsers.
const TOKENS: &[&str] = &[
    "0",
    "1",
    "2",
    "10",
    "-1",
    "-1.0",
    "0.0",
    "1.5",
    "449",
    "-0",
    "+3",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e39",
    "-1e39",
    "3.4028235e38",
    "1e-45",
    "1e400",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "infinity",
    "0x10",
    "1_000",
    "\u{663}",
    "",
    " ",
    "\t",
    "\r",
    "\u{feff}",
    "\u{0}",
    "\u{202e}",
    "\u{e9}",
    "\u{1F600}",
    "#",
    "# ",
    "# 0--Portrait/0_Portrait_train_0.jpg",
    "/",
    "//",
    ".",
    "..",
    "../x.jpg",
    "/etc/passwd",
    "C:\\x.jpg",
    "\\\\srv\\x.jpg",
    "0--Portrait/0_Portrait_train_0.jpg",
    "1--Group/1_Group_train_1.jpg",
    "0--Portrait/0_Portrait_val_0.jpg",
    "0--Portrait",
    "a/b.jpg",
    "img.jpg",
    "1 2 3 4 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 ",
    "1 2 3 4",
    "1 1 2 3 0.5",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "null",
    "true",
    "false",
    "\"event\"",
    "\"step\"",
    "{\"event\":\"finished\",\"step\":1,\"stopped\":false}",
];

const SEPARATORS: &[&str] = &[" ", "\n", "\r\n", "\t", "", "  ", "\n\n"];

/// What a number in a valid file is replaced with.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "0.5",
    "65536",
    "999999999",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551616",
    "1e39",
    "-1e39",
    "1e-45",
    "1e400",
    "NaN",
    "inf",
    "",
    "-",
    "1.",
    ".5",
    "1e",
    "00",
];

#[derive(Clone, Debug)]
enum TextEdit {
    Flip(Index, u8),
    Truncate(Index),
    InsertBytes(Index, Vec<u8>),
    DuplicateLine(Index),
    DeleteLine(Index),
    SwapLines(Index, Index),
    InsertLine(Index, &'static str),
    /// Line, space-separated token, replacement.
    ReplaceToken(Index, Index, &'static str),
    /// A number (a run of digits, `.`, `-`, exponent) replaced.
    ReplaceNumber(Index, &'static str),
    Bom,
    Crlf,
    NoFinalNewline,
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        2 => (any::<Index>(), 1u8..=255).prop_map(|(at, xor)| TextEdit::Flip(at, xor)),
        1 => any::<Index>().prop_map(TextEdit::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| TextEdit::InsertBytes(at, bytes)),
        1 => any::<Index>().prop_map(TextEdit::DuplicateLine),
        1 => any::<Index>().prop_map(TextEdit::DeleteLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TextEdit::SwapLines(a, b)),
        1 => (any::<Index>(), select(TOKENS)).prop_map(|(at, line)| TextEdit::InsertLine(at, line)),
        2 => (any::<Index>(), any::<Index>(), select(TOKENS))
            .prop_map(|(line, token, with)| TextEdit::ReplaceToken(line, token, with)),
        3 => (any::<Index>(), select(NUMBERS)).prop_map(|(at, number)| TextEdit::ReplaceNumber(at, number)),
        1 => prop_oneof![Just(TextEdit::Bom), Just(TextEdit::Crlf), Just(TextEdit::NoFinalNewline)],
    ]
}

/// Replaces `range` of `bytes` with `with`.
fn replace(bytes: &mut Vec<u8>, range: Range<usize>, with: &[u8]) {
    let tail = bytes.split_off(range.end);
    bytes.truncate(range.start);
    bytes.extend_from_slice(with);
    bytes.extend_from_slice(&tail);
}

/// Where the numbers are: runs of digits with their sign, decimal point and exponent.
fn number_runs(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = if i > 0 && bytes[i - 1] == b'-' { i - 1 } else { i };
        let mut end = i;
        while end < bytes.len() {
            let b = bytes[end];
            let exponent = matches!(b, b'e' | b'E')
                && bytes.get(end + 1).is_some_and(|n| n.is_ascii_digit() || *n == b'-' || *n == b'+');
            let exponent_sign = matches!(b, b'-' | b'+') && matches!(bytes[end - 1], b'e' | b'E');
            if b.is_ascii_digit() || b == b'.' || exponent || exponent_sign {
                end += 1;
            } else {
                break;
            }
        }
        runs.push(start..end);
        i = end;
    }
    runs
}

fn edit_text(bytes: &mut Vec<u8>, edit: &TextEdit) {
    match edit {
        TextEdit::Flip(at, xor) => {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= *xor;
            }
        }
        TextEdit::Truncate(at) => {
            let len = at.index(bytes.len() + 1);
            bytes.truncate(len);
        }
        TextEdit::InsertBytes(at, extra) => {
            let i = at.index(bytes.len() + 1);
            replace(bytes, i..i, extra);
        }
        TextEdit::ReplaceNumber(at, number) => {
            let runs = number_runs(bytes);
            if !runs.is_empty() {
                let run = runs[at.index(runs.len())].clone();
                replace(bytes, run, number.as_bytes());
            }
        }
        TextEdit::Bom => replace(bytes, 0..0, &[0xef, 0xbb, 0xbf]),
        TextEdit::Crlf => {
            *bytes = bytes.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
        }
        TextEdit::NoFinalNewline => {
            while matches!(bytes.last(), Some(b'\n' | b'\r')) {
                bytes.pop();
            }
        }
        TextEdit::DuplicateLine(_)
        | TextEdit::DeleteLine(_)
        | TextEdit::SwapLines(..)
        | TextEdit::InsertLine(..)
        | TextEdit::ReplaceToken(..) => {
            let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let n = lines.len();
            match edit {
                TextEdit::DuplicateLine(at) => {
                    let i = at.index(n);
                    let line = lines[i].clone();
                    lines.insert(i, line);
                }
                TextEdit::DeleteLine(at) => {
                    if n > 1 {
                        lines.remove(at.index(n));
                    }
                }
                TextEdit::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
                TextEdit::InsertLine(at, line) => lines.insert(at.index(n + 1), line.as_bytes().to_vec()),
                TextEdit::ReplaceToken(line, token, with) => {
                    let i = line.index(n);
                    let mut tokens: Vec<Vec<u8>> = lines[i].split(|&b| b == b' ').map(<[u8]>::to_vec).collect();
                    let j = token.index(tokens.len());
                    tokens[j] = with.as_bytes().to_vec();
                    lines[i] = tokens.join(&b' ');
                }
                _ => unreachable!("only line edits get here"),
            }
            *bytes = lines.join(&b'\n');
        }
    }
}

#[derive(Clone, Debug)]
enum TextInput {
    Random(Vec<u8>),
    Soup(Vec<(&'static str, &'static str)>),
    Edits(Vec<TextEdit>),
}

impl TextInput {
    fn render(&self, valid: &[u8]) -> Vec<u8> {
        match self {
            TextInput::Random(bytes) => bytes.clone(),
            TextInput::Soup(words) => words.iter().flat_map(|(word, sep)| word.bytes().chain(sep.bytes())).collect(),
            TextInput::Edits(edits) => {
                let mut bytes = valid.to_vec();
                for edit in edits {
                    edit_text(&mut bytes, edit);
                }
                bytes
            }
        }
    }

    /// Not derived from a valid file.
    fn is_arbitrary(&self) -> bool {
        !matches!(self, TextInput::Edits(_))
    }
}

fn text_input() -> impl Strategy<Value = TextInput> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..256).prop_map(TextInput::Random),
        2 => vec((select(TOKENS), select(SEPARATORS)), 0..48).prop_map(TextInput::Soup),
        5 => vec(text_edit(), 1..=6).prop_map(TextInput::Edits),
    ]
}

// ---------------------------------------------------------------------------------------------
// Binary inputs: random bytes, a known start then random bytes, and bounded edits of a valid file

/// Values written over 4 bytes (size and count fields). Symmetric enough to matter in either
/// byte order.
const EXTREME_U32: &[u32] =
    &[0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x0100_0000, 0x7fff_ffff, 0xffff_ff7f, 0x8000_0000, 0x0000_0080, 0xffff_ffff];

#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(Index, u8),
    /// Offset from the start (modulo the length): headers live there.
    FlipNearStart(usize, u8),
    /// Offset from the end: zip central directories live there.
    FlipNearEnd(usize, u8),
    Truncate(Index),
    SetU32(Index, u32),
    SetU32NearStart(usize, u32),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        3 => (any::<Index>(), 1u8..=255).prop_map(|(at, xor)| ByteEdit::Flip(at, xor)),
        3 => (0usize..16_384, 1u8..=255).prop_map(|(at, xor)| ByteEdit::FlipNearStart(at, xor)),
        1 => (0usize..4_096, 1u8..=255).prop_map(|(at, xor)| ByteEdit::FlipNearEnd(at, xor)),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), select(EXTREME_U32)).prop_map(|(at, value)| ByteEdit::SetU32(at, value)),
        2 => (0usize..4_096, select(EXTREME_U32)).prop_map(|(at, value)| ByteEdit::SetU32NearStart(at, value)),
        1 => (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| ByteEdit::Insert(at, bytes)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, n)| ByteEdit::Remove(at, n)),
    ]
}

fn edit_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    let len = bytes.len();
    match edit {
        ByteEdit::Flip(at, xor) if len > 0 => bytes[at.index(len)] ^= *xor,
        ByteEdit::FlipNearStart(offset, xor) if len > 0 => bytes[offset % len] ^= *xor,
        ByteEdit::FlipNearEnd(offset, xor) if len > 0 => bytes[len - 1 - offset % len] ^= *xor,
        ByteEdit::Truncate(at) => bytes.truncate(at.index(len + 1)),
        ByteEdit::SetU32(at, value) if len >= 4 => {
            let i = at.index(len - 3);
            bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
        }
        ByteEdit::SetU32NearStart(offset, value) if len >= 4 => {
            let i = offset % (len - 3);
            bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
        }
        ByteEdit::Insert(at, extra) => {
            let i = at.index(len + 1);
            replace(bytes, i..i, extra);
        }
        ByteEdit::Remove(at, n) if len > 0 => {
            let i = at.index(len);
            replace(bytes, i..(i + n).min(len), &[]);
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum BinInput {
    Random(Vec<u8>),
    /// One of the test's known starts (magic numbers, headers), then random bytes.
    Prefixed(Index, Vec<u8>),
    /// The valid file cut somewhere, then random bytes.
    Spliced(Index, Vec<u8>),
    Edits(Vec<ByteEdit>),
}

impl BinInput {
    fn render(&self, valid: &[u8], prefixes: &[Vec<u8>]) -> Vec<u8> {
        match self {
            BinInput::Random(bytes) => bytes.clone(),
            BinInput::Prefixed(which, bytes) => {
                let mut out =
                    if prefixes.is_empty() { Vec::new() } else { prefixes[which.index(prefixes.len())].clone() };
                out.extend_from_slice(bytes);
                out
            }
            BinInput::Spliced(at, bytes) => {
                let mut out = valid[..at.index(valid.len() + 1)].to_vec();
                out.extend_from_slice(bytes);
                out
            }
            BinInput::Edits(edits) => {
                let mut out = valid.to_vec();
                for edit in edits {
                    edit_bytes(&mut out, edit);
                }
                out
            }
        }
    }
}

fn bin_input() -> impl Strategy<Value = BinInput> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..256).prop_map(BinInput::Random),
        1 => (any::<Index>(), vec(any::<u8>(), 0..256)).prop_map(|(which, bytes)| BinInput::Prefixed(which, bytes)),
        1 => (any::<Index>(), vec(any::<u8>(), 0..64)).prop_map(|(at, bytes)| BinInput::Spliced(at, bytes)),
        4 => vec(byte_edit(), 1..=8).prop_map(BinInput::Edits),
    ]
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------
// Dataset files: WIDER split files, RetinaFace label.txt, image lists

const ANNOTATION_FILES: [&str; 5] = [
    "wider_face_split/wider_face_train_bbx_gt.txt",
    "wider_face_split/wider_face_val_bbx_gt.txt",
    "wider_face_split/wider_face_test_filelist.txt",
    "retinaface_gt_v1.1/train/label.txt",
    "retinaface_gt_v1.1/val/label.txt",
];

/// A small synthetic dataset in the official layout, with a test split listing the val images.
fn synth_dataset(root: &Path) {
    // Three train and two val images, small; `..SynthConfig::new` keeps the literal valid
    // whatever fields SynthConfig gains.
    let config = SynthConfig { min_size: (48, 40), max_size: (64, 56), ..SynthConfig::new(3, 5) };
    generate(root, &config).unwrap_or_else(|e| panic!("{e}"));
    let val_images = root.join("WIDER_val/images");
    let mut list = String::new();
    for image in files_under(&val_images) {
        let rel = image.strip_prefix(&val_images).unwrap_or_else(|e| panic!("{e}"));
        let rel = rel.to_str().unwrap_or_else(|| panic!("{} is not UTF-8", rel.display())).replace('\\', "/");
        write(&root.join("WIDER_test/images").join(&rel), &read(&image));
        list.push_str(&rel);
        list.push('\n');
    }
    write(&root.join(ANNOTATION_FILES[2]), list.as_bytes());
}

/// Guards the WIDER split parser, the `label.txt` parser, the image-list parser and their merge
/// (`Dataset::open`): any bytes in any annotation file are a dataset or an error listing problems
/// that each name one of the files, and a dataset that opens saves to files that open again.
#[test]
fn dataset_files_open_or_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    synth_dataset(root);
    let (dataset, _) = Dataset::open(root).unwrap_or_else(|e| panic!("the unmutated dataset: {e}"));
    assert_eq!(dataset.splits.len(), 3);
    let originals: Vec<(PathBuf, Vec<u8>)> = ANNOTATION_FILES
        .iter()
        .map(|rel| {
            let path = root.join(rel);
            let bytes = read(&path);
            (path, bytes)
        })
        .collect();
    check("dataset files", 192, 64, (any::<Index>(), text_input()), |(which, input)| {
        for (path, bytes) in &originals {
            write(path, bytes);
        }
        let (path, original) = &originals[which.index(originals.len())];
        write(path, &input.render(original));
        match Dataset::open(root) {
            Ok((dataset, _)) => {
                if let Err(e) = dataset.save() {
                    prop_assert!(false, "a dataset that opened could not be saved: {e}");
                }
                let reopened = Dataset::open(root).map(|_| ());
                prop_assert!(reopened.is_ok(), "the saved dataset does not open again: {:?}", reopened);
            }
            Err(DatasetError::Invalid(problems)) => {
                prop_assert!(!problems.is_empty());
                for problem in &problems {
                    prop_assert!(
                        originals.iter().any(|(file, _)| *file == problem.file),
                        "{problem} names no annotation file"
                    );
                }
                let message = DatasetError::Invalid(problems).to_string();
                prop_assert!(!message.is_empty());
            }
            Err(other) => prop_assert!(false, "expected a dataset or its problems, got: {other}"),
        }
        Ok(())
    });
}

/// Guards the face count of the WIDER split file: a count near or past the integer limits is an
/// error at the count line (line 2), not an allocation failure that aborts the process or a
/// capacity-overflow panic.
#[test]
fn huge_face_counts_are_an_error_at_their_line() {
    let counts = ["18446744073709551615", "4294967296", "18446744073709551616", "99999999999999999999999"];
    let tails = [
        "1 2 3 4 0 0 0 0 0 0 \n",
        "",
        "0 0 0 0 0 0 0 0 0 0 \n",
        "1 2 3 4 0 0 0 0 0 0 \nc/d.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n",
    ];
    for count in counts {
        for tail in tails {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let gt = format!("a/b.jpg\n{count}\n{tail}");
            write(&dir.path().join(ANNOTATION_FILES[1]), gt.as_bytes());
            write(&dir.path().join("WIDER_val/images/a/b.jpg"), b"jpeg");
            write(&dir.path().join("WIDER_val/images/c/d.jpg"), b"jpeg");
            let message = match Dataset::open(dir.path()) {
                Ok(_) => panic!("a face count of {count} opened: {gt:?}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains("wider_face_val_bbx_gt.txt:2:"), "{gt:?} gave {message}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Prediction files (WIDER submission folders)

const PREDICTION: &str = "0_Parade_1.jpg\n3\n1 2 30 40 0.99\n10.5 20.25 5 6 0.5 \n-3 -4 1e3 2 -0.1\r\n\n";

/// Guards the submission-file parser (`Predictions::read_dir`): any bytes in a prediction file are
/// predictions with finite values only, or an error naming that file.
#[test]
fn prediction_files_read_or_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = dir.path().join("0--Parade/0_Parade_1.txt");
    write(&target, PREDICTION.as_bytes());
    write(&dir.path().join("1--Handshaking/1_Handshaking_2.txt"), b"1_Handshaking_2.jpg\n0\n");
    let baseline = Predictions::read_dir(dir.path()).unwrap_or_else(|e| panic!("the unmutated predictions: {e}"));
    assert_eq!(baseline.get("0--Parade", "0_Parade_1").map(<[_]>::len), Some(3));
    check("prediction files", 256, 128, text_input(), |input| {
        write(&target, &input.render(PREDICTION.as_bytes()));
        match Predictions::read_dir(dir.path()) {
            Ok(predictions) => {
                prop_assert!(predictions.get("0--Parade", "0_Parade_1").is_some());
                for (_, _, detections) in predictions.iter() {
                    for d in detections {
                        prop_assert!([d.x, d.y, d.w, d.h, d.score].iter().all(|v| v.is_finite()), "{d:?}");
                    }
                }
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains("0_Parade_1"), "{message}");
            }
        }
        Ok(())
    });
}

/// Guards the detection count of a prediction file: a count near or past the integer limits is
/// an error where the announced detections run out (line 4), not an allocation failure.
#[test]
fn huge_detection_counts_are_an_error_at_their_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("ev/img.txt");
    for count in ["18446744073709551615", "4294967296"] {
        for tail in ["1 1 2 3 0.5\n", "1 1 2 3 0.5"] {
            let text = format!("img.jpg\n{count}\n{tail}");
            write(&file, text.as_bytes());
            let message = match Predictions::read_dir(dir.path()) {
                Ok(_) => panic!("a detection count of {count} was read: {text:?}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains("img.txt:4:"), "{text:?} gave {message}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The official MATLAB ground truth

const MAT_FILES: [&str; 4] = ["wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat"];

fn mat_chars(s: &str) -> MatVariable {
    MatVariable::from(s)
}

fn mat_column(values: Vec<MatVariable>) -> MatVariable {
    let n = values.len();
    match CellArray::new(vec![n, 1], values) {
        Ok(cell) => MatVariable::CellArray(cell),
        Err(e) => panic!("{e}"),
    }
}

fn mat_doubles(dim: Vec<usize>, values: Vec<f64>) -> MatVariable {
    match NumericArray::new(dim, MatlabType::F64(values), None) {
        Ok(array) => MatVariable::NumericArray(array),
        Err(e) => panic!("{e}"),
    }
}

/// The four official files for two events (images with 2, 1 and 0 faces), written with matrw,
/// compressed or not (uncompressed, the edits reach the sizes and dimensions directly).
fn write_official_mats(dir: &Path, compress: bool) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    let keeps: [Option<[Vec<Vec<f64>>; 2]>; 4] = [
        None,
        Some([vec![vec![1.0], vec![]], vec![vec![]]]),
        Some([vec![vec![2.0, 1.0], vec![1.0]], vec![vec![]]]),
        Some([vec![vec![1.0, 2.0], vec![1.0]], vec![vec![]]]),
    ];
    for (file, keep) in MAT_FILES.iter().zip(keeps) {
        let mut mat = MatFile::new();
        mat.insert("event_list", mat_column(vec![mat_chars("0--Parade"), mat_chars("1--Handshaking")]));
        mat.insert(
            "file_list",
            mat_column(vec![
                mat_column(vec![mat_chars("img_a"), mat_chars("img_b")]),
                mat_column(vec![mat_chars("img_c")]),
            ]),
        );
        mat.insert(
            "face_bbx_list",
            mat_column(vec![
                mat_column(vec![
                    mat_doubles(vec![2, 4], vec![1.0, 50.0, 2.0, 60.0, 10.0, 11.0, 12.0, 13.0]),
                    mat_doubles(vec![1, 4], vec![5.0, 6.0, 7.0, 8.0]),
                ]),
                mat_column(vec![mat_doubles(vec![0, 0], vec![])]),
            ]),
        );
        if let Some(events) = keep {
            let lists = events
                .into_iter()
                .map(|lists| {
                    mat_column(lists.into_iter().map(|l| mat_doubles(vec![l.len(), 1], l)).collect::<Vec<_>>())
                })
                .collect::<Vec<_>>();
            mat.insert("gt_list", mat_column(lists));
        }
        let path = dir.join(file);
        let path = path.to_str().unwrap_or_else(|| panic!("{} is not UTF-8", path.display()));
        if let Err(e) = save_matfile_v7(path, mat, compress) {
            panic!("{e}");
        }
    }
}

/// Writes the first `mutated + 1` official files into `dir` (the later ones removed), file
/// `mutated` replaced by `bytes`: the loader stops at the first file that fails, so the files
/// after the mutated one would only cost time.
fn lay_out_mats(dir: &Path, originals: &[Vec<u8>], mutated: usize, bytes: &[u8]) {
    for (i, file) in MAT_FILES.iter().enumerate() {
        let path = dir.join(file);
        match i.cmp(&mutated) {
            std::cmp::Ordering::Less => write(&path, &originals[i]),
            std::cmp::Ordering::Equal => write(&path, bytes),
            std::cmp::Ordering::Greater => {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// The start of a MAT v5/v7 file: 116 bytes of text, the subsystem offset, version, endian mark.
fn mat_header() -> Vec<u8> {
    let mut header = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024".to_vec();
    header.resize(116, b' ');
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&[0x00, 0x01]);
    header.extend_from_slice(b"IM");
    header
}

fn ground_truth_error(dir: &Path) -> Option<String> {
    GroundTruth::from_official_dir(dir).err().map(|e| e.to_string())
}

/// Guards the MAT-file reader of the official ground truth (`GroundTruth::from_official_dir`, on
/// top of matrw): arbitrary and mutated `.mat` files, compressed or not, are a ground truth or
/// an error naming the file, never a panic (matrw's own panics must stay caught).
#[test]
fn small_official_mat_files_load_or_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut originals: Vec<Vec<Vec<u8>>> = Vec::new();
    for compress in [false, true] {
        let template = dir.path().join(format!("template-{compress}"));
        write_official_mats(&template, compress);
        let gt = GroundTruth::from_official_dir(&template).unwrap_or_else(|e| panic!("the unmutated files: {e}"));
        assert_eq!(gt.images().len(), 3);
        originals.push(MAT_FILES.iter().map(|f| read(&template.join(f))).collect());
    }
    let header = mat_header();
    let first_element = originals[0][0][..originals[0][0].len().min(136)].to_vec();
    let prefixes = vec![header, first_element];
    let work = dir.path().join("work");
    check("small .mat files", 256, 64, (any::<bool>(), 0usize..4, bin_input()), |(compress, mutated, input)| {
        let files = &originals[usize::from(compress)];
        lay_out_mats(&work, files, mutated, &input.render(&files[mutated], &prefixes));
        if let Some(message) = ground_truth_error(&work) {
            prop_assert!(message.contains(".mat"), "{message}");
        }
        Ok(())
    });
}

/// Guards the same reader on the real official files (`$FACESTUDIO_ASSETS/widerface_eval`):
/// a few bounded mutations each (bytes flipped, sizes overwritten, truncation).
#[test]
fn real_official_mat_files_mutated_load_or_fail_naming_the_file() {
    let Some(assets) = common::assets("real_official_mat_files_mutated_load_or_fail_naming_the_file") else {
        return;
    };
    let source = assets.join("widerface_eval");
    if !MAT_FILES.iter().all(|f| source.join(f).is_file()) {
        println!("SKIPPED: real_official_mat_files_mutated_load_or_fail_naming_the_file: no {}", source.display());
        return;
    }
    let originals: Vec<Vec<u8>> = MAT_FILES.iter().map(|f| read(&source.join(f))).collect();
    let prefixes = vec![mat_header()];
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    check("official .mat files", 16, 8, (0usize..4, bin_input()), |(mutated, input)| {
        lay_out_mats(dir.path(), &originals, mutated, &input.render(&originals[mutated], &prefixes));
        if let Some(message) = ground_truth_error(dir.path()) {
            prop_assert!(message.contains(".mat"), "{message}");
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Model files and checkpoints

const MODEL_EXTENSIONS: &[&str] = &["bpk", "pth", "pt", "safetensors", "bin"];

fn fd1mb() -> RetinaFaceConfig {
    RetinaFaceConfig::preset("fd1mb-mnet").unwrap_or_else(|e| panic!("{e}"))
}

/// A native model file and a safetensors checkpoint of a freshly initialised fd1mb-mnet.
fn model_samples(dir: &Path, device: &Device) -> (PathBuf, PathBuf) {
    let model = RetinaFace::new(&fd1mb(), device);
    let bpk = dir.join("sample.bpk");
    save_model(&model, &bpk).unwrap_or_else(|e| panic!("{e}"));
    let safetensors = dir.join("sample.safetensors");
    let mut store = SafetensorsStore::from_file(&safetensors).with_to_adapter(BurnToPyTorchAdapter);
    model.save_into(&mut store).unwrap_or_else(|e| panic!("{e:?}"));
    (bpk, safetensors)
}

/// Starts of the checkpoint containers: ours, safetensors (header length + JSON header, some
/// lying about their tensors), legacy PyTorch pickles and PyTorch zips.
fn model_prefixes(samples: &[&Path]) -> Vec<Vec<u8>> {
    let mut prefixes: Vec<Vec<u8>> = samples
        .iter()
        .map(|p| {
            let bytes = read(p);
            bytes[..bytes.len().min(64)].to_vec()
        })
        .collect();
    // Pickle protocol 2 + the legacy torch magic number 0x1950a86a20f9469cfc6c, then STOP.
    prefixes.push(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e".to_vec());
    prefixes.push(b"\x80\x02}q\x00(X\x0a\x00\x00\x00state_dictq\x01".to_vec());
    prefixes.push(b"PK\x03\x04".to_vec());
    for length in [2u64, 64, 1 << 20, 100_000_001, u64::MAX] {
        let mut prefix = length.to_le_bytes().to_vec();
        prefix.push(b'{');
        prefixes.push(prefix);
    }
    for header in [
        r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#,
        r#"{"backbone.stage1.0.spatial.conv.weight":{"dtype":"F32","shape":[8,3,3,3],"data_offsets":[0,864]}}"#,
        r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,4]}}"#,
        r#"{"__metadata__":{"format":"pt"}}"#,
    ] {
        let mut prefix = (header.len() as u64).to_le_bytes().to_vec();
        prefix.extend_from_slice(header.as_bytes());
        prefixes.push(prefix);
    }
    prefixes
}

/// Loads `path` the way its extension asks: a native model file, or a checkpoint with a preset.
fn load_any(path: &Path, config: &RetinaFaceConfig, device: &Device) -> Result<(), String> {
    let name = path.to_string_lossy();
    if name.ends_with(".bpk") {
        load_model(path, device).map(|_| ()).map_err(|e| e.to_string())
    } else {
        import_checkpoint(path, config, device).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Guards the model-file and checkpoint readers (`load_model`, `import_checkpoint`,
/// `load_weights`): arbitrary bytes under any extension are an error naming the file.
#[test]
fn arbitrary_bytes_are_not_a_model() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (bpk, safetensors) = model_samples(dir.path(), &device);
    let prefixes = model_prefixes(&[bpk.as_path(), safetensors.as_path()]);
    let config = fd1mb();
    check("arbitrary model files", 96, 32, (select(MODEL_EXTENSIONS), bin_input()), |(extension, input)| {
        let path = dir.path().join(format!("arbitrary.{extension}"));
        write(&path, &input.render(&[], &prefixes));
        let results = [
            load_model(&path, &device).map(|_| ()).map_err(|e| e.to_string()),
            import_checkpoint(&path, &config, &device).map(|_| ()).map_err(|e| e.to_string()),
            load_weights(&path, Some("fd1mb-mnet"), &device).map(|_| ()).map_err(|e| e.to_string()),
        ];
        for result in results {
            match result {
                Ok(()) => prop_assert!(false, "arbitrary bytes loaded as a model"),
                Err(message) => prop_assert!(message.contains("arbitrary."), "{message}"),
            }
        }
        Ok(())
    });
}

/// Guards the same readers on mutated valid files (a native model file and a safetensors
/// checkpoint): a model or an error naming the file.
#[test]
fn mutated_model_files_load_or_fail_naming_the_file() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (bpk, safetensors) = model_samples(dir.path(), &device);
    load_model(&bpk, &device).unwrap_or_else(|e| panic!("the unmutated model file: {e}"));
    let prefixes = model_prefixes(&[bpk.as_path(), safetensors.as_path()]);
    let samples = [("bpk", read(&bpk)), ("safetensors", read(&safetensors))];
    let config = fd1mb();
    check("mutated model files", 48, 16, (any::<Index>(), bin_input()), |(which, input)| {
        let (extension, valid) = &samples[which.index(samples.len())];
        let path = dir.path().join(format!("mutated.{extension}"));
        write(&path, &input.render(valid, &prefixes));
        let mut results = vec![load_any(&path, &config, &device)];
        if *extension == "bpk" {
            results.push(load_weights(&path, None, &device).map(|_| ()).map_err(|e| e.to_string()));
        }
        for result in results {
            if let Err(message) = result {
                prop_assert!(message.contains("mutated."), "{message}");
            }
        }
        Ok(())
    });
}

/// Guards the PyTorch readers (legacy pickle, zip) and the safetensors reader on the real
/// checkpoints of `$FACESTUDIO_ASSETS/weights` (those of at most 16 MiB), mutated.
#[test]
fn real_checkpoints_mutated_import_or_fail_naming_the_file() {
    const TEST: &str = "real_checkpoints_mutated_import_or_fail_naming_the_file";
    let Some(assets) = common::assets(TEST) else { return };
    let weights = assets.join("weights");
    let mut files: Vec<PathBuf> = fs::read_dir(&weights)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|path| {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        ["pth", "pt", "safetensors", "bpk"].contains(&extension)
            && fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= 16 << 20)
    });
    files.sort();
    if files.is_empty() {
        println!("SKIPPED: {TEST}: no checkpoint of at most 16 MiB in {}", weights.display());
        return;
    }
    let samples: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|path| (path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()), read(path)))
        .collect();
    let device = Device::flex();
    let config = fd1mb();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cases = (12 * samples.len() as u32).min(48);
    check("real checkpoints", cases, 8, (any::<Index>(), bin_input()), |(which, input)| {
        let (name, valid) = &samples[which.index(samples.len())];
        let path = dir.path().join(format!("mutated-{name}"));
        write(&path, &input.render(valid, &[]));
        if let Err(message) = load_any(&path, &config, &device) {
            prop_assert!(message.contains("mutated-"), "{message}");
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Photos

/// A JPEG APP1 segment with an EXIF orientation of 6 (rotate 90°): little-endian TIFF header,
/// one IFD with the one SHORT entry 0x0112.
const EXIF_APP1: &[u8] = &[
    0xff, 0xe1, 0x00, 0x22, b'E', b'x', b'i', b'f', 0, 0, b'I', b'I', 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

const PHOTO_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp", "txt"];

/// Small valid photos in every format facestudio decodes (and pixel layouts it converts).
fn photo_samples(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let rgb = image::RgbImage::from_fn(12, 9, |x, y| image::Rgb([(x * 20) as u8, (y * 28) as u8, 128]));
    let gray = image::GrayImage::from_fn(12, 9, |x, y| image::Luma([(x * y * 3) as u8]));
    let rgba = image::RgbaImage::from_fn(12, 9, |x, y| image::Rgba([(x * 20) as u8, 40, (y * 28) as u8, 200]));
    let rgb16 = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(12, 9, |x, y| {
        image::Rgb([(x * 5000) as u16, (y * 7000) as u16, 30000])
    });
    let saved = |path: &Path, result: image::ImageResult<()>| {
        result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        read(path)
    };
    let mut samples = Vec::new();
    for extension in ["png", "jpg", "bmp", "webp"] {
        let path = dir.join(format!("sample.{extension}"));
        samples.push((extension, saved(&path, rgb.save(&path))));
    }
    let (gray_path, rgba_path, rgb16_path) = (dir.join("gray.png"), dir.join("rgba.png"), dir.join("rgb16.png"));
    samples.push(("png", saved(&gray_path, gray.save(&gray_path))));
    samples.push(("png", saved(&rgba_path, rgba.save(&rgba_path))));
    samples.push(("png", saved(&rgb16_path, rgb16.save(&rgb16_path))));
    let mut exif = samples[1].1.clone();
    replace(&mut exif, 2..2, EXIF_APP1);
    samples.push(("jpg", exif));
    samples
}

/// Guards the photo decoding (`load_image`: format guess, the PNG/JPEG/BMP/WebP decoders, EXIF
/// orientation): arbitrary and mutated photos under any extension are a picture or an error
/// naming the file.
#[test]
fn photos_decode_or_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let samples = photo_samples(dir.path());
    for (i, (extension, bytes)) in samples.iter().enumerate() {
        let path = dir.path().join(format!("baseline-{i}.{extension}"));
        write(&path, bytes);
        let picture = load_image(&path).unwrap_or_else(|e| panic!("the unmutated sample: {e}"));
        assert!(matches!(picture.dimensions(), (12, 9) | (9, 12)), "{}: {:?}", path.display(), picture.dimensions());
    }
    let mut prefixes: Vec<Vec<u8>> = vec![
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"\xff\xd8\xff\xe0".to_vec(),
        b"\xff\xd8".to_vec(),
        b"BM".to_vec(),
        b"RIFF\x00\x00\x00\x00WEBPVP8L".to_vec(),
        b"RIFF\xff\xff\xff\xffWEBPVP8 ".to_vec(),
        b"GIF89a".to_vec(),
        b"II*\x00".to_vec(),
    ];
    prefixes.extend(samples.iter().map(|(_, bytes)| bytes[..bytes.len().min(48)].to_vec()));
    let extension = prop_oneof![Just(None::<&'static str>), select(PHOTO_EXTENSIONS).prop_map(Some)];
    let strategy = (any::<Index>(), extension, bin_input());
    check("photos", 256, 64, strategy, |(which, extension, input)| {
        let (own, valid) = &samples[which.index(samples.len())];
        let path = dir.path().join(format!("photo.{}", extension.unwrap_or(*own)));
        write(&path, &input.render(valid, &prefixes));
        if let Err(e) = load_image(&path) {
            let message = e.to_string();
            prop_assert!(message.contains("photo."), "{message}");
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Run folders: metrics.jsonl, state.json, optimizer.bin

fn sample_events() -> Vec<TrainEvent> {
    let terms = StageTerms { classification: 1.25, boxes: 0.5, landmarks: 2.0 };
    vec![
        TrainEvent::Started { epochs: 2, steps_per_epoch: 3, resumed_at_step: 0, devices: Vec::new() },
        TrainEvent::Step {
            step: 1,
            epoch: 1,
            loss: 3.75,
            stages: vec![terms.clone(), terms],
            lr: 0.001,
            images_per_s: 12.5,
            eta_s: 30.0,
        },
        TrainEvent::EpochEnd { epoch: 1, step: 3, mean_loss: 3.5 },
        TrainEvent::Val {
            epoch: 1,
            step: 3,
            ap: vec![("easy".into(), 0.5), ("hard".into(), 0.25)],
            stages: vec![vec![("easy".into(), 0.4)], vec![("easy".into(), 0.5)]],
        },
        TrainEvent::Checkpoint { epoch: 1, step: 3, path: PathBuf::from("checkpoint-00000003") },
        TrainEvent::Warning { message: "a warning".into() },
        TrainEvent::Paused { step: 4 },
        TrainEvent::Resumed { step: 4 },
        TrainEvent::Error { message: "an error".into() },
        TrainEvent::Finished { step: 6, stopped: false },
    ]
}

/// Guards the run-folder event log readers (`RunFolder::read_metrics`, `is_finished`,
/// `RunFile::refresh` and the curves built from the events): any `metrics.jsonl` is events or,
/// only when it is not UTF-8, an error; lines that are not events are skipped.
#[test]
fn metrics_lines_read_back_or_are_skipped() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = RunFolder::new(dir.path().join("run"));
    fs::create_dir_all(run.dir()).unwrap_or_else(|e| panic!("{e}"));
    write(&run.model_path(), b"not read: is_finished only looks for the file");
    let events = sample_events();
    let mut valid = String::new();
    for event in &events {
        valid.push_str(&serde_json::to_string(event).unwrap_or_else(|e| panic!("{e}")));
        valid.push('\n');
    }
    write(&run.metrics_path(), valid.as_bytes());
    assert_eq!(run.read_metrics().unwrap_or_else(|e| panic!("{e}")), events);
    check("metrics.jsonl", 256, 64, text_input(), |input| {
        let bytes = input.render(valid.as_bytes());
        write(&run.metrics_path(), &bytes);
        match run.read_metrics() {
            Ok(events) => {
                let mut curves = RunCurves::default();
                for event in &events {
                    curves.push(event);
                    let _ = event.val_series();
                }
                let _ = (curves.fraction(), curves.point_count());
            }
            Err(e) => prop_assert!(std::str::from_utf8(&bytes).is_err(), "UTF-8 text was not read: {e}"),
        }
        let _ = (run.is_finished(None), run.is_finished(Some(3)));
        let mut file = RunFile::new(run.dir().to_path_buf());
        prop_assert!(file.refresh().is_ok());
        let mut appended = fs::OpenOptions::new()
            .append(true)
            .open(run.metrics_path())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        appended.write_all(b"{\"event\":\"paused\",\"st").map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(file.refresh().is_ok());
        appended.write_all(b"ep\":9}\n").map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(file.refresh().is_ok());
        let _ = file.curves.fraction();
        Ok(())
    });
}

#[derive(Clone, Debug)]
enum CheckpointInput {
    State(TextInput),
    Optimizer(BinInput),
}

/// Guards the checkpoint reader (`RunFolder::read_checkpoint`: `state.json`, then the model and
/// `optimizer.bin` it points to, and the optimiser record's parser): arbitrary `state.json`
/// bytes are an error, mutated ones and mutated optimiser states are a checkpoint or an error
/// naming one of the files.
#[test]
fn checkpoint_files_restore_or_fail_naming_the_file() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = RunFolder::new(dir.path().join("run"));
    let model = RetinaFace::new(&fd1mb(), &device);
    let optimizer = OptimizerConfig::default();
    let mut state = RunState::start(7);
    let checkpoint = run.write_checkpoint(&model, &optimizer.build(), &mut state).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = run.read_checkpoint(&optimizer, &device) {
        panic!("the unmutated checkpoint: {e}");
    }
    let state_path = run.state_path();
    let optimizer_path = checkpoint.join("optimizer.bin");
    let (state_json, optimizer_bin) = (read(&state_path), read(&optimizer_path));
    // The same state without the hash of optimizer.bin (as older runs wrote it), so that mutated
    // optimiser states reach the optimiser record's parser instead of stopping at the hash check.
    let mut unhashed: RunState = serde_json::from_slice(&state_json).unwrap_or_else(|e| panic!("{e}"));
    unhashed.optimizer_hash = None;
    let unhashed_json = serde_json::to_vec_pretty(&unhashed).unwrap_or_else(|e| panic!("{e}"));
    let strategy =
        prop_oneof![text_input().prop_map(CheckpointInput::State), bin_input().prop_map(CheckpointInput::Optimizer),];
    check("checkpoint files", 48, 16, strategy, |input| {
        write(&state_path, &state_json);
        write(&optimizer_path, &optimizer_bin);
        let arbitrary_state = match &input {
            CheckpointInput::State(text) => {
                write(&state_path, &text.render(&state_json));
                text.is_arbitrary()
            }
            CheckpointInput::Optimizer(bytes) => {
                write(&state_path, &unhashed_json);
                write(&optimizer_path, &bytes.render(&optimizer_bin, &[]));
                false
            }
        };
        match run.read_checkpoint(&optimizer, &device) {
            Ok(_) => prop_assert!(!arbitrary_state, "an arbitrary state.json restored a checkpoint"),
            Err(e) => {
                let message = e.to_string();
                prop_assert!(
                    ["state.json", "model.bpk", "optimizer.bin"].iter().any(|f| message.contains(f)),
                    "{message}"
                );
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Config JSON

/// Guards the training config reader (`TrainConfig` from JSON, as `config.json` and the studio
/// read it) and `TrainConfig::validate`: a config or a serde error, then valid or an error.
#[test]
fn train_config_json_parses_and_validates_without_panicking() {
    let trial = TrainConfig::trial("data/synth", "runs/trial");
    trial.validate().unwrap_or_else(|e| panic!("the trial config: {e}"));
    let samples: Vec<Vec<u8>> = [trial, TrainConfig::default()]
        .iter()
        .map(|c| serde_json::to_vec_pretty(c).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    check("TrainConfig JSON", 256, 64, (any::<Index>(), text_input()), |(which, input)| {
        let bytes = input.render(&samples[which.index(samples.len())]);
        if let Ok(config) = serde_json::from_slice::<TrainConfig>(&bytes)
            && let Err(e) = config.validate()
        {
            prop_assert!(!e.to_string().is_empty());
        }
        Ok(())
    });
}

/// Guards the network config reader (the JSON inside model files) and
/// `RetinaFaceConfig::validate`: a config or a serde error, then valid or an error, and a valid
/// one answers the questions the network builder asks without panicking.
#[test]
fn model_config_json_parses_and_validates_without_panicking() {
    let samples: Vec<Vec<u8>> = PRESETS
        .iter()
        .map(|name| {
            let config = RetinaFaceConfig::preset(name).unwrap_or_else(|e| panic!("{e}"));
            serde_json::to_vec_pretty(&config).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    check("RetinaFaceConfig JSON", 256, 64, (any::<Index>(), text_input()), |(which, input)| {
        let bytes = input.render(&samples[which.index(samples.len())]);
        if let Ok(config) = serde_json::from_slice::<RetinaFaceConfig>(&bytes) {
            match config.validate() {
                Ok(()) => {
                    let _ = (config.anchors_per_location(), config.stages());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
        Ok(())
    });
}
