//! Predictions: per image the detected boxes with their scores, read from a submission folder or
//! inserted by the detector.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::PredictionError;

/// The largest prediction file read: 750 detections an image take about 40 KB.
const MAX_PREDICTION_BYTES: u64 = 64 << 20;

/// One detection: top-left corner, width, height (pixels) and the detector's raw score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PredictedBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub score: f64,
    /// The detector's five landmarks `[x, y]` where it gives them (a WIDER prediction file has
    /// none): what the landmark accuracy measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<[[f64; 2]; 5]>,
}

impl PredictedBox {
    fn is_finite(&self) -> bool {
        [self.x, self.y, self.w, self.h, self.score].iter().all(|v| v.is_finite())
    }
}

/// Orders by descending score, ties broken by ascending `x, y, w, h`, so the order of the lines in
/// a prediction file (or of a detector's output) never changes which prediction claims a face.
/// The official `read_pred.m` sorts by descending score only (`sort(..., 'descend')`, stable).
fn evaluation_order(a: &PredictedBox, b: &PredictedBox) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.x.total_cmp(&b.x))
        .then(a.y.total_cmp(&b.y))
        .then(a.w.total_cmp(&b.w))
        .then(a.h.total_cmp(&b.h))
}

/// Detections keyed by (event, image name without extension), as in the submission layout
/// `<event>/<image>.txt`.
///
/// Invariant: every value is finite and each image's detections are kept in evaluation order
/// (see [`Predictions::get`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    events: HashMap<String, HashMap<String, Vec<PredictedBox>>>,
}

impl Predictions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the detections of one image, replacing any earlier ones. `name` is the image name
    /// without extension, as in the ground truth. Rejects NaN and infinite values.
    pub fn insert(
        &mut self,
        event: impl Into<String>,
        name: impl Into<String>,
        mut detections: Vec<PredictedBox>,
    ) -> Result<(), PredictionError> {
        let (event, name) = (event.into(), name.into());
        if let Some(index) = detections.iter().position(|d| !d.is_finite()) {
            return Err(PredictionError::NonFinite { event, name, index });
        }
        detections.sort_unstable_by(evaluation_order);
        self.events.entry(event).or_default().insert(name, detections);
        Ok(())
    }

    /// The detections of one image in evaluation order: descending score, ties by ascending
    /// `x, y, w, h`. `None` when the image has no entry (no prediction file).
    pub fn get(&self, event: &str, name: &str) -> Option<&[PredictedBox]> {
        self.events.get(event)?.get(name).map(Vec::as_slice)
    }

    /// Every image as (event, name, detections), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &[PredictedBox])> {
        self.events.iter().flat_map(|(event, names)| {
            names.iter().map(move |(name, dets)| (event.as_str(), name.as_str(), dets.as_slice()))
        })
    }

    /// Number of images with an entry.
    pub fn image_count(&self) -> usize {
        self.events.values().map(HashMap::len).sum()
    }

    /// Number of detections over all images.
    pub fn detection_count(&self) -> usize {
        self.iter().map(|(_, _, d)| d.len()).sum()
    }

    /// Reads a submission folder `<dir>/<event>/<image>.txt` in the format of the official tool:
    /// line 1 the image name (ignored: the image is identified by the file name, which avoids the
    /// Python port's `rstrip('.jpg')` bug), line 2 the number of detections, then one
    /// `x y w h score` line per detection. Trailing spaces, blank trailing lines and Windows line
    /// endings are accepted. Files directly in `dir`, names starting with `.` (e.g. macOS `._*`
    /// files) and files not ending in `.txt` are skipped.
    pub fn read_dir(dir: impl AsRef<Path>) -> Result<Self, PredictionError> {
        let mut predictions = Self::new();
        for event_dir in entries(dir.as_ref())? {
            if !event_dir.is_dir() {
                continue;
            }
            let Some(event) = visible_name(&event_dir, event_dir.file_name())? else {
                continue;
            };
            for file in entries(&event_dir)? {
                if file.extension().is_none_or(|e| e != "txt") || !file.is_file() {
                    continue;
                }
                let Some(name) = visible_name(&file, file.file_stem())? else {
                    continue;
                };
                let bytes = crate::fsutil::read_limited(&file, MAX_PREDICTION_BYTES)
                    .map_err(|source| PredictionError::Io { path: file.clone(), source })?;
                let detections = parse_file(&bytes, &file)?;
                predictions.insert(event, name, detections)?;
            }
        }
        Ok(predictions)
    }
}

