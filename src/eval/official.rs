//! Reading the official MATLAB ground truth: `wider_face_val.mat` (events, image names, face
//! boxes) and `wider_{easy,medium,hard}_val.mat` (per image the 1-based indexes of the faces that
//! the setting evaluates, `gt_list`), as `wider_eval.m` loads them.
//!
//! Two facts about `matrw` 0.1 shape this file:
//! - it hands back the *storage* type of a numeric array, not its MATLAB class: the official
//!   `face_bbx_list` doubles are stored as int32, `gt_list` as double. Any real numeric storage is
//!   therefore accepted and widened to `f64`.
//! - it panics (instead of returning an error) on most truncated or corrupted files, and sizes
//!   its allocations from the file. `mat_guard` first walks the file's elements within limits
//!   (decompressed size, nesting depth, dimensions that fit their data), then the parse runs
//!   under `guard::catch_third_party` so that any other bad file becomes a
//!   [`GroundTruthError::MatFormat`] without panic text on the terminal.

use std::fmt;
use std::path::{Path, PathBuf};

use matrw::{MatFile, MatVariable, MatlabType};

use super::error::GroundTruthError;
use super::ground_truth::{FaceBox, FaceDetails, GroundTruth, GtImage, SettingSpec};
use crate::dataset::{Attributes, Blur, Expression, Illumination, Occlusion, Pose};

const FACE_FILE: &str = "wider_face_val.mat";
/// The per-face attribute lists of `wider_face_val.mat`, in the order of [`Attributes`]' fields.
const ATTRIBUTE_KEYS: [&str; 6] = [
    "blur_label_list",
    "expression_label_list",
    "illumination_label_list",
    "invalid_label_list",
    "occlusion_label_list",
    "pose_label_list",
];
const SETTING_FILES: [(&str, &str); 3] =
    [("easy", "wider_easy_val.mat"), ("medium", "wider_medium_val.mat"), ("hard", "wider_hard_val.mat")];

impl GroundTruth {
    /// Loads the official validation ground truth from a folder holding `wider_face_val.mat` and
    /// `wider_{easy,medium,hard}_val.mat`, giving the settings "easy", "medium" and "hard".
    pub fn from_official_dir(dir: impl AsRef<Path>) -> Result<Self, GroundTruthError> {
        load(dir.as_ref())
    }
}

fn load(dir: &Path) -> Result<GroundTruth, GroundTruthError> {
    let face_path = dir.join(FACE_FILE);
    let setting_paths: Vec<PathBuf> = SETTING_FILES.iter().map(|(_, f)| dir.join(f)).collect();
    // matrw needs ~0.1 s per file: parse the four files concurrently.
    let (face_mat, setting_mats) = std::thread::scope(|scope| {
        let handles: Vec<_> = setting_paths.iter().map(|path| scope.spawn(move || read_mat(path))).collect();
        let face_mat = read_mat(&face_path);
        let setting_mats: Vec<_> = handles
            .into_iter()
            .zip(&setting_paths)
            .map(|(handle, path)| handle.join().unwrap_or_else(|_| Err(parser_panicked(path))))
            .collect();
        (face_mat, setting_mats)
    });

    let face = Reader { file: &face_path, mat: &face_mat? };
    let layout = face.layout()?;
    let boxes = face.cells_per_image(&layout, "face_bbx_list")?;
    // The per-face attribute lists, where the file has all of them (AP by attribute needs them).
    let attributes = if ATTRIBUTE_KEYS.iter().all(|key| face.mat.contains(key)) {
        Some(ATTRIBUTE_KEYS.iter().map(|key| face.cells_per_image(&layout, key)).collect::<Result<Vec<_>, _>>()?)
    } else {
        None
    };
    let mut images = Vec::with_capacity(layout.image_count());
    for (e, (event, names)) in layout.events.iter().zip(&layout.files).enumerate() {
        for (i, name) in names.iter().enumerate() {
            let field = Field::image("face_bbx_list", e, i);
            let boxes = face.face_boxes(&boxes[e][i], field)?;
            let details = match &attributes {
                Some(lists) => face.attributes(lists, e, i, boxes.len())?,
                None => Vec::new(),
            };
            images.push(GtImage { event: event.clone(), name: name.clone(), boxes, details });
        }
    }

    let mut settings = Vec::with_capacity(SETTING_FILES.len());
    for (((name, _), path), mat) in SETTING_FILES.iter().zip(&setting_paths).zip(setting_mats) {
        let reader = Reader { file: path, mat: &mat? };
        reader.check_same_layout(&reader.layout()?, &layout, &face_path)?;
        let lists = reader.cells_per_image(&layout, "gt_list")?;
        let mut keep = Vec::with_capacity(images.len());
        for (e, event_lists) in lists.iter().enumerate() {
            for (i, list) in event_lists.iter().enumerate() {
                let faces = images[keep.len()].boxes.len();
                keep.push(reader.keep_list(list, faces, Field::image("gt_list", e, i))?);
            }
        }
        settings.push(SettingSpec { name: (*name).to_string(), keep });
    }
    // Everything else `new` checks was checked above with the file and field at hand.
    GroundTruth::new(images, settings).map_err(|error| match error {
        GroundTruthError::DuplicateImage { event, name } => GroundTruthError::Shape {
            file: face_path.clone(),
            field: "file_list".into(),
            expected: "distinct image names within an event".into(),
            found: format!("`{name}` twice in event `{event}`"),
        },
        other => other,
    })
}

