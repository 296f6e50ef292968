//! The same network on burn's wgpu backend (the native API's best adapter; lavapipe counts) and on
//! the CPU backend gives the same outputs. Without a Vulkan adapter the test says so and passes:
//! wgpu's OpenGL fallback is refused by `DeviceChoice::open` with a clear error instead of crashing
//! later.

use burn::prelude::*;
use facestudio::model::{DeviceChoice, RetinaFace, RetinaFaceConfig};

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
