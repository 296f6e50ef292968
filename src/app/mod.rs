//! The studio: an eframe app with four panels (Dataset, Train, Evaluate, Detect) over the
//! library. It holds UI state only; all real work happens in library calls on worker threads.

mod dataset_panel;
mod detect_panel;
mod edit;
mod eval_compare;
mod eval_details;
mod eval_panel;
mod eval_rows;
mod jobs;
mod latest_worker;
mod model_export;
mod model_picker;
mod notices;
mod overlay;
mod start_page;
mod thumbnails;
mod train_charts;
mod train_form;
mod train_panel;
mod viewer;
mod widgets;

use std::path::PathBuf;

use crossbeam_channel::{Receiver, unbounded};
use serde::{Deserialize, Serialize};

pub use dataset_panel::{Assist, DatasetPanel, DatasetRequest, Filters, PendingRecovery, Tool, Tri};
pub use detect_panel::{DetectPanel, Photo};
pub use edit::{EditHistory, ImageRef};
pub use eval_compare::{ErrorsMode, FaceEntry, KeptRun};
pub use eval_panel::{EvalOutcome, EvalPanel, Source, TTA_LABEL};
pub use eval_rows::{ImageRow, RowsKey, SortBy};
pub use jobs::{Jobs, Progress, Task};
pub use model_export::{ModelExport, ModelSource};
pub use notices::{Notice, Notices};
pub use overlay::ColorBy;
pub use start_page::{PANELS, StartAction, StartPage};
pub use thumbnails::Thumbnails;
pub use train_charts::ChartSettings;
pub use train_panel::{TrainForm, TrainPanel};
pub use viewer::{ImageTransform, ImageView};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Tab {
    /// The way in: shown with nothing open.
    #[default]
    Start,
    Dataset,
    Train,
    Evaluate,
    Detect,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Start, Tab::Dataset, Tab::Train, Tab::Evaluate, Tab::Detect];

    pub fn name(self) -> &'static str {
        match self {
            Tab::Start => "Home",
            Tab::Dataset => "Dataset",
            Tab::Train => "Train",
            Tab::Evaluate => "Evaluate",
            Tab::Detect => "Detect",
        }
    }
}

/// What the studio remembers between runs (the window's own size and position eframe keeps).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub recent: Vec<PathBuf>,
    pub tab: Tab,
    pub train_form: TrainForm,
    pub runs_dir: Option<String>,
    pub model_path: String,
    pub model_preset: Option<String>,
    pub charts: ChartSettings,
}

const SETTINGS_KEY: &str = "facestudio";
const MAX_RECENT: usize = 8;

/// A question the user has to answer before the studio goes on.
#[derive(Clone, Debug, PartialEq)]
enum Pending {
    /// Open this dataset, dropping unsaved edits?
    Open(PathBuf),
    /// Quit with unsaved edits?
    Quit,
}

pub struct Studio {
    pub tab: Tab,
    pub start: StartPage,
    pub dataset: DatasetPanel,
    pub train: TrainPanel,
    pub evaluate: EvalPanel,
    pub detect: DetectPanel,
    pub jobs: Jobs,
    pub notices: Notices,
    recent: Vec<PathBuf>,
    pending: Option<Pending>,
    allow_close: bool,
    dialogs: Option<Receiver<DialogResult>>,
    startup: Vec<PathBuf>,
    /// The window title last sent, so it is sent only when it changes.
    title: String,
}

/// The native dialogs the studio opens.
#[derive(Clone, Copy)]
enum Dialog {
    Dataset,
    Photos,
    SynthFolder,
}

enum DialogResult {
    Dataset(PathBuf),
    Photos(Vec<PathBuf>),
    SynthFolder(PathBuf),
}

impl Studio {
    /// The studio with `settings`, opening `paths` (dataset folders, photos, photo folders, model
    /// files) on its first frame.
    pub fn new(settings: Settings, paths: Vec<PathBuf>) -> Studio {
        let jobs = Jobs::default();
        let notices = Notices::default();
        let mut train = TrainPanel::new(notices.clone(), jobs.clone());
        train.form = settings.train_form;
        train.charts = settings.charts;
        if let Some(dir) = settings.runs_dir {
            train.runs_dir = dir;
        }
        let mut detect = DetectPanel::new(jobs.clone(), notices.clone());
        detect.model_path = settings.model_path;
        detect.preset = settings.model_preset;
        Studio {
            // An empty Dataset panel says nothing about what to do: with nothing open yet, the
            // way in is the start page.
            tab: if settings.tab == Tab::Dataset { Tab::Start } else { settings.tab },
            start: StartPage::new(jobs.clone(), notices.clone()),
            dataset: DatasetPanel::new(jobs.clone(), notices.clone()),
            train,
            evaluate: EvalPanel::new(jobs.clone(), notices.clone()),
            detect,
            jobs,
            notices,
            recent: settings.recent,
            pending: None,
            allow_close: false,
            dialogs: None,
            startup: paths,
            title: String::new(),
        }
    }

