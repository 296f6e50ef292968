//! The building blocks shared by the backbones, the pyramid and the context modules.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use super::config::Activation;
use super::cpu_train;

/// Applies the configured activation.
pub fn activate(x: Tensor<4>, activation: Activation) -> Tensor<4> {
    match activation {
        Activation::Relu => relu(x),
        Activation::LeakyRelu { slope } => leaky_relu(x, slope as f64),
    }
}

/// Convolution without bias followed by batch normalisation (the report's "ConvBn"); the
/// activation, where there is one, is applied by the caller because the reference networks
/// differ in where they put it.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// Shape of a [`ConvBn`]: square kernel, "same" padding for odd kernels.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
}

impl ConvSpec {
    pub fn new(input: usize, output: usize, kernel: usize) -> ConvSpec {
        ConvSpec { input, output, kernel, stride: 1, groups: 1 }
    }

    pub fn stride(self, stride: usize) -> ConvSpec {
        ConvSpec { stride, ..self }
    }

    pub fn groups(self, groups: usize) -> ConvSpec {
        ConvSpec { groups, ..self }
    }

    pub fn conv(self, device: &Device) -> Conv2d {
        let pad = self.kernel / 2;
        Conv2dConfig::new([self.input, self.output], [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_groups(self.groups)
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .init(device)
    }
}

impl ConvBn {
    pub fn new(spec: ConvSpec, device: &Device) -> ConvBn {
        ConvBn { conv: spec.conv(device), bn: BatchNormConfig::new(spec.output).init(device) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_act(x, None)
    }

    /// `activation(bn(conv(x)))`, through the CPU training kernels where they apply.
    pub fn forward_act(&self, x: Tensor<4>, activation: Option<Activation>) -> Tensor<4> {
        cpu_train::batch_norm(&self.bn, cpu_train::conv2d(&self.conv, x), activation)
    }
}

/// A 1×1 convolution with bias: the heads' output layers.
pub fn head_conv(input: usize, output: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [1, 1]).init(device)
}
