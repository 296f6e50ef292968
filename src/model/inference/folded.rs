//! Layers with their batch normalisation folded in: what the inference network is built from.
//!
//! In inference a BatchNorm is an affine map per channel, so it folds into the convolution
//! before it: w′ = w·γ/√(σ²+ε), b′ = β + (b − μ)·γ/√(σ²+ε). Sibling convolutions that read the
//! same input stack into one (their outputs side by side), and the activation that follows is
//! kept with the layer so an engine can apply it while the output tile is in cache.

use burn::module::Param;
use burn::nn::conv::{Conv2d, DeformConv2d};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;

use crate::model::Activation;

/// What follows the bias on a run of output channels (`None`: nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub channels: usize,
    pub activation: Option<Activation>,
}

/// A square convolution with "same"-style symmetric padding, as every layer of the network is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl ConvShape {
    /// Output size of one spatial dimension.
    pub fn out_size(&self, size: usize) -> usize {
        (size + 2 * self.padding - self.kernel) / self.stride + 1
    }

    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.input && self.groups == self.output
    }
}

/// A convolution with its BatchNorm folded in and the activations that follow it.
#[derive(Clone, Debug)]
pub struct FoldedConv {
    pub shape: ConvShape,
    /// `[output, input / groups, kernel, kernel]`, as burn and PyTorch store it.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// Cover the output channels in order.
    pub epilogue: Vec<Segment>,
}

/// A layer of the inference network: a plain convolution, or a deformable one (the paper's
/// context module) whose offsets and mask a plain convolution predicts.
#[derive(Clone, Debug)]
pub enum FoldedLayer {
    Plain(FoldedConv),
    Deformable { offset: FoldedConv, conv: FoldedConv },
}

/// A float parameter's values on the host (converted to f32: every parameter is a float).
fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_else(|e| unreachable!("converted to f32: {e:?}"))
}

/// What [`FoldedConv::read`] needs of a plain or deformable convolution.
struct Layer<'a> {
    weight: &'a Param<Tensor<4>>,
    bias: Option<&'a Param<Tensor<1>>>,
    stride: usize,
    groups: usize,
}

fn symmetric_padding(padding: &PaddingConfig2d, kernel: usize) -> usize {
    match padding {
        PaddingConfig2d::Explicit(top, ..) => *top,
        PaddingConfig2d::Valid => 0,
        _ => kernel / 2,
    }
}

impl FoldedConv {
    /// `conv` followed by `bn` (if any) and `activation` on every output channel.
    pub fn new(conv: &Conv2d, bn: Option<&BatchNorm>, activation: Option<Activation>) -> FoldedConv {
        let layer =
            Layer { weight: &conv.weight, bias: conv.bias.as_ref(), stride: conv.stride[0], groups: conv.groups };
        FoldedConv::read(layer, &conv.padding, bn, activation)
    }

    /// A deformable convolution's weights with `bn` folded in (the offsets come from elsewhere).
    pub fn deformable(conv: &DeformConv2d, bn: &BatchNorm, activation: Option<Activation>) -> FoldedConv {
        let layer = Layer { weight: &conv.weight, bias: conv.bias.as_ref(), stride: conv.stride[0], groups: 1 };
        FoldedConv::read(layer, &conv.padding, Some(bn), activation)
    }

    /// A layer's weights read to the host, `bn` folded in.
    fn read(
        layer: Layer,
        padding: &PaddingConfig2d,
        bn: Option<&BatchNorm>,
        activation: Option<Activation>,
    ) -> FoldedConv {
        let [output, per_group, kernel, _] = layer.weight.dims();
        let shape = ConvShape {
            input: per_group * layer.groups,
            output,
            kernel,
            stride: layer.stride,
            padding: symmetric_padding(padding, kernel),
            groups: layer.groups,
        };
        let weight = host(layer.weight.val());
        let bias = layer.bias.map(|b| host(b.val())).unwrap_or_else(|| vec![0.0; output]);
        FoldedConv::fold(shape, weight, bias, bn, activation)
    }

