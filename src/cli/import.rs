//! `facestudio import`: a PyTorch checkpoint into a facestudio model file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use facestudio::model::{PRESETS, import_checkpoint, save_model};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A Pytorch_Retinaface / Face-Detector-1MB checkpoint: .pth (pickle or zip) or .safetensors.
    file: PathBuf,
    /// The network the checkpoint was trained as.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: String,
    /// The facestudio model file to write (config + weights).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = facestudio::model::RetinaFaceConfig::preset(&args.preset)?;
    let model = import_checkpoint(&args.file, &config, &burn::prelude::Device::flex())?;
    save_model(&model, &args.out)?;
    println!(
        "wrote {} ({} preset, {} parameters)",
        args.out.display(),
        args.preset,
        burn::module::Module::num_params(&model)
    );
    Ok(ExitCode::SUCCESS)
}
