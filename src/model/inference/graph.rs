//! The inference network's topology, written once over an [`Engine`]: which folded layer reads
//! which map. Building it from a [`RetinaFace`] is where sibling layers are stacked.

use burn::prelude::*;

use super::folded::{FoldedConv, FoldedLayer, Segment};
use crate::model::backbone::{Backbone, MobileNet, ResBlock, ResNet};
use crate::model::config::{Activation, FpnLevels};
use crate::model::context::{ContextConv, Ssh};
use crate::model::heads::HeadOutput;
use crate::model::{RetinaFace, RetinaFaceOutput};

/// Where the maps live and how the layers run on them. Every layer's epilogue (bias, residual,
/// activations) is the engine's to apply.
pub trait Engine {
    /// A feature map (cheap to clone).
    type Map: Clone;
    /// A layer prepared for this engine.
    type Layer;

    /// `None` where the engine cannot run the layer (another engine then runs the network).
    fn prepare(&self, layer: &FoldedLayer) -> Option<Self::Layer>;
    /// The network input: images of one `height`×`width`, each `[3, H, W]`.
    fn input(&self, images: &[&[f32]], height: usize, width: usize) -> Self::Map;
    /// The layer on `x`; `residual` (same shape as the output) is added before the activation.
    fn conv(&self, layer: &Self::Layer, x: &Self::Map, residual: Option<&Self::Map>) -> Self::Map;
    /// ResNet's stem pooling: 3×3 max, stride 2, padding 1.
    fn max_pool(&self, x: &Self::Map) -> Self::Map;
    /// `fine` plus `coarse` upsampled (nearest) to its size: the pyramid's top-down step.
    fn add_upsampled(&self, fine: &Self::Map, coarse: &Self::Map) -> Self::Map;
    /// Channels `start..start + len`.
    fn channels(&self, x: &Self::Map, start: usize, len: usize) -> Self::Map;
    /// Maps of one size side by side in channels.
    fn concat(&self, parts: &[Self::Map]) -> Self::Map;
    /// Channels `start..start + len` of every level as rows of `per_anchor` values in the anchor
    /// order (level, row, column, anchor): `[N, A, per_anchor]`.
    fn head_rows(&self, levels: &[Self::Map], start: usize, len: usize, per_anchor: usize) -> Tensor<3>;
}

/// A residual block: `convs` in sequence, the last adding the shortcut before its ReLU.
pub struct Block<L> {
    convs: Vec<L>,
    downsample: Option<L>,
}

pub enum BackbonePlan<L> {
    ResNet {
        stem: L,
        layers: [Vec<Block<L>>; 4],
    },
    /// Each stage a sequence of layers; its output is a pyramid input.
    MobileNet {
        stages: [Vec<L>; 3],
    },
}

/// The context module's first two branches both read the input: stacked into one layer when
/// they are plain convolutions, else run apart.
pub enum SshEntry<L> {
    Stacked(L),
    Apart { conv3x3: L, conv5x5_1: L },
}

pub struct SshPlan<L> {
    entry: SshEntry<L>,
    conv5x5_2: L,
    conv7x7_2: L,
    conv7x7_3: L,
    half: usize,
    quarter: usize,
}

pub struct Plan<L> {
    backbone: BackbonePlan<L>,
    levels: FpnLevels,
    lateral: Vec<L>,
    merge: Vec<L>,
    c6: Option<L>,
    context: Option<Vec<SshPlan<L>>>,
    /// Per level one 1×1 layer giving every stage's class, box and landmark outputs.
    heads: Vec<L>,
    stages: usize,
    anchors: usize,
    landmarks: bool,
}

fn plain(conv: FoldedConv) -> FoldedLayer {
    FoldedLayer::Plain(conv)
}

fn conv_bn(c: &crate::model::layers::ConvBn, activation: Option<Activation>) -> FoldedConv {
    FoldedConv::new(&c.conv, Some(&c.bn), activation)
}

fn context_layer(c: &ContextConv, activation: Option<Activation>) -> FoldedLayer {
    match c {
        ContextConv::Plain(c) => plain(conv_bn(c, activation)),
        ContextConv::Deformable(d) => FoldedLayer::Deformable {
            offset: FoldedConv::new(&d.offset, None, None),
            conv: FoldedConv::deformable(&d.conv, &d.bn, activation),
        },
    }
}

