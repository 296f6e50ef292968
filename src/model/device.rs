//! `--device cpu|wgpu|cuda[:N]`: which burn device runs the network.

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;

/// A device as the user names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// burn's flex CPU backend.
    #[default]
    Cpu,
    /// The GPU through wgpu, on Vulkan only (on OpenGL training cannot run, see STACK-NOTES).
    Wgpu(Option<usize>),
    /// CUDA (only in builds with the `cuda` feature).
    Cuda(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device {0:?}: expected cpu, wgpu, wgpu:N, cuda or cuda:N")]
    Unknown(String),
    #[error(
        "no Vulkan adapter for wgpu ({0}). Install a Vulkan driver (on Debian/Ubuntu: `apt-get install libvulkan1 mesa-vulkan-drivers`); wgpu's OpenGL fallback cannot train"
    )]
    NoVulkan(String),
    #[error(
        "this build has no CUDA support: rebuild with `cargo build --release --features cuda` (needs network access once)"
    )]
    NoCuda,
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<DeviceChoice, DeviceError> {
        let unknown = || DeviceError::Unknown(text.to_string());
        let (name, index) = match text.split_once(':') {
            Some((name, index)) => (name, Some(index.parse::<usize>().map_err(|_| unknown())?)),
            None => (text, None),
        };
        match name {
            "cpu" if index.is_none() => Ok(DeviceChoice::Cpu),
            "wgpu" => Ok(DeviceChoice::Wgpu(index)),
            "cuda" => Ok(DeviceChoice::Cuda(index.unwrap_or(0))),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Wgpu(None) => write!(f, "wgpu"),
            DeviceChoice::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// The devices a training run uses, written `wgpu:0,wgpu:1`: one device, or several that train
/// data-parallel (the first is the main device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSet(Vec<DeviceChoice>);

impl DeviceSet {
    pub fn single(device: DeviceChoice) -> DeviceSet {
        DeviceSet(vec![device])
    }

    pub fn devices(&self) -> &[DeviceChoice] {
        &self.0
    }
}

impl Default for DeviceSet {
    fn default() -> Self {
        DeviceSet::single(DeviceChoice::Cpu)
    }
}

impl FromStr for DeviceSet {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<DeviceSet, DeviceError> {
        let devices = text.split(',').map(|d| d.trim().parse()).collect::<Result<Vec<DeviceChoice>, _>>()?;
        Ok(DeviceSet(devices))
    }
}

impl fmt::Display for DeviceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", names.join(","))
    }
}

impl DeviceChoice {
    /// Opens the device. wgpu is initialised on Vulkan explicitly, so a machine without a Vulkan
    /// driver gets this error instead of a panic deep inside a training step.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::flex()),
            DeviceChoice::Wgpu(index) => {
                use burn::tensor::wgpu::WgpuBackend;
                let kind = match index {
                    None => DeviceKind::DefaultDevice,
                    Some(i) => DeviceKind::DiscreteGpu(i),
                };
                Device::wgpu_options()
                    .device_kind(kind)
                    .graphics_api(WgpuBackend::Vulkan)
                    .init()
                    .map_err(|e| DeviceError::NoVulkan(e.to_string()))
            }
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(index) => Ok(Device::cuda(index)),
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Cuda(_) => Err(DeviceError::NoCuda),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for text in ["cpu", "wgpu", "wgpu:1", "cuda:0"] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap().to_string(), text);
        }
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert!("cpu:1".parse::<DeviceChoice>().is_err());
    }
}
