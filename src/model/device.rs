//! `--device auto|cpu|wgpu[:N]|vulkan[:N]|metal|dx12[:N]|cuda[:N]`: which burn device runs the
//! network, the wgpu adapters this machine has, and `auto`'s choice among them.
//!
//! The adapters are listed once per process ([`adapters`]) the way burn's wgpu runtime (cubecl)
//! lists them: one instance per graphics API, `enumerate_adapters` in the driver's order. burn
//! selects an adapter by its type and its index among the adapters of that type on that API
//! (`DeviceKind::DiscreteGpu(1)`: the second discrete GPU Vulkan reports; `DeviceKind::Cpu`: the
//! first software adapter, it takes no index), so each listed adapter carries that index and
//! opening it asks burn for exactly that one. Per API the list is best first (discrete,
//! integrated, virtual, software), and `vulkan:N` / `dx12:N` / `wgpu:N` count in that order, so
//! `wgpu:0,wgpu:1` are still the first two discrete GPUs of a multi-GPU machine.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};

use burn::prelude::*;
use burn::tensor::wgpu::{WgpuBackend, wgpu};

/// A device as the user names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    /// The best GPU wgpu finds on Vulkan, Metal or DX12 (discrete, then integrated, then
    /// virtual), else the CPU; a GPU that fails to start falls back to the CPU with a notice.
    /// Never OpenGL (training cannot run there) and never a software adapter (lavapipe: the CPU
    /// backend is faster).
    #[default]
    Auto,
    /// burn's flex CPU backend.
    Cpu,
    /// The best (or the N-th) adapter on the platform's native API: Vulkan on Linux, Metal on
    /// macOS, Vulkan or else DX12 on Windows. A software adapter counts, after the GPUs.
    Wgpu(Option<usize>),
    /// The best (or the N-th) Vulkan adapter.
    Vulkan(Option<usize>),
    /// The best Metal adapter.
    Metal,
    /// The best (or the N-th) DirectX 12 adapter.
    Dx12(Option<usize>),
    /// CUDA (only in builds with the `cuda` feature).
    Cuda(usize),
}

/// The names `--device` accepts, as every parse error lists them.
pub const DEVICE_NAMES: &str = "auto, cpu, wgpu[:N], cuda[:N], metal, vulkan[:N] or dx12[:N]";

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device {0:?}: expected auto, cpu, wgpu[:N], cuda[:N], metal, vulkan[:N] or dx12[:N]")]
    Unknown(String),
    /// No adapter answers an explicit choice.
    #[error("device {choice}: no {wanted} (wgpu found: {found}). {fix}")]
    NotFound { choice: String, wanted: String, found: String, fix: String },
    /// The adapter is there but did not start.
    #[error("device {choice}: {adapter} did not start ({message}). {fix}")]
    Failed { choice: String, adapter: String, message: String, fix: String },
    #[error(
        "this build has no CUDA support: rebuild with `cargo build --release --features cuda` (needs network access once)"
    )]
    NoCuda,
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<DeviceChoice, DeviceError> {
        let unknown = || DeviceError::Unknown(text.to_string());
        let lower = text.trim().to_ascii_lowercase();
        let (name, index) = match lower.split_once(':') {
            Some((name, index)) => (name, Some(index.parse::<usize>().map_err(|_| unknown())?)),
            None => (lower.as_str(), None),
        };
        match (name, index) {
            ("auto", None) => Ok(DeviceChoice::Auto),
            ("cpu", None) => Ok(DeviceChoice::Cpu),
            ("wgpu", index) => Ok(DeviceChoice::Wgpu(index)),
            ("vulkan", index) => Ok(DeviceChoice::Vulkan(index)),
            ("metal", None) => Ok(DeviceChoice::Metal),
            ("dx12", index) => Ok(DeviceChoice::Dx12(index)),
            ("cuda", index) => Ok(DeviceChoice::Cuda(index.unwrap_or(0))),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let indexed = |f: &mut fmt::Formatter<'_>, name: &str, index: &Option<usize>| match index {
            None => write!(f, "{name}"),
            Some(i) => write!(f, "{name}:{i}"),
        };
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Wgpu(index) => indexed(f, "wgpu", index),
            DeviceChoice::Vulkan(index) => indexed(f, "vulkan", index),
            DeviceChoice::Metal => write!(f, "metal"),
            DeviceChoice::Dx12(index) => indexed(f, "dx12", index),
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
    /// `auto`: the best device found.
    fn default() -> Self {
        DeviceSet::single(DeviceChoice::Auto)
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

/// A graphics API wgpu reaches adapters through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GpuApi {
    Vulkan,
    Metal,
    Dx12,
    /// OpenGL (ES): listed, never used (training cannot run there: no float atomics).
    Gl,
}

impl GpuApi {
    pub fn name(self) -> &'static str {
        match self {
            GpuApi::Vulkan => "Vulkan",
            GpuApi::Metal => "Metal",
            GpuApi::Dx12 => "DX12",
            GpuApi::Gl => "OpenGL",
        }
    }

    fn backend(self) -> wgpu::Backend {
        match self {
            GpuApi::Vulkan => wgpu::Backend::Vulkan,
            GpuApi::Metal => wgpu::Backend::Metal,
            GpuApi::Dx12 => wgpu::Backend::Dx12,
            GpuApi::Gl => wgpu::Backend::Gl,
        }
    }
}

