//! CVAT for images 1.1 XML, as CVAT exports and imports it:
//!
//! ```xml
//! <annotations>
//!   <version>1.1</version>
//!   <meta><task>…<labels>face (with its attributes), left_eye … mouth_right</labels></task></meta>
//!   <image id="0" name="0--Parade/a.jpg" width="1024" height="768">
//!     <box label="face" source="manual" occluded="0" xtl="449" ytl="330" xbr="571" ybr="479" z_order="0" group_id="1">
//!       <attribute name="blur">clear</attribute> … <attribute name="invalid">false</attribute>
//!       <attribute name="score">0.82</attribute>
//!     </box>
//!     <points label="left_eye" source="manual" occluded="0" points="488.906,373.643" z_order="0" group_id="1"/>
//!     …
//!   </image>
//! </annotations>
//! ```
//!
//! A face is a `<box label="face">` with the WIDER attributes (`blur`, `expression`,
//! `illumination`, `occlusion`, `pose` by value name, `invalid` as `true`/`false`) and the
//! RetinaFace `score` as `<attribute>` children (none for a face without attributes; `score`
//! only where the face has one). Each landmark is a `<points>` element of one point, labelled with
//! its name ([`LANDMARK_NAMES`]), `occluded="1"` for an occluded point, tied to its box by the
//! box's `group_id` (unique in the file; a face without landmarks has none). The box's own
//! `occluded` says whether the WIDER occlusion is partial or heavy; on import the `occlusion`
//! attribute is what counts. Coordinates are written as the shortest decimal that reads back to
//! the same `f32`, so everything a face holds is carried.
//!
//! An import reads `<box label="face">` and the landmark `<points>`; other labels and shapes
//! (polygons, tags, other boxes) and attributes of other names are ignored; rotated boxes and
//! CVAT for video (`<track>`) are errors.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer, XmlVersion};

use super::error::{LineCounter, line_of};
use super::{
    AnnotatedImage, FACE_LABEL, InterchangeError, LANDMARK_NAMES, Listed, PartialAttributes, Position,
    normalized_image_path,
};
use crate::dataset::{
    Attributes, Blur, Expression, Face, FaceLandmarks, Illumination, LandmarkFlag, Occlusion, Origin, Pose, SplitKind,
};
use crate::geometry::{BBox, Landmarks, Point};

/// How deep elements may nest: faces are four deep (`<annotations><image><box><attribute>`) and
/// CVAT's meta block under ten; a deeper file is not a CVAT file, and its open elements are not
/// kept without bound.
const MAX_DEPTH: usize = 32;

/// The spelling of a coordinate or score: the shortest decimal that reads back to the same `f32`.
fn number(v: f32) -> String {
    format!("{v}")
}

fn lowercase_names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<String> {
    all.iter().map(|&v| name(v).to_lowercase()).collect()
}

/// The CVAT file of a split's images (image ids from 0, in the split's order).
pub fn write(images: &[AnnotatedImage], kind: SplitKind) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    write_document(&mut writer, images, kind).expect("writing XML to memory cannot fail");
    String::from_utf8(writer.into_inner()).expect("the XML writer writes the UTF-8 it is given")
}