fn block(b: &ResBlock) -> Block<FoldedLayer> {
    let relu = Some(Activation::Relu);
    let mut convs = vec![plain(FoldedConv::new(&b.conv1, Some(&b.bn1), relu))];
    convs.push(plain(FoldedConv::new(&b.conv2, Some(&b.bn2), relu)));
    if let (Some(conv3), Some(bn3)) = (&b.conv3, &b.bn3) {
        convs.push(plain(FoldedConv::new(conv3, Some(bn3), relu)));
    }
    Block { convs, downsample: b.downsample.as_ref().map(|d| plain(conv_bn(d, None))) }
}

fn resnet(net: &ResNet) -> BackbonePlan<FoldedLayer> {
    let layer = |blocks: &[ResBlock]| blocks.iter().map(block).collect();
    BackbonePlan::ResNet {
        stem: plain(FoldedConv::new(&net.conv1, Some(&net.bn1), Some(Activation::Relu))),
        layers: [layer(&net.layer1), layer(&net.layer2), layer(&net.layer3), layer(&net.layer4)],
    }
}

fn mobilenet(net: &MobileNet) -> BackbonePlan<FoldedLayer> {
    let act = Some(net.activation);
    let stage = |blocks: &[crate::model::backbone::MobileBlock]| {
        blocks
            .iter()
            .flat_map(|b| {
                std::iter::once(plain(conv_bn(&b.spatial, act)))
                    .chain(b.pointwise.as_ref().map(|p| plain(conv_bn(p, act))))
            })
            .collect()
    };
    BackbonePlan::MobileNet { stages: [stage(&net.stage1), stage(&net.stage2), stage(&net.stage3)] }
}

fn ssh(s: &Ssh) -> SshPlan<FoldedLayer> {
    // The module ends in ReLU over all branches: each branch's last layer applies it itself.
    let (relu, act) = (Some(Activation::Relu), Some(s.activation));
    let conv3x3 = context_layer(&s.conv3x3, relu);
    let conv5x5_1 = context_layer(&s.conv5x5_1, act);
    let (half, quarter) = (out_channels(&conv3x3), out_channels(&conv5x5_1));
    let entry = match (conv3x3, conv5x5_1) {
        (FoldedLayer::Plain(a), FoldedLayer::Plain(b)) => match FoldedConv::stack(vec![a.clone(), b.clone()]) {
            Some(stacked) => SshEntry::Stacked(plain(stacked)),
            None => SshEntry::Apart { conv3x3: plain(a), conv5x5_1: plain(b) },
        },
        (conv3x3, conv5x5_1) => SshEntry::Apart { conv3x3, conv5x5_1 },
    };
    SshPlan {
        entry,
        conv5x5_2: context_layer(&s.conv5x5_2, relu),
        conv7x7_2: context_layer(&s.conv7x7_2, act),
        conv7x7_3: context_layer(&s.conv7x7_3, relu),
        half,
        quarter,
    }
}

fn out_channels(layer: &FoldedLayer) -> usize {
    match layer {
        FoldedLayer::Plain(c) | FoldedLayer::Deformable { conv: c, .. } => c.shape.output,
    }
}

impl Plan<FoldedLayer> {
    /// The network's layers folded and stacked; `model` must be in inference mode.
    pub fn fold(model: &RetinaFace) -> Plan<FoldedLayer> {
        let act = Some(model.config.activation);
        let levels = model.config.fpn.levels.count();
        let heads = (0..levels)
            .map(|level| {
                let mut parts = Vec::new();
                for stage in &model.heads {
                    parts.push(FoldedConv::new(&stage.class[level], None, None));
                    parts.push(FoldedConv::new(&stage.bbox[level], None, None));
                    if let Some(landmark) = &stage.landmark {
                        parts.push(FoldedConv::new(&landmark[level], None, None));
                    }
                }
                plain(
                    FoldedConv::stack(parts)
                        .unwrap_or_else(|| unreachable!("the heads are 1×1 convolutions of one input")),
                )
            })
            .collect();
        Plan {
            backbone: match &model.backbone {
                Backbone::ResNet(net) => resnet(net),
                Backbone::MobileNet(net) => mobilenet(net),
            },
            levels: model.config.fpn.levels,
            lateral: model.fpn.lateral.iter().map(|c| plain(conv_bn(c, act))).collect(),
            merge: model.fpn.merge.iter().map(|c| plain(conv_bn(c, act))).collect(),
            c6: model.fpn.c6.as_ref().map(|c| plain(conv_bn(c, act))),
            context: model.context.as_ref().map(|c| c.iter().map(ssh).collect()),
            heads,
            stages: model.heads.len(),
            anchors: model.config.anchors_per_location(),
            landmarks: model.config.landmarks,
        }
    }

