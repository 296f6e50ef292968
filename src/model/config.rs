//! `RetinaFaceConfig`: everything that decides the network's shape and how its outputs are read.
//! It is saved inside every model file, so a model file can always say how it was built.

use serde::{Deserialize, Serialize};

use crate::geometry::{AnchorLevel, AnchorSpec, Variance};

/// The whole model description; presets reproduce the report's variants and the published checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetinaFaceConfig {
    /// The preset this config started from (informative: the fields below are what counts).
    pub preset: String,
    pub backbone: BackboneConfig,
    pub fpn: FpnConfig,
    pub context: ContextConfig,
    pub activation: Activation,
    /// Anchors per FPN level, finest first; `sizes.len()` is the number of anchors per location.
    pub anchors: AnchorSpec,
    pub variance: Variance,
    /// Landmark head on/off (the report's "Context Module without Landmark" has none).
    pub landmarks: bool,
    /// A second head stage that regresses relative to the first stage's decoded boxes (report,
    /// "Cascaded Structure"); the detector reads the last stage.
    pub cascade: bool,
    pub input: InputNormalization,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackboneConfig {
    /// torchvision-style ResNet; `width` scales every stage's channels (1.0 = the real network,
    /// smaller for tiny test models, which then cannot load ImageNet weights).
    ResNet { depth: ResNetDepth, width: f32 },
    /// The MobileNetV1 ×0.25 of Pytorch_Retinaface / Face-Detector-1MB.
    MobileNet025,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResNetDepth {
    #[serde(rename = "18")]
    R18,
    #[serde(rename = "34")]
    R34,
    #[serde(rename = "50")]
    R50,
}

impl ResNetDepth {
    /// Residual blocks per stage (layer1..layer4).
    pub fn blocks(self) -> [usize; 4] {
        match self {
            ResNetDepth::R18 => [2, 2, 2, 2],
            ResNetDepth::R34 => [3, 4, 6, 3],
            ResNetDepth::R50 => [3, 4, 6, 3],
        }
    }

    pub fn bottleneck(self) -> bool {
        self == ResNetDepth::R50
    }
}

/// Which backbone outputs feed the pyramid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FpnLevels {
    /// C2–C5 plus C6, a stride-2 3×3 ConvBn on C5 (the report, §3.5).
    P2ToP6,
    /// C3–C5 (Pytorch_Retinaface).
    P3ToP5,
}

impl FpnLevels {
    pub fn count(self) -> usize {
        match self {
            FpnLevels::P2ToP6 => 5,
            FpnLevels::P3ToP5 => 3,
        }
    }

