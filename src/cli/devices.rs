//! `facestudio devices`: what `--device` can name on this machine, and what `auto` picks.

use std::process::ExitCode;

use facestudio::model::{AdapterInfo, AdapterKind, DeviceChoice, GpuApi, adapters, cpu_label};

pub fn run() -> anyhow::Result<ExitCode> {
    let row = |name: &str, what: String| println!("{name:<10} {what}");
    row("auto", format!("{} (the default: the best GPU found, else the CPU)", DeviceChoice::Auto.describe()));
    row("cpu", cpu_label());
    for adapter in adapters() {
        match adapter.choice {
            Some(choice) => row(choice.to_string().as_str(), adapter.label()),
            None => row("-", format!("{}: {}", adapter.label(), why_not(adapter))),
        }
    }
    if cfg!(feature = "cuda") {
        row("cuda[:N]", "the N-th CUDA GPU (this build has CUDA)".into());
    }
    if adapters().iter().all(|a| a.choice.is_none()) {
        eprintln!(
            "no GPU adapter wgpu can use: without a Vulkan driver (on Debian/Ubuntu: `apt-get install libvulkan1 \
             mesa-vulkan-drivers`) everything runs on the CPU"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a listed adapter cannot be chosen.
fn why_not(adapter: &AdapterInfo) -> &'static str {
    match (adapter.api, adapter.kind) {
        (GpuApi::Gl, _) => "OpenGL is never used (training cannot run there)",
        (_, AdapterKind::Other) => "burn cannot select an adapter of unknown type",
        (_, AdapterKind::Cpu) => "burn selects only the first software adapter of an API",
        _ => "not reachable by a --device name on this platform",
    }
}
