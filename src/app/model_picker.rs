//! The model picker every panel that runs a network shares (Detect, Evaluate, the Dataset
//! panel's assistant): the same fields, the same device combo, and the same background load
//! (the device opened, then the model loaded onto it).

use std::path::{Path, PathBuf};

use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::widgets::{choice_ui, device_choice_ui, optional_names, text_field_ui};
use crate::detect::Detector;
use crate::model::{DeviceChoice, PRESETS, load_weights};

/// A model file (or checkpoint + preset) and the device to run it on, as the user picks them.
pub struct ModelChoice<'a> {
    pub path: &'a mut String,
    /// The network of a PyTorch checkpoint; `None` for facestudio model files.
    pub preset: &'a mut Option<String>,
    pub device: &'a mut DeviceChoice,
}

/// The picker's fields; `id` keeps the combos of several panels apart.
pub fn model_picker_ui(ui: &mut egui::Ui, id: &str, choice: ModelChoice) {
    text_field_ui(ui, "Model file", choice.path, "model.bpk, .pth or .safetensors");
    // The labels above the combos: the pickers sit in narrow columns, where a label beside it
    // squeezes the combo.
    let label = ui.label("Preset (PyTorch checkpoints)");
    let combo = egui::ComboBox::from_id_salt(id).width(220.0);
    choice_ui(ui, combo, choice.preset, optional_names("none: facestudio model file", &PRESETS)).labelled_by(label.id);
    let label = ui.label("Device");
    device_choice_ui(ui, &format!("{id}-device"), choice.device).labelled_by(label.id);
}

/// A model loaded onto its device.
pub struct LoadedModel {
    pub detector: Detector,
    /// What it runs on ("NVIDIA H100 (Vulkan, discrete)", "CPU (flex, 16 threads)").
    pub device: String,
}

/// Opens `device` and loads the model onto it, scored by head stage `stage` (`None`: the last).
/// On a job's thread: starting a GPU takes seconds. When `auto`'s GPU does not start, the CPU
/// runs instead and a notice says so.
pub fn open_model(
    notices: &Notices,
    path: &Path,
    preset: Option<&str>,
    device: DeviceChoice,
    stage: Option<usize>,
) -> Result<LoadedModel, String> {
    let opened = device.open().map_err(|e| e.to_string())?;
    if let Some(notice) = &opened.notice {
        notices.info(notice.clone());
    }
    let model = load_weights(path, preset, &opened.device).map_err(|e| e.to_string())?;
    let detector = Detector::new(model, opened.device).with_stage(stage).map_err(|e| e.to_string())?;
    Ok(LoadedModel { detector, device: opened.label })
}

/// Loads the chosen model in a background job (listed with the device it opens), scored by
/// head stage `stage` (`None`: the last).
pub fn load_detector(
    jobs: &Jobs,
    notices: &Notices,
    ctx: &egui::Context,
    path: &str,
    preset: Option<String>,
    device: DeviceChoice,
    stage: Option<usize>,
) -> Task<Result<LoadedModel, String>> {
    let path = PathBuf::from(path.trim());
    let notices = notices.clone();
    let label = format!("Loading model {} on {}", path.display(), device.describe());
    jobs.spawn(label, ctx, move |_| open_model(&notices, &path, preset.as_deref(), device, stage))
}
