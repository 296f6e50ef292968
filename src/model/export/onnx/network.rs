//! The network as ONNX nodes, layer by layer as [`RetinaFace::forward`] runs it (backbone, FPN,
//! SSH context, heads), every BatchNorm folded into the convolution before it as the inference
//! network does (`model/inference/folded.rs`): in inference a BatchNorm is an affine map per
//! channel, so w′ = w·γ/√(σ²+ε) and b′ = β + (b − μ)·γ/√(σ²+ε).
//!
//! Node names are the model's own module paths (`backbone.layer1.0.conv1`, `fpn.lateral.0`,
//! `context.2.conv7x7_3`, `heads.1.bbox.0`), so a graph viewer shows where each layer comes from;
//! what belongs to a layer follows a `/` (`backbone.conv1/weight`, `fpn.merge.0/upsample`).
//! Runtimes name the pieces they split a node into `NODE.PIECE` (tract wires a Conv's bias as
//! `NAME.bias` and refuses a name twice), so no name of the graph has that form.

use std::collections::HashMap;

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;

use super::OnnxExportError;
use super::graph::{Attr, GraphBuilder};
use crate::model::RetinaFace;
use crate::model::backbone::{Backbone, MobileNet, ResBlock, ResNet};
use crate::model::config::{Activation, FpnLevels};
use crate::model::context::{ContextConv, Ssh};
use crate::model::fpn::Fpn;
use crate::model::layers::ConvBn;

/// A parameter's values on the host as f32 (every parameter of the network is a float).
fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_else(|e| unreachable!("converted to f32: {e:?}"))
}

/// `conv`'s weight `[out, in / groups, kh, kw]` and bias `[out]` with `bn` (if any) folded in,
/// the scale computed in f64 like the inference network's folding.
pub fn fold(conv: &Conv2d, bn: Option<&BatchNorm>) -> (Vec<f32>, Vec<f32>) {
    let [output, ..] = conv.weight.dims();
    let mut weight = host(conv.weight.val());
    let mut bias = conv.bias.as_ref().map(|b| host(b.val())).unwrap_or_else(|| vec![0.0; output]);
    if let Some(bn) = bn {
        let (gamma, beta) = (host(bn.gamma.val()), host(bn.beta.val()));
        let (mean, var) = (host(bn.running_mean.value()), host(bn.running_var.value()));
        let per_output = weight.len() / output.max(1);
        for o in 0..output {
            let scale = (gamma[o] as f64 / (var[o] as f64 + bn.epsilon).sqrt()) as f32;
            weight[o * per_output..(o + 1) * per_output].iter_mut().for_each(|w| *w *= scale);
            bias[o] = beta[o] + (bias[o] - mean[o]) * scale;
        }
    }
    (weight, bias)
}

/// ONNX `pads` (top, left, bottom, right, as burn's `Explicit`) or, for burn's size-dependent
/// `Same`, the `auto_pad` that computes the same (the extra pixel at the end).
fn padding_attributes(padding: &PaddingConfig2d) -> (&'static str, Attr) {
    match *padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            ("pads", Attr::Ints([top, left, bottom, right].map(|p| p as i64).to_vec()))
        }
        PaddingConfig2d::Valid => ("pads", Attr::Ints(vec![0; 4])),
        PaddingConfig2d::Same => ("auto_pad", Attr::Str("SAME_UPPER")),
    }
}

fn pair(v: [usize; 2]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// Writes the network's nodes into a [`GraphBuilder`].
pub struct NetworkWriter<'g> {
    g: &'g mut GraphBuilder,
    /// The preset the model was built from, for error messages.
    preset: String,
    /// `[0, -1, k]` shape constants of the heads' Reshape, per `k`.
    row_shapes: HashMap<usize, String>,
}

