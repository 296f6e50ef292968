//! What the three annotation formats have in common: images read from a file, each face with the
//! line it came from, and the rule for re-using that line when saving.

use super::face::Face;

/// The annotation formats facestudio reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `wider_face_split/wider_face_{train,val}_bbx_gt.txt`: boxes and the six attributes.
    WiderGt,
    /// RetinaFace `label.txt`: boxes, five landmarks with flags, a score.
    LabelTxt,
    /// A list of image paths without faces (`wider_face_test_filelist.txt`, `wider_val.txt`).
    FileList,
}

/// An image as one file lists it.
#[derive(Debug)]
pub struct ParsedImage {
    /// Relative to the split's image folder, `/` separated, without a leading `/`.
    pub path: String,
    /// 1-based line of the image's header.
    pub line: usize,
    pub faces: Vec<ParsedFace>,
}

#[derive(Debug)]
pub struct ParsedFace {
    pub line: usize,
    pub face: Face,
    /// Byte range of the face's line in the file's text.
    pub span: std::ops::Range<u32>,
}

/// The original text of `face` in a file of `format`, if the face still holds exactly what that
/// line said. Only the fields the format stores are compared: moving a landmark does not force the
/// WIDER split file to re-spell the face.
pub fn verbatim_line(face: &Face, format: Format) -> Option<&str> {
    let origin = face.origin.0.as_deref()?;
    let read = &origin.as_read;
    match format {
        Format::WiderGt => {
            (face.bbox == read.bbox && face.attributes == read.attributes).then_some(origin.wider.as_ref()?.text())
        }
        Format::LabelTxt => (face.bbox == read.bbox && face.landmarks == read.landmarks && face.score == read.score)
            .then_some(origin.label.as_ref()?.text()),
        Format::FileList => None,
    }
}

/// Whether a face belongs in a file of `format`: faces the user drew go everywhere, faces read from
/// files go back to the files that had them.
pub fn belongs_to(face: &Face, format: Format) -> bool {
    match face.origin.0.as_deref() {
        None => true,
        Some(origin) => match format {
            Format::WiderGt => origin.wider.is_some(),
            Format::LabelTxt => origin.label.is_some(),
            Format::FileList => false,
        },
    }
}

/// The position a face had in a file of `format`; new faces go last, in the order they were drawn.
pub fn position_in(face: &Face, format: Format) -> u32 {
    let line = face.origin.0.as_deref().and_then(|o| match format {
        Format::WiderGt => o.wider.as_ref(),
        Format::LabelTxt => o.label.as_ref(),
        Format::FileList => None,
    });
    line.map_or(u32::MAX, |l| l.index)
}

/// The faces of an image that a file of `format` holds, in that file's order.
pub fn faces_for(faces: &[Face], format: Format) -> Vec<&Face> {
    let mut chosen: Vec<&Face> = faces.iter().filter(|f| belongs_to(f, format)).collect();
    chosen.sort_by_key(|f| position_in(f, format));
    chosen
}
