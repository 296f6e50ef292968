//! Training-time data augmentation (report §3.4): random square crop, colour distortion,
//! horizontal flip, resize to the training size.
//!
//! The pipeline is Pytorch_Retinaface's `preproc` (`data/data_augment.py`): `_crop`,
//! `_distort`, `_pad_to_square`, `_mirror`, then a resize to `img_dim × img_dim`. Every step
//! maps boxes and landmarks from the pixels of its input image to the pixels of its output
//! image, so a [`Sample`] is always self-consistent. Randomness comes only from the caller's
//! RNG, so a seeded RNG reproduces a sample exactly.
//!
//! Validation uses no augmentation; [`letterbox`] is the deterministic way to bring an image to
//! the square training size without cropping.

use std::ops::RangeInclusive;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::geometry::{BBox, Landmarks};

/// One annotated face: box and, where annotated, the five landmarks (WIDER FACE leaves them
/// out for many small faces), both in pixels of the image they belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentFace {
    pub bbox: BBox,
    pub landmarks: Option<Landmarks>,
}

/// An image with its faces; what goes into and comes out of the augmentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub image: RgbImage,
    pub faces: Vec<AugmentFace>,
}

/// Augmentation hyperparameters; the defaults are Pytorch_Retinaface's (`cfg_mnet`'s
/// `image_size` and the constants of `data_augment.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Crop side as a fraction of the image's short side, one drawn uniformly per attempt
    /// (the `PRE_SCALES` of later Pytorch_Retinaface versions). Empty means 1.0.
    pub crop_scales: Vec<f32>,
    /// Crops tried before falling back to the whole image (`_crop`'s 250).
    pub crop_attempts: u32,
    /// Probability of a horizontal flip (report §3.4: 0.5).
    pub flip_probability: f32,
    /// Whether to apply the brightness, contrast, saturation and hue distortions.
    pub photometric: bool,
    /// Faces whose box is narrower or lower than this many pixels at the training size are
    /// dropped (`_crop`'s `mask_b`, there with a threshold of 0).
    pub min_face_size: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            crop_scales: vec![0.3, 0.45, 0.6, 0.8, 1.0],
            crop_attempts: 250,
            flip_probability: 0.5,
            photometric: true,
            min_face_size: 0.0,
        }
    }
}

/// Largest brightness offset, in 8-bit levels (`_distort`'s `uniform(-32, 32)`).
const BRIGHTNESS_DELTA: f32 = 32.0;
/// Range of the contrast and saturation factors (`_distort`'s `uniform(0.5, 1.5)`).
const FACTOR_RANGE: RangeInclusive<f32> = 0.5..=1.5;
/// Largest hue rotation in degrees. Pytorch_Retinaface's `randint(-18, 18)` acts on OpenCV's
/// 8-bit hue (2° per unit); 18° is the delta of the same distortion on float images (mmdet's
/// `PhotoMetricDistortion`, SCRFD's RetinaFace recipe).
const HUE_DELTA_DEGREES: f32 = 18.0;

/// Augments one training sample: random square crop, photometric distortion, horizontal flip,
/// resize to `size × size` (the training size; 0 is treated as 1).
///
/// Never loses the sample: when no crop keeps a face (or the image has none), the whole image
/// padded to a square is used, as in Pytorch_Retinaface. Faces that end up degenerate or smaller
/// than `config.min_face_size` are dropped, so the result may have no faces.
pub fn augment(sample: &Sample, size: u32, config: &AugmentConfig, rng: &mut impl Rng) -> Sample {
    let size = size.max(1);
    let Sample { mut image, faces } = random_crop(sample, config, size, rng);
    // Drawn even when distortion is off, so that switching it off leaves the geometry of a
    // seeded sample unchanged and the two can be compared.
    let distortion = Distortion::sample(rng);
    if config.photometric {
        distortion.apply(&mut image);
    }
    // Padding after the distortion, as `preproc` calls `_distort` before `_pad_to_square`, keeps
    // the padding one flat colour.
    let side = image.width().max(image.height());
    let mut cropped = Sample { image: pad(image, side), faces };
    // `random::<f32>() < p` rather than `random_bool`, which panics on a probability outside
    // [0, 1] read from a config.
    if rng.random::<f32>() < config.flip_probability {
        cropped = flip_horizontal(cropped);
    }
    resize(&cropped.image, &cropped.faces, size, size)
}

/// Brings a sample to `size × size` without randomness: scales it so that the long side is
/// `size`, then pads right and bottom with the image's mean colour. Boxes are clipped to the
/// image; degenerate ones are dropped. `size` 0 is treated as 1.
pub fn letterbox(sample: &Sample, size: u32) -> Sample {
    let size = size.max(1);
    let (width, height) = sample.image.dimensions();
    let long = width.max(height);
    if long == 0 {
        return Sample { image: RgbImage::new(size, size), faces: Vec::new() };
    }
    let scale = f64::from(size) / f64::from(long);
    let scaled_side = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, size);
    let (new_width, new_height) = (scaled_side(width), scaled_side(height));
    let resized = resize(&sample.image, &sample.faces, new_width, new_height);
    let faces = resized
        .faces
        .into_iter()
        .filter_map(|face| sized_face(face.bbox.clip(new_width, new_height), face.landmarks, 1.0, 0.0))
        .collect();
    Sample { image: pad(resized.image, size), faces }
}