fn write_document(w: &mut Writer<Vec<u8>>, images: &[AnnotatedImage], kind: SplitKind) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    w.create_element("annotations").write_inner_content(|w| {
        w.create_element("version").write_text_content(BytesText::new("1.1"))?;
        w.create_element("meta").write_inner_content(|w| {
            w.create_element("task").write_inner_content(|w| {
                let name = format!("facestudio {}", kind.name());
                w.create_element("name").write_text_content(BytesText::new(&name))?;
                w.create_element("size").write_text_content(BytesText::new(&images.len().to_string()))?;
                w.create_element("mode").write_text_content(BytesText::new("annotation"))?;
                w.create_element("labels").write_inner_content(write_labels)?;
                Ok(())
            })?;
            Ok(())
        })?;
        let mut group = 0u64;
        for (id, image) in images.iter().enumerate() {
            let element = w.create_element("image").with_attributes([
                ("id", id.to_string().as_str()),
                ("name", image.path.as_str()),
                ("width", image.width.to_string().as_str()),
                ("height", image.height.to_string().as_str()),
            ]);
            if image.faces.is_empty() {
                element.write_empty()?;
            } else {
                element.write_inner_content(|w| {
                    for face in &image.faces {
                        write_face(w, face, &mut group)?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// The `<labels>` of the meta block: `face` with its attributes, then one label per landmark.
fn write_labels(w: &mut Writer<Vec<u8>>) -> io::Result<()> {
    let selects = [
        (Blur::FIELD, lowercase_names(Blur::ALL, Blur::name)),
        (Expression::FIELD, lowercase_names(Expression::ALL, Expression::name)),
        (Illumination::FIELD, lowercase_names(Illumination::ALL, Illumination::name)),
        (Occlusion::FIELD, lowercase_names(Occlusion::ALL, Occlusion::name)),
        (Pose::FIELD, lowercase_names(Pose::ALL, Pose::name)),
    ];
    w.create_element("label").write_inner_content(|w| {
        w.create_element("name").write_text_content(BytesText::new(FACE_LABEL))?;
        w.create_element("type").write_text_content(BytesText::new("rectangle"))?;
        w.create_element("attributes").write_inner_content(|w| {
            for (name, values) in &selects {
                write_attribute_spec(w, name, "select", &values[0], &values.join("\n"))?;
            }
            write_attribute_spec(w, "invalid", "checkbox", "false", "false")?;
            write_attribute_spec(w, "score", "text", "", "")
        })?;
        Ok(())
    })?;
    for name in LANDMARK_NAMES {
        w.create_element("label").write_inner_content(|w| {
            w.create_element("name").write_text_content(BytesText::new(name))?;
            w.create_element("type").write_text_content(BytesText::new("points"))?;
            w.create_element("attributes").write_empty()?;
            Ok(())
        })?;
    }
    Ok(())
}

fn write_attribute_spec(
    w: &mut Writer<Vec<u8>>,
    name: &str,
    input_type: &str,
    default: &str,
    values: &str,
) -> io::Result<()> {
    w.create_element("attribute").write_inner_content(|w| {
        w.create_element("name").write_text_content(BytesText::new(name))?;
        w.create_element("mutable").write_text_content(BytesText::new("False"))?;
        w.create_element("input_type").write_text_content(BytesText::new(input_type))?;
        w.create_element("default_value").write_text_content(BytesText::new(default))?;
        w.create_element("values").write_text_content(BytesText::new(values))?;
        Ok(())
    })?;
    Ok(())
}

fn write_face(w: &mut Writer<Vec<u8>>, face: &Face, group: &mut u64) -> io::Result<()> {
    let [x1, y1, x2, y2] = face.bbox.corners().map(number);
    let occluded = face.attributes.is_some_and(|a| a.occlusion != Occlusion::None);
    let mut shape = vec![
        ("label", FACE_LABEL.to_string()),
        ("source", "manual".into()),
        ("occluded", u8::from(occluded).to_string()),
        ("xtl", x1),
        ("ytl", y1),
        ("xbr", x2),
        ("ybr", y2),
        ("z_order", "0".into()),
    ];
    if face.landmarks.is_some() {
        *group += 1;
        shape.push(("group_id", group.to_string()));
    }
    let mut attributes: Vec<(&str, String)> = Vec::new();
    if let Some(a) = face.attributes {
        attributes.extend([
            (Blur::FIELD, a.blur.name().to_lowercase()),
            (Expression::FIELD, a.expression.name().to_lowercase()),
            (Illumination::FIELD, a.illumination.name().to_lowercase()),
            (Occlusion::FIELD, a.occlusion.name().to_lowercase()),
            (Pose::FIELD, a.pose.name().to_lowercase()),
            ("invalid", a.invalid.to_string()),
        ]);
    }
    if let Some(score) = face.score {
        attributes.push(("score", number(score)));
    }
    let element = w.create_element("box").with_attributes(shape.iter().map(|(k, v)| (*k, v.as_str())));
    if attributes.is_empty() {
        element.write_empty()?;
    } else {
        element.write_inner_content(|w| {
            for (name, value) in &attributes {
                w.create_element("attribute")
                    .with_attribute(("name", *name))
                    .write_text_content(BytesText::new(value))?;
            }
            Ok(())
        })?;
    }
    if let Some(lm) = &face.landmarks {
        for ((name, point), flag) in LANDMARK_NAMES.iter().zip(lm.points.points).zip(lm.flags) {
            let points = format!("{},{}", number(point.x), number(point.y));
            let occluded = if flag == LandmarkFlag::Occluded { "1" } else { "0" };
            let group = group.to_string();
            w.create_element("points")
                .with_attributes([
                    ("label", *name),
                    ("source", "manual"),
                    ("occluded", occluded),
                    ("points", points.as_str()),
                    ("z_order", "0"),
                    ("group_id", group.as_str()),
                ])
                .write_empty()?;
        }
    }
    Ok(())
}

/// A `<box label="face">` being read.
struct BoxShape {
    /// Byte offset of the tag, for errors found once the image is complete.
    at: usize,
    bbox: BBox,
    group: u64,
    attributes: ReadAttributes,
}

/// The WIDER attributes and score of a box, each optional (missing ones default).
#[derive(Default)]
struct ReadAttributes {
    wider: PartialAttributes,
    score: Option<f32>,
}

impl ReadAttributes {
    /// Takes one `<attribute name=…>value</attribute>`; names of the user's own attributes are ignored.
    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            Blur::FIELD => self.wider.blur = Some(by_name(Blur::ALL, Blur::name, name, value)?),
            Expression::FIELD => self.wider.expression = Some(by_name(Expression::ALL, Expression::name, name, value)?),
            Illumination::FIELD => {
                self.wider.illumination = Some(by_name(Illumination::ALL, Illumination::name, name, value)?);
            }
            Occlusion::FIELD => self.wider.occlusion = Some(by_name(Occlusion::ALL, Occlusion::name, name, value)?),
            Pose::FIELD => self.wider.pose = Some(by_name(Pose::ALL, Pose::name, name, value)?),
            "invalid" => {
                self.wider.invalid = Some(match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("invalid: expected true or false, found {value:?}")),
                });
            }
            "score" if value.is_empty() => self.score = None,
            "score" => self.score = Some(parse_number("score", value)?),
            _ => {}
        }
        Ok(())
    }

    fn into_attributes(self) -> Option<Attributes> {
        self.wider.into_attributes()
    }
}

fn by_name<T: Copy>(all: &[T], name: fn(T) -> &'static str, field: &str, value: &str) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|&v| name(v).eq_ignore_ascii_case(value))
        .ok_or_else(|| format!("{field}: expected one of {}, found {value:?}", lowercase_names(all, name).join(", ")))
}

fn parse_number(field: &str, value: &str) -> Result<f32, String> {
    match value.trim().parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{field}: expected a finite number (as an f32), found {value:?}")),
    }
}

/// A landmark `<points>` element.
struct LandmarkPoint {
    at: usize,
    index: usize,
    group: u64,
    point: Point,
    flag: LandmarkFlag,
}

struct ImageBuilder {
    /// Byte offset of the `<image>` tag.
    at: usize,
    path: String,
    width: u32,
    height: u32,
    boxes: Vec<BoxShape>,
    points: Vec<LandmarkPoint>,
}

/// The reader's state: the open elements and what is being built.
struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
    stack: Vec<String>,
    images: Vec<AnnotatedImage>,
    /// Where each image's `<image>` tag is.
    positions: Vec<Position>,
    lines: LineCounter<'a>,
    image: Option<ImageBuilder>,
    /// The open `<box label="face">`; `None` inside boxes of other labels.
    shape: Option<BoxShape>,
    /// The open `<attribute>` of a face box: its name and offset.
    attribute: Option<(String, usize)>,
    /// Text of the innermost open element.
    content: String,
    seen_root: bool,
}

/// Reads a CVAT for images 1.1 file. Errors name the line and the element (XML syntax errors
/// the line of quick-xml's error position).
pub fn parse(path: &Path, text: &str) -> Result<Listed, InterchangeError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut parser = Parser {
        path,
        text,
        stack: Vec::new(),
        images: Vec::new(),
        positions: Vec::new(),
        lines: LineCounter::new(text),
        image: None,
        shape: None,
        attribute: None,
        content: String::new(),
        seen_root: false,
    };
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| parser.error(reader.error_position() as usize, e.to_string()))?;
        // The tag starts after the whitespace that trimming skipped.
        let rest = &text[before.min(text.len())..];
        let at = before + (rest.len() - rest.trim_start().len());
        match event {
            Event::Start(e) => {
                let name = element_name(&e);
                if parser.stack.len() >= MAX_DEPTH {
                    let message = format!("<{name}> is nested deeper than {MAX_DEPTH} elements: not a CVAT file");
                    return Err(parser.error(at, message));
                }
                parser.open(&name, &e, at)?;
                parser.stack.push(name);
            }
            Event::Empty(e) => {
                let name = element_name(&e);
                parser.open(&name, &e, at)?;
                parser.close(&name, at)?;
            }
            Event::End(_) => {
                let name = parser.stack.pop().unwrap_or_default();
                parser.close(&name, at)?;
            }
            Event::Text(t) => {
                let content = t.xml10_content().map_err(|e| parser.error(at, e.to_string()))?;
                parser.content.push_str(&content);
            }
            Event::CData(t) => {
                let content = t.decode().map_err(|e| parser.error(at, e.to_string()))?;
                parser.content.push_str(&content);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| parser.error(at, e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| parser.error(at, e.to_string()))?;
                        resolve_xml_entity(&name)
                            .ok_or_else(|| parser.error(at, format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                parser.content.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = parser.stack.last() {
        return Err(parser.error(text.len(), format!("the file ends inside <{open}>: it is cut short")));
    }
    if !parser.seen_root {
        return Err(parser.error(0, "no <annotations> element: not a CVAT for images 1.1 file"));
    }
    Ok(Listed { images: parser.images, positions: parser.positions })
}

fn element_name(e: &BytesStart) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

/// An element's attributes, unescaped.
fn attributes_of(e: &BytesStart) -> Result<Vec<(String, String)>, String> {
    e.attributes()
        .map(|attr| {
            let attr = attr.map_err(|err| err.to_string())?;
            let value = attr
                .decoded_and_normalized_value(XmlVersion::Implicit1_0, e.decoder())
                .map_err(|err| err.to_string())?;
            Ok((String::from_utf8_lossy(attr.key.as_ref()).into_owned(), value.into_owned()))
        })
        .collect()
}

/// Looks attributes up by name, with errors that name the element.
struct Attrs<'a> {
    element: &'a str,
    values: Vec<(String, String)>,
}

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name).ok_or_else(|| format!("<{}>: missing attribute {name:?}", self.element))
    }

    fn number(&self, name: &str) -> Result<f32, String> {
        parse_number(name, self.required(name)?).map_err(|e| format!("<{}>: {e}", self.element))
    }

    fn size(&self, name: &str) -> Result<u32, String> {
        let value = self.required(name)?;
        value
            .trim()
            .parse()
            .map_err(|_| format!("<{}>: {name}: expected a whole number, found {value:?}", self.element))
    }

    fn group(&self) -> Result<u64, String> {
        match self.get("group_id") {
            None => Ok(0),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("<{}>: group_id: expected a whole number, found {v:?}", self.element)),
        }
    }

    fn occluded(&self) -> Result<bool, String> {
        match self.get("occluded").map(str::trim) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(v) => Err(format!("<{}>: occluded: expected 0 or 1, found {v:?}", self.element)),
        }
    }
}