/// What kind of adapter wgpu says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdapterKind {
    Discrete,
    Integrated,
    Virtual,
    /// A software rasterizer (lavapipe, llvmpipe, WARP).
    Cpu,
    /// What wgpu does not classify (OpenGL drivers often); burn cannot select these.
    Other,
}

impl AdapterKind {
    pub fn name(self) -> &'static str {
        match self {
            AdapterKind::Discrete => "discrete",
            AdapterKind::Integrated => "integrated",
            AdapterKind::Virtual => "virtual",
            AdapterKind::Cpu => "software",
            AdapterKind::Other => "other",
        }
    }

    /// Best first: the order of the list and of `auto`'s preference.
    fn rank(self) -> u8 {
        match self {
            AdapterKind::Discrete => 0,
            AdapterKind::Integrated => 1,
            AdapterKind::Virtual => 2,
            AdapterKind::Cpu => 3,
            AdapterKind::Other => 4,
        }
    }

    fn is_gpu(self) -> bool {
        matches!(self, AdapterKind::Discrete | AdapterKind::Integrated | AdapterKind::Virtual)
    }

    fn of(device_type: wgpu::DeviceType) -> AdapterKind {
        match device_type {
            wgpu::DeviceType::DiscreteGpu => AdapterKind::Discrete,
            wgpu::DeviceType::IntegratedGpu => AdapterKind::Integrated,
            wgpu::DeviceType::VirtualGpu => AdapterKind::Virtual,
            wgpu::DeviceType::Cpu => AdapterKind::Cpu,
            wgpu::DeviceType::Other => AdapterKind::Other,
        }
    }
}

/// One adapter wgpu found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    pub api: GpuApi,
    pub kind: AdapterKind,
    /// Its index among the adapters of its kind on its API, in the driver's order: the `n` of
    /// burn's `DeviceKind::DiscreteGpu(n)` (software adapters: only the first, index 0, is
    /// reachable, as `DeviceKind::Cpu`).
    pub kind_index: usize,
    /// The choice that opens exactly this adapter; `None` where none can: OpenGL, an adapter
    /// burn cannot select (`Other`, a second software adapter on one API), a second Metal
    /// adapter off macOS.
    pub choice: Option<DeviceChoice>,
}

impl AdapterInfo {
    /// "NVIDIA H100 (Vulkan, discrete)".
    pub fn label(&self) -> String {
        format!("{} ({}, {})", self.name, self.api.name(), self.kind.name())
    }
}

