//! Backbones: torchvision-style ResNet (18/34/50, any width) and the MobileNetV1 ×0.25 of
//! Pytorch_Retinaface. Field names mirror the PyTorch modules so that weight import is a short,
//! explicit list of renames (see `import.rs`).

use burn::nn::PaddingConfig2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::config::{Activation, BackboneConfig, ResNetDepth};
use super::cpu_train;
use super::layers::{ConvBn, ConvSpec};

// One backbone per model: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    ResNet(ResNet),
    MobileNet(MobileNet),
}

impl Backbone {
    pub fn new(config: &BackboneConfig, activation: Activation, device: &Device) -> Backbone {
        match *config {
            BackboneConfig::ResNet { depth, width } => Backbone::ResNet(ResNet::new(depth, width, device)),
            BackboneConfig::MobileNet025 => Backbone::MobileNet(MobileNet::new(activation, device)),
        }
    }

    /// Channels of C2, C3, C4, C5 (C2 is absent for MobileNet).
    pub fn channels(config: &BackboneConfig) -> [Option<usize>; 4] {
        match *config {
            BackboneConfig::ResNet { depth, width } => {
                let expansion = if depth.bottleneck() { 4 } else { 1 };
                let planes = resnet_planes(width);
                [0, 1, 2, 3].map(|i| Some(planes[i] * expansion))
            }
            BackboneConfig::MobileNet025 => [None, Some(64), Some(128), Some(256)],
        }
    }

    /// The feature maps C2..C5 (C2 is `None` for MobileNet).
    pub fn forward(&self, x: Tensor<4>) -> [Option<Tensor<4>>; 4] {
        match self {
            Backbone::ResNet(net) => net.forward(x).map(Some),
            Backbone::MobileNet(net) => {
                let [c3, c4, c5] = net.forward(x);
                [None, Some(c3), Some(c4), Some(c5)]
            }
        }
    }
}

/// Stage widths of a ResNet scaled by `width` (never below 4 channels).
fn resnet_planes(width: f32) -> [usize; 4] {
    [64, 128, 256, 512].map(|p| ((p as f32 * width).round() as usize).max(4))
}

/// torchvision's ResNet without the classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: burn::nn::conv::Conv2d,
    pub bn1: burn::nn::BatchNorm,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<ResBlock>,
    pub layer2: Vec<ResBlock>,
    pub layer3: Vec<ResBlock>,
    pub layer4: Vec<ResBlock>,
}

/// A BasicBlock (conv1, conv2) or a Bottleneck (conv1 1×1, conv2 3×3, conv3 1×1), with the
/// projection shortcut where the shape changes. torchvision v1.5 puts the stride on conv2.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv1: burn::nn::conv::Conv2d,
    pub bn1: burn::nn::BatchNorm,
    pub conv2: burn::nn::conv::Conv2d,
    pub bn2: burn::nn::BatchNorm,
    pub conv3: Option<burn::nn::conv::Conv2d>,
    pub bn3: Option<burn::nn::BatchNorm>,
    pub downsample: Option<ConvBn>,
}

impl ResBlock {
    fn new(input: usize, planes: usize, stride: usize, bottleneck: bool, device: &Device) -> ResBlock {
        let bn = |c| burn::nn::BatchNormConfig::new(c).init(device);
        let output = if bottleneck { planes * 4 } else { planes };
        let downsample = (stride != 1 || input != output)
            .then(|| ConvBn::new(ConvSpec::new(input, output, 1).stride(stride), device));
        if bottleneck {
            ResBlock {
                conv1: ConvSpec::new(input, planes, 1).conv(device),
                bn1: bn(planes),
                conv2: ConvSpec::new(planes, planes, 3).stride(stride).conv(device),
                bn2: bn(planes),
                conv3: Some(ConvSpec::new(planes, output, 1).conv(device)),
                bn3: Some(bn(output)),
                downsample,
            }
        } else {
            ResBlock {
                conv1: ConvSpec::new(input, planes, 3).stride(stride).conv(device),
                bn1: bn(planes),
                conv2: ConvSpec::new(planes, planes, 3).conv(device),
                bn2: bn(planes),
                conv3: None,
                bn3: None,
                downsample,
            }
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => d.forward(x.clone()),
            None => x.clone(),
        };
        let y = cpu_train::batch_norm(&self.bn1, cpu_train::conv2d(&self.conv1, x), Some(Activation::Relu));
        let y = cpu_train::conv2d(&self.conv2, y);
        let y = match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let y = cpu_train::batch_norm(&self.bn2, y, Some(Activation::Relu));
                cpu_train::batch_norm(bn3, cpu_train::conv2d(conv3, y), None)
            }
            _ => cpu_train::batch_norm(&self.bn2, y, None),
        };
        relu(y + identity)
    }
}

