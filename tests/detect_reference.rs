//! Parity with the reference detector (biubug6/Face-Detector-1MB-with-landmark) on
//! `assets/photos/test.jpg`, with the shared MobileNet0.25 checkpoint in all three containers.

mod common;

use std::path::Path;

use common::assets;

use burn::prelude::*;
use facestudio::detect::{CandidateLimits, Detection, Detector, FaceFilter, InputSize, load_image, preprocess};
use facestudio::model::{InferenceEngine, InferenceNet, RetinaFaceConfig, import_checkpoint};
use image::RgbImage;

fn npy<T: npyz::Deserialize>(path: &Path) -> (Vec<u64>, Vec<T>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = npyz::NpyFile::new(&bytes[..]).unwrap();
    (file.shape().to_vec(), file.into_vec().unwrap())
}

fn detector(weights: &Path) -> Detector {
    let device = Device::flex();
    let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
    Detector::new(import_checkpoint(weights, &config, &device).unwrap_or_else(|e| panic!("{e}")), device)
}

/// The reference's input: test.jpg exactly as OpenCV decoded it (BGR, HWC).
fn reference_photo(reference: &Path) -> RgbImage {
    let (shape, bgr) = npy::<u8>(&reference.join("test_input_bgr_u8.npy"));
    assert_eq!(shape, [624, 1024, 3]);
    let rgb: Vec<u8> = bgr.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    RgbImage::from_raw(1024, 624, rgb).unwrap()
}

