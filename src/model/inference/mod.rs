//! The network as detection runs it: a copy of a trained [`RetinaFace`] simplified for
//! inference, while training and saved files keep the real layers.
//!
//! Every BatchNorm is folded into its convolution, sibling convolutions that read one input are
//! stacked (the context module's 3×3 and first 5×5 branch; all heads of all stages of a level),
//! and bias, residual and activation are applied together. On the flex CPU device the network
//! runs channels-last on the kernels of [`cpu`]; elsewhere (GPUs, and deformable context
//! modules) on burn's operations with the same folded layers.

mod buffers;
mod burn_engine;
mod cpu;
mod folded;
mod graph;
mod kernels;
mod simd;

use burn::prelude::*;

use self::burn_engine::{BurnEngine, BurnLayer};
use self::cpu::CpuEngine;
use self::graph::Plan;
use self::kernels::CpuLayer;
use super::{RetinaFace, RetinaFaceOutput};

/// Which implementation runs an [`InferenceNet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InferenceEngine {
    /// facestudio's channels-last CPU kernels.
    CpuKernels,
    /// burn's operations on the model's device.
    Burn,
}

enum Net {
    Cpu(Plan<CpuLayer>, CpuEngine),
    Burn(Plan<BurnLayer>, BurnEngine),
}

/// A [`RetinaFace`] folded for inference on one device; its outputs are the model's own.
pub struct InferenceNet {
    net: Net,
}

impl InferenceNet {
    /// Folds `model` (its BatchNorms in inference mode) for `device`: the CPU kernels on the
    /// flex device where they cover every layer, burn's operations otherwise.
    pub fn new(model: &RetinaFace, device: &Device) -> InferenceNet {
        let plan = Plan::fold(model);
        if *device == Device::flex()
            && let Some(net) = InferenceNet::prepare(&plan, device, InferenceEngine::CpuKernels)
        {
            return net;
        }
        InferenceNet::prepare(&plan, device, InferenceEngine::Burn)
            .unwrap_or_else(|| unreachable!("burn runs every layer"))
    }

    /// Folds `model` for `engine` (the CPU kernels need the flex device); `None` where the engine
    /// cannot run one of its layers. Benchmarks compare the engines with it.
    pub fn with_engine(model: &RetinaFace, device: &Device, engine: InferenceEngine) -> Option<InferenceNet> {
        InferenceNet::prepare(&Plan::fold(model), device, engine)
    }

    fn prepare(plan: &Plan<folded::FoldedLayer>, device: &Device, engine: InferenceEngine) -> Option<InferenceNet> {
        let net = match engine {
            InferenceEngine::CpuKernels if *device == Device::flex() => {
                let engine = CpuEngine::new(device);
                Net::Cpu(plan.prepare(&engine)?, engine)
            }
            InferenceEngine::CpuKernels => return None,
            InferenceEngine::Burn => {
                let engine = BurnEngine::new(device);
                Net::Burn(plan.prepare(&engine)?, engine)
            }
        };
        Some(InferenceNet { net })
    }

