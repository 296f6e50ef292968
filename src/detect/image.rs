//! Photos in, network input out: decoding (with EXIF orientation) and the preprocessing that the
//! model config asks for.

use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

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
    #[error(
        "{}: {width}×{height} is {} megapixels, more than the {} allowed (--max-pixels N, or FACESTUDIO_MAX_PIXELS in the studio, raises it)",
        path.display(), (*width as u64 * *height as u64).div_ceil(1_000_000), limit.div_ceil(1_000_000)
    )]
    TooLarge { path: PathBuf, width: u32, height: u32, limit: u64 },
}

/// The most pixels a photo may have, decoded or as scaled for the network: 50 megapixels (a
/// 8160 × 6120 phone photo). Its network input takes 12 bytes a pixel (three f32 channels), so
/// this bounds one photo's memory to about 600 MB; a 20000² PNG or a forged 100000² header is an
/// error before anything is allocated.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

static MAX_PIXELS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_PIXELS);

/// The pixel limit in force (see [`DEFAULT_MAX_PIXELS`]).
pub fn max_pixels() -> u64 {
    MAX_PIXELS.load(Ordering::Relaxed)
}

/// Raises (or lowers) the pixel limit for this process: `--max-pixels`, `FACESTUDIO_MAX_PIXELS`.
pub fn set_max_pixels(limit: u64) {
    MAX_PIXELS.store(limit.max(1), Ordering::Relaxed);
}

/// An error when `width × height` exceeds the pixel limit.
pub fn check_pixels(path: &Path, width: u32, height: u32) -> Result<(), ImageError> {
    let limit = max_pixels();
    if u64::from(width) * u64::from(height) > limit {
        return Err(ImageError::TooLarge { path: path.to_path_buf(), width, height, limit });
    }
    Ok(())
}

