//! The inference network on the CPU, channels-last (NHWC) from the input to the heads, on the
//! kernels of [`super::kernels`].

use std::sync::Arc;

use burn::prelude::*;
use rayon::prelude::*;

use super::folded::FoldedLayer;
use super::graph::Engine;
use super::kernels::{CpuLayer, Nhwc};

pub type CpuMap = Arc<Nhwc>;

/// Runs the network with the CPU kernels; the outputs become burn tensors on `device` (the
/// flex CPU device) at the heads.
pub struct CpuEngine {
    device: Device,
}

impl CpuEngine {
    pub fn new(device: &Device) -> CpuEngine {
        CpuEngine { device: device.clone() }
    }
}

impl Engine for CpuEngine {
    type Map = CpuMap;
    type Layer = CpuLayer;

    fn prepare(&self, layer: &FoldedLayer) -> Option<CpuLayer> {
        match layer {
            FoldedLayer::Plain(conv) => CpuLayer::new(conv),
            FoldedLayer::Deformable { .. } => None,
        }
    }

    fn input(&self, images: &[&[f32]], height: usize, width: usize) -> CpuMap {
        Arc::new(Nhwc::from_nchw(images, 3, height, width))
    }

    fn conv(&self, layer: &CpuLayer, x: &CpuMap, residual: Option<&CpuMap>) -> CpuMap {
        Arc::new(layer.run(x, residual.map(|r| r.as_ref())))
    }

    fn max_pool(&self, x: &CpuMap) -> CpuMap {
        let (k, stride, pad) = (3, 2, 1);
        let (h, w, c) = ((x.h + 2 * pad - k) / stride + 1, (x.w + 2 * pad - k) / stride + 1, x.c);
        let mut out = Nhwc::new(x.n, h, w, c);
        out.data.par_chunks_mut(w * c).enumerate().for_each(|(row, dst)| {
            let (image, oy) = (row / h, row % h);
            for (ox, px) in dst.chunks_mut(c).enumerate() {
                px.fill(f32::NEG_INFINITY);
                for iy in (oy * stride).saturating_sub(pad)..(oy * stride + k - pad).min(x.h) {
                    for ix in (ox * stride).saturating_sub(pad)..(ox * stride + k - pad).min(x.w) {
                        let input = &x.data[((image * x.h + iy) * x.w + ix) * c..][..c];
                        px.iter_mut().zip(input).for_each(|(v, i)| *v = v.max(*i));
                    }
                }
            }
        });
        Arc::new(out)
    }

    fn add_upsampled(&self, fine: &CpuMap, coarse: &CpuMap) -> CpuMap {
        // burn's nearest rule: source index floor(out · in / out_size).
        let source = |o: usize, out: usize, input: usize| {
            ((o as f64 * (input as f64 / out as f64)).floor() as usize).min(input - 1)
        };
        let (h, w, c) = (fine.h, fine.w, fine.c);
        let mut out = Nhwc::new(fine.n, h, w, c);
        out.data.par_chunks_mut(w * c).zip(fine.data.par_chunks(w * c)).enumerate().for_each(|(row, (dst, src))| {
            let (image, y) = (row / h, row % h);
            let cy = source(y, h, coarse.h);
            for (x, (px, f)) in dst.chunks_mut(c).zip(src.chunks(c)).enumerate() {
                let cx = source(x, w, coarse.w);
                let up = &coarse.data[((image * coarse.h + cy) * coarse.w + cx) * c..][..c];
                px.iter_mut().zip(f).zip(up).for_each(|((v, f), u)| *v = f + u);
            }
        });
        Arc::new(out)
    }

    fn channels(&self, x: &CpuMap, start: usize, len: usize) -> CpuMap {
        let mut out = Nhwc::new(x.n, x.h, x.w, len);
        out.data.par_chunks_mut(x.w * len).zip(x.data.par_chunks(x.w * x.c)).for_each(|(dst, src)| {
            for (d, s) in dst.chunks_mut(len).zip(src.chunks(x.c)) {
                d.copy_from_slice(&s[start..start + len]);
            }
        });
        Arc::new(out)
    }

    fn concat(&self, parts: &[CpuMap]) -> CpuMap {
        let first = &parts[0];
        let c = parts.iter().map(|p| p.c).sum();
        let mut out = Nhwc::new(first.n, first.h, first.w, c);
        out.data.par_chunks_mut(first.w * c).enumerate().for_each(|(row, dst)| {
            for (p, px) in dst.chunks_mut(c).enumerate() {
                let mut at = 0;
                for part in parts {
                    let pixel = row * first.w + p;
                    px[at..at + part.c].copy_from_slice(&part.data[pixel * part.c..(pixel + 1) * part.c]);
                    at += part.c;
                }
            }
        });
        Arc::new(out)
    }

    fn head_rows(&self, levels: &[CpuMap], start: usize, len: usize, per_anchor: usize) -> Tensor<3> {
        let n = levels.first().map_or(0, |l| l.n);
        let per_image: usize = levels.iter().map(|l| l.h * l.w * len).sum();
        let mut data = Vec::with_capacity(n * per_image);
        for image in 0..n {
            for level in levels {
                let plane = level.h * level.w * level.c;
                for px in level.data[image * plane..(image + 1) * plane].chunks(level.c) {
                    data.extend_from_slice(&px[start..start + len]);
                }
            }
        }
        Tensor::from_data(TensorData::new(data, [n, per_image / per_anchor, per_anchor]), &self.device)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::module::{interpolate, max_pool2d};
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions, MaxPoolOptions};

    use super::*;
    use crate::model::inference::kernels::testing::{host, max_difference, nhwc};

    #[test]
    fn pooling_and_the_top_down_step_match_burn() {
        let device = Device::flex();
        let engine = CpuEngine::new(&device);
        for (h, w) in [(9_usize, 12_usize), (10, 7), (1, 1)] {
            let x = Tensor::<4>::random([2, 5, h, w], Distribution::Uniform(-1.0, 1.0), &device);
            let expected = max_pool2d(x.clone(), MaxPoolOptions::new([3, 3]).with_stride([2, 2]).with_padding([1, 1]));
            let got = engine.max_pool(&Arc::new(nhwc(&x)));
            assert_eq!([got.n, got.c, got.h, got.w], expected.dims());
            assert_eq!(max_difference(&host(expected), &got.to_nchw()), 0.0);

            let coarse = Tensor::<4>::random([2, 5, h.div_ceil(2), w.div_ceil(2)], Distribution::Default, &device);
            let options = InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]);
            let expected = x.clone() + interpolate(coarse.clone(), options);
            let got = engine.add_upsampled(&Arc::new(nhwc(&x)), &Arc::new(nhwc(&coarse)));
            assert_eq!(max_difference(&host(expected), &got.to_nchw()), 0.0);
        }
    }
}
