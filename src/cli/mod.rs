//! Argument definitions and the dispatch to each subcommand's module.

mod dataset;
mod detect;
mod eval;
mod import;
mod study;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "facestudio",
    version,
    about = "Face detection with RetinaFace: WIDER FACE data, training, evaluation, detection"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Train RetinaFace (background thread, checkpoints every epoch, --resume after a kill).
    Train(train::TrainArgs),
    /// Studies made of several trainings: `study ablation` is the report's Table 2.
    #[command(subcommand)]
    Study(study::StudyCommand),
    /// Open the studio with dataset folders, photos, photo folders or a model file loaded
    /// (without a subcommand, facestudio opens the studio empty).
    Open {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Dataset(command)) => dataset::run(command),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Detect(args)) => detect::detect(args),
        Some(Command::Import(args)) => import::run(args),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Study(command)) => study::run(command),
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
