//! The Train panel: the run form ([`TrainForm`]: defaults that fit the device, an estimate of
//! the time per epoch before Start, warnings), Start / Pause / Resume / Stop, and live charts
//! (`train_charts`) of every loss term per stage, the learning rate, images/s and validation AP.
//! Past runs (from the CLI too) are read from their `metrics.jsonl`, followed as they grow, can
//! be renamed and overlaid.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;

use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::train_charts::{ChartRun, ChartSettings, LossLine, charts_ui, loss_lines, read_config_rows, side_list_ui};
pub use super::train_form::TrainForm;
use super::train_form::{DataSummary, DeviceClass, estimate_text, format_duration};
use crate::model::adapters;
use crate::train::{
    ABLATION, Control, RunCurves, RunFile, RunFolder, StepEstimate, StudyConfig, StudyEvent, StudyHooks, TrainConfig,
    TrainError, TrainEvent, TrainerHandle, WARM_UP_STEPS, estimate_step_seconds, run_study, spawn,
};

/// Steps the estimate times (after its warm-up): the median of three shrugs off one slow step.
const ESTIMATE_STEPS: usize = 3;

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
    /// Smoothing, the log axis and the series switched off.
    pub charts: ChartSettings,
    /// The device class the form's defaults last followed (`None` before the first frame).
    defaults_for: Option<DeviceClass>,
    /// The dataset the form names, as last read: its path and what it holds.
    data: Option<(String, Result<DataSummary, String>)>,
    data_task: Option<(String, Task<Result<DataSummary, String>>)>,
    /// The last estimate and the config it timed (the form may have changed since).
    estimate: Option<(TrainConfig, Result<StepEstimate, String>)>,
    estimate_task: Option<(TrainConfig, Task<Result<StepEstimate, TrainError>>)>,
    /// The run being renamed: its folder and the name as typed.
    renaming: Option<(PathBuf, String)>,
    /// Each run folder's `config.json` as rows, read once.
    configs: HashMap<PathBuf, Vec<(String, String)>>,
}

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
            charts: ChartSettings::default(),
            defaults_for: None,
            data: None,
            data_task: None,
            estimate: None,
            estimate_task: None,
            renaming: None,
            configs: HashMap::new(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.trainer.is_some()
    }

    /// The running training's progress as the window title shows it in the background:
    /// "12% Training runs/run1 (14 min left)".
    pub fn progress_summary(&self) -> Option<String> {
        let (out, curves) = self.live.as_ref().filter(|_| self.trainer.is_some())?;
        let percent = (curves.fraction()? * 100.0).floor().clamp(0.0, 100.0);
        let eta = f64::from(curves.eta_s);
        let left =
            if eta.is_finite() && eta > 0.0 { format!(" ({} left)", format_duration(eta)) } else { String::new() };
        Some(format!("{percent:.0}% Training {}{left}", out.display()))
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

    /// Times a few training steps of the form's run on its device in a job (cancellable in the
    /// status bar); the result shows under the form.
    pub fn start_estimate(&mut self, ctx: &egui::Context) {
        if self.estimate_task.is_some() || self.trainer.is_some() {
            return;
        }
        let config = match self.form.config() {
            Ok(config) => config,
            Err(err) => return self.notices.error(format!("Cannot estimate: {err}")),
        };
        let devices: Vec<String> = config.device.devices().iter().map(|d| d.describe()).collect();
        let label = format!("Timing {ESTIMATE_STEPS} steps of {} on {}", config.preset, devices.join(", "));
        let timed = config.clone();
        let task = self.jobs.spawn(label, ctx, move |progress| {
            progress.set_total(WARM_UP_STEPS + ESTIMATE_STEPS);
            estimate_step_seconds(&timed, ESTIMATE_STEPS, |_| {
                progress.advance();
                if progress.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })
        });
        self.estimate_task = Some((config, task));
    }

    /// The last estimate, when it succeeded.
    pub fn estimate(&self) -> Option<&StepEstimate> {
        self.estimate.as_ref().and_then(|(_, result)| result.as_ref().ok())
    }

    pub fn is_estimating(&self) -> bool {
        self.estimate_task.is_some()
    }

    /// What the form's dataset holds, once it has been read.
    pub fn dataset_summary(&self) -> Option<&Result<DataSummary, String>> {
        self.data.as_ref().filter(|(path, _)| path == self.form.data.trim()).map(|(_, result)| result)
    }

    /// What the form warns about, with what its dataset holds once it has been read.
    pub fn warnings(&self) -> Vec<String> {
        self.form.warnings(self.dataset_summary())
    }

    /// Reads the form's dataset in a job when it names another folder than the one read last.
    fn read_data(&mut self, ctx: &egui::Context) {
        let path = self.form.data.trim().to_string();
        let known = |p: Option<&String>| p.is_some_and(|p| *p == path);
        if path.is_empty()
            || known(self.data.as_ref().map(|(p, _)| p))
            || known(self.data_task.as_ref().map(|(p, _)| p))
        {
            return;
        }
        let folder = PathBuf::from(&path);
        let task = self.jobs.spawn(format!("Reading {path}"), ctx, move |_| DataSummary::read(&folder));
        self.data_task = Some((path, task));
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

    /// Drains the trainer's events, collects finished jobs and follows the run files; cheap
    /// enough for every frame.
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
        if let Some((config, task)) = self.estimate_task.take_if(|(_, task)| !task.is_running()) {
            match task.poll() {
                Some(Ok(estimate)) => {
                    for notice in &estimate.notices {
                        self.notices.info(format!("Estimate: {notice}"));
                    }
                    self.estimate = Some((config, Ok(estimate)));
                }
                Some(Err(TrainError::Cancelled)) => {}
                Some(Err(err)) => self.estimate = Some((config, Err(err.to_string()))),
                None => self.estimate = Some((config, Err("the estimate's thread ended unexpectedly".into()))),
            }
        }
        if let Some((path, task)) = self.data_task.take_if(|(_, task)| !task.is_running()) {
            let result = task.poll().unwrap_or_else(|| Err("reading the dataset ended unexpectedly".into()));
            self.data = Some((path, result));
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

    /// Lists the run folders under `runs_dir`, reads what their metrics files gained and the
    /// configs not read yet.
    pub fn scan_runs(&mut self) {
        let live = self.live.as_ref().map(|(p, _)| p.clone());
        if let Some(dir) = &live {
            self.read_config(dir);
        }
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
                self.read_config(&path);
                self.runs.push(RunFile::new(path));
            }
        }
        for run in &mut self.runs {
            if live.as_deref().is_some_and(|l| same_dir(l, &run.dir)) {
                continue;
            }
            let _ = run.refresh();
        }
    }

    fn read_config(&mut self, dir: &Path) {
        if !self.configs.contains_key(dir)
            && let Some(rows) = read_config_rows(dir)
        {
            self.configs.insert(dir.to_path_buf(), rows);
        }
    }

    /// The loss series as the chart draws them now (smoothed, on the log axis, without the
    /// series switched off).
    pub fn plotted_losses(&self) -> Vec<LossLine> {
        loss_lines(&chart_runs(self.live.as_ref(), &self.runs, &self.configs), &self.charts)
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::left("train-form").default_size(290.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                self.form_ui(ui);
                ui.separator();
                self.runs_ui(ui);
            });
        });
        let shown = chart_runs(self.live.as_ref(), &self.runs, &self.configs);
        if shown.is_empty() {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.centered_and_justified(|ui| {
                    ui.weak("Start a run, or tick past runs on the left to see their curves")
                });
            });
            return;
        }
        egui::Panel::right("train-curves").default_size(260.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| side_list_ui(ui, &shown, &mut self.charts));
        });
        egui::CentralPanel::default().show(ui, |ui| charts_ui(ui, &shown, &self.charts));
    }

    fn form_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("New run");
        let running = self.trainer.is_some();
        ui.add_enabled_ui(!running, |ui| {
            let data_field = self.form.fields_ui(ui);
            if !data_field.has_focus() {
                self.read_data(ui.ctx());
            }
            self.defaults_ui(ui);
            self.form.resume_ui(ui);
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
            let estimate = egui::Button::new("Estimate");
            if ui
                .add_enabled(!running && self.estimate_task.is_none(), estimate)
                .on_hover_text("Time a warm-up step and three real steps of this run on its device, before starting it")
                .clicked()
            {
                self.start_estimate(ui.ctx());
            }
            if self.estimate_task.is_some() {
                ui.spinner();
            }
        });
        self.estimate_ui(ui);
        // Below the buttons, so that the buttons do not move when a warning comes and goes.
        for warning in self.warnings() {
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
                let eta = format_duration(f64::from(curves.eta_s));
                let text = format!("epoch {}/{}, step {}, ETA {eta}", curves.epoch, curves.epochs, curves.last_step);
                ui.add(egui::ProgressBar::new(fraction).text(text));
            }
        }
    }

    /// The preset, image size and batch follow the device's class while the user has not edited
    /// them (on the first frame too: the form proposes what fits this machine); otherwise a
    /// button offers them.
    fn defaults_ui(&mut self, ui: &mut egui::Ui) {
        let class = self.form.device_class(adapters());
        let defaults = class.defaults();
        if self.defaults_for != Some(class) {
            // Said when the user's device change moved them, not when the first frame proposes.
            if self.form.follow_device(class) && self.defaults_for.is_some() {
                self.notices
                    .info(format!("Preset, image size and batch set to {defaults}, what fits {}", class.name()));
            }
            self.defaults_for = Some(class);
        }
        if self.form.has_defaults(defaults) {
            ui.weak(format!("Preset, image size and batch: the defaults for {} ({defaults})", class.name()));
        } else if ui
            .button("Use defaults for this device")
            .on_hover_text(format!("{defaults}: what fits {}", class.name()))
            .clicked()
        {
            self.form.apply_defaults(defaults);
        }
    }

    fn estimate_ui(&self, ui: &mut egui::Ui) {
        let Some((config, result)) = &self.estimate else { return };
        match result {
            Ok(estimate) => {
                ui.label(estimate_text(estimate));
                if self.form.config().ok().as_ref() != Some(config) {
                    ui.weak("(timed before the form changed: estimate again)");
                }
            }
            Err(err) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("Estimate failed: {err}"));
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
        let mut rename = None;
        for run in &mut self.runs {
            if let Some((dir, typed)) = &mut self.renaming
                && *dir == run.dir
            {
                ui.horizontal(|ui| {
                    let label = ui.label("New name");
                    let field = ui.text_edit_singleline(typed).labelled_by(label.id);
                    let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    if ui.button("Save name").clicked() || entered {
                        rename = Some(true);
                    }
                    if ui.button("Cancel").clicked() {
                        rename = Some(false);
                    }
                });
                continue;
            }
            let name = run.name();
            let c = &run.curves;
            let last_ap = c.ap.values().filter_map(|v| v.last()).map(|p| format!("{:.3}", p[1])).collect::<Vec<_>>();
            let text = format!(
                "{name}: step {}, {}{}",
                c.last_step,
                c.status,
                if last_ap.is_empty() { String::new() } else { format!(", AP {}", last_ap.join("/")) }
            );
            ui.horizontal(|ui| {
                ui.checkbox(&mut run.overlay, text).on_hover_text("Overlay this run's curves on the charts");
                if ui
                    .small_button("Rename")
                    .on_hover_text(format!("Give {} a name of its own", run.dir.display()))
                    .clicked()
                {
                    self.renaming = Some((run.dir.clone(), name));
                }
            });
        }
        match (rename, self.renaming.take()) {
            (Some(true), Some((dir, typed))) => {
                if let Some(run) = self.runs.iter_mut().find(|r| r.dir == dir)
                    && let Err(err) = run.rename(&typed)
                {
                    self.notices.error(format!("Cannot rename the run: {err}"));
                }
            }
            (None, renaming) => self.renaming = renaming,
            (Some(false), _) | (Some(true), None) => {}
        }
    }
}

/// Every run shown: the live one, then the overlaid ones, with their names and configs.
fn chart_runs<'a>(
    live: Option<&'a (PathBuf, RunCurves)>,
    runs: &'a [RunFile],
    configs: &'a HashMap<PathBuf, Vec<(String, String)>>,
) -> Vec<ChartRun<'a>> {
    let config = |dir: &Path| configs.get(dir).map(Vec::as_slice);
    let mut shown = Vec::new();
    if let Some((out, curves)) = live {
        let listed = runs.iter().find(|r| r.dir == *out);
        let name = listed
            .map_or_else(|| out.file_name().map_or("live".into(), |n| n.to_string_lossy().into_owned()), RunFile::name);
        shown.push(ChartRun::new(out, name, curves, config(out)));
    }
    for run in runs.iter().filter(|r| r.overlay) {
        shown.push(ChartRun::new(&run.dir, run.name(), &run.curves, config(&run.dir)));
    }
    shown
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
