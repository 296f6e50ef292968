//! RetinaFace `label.txt` (`retinaface_gt_v1.1/{train,val,test}/label.txt`, and the
//! Pytorch_Retinaface copies): `# <image path>` headers, then per face `x y w h`, followed in the
//! train file by five `lx ly flag` triples and a score. Missing landmarks are written as `-1.0`.

use super::error::{Problem, ProblemKind};
use super::face::{Face, FaceLandmarks, LandmarkFlag, Origin};
use super::source::{Format, ParsedFace, ParsedImage, faces_for, verbatim_line};
use super::text::{
    TextFile, TextStyle, check_relative_path, format_integer_style, format_python_float, parse_number, split_tokens,
};
use super::wider_gt::{parse_xywh, zero_size};
use crate::geometry::{Landmarks, Point};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelStyle {
    pub text: TextStyle,
    /// Whether faces without landmarks are written with the 16 `-1.0` columns (the train file) or
    /// as a bare box (the val file).
    pub landmark_columns: bool,
}

impl Default for LabelStyle {
    fn default() -> Self {
        LabelStyle { text: TextStyle::default(), landmark_columns: true }
    }
}

const FACE_FIELDS: &str = "4 values (x y w h) or 20 (x y w h, five landmarks as lx ly flag, score)";
const LANDMARK_FIELDS: [[&str; 3]; 5] = [
    ["landmark 0 x", "landmark 0 y", "landmark 0 flag"],
    ["landmark 1 x", "landmark 1 y", "landmark 1 flag"],
    ["landmark 2 x", "landmark 2 y", "landmark 2 flag"],
    ["landmark 3 x", "landmark 3 y", "landmark 3 flag"],
    ["landmark 4 x", "landmark 4 y", "landmark 4 flag"],
];

pub fn parse(file: &TextFile, problems: &mut Vec<Problem>) -> (Vec<ParsedImage>, LabelStyle) {
    let mut style = LabelStyle { text: file.style, landmark_columns: false };
    let mut images: Vec<ParsedImage> = Vec::new();
    // Faces after a rejected header are checked but belong to no image.
    let mut current_ok = false;
    let mut any_header = false;
    for (line_no, line) in file.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let mut problem = |kind| problems.push(Problem::new(&file.path, Some(line_no), kind));
        if let Some(path) = trimmed.strip_prefix('#') {
            let path = path.trim().trim_start_matches('/');
            any_header = true;
            current_ok = check_relative_path(path).map_err(&mut problem).is_ok();
            if current_ok {
                images.push(ParsedImage { path: path.to_string(), line: line_no, faces: Vec::new() });
            }
            continue;
        }
        let (face, landmark_columns) = match parse_face(trimmed) {
            Ok(parsed) => parsed,
            Err(kind) => {
                problem(kind);
                continue;
            }
        };
        style.landmark_columns |= landmark_columns;
        match images.last_mut() {
            _ if !any_header => problem(ProblemKind::FaceBeforeHeader),
            Some(image) if current_ok => {
                if let Some(kind) = zero_size(&face.bbox) {
                    problem(kind);
                }
                image.faces.push(ParsedFace { line: line_no, face, span: file.span_of(line) });
            }
            _ => {}
        }
    }
    (images, style)
}

/// The face, and whether its line had the landmark columns.
fn parse_face(line: &str) -> Result<(Face, bool), ProblemKind> {
    let (tokens, count) = split_tokens::<20>(line);
    if count != 4 && count != 20 {
        return Err(ProblemKind::WrongValueCount { expected: FACE_FIELDS, found: count });
    }
    let bbox = parse_xywh(&tokens)?;
    let mut face = Face { bbox, landmarks: None, attributes: None, score: None, origin: Origin::default() };
    if count == 20 {
        let mut values = [0.0f32; 15];
        for (k, value) in values.iter_mut().enumerate() {
            *value = parse_number(tokens[4 + k], LANDMARK_FIELDS[k / 3][k % 3])?;
        }
        face.landmarks = parse_landmarks(&values)?;
        let score = parse_number(tokens[19], "score")?;
        face.score = (score != -1.0).then_some(score);
    }
    Ok((face, count == 20))
}

fn parse_landmarks(values: &[f32; 15]) -> Result<Option<FaceLandmarks>, ProblemKind> {
    if values.iter().all(|&v| v == -1.0) {
        return Ok(None);
    }
    let mut points = [Point { x: 0.0, y: 0.0 }; 5];
    let mut flags = [LandmarkFlag::Visible; 5];
    for k in 0..5 {
        let [x, y, flag] = [values[3 * k], values[3 * k + 1], values[3 * k + 2]];
        if flag == -1.0 || (x == -1.0 && y == -1.0) {
            return Err(ProblemKind::PartialLandmarks { point: k });
        }
        flags[k] = match flag {
            0.0 => LandmarkFlag::Visible,
            1.0 => LandmarkFlag::Occluded,
            _ => {
                return Err(ProblemKind::InvalidValue {
                    field: LANDMARK_FIELDS[k][2].into(),
                    value: format_python_float(flag),
                    expected: "0.0 (visible) or 1.0 (occluded)",
                });
            }
        };
        points[k] = Point { x, y };
    }
    Ok(Some(FaceLandmarks { points: Landmarks { points }, flags }))
}

