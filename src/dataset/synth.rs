//! A synthetic WIDER FACE dataset: generated pictures of simple faces (skin-toned ellipse, eyes,
//! nose, mouth) over clutter, with exact boxes and landmarks. It is what the training, evaluation
//! and GUI tests run on, so it must be learnable: faces share one recognisable pattern, and the
//! distractors (plain ellipses, blobs) teach the model that the pattern, not the colour, matters.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::face::{Attributes, Blur, Face, FaceLandmarks, LandmarkFlag};
use super::label_txt::{self, LabelStyle};
use super::wider_gt::{self, WiderGtStyle};
use super::{DatasetError, SplitKind};
use crate::geometry::{BBox, Landmarks, Point};

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub train_images: usize,
    pub val_images: usize,
    pub seed: u64,
    /// Image sizes are drawn between these (inclusive), as width × height.
    pub min_size: (u32, u32),
    pub max_size: (u32, u32),
    /// Write into a folder that already holds files (the annotation files replaced keep a
    /// `.bak`); without it such a folder is refused, so a dataset is never overwritten by mistake.
    pub overwrite: bool,
}

impl SynthConfig {
    /// `images` training images and a quarter as many (at least two) for validation.
    pub fn new(images: usize, seed: u64) -> SynthConfig {
        SynthConfig {
            train_images: images,
            val_images: (images / 4).max(2),
            seed,
            min_size: (256, 192),
            max_size: (384, 320),
            overwrite: false,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Serialize)]
pub struct SynthSummary {
    pub root: PathBuf,
    pub images: usize,
    pub faces: usize,
}

/// The WIDER event folders of the synthetic data; each favours another face size.
const EVENTS: [(&str, f32, f32, usize, usize); 3] =
    [("0--Portrait", 0.25, 0.5, 1, 2), ("1--Group", 0.1, 0.3, 2, 5), ("2--Crowd", 0.04, 0.12, 4, 10)];

/// Landmark positions as fractions of the face box: left eye, right eye, nose, mouth corners.
const TEMPLATE: [(f32, f32); 5] = [(0.32, 0.40), (0.68, 0.40), (0.50, 0.60), (0.36, 0.78), (0.64, 0.78)];

/// Writes the official tree (`WIDER_{train,val}/images`, `wider_face_split/…_bbx_gt.txt`) and
/// the RetinaFace labels (`retinaface_gt_v1.1/{train,val}/label.txt`) under `out`.
pub fn generate(out: &Path, config: &SynthConfig) -> Result<SynthSummary, DatasetError> {
    let occupied = std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !config.overwrite {
        return Err(DatasetError::NotEmpty(out.to_path_buf()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut summary = SynthSummary { root: out.to_path_buf(), images: 0, faces: 0 };
    for (kind, count) in [(SplitKind::Train, config.train_images), (SplitKind::Val, config.val_images)] {
        let split = kind.name();
        let images_dir = out.join(format!("WIDER_{split}")).join("images");
        let mut entries: Vec<(String, Vec<Face>)> = Vec::with_capacity(count);
        for i in 0..count {
            let event = EVENTS[i % EVENTS.len()].0;
            let (picture, faces) = random_scene(i, config, &mut rng).render(&mut rng);
            let name = format!("{event}/{}_{split}_{i}.jpg", event.replace("--", "_"));
            let path = images_dir.join(&name);
            write_jpeg(&path, &picture)?;
            summary.images += 1;
            summary.faces += faces.len();
            entries.push((name, faces));
        }
        let images = || entries.iter().map(|(p, f)| (p.as_str(), f.as_slice()));
        let gt = out.join("wider_face_split").join(format!("wider_face_{split}_bbx_gt.txt"));
        write_text(&gt, &wider_gt::write(images(), WiderGtStyle::default()))?;
        let labels = out.join("retinaface_gt_v1.1").join(split).join("label.txt");
        write_text(&labels, &label_txt::write(images(), LabelStyle::default()))?;
    }
    Ok(summary)
}

/// The training pictures [`generate`] writes, in memory and without the JPEG round trip: for
/// tests and benchmarks that train on a handful of images directly.
pub fn render_train_images(config: &SynthConfig) -> Vec<(RgbImage, Vec<Face>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    (0..config.train_images).map(|i| random_scene(i, config, &mut rng).render(&mut rng)).collect()
}

/// The `i`-th picture's size, face sizes and count (events take turns).
fn random_scene(i: usize, config: &SynthConfig, rng: &mut ChaCha8Rng) -> Scene {
    let (_, min_frac, max_frac, min_faces, max_faces) = EVENTS[i % EVENTS.len()];
    let width = rng.random_range(config.min_size.0..=config.max_size.0);
    let height = rng.random_range(config.min_size.1..=config.max_size.1);
    Scene { width, height, min_frac, max_frac, faces: rng.random_range(min_faces..=max_faces) }
}

fn write_text(path: &Path, text: &str) -> Result<(), DatasetError> {
    let write = || {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        crate::fsutil::write_atomic_with_backup(path, text.as_bytes())
    };
    write().map_err(|source| DatasetError::Write { path: path.to_path_buf(), source })
}

fn write_jpeg(path: &Path, picture: &RgbImage) -> Result<(), DatasetError> {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
            .encode_image(picture)
            .map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(path, &bytes)
    };
    write().map_err(|source| DatasetError::Write { path: path.to_path_buf(), source })
}

struct Scene {
    width: u32,
    height: u32,
    /// Face width range as a fraction of the shorter image side.
    min_frac: f32,
    max_frac: f32,
    faces: usize,
}

impl Scene {
    fn render(&self, rng: &mut ChaCha8Rng) -> (RgbImage, Vec<Face>) {
        let mut picture = background(self.width, self.height, rng);
        let short = self.width.min(self.height) as f32;
        let mut faces: Vec<Face> = Vec::new();
        let mut occupied: Vec<BBox> = Vec::new();
        for _ in 0..self.faces * 20 {
            if faces.len() == self.faces {
                break;
            }
            // Log-uniform widths: as many small faces as large ones, never under 10 px.
            let (lo, hi) = ((self.min_frac * short).max(10.0).ln(), (self.max_frac * short).max(10.5).ln());
            let w = rng.random_range(lo..hi).exp().round();
            let h = (w * rng.random_range(1.1..1.35f32)).round();
            if w + 2.0 >= self.width as f32 || h + 2.0 >= self.height as f32 {
                continue;
            }
            let x = rng.random_range(1.0..self.width as f32 - w - 1.0).round();
            let y = rng.random_range(1.0..self.height as f32 - h - 1.0).round();
            let Ok(bbox) = BBox::from_xywh(x, y, w, h) else { continue };
            if occupied.iter().any(|o| o.intersection_area(&bbox) > 0.0) {
                continue;
            }
            occupied.push(bbox);
            faces.push(draw_face(&mut picture, bbox, rng));
        }
        for _ in 0..rng.random_range(1..=3) {
            draw_distractor(&mut picture, &occupied, rng);
        }
        let blur = match rng.random_range(0..10) {
            0..=6 => Blur::Clear,
            7 | 8 => Blur::Normal,
            _ => Blur::Heavy,
        };
        let radius = match blur {
            Blur::Clear => 0,
            Blur::Normal => 1,
            Blur::Heavy => 2,
        };
        if radius > 0 {
            box_blur(&mut picture, radius);
        }
        for face in &mut faces {
            face.attributes = Some(Attributes { blur, ..Attributes::default() });
        }
        (picture, faces)
    }
}

fn random_color(rng: &mut ChaCha8Rng) -> Rgb<u8> {
    Rgb([rng.random(), rng.random(), rng.random()])
}

fn background(width: u32, height: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let (a, b) = (random_color(rng), random_color(rng));
    let mut picture = RgbImage::from_fn(width, height, |_, y| {
        let t = y as f32 / height as f32;
        Rgb(std::array::from_fn(|c| (a.0[c] as f32 * (1.0 - t) + b.0[c] as f32 * t) as u8))
    });
    for _ in 0..rng.random_range(4..12) {
        let color = random_color(rng);
        let (cx, cy) = (rng.random_range(0.0..width as f32), rng.random_range(0.0..height as f32));
        let (rx, ry) = (rng.random_range(4.0..width as f32 / 4.0), rng.random_range(4.0..height as f32 / 4.0));
        if rng.random_bool(0.5) {
            fill_rect(&mut picture, cx - rx, cy - ry, cx + rx, cy + ry, color);
        } else {
            fill_ellipse(&mut picture, cx, cy, rx, ry, color);
        }
    }
    picture
}

const SKIN: [[u8; 3]; 6] =
    [[255, 224, 196], [241, 194, 160], [224, 172, 125], [198, 134, 90], [141, 85, 54], [96, 60, 38]];

fn skin_tone(rng: &mut ChaCha8Rng) -> Rgb<u8> {
    let base = SKIN[rng.random_range(0..SKIN.len())];
    Rgb(base.map(|c| (c as i32 + rng.random_range(-12..=12)).clamp(0, 255) as u8))
}

/// Draws a face filling `bbox` and returns its exact annotation.
fn draw_face(picture: &mut RgbImage, bbox: BBox, rng: &mut ChaCha8Rng) -> Face {
    let (w, h) = (bbox.width(), bbox.height());
    let c = bbox.center();
    let skin = skin_tone(rng);
    fill_ellipse(picture, c.x, c.y, w / 2.0, h / 2.0, skin);
    let jitter = 0.03;
    let points: [Point; 5] = std::array::from_fn(|k| {
        let (fx, fy) = TEMPLATE[k];
        let fx = fx + rng.random_range(-jitter..jitter);
        let fy = fy + rng.random_range(-jitter..jitter);
        // Three decimals: exact in the files, and what the real annotations use.
        let round = |v: f32| (v * 1000.0).round() / 1000.0;
        Point { x: round(bbox.x1() + fx * w), y: round(bbox.y1() + fy * h) }
    });
    let dark = Rgb(skin.0.map(|v| (v as f32 * 0.25) as u8));
    let eye_r = (0.07 * w).max(1.0);
    for eye in &points[..2] {
        fill_ellipse(picture, eye.x, eye.y, eye_r, eye_r * 0.7, Rgb([250, 250, 250]));
        fill_ellipse(picture, eye.x, eye.y, eye_r * 0.55, eye_r * 0.55, dark);
    }
    let nose = Rgb(skin.0.map(|v| (v as f32 * 0.7) as u8));
    fill_ellipse(picture, points[2].x, points[2].y, 0.06 * w, 0.08 * h, nose);
    let mouth = Rgb([150, 40, 50]);
    let (m0, m1) = (points[3], points[4]);
    let mouth_c = Point { x: (m0.x + m1.x) / 2.0, y: (m0.y + m1.y) / 2.0 };
    fill_ellipse(picture, mouth_c.x, mouth_c.y, (m1.x - m0.x).abs() / 2.0, (0.04 * h).max(1.0), mouth);
    let flags = [LandmarkFlag::Visible; 5];
    let score = (rng.random_range(0.5..1.0f32) * 100.0).round() / 100.0;
    Face {
        landmarks: Some(FaceLandmarks { points: Landmarks { points }, flags }),
        score: Some(score),
        ..Face::new(bbox)
    }
}

/// Things that are not faces: featureless skin ellipses and faces with the features scrambled.
fn draw_distractor(picture: &mut RgbImage, occupied: &[BBox], rng: &mut ChaCha8Rng) {
    let (width, height) = (picture.width() as f32, picture.height() as f32);
    for _ in 0..20 {
        let w = rng.random_range(12.0..(width.min(height) / 3.0).max(13.0));
        let h = w * rng.random_range(0.8..1.4);
        let (x, y) = (rng.random_range(0.0..(width - w).max(1.0)), rng.random_range(0.0..(height - h).max(1.0)));
        let Ok(bbox) = BBox::from_xywh(x, y, w, h) else { continue };
        if occupied.iter().any(|o| o.intersection_area(&bbox) > 0.0) {
            continue;
        }
        let c = bbox.center();
        fill_ellipse(picture, c.x, c.y, w / 2.0, h / 2.0, skin_tone(rng));
        if rng.random_bool(0.5) {
            // One dark blob off-centre: not the two-eyes-nose-mouth layout.
            fill_ellipse(picture, x + w * 0.7, y + h * 0.75, w * 0.12, h * 0.1, Rgb([30, 30, 30]));
        }
        return;
    }
}

fn fill_rect(picture: &mut RgbImage, x1: f32, y1: f32, x2: f32, y2: f32, color: Rgb<u8>) {
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    let (x1, x2) = (x1.clamp(0.0, w) as u32, x2.clamp(0.0, w) as u32);
    let (y1, y2) = (y1.clamp(0.0, h) as u32, y2.clamp(0.0, h) as u32);
    for y in y1..y2 {
        for x in x1..x2 {
            picture.put_pixel(x, y, color);
        }
    }
}

/// Fills the pixels whose centres lie inside the ellipse, so a face ellipse covers its box exactly.
fn fill_ellipse(picture: &mut RgbImage, cx: f32, cy: f32, rx: f32, ry: f32, color: Rgb<u8>) {
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    let (x1, x2) = ((cx - rx).floor().clamp(0.0, w) as u32, (cx + rx).ceil().clamp(0.0, w) as u32);
    let (y1, y2) = ((cy - ry).floor().clamp(0.0, h) as u32, (cy + ry).ceil().clamp(0.0, h) as u32);
    for y in y1..y2 {
        let dy = (y as f32 + 0.5 - cy) / ry;
        for x in x1..x2 {
            let dx = (x as f32 + 0.5 - cx) / rx;
            if dx * dx + dy * dy <= 1.0 {
                picture.put_pixel(x, y, color);
            }
        }
    }
}

fn box_blur(picture: &mut RgbImage, radius: u32) {
    let (w, h) = picture.dimensions();
    let r = radius as i64;
    for horizontal in [true, false] {
        let source = picture.clone();
        for y in 0..h {
            for x in 0..w {
                let mut sum = [0u32; 3];
                let mut n = 0;
                for d in -r..=r {
                    let (sx, sy) = if horizontal { (x as i64 + d, y as i64) } else { (x as i64, y as i64 + d) };
                    if sx >= 0 && sy >= 0 && (sx as u32) < w && (sy as u32) < h {
                        let p = source.get_pixel(sx as u32, sy as u32);
                        for (total, &v) in sum.iter_mut().zip(&p.0) {
                            *total += v as u32;
                        }
                        n += 1;
                    }
                }
                picture.put_pixel(x, y, Rgb(sum.map(|s| (s / n) as u8)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;

    #[test]
    fn generated_tree_opens_with_landmarks_merged() {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(dir.path(), &SynthConfig::new(6, 7)).unwrap();
        assert_eq!(summary.images, 8);
        let (dataset, report) = Dataset::open(dir.path()).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let train = dataset.split(SplitKind::Train).unwrap();
        assert_eq!(train.images.len(), 6);
        let faces: usize = dataset.splits.iter().map(|s| s.images.iter().map(|i| i.faces.len()).sum::<usize>()).sum();
        assert_eq!(faces, summary.faces);
        assert!(report.merges.iter().all(|m| m.only_in_label.is_empty() && m.only_in_wider.is_empty()));
        assert!(train.images.iter().flat_map(|i| &i.faces).all(|f| f.landmarks.is_some()));
    }

    #[test]
    fn same_seed_gives_the_same_dataset() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate(a.path(), &SynthConfig::new(3, 11)).unwrap();
        generate(b.path(), &SynthConfig::new(3, 11)).unwrap();
        let gt = "wider_face_split/wider_face_train_bbx_gt.txt";
        assert_eq!(std::fs::read(a.path().join(gt)).unwrap(), std::fs::read(b.path().join(gt)).unwrap());
    }

    #[test]
    fn face_pixels_are_drawn_inside_the_annotated_box() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut picture = RgbImage::from_pixel(100, 100, Rgb([0, 0, 255]));
        let bbox = BBox::from_xywh(20.0, 30.0, 40.0, 50.0).unwrap();
        let face = draw_face(&mut picture, bbox, &mut rng);
        let blue = Rgb([0, 0, 255]);
        for (x, y, p) in picture.enumerate_pixels() {
            let inside = (20..60).contains(&x) && (30..80).contains(&y);
            assert!(inside || *p == blue, "pixel ({x},{y}) drawn outside the box");
        }
        // The box is tight: the ellipse touches all four sides.
        assert_ne!(*picture.get_pixel(40, 30), blue);
        assert_ne!(*picture.get_pixel(20, 55), blue);
        let lm = face.landmarks.unwrap().points.points;
        assert!(lm[0].x < lm[1].x && lm[3].x < lm[4].x, "left points are image-left");
        let eye = picture.get_pixel(lm[0].x as u32, lm[0].y as u32);
        assert!(eye.0.iter().all(|&v| v < 80), "the eye landmark sits on the dark pupil: {eye:?}");
    }
}
