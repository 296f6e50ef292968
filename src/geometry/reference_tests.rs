//! End-to-end check against the reference detector's post-processing: anchors, decoding and
//! NMS together must turn the reference's raw network outputs into its final detections.

use super::{AnchorSpec, AreaConvention, Variance, decode_box, decode_landmarks, nms};

/// The assets folder from `FACESTUDIO_ASSETS`, or `None` after printing that `test` is skipped.
pub(super) fn assets_or_skip(test: &str) -> Option<std::ffi::OsString> {
    let assets = std::env::var_os("FACESTUDIO_ASSETS");
    if assets.is_none() {
        println!("SKIPPED: {test}: FACESTUDIO_ASSETS is not set");
    }
    assets
}

/// Reads a float32 `.npy` file of the reference folder (`$FACESTUDIO_ASSETS/../reference/
/// detect`), checking its shape.
pub(super) fn read_reference(assets: &std::ffi::OsStr, name: &str, shape: &[u64]) -> Vec<f32> {
    let path = std::path::Path::new(assets).join("../reference/detect").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("valid npy header");
    assert_eq!(npy.shape(), shape, "{name}");
    npy.into_vec().expect("float32 data")
}

#[test]
fn reference_raw_outputs_decode_and_nms_to_reference_detections() {
    let Some(assets) = assets_or_skip("reference_raw_outputs_decode_and_nms_to_reference_detections") else {
        return;
    };
    let (width, height) = (1024u32, 624u32);
    let loc = read_reference(&assets, "test_raw_loc.npy", &[26_240, 4]);
    let conf = read_reference(&assets, "test_raw_conf_softmax.npy", &[26_240, 2]);
    let landms = read_reference(&assets, "test_raw_landms.npy", &[26_240, 10]);
    let expected = read_reference(&assets, "test_detections.npy", &[192, 15]);

    // detect.py: decode against normalised priors, then multiply by the image size.
    let priors = AnchorSpec::fd1mb().generate_normalized(width, height);
    let scale = [width as f32, height as f32];
    let v = Variance::PYTORCH_RETINAFACE;
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut points: Vec<[f32; 10]> = Vec::new();
    for (i, a) in priors.iter().enumerate() {
        let score = conf[2 * i + 1];
        if score > 0.02 {
            let t: [f32; 4] = std::array::from_fn(|k| loc[4 * i + k]);
            let b = decode_box(t, a, v);
            boxes.push(std::array::from_fn(|k| b[k] * scale[k % 2]));
            let t: [f32; 10] = std::array::from_fn(|k| landms[10 * i + k]);
            let d = decode_landmarks(t, a, v);
            points.push(std::array::from_fn(|k| d[k] * scale[k % 2]));
            scores.push(score);
        }
    }
    // detect.py's top-k limits (5000 before NMS, 750 after) do not bind for this image.
    assert_eq!(scores.len(), 1111);
    let keep = nms(&boxes, &scores, 0.4, AreaConvention::PlusOnePixel).expect("valid");
    assert_eq!(keep.len(), 192);
    let mut max_diff = 0.0f32;
    for (row, &k) in expected.chunks_exact(15).zip(&keep) {
        assert_eq!(row[4], scores[k]);
        let got = boxes[k].iter().chain(&points[k]);
        let want = row[..4].iter().chain(&row[5..]);
        for (g, w) in got.zip(want) {
            max_diff = max_diff.max((g - w).abs());
        }
    }
    println!("max abs diff {max_diff}");
    assert!(max_diff < 1e-2, "max abs diff {max_diff} px");
}
