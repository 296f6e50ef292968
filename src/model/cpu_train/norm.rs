//! Training-mode batch normalisation with the activation after it, forward and backward, on
//! NCHW `f32` maps.
//!
//! burn computes a training batch norm out of tensor operations: on the CPU backend that is a
//! dozen passes over the map forward and more backward, then the activation's own pass and
//! mask. Here the forward is one reading pass for the statistics and one writing pass that
//! normalises and activates; the backward is one reading pass for the two sums and one writing
//! pass. The activation's mask is recomputed from the input, so nothing but the input is kept.
//! The activation after the normalisation is the model's `Option<Activation>` (none: identity).

use rayon::prelude::*;

use crate::model::config::Activation;

/// An activation and its derivative, as a type so each loop is compiled for one of them.
trait Act: Copy + Send + Sync {
    fn apply(self, z: f32) -> f32;
    /// Zero (or the slope) at `z == 0`, as PyTorch's is (burn's leaky ReLU takes 1 there: the
    /// two differ only on exact ties).
    fn derivative(self, z: f32) -> f32;
}

#[derive(Clone, Copy)]
struct Identity;
#[derive(Clone, Copy)]
struct Relu;
#[derive(Clone, Copy)]
struct Leaky(f32);

impl Act for Identity {
    #[inline(always)]
    fn apply(self, z: f32) -> f32 {
        z
    }
    #[inline(always)]
    fn derivative(self, _: f32) -> f32 {
        1.0
    }
}

impl Act for Relu {
    #[inline(always)]
    fn apply(self, z: f32) -> f32 {
        z.max(0.0)
    }
    #[inline(always)]
    fn derivative(self, z: f32) -> f32 {
        if z > 0.0 { 1.0 } else { 0.0 }
    }
}

impl Act for Leaky {
    #[inline(always)]
    fn apply(self, z: f32) -> f32 {
        if z > 0.0 { z } else { z * self.0 }
    }
    #[inline(always)]
    fn derivative(self, z: f32) -> f32 {
        if z > 0.0 { 1.0 } else { self.0 }
    }
}

/// Calls `$body` with `$act` bound to the [`Act`] of `$activation` (an `Option<Activation>`).
macro_rules! with_act {
    ($activation:expr, $act:ident => $body:expr) => {
        match $activation {
            None => {
                let $act = Identity;
                $body
            }
            Some(Activation::Relu) => {
                let $act = Relu;
                $body
            }
            Some(Activation::LeakyRelu { slope }) => {
                let $act = Leaky(slope);
                $body
            }
        }
    };
}

/// A map's sizes: `[batch, channels, h·w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapShape {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl MapShape {
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// The planes of channel `c`, one per image.
    fn planes<'a>(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.batch).map(move |n| &data[(n * self.channels + c) * self.plane..][..self.plane])
    }
}

/// The batch's statistics per channel: the mean and the biased variance (what burn's running
/// averages take).
#[derive(Clone, Debug)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
}

impl BatchStats {
    fn inv_std(&self, epsilon: f64) -> Vec<f32> {
        self.variance.iter().map(|v| (1.0 / (*v as f64 + epsilon).sqrt()) as f32).collect()
    }
}