/// The APIs `wgpu` and `wgpu:N` settle on, in the order burn's automatic choice tries them: the
/// first with a GPU (else the first with any adapter) is the platform's native API.
const NATIVE_APIS: &[GpuApi] = if cfg!(target_os = "macos") {
    &[GpuApi::Metal]
} else if cfg!(windows) {
    &[GpuApi::Vulkan, GpuApi::Dx12]
} else {
    &[GpuApi::Vulkan]
};

/// Every API listed, native ones first (the order ties between APIs are broken in).
/// OpenGL is not asked: it is never used, and probing it (EGL) prints driver noise.
const LISTED_APIS: &[GpuApi] = if cfg!(target_os = "macos") {
    &[GpuApi::Metal, GpuApi::Vulkan]
} else if cfg!(windows) {
    &[GpuApi::Vulkan, GpuApi::Dx12]
} else {
    &[GpuApi::Vulkan]
};

/// The list, found once: creating a wgpu instance and asking its drivers takes a while. The
/// instances are kept (never dropped): the Vulkan loader crashes when instances come and go on
/// several threads at once, and burn's runtime creates its own on other threads.
struct Found {
    adapters: Vec<AdapterInfo>,
    native: Option<GpuApi>,
    _instances: Vec<wgpu::Instance>,
}

static FOUND: OnceLock<Found> = OnceLock::new();

fn found() -> &'static Found {
    FOUND.get_or_init(|| {
        let mut instances = Vec::new();
        let mut raw = Vec::new();
        for &api in LISTED_APIS {
            let backend = api.backend();
            if !wgpu::Instance::enabled_backend_features().contains(backend.into()) {
                continue;
            }
            // A driver's panic while listing leaves its API out, never takes the program down.
            let listed = crate::guard::catch_third_party(|| {
                // As burn's runtime lists them (cubecl-wgpu's `probe`), so the order is the one
                // its `DeviceKind` indexes count in.
                let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                    backends: backend.into(),
                    ..wgpu::InstanceDescriptor::new_without_display_handle()
                });
                let adapters = block_on(instance.enumerate_adapters(backend.into()));
                let infos: Vec<(String, AdapterKind)> = adapters
                    .iter()
                    .map(|adapter| {
                        let info = adapter.get_info();
                        (info.name, AdapterKind::of(info.device_type))
                    })
                    .collect();
                (instance, infos)
            });
            if let Ok((instance, infos)) = listed {
                instances.push(instance);
                raw.push((api, infos));
            }
        }
        let native = native_api(&raw, NATIVE_APIS);
        Found { adapters: list_adapters(raw, native), native, _instances: instances }
    })
}

/// The wgpu adapters of this machine, best first per API (native APIs first); listed once per
/// process.
pub fn adapters() -> &'static [AdapterInfo] {
    &found().adapters
}

/// The API `wgpu[:N]` opens on: the first of `chain` with a GPU, else the first with any
/// adapter (software ones included), as burn's automatic API choice settles.
fn native_api(raw: &[(GpuApi, Vec<(String, AdapterKind)>)], chain: &[GpuApi]) -> Option<GpuApi> {
    let kinds = |api: GpuApi| -> Vec<AdapterKind> {
        raw.iter().filter(|(a, _)| *a == api).flat_map(|(_, list)| list.iter().map(|(_, kind)| *kind)).collect()
    };
    let with_gpu = chain.iter().copied().find(|&api| kinds(api).iter().any(|kind| kind.is_gpu()));
    with_gpu.or_else(|| chain.iter().copied().find(|&api| !kinds(api).is_empty()))
}

