//! Faces drawn over a photo: boxes, scores and the five landmarks (one colour per index).

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

use super::postprocess::Detection;

/// Landmark colours by index: left eye, right eye, nose, left and right mouth corner.
pub const LANDMARK_COLORS: [[u8; 3]; 5] = [[255, 60, 60], [255, 220, 0], [60, 220, 255], [0, 230, 90], [255, 80, 255]];
const BOX_COLOR: [u8; 3] = [0, 255, 0];

/// A copy of `image` with every detection drawn.
pub fn annotate(image: &RgbImage, detections: &[Detection]) -> RgbImage {
    let mut out = image.clone();
    let font = FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR).ok();
    let thickness = ((image.width().max(image.height()) as f32 / 500.0).round() as i32).max(1);
    for d in detections {
        let [x1, y1, x2, y2] = d.bbox.corners();
        rectangle(&mut out, x1 as i32, y1 as i32, x2 as i32, y2 as i32, thickness, Rgb(BOX_COLOR));
        if let Some(font) = &font {
            text(
                &mut out,
                font,
                &format!("{:.2}", d.score),
                x1,
                y1 - 2.0,
                12.0 + 2.0 * thickness as f32,
                Rgb(BOX_COLOR),
            );
        }
        if let Some(landmarks) = &d.landmarks {
            for (p, color) in landmarks.points.iter().zip(LANDMARK_COLORS) {
                disc(&mut out, p.x, p.y, 1.0 + thickness as f32, Rgb(color));
            }
        }
    }
    out
}

fn put(image: &mut RgbImage, x: i32, y: i32, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
        image.put_pixel(x as u32, y as u32, color);
    }
}

fn rectangle(image: &mut RgbImage, x1: i32, y1: i32, x2: i32, y2: i32, thickness: i32, color: Rgb<u8>) {
    for t in 0..thickness {
        for x in x1..=x2 {
            put(image, x, y1 + t, color);
            put(image, x, y2 - t, color);
        }
        for y in y1..=y2 {
            put(image, x1 + t, y, color);
            put(image, x2 - t, y, color);
        }
    }
}

fn disc(image: &mut RgbImage, cx: f32, cy: f32, r: f32, color: Rgb<u8>) {
    let ri = r.ceil() as i32;
    for dy in -ri..=ri {
        for dx in -ri..=ri {
            if (dx * dx + dy * dy) as f32 <= r * r {
                put(image, cx.round() as i32 + dx, cy.round() as i32 + dy, color);
            }
        }
    }
}

/// Draws `text` with its baseline at `y`, blending glyph coverage over the image.
fn text(image: &mut RgbImage, font: &FontRef, text: &str, x: f32, y: f32, size: f32, color: Rgb<u8>) {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut caret = x;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(PxScale::from(size), ab_glyph::point(caret, y.max(size)));
        caret += scaled.h_advance(id);
        let Some(outlined) = font.outline_glyph(glyph) else { continue };
        let bounds = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let (px, py) = (bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32);
            if px >= 0 && py >= 0 && (px as u32) < image.width() && (py as u32) < image.height() {
                let under = image.get_pixel(px as u32, py as u32).0;
                let blended =
                    std::array::from_fn(|i| (under[i] as f32 * (1.0 - coverage) + color.0[i] as f32 * coverage) as u8);
                image.put_pixel(px as u32, py as u32, Rgb(blended));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BBox, Landmarks, Point};

    #[test]
    fn box_and_landmarks_are_drawn_where_the_face_is() {
        let image = RgbImage::new(100, 100);
        let points =
            [(40.0, 40.0), (60.0, 40.0), (50.0, 50.0), (42.0, 60.0), (58.0, 60.0)].map(|(x, y)| Point { x, y });
        let d = Detection {
            bbox: BBox::new(30.0, 30.0, 70.0, 75.0).unwrap(),
            score: 0.99,
            landmarks: Some(Landmarks { points }),
        };
        let out = annotate(&image, &[d]);
        assert_eq!(out.get_pixel(50, 75).0, BOX_COLOR);
        assert_eq!(out.get_pixel(30, 50).0, BOX_COLOR);
        assert_eq!(out.get_pixel(40, 40).0, LANDMARK_COLORS[0]);
        assert_eq!(out.get_pixel(58, 60).0, LANDMARK_COLORS[4]);
        assert_eq!(out.get_pixel(5, 95).0, [0, 0, 0], "nothing drawn far from the face");
    }
}
