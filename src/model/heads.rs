//! The multi-task heads (report §3.5): per pyramid level a 1×1 convolution each for class logits,
//! box regressions and landmark regressions, flattened NHWC so that rows follow the anchor order
//! (level, row, column, anchor) and concatenated over levels.

use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::layers::head_conv;

#[derive(Module, Debug)]
pub struct HeadStage {
    pub class: Vec<Conv2d>,
    pub bbox: Vec<Conv2d>,
    pub landmark: Option<Vec<Conv2d>>,
}

/// One stage's outputs for a batch: `[N, A, 2]` logits, `[N, A, 4]` boxes, `[N, A, 10]` landmarks.
#[derive(Clone, Debug)]
pub struct HeadOutput {
    pub logits: Tensor<3>,
    pub boxes: Tensor<3>,
    pub landmarks: Option<Tensor<3>>,
}

fn flatten(conv: &Conv2d, x: Tensor<4>, per_anchor: usize) -> Tensor<3> {
    let y = conv.forward(x);
    let [n, _, _, _] = y.dims();
    y.permute([0, 2, 3, 1]).reshape([n as i64, -1, per_anchor as i64])
}

impl HeadStage {
    pub fn new(channels: usize, levels: usize, anchors: usize, landmarks: bool, device: &Device) -> HeadStage {
        let convs = |per_anchor: usize| {
            (0..levels).map(|_| head_conv(channels, anchors * per_anchor, device)).collect::<Vec<_>>()
        };
        HeadStage { class: convs(2), bbox: convs(4), landmark: landmarks.then(|| convs(10)) }
    }

    pub fn forward(&self, features: &[Tensor<4>]) -> HeadOutput {
        let run = |convs: &[Conv2d], k: usize| {
            Tensor::cat(convs.iter().zip(features).map(|(c, x)| flatten(c, x.clone(), k)).collect(), 1)
        };
        HeadOutput {
            logits: run(&self.class, 2),
            boxes: run(&self.bbox, 4),
            landmarks: self.landmark.as_ref().map(|convs| run(convs, 10)),
        }
    }
}
