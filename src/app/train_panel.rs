//! The Train panel: a form for a run, Start / Pause / Resume / Stop, and live charts of every
//! loss term per stage, the learning rate, images/s and validation AP. Past runs (from the CLI
//! too) are read from their `metrics.jsonl`, followed as it grows, and can be overlaid.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::widgets::{choice_ui, device_choice_ui, names, optional_names};
use crate::model::{DeviceChoice, DeviceSet, PRESETS};
use crate::train::{
    ABLATION, Control, LOSS_SETUPS, RunCurves, RunFile, RunFolder, SCHEDULES, StudyConfig, StudyEvent, StudyHooks,
    TrainConfig, TrainError, TrainEvent, TrainerHandle, run_study, spawn,
};

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

    /// Why this form's start is likely to disappoint, if it is: a full-width ResNet preset
    /// without ImageNet weights learns slowly from scratch.
    pub fn warning(&self) -> Option<String> {
        let config = crate::model::RetinaFaceConfig::preset(&self.preset).ok()?;
        let full_resnet = matches!(config.backbone, crate::model::BackboneConfig::ResNet { width, .. } if width >= 1.0)
            && self.width >= 1.0;
        (full_resnet && self.backbone_weights.trim().is_empty()).then(|| {
            format!(
                "{} trains its ResNet from scratch: expect slow learning (the report and the paper start from \
                 ImageNet). Give Backbone weights: torchvision's resnet50 ImageNet weights \
                 (torchvision.models.resnet50(weights=\"IMAGENET1K_V1\"), saved with torch.save) or any \
                 torchvision-layout ResNet .pth.",
                self.preset
            )
        })
    }
}

pub struct TrainPanel {
    notices: Notices,
    pub form: TrainForm,
    trainer: Option<TrainerHandle>,
    /// The run started here.
    pub live: Option<(PathBuf, RunCurves)>,
    pub paused: bool,
    pub runs_dir: String,
    pub runs: Vec<RunFile>,
    last_scan: Option<Instant>,
    jobs: Jobs,
    study: Option<Task<Result<PathBuf, TrainError>>>,
}

/// Points drawn per series; longer series are thinned so a long run stays cheap to draw.
const MAX_PLOT_POINTS: usize = 1500;