    /// For eframe: settings from its storage.
    pub fn from_creation_context(cc: &eframe::CreationContext<'_>, paths: Vec<PathBuf>) -> Studio {
        let settings = cc.storage.and_then(|s| eframe::get_value::<Settings>(s, SETTINGS_KEY)).unwrap_or_default();
        Studio::new(settings, paths)
    }

    pub fn settings(&self) -> Settings {
        Settings {
            recent: self.recent.clone(),
            tab: self.tab,
            train_form: self.train.form.clone(),
            runs_dir: Some(self.train.runs_dir.clone()),
            model_path: self.detect.model_path.clone(),
            model_preset: self.detect.preset.clone(),
            charts: self.train.charts.clone(),
        }
    }

    pub fn recent(&self) -> &[PathBuf] {
        &self.recent
    }

    /// Routes paths to the panel they belong to: a dataset folder to Dataset, a model file to
    /// Detect's model, photos and photo folders to Detect.
    pub fn open_paths(&mut self, ctx: &egui::Context, paths: &[PathBuf]) {
        let mut photos = Vec::new();
        for path in paths {
            if path.is_dir() && crate::dataset::is_dataset_folder(path) {
                self.tab = Tab::Dataset;
                self.dataset.open(ctx, path);
            } else if DetectPanel::is_model_file(path) {
                self.detect.model_path = path.display().to_string();
                self.detect.load_model(ctx);
                self.tab = Tab::Detect;
            } else if path.exists() {
                photos.push(path.clone());
            } else {
                self.notices.error(format!("{} does not exist", path.display()));
            }
        }
        if !photos.is_empty() {
            self.detect.add_photos(&photos);
            self.tab = Tab::Detect;
        }
    }

    fn remember(&mut self, path: PathBuf) {
        self.recent.retain(|p| p != &path);
        self.recent.insert(0, path);
        self.recent.truncate(MAX_RECENT);
    }

