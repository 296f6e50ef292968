//! The curves as CSV (`setting,threshold,precision,recall`), for plotting elsewhere.

use std::fmt::Write;
use std::path::Path;

use super::error::CsvError;
use super::report::EvalReport;

/// Writes every setting's curve to `path` atomically (temporary file, then rename), so a reader
/// never sees a half-written file and a failure leaves any earlier file intact.
pub fn write_curves_csv(report: &EvalReport, path: impl AsRef<Path>) -> Result<(), CsvError> {
    let path = path.as_ref();
    let mut text = String::from("setting,threshold,precision,recall\n");
    for setting in &report.settings {
        let name = field(&setting.name);
        for p in &setting.curve {
            let _ = writeln!(text, "{name},{},{},{}", p.threshold, p.precision, p.recall);
        }
    }
    crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|source| CsvError { path: path.to_path_buf(), source })
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalOptions;
    use crate::eval::curves::PrPoint;
    use crate::eval::report::{ScoreNormalisation, SettingResult};

    fn report(names: &[&str]) -> EvalReport {
        let point = |threshold, precision, recall| PrPoint { threshold, precision, recall, proposals: 0, recalled: 0 };
        EvalReport {
            options: EvalOptions::default(),
            images: 0,
            faces: 0,
            detections: 0,
            score_normalisation: ScoreNormalisation::Unchanged,
            settings: names
                .iter()
                .map(|n| SettingResult {
                    name: n.to_string(),
                    ap: 0.0,
                    faces: 0,
                    curve: vec![point(0.5, 1.0, 0.25), point(0.0, 0.5, 0.5)],
                })
                .collect(),
            missing_prediction_files: vec![],
            unknown_prediction_images: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn csv_has_header_rows_and_quoting_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("curves.csv");
        std::fs::write(&path, "old").unwrap_or_else(|e| panic!("{e}"));
        write_curves_csv(&report(&["easy", "a,\"b\""]), &path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text,
            "setting,threshold,precision,recall\n\
             easy,0.5,1,0.25\neasy,0,0.5,0.5\n\
             \"a,\"\"b\"\"\",0.5,1,0.25\n\"a,\"\"b\"\"\",0,0.5,0.5\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("curves.csv")]);
    }

    #[test]
    fn csv_write_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("missing-folder").join("curves.csv");
        let msg = write_curves_csv(&report(&["easy"]), &path).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("missing-folder"), "{msg}");
    }
}