impl ResNet {
    pub fn new(depth: ResNetDepth, width: f32, device: &Device) -> ResNet {
        let planes = resnet_planes(width);
        let bottleneck = depth.bottleneck();
        let expansion = if bottleneck { 4 } else { 1 };
        let mut input = planes[0];
        let mut layers: Vec<Vec<ResBlock>> = Vec::with_capacity(4);
        for (stage, blocks) in depth.blocks().into_iter().enumerate() {
            let stride = if stage == 0 { 1 } else { 2 };
            let layer = (0..blocks)
                .map(|b| {
                    let block =
                        ResBlock::new(input, planes[stage], if b == 0 { stride } else { 1 }, bottleneck, device);
                    input = planes[stage] * expansion;
                    block
                })
                .collect();
            layers.push(layer);
        }
        let [layer1, layer2, layer3, layer4]: [Vec<ResBlock>; 4] =
            layers.try_into().unwrap_or_else(|_| unreachable!("a ResNet has four stages"));
        ResNet {
            conv1: ConvSpec::new(3, planes[0], 7).stride(2).conv(device),
            bn1: burn::nn::BatchNormConfig::new(planes[0]).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 4] {
        let x = cpu_train::batch_norm(&self.bn1, cpu_train::conv2d(&self.conv1, x), Some(Activation::Relu));
        let x = self.maxpool.forward(x);
        let run = |layer: &[ResBlock], x: Tensor<4>| layer.iter().fold(x, |x, block| block.forward(x));
        let c2 = run(&self.layer1, x);
        let c3 = run(&self.layer2, c2.clone());
        let c4 = run(&self.layer3, c3.clone());
        let c5 = run(&self.layer4, c4.clone());
        [c2, c3, c4, c5]
    }
}

/// One layer of MobileNetV1: a 3×3 convolution (depthwise except in the first layer) and, in
/// depthwise-separable layers, the 1×1 pointwise convolution.
#[derive(Module, Debug)]
pub struct MobileBlock {
    pub spatial: ConvBn,
    pub pointwise: Option<ConvBn>,
}

impl MobileBlock {
    fn depthwise(input: usize, output: usize, stride: usize, device: &Device) -> MobileBlock {
        MobileBlock {
            spatial: ConvBn::new(ConvSpec::new(input, input, 3).stride(stride).groups(input), device),
            pointwise: Some(ConvBn::new(ConvSpec::new(input, output, 1), device)),
        }
    }

    fn forward(&self, x: Tensor<4>, activation: Activation) -> Tensor<4> {
        let x = self.spatial.forward_act(x, Some(activation));
        match &self.pointwise {
            Some(pw) => pw.forward_act(x, Some(activation)),
            None => x,
        }
    }
}

/// MobileNetV1 ×0.25 as in Pytorch_Retinaface `models/net.py` (stage outputs at strides 8, 16, 32).
#[derive(Module, Debug)]
pub struct MobileNet {
    pub stage1: Vec<MobileBlock>,
    pub stage2: Vec<MobileBlock>,
    pub stage3: Vec<MobileBlock>,
    #[module(skip)]
    pub activation: Activation,
}

impl MobileNet {
    pub fn new(activation: Activation, device: &Device) -> MobileNet {
        let dw = |i, o, s| MobileBlock::depthwise(i, o, s, device);
        let first = MobileBlock { spatial: ConvBn::new(ConvSpec::new(3, 8, 3).stride(2), device), pointwise: None };
        MobileNet {
            stage1: vec![first, dw(8, 16, 1), dw(16, 32, 2), dw(32, 32, 1), dw(32, 64, 2), dw(64, 64, 1)],
            stage2: vec![
                dw(64, 128, 2),
                dw(128, 128, 1),
                dw(128, 128, 1),
                dw(128, 128, 1),
                dw(128, 128, 1),
                dw(128, 128, 1),
            ],
            stage3: vec![dw(128, 256, 2), dw(256, 256, 1)],
            activation,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let run = |stage: &[MobileBlock], x: Tensor<4>| stage.iter().fold(x, |x, b| b.forward(x, self.activation));
        let c3 = run(&self.stage1, x);
        let c4 = run(&self.stage2, c3.clone());
        let c5 = run(&self.stage3, c4.clone());
        [c3, c4, c5]
    }
}