/// Per channel, the `scale` and `shift` with `z = x · scale + shift` the normalised, scaled and
/// shifted value.
fn affine(stats: &BatchStats, gamma: &[f32], beta: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = stats.inv_std(epsilon).iter().zip(gamma).map(|(s, g)| s * g).collect();
    let shift = beta.iter().zip(&stats.mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    (scale, shift)
}

/// `Σ (x − pivot)` and `Σ (x − pivot)²` over a plane: f32 sums over eight lanes (so the loop
/// vectorises) per block of 4096 values, added up in f64. Shifting by a value of the channel
/// keeps the variance `E[(x − p)²] − E[x − p]²` from cancelling when the mean is far from zero.
fn shifted_sums(values: &[f32], pivot: f32) -> (f64, f64) {
    let (mut sum, mut squares) = (0.0f64, 0.0f64);
    for block in values.chunks(4096) {
        let (mut s1, mut s2) = ([0.0f32; 8], [0.0f32; 8]);
        let chunks = block.chunks_exact(8);
        for v in chunks.remainder() {
            let d = v - pivot;
            s1[0] += d;
            s2[0] += d * d;
        }
        for chunk in chunks {
            for l in 0..8 {
                let d = chunk[l] - pivot;
                s1[l] += d;
                s2[l] += d * d;
            }
        }
        sum += s1.iter().map(|v| *v as f64).sum::<f64>();
        squares += s2.iter().map(|v| *v as f64).sum::<f64>();
    }
    (sum, squares)
}

pub fn batch_stats(shape: &MapShape, x: &[f32]) -> BatchStats {
    assert_eq!(x.len(), shape.len(), "map size");
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let pivot = shape.planes(x, c).next().and_then(|p| p.first().copied()).unwrap_or(0.0);
            let (sum, squares) =
                shape.planes(x, c).map(|p| shifted_sums(p, pivot)).fold((0.0, 0.0), |(a, b), (s, q)| (a + s, b + q));
            let (shift, square) = (sum / shape.count(), squares / shape.count());
            // Rounding can leave a constant channel a hair below zero; NaN stays NaN, as burn's would.
            let variance = square - shift * shift;
            ((pivot as f64 + shift) as f32, if variance < 0.0 { 0.0 } else { variance as f32 })
        })
        .unzip();
    BatchStats { mean, variance }
}

/// `activation(γ · (x − mean) / √(var + ε) + β)` with the batch's own statistics, returned too.
pub fn forward(
    shape: &MapShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    activation: Option<Activation>,
) -> (Vec<f32>, BatchStats) {
    let stats = batch_stats(shape, x);
    let (scale, shift) = affine(&stats, gamma, beta, epsilon);
    let mut y = vec![0.0; shape.len()];
    with_act!(activation, act => {
        y.par_chunks_mut(shape.plane).zip(x.par_chunks(shape.plane)).enumerate().for_each(|(p, (y, x))| {
            let (a, b) = (scale[p % shape.channels], shift[p % shape.channels]);
            for (y, x) in y.iter_mut().zip(x) {
                *y = act.apply(x * a + b);
            }
        })
    });
    (y, stats)
}