fn entries(dir: &Path) -> Result<Vec<std::path::PathBuf>, PredictionError> {
    let io = |source| PredictionError::Io { path: dir.to_path_buf(), source };
    std::fs::read_dir(dir).map_err(io)?.map(|entry| entry.map(|e| e.path()).map_err(io)).collect()
}

/// `name` (a part of `path`) as text; `None` for hidden names (starting with `.`).
fn visible_name<'a>(path: &Path, name: Option<&'a std::ffi::OsStr>) -> Result<Option<&'a str>, PredictionError> {
    match name.map(|n| n.to_str()) {
        Some(Some(name)) => Ok((!name.starts_with('.')).then_some(name)),
        _ => Err(PredictionError::NonUtf8Name { path: path.to_path_buf() }),
    }
}

const FIELDS: [&str; 5] = ["x", "y", "w", "h", "score"];

/// Parses one prediction file; `file` is only used in error messages.
fn parse_file(bytes: &[u8], file: &Path) -> Result<Vec<PredictedBox>, PredictionError> {
    let malformed =
        |line: usize, problem: String| PredictionError::Malformed { file: file.to_path_buf(), line, problem };
    let mut lines = bytes.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).zip(1..);
    // Line 1: the image name. `split` always yields at least one piece, so line 1 exists even in
    // an empty file, and the count is then missing on line 2.
    lines.next();
    let count_problem =
        |found: String| format!("expected the number of detections (a non-negative integer), found {found}");
    let count = match lines.next() {
        None => return Err(malformed(2, count_problem("the end of the file".into()))),
        Some((text, line)) => {
            let text = std::str::from_utf8(text).unwrap_or("").trim();
            text.parse::<usize>().map_err(|_| malformed(line, count_problem(format!("`{text}`"))))?
        }
    };
    let mut detections = Vec::with_capacity(count.min(bytes.len() / 10 + 1));
    for k in 1..=count {
        let expected = format!("expected detection {k} of {count} as `x y w h score`");
        let Some((text, line)) = lines.next() else {
            return Err(malformed(k + 2, format!("{expected}, found the end of the file")));
        };
        let text = std::str::from_utf8(text)
            .map_err(|_| malformed(line, format!("{expected}, found bytes that are not text")))?;
        let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
        if tokens.len() != FIELDS.len() {
            let found = match tokens.len() {
                0 => "an empty line".to_string(),
                n => format!("{n} values"),
            };
            return Err(malformed(line, format!("{expected}, found {found}")));
        }
        let mut values = [0.0; 5];
        for ((value, token), field) in values.iter_mut().zip(&tokens).zip(FIELDS) {
            *value = token.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                malformed(line, format!("{expected}: `{field}` must be a finite number, found `{token}`"))
            })?;
        }
        let [x, y, w, h, score] = values;
        detections.push(PredictedBox { x, y, w, h, score, landmarks: None });
    }
    if let Some((text, line)) = lines.find(|(text, _)| !text.trim_ascii().is_empty()) {
        let found = String::from_utf8_lossy(text);
        return Err(malformed(
            line,
            format!(
                "expected only blank lines after the {count} detections announced on line 2, \
                 found `{}`",
                found.trim()
            ),
        ));
    }
    Ok(detections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f64, score: f64) -> PredictedBox {
        PredictedBox { x, y: 1.0, w: 2.0, h: 3.0, score, landmarks: None }
    }

    fn parse(text: &str) -> Result<Vec<PredictedBox>, String> {
        parse_file(text.as_bytes(), Path::new("ev/img.txt")).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_submission_format() {
        let parsed = parse("img.jpg\n2\n1 1 2 3 0.5\n4 1 2 3 0.75\n");
        assert_eq!(parsed, Ok(vec![det(1.0, 0.5), det(4.0, 0.75)]));
        assert_eq!(parse("img\n0\n"), Ok(vec![]));
        assert_eq!(parse("img\n0"), Ok(vec![]));
    }

    #[test]
    fn crlf_trailing_spaces_and_blank_trailing_lines_are_accepted() {
        let parsed = parse("img \r\n 2 \r\n1 1 2 3 0.5  \r\n\t4 1 2 3 0.75 \t\r\n\r\n  \r\n\n");
        assert_eq!(parsed, Ok(vec![det(1.0, 0.5), det(4.0, 0.75)]));
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let cases = [
            ("img\n1\n1 1 2 x 0.5\n", ":3:", "`h` must be a finite number, found `x`"),
            ("img\n1\n1 1 2 3\n", ":3:", "found 4 values"),
            ("img\n1\n1 1 2 3 0.5 7\n", ":3:", "found 6 values"),
            ("img\n2\n1 1 2 3 0.5\n", ":4:", "detection 2 of 2"),
            ("img\n2\n1 1 2 3 0.5", ":4:", "found the end of the file"),
            ("img\n1\n1 1 2 3 0.5\n1 1 2 3 0.5\n", ":4:", "only blank lines"),
            ("img\n2\n1 1 2 3 0.5\n\n1 1 2 3 0.5\n", ":4:", "found an empty line"),
            ("img\n1\n1 1 2 3 nan\n", ":3:", "`score` must be a finite number"),
            ("img\n1\n1 1 2 3 inf\n", ":3:", "found `inf`"),
            ("img\ntwo\n", ":2:", "number of detections"),
            ("img\n-1\n", ":2:", "non-negative integer"),
            ("", ":2:", "found the end of the file"),
        ];
        for (text, line, problem) in cases {
            let msg = parse(text).map(|_| ()).unwrap_err();
            assert!(
                msg.starts_with("ev/img.txt") && msg.contains(line) && msg.contains(problem),
                "{text:?} gave {msg}"
            );
        }
    }

    #[test]
    fn insert_sorts_and_rejects_non_finite() {
        let mut preds = Predictions::new();
        let unsorted = vec![det(3.0, 0.5), det(1.0, 0.9), det(2.0, 0.5)];
        assert!(preds.insert("e", "a", unsorted).is_ok());
        let order: Vec<f64> = preds.get("e", "a").map(|d| d.iter().map(|d| d.x).collect()).unwrap_or_default();
        assert_eq!(order, vec![1.0, 2.0, 3.0]);
        let bad = preds.insert("e", "b", vec![det(0.0, 0.5), det(f64::NAN, 0.5)]);
        assert!(matches!(bad, Err(PredictionError::NonFinite { index: 1, .. })));
        assert_eq!((preds.image_count(), preds.detection_count()), (1, 3));
    }

    #[test]
    fn read_dir_reads_events_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let event = dir.path().join("0--Parade");
        std::fs::create_dir(&event).unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            std::fs::write(event.join(name), text).unwrap_or_else(|e| panic!("{e}"));
        };
        write("a.txt", "whatever.jpg\n1\n1 1 2 3 0.5\n");
        write("b.txt", "b\n0\n");
        write("notes.md", "not a prediction");
        write("._a.txt", "\0\0garbage");
        std::fs::write(dir.path().join("README.txt"), "top level").unwrap_or_else(|e| panic!("{e}"));
        let preds = Predictions::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(preds.get("0--Parade", "a"), Some(&[det(1.0, 0.5)][..]));
        assert_eq!(preds.get("0--Parade", "b"), Some(&[][..]));
        assert_eq!(preds.image_count(), 2);
        write("c.txt", "c\n1\n1 1 2 3\n");
        let msg = Predictions::read_dir(dir.path()).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("c.txt:3:"), "{msg}");
    }
}