impl Parser<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> InterchangeError {
        InterchangeError::malformed(self.path, Position::Line(line_of(self.text, offset)), message)
    }

    /// Whether the open elements are exactly `path`.
    fn inside(&self, path: &[&str]) -> bool {
        self.stack.len() == path.len() && self.stack.iter().zip(path).all(|(a, b)| a == b)
    }

    fn open(&mut self, name: &str, e: &BytesStart, at: usize) -> Result<(), InterchangeError> {
        self.content.clear();
        let attrs = || attributes_of(e).map(|values| Attrs { element: name, values }).map_err(|m| self.error(at, m));
        if self.stack.is_empty() {
            if name != "annotations" {
                let message = format!("expected <annotations> (a CVAT for images 1.1 file), found <{name}>");
                return Err(self.error(at, message));
            }
            self.seen_root = true;
        } else if self.inside(&["annotations"]) && name == "track" {
            let message = "<track>: CVAT for video is not read; export the task as \"CVAT for images 1.1\"";
            return Err(self.error(at, message));
        } else if self.inside(&["annotations"]) && name == "image" {
            let attrs = attrs()?;
            let read = || -> Result<ImageBuilder, String> {
                Ok(ImageBuilder {
                    at,
                    path: normalized_image_path(attrs.required("name")?)?,
                    width: attrs.size("width")?,
                    height: attrs.size("height")?,
                    boxes: Vec::new(),
                    points: Vec::new(),
                })
            };
            self.image = Some(read().map_err(|m| self.error(at, m))?);
        } else if self.inside(&["annotations", "image"]) && name == "box" {
            let attrs = attrs()?;
            self.shape = if attrs.get("label") == Some(FACE_LABEL) {
                Some(read_box(&attrs, at).map_err(|m| self.error(at, m))?)
            } else {
                None
            };
        } else if self.inside(&["annotations", "image", "box"]) && name == "attribute" && self.shape.is_some() {
            let attrs = attrs()?;
            let attribute = attrs.required("name").map_err(|m| self.error(at, m))?.to_string();
            self.attribute = Some((attribute, at));
        } else if self.inside(&["annotations", "image"]) && name == "points" {
            let attrs = attrs()?;
            let index = attrs.get("label").and_then(|label| LANDMARK_NAMES.iter().position(|n| *n == label));
            if let Some(index) = index {
                let point = read_point(&attrs, index, at).map_err(|m| self.error(at, m))?;
                if let Some(image) = &mut self.image {
                    image.points.push(point);
                }
            }
        }
        Ok(())
    }

    fn close(&mut self, name: &str, at: usize) -> Result<(), InterchangeError> {
        if self.inside(&["annotations"]) && name == "version" && self.content.trim() != "1.1" {
            let message = format!("<version>: expected 1.1 (CVAT for images 1.1), found {:?}", self.content.trim());
            return Err(self.error(at, message));
        }
        if self.inside(&["annotations", "image", "box"]) && name == "attribute" {
            if let (Some(shape), Some((attribute, at))) = (&mut self.shape, self.attribute.take()) {
                let value = self.content.trim();
                shape.attributes.set(&attribute, value).map_err(|m| {
                    InterchangeError::malformed(
                        self.path,
                        Position::Line(line_of(self.text, at)),
                        format!("<attribute>: {m}"),
                    )
                })?;
            }
        } else if self.inside(&["annotations", "image"]) && name == "box" {
            if let (Some(shape), Some(image)) = (self.shape.take(), &mut self.image) {
                image.boxes.push(shape);
            }
        } else if self.inside(&["annotations"]) && name == "image" {
            if let Some(image) = self.image.take() {
                let at = image.at;
                let image = self.finish_image(image)?;
                self.images.push(image);
                // The line is counted once per image, from the previous one (a running count:
                // counting from the start for each would scan the file once per image).
                let line = self.lines.at(at);
                self.positions.push(Position::Line(line));
            }
        }
        self.content.clear();
        Ok(())
    }

    /// Gives each face box the landmarks of its group.
    fn finish_image(&self, image: ImageBuilder) -> Result<AnnotatedImage, InterchangeError> {
        let mut by_group: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, shape) in image.boxes.iter().enumerate().filter(|(_, s)| s.group != 0) {
            by_group.entry(shape.group).or_default().push(i);
        }
        let mut found: Vec<[Option<(Point, LandmarkFlag)>; 5]> = vec![[None; 5]; image.boxes.len()];
        for point in &image.points {
            let label = LANDMARK_NAMES[point.index];
            let owner = match by_group.get(&point.group).map(Vec::as_slice) {
                _ if point.group == 0 => {
                    let message = format!(
                        "<points label=\"{label}\">: no group_id; a landmark names its face's box by the box's group_id"
                    );
                    return Err(self.error(point.at, message));
                }
                Some([only]) => *only,
                Some(_) => {
                    let message =
                        format!("<points label=\"{label}\">: several face boxes have group_id {}", point.group);
                    return Err(self.error(point.at, message));
                }
                None => {
                    let message = format!(
                        "<points label=\"{label}\">: no <box label=\"{FACE_LABEL}\"> of this image has group_id {}",
                        point.group
                    );
                    return Err(self.error(point.at, message));
                }
            };
            let slot = &mut found[owner][point.index];
            if slot.is_some() {
                let message =
                    format!("<points label=\"{label}\">: a second {label} for the face of group_id {}", point.group);
                return Err(self.error(point.at, message));
            }
            *slot = Some((point.point, point.flag));
        }
        let mut faces = Vec::with_capacity(image.boxes.len());
        for (shape, points) in image.boxes.into_iter().zip(found) {
            let given = points.iter().filter(|p| p.is_some()).count();
            let landmarks = match given {
                0 => None,
                5 => Some(FaceLandmarks {
                    points: Landmarks { points: points.map(|p| p.map_or(Point::default(), |(point, _)| point)) },
                    flags: points.map(|p| p.map_or(LandmarkFlag::Visible, |(_, flag)| flag)),
                }),
                _ => {
                    let missing: Vec<&str> =
                        LANDMARK_NAMES.iter().zip(&points).filter(|(_, p)| p.is_none()).map(|(n, _)| *n).collect();
                    let message = format!(
                        "<box label=\"{FACE_LABEL}\">: the face has {given} of the five landmarks ({} missing); a face has all five or none",
                        missing.join(", ")
                    );
                    return Err(self.error(shape.at, message));
                }
            };
            let score = shape.attributes.score;
            faces.push(Face {
                bbox: shape.bbox,
                landmarks,
                attributes: shape.attributes.into_attributes(),
                score,
                origin: Origin::default(),
            });
        }
        Ok(AnnotatedImage { path: image.path, width: image.width, height: image.height, faces })
    }
}

