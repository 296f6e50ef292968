//! The official WIDER FACE split files `wider_face_{train,val}_bbx_gt.txt`: per image its path,
//! the face count, then one line per face `x y w h blur expression illumination invalid occlusion
//! pose`. An image without faces is followed by one line of ten zeros.

use super::error::{Problem, ProblemKind};
use super::face::{Attributes, Blur, Expression, Face, Illumination, Occlusion, Origin, Pose};
use super::source::{Format, ParsedFace, ParsedImage, faces_for, verbatim_line};
use super::text::{
    TextFile, TextStyle, check_relative_path, format_integer_style, is_number, parse_number, split_tokens,
};
use crate::geometry::BBox;

/// How a split file was laid out, so that saving reproduces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WiderGtStyle {
    pub text: TextStyle,
    /// Whether images without faces carry the line of ten zeros (the official files do).
    pub zero_face_placeholder: bool,
}

impl Default for WiderGtStyle {
    fn default() -> Self {
        WiderGtStyle { text: TextStyle::default(), zero_face_placeholder: true }
    }
}

const FACE_FIELDS: &str = "10 values (x y w h blur expression illumination invalid occlusion pose)";
const PLACEHOLDER: &str = "0 0 0 0 0 0 0 0 0 0 ";

/// Reads every image of the file; problems are collected and parsing goes on at the next image.
pub fn parse(file: &TextFile, problems: &mut Vec<Problem>) -> (Vec<ParsedImage>, WiderGtStyle) {
    let lines: Vec<(usize, &str)> = file.lines().collect();
    let mut style = WiderGtStyle { text: file.style, zero_face_placeholder: false };
    let mut images = Vec::new();
    let mut problem = |line: usize, kind: ProblemKind| problems.push(Problem::new(&file.path, Some(line), kind));
    let mut i = 0;
    while i < lines.len() {
        let (line_no, line) = lines[i];
        let trimmed = line.trim();
        i += 1;
        if trimmed.is_empty() {
            continue;
        }
        if looks_like_face_line(trimmed) {
            let hint = " (a face line here means the face count above is too small)";
            problem(line_no, ProblemKind::ExpectedPath { found: trimmed.to_string(), hint });
            continue;
        }
        let path = trimmed.to_string();
        let path_ok = check_relative_path(&path).map_err(|k| problem(line_no, k)).is_ok();
        let Some(&(count_line, count_text)) = lines.get(i) else {
            problem(line_no + 1, ProblemKind::ExpectedCount { found: "the end of the file".into() });
            break;
        };
        let Ok(declared) = count_text.trim().parse::<usize>() else {
            problem(count_line, ProblemKind::ExpectedCount { found: count_text.trim().to_string() });
            continue;
        };
        i += 1;
        // A count read from the file never sizes an allocation by itself: at most one face per line left.
        let mut faces = Vec::with_capacity(declared.min(lines.len() - i));
        let mut found = 0;
        while i < lines.len() && looks_like_face_line(lines[i].1.trim()) {
            let (face_line, text) = lines[i];
            if declared == 0 && found == 0 && is_placeholder(text) {
                style.zero_face_placeholder = true;
                i += 1;
                break;
            }
            found += 1;
            i += 1;
            if found > declared {
                continue;
            }
            match parse_face(text) {
                Ok(face) => {
                    if let Some(kind) = zero_size(&face.bbox) {
                        problem(face_line, kind);
                    }
                    faces.push(ParsedFace { line: face_line, face, span: file.span_of(text) });
                }
                Err(kind) => problem(face_line, kind),
            }
        }
        if found != declared {
            problem(count_line, ProblemKind::CountMismatch { declared, found });
        }
        if path_ok {
            images.push(ParsedImage { path, line: line_no, faces });
        }
    }
    if images.iter().all(|im| !im.faces.is_empty()) {
        style.zero_face_placeholder = true;
    }
    (images, style)
}

/// A face line starts with a number; an image path does not (WIDER event folders start with a
/// digit but contain `--`, which is not a number).
fn looks_like_face_line(line: &str) -> bool {
    line.split_ascii_whitespace().next().is_some_and(is_number)
}

fn is_placeholder(line: &str) -> bool {
    let (tokens, count) = split_tokens::<10>(line);
    count == 10 && tokens.iter().all(|t| t.parse::<f32>() == Ok(0.0))
}

pub(crate) fn zero_size(bbox: &BBox) -> Option<ProblemKind> {
    bbox.is_degenerate().then(|| ProblemKind::ZeroSize { w: bbox.width(), h: bbox.height() })
}

