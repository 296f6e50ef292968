//! The report's multi-task loss `L_i` (§3.5) with OHEM, computed on the training device:
//! cross-entropy over positives and the hardest negative candidates (at most `neg_pos_ratio` ×
//! positives per image), smooth-L1 on encoded boxes over positives and on encoded landmarks over
//! positives that have landmarks, each normalised by its positive count. Pytorch_Retinaface's
//! `MultiBoxLoss` is the case `neg_pos_ratio = 7`, `loc_weight = 2` (parity-tested).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use super::assign::Assignment;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// Hard negatives per positive (3 in the report, 7 in Pytorch_Retinaface).
    pub neg_pos_ratio: usize,
    pub class_weight: f32,
    pub loc_weight: f32,
    pub landmark_weight: f32,
}

impl LossConfig {
    pub const PYTORCH_RETINAFACE: LossConfig =
        LossConfig { neg_pos_ratio: 7, class_weight: 1.0, loc_weight: 2.0, landmark_weight: 1.0 };
    pub const REPORT: LossConfig =
        LossConfig { neg_pos_ratio: 3, class_weight: 1.0, loc_weight: 1.0, landmark_weight: 1.0 };
}

/// One head stage's loss terms, scalars on the device (`[1]` tensors): nothing is read back
/// until the caller logs them.
#[derive(Clone, Debug)]
pub struct StageLoss {
    pub total: Tensor<1>,
    pub classification: Tensor<1>,
    pub boxes: Tensor<1>,
    pub landmarks: Tensor<1>,
}

/// The intermediate masks, for tests and diagnostics.
#[derive(Clone, Debug)]
pub struct LossMasks {
    /// `[B, P]` positives.
    pub positive: Tensor<2, Bool>,
    /// `[B, P]` hard negatives chosen by OHEM.
    pub negative: Tensor<2, Bool>,
    /// `[B, P]` the per-anchor loss OHEM ranks (0 at positives).
    pub mining: Tensor<2>,
}

fn smooth_l1(diff: Tensor<3>) -> Tensor<3> {
    let abs = diff.abs();
    let small = abs.clone().lower_elem(1.0);
    (abs.clone() - 0.5).mask_where(small, abs.powi_scalar(2) * 0.5)
}