    /// The same outputs as [`RetinaFace::forward`] (to float rounding) for `x` `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> RetinaFaceOutput {
        let [_, c, h, w] = x.dims();
        let data = x.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_else(|e| unreachable!("{e:?}"));
        let images: Vec<&[f32]> = data.chunks((c * h * w).max(1)).collect();
        self.forward_images(&images, h, w)
    }

    /// The network on images of one `height`×`width`, each `[3, H, W]` as preprocessing gives
    /// them: the CPU kernels read them where they lie, without a tensor in between.
    pub fn forward_images(&self, images: &[&[f32]], height: usize, width: usize) -> RetinaFaceOutput {
        match &self.net {
            Net::Cpu(plan, engine) => plan.forward(engine, images, height, width),
            Net::Burn(plan, engine) => plan.forward(engine, images, height, width),
        }
    }

    pub fn engine(&self) -> InferenceEngine {
        match self.net {
            Net::Cpu(..) => InferenceEngine::CpuKernels,
            Net::Burn(..) => InferenceEngine::Burn,
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::model::RetinaFaceConfig;

    /// Random weights with batch norms that matter: γ, β random and the running statistics of
    /// two random batches, so folding them is tested against values a trained model has.
    fn model(preset: &str, width: usize, height: usize) -> RetinaFace {
        let config = RetinaFaceConfig::preset(preset).unwrap();
        let device = Device::flex().autodiff();
        device.seed(7);
        let mut model = RetinaFace::new(&config, &device);
        for bn in model.all_batch_norms() {
            let [c] = bn.gamma.dims();
            bn.gamma = burn::module::Param::from_tensor(Tensor::random([c], Distribution::Uniform(0.6, 1.4), &device));
            bn.beta = burn::module::Param::from_tensor(Tensor::random([c], Distribution::Uniform(-0.3, 0.3), &device));
        }
        let batch = || Tensor::<4>::random([2, 3, height, width], Distribution::Uniform(-1.0, 1.0), &device);
        model.recompute_batch_norm([batch(), batch()]);
        model.valid()
    }

    /// `tolerance` is relative to the largest output value.
    fn assert_close(expected: &RetinaFaceOutput, got: &RetinaFaceOutput, tolerance: f32, what: &str) {
        assert_eq!(expected.stages.len(), got.stages.len(), "{what}");
        let host = |t: &Tensor<3>| t.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        for (s, (e, g)) in expected.stages.iter().zip(&got.stages).enumerate() {
            let mut pairs = vec![(host(&e.logits), host(&g.logits)), (host(&e.boxes), host(&g.boxes))];
            assert_eq!(e.landmarks.is_some(), g.landmarks.is_some(), "{what}");
            if let (Some(a), Some(b)) = (&e.landmarks, &g.landmarks) {
                pairs.push((host(a), host(b)));
            }
            for (a, b) in pairs {
                assert_eq!(a.len(), b.len(), "{what}");
                let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let diff = a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(diff <= tolerance * scale, "{what}, stage {s}: max difference {diff} (values up to {scale})");
            }
        }
    }

    fn input(n: usize, width: usize, height: usize) -> Tensor<4> {
        let device = Device::flex();
        device.seed(11);
        Tensor::random([n, 3, height, width], Distribution::Uniform(-1.0, 1.0), &device)
    }

    /// Folding reorders float rounding. The shallow networks stay within ~3e-5 of their largest
    /// output. Over ResNet-50's 53 folded layers (batch statistics of random data, some
    /// variances tiny, so some scales large) the difference is ~1e-2 absolute whatever the
    /// outputs' size: 3e-5 to 1.6e-4 of the largest output over twelve seeds, and 5.2e-4 once
    /// in CI, where tests running in parallel draw from burn's one generator and so get other
    /// weights than a lone run. A wrong fold is off by the order of the outputs themselves.
    /// The shared checkpoint is held to 1e-4 absolute in tests/detect_reference.rs.
    fn tolerance(preset: &str) -> f32 {
        if preset.contains("r50") || preset.starts_with("seed") { 2e-3 } else { 1e-4 }
    }

    #[test]
    fn both_engines_give_the_models_outputs_for_every_kind_of_network() {
        // ResNet-18 with cascade; MobileNet with ReLU and with leaky ReLU; ResNet-50 bottlenecks
        // with P2–P6 and C6; odd sizes (feature maps ceil(size / stride)) and a batch of two.
        for (preset, width, height, n) in [
            ("tiny", 100, 60, 2),
            ("fd1mb-mnet", 96, 72, 1),
            ("pytorch-retinaface-mnet", 70, 90, 1),
            ("seed-full", 96, 64, 1),
            ("pytorch-retinaface-r50", 64, 64, 1),
        ] {
            let model = model(preset, width, height);
            let x = input(n, width, height);
            let expected = model.forward(x.clone());
            for engine in [InferenceEngine::CpuKernels, InferenceEngine::Burn] {
                let net = InferenceNet::with_engine(&model, &Device::flex(), engine).unwrap();
                assert_close(&expected, &net.forward(x.clone()), tolerance(preset), &format!("{preset} on {engine:?}"));
            }
            assert_eq!(InferenceNet::new(&model, &Device::flex()).engine(), InferenceEngine::CpuKernels, "{preset}");
        }
    }

    #[test]
    fn deformable_context_runs_folded_on_burn() {
        let model = model("paper-r50", 64, 64);
        let net = InferenceNet::new(&model, &Device::flex());
        assert_eq!(net.engine(), InferenceEngine::Burn, "the CPU kernels have no deformable convolution");
        assert!(InferenceNet::with_engine(&model, &Device::flex(), InferenceEngine::CpuKernels).is_none());
        let x = input(1, 64, 64);
        assert_close(&model.forward(x.clone()), &net.forward(x), tolerance("paper-r50"), "paper-r50");
    }
}
