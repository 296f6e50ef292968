//! One annotated face: what the WIDER FACE split files and the RetinaFace `label.txt` say about it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::geometry::{BBox, Landmarks};

/// A face of the dataset, merged from every annotation file that mentions it.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    pub bbox: BBox,
    /// The five RetinaFace landmarks; `None` where the annotation has none (written as `-1.0`).
    pub landmarks: Option<FaceLandmarks>,
    /// The six WIDER attributes; `None` for faces known only from a `label.txt`.
    pub attributes: Option<Attributes>,
    /// The RetinaFace annotation's trailing confidence; `None` where it is `-1.0` or absent.
    pub score: Option<f32>,
    /// Which file lines this face was read from. Not part of the face's value.
    pub origin: Origin,
}

impl Face {
    /// A face drawn by the user: no file has it yet, so every annotation file of its split gets it.
    pub fn new(bbox: BBox) -> Face {
        Face { bbox, landmarks: None, attributes: Some(Attributes::default()), score: None, origin: Origin::default() }
    }

    /// Faces marked invalid in WIDER FACE are neither trained on nor counted by the evaluation.
    pub fn is_invalid(&self) -> bool {
        self.attributes.is_some_and(|a| a.invalid)
    }
}

/// Landmarks with the per-point flag of the RetinaFace annotations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaceLandmarks {
    pub points: Landmarks,
    pub flags: [LandmarkFlag; 5],
}

/// The third value of each landmark triple in `label.txt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LandmarkFlag {
    /// `0.0`: the point is visible.
    #[default]
    Visible,
    /// `1.0`: the point is occluded and its position estimated.
    Occluded,
}

macro_rules! attribute_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, $expected:literal, [$($variant:ident = $value:literal),+]) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            #[default]
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const FIELD: &'static str = $field;
            pub const EXPECTED: &'static str = $expected;

            pub fn from_code(code: u8) -> Option<$name> {
                match code {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            pub fn code(self) -> u8 {
                self as u8
            }

            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }
        }
    };
}

attribute_enum!(
    /// WIDER FACE `blur`.
    Blur, "blur", "0 (clear), 1 (normal) or 2 (heavy)", [Clear = 0, Normal = 1, Heavy = 2]
);
attribute_enum!(
    /// WIDER FACE `expression`.
    Expression, "expression", "0 (typical) or 1 (exaggerated)", [Typical = 0, Exaggerated = 1]
);
attribute_enum!(
    /// WIDER FACE `illumination`.
    Illumination, "illumination", "0 (normal) or 1 (extreme)", [Normal = 0, Extreme = 1]
);
attribute_enum!(
    /// WIDER FACE `occlusion`.
    Occlusion, "occlusion", "0 (none), 1 (partial) or 2 (heavy)", [None = 0, Partial = 1, Heavy = 2]
);
attribute_enum!(
    /// WIDER FACE `pose`.
    Pose, "pose", "0 (typical) or 1 (atypical)", [Typical = 0, Atypical = 1]
);

/// The six per-face attributes of the WIDER FACE split files, in file order except `invalid`,
/// which the file stores fourth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attributes {
    pub blur: Blur,
    pub expression: Expression,
    pub illumination: Illumination,
    pub invalid: bool,
    pub occlusion: Occlusion,
    pub pose: Pose,
}

/// Where a face was read from: the original lines, kept so that saving an unchanged face writes
/// exactly the bytes it was read from (WIDER files mix integer and float spellings that a
/// formatter cannot guess), and so that a face known to one file only is saved to that file only.
///
/// Equality ignores it: two faces with the same values are the same face.
#[derive(Clone, Debug, Default)]
pub struct Origin(pub(crate) Option<Arc<OriginLines>>);

impl PartialEq for Origin {
    fn eq(&self, _: &Origin) -> bool {
        true
    }
}

impl Origin {
    /// The origin of a face read from files: `as_read` is the face as merged from its lines.
    pub(crate) fn read(as_read: Face, wider: Option<SourceLine>, label: Option<SourceLine>) -> Origin {
        Origin(Some(Arc::new(OriginLines { as_read, wider, label })))
    }
}

#[derive(Debug)]
pub(crate) struct OriginLines {
    /// The face as it was read; a writer re-uses a source line only while the fields that line
    /// holds are still equal to these.
    pub as_read: Face,
    pub wider: Option<SourceLine>,
    pub label: Option<SourceLine>,
}

/// A face line of one annotation file.
#[derive(Debug)]
pub(crate) struct SourceLine {
    /// Position of the face among its image's faces in that file: keeps each file's own order.
    pub index: u32,
    /// The whole file, shared by all its faces (one allocation instead of one per line).
    pub file: Arc<str>,
    pub span: std::ops::Range<u32>,
}

impl SourceLine {
    pub fn text(&self) -> &str {
        &self.file[self.span.start as usize..self.span.end as usize]
    }
}
