//! The Train panel: a form for a run, Start / Pause / Resume / Stop, and live charts of every
//! loss term per stage, the learning rate, images/s and validation AP. Past runs (from the CLI
//! too) are read from their `metrics.jsonl`, followed as it grows, and can be overlaid.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::widgets::optional_choice;
use crate::dataset::augment::AugmentConfig;
use crate::model::{DeviceSet, PRESETS};
use crate::train::{
    ABLATION, Control, LOSS_SETUPS, SCHEDULES, StudyConfig, StudyEvent, StudyHooks, TrainConfig, TrainEvent,
    TrainerHandle, run_study, spawn,
};

/// Plot series, each a list of `[x, y]`.
pub type Series = BTreeMap<String, Vec<[f64; 2]>>;

/// The curves of one run, built from its events (live or read back from `metrics.jsonl`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurves {
    /// Loss terms by step: `total`, `s1 classification`, `s1 boxes`, … per head stage.
    pub losses: Series,
    pub lr: Vec<[f64; 2]>,
    pub images_per_s: Vec<[f64; 2]>,
    /// AP per setting, by epoch.
    pub ap: Series,
    pub epochs: u32,
    pub steps_per_epoch: usize,
    pub last_step: u64,
    pub epoch: u32,
    pub eta_s: f32,
    pub status: String,
    pub finished: bool,
}

impl RunCurves {
    pub fn push(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::Started { epochs, steps_per_epoch, resumed_at_step } => {
                self.epochs = *epochs;
                self.steps_per_epoch = *steps_per_epoch;
                self.finished = false;
                self.status =
                    if *resumed_at_step > 0 { format!("resumed at step {resumed_at_step}") } else { "started".into() };
            }
            TrainEvent::Step { step, epoch, loss, stages, lr, images_per_s, eta_s } => {
                let x = *step as f64;
                self.losses.entry("total".into()).or_default().push([x, *loss as f64]);
                for (i, s) in stages.iter().enumerate() {
                    for (name, value) in
                        [("classification", s.classification), ("boxes", s.boxes), ("landmarks", s.landmarks)]
                    {
                        self.losses.entry(format!("s{} {name}", i + 1)).or_default().push([x, value as f64]);
                    }
                }
                self.lr.push([x, *lr]);
                self.images_per_s.push([x, *images_per_s as f64]);
                self.last_step = *step;
                self.epoch = *epoch;
                self.eta_s = *eta_s;
                self.status = "training".into();
            }
            TrainEvent::Val { epoch, .. } => {
                for (series, value) in event.val_series() {
                    self.ap.entry(series).or_default().push([*epoch as f64, value]);
                }
            }
            TrainEvent::Paused { step } => self.status = format!("paused at step {step}"),
            TrainEvent::Resumed { .. } => self.status = "training".into(),
            TrainEvent::Error { message } => self.status = format!("error: {message}"),
            TrainEvent::Finished { step, stopped } => {
                self.finished = true;
                self.status =
                    if *stopped { format!("stopped at step {step}") } else { format!("finished at step {step}") };
            }
            TrainEvent::EpochEnd { .. } | TrainEvent::Checkpoint { .. } | TrainEvent::Warning { .. } => {}
        }
    }

    /// Fraction of the run done, when known.
    pub fn fraction(&self) -> Option<f32> {
        let total = self.epochs as u64 * self.steps_per_epoch as u64;
        (total > 0).then(|| (self.last_step as f32 / total as f32).min(1.0))
    }

    pub fn point_count(&self) -> usize {
        self.losses.get("total").map_or(0, Vec::len)
    }
}

/// A run folder followed through its `metrics.jsonl`, read incrementally as it grows.
pub struct RunFile {
    pub dir: PathBuf,
    pub curves: RunCurves,
    offset: u64,
    partial: String,
    pub overlay: bool,
}

impl RunFile {
    fn new(dir: PathBuf) -> RunFile {
        RunFile { dir, curves: RunCurves::default(), offset: 0, partial: String::new(), overlay: false }
    }

    pub fn name(&self) -> String {
        self.dir.file_name().map_or_else(|| self.dir.display().to_string(), |n| n.to_string_lossy().into())
    }