/// `_crop`: up to `config.crop_attempts` random square crops, the first that keeps a face
/// wins; otherwise the whole image (unpadded), boxes clipped to it. `size` is the training
/// size, needed to apply `config.min_face_size`.
///
/// Unlike `_crop`, a crop is accepted without a face lying wholly inside it: keeping faces by
/// their centre already keeps at least half of each.
fn random_crop(sample: &Sample, config: &AugmentConfig, size: u32, rng: &mut impl Rng) -> Sample {
    let (width, height) = sample.image.dimensions();
    let short = width.min(height);
    if short > 0 {
        for _ in 0..config.crop_attempts {
            let scale = config.crop_scales.choose(rng).copied().unwrap_or(1.0);
            // Truncation like `_crop`'s `int(scale * short_side)`; the clamp keeps a nonsense
            // scale (NaN, negative, above 1) from producing an empty or oversized crop.
            let side = ((scale * short as f32) as u32).clamp(1, short);
            let left = rng.random_range(0..=width - side);
            let top = rng.random_range(0..=height - side);
            let output_scale = size as f32 / side as f32;
            let faces = crop_faces(&sample.faces, left, top, side, output_scale, config.min_face_size);
            if !faces.is_empty() {
                let image = imageops::crop_imm(&sample.image, left, top, side, side).to_image();
                return Sample { image, faces };
            }
        }
    }
    let output_scale = size as f32 / width.max(height).max(1) as f32;
    let faces = sample
        .faces
        .iter()
        .filter_map(|face| {
            sized_face(face.bbox.clip(width, height), face.landmarks, output_scale, config.min_face_size)
        })
        .collect();
    Sample { image: sample.image.clone(), faces }
}

/// The faces that a square crop at `(left, top)` with side `side` keeps, in crop pixels.
///
/// As in `_crop`, a face is kept when its box centre lies strictly inside the crop; its box is
/// clipped to the crop while its landmarks are only shifted (a landmark outside the crop is
/// still a valid regression target). Boxes that are degenerate after clipping, or smaller than
/// `min_size` once scaled by `output_scale` to the training size, are dropped.
fn crop_faces(
    faces: &[AugmentFace],
    left: u32,
    top: u32,
    side: u32,
    output_scale: f32,
    min_size: f32,
) -> Vec<AugmentFace> {
    let (x1, y1) = (left as f32, top as f32);
    let (x2, y2) = ((left + side) as f32, (top + side) as f32);
    faces
        .iter()
        .filter(|face| {
            let c = face.bbox.center();
            x1 < c.x && c.x < x2 && y1 < c.y && c.y < y2
        })
        .filter_map(|face| {
            let bbox = face.bbox.translate(-x1, -y1).ok()?.clip(side, side);
            let landmarks = face.landmarks.map(|l| l.translate(-x1, -y1));
            sized_face(bbox, landmarks, output_scale, min_size)
        })
        .collect()
}

/// The face, unless its box is degenerate (zero width or height: a zero-area target gives
/// NaN or infinite losses) or, multiplied by `output_scale`, narrower or lower than `min_size`.
fn sized_face(bbox: BBox, landmarks: Option<Landmarks>, output_scale: f32, min_size: f32) -> Option<AugmentFace> {
    let too_small = bbox.width() * output_scale < min_size || bbox.height() * output_scale < min_size;
    (!bbox.is_degenerate() && !too_small).then_some(AugmentFace { bbox, landmarks })
}

/// `_pad_to_square` generalised to a given side: the image in the top-left corner of a
/// `side × side` canvas (`side` at least the image's sides) filled with the image's mean
/// colour, so that the padding is neutral after mean subtraction. Boxes are unchanged.
fn pad(image: RgbImage, side: u32) -> RgbImage {
    if image.dimensions() == (side, side) {
        return image;
    }
    let mut canvas = RgbImage::from_pixel(side, side, mean_colour(&image));
    imageops::replace(&mut canvas, &image, 0, 0);
    canvas
}

/// Mean colour of the image, black for an empty image.
fn mean_colour(image: &RgbImage) -> Rgb<u8> {
    let count = u64::from(image.width()) * u64::from(image.height());
    if count == 0 {
        return Rgb([0, 0, 0]);
    }
    let mut sums = [0u64; 3];
    for pixel in image.pixels() {
        for (sum, &value) in sums.iter_mut().zip(&pixel.0) {
            *sum += u64::from(value);
        }
    }
    // A mean of bytes fits a byte.
    Rgb(sums.map(|sum| ((sum + count / 2) / count) as u8))
}

