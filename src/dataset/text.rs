//! Reading annotation text with line numbers, and spelling numbers the way the WIDER FACE tools do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{Problem, ProblemKind};

/// The layout details of a text file that a byte-identical save must reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextStyle {
    pub crlf: bool,
    pub final_newline: bool,
    /// The file began with a UTF-8 byte-order mark (editors on Windows write one).
    pub bom: bool,
}

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle { crlf: false, final_newline: true, bom: false }
    }
}

impl TextStyle {
    pub fn newline(self) -> &'static str {
        if self.crlf { "\r\n" } else { "\n" }
    }

    /// Joins finished lines with this style's line ending.
    pub fn join(self, lines: &[String]) -> String {
        let newline = self.newline();
        let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 2).sum::<usize>() + 3);
        if self.bom {
            out.push(BOM);
        }
        for (i, line) in lines.iter().enumerate() {
            out.push_str(line);
            if i + 1 < lines.len() || self.final_newline {
                out.push_str(newline);
            }
        }
        out
    }
}

/// The UTF-8 byte-order mark.
const BOM: char = '\u{feff}';

/// The largest annotation file read: WIDER FACE's largest (the train split's `label.txt`) is
/// about 10 MB; 1 GiB leaves room for any real dataset and stops a runaway file before memory does.
pub const MAX_ANNOTATION_BYTES: u64 = 1 << 30;

/// An annotation file read whole and checked to be non-empty UTF-8.
pub struct TextFile {
    pub path: PathBuf,
    pub text: Arc<str>,
    pub style: TextStyle,
}

impl TextFile {
    pub fn read(path: &Path) -> Result<TextFile, Problem> {
        let bytes = crate::fsutil::read_limited(path, MAX_ANNOTATION_BYTES)
            .map_err(|e| Problem::new(path, None, ProblemKind::Unreadable { message: e.to_string() }))?;
        TextFile::from_bytes(path, bytes)
    }

    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<TextFile, Problem> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(Problem::new(path, None, ProblemKind::EmptyFile));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            Problem::new(path, Some(line), ProblemKind::InvalidUtf8 { byte: valid.len() - line_start + 1 })
        })?;
        let (text, bom) = match text.strip_prefix(BOM) {
            Some(rest) => (rest.to_string(), true),
            None => (text, false),
        };
        let style = TextStyle { crlf: text.contains("\r\n"), final_newline: text.ends_with('\n'), bom };
        Ok(TextFile { path: path.to_path_buf(), text: text.into(), style })
    }

    /// Lines with their 1-based numbers, without the line ending.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text.lines().enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
    }

    /// Where `line` (a slice of this file's text, as `lines` yields) lies in the file.
    pub fn span_of(&self, line: &str) -> std::ops::Range<u32> {
        let start = line.as_ptr() as usize - self.text.as_ptr() as usize;
        start as u32..(start + line.len()) as u32
    }
}

/// Parses one numeric token, naming the field when it is not a finite number.
pub fn parse_number(token: &str, field: &'static str) -> Result<f32, ProblemKind> {
    match token.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ProblemKind::NotANumber { field, token: token.to_string() }),
    }
}

/// Splits a line into at most `N` whitespace-separated tokens without allocating; returns them and
/// the total count (which may exceed `N`, so "too many values" can still be reported).
pub fn split_tokens<const N: usize>(line: &str) -> ([&str; N], usize) {
    let mut tokens = [""; N];
    let mut count = 0;
    for token in line.split_ascii_whitespace() {
        if count < N {
            tokens[count] = token;
        }
        count += 1;
    }
    (tokens, count)
}

pub fn is_number(token: &str) -> bool {
    token.parse::<f32>().is_ok()
}

/// Spells a box coordinate as the WIDER files do: integers without a decimal point.
pub fn format_integer_style(v: f32) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 { format!("{}", v as i64) } else { format!("{v}") }
}

/// Spells a value as Python's `str(float)` does (`0.0`, `-1.0`, `488.906`), which is how the
/// RetinaFace `label.txt` files were written: the shortest text that reads back to the value.
pub fn format_python_float(v: f32) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'i', 'N']) { s } else { format!("{s}.0") }
}

/// Image paths in annotation files are relative to the split's image folder; one that escapes it
/// could make a save or a thumbnail read a file the user never meant to share.
pub fn check_relative_path(path: &str) -> Result<(), ProblemKind> {
    let p = Path::new(path);
    let escapes = p.is_absolute()
        || path.starts_with('\\')
        || path.contains(":\\")
        || p.components().any(|c| matches!(c, std::path::Component::ParentDir));
    if escapes { Err(ProblemKind::PathOutsideRoot { path: path.to_string() }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_read_past_and_written_back() {
        let file = TextFile::from_bytes(Path::new("label.txt"), "\u{feff}# a.jpg\r\n1 2 3 4\r\n".into()).unwrap();
        assert!(file.style.bom && file.style.crlf);
        let lines: Vec<String> = file.lines().map(|(_, l)| l.to_string()).collect();
        assert_eq!(lines, ["# a.jpg", "1 2 3 4"]);
        assert_eq!(file.style.join(&lines), "\u{feff}# a.jpg\r\n1 2 3 4\r\n");
    }

    #[test]
    fn python_float_style_keeps_a_decimal_point() {
        assert_eq!(format_python_float(0.0), "0.0");
        assert_eq!(format_python_float(-1.0), "-1.0");
        assert_eq!(format_python_float(488.906), "488.906");
        assert_eq!(format_python_float(0.82), "0.82");
    }

    #[test]
    fn integer_style_drops_the_decimal_point_only_for_integers() {
        assert_eq!(format_integer_style(449.0), "449");
        assert_eq!(format_integer_style(449.5), "449.5");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = TextFile::from_bytes(Path::new("f.txt"), b"ok\nbad \xff here\n".to_vec()).err().unwrap();
        assert_eq!(err.line, Some(2));
        assert!(matches!(err.kind, ProblemKind::InvalidUtf8 { byte: 5 }));
    }

    #[test]
    fn whitespace_only_file_is_empty() {
        let err = TextFile::from_bytes(Path::new("f.txt"), b" \n\n".to_vec()).err().unwrap();
        assert_eq!(err.kind, ProblemKind::EmptyFile);
    }

    #[test]
    fn paths_leaving_the_root_are_rejected() {
        assert!(check_relative_path("0--Parade/a.jpg").is_ok());
        assert!(check_relative_path("../secret.jpg").is_err());
        assert!(check_relative_path("/etc/passwd").is_err());
        assert!(check_relative_path("0--Parade/../../x.jpg").is_err());
    }
}