    /// Native dialogs block, and without a portal they return at once: run them off the UI thread.
    fn dialog(&mut self, ctx: &egui::Context, dialog: Dialog) {
        let (tx, rx) = unbounded();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let result = match dialog {
                Dialog::Photos => rfd::FileDialog::new()
                    .add_filter("images", &crate::detect::IMAGE_EXTENSIONS)
                    .pick_files()
                    .map(DialogResult::Photos),
                Dialog::Dataset => rfd::FileDialog::new().pick_folder().map(DialogResult::Dataset),
                Dialog::SynthFolder => rfd::FileDialog::new().pick_folder().map(DialogResult::SynthFolder),
            };
            if let Some(result) = result {
                let _ = tx.send(result);
            }
            ctx.request_repaint();
        });
        self.dialogs = Some(rx);
    }

    /// Everything but drawing: background results, dropped files, dialogs.
    pub fn update(&mut self, ctx: &egui::Context) {
        if !self.startup.is_empty() {
            let paths = std::mem::take(&mut self.startup);
            self.open_paths(ctx, &paths);
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        if !dropped.is_empty() {
            self.open_paths(ctx, &dropped);
        }
        if let Some(rx) = &self.dialogs
            && let Ok(result) = rx.try_recv()
        {
            self.dialogs = None;
            match result {
                DialogResult::Dataset(path) => self.open_paths(ctx, &[path]),
                DialogResult::Photos(paths) => self.open_paths(ctx, &paths),
                DialogResult::SynthFolder(path) => self.start.synth_dir = path.display().to_string(),
            }
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::O)) {
            self.dialog(ctx, Dialog::Dataset);
        }
        if let Some(generated) = self.start.logic() {
            self.open_paths(ctx, &[generated]);
        }
        if self.tab == Tab::Dataset {
            self.dataset.claim_tab_key(ctx);
        }
        self.dataset.logic(ctx);
        if let Some(path) = self.dataset.opened.take() {
            // The dataset just opened is the one to train and evaluate on, unless another was
            // typed there already.
            for field in [&mut self.train.form.data, &mut self.evaluate.gt_dir] {
                if field.trim().is_empty() {
                    *field = path.display().to_string();
                }
            }
            self.remember(path);
        }
        if let Some(DatasetRequest::ConfirmOpen(path)) = self.dataset.request.take() {
            self.pending = Some(Pending::Open(path));
        }
        self.train.logic(ctx);
        self.evaluate.logic(ctx);
        self.detect.logic(ctx);
    }

    /// The window's title: the open dataset (`*` with unsaved edits) and, while the window is in
    /// the background, the progress of the first long job, so a glance at the task bar says how
    /// far it got.
    pub fn window_title(&self, focused: bool) -> String {
        let mut title = String::new();
        if !focused && let Some(progress) = self.train.progress_summary().or_else(|| self.jobs.summary()) {
            title.push_str(&progress);
            title.push_str(" · ");
        }
        if let Some(name) = self.dataset.dataset.as_ref().and_then(|d| d.root.file_name()) {
            title.push_str(&name.to_string_lossy());
            if self.dataset.has_unsaved_changes() {
                title.push_str(" *");
            }
            title.push_str(" — ");
        }
        title.push_str("facestudio");
        title
    }

    fn update_title(&mut self, ctx: &egui::Context) {
        let focused = ctx.input(|i| i.viewport().focused.unwrap_or(true));
        let title = self.window_title(focused);
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    /// The title the window shows now.
    pub fn title(&self) -> &str {
        &self.title
    }

    fn start_ui(&mut self, ui: &mut egui::Ui) {
        let action = self.start.ui(ui, &self.recent, &mut self.detect.model_path, &mut self.detect.preset);
        let ctx = ui.ctx().clone();
        match action {
            Some(StartAction::ChooseDataset) => self.dialog(&ctx, Dialog::Dataset),
            Some(StartAction::ChoosePhotos) => self.dialog(&ctx, Dialog::Photos),
            Some(StartAction::ChooseSynthFolder) => self.dialog(&ctx, Dialog::SynthFolder),
            Some(StartAction::OpenDataset(path)) => self.open_paths(&ctx, &[path]),
            Some(StartAction::LoadModel) => {
                self.detect.load_model(&ctx);
                self.tab = Tab::Detect;
            }
            None => {}
        }
    }

    /// Draws the whole window.
    pub fn draw_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if ctx.input(|i| i.viewport().close_requested()) && self.dataset.has_unsaved_changes() && !self.allow_close {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.pending = Some(Pending::Quit);
        }
        egui::Panel::top("menu").show(ui, |ui| self.top_bar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            self.notices.toasts_ui(ui);
            // A fixed height: jobs coming and going must not move the panels above.
            ui.horizontal(|ui| {
                ui.set_height(22.0);
                self.jobs.status_bar_ui(ui);
            });
        });
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Start => self.start_ui(ui),
            Tab::Dataset => self.dataset.ui(ui),
            Tab::Train => self.train.ui(ui),
            Tab::Evaluate => self.evaluate.ui(ui),
            Tab::Detect => self.detect.ui(ui),
        });
        // Whatever the tab: the question belongs to the dataset just opened, not to its panel.
        self.dataset.recovery_offer_ui(&ctx);
        self.confirm(&ctx);
        // Last: what this frame's clicks (a save, an edit) changed shows in this frame's title.
        self.update_title(&ctx);
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.menu_button("File", |ui| {
                if ui.add(egui::Button::new("Open dataset…").shortcut_text("Ctrl+O")).clicked() {
                    self.dialog(ui.ctx(), Dialog::Dataset);
                    ui.close();
                }
                if ui.button("Open photos…").clicked() {
                    self.dialog(ui.ctx(), Dialog::Photos);
                    ui.close();
                }
                ui.menu_button("Recent datasets", |ui| {
                    if self.recent.is_empty() {
                        ui.weak("none yet");
                    }
                    for path in self.recent.clone() {
                        if ui.button(path.display().to_string()).clicked() {
                            self.tab = Tab::Dataset;
                            self.dataset.open(ui.ctx(), &path);
                            ui.close();
                        }
                    }
                });
                if ui.add_enabled(self.dataset.has_unsaved_changes(), egui::Button::new("Save annotations")).clicked() {
                    self.dataset.save();
                    ui.close();
                }
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                    ui.close();
                }
            });
            ui.separator();
            for tab in Tab::ALL {
                let mut text = tab.name().to_string();
                if tab == Tab::Dataset && self.dataset.has_unsaved_changes() {
                    text.push_str(" *");
                }
                if tab == Tab::Train && self.train.is_running() {
                    text.push_str(" (running)");
                }
                ui.selectable_value(&mut self.tab, tab, text);
            }
        });
    }

    fn confirm(&mut self, ctx: &egui::Context) {
        let Some(pending) = self.pending.clone() else { return };
        let question = match &pending {
            Pending::Open(path) => format!("Open {} and lose the unsaved annotation changes?", path.display()),
            Pending::Quit => "Quit with unsaved annotation changes?".to_string(),
        };
        let mut choice = None;
        egui::Modal::new(egui::Id::unique("unsaved-changes")).show(ctx, |ui| {
            ui.heading("Unsaved changes");
            ui.label(question);
            ui.horizontal(|ui| {
                if ui.button("Save first").clicked() {
                    choice = Some(Choice::Save);
                }
                if ui.button("Discard changes").clicked() {
                    choice = Some(Choice::Discard);
                }
                if ui.button("Cancel").clicked() {
                    choice = Some(Choice::Cancel);
                }
            });
        });
        let Some(choice) = choice else { return };
        self.pending = None;
        let go_on = match choice {
            Choice::Cancel => false,
            Choice::Save => self.dataset.save(),
            Choice::Discard => {
                // The user gave the edits up: a crash now must not offer them back.
                self.dataset.remove_recovery();
                true
            }
        };
        if !go_on {
            return;
        }
        match pending {
            Pending::Open(path) => self.dataset.open_discarding(ctx, &path),
            Pending::Quit => {
                self.allow_close = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }
}

enum Choice {
    Save,
    Discard,
    Cancel,
}

impl eframe::App for Studio {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.update(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings());
    }
}

