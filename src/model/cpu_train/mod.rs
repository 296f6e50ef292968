//! Training on the CPU backend through differentiable operations with kernels of their own: the
//! convolutions (forward and backward) and the batch norms (with the activation after them),
//! which are where burn's flex backend spends most of a training step (see
//! `benches/train_profile.rs`).
//!
//! Each function takes the tensors a layer would and runs the layer's own burn code unless the
//! tensors live on `Autodiff<Flex>` in `f32` with a shape the kernels handle, so the GPU, the
//! inference engines and anything unusual (dilation, groups other than depthwise, checkpointed
//! autodiff) keep burn's path. Both paths compute the same function; the tests hold them to
//! each other.

mod conv;
mod matmul;
mod norm;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::{Bytes, DType};

use self::conv::ConvShape;
use self::norm::{BatchStats, MapShape};
use super::config::Activation;
use super::layers::activate;

/// The backend these kernels serve: flex under autodiff without gradient checkpointing.
type Trained = Autodiff<Flex>;

/// `conv.forward(x)`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match trained_conv(conv, &x) {
        Some(y) => y,
        None => conv.forward(x),
    }
}

/// `activation(bn.forward(x))`, the running statistics updated alike.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>, activation: Option<Activation>) -> Tensor<4> {
    if let Some(y) = trained_batch_norm(bn, &x, activation) {
        return y;
    }
    let y = bn.forward(x);
    match activation {
        Some(a) => activate(y, a),
        None => y,
    }
}

/// The flex primitive of an `f32` tensor on `Autodiff<Flex>`.
fn trained_primitive<const D: usize>(t: &Tensor<D>) -> Option<FloatTensor<Trained>> {
    if t.dtype() != DType::F32 {
        return None;
    }
    t.clone().try_into_primitive::<Trained>().ok()
}

/// A tensor's values as a contiguous `f32` slice: the tensor itself, or (strided, like the
/// gradient of a sum) one contiguous copy of it.
struct Host(FlexTensor);

fn host(t: &FlexTensor) -> Host {
    Host(if t.as_slice::<f32>().is_some() { t.clone() } else { t.to_contiguous() })
}

impl std::ops::Deref for Host {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        self.0.as_slice::<f32>().expect("an f32 tensor made contiguous")
    }
}

fn flex_tensor(values: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape.into()), DType::F32)
}

fn conv_shape(conv: &Conv2d, x: &Tensor<4>) -> Option<ConvShape> {
    let [batch, c_in, h, w] = x.dims();
    let [c_out, per_filter, kh, kw] = conv.weight.val().dims();
    let padding = match &conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [*top, *left],
        PaddingConfig2d::Valid => [0, 0],
        _ => return None,
    };
    let depthwise = conv.groups == c_in && c_in == c_out && per_filter == 1 && c_in > 1;
    let shape = ConvShape { batch, c_in, c_out, h, w, kernel: [kh, kw], stride: conv.stride, padding, depthwise };
    // Empty maps and kernels wider than the padded map are burn's to handle (or refuse).
    let fits = batch * c_in * h * w > 0 && h + 2 * padding[0] >= kh && w + 2 * padding[1] >= kw;
    (conv.bias.is_none() && conv.dilation == [1, 1] && (conv.groups == 1 || depthwise) && fits).then_some(shape)
}

fn trained_conv(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let shape = conv_shape(conv, x)?;
    let x = trained_primitive(x)?;
    let weight = trained_primitive(&conv.weight.val())?;
    let prepared = ConvBackward.prepare::<NoCheckpointing>([x.node(), weight.node()]).compute_bound();
    let (x, weight) = (x.into_primitive(), weight.into_primitive());
    let output = [shape.batch, shape.c_out, shape.out_h(), shape.out_w()];
    // flex's direct depthwise kernel is the faster forward there (0.06 s against 0.08–0.11 s for
    // MobileNet's thirteen layers at batch 8, 640²); for k×k layers flex first copies the map
    // to channels-last, and these kernels take 0.10 s against 0.14–0.17 s.
    let y = if shape.depthwise {
        let options = ConvOptions::new(shape.stride, shape.padding, [1, 1], conv.groups);
        Flex::conv2d(x.clone(), weight.clone(), None, options)
    } else {
        flex_tensor(conv::forward(&shape, &host(&x), &host(&weight)), output)
    };
    let y = match prepared.stateful() {
        OpsKind::Tracked(prep) => prep.finish((x, weight, shape), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Trained>(y))
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (FlexTensor, FlexTensor, ConvShape);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, weight, shape) = ops.state;
        let want = [node_x.is_some(), node_weight.is_some()];
        let result = conv::backward(&shape, &host(&x), &host(&weight), &host(&dy), want);
        if let (Some(node), Some(dx)) = (node_x, result.input) {
            grads.register::<Flex>(node.id, flex_tensor(dx, x.layout().shape().clone()));
        }
        if let (Some(node), Some(dw)) = (node_weight, result.weight) {
            grads.register::<Flex>(node.id, flex_tensor(dw, weight.layout().shape().clone()));
        }
    }
}

