//! The Train panel's form: the settings of a run a user changes, each explained in its tooltip;
//! the preset, image size and batch that fit the chosen device; and what the form warns about
//! before Start (a ResNet trained from scratch, a dataset without a val split).

use std::fmt;
use std::path::{Path, PathBuf};

use super::jobs::format_remaining;
use super::widgets::{choice_ui, device_choice_ui, names, optional_names};
use crate::dataset::{Dataset, SplitKind};
use crate::model::{AdapterInfo, AdapterKind, DeviceChoice, DeviceSet, GpuApi, PRESETS, best};
use crate::train::{LOSS_SETUPS, SCHEDULES, StepEstimate, TrainConfig};

/// The run form: the fields of a [`TrainConfig`] the studio lets one change, as the widgets
/// edit them (paths and devices as text). Its defaults are `TrainConfig`'s, like the CLI's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainForm {
    pub data: String,
    pub preset: String,
    pub epochs: u32,
    pub batch: usize,
    pub image_size: u32,
    pub lr_schedule: String,
    pub device: String,
    pub backbone_weights: String,
    pub out: String,
    pub val_every: u32,
    /// 0: no limit.
    pub max_steps: u64,
    /// A named loss setup; `None`: the default (Pytorch_Retinaface's).
    pub loss: Option<String>,
    /// The ResNet's width (1: the preset as it is; less: a narrowed CPU-sized trial).
    pub width: f32,
    pub resume: bool,
    /// What the form does not show (seed, workers, variance, optimiser, augmentation), kept from
    /// the config it was made from.
    pub base: TrainConfig,
}

impl Default for TrainForm {
    fn default() -> Self {
        TrainForm::from_config(&TrainConfig::default())
    }
}

/// Whether a device trains like a CPU or like a GPU: what the form's defaults follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceClass {
    Cpu,
    Gpu,
}

/// The preset, image size and batch the form proposes for a class of device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceDefaults {
    pub preset: &'static str,
    pub image_size: u32,
    pub batch: usize,
}

impl fmt::Display for DeviceDefaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}², batch {}", self.preset, self.image_size, self.batch)
    }
}

impl DeviceClass {
    /// A CPU: `tiny` at 256², batch 4, a network small enough that an epoch of a few thousand
    /// images takes minutes rather than hours there. A GPU: the report's run (`TrainConfig`'s
    /// defaults), `seed-full` at 640², batch 8.
    pub fn defaults(self) -> DeviceDefaults {
        match self {
            DeviceClass::Cpu => DeviceDefaults { preset: "tiny", image_size: 256, batch: 4 },
            DeviceClass::Gpu => DeviceDefaults { preset: "seed-full", image_size: 640, batch: 8 },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DeviceClass::Cpu => "the CPU",
            DeviceClass::Gpu => "a GPU",
        }
    }
}

/// What `choice` trains on, told from the adapter list without starting anything: `auto` is
/// what [`best`] picks, a wgpu choice the adapter it names (a software adapter such as lavapipe
/// runs on the CPU, so it counts as one; so does an adapter that is not there, which cannot
/// start).
pub fn device_class(choice: DeviceChoice, adapters: &[AdapterInfo]) -> DeviceClass {
    let is_gpu =
        |a: &AdapterInfo| matches!(a.kind, AdapterKind::Discrete | AdapterKind::Integrated | AdapterKind::Virtual);
    let reachable = || adapters.iter().filter(|a| a.choice.is_some());
    let on = |api: GpuApi, index: Option<usize>| reachable().filter(|a| a.api == api).nth(index.unwrap_or(0));
    let choice = if choice == DeviceChoice::Auto { best(adapters) } else { choice };
    let adapter = match choice {
        DeviceChoice::Auto | DeviceChoice::Cpu => return DeviceClass::Cpu,
        DeviceChoice::Cuda(_) => return DeviceClass::Gpu,
        DeviceChoice::Vulkan(index) => on(GpuApi::Vulkan, index),
        DeviceChoice::Dx12(index) => on(GpuApi::Dx12, index),
        DeviceChoice::Metal => on(GpuApi::Metal, None),
        // The native API: the first listed with a GPU, else the first listed (as `wgpu` opens).
        DeviceChoice::Wgpu(index) => {
            let native = reachable().find(|a| is_gpu(a)).or_else(|| reachable().next()).map(|a| a.api);
            native.and_then(|api| on(api, index))
        }
    };
    if adapter.is_some_and(is_gpu) { DeviceClass::Gpu } else { DeviceClass::Cpu }
}