/// `logits` `[B, P, 2]`, `boxes` `[B, P, 4]`, `landmarks` `[B, P, 10]` (None: no landmark head)
/// against one [`Assignment`] per image.
pub fn multibox_loss(
    logits: Tensor<3>,
    boxes: Tensor<3>,
    landmarks: Option<Tensor<3>>,
    assignments: &[Assignment],
    config: &LossConfig,
) -> (StageLoss, LossMasks) {
    let device = logits.device();
    let [b, p, _] = logits.dims();
    let stack1 = |f: &dyn Fn(&Assignment) -> Tensor<1, Int>| Tensor::stack::<2>(assignments.iter().map(f).collect(), 0);
    let labels = stack1(&|a| a.labels.clone());
    let positive = Tensor::stack::<2>(assignments.iter().map(|a| a.positive.clone()).collect(), 0);
    let candidate = Tensor::stack::<2>(assignments.iter().map(|a| a.negative_candidate.clone()).collect(), 0);
    let loc_t = Tensor::stack::<3>(assignments.iter().map(|a| a.loc.clone()).collect(), 0);
    let landm_t = Tensor::stack::<3>(assignments.iter().map(|a| a.landmarks.clone()).collect(), 0);
    let with_landmarks = labels.greater_elem(0);

    let count = |mask: Tensor<2, Bool>| mask.int().sum().float().clamp_min(1.0);
    let n = count(positive.clone());

    // Box loss over positives. mask_fill (not a multiplication) so that the -inf/NaN encodings
    // of anchors matched to nothing never reach the sum.
    let box_loss =
        smooth_l1(boxes - loc_t).mask_fill(positive.clone().bool_not().unsqueeze_dim::<3>(2).expand([b, p, 4]), 0.0);
    let box_loss = box_loss.sum() / n.clone();

    let landmark_loss = match landmarks {
        Some(pred) => {
            let n1 = count(with_landmarks.clone());
            let mask = with_landmarks.bool_not().unsqueeze_dim::<3>(2).expand([b, p, 10]);
            smooth_l1(pred - landm_t).mask_fill(mask, 0.0).sum() / n1
        }
        None => Tensor::zeros([1], &device),
    };

    // OHEM: log-sum-exp with one global maximum (as the reference), minus the target logit.
    let global_max = logits.clone().detach().max();
    let lse = (logits.clone().detach() - global_max.clone().reshape([1, 1, 1])).exp().sum_dim(2).log()
        + global_max.reshape([1, 1, 1]);
    let target = positive.clone().int();
    let target_logit = logits.clone().detach().gather(2, target.clone().unsqueeze_dim::<3>(2));
    let mining = (lse - target_logit).reshape([b, p]).mask_fill(positive.clone(), 0.0);
    // Only negative candidates may be mined; ignored anchors sort below every candidate.
    let rankable = mining.clone().mask_fill(candidate.clone().bool_not(), -1.0);
    let (_, order) = rankable.sort_descending_with_indices(1);
    let rank = order.argsort(1);
    // Counts and ranks compared as floats (exact below 2^24): index and count tensors may come
    // back in different integer widths from the backend's sort.
    let num_pos = positive.clone().float().sum_dim(1);
    let num_neg = (num_pos * config.neg_pos_ratio as f32).clamp_max((p - 1) as f32);
    let negative = rank.float().lower(num_neg.expand([b, p])).bool_and(candidate);

    let selected = positive.clone().bool_or(negative.clone());
    let log_probs = log_softmax(logits, 2);
    let nll = -log_probs.gather(2, target.unsqueeze_dim::<3>(2)).reshape([b, p]);
    let class_loss = nll.mask_fill(selected.bool_not(), 0.0).sum() / n;

    let total = class_loss.clone() * config.class_weight
        + box_loss.clone() * config.loc_weight
        + landmark_loss.clone() * config.landmark_weight;
    (
        StageLoss { total, classification: class_loss, boxes: box_loss, landmarks: landmark_loss },
        LossMasks { positive, negative, mining },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Variance;
    use crate::test_support::{assets, reference_dir};
    use crate::train::{FaceTargets, MatchThresholds, assign};

    fn npy<T: npyz::Deserialize>(path: &std::path::Path) -> (Vec<u64>, Vec<T>) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = npyz::NpyFile::new(&bytes[..]).unwrap();
        (file.shape().to_vec(), file.into_vec().unwrap())
    }

    fn tensor<const D: usize>(path: &std::path::Path, device: &Device) -> Tensor<D> {
        let (shape, data) = npy::<f32>(path);
        let shape: [usize; D] = std::array::from_fn(|i| shape[i] as usize);
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    fn read_bool<const D: usize>(t: Tensor<D, Bool>) -> Vec<bool> {
        t.int().try_into_vec_as::<i64>().unwrap().into_iter().map(|v| v != 0).collect()
    }

    fn relative(a: f32, b: f64) -> f64 {
        ((a as f64 - b) / b).abs()
    }

    /// Pytorch_Retinaface's MultiBoxLoss on `reference/loss/a`: the matching, the OHEM negatives
    /// and the three loss terms. Labels and masks must match exactly; encoded targets to 1e-5
    /// (float32 rounding), losses to 1e-5 relative (the reference README's tolerance).
    #[test]
    fn loss_matches_pytorch_retinaface_multibox_loss() {
        let Some(assets) = assets("loss_matches_pytorch_retinaface_multibox_loss") else { return };
        let dir = reference_dir(&assets, "loss").join("a");
        let device = Device::flex();
        let anchors: Tensor<2> = tensor(&dir.join("priors.npy"), &device);
        let mut assignments = Vec::new();
        for image in 0..2 {
            let faces: Tensor<2> = tensor(&dir.join(format!("targets_{image}.npy")), &device);
            let n = faces.dims()[0];
            let targets = FaceTargets {
                boxes: faces.clone().narrow(1, 0, 4),
                landmarks: faces.clone().narrow(1, 4, 10),
                has_landmarks: faces.narrow(1, 14, 1).reshape([n]).greater_elem(0.0).float(),
            };
            assignments.push(assign(
                &anchors,
                &targets,
                MatchThresholds::PYTORCH_RETINAFACE,
                Variance::PYTORCH_RETINAFACE,
            ));
        }
        let (_, conf_t) = npy::<i64>(&dir.join("conf_t.npy"));
        let labels: Vec<i64> =
            assignments.iter().flat_map(|a| a.labels.clone().try_into_vec_as::<i64>().unwrap()).collect();
        assert_eq!(labels, conf_t, "conf_t");
        let (_, pos) = npy::<bool>(&dir.join("pos.npy"));
        let positive: Vec<bool> = assignments.iter().flat_map(|a| read_bool(a.positive.clone())).collect();
        assert_eq!(positive, pos, "pos");

        let (_, loc_t) = npy::<f32>(&dir.join("loc_t.npy"));
        let (_, landm_t) = npy::<f32>(&dir.join("landm_t.npy"));
        let ours_loc: Vec<f32> = assignments.iter().flat_map(|a| read(a.loc.clone())).collect();
        let ours_landm: Vec<f32> = assignments.iter().flat_map(|a| read(a.landmarks.clone())).collect();
        for (i, &is_pos) in pos.iter().enumerate() {
            if is_pos {
                for k in 0..4 {
                    assert!((ours_loc[4 * i + k] - loc_t[4 * i + k]).abs() < 1e-5, "loc_t at {i}");
                }
            }
            if conf_t[i] > 0 {
                for k in 0..10 {
                    assert!((ours_landm[10 * i + k] - landm_t[10 * i + k]).abs() < 1e-5, "landm_t at {i}");
                }
            }
        }

        let (loss, masks) = multibox_loss(
            tensor(&dir.join("conf.npy"), &device),
            tensor(&dir.join("loc.npy"), &device),
            Some(tensor(&dir.join("landm.npy"), &device)),
            &assignments,
            &LossConfig::PYTORCH_RETINAFACE,
        );
        let (_, neg) = npy::<bool>(&dir.join("neg.npy"));
        assert_eq!(read_bool(masks.negative), neg, "OHEM negatives");
        let (_, mining) = npy::<f32>(&dir.join("mining_loss.npy"));
        let ours_mining = read(masks.mining);
        let worst = ours_mining.iter().zip(&mining).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "mining loss differs by {worst}");

        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let scalar = |t: Tensor<1>| read(t)[0];
        for (name, ours) in [
            ("loss_l", scalar(loss.boxes)),
            ("loss_c", scalar(loss.classification)),
            ("loss_landm", scalar(loss.landmarks)),
            ("total", scalar(loss.total)),
        ] {
            let reference = expected[name].as_f64().unwrap();
            assert!(relative(ours, reference) < 1e-5, "{name}: {ours} vs {reference}");
        }
    }
}

