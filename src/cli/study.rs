//! `facestudio study ablation`: the report's Table 2 for this machine's run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Args, Subcommand};
use facestudio::model::PRESETS;
use facestudio::train::{ABLATION, StudyConfig, StudyEvent, StudyHooks, TrainEvent, markdown_table, run_study};

use super::train::RunArgs;

#[derive(Subcommand, Debug)]
pub enum StudyCommand {
    /// Train the report's four variants and paper-r50 one after another (one per device at once
    /// with several devices), resumable as a whole, and write the report's Table 2 for this run.
    Ablation(AblationArgs),
}

#[derive(Args, Debug)]
pub struct AblationArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The study folder: one run folder per variant, ablation.md, ablation.json, ablation_ap.png.
    #[arg(long)]
    out: PathBuf,
    /// The variants (comma-separated presets; default: the report's four and paper-r50).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    presets: Vec<String>,
    /// Evaluate on the official ground truth (the folder of wider_face_val.mat) instead of the val split.
    #[arg(long, requires = "images")]
    gt: Option<PathBuf>,
    /// The official ground truth's images (WIDER_val/images).
    #[arg(long, requires = "gt")]
    images: Option<PathBuf>,
}

pub fn run(command: StudyCommand) -> anyhow::Result<ExitCode> {
    let StudyCommand::Ablation(args) = command;
    let presets = if args.presets.is_empty() {
        ABLATION.iter().map(|v| v.preset.to_string()).collect()
    } else {
        args.presets.clone()
    };
    let config = StudyConfig {
        train: args.run.config("", PathBuf::new()),
        out: args.out.clone(),
        presets,
        official: args.gt.clone().zip(args.images.clone()),
    };
    let stderr = Mutex::new(());
    let say = |line: String| {
        let _guard = stderr.lock();
        eprintln!("{line}");
    };
    let on_event = |event: StudyEvent| match event {
        StudyEvent::Skipped { preset } => say(format!("{preset}: already trained")),
        StudyEvent::Evaluating { preset } => say(format!("{preset}: evaluating")),
        StudyEvent::Training { preset, event } => match &event {
            TrainEvent::Started { resumed_at_step, .. } if *resumed_at_step > 0 => {
                say(format!("{preset}: resumed at step {resumed_at_step}"))
            }
            TrainEvent::Started { devices, .. } if !devices.is_empty() => {
                say(format!("{preset}: training on {}", devices.join(", ")))
            }
            TrainEvent::Started { .. } => say(format!("{preset}: training")),
            TrainEvent::Val { epoch, .. } => {
                let aps: Vec<String> = event.val_series().iter().map(|(n, ap)| format!("{n} {ap:.4}")).collect();
                say(format!("{preset}: epoch {epoch}: validation AP {}", aps.join(", ")))
            }
            TrainEvent::EpochEnd { epoch, mean_loss, .. } => {
                say(format!("{preset}: epoch {epoch}: loss {mean_loss:.4}"))
            }
            TrainEvent::Warning { message } => say(format!("{preset}: warning: {message}")),
            TrainEvent::Error { message } => say(format!("{preset}: error: {message}")),
            TrainEvent::Finished { step, .. } => say(format!("{preset}: finished at step {step}")),
            _ => {}
        },
    };
    let rows = run_study(&config, &StudyHooks { on_event: &on_event, should_stop: &|| false })?;
    println!("{}", markdown_table(&rows, &config));
    println!(
        "written: {}",
        ["ablation.md", "ablation.json", "ablation_ap.png"]
            .map(|f| config.out.join(f).display().to_string())
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