/// What the form's dataset holds, for its warnings; read on a job thread (a WIDER split takes a
/// moment to parse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSummary {
    pub train_images: usize,
    /// Images of an annotated val split (0: there is none, so no AP is measured).
    pub val_images: usize,
}

impl DataSummary {
    pub fn read(path: &Path) -> Result<DataSummary, String> {
        let (dataset, _) = Dataset::open(path).map_err(|e| e.to_string())?;
        let count = |kind: SplitKind| dataset.split(kind).filter(|s| s.is_annotated()).map_or(0, |s| s.images.len());
        Ok(DataSummary { train_images: count(SplitKind::Train), val_images: count(SplitKind::Val) })
    }
}

impl TrainForm {
    pub fn from_config(config: &TrainConfig) -> TrainForm {
        let path = |p: &Path| p.display().to_string();
        TrainForm {
            data: path(&config.data),
            preset: config.preset.clone(),
            epochs: config.epochs,
            batch: config.batch,
            image_size: config.image_size,
            lr_schedule: config.lr_schedule.clone(),
            device: config.device.to_string(),
            backbone_weights: config.backbone_weights.as_deref().map(path).unwrap_or_default(),
            out: path(&config.out),
            val_every: config.val_every,
            max_steps: config.max_steps.unwrap_or(0),
            loss: config.loss.clone(),
            width: config.width.unwrap_or(1.0),
            resume: false,
            base: config.clone(),
        }
    }

