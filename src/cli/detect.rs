//! `facestudio detect` and `facestudio import`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facestudio::detect::{
    DetectOptions, Detector, ExportFormat, ImageDetections, InputSize, collect_images, load_image, preprocess,
};
use facestudio::model::{DeviceChoice, PRESETS, import_checkpoint, load_weights, save_model};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Photos, or folders searched recursively for .jpg/.jpeg/.png/.webp/.bmp.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// A facestudio model file, or a PyTorch .pth / .safetensors checkpoint together with --preset.
    #[arg(long)]
    weights: PathBuf,
    /// The network of a PyTorch checkpoint (e.g. fd1mb-mnet, pytorch-retinaface-mnet, pytorch-retinaface-r50).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: Option<String>,
    /// The head stage that scores faces: 1 (the first) or 2 (the cascade's; default: the last).
    #[arg(long)]
    stage: Option<usize>,
    /// Keep faces scoring strictly above this.
    #[arg(long, default_value_t = DetectOptions::EVALUATION.confidence)]
    conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = DetectOptions::EVALUATION.nms_threshold)]
    nms: f32,
    /// Candidates kept before NMS.
    #[arg(long, default_value_t = DetectOptions::EVALUATION.top_k)]
    top_k: usize,
    /// Faces kept after NMS.
    #[arg(long, default_value_t = DetectOptions::EVALUATION.keep_top_k)]
    keep_top_k: usize,
    /// Shrink photos so the longer side is at most this (default: original size).
    #[arg(long, conflicts_with = "scale")]
    max_size: Option<u32>,
    /// Scale photos by this factor before detection.
    #[arg(long)]
    scale: Option<f32>,
    /// cpu, wgpu[:N] or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Photos of the same size run through the network together, this many at a time.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Write per-image files here instead of JSON lines on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output formats with --out (repeatable).
    #[arg(long, value_enum, default_values_t = [ExportFormat::Json])]
    format: Vec<ExportFormat>,
}

pub fn detect(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let images = collect_images(&args.inputs)?;
    let device = args.device.open()?;
    let model = load_weights(&args.weights, args.preset.as_deref(), &device)?;
    let detector = Detector::new(model, device);
    let detector = detector.with_stage(args.stage)?;
    let options = DetectOptions {
        confidence: args.conf,
        nms_threshold: args.nms,
        top_k: args.top_k,
        keep_top_k: args.keep_top_k,
        ..DetectOptions::EVALUATION
    };
    let size = match (args.max_size, args.scale) {
        (Some(max), _) => InputSize::MaxSize(max),
        (None, Some(scale)) => InputSize::Scale(scale),
        (None, None) => InputSize::Original,
    };
    let progress = ProgressBar::new(images.len() as u64);
    progress.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} photos, {per_sec}, eta {eta} {msg}")?);
    if images.len() < 2 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut failed = 0usize;
    let mut stdout = std::io::stdout().lock();
    // Decoded photos waiting for a batch of their size.
    let mut pending: Vec<(PathBuf, image::RgbImage)> = Vec::new();
    let flush = |pending: &mut Vec<(PathBuf, image::RgbImage)>,
                 stdout: &mut std::io::StdoutLock|
     -> anyhow::Result<()> {
        let inputs: Vec<_> = pending.iter().map(|(_, img)| preprocess(img, size, &detector.config().input)).collect();
        let outputs = detector.forward(&inputs.iter().collect::<Vec<_>>())?;
        for (((path, photo), input), output) in pending.drain(..).zip(&inputs).zip(&outputs) {
            let detections = detector.candidates(output, input, &options).filter(&options);
            let result = ImageDetections { image: path, width: photo.width(), height: photo.height(), detections };
            match &args.out {
                Some(out) => {
                    result
                        .write(out, &args.format, Some(&photo))
                        .with_context(|| format!("cannot write results to {}", out.display()))?;
                }
                None => writeln!(stdout, "{}", result.to_json())?,
            }
        }
        Ok(())
    };
    for path in images {
        match load_image(&path) {
            Ok(photo) => {
                let same_size = pending.first().is_none_or(|(_, p)| p.dimensions() == photo.dimensions());
                if !same_size || pending.len() >= args.batch.max(1) {
                    flush(&mut pending, &mut stdout)?;
                }
                pending.push((path, photo));
            }
            Err(err) => {
                failed += 1;
                progress.suspend(|| eprintln!("skipped: {err}"));
            }
        }
        progress.inc(1);
    }
    flush(&mut pending, &mut stdout)?;
    progress.finish_and_clear();
    if failed > 0 {
        eprintln!("{failed} photo(s) could not be read");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

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

pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
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
