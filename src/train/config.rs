//! A training run's settings: the one place their defaults live. The CLI's arguments, the Train
//! panel's form, the ablation study and the tests all start from [`TrainConfig::default`], and
//! [`TrainConfig::validate`] checks every name and range before a trainer thread starts.

use std::path::PathBuf;

use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::error::TrainError;
use super::schedule::{LrSchedule, sgd};
use super::step::{LOSS_SETUPS, LossSetup};
use crate::dataset::augment::AugmentConfig;
use crate::geometry::Variance;
use crate::model::{DeviceChoice, DeviceSet, RetinaFaceConfig};

/// Everything a run needs; saved as `<out>/config.json`. Fields missing from a saved file take
/// the defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// The dataset folder: its train split is trained on, its val split validated on.
    pub data: PathBuf,
    pub preset: String,
    /// Train the preset's network narrowed to this ResNet width (`RetinaFaceConfig::shrunk`): a
    /// CPU-sized trial of a ResNet50 preset. `None`: the preset as it is.
    pub width: Option<f32>,
    /// The run folder: config, events, checkpoints, the final model.
    pub out: PathBuf,
    pub epochs: u32,
    pub batch: usize,
    /// Side of the square training input in pixels: a multiple of the network's largest stride.
    pub image_size: u32,
    /// The schedule's shape by name (`SCHEDULES`), stretched to `epochs`.
    pub lr_schedule: String,
    /// One device, or several that train data-parallel (`wgpu:0,wgpu:1`); default `auto` (the
    /// best GPU found, else the CPU). A saved config without it trains on `auto`.
    #[serde(with = "device_text")]
    pub device: DeviceSet,
    /// torchvision ImageNet ResNet weights for the backbone.
    pub backbone_weights: Option<PathBuf>,
    /// Stop after this many steps in total (for quick runs); the checkpoint is written.
    pub max_steps: Option<u64>,
    /// The anchor matching and loss setup by name (`LOSS_SETUPS`); `None`: the default,
    /// Pytorch_Retinaface's (`LossSetup::default`).
    pub loss: Option<String>,
    /// The box and landmark codec's variance instead of the preset's (saved in the model file, so
    /// detection decodes with it): `(1, 1)` is the report's own formulas.
    pub variance: Option<Variance>,
    /// Validation AP every this many epochs (0: never).
    pub val_every: u32,
    /// Fixes the initial weights, the data order and the augmentation.
    pub seed: u64,
    /// Threads decoding and augmenting batches ahead of the training step (default: the
    /// machine's cores but one, at least one; the batches do not depend on it).
    pub workers: usize,
    pub optimizer: OptimizerConfig,
    pub augment: AugmentConfig,
}

/// The machine's cores but one (the training step's), at least one.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1)
}

impl Default for TrainConfig {
    /// The report's run (§4.1): the full seed network at 640², batch 8, 60 epochs of its schedule,
    /// validated every epoch, on the best device found (`auto`).
    fn default() -> Self {
        TrainConfig {
            data: PathBuf::new(),
            preset: "seed-full".into(),
            width: None,
            out: PathBuf::from("runs/run1"),
            epochs: 60,
            batch: 8,
            image_size: 640,
            lr_schedule: "report".into(),
            device: DeviceSet::default(),
            backbone_weights: None,
            max_steps: None,
            loss: None,
            variance: None,
            val_every: 1,
            seed: 0,
            workers: default_workers(),
            optimizer: OptimizerConfig::default(),
            augment: AugmentConfig::default(),
        }
    }
}

/// SGD's settings (the learning rate comes from the schedule).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimizerConfig {
    pub momentum: f64,
    pub weight_decay: f32,
}

impl Default for OptimizerConfig {
    /// Momentum 0.9, weight decay 5e-4: the paper, the report and Pytorch_Retinaface.
    fn default() -> Self {
        OptimizerConfig { momentum: 0.9, weight_decay: 5e-4 }
    }
}

impl OptimizerConfig {
    pub fn build(&self) -> ModuleOptimizer {
        sgd(self.momentum, self.weight_decay)
    }
}

/// What a valid config names, looked up once.
pub(crate) struct Resolved {
    pub model: RetinaFaceConfig,
    pub schedule: LrSchedule,
    pub setup: LossSetup,
}

/// The smallest training input the networks take.
pub const MIN_IMAGE_SIZE: u32 = 32;

impl TrainConfig {
    /// A trial run of the `tiny` network: 64², batch 2, 50 epochs of the paper's schedule, no
    /// validation, seed 1, on the CPU. A second or so per step there: for a first look at the
    /// trainer, and the one set-up of the tests, the frame benchmark and the screenshots (pinned
    /// to the CPU so they run the same on a machine with a GPU).
    pub fn trial(data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> TrainConfig {
        TrainConfig {
            data: data.into(),
            preset: "tiny".into(),
            out: out.into(),
            epochs: 50,
            batch: 2,
            image_size: 64,
            lr_schedule: "paper".into(),
            val_every: 0,
            seed: 1,
            device: DeviceSet::single(DeviceChoice::Cpu),
            ..TrainConfig::default()
        }
    }

    /// Checks every name (preset, schedule, loss setup, devices) and range, so a bad config is
    /// an error before any thread starts or any file is written.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.resolve().map(|_| ())
    }

