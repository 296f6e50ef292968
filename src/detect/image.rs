//! Photos in, network input out: decoding (with EXIF orientation) and the preprocessing that the
//! model config asks for.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use super::postprocess::ImageFromInput;
use crate::model::{ChannelOrder, InputNormalization};

/// Why a photo could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot decode {}: {message}", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
}

/// File extensions of the photos `collect_images` picks up in folders.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The photos named by `inputs`: files as they are, folders searched recursively for image
/// files (sorted, so runs repeat).
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ImageError> {
    let mut images = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut stack = vec![input.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let list = std::fs::read_dir(&dir).map_err(|source| ImageError::Open { path: dir.clone(), source })?;
                for entry in list {
                    let path = entry.map_err(|source| ImageError::Open { path: dir.clone(), source })?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if has_image_extension(&path) {
                        found.push(path);
                    }
                }
            }
            found.sort();
            images.extend(found);
        } else if input.exists() {
            images.push(input.clone());
        } else {
            return Err(ImageError::Missing(input.clone()));
        }
    }
    Ok(images)
}

/// Decodes a JPEG/PNG/WebP/BMP file and turns it upright as its EXIF orientation says, so that
/// boxes are in the pixels a person sees. The image crate's default memory limits turn a huge or
/// malicious file into an error instead of an allocation failure.
pub fn load_image(path: &Path) -> Result<RgbImage, ImageError> {
    let decode_error = |e: image::ImageError| ImageError::Decode { path: path.to_path_buf(), message: e.to_string() };
    let reader = ImageReader::open(path)
        .map_err(|source| ImageError::Open { path: path.to_path_buf(), source })?
        .with_guessed_format()
        .map_err(|source| ImageError::Open { path: path.to_path_buf(), source })?;
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// How large the network input is, relative to the photo.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum InputSize {
    /// The photo as it is (the evaluation protocol).
    #[default]
    Original,
    /// Scaled by a factor.
    Scale(f32),
    /// Scaled down (never up) so the longer side is at most this many pixels.
    MaxSize(u32),
}

/// A preprocessed image: CHW floats in the model's channel order and normalisation.
#[derive(Clone, Debug)]
pub struct NetworkInput {
    pub data: Vec<f32>,
    pub width: u32,
    pub height: u32,
    pub to_image: ImageFromInput,
}

/// Resizes (bilinear) as `size` asks and normalises: `(pixel · scale − mean) / std` per channel.
pub fn preprocess(image: &RgbImage, size: InputSize, norm: &InputNormalization) -> NetworkInput {
    let (w, h) = image.dimensions();
    let factor = match size {
        InputSize::Original => 1.0,
        InputSize::Scale(f) => f,
        InputSize::MaxSize(max) => (max as f32 / w.max(h) as f32).min(1.0),
    };
    let (nw, nh) = (((w as f32 * factor).round() as u32).max(1), ((h as f32 * factor).round() as u32).max(1));
    let resized;
    let source = if (nw, nh) == (w, h) {
        image
    } else {
        resized = image::imageops::resize(image, nw, nh, image::imageops::FilterType::Triangle);
        &resized
    };
    NetworkInput {
        data: normalize(source, norm),
        width: nw,
        height: nh,
        to_image: ImageFromInput { scale_x: w as f32 / nw as f32, scale_y: h as f32 / nh as f32 },
    }
}

/// CHW floats from interleaved RGB pixels.
pub fn normalize(image: &RgbImage, norm: &InputNormalization) -> Vec<f32> {
    let plane = (image.width() * image.height()) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    let source_channel = |c: usize| match norm.order {
        ChannelOrder::Rgb => c,
        ChannelOrder::Bgr => 2 - c,
    };
    for c in 0..3 {
        let (src, mul, mean, inv_std) = (source_channel(c), norm.scale, norm.mean[c], 1.0 / norm.std[c]);
        let out = &mut data[c * plane..(c + 1) * plane];
        for (o, px) in out.iter_mut().zip(image.as_raw().chunks_exact(3)) {
            *o = (px[src] as f32 * mul - mean) * inv_std;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_mean_subtraction_matches_pytorch_retinaface() {
        let image = RgbImage::from_raw(2, 1, vec![10, 20, 30, 200, 100, 50]).unwrap();
        let data = normalize(&image, &InputNormalization::PYTORCH_RETINAFACE);
        // Channel 0 is blue: 30 − 104 and 50 − 104.
        assert_eq!(data, vec![30.0 - 104.0, 50.0 - 104.0, 20.0 - 117.0, 100.0 - 117.0, 10.0 - 123.0, 200.0 - 123.0]);
    }

    #[test]
    fn max_size_scales_down_and_maps_back() {
        let image = RgbImage::new(400, 200);
        let input = preprocess(&image, InputSize::MaxSize(100), &InputNormalization::IMAGENET);
        assert_eq!((input.width, input.height), (100, 50));
        assert_eq!((input.to_image.scale_x, input.to_image.scale_y), (4.0, 4.0));
        assert_eq!(input.data.len(), 3 * 100 * 50);
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 2×1 JPEG with orientation 6 (rotate 90° clockwise) reads as 1×2.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rotated.jpg");
        let mut jpeg = Vec::new();
        let image = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100);
        image::ImageEncoder::set_exif_metadata(&mut encoder, exif_orientation_6()).unwrap();
        encoder.encode_image(&image).unwrap();
        std::fs::write(&path, jpeg).unwrap();
        let loaded = load_image(&path).unwrap();
        assert_eq!(loaded.dimensions(), (1, 2));
    }

    /// A minimal little-endian TIFF/EXIF block with one IFD entry: Orientation = 6.
    fn exif_orientation_6() -> Vec<u8> {
        let mut exif = b"II*\0".to_vec();
        exif.extend(8u32.to_le_bytes());
        exif.extend(1u16.to_le_bytes());
        exif.extend(0x0112u16.to_le_bytes());
        exif.extend(3u16.to_le_bytes());
        exif.extend(1u32.to_le_bytes());
        exif.extend([6, 0, 0, 0]);
        exif.extend(0u32.to_le_bytes());
        exif
    }

    #[test]
    fn corrupt_file_is_a_decode_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.jpg");
        std::fs::write(&path, b"\xff\xd8\xff not really a jpeg").unwrap();
        let err = load_image(&path).unwrap_err().to_string();
        assert!(err.contains("broken.jpg"), "{err}");
    }
}