/// The window icon (`assets/icon.png`, embedded in the binary).
fn window_icon() -> Option<egui::IconData> {
    let image = image::load_from_memory(include_bytes!("../../assets/icon.png")).ok()?.into_rgba8();
    let (width, height) = image.dimensions();
    Some(egui::IconData { rgba: image.into_raw(), width, height })
}

/// Opens the studio window (blocks until it is closed). `paths` are opened as with
/// `facestudio open`.
pub fn run(paths: Vec<PathBuf>) -> eframe::Result<()> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("facestudio")
        .with_inner_size([1400.0, 900.0])
        .with_drag_and_drop(true);
    if let Some(icon) = window_icon() {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions { viewport, persist_window: true, ..Default::default() };
    eframe::run_native(
        "facestudio",
        options,
        Box::new(move |cc| Ok(Box::new(Studio::from_creation_context(cc, paths)))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_window_icon_decodes() {
        let icon = window_icon().expect("assets/icon.png decodes");
        assert_eq!((icon.width, icon.height), (64, 64));
        assert_eq!(icon.rgba.len(), 64 * 64 * 4);
    }

    /// What the studio saves on exit is what it starts from next time.
    #[test]
    fn settings_survive_a_save_and_a_restart() {
        let settings = Settings {
            recent: vec![PathBuf::from("/data/widerface"), PathBuf::from("/data/synth")],
            tab: Tab::Train,
            train_form: TrainForm { preset: "tiny".into(), epochs: 12, ..TrainForm::default() },
            runs_dir: Some("/runs".into()),
            model_path: "/models/tiny.bpk".into(),
            model_preset: None,
            charts: {
                let mut charts = ChartSettings::default();
                charts.smoothing = 0.6;
                charts.log_scale = true;
                charts.set_shown(std::path::Path::new("/runs/a"), "s1 boxes", false);
                charts
            },
        };
        let text = serde_json::to_string(&settings).unwrap();
        let restored: Settings = serde_json::from_str(&text).unwrap();
        assert_eq!(Studio::new(restored, Vec::new()).settings(), settings);
    }

    /// In the background the title leads with the first long job's progress; in front it does not.
    #[test]
    fn the_title_shows_a_jobs_progress_while_the_window_is_in_the_background() {
        let studio = Studio::new(Settings::default(), Vec::new());
        let (go, wait) = unbounded::<()>();
        let task = studio.jobs.spawn("Detecting 2 photos", &egui::Context::default(), move |progress| {
            progress.set_total(2);
            progress.advance();
            let _ = wait.recv();
        });
        while task.progress.counts() != (1, 2) {
            std::thread::yield_now();
        }
        let title = studio.window_title(false);
        assert!(title.starts_with("50% Detecting 2 photos (") && title.ends_with(" left) · facestudio"), "{title}");
        assert_eq!(studio.window_title(true), "facestudio");
        go.send(()).unwrap();
    }

    #[test]
    fn recent_folders_are_unique_newest_first_and_bounded() {
        let mut studio = Studio::new(Settings::default(), Vec::new());
        for i in 0..12 {
            studio.remember(PathBuf::from(format!("/d/{i}")));
        }
        studio.remember(PathBuf::from("/d/5"));
        assert_eq!(studio.recent().len(), MAX_RECENT);
        assert_eq!(studio.recent()[0], PathBuf::from("/d/5"));
        assert_eq!(studio.recent().iter().filter(|p| **p == PathBuf::from("/d/5")).count(), 1);
    }
}