/// Per API (in the order given), its adapters in the driver's order: indexed as burn counts
/// them, sorted best first, each given the choice that opens it.
fn list_adapters(raw: Vec<(GpuApi, Vec<(String, AdapterKind)>)>, native: Option<GpuApi>) -> Vec<AdapterInfo> {
    let mut listed = Vec::new();
    for (api, infos) in raw {
        let mut counts = [0usize; 5];
        let mut group: Vec<AdapterInfo> = infos
            .into_iter()
            .map(|(name, kind)| {
                let count = &mut counts[kind.rank() as usize];
                let kind_index = *count;
                *count += 1;
                AdapterInfo { name, api, kind, kind_index, choice: None }
            })
            .collect();
        // Stable: adapters of one kind keep the driver's order.
        group.sort_by_key(|a| a.kind.rank());
        let mut position = 0;
        for adapter in &mut group {
            let reachable = api != GpuApi::Gl
                && adapter.kind != AdapterKind::Other
                && !(adapter.kind == AdapterKind::Cpu && adapter.kind_index > 0);
            if !reachable {
                continue;
            }
            adapter.choice = match api {
                GpuApi::Vulkan => Some(DeviceChoice::Vulkan(Some(position))),
                GpuApi::Dx12 => Some(DeviceChoice::Dx12(Some(position))),
                GpuApi::Metal if position == 0 => Some(DeviceChoice::Metal),
                GpuApi::Metal if native == Some(GpuApi::Metal) => Some(DeviceChoice::Wgpu(Some(position))),
                GpuApi::Metal | GpuApi::Gl => None,
            };
            position += 1;
        }
        listed.extend(group);
    }
    listed
}

/// `auto`'s choice: the first adapter of the best GPU kind (discrete, integrated, virtual) on
/// Vulkan, Metal or DX12, in the list's order; else the CPU. OpenGL and software adapters are
/// never chosen.
pub fn best(adapters: &[AdapterInfo]) -> DeviceChoice {
    adapters
        .iter()
        .filter(|a| a.api != GpuApi::Gl && a.kind.is_gpu())
        .filter_map(|a| a.choice.map(|choice| (a.kind.rank(), choice)))
        .min_by_key(|(rank, _)| *rank)
        .map_or(DeviceChoice::Cpu, |(_, choice)| choice)
}

/// The adapter a wgpu choice names, among the reachable ones (those with a choice).
fn find(choice: DeviceChoice, adapters: &[AdapterInfo], native: Option<GpuApi>) -> Option<&AdapterInfo> {
    let (api, index) = match choice {
        DeviceChoice::Wgpu(index) => (native?, index),
        DeviceChoice::Vulkan(index) => (GpuApi::Vulkan, index),
        DeviceChoice::Metal => (GpuApi::Metal, None),
        DeviceChoice::Dx12(index) => (GpuApi::Dx12, index),
        DeviceChoice::Auto | DeviceChoice::Cpu | DeviceChoice::Cuda(_) => return None,
    };
    adapters.iter().filter(|a| a.api == api && a.choice.is_some()).nth(index.unwrap_or(0))
}

/// An opened device and what it is, for the user to see.
#[derive(Clone, Debug)]
pub struct OpenedDevice {
    pub device: Device,
    /// "NVIDIA H100 (Vulkan, discrete)", "CPU (flex, 16 threads)".
    pub label: String,
    /// Set when `auto`'s GPU did not start and the CPU runs instead: why, to show the user.
    pub notice: Option<String>,
}

/// "CPU (flex, 16 threads)": the flex backend's threads (rayon's pool); worked out once (the
/// studio asks every frame).
pub fn cpu_label() -> String {
    static LABEL: OnceLock<String> = OnceLock::new();
    LABEL
        .get_or_init(|| {
            // The pool flex and the inference kernels run on (it honours RAYON_NUM_THREADS).
            let threads = rayon::current_num_threads();
            format!("CPU (flex, {threads} thread{})", if threads == 1 { "" } else { "s" })
        })
        .clone()
}

fn cpu() -> OpenedDevice {
    OpenedDevice { device: Device::flex(), label: cpu_label(), notice: None }
}

