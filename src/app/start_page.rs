//! The start page: what a first-time user sees with nothing open. Every way in is one action:
//! open a dataset (or a recent one), open photos, generate a small synthetic dataset to try
//! training on, open a model with the preset its checkpoint needs; and a line on each panel.

use std::path::{Path, PathBuf};

use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::widgets::text_field_ui;
use crate::dataset::synth::{SynthConfig, SynthSummary, generate};
use crate::model::{PRESETS, preset_summary};

/// What the start page asks the shell to do; the shell owns the dialogs and the panels.
#[derive(Clone, Debug, PartialEq)]
pub enum StartAction {
    /// The folder dialog for a dataset.
    ChooseDataset,
    /// The file dialog for photos.
    ChoosePhotos,
    /// The folder dialog for the synthetic dataset's folder.
    ChooseSynthFolder,
    /// Open this dataset folder (a recent one, or one just generated).
    OpenDataset(PathBuf),
    /// Load the model the page's fields name into the Detect panel.
    LoadModel,
}

/// The synthetic dataset's size the page proposes: enough images for a `tiny` run to show a
/// curve in a few minutes on a CPU.
const DEFAULT_SYNTH_IMAGES: usize = 60;
const MAX_SYNTH_IMAGES: usize = 5000;

/// What each panel is for, as the page lists it.
pub const PANELS: [(&str, &str); 4] = [
    ("Dataset", "browse a WIDER FACE folder, fix boxes and landmarks, let a model pre-label and find mistakes"),
    ("Train", "train a RetinaFace preset in the background and watch its loss and AP curves"),
    ("Evaluate", "the official WIDER FACE protocol: AP per difficulty, PR curves, the faces a model misses"),
    ("Detect", "drop photos, see faces with confidence and NMS sliders, export the detections"),
];

pub struct StartPage {
    jobs: Jobs,
    notices: Notices,
    /// Where "Generate" writes the synthetic dataset (an empty or new folder).
    pub synth_dir: String,
    pub synth_images: usize,
    synth_task: Option<Task<Result<SynthSummary, String>>>,
}

impl StartPage {
    pub fn new(jobs: Jobs, notices: Notices) -> StartPage {
        StartPage {
            jobs,
            notices,
            synth_dir: default_synth_dir().display().to_string(),
            synth_images: DEFAULT_SYNTH_IMAGES,
            synth_task: None,
        }
    }

    pub fn is_generating(&self) -> bool {
        self.synth_task.is_some()
    }

    /// Writes the synthetic dataset on a job's thread; [`StartPage::logic`] opens it when done.
    pub fn generate(&mut self, ctx: &egui::Context) {
        if self.synth_task.is_some() {
            return;
        }
        let dir = PathBuf::from(self.synth_dir.trim());
        if dir.as_os_str().is_empty() {
            return self.notices.error("Choose a folder for the synthetic dataset first");
        }
        let config = SynthConfig::new(self.synth_images.clamp(1, MAX_SYNTH_IMAGES), 7);
        let label =
            format!("Generating {} synthetic images in {}", config.train_images + config.val_images, dir.display());
        self.synth_task =
            Some(self.jobs.spawn(label, ctx, move |_| generate(&dir, &config).map_err(|e| e.to_string())));
    }

    /// The generated dataset to open, once its job is done.
    pub fn logic(&mut self) -> Option<PathBuf> {
        let task = self.synth_task.as_ref()?;
        if task.is_running() {
            return None;
        }
        let result = task.poll();
        self.synth_task = None;
        match result {
            Some(Ok(summary)) => {
                self.notices.info(format!(
                    "Generated {} images with {} faces in {}",
                    summary.images,
                    summary.faces,
                    summary.root.display()
                ));
                // The next "Generate" must not hit the folder just filled.
                self.synth_dir = next_free(&summary.root).display().to_string();
                Some(summary.root)
            }
            Some(Err(err)) => {
                self.notices.error(format!("Cannot generate the synthetic dataset: {err}"));
                None
            }
            None => {
                self.notices.error("Generating the synthetic dataset: the job ended unexpectedly");
                None
            }
        }
    }

