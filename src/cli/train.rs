//! `facestudio train`: the background trainer driven from the terminal, with a progress bar.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use facestudio::dataset::augment::AugmentConfig;
use facestudio::model::{DeviceSet, PRESETS};
use facestudio::train::{LOSS_SETUPS, SCHEDULES, TrainConfig, TrainEvent, spawn};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The dataset folder (any layout `dataset stats` reads); its train split is trained on, its
    /// val split validated on.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: String,
    /// The run folder: config.json, metrics.jsonl, checkpoints, model.bpk.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 60)]
    epochs: u32,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 640)]
    image_size: u32,
    /// The schedule's shape, stretched to --epochs.
    #[arg(long, default_value = "report", value_parser = clap::builder::PossibleValuesParser::new(SCHEDULES))]
    lr_schedule: String,
    /// cpu, wgpu[:N] or cuda[:N]; several, comma-separated (wgpu:0,wgpu:1), train data-parallel.
    #[arg(long, default_value = "cpu")]
    device: DeviceSet,
    /// Continue from the run folder's last checkpoint.
    #[arg(long)]
    resume: bool,
    /// torchvision ImageNet ResNet weights for the backbone.
    #[arg(long)]
    backbone_weights: Option<PathBuf>,
    /// Stop after this many steps in total (writes a checkpoint).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Anchor matching and loss: report (0.7/0.3, cascade 0.5/0.4, OHEM 3:1) or pytorch-retinaface
    /// (0.35/0.35, 7:1, box weight 2). Default: the report's for P2–P6 presets, else Pytorch_Retinaface's.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(LOSS_SETUPS))]
    loss: Option<String>,
    /// Validate every K epochs (0: never).
    #[arg(long, default_value_t = 1)]
    val_every: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads decoding and augmenting batches ahead of the training step.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = TrainConfig {
        data: args.data,
        preset: args.preset,
        out: args.out,
        epochs: args.epochs,
        batch: args.batch,
        image_size: args.image_size,
        lr_schedule: args.lr_schedule,
        device: args.device,
        backbone_weights: args.backbone_weights,
        max_steps: args.max_steps,
        loss: args.loss,
        val_every: args.val_every,
        seed: args.seed,
        workers: args.workers,
        augment: AugmentConfig::default(),
    };
    let handle = spawn(config, args.resume);
    let progress = ProgressBar::new(0);
    progress.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} steps, eta {eta} {msg}")?);
    let mut failed = false;
    for event in handle.events.iter() {
        match &event {
            TrainEvent::Started { epochs, steps_per_epoch, resumed_at_step } => {
                progress.set_length(u64::from(*epochs) * *steps_per_epoch as u64);
                progress.set_position(*resumed_at_step);
            }
            TrainEvent::Step { step, epoch, loss, lr, images_per_s, .. } => {
                progress.set_position(*step);
                progress.set_message(format!("epoch {epoch} loss {loss:.4} lr {lr:.2e} {images_per_s:.1} img/s"));
            }
            TrainEvent::Val { epoch, ap, .. } => {
                let aps: Vec<String> = ap.iter().map(|(name, ap)| format!("{name} {ap:.4}")).collect();
                say(&progress, format!("epoch {epoch}: validation AP {}", aps.join(", ")));
            }
            TrainEvent::Checkpoint { path, .. } => say(&progress, format!("checkpoint {}", path.display())),
            TrainEvent::Warning { message } => say(&progress, format!("warning: {message}")),
            TrainEvent::Error { message } => {
                say(&progress, format!("error: {message}"));
                failed = true;
            }
            TrainEvent::Finished { step, stopped } => {
                let how = if *stopped { "stopped" } else { "finished" };
                say(&progress, format!("{how} at step {step}"));
            }
            TrainEvent::EpochEnd { .. } | TrainEvent::Paused { .. } | TrainEvent::Resumed { .. } => {}
        }
    }
    progress.finish_and_clear();
    handle.join();
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A line on stderr above the progress bar (also when there is no terminal and the bar is hidden).
fn say(progress: &ProgressBar, line: String) {
    progress.suspend(|| eprintln!("{line}"));
}