/// `_mirror`: the image mirrored left to right, boxes and landmarks with it. Landmarks go
/// through [`Landmarks::flip_horizontal`], which also swaps the eyes and the mouth corners so
/// that index 0 is still the image-left eye.
fn flip_horizontal(sample: Sample) -> Sample {
    let Sample { mut image, faces } = sample;
    let width = image.width();
    imageops::flip_horizontal_in_place(&mut image);
    let faces = faces
        .into_iter()
        .map(|face| AugmentFace {
            bbox: face.bbox.flip_horizontal(width),
            landmarks: face.landmarks.map(|l| l.flip_horizontal(width)),
        })
        .collect();
    Sample { image, faces }
}

/// The image resized to `width × height` (bilinear), boxes and landmarks scaled with it. An
/// empty image becomes a black one without faces (none of its boxes can cover a pixel).
fn resize(image: &RgbImage, faces: &[AugmentFace], width: u32, height: u32) -> Sample {
    let (old_width, old_height) = image.dimensions();
    if old_width == 0 || old_height == 0 {
        return Sample { image: RgbImage::new(width, height), faces: Vec::new() };
    }
    let image = if (old_width, old_height) == (width, height) {
        image.clone()
    } else {
        imageops::resize(image, width, height, FilterType::Triangle)
    };
    let (sx, sy) = (width as f32 / old_width as f32, height as f32 / old_height as f32);
    let faces = faces
        .iter()
        .filter_map(|face| {
            // The factors are finite and positive, so this fails only on an overflowing box,
            // which is better dropped than kept.
            let bbox = face.bbox.scale(sx, sy).ok()?;
            Some(AugmentFace { bbox, landmarks: face.landmarks.map(|l| l.scale(sx, sy)) })
        })
        .collect();
    Sample { image, faces }
}

/// The random choices of one `_distort` call: each distortion is applied with probability
/// 0.5, and contrast comes either before the HSV part or after it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Distortion {
    contrast_first: bool,
    /// Added to every channel, in 8-bit levels.
    brightness: Option<f32>,
    /// Every channel is multiplied by it.
    contrast: Option<f32>,
    /// HSV saturation is multiplied by it.
    saturation: Option<f32>,
    /// Added to the HSV hue, in degrees.
    hue: Option<f32>,
}

impl Distortion {
    /// Draws the choices in `_distort`'s order, so that its two branches are copied exactly.
    fn sample(rng: &mut impl Rng) -> Self {
        let contrast_first = rng.random::<bool>();
        let brightness = maybe(rng, -BRIGHTNESS_DELTA..=BRIGHTNESS_DELTA);
        let mut contrast = if contrast_first { maybe(rng, FACTOR_RANGE) } else { None };
        let saturation = maybe(rng, FACTOR_RANGE);
        let hue = maybe(rng, -HUE_DELTA_DEGREES..=HUE_DELTA_DEGREES);
        if !contrast_first {
            contrast = maybe(rng, FACTOR_RANGE);
        }
        Self { contrast_first, brightness, contrast, saturation, hue }
    }

    /// Distorts every pixel in place; pixels never move.
    fn apply(&self, image: &mut RgbImage) {
        if self.brightness.is_none() && self.contrast.is_none() && self.saturation.is_none() && self.hue.is_none() {
            return;
        }
        for pixel in image.pixels_mut() {
            pixel.0 = self.apply_to_pixel(pixel.0);
        }
    }

    /// One pixel through the chosen steps, in f32, clamping to 0..=255 after brightness and
    /// contrast as `_distort`'s `_convert` does, and rounding once at the end.
    fn apply_to_pixel(&self, rgb: [u8; 3]) -> [u8; 3] {
        let mut c = rgb.map(f32::from);
        if let Some(beta) = self.brightness {
            c = c.map(|v| (v + beta).clamp(0.0, 255.0));
        }
        let contrast = |c: [f32; 3]| match self.contrast {
            Some(alpha) => c.map(|v| (v * alpha).clamp(0.0, 255.0)),
            None => c,
        };
        if self.contrast_first {
            c = contrast(c);
        }
        if self.saturation.is_some() || self.hue.is_some() {
            let [mut h, mut s, v] = rgb_to_hsv(c);
            if let Some(alpha) = self.saturation {
                s = (s * alpha).clamp(0.0, 1.0);
            }
            if let Some(delta) = self.hue {
                h = (h + delta).rem_euclid(360.0);
            }
            c = hsv_to_rgb([h, s, v]);
        }
        if !self.contrast_first {
            c = contrast(c);
        }
        c.map(|v| v.round().clamp(0.0, 255.0) as u8)
    }
}

/// With probability 0.5 a value drawn uniformly from `range` (`_distort`'s
/// `if random.randrange(2): … random.uniform(…)`).
fn maybe(rng: &mut impl Rng, range: RangeInclusive<f32>) -> Option<f32> {
    if rng.random::<bool>() { Some(rng.random_range(range)) } else { None }
}

/// RGB (0..=255) to HSV: hue in degrees [0, 360), saturation in [0, 1], value in 0..=255.
fn rgb_to_hsv([r, g, b]: [f32; 3]) -> [f32; 3] {
    let max = r.max(g).max(b);
    let delta = max - r.min(g).min(b);
    let saturation = if max > 0.0 { delta / max } else { 0.0 };
    let hue = if delta == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / delta)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    [hue.rem_euclid(360.0), saturation, max]
}

