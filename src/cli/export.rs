//! `facestudio export`: a model for other tools: ONNX (the whole network), or its weights as a
//! PyTorch checkpoint (`.pth`, Pytorch_Retinaface's names) or a safetensors file (with the config).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use facestudio::model::PRESETS;
use facestudio::model::export::onnx::OnnxOptions;
use facestudio::model::export::{ModelFormat, export_file};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A facestudio model file, or a PyTorch / safetensors checkpoint with --preset.
    model: PathBuf,
    /// onnx: the network as an ONNX graph; pth: a PyTorch checkpoint Pytorch_Retinaface's code
    /// loads (its presets only); safetensors: the weights with the config (every preset).
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// The network a checkpoint (.pth / .safetensors) was trained as; a facestudio model file
    /// says so itself.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: Option<String>,
    /// ONNX only: a fixed input size WxH (e.g. 640x480) instead of any height and width.
    #[arg(long = "static", value_name = "WxH", value_parser = width_x_height)]
    static_size: Option<(usize, usize)>,
    /// ONNX only, with --static: the anchor boxes (priors) as an extra graph output.
    #[arg(long)]
    with_priors: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Onnx,
    Pth,
    Safetensors,
}

impl From<ExportFormat> for ModelFormat {
    fn from(format: ExportFormat) -> ModelFormat {
        match format {
            ExportFormat::Onnx => ModelFormat::Onnx,
            ExportFormat::Pth => ModelFormat::Pth,
            ExportFormat::Safetensors => ModelFormat::Safetensors,
        }
    }
}

/// `WxH`: two whole numbers of at least 1.
fn width_x_height(text: &str) -> Result<(usize, usize), String> {
    let parsed = text.split_once(['x', 'X']).and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    match parsed {
        Some((width, height)) if width >= 1 && height >= 1 => Ok((width, height)),
        _ => Err(format!("expected WIDTHxHEIGHT in pixels (e.g. 640x480), got {text:?}")),
    }
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let options = OnnxOptions { static_size: args.static_size, with_priors: args.with_priors };
    let written = export_file(&args.model, args.preset.as_deref(), args.format.into(), &options, &args.out)?;
    println!("wrote {}: {written}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_width_by_height() {
        assert_eq!(width_x_height("640x480"), Ok((640, 480)));
        assert_eq!(width_x_height("32X64"), Ok((32, 64)));
        for bad in ["640", "0x480", "640x", "x", "-1x3", "6.5x4"] {
            assert!(width_x_height(bad).is_err(), "{bad}");
        }
    }
}