#[cfg(test)]
mod gradient_tests {
    use super::*;
    use crate::geometry::Variance;
    use crate::train::{FaceTargets, MatchThresholds, assign};

    /// The loss is differentiable on the autodiff device and its gradients are finite even though
    /// anchors matched to no face carry -inf encodings (they are masked, not multiplied).
    #[test]
    fn loss_gradients_are_finite() {
        let device = Device::flex().autodiff();
        let anchors = Tensor::<2>::from_data(
            TensorData::new(vec![5.0f32, 5.0, 10.0, 10.0, 50.0, 50.0, 10.0, 10.0, 20.0, 5.0, 8.0, 8.0], [3, 4]),
            &device,
        );
        let face = FaceTargets {
            boxes: Tensor::from_data(
                TensorData::new(vec![0.0f32, 0.0, 10.0, 10.0, 45.0, 45.0, 55.0, 56.0], [2, 4]),
                &device,
            ),
            landmarks: Tensor::ones([2, 10], &device),
            has_landmarks: Tensor::from_data(TensorData::new(vec![1.0f32, 0.0], [2]), &device),
        };
        let assignment = assign(&anchors, &face, MatchThresholds::PYTORCH_RETINAFACE, Variance::PYTORCH_RETINAFACE);
        let logits =
            Tensor::<3>::random([1, 3, 2], burn::tensor::Distribution::Normal(0.0, 1.0), &device).require_grad();
        let boxes = Tensor::<3>::zeros([1, 3, 4], &device).require_grad();
        let landmarks = Tensor::<3>::zeros([1, 3, 10], &device).require_grad();
        let (loss, _) = multibox_loss(
            logits.clone(),
            boxes.clone(),
            Some(landmarks.clone()),
            &[assignment],
            &LossConfig::PYTORCH_RETINAFACE,
        );
        let grads = loss.total.backward();
        for grad in [logits.grad(&grads), boxes.grad(&grads), landmarks.grad(&grads)] {
            let values = grad.expect("a gradient").try_into_vec_as::<f32>().unwrap();
            assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
            assert!(values.iter().any(|&v| v != 0.0));
        }
    }
}