    /// Every layer prepared for `engine`; `None` if it cannot run one of them.
    pub fn prepare<E: Engine>(&self, engine: &E) -> Option<Plan<E::Layer>> {
        let p = |l: &FoldedLayer| engine.prepare(l);
        let all = |v: &[FoldedLayer]| v.iter().map(p).collect::<Option<Vec<_>>>();
        let blocks = |v: &[Block<FoldedLayer>]| {
            v.iter()
                .map(|b| Some(Block { convs: all(&b.convs)?, downsample: optional(b.downsample.as_ref(), p)? }))
                .collect::<Option<Vec<_>>>()
        };
        let backbone = match &self.backbone {
            BackbonePlan::ResNet { stem, layers: [l1, l2, l3, l4] } => {
                BackbonePlan::ResNet { stem: p(stem)?, layers: [blocks(l1)?, blocks(l2)?, blocks(l3)?, blocks(l4)?] }
            }
            BackbonePlan::MobileNet { stages: [s1, s2, s3] } => {
                BackbonePlan::MobileNet { stages: [all(s1)?, all(s2)?, all(s3)?] }
            }
        };
        let ssh = |s: &SshPlan<FoldedLayer>| {
            let entry = match &s.entry {
                SshEntry::Stacked(l) => SshEntry::Stacked(p(l)?),
                SshEntry::Apart { conv3x3, conv5x5_1 } => {
                    SshEntry::Apart { conv3x3: p(conv3x3)?, conv5x5_1: p(conv5x5_1)? }
                }
            };
            Some(SshPlan {
                entry,
                conv5x5_2: p(&s.conv5x5_2)?,
                conv7x7_2: p(&s.conv7x7_2)?,
                conv7x7_3: p(&s.conv7x7_3)?,
                half: s.half,
                quarter: s.quarter,
            })
        };
        Some(Plan {
            backbone,
            levels: self.levels,
            lateral: all(&self.lateral)?,
            merge: all(&self.merge)?,
            c6: optional(self.c6.as_ref(), p)?,
            context: optional(self.context.as_ref(), |c| c.iter().map(ssh).collect::<Option<Vec<_>>>())?,
            heads: all(&self.heads)?,
            stages: self.stages,
            anchors: self.anchors,
            landmarks: self.landmarks,
        })
    }
}

/// `Some(None)` for an absent part, `None` if a present one cannot be prepared.
fn optional<T, U>(part: Option<&T>, prepare: impl Fn(&T) -> Option<U>) -> Option<Option<U>> {
    match part {
        Some(part) => prepare(part).map(Some),
        None => Some(None),
    }
}

impl<L> Plan<L> {
    /// The network on `images` (each `[3, height, width]`), with the outputs
    /// [`RetinaFace::forward`] gives.
    pub fn forward<E: Engine<Layer = L>>(
        &self,
        engine: &E,
        images: &[&[f32]],
        height: usize,
        width: usize,
    ) -> RetinaFaceOutput {
        let x = engine.input(images, height, width);
        let (c2, [c3, c4, c5]) = self.backbone(engine, x);
        let used: Vec<E::Map> = match self.levels {
            FpnLevels::P2ToP6 => c2.into_iter().chain([c3, c4, c5]).collect(),
            FpnLevels::P3ToP5 => vec![c3, c4, c5],
        };
        let mut features = self.pyramid(engine, used);
        if let Some(context) = &self.context {
            features = context.iter().zip(&features).map(|(s, p)| s.forward(engine, p)).collect();
        }
        let heads: Vec<E::Map> = self.heads.iter().zip(&features).map(|(h, p)| engine.conv(h, p, None)).collect();
        let a = self.anchors;
        let per_stage = a * if self.landmarks { 16 } else { 6 };
        let stages = (0..self.stages)
            .map(|s| {
                let start = s * per_stage;
                HeadOutput {
                    logits: engine.head_rows(&heads, start, 2 * a, 2),
                    boxes: engine.head_rows(&heads, start + 2 * a, 4 * a, 4),
                    landmarks: self.landmarks.then(|| engine.head_rows(&heads, start + 6 * a, 10 * a, 10)),
                }
            })
            .collect();
        RetinaFaceOutput { stages }
    }

