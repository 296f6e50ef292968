//! Image lists without faces: `wider_face_test_filelist.txt` and Pytorch_Retinaface's
//! `val/wider_val.txt` (whose paths start with `/`).

use super::error::Problem;
use super::source::ParsedImage;
use super::text::{TextFile, TextStyle, check_relative_path};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileListStyle {
    pub text: TextStyle,
    pub leading_slash: bool,
}

pub fn parse(file: &TextFile, problems: &mut Vec<Problem>) -> (Vec<ParsedImage>, FileListStyle) {
    let mut style = FileListStyle { text: file.style, leading_slash: false };
    let mut images = Vec::new();
    for (line_no, line) in file.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        style.leading_slash |= trimmed.starts_with('/');
        let path = trimmed.trim_start_matches('/');
        match check_relative_path(path) {
            Ok(()) => images.push(ParsedImage { path: path.to_string(), line: line_no, faces: Vec::new() }),
            Err(kind) => problems.push(Problem::new(&file.path, Some(line_no), kind)),
        }
    }
    (images, style)
}

pub fn write<'a>(paths: impl Iterator<Item = &'a str>, style: FileListStyle) -> String {
    let slash = if style.leading_slash { "/" } else { "" };
    let lines: Vec<String> = paths.map(|p| format!("{slash}{p}")).collect();
    style.text.join(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn leading_slash_is_stripped_and_restored() {
        let text = "/0--Parade/a.jpg\n/1--Handshaking/b.jpg\n";
        let file = TextFile::from_bytes(Path::new("wider_val.txt"), text.as_bytes().to_vec()).unwrap();
        let (images, style) = parse(&file, &mut Vec::new());
        assert_eq!(images[0].path, "0--Parade/a.jpg");
        assert_eq!(write(images.iter().map(|i| i.path.as_str()), style), text);
    }
}
