//! The inference network on burn's own operations (any device): what runs on a GPU, and on the
//! CPU for layers the CPU kernels do not cover (deformable convolutions).

use burn::nn::PaddingConfig2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, sigmoid};
use burn::tensor::module::{conv2d, deform_conv2d, interpolate};
use burn::tensor::ops::{ConvOptions, DeformConvOptions, InterpolateMode, InterpolateOptions};

use super::folded::{FoldedConv, FoldedLayer, Segment};
use super::graph::Engine;
use crate::model::Activation;

pub struct BurnEngine {
    device: Device,
    pool: MaxPool2d,
}

struct Weights {
    weight: Tensor<4>,
    bias: Tensor<1>,
}

enum Kind {
    Plain { conv: Weights, options: ConvOptions<2> },
    Deformable { offset: Weights, conv: Weights, options: DeformConvOptions<2> },
}

pub struct BurnLayer {
    kind: Kind,
    epilogue: Vec<Segment>,
}

impl BurnEngine {
    pub fn new(device: &Device) -> BurnEngine {
        let pool = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        BurnEngine { device: device.clone(), pool }
    }

    fn weights(&self, c: &FoldedConv) -> Weights {
        let s = c.shape;
        Weights {
            weight: Tensor::from_data(
                TensorData::new(c.weight.clone(), [s.output, s.input / s.groups, s.kernel, s.kernel]),
                &self.device,
            ),
            bias: Tensor::from_data(TensorData::new(c.bias.clone(), [s.output]), &self.device),
        }
    }
}

fn options(c: &FoldedConv) -> ConvOptions<2> {
    let s = c.shape;
    ConvOptions::new([s.stride; 2], [s.padding; 2], [1, 1], s.groups)
}

fn activate(x: Tensor<4>, activation: Option<Activation>) -> Tensor<4> {
    match activation {
        None => x,
        Some(Activation::Relu) => relu(x),
        Some(Activation::LeakyRelu { slope }) => leaky_relu(x, slope as f64),
    }
}

impl Engine for BurnEngine {
    type Map = Tensor<4>;
    type Layer = BurnLayer;

    fn prepare(&self, layer: &FoldedLayer) -> Option<BurnLayer> {
        Some(match layer {
            FoldedLayer::Plain(c) => BurnLayer {
                kind: Kind::Plain { conv: self.weights(c), options: options(c) },
                epilogue: c.epilogue.clone(),
            },
            FoldedLayer::Deformable { offset, conv } => {
                let s = conv.shape;
                BurnLayer {
                    kind: Kind::Deformable {
                        offset: self.weights(offset),
                        conv: self.weights(conv),
                        options: DeformConvOptions::new([s.stride; 2], [s.padding; 2], [1, 1], 1, 1),
                    },
                    epilogue: conv.epilogue.clone(),
                }
            }
        })
    }

    fn input(&self, images: &[&[f32]], height: usize, width: usize) -> Tensor<4> {
        let data: Vec<f32> = images.iter().flat_map(|i| i.iter().copied()).collect();
        Tensor::from_data(TensorData::new(data, [images.len(), 3, height, width]), &self.device)
    }

    fn conv(&self, layer: &BurnLayer, x: &Tensor<4>, residual: Option<&Tensor<4>>) -> Tensor<4> {
        let mut y = match &layer.kind {
            Kind::Plain { conv, options } => {
                conv2d(x.clone(), conv.weight.clone(), Some(conv.bias.clone()), options.clone())
            }
            Kind::Deformable { offset, conv, options } => {
                let k = conv.weight.dims()[2];
                let taps = k * k;
                let predicted = conv2d(
                    x.clone(),
                    offset.weight.clone(),
                    Some(offset.bias.clone()),
                    ConvOptions::new(options.stride, options.padding, [1, 1], 1),
                );
                let offsets = predicted.clone().narrow(1, 0, 2 * taps);
                let mask = sigmoid(predicted.narrow(1, 2 * taps, taps));
                deform_conv2d(
                    x.clone(),
                    offsets,
                    conv.weight.clone(),
                    Some(mask),
                    Some(conv.bias.clone()),
                    options.clone(),
                )
            }
        };
        if let Some(r) = residual {
            y = y + r.clone();
        }
        match layer.epilogue.as_slice() {
            [one] => activate(y, one.activation),
            segments => {
                let mut start = 0;
                let parts = segments
                    .iter()
                    .map(|s| {
                        let part = activate(y.clone().narrow(1, start, s.channels), s.activation);
                        start += s.channels;
                        part
                    })
                    .collect();
                Tensor::cat(parts, 1)
            }
        }
    }

    fn max_pool(&self, x: &Tensor<4>) -> Tensor<4> {
        self.pool.forward(x.clone())
    }

    fn add_upsampled(&self, fine: &Tensor<4>, coarse: &Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = fine.dims();
        let up =
            interpolate(coarse.clone(), InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]));
        fine.clone() + up
    }

    fn channels(&self, x: &Tensor<4>, start: usize, len: usize) -> Tensor<4> {
        x.clone().narrow(1, start, len)
    }

    fn concat(&self, parts: &[Tensor<4>]) -> Tensor<4> {
        Tensor::cat(parts.to_vec(), 1)
    }

    fn head_rows(&self, levels: &[Tensor<4>], start: usize, len: usize, per_anchor: usize) -> Tensor<3> {
        let rows = levels
            .iter()
            .map(|y| {
                let n = y.dims()[0];
                y.clone().narrow(1, start, len).permute([0, 2, 3, 1]).reshape([n as i64, -1, per_anchor as i64])
            })
            .collect();
        Tensor::cat(rows, 1)
    }
}
