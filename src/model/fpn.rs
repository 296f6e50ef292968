//! The feature pyramid (report §3.5): 1×1 lateral ConvBns, top-down nearest upsampling and
//! addition, a 3×3 ConvBn after each merge; for the report's presets an extra P6 = C6, a stride-2
//! 3×3 ConvBn on C5 that takes no part in the top-down path.

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::config::{Activation, FpnConfig, FpnLevels};
use super::layers::{ConvBn, ConvSpec};

#[derive(Module, Debug)]
pub struct Fpn {
    /// One per backbone level used, finest first.
    pub lateral: Vec<ConvBn>,
    /// One per level below the top, finest first.
    pub merge: Vec<ConvBn>,
    pub c6: Option<ConvBn>,
    #[module(skip)]
    pub activation: Activation,
}

impl Fpn {
    /// `backbone` holds the channels of C2..C5 (`None` where the backbone has no such level).
    pub fn new(config: &FpnConfig, backbone: [Option<usize>; 4], activation: Activation, device: &Device) -> Fpn {
        let used: Vec<usize> = match config.levels {
            FpnLevels::P2ToP6 => backbone.iter().flatten().copied().collect(),
            FpnLevels::P3ToP5 => backbone[1..].iter().flatten().copied().collect(),
        };
        let c = config.channels;
        let lateral = used.iter().map(|&input| ConvBn::new(ConvSpec::new(input, c, 1), device)).collect();
        let merge = (1..used.len()).map(|_| ConvBn::new(ConvSpec::new(c, c, 3), device)).collect();
        let c5 = used.last().copied().unwrap_or(c);
        let c6 = (config.levels == FpnLevels::P2ToP6).then(|| ConvBn::new(ConvSpec::new(c5, c, 3).stride(2), device));
        Fpn { lateral, merge, c6, activation }
    }

    /// `features` are the backbone levels this pyramid uses, finest first; returns P levels,
    /// finest first.
    pub fn forward(&self, features: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let top = features.last().cloned();
        let mut laterals: Vec<Tensor<4>> =
            self.lateral.iter().zip(features).map(|(conv, x)| conv.forward_act(x, Some(self.activation))).collect();
        for i in (0..laterals.len() - 1).rev() {
            let [_, _, h, w] = laterals[i].dims();
            let up = interpolate(
                laterals[i + 1].clone(),
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
            );
            let merged = laterals[i].clone() + up;
            laterals[i] = self.merge[i].forward_act(merged, Some(self.activation));
        }
        if let (Some(c6), Some(c5)) = (&self.c6, top) {
            laterals.push(c6.forward_act(c5, Some(self.activation)));
        }
        laterals
    }
}