impl TrainPanel {
    pub fn new(notices: Notices, jobs: Jobs) -> TrainPanel {
        TrainPanel {
            notices,
            form: TrainForm::default(),
            trainer: None,
            live: None,
            paused: false,
            runs_dir: "runs".into(),
            runs: Vec::new(),
            last_scan: None,
            jobs,
            study: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.trainer.is_some()
    }

    pub fn start(&mut self) {
        if self.trainer.is_some() {
            return;
        }
        let started = self.form.config().and_then(|config| {
            let out = config.out.clone();
            spawn(config, self.form.resume).map(|handle| (out, handle)).map_err(|e| e.to_string())
        });
        match started {
            Ok((out, handle)) => {
                self.trainer = Some(handle);
                self.live = Some((out, RunCurves::default()));
                self.paused = false;
            }
            Err(err) => self.notices.error(format!("Cannot start training: {err}")),
        }
    }

    pub fn control(&mut self, command: Control) {
        if let Some(trainer) = &self.trainer
            && trainer.control.send(command).is_ok()
        {
            match command {
                Control::Pause => self.paused = true,
                Control::Resume => self.paused = false,
                Control::Stop => {}
            }
        }
    }

    /// Starts the report's ablation study with the form's settings, in `<runs folder>/ablation`
    /// (resumes one left there); its runs appear in the run list as they train.
    pub fn start_study(&mut self, ctx: &egui::Context) {
        if self.study.is_some() {
            return;
        }
        let train = match self.form.config() {
            Ok(config) => config,
            Err(err) => return self.notices.error(format!("Cannot start the study: {err}")),
        };
        let config = StudyConfig {
            train,
            out: PathBuf::from(self.runs_dir.trim()).join("ablation"),
            presets: ABLATION.iter().map(|v| v.preset.to_string()).collect(),
            official: None,
        };
        let notices = self.notices.clone();
        let devices: Vec<String> = config.train.device.devices().iter().map(|d| d.describe()).collect();
        let label = format!("Ablation study on {}", devices.join(", "));
        self.study = Some(self.jobs.spawn(label, ctx, move |progress| {
            progress.set_total(config.presets.len());
            let on_event = |event: StudyEvent| match event {
                StudyEvent::Skipped { .. } | StudyEvent::Training { event: TrainEvent::Finished { .. }, .. } => {
                    progress.advance()
                }
                StudyEvent::Training { preset, event: TrainEvent::Error { message } } => {
                    notices.error(format!("Ablation study, {preset}: {message}"))
                }
                // What a run says about itself, the CPU running instead of a GPU that did not
                // start included.
                StudyEvent::Training { preset, event: TrainEvent::Warning { message } } => {
                    notices.info(format!("Ablation study, {preset}: {message}"))
                }
                _ => {}
            };
            let hooks = StudyHooks { on_event: &on_event, should_stop: &|| progress.is_cancelled() };
            run_study(&config, &hooks).map(|_| config.out.join("ablation.md"))
        }));
    }

    /// Drains the trainer's events and follows the run files; cheap enough for every frame.
    pub fn logic(&mut self, ctx: &egui::Context) {
        if let Some(task) = &self.study
            && !task.is_running()
        {
            match task.poll() {
                Some(Ok(table)) => self.notices.info(format!("Ablation study done: {}", table.display())),
                Some(Err(TrainError::Cancelled)) => {
                    self.notices.info("Ablation study stopped; started again, it resumes from its checkpoints")
                }
                Some(Err(err)) => self.notices.error(format!("Ablation study: {err}")),
                None => self.notices.error("Ablation study: the study thread ended unexpectedly"),
            }
            self.study = None;
        }
        if let Some(trainer) = &self.trainer {
            let mut ended = false;
            loop {
                let event = match trainer.events.try_recv() {
                    Ok(event) => event,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                };
                match &event {
                    TrainEvent::Error { message } => self.notices.error(format!("Training: {message}")),
                    TrainEvent::Warning { message } => self.notices.info(format!("Training: {message}")),
                    TrainEvent::Finished { step, stopped } => {
                        let run = self.live.as_ref().map_or_else(String::new, |(dir, _)| format!(" {}", dir.display()));
                        let how = if *stopped { "stopped" } else { "finished" };
                        self.notices.info(format!("Training{run} {how} after {step} steps"));
                    }
                    _ => {}
                }
                if let Some((_, curves)) = &mut self.live {
                    curves.push(&event);
                }
            }
            if ended {
                if let Some(trainer) = self.trainer.take() {
                    trainer.join();
                }
                self.paused = false;
            } else {
                // Training sends a few events a second; repaint often enough to show them, no more.
                ctx.request_repaint_after(Duration::from_millis(100));
            }
        }
        if self.last_scan.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            self.scan_runs();
            self.last_scan = Some(Instant::now());
        }
    }

