//! Learning-rate schedules and the SGD optimiser. The report lost most of its runs to a learning
//! rate that silently never changed (§5, "Knet Defaults During Learning Rate Change"): here the
//! rate is a pure function of the position in training, passed to every optimiser step, and a
//! test checks that the step really uses it.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

/// A piecewise-constant schedule with an optional linear warm-up, in epochs (1-based as the
/// papers count them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub name: String,
    pub epochs: u32,
    /// Linear warm-up from `warmup_start` to the first phase's rate over this many epochs.
    pub warmup_epochs: u32,
    pub warmup_start: f64,
    /// `(first epoch, rate)`, sorted; the first starts at epoch 1.
    pub phases: Vec<(u32, f64)>,
}

pub const SCHEDULES: [&str; 4] = ["report", "paper", "pytorch-retinaface-mnet", "pytorch-retinaface-r50"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown LR schedule {0:?}; schedules: {list}", list = SCHEDULES.join(", "))]
    Unknown(String),
}

impl LrSchedule {
    /// The presets: the report's (§4.1), the RetinaFace paper's and Pytorch_Retinaface's
    /// (`train.py`: warm-up over 5 epochs from 1e-6, then ÷10 at the step epochs).
    pub fn preset(name: &str) -> Result<LrSchedule, ScheduleError> {
        let schedule = |epochs, warmup_epochs, warmup_start, phases: &[(u32, f64)]| LrSchedule {
            name: name.to_string(),
            epochs,
            warmup_epochs,
            warmup_start,
            phases: phases.to_vec(),
        };
        Ok(match name {
            "report" => schedule(60, 0, 0.0, &[(1, 1e-3), (28, 4e-3), (40, 1e-3), (50, 1e-4)]),
            "paper" => schedule(80, 5, 1e-3, &[(1, 1e-2), (55, 1e-3), (68, 1e-4)]),
            "pytorch-retinaface-mnet" => schedule(250, 5, 1e-6, &[(1, 1e-3), (191, 1e-4), (221, 1e-5)]),
            "pytorch-retinaface-r50" => schedule(100, 5, 1e-6, &[(1, 1e-3), (71, 1e-4), (91, 1e-5)]),
            _ => return Err(ScheduleError::Unknown(name.to_string())),
        })
    }

    /// The same shape over `epochs` instead: phase boundaries and warm-up scale with it, so a short
    /// run (tests, the synthetic data) still goes through every phase.
    pub fn rescaled(&self, epochs: u32) -> LrSchedule {
        let epochs = epochs.max(1);
        let scale = |e: u32| (((e - 1) as f64 * epochs as f64 / self.epochs as f64).round() as u32 + 1).min(epochs);
        let mut phases: Vec<(u32, f64)> = self.phases.iter().map(|&(e, lr)| (scale(e), lr)).collect();
        phases.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 = later.1;
                true
            } else {
                false
            }
        });
        let warmup = (self.warmup_epochs as f64 * epochs as f64 / self.epochs as f64).round() as u32;
        LrSchedule { epochs, warmup_epochs: warmup, phases, ..self.clone() }
    }

    /// The rate at `step` (0-based) of `epoch` (1-based), with `steps_per_epoch` steps per epoch.
    pub fn rate(&self, epoch: u32, step: usize, steps_per_epoch: usize) -> f64 {
        let base = self.phases.iter().take_while(|(first, _)| *first <= epoch).last().map_or(0.0, |&(_, lr)| lr);
        if epoch <= self.warmup_epochs && self.warmup_epochs > 0 {
            let target = self.phases.first().map_or(base, |&(_, lr)| lr);
            let done = (epoch - 1) as f64 * steps_per_epoch as f64 + step as f64;
            let total = (self.warmup_epochs as usize * steps_per_epoch.max(1)) as f64;
            return self.warmup_start + (target - self.warmup_start) * (done / total).min(1.0);
        }
        base
    }
}

/// SGD with `momentum` and `weight_decay` (`OptimizerConfig`'s defaults are the paper's and the
/// report's, 0.9 and 5e-4). Momentum dampening is set to 0 explicitly: burn's default is 0.1,
/// PyTorch's (which every recipe assumes) is 0.
pub fn sgd(momentum: f64, weight_decay: f32) -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(momentum).with_dampening(0.0).with_nesterov(false)))
        .with_weight_decay(Some(WeightDecayConfig::new(weight_decay)))
        .init()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::optim::GradientsParams;
    use burn::prelude::*;

    #[test]
    fn report_schedule_changes_at_the_listed_epochs() {
        let s = LrSchedule::preset("report").unwrap();
        let at = |epoch| s.rate(epoch, 0, 100);
        assert_eq!(
            [at(1), at(27), at(28), at(39), at(40), at(49), at(50), at(60)],
            [1e-3, 1e-3, 4e-3, 4e-3, 1e-3, 1e-3, 1e-4, 1e-4]
        );
    }

    #[test]
    fn paper_schedule_warms_up_then_divides_by_ten() {
        let s = LrSchedule::preset("paper").unwrap();
        assert_eq!(s.rate(1, 0, 10), 1e-3);
        assert!((s.rate(3, 5, 10) - (1e-3 + 9e-3 * 25.0 / 50.0)).abs() < 1e-12);
        assert_eq!(s.rate(6, 0, 10), 1e-2);
        assert_eq!(s.rate(55, 0, 10), 1e-3);
        assert_eq!(s.rate(68, 0, 10), 1e-4);
    }

    #[test]
    fn pytorch_retinaface_steps_at_190_and_220_of_250() {
        let s = LrSchedule::preset("pytorch-retinaface-mnet").unwrap();
        assert_eq!([s.rate(190, 0, 1), s.rate(191, 0, 1), s.rate(221, 0, 1)], [1e-3, 1e-4, 1e-5]);
        let r = LrSchedule::preset("pytorch-retinaface-r50").unwrap();
        assert_eq!([r.rate(70, 0, 1), r.rate(71, 0, 1), r.rate(91, 0, 1)], [1e-3, 1e-4, 1e-5]);
    }

    #[test]
    fn a_rescaled_schedule_keeps_every_phase() {
        let s = LrSchedule::preset("report").unwrap().rescaled(12);
        assert_eq!(s.phases.len(), 4);
        let rates: Vec<f64> = (1..=12).map(|e| s.rate(e, 0, 1)).collect();
        assert!(rates.contains(&4e-3) && rates.contains(&1e-4), "{rates:?}");
    }

    #[derive(Module, Debug)]
    struct Weight {
        w: Param<Tensor<1>>,
    }

    /// After the schedule changes the rate, the next optimiser step moves the weights by the new
    /// rate times the (momentum) update: the change is really used.
    #[test]
    fn the_optimiser_uses_the_new_rate_after_a_change() {
        let device = Device::flex().autodiff();
        let mut model = Weight { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
        let mut optim = sgd(0.9, 0.0);
        let schedule = LrSchedule::preset("report").unwrap();
        let mut previous = 1.0f32;
        let mut velocity = 0.0f64;
        for epoch in [27, 28] {
            let lr = schedule.rate(epoch, 0, 1);
            // d/dw (3 w) = 3.
            let loss = model.w.val().mul_scalar(3.0).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            let now = model.w.val().try_into_vec_as::<f32>().unwrap()[0];
            velocity = 0.9 * velocity + 3.0;
            let expected = previous as f64 - lr * velocity;
            assert!(
                (now as f64 - expected).abs() < 1e-6,
                "epoch {epoch}: lr {lr}, moved to {now}, expected {expected}"
            );
            previous = now;
        }
    }
}