/// Inverse of [`rgb_to_hsv`].
fn hsv_to_rgb([hue, saturation, value]: [f32; 3]) -> [f32; 3] {
    let chroma = value * saturation;
    let sector = hue / 60.0;
    let x = chroma * (1.0 - (sector.rem_euclid(2.0) - 1.0).abs());
    // `rem_euclid` can round up to exactly 360, sector 6, which is the same colour as sector 0's
    // start; the last arm covers it.
    let [r, g, b] = match sector as u32 {
        0 => [chroma, x, 0.0],
        1 => [x, chroma, 0.0],
        2 => [0.0, chroma, x],
        3 => [0.0, x, chroma],
        4 => [x, 0.0, chroma],
        _ => [chroma, 0.0, x],
    };
    let m = value - chroma;
    [r + m, g + m, b + m]
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::geometry::Point;

    const BACKGROUND: [u8; 3] = [0, 0, 0];
    /// Side of every synthetic face.
    const FACE_SIDE: u32 = 36;
    /// Top-left corners of the synthetic faces: at least 14 px of background between any two,
    /// and all inside a 120×120 image.
    const FACE_ORIGINS: [(u32, u32); 3] = [(8, 8), (66, 14), (40, 74)];
    /// Landmark dot centres relative to the face's corner: eyes, nose, mouth corners, none on
    /// the face's centre row or column (where box edges are measured).
    const DOT_OFFSETS: [(u32, u32); 5] = [(9, 9), (26, 9), (13, 22), (10, 28), (25, 28)];

    /// A synthetic image of uniquely coloured square faces, each with five 3×3 landmark dots
    /// of unique colours, on black.
    ///
    /// Every face and dot colour has channel sum >= 450 and differs from every other by at
    /// least 75 in some channel, so that interpolation between neighbours in a resize never
    /// looks like background and a dot's centre is never mistaken for another colour.
    struct Scene {
        sample: Sample,
        face_colours: Vec<[u8; 3]>,
        dot_colours: Vec<[[u8; 3]; 5]>,
    }

    fn bright_palette() -> Vec<[u8; 3]> {
        let levels = [250u8, 175, 100];
        let mut palette = Vec::new();
        for r in levels {
            for g in levels {
                for b in levels {
                    if u32::from(r) + u32::from(g) + u32::from(b) >= 450 {
                        palette.push([r, g, b]);
                    }
                }
            }
        }
        palette
    }

    fn scene(width: u32, height: u32) -> Scene {
        let mut palette = bright_palette().into_iter();
        let mut next = || palette.next().expect("the palette has 23 colours, the scene needs 18");
        let mut image = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
        let mut faces = Vec::new();
        let mut face_colours = Vec::new();
        let mut dot_colours = Vec::new();
        for (x, y) in FACE_ORIGINS {
            let colour = next();
            for py in y..y + FACE_SIDE {
                for px in x..x + FACE_SIDE {
                    image.put_pixel(px, py, Rgb(colour));
                }
            }
            let dots: [[u8; 3]; 5] = std::array::from_fn(|_| next());
            for ((dx, dy), dot) in DOT_OFFSETS.iter().zip(dots) {
                for py in y + dy - 1..=y + dy + 1 {
                    for px in x + dx - 1..=x + dx + 1 {
                        image.put_pixel(px, py, Rgb(dot));
                    }
                }
            }
            let side = FACE_SIDE as f32;
            faces.push(AugmentFace {
                bbox: BBox::from_xywh(x as f32, y as f32, side, side).expect("valid"),
                // The centre of the dot's middle pixel, in continuous coordinates.
                landmarks: Some(Landmarks {
                    points: DOT_OFFSETS.map(|(dx, dy)| Point::new((x + dx) as f32 + 0.5, (y + dy) as f32 + 0.5)),
                }),
            });
            face_colours.push(colour);
            dot_colours.push(dots);
        }
        Scene { sample: Sample { image, faces }, face_colours, dot_colours }
    }

    fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
        a.iter().zip(&b).map(|(&x, &y)| u32::from(x.abs_diff(y)).pow(2)).sum()
    }

    fn channel_sum(c: [u8; 3]) -> u32 {
        c.iter().map(|&v| u32::from(v)).sum()
    }

    impl Scene {
        /// `(face, None)` for a face colour, `(face, Some(landmark))` for a dot colour, `None`
        /// for background: whichever palette colour is nearest.
        fn classify(&self, pixel: [u8; 3]) -> Option<(usize, Option<usize>)> {
            let mut best = (distance(pixel, BACKGROUND), None);
            for (face, &colour) in self.face_colours.iter().enumerate() {
                best = best.min((distance(pixel, colour), Some((face, None))));
                for (landmark, &dot) in self.dot_colours[face].iter().enumerate() {
                    best = best.min((distance(pixel, dot), Some((face, Some(landmark)))));
                }
            }
            best.1
        }

        /// The scene face with most pixels (its colour or its dots) inside `bbox`, and the
        /// fraction of the box's pixels it has.
        fn dominant_face(&self, image: &RgbImage, bbox: BBox) -> (usize, f32) {
            let mut counts = vec![0u32; self.face_colours.len()];
            let mut total = 0u32;
            for y in bbox.y1() as u32..bbox.y2().ceil() as u32 {
                for x in bbox.x1() as u32..bbox.x2().ceil() as u32 {
                    total += 1;
                    if let Some((k, _)) = self.classify(image.get_pixel(x, y).0) {
                        counts[k] += 1;
                    }
                }
            }
            let (k, &count) = counts.iter().enumerate().max_by_key(|&(_, c)| c).expect("the scene has faces");
            (k, count as f32 / total.max(1) as f32)
        }

        /// Asserts that each face of `out` covers the coloured square of its own scene face
        /// (mostly that face's pixels inside the box, its colours at the box centre, and along
        /// the centre row and column the face's pixels span the box within ±1 px) and that each
        /// landmark inside the image sits on its own dot. `flipped` says whether the sample is
        /// mirrored (landmark 0 then sits on what was the right-eye dot); `None` accepts either,
        /// but the same for every landmark.
        fn assert_faces_on_colours(&self, out: &Sample, flipped: Option<bool>, what: &str) {
            let (width, height) = out.image.dimensions();
            let pixel = |x: f32, y: f32| out.image.get_pixel(x as u32, y as u32).0;
            let inside = |p: Point| p.x >= 0.0 && p.y >= 0.0 && p.x < width as f32 && p.y < height as f32;
            let mut seen = Vec::new();
            let mut orientations = Vec::new();
            for face in &out.faces {
                let b = face.bbox;
                let c = b.center();
                assert!(!b.is_degenerate(), "{what}: degenerate box {b:?}");
                assert!(b.x1() >= 0.0 && b.y1() >= 0.0 && b.x2() <= width as f32 && b.y2() <= height as f32);
                // A crop keeps at least half of a face (its centre is inside), at least 18 px a
                // side, so a one-pixel blended border leaves over 3/4 of the box on the face.
                let (k, share) = self.dominant_face(&out.image, b);
                assert!(share > 0.75, "{what}: box {b:?} is only {share} on face {k}");
                assert!(!seen.contains(&k), "{what}: face {k} appears twice");
                seen.push(k);
                // Against this face's colours only: the centre may be on a dot's blended rim.
                let centre = pixel(c.x, c.y);
                let on_own_colours = self.dot_colours[k]
                    .iter()
                    .chain([&self.face_colours[k]])
                    .any(|&colour| distance(centre, colour) < distance(centre, BACKGROUND));
                assert!(on_own_colours, "{what}: box {b:?} centre {centre:?} is not on face {k}");

                let threshold = channel_sum(self.face_colours[k]) / 2;
                let on_face = |x: u32, y: u32| channel_sum(out.image.get_pixel(x, y).0) >= threshold;
                let (cx, cy) = (c.x as u32, c.y as u32);
                let left = (0..cx).rev().find(|&x| !on_face(x, cy)).map_or(0, |x| x + 1);
                let right = (cx..width).find(|&x| !on_face(x, cy)).unwrap_or(width);
                let top = (0..cy).rev().find(|&y| !on_face(cx, y)).map_or(0, |y| y + 1);
                let bottom = (cy..height).find(|&y| !on_face(cx, y)).unwrap_or(height);
                let edges = [left, top, right, bottom].map(|e| e as f32);
                for (got, want) in edges.iter().zip(b.corners()) {
                    assert!((got - want).abs() <= 1.0, "{what}: face {k} spans {edges:?}, box is {b:?}");
                }

                let Some(landmarks) = face.landmarks else { continue };
                let points = landmarks.points;
                assert!(points[Landmarks::LEFT_EYE].x < points[Landmarks::RIGHT_EYE].x, "{what}: {points:?}");
                assert!(points[Landmarks::LEFT_MOUTH].x < points[Landmarks::RIGHT_MOUTH].x, "{what}: {points:?}");
                for (i, &p) in points.iter().enumerate() {
                    if !inside(p) {
                        continue;
                    }
                    let Some((face_of_dot, Some(dot))) = self.classify(pixel(p.x, p.y)) else {
                        panic!("{what}: face {k} landmark {i} at {p:?} is not on a dot");
                    };
                    assert_eq!(face_of_dot, k, "{what}: landmark {i} of face {k} is on another face's dot");
                    let mirrored = [1, 0, 2, 4, 3][i];
                    assert!(dot == i || dot == mirrored, "{what}: face {k} landmark {i} is on dot {dot}");
                    if mirrored != i {
                        orientations.push(dot != i);
                    }
                }
            }
            if let Some(&first) = orientations.first() {
                assert!(orientations.iter().all(|&o| o == first), "{what}: some landmarks flipped, some not");
                if let Some(flipped) = flipped {
                    assert_eq!(first, flipped, "{what}: landmark order");
                }
            }
        }
    }

    /// Every distortion off; tests switch on the ones they need.
    const NO_DISTORTION: Distortion =
        Distortion { contrast_first: true, brightness: None, contrast: None, saturation: None, hue: None };

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// No randomness left but the crop position: a 1.0 crop of a square image is the image.
    fn identity_config() -> AugmentConfig {
        AugmentConfig { crop_scales: vec![1.0], flip_probability: 0.0, photometric: false, ..AugmentConfig::default() }
    }

    fn face(x1: f32, y1: f32, x2: f32, y2: f32, landmarks: Option<[f32; 10]>) -> AugmentFace {
        AugmentFace { bbox: BBox::new(x1, y1, x2, y2).expect("valid"), landmarks: landmarks.map(Landmarks::from_flat) }
    }

    #[test]
    fn config_defaults_follow_pytorch_retinaface() {
        let c = AugmentConfig::default();
        assert_eq!(c.crop_scales, [0.3, 0.45, 0.6, 0.8, 1.0]);
        assert_eq!(c.crop_attempts, 250);
        assert_eq!(c.flip_probability, 0.5);
        assert!(c.photometric);
        assert_eq!(c.min_face_size, 0.0);
    }

    #[test]
    fn config_fills_missing_fields_with_defaults_and_rejects_unknown_ones() {
        let c: AugmentConfig = serde_json::from_str(r#"{"crop_attempts": 20}"#).expect("deserialize");
        assert_eq!(c, AugmentConfig { crop_attempts: 20, ..AugmentConfig::default() });
        assert!(serde_json::from_str::<AugmentConfig>(r#"{"flip_prob": 0.5}"#).is_err());
    }

    #[test]
    fn crop_keeps_boxes_and_landmarks_on_their_faces() {
        let scene = scene(160, 120);
        let config = AugmentConfig::default();
        let mut cropped = 0;
        for seed in 0..200 {
            let out = random_crop(&scene.sample, &config, 640, &mut rng(seed));
            cropped += usize::from(out.image.width() < 160);
            scene.assert_faces_on_colours(&out, Some(false), &format!("seed {seed}"));
        }
        assert!(cropped > 150, "only {cropped} of 200 seeds cropped");
    }

    #[test]
    fn crop_keeps_only_faces_whose_centre_is_strictly_inside() {
        // Crop [10, 40) × [10, 40); centres at x = 10 (on the edge), 11, 39 and 40.
        let faces = [
            face(5.0, 20.0, 15.0, 30.0, None),
            face(6.0, 20.0, 16.0, 30.0, None),
            face(34.0, 20.0, 44.0, 30.0, None),
            face(35.0, 20.0, 45.0, 30.0, None),
        ];
        let kept = crop_faces(&faces, 10, 10, 30, 1.0, 0.0);
        let x1s: Vec<f32> = kept.iter().map(|f| f.bbox.x1()).collect();
        assert_eq!(x1s, [0.0, 24.0]);
    }

    #[test]
    fn crop_clips_boxes_and_shifts_landmarks_without_clipping_them() {
        let lm = [12.0, 30.0, 20.0, 30.0, 16.0, 40.0, 5.0, 55.0, 24.0, 55.0];
        let kept = crop_faces(&[face(5.0, 25.0, 25.0, 60.0, Some(lm))], 10, 20, 30, 1.0, 0.0);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].bbox.corners(), [0.0, 5.0, 15.0, 30.0]);
        let shifted = kept[0].landmarks.map(|l| l.to_flat());
        assert_eq!(shifted, Some([2.0, 10.0, 10.0, 10.0, 6.0, 20.0, -5.0, 35.0, 14.0, 35.0]));
    }

    #[test]
    fn crop_drops_degenerate_boxes() {
        let faces = [face(20.0, 20.0, 20.0, 30.0, None), face(20.0, 25.0, 30.0, 25.0, None)];
        assert!(crop_faces(&faces, 10, 10, 30, 1.0, 0.0).is_empty());
    }

    #[test]
    fn fallback_drops_boxes_degenerate_after_clipping_to_the_image() {
        let mut sample = scene(160, 120).sample;
        sample.faces.push(face(170.0, 10.0, 190.0, 30.0, None));
        sample.faces.push(face(10.0, 10.0, 10.0, 30.0, None));
        let config = AugmentConfig { crop_attempts: 0, ..AugmentConfig::default() };
        let out = random_crop(&sample, &config, 640, &mut rng(0));
        assert_eq!(out.faces, sample.faces[..3]);
    }

    #[test]
    fn min_face_size_drops_faces_smaller_after_resize() {
        // A 4×6 box becomes 8×12 at twice the scale.
        let faces = [face(12.0, 12.0, 16.0, 18.0, None)];
        assert_eq!(crop_faces(&faces, 10, 10, 30, 2.0, 8.0).len(), 1);
        assert!(crop_faces(&faces, 10, 10, 30, 2.0, 8.5).is_empty());
    }

    #[test]
    fn crop_without_surviving_face_is_retried() {
        // One 20×20 face centred at (30, 30) of a 200×200 image: a 60-px crop keeps it in about
        // one attempt in 20.
        let sample = Sample { image: RgbImage::new(200, 200), faces: vec![face(20.0, 20.0, 40.0, 40.0, None)] };
        let cropped_seeds = |attempts| {
            let config = AugmentConfig { crop_scales: vec![0.3], crop_attempts: attempts, ..AugmentConfig::default() };
            (0..50).filter(|&seed| random_crop(&sample, &config, 640, &mut rng(seed)).image.width() == 60).count()
        };
        assert!(cropped_seeds(1) <= 10, "{}", cropped_seeds(1));
        assert_eq!(cropped_seeds(250), 50);
    }

    #[test]
    fn fallback_pads_whole_image_bottom_right_with_mean_colour() {
        // 4×2: top row (0, 0, 0) and bottom row (10, 20, 30) … mean (5, 10, 15).
        let mut image = RgbImage::new(4, 2);
        for x in 0..4 {
            image.put_pixel(x, 1, Rgb([10, 20, 30]));
        }
        let faces = vec![face(1.0, 0.0, 3.0, 2.0, None)];
        let sample = Sample { image: image.clone(), faces: faces.clone() };
        let config = AugmentConfig { crop_attempts: 0, ..identity_config() };
        let out = augment(&sample, 4, &config, &mut rng(0));
        assert_eq!(out.image.dimensions(), (4, 4));
        assert_eq!(out.faces, faces);
        for (x, y, p) in out.image.enumerate_pixels() {
            let want = if y < 2 { *image.get_pixel(x, y) } else { Rgb([5, 10, 15]) };
            assert_eq!(*p, want, "pixel ({x}, {y})");
        }
    }

    #[test]
    fn image_without_faces_still_produces_a_sample() {
        let sample = Sample { image: scene(160, 120).sample.image, faces: Vec::new() };
        let out = augment(&sample, 64, &AugmentConfig::default(), &mut rng(3));
        assert_eq!(out.image.dimensions(), (64, 64));
        assert!(out.faces.is_empty());
    }

    #[test]
    fn tiny_and_empty_images_still_produce_a_sample() {
        let config = AugmentConfig::default();
        let one_pixel = Sample { image: RgbImage::new(1, 1), faces: vec![face(0.0, 0.0, 1.0, 1.0, None)] };
        let out = augment(&one_pixel, 8, &config, &mut rng(0));
        assert_eq!(out.image.dimensions(), (8, 8));
        assert_eq!(out.faces.len(), 1);
        assert_eq!(out.faces[0].bbox.corners(), [0.0, 0.0, 8.0, 8.0]);
        for (w, h) in [(0, 0), (0, 5), (7, 0), (1, 300)] {
            let sample = Sample { image: RgbImage::new(w, h), faces: vec![face(0.0, 0.0, 1.0, 1.0, None)] };
            for out in [augment(&sample, 8, &config, &mut rng(1)), letterbox(&sample, 8)] {
                assert_eq!(out.image.dimensions(), (8, 8), "{w}×{h}");
            }
        }
    }

    #[test]
    fn flip_mirrors_boxes_and_keeps_landmark_zero_on_the_image_left_eye() {
        let scene = scene(160, 120);
        let out = flip_horizontal(scene.sample.clone());
        scene.assert_faces_on_colours(&out, Some(true), "flip");
        // Explicitly: the new left eye is the old right eye's dot, now on the image left.
        let eye = out.faces[0].landmarks.expect("annotated").points[Landmarks::LEFT_EYE];
        assert_eq!(out.image.get_pixel(eye.x as u32, eye.y as u32).0, scene.dot_colours[0][Landmarks::RIGHT_EYE]);
        let (x, y) = FACE_ORIGINS[0];
        let right_eye_x = x + DOT_OFFSETS[Landmarks::RIGHT_EYE].0;
        let y = y + DOT_OFFSETS[Landmarks::RIGHT_EYE].1;
        assert_eq!(eye, Point::new((160 - right_eye_x) as f32 - 0.5, y as f32 + 0.5));
    }

    #[test]
    fn resize_scales_boxes_and_landmarks_with_the_image() {
        let scene = scene(160, 120);
        for (w, h) in [(200, 150), (300, 300), (161, 377)] {
            let out = resize(&scene.sample.image, &scene.sample.faces, w, h);
            assert_eq!(out.image.dimensions(), (w, h));
            assert_eq!(out.faces.len(), 3);
            scene.assert_faces_on_colours(&out, Some(false), &format!("{w}×{h}"));
        }
    }

    #[test]
    fn photometric_off_leaves_pixels_unchanged() {
        let scene = scene(120, 120);
        for seed in 0..20 {
            assert_eq!(augment(&scene.sample, 120, &identity_config(), &mut rng(seed)), scene.sample);
        }
    }

    #[test]
    fn photometric_distortion_never_moves_pixels() {
        // With no resize, the distorted image must be a per-pixel function of the undistorted
        // one drawn with the same seed, and the faces must be identical.
        let scene = scene(160, 120);
        let config = AugmentConfig { flip_probability: 0.5, ..identity_config() };
        let mut changed = 0;
        for seed in 0..50 {
            let plain = augment(&scene.sample, 120, &config, &mut rng(seed));
            let distorted =
                augment(&scene.sample, 120, &AugmentConfig { photometric: true, ..config.clone() }, &mut rng(seed));
            assert_eq!(distorted.faces, plain.faces, "seed {seed}");
            let mut colour_map = HashMap::new();
            for (p, q) in plain.image.pixels().zip(distorted.image.pixels()) {
                let mapped = *colour_map.entry(p.0).or_insert(q.0);
                assert_eq!(mapped, q.0, "seed {seed}: colour {:?} maps to two colours", p.0);
            }
            changed += usize::from(distorted.image != plain.image);
        }
        assert!(changed > 40, "only {changed} of 50 seeds distorted");
    }

    #[test]
    fn photometric_distortion_clamps_instead_of_wrapping() {
        let brighter = Distortion { brightness: Some(32.0), ..NO_DISTORTION };
        assert_eq!(brighter.apply_to_pixel([250, 100, 0]), [255, 132, 32]);
        let darker = Distortion { brightness: Some(-32.0), ..NO_DISTORTION };
        assert_eq!(darker.apply_to_pixel([10, 100, 255]), [0, 68, 223]);
        let contrast = Distortion { contrast: Some(1.5), ..NO_DISTORTION };
        assert_eq!(contrast.apply_to_pixel([200, 100, 0]), [255, 150, 0]);
        let saturated = Distortion { saturation: Some(1.5), ..NO_DISTORTION };
        assert_eq!(saturated.apply_to_pixel([255, 64, 0]), [255, 64, 0]);
        let everything = Distortion {
            brightness: Some(32.0),
            contrast: Some(1.5),
            saturation: Some(1.5),
            hue: Some(18.0),
            ..NO_DISTORTION
        };
        for contrast_first in [true, false] {
            let d = Distortion { contrast_first, ..everything };
            assert_eq!(d.apply_to_pixel([255, 255, 255]), [255, 255, 255]);
        }
    }

    #[test]
    fn hue_shift_is_in_degrees() {
        let d = Distortion { hue: Some(12.0), ..NO_DISTORTION };
        // Pure red moved 12° towards yellow: green = 255 × 12 / 60; the other way adds blue.
        assert_eq!(d.apply_to_pixel([255, 0, 0]), [255, 51, 0]);
        let back = Distortion { hue: Some(-12.0), ..d };
        assert_eq!(back.apply_to_pixel([255, 0, 0]), [255, 0, 51]);
    }

    #[test]
    fn hsv_round_trip_is_identity() {
        for r in (0..=255).step_by(15) {
            for g in (0..=255).step_by(15) {
                for b in (0..=255).step_by(15) {
                    let rgb = [r, g, b].map(|v: u16| f32::from(v));
                    let back = hsv_to_rgb(rgb_to_hsv(rgb));
                    for (x, y) in rgb.iter().zip(back) {
                        assert!((x - y).abs() < 1e-3, "{rgb:?} -> {back:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn contrast_comes_before_or_after_hsv_like_pytorch_retinaface() {
        let orders: Vec<bool> = (0..50).map(|seed| Distortion::sample(&mut rng(seed)).contrast_first).collect();
        assert!(orders.contains(&true) && orders.contains(&false));
        // The order matters: clamping by contrast before desaturating differs from after.
        let d = Distortion { contrast_first: true, contrast: Some(1.5), saturation: Some(0.5), ..NO_DISTORTION };
        let later = Distortion { contrast_first: false, ..d };
        assert_ne!(d.apply_to_pixel([200, 100, 50]), later.apply_to_pixel([200, 100, 50]));
    }

    #[test]
    fn full_pipeline_keeps_boxes_and_landmarks_on_their_faces_for_many_seeds() {
        // Size 160 is at least every crop side, so the resize only enlarges and dot centres
        // keep their exact colour.
        let scene = scene(160, 120);
        let config = AugmentConfig { photometric: false, ..AugmentConfig::default() };
        let mut faces = 0;
        for seed in 0..300 {
            let out = augment(&scene.sample, 160, &config, &mut rng(seed));
            assert_eq!(out.image.dimensions(), (160, 160));
            faces += out.faces.len();
            scene.assert_faces_on_colours(&out, None, &format!("seed {seed}"));
        }
        assert!(faces >= 300, "{faces} faces in 300 samples");
    }

    #[test]
    fn same_seed_gives_identical_sample() {
        let scene = scene(160, 120);
        let config = AugmentConfig::default();
        for seed in 0..10 {
            assert_eq!(
                augment(&scene.sample, 96, &config, &mut rng(seed)),
                augment(&scene.sample, 96, &config, &mut rng(seed))
            );
        }
        assert_ne!(augment(&scene.sample, 96, &config, &mut rng(1)), augment(&scene.sample, 96, &config, &mut rng(2)));
    }

    #[test]
    fn letterbox_scales_long_side_and_pads_bottom_right() {
        let scene = scene(160, 120);
        let out = letterbox(&scene.sample, 200);
        assert_eq!(out.image.dimensions(), (200, 200));
        assert_eq!(out.faces.len(), 3);
        scene.assert_faces_on_colours(&out, Some(false), "letterbox");
        let pad = mean_colour(&scene.sample.image);
        assert!((0..200).all(|x| (150..200).all(|y| *out.image.get_pixel(x, y) == pad)));
        assert_eq!(out.faces[0].bbox.corners(), [10.0, 10.0, 55.0, 55.0]);
    }
}