    fn fold(
        shape: ConvShape,
        mut weight: Vec<f32>,
        mut bias: Vec<f32>,
        bn: Option<&BatchNorm>,
        activation: Option<Activation>,
    ) -> FoldedConv {
        if let Some(bn) = bn {
            let (gamma, beta) = (host(bn.gamma.val()), host(bn.beta.val()));
            let (mean, var) = (host(bn.running_mean.value()), host(bn.running_var.value()));
            let per_output = weight.len() / shape.output.max(1);
            for o in 0..shape.output {
                let scale = (gamma[o] as f64 / (var[o] as f64 + bn.epsilon).sqrt()) as f32;
                weight[o * per_output..(o + 1) * per_output].iter_mut().for_each(|w| *w *= scale);
                bias[o] = beta[o] + (bias[o] - mean[o]) * scale;
            }
        }
        FoldedConv { shape, weight, bias, epilogue: vec![Segment { channels: shape.output, activation }] }
    }

    /// Convolutions that read the same input, as one whose outputs are theirs side by side.
    /// `None` unless they agree on everything but the output channels (and are not grouped).
    pub fn stack(parts: Vec<FoldedConv>) -> Option<FoldedConv> {
        let first = parts.first()?.shape;
        let same = |s: &ConvShape| ConvShape { output: first.output, ..*s } == first;
        if first.groups != 1 || !parts.iter().all(|p| same(&p.shape)) {
            return None;
        }
        let output = parts.iter().map(|p| p.shape.output).sum();
        let mut stacked = FoldedConv {
            shape: ConvShape { output, ..first },
            weight: Vec::new(),
            bias: Vec::new(),
            epilogue: Vec::new(),
        };
        for part in parts {
            stacked.weight.extend(part.weight);
            stacked.bias.extend(part.bias);
            stacked.epilogue.extend(part.epilogue);
        }
        Some(stacked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    #[test]
    fn a_folded_conv_equals_conv_then_batch_norm() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([3, 5], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(&device);
        let mut bn = BatchNormConfig::new(5).init(&device);
        bn.gamma = Param::from_tensor(Tensor::random([5], Distribution::Uniform(0.5, 2.0), &device));
        bn.beta = Param::from_tensor(Tensor::random([5], Distribution::Uniform(-1.0, 1.0), &device));
        bn.running_mean =
            burn::module::RunningState::new(Tensor::random([5], Distribution::Uniform(-1.0, 1.0), &device));
        bn.running_var = burn::module::RunningState::new(Tensor::random([5], Distribution::Uniform(0.2, 3.0), &device));
        let x = Tensor::<4>::random([1, 3, 7, 6], Distribution::Uniform(-1.0, 1.0), &device);
        let expected = bn.forward(conv.forward(x.clone()));
        let folded = FoldedConv::new(&conv, Some(&bn), None);
        let weight = Tensor::<4>::from_data(TensorData::new(folded.weight.clone(), [5, 3, 3, 3]), &device);
        let bias = Tensor::<1>::from_data(TensorData::new(folded.bias.clone(), [5]), &device);
        let got = burn::tensor::module::conv2d(
            x,
            weight,
            Some(bias),
            burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        );
        let diff = (got - expected).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn only_convolutions_of_one_shape_stack() {
        let shape = ConvShape { input: 4, output: 2, kernel: 3, stride: 1, padding: 1, groups: 1 };
        let conv = |shape: ConvShape| FoldedConv {
            shape,
            weight: vec![1.0; shape.output * shape.input * 9],
            bias: vec![0.5; shape.output],
            epilogue: vec![Segment { channels: shape.output, activation: None }],
        };
        let stacked = FoldedConv::stack(vec![conv(shape), conv(ConvShape { output: 3, ..shape })]).unwrap();
        assert_eq!(stacked.shape.output, 5);
        assert_eq!(stacked.bias.len(), 5);
        assert_eq!(stacked.weight.len(), 5 * 4 * 9);
        assert_eq!(stacked.epilogue.len(), 2);
        assert!(FoldedConv::stack(vec![conv(shape), conv(ConvShape { stride: 2, ..shape })]).is_none());
    }
}
