//! Argument definitions and the dispatch to each subcommand's module.

mod annotate;
mod dataset;
mod detect;
mod devices;
mod eval;
mod export;
mod import;
mod study;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use facestudio::detect::Detector;
use facestudio::model::{DeviceChoice, load_weights};

#[derive(Parser, Debug)]
#[command(
    name = "facestudio",
    version,
    about = "Face detection with RetinaFace: WIDER FACE data, training, evaluation, detection"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The most pixels a photo may have, decoded or scaled for the network (default 50000000;
    /// also FACESTUDIO_MAX_PIXELS): larger ones are an error naming the file, not an
    /// out-of-memory abort.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    max_pixels: Option<u64>,
    /// Errors list everything (every tensor name of a checkpoint that does not fit, not the first few).
    #[arg(long, global = true)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect, check or generate WIDER FACE datasets.
    #[command(subcommand)]
    Dataset(dataset::DatasetCommand),
    /// WIDER FACE evaluation (official protocol): AP per setting, PR curves.
    Eval(eval::EvalArgs),
    /// Detect faces and landmarks in photos.
    Detect(detect::DetectArgs),
    /// Convert a PyTorch checkpoint into a facestudio model file.
    Import(import::ImportArgs),
    /// Write a model for other tools: ONNX, a PyTorch checkpoint (.pth) or safetensors.
    Export(export::ExportArgs),
    /// Train RetinaFace (background thread, checkpoints every epoch, --resume after a kill).
    Train(train::TrainArgs),
    /// Studies made of several trainings: `study ablation` is the report's Table 2.
    #[command(subcommand)]
    Study(study::StudyCommand),
    /// The devices --device can name on this machine (the GPU adapters wgpu finds, the CPU) and
    /// what `auto` picks.
    Devices,
    /// Open the studio with dataset folders, photos, photo folders or a model file loaded
    /// (without a subcommand, facestudio opens the studio empty).
    Open {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let from_env = std::env::var("FACESTUDIO_MAX_PIXELS").ok().map(|v| {
        v.trim().parse::<u64>().map_err(|_| anyhow::anyhow!("FACESTUDIO_MAX_PIXELS: expected a number, got {v:?}"))
    });
    if let Some(limit) = cli.max_pixels.map(Ok).or(from_env).transpose()? {
        facestudio::detect::set_max_pixels(limit);
    }
    facestudio::model::list_every_name(cli.verbose);
    match cli.command {
        Some(Command::Dataset(command)) => dataset::run(command),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Detect(args)) => detect::detect(args),
        Some(Command::Import(args)) => import::run(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Study(command)) => study::run(command),
        Some(Command::Devices) => devices::run(),
        Some(Command::Open { paths }) => studio(paths),
        None => studio(Vec::new()),
    }
}

#[cfg(feature = "studio")]
fn studio(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    match facestudio::app::run(paths) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("error: cannot open the studio window: {err}");
            eprintln!("(no display? every feature is also on the command line:)\n");
            Cli::command().print_help()?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A build without the `studio` feature (a training server's) has no window to open.
#[cfg(not(feature = "studio"))]
fn studio(_paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    eprintln!(
        "error: the studio is not in this build (built without the `studio` feature, e.g. with \
         `--no-default-features`); every feature is also on the command line:\n"
    );
    Cli::command().print_help()?;
    Ok(ExitCode::FAILURE)
}

/// Opens `device` and loads the model onto it, saying on stderr what it runs on (and, when `auto`'s
/// GPU did not start, that the CPU runs instead).
fn load_detector(weights: &Path, preset: Option<&str>, device: DeviceChoice) -> anyhow::Result<Detector> {
    let opened = device.open()?;
    if let Some(notice) = &opened.notice {
        eprintln!("warning: {notice}");
    }
    eprintln!("running on {}", opened.label);
    let model = load_weights(weights, preset, &opened.device)?;
    Ok(Detector::new(model, opened.device))
}

/// A threshold in [0, 1] (`--conf`, `--nms`).
fn unit_interval(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a number from 0 to 1, got {text:?}")),
    }
}

/// A count of at least 1 (`--batch`, `--top-k`).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("expected a whole number of at least 1, got {text:?}")),
    }
}

/// `--tta`, `--tta-scales`, `--tta-max-side`: test-time augmentation (detect and eval).
#[derive(clap::Args, Debug)]
struct TtaArgs {
    /// Test-time augmentation: every photo at each of --tta-scales and mirrored, the faces of
    /// all passes merged before NMS (how the published RetinaFace WIDER numbers are made).
    #[arg(long)]
    tta: bool,
    /// The scales of --tta.
    #[arg(long, value_delimiter = ',', default_values_t = facestudio::detect::Tta::default().scales, value_parser = photo_scale, requires = "tta")]
    tta_scales: Vec<f32>,
    /// A --tta scale that would make a photo's longer side exceed this is lowered to fit.
    #[arg(long, default_value_t = facestudio::detect::Tta::default().max_side, value_parser = clap::value_parser!(u32).range(32..), requires = "tta")]
    tta_max_side: u32,
}

impl TtaArgs {
    fn tta(&self) -> Option<facestudio::detect::Tta> {
        self.tta.then(|| facestudio::detect::Tta {
            scales: self.tta_scales.clone(),
            flip: true,
            max_side: self.tta_max_side,
        })
    }
}

/// The largest `--scale`: more would only blow a photo up into a network input of gigabytes.
const MAX_PHOTO_SCALE: f32 = 8.0;

/// A photo scale factor in (0, `MAX_PHOTO_SCALE`].
fn photo_scale(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= MAX_PHOTO_SCALE => Ok(v),
        _ => Err(format!("expected a scale above 0 and at most {MAX_PHOTO_SCALE}, got {text:?}")),
    }
}