    /// Strides of the levels, finest first.
    pub fn strides(self) -> &'static [u32] {
        match self {
            FpnLevels::P2ToP6 => &[4, 8, 16, 32, 64],
            FpnLevels::P3ToP5 => &[8, 16, 32],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FpnConfig {
    pub levels: FpnLevels,
    pub channels: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextConfig {
    /// SSH context modules on every level (the report: with a BN after every conv).
    pub ssh: bool,
    /// Deformable 3×3 convolutions inside SSH (the paper; what the report could not do).
    pub deformable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activation {
    Relu,
    LeakyRelu { slope: f32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// `value = (pixel · scale − mean) / std`, per channel in `order`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputNormalization {
    pub order: ChannelOrder,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl InputNormalization {
    /// Pytorch_Retinaface checkpoints: BGR, mean (104, 117, 123) subtracted, no scaling.
    pub const PYTORCH_RETINAFACE: InputNormalization =
        InputNormalization { order: ChannelOrder::Bgr, scale: 1.0, mean: [104.0, 117.0, 123.0], std: [1.0; 3] };
    /// torchvision ImageNet backbones: RGB / 255, ImageNet mean and std.
    pub const IMAGENET: InputNormalization = InputNormalization {
        order: ChannelOrder::Rgb,
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

/// Why a config cannot build a network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown preset {0:?}; presets: {list}", list = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("the anchors have {anchors} levels but the FPN has {fpn}")]
    LevelCount { anchors: usize, fpn: usize },
    #[error("anchor level {level} has stride {anchors} but FPN level {level} has stride {fpn}")]
    StrideMismatch { level: usize, anchors: u32, fpn: u32 },
    #[error(
        "every FPN level needs the same number of anchors per location (level {level} has {found}, level 0 has {expected})"
    )]
    AnchorsPerLocation { level: usize, expected: usize, found: usize },
    #[error("SSH splits its channels 2:1:1, so the FPN channels ({0}) must be a multiple of 4")]
    SshChannels(usize),
    #[error("MobileNet0.25 has no stride-4 output (C2): it only feeds P3–P5")]
    MobileNetLevels,
    #[error("{field} must be positive, got {value}")]
    NotPositive { field: &'static str, value: f32 },
}

pub const PRESETS: [&str; 9] = [
    "seed-baseline",
    "seed-context",
    "seed-context-landmarks",
    "seed-full",
    "paper-r50",
    "pytorch-retinaface-r50",
    "pytorch-retinaface-mnet",
    "fd1mb-mnet",
    "tiny",
];

/// One line per preset, for the pickers that offer them: what the network is and what it is for.
pub fn preset_summary(name: &str) -> Option<&'static str> {
    Some(match name {
        "seed-baseline" => "ResNet-50, FPN P2–P6, no context module: the report's baseline",
        "seed-context" => "ResNet-50 + SSH context, no landmark head: the report's context ablation",
        "seed-context-landmarks" => "ResNet-50 + context + five-point landmarks, one head stage",
        "seed-full" => "the report's RetinaFace: ResNet-50, context, landmarks, two-stage cascade (a GPU to train)",
        "paper-r50" => "seed-full with deformable context convolutions, as the paper describes it",
        "pytorch-retinaface-r50" => "Pytorch_Retinaface's ResNet-50 (P3–P5): loads its Resnet50_Final.pth",
        "pytorch-retinaface-mnet" => {
            "Pytorch_Retinaface's MobileNet0.25 (leaky ReLU): loads its mobilenet0.25_Final.pth"
        }
        "fd1mb-mnet" => "Face-Detector-1MB's MobileNet0.25 (ReLU, its anchors): fast on a CPU",
        "tiny" => "a small ResNet-18×0.25 with every head: trains in minutes on a CPU, for trying things",
        _ => return None,
    })
}

impl RetinaFaceConfig {
    /// The presets of DESIGN.md.
    pub fn preset(name: &str) -> Result<RetinaFaceConfig, ConfigError> {
        let r50 = BackboneConfig::ResNet { depth: ResNetDepth::R50, width: 1.0 };
        let seed = |ssh: bool, landmarks: bool, cascade: bool, deformable: bool| RetinaFaceConfig {
            preset: name.to_string(),
            backbone: r50,
            fpn: FpnConfig { levels: FpnLevels::P2ToP6, channels: 256 },
            context: ContextConfig { ssh, deformable },
            activation: Activation::Relu,
            anchors: AnchorSpec::report_table1(),
            // The report's formulas are the unit variance; from scratch it halves the AP of
            // networks that otherwise learn (README, "Why the report's presets learn now"), so the
            // presets use Pytorch_Retinaface's and `train --variance 1/1` restores the report's.
            variance: Variance::PYTORCH_RETINAFACE,
            landmarks,
            cascade,
            input: InputNormalization::IMAGENET,
        };
        let pytorch = |backbone, channels, activation, anchors| RetinaFaceConfig {
            preset: name.to_string(),
            backbone,
            fpn: FpnConfig { levels: FpnLevels::P3ToP5, channels },
            context: ContextConfig { ssh: true, deformable: false },
            activation,
            anchors,
            variance: Variance::PYTORCH_RETINAFACE,
            landmarks: true,
            cascade: false,
            input: InputNormalization::PYTORCH_RETINAFACE,
        };
        let config = match name {
            "seed-baseline" => seed(false, true, false, false),
            "seed-context" => seed(true, false, false, false),
            "seed-context-landmarks" => seed(true, true, false, false),
            "seed-full" => seed(true, true, true, false),
            "paper-r50" => seed(true, true, true, true),
            "pytorch-retinaface-r50" => pytorch(r50, 256, Activation::Relu, AnchorSpec::pytorch_retinaface()),
            "pytorch-retinaface-mnet" => pytorch(
                BackboneConfig::MobileNet025,
                64,
                Activation::LeakyRelu { slope: 0.1 },
                AnchorSpec::pytorch_retinaface(),
            ),
            "fd1mb-mnet" => pytorch(BackboneConfig::MobileNet025, 64, Activation::Relu, AnchorSpec::fd1mb()),
            "tiny" => RetinaFaceConfig {
                preset: name.to_string(),
                backbone: BackboneConfig::ResNet { depth: ResNetDepth::R18, width: 0.25 },
                fpn: FpnConfig { levels: FpnLevels::P3ToP5, channels: 32 },
                context: ContextConfig { ssh: true, deformable: false },
                activation: Activation::Relu,
                anchors: AnchorSpec::fd1mb(),
                variance: Variance::PYTORCH_RETINAFACE,
                landmarks: true,
                cascade: true,
                input: InputNormalization::IMAGENET,
            },
            _ => return Err(ConfigError::UnknownPreset(name.to_string())),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that the parts fit together (also run on configs read from model files).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let strides = self.fpn.levels.strides();
        let levels: &[AnchorLevel] = self.anchors.levels();
        if levels.len() != strides.len() {
            return Err(ConfigError::LevelCount { anchors: levels.len(), fpn: strides.len() });
        }
        let expected = levels[0].sizes().len();
        for (level, (anchor, &fpn)) in levels.iter().zip(strides).enumerate() {
            if anchor.stride() != fpn {
                return Err(ConfigError::StrideMismatch { level, anchors: anchor.stride(), fpn });
            }
            if anchor.sizes().len() != expected {
                return Err(ConfigError::AnchorsPerLocation { level, expected, found: anchor.sizes().len() });
            }
        }
        if self.backbone == BackboneConfig::MobileNet025 && self.fpn.levels != FpnLevels::P3ToP5 {
            return Err(ConfigError::MobileNetLevels);
        }
        if self.context.ssh && !self.fpn.channels.is_multiple_of(4) {
            return Err(ConfigError::SshChannels(self.fpn.channels));
        }
        if let BackboneConfig::ResNet { width, .. } = self.backbone
            && (width <= 0.0 || !width.is_finite())
        {
            return Err(ConfigError::NotPositive { field: "backbone width", value: width });
        }
        for (field, value) in [("variance center", self.variance.center), ("variance size", self.variance.size)] {
            if value <= 0.0 || !value.is_finite() {
                return Err(ConfigError::NotPositive { field, value });
            }
        }
        Ok(())
    }

    pub fn anchors_per_location(&self) -> usize {
        self.anchors.levels()[0].sizes().len()
    }

    /// The same network at most `width` wide (ResNet stage widths and FPN channels scaled, the
    /// channels kept a multiple of 4 for SSH): for CPU benchmarks and tests of a preset's learning
    /// that would take hours at full width. MobileNet and networks already that narrow are kept.
    pub fn shrunk(&self, width: f32) -> RetinaFaceConfig {
        let mut config = self.clone();
        if let BackboneConfig::ResNet { depth, width: current } = self.backbone
            && width < current
        {
            config.backbone = BackboneConfig::ResNet { depth, width };
            let channels = (self.fpn.channels as f32 * width / current / 4.0).round() as usize * 4;
            config.fpn.channels = channels.max(16);
        }
        config
    }

    /// Head stages: 2 with the cascade, else 1.
    pub fn stages(&self) -> usize {
        if self.cascade { 2 } else { 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_round_trips_through_json() {
        for name in PRESETS {
            let config = RetinaFaceConfig::preset(name).unwrap();
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(serde_json::from_str::<RetinaFaceConfig>(&json).unwrap(), config, "{name}");
        }
    }

    #[test]
    fn every_preset_has_a_summary_and_nothing_else_does() {
        for name in PRESETS {
            assert!(preset_summary(name).is_some_and(|s| !s.is_empty()), "{name}");
        }
        assert_eq!(preset_summary("resnet-1000"), None);
    }

    #[test]
    fn report_presets_give_102300_anchors_at_640() {
        for name in ["seed-baseline", "seed-context", "seed-context-landmarks", "seed-full", "paper-r50"] {
            let config = RetinaFaceConfig::preset(name).unwrap();
            assert_eq!(config.anchors.count(640, 640), 102_300, "{name}");
            assert_eq!(config.anchors_per_location(), 3);
        }
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let err = RetinaFaceConfig::preset("resnet").unwrap_err().to_string();
        assert!(err.contains("fd1mb-mnet") && err.contains("seed-full"), "{err}");
    }

    #[test]
    fn mismatched_anchor_levels_are_rejected() {
        let mut config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
        config.fpn.levels = FpnLevels::P2ToP6;
        assert_eq!(config.validate(), Err(ConfigError::LevelCount { anchors: 3, fpn: 5 }));
    }
}
