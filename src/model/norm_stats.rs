//! Batch-norm running statistics recomputed for the current weights ("precise BN"). During
//! training they are an exponential average over past steps, taken while the weights were still
//! moving, so a detector read from them sees features scaled differently from the ones the heads
//! learned on; averaging the batch statistics of a few batches at fixed weights removes that lag.

use burn::nn::BatchNorm;
use burn::prelude::*;

use super::backbone::{Backbone, MobileBlock, MobileNet, ResBlock, ResNet};
use super::context::{ContextConv, Ssh};
use super::fpn::Fpn;
use super::layers::ConvBn;
use super::network::RetinaFace;

/// Every batch norm of a module, to set how its running statistics update.
trait BatchNorms {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm>;
}

impl BatchNorms for ConvBn {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        vec![&mut self.bn]
    }
}

impl<T: BatchNorms> BatchNorms for Vec<T> {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        self.iter_mut().flat_map(BatchNorms::batch_norms).collect()
    }
}

impl<T: BatchNorms> BatchNorms for Option<T> {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        self.iter_mut().flat_map(BatchNorms::batch_norms).collect()
    }
}

impl BatchNorms for ResBlock {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        let mut all = vec![&mut self.bn1, &mut self.bn2];
        all.extend(self.bn3.as_mut());
        all.extend(self.downsample.batch_norms());
        all
    }
}

impl BatchNorms for ResNet {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        let layers = [&mut self.layer1, &mut self.layer2, &mut self.layer3, &mut self.layer4];
        std::iter::once(&mut self.bn1).chain(layers.into_iter().flat_map(BatchNorms::batch_norms)).collect()
    }
}

impl BatchNorms for MobileBlock {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        let mut all = self.spatial.batch_norms();
        all.extend(self.pointwise.batch_norms());
        all
    }
}

impl BatchNorms for MobileNet {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        [&mut self.stage1, &mut self.stage2, &mut self.stage3].into_iter().flat_map(BatchNorms::batch_norms).collect()
    }
}

impl BatchNorms for Backbone {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        match self {
            Backbone::ResNet(net) => net.batch_norms(),
            Backbone::MobileNet(net) => net.batch_norms(),
        }
    }
}

impl BatchNorms for Fpn {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        let mut all = self.lateral.batch_norms();
        all.extend(self.merge.batch_norms());
        all.extend(self.c6.batch_norms());
        all
    }
}

impl BatchNorms for ContextConv {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        match self {
            ContextConv::Plain(c) => c.batch_norms(),
            ContextConv::Deformable(d) => vec![&mut d.bn],
        }
    }
}

impl BatchNorms for Ssh {
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        [&mut self.conv3x3, &mut self.conv5x5_1, &mut self.conv5x5_2, &mut self.conv7x7_2, &mut self.conv7x7_3]
            .into_iter()
            .flat_map(BatchNorms::batch_norms)
            .collect()
    }
}

impl RetinaFace {
    pub(crate) fn all_batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        let mut all = self.backbone.batch_norms();
        all.extend(self.fpn.batch_norms());
        all.extend(self.context.batch_norms());
        all
    }

    /// Replaces every batch norm's running statistics by the mean of its batch statistics over
    /// `inputs` (each `[N, 3, H, W]`, normalised as the model expects) at the current weights.
    /// `self` must live on an autodiff device (batch norm computes batch statistics only there);
    /// no gradient is kept. The statistics' update momentum is restored afterwards.
    pub fn recompute_batch_norm(&mut self, inputs: impl IntoIterator<Item = Tensor<4>>) {
        let momentum: Vec<f64> = self.all_batch_norms().iter().map(|bn| bn.momentum).collect();
        for (k, x) in inputs.into_iter().enumerate() {
            // With momentum 1/(k+1) the k-th update makes the running value the mean of k+1 batches.
            for bn in self.all_batch_norms() {
                bn.momentum = 1.0 / (k + 1) as f64;
            }
            drop(self.forward(x.detach()));
        }
        for (bn, m) in self.all_batch_norms().into_iter().zip(momentum) {
            bn.momentum = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RetinaFaceConfig;

    fn input(seed: usize, device: &Device) -> Tensor<4> {
        let data: Vec<f32> = (0..2 * 3 * 40 * 48).map(|i| (((i + seed) * 7919) % 255) as f32 / 64.0 - 2.0).collect();
        Tensor::from_data(TensorData::new(data, [2, 3, 40, 48]), device)
    }

    fn channel_means(x: Tensor<4>) -> Vec<f32> {
        let [_, c, _, _] = x.dims();
        x.permute([1, 0, 2, 3]).reshape([c as i64, -1]).mean_dim(1).try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn recomputed_statistics_are_the_mean_of_the_batches_and_momentum_is_restored() {
        let device = Device::flex().autodiff();
        let mut model = RetinaFace::new(&RetinaFaceConfig::preset("tiny").unwrap(), &device);
        let (a, b) = (input(1, &device), input(2, &device));
        model.recompute_batch_norm([a.clone(), b.clone()]);
        let Backbone::ResNet(net) = &model.backbone else { unreachable!("tiny is a ResNet") };
        let (mean_a, mean_b) = (channel_means(net.conv1.forward(a)), channel_means(net.conv1.forward(b)));
        let inference = model.valid();
        let Backbone::ResNet(valid) = &inference.backbone else { unreachable!() };
        let running = valid.bn1.running_mean.value().try_into_vec_as::<f32>().unwrap();
        for ((r, x), y) in running.iter().zip(&mean_a).zip(&mean_b) {
            assert!((r - (x + y) / 2.0).abs() < 1e-4, "running mean {r}, batch means {x} and {y}");
        }
        assert!(model.all_batch_norms().iter().all(|bn| bn.momentum == 0.1));
        // ResNet18: stem 1 + 8 blocks × 2 + 3 shortcuts; FPN: 3 lateral + 2 merge; SSH: 3 levels × 5.
        assert_eq!(model.all_batch_norms().len(), 20 + 5 + 15, "every batch norm is reached");
    }
}