/// File extensions of the photos `collect_images` picks up in folders.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The photos named by `inputs`: files as they are, folders searched recursively for image
/// files (sorted, so runs repeat). Symlinks are followed, but every real folder is searched and
/// every real file listed once: a symlink loop ends the walk, it does not repeat it.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ImageError> {
    let mut images = Vec::new();
    let mut seen_dirs = std::collections::HashSet::new();
    let mut seen_files = std::collections::HashSet::new();
    for input in inputs {
        if input.is_dir() {
            let mut stack = vec![input.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let real = dir.canonicalize().map_err(|source| ImageError::Open { path: dir.clone(), source })?;
                if !seen_dirs.insert(real) {
                    continue;
                }
                let list = std::fs::read_dir(&dir).map_err(|source| ImageError::Open { path: dir.clone(), source })?;
                for entry in list {
                    let path = entry.map_err(|source| ImageError::Open { path: dir.clone(), source })?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if has_image_extension(&path)
                        && seen_files.insert(path.canonicalize().unwrap_or_else(|_| path.clone()))
                    {
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

/// The largest photo file read (a 50-megapixel PNG is well under it).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Decodes a JPEG/PNG/WebP/BMP file and turns it upright as its EXIF orientation says, so that
/// boxes are in the pixels a person sees. The header's size is checked against the pixel limit
/// ([`max_pixels`]) before anything is decoded, the decoder's own allocations are bounded too,
/// and a FIFO or folder in place of the file is an error, not a blocked read.
pub fn load_image(path: &Path) -> Result<RgbImage, ImageError> {
    let open_error = |source| ImageError::Open { path: path.to_path_buf(), source };
    let bytes = crate::fsutil::read_limited(path, MAX_FILE_BYTES).map_err(open_error)?;
    let reader = limited_reader(path, std::io::Cursor::new(bytes))?;
    let mut decoder = guarded(path, || reader.into_decoder())?;
    let (width, height) = decoder.dimensions();
    check_pixels(path, width, height)?;
    let orientation = guarded(path, || decoder.orientation())?;
    let mut image = guarded(path, || DynamicImage::from_decoder(decoder))?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// The size of a photo as [`load_image`] turns it upright (a photo turned by 90° by its EXIF
/// orientation has its sides swapped), from its header alone: no pixel is decoded and the file
/// is not read whole. The header is parsed as `load_image` parses it (allocation limit, panic
/// guard), and a FIFO or folder in place of the file is an error, not a blocked read.
pub fn upright_size(path: &Path) -> Result<(u32, u32), ImageError> {
    let open_error = |source| ImageError::Open { path: path.to_path_buf(), source };
    crate::fsutil::check_regular(path, MAX_FILE_BYTES).map_err(open_error)?;
    let file = std::fs::File::open(path).map_err(open_error)?;
    let reader = limited_reader(path, std::io::BufReader::new(file))?;
    let mut decoder = guarded(path, || reader.into_decoder())?;
    let (width, height) = decoder.dimensions();
    let turned = matches!(
        guarded(path, || decoder.orientation())?,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    );
    Ok(if turned { (height, width) } else { (width, height) })
}

/// A reader of the photo in `source`, its format guessed from the first bytes, whose decoder may
/// allocate at most RGBA8 of the largest photo allowed and room for its working buffers.
fn limited_reader<R: BufRead + Seek>(path: &Path, source: R) -> Result<ImageReader<R>, ImageError> {
    let mut reader = ImageReader::new(source)
        .with_guessed_format()
        .map_err(|source| ImageError::Open { path: path.to_path_buf(), source })?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels().saturating_mul(8));
    reader.limits(limits);
    Ok(reader)
}

/// Runs a step of the image decoders on `path`'s bytes (header, EXIF, pixels). The decoders guard
/// their input, but a panic in one is still this file's error, not a crash.
fn guarded<T>(path: &Path, step: impl FnOnce() -> image::ImageResult<T>) -> Result<T, ImageError> {
    let decode_error = |message: String| ImageError::Decode { path: path.to_path_buf(), message };
    crate::guard::catch_third_party(step)
        .map_err(|_| decode_error("the decoder failed on it".into()))?
        .map_err(|e| decode_error(e.to_string()))
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

impl InputSize {
    /// The network input's size for a `width × height` photo (at least 1 × 1).
    pub fn applied(self, width: u32, height: u32) -> (u32, u32) {
        let factor = match self {
            InputSize::Original => 1.0,
            InputSize::Scale(f) => f,
            InputSize::MaxSize(max) => (max as f32 / width.max(height) as f32).min(1.0),
        };
        let side = |s: u32| ((s as f32 * factor).round().clamp(1.0, u32::MAX as f32)) as u32;
        (side(width), side(height))
    }
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
    let (nw, nh) = size.applied(w, h);
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

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A PNG that claims 100000 × 100000 pixels (its header is all there is): an error naming
    /// the file and the limit, found before any pixel buffer exists.
    #[test]
    fn a_huge_header_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc32(&ihdr).to_be_bytes());
        for chunk in [b"IDAT", b"IEND"] {
            png.extend(0u32.to_be_bytes());
            png.extend(chunk);
            png.extend(crc32(chunk).to_be_bytes());
        }
        std::fs::write(&path, png).unwrap();
        let err = load_image(&path).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { width: 100_000, .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("huge.png") && text.contains("--max-pixels"), "{text}");
        assert_eq!(InputSize::Scale(8.0).applied(4000, 3000), (32_000, 24_000));
        assert!(check_pixels(&path, 32_000, 24_000).is_err(), "a scaled-up input is checked too");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_in_a_photo_folder_lists_every_photo_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a");
        std::fs::create_dir(&sub).unwrap();
        RgbImage::new(2, 2).save(sub.join("1.png")).unwrap();
        std::os::unix::fs::symlink(dir.path(), sub.join("loop")).unwrap();
        std::os::unix::fs::symlink(sub.join("1.png"), dir.path().join("same.png")).unwrap();
        let found = collect_images(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_named_like_a_photo_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("photo.jpg");
        if !std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
            return;
        }
        let err = load_image(&fifo).unwrap_err().to_string();
        assert!(err.contains("photo.jpg") && err.contains("not a regular file"), "{err}");
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