/// The canonical line: boxes as integers where they are, the rest as Python writes floats.
pub fn format_face(face: &Face, landmark_columns: bool) -> String {
    let mut out: Vec<String> = face.bbox.to_xywh().iter().map(|&v| format_integer_style(v)).collect();
    match &face.landmarks {
        Some(lm) => {
            for (p, flag) in lm.points.points.iter().zip(lm.flags) {
                let flag = match flag {
                    LandmarkFlag::Visible => 0.0,
                    LandmarkFlag::Occluded => 1.0,
                };
                out.extend([p.x, p.y, flag].map(format_python_float));
            }
            out.push(format_python_float(face.score.unwrap_or(-1.0)));
        }
        None if landmark_columns => {
            out.extend(std::iter::repeat_n("-1.0".to_string(), 15));
            out.push(format_python_float(face.score.unwrap_or(-1.0)));
        }
        None => {}
    }
    out.join(" ")
}

pub fn write<'a>(images: impl Iterator<Item = (&'a str, &'a [Face])>, style: LabelStyle) -> String {
    let mut lines = Vec::new();
    for (path, faces) in images {
        lines.push(format!("# {path}"));
        for face in faces_for(faces, Format::LabelTxt) {
            let line = verbatim_line(face, Format::LabelTxt);
            lines.push(line.map_or_else(|| format_face(face, style.landmark_columns), str::to_string));
        }
    }
    style.text.join(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse_text(text: &str) -> (Vec<ParsedImage>, Vec<Problem>, LabelStyle) {
        let file = TextFile::from_bytes(Path::new("label.txt"), text.as_bytes().to_vec()).unwrap();
        let mut problems = Vec::new();
        let (images, style) = parse(&file, &mut problems);
        (images, problems, style)
    }

    const TRAIN: &str = "# 0--Parade/0_Parade_marchingband_1_849.jpg\n\
449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 485.174 425.893 0.0 538.357 431.491 0.0 0.82\n\
# 0--Parade/0_Parade_Parade_0_904.jpg\n\
361 98 263 339 424.143 251.656 0.0 547.134 232.571 0.0 494.121 325.875 0.0 453.83 368.286 0.0 561.978 342.839 0.0 0.89\n\
78 221 7 8 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0\n";

    #[test]
    fn reads_landmarks_flags_and_score() {
        let (images, problems, style) = parse_text(TRAIN);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(style.landmark_columns);
        let face = &images[0].faces[0].face;
        let lm = face.landmarks.unwrap();
        assert_eq!(lm.points.points[1], Point { x: 542.089, y: 376.442 });
        assert_eq!(face.score, Some(0.82));
        let no_landmarks = &images[1].faces[1].face;
        assert_eq!((no_landmarks.landmarks, no_landmarks.score), (None, None));
    }

    #[test]
    fn val_style_boxes_only_are_accepted() {
        let (images, problems, style) = parse_text("# a/b.jpg\n10 20 30 40\n# a/c.jpg\n");
        assert!(problems.is_empty());
        assert!(!style.landmark_columns);
        assert_eq!(images.len(), 2);
        assert!(images[1].faces.is_empty());
    }

    #[test]
    fn seventeen_values_is_an_error_naming_the_line() {
        let (_, problems, _) = parse_text("# a/b.jpg\n1 2 3 4 5 6 0 7 8 0 9 10 0 11 12 0 13\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
        assert_eq!(problems[0].kind, ProblemKind::WrongValueCount { expected: FACE_FIELDS, found: 17 });
    }

    #[test]
    fn face_before_any_header_is_an_error() {
        let (_, problems, _) = parse_text("1 2 3 4\n# a/b.jpg\n");
        assert_eq!(problems[0].kind, ProblemKind::FaceBeforeHeader);
    }

    #[test]
    fn partly_missing_landmarks_are_an_error() {
        let line = "# a.jpg\n1 2 3 4 5 6 0.0 -1.0 -1.0 -1.0 7 8 0.0 9 9 0.0 10 10 0.0 0.5\n";
        let (_, problems, _) = parse_text(line);
        assert_eq!(problems[0].kind, ProblemKind::PartialLandmarks { point: 1 });
    }

    #[test]
    fn unknown_flag_value_is_an_error() {
        let (_, problems, _) = parse_text("# a.jpg\n1 2 3 4 5 6 2.0 7 7 0.0 8 8 0.0 9 9 0.0 10 10 0.0 0.5\n");
        assert!(matches!(&problems[0].kind, ProblemKind::InvalidValue { field, .. } if field == "landmark 0 flag"));
    }

    #[test]
    fn edited_face_is_written_in_python_float_spelling() {
        let (images, _, _) = parse_text(TRAIN);
        let mut face = images[0].faces[0].face.clone();
        face.bbox = face.bbox.translate(1.0, 0.0).unwrap();
        assert_eq!(
            format_face(&face, true),
            "450 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 485.174 425.893 0.0 538.357 431.491 0.0 0.82"
        );
        let bare = Face { landmarks: None, score: None, ..face };
        assert_eq!(format_face(&bare, false), "450 330 122 149");
        assert!(format_face(&bare, true).ends_with(" -1.0 -1.0"));
    }
}