impl DeviceChoice {
    /// What `open` would run on, without starting anything (an adapter's label, the CPU's), for
    /// job labels and the studio's lists. Lists the adapters on its first call.
    pub fn describe(self) -> String {
        match self {
            DeviceChoice::Cpu => cpu_label(),
            DeviceChoice::Cuda(i) => format!("CUDA device {i}"),
            DeviceChoice::Auto => {
                let found = found();
                match find(best(&found.adapters), &found.adapters, found.native) {
                    Some(adapter) if !failed_before(adapter) => adapter.label(),
                    _ => cpu_label(),
                }
            }
            wgpu_choice => {
                let found = found();
                find(wgpu_choice, &found.adapters, found.native)
                    .map_or_else(|| format!("{wgpu_choice} (not found)"), AdapterInfo::label)
            }
        }
    }

    /// Opens the device. wgpu adapters are started on their own API explicitly, so a machine
    /// without a Vulkan driver gets an error naming the fix instead of a panic deep inside a
    /// training step on wgpu's OpenGL fallback. `auto` never fails for a GPU: it runs on the CPU
    /// instead, saying why in `notice`. A device is started once per process; opening it again
    /// returns the same device (burn refuses a second start).
    pub fn open(self) -> Result<OpenedDevice, DeviceError> {
        match self {
            DeviceChoice::Cpu => Ok(cpu()),
            DeviceChoice::Auto => {
                let found = found();
                let choice = best(&found.adapters);
                let Some(adapter) = find(choice, &found.adapters, found.native) else { return Ok(cpu()) };
                match start(adapter) {
                    Ok(device) => Ok(OpenedDevice { device, label: adapter.label(), notice: None }),
                    Err(message) => Ok(OpenedDevice {
                        notice: Some(format!(
                            "{} did not start ({message}); running on the CPU instead",
                            adapter.label()
                        )),
                        ..cpu()
                    }),
                }
            }
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(index) => {
                Ok(OpenedDevice { device: Device::cuda(index), label: format!("CUDA device {index}"), notice: None })
            }
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Cuda(_) => Err(DeviceError::NoCuda),
            wgpu_choice => {
                let found = found();
                let Some(adapter) = find(wgpu_choice, &found.adapters, found.native) else {
                    return Err(not_found(wgpu_choice, &found.adapters, found.native));
                };
                let device = start(adapter).map_err(|message| DeviceError::Failed {
                    choice: wgpu_choice.to_string(),
                    adapter: adapter.label(),
                    message,
                    fix: fix(adapter.api).to_string(),
                })?;
                Ok(OpenedDevice { device, label: adapter.label(), notice: None })
            }
        }
    }
}

/// What to do about an API that is missing or does not start.
fn fix(api: GpuApi) -> &'static str {
    match api {
        GpuApi::Vulkan if cfg!(windows) => {
            "Install or update the GPU's driver (it brings Vulkan), try dx12, or use auto or cpu"
        }
        GpuApi::Vulkan => {
            "Install a Vulkan driver (on Debian/Ubuntu: `apt-get install libvulkan1 mesa-vulkan-drivers`), or use auto or cpu; wgpu's OpenGL fallback cannot train"
        }
        GpuApi::Metal => "Metal is macOS's: on this machine use auto, vulkan or cpu",
        GpuApi::Dx12 => "DirectX 12 is Windows': install or update the GPU's driver there, or use auto or cpu",
        GpuApi::Gl => "OpenGL is never used (training cannot run there): use auto or cpu",
    }
}

fn not_found(choice: DeviceChoice, adapters: &[AdapterInfo], native: Option<GpuApi>) -> DeviceError {
    let api = match choice {
        DeviceChoice::Vulkan(_) => GpuApi::Vulkan,
        DeviceChoice::Metal => GpuApi::Metal,
        DeviceChoice::Dx12(_) => GpuApi::Dx12,
        _ => native.unwrap_or(NATIVE_APIS[0]),
    };
    let reachable = adapters.iter().filter(|a| a.api == api && a.choice.is_some()).count();
    let index = match choice {
        DeviceChoice::Wgpu(index) | DeviceChoice::Vulkan(index) | DeviceChoice::Dx12(index) => index,
        _ => None,
    };
    let (wanted, fix) = match index {
        Some(i) if reachable > 0 => (
            format!(
                "{} adapter #{i}: there {} {reachable}, numbered from 0",
                api.name(),
                if reachable == 1 { "is" } else { "are" }
            ),
            "`facestudio devices` lists them with their names".to_string(),
        ),
        _ => (format!("{} adapter", api.name()), fix(api).to_string()),
    };
    let found = if adapters.is_empty() {
        "nothing".to_string()
    } else {
        adapters.iter().map(AdapterInfo::label).collect::<Vec<_>>().join(", ")
    };
    DeviceError::NotFound { choice: choice.to_string(), wanted, found, fix }
}