    /// Lists the run folders under `runs_dir` and reads what their metrics files gained.
    pub fn scan_runs(&mut self) {
        let dir = PathBuf::from(self.runs_dir.trim());
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        let children = |d: &Path| -> Vec<PathBuf> {
            std::fs::read_dir(d).map_or_else(|_| Vec::new(), |e| e.filter_map(|e| e.ok().map(|e| e.path())).collect())
        };
        // Run folders, and run folders one level down (a study's variants: `ablation/<preset>`).
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .flat_map(|p| if RunFolder::new(&p).is_run() { vec![p] } else { children(&p) })
            .filter(|p| RunFolder::new(p).is_run())
            .collect();
        found.sort();
        for path in found {
            if !self.runs.iter().any(|r| r.dir == path) {
                self.runs.push(RunFile::new(path));
            }
        }
        let live = self.live.as_ref().map(|(p, _)| p.clone());
        for run in &mut self.runs {
            if live.as_deref().is_some_and(|l| same_dir(l, &run.dir)) {
                continue;
            }
            let _ = run.refresh();
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::left("train-form").default_size(290.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                self.form_ui(ui);
                ui.separator();
                self.runs_ui(ui);
            });
        });
        egui::CentralPanel::default().show(ui, |ui| self.charts_ui(ui));
    }

    fn form_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("New run");
        let running = self.trainer.is_some();
        ui.add_enabled_ui(!running, |ui| {
            let f = &mut self.form;
            egui::Grid::new("train-form-grid").num_columns(2).show(ui, |ui| {
                let label = ui.label("Dataset");
                ui.text_edit_singleline(&mut f.data).labelled_by(label.id);
                ui.end_row();
                ui.label("Preset");
                choice_ui(ui, egui::ComboBox::from_id_salt("preset"), &mut f.preset, names(&PRESETS));
                ui.end_row();
                ui.label("Epochs");
                ui.add(egui::DragValue::new(&mut f.epochs).range(1..=1000));
                ui.end_row();
                ui.label("Batch");
                ui.add(egui::DragValue::new(&mut f.batch).range(1..=256));
                ui.end_row();
                ui.label("Image size");
                ui.add(egui::DragValue::new(&mut f.image_size).range(32..=2048).suffix(" px"));
                ui.end_row();
                ui.label("LR schedule");
                choice_ui(ui, egui::ComboBox::from_id_salt("schedule"), &mut f.lr_schedule, names(&SCHEDULES));
                ui.end_row();
                let label = ui.label("Device");
                let mut first = first_device(&f.device);
                let before = first;
                device_choice_ui(ui, "train-device", &mut first).labelled_by(label.id);
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
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Output folder");
                ui.text_edit_singleline(&mut f.out).labelled_by(label.id);
                ui.end_row();
                ui.label("Loss setup");
                let loss_names = optional_names("default (pytorch-retinaface)", &LOSS_SETUPS);
                choice_ui(ui, egui::ComboBox::from_id_salt("loss"), &mut f.loss, loss_names);
                ui.end_row();
                ui.label("Validate every");
                ui.add(egui::DragValue::new(&mut f.val_every).range(0..=100).suffix(" epochs"));
                ui.end_row();
                ui.label("Max steps");
                ui.add(egui::DragValue::new(&mut f.max_steps).range(0..=100_000_000)).on_hover_text("0: no limit");
                ui.end_row();
                ui.label("Network width");
                ui.add(egui::DragValue::new(&mut f.width).range(0.05..=1.0).speed(0.01)).on_hover_text(
                    "1: the preset as it is; less narrows its ResNet (and FPN) for a CPU-sized trial, which then \
                     cannot load ImageNet weights",
                );
                ui.end_row();
            });
            ui.checkbox(&mut f.resume, "Resume from the folder's last checkpoint");
        });
        ui.horizontal(|ui| {
            if ui.add_enabled(!running, egui::Button::new("Start")).clicked() {
                self.start();
            }
            if running && !self.paused && ui.button("Pause").clicked() {
                self.control(Control::Pause);
            }
            if running && self.paused && ui.button("Resume").clicked() {
                self.control(Control::Resume);
            }
            if ui.add_enabled(running, egui::Button::new("Stop")).clicked() {
                self.control(Control::Stop);
            }
        });
        // Below the buttons, so that the buttons do not move when the warning comes and goes.
        if let Some(warning) = self.form.warning() {
            ui.colored_label(ui.visuals().warn_fg_color, format!("Warning: {warning}"));
        }
        let study_hint = "Train the report's four variants and paper-r50 with this form's settings into \
                          <runs folder>/ablation, one after another (resumes where it stopped), and write the \
                          report's Table 2 for this run (ablation.md)";
        if ui
            .add_enabled(self.study.is_none(), egui::Button::new("Run the report's ablation study"))
            .on_hover_text(study_hint)
            .clicked()
        {
            self.start_study(ui.ctx());
        }
        if let Some((out, curves)) = &self.live {
            ui.label(format!("{}: {}", out.display(), curves.status));
            if !curves.devices.is_empty() {
                ui.label(format!("Training on {}", curves.devices.join(", ")));
            }
            if let Some(fraction) = curves.fraction() {
                let eta = format_duration(curves.eta_s);
                let text = format!("epoch {}/{}, step {}, ETA {eta}", curves.epoch, curves.epochs, curves.last_step);
                ui.add(egui::ProgressBar::new(fraction).text(text));
            }
        }
    }

    fn runs_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Runs");
        ui.horizontal(|ui| {
            let label = ui.label("Runs folder");
            if ui.text_edit_singleline(&mut self.runs_dir).labelled_by(label.id).lost_focus() {
                self.runs.clear();
                self.scan_runs();
            }
        });
        if self.runs.is_empty() {
            ui.weak("No runs with a metrics.jsonl in this folder yet");
        }
        for run in &mut self.runs {
            let name = run.name();
            let c = &run.curves;
            let last_ap = c.ap.values().filter_map(|v| v.last()).map(|p| format!("{:.3}", p[1])).collect::<Vec<_>>();
            let text = format!(
                "{name}: step {}, {}{}",
                c.last_step,
                c.status,
                if last_ap.is_empty() { String::new() } else { format!(", AP {}", last_ap.join("/")) }
            );
            ui.checkbox(&mut run.overlay, text).on_hover_text("Overlay this run's curves on the charts");
        }
    }

    /// Every run shown: the live one, then the overlaid ones, each with a name prefix.
    fn shown_runs(&self) -> Vec<(String, &RunCurves)> {
        let mut shown = Vec::new();
        if let Some((out, curves)) = &self.live {
            shown.push((out.file_name().map_or("live".into(), |n| n.to_string_lossy().into_owned()), curves));
        }
        for run in self.runs.iter().filter(|r| r.overlay) {
            shown.push((run.name(), &run.curves));
        }
        shown
    }

    fn charts_ui(&mut self, ui: &mut egui::Ui) {
        let shown = self.shown_runs();
        if shown.is_empty() {
            ui.centered_and_justified(|ui| ui.weak("Start a run, or tick past runs on the left to see their curves"));
            return;
        }
        let prefix = shown.len() > 1;
        let name = |run: &str, series: &str| if prefix { format!("{run}: {series}") } else { series.to_string() };
        let height = (ui.available_height() / 2.0 - 30.0).max(120.0);
        ui.columns(2, |columns| {
            columns[0].label("Loss terms per stage (by step)");
            chart_ui(&mut columns[0], "loss", height, |plot| {
                for (run, curves) in &shown {
                    for (series, points) in &curves.losses {
                        plot.line(Line::new(name(run, series), thin(points)));
                    }
                }
            });
            columns[1].label("Validation AP (by epoch)");
            chart_ui(&mut columns[1], "ap", height, |plot| {
                plot.set_plot_bounds_y(0.0..=1.0);
                for (run, curves) in &shown {
                    for (series, points) in &curves.ap {
                        plot.line(Line::new(name(run, series), thin(points)));
                    }
                }
            });
            columns[0].label("Learning rate (by step)");
            chart_ui(&mut columns[0], "lr", height, |plot| {
                for (run, curves) in &shown {
                    plot.line(Line::new(name(run, "lr"), thin(&curves.lr)));
                }
            });
            columns[1].label("Images/s (by step)");
            chart_ui(&mut columns[1], "speed", height, |plot| {
                for (run, curves) in &shown {
                    plot.line(Line::new(name(run, "images/s"), thin(&curves.images_per_s)));
                }
            });
        });
    }
}

