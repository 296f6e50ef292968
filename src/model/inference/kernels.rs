//! The convolution kernels of the CPU engine, on channels-last maps.
//!
//! burn's flex backend turns each dense convolution into an NCHW→NHWC copy, a zeroed im2col
//! buffer per tile, a gemm and a scatter back, and runs BatchNorm and the activations as
//! separate single-threaded passes. Here maps stay NHWC from input to heads, so a 1×1
//! convolution is one gemm on the map as it lies, a k×k one gathers its im2col rows per tile
//! into a reused per-thread buffer (one contiguous copy per kernel row), and bias, residual and
//! activations are applied to each output tile while it is still in cache. Depthwise and
//! few-channel layers, where gemm's blocking costs more than the arithmetic, have direct
//! kernels vectorised over the channels. Tiles and rows run in parallel on rayon's pool; gemm
//! runs single-threaded inside a tile.

use std::cell::RefCell;

use rayon::prelude::*;

use super::buffers;
use super::folded::{ConvShape, FoldedConv, Segment};
use super::graph::activate_segments;
use super::simd;

/// A feature map, channels last: `data[((image · h + y) · w + x) · c + channel]`.
#[derive(Debug)]
pub struct Nhwc {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Drop for Nhwc {
    fn drop(&mut self) {
        buffers::give(std::mem::take(&mut self.data));
    }
}

impl Nhwc {
    /// A map whose values the caller writes, every one of them.
    pub fn new(n: usize, h: usize, w: usize, c: usize) -> Nhwc {
        Nhwc { n, h, w, c, data: buffers::take(n * h * w * c) }
    }

    pub fn pixels(&self) -> usize {
        self.n * self.h * self.w
    }

    /// From images in burn's order (each `[C, H, W]`), one output row per task.
    pub fn from_nchw(images: &[&[f32]], c: usize, h: usize, w: usize) -> Nhwc {
        let mut out = Nhwc::new(images.len(), h, w, c);
        out.data.par_chunks_mut((w * c).max(1)).enumerate().for_each(|(row, dst)| {
            let (image, y) = (row / h, row % h);
            for ch in 0..c {
                let src = &images[image][ch * h * w + y * w..][..w];
                for (x, v) in src.iter().enumerate() {
                    dst[x * c + ch] = *v;
                }
            }
        });
        out
    }

