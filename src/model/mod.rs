//! The RetinaFace network in burn (report §3.5): configurable backbone, FPN, SSH context modules,
//! multi-task heads and the cascade; weight import from PyTorch checkpoints; native model files.

mod backbone;
mod config;
mod context;
mod cpu_train;
mod device;
pub mod export;
mod file;
mod fpn;
mod heads;
mod import;
mod inference;
mod layers;
mod network;
mod norm_stats;

pub use config::{
    Activation, BackboneConfig, ChannelOrder, ConfigError, ContextConfig, FpnConfig, FpnLevels, InputNormalization,
    PRESETS, ResNetDepth, RetinaFaceConfig, preset_summary,
};
pub use device::{
    AdapterInfo, AdapterKind, DEVICE_NAMES, DeviceChoice, DeviceError, DeviceSet, GpuApi, OpenedDevice, adapters, best,
    cpu_label,
};
pub use file::{ModelFileError, load_model, load_weights, save_model};
pub use heads::HeadOutput;
pub use import::{ImportError, import_checkpoint, list_every_name, load_backbone};
pub use inference::{InferenceEngine, InferenceNet};
pub use network::{RetinaFace, RetinaFaceOutput};