/// Reads and parses one MAT-file; see the module documentation for why panics are caught.
fn read_mat(path: &Path) -> Result<MatFile, GroundTruthError> {
    let bytes = crate::fsutil::read_limited(path, super::mat_guard::MAX_MAT_BYTES)
        .map_err(|source| GroundTruthError::Io { file: path.to_path_buf(), source })?;
    super::mat_guard::check(&bytes)
        .map_err(|reason| GroundTruthError::MatFormat { file: path.to_path_buf(), reason })?;
    match crate::guard::catch_third_party(|| matrw::load_matfile_from_u8(&bytes)) {
        Ok(Ok(mat)) => Ok(mat),
        Ok(Err(error)) => {
            Err(GroundTruthError::MatFormat { file: path.to_path_buf(), reason: error.to_string().trim().to_string() })
        }
        Err(_) => Err(parser_panicked(path)),
    }
}

fn parser_panicked(path: &Path) -> GroundTruthError {
    GroundTruthError::MatFormat {
        file: path.to_path_buf(),
        reason: "the MAT-file parser (matrw) panicked: the file is truncated or corrupted".into(),
    }
}

/// A field in MATLAB notation with 1-based indexes, e.g. `face_bbx_list{3}{12}`; formatted only
/// when an error is built.
#[derive(Clone, Copy)]
struct Field {
    key: &'static str,
    event: Option<usize>,
    image: Option<usize>,
}

impl Field {
    fn key(key: &'static str) -> Self {
        Self { key, event: None, image: None }
    }

    fn event(key: &'static str, event: usize) -> Self {
        Self { event: Some(event), ..Self::key(key) }
    }

    fn image(key: &'static str, event: usize, image: usize) -> Self {
        Self { image: Some(image), ..Self::event(key, event) }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)?;
        for index in [self.event, self.image].into_iter().flatten() {
            write!(f, "{{{}}}", index + 1)?;
        }
        Ok(())
    }
}

/// Events and image names of one file (`event_list`, `file_list`).
struct Layout {
    events: Vec<String>,
    files: Vec<Vec<String>>,
}

impl Layout {
    fn image_count(&self) -> usize {
        self.files.iter().map(Vec::len).sum()
    }
}

struct Reader<'a> {
    file: &'a Path,
    mat: &'a MatFile,
}