fn read_box(attrs: &Attrs, at: usize) -> Result<BoxShape, String> {
    let corners = [attrs.number("xtl")?, attrs.number("ytl")?, attrs.number("xbr")?, attrs.number("ybr")?];
    let bbox = BBox::new(corners[0], corners[1], corners[2], corners[3]).map_err(|e| format!("<box>: {e}"))?;
    if let Some(rotation) = attrs.get("rotation")
        && parse_number("rotation", rotation)? != 0.0
    {
        return Err(format!("<box>: rotation {rotation}: rotated boxes are not read (a face box is axis-aligned)"));
    }
    Ok(BoxShape { at, bbox, group: attrs.group()?, attributes: ReadAttributes::default() })
}

fn read_point(attrs: &Attrs, index: usize, at: usize) -> Result<LandmarkPoint, String> {
    let value = attrs.required("points")?;
    let point = match value.split(',').collect::<Vec<_>>().as_slice() {
        [x, y] if !value.contains(';') => {
            let coordinate = |v: &str| parse_number("points", v).map_err(|e| format!("<points>: {e}"));
            Point::new(coordinate(x)?, coordinate(y)?)
        }
        _ => return Err(format!("<points>: points: expected one point \"x,y\", found {value:?}")),
    };
    let flag = if attrs.occluded()? { LandmarkFlag::Occluded } else { LandmarkFlag::Visible };
    Ok(LandmarkPoint { at, index, group: attrs.group()?, point, flag })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interchange::tests::sample_images;

    fn parse_text(text: &str) -> Result<Vec<AnnotatedImage>, InterchangeError> {
        parse(Path::new("cvat.xml"), text).map(|listed| listed.images)
    }

    fn one_image(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n<version>1.1</version>\n\
             <image id=\"0\" name=\"a.jpg\" width=\"100\" height=\"80\">\n{body}\n</image>\n</annotations>\n"
        )
    }

    #[test]
    fn round_trip_keeps_every_face_landmark_flag_attribute_and_score() {
        let images = sample_images();
        let back = parse_text(&write(&images, SplitKind::Train)).unwrap();
        assert_eq!(back, images);
    }

    #[test]
    fn names_with_markup_characters_are_escaped_and_read_back() {
        let images = sample_images();
        let xml = write(&images, SplitKind::Train);
        assert!(xml.contains("name=\"7--Cheering/a&amp;b &quot;q&quot; &lt;1&gt;.jpg\""), "{xml}");
        let back = parse_text(&xml).unwrap();
        assert!(back.iter().any(|i| i.path == "7--Cheering/a&b \"q\" <1>.jpg"));
    }

    #[test]
    fn landmarks_are_points_grouped_with_their_box() {
        let xml = write(&sample_images(), SplitKind::Train);
        assert!(xml.contains("<version>1.1</version>"));
        assert!(xml.contains("label=\"right_eye\" source=\"manual\" occluded=\"1\""), "{xml}");
        let first_box = xml.find("<box ").unwrap();
        assert!(xml[first_box..].starts_with("<box label=\"face\""), "{xml}");
        assert!(xml.contains("group_id=\"1\"/>") || xml.contains("group_id=\"1\" />"), "{xml}");
    }

    #[test]
    fn a_box_without_a_coordinate_names_the_line_element_and_attribute() {
        let text = one_image("<box label=\"face\" xtl=\"1\" ytl=\"2\" ybr=\"9\" occluded=\"0\"/>");
        let err = parse_text(&text).unwrap_err();
        assert!(matches!(err, InterchangeError::Malformed { position: Position::Line(5), .. }), "{err}");
        assert!(err.to_string().contains("<box>: missing attribute \"xbr\""), "{err}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let text = one_image("<box label=\"face\" xtl=\"1\" ytl=\"2\" xbr=\"3\" ybr=\"9\">\n</points>");
        let err = parse_text(&text).unwrap_err();
        assert!(matches!(err, InterchangeError::Malformed { position: Position::Line(6), .. }), "{err}");
    }

    #[test]
    fn a_cut_short_file_is_an_error() {
        let xml = write(&sample_images(), SplitKind::Train);
        let err = parse_text(&xml[..xml.len() / 2]).unwrap_err().to_string();
        assert!(err.starts_with("cvat.xml:"), "{err}");
    }

    #[test]
    fn an_image_name_leaving_the_images_folder_is_rejected_by_name() {
        let text = one_image("").replace("name=\"a.jpg\"", "name=\"../../etc/passwd\"");
        let err = parse_text(&text).unwrap_err().to_string();
        assert!(err.contains("cvat.xml:4") && err.contains("../../etc/passwd") && err.contains("leaves"), "{err}");
    }

    #[test]
    fn a_landmark_without_its_face_box_is_an_error_at_its_line() {
        let text = one_image(
            "<box label=\"face\" xtl=\"1\" ytl=\"2\" xbr=\"30\" ybr=\"40\" group_id=\"4\"/>\n\
             <points label=\"nose\" occluded=\"0\" points=\"5,6\" group_id=\"5\"/>",
        );
        let err = parse_text(&text).unwrap_err();
        assert!(matches!(err, InterchangeError::Malformed { position: Position::Line(6), .. }), "{err}");
        assert!(err.to_string().contains("group_id 5"), "{err}");
    }

    #[test]
    fn some_landmarks_missing_is_an_error_naming_them() {
        let text = one_image(
            "<box label=\"face\" xtl=\"1\" ytl=\"2\" xbr=\"30\" ybr=\"40\" group_id=\"4\"/>\n\
             <points label=\"nose\" occluded=\"0\" points=\"5,6\" group_id=\"4\"/>",
        );
        let err = parse_text(&text).unwrap_err().to_string();
        assert!(
            err.contains("cvat.xml:5") && err.contains("left_eye, right_eye, mouth_left, mouth_right missing"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_attribute_value_lists_the_accepted_ones() {
        let text = one_image(
            "<box label=\"face\" xtl=\"1\" ytl=\"2\" xbr=\"30\" ybr=\"40\">\n<attribute name=\"blur\">foggy</attribute>\n</box>",
        );
        let err = parse_text(&text).unwrap_err().to_string();
        assert!(err.contains("cvat.xml:6") && err.contains("clear, normal, heavy") && err.contains("foggy"), "{err}");
    }

    #[test]
    fn other_labels_and_shapes_are_skipped_and_missing_attributes_default() {
        let text = one_image(
            "<box label=\"car\" xtl=\"1\" ytl=\"2\" xbr=\"30\" ybr=\"40\"><attribute name=\"blur\">x</attribute></box>\n\
             <polygon label=\"face\" points=\"1,2;3,4;5,6\"/>\n\
             <box label=\"face\" xtl=\"1.5\" ytl=\"2\" xbr=\"30\" ybr=\"40\"><attribute name=\"pose\">atypical</attribute></box>",
        );
        let images = parse_text(&text).unwrap();
        assert_eq!(images[0].faces.len(), 1);
        let face = &images[0].faces[0];
        assert_eq!(face.bbox.corners(), [1.5, 2.0, 30.0, 40.0]);
        assert_eq!(face.attributes, Some(Attributes { pose: Pose::Atypical, ..Attributes::default() }));
    }

    /// 100 000 images (a 6 MB file; a WIDER export is 180 MB): a line count from the start for
    /// each image would scan about 3·10¹¹ bytes (a minute); one pass takes well under a second.
    /// The bound is loose for a loaded test machine.
    #[test]
    fn a_file_of_many_images_is_read_in_one_pass() {
        let mut text = String::from("<annotations>\n<version>1.1</version>\n");
        for i in 0..100_000 {
            text.push_str(&format!("<image id=\"{i}\" name=\"e/{i}.jpg\" width=\"9\" height=\"9\"/>\n"));
        }
        text.push_str("</annotations>\n");
        let start = std::time::Instant::now();
        let listed = parse(Path::new("cvat.xml"), &text).unwrap();
        let took = start.elapsed();
        assert_eq!(listed.images.len(), 100_000);
        assert_eq!(listed.positions[99_999], Position::Line(100_002), "the last image's line");
        assert!(took < std::time::Duration::from_secs(10), "{took:?} for {} bytes", text.len());
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_at_its_line() {
        let depth = MAX_DEPTH + 8;
        let text = format!("<annotations>\n{}\n{}</annotations>\n", "<a>".repeat(depth - 1), "</a>".repeat(depth - 1));
        let err = parse_text(&text).unwrap_err();
        assert!(matches!(err, InterchangeError::Malformed { position: Position::Line(2), .. }), "{err}");
        assert!(err.to_string().contains("nested deeper than 32"), "{err}");
        let shallow = format!("<annotations>\n{}{}</annotations>\n", "<a>".repeat(8), "</a>".repeat(8));
        assert!(parse_text(&shallow).unwrap().is_empty(), "other elements at a sane depth are skipped");
    }

    #[test]
    fn non_finite_or_out_of_range_numbers_are_refused_by_attribute() {
        for (body, field) in [
            ("<box label=\"face\" xtl=\"NaN\" ytl=\"2\" xbr=\"30\" ybr=\"40\"/>", "xtl"),
            ("<box label=\"face\" xtl=\"1\" ytl=\"2\" xbr=\"inf\" ybr=\"40\"/>", "xbr"),
            ("<box label=\"face\" xtl=\"1\" ytl=\"2\" xbr=\"30\" ybr=\"1e300\"/>", "ybr"),
            (
                "<box label=\"face\" xtl=\"1\" ytl=\"2\" xbr=\"30\" ybr=\"40\"><attribute name=\"score\">-inf</attribute></box>",
                "score",
            ),
            ("<points label=\"nose\" occluded=\"0\" points=\"5,1e39\" group_id=\"4\"/>", "points"),
        ] {
            let err = parse_text(&one_image(body)).unwrap_err().to_string();
            assert!(
                err.starts_with("cvat.xml:5") && err.contains(&format!("{field}: expected a finite number")),
                "{err}"
            );
        }
    }

    #[test]
    fn image_names_are_kept_in_one_spelling() {
        let text = one_image("").replace("name=\"a.jpg\"", "name=\"./x//a.jpg\"");
        assert_eq!(parse_text(&text).unwrap()[0].path, "x/a.jpg");
        let text = one_image("").replace("name=\"a.jpg\"", "name=\"./\"");
        let err = parse_text(&text).unwrap_err().to_string();
        assert!(err.contains("cvat.xml:4") && err.contains("names no file"), "{err}");
    }

    #[test]
    fn a_video_track_is_refused_with_what_to_export_instead() {
        let text = "<annotations><version>1.1</version><track id=\"0\" label=\"face\"></track></annotations>";
        let err = parse_text(text).unwrap_err().to_string();
        assert!(err.contains("CVAT for images 1.1"), "{err}");
    }
}
