//! Detections written out: JSON (the `detect` contract), CSV, the WIDER submission format that
//! `facestudio eval` reads, and annotated PNG.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde_json::{Value, json};

use super::draw::annotate;
use super::postprocess::Detection;

/// The output formats of `detect --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
    Wider,
    Png,
}

/// The faces found in one photo.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDetections {
    pub image: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Best first.
    pub detections: Vec<Detection>,
}

impl ImageDetections {
    /// `{"image": PATH, "width": W, "height": H, "detections": [{"box": [x1,y1,x2,y2], "score": S,
    /// "landmarks": [[x,y] × 5]}]}`: the machine-readable contract of `detect`.
    pub fn to_json(&self) -> Value {
        let detections: Vec<Value> = self
            .detections
            .iter()
            .map(|d| {
                let mut face = json!({ "box": d.bbox.corners(), "score": d.score });
                if let Some(lm) = &d.landmarks {
                    face["landmarks"] = json!(lm.points.map(|p| [p.x, p.y]));
                }
                face
            })
            .collect();
        json!({
            "image": self.image.to_string_lossy(),
            "width": self.width,
            "height": self.height,
            "detections": detections,
        })
    }

    /// One row per face: `image,x1,y1,x2,y2,score,l0x,l0y,…,l4x,l4y` (landmark columns empty
    /// for models without landmarks).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("image,x1,y1,x2,y2,score,l0x,l0y,l1x,l1y,l2x,l2y,l3x,l3y,l4x,l4y\n");
        let image = csv_field(&self.image.to_string_lossy());
        for d in &self.detections {
            let [x1, y1, x2, y2] = d.bbox.corners();
            let landmarks = match &d.landmarks {
                Some(lm) => lm.to_flat().map(|v| v.to_string()).join(","),
                None => ",".repeat(9),
            };
            out.push_str(&format!("{image},{x1},{y1},{x2},{y2},{},{landmarks}\n", d.score));
        }
        out
    }

    /// The WIDER submission file: image name, count, then `x y w h score` lines.
    pub fn to_wider(&self) -> String {
        let mut out = format!("{}\n{}\n", stem(&self.image), self.detections.len());
        for d in &self.detections {
            let [x, y, w, h] = d.bbox.to_xywh();
            out.push_str(&format!("{x} {y} {w} {h} {}\n", d.score));
        }
        out
    }

    /// Where this image's files go: `<out>/<event>/<stem>.<ext>`, the event being the image's
    /// folder name (as WIDER lays images out), so the WIDER files feed `facestudio eval --pred <out>`.
    pub fn output_path(&self, out: &Path, extension: &str) -> PathBuf {
        output_path(out, &self.image, extension)
    }

    /// Writes the requested formats (atomically) and returns the files written. `photo` is needed
    /// for PNG only.
    pub fn write(
        &self,
        out: &Path,
        formats: &[ExportFormat],
        photo: Option<&RgbImage>,
    ) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for format in formats {
            let (extension, bytes) = match format {
                ExportFormat::Json => ("json", serde_json::to_vec_pretty(&self.to_json())?),
                ExportFormat::Csv => ("csv", self.to_csv().into_bytes()),
                ExportFormat::Wider => ("txt", self.to_wider().into_bytes()),
                ExportFormat::Png => {
                    let Some(photo) = photo else { continue };
                    let mut png = Vec::new();
                    annotate(photo, &self.detections)
                        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                        .map_err(std::io::Error::other)?;
                    ("png", png)
                }
            };
            let path = self.output_path(out, extension);
            std::fs::create_dir_all(path.parent().unwrap_or(out))?;
            crate::fsutil::write_atomic(&path, &bytes)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Where the results of `image` go under `out`: `<out>/<the photo's folder name>/<stem>.<ext>`
/// (the WIDER submission layout, `<event>/<name>.txt`).
pub fn output_path(out: &Path, image: &Path, extension: &str) -> PathBuf {
    let event = image.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    out.join(event.unwrap_or_else(|| "images".into())).join(format!("{}.{extension}", stem(image)))
}

/// Photos whose results would land in the same files under `out` (`a/x/1.jpg` and `b/x/1.jpg`,
/// or `1.jpg` and `1.png`): each clash once, with the photos, so nothing is written over another
/// photo's results.
pub fn output_clashes(out: &Path, images: &[PathBuf]) -> Vec<(PathBuf, Vec<PathBuf>)> {
    let mut by_output: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = std::collections::BTreeMap::new();
    for image in images {
        by_output.entry(output_path(out, image, "*")).or_default().push(image.clone());
    }
    by_output.into_iter().filter(|(_, photos)| photos.len() > 1).collect()
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Predictions;
    use crate::geometry::{BBox, Landmarks, Point};

    fn sample() -> ImageDetections {
        let points = [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0), (9.0, 10.0)].map(|(x, y)| Point { x, y });
        ImageDetections {
            image: PathBuf::from("photos/0--Parade/a.jpg"),
            width: 100,
            height: 80,
            detections: vec![
                Detection {
                    bbox: BBox::new(10.0, 20.0, 30.0, 50.0).unwrap(),
                    score: 0.9,
                    landmarks: Some(Landmarks { points }),
                },
                Detection { bbox: BBox::new(0.0, 0.0, 5.0, 5.0).unwrap(), score: 0.3, landmarks: None },
            ],
        }
    }

    #[test]
    fn json_follows_the_detect_contract() {
        let json = sample().to_json();
        assert_eq!(json["image"], "photos/0--Parade/a.jpg");
        assert_eq!(json["width"], 100);
        assert_eq!(json["detections"][0]["box"], json!([10.0, 20.0, 30.0, 50.0]));
        assert_eq!(json["detections"][0]["landmarks"][4], json!([9.0, 10.0]));
        assert!(json["detections"][1].get("landmarks").is_none());
    }

    #[test]
    fn csv_has_one_row_per_face() {
        let csv = sample().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "photos/0--Parade/a.jpg,10,20,30,50,0.9,1,2,3,4,5,6,7,8,9,10");
        assert_eq!(lines[2].split(',').count(), 16);
    }

    #[test]
    fn wider_files_are_read_back_by_the_evaluation() {
        let dir = tempfile::tempdir().unwrap();
        let written = sample().write(dir.path(), &[ExportFormat::Wider, ExportFormat::Json], None).unwrap();
        assert_eq!(written[0], dir.path().join("0--Parade/a.txt"));
        let predictions = Predictions::read_dir(dir.path()).unwrap();
        let read = predictions.get("0--Parade", "a").unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!((read[0].x, read[0].y, read[0].w, read[0].h), (10.0, 20.0, 20.0, 30.0));
    }
}
