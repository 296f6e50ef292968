//! Test-time augmentation, as the published RetinaFace / insightface WIDER numbers are produced:
//! each photo at several scales and mirrored, every pass's candidates mapped back onto the photo
//! and merged before NMS (plain NMS at the caller's settings, no box voting).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::detector::{Detector, ScoringStage};
use super::error::DeviceReadError;
use super::image::{InputSize, max_pixels, preprocess};
use super::postprocess::{CandidateLimits, Candidates};

/// The passes of test-time augmentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tta {
    /// Scale factors of the photo; each is also run mirrored when `flip` is set.
    pub scales: Vec<f32>,
    pub flip: bool,
    /// A scale that would make the longer side larger than this is lowered to fit, so memory
    /// stays bounded on big photos (Pytorch_Retinaface's WIDER test caps at 2150).
    pub max_side: u32,
}

impl Default for Tta {
    fn default() -> Self {
        Tta { scales: vec![0.5, 1.0, 1.5, 2.0], flip: true, max_side: 2150 }
    }
}

impl Tta {
    /// The scales run on a `width × height` photo: each capped to `max_side` and to the pixel
    /// limit ([`max_pixels`]), duplicates (after capping) once.
    pub fn scales_for(&self, width: u32, height: u32) -> Vec<f32> {
        let side = self.max_side as f32 / width.max(height).max(1) as f32;
        let pixels = (max_pixels() as f64 / (f64::from(width.max(1)) * f64::from(height.max(1)))).sqrt() as f32;
        let cap = side.min(pixels);
        let mut scales: Vec<f32> = Vec::new();
        for &s in &self.scales {
            let s = s.min(cap);
            if s > 0.0 && s.is_finite() && !scales.iter().any(|&t| (t - s).abs() < 1e-6) {
                scales.push(s);
            }
        }
        scales
    }
}

/// One photo through every pass, candidates per scoring stage (in the order of `stages`).
pub fn detect_tta(
    detector: &Detector,
    photo: &RgbImage,
    tta: &Tta,
    limits: &CandidateLimits,
    stages: &[ScoringStage],
) -> Result<Vec<Candidates>, DeviceReadError> {
    let mirrored = tta.flip.then(|| image::imageops::flip_horizontal(photo));
    let mut passes: Vec<Vec<Candidates>> = vec![Vec::new(); stages.len()];
    for scale in tta.scales_for(photo.width(), photo.height()) {
        let size = InputSize::Scale(scale);
        for (flipped, image) in std::iter::once((false, photo)).chain(mirrored.as_ref().map(|m| (true, m))) {
            let input = preprocess(image, size, &detector.config().input);
            let outputs = detector.forward_stages(&[&input], stages, limits.floor)?;
            for (per_stage, pass) in outputs.iter().zip(&mut passes) {
                let Some(output) = per_stage.first() else { continue };
                let candidates = detector.candidates(output, &input, limits);
                pass.push(if flipped { candidates.unmirrored(photo.width()) } else { candidates });
            }
        }
    }
    Ok(passes.into_iter().map(Candidates::merged).collect())
}

#[cfg(test)]
mod tests {
    use burn::prelude::Device;

    use super::*;
    use crate::detect::{Detection, FaceFilter};
    use crate::model::{RetinaFace, RetinaFaceConfig};

    fn every_candidate(c: &Candidates) -> Vec<Detection> {
        let all = FaceFilter { confidence: 0.0, nms_threshold: 1.0, keep_top_k: usize::MAX, ..FaceFilter::EVALUATION };
        let mut faces = c.filter(&all);
        faces.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.bbox.corners()[0].total_cmp(&b.bbox.corners()[0])));
        faces
    }

    /// The mirrored pass of a mirrored photo is the plain pass of the photo: TTA of the mirror is
    /// the mirror of TTA, boxes and landmarks (left and right swapped back) alike.
    #[test]
    fn tta_of_the_mirrored_photo_is_the_mirror_of_tta() {
        let device = Device::flex();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let detector = Detector::new(RetinaFace::new(&config, &device), device);
        let photo = RgbImage::from_fn(70, 50, |x, y| {
            image::Rgb([(x * 9 % 256) as u8, (y * 13 % 256) as u8, ((x * y) % 256) as u8])
        });
        let mirror = image::imageops::flip_horizontal(&photo);
        let tta = Tta { scales: vec![1.0, 1.5], flip: true, max_side: 2150 };
        let limits = CandidateLimits { floor: 0.3, ..CandidateLimits::EVALUATION };
        let stage = [detector.stage()];
        let plain = detect_tta(&detector, &photo, &tta, &limits, &stage).unwrap().remove(0);
        let of_mirror = detect_tta(&detector, &mirror, &tta, &limits, &stage).unwrap().remove(0);
        let (a, b) = (every_candidate(&plain.unmirrored(70)), every_candidate(&of_mirror));
        assert!(a.len() > 10, "{} candidates", a.len());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.score, y.score);
            let close = |p: &[f32], q: &[f32]| p.iter().zip(q).all(|(u, v)| (u - v).abs() < 1e-3);
            assert!(close(&x.bbox.corners(), &y.bbox.corners()), "{:?} vs {:?}", x.bbox, y.bbox);
            let (p, q) = (x.landmarks.unwrap().to_flat(), y.landmarks.unwrap().to_flat());
            assert!(close(&p, &q), "{p:?} vs {q:?}");
        }
        let untouched = Tta { flip: false, scales: vec![1.0], ..tta };
        let single = detect_tta(&detector, &photo, &untouched, &limits, &stage).unwrap().remove(0);
        assert_eq!(
            single,
            detector.detect(&photo, InputSize::Scale(1.0), &limits).unwrap(),
            "one pass is plain detection"
        );
    }

    #[test]
    fn scales_are_capped_to_the_longest_side_and_deduplicated() {
        let tta = Tta { scales: vec![0.5, 1.0, 1.5, 2.0], flip: true, max_side: 1500 };
        assert_eq!(tta.scales_for(1000, 600), vec![0.5, 1.0, 1.5]);
        assert_eq!(tta.scales_for(100, 60), vec![0.5, 1.0, 1.5, 2.0]);
        assert_eq!(tta.scales_for(3000, 2000), vec![0.5]);
        // The pixel limit caps too: a 48 MP photo is not enlarged past it, whatever max_side says.
        let unbounded = Tta { max_side: u32::MAX, ..tta };
        let largest = unbounded.scales_for(8000, 6000).into_iter().fold(0.0f32, f32::max);
        assert!(f64::from(largest).powi(2) * 48e6 <= max_pixels() as f64 * 1.0001, "{largest}");
    }
}
