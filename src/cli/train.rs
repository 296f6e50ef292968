//! `facestudio train`: the background trainer driven from the terminal, with a progress bar.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use facestudio::geometry::Variance;
use facestudio::model::{DeviceSet, PRESETS};
use facestudio::train::{LOSS_SETUPS, SCHEDULES, TrainConfig, TrainEvent, spawn};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    run: RunArgs,
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: String,
    /// The run folder: config.json, metrics.jsonl, checkpoints, model.bpk.
    #[arg(long)]
    out: PathBuf,
    /// Continue from the run folder's last checkpoint.
    #[arg(long)]
    resume: bool,
}

/// How a network trains: what `train` and `study` share. Every default is `TrainConfig`'s.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The dataset folder (any layout `dataset stats` reads); its train split is trained on, its
    /// val split validated on.
    #[arg(long)]
    data: PathBuf,
    /// Narrow the preset's ResNet to this width (0 < W ≤ 1; FPN channels scaled alike): a CPU-sized
    /// trial of a ResNet50 preset. Such a network cannot load ImageNet weights.
    #[arg(long)]
    width: Option<f32>,
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: u32,
    #[arg(long, default_value_t = TrainConfig::default().batch)]
    batch: usize,
    /// Side of the square training input: at least 32 and a multiple of the preset's largest
    /// stride (64 for the P2–P6 presets, 32 for P3–P5).
    #[arg(long, default_value_t = TrainConfig::default().image_size)]
    image_size: u32,
    /// The schedule's shape, stretched to --epochs.
    #[arg(long, default_value_t = TrainConfig::default().lr_schedule, value_parser = clap::builder::PossibleValuesParser::new(SCHEDULES))]
    lr_schedule: String,
    /// auto (the best GPU found, else the CPU), cpu, wgpu[:N], vulkan[:N], metal, dx12[:N] or
    /// cuda[:N] (`facestudio devices` lists them); several, comma-separated (wgpu:0,wgpu:1), train
    /// data-parallel (`study`: one variant per device at a time).
    #[arg(long, default_value_t = TrainConfig::default().device)]
    device: DeviceSet,
    /// torchvision ImageNet ResNet weights for the backbone.
    #[arg(long)]
    backbone_weights: Option<PathBuf>,
    /// Stop after this many steps in total (writes a checkpoint).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Anchor matching and loss: report (0.7/0.3, cascade 0.5/0.4, OHEM 3:1) or pytorch-retinaface
    /// (0.35/0.35, 7:1, box weight 2, the default: the report's does not learn from scratch).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(LOSS_SETUPS))]
    loss: Option<String>,
    /// The box and landmark codec's variance C/S instead of the preset's (1/1: the report's own
    /// formulas; 0.1/0.2: Pytorch_Retinaface's, the default of every preset).
    #[arg(long)]
    variance: Option<Variance>,
    /// Validate every K epochs (0: never).
    #[arg(long, default_value_t = TrainConfig::default().val_every)]
    val_every: u32,
    /// Fixes the initial weights, the data order and the augmentation.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Threads decoding and augmenting batches ahead of the training step.
    #[arg(long, default_value_t = TrainConfig::default().workers)]
    workers: usize,
}

impl RunArgs {
    /// The trainer's config for `preset` into the run folder `out`.
    pub fn config(&self, preset: &str, out: PathBuf) -> TrainConfig {
        TrainConfig {
            data: self.data.clone(),
            preset: preset.to_string(),
            width: self.width,
            out,
            epochs: self.epochs,
            batch: self.batch,
            image_size: self.image_size,
            lr_schedule: self.lr_schedule.clone(),
            device: self.device.clone(),
            backbone_weights: self.backbone_weights.clone(),
            max_steps: self.max_steps,
            loss: self.loss.clone(),
            variance: self.variance,
            val_every: self.val_every,
            seed: self.seed,
            workers: self.workers,
            ..TrainConfig::default()
        }
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = args.run.config(&args.preset, args.out);
    let handle = spawn(config, args.resume)?;
    let progress = ProgressBar::new(0);
    progress.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} steps, eta {eta} {msg}")?);
    let mut failed = false;
    let mut finished = false;
    for event in handle.events.iter() {
        match &event {
            TrainEvent::Started { epochs, steps_per_epoch, resumed_at_step, devices } => {
                progress.set_length(u64::from(*epochs) * *steps_per_epoch as u64);
                progress.set_position(*resumed_at_step);
                if !devices.is_empty() {
                    say(&progress, format!("training on {}", devices.join(", ")));
                }
            }
            TrainEvent::Step { step, epoch, loss, lr, images_per_s, .. } => {
                progress.set_position(*step);
                progress.set_message(format!("epoch {epoch} loss {loss:.4} lr {lr:.2e} {images_per_s:.1} img/s"));
            }
            TrainEvent::Val { epoch, .. } => {
                let aps: Vec<String> = event.val_series().iter().map(|(name, ap)| format!("{name} {ap:.4}")).collect();
                say(&progress, format!("epoch {epoch}: validation AP {}", aps.join(", ")));
            }
            TrainEvent::Checkpoint { path, .. } => say(&progress, format!("checkpoint {}", path.display())),
            TrainEvent::Warning { message } => say(&progress, format!("warning: {message}")),
            TrainEvent::Error { message } => {
                say(&progress, format!("error: {message}"));
                failed = true;
            }
            TrainEvent::Finished { step, stopped } => {
                finished = true;
                let how = if *stopped { "stopped" } else { "finished" };
                say(&progress, format!("{how} at step {step}"));
            }
            TrainEvent::EpochEnd { .. } | TrainEvent::Paused { .. } | TrainEvent::Resumed { .. } => {}
        }
    }
    progress.finish_and_clear();
    handle.join();
    // A trainer that ended without saying it finished crashed: never a success.
    Ok(if failed || !finished { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A line on stderr above the progress bar (also when there is no terminal and the bar is hidden).
fn say(progress: &ProgressBar, line: String) {
    progress.suspend(|| eprintln!("{line}"));
}