/// What an adapter's start gave, kept for the process: burn refuses to start one twice, and a
/// GPU that failed once is not retried on every model load.
type Started = ((GpuApi, AdapterKind, usize), Result<Device, String>);

static STARTED: Mutex<Vec<Started>> = Mutex::new(Vec::new());

/// Whether `adapter` was started in this process and did not come up (`auto` then runs on the
/// CPU). Never waits for a start in progress.
fn failed_before(adapter: &AdapterInfo) -> bool {
    let key = (adapter.api, adapter.kind, adapter.kind_index);
    STARTED.try_lock().is_ok_and(|started| started.iter().any(|(k, result)| *k == key && result.is_err()))
}

/// Starts `adapter` through burn: `Device::wgpu_options().device_kind(..).graphics_api(..)`,
/// the kind and index as burn counts them (per kind, per API).
fn start(adapter: &AdapterInfo) -> Result<Device, String> {
    let key = (adapter.api, adapter.kind, adapter.kind_index);
    // Held while starting, so two threads never start one adapter at once.
    let mut started = STARTED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, result)) = started.iter().find(|(k, _)| *k == key) {
        return result.clone();
    }
    let kind = match adapter.kind {
        AdapterKind::Discrete => Some(DeviceKind::DiscreteGpu(adapter.kind_index)),
        AdapterKind::Integrated => Some(DeviceKind::IntegratedGpu(adapter.kind_index)),
        AdapterKind::Virtual => Some(DeviceKind::VirtualGpu(adapter.kind_index)),
        AdapterKind::Cpu => Some(DeviceKind::Cpu),
        AdapterKind::Other => None,
    };
    let api = match adapter.api {
        GpuApi::Vulkan => Some(WgpuBackend::Vulkan),
        GpuApi::Metal => Some(WgpuBackend::Metal),
        GpuApi::Dx12 => Some(WgpuBackend::Dx12),
        GpuApi::Gl => None,
    };
    let result = match (kind, api) {
        (Some(kind), Some(api)) => {
            match crate::guard::catch_third_party(|| Device::wgpu_options().device_kind(kind).graphics_api(api).init())
            {
                Ok(Ok(device)) => Ok(device),
                Ok(Err(err)) => Err(err.to_string()),
                Err(payload) => Err(format!("wgpu panicked: {}", crate::guard::panic_message(payload.as_ref()))),
            }
        }
        _ => Err("burn cannot select this adapter".to_string()),
    };
    started.push((key, result.clone()));
    result
}

