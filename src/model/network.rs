//! The whole network: backbone → FPN → context modules → one or two head stages.

use burn::prelude::*;

use super::backbone::Backbone;
use super::config::{FpnLevels, RetinaFaceConfig};
use super::context::Ssh;
use super::fpn::Fpn;
use super::heads::{HeadOutput, HeadStage};

#[derive(Module, Debug)]
pub struct RetinaFace {
    pub backbone: Backbone,
    pub fpn: Fpn,
    pub context: Option<Vec<Ssh>>,
    /// The first stage regresses from the anchors; the cascade's second from the first's boxes.
    pub heads: Vec<HeadStage>,
    #[module(skip)]
    pub config: RetinaFaceConfig,
}

/// What the network returns: one [`HeadOutput`] per stage, first stage first.
#[derive(Clone, Debug)]
pub struct RetinaFaceOutput {
    pub stages: Vec<HeadOutput>,
}

impl RetinaFaceOutput {
    /// The stage the detector reads: the last one.
    pub fn last(&self) -> &HeadOutput {
        self.stages.last().unwrap_or_else(|| unreachable!("a RetinaFace has at least one head stage"))
    }
}

impl RetinaFace {
    /// A freshly initialised network; `config` must be valid (presets and loaded files are checked).
    pub fn new(config: &RetinaFaceConfig, device: &Device) -> RetinaFace {
        let channels = config.fpn.channels;
        let levels = config.fpn.levels.count();
        let context = config.context.ssh.then(|| {
            (0..levels).map(|_| Ssh::new(channels, config.context.deformable, config.activation, device)).collect()
        });
        let heads = (0..config.stages())
            .map(|_| HeadStage::new(channels, levels, config.anchors_per_location(), config.landmarks, device))
            .collect();
        RetinaFace {
            backbone: Backbone::new(&config.backbone, config.activation, device),
            fpn: Fpn::new(&config.fpn, Backbone::channels(&config.backbone), config.activation, device),
            context,
            heads,
            config: config.clone(),
        }
    }

    /// `x`: `[N, 3, H, W]` normalised as `config.input` says; any H, W (feature maps are
    /// `ceil(size / stride)`, matching the anchors).
    pub fn forward(&self, x: Tensor<4>) -> RetinaFaceOutput {
        let [c2, c3, c4, c5] = self.backbone.forward(x);
        let used: Vec<Tensor<4>> = match self.config.fpn.levels {
            FpnLevels::P2ToP6 => [c2, c3, c4, c5].into_iter().flatten().collect(),
            FpnLevels::P3ToP5 => [c3, c4, c5].into_iter().flatten().collect(),
        };
        let mut features = self.fpn.forward(used);
        if let Some(context) = &self.context {
            features = context.iter().zip(features).map(|(ssh, p)| ssh.forward(p)).collect();
        }
        RetinaFaceOutput { stages: self.heads.iter().map(|h| h.forward(&features)).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{load_model, save_model};

    fn input(width: usize, height: usize, device: &Device) -> Tensor<4> {
        let data: Vec<f32> = (0..3 * width * height).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
        Tensor::<4>::from_data(TensorData::new(data, [1, 3, height, width]), device)
    }

    fn to_vec(t: Tensor<3>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn tiny_model_outputs_one_row_per_anchor_in_every_stage() {
        let device = Device::flex();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let model = RetinaFace::new(&config, &device).valid();
        // 100×60 is not a multiple of 32: feature maps are ceil(size / stride), like the anchors.
        let out = model.forward(input(100, 60, &device));
        let anchors = config.anchors.count(100, 60);
        assert_eq!(out.stages.len(), 2, "tiny has the cascade");
        for stage in &out.stages {
            assert_eq!(stage.logits.dims(), [1, anchors, 2]);
            assert_eq!(stage.boxes.dims(), [1, anchors, 4]);
            assert_eq!(stage.landmarks.as_ref().unwrap().dims(), [1, anchors, 10]);
        }
        let (first, second) = (to_vec(out.stages[0].boxes.clone()), to_vec(out.stages[1].boxes.clone()));
        assert_ne!(first, second, "the cascade stage has its own weights");
    }

    #[test]
    fn model_without_landmark_head_has_no_landmark_output() {
        let device = Device::flex();
        let mut config = RetinaFaceConfig::preset("tiny").unwrap();
        config.landmarks = false;
        config.cascade = false;
        let out = RetinaFace::new(&config, &device).valid().forward(input(64, 64, &device));
        assert_eq!(out.stages.len(), 1);
        assert!(out.stages[0].landmarks.is_none());
    }

    #[test]
    fn saved_model_loads_with_its_config_and_gives_identical_outputs() {
        let device = Device::flex();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let model = RetinaFace::new(&config, &device).valid();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.bpk");
        save_model(&model, &path).unwrap();
        let loaded = load_model(&path, &device).unwrap().valid();
        assert_eq!(loaded.config, config);
        let (a, b) = (model.forward(input(64, 48, &device)), loaded.forward(input(64, 48, &device)));
        for (x, y) in a.stages.iter().zip(&b.stages) {
            assert_eq!(to_vec(x.boxes.clone()), to_vec(y.boxes.clone()));
            assert_eq!(to_vec(x.logits.clone()), to_vec(y.logits.clone()));
        }
    }

    #[test]
    fn report_presets_run_at_640_and_give_102300_anchors() {
        let device = Device::flex();
        for name in ["seed-baseline", "seed-context", "seed-context-landmarks", "seed-full", "paper-r50"] {
            let config = RetinaFaceConfig::preset(name).unwrap();
            let out = RetinaFace::new(&config, &device).valid().forward(input(640, 640, &device));
            assert_eq!(out.stages.len(), config.stages(), "{name}");
            assert_eq!(out.last().logits.dims(), [1, 102_300, 2], "{name}");
            assert_eq!(out.last().landmarks.is_some(), config.landmarks, "{name}");
        }
    }
}