/// Builds a box from `x y w h` tokens; shared with `label.txt`, which starts its lines the same way.
pub(crate) fn parse_xywh(tokens: &[&str]) -> Result<BBox, ProblemKind> {
    let x = parse_number(tokens[0], "x")?;
    let y = parse_number(tokens[1], "y")?;
    let w = parse_number(tokens[2], "w")?;
    let h = parse_number(tokens[3], "h")?;
    if w < 0.0 || h < 0.0 {
        return Err(ProblemKind::NegativeSize { w, h });
    }
    BBox::from_xywh(x, y, w, h).map_err(|_| ProblemKind::InvalidValue {
        field: "box".into(),
        value: format!("{x} {y} {w} {h}"),
        expected: "corners that fit in a 32-bit float",
    })
}

fn parse_face(line: &str) -> Result<Face, ProblemKind> {
    let (tokens, count) = split_tokens::<10>(line);
    if count != 10 {
        return Err(ProblemKind::WrongValueCount { expected: FACE_FIELDS, found: count });
    }
    let bbox = parse_xywh(&tokens)?;
    let attributes = Attributes {
        blur: attribute(tokens[4], Blur::FIELD, Blur::EXPECTED, Blur::from_code)?,
        expression: attribute(tokens[5], Expression::FIELD, Expression::EXPECTED, Expression::from_code)?,
        illumination: attribute(tokens[6], Illumination::FIELD, Illumination::EXPECTED, Illumination::from_code)?,
        invalid: attribute(tokens[7], "invalid", "0 or 1", |c| match c {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        })?,
        occlusion: attribute(tokens[8], Occlusion::FIELD, Occlusion::EXPECTED, Occlusion::from_code)?,
        pose: attribute(tokens[9], Pose::FIELD, Pose::EXPECTED, Pose::from_code)?,
    };
    Ok(Face { bbox, landmarks: None, attributes: Some(attributes), score: None, origin: Origin::default() })
}

fn attribute<T>(
    token: &str,
    field: &'static str,
    expected: &'static str,
    from_code: impl Fn(u8) -> Option<T>,
) -> Result<T, ProblemKind> {
    let value = parse_number(token, field)?;
    let code = (value.fract() == 0.0 && (0.0..=255.0).contains(&value)).then_some(value as u8);
    code.and_then(from_code).ok_or_else(|| ProblemKind::InvalidValue {
        field: field.into(),
        value: token.into(),
        expected,
    })
}

/// The canonical line for a face: integer-style numbers and the trailing space of the official files.
pub fn format_face(face: &Face) -> String {
    let [x, y, w, h] = face.bbox.to_xywh();
    let a = face.attributes.unwrap_or_default();
    format!(
        "{} {} {} {} {} {} {} {} {} {} ",
        format_integer_style(x),
        format_integer_style(y),
        format_integer_style(w),
        format_integer_style(h),
        a.blur.code(),
        a.expression.code(),
        a.illumination.code(),
        u8::from(a.invalid),
        a.occlusion.code(),
        a.pose.code()
    )
}