impl<'a> Reader<'a> {
    fn shape(&self, field: Field, expected: impl Into<String>, found: String) -> GroundTruthError {
        GroundTruthError::Shape {
            file: self.file.to_path_buf(),
            field: field.to_string(),
            expected: expected.into(),
            found,
        }
    }

    fn var(&self, key: &'static str) -> Result<&'a MatVariable, GroundTruthError> {
        if self.mat.contains(key) {
            Ok(&self.mat[key])
        } else {
            Err(GroundTruthError::MissingKey { file: self.file.to_path_buf(), key })
        }
    }

    /// The elements of a cell vector (any orientation) of exactly `len` elements when given.
    fn cell(
        &self,
        var: &'a MatVariable,
        field: Field,
        len: Option<usize>,
    ) -> Result<&'a [MatVariable], GroundTruthError> {
        let expected = || match len {
            Some(n) => format!("a cell vector of {n} elements"),
            None => "a cell vector".to_string(),
        };
        match var {
            MatVariable::CellArray(cell) if is_vector(&cell.dim) && len.is_none_or(|n| n == cell.value.len()) => {
                Ok(&cell.value)
            }
            other => Err(self.shape(field, expected(), describe(other))),
        }
    }

    /// A non-empty row of characters (MATLAB char array).
    fn string(&self, var: &MatVariable, field: Field) -> Result<String, GroundTruthError> {
        match var {
            MatVariable::NumericArray(array) if is_vector(&array.dim) => match &array.value {
                MatlabType::UTF8(chars) | MatlabType::UTF16(chars) if !chars.is_empty() => Ok(chars.iter().collect()),
                _ => Err(self.shape(field, "a non-empty char array", describe(var))),
            },
            other => Err(self.shape(field, "a non-empty char array", describe(other))),
        }
    }

    /// An event or image name: one path component, since the images are found at
    /// `<images>/<event>/<name>.jpg` and a name must not lead outside that folder.
    fn name(&self, var: &MatVariable, field: Field) -> Result<String, GroundTruthError> {
        let name = self.string(var, field)?;
        let escapes = name == "." || name == ".." || name.contains(['/', '\\', '\0']);
        if escapes {
            return Err(self.shape(field, "a file or folder name (no `/`, `\\` or `..`)", format!("{name:?}")));
        }
        Ok(name)
    }

    /// A real numeric array widened to f64, with its dimensions.
    fn numbers(
        &self,
        var: &'a MatVariable,
        field: Field,
        expected: &str,
    ) -> Result<(&'a [usize], Vec<f64>), GroundTruthError> {
        match var {
            MatVariable::NumericArray(array) if array.value_cmp.is_none() => match widen(&array.value) {
                Some(values) => Ok((&array.dim, values)),
                None => Err(self.shape(field, expected, describe(var))),
            },
            other => Err(self.shape(field, expected, describe(other))),
        }
    }