    pub(crate) fn resolve(&self) -> Result<Resolved, TrainError> {
        let invalid = |field: &'static str, message: String| Err(TrainError::Invalid { field, message });
        if self.data.as_os_str().is_empty() {
            return invalid("data", "choose the dataset folder to train on".into());
        }
        if self.out.as_os_str().is_empty() {
            return invalid("out", "choose the run folder".into());
        }
        if self.epochs == 0 {
            return invalid("epochs", "must be at least 1".into());
        }
        if self.batch == 0 {
            return invalid("batch", "must be at least 1".into());
        }
        if self.workers == 0 {
            return invalid("workers", "must be at least 1".into());
        }
        if self.max_steps == Some(0) {
            return invalid("max_steps", "must be at least 1 (leave it out for no limit)".into());
        }
        if self.device.devices().is_empty() {
            return invalid("device", "no training device given".into());
        }
        let momentum = self.optimizer.momentum;
        if !(0.0..1.0).contains(&momentum) {
            return invalid("optimizer.momentum", format!("must be in [0, 1), got {momentum}"));
        }
        let decay = self.optimizer.weight_decay;
        if !(decay.is_finite() && decay >= 0.0) {
            return invalid("optimizer.weight_decay", format!("must be a finite number ≥ 0, got {decay}"));
        }
        let model = RetinaFaceConfig::preset(&self.preset)?;
        let model = match self.width {
            Some(width) if !(width > 0.0 && width <= 1.0) => {
                return invalid("width", format!("the network width must be in (0, 1], got {width}"));
            }
            Some(width) => model.shrunk(width),
            None => model,
        };
        if let Some(v) = self.variance
            && !(v.center.is_finite() && v.center > 0.0 && v.size.is_finite() && v.size > 0.0)
        {
            return invalid("variance", format!("both must be positive, got {}/{}", v.center, v.size));
        }
        let model = RetinaFaceConfig { variance: self.variance.unwrap_or(model.variance), ..model };
        model.validate()?;
        let stride = model.fpn.levels.strides().iter().copied().max().unwrap_or(1);
        if self.image_size < MIN_IMAGE_SIZE || !self.image_size.is_multiple_of(stride) {
            return invalid(
                "image_size",
                format!(
                    "must be at least {MIN_IMAGE_SIZE} and a multiple of {stride} ({}'s largest stride), got {}",
                    self.preset, self.image_size
                ),
            );
        }
        let schedule = LrSchedule::preset(&self.lr_schedule)?.rescaled(self.epochs);
        let setup = match &self.loss {
            Some(name) => LossSetup::preset(name).ok_or_else(|| TrainError::Invalid {
                field: "loss",
                message: format!("unknown loss setup {name:?}; setups: {}", LOSS_SETUPS.join(", ")),
            })?,
            None => LossSetup::default(),
        };
        Ok(Resolved { model, schedule, setup })
    }
}

mod device_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::DeviceSet;

    pub fn serialize<S: Serializer>(device: &DeviceSet, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&device.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceSet, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> TrainConfig {
        TrainConfig { data: "data".into(), ..TrainConfig::default() }
    }

    #[test]
    fn the_defaults_are_the_reports_run_and_valid() {
        let config = valid();
        assert_eq!((config.epochs, config.batch, config.image_size), (60, 8, 640));
        assert_eq!(config.optimizer, OptimizerConfig { momentum: 0.9, weight_decay: 5e-4 });
        config.validate().unwrap();
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), config);
        let partial: TrainConfig = serde_json::from_str(r#"{"data": "d", "preset": "tiny"}"#).unwrap();
        assert_eq!(partial, TrainConfig { data: "d".into(), preset: "tiny".into(), ..TrainConfig::default() });
        assert_eq!(partial.device.to_string(), "auto", "a config without a device trains on the best one found");
        let on_cpu: TrainConfig = serde_json::from_str(r#"{"data": "d", "device": "cpu"}"#).unwrap();
        assert_eq!(on_cpu.device.devices(), [DeviceChoice::Cpu], "a saved cpu run stays on the CPU");
        assert!(serde_json::from_str::<TrainConfig>(r#"{"device": "tpu"}"#).unwrap_err().to_string().contains("dx12"));
        assert_eq!(TrainConfig::trial("d", "o").device.to_string(), "cpu");
    }

    #[test]
    fn every_bad_name_and_range_is_named_in_its_error() {
        let cases: [(TrainConfig, &str); 12] = [
            (TrainConfig { data: PathBuf::new(), ..valid() }, "data"),
            (TrainConfig { preset: "resnet9000".into(), ..valid() }, "resnet9000"),
            (TrainConfig { lr_schedule: "cosine".into(), ..valid() }, "cosine"),
            (TrainConfig { loss: Some("focal".into()), ..valid() }, "\"focal\""),
            (TrainConfig { batch: 0, ..valid() }, "batch"),
            (TrainConfig { epochs: 0, ..valid() }, "epochs"),
            (TrainConfig { image_size: 16, ..valid() }, "image_size"),
            (TrainConfig { image_size: 160, ..valid() }, "multiple of 64"),
            (TrainConfig { width: Some(1.5), ..valid() }, "width"),
            (TrainConfig { max_steps: Some(0), ..valid() }, "max_steps"),
            (
                TrainConfig { optimizer: OptimizerConfig { momentum: 1.0, ..OptimizerConfig::default() }, ..valid() },
                "momentum",
            ),
            (TrainConfig { variance: Some(Variance { center: 0.0, size: 0.2 }), ..valid() }, "variance"),
        ];
        for (config, needle) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(needle), "{needle}: {message}");
        }
        let tiny = TrainConfig { preset: "tiny".into(), image_size: 96, ..valid() };
        tiny.validate().expect("96 is a multiple of tiny's largest stride, 32");
    }
}