    /// Reads the lines appended since the last call.
    pub fn refresh(&mut self) -> std::io::Result<()> {
        let mut file = std::fs::File::open(self.dir.join("metrics.jsonl"))?;
        let len = file.metadata()?.len();
        if len < self.offset {
            // Rewritten from scratch (a new run in the same folder).
            *self = RunFile { overlay: self.overlay, ..RunFile::new(self.dir.clone()) };
        }
        if len == self.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            if let Ok(event) = serde_json::from_str::<TrainEvent>(line.trim()) {
                self.curves.push(&event);
            }
        }
        Ok(())
    }
}

/// The run form, with the CLI's defaults.
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
}

impl Default for TrainForm {
    fn default() -> Self {
        TrainForm {
            data: String::new(),
            preset: "seed-full".into(),
            epochs: 60,
            batch: 8,
            image_size: 640,
            lr_schedule: "report".into(),
            device: "cpu".into(),
            backbone_weights: String::new(),
            out: "runs/run1".into(),
            val_every: 1,
            max_steps: 0,
            loss: None,
            width: 1.0,
            resume: false,
        }
    }
}

impl TrainForm {
    fn config(&self) -> Result<TrainConfig, String> {
        if self.data.trim().is_empty() {
            return Err("choose the dataset folder to train on".into());
        }
        let device: DeviceSet = self.device.parse().map_err(|e| format!("device {:?}: {e}", self.device))?;
        let weights = self.backbone_weights.trim();
        Ok(TrainConfig {
            width: (self.width > 0.0 && self.width < 1.0).then_some(self.width),
            data: PathBuf::from(self.data.trim()),
            preset: self.preset.clone(),
            out: PathBuf::from(self.out.trim()),
            epochs: self.epochs.max(1),
            batch: self.batch.max(1),
            image_size: self.image_size.max(32),
            lr_schedule: self.lr_schedule.clone(),
            device,
            backbone_weights: (!weights.is_empty()).then(|| PathBuf::from(weights)),
            max_steps: (self.max_steps > 0).then_some(self.max_steps),
            loss: self.loss.clone(),
            variance: None,
            val_every: self.val_every,
            seed: 1,
            workers: 2,
            augment: AugmentConfig::default(),
        })
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
    study: Option<Task<Result<PathBuf, String>>>,
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
        match self.form.config() {
            Ok(config) => {
                let out = config.out.clone();
                self.trainer = Some(spawn(config, self.form.resume));
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
        self.study = Some(self.jobs.spawn("Ablation study", ctx, move |progress| {
            progress.set_total(config.presets.len());
            let on_event = |event: StudyEvent| match event {
                StudyEvent::Skipped { .. } | StudyEvent::Training { event: TrainEvent::Finished { .. }, .. } => {
                    progress.advance()
                }
                StudyEvent::Training { preset, event: TrainEvent::Error { message } } => {
                    notices.error(format!("Ablation study, {preset}: {message}"))
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
            .flat_map(|p| if p.join("metrics.jsonl").is_file() { vec![p] } else { children(&p) })
            .filter(|p| p.join("metrics.jsonl").is_file())
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
        egui::CentralPanel::default().show(ui, |ui| self.charts(ui));
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
                egui::ComboBox::from_id_salt("preset").selected_text(&f.preset).show_ui(ui, |ui| {
                    for name in PRESETS {
                        ui.selectable_value(&mut f.preset, name.to_string(), name);
                    }
                });
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
                egui::ComboBox::from_id_salt("schedule").selected_text(&f.lr_schedule).show_ui(ui, |ui| {
                    for name in SCHEDULES {
                        ui.selectable_value(&mut f.lr_schedule, name.to_string(), name);
                    }
                });
                ui.end_row();
                let label = ui.label("Device");
                ui.text_edit_singleline(&mut f.device)
                    .labelled_by(label.id)
                    .on_hover_text("cpu, wgpu[:N] or cuda[:N]; several, comma-separated, train data-parallel");
                ui.end_row();
                let label = ui.label("Backbone weights");
                ui.add(egui::TextEdit::singleline(&mut f.backbone_weights).hint_text("optional ImageNet .pth"))
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Output folder");
                ui.text_edit_singleline(&mut f.out).labelled_by(label.id);
                ui.end_row();
                ui.label("Loss setup");
                optional_choice(
                    ui,
                    egui::ComboBox::from_id_salt("loss"),
                    &mut f.loss,
                    "default (pytorch-retinaface)",
                    &LOSS_SETUPS,
                );
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

    fn charts(&mut self, ui: &mut egui::Ui) {
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
            chart(&mut columns[0], "loss", height, |plot| {
                for (run, curves) in &shown {
                    for (series, points) in &curves.losses {
                        plot.line(Line::new(name(run, series), thin(points)));
                    }
                }
            });
            columns[1].label("Validation AP (by epoch)");
            chart(&mut columns[1], "ap", height, |plot| {
                plot.set_plot_bounds_y(0.0..=1.0);
                for (run, curves) in &shown {
                    for (series, points) in &curves.ap {
                        plot.line(Line::new(name(run, series), thin(points)));
                    }
                }
            });
            columns[0].label("Learning rate (by step)");
            chart(&mut columns[0], "lr", height, |plot| {
                for (run, curves) in &shown {
                    plot.line(Line::new(name(run, "lr"), thin(&curves.lr)));
                }
            });
            columns[1].label("Images/s (by step)");
            chart(&mut columns[1], "speed", height, |plot| {
                for (run, curves) in &shown {
                    plot.line(Line::new(name(run, "images/s"), thin(&curves.images_per_s)));
                }
            });
        });
    }
}

fn chart(ui: &mut egui::Ui, id: &str, height: f32, build: impl FnOnce(&mut egui_plot::PlotUi<'_>)) {
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
    use crate::train::StageTerms;

    fn step(step: u64) -> TrainEvent {
        TrainEvent::Step {
            step,
            epoch: 1,
            loss: 3.0,
            stages: vec![StageTerms { classification: 1.0, boxes: 1.5, landmarks: 0.5 }; 2],
            lr: 0.01,
            images_per_s: 20.0,
            eta_s: 60.0,
        }
    }

    #[test]
    fn curves_have_a_series_per_term_and_stage() {
        let mut curves = RunCurves::default();
        curves.push(&TrainEvent::Started { epochs: 2, steps_per_epoch: 10, resumed_at_step: 0 });
        curves.push(&step(1));
        curves.push(&step(2));
        curves.push(&TrainEvent::Val { epoch: 1, step: 2, ap: vec![("all".into(), 0.5)], stages: Vec::new() });
        assert_eq!(curves.losses.len(), 7, "{:?}", curves.losses.keys().collect::<Vec<_>>());
        assert_eq!(curves.losses["s2 boxes"], vec![[1.0, 1.5], [2.0, 1.5]]);
        assert_eq!(curves.ap["all"], vec![[1.0, 0.5]]);
        assert_eq!(curves.fraction(), Some(0.1));
        let stages = vec![vec![("all".into(), 0.4)], vec![("all".into(), 0.5)]];
        curves.push(&TrainEvent::Val { epoch: 2, step: 4, ap: vec![("all".into(), 0.5)], stages });
        assert_eq!(curves.ap["all · stage 1"], vec![[2.0, 0.4]], "with the cascade, one curve per stage");
        assert_eq!(curves.ap["all · stage 2"], vec![[2.0, 0.5]]);
    }

    #[test]
    fn a_growing_metrics_file_is_followed_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let line = |e: &TrainEvent| serde_json::to_string(e).unwrap() + "\n";
        std::fs::write(&path, line(&step(1)) + &line(&step(2))[..20]).unwrap();
        let mut run = RunFile::new(dir.path().to_path_buf());
        run.refresh().unwrap();
        assert_eq!(run.curves.point_count(), 1, "the half-written line waits");
        std::fs::write(&path, line(&step(1)) + &line(&step(2)) + &line(&step(3))).unwrap();
        run.refresh().unwrap();
        assert_eq!(run.curves.point_count(), 3);
        std::fs::write(&path, line(&step(7))).unwrap();
        run.refresh().unwrap();
        assert_eq!(run.curves.losses["total"], vec![[7.0, 3.0]], "a rewritten file starts over");
    }

    #[test]
    fn long_series_are_thinned_keeping_the_last_point() {
        let points: Vec<[f64; 2]> = (0..10_001).map(|i| [i as f64, 0.0]).collect();
        let thinned = thin(&points);
        let pts = thinned.points();
        assert!(pts.len() <= MAX_PLOT_POINTS + 1);
        assert_eq!(pts.last().unwrap().x, 10_000.0);
    }
}