/// Reference detections `[x1,y1,x2,y2,score,l0x,…,l4y]` rows.
fn reference_detections(reference: &Path) -> Vec<[f32; 15]> {
    let (shape, rows) = npy::<f32>(&reference.join("test_detections.npy"));
    assert_eq!(shape, [192, 15]);
    rows.chunks(15).map(|r| r.try_into().unwrap()).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Every reference face above 0.5 has one of ours within `tolerance` px (box and landmarks).
fn assert_same_faces(ours: &[Detection], reference: &[[f32; 15]], tolerance: f32) {
    let expected: Vec<&[f32; 15]> = reference.iter().filter(|r| r[4] >= 0.5).collect();
    let ours: Vec<&Detection> = ours.iter().filter(|d| d.score >= 0.5).collect();
    assert_eq!(ours.len(), expected.len(), "faces with score >= 0.5");
    for row in expected {
        let found = ours.iter().any(|d| {
            let mut values = d.bbox.corners().to_vec();
            values.extend(d.landmarks.unwrap().to_flat());
            let reference: Vec<f32> = row[..4].iter().chain(&row[5..]).copied().collect();
            max_abs_diff(&values, &reference) <= tolerance
        });
        assert!(found, "no detection within {tolerance} px of reference face {row:?}");
    }
}

#[test]
fn raw_outputs_and_detections_match_the_reference_for_all_three_containers() {
    let Some(assets) = assets("raw_outputs_and_detections_match_the_reference_for_all_three_containers") else {
        return;
    };
    let reference = assets.join("../reference/detect");
    let photo = reference_photo(&reference);
    let (_, loc) = npy::<f32>(&reference.join("test_raw_loc.npy"));
    let (_, conf) = npy::<f32>(&reference.join("test_raw_conf_softmax.npy"));
    let (_, landms) = npy::<f32>(&reference.join("test_raw_landms.npy"));
    let face_scores: Vec<f32> = conf.chunks(2).map(|c| c[1]).collect();
    let expected = reference_detections(&reference);
    for file in ["mobilenet0.25_Final.pth", "mobilenet0.25_Final.zip.pth", "mobilenet0.25_Final.safetensors"] {
        let detector = detector(&assets.join("weights").join(file));
        let input = preprocess(&photo, InputSize::Original, &detector.config().input);
        // Every anchor, to compare with the reference's full outputs.
        let outputs = detector.forward(&[&input], f32::NEG_INFINITY).unwrap().remove(0);
        // Tolerance 1e-3: CPU convolution kernels sum in another order than PyTorch's.
        let diffs = [
            max_abs_diff(&outputs.boxes[0], &loc),
            max_abs_diff(&outputs.scores, &face_scores),
            max_abs_diff(outputs.landmarks.as_ref().unwrap(), &landms),
        ];
        println!("{file}: max abs diff loc {:.2e}, conf {:.2e}, landmarks {:.2e}", diffs[0], diffs[1], diffs[2]);
        assert!(diffs.iter().all(|&d| d < 1e-3), "{file}: {diffs:?}");
        let detections =
            detector.candidates(&outputs, &input, &CandidateLimits::EVALUATION).filter(&FaceFilter::EVALUATION);
        assert_same_faces(&detections, &expected, 0.5);
    }
}

#[test]
fn the_folded_network_gives_the_checkpoints_own_raw_outputs_on_both_engines() {
    let Some(assets) = assets("the_folded_network_gives_the_checkpoints_own_raw_outputs_on_both_engines") else {
        return;
    };
    let device = Device::flex();
    let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
    let model = import_checkpoint(&assets.join("weights/mobilenet0.25_Final.pth"), &config, &device).unwrap();
    let photo = reference_photo(&assets.join("../reference/detect"));
    let input = preprocess(&photo, InputSize::Original, &config.input);
    let shape = [1, 3, input.height as usize, input.width as usize];
    let x = Tensor::<4>::from_data(TensorData::new(input.data.clone(), shape), &device);
    let expected = model.forward(x.clone());
    let host = |t: &Tensor<3>| t.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    for engine in [InferenceEngine::CpuKernels, InferenceEngine::Burn] {
        let got = InferenceNet::with_engine(&model, &device, engine).unwrap().forward(x.clone());
        let (e, g) = (expected.last(), got.last());
        let diffs = [
            max_abs_diff(&host(&e.logits), &host(&g.logits)),
            max_abs_diff(&host(&e.boxes), &host(&g.boxes)),
            max_abs_diff(&host(e.landmarks.as_ref().unwrap()), &host(g.landmarks.as_ref().unwrap())),
        ];
        println!(
            "{engine:?}: max abs diff logits {:.2e}, boxes {:.2e}, landmarks {:.2e}",
            diffs[0], diffs[1], diffs[2]
        );
        assert!(diffs.iter().all(|&d| d < 1e-4), "{engine:?}: {diffs:?}");
    }
}

#[test]
fn detections_from_the_jpeg_match_the_reference() {
    let Some(assets) = assets("detections_from_the_jpeg_match_the_reference") else { return };
    let detector = detector(&assets.join("weights/mobilenet0.25_Final.pth"));
    let photo = load_image(&assets.join("photos/test.jpg")).unwrap();
    let detections = detector
        .detect(&photo, InputSize::Original, &CandidateLimits::EVALUATION)
        .unwrap()
        .filter(&FaceFilter::EVALUATION);
    // Our JPEG decoder rounds a few pixels differently from OpenCV's: allow 2 px.
    assert_same_faces(&detections, &reference_detections(&assets.join("../reference/detect")), 2.0);
}

#[test]
fn checkpoint_for_another_network_is_an_error_listing_the_names() {
    let Some(assets) = assets("checkpoint_for_another_network_is_an_error_listing_the_names") else { return };
    let config = RetinaFaceConfig::preset("pytorch-retinaface-r50").unwrap();
    let err = import_checkpoint(&assets.join("weights/mobilenet0.25_Final.pth"), &config, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing in the file (265)"), "{err}");
    assert!(err.contains("backbone.conv1.weight"), "{err}");
    assert!(err.contains("not used by the model"), "{err}");
    assert!(err.contains("… and 259 more (--verbose lists them all)"), "a few names per group: {err}");
    assert!(err.len() < 2_000, "not hundreds of names: {} bytes", err.len());
}

#[test]
fn checkpoint_with_other_layer_sizes_is_an_error_naming_the_mis_shaped_tensors() {
    let Some(assets) = assets("checkpoint_with_other_layer_sizes_is_an_error_naming_the_mis_shaped_tensors") else {
        return;
    };
    let mut config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
    config.fpn.channels = 32;
    let err = import_checkpoint(&assets.join("weights/mobilenet0.25_Final.pth"), &config, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("mis-shaped"), "{err}");
    assert!(err.contains("fpn.lateral.0.conv.weight"), "{err}");
}
