//! The model picker every panel that runs a network shares (Detect, Evaluate, the Dataset
//! panel's assistant): the same fields, and the same background load through
//! `Detector::load`.

use std::path::PathBuf;

use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::widgets::{choice_ui, optional_names, text_field_ui};
use crate::detect::Detector;
use crate::model::{DeviceChoice, PRESETS};

/// A model file (or checkpoint + preset) and the device to run it on, as the user types them.
pub struct ModelChoice<'a> {
    pub path: &'a mut String,
    /// The network of a PyTorch checkpoint; `None` for facestudio model files.
    pub preset: &'a mut Option<String>,
    pub device: &'a mut String,
}

/// The picker's fields; `id` keeps the preset combos of several panels apart.
pub fn model_picker_ui(ui: &mut egui::Ui, id: &str, choice: ModelChoice) {
    text_field_ui(ui, "Model file", choice.path, "model.bpk, .pth or .safetensors");
    // The label above the combo: the pickers sit in narrow columns, where a label beside it
    // squeezes the combo.
    let label = ui.label("Preset (PyTorch checkpoints)");
    let combo = egui::ComboBox::from_id_salt(id).width(220.0);
    choice_ui(ui, combo, choice.preset, optional_names("none: facestudio model file", &PRESETS)).labelled_by(label.id);
    text_field_ui(ui, "Device", choice.device, "cpu, wgpu[:N] or cuda[:N]");
}

/// Loads the chosen model in a background job, scored by head stage `stage` (`None`: the
/// last); `None` (with a notice) when the device does not parse.
pub fn load_detector(
    jobs: &Jobs,
    notices: &Notices,
    ctx: &egui::Context,
    path: &str,
    preset: Option<String>,
    device: &str,
    stage: Option<usize>,
) -> Option<Task<Result<Detector, String>>> {
    let path = PathBuf::from(path.trim());
    let device = notices.parse::<DeviceChoice>("Device", device)?;
    Some(jobs.spawn(format!("Loading model {}", path.display()), ctx, move |_| {
        let detector = Detector::load(&path, preset.as_deref(), device).map_err(|e| e.to_string())?;
        detector.with_stage(stage).map_err(|e| e.to_string())
    }))
}
