//! The SSH context module (report Figure 2, with a BN after every conv): three branches with
//! receptive fields 3×3, 5×5 and 7×7 (stacked 3×3s) concatenated 2:1:1, then ReLU. With
//! `deformable`, every 3×3 convolution is a deformable one whose offsets and modulation masks a
//! plain 3×3 convolution predicts (DCNv2, the paper's context module).

use burn::nn::conv::{Conv2d, Conv2dConfig, DeformConv2d, DeformConv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use super::config::Activation;
use super::cpu_train;
use super::layers::{ConvBn, ConvSpec};

/// A 3×3 ConvBn, plain or deformable (a handful per model: variant sizes do not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ContextConv {
    Plain(ConvBn),
    Deformable(DeformConvBn),
}

#[derive(Module, Debug)]
pub struct DeformConvBn {
    /// Predicts 2·9 offsets and 9 mask logits per position; starts at zero, so training starts
    /// from a plain convolution.
    pub offset: Conv2d,
    pub conv: DeformConv2d,
    pub bn: BatchNorm,
}

impl ContextConv {
    fn new(input: usize, output: usize, deformable: bool, device: &Device) -> ContextConv {
        if !deformable {
            return ContextConv::Plain(ConvBn::new(ConvSpec::new(input, output, 3), device));
        }
        let offset = Conv2dConfig::new([input, 27], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_initializer(burn::nn::Initializer::Zeros)
            .init(device);
        let conv = DeformConv2dConfig::new([input, output], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(device);
        ContextConv::Deformable(DeformConvBn { offset, conv, bn: BatchNormConfig::new(output).init(device) })
    }

    fn forward(&self, x: Tensor<4>, activation: Option<Activation>) -> Tensor<4> {
        match self {
            ContextConv::Plain(c) => c.forward_act(x, activation),
            ContextConv::Deformable(d) => {
                let predicted = d.offset.forward(x.clone());
                let offsets = predicted.clone().narrow(1, 0, 18);
                let mask = sigmoid(predicted.narrow(1, 18, 9));
                cpu_train::batch_norm(&d.bn, d.conv.forward(x, offsets, Some(mask)), activation)
            }
        }
    }
}

#[derive(Module, Debug)]
pub struct Ssh {
    pub conv3x3: ContextConv,
    pub conv5x5_1: ContextConv,
    pub conv5x5_2: ContextConv,
    pub conv7x7_2: ContextConv,
    pub conv7x7_3: ContextConv,
    #[module(skip)]
    pub activation: Activation,
}

impl Ssh {
    pub fn new(channels: usize, deformable: bool, activation: Activation, device: &Device) -> Ssh {
        let (half, quarter) = (channels / 2, channels / 4);
        let conv = |i, o| ContextConv::new(i, o, deformable, device);
        Ssh {
            conv3x3: conv(channels, half),
            conv5x5_1: conv(channels, quarter),
            conv5x5_2: conv(quarter, quarter),
            conv7x7_2: conv(quarter, quarter),
            conv7x7_3: conv(quarter, quarter),
            activation,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let act = Some(self.activation);
        let branch3 = self.conv3x3.forward(x.clone(), None);
        let shared = self.conv5x5_1.forward(x, act);
        let branch5 = self.conv5x5_2.forward(shared.clone(), None);
        let branch7 = self.conv7x7_3.forward(self.conv7x7_2.forward(shared, act), None);
        relu(Tensor::cat(vec![branch3, branch5, branch7], 1))
    }
}