/// Writes images (path and all their faces) in the given order.
pub fn write<'a>(images: impl Iterator<Item = (&'a str, &'a [Face])>, style: WiderGtStyle) -> String {
    let mut lines = Vec::new();
    for (path, faces) in images {
        let faces = faces_for(faces, Format::WiderGt);
        lines.push(path.to_string());
        lines.push(faces.len().to_string());
        for face in &faces {
            lines.push(verbatim_line(face, Format::WiderGt).map_or_else(|| format_face(face), str::to_string));
        }
        if faces.is_empty() && style.zero_face_placeholder {
            lines.push(PLACEHOLDER.to_string());
        }
    }
    style.text.join(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::face::SourceLine;
    use std::path::Path;

    fn parse_text(text: &str) -> (Vec<ParsedImage>, Vec<Problem>) {
        let file = TextFile::from_bytes(Path::new("gt.txt"), text.as_bytes().to_vec()).unwrap();
        let mut problems = Vec::new();
        let (images, _) = parse(&file, &mut problems);
        (images, problems)
    }

    const SAMPLE: &str = "0--Parade/0_Parade_marchingband_1_849.jpg\n1\n449 330 122 149 0 0 0 0 0 0 \n\
0--Parade/0_Parade_Parade_0_904.jpg\n2\n361 98 263 339 0 0 0 0 0 0 \n78 221 7 8 2 0 0 1 2 1 \n\
1--Handshaking/1_Handshaking_Handshaking_1_35.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n";

    #[test]
    fn reads_boxes_attributes_and_zero_face_images() {
        let (images, problems) = parse_text(SAMPLE);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(images.len(), 3);
        assert_eq!(images[1].faces.len(), 2);
        let face = &images[1].faces[1].face;
        assert_eq!(face.bbox.corners(), [78.0, 221.0, 85.0, 229.0]);
        let a = face.attributes.unwrap();
        assert_eq!((a.blur, a.invalid, a.occlusion, a.pose), (Blur::Heavy, true, Occlusion::Heavy, Pose::Atypical));
        assert_eq!(images[1].faces[1].line, 7);
        assert!(images[2].faces.is_empty());
    }

    #[test]
    fn count_too_large_is_reported_at_the_count_line() {
        let (_, problems) = parse_text("a/b.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0\nc/d.jpg\n0\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
        assert_eq!(problems[0].kind, ProblemKind::CountMismatch { declared: 3, found: 2 });
    }

    #[test]
    fn count_too_small_is_reported_once() {
        let (images, problems) = parse_text("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0\nc/d.jpg\n0\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, ProblemKind::CountMismatch { declared: 1, found: 2 });
        assert_eq!(images.len(), 2, "parsing resumes at the next image");
    }

    #[test]
    fn non_numeric_count_names_the_line() {
        let (_, problems) = parse_text("a/b.jpg\nthree\n");
        assert_eq!(problems[0].line, Some(2));
        assert!(matches!(problems[0].kind, ProblemKind::ExpectedCount { .. }));
    }

    #[test]
    fn non_numeric_token_names_the_field() {
        let (_, problems) = parse_text("a/b.jpg\n1\n1 2 x 4 0 0 0 0 0 0\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(3));
        assert_eq!(problems[0].kind, ProblemKind::NotANumber { field: "w", token: "x".into() });
    }

    #[test]
    fn too_few_values_is_an_error() {
        let (_, problems) = parse_text("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0\n");
        assert_eq!(problems[0].kind, ProblemKind::WrongValueCount { expected: FACE_FIELDS, found: 9 });
    }

    #[test]
    fn negative_size_is_an_error_and_zero_size_a_warning() {
        let (images, problems) = parse_text("a/b.jpg\n2\n1 2 -2 4 0 0 0 0 0 0\n5 5 0 3 0 0 0 0 0 0\n");
        assert_eq!(problems[0].kind, ProblemKind::NegativeSize { w: -2.0, h: 4.0 });
        assert_eq!(problems[1].kind, ProblemKind::ZeroSize { w: 0.0, h: 3.0 });
        assert_eq!(images[0].faces.len(), 1, "the zero-size face is kept, not lost");
    }

    #[test]
    fn out_of_range_attribute_is_an_error() {
        let (_, problems) = parse_text("a/b.jpg\n1\n1 2 3 4 3 0 0 0 0 0\n");
        assert!(matches!(&problems[0].kind, ProblemKind::InvalidValue { field, .. } if field == "blur"));
    }

    #[test]
    fn path_outside_root_is_an_error() {
        let (images, problems) = parse_text("../x.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n");
        assert!(matches!(problems[0].kind, ProblemKind::PathOutsideRoot { .. }));
        assert!(images.is_empty());
    }

    #[test]
    fn unchanged_file_round_trips_byte_identically() {
        let file = TextFile::from_bytes(Path::new("gt.txt"), SAMPLE.as_bytes().to_vec()).unwrap();
        let mut problems = Vec::new();
        let (images, style) = parse(&file, &mut problems);
        let faces: Vec<Vec<Face>> = images.iter().map(|im| with_origins(&file, im)).collect();
        let out = write(images.iter().zip(&faces).map(|(im, f)| (im.path.as_str(), f.as_slice())), style);
        assert_eq!(out, SAMPLE);
    }

    #[test]
    fn edited_face_is_rewritten_in_the_official_spelling() {
        let mut face = Face::new(BBox::from_xywh(10.0, 20.0, 30.5, 40.0).unwrap());
        face.attributes = Some(Attributes { invalid: true, ..Attributes::default() });
        assert_eq!(format_face(&face), "10 20 30.5 40 0 0 0 1 0 0 ");
    }

    fn with_origins(file: &TextFile, image: &ParsedImage) -> Vec<Face> {
        image
            .faces
            .iter()
            .enumerate()
            .map(|(i, pf)| {
                let line = SourceLine { index: i as u32, file: file.text.clone(), span: pf.span.clone() };
                Face { origin: Origin::read(pf.face.clone(), Some(line), None), ..pf.face.clone() }
            })
            .collect()
    }
}