    /// The page; `model_path` and `preset` are the Detect panel's own fields, so what is typed
    /// here is what Detect loads.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        recent: &[PathBuf],
        model_path: &mut String,
        preset: &mut Option<String>,
    ) -> Option<StartAction> {
        let mut action = None;
        egui::ScrollArea::vertical().id_salt("start-page").show(ui, |ui| {
            ui.set_max_width(760.0);
            ui.heading("Welcome to facestudio");
            ui.label("Face detection with RetinaFace: annotate, train, evaluate and detect. Start with one of these.");
            ui.add_space(8.0);
            section_ui(ui, "Open a dataset", |ui| {
                ui.label("A WIDER FACE folder (WIDER_train/, wider_face_split/, retinaface_gt_v1.1/ or a label.txt).");
                if ui.button("Open dataset folder…  (Ctrl+O)").clicked() {
                    action = Some(StartAction::ChooseDataset);
                }
                if !recent.is_empty() {
                    ui.label("Recent:");
                    for path in recent {
                        if ui.link(path.display().to_string()).clicked() {
                            action = Some(StartAction::OpenDataset(path.clone()));
                        }
                    }
                }
            });
            section_ui(ui, "Detect faces in photos", |ui| {
                ui.label("Open photos or drop them on the window; load a model below to see the faces.");
                if ui.button("Open photos…").clicked() {
                    action = Some(StartAction::ChoosePhotos);
                }
            });
            section_ui(ui, "No dataset yet? Generate one", |ui| {
                ui.label(
                    "A small synthetic WIDER FACE dataset (drawn faces with boxes and landmarks, train and val \
                     splits) to try annotating and training on. It opens when it is written.",
                );
                ui.horizontal(|ui| {
                    text_field_ui(ui, "Folder", &mut self.synth_dir, "an empty or new folder");
                    if ui.button("Choose…").clicked() {
                        action = Some(StartAction::ChooseSynthFolder);
                    }
                });
                ui.horizontal(|ui| {
                    let label = ui.label("Training images");
                    ui.add(egui::DragValue::new(&mut self.synth_images).range(1..=MAX_SYNTH_IMAGES))
                        .labelled_by(label.id)
                        .on_hover_text("A quarter as many (at least two) are added for validation");
                });
                let generating = self.synth_task.is_some();
                let button = ui.add_enabled(!generating, egui::Button::new("Generate synthetic dataset"));
                if button.clicked() {
                    self.generate(ui.ctx());
                }
                if generating {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Generating…");
                    });
                }
            });
            section_ui(ui, "Open a model", |ui| {
                ui.label(
                    "A facestudio model file (.bpk) carries its network. A PyTorch checkpoint (.pth, .safetensors) \
                     needs its preset: the shared RetinaFace-MobileNet0.25 checkpoints load as fd1mb-mnet or \
                     pytorch-retinaface-mnet.",
                );
                text_field_ui(ui, "Model file", model_path, "model.bpk, .pth or .safetensors");
                ui.radio_value(preset, None, "none: a facestudio model file");
                for name in PRESETS {
                    let summary = preset_summary(name).unwrap_or_default();
                    ui.radio_value(preset, Some(name.to_string()), format!("{name}: {summary}"));
                }
                let ready = !model_path.trim().is_empty();
                if ui.add_enabled(ready, egui::Button::new("Load model in Detect")).clicked() {
                    action = Some(StartAction::LoadModel);
                }
            });
            section_ui(ui, "The panels", |ui| {
                egui::Grid::new("start-panels").num_columns(2).spacing([12.0, 4.0]).show(ui, |ui| {
                    for (name, what) in PANELS {
                        // Not the bare name: that is the tab's label.
                        ui.strong(format!("{name}:"));
                        ui.label(what);
                        ui.end_row();
                    }
                });
                ui.weak("Every panel has its command-line twin: facestudio --help.");
            });
        });
        action
    }
}

fn section_ui(ui: &mut egui::Ui, title: &str, body: impl FnOnce(&mut egui::Ui)) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.strong(title);
        body(ui);
    });
    ui.add_space(6.0);
}

/// `~/facestudio-synthetic` (or the temp folder without a home), numbered past folders in use.
fn default_synth_dir() -> PathBuf {
    let base = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    next_free(&base.join("facestudio-synthetic"))
}

/// `path` if it is free (missing or an empty folder), else the first free `path-2`, `path-3`, ….
fn next_free(path: &Path) -> PathBuf {
    let free = |p: &Path| std::fs::read_dir(p).map_or(!p.exists(), |mut entries| entries.next().is_none());
    if free(path) {
        return path.to_path_buf();
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (2..)
        .map(|i| path.with_file_name(format!("{name}-{i}")))
        .find(|p| free(p))
        .expect("an unbounded range finds a free name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_free_folder_skips_folders_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("synthetic");
        assert_eq!(next_free(&base), base);
        std::fs::create_dir(&base).unwrap();
        assert_eq!(next_free(&base), base, "an empty folder is free");
        std::fs::write(base.join("x"), "").unwrap();
        assert_eq!(next_free(&base), dir.path().join("synthetic-2"));
        std::fs::write(dir.path().join("synthetic-2"), "a file").unwrap();
        assert_eq!(next_free(&base), dir.path().join("synthetic-3"));
    }
}
