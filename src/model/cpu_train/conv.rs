//! A 2-D convolution and its gradients on NCHW `f32` maps, for the shapes the networks use:
//! ungrouped convolutions of any kernel and stride, and depthwise ones (one filter per channel),
//! with symmetric padding and no dilation.
//!
//! burn's generic backward takes the weight gradient as a convolution of the input by the
//! output gradient (a kernel the size of the whole map, per group for a depthwise layer) and the
//! input gradient as a transposed convolution; on the CPU backend a 1×1 layer's backward costs
//! ten times its forward that way. Here a 1×1 layer's gradients are two matrix products on the
//! maps as they lie, other ungrouped layers go through im2col tiles, and depthwise layers are
//! direct loops whose inner loop runs along a row. Ungrouped layers also run forward here
//! (flex's own forward copies each k×k layer's map to channels-last first).

use rayon::prelude::*;

use super::matmul::{Mat, matmul};

/// Sizes of one convolution: input `[batch, c_in, h, w]`, weight `[c_out, c_in / groups, kh, kw]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    /// One filter per channel (`groups == c_in == c_out`); otherwise ungrouped.
    pub depthwise: bool,
}

impl ConvShape {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }

    pub fn weight_len(&self) -> usize {
        let per_filter = if self.depthwise { 1 } else { self.c_in };
        self.c_out * per_filter * self.kernel[0] * self.kernel[1]
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_h() * self.out_w()
    }

    fn is_pointwise(&self) -> bool {
        !self.depthwise && self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// The gradients a backward pass asked for.
pub struct ConvGrads {
    pub input: Option<Vec<f32>>,
    pub weight: Option<Vec<f32>>,
}

/// An ungrouped convolution: one gemm per image (1×1) or per im2col tile. (Depthwise layers
/// run forward on flex's direct kernel, faster than a loop here.)
pub fn forward(shape: &ConvShape, x: &[f32], weight: &[f32]) -> Vec<f32> {
    assert!(!shape.depthwise, "depthwise layers run forward on flex");
    assert_eq!(x.len(), shape.input_len(), "input size");
    assert_eq!(weight.len(), shape.weight_len(), "weight size");
    let s = shape;
    let (oh_count, ow_count) = (s.out_h(), s.out_w());
    let depth = if s.is_pointwise() { s.c_in } else { s.c_in * s.kernel[0] * s.kernel[1] };
    let (out_plane, in_image) = (oh_count * ow_count, s.c_in * s.h * s.w);
    let parallel_gemm = s.batch < rayon::current_num_threads();
    let mut y = vec![0.0; shape.output_len()];
    let w = Mat::rows(weight, s.c_out, depth);
    y.par_chunks_mut(s.c_out * out_plane).enumerate().for_each(|(n, y)| {
        let x = &x[n * in_image..(n + 1) * in_image];
        if s.is_pointwise() {
            // y [c_out, hw] = w [c_out, c_in] · x [c_in, hw]
            matmul(y, out_plane, w, Mat::rows(x, s.c_in, out_plane), false, parallel_gemm);
            return;
        }
        let rows_per_tile = tile_rows(depth, ow_count, oh_count);
        let mut columns = vec![0.0; depth * rows_per_tile * ow_count];
        for first in (0..oh_count).step_by(rows_per_tile) {
            let rows = first..(first + rows_per_tile).min(oh_count);
            let tile = rows.len() * ow_count;
            unfold(s, x, rows, &mut columns);
            let dst = &mut y[first * ow_count..];
            matmul(dst, out_plane, w, Mat::rows(&columns[..depth * tile], depth, tile), false, parallel_gemm);
        }
    });
    y
}

/// Gradients of the input and of the weight (each only when wanted) given the output's.
pub fn backward(shape: &ConvShape, x: &[f32], weight: &[f32], dy: &[f32], want: [bool; 2]) -> ConvGrads {
    assert_eq!(x.len(), shape.input_len(), "input size");
    assert_eq!(weight.len(), shape.weight_len(), "weight size");
    assert_eq!(dy.len(), shape.output_len(), "output gradient size");
    let [want_input, want_weight] = want;
    if shape.depthwise {
        return ConvGrads {
            input: want_input.then(|| depthwise_input_grad(shape, weight, dy)),
            weight: want_weight.then(|| depthwise_weight_grad(shape, x, dy)),
        };
    }
    if shape.is_pointwise() {
        return ConvGrads {
            input: want_input.then(|| pointwise_input_grad(shape, weight, dy)),
            weight: want_weight.then(|| pointwise_weight_grad(shape, x, dy)),
        };
    }
    unfolded_backward(shape, x, weight, dy, want)
}

/// How many groups of images the batch splits into: one per thread, so each keeps one partial
/// weight gradient and the matrix products inside stay single-threaded.
fn image_groups(batch: usize) -> usize {
    batch.min(rayon::current_num_threads()).max(1)
}

fn group_range(group: usize, groups: usize, batch: usize) -> std::ops::Range<usize> {
    group * batch / groups..(group + 1) * batch / groups
}

fn sum_partials(partials: Vec<Vec<f32>>) -> Vec<f32> {
    let mut iter = partials.into_iter();
    let mut total = iter.next().unwrap_or_default();
    for part in iter {
        for (t, p) in total.iter_mut().zip(&part) {
            *t += p;
        }
    }
    total
}

fn pointwise_input_grad(s: &ConvShape, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let plane = s.h * s.w;
    let mut dx = vec![0.0; s.input_len()];
    let parallel_gemm = s.batch < rayon::current_num_threads();
    dx.par_chunks_mut(s.c_in * plane).zip(dy.par_chunks(s.c_out * plane)).for_each(|(dx, dy)| {
        // dx [c_in, hw] = wᵀ [c_in, c_out] · dy [c_out, hw]
        let w = Mat::rows(weight, s.c_out, s.c_in).t();
        matmul(dx, plane, w, Mat::rows(dy, s.c_out, plane), false, parallel_gemm);
    });
    dx
}

fn pointwise_weight_grad(s: &ConvShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let plane = s.h * s.w;
    let groups = image_groups(s.batch);
    let parallel_gemm = groups < rayon::current_num_threads();
    let partials: Vec<Vec<f32>> = (0..groups)
        .into_par_iter()
        .map(|g| {
            let mut dw = vec![0.0; s.c_out * s.c_in];
            for (i, n) in group_range(g, groups, s.batch).enumerate() {
                // dw [c_out, c_in] += dy [c_out, hw] · xᵀ [hw, c_in]
                let dy = Mat::rows(&dy[n * s.c_out * plane..(n + 1) * s.c_out * plane], s.c_out, plane);
                let x = Mat::rows(&x[n * s.c_in * plane..(n + 1) * s.c_in * plane], s.c_in, plane).t();
                matmul(&mut dw, s.c_in, dy, x, i > 0, parallel_gemm);
            }
            dw
        })
        .collect();
    sum_partials(partials)
}

/// Output positions `o` along one axis whose input position `o * stride + k - padding` lies in
/// `0..size`.
fn valid_outputs(k: usize, stride: usize, padding: usize, size: usize, outputs: usize) -> std::ops::Range<usize> {
    let first = padding.saturating_sub(k).div_ceil(stride);
    let end = if size + padding > k { ((size + padding - k - 1) / stride + 1).min(outputs) } else { 0 };
    first..end.max(first)
}

/// Output rows of an im2col tile: enough that a tile stays near 4 Mi floats (16 MiB).
fn tile_rows(depth: usize, out_w: usize, out_h: usize) -> usize {
    ((4 << 20) / (depth * out_w).max(1)).clamp(1, out_h.max(1))
}

/// im2col of output rows `rows` of one image: row `(ci, ki, kj)` holds, for each output
/// position of the tile, the input value its kernel tap reads (zero in the padding).
fn unfold(s: &ConvShape, x: &[f32], rows: std::ops::Range<usize>, columns: &mut [f32]) {
    let (ow_count, [kh, kw]) = (s.out_w(), s.kernel);
    let tile = rows.len() * ow_count;
    for ci in 0..s.c_in {
        let plane = &x[ci * s.h * s.w..(ci + 1) * s.h * s.w];
        for ki in 0..kh {
            for kj in 0..kw {
                let dst = &mut columns[((ci * kh + ki) * kw + kj) * tile..][..tile];
                let cols = valid_outputs(kj, s.stride[1], s.padding[1], s.w, ow_count);
                for (r, oh) in rows.clone().enumerate() {
                    let dst = &mut dst[r * ow_count..(r + 1) * ow_count];
                    let ih = (oh * s.stride[0] + ki).wrapping_sub(s.padding[0]);
                    if ih >= s.h || cols.is_empty() {
                        dst.fill(0.0);
                        continue;
                    }
                    dst[..cols.start].fill(0.0);
                    dst[cols.end..].fill(0.0);
                    let src = &plane[ih * s.w..(ih + 1) * s.w];
                    let first = cols.start * s.stride[1] + kj - s.padding[1];
                    if s.stride[1] == 1 {
                        dst[cols.clone()].copy_from_slice(&src[first..first + cols.len()]);
                    } else {
                        for (d, ow) in dst[cols.clone()].iter_mut().zip(0..) {
                            *d = src[first + ow * s.stride[1]];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`unfold`]: adds each column entry back onto the input value it was read from.
fn fold_into(s: &ConvShape, columns: &[f32], rows: std::ops::Range<usize>, dx: &mut [f32]) {
    let (ow_count, [kh, kw]) = (s.out_w(), s.kernel);
    let tile = rows.len() * ow_count;
    for ci in 0..s.c_in {
        let plane = &mut dx[ci * s.h * s.w..(ci + 1) * s.h * s.w];
        for ki in 0..kh {
            for kj in 0..kw {
                let src = &columns[((ci * kh + ki) * kw + kj) * tile..][..tile];
                let cols = valid_outputs(kj, s.stride[1], s.padding[1], s.w, ow_count);
                if cols.is_empty() {
                    continue;
                }
                for (r, oh) in rows.clone().enumerate() {
                    let ih = (oh * s.stride[0] + ki).wrapping_sub(s.padding[0]);
                    if ih >= s.h {
                        continue;
                    }
                    let src = &src[r * ow_count..(r + 1) * ow_count];
                    let dst = &mut plane[ih * s.w..(ih + 1) * s.w];
                    let first = cols.start * s.stride[1] + kj - s.padding[1];
                    if s.stride[1] == 1 {
                        for (d, v) in dst[first..first + cols.len()].iter_mut().zip(&src[cols.clone()]) {
                            *d += v;
                        }
                    } else {
                        for (v, ow) in src[cols.clone()].iter().zip(0..) {
                            dst[first + ow * s.stride[1]] += v;
                        }
                    }
                }
            }
        }
    }
}

/// Ungrouped convolutions other than the plain 1×1: per image and tile of output rows, the
/// weight gradient is `dy · columnsᵀ` and the columns' gradient `wᵀ · dy`, folded back.
fn unfolded_backward(s: &ConvShape, x: &[f32], weight: &[f32], dy: &[f32], want: [bool; 2]) -> ConvGrads {
    let [want_input, want_weight] = want;
    let (oh_count, ow_count) = (s.out_h(), s.out_w());
    let depth = s.c_in * s.kernel[0] * s.kernel[1];
    let out_plane = oh_count * ow_count;
    let in_image = s.c_in * s.h * s.w;
    let rows_per_tile = tile_rows(depth, ow_count, oh_count);
    let groups = image_groups(s.batch);
    let parallel_gemm = groups < rayon::current_num_threads();
    let mut dx = if want_input { vec![0.0; s.input_len()] } else { Vec::new() };
    // Each group of images gets its own slice of the input gradient and its own partial
    // weight gradient.
    let mut dx_groups: Vec<&mut [f32]> = Vec::with_capacity(groups);
    let mut rest = dx.as_mut_slice();
    for g in 0..groups {
        let len = if want_input { group_range(g, groups, s.batch).len() * in_image } else { 0 };
        let (head, tail) = rest.split_at_mut(len);
        dx_groups.push(head);
        rest = tail;
    }
    let partials: Vec<Vec<f32>> = dx_groups
        .into_par_iter()
        .enumerate()
        .map(|(g, dx_group)| {
            let mut dw = if want_weight { vec![0.0; s.c_out * depth] } else { Vec::new() };
            let mut columns = if want_weight { vec![0.0; depth * rows_per_tile * ow_count] } else { Vec::new() };
            let mut column_grads = if want_input { vec![0.0; depth * rows_per_tile * ow_count] } else { Vec::new() };
            let mut accumulated = false;
            for (i, n) in group_range(g, groups, s.batch).enumerate() {
                let x = &x[n * in_image..(n + 1) * in_image];
                let dy = Mat::rows(&dy[n * s.c_out * out_plane..(n + 1) * s.c_out * out_plane], s.c_out, out_plane);
                for first in (0..oh_count).step_by(rows_per_tile) {
                    let rows = first..(first + rows_per_tile).min(oh_count);
                    let tile = rows.len() * ow_count;
                    let dy_tile = dy.columns(first * ow_count, tile);
                    if want_weight {
                        unfold(s, x, rows.clone(), &mut columns);
                        let columns_t = Mat::rows(&columns[..depth * tile], depth, tile).t();
                        matmul(&mut dw, depth, dy_tile, columns_t, accumulated, parallel_gemm);
                        accumulated = true;
                    }
                    if want_input {
                        let w_t = Mat::rows(weight, s.c_out, depth).t();
                        matmul(&mut column_grads[..depth * tile], tile, w_t, dy_tile, false, parallel_gemm);
                        fold_into(
                            s,
                            &column_grads[..depth * tile],
                            rows,
                            &mut dx_group[i * in_image..(i + 1) * in_image],
                        );
                    }
                }
            }
            dw
        })
        .collect();
    ConvGrads { input: want_input.then_some(dx), weight: want_weight.then(|| sum_partials(partials)) }
}

/// A dot product with eight running sums, so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn depthwise_input_grad(s: &ConvShape, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let (oh_count, ow_count, [kh, kw]) = (s.out_h(), s.out_w(), s.kernel);
    let (in_plane, out_plane) = (s.h * s.w, oh_count * ow_count);
    let mut dx = vec![0.0; s.input_len()];
    dx.par_chunks_mut(in_plane).zip(dy.par_chunks(out_plane)).enumerate().for_each(|(p, (dx, dy))| {
        let c = p % s.c_in;
        for ki in 0..kh {
            let rows = valid_outputs(ki, s.stride[0], s.padding[0], s.h, oh_count);
            for kj in 0..kw {
                let wv = weight[(c * kh + ki) * kw + kj];
                let cols = valid_outputs(kj, s.stride[1], s.padding[1], s.w, ow_count);
                if cols.is_empty() {
                    continue;
                }
                let first = cols.start * s.stride[1] + kj - s.padding[1];
                for oh in rows.clone() {
                    let ih = oh * s.stride[0] + ki - s.padding[0];
                    let src = &dy[oh * ow_count..][cols.clone()];
                    let dst = &mut dx[ih * s.w..(ih + 1) * s.w];
                    if s.stride[1] == 1 {
                        for (d, g) in dst[first..first + cols.len()].iter_mut().zip(src) {
                            *d += wv * g;
                        }
                    } else {
                        for (g, ow) in src.iter().zip(0..) {
                            dst[first + ow * s.stride[1]] += wv * g;
                        }
                    }
                }
            }
        }
    });
    dx
}

fn depthwise_weight_grad(s: &ConvShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (oh_count, ow_count, [kh, kw]) = (s.out_h(), s.out_w(), s.kernel);
    let (in_plane, out_plane) = (s.h * s.w, oh_count * ow_count);
    let mut dw = vec![0.0; s.weight_len()];
    dw.par_chunks_mut(kh * kw).enumerate().for_each(|(c, dw)| {
        let mut sums = vec![0.0f64; kh * kw];
        for n in 0..s.batch {
            let x = &x[(n * s.c_in + c) * in_plane..][..in_plane];
            let dy = &dy[(n * s.c_out + c) * out_plane..][..out_plane];
            for ki in 0..kh {
                let rows = valid_outputs(ki, s.stride[0], s.padding[0], s.h, oh_count);
                for kj in 0..kw {
                    let cols = valid_outputs(kj, s.stride[1], s.padding[1], s.w, ow_count);
                    if cols.is_empty() {
                        continue;
                    }
                    let first = cols.start * s.stride[1] + kj - s.padding[1];
                    let mut sum = 0.0f32;
                    for oh in rows.clone() {
                        let ih = oh * s.stride[0] + ki - s.padding[0];
                        let g = &dy[oh * ow_count..][cols.clone()];
                        let row = &x[ih * s.w..(ih + 1) * s.w];
                        sum += if s.stride[1] == 1 {
                            dot(g, &row[first..first + cols.len()])
                        } else {
                            g.iter().zip(0..).map(|(g, ow)| g * row[first + ow * s.stride[1]]).sum()
                        };
                    }
                    sums[ki * kw + kj] += sum as f64;
                }
            }
        }
        for (d, v) in dw.iter_mut().zip(&sums) {
            *d = *v as f32;
        }
    });
    dw
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The convolution by its definition, for checking gradients by their definition too.
    pub(crate) fn reference_forward(s: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (oh_count, ow_count, [kh, kw]) = (s.out_h(), s.out_w(), s.kernel);
        let mut y = vec![0.0; s.output_len()];
        for n in 0..s.batch {
            for co in 0..s.c_out {
                for oh in 0..oh_count {
                    for ow in 0..ow_count {
                        let mut sum = 0.0f64;
                        let inputs: Vec<usize> = if s.depthwise { vec![co] } else { (0..s.c_in).collect() };
                        for (j, ci) in inputs.into_iter().enumerate() {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let ih = (oh * s.stride[0] + ki) as isize - s.padding[0] as isize;
                                    let iw = (ow * s.stride[1] + kj) as isize - s.padding[1] as isize;
                                    if ih < 0 || iw < 0 || ih >= s.h as isize || iw >= s.w as isize {
                                        continue;
                                    }
                                    let xv = x[((n * s.c_in + ci) * s.h + ih as usize) * s.w + iw as usize];
                                    let per_filter = if s.depthwise { 1 } else { s.c_in };
                                    let wv = w[((co * per_filter + j) * kh + ki) * kw + kj];
                                    sum += (xv * wv) as f64;
                                }
                            }
                        }
                        y[((n * s.c_out + co) * oh_count + oh) * ow_count + ow] = sum as f32;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as f32 + 1.0) * 0.7311 + seed as f32 * 1.37).sin()).collect()
    }

    /// Both gradients equal the derivatives of `sum(y · g)`: the weight's is `Σ g · x` over the
    /// taps that read it and the input's `Σ g · w`, which the reference forward gives through
    /// linearity (the derivative with respect to entry i is the forward of a one-hot input).
    #[test]
    fn gradients_match_the_definition_for_every_kind_of_layer() {
        let shape = |batch, c_in, c_out, h, w, k: usize, stride, padding, depthwise| ConvShape {
            batch,
            c_in,
            c_out,
            h,
            w,
            kernel: [k, k],
            stride: [stride, stride],
            padding: [padding, padding],
            depthwise,
        };
        for s in [
            shape(3, 5, 4, 6, 7, 1, 1, 0, false),
            shape(2, 3, 4, 9, 8, 3, 2, 1, false),
            shape(1, 2, 3, 7, 6, 7, 2, 3, false),
            shape(2, 4, 4, 7, 9, 3, 1, 1, false),
            shape(3, 4, 2, 5, 5, 1, 2, 0, false),
            shape(2, 6, 6, 8, 7, 3, 1, 1, true),
            shape(3, 5, 5, 9, 6, 3, 2, 1, true),
        ] {
            let (x, w, g) = (values(s.input_len(), 1), values(s.weight_len(), 2), values(s.output_len(), 3));
            let grads = backward(&s, &x, &w, &g, [true, true]);
            let objective = |x: &[f32], w: &[f32]| -> f64 {
                reference_forward(&s, x, w).iter().zip(&g).map(|(y, g)| (y * g) as f64).sum()
            };
            let base = objective(&vec![0.0; x.len()], &w);
            let dx = grads.input.unwrap();
            for i in (0..x.len()).step_by(7) {
                let mut one = vec![0.0; x.len()];
                one[i] = 1.0;
                let expected = objective(&one, &w) - base;
                assert!((dx[i] as f64 - expected).abs() < 1e-4, "{s:?} input {i}: {} vs {expected}", dx[i]);
            }
            let base = objective(&x, &vec![0.0; w.len()]);
            let dw = grads.weight.unwrap();
            for i in 0..w.len() {
                let mut one = vec![0.0; w.len()];
                one[i] = 1.0;
                let expected = objective(&x, &one) - base;
                assert!((dw[i] as f64 - expected).abs() < 1e-3, "{s:?} weight {i}: {} vs {expected}", dw[i]);
            }
        }
    }

    #[test]
    fn forward_matches_the_definition_for_ungrouped_layers() {
        for (c_in, c_out, k, stride, padding, depthwise, h, w) in [
            (5, 4, 1, 1, 0, false, 6, 7),
            (3, 4, 3, 2, 1, false, 9, 8),
            (2, 3, 7, 2, 3, false, 7, 6),
            (4, 2, 1, 2, 0, false, 5, 5),
            (3, 5, 3, 1, 1, false, 9, 1),
        ] {
            let s = ConvShape {
                batch: 2,
                c_in,
                c_out,
                h,
                w,
                kernel: [k, k],
                stride: [stride, stride],
                padding: [padding, padding],
                depthwise,
            };
            let (x, wt) = (values(s.input_len(), 5), values(s.weight_len(), 6));
            let (expected, got) = (reference_forward(&s, &x, &wt), forward(&s, &x, &wt));
            for (e, g) in expected.iter().zip(&got) {
                assert!((e - g).abs() < 1e-4, "{s:?}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn only_the_wanted_gradients_are_computed() {
        let s = ConvShape {
            batch: 1,
            c_in: 2,
            c_out: 2,
            h: 4,
            w: 4,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            depthwise: false,
        };
        let (x, w, g) = (values(s.input_len(), 1), values(s.weight_len(), 2), values(s.output_len(), 3));
        let grads = backward(&s, &x, &w, &g, [false, true]);
        assert!(grads.input.is_none() && grads.weight.is_some());
        let grads = backward(&s, &x, &w, &g, [true, false]);
        assert!(grads.input.is_some() && grads.weight.is_none());
    }
}
