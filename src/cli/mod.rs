//! Argument definitions and the dispatch to each subcommand's module.

mod dataset;
mod detect;
mod eval;
mod train;

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
    Import(detect::ImportArgs),
    /// Train RetinaFace (background thread, checkpoints every epoch, --resume after a kill).
    Train(train::TrainArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Dataset(command)) => dataset::run(command),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Detect(args)) => detect::detect(args),
        Some(Command::Import(args)) => detect::import(args),
        Some(Command::Train(args)) => train::run(args),
        None => {
            Cli::command().print_help()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
