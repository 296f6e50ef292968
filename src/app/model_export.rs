//! "Export model" where a model is loaded (the Detect panel): the loaded model file written as
//! ONNX, a PyTorch checkpoint or safetensors, on a job's thread, as `facestudio export` does.

use std::path::{Path, PathBuf};

use super::jobs::{Jobs, Task};
use super::notices::Notices;
use super::widgets::{choice_ui, text_field_ui};
use crate::model::export::onnx::OnnxOptions;
use crate::model::export::{ModelFormat, export_file};

/// A model file (or checkpoint + preset) that loaded: what an export reads again.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSource {
    pub path: PathBuf,
    pub preset: Option<String>,
}

pub struct ModelExport {
    jobs: Jobs,
    notices: Notices,
    pub format: ModelFormat,
    /// The file to write; empty: beside the model, named after it with the format's extension.
    pub out: String,
    /// ONNX only: a fixed input size instead of any height and width.
    pub fixed_size: bool,
    pub width: usize,
    pub height: usize,
    /// ONNX with a fixed size only: the decoded boxes as an extra output.
    pub with_priors: bool,
    task: Option<Task<Result<String, String>>>,
}

impl ModelExport {
    pub fn new(jobs: Jobs, notices: Notices) -> ModelExport {
        ModelExport {
            jobs,
            notices,
            format: ModelFormat::Onnx,
            out: String::new(),
            fixed_size: false,
            width: 640,
            height: 640,
            with_priors: false,
            task: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// The ONNX options the fields say; the default for the other formats.
    fn onnx_options(&self) -> OnnxOptions {
        if self.format != ModelFormat::Onnx || !self.fixed_size {
            return OnnxOptions::default();
        }
        OnnxOptions { static_size: Some((self.width, self.height)), with_priors: self.with_priors }
    }

    /// Where the export goes: the typed path, or [`default_out`].
    pub fn out_path(&self, source: &ModelSource) -> PathBuf {
        match self.out.trim() {
            "" => default_out(&source.path, self.format),
            typed => PathBuf::from(typed),
        }
    }

    /// Reads `source` again on the CPU and writes it, in the background.
    pub fn start(&mut self, ctx: &egui::Context, source: &ModelSource) {
        if self.task.is_some() {
            return;
        }
        let out = self.out_path(source);
        let (format, options, source) = (self.format, self.onnx_options(), source.clone());
        let label = format!("Exporting {} as {}", source.path.display(), format.name());
        self.task = Some(self.jobs.spawn(label, ctx, move |_| {
            let written = export_file(&source.path, source.preset.as_deref(), format, &options, &out)
                .map_err(|e| e.to_string())?;
            Ok(format!("Wrote {}: {written}", out.display()))
        }));
    }

    /// Reports a finished export.
    pub fn logic(&mut self) {
        let Some(task) = &self.task else { return };
        if task.is_running() {
            return;
        }
        match task.poll() {
            Some(Ok(written)) => self.notices.info(written),
            Some(Err(err)) => self.notices.error(format!("Cannot export the model: {err}")),
            None => self.notices.error("Exporting the model: the job ended unexpectedly"),
        }
        self.task = None;
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, source: Option<&ModelSource>) {
        let Some(source) = source else {
            ui.weak("Load a model to export it");
            return;
        };
        let label = ui.label("Format");
        let formats = ModelFormat::ALL.map(|f| (f, f.name().to_string()));
        choice_ui(ui, egui::ComboBox::from_id_salt("export-format"), &mut self.format, formats)
            .labelled_by(label.id)
            .on_hover_text(
                "onnx: the whole network for onnxruntime, OpenCV DNN, TensorRT; pth: a checkpoint \
                 Pytorch_Retinaface's code loads (its presets only); safetensors: the weights and the config",
            );
        if self.format == ModelFormat::Onnx {
            ui.checkbox(&mut self.fixed_size, "Fixed input size")
                .on_hover_text("Without it the graph takes any height and width");
            if self.fixed_size {
                ui.horizontal(|ui| {
                    ui.add(egui::DragValue::new(&mut self.width).range(1..=8192).suffix(" px wide"));
                    ui.add(egui::DragValue::new(&mut self.height).range(1..=8192).suffix(" px high"));
                });
                ui.checkbox(&mut self.with_priors, "With decoded boxes")
                    .on_hover_text("Adds a 'boxes' output: the faces' boxes in pixels, decoded with the priors");
            }
        }
        let default_out = default_out(&source.path, self.format).display().to_string();
        text_field_ui(ui, "Export to", &mut self.out, &default_out);
        ui.horizontal(|ui| {
            let running = self.task.is_some();
            if ui.add_enabled(!running, egui::Button::new("Export model")).clicked() {
                self.start(ui.ctx(), source);
            }
            if running {
                ui.spinner();
            }
        });
    }
}

/// Beside the model, named after it with the format's extension; `<name>-export.<ext>` where that
/// is the model itself (a `.pth` exported as pth).
fn default_out(model: &Path, format: ModelFormat) -> PathBuf {
    let beside = model.with_extension(format.name());
    if beside != model {
        return beside;
    }
    let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    model.with_file_name(format!("{stem}-export.{}", format.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_export_never_is_the_model_itself() {
        let model = Path::new("/m/mobilenet.pth");
        assert_eq!(default_out(model, ModelFormat::Onnx), Path::new("/m/mobilenet.onnx"));
        assert_eq!(default_out(model, ModelFormat::Pth), Path::new("/m/mobilenet-export.pth"));
    }
}