    /// To burn's `[N, C, H, W]` order (tests compare with burn's own layers through it).
    #[cfg(test)]
    pub fn to_nchw(&self) -> Vec<f32> {
        let (plane, c) = (self.h * self.w, self.c);
        let mut out = vec![0.0; self.data.len()];
        for (dst, src) in out.chunks_mut(plane * c).zip(self.data.chunks(plane * c)) {
            for (p, px) in src.chunks(c).enumerate() {
                for (ch, v) in px.iter().enumerate() {
                    dst[ch * plane + p] = *v;
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// 1×1, stride 1, no padding: one gemm on the map as it lies.
    Pointwise,
    /// Any other ungrouped convolution: im2col rows per tile, then one gemm.
    Dense,
    /// One filter per channel.
    Depthwise,
    /// Few input values per pixel into 8, 16 or 32 outputs: [`CpuLayer::direct`].
    Direct,
}

/// A layer with its weights packed for its kernel.
pub struct CpuLayer {
    shape: ConvShape,
    kind: Kind,
    /// Depthwise `[ky][kx][channel]`, every other kind `[ky][kx][input][output]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
    epilogue: Vec<Segment>,
}

impl CpuLayer {
    pub fn new(conv: &FoldedConv) -> Option<CpuLayer> {
        let s = conv.shape;
        let (k, taps) = (s.kernel, s.kernel * s.kernel);
        let kind = if s.is_depthwise() {
            Kind::Depthwise
        } else if s.groups != 1 || s.kernel == 0 || s.stride == 0 {
            return None;
        } else if taps * s.input <= 64 && matches!(s.output, 8 | 16 | 32) {
            Kind::Direct
        } else if k == 1 && s.stride == 1 && s.padding == 0 {
            Kind::Pointwise
        } else {
            Kind::Dense
        };
        let mut weight = vec![0.0; conv.weight.len()];
        match kind {
            Kind::Depthwise => {
                for ch in 0..s.output {
                    for t in 0..taps {
                        weight[t * s.output + ch] = conv.weight[ch * taps + t];
                    }
                }
            }
            Kind::Pointwise | Kind::Dense | Kind::Direct => {
                for o in 0..s.output {
                    for i in 0..s.input {
                        for t in 0..taps {
                            weight[(t * s.input + i) * s.output + o] = conv.weight[(o * s.input + i) * taps + t];
                        }
                    }
                }
            }
        }
        Some(CpuLayer { shape: s, kind, weight, bias: conv.bias.clone(), epilogue: conv.epilogue.clone() })
    }

    /// The layer on `x`, plus `residual` before the activations.
    pub fn run(&self, x: &Nhwc, residual: Option<&Nhwc>) -> Nhwc {
        let s = self.shape;
        let (h, w) = (s.out_size(x.h), s.out_size(x.w));
        let mut out = Nhwc::new(x.n, h, w, s.output);
        match self.kind {
            Kind::Depthwise => self.depthwise(x, &mut out),
            Kind::Pointwise | Kind::Dense => self.dense(x, residual, &mut out),
            Kind::Direct => match s.output {
                8 => self.direct::<8>(x, residual, &mut out),
                16 => self.direct::<16>(x, residual, &mut out),
                _ => self.direct::<32>(x, residual, &mut out),
            },
        }
        out
    }

    fn dense(&self, x: &Nhwc, residual: Option<&Nhwc>, out: &mut Nhwc) {
        let s = self.shape;
        let (co, depth) = (s.output, s.kernel * s.kernel * s.input);
        let total = out.pixels();
        // Tiles big enough that packing the weights stays a small part of each gemm, small
        // enough that the im2col rows stay in the L2 cache, and at least a few per thread.
        let tile =
            (262_144 / depth.max(1)).clamp(128, 1024).min(total.div_ceil(4 * rayon::current_num_threads()).max(16));
        let (out_h, out_w) = (out.h, out.w);
        out.data.par_chunks_mut(tile * co).enumerate().for_each(|(t, dst)| {
            let (first, rows) = (t * tile, dst.len() / co);
            if self.kind == Kind::Pointwise {
                gemm_into(dst, &x.data[first * depth..(first + rows) * depth], &self.weight, co, depth);
            } else {
                COLUMNS.with(|columns| {
                    let mut columns = columns.borrow_mut();
                    columns.resize(rows * depth, 0.0);
                    for (r, row) in columns.chunks_mut(depth).take(rows).enumerate() {
                        im2col_row(x, &s, first + r, out_h, out_w, row);
                    }
                    gemm_into(dst, &columns[..rows * depth], &self.weight, co, depth);
                });
            }
            let residual = residual.map(|r| &r.data[first * co..(first + rows) * co]);
            for (p, px) in dst.chunks_mut(co).enumerate() {
                px.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
                if let Some(r) = residual {
                    px.iter_mut().zip(&r[p * co..(p + 1) * co]).for_each(|(v, r)| *v += r);
                }
                activate_segments(px, &self.epilogue);
            }
        });
    }

    fn depthwise(&self, x: &Nhwc, out: &mut Nhwc) {
        let (c, out_h) = (self.shape.output, out.h);
        out.data.par_chunks_mut(out.w * c).enumerate().for_each(|(row, dst)| {
            let (image, oy) = (row / out_h, row % out_h);
            simd::run(|| self.depthwise_row(x, image, oy, dst));
        });
    }

    /// One output row of a depthwise convolution: per kernel tap, the run of output pixels whose
    /// input lies inside the map, accumulated channel-wise (vectorised over the channels).
    #[inline(always)]
    fn depthwise_row(&self, x: &Nhwc, image: usize, oy: usize, dst: &mut [f32]) {
        let s = self.shape;
        let (c, k, out_w) = (s.output, s.kernel, dst.len() / s.output);
        for px in dst.chunks_exact_mut(c) {
            px.copy_from_slice(&self.bias);
        }
        for dy in 0..k {
            let Some(iy) = (oy * s.stride + dy).checked_sub(s.padding).filter(|&iy| iy < x.h) else { continue };
            let line = &x.data[(image * x.h + iy) * x.w * c..][..x.w * c];
            for dx in 0..k {
                // Output pixels ox with 0 <= ox·stride + dx − padding < width.
                let first = s.padding.saturating_sub(dx).div_ceil(s.stride);
                let end = (x.w + s.padding).checked_sub(dx).map_or(0, |e| e.div_ceil(s.stride)).min(out_w);
                if first >= end {
                    continue;
                }
                let weight = &self.weight[(dy * k + dx) * c..][..c];
                let start = first * s.stride + dx - s.padding;
                let inputs = line[start * c..].chunks_exact(c).step_by(s.stride);
                for (px, input) in dst[first * c..end * c].chunks_exact_mut(c).zip(inputs) {
                    for ((v, i), w) in px.iter_mut().zip(input).zip(weight) {
                        *v += i * w;
                    }
                }
            }
        }
        for px in dst.chunks_exact_mut(c) {
            activate_segments(px, &self.epilogue);
        }
    }

    /// Few channels in and out (MobileNet's first, full-resolution layers), where gemm's
    /// blocking costs more than the arithmetic: per output pixel, `CO` accumulators and one
    /// multiply-add of each input value into all of them.
    fn direct<const CO: usize>(&self, x: &Nhwc, residual: Option<&Nhwc>, out: &mut Nhwc) {
        let out_h = out.h;
        out.data.par_chunks_mut(out.w * CO).enumerate().for_each(|(row, dst)| {
            let (image, oy) = (row / out_h, row % out_h);
            let residual = residual.map(|r| &r.data[row * dst.len()..(row + 1) * dst.len()]);
            simd::run(|| self.direct_row::<CO>(x, image, oy, dst, residual));
        });
    }

    #[inline(always)]
    fn direct_row<const CO: usize>(
        &self,
        x: &Nhwc,
        image: usize,
        oy: usize,
        dst: &mut [f32],
        residual: Option<&[f32]>,
    ) {
        let s = self.shape;
        let (k, ci) = (s.kernel, s.input);
        for (ox, px) in dst.chunks_exact_mut(CO).enumerate() {
            let mut acc = [0.0f32; CO];
            acc.copy_from_slice(&self.bias);
            let x0 = (ox * s.stride) as isize - s.padding as isize;
            let inside = x0 >= 0 && x0 as usize + k <= x.w;
            for dy in 0..k {
                let Some(iy) = (oy * s.stride + dy).checked_sub(s.padding).filter(|&iy| iy < x.h) else { continue };
                let line = &x.data[(image * x.h + iy) * x.w * ci..][..x.w * ci];
                let row_weights = &self.weight[dy * k * ci * CO..][..k * ci * CO];
                if inside {
                    // The kernel row's taps are adjacent pixels: one run of k·ci inputs.
                    let input = &line[x0 as usize * ci..(x0 as usize + k) * ci];
                    for (v, w) in input.iter().zip(row_weights.chunks_exact(CO)) {
                        for (a, w) in acc.iter_mut().zip(w) {
                            *a += v * w;
                        }
                    }
                    continue;
                }
                for dx in 0..k {
                    let ix = x0 + dx as isize;
                    if ix < 0 || ix >= x.w as isize {
                        continue;
                    }
                    let input = &line[ix as usize * ci..(ix as usize + 1) * ci];
                    for (v, w) in input.iter().zip(row_weights[dx * ci * CO..][..ci * CO].chunks_exact(CO)) {
                        for (a, w) in acc.iter_mut().zip(w) {
                            *a += v * w;
                        }
                    }
                }
            }
            if let Some(r) = residual {
                acc.iter_mut().zip(&r[ox * CO..(ox + 1) * CO]).for_each(|(a, r)| *a += r);
            }
            px.copy_from_slice(&acc);
            activate_segments(px, &self.epilogue);
        }
    }
}

/// `dst` (rows × `co`) = `lhs` (rows × `depth`) · `weight` (`depth` × `co`), all row-major.
fn gemm_into(dst: &mut [f32], lhs: &[f32], weight: &[f32], co: usize, depth: usize) {
    let rows = dst.len() / co;
    assert!(lhs.len() >= rows * depth && weight.len() >= depth * co, "gemm operands too short");
    // SAFETY: the three buffers are distinct, row-major with the strides given, and at least as
    // long as the sizes passed (checked above).
    unsafe {
        gemm::gemm(
            rows,
            co,
            depth,
            dst.as_mut_ptr(),
            1,
            co as isize,
            false,
            lhs.as_ptr(),
            1,
            depth as isize,
            weight.as_ptr(),
            1,
            co as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

thread_local! {
    /// im2col rows of the tile a thread is working on, kept between tiles and layers.
    static COLUMNS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The im2col row of output pixel `index` (over the whole batch): `[ky][kx][input]`, zeros
/// outside the map. The `kernel` taps of one kernel row are adjacent input pixels, so each kernel
/// row is one copy where it lies inside.
fn im2col_row(x: &Nhwc, s: &ConvShape, index: usize, out_h: usize, out_w: usize, row: &mut [f32]) {
    let (k, ci) = (s.kernel, x.c);
    let (image, p) = (index / (out_h * out_w), index % (out_h * out_w));
    let (oy, ox) = (p / out_w, p % out_w);
    let x0 = (ox * s.stride) as isize - s.padding as isize;
    for dy in 0..k {
        let dst = &mut row[dy * k * ci..(dy + 1) * k * ci];
        let iy = (oy * s.stride + dy) as isize - s.padding as isize;
        if iy < 0 || iy >= x.h as isize {
            dst.fill(0.0);
            continue;
        }
        let line = &x.data[(image * x.h + iy as usize) * x.w * ci..][..x.w * ci];
        if x0 >= 0 && x0 as usize + k <= x.w {
            dst.copy_from_slice(&line[x0 as usize * ci..(x0 as usize + k) * ci]);
        } else {
            for dx in 0..k {
                let ix = x0 + dx as isize;
                let tap = &mut dst[dx * ci..(dx + 1) * ci];
                if ix < 0 || ix >= x.w as isize {
                    tap.fill(0.0);
                } else {
                    tap.copy_from_slice(&line[ix as usize * ci..(ix as usize + 1) * ci]);
                }
            }
        }
    }
}

/// What the kernel tests here and in `cpu` compare with burn through.
#[cfg(test)]
pub(super) mod testing {
    use burn::prelude::*;

    use super::Nhwc;

    pub fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
    }

    pub fn nhwc(t: &Tensor<4>) -> Nhwc {
        let [_, c, h, w] = t.dims();
        let data = host(t.clone());
        let images: Vec<&[f32]> = data.chunks(c * h * w).collect();
        Nhwc::from_nchw(&images, c, h, w)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::activation::leaky_relu;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    use burn::prelude::*;

    use super::testing::{host, max_difference, nhwc};
    use super::*;
    use crate::model::Activation;

    /// One convolution through the kernels and through burn's conv2d (+ residual, activation).
    fn check(shape: ConvShape, height: usize, width: usize, residual: bool, activation: Option<Activation>) {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, shape.input, height, width], Distribution::Uniform(-1.0, 1.0), &device);
        let dims = [shape.output, shape.input / shape.groups, shape.kernel, shape.kernel];
        let weight = Tensor::<4>::random(dims, Distribution::Uniform(-0.5, 0.5), &device);
        let bias = Tensor::<1>::random([shape.output], Distribution::Uniform(-0.5, 0.5), &device);
        let options = ConvOptions::new([shape.stride; 2], [shape.padding; 2], [1, 1], shape.groups);
        let mut expected = conv2d(x.clone(), weight.clone(), Some(bias.clone()), options);
        let r = residual.then(|| Tensor::<4>::random(expected.dims(), Distribution::Uniform(-1.0, 1.0), &device));
        if let Some(r) = &r {
            expected = expected + r.clone();
        }
        expected = match activation {
            None => expected,
            Some(Activation::Relu) => burn::tensor::activation::relu(expected),
            Some(Activation::LeakyRelu { slope }) => leaky_relu(expected, slope as f64),
        };
        let folded = FoldedConv {
            shape,
            weight: host(weight),
            bias: bias.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
            epilogue: vec![Segment { channels: shape.output, activation }],
        };
        let layer = CpuLayer::new(&folded).expect("the kernels cover it");
        let got = layer.run(&nhwc(&x), r.as_ref().map(nhwc).as_ref());
        assert_eq!([got.n, got.c, got.h, got.w], expected.dims(), "{shape:?}");
        let diff = max_difference(&host(expected), &got.to_nchw());
        assert!(diff < 1e-4, "{shape:?} on {height}×{width}: {diff}");
    }

    #[test]
    fn every_kernel_matches_burns_convolution_over_random_shapes() {
        let mut rng = 0x9e37_79b9_u64;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let activations = [None, Some(Activation::Relu), Some(Activation::LeakyRelu { slope: 0.1 })];
        for case in 0..80 {
            let kernel = [1, 3, 5, 7][next(4)];
            let stride = 1 + next(2);
            let padding = if next(4) == 0 { 0 } else { kernel / 2 };
            let depthwise = kernel > 1 && next(3) == 0;
            let input = [1, 3, 4, 8, 17, 32][next(6)];
            let output = if depthwise { input } else { [1, 5, 8, 16, 32, 33][next(6)] };
            let groups = if depthwise { input } else { 1 };
            let shape = ConvShape { input, output, kernel, stride, padding, groups };
            let (height, width) = (kernel + next(13), kernel + next(11));
            check(shape, height, width, case % 5 == 0 && !depthwise, activations[next(3)]);
        }
    }

    #[test]
    fn the_networks_own_layer_shapes_match() {
        let relu = Some(Activation::Relu);
        for (input, output, kernel, stride, groups, residual) in [
            (64, 64, 3, 1, 1, false),  // pyramid merge
            (64, 48, 3, 1, 1, false),  // stacked context entry
            (3, 64, 7, 2, 1, false),   // ResNet stem
            (3, 8, 3, 2, 1, false),    // MobileNet stem
            (32, 32, 3, 2, 32, false), // stride-2 depthwise
            (64, 64, 3, 1, 64, false), // depthwise
            (64, 128, 1, 2, 1, false), // strided shortcut
            (64, 256, 1, 1, 1, true),  // bottleneck's last conv with the shortcut
            (128, 256, 3, 2, 1, false),
        ] {
            let shape = ConvShape { input, output, kernel, stride, padding: kernel / 2, groups };
            check(shape, 21, 30, residual, relu);
        }
    }
}