    /// C2 (ResNet only) and C3..C5.
    fn backbone<E: Engine<Layer = L>>(&self, engine: &E, x: E::Map) -> (Option<E::Map>, [E::Map; 3]) {
        let seq = |layers: &[L], x: E::Map| layers.iter().fold(x, |x, l| engine.conv(l, &x, None));
        match &self.backbone {
            BackbonePlan::MobileNet { stages: [s1, s2, s3] } => {
                let c3 = seq(s1, x);
                let c4 = seq(s2, c3.clone());
                let c5 = seq(s3, c4.clone());
                (None, [c3, c4, c5])
            }
            BackbonePlan::ResNet { stem, layers } => {
                let x = engine.max_pool(&engine.conv(stem, &x, None));
                let run = |blocks: &[Block<L>], x: E::Map| {
                    blocks.iter().fold(x, |x, b| {
                        let identity = b.downsample.as_ref().map(|d| engine.conv(d, &x, None));
                        let identity = identity.unwrap_or_else(|| x.clone());
                        let (last, first) =
                            b.convs.split_last().unwrap_or_else(|| unreachable!("a block has convolutions"));
                        let y = first.iter().fold(x, |y, l| engine.conv(l, &y, None));
                        engine.conv(last, &y, Some(&identity))
                    })
                };
                let c2 = run(&layers[0], x);
                let c3 = run(&layers[1], c2.clone());
                let c4 = run(&layers[2], c3.clone());
                let c5 = run(&layers[3], c4.clone());
                (Some(c2), [c3, c4, c5])
            }
        }
    }

    fn pyramid<E: Engine<Layer = L>>(&self, engine: &E, used: Vec<E::Map>) -> Vec<E::Map> {
        let top = used.last().cloned();
        let mut p: Vec<E::Map> = self.lateral.iter().zip(&used).map(|(l, x)| engine.conv(l, x, None)).collect();
        drop(used);
        for i in (0..p.len() - 1).rev() {
            let merged = engine.add_upsampled(&p[i], &p[i + 1]);
            p[i] = engine.conv(&self.merge[i], &merged, None);
        }
        if let (Some(c6), Some(c5)) = (&self.c6, top) {
            p.push(engine.conv(c6, &c5, None));
        }
        p
    }
}

impl<L> SshPlan<L> {
    fn forward<E: Engine<Layer = L>>(&self, engine: &E, x: &E::Map) -> E::Map {
        let (branch3, shared) = match &self.entry {
            SshEntry::Stacked(l) => {
                let y = engine.conv(l, x, None);
                (engine.channels(&y, 0, self.half), engine.channels(&y, self.half, self.quarter))
            }
            SshEntry::Apart { conv3x3, conv5x5_1 } => (engine.conv(conv3x3, x, None), engine.conv(conv5x5_1, x, None)),
        };
        let branch5 = engine.conv(&self.conv5x5_2, &shared, None);
        let branch7 = engine.conv(&self.conv7x7_3, &engine.conv(&self.conv7x7_2, &shared, None), None);
        engine.concat(&[branch3, branch5, branch7])
    }
}

/// The activations of `segments` applied to one pixel's `values` (its output channels).
#[inline]
pub fn activate_segments(values: &mut [f32], segments: &[Segment]) {
    let mut start = 0;
    for s in segments {
        let part = &mut values[start..start + s.channels];
        match s.activation {
            None => {}
            Some(Activation::Relu) => part.iter_mut().for_each(|v| *v = v.max(0.0)),
            Some(Activation::LeakyRelu { slope }) => {
                part.iter_mut().for_each(|v| *v = if *v >= 0.0 { *v } else { *v * slope })
            }
        }
        start += s.channels;
    }
}
