//! The same network on burn's wgpu backend (the native API's best adapter; lavapipe counts) and on
//! the CPU backend gives the same outputs. Without a Vulkan adapter the test says so and passes:
//! wgpu's OpenGL fallback is refused by `DeviceChoice::open` with a clear error instead of crashing
//! later.

use burn::prelude::*;
use facestudio::detect::{Detector, InputSize, preprocess};
use facestudio::model::{DeviceChoice, RetinaFace, RetinaFaceConfig};
use image::RgbImage;

#[test]
fn wgpu_forward_matches_cpu_forward() {
    let gpu = match DeviceChoice::Wgpu(None).open() {
        Ok(opened) => opened.device,
        Err(err) => {
            println!("SKIPPED: wgpu_forward_matches_cpu_forward: {err}");
            return;
        }
    };
    let cpu = Device::flex();
    let config = RetinaFaceConfig::preset("tiny").unwrap();
    let model = RetinaFace::new(&config, &cpu).valid();
    let on_gpu = model.clone().to_device(&gpu).valid();
    let data: Vec<f32> = (0..3 * 64 * 64).map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5).collect();
    let read = |t: Tensor<3>| t.try_into_vec_as::<f32>().unwrap();
    let a = model.forward(Tensor::<4>::from_data(TensorData::new(data.clone(), [1, 3, 64, 64]), &cpu));
    let b = on_gpu.forward(Tensor::<4>::from_data(TensorData::new(data, [1, 3, 64, 64]), &gpu));
    for (x, y) in a.stages.iter().zip(&b.stages) {
        for (p, q) in [(x.logits.clone(), y.logits.clone()), (x.boxes.clone(), y.boxes.clone())] {
            let (p, q) = (read(p), read(q));
            let diff = p.iter().zip(&q).map(|(u, v)| (u - v).abs()).fold(0.0f32, f32::max);
            // Float sums in another order on the GPU: 1e-3 absolute on outputs of order 1.
            assert!(diff < 1e-3, "max abs diff {diff}");
        }
    }
}

/// The detector's read-back on wgpu keeps the anchors above the floor (gathered on the device)
/// with the values the CPU gives for them.
#[test]
fn thresholded_readback_on_wgpu_matches_the_cpu() {
    let gpu = match DeviceChoice::Wgpu(None).open() {
        Ok(opened) => opened.device,
        Err(err) => {
            println!("SKIPPED: thresholded_readback_on_wgpu_matches_the_cpu: {err}");
            return;
        }
    };
    let cpu = Device::flex();
    let config = RetinaFaceConfig::preset("tiny").unwrap();
    let model = RetinaFace::new(&config, &cpu).valid();
    let on_cpu = Detector::new(model.clone(), cpu);
    let on_gpu = Detector::new(model.to_device(&gpu), gpu);
    let photo = RgbImage::from_fn(96, 64, |x, y| image::Rgb([(x * 5 % 256) as u8, (y * 7 % 256) as u8, 120]));
    let input = preprocess(&photo, InputSize::Original, &config.input);
    let all = on_cpu.forward(&[&input], f32::NEG_INFINITY).unwrap().remove(0);
    assert_eq!(all.anchors.len(), config.anchors.count(96, 64), "no floor: every anchor");
    let mut sorted = all.scores.clone();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() * 3 / 4];
    let (a, b) =
        (on_cpu.forward(&[&input], floor).unwrap().remove(0), on_gpu.forward(&[&input], floor).unwrap().remove(0));
    assert!(a.anchors.len() < all.anchors.len() / 2, "the floor keeps a quarter: {}", a.anchors.len());
    let score = |j: u32| all.scores[j as usize];
    for (x, y) in [(&a, &b), (&b, &a)] {
        for j in x.anchors.iter().filter(|j| !y.anchors.contains(j)) {
            assert!((score(*j) - floor).abs() < 1e-3, "anchor {j} ({}) is kept on one device only", score(*j));
        }
    }
    for (row, j) in a.anchors.iter().enumerate() {
        let Some(other) = b.anchors.iter().position(|k| k == j) else { continue };
        let close = |p: &[f32], q: &[f32]| p.iter().zip(q).all(|(u, v)| (u - v).abs() < 1e-3);
        assert!((a.scores[row] - b.scores[other]).abs() < 1e-3);
        for (p, q) in a.boxes.iter().zip(&b.boxes) {
            assert!(close(&p[4 * row..4 * row + 4], &q[4 * other..4 * other + 4]), "boxes of anchor {j}");
        }
        let (p, q) = (a.landmarks.as_ref().unwrap(), b.landmarks.as_ref().unwrap());
        assert!(close(&p[10 * row..10 * row + 10], &q[10 * other..10 * other + 10]), "landmarks of anchor {j}");
    }
}