impl<'g> NetworkWriter<'g> {
    pub fn new(g: &'g mut GraphBuilder, preset: &str) -> NetworkWriter<'g> {
        NetworkWriter { g, preset: preset.to_string(), row_shapes: HashMap::new() }
    }

    pub fn graph(&mut self) -> &mut GraphBuilder {
        self.g
    }

    /// `conv` (with `bn` folded in) on `x`, named `name`.
    fn conv(&mut self, name: &str, x: &str, conv: &Conv2d, bn: Option<&BatchNorm>) -> String {
        let (weight, bias) = fold(conv, bn);
        let shape = conv.weight.dims();
        let w = self.g.floats(&format!("{name}/weight"), &shape, &weight);
        let b = self.g.floats(&format!("{name}/bias"), &[shape[0]], &bias);
        self.g.node(
            "Conv",
            name,
            &[x, &w, &b],
            &[
                ("kernel_shape", pair(conv.kernel_size)),
                ("strides", pair(conv.stride)),
                ("dilations", pair(conv.dilation)),
                ("group", Attr::Int(conv.groups as i64)),
                padding_attributes(&conv.padding),
            ],
        )
    }

    fn conv_bn(&mut self, name: &str, x: &str, c: &ConvBn) -> String {
        self.conv(name, x, &c.conv, Some(&c.bn))
    }

    /// `activation` on `x`: `Relu`, or `LeakyRelu` with the slope as `alpha` (burn's
    /// `leaky_relu`: x for x ≥ 0, slope·x below).
    fn activate(&mut self, name: &str, x: &str, activation: Activation) -> String {
        match activation {
            Activation::Relu => self.g.node("Relu", &format!("{name}/relu"), &[x], &[]),
            Activation::LeakyRelu { slope } => {
                self.g.node("LeakyRelu", &format!("{name}/leaky_relu"), &[x], &[("alpha", Attr::Float(slope))])
            }
        }
    }

    fn relu(&mut self, name: &str, x: &str) -> String {
        self.activate(name, x, Activation::Relu)
    }

    fn max_pool(&mut self, name: &str, x: &str, pool: &MaxPool2d) -> String {
        self.g.node(
            "MaxPool",
            name,
            &[x],
            &[
                ("kernel_shape", pair(pool.kernel_size)),
                ("strides", pair(pool.stride)),
                ("dilations", pair(pool.dilation)),
                ("ceil_mode", Attr::Int(i64::from(pool.ceil_mode))),
                padding_attributes(&pool.padding),
            ],
        )
    }

    /// The pyramid levels after the context modules, finest first: what the heads read.
    pub fn features(&mut self, model: &RetinaFace, input: &str) -> Result<Vec<String>, OnnxExportError> {
        let [c2, c3, c4, c5] = self.backbone(&model.backbone, input);
        let used: Vec<String> = match model.config.fpn.levels {
            FpnLevels::P2ToP6 => [c2, c3, c4, c5].into_iter().flatten().collect(),
            FpnLevels::P3ToP5 => [c3, c4, c5].into_iter().flatten().collect(),
        };
        let features = self.pyramid(&model.fpn, used);
        match &model.context {
            Some(context) => context
                .iter()
                .zip(&features)
                .enumerate()
                .map(|(level, (ssh, p))| self.context(level, model.config.fpn.levels, ssh, p))
                .collect(),
            None => Ok(features),
        }
    }

    /// C2..C5 (C2 absent for MobileNet).
    fn backbone(&mut self, backbone: &Backbone, x: &str) -> [Option<String>; 4] {
        match backbone {
            Backbone::ResNet(net) => self.resnet(net, x).map(Some),
            Backbone::MobileNet(net) => {
                let [c3, c4, c5] = self.mobilenet(net, x);
                [None, Some(c3), Some(c4), Some(c5)]
            }
        }
    }

    fn resnet(&mut self, net: &ResNet, x: &str) -> [String; 4] {
        let stem = self.conv("backbone.conv1", x, &net.conv1, Some(&net.bn1));
        let stem = self.relu("backbone.conv1", &stem);
        let mut x = self.max_pool("backbone.maxpool", &stem, &net.maxpool);
        let mut outputs = Vec::with_capacity(4);
        for (stage, blocks) in [&net.layer1, &net.layer2, &net.layer3, &net.layer4].into_iter().enumerate() {
            for (b, block) in blocks.iter().enumerate() {
                x = self.res_block(&format!("backbone.layer{}.{b}", stage + 1), block, &x);
            }
            outputs.push(x.clone());
        }
        outputs.try_into().unwrap_or_else(|_| unreachable!("a ResNet has four stages"))
    }

    /// A BasicBlock or Bottleneck as `ResBlock::forward`: ReLU after every conv but the last,
    /// which adds the shortcut first.
    fn res_block(&mut self, name: &str, b: &ResBlock, x: &str) -> String {
        let identity = match &b.downsample {
            Some(d) => self.conv_bn(&format!("{name}.downsample"), x, d),
            None => x.to_string(),
        };
        let y = self.conv(&format!("{name}.conv1"), x, &b.conv1, Some(&b.bn1));
        let y = self.relu(&format!("{name}.conv1"), &y);
        let mut y = self.conv(&format!("{name}.conv2"), &y, &b.conv2, Some(&b.bn2));
        if let (Some(conv3), Some(bn3)) = (&b.conv3, &b.bn3) {
            let relu = self.relu(&format!("{name}.conv2"), &y);
            y = self.conv(&format!("{name}.conv3"), &relu, conv3, Some(bn3));
        }
        let sum = self.g.node("Add", &format!("{name}/add"), &[&y, &identity], &[]);
        self.relu(name, &sum)
    }

    fn mobilenet(&mut self, net: &MobileNet, x: &str) -> [String; 3] {
        let mut x = x.to_string();
        let mut outputs = Vec::with_capacity(3);
        for (s, stage) in [&net.stage1, &net.stage2, &net.stage3].into_iter().enumerate() {
            for (b, block) in stage.iter().enumerate() {
                let name = format!("backbone.stage{}.{b}", s + 1);
                let y = self.conv_bn(&format!("{name}.spatial"), &x, &block.spatial);
                x = self.activate(&format!("{name}.spatial"), &y, net.activation);
                if let Some(pw) = &block.pointwise {
                    let y = self.conv_bn(&format!("{name}.pointwise"), &x, pw);
                    x = self.activate(&format!("{name}.pointwise"), &y, net.activation);
                }
            }
            outputs.push(x.clone());
        }
        outputs.try_into().unwrap_or_else(|_| unreachable!("MobileNet has three stages"))
    }

    /// `Fpn::forward`: lateral 1×1s, then top-down the coarser level upsampled (nearest) to the
    /// finer one's size, added, and a 3×3 after each merge; C6 from the raw C5.
    ///
    /// burn's nearest interpolation to a size reads source index ⌊dst · in / out⌋: ONNX Resize
    /// with `coordinate_transformation_mode = asymmetric` and `nearest_mode = floor`. The target
    /// size is the finer lateral's own `Shape` (batch and channels are the same), so the graph
    /// stays valid for any input size.
    fn pyramid(&mut self, fpn: &Fpn, used: Vec<String>) -> Vec<String> {
        let top = used.last().cloned();
        let mut p: Vec<String> = Vec::with_capacity(used.len() + 1);
        for (i, (conv, x)) in fpn.lateral.iter().zip(&used).enumerate() {
            let name = format!("fpn.lateral.{i}");
            let y = self.conv_bn(&name, x, conv);
            p.push(self.activate(&name, &y, fpn.activation));
        }
        for i in (0..p.len().saturating_sub(1)).rev() {
            let name = format!("fpn.merge.{i}");
            let size = self.g.node("Shape", &format!("{name}/size"), &[&p[i]], &[]);
            let up = self.g.node(
                "Resize",
                &format!("{name}/upsample"),
                &[&p[i + 1], "", "", &size],
                &[
                    ("mode", Attr::Str("nearest")),
                    ("coordinate_transformation_mode", Attr::Str("asymmetric")),
                    ("nearest_mode", Attr::Str("floor")),
                ],
            );
            let merged = self.g.node("Add", &format!("{name}/add"), &[&p[i], &up], &[]);
            let y = self.conv_bn(&name, &merged, &fpn.merge[i]);
            p[i] = self.activate(&name, &y, fpn.activation);
        }
        if let (Some(c6), Some(c5)) = (&fpn.c6, top) {
            let y = self.conv_bn("fpn.c6", &c5, c6);
            p.push(self.activate("fpn.c6", &y, fpn.activation));
        }
        p
    }

    /// A context conv's plain ConvBn; a deformable one has no ONNX operator at opset 17.
    fn plain<'m>(
        &self,
        c: &'m ContextConv,
        level: usize,
        levels: FpnLevels,
        layer: &str,
    ) -> Result<&'m ConvBn, OnnxExportError> {
        match c {
            ContextConv::Plain(c) => Ok(c),
            ContextConv::Deformable(_) => {
                let stride = levels.strides().get(level).copied().unwrap_or(1);
                Err(OnnxExportError::Unsupported {
                    what: format!(
                        "preset {:?}: layer context.{level}.{layer} (the SSH context module of pyramid level P{}) \
                         is a deformable convolution (DCNv2), and ONNX opset 17 has no deformable convolution \
                         operator (DeformConv needs opset 19)",
                        self.preset,
                        stride.trailing_zeros()
                    ),
                })
            }
        }
    }

    /// `Ssh::forward`: the 3×3, 5×5 and 7×7 branches concatenated 2:1:1, then ReLU.
    fn context(&mut self, level: usize, levels: FpnLevels, s: &Ssh, x: &str) -> Result<String, OnnxExportError> {
        let name = format!("context.{level}");
        let layer = |l: &str| format!("{name}.{l}");
        let conv3x3 = self.plain(&s.conv3x3, level, levels, "conv3x3")?;
        let conv5x5_1 = self.plain(&s.conv5x5_1, level, levels, "conv5x5_1")?;
        let conv5x5_2 = self.plain(&s.conv5x5_2, level, levels, "conv5x5_2")?;
        let conv7x7_2 = self.plain(&s.conv7x7_2, level, levels, "conv7x7_2")?;
        let conv7x7_3 = self.plain(&s.conv7x7_3, level, levels, "conv7x7_3")?;
        let branch3 = self.conv_bn(&layer("conv3x3"), x, conv3x3);
        let shared = self.conv_bn(&layer("conv5x5_1"), x, conv5x5_1);
        let shared = self.activate(&layer("conv5x5_1"), &shared, s.activation);
        let branch5 = self.conv_bn(&layer("conv5x5_2"), &shared, conv5x5_2);
        let y = self.conv_bn(&layer("conv7x7_2"), &shared, conv7x7_2);
        let y = self.activate(&layer("conv7x7_2"), &y, s.activation);
        let branch7 = self.conv_bn(&layer("conv7x7_3"), &y, conv7x7_3);
        let all = self.g.node(
            "Concat",
            &format!("{name}/concat"),
            &[&branch3, &branch5, &branch7],
            &[("axis", Attr::Int(1))],
        );
        Ok(self.relu(&name, &all))
    }

    /// One head of one stage: per level the 1×1 conv, NCHW → NHWC, rows of `per_anchor`
    /// values (`[N, H·W·anchors, per_anchor]`: row, column, anchor), concatenated over the
    /// levels finest first: the anchor order of `AnchorSpec::generate`, as `HeadStage::forward`
    /// flattens. `convs` holds one conv per level; the result is named `output`.
    pub fn head_rows(
        &mut self,
        name: &str,
        output: &str,
        features: &[String],
        convs: &[Conv2d],
        per_anchor: usize,
    ) -> String {
        let shape = match self.row_shapes.get(&per_anchor) {
            Some(shape) => shape.clone(),
            None => {
                // 0 copies the batch size from the input (Reshape's default `allowzero = 0`).
                let shape = self.g.ints(&format!("heads/rows_of_{per_anchor}"), &[3], &[0, -1, per_anchor as i64]);
                self.row_shapes.insert(per_anchor, shape.clone());
                shape
            }
        };
        let mut rows = Vec::with_capacity(convs.len());
        for (level, (conv, x)) in convs.iter().zip(features).enumerate() {
            let level_name = format!("{name}.{level}");
            let y = self.conv(&level_name, x, conv, None);
            let nhwc = self.g.node(
                "Transpose",
                &format!("{level_name}/nhwc"),
                &[&y],
                &[("perm", Attr::Ints(vec![0, 2, 3, 1]))],
            );
            rows.push(self.g.node("Reshape", &format!("{level_name}/rows"), &[&nhwc, &shape], &[]));
        }
        let inputs: Vec<&str> = rows.iter().map(String::as_str).collect();
        self.g.node("Concat", output, &inputs, &[("axis", Attr::Int(1))])
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::nn::BatchNormConfig;
    use burn::nn::conv::Conv2dConfig;

    use super::*;

    #[test]
    fn folding_is_the_batch_norm_of_the_conv_per_output_channel() {
        let device = Device::flex();
        let mut conv = Conv2dConfig::new([1, 2], [1, 1]).init(&device);
        conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(vec![2.0f32, -1.0], [2, 1, 1, 1]), &device));
        conv.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.5f32, 1.0], [2]), &device)));
        let mut bn = BatchNormConfig::new(2).init(&device);
        bn.epsilon = 0.0; // for round numbers: the config only takes a positive ε
        let v = |values: Vec<f32>| Tensor::<1>::from_data(TensorData::new(values, [2]), &device);
        bn.gamma = Param::from_tensor(v(vec![3.0, 1.0]));
        bn.beta = Param::from_tensor(v(vec![0.25, -1.0]));
        bn.running_mean = RunningState::new(v(vec![1.0, 0.0]));
        bn.running_var = RunningState::new(v(vec![4.0, 1.0]));
        // Channel 0: scale 3/√4 = 1.5, w = 2·1.5 = 3, b = 0.25 + (0.5 − 1)·1.5 = −0.5.
        // Channel 1: scale 1, w = −1, b = −1 + (1 − 0)·1 = 0.
        assert_eq!(fold(&conv, Some(&bn)), (vec![3.0, -1.0], vec![-0.5, 0.0]));
        assert_eq!(fold(&conv, None), (vec![2.0, -1.0], vec![0.5, 1.0]), "without BN, the conv's own");
    }

    #[test]
    fn padding_becomes_onnx_pads_in_burns_order() {
        assert_eq!(padding_attributes(&PaddingConfig2d::Explicit(1, 2, 3, 4)), ("pads", Attr::Ints(vec![1, 2, 3, 4])));
        assert_eq!(padding_attributes(&PaddingConfig2d::Valid), ("pads", Attr::Ints(vec![0; 4])));
        assert_eq!(padding_attributes(&PaddingConfig2d::Same), ("auto_pad", Attr::Str("SAME_UPPER")));
    }
}