    /// The run this form describes (every field not on the form at its default), checked.
    pub fn config(&self) -> Result<TrainConfig, String> {
        let device: DeviceSet = self.device.parse().map_err(|e| format!("device {:?}: {e}", self.device))?;
        let weights = self.backbone_weights.trim();
        let config = TrainConfig {
            data: PathBuf::from(self.data.trim()),
            preset: self.preset.clone(),
            width: (self.width < 1.0).then_some(self.width),
            out: PathBuf::from(self.out.trim()),
            epochs: self.epochs,
            batch: self.batch,
            image_size: self.image_size,
            lr_schedule: self.lr_schedule.clone(),
            device,
            backbone_weights: (!weights.is_empty()).then(|| PathBuf::from(weights)),
            max_steps: (self.max_steps > 0).then_some(self.max_steps),
            loss: self.loss.clone(),
            val_every: self.val_every,
            ..self.base.clone()
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// The class of the form's main device (the first of its list).
    pub fn device_class(&self, adapters: &[AdapterInfo]) -> DeviceClass {
        device_class(first_device(&self.device), adapters)
    }

    /// Whether the preset, image size and batch are `defaults`.
    pub fn has_defaults(&self, defaults: DeviceDefaults) -> bool {
        (self.preset.as_str(), self.image_size, self.batch) == (defaults.preset, defaults.image_size, defaults.batch)
    }

    pub fn apply_defaults(&mut self, defaults: DeviceDefaults) {
        self.preset = defaults.preset.to_string();
        self.image_size = defaults.image_size;
        self.batch = defaults.batch;
    }

    /// After the device changed to one of `class`: the preset, image size and batch become its
    /// defaults while they are still some class's defaults (the user has not edited them); what
    /// the user chose stays. Whether they changed.
    pub fn follow_device(&mut self, class: DeviceClass) -> bool {
        let untouched = [DeviceClass::Cpu, DeviceClass::Gpu].into_iter().any(|c| self.has_defaults(c.defaults()));
        let defaults = class.defaults();
        let change = untouched && !self.has_defaults(defaults);
        if change {
            self.apply_defaults(defaults);
        }
        change
    }

    /// Why this form's start is likely to disappoint, given what its dataset holds (`None` while
    /// it has not been read): a full-width ResNet preset without ImageNet weights learns slowly
    /// from scratch; a dataset that cannot be read; no val split or no validation, so no AP curve
    /// and no best epoch.
    pub fn warnings(&self, data: Option<&Result<DataSummary, String>>) -> Vec<String> {
        let mut warnings = Vec::new();
        let config = crate::model::RetinaFaceConfig::preset(&self.preset).ok();
        let full_resnet = config
            .is_some_and(|c| matches!(c.backbone, crate::model::BackboneConfig::ResNet { width, .. } if width >= 1.0))
            && self.width >= 1.0;
        if full_resnet && self.backbone_weights.trim().is_empty() {
            warnings.push(format!(
                "{} trains its ResNet from scratch: expect slow learning (the report and the paper start from \
                 ImageNet). Give Backbone weights: torchvision's resnet50 ImageNet weights \
                 (torchvision.models.resnet50(weights=\"IMAGENET1K_V1\"), saved with torch.save) or any \
                 torchvision-layout ResNet .pth.",
                self.preset
            ));
        }
        match data {
            Some(Err(err)) => warnings.push(format!("The dataset cannot be read: {err}")),
            Some(Ok(summary)) if summary.val_images == 0 => warnings.push(
                "The dataset has no val split: no validation AP curve is drawn and no best epoch is marked (add \
                 wider_face_split/wider_face_val_bbx_gt.txt or val/label.txt)."
                    .to_string(),
            ),
            Some(Ok(_)) if self.val_every == 0 => {
                warnings.push("Validate every is 0: no validation AP curve is drawn.".to_string())
            }
            _ => {}
        }
        warnings
    }

    /// The form's fields, each with a tooltip. Returns the dataset field's response (the panel
    /// reads the dataset once the field is left).
    pub fn fields_ui(&mut self, ui: &mut egui::Ui) -> egui::Response {
        let f = self;
        egui::Grid::new("train-form-grid")
            .num_columns(2)
            .show(ui, |ui| {
                let label = ui.label("Dataset");
                let data = ui.text_edit_singleline(&mut f.data).labelled_by(label.id).on_hover_text(
                    "The dataset folder: its train split is trained on and its val split gives the AP curve.",
                );
                ui.end_row();
                ui.label("Preset");
                choice_ui(ui, egui::ComboBox::from_id_salt("preset"), &mut f.preset, names(&PRESETS)).on_hover_text(
                    "The network to train: tiny fits a CPU, seed-full is the report's, paper-r50 the paper's.",
                );
                ui.end_row();
                ui.label("Epochs");
                ui.add(egui::DragValue::new(&mut f.epochs).range(1..=1000))
                    .on_hover_text("Passes over the train split; the learning-rate schedule is stretched to them.");
                ui.end_row();
                ui.label("Batch");
                ui.add(egui::DragValue::new(&mut f.batch).range(1..=256))
                    .on_hover_text("Images per training step: more takes more memory and gives steadier steps.");
                ui.end_row();
                ui.label("Image size");
                ui.add(egui::DragValue::new(&mut f.image_size).range(32..=2048).suffix(" px")).on_hover_text(
                    "Side of the square crops the network trains on, a multiple of the preset's largest stride.",
                );
                ui.end_row();
                ui.label("LR schedule");
                choice_ui(ui, egui::ComboBox::from_id_salt("schedule"), &mut f.lr_schedule, names(&SCHEDULES))
                    .on_hover_text("How the learning rate rises and falls over the epochs.");
                ui.end_row();
                let label = ui.label("Device");
                let mut first = first_device(&f.device);
                let before = first;
                device_choice_ui(ui, "train-device", &mut first)
                    .labelled_by(label.id)
                    .on_hover_text("The preset, image size and batch follow this device until you change them.");
                if first != before {
                    f.device = with_first_device(&f.device, first);
                }
                ui.end_row();
                let label = ui.label("All devices");
                ui.text_edit_singleline(&mut f.device).labelled_by(label.id).on_hover_text(
                    "auto, cpu, wgpu[:N], vulkan[:N], metal, dx12[:N] or cuda[:N]; several, comma-separated, \
                     train data-parallel (the first is the main device)",
                );
                ui.end_row();
                let label = ui.label("Backbone weights");
                ui.add(egui::TextEdit::singleline(&mut f.backbone_weights).hint_text("optional ImageNet .pth"))
                    .labelled_by(label.id)
                    .on_hover_text(
                        "ImageNet ResNet weights (.pth) to start the backbone from: ResNets learn far faster.",
                    );
                ui.end_row();
                let label = ui.label("Output folder");
                ui.text_edit_singleline(&mut f.out)
                    .labelled_by(label.id)
                    .on_hover_text("The run folder, where config, metrics, checkpoints and the model are written.");
                ui.end_row();
                ui.label("Loss setup");
                let loss_names = optional_names("default (pytorch-retinaface)", &LOSS_SETUPS);
                choice_ui(ui, egui::ComboBox::from_id_salt("loss"), &mut f.loss, loss_names).on_hover_text(
                    "How anchors are matched to faces and the loss terms weighted; the default learns from scratch.",
                );
                ui.end_row();
                ui.label("Validate every");
                ui.add(egui::DragValue::new(&mut f.val_every).range(0..=100).suffix(" epochs"))
                    .on_hover_text("Measure the val split's AP every this many epochs (0: never, so no AP curve).");
                ui.end_row();
                ui.label("Max steps");
                ui.add(egui::DragValue::new(&mut f.max_steps).range(0..=100_000_000))
                    .on_hover_text("Stop after this many steps in all, with a checkpoint (0: no limit).");
                ui.end_row();
                ui.label("Network width");
                ui.add(egui::DragValue::new(&mut f.width).range(0.05..=1.0).speed(0.01)).on_hover_text(
                    "1: the preset as it is; less narrows its ResNet (and FPN) for a CPU-sized trial, which then \
                     cannot load ImageNet weights",
                );
                ui.end_row();
                data
            })
            .inner
    }

    /// The resume checkbox, below the grid.
    pub fn resume_ui(&mut self, ui: &mut egui::Ui) {
        ui.checkbox(&mut self.resume, "Resume from the folder's last checkpoint")
            .on_hover_text("Continue the run in the output folder from its last checkpoint instead of starting over.");
    }
}

/// "≈ 0.420 s/step, ≈ 53 s per epoch (500 images, 125 steps) on CPU (flex, 2 threads)", and
/// which images were timed when they were not the dataset's.
pub fn estimate_text(estimate: &StepEstimate) -> String {
    let mut text = format!("≈ {:.3} s/step", estimate.seconds_per_step);
    if let (Some(seconds), Some(images), Some(steps)) =
        (estimate.epoch_seconds(), estimate.images, estimate.steps_per_epoch)
    {
        text.push_str(&format!(", ≈ {} per epoch ({images} images, {steps} steps)", format_duration(seconds)));
    }
    text.push_str(&format!(" on {}", estimate.devices.join(", ")));
    if let Some(why) = &estimate.synthetic {
        text.push_str(&format!(". Timed on synthetic images ({why})"));
    }
    text
}

/// A time as the status bar's estimates read ("50 s", "13 min"); a dash when unknown.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds <= 0.0 {
        return "—".into();
    }
    format_remaining(std::time::Duration::from_secs_f64(seconds))
}