fn chart_ui(ui: &mut egui::Ui, id: &str, height: f32, build: impl FnOnce(&mut egui_plot::PlotUi<'_>)) {
    Plot::new(id).height(height).legend(Legend::default()).show(ui, build);
}

/// At most `MAX_PLOT_POINTS` points, evenly spaced, always keeping the last one.
fn thin(points: &[[f64; 2]]) -> PlotPoints<'static> {
    if points.len() <= MAX_PLOT_POINTS {
        return PlotPoints::new(points.to_vec());
    }
    let step = points.len().div_ceil(MAX_PLOT_POINTS);
    let mut kept: Vec<[f64; 2]> = points.iter().step_by(step).copied().collect();
    if let Some(last) = points.last()
        && kept.last() != Some(last)
    {
        kept.push(*last);
    }
    PlotPoints::new(kept)
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

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn format_duration(seconds: f32) -> String {
    if !seconds.is_finite() || seconds <= 0.0 {
        return "—".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, (s % 3600) / 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_series_are_thinned_keeping_the_last_point() {
        let points: Vec<[f64; 2]> = (0..10_001).map(|i| [i as f64, 0.0]).collect();
        let thinned = thin(&points);
        let pts = thinned.points();
        assert!(pts.len() <= MAX_PLOT_POINTS + 1);
        assert_eq!(pts.last().unwrap().x, 10_000.0);
    }

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
}