/// Polls a future that is ready at once (wgpu's native `enumerate_adapters`) to its end.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = std::future::Future::poll(future.as_mut(), &mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for text in
            ["auto", "cpu", "wgpu", "wgpu:1", "vulkan", "vulkan:0", "vulkan:2", "metal", "dx12", "dx12:1", "cuda:0"]
        {
            assert_eq!(text.parse::<DeviceChoice>().unwrap().to_string(), text);
        }
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert_eq!(" Vulkan:1 ".parse::<DeviceChoice>().unwrap(), DeviceChoice::Vulkan(Some(1)));
        assert_eq!(DeviceChoice::default(), DeviceChoice::Auto);
        for bad in ["tpu", "cpu:1", "auto:0", "metal:1", "wgpu:x", "vulkan:-1", ""] {
            let message = bad.parse::<DeviceChoice>().unwrap_err().to_string();
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.ends_with(DEVICE_NAMES), "every accepted name is listed: {message}");
        }
    }

    #[test]
    fn a_device_set_is_a_comma_list_and_defaults_to_auto() {
        assert_eq!(DeviceSet::default().to_string(), "auto");
        let set: DeviceSet = "vulkan:0, vulkan:1,cpu".parse().unwrap();
        assert_eq!(set.devices(), [DeviceChoice::Vulkan(Some(0)), DeviceChoice::Vulkan(Some(1)), DeviceChoice::Cpu]);
        assert_eq!(set.to_string(), "vulkan:0,vulkan:1,cpu");
        assert!("cpu,tpu".parse::<DeviceSet>().is_err());
    }

    fn adapter(name: &str, api: GpuApi, kind: AdapterKind, choice: Option<DeviceChoice>) -> AdapterInfo {
        AdapterInfo { name: name.into(), api, kind, kind_index: 0, choice }
    }

    #[test]
    fn auto_takes_the_best_gpu_never_opengl_nor_a_software_adapter() {
        use AdapterKind::*;
        use GpuApi::*;
        let lavapipe = adapter("llvmpipe", Vulkan, Cpu, Some(DeviceChoice::Vulkan(Some(2))));
        let gl_gpu = adapter("GL GPU", Gl, Discrete, Some(DeviceChoice::Wgpu(Some(7))));
        let igpu = adapter("Intel", Vulkan, Integrated, Some(DeviceChoice::Vulkan(Some(1))));
        let dgpu = adapter("NVIDIA", Vulkan, Discrete, Some(DeviceChoice::Vulkan(Some(0))));
        let dx = adapter("NVIDIA", Dx12, Discrete, Some(DeviceChoice::Dx12(Some(0))));
        let virt = adapter("virtio", Vulkan, Virtual, Some(DeviceChoice::Vulkan(Some(3))));
        let list = [gl_gpu.clone(), lavapipe.clone(), igpu.clone(), virt.clone(), dgpu.clone(), dx.clone()];
        assert_eq!(best(&list), DeviceChoice::Vulkan(Some(0)), "discrete first");
        assert_eq!(best(&[dx.clone(), dgpu.clone()]), DeviceChoice::Dx12(Some(0)), "ties: the list's order");
        assert_eq!(best(&[virt.clone(), igpu.clone()]), DeviceChoice::Vulkan(Some(1)), "integrated before virtual");
        assert_eq!(best(&[lavapipe.clone(), virt]), DeviceChoice::Vulkan(Some(3)));
        assert_eq!(best(&[gl_gpu.clone(), lavapipe.clone()]), DeviceChoice::Cpu, "OpenGL and lavapipe: the CPU");
        assert_eq!(best(&[]), DeviceChoice::Cpu);
        let unreachable = AdapterInfo { choice: None, ..dgpu };
        assert_eq!(best(&[unreachable, igpu]), DeviceChoice::Vulkan(Some(1)), "only what can be opened");
    }

    #[test]
    fn adapters_are_indexed_as_burn_counts_them_and_listed_best_first() {
        use AdapterKind::*;
        let raw = vec![
            (
                GpuApi::Vulkan,
                vec![
                    ("llvmpipe".to_string(), Cpu),
                    ("GPU A".to_string(), Discrete),
                    ("iGPU".to_string(), Integrated),
                    ("GPU B".to_string(), Discrete),
                    ("swiftshader".to_string(), Cpu),
                    ("odd".to_string(), Other),
                ],
            ),
            (GpuApi::Gl, vec![("llvmpipe".to_string(), Other), ("GL GPU".to_string(), Discrete)]),
        ];
        let native = native_api(&raw, &[GpuApi::Vulkan]);
        assert_eq!(native, Some(GpuApi::Vulkan));
        let list = list_adapters(raw, native);
        let shown: Vec<(&str, GpuApi, usize, Option<DeviceChoice>)> =
            list.iter().map(|a| (a.name.as_str(), a.api, a.kind_index, a.choice)).collect();
        let vulkan = |i| Some(DeviceChoice::Vulkan(Some(i)));
        assert_eq!(
            shown,
            [
                ("GPU A", GpuApi::Vulkan, 0, vulkan(0)),
                ("GPU B", GpuApi::Vulkan, 1, vulkan(1)),
                ("iGPU", GpuApi::Vulkan, 0, vulkan(2)),
                ("llvmpipe", GpuApi::Vulkan, 0, vulkan(3)),
                ("swiftshader", GpuApi::Vulkan, 1, None),
                ("odd", GpuApi::Vulkan, 0, None),
                ("GL GPU", GpuApi::Gl, 0, None),
                ("llvmpipe", GpuApi::Gl, 0, None),
            ]
        );
        assert_eq!(list[1].label(), "GPU B (Vulkan, discrete)");
        assert_eq!(best(&list), DeviceChoice::Vulkan(Some(0)));
        let name = |choice| find(choice, &list, native).map(|a| a.name.as_str());
        assert_eq!(name(DeviceChoice::Wgpu(None)), Some("GPU A"));
        assert_eq!(name(DeviceChoice::Wgpu(Some(1))), Some("GPU B"), "wgpu:1 is still the second discrete GPU");
        assert_eq!(name(DeviceChoice::Vulkan(Some(3))), Some("llvmpipe"), "software: listed, chosen explicitly");
        assert_eq!(name(DeviceChoice::Vulkan(Some(4))), None);
        assert_eq!(name(DeviceChoice::Metal), None);
        assert_eq!(name(DeviceChoice::Dx12(None)), None);
        assert!(not_found(DeviceChoice::Vulkan(Some(4)), &list, native).to_string().contains("there are 4"));
        assert!(not_found(DeviceChoice::Metal, &list, native).to_string().contains("no Metal adapter"));
    }

    #[test]
    fn the_native_api_is_the_first_with_a_gpu_else_the_first_with_anything() {
        use AdapterKind::*;
        let chain = [GpuApi::Vulkan, GpuApi::Dx12];
        let lavapipe = (GpuApi::Vulkan, vec![("llvmpipe".to_string(), Cpu)]);
        let dx = (GpuApi::Dx12, vec![("GPU".to_string(), Discrete)]);
        assert_eq!(native_api(&[lavapipe.clone(), dx], &chain), Some(GpuApi::Dx12));
        assert_eq!(native_api(std::slice::from_ref(&lavapipe), &chain), Some(GpuApi::Vulkan));
        let gl = (GpuApi::Gl, vec![("GL GPU".to_string(), Discrete)]);
        assert_eq!(native_api(&[gl], &chain), None, "OpenGL is no native API");
        let metal = list_adapters(
            vec![(GpuApi::Metal, vec![("M1".to_string(), Integrated), ("M2".to_string(), Discrete)])],
            Some(GpuApi::Metal),
        );
        let choices: Vec<_> = metal.iter().map(|a| (a.name.as_str(), a.choice)).collect();
        assert_eq!(choices, [("M2", Some(DeviceChoice::Metal)), ("M1", Some(DeviceChoice::Wgpu(Some(1))))]);
    }

    /// Whatever this machine has, `auto` opens (a GPU that does not start: the CPU, with a
    /// notice) and says what it runs on; opened twice, it is the same device.
    #[test]
    fn auto_opens_and_says_what_it_runs_on() {
        let opened = DeviceChoice::Auto.open().unwrap();
        match &opened.notice {
            None => assert_eq!(DeviceChoice::Auto.describe(), opened.label),
            Some(notice) => assert!(notice.contains("running on the CPU instead") && opened.label.starts_with("CPU")),
        }
        assert_eq!(DeviceChoice::Auto.open().unwrap().device, opened.device, "started once, reused");
        assert!(DeviceChoice::Cpu.open().unwrap().label.starts_with("CPU (flex, "));
        assert!(adapters().iter().all(|a| a.api != GpuApi::Gl || a.choice.is_none()), "OpenGL is never offered");
    }
}