fn trained_batch_norm(bn: &BatchNorm, x: &Tensor<4>, activation: Option<Activation>) -> Option<Tensor<4>> {
    if !bn.training.is_enabled() {
        return None;
    }
    let device = x.device();
    let [batch, channels, h, w] = x.dims();
    let shape = MapShape { batch, channels, plane: h * w };
    // A mismatched layer is burn's to refuse with its own message.
    if shape.len() == 0 || bn.gamma.dims() != [channels] || bn.beta.dims() != [channels] {
        return None;
    }
    let input = trained_primitive(x)?;
    let gamma = trained_primitive(&bn.gamma.val())?;
    let beta = trained_primitive(&bn.beta.val())?;
    let prepared = NormBackward.prepare::<NoCheckpointing>([input.node(), gamma.node(), beta.node()]).compute_bound();
    let (x_flex, gamma_flex, beta_flex) = (input.into_primitive(), gamma.into_primitive(), beta.into_primitive());
    let (y, stats) =
        norm::forward(&shape, &host(&x_flex), &host(&gamma_flex), &host(&beta_flex), bn.epsilon, activation);
    let y = flex_tensor(y, [batch, channels, h, w]);
    let mean = Tensor::<1>::from_floats(stats.mean.as_slice(), &device);
    let variance = Tensor::<1>::from_floats(stats.variance.as_slice(), &device);
    let output = match prepared.stateful() {
        OpsKind::Tracked(prep) => {
            let state = NormState {
                x: x_flex,
                gamma: gamma_flex,
                beta: beta_flex,
                stats,
                shape,
                activation,
                epsilon: bn.epsilon,
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    // The running averages as burn's `BatchNorm::forward` keeps them.
    let momentum = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(running_mean.mul_scalar(1.0 - momentum).add(mean.mul_scalar(momentum)).detach());
    bn.running_var.update(running_var.mul_scalar(1.0 - momentum).add(variance.mul_scalar(momentum)).detach());
    Some(Tensor::from_primitive::<Trained>(output))
}

#[derive(Clone, Debug)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    stats: BatchStats,
    shape: MapShape,
    activation: Option<Activation>,
    epsilon: f64,
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let result = norm::backward(
            &s.shape,
            &host(&s.x),
            &host(&s.gamma),
            &host(&s.beta),
            &s.stats,
            s.epsilon,
            s.activation,
            &host(&dy),
        );
        let channels = s.shape.channels;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(result.input, s.x.layout().shape().clone()));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(result.gamma, [channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(result.beta, [channels]));
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    use super::*;
    use crate::model::layers::ConvSpec;

    fn close(a: Tensor<4>, b: Tensor<4>, tolerance: f32, what: &str) {
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= tolerance * scale, "{what}: max difference {diff} (values up to {scale})");
    }

    fn grad_of<const D: usize>(t: &Tensor<D>, grads: &burn::tensor::Gradients) -> Vec<f32> {
        t.grad(grads).expect("a gradient").into_data().try_to_vec::<f32>().unwrap()
    }

    fn vec_close(a: &[f32], b: &[f32], tolerance: f32, what: &str) {
        let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= tolerance * scale, "{what}: max difference {diff} (values up to {scale})");
    }

    /// Every layer kind of the presets, through these kernels and through burn's own
    /// operations, gives the same output and the same gradients for the input and the weight.
    #[test]
    fn convolutions_match_burns_forward_and_backward() {
        let device = Device::flex().autodiff();
        for (spec, size, batch) in [
            (ConvSpec::new(8, 16, 1), 12, 3),
            (ConvSpec::new(3, 8, 3).stride(2), 17, 2),
            (ConvSpec::new(16, 16, 3).groups(16), 10, 2),
            (ConvSpec::new(16, 16, 3).groups(16).stride(2), 11, 3),
            (ConvSpec::new(6, 12, 3), 9, 2),
            (ConvSpec::new(3, 8, 7).stride(2), 20, 1),
            (ConvSpec::new(8, 16, 1).stride(2), 9, 2),
        ] {
            let conv = spec.conv(&device);
            let x = Tensor::<4>::random([batch, spec.input, size, size + 1], Distribution::Uniform(-1.0, 1.0), &device);
            let g = Tensor::<4>::random(conv.forward(x.clone()).dims(), Distribution::Uniform(-1.0, 1.0), &device);
            assert!(trained_conv(&conv, &x).is_some(), "{spec:?} takes the kernels");
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = if ours { conv2d(&conv, x.clone()) } else { conv.forward(x.clone()) };
                let grads = (y.clone() * g.clone()).sum().backward();
                (y, grad_of(&x, &grads), grad_of(&conv.weight.val(), &grads))
            };
            let ((y0, dx0, dw0), (y1, dx1, dw1)) = (run(false), run(true));
            close(y0, y1, 1e-5, &format!("{spec:?} output"));
            vec_close(&dx0, &dx1, 1e-5, &format!("{spec:?} input gradient"));
            vec_close(&dw0, &dw1, 1e-5, &format!("{spec:?} weight gradient"));
        }
    }

    #[test]
    fn batch_norms_match_burns_output_gradients_and_running_statistics() {
        let device = Device::flex().autodiff();
        for activation in [None, Some(Activation::Relu), Some(Activation::LeakyRelu { slope: 0.1 })] {
            let make = || {
                let mut bn = BatchNormConfig::new(5).init(&device);
                bn.gamma = Param::from_tensor(Tensor::from_floats([1.2, 0.8, -0.5, 1.0, 2.0], &device));
                bn.beta = Param::from_tensor(Tensor::from_floats([0.1, -0.3, 0.0, 0.5, -1.0], &device));
                bn
            };
            let x = Tensor::<4>::random([3, 5, 6, 7], Distribution::Uniform(-2.0, 3.0), &device);
            let g = Tensor::<4>::random([3, 5, 6, 7], Distribution::Uniform(-1.0, 1.0), &device);
            let run = |ours: bool| {
                let bn = make();
                let x = x.clone().require_grad();
                let y = if ours {
                    trained_batch_norm(&bn, &x, activation).expect("takes the kernels")
                } else {
                    let y = bn.forward(x.clone());
                    activation.map_or(y.clone(), |a| activate(y, a))
                };
                let grads = (y.clone() * g.clone()).sum().backward();
                let stats = [bn.running_mean.value(), bn.running_var.value()]
                    .map(|t| t.into_data().try_to_vec::<f32>().unwrap());
                (y, grad_of(&x, &grads), grad_of(&bn.gamma.val(), &grads), grad_of(&bn.beta.val(), &grads), stats)
            };
            let ((y0, dx0, dg0, db0, s0), (y1, dx1, dg1, db1, s1)) = (run(false), run(true));
            let what = format!("{activation:?}");
            close(y0, y1, 1e-5, &format!("{what} output"));
            vec_close(&dx0, &dx1, 1e-4, &format!("{what} input gradient"));
            vec_close(&dg0, &dg1, 1e-5, &format!("{what} γ gradient"));
            vec_close(&db0, &db1, 1e-5, &format!("{what} β gradient"));
            vec_close(&s0[0], &s1[0], 1e-6, &format!("{what} running mean"));
            vec_close(&s0[1], &s1[1], 1e-6, &format!("{what} running variance"));
        }
    }

    /// Tensors burn's way: a frozen batch norm, a dilated convolution and a plain flex device
    /// (inference) fall back to the layers' own code.
    #[test]
    fn what_the_kernels_do_not_cover_takes_burns_path() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([1, 4, 8, 8], Distribution::Uniform(-1.0, 1.0), &device);
        let dilated =
            burn::nn::conv::Conv2dConfig::new([4, 4], [3, 3]).with_dilation([2, 2]).with_bias(false).init(&device);
        assert!(trained_conv(&dilated, &x).is_none());
        let with_bias = burn::nn::conv::Conv2dConfig::new([4, 4], [1, 1]).init(&device);
        assert!(trained_conv(&with_bias, &x).is_none());
        let plain = Tensor::<4>::random([1, 4, 8, 8], Distribution::Uniform(-1.0, 1.0), &Device::flex());
        assert!(trained_conv(&ConvSpec::new(4, 4, 3).conv(&Device::flex()), &plain).is_none());
        let bn = BatchNormConfig::new(4).init(&Device::flex());
        assert!(trained_batch_norm(&bn, &plain, Some(Activation::Relu)).is_none());
        let empty = Tensor::<4>::zeros([0, 4, 8, 8], &device);
        assert!(conv_shape(&ConvSpec::new(4, 4, 3).conv(&device), &empty).is_none(), "an empty batch");
        let frozen = BatchNormConfig::new(4).init(&device).valid();
        assert!(trained_batch_norm(&frozen, &x.clone().to_device(&Device::flex()), Some(Activation::Relu)).is_none());
    }
}
