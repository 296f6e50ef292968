//! `facestudio detect`: faces in photos, as JSON lines or per-image files.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facestudio::detect::{
    CandidateLimits, ExportFormat, FaceFilter, ImageDetections, InputSize, Outcome, RunOptions, collect_images,
    output_clashes, run_over,
};
use facestudio::model::{DeviceChoice, PRESETS};
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
    #[arg(long, default_value_t = FaceFilter::EVALUATION.confidence, value_parser = super::unit_interval)]
    conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = FaceFilter::EVALUATION.nms_threshold, value_parser = super::unit_interval)]
    nms: f32,
    /// Candidates kept before NMS.
    #[arg(long, default_value_t = CandidateLimits::EVALUATION.top_k, value_parser = super::at_least_one)]
    top_k: usize,
    /// Faces kept after NMS.
    #[arg(long, default_value_t = FaceFilter::EVALUATION.keep_top_k, value_parser = super::at_least_one)]
    keep_top_k: usize,
    /// Shrink photos so the longer side is at most this (default: original size).
    #[arg(long, conflicts_with = "scale", value_parser = clap::value_parser!(u32).range(1..))]
    max_size: Option<u32>,
    /// Scale photos by this factor before detection (0 < F ≤ 8).
    #[arg(long, value_parser = super::photo_scale)]
    scale: Option<f32>,
    /// auto (the best GPU found, else the CPU), cpu, wgpu[:N], vulkan[:N], metal, dx12[:N] or
    /// cuda[:N]; `facestudio devices` lists them.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Photos of the same size run through the network together, this many at a time.
    #[arg(long, default_value_t = 4, value_parser = super::at_least_one)]
    batch: usize,
    /// Write per-image files here instead of JSON lines on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output formats with --out (repeatable).
    #[arg(long, value_enum, default_values_t = [ExportFormat::Json])]
    format: Vec<ExportFormat>,
    #[command(flatten)]
    tta: super::TtaArgs,
}

pub fn detect(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let images = collect_images(&args.inputs)?;
    if let Some(out) = &args.out {
        let clashes = output_clashes(out, &images);
        if !clashes.is_empty() {
            let shown: Vec<String> = clashes
                .iter()
                .take(10)
                .map(|(file, photos)| {
                    let photos: Vec<String> = photos.iter().map(|p| p.display().to_string()).collect();
                    format!("  {}: {}", file.display(), photos.join(", "))
                })
                .collect();
            anyhow::bail!(
                "{} result file(s) under {} would hold several photos' results (same folder name and file stem); \
                 detect them in separate runs or into separate --out folders:\n{}{}",
                clashes.len(),
                out.display(),
                shown.join("\n"),
                if clashes.len() > 10 { format!("\n  … and {} more", clashes.len() - 10) } else { String::new() }
            );
        }
    }
    let detector = super::load_detector(&args.weights, args.preset.as_deref(), args.device)?.with_stage(args.stage)?;
    let filter = FaceFilter {
        confidence: args.conf,
        nms_threshold: args.nms,
        keep_top_k: args.keep_top_k,
        ..FaceFilter::EVALUATION
    };
    let size = match (args.max_size, args.scale) {
        (Some(max), _) => InputSize::MaxSize(max),
        (None, Some(scale)) => InputSize::Scale(scale),
        (None, None) => InputSize::Original,
    };
    let options = RunOptions {
        size,
        batch: args.batch,
        limits: CandidateLimits { floor: args.conf, top_k: args.top_k },
        stages: Vec::new(),
        tta: args.tta.tta(),
    };
    let progress = ProgressBar::new(images.len() as u64);
    progress.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} photos, {per_sec}, eta {eta} {msg}")?);
    if images.len() < 2 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut failed = 0usize;
    let mut stdout = std::io::stdout().lock();
    // An output error stops the run; it is reported instead of the cancellation it causes.
    let mut write_error = None;
    let result = run_over(&detector, &images, &options, |outcome| {
        progress.inc(1);
        let detected = match outcome {
            Outcome::Detected(detected) => detected,
            Outcome::Skipped { error, .. } => {
                failed += 1;
                progress.suspend(|| eprintln!("skipped: {error}"));
                return ControlFlow::Continue(());
            }
        };
        let detections = detected.candidates().filter(&filter);
        let (width, height) = detected.image.dimensions();
        let result = ImageDetections { image: detected.path, width, height, detections };
        let written = match &args.out {
            Some(out) => result
                .write(out, &args.format, Some(&detected.image))
                .map(drop)
                .with_context(|| format!("cannot write results to {}", out.display())),
            None => writeln!(stdout, "{}", result.to_json()).context("cannot write to stdout"),
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                write_error = Some(err);
                ControlFlow::Break(())
            }
        }
    });
    progress.finish_and_clear();
    if let Some(err) = write_error {
        return Err(err);
    }
    result?;
    if failed > 0 {
        eprintln!("{failed} photo(s) could not be read");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