/// The first device of a device list as typed (`auto` when it does not parse yet).
fn first_device(devices: &str) -> DeviceChoice {
    devices.split(',').next().and_then(|d| d.trim().parse().ok()).unwrap_or_default()
}

/// The device list with its first device replaced by `first` (the others kept as typed).
fn with_first_device(devices: &str, first: DeviceChoice) -> String {
    let rest = devices.split(',').skip(1).map(str::trim).filter(|d| !d.is_empty());
    std::iter::once(first.to_string()).chain(rest.map(String::from)).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_starts_from_the_configs_defaults_and_round_trips() {
        let form = TrainForm::default();
        let defaults = TrainConfig::default();
        assert_eq!((form.epochs, form.batch, form.image_size), (defaults.epochs, defaults.batch, defaults.image_size));
        let form = TrainForm { data: "data".into(), ..form };
        assert_eq!(form.config().unwrap(), TrainConfig { data: "data".into(), ..defaults });
        // Every setting survives the form, those it does not show (the seed) too.
        let trial = TrainConfig { workers: 3, ..TrainConfig::trial("data", "runs/t") };
        assert_eq!(TrainForm::from_config(&trial).config().unwrap(), trial);
        let bad = TrainForm { image_size: 100, ..form };
        assert!(bad.config().unwrap_err().contains("image_size"), "checked before the start");
    }

    #[test]
    fn the_device_combo_replaces_the_first_device_only() {
        assert_eq!(TrainForm::default().device, "auto");
        assert_eq!(first_device("vulkan:1, cpu"), DeviceChoice::Vulkan(Some(1)));
        assert_eq!(first_device("tp"), DeviceChoice::Auto, "a half-typed name");
        assert_eq!(with_first_device("vulkan:1, vulkan:2", DeviceChoice::Cpu), "cpu,vulkan:2");
        assert_eq!(with_first_device("", DeviceChoice::Vulkan(Some(0))), "vulkan:0");
    }

    fn adapter(name: &str, kind: AdapterKind, choice: DeviceChoice) -> AdapterInfo {
        AdapterInfo { name: name.into(), api: GpuApi::Vulkan, kind, kind_index: 0, choice: Some(choice) }
    }

    #[test]
    fn a_device_is_told_a_gpu_or_a_cpu_without_opening_it() {
        let gpu = adapter("NVIDIA", AdapterKind::Discrete, DeviceChoice::Vulkan(Some(0)));
        let lavapipe = adapter("llvmpipe", AdapterKind::Cpu, DeviceChoice::Vulkan(Some(1)));
        let with_gpu = [gpu, lavapipe.clone()];
        let software_only = [AdapterInfo { choice: Some(DeviceChoice::Vulkan(Some(0))), ..lavapipe }];
        let class = |choice: &str, adapters: &[AdapterInfo]| device_class(choice.parse().unwrap(), adapters);
        assert_eq!(class("auto", &with_gpu), DeviceClass::Gpu, "auto picks the GPU");
        assert_eq!(class("auto", &software_only), DeviceClass::Cpu, "auto never picks lavapipe");
        assert_eq!(class("auto", &[]), DeviceClass::Cpu);
        assert_eq!(class("cpu", &with_gpu), DeviceClass::Cpu);
        assert_eq!(class("vulkan", &with_gpu), DeviceClass::Gpu);
        assert_eq!(class("wgpu:0", &with_gpu), DeviceClass::Gpu);
        assert_eq!(class("vulkan:1", &with_gpu), DeviceClass::Cpu, "a software adapter trains like a CPU");
        assert_eq!(class("vulkan:5", &with_gpu), DeviceClass::Cpu, "an adapter that is not there");
        assert_eq!(class("cuda:0", &[]), DeviceClass::Gpu);
    }

    #[test]
    fn the_defaults_follow_the_device_until_the_user_edits_them() {
        assert!(
            TrainForm::default().has_defaults(DeviceClass::Gpu.defaults()),
            "a GPU's defaults are the report's run, TrainConfig's"
        );
        let mut form = TrainForm { data: "data".into(), ..TrainForm::default() };
        assert!(form.follow_device(DeviceClass::Cpu));
        assert_eq!((form.preset.as_str(), form.image_size, form.batch), ("tiny", 256, 4));
        assert!(form.config().is_ok(), "the CPU's defaults are a valid run");
        assert!(form.follow_device(DeviceClass::Gpu));
        assert_eq!((form.preset.as_str(), form.image_size, form.batch), ("seed-full", 640, 8));
        form.batch = 2;
        assert!(!form.follow_device(DeviceClass::Cpu), "an edited batch is the user's");
        assert_eq!((form.preset.as_str(), form.batch), ("seed-full", 2));
        form.apply_defaults(DeviceClass::Cpu.defaults());
        assert!(form.has_defaults(DeviceClass::Cpu.defaults()));
    }

    #[test]
    fn a_dataset_without_a_val_split_is_warned_about() {
        let form = TrainForm { preset: "tiny".into(), ..TrainForm::default() };
        assert!(form.warnings(None).is_empty(), "nothing known about the dataset yet");
        let with_val = Ok(DataSummary { train_images: 8, val_images: 2 });
        assert!(form.warnings(Some(&with_val)).is_empty());
        let without = Ok(DataSummary { train_images: 8, val_images: 0 });
        let warnings = form.warnings(Some(&without));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("no val split") && warnings[0].contains("AP curve"), "{warnings:?}");
        let never = TrainForm { val_every: 0, ..form.clone() };
        assert!(never.warnings(Some(&with_val))[0].contains("Validate every is 0"));
        let unreadable = Err("no annotation files".to_string());
        assert!(form.warnings(Some(&unreadable))[0].contains("cannot be read: no annotation files"));
        let scratch = TrainForm { preset: "seed-full".into(), ..form };
        assert!(scratch.warnings(Some(&with_val))[0].contains("from scratch"));
    }

    #[test]
    fn the_summary_counts_the_annotated_splits() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            crate::dataset::synth::SynthConfig { val_images: 3, ..crate::dataset::synth::SynthConfig::new(6, 1) };
        crate::dataset::synth::generate(dir.path(), &config).unwrap();
        assert_eq!(DataSummary::read(dir.path()), Ok(DataSummary { train_images: 6, val_images: 3 }));
        std::fs::remove_file(dir.path().join("wider_face_split/wider_face_val_bbx_gt.txt")).unwrap();
        std::fs::remove_dir_all(dir.path().join("retinaface_gt_v1.1/val")).unwrap();
        assert_eq!(DataSummary::read(dir.path()), Ok(DataSummary { train_images: 6, val_images: 0 }));
    }

    #[test]
    fn an_estimate_reads_as_seconds_per_step_and_per_epoch() {
        let estimate = StepEstimate {
            seconds_per_step: 0.4,
            timed_steps: 3,
            images: Some(500),
            steps_per_epoch: Some(125),
            synthetic: None,
            devices: vec!["CPU (flex, 2 threads)".into()],
            notices: Vec::new(),
        };
        assert_eq!(
            estimate_text(&estimate),
            "≈ 0.400 s/step, ≈ 50 s per epoch (500 images, 125 steps) on CPU (flex, 2 threads)"
        );
        let synthetic =
            StepEstimate { images: None, steps_per_epoch: None, synthetic: Some("no dataset".into()), ..estimate };
        assert_eq!(
            estimate_text(&synthetic),
            "≈ 0.400 s/step on CPU (flex, 2 threads). Timed on synthetic images (no dataset)"
        );
        assert_eq!(format_duration(7620.0), "2 h 7 min");
        assert_eq!(format_duration(f64::NAN), "—");
    }
}