    fn layout(&self) -> Result<Layout, GroundTruthError> {
        let event_cells = self.cell(self.var("event_list")?, Field::key("event_list"), None)?;
        let events = event_cells
            .iter()
            .enumerate()
            .map(|(e, v)| self.name(v, Field::event("event_list", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let file_cells = self.cell(self.var("file_list")?, Field::key("file_list"), Some(events.len()))?;
        let files = file_cells
            .iter()
            .enumerate()
            .map(|(e, v)| {
                self.cell(v, Field::event("file_list", e), None)?
                    .iter()
                    .enumerate()
                    .map(|(i, name)| self.name(name, Field::image("file_list", e, i)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Layout { events, files })
    }

    /// A per-event, per-image cell field (`face_bbx_list`, `gt_list`) shaped like `layout`.
    fn cells_per_image(&self, layout: &Layout, key: &'static str) -> Result<Vec<&'a [MatVariable]>, GroundTruthError> {
        let events = self.cell(self.var(key)?, Field::key(key), Some(layout.events.len()))?;
        events
            .iter()
            .zip(&layout.files)
            .enumerate()
            .map(|(e, (v, names))| self.cell(v, Field::event(key, e), Some(names.len())))
            .collect()
    }

    /// An n×4 array of `x y w h` rows (column-major); an empty array means no faces.
    fn face_boxes(&self, var: &MatVariable, field: Field) -> Result<Vec<FaceBox>, GroundTruthError> {
        const EXPECTED: &str = "a real n×4 numeric array of x y w h rows";
        let (dim, values) = self.numbers(var, field, EXPECTED)?;
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let [n, 4] = *dim else {
            return Err(self.shape(field, EXPECTED, describe(var)));
        };
        let (x, rest) = values.split_at(n);
        let (y, rest) = rest.split_at(n);
        let (w, h) = rest.split_at(n);
        let boxes: Vec<FaceBox> = (0..n).map(|k| FaceBox { x: x[k], y: y[k], w: w[k], h: h[k] }).collect();
        match boxes.iter().position(|b| ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite())) {
            Some(k) => Err(self.shape(field, "finite coordinates", format!("a non-finite value in row {}", k + 1))),
            None => Ok(boxes),
        }
    }

    /// The six attributes of each of image (`event`, `image`)'s `faces`, from the cells of
    /// [`ATTRIBUTE_KEYS`] (in that order).
    fn attributes(
        &self,
        lists: &[Vec<&'a [MatVariable]>],
        event: usize,
        image: usize,
        faces: usize,
    ) -> Result<Vec<FaceDetails>, GroundTruthError> {
        let mut codes = Vec::with_capacity(ATTRIBUTE_KEYS.len());
        for (key, list) in ATTRIBUTE_KEYS.iter().zip(lists) {
            let field = Field::image(key, event, image);
            let expected = format!("a vector of {faces} attribute codes");
            let (dim, values) = self.numbers(&list[event][image], field, &expected)?;
            if values.len() != faces || (faces > 0 && !is_vector(dim)) {
                return Err(self.shape(field, expected, describe(&list[event][image])));
            }
            let as_codes = values
                .iter()
                .map(|&v| (v.fract() == 0.0 && (0.0..=255.0).contains(&v)).then_some(v as u8))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| self.shape(field, "codes 0 to 255", describe(&list[event][image])))?;
            codes.push((field, as_codes));
        }
        (0..faces)
            .map(|f| {
                let code = |k: usize| codes[k].1[f];
                let bad = |k: usize, expected: &str| self.shape(codes[k].0, expected, format!("the code {}", code(k)));
                Ok(FaceDetails {
                    attributes: Some(Attributes {
                        blur: Blur::from_code(code(0)).ok_or_else(|| bad(0, Blur::EXPECTED))?,
                        expression: Expression::from_code(code(1)).ok_or_else(|| bad(1, Expression::EXPECTED))?,
                        illumination: Illumination::from_code(code(2)).ok_or_else(|| bad(2, Illumination::EXPECTED))?,
                        invalid: match code(3) {
                            0 => false,
                            1 => true,
                            _ => return Err(bad(3, "0 or 1")),
                        },
                        occlusion: Occlusion::from_code(code(4)).ok_or_else(|| bad(4, Occlusion::EXPECTED))?,
                        pose: Pose::from_code(code(5)).ok_or_else(|| bad(5, Pose::EXPECTED))?,
                    }),
                    landmarks: None,
                })
            })
            .collect()
    }

    /// A vector of distinct 1-based face indexes, returned 0-based.
    fn keep_list(&self, var: &MatVariable, faces: usize, field: Field) -> Result<Vec<usize>, GroundTruthError> {
        let expected = format!("a vector of distinct face indexes between 1 and {faces}");
        let (dim, values) = self.numbers(var, field, &expected)?;
        if !values.is_empty() && !is_vector(dim) {
            return Err(self.shape(field, expected, describe(var)));
        }
        let mut seen = vec![false; faces];
        values
            .iter()
            .map(|&v| {
                let index = (v.fract() == 0.0 && v >= 1.0 && v <= faces as f64)
                    .then(|| v as usize - 1)
                    .filter(|&i| !std::mem::replace(&mut seen[i], true));
                index.ok_or_else(|| self.shape(field, expected.as_str(), format!("the value {v}")))
            })
            .collect()
    }

    /// A setting file must list the same events and images, in the same order, as
    /// `wider_face_val.mat`: `gt_list` is indexed in that order.
    fn check_same_layout(
        &self,
        own: &Layout,
        reference: &Layout,
        reference_file: &Path,
    ) -> Result<(), GroundTruthError> {
        let inconsistent = |field: Field, expected: String, found: String| {
            Err(GroundTruthError::Inconsistent {
                file: self.file.to_path_buf(),
                field: field.to_string(),
                reference: reference_file.to_path_buf(),
                expected,
                found,
            })
        };
        if own.events.len() != reference.events.len() {
            return inconsistent(
                Field::key("event_list"),
                format!("{} events", reference.events.len()),
                format!("{} events", own.events.len()),
            );
        }
        let events = own.events.iter().zip(&reference.events);
        for (e, ((event, ref_event), (files, ref_files))) in
            events.zip(own.files.iter().zip(&reference.files)).enumerate()
        {
            if event != ref_event {
                return inconsistent(Field::event("event_list", e), format!("`{ref_event}`"), format!("`{event}`"));
            }
            if files.len() != ref_files.len() {
                return inconsistent(
                    Field::event("file_list", e),
                    format!("{} images", ref_files.len()),
                    format!("{} images", files.len()),
                );
            }
            if let Some(i) = files.iter().zip(ref_files).position(|(a, b)| a != b) {
                return inconsistent(
                    Field::image("file_list", e, i),
                    format!("`{}`", ref_files[i]),
                    format!("`{}`", files[i]),
                );
            }
        }
        Ok(())
    }
}

/// Whether a MATLAB size describes a vector (at most one dimension differs from 1) or is empty.
fn is_vector(dim: &[usize]) -> bool {
    dim.contains(&0) || dim.iter().filter(|&&d| d != 1).count() <= 1
}

/// Widens any real numeric storage type to f64 (lossless for the integer sizes MATLAB writes for
/// doubles); chars and logicals are not numbers here.
fn widen(values: &MatlabType) -> Option<Vec<f64>> {
    fn all<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
        v.iter().map(|&x| x.into()).collect()
    }
    Some(match values {
        MatlabType::U8(v) => all(v),
        MatlabType::I8(v) => all(v),
        MatlabType::U16(v) => all(v),
        MatlabType::I16(v) => all(v),
        MatlabType::U32(v) => all(v),
        MatlabType::I32(v) => all(v),
        MatlabType::U64(v) => v.iter().map(|&x| x as f64).collect(),
        MatlabType::I64(v) => v.iter().map(|&x| x as f64).collect(),
        MatlabType::F32(v) => all(v),
        MatlabType::F64(v) => v.clone(),
        MatlabType::UTF8(_) | MatlabType::UTF16(_) | MatlabType::BOOL(_) => return None,
    })
}

/// A short description of what a variable is, for error messages.
fn describe(var: &MatVariable) -> String {
    let size = |dim: &[usize]| dim.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
    match var {
        MatVariable::NumericArray(array) => {
            let kind = match &array.value {
                MatlabType::U8(_) => "uint8",
                MatlabType::I8(_) => "int8",
                MatlabType::U16(_) => "uint16",
                MatlabType::I16(_) => "int16",
                MatlabType::U32(_) => "uint32",
                MatlabType::I32(_) => "int32",
                MatlabType::U64(_) => "uint64",
                MatlabType::I64(_) => "int64",
                MatlabType::F32(_) => "single",
                MatlabType::F64(_) => "double",
                MatlabType::UTF8(_) | MatlabType::UTF16(_) => "char",
                MatlabType::BOOL(_) => "logical",
            };
            let complex = if array.value_cmp.is_some() { " (complex)" } else { "" };
            format!("{kind}{complex} array of size {}", size(&array.dim))
        }
        MatVariable::CellArray(cell) => format!("cell array of size {}", size(&cell.dim)),
        MatVariable::SparseArray(_) => "sparse array".into(),
        MatVariable::StructureArray(_) | MatVariable::Structure(_) => "struct".into(),
        MatVariable::Null | MatVariable::Compressed(_) | MatVariable::Unsupported => "unsupported MATLAB value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::test_support::assets;
    use matrw::{CellArray, NumericArray, save_matfile_v7};

    fn chars(s: &str) -> MatVariable {
        MatVariable::from(s)
    }

    fn column(values: Vec<MatVariable>) -> MatVariable {
        let n = values.len();
        match CellArray::new(vec![n, 1], values) {
            Ok(cell) => MatVariable::CellArray(cell),
            Err(e) => panic!("{e}"),
        }
    }

    fn doubles(dim: Vec<usize>, values: Vec<f64>) -> MatVariable {
        match NumericArray::new(dim, MatlabType::F64(values), None) {
            Ok(array) => MatVariable::NumericArray(array),
            Err(e) => panic!("{e}"),
        }
    }

    /// Writes the four official files for one event of two images (2 and 1 faces); `edit`
    /// changes the variables of one file before it is written.
    fn write_official(dir: &Path, edit: impl Fn(&str, &mut MatFile)) {
        for (file, keep) in [
            (FACE_FILE, None),
            ("wider_easy_val.mat", Some([vec![1.0], vec![]])),
            ("wider_medium_val.mat", Some([vec![2.0, 1.0], vec![1.0]])),
            ("wider_hard_val.mat", Some([vec![1.0, 2.0], vec![1.0]])),
        ] {
            let mut mat = MatFile::new();
            mat.insert("event_list", column(vec![chars("0--Parade")]));
            mat.insert("file_list", column(vec![column(vec![chars("img_a"), chars("img_b")])]));
            mat.insert(
                "face_bbx_list",
                column(vec![column(vec![
                    doubles(vec![2, 4], vec![1.0, 50.0, 2.0, 60.0, 10.0, 11.0, 12.0, 13.0]),
                    doubles(vec![1, 4], vec![5.0, 6.0, 7.0, 8.0]),
                ])]),
            );
            if let Some([a, b]) = keep {
                let (na, nb) = (a.len(), b.len());
                mat.insert("gt_list", column(vec![column(vec![doubles(vec![na, 1], a), doubles(vec![nb, 1], b)])]));
            }
            edit(file, &mut mat);
            let path = dir.join(file);
            let path = path.to_str().unwrap_or_default();
            if let Err(e) = save_matfile_v7(path, mat, true) {
                panic!("{e}");
            }
        }
    }

    fn load_edited(edit: impl Fn(&str, &mut MatFile)) -> Result<GroundTruth, GroundTruthError> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_official(dir.path(), edit);
        GroundTruth::from_official_dir(dir.path())
    }

    #[test]
    fn small_official_files_load() {
        let gt = match load_edited(|_, _| {}) {
            Ok(gt) => gt,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(gt.images().len(), 2);
        assert_eq!(gt.images()[0].boxes[1], FaceBox { x: 50.0, y: 60.0, w: 11.0, h: 13.0 });
        let kept: Vec<usize> = gt.settings().iter().map(|s| s.kept_faces()).collect();
        assert_eq!(kept, vec![1, 3, 3]);
    }

    #[test]
    fn names_that_leave_the_image_folder_are_refused() {
        for bad in ["../../etc", "a/b", "..", "x\\y"] {
            let err = load_edited(|_, mat| {
                mat.insert("file_list", column(vec![column(vec![chars(bad), chars("img_b")])]));
            });
            let msg = err.map(|_| ()).unwrap_err().to_string();
            assert!(msg.contains("wider_face_val.mat") && msg.contains("file_list{1}{1}"), "{bad}: {msg}");
        }
    }

    #[test]
    fn missing_key_names_file_and_key() {
        let err = load_edited(|file, mat| {
            if file == "wider_medium_val.mat" {
                mat.take("gt_list");
            }
        });
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("wider_medium_val.mat") && msg.contains("missing key `gt_list`"), "{msg}");
    }

    #[test]
    fn wrong_box_shape_names_the_field() {
        let err = load_edited(|file, mat| {
            if file == FACE_FILE {
                mat.insert(
                    "face_bbx_list",
                    column(vec![column(vec![
                        doubles(vec![1, 3], vec![1.0, 2.0, 3.0]),
                        doubles(vec![1, 4], vec![5.0, 6.0, 7.0, 8.0]),
                    ])]),
                );
            }
        });
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(
            msg.contains("wider_face_val.mat")
                && msg.contains("`face_bbx_list{1}{1}`")
                && msg.contains("n×4")
                && msg.contains("1×3"),
            "{msg}"
        );
    }

    #[test]
    fn inconsistent_files_are_reported() {
        let err = load_edited(|file, mat| {
            if file == "wider_hard_val.mat" {
                mat.insert("file_list", column(vec![column(vec![chars("img_a"), chars("img_c")])]));
            }
        });
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(
            msg.contains("wider_hard_val.mat")
                && msg.contains("`file_list{1}{2}`")
                && msg.contains("`img_c`")
                && msg.contains("wider_face_val.mat has `img_b`"),
            "{msg}"
        );
        let err = load_edited(|file, mat| {
            if file == "wider_easy_val.mat" {
                mat.insert("gt_list", column(vec![column(vec![doubles(vec![1, 1], vec![1.0])])]));
            }
        });
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(
            msg.contains("wider_easy_val.mat") && msg.contains("`gt_list{1}`") && msg.contains("2 elements"),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_image_names_name_the_file() {
        let err = load_edited(|_, mat| {
            mat.insert("file_list", column(vec![column(vec![chars("img_a"), chars("img_a")])]));
        });
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("wider_face_val.mat") && msg.contains("`img_a` twice"), "{msg}");
    }

    #[test]
    fn bad_keep_index_names_the_field() {
        let err = load_edited(|file, mat| {
            if file == "wider_easy_val.mat" {
                mat.insert(
                    "gt_list",
                    column(vec![column(vec![doubles(vec![1, 1], vec![3.0]), doubles(vec![0, 0], vec![])])]),
                );
            }
        });
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("`gt_list{1}{1}`") && msg.contains("between 1 and 2"), "{msg}");
    }

    #[test]
    fn corrupted_or_missing_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_official(dir.path(), |_, _| {});
        let path = dir.path().join(FACE_FILE);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
        let msg = GroundTruth::from_official_dir(dir.path()).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("wider_face_val.mat"), "{msg}");
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let err = GroundTruth::from_official_dir(dir.path());
        assert!(matches!(err, Err(GroundTruthError::Io { .. })));
    }

    #[test]
    fn official_face_boxes_are_int32_and_keep_lists_double() {
        let Some(assets) = assets("official_face_boxes_are_int32_and_keep_lists_double") else {
            return;
        };
        let dir = assets.join("widerface_eval");
        let face = read_mat(&dir.join(FACE_FILE)).unwrap_or_else(|e| panic!("{e}"));
        let reader = Reader { file: &dir.join(FACE_FILE), mat: &face };
        let layout = reader.layout().unwrap_or_else(|e| panic!("{e}"));
        let boxes = reader.cells_per_image(&layout, "face_bbx_list").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(describe(&boxes[0][0]), "int32 array of size 126×4");
        let easy = read_mat(&dir.join("wider_easy_val.mat")).unwrap_or_else(|e| panic!("{e}"));
        let reader = Reader { file: &dir.join("wider_easy_val.mat"), mat: &easy };
        let lists = reader.cells_per_image(&layout, "gt_list").unwrap_or_else(|e| panic!("{e}"));
        assert!(describe(&lists[0][1]).starts_with("double array"));
    }
}
