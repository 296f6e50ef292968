//! End-to-end check against the reference detector's post-processing: anchors, decoding and
//! NMS together must turn the reference's raw network outputs into its final detections.

use crate::test_support::{read_npy_f32, reference_dir};

use super::{AnchorSpec, AreaConvention, Variance, decode_box, decode_landmarks, nms};

/// Reads a float32 `.npy` file of the reference detection outputs, checking its shape.
pub(super) fn read_reference(assets: &std::path::Path, name: &str, shape: &[u64]) -> Vec<f32> {
    read_npy_f32(&reference_dir(assets, "detect").join(name), shape)
}

#[test]
fn reference_raw_outputs_decode_and_nms_to_reference_detections() {
    let Some(assets) = crate::test_support::assets("reference_raw_outputs_decode_and_nms_to_reference_detections")
    else {
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