/// The gradients of [`forward`]'s output with respect to `x`, `γ` and `β`.
pub struct NormGrads {
    pub input: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

pub fn backward(
    shape: &MapShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &BatchStats,
    epsilon: f64,
    activation: Option<Activation>,
    dy: &[f32],
) -> NormGrads {
    assert_eq!(dy.len(), shape.len(), "output gradient size");
    let (scale, shift) = affine(stats, gamma, beta, epsilon);
    let inv_std = stats.inv_std(epsilon);
    // dz = dy · activation'(z); dβ = Σ dz and dγ = Σ dz · x̂ with x̂ = (x − mean) · inv_std.
    let (beta_grad, gamma_grad): (Vec<f32>, Vec<f32>) = with_act!(activation, act => (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let (a, b, m) = (scale[c], shift[c], stats.mean[c]);
            let (mut sum_dz, mut sum_dz_x) = (0.0f64, 0.0f64);
            for (x, dy) in shape.planes(x, c).zip(shape.planes(dy, c)) {
                for (xs, gs) in x.chunks(4096).zip(dy.chunks(4096)) {
                    let (mut s1, mut s2) = ([0.0f32; 8], [0.0f32; 8]);
                    let (xc, gc) = (xs.chunks_exact(8), gs.chunks_exact(8));
                    for (x, g) in xc.remainder().iter().zip(gc.remainder()) {
                        let dz = g * act.derivative(x * a + b);
                        s1[0] += dz;
                        s2[0] += dz * (x - m);
                    }
                    for (x, g) in xc.zip(gc) {
                        for l in 0..8 {
                            let dz = g[l] * act.derivative(x[l] * a + b);
                            s1[l] += dz;
                            s2[l] += dz * (x[l] - m);
                        }
                    }
                    sum_dz += s1.iter().map(|v| *v as f64).sum::<f64>();
                    sum_dz_x += s2.iter().map(|v| *v as f64).sum::<f64>();
                }
            }
            (sum_dz as f32, (sum_dz_x * inv_std[c] as f64) as f32)
        })
        .unzip());
    // dx = γ · inv_std · (dz − mean(dz) − x̂ · mean(dz · x̂))
    let count = shape.count() as f32;
    let mut dx = vec![0.0; shape.len()];
    with_act!(activation, act => dx
    .par_chunks_mut(shape.plane)
    .zip(x.par_chunks(shape.plane).zip(dy.par_chunks(shape.plane)))
    .enumerate()
    .for_each(|(p, (dx, (x, dy)))| {
        let c = p % shape.channels;
        let (a, b, m) = (scale[c], shift[c], stats.mean[c]);
        let mean_dz = beta_grad[c] / count;
        // x̂ · mean(dz · x̂) = (x − m) · inv_std² · mean(dz · x̂)
        let k = inv_std[c] * gamma_grad[c] / count;
        for ((dx, x), g) in dx.iter_mut().zip(x).zip(dy) {
            let dz = g * act.derivative(x * a + b);
            *dx = a * (dz - mean_dz - (x - m) * k);
        }
    }));
    NormGrads { input: dx, gamma: gamma_grad, beta: beta_grad }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as f32 + 1.0) * 0.5311 + seed as f32 * 2.1).sin() * 1.5).collect()
    }

    /// The loss `Σ y · g` in f64, with the statistics recomputed from `x`.
    fn objective(shape: &MapShape, x: &[f32], gamma: &[f32], beta: &[f32], act: Option<Activation>, g: &[f32]) -> f64 {
        let (y, _) = forward(shape, x, gamma, beta, 1e-5, act);
        y.iter().zip(g).map(|(y, g)| (*y as f64) * (*g as f64)).sum()
    }

    #[test]
    fn statistics_and_output_are_the_textbook_ones() {
        let shape = MapShape { batch: 2, channels: 3, plane: 5 };
        let x = values(shape.len(), 1);
        let (gamma, beta) = (vec![1.5, 0.5, -1.0], vec![0.1, -0.2, 0.3]);
        let (y, stats) = forward(&shape, &x, &gamma, &beta, 1e-5, None);
        for c in 0..3 {
            let vals: Vec<f64> = shape.planes(&x, c).flatten().map(|v| *v as f64).collect();
            let mean = vals.iter().sum::<f64>() / 10.0;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 10.0;
            assert!((stats.mean[c] as f64 - mean).abs() < 1e-6 && (stats.variance[c] as f64 - var).abs() < 1e-6);
            for (n, plane) in shape.planes(&y, c).enumerate() {
                for (i, v) in plane.iter().enumerate() {
                    let xv = x[(n * 3 + c) * 5 + i] as f64;
                    let expected = gamma[c] as f64 * (xv - mean) / (var + 1e-5).sqrt() + beta[c] as f64;
                    assert!((*v as f64 - expected).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences_for_each_activation() {
        let shape = MapShape { batch: 3, channels: 2, plane: 7 };
        let x = values(shape.len(), 4);
        let g = values(shape.len(), 9);
        let (gamma, beta) = (vec![1.3, -0.7], vec![0.2, 0.4]);
        for act in [None, Some(Activation::Relu), Some(Activation::LeakyRelu { slope: 0.1 })] {
            let (_, stats) = forward(&shape, &x, &gamma, &beta, 1e-5, act);
            let grads = backward(&shape, &x, &gamma, &beta, &stats, 1e-5, act, &g);
            let h = 1e-3f32;
            let central = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
            for i in 0..x.len() {
                let expected = central(&|d| {
                    let mut x = x.clone();
                    x[i] += d;
                    objective(&shape, &x, &gamma, &beta, act, &g)
                });
                assert!(
                    (grads.input[i] as f64 - expected).abs() < 2e-2,
                    "{act:?} x{i}: {} vs {expected}",
                    grads.input[i]
                );
            }
            for c in 0..2 {
                let expected = central(&|d| {
                    let mut gamma = gamma.clone();
                    gamma[c] += d;
                    objective(&shape, &x, &gamma, &beta, act, &g)
                });
                assert!(
                    (grads.gamma[c] as f64 - expected).abs() < 2e-2,
                    "{act:?} γ{c}: {} vs {expected}",
                    grads.gamma[c]
                );
                let expected = central(&|d| {
                    let mut beta = beta.clone();
                    beta[c] += d;
                    objective(&shape, &x, &gamma, &beta, act, &g)
                });
                assert!(
                    (grads.beta[c] as f64 - expected).abs() < 2e-2,
                    "{act:?} β{c}: {} vs {expected}",
                    grads.beta[c]
                );
            }
        }
    }
}
