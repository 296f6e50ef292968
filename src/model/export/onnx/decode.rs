//! The `boxes` output (`--with-priors`): the last stage's boxes decoded in input pixels inside the
//! graph, from the anchors of one input size stored as constants.
//!
//! The arithmetic is `geometry::decode_box`'s, operation by operation in f32:
//! `c = a_xy + t_xy · v_center · a_wh`, `wh = a_wh · exp(clamp(t_wh · v_size, ±MAX_LOG_SCALE))`,
//! `x1y1 = c − wh / 2`, `x2y2 = wh + x1y1`. In a cascade each later stage decodes against the box
//! the stage before decoded, taken as an anchor the way `Anchor::from_corners` does:
//! `a_wh = x2y2 − x1y1`, `a_xy = x1y1 + a_wh / 2` (as `detect::Candidates::from_raw`).

use super::graph::{Attr, GraphBuilder};
use crate::geometry::{Anchor, MAX_LOG_SCALE, Variance};

/// Constants every stage's decoding shares.
struct Decoder {
    first_half: [String; 3],
    second_half: [String; 3],
    center_variance: String,
    size_variance: String,
    two: String,
    low: String,
    high: String,
}

impl Decoder {
    fn new(g: &mut GraphBuilder, variance: Variance) -> Decoder {
        let slice = |g: &mut GraphBuilder, name: &str, start: i64, end: i64| {
            [
                g.ints(&format!("decode/{name}_starts"), &[1], &[start]),
                g.ints(&format!("decode/{name}_ends"), &[1], &[end]),
                g.ints(&format!("decode/{name}_axes"), &[1], &[2]),
            ]
        };
        Decoder {
            first_half: slice(g, "xy", 0, 2),
            second_half: slice(g, "wh", 2, 4),
            center_variance: g.scalar("decode/variance_center", variance.center),
            size_variance: g.scalar("decode/variance_size", variance.size),
            two: g.scalar("decode/two", 2.0),
            low: g.scalar("decode/min_log_scale", -MAX_LOG_SCALE),
            high: g.scalar("decode/max_log_scale", MAX_LOG_SCALE),
        }
    }

    /// The corners `(x1y1, x2y2)`, each `[N, A, 2]`, of regressions `loc` `[N, A, 4]` against
    /// anchors with centres `center` and sizes `size` (`[1 or N, A, 2]`).
    fn corners(&self, g: &mut GraphBuilder, name: &str, loc: &str, center: &str, size: &str) -> (String, String) {
        let [s0, e0, a0] = &self.first_half;
        let [s1, e1, a1] = &self.second_half;
        let t_xy = g.node("Slice", &format!("{name}/t_xy"), &[loc, s0, e0, a0], &[]);
        let t_wh = g.node("Slice", &format!("{name}/t_wh"), &[loc, s1, e1, a1], &[]);
        let scaled = g.node("Mul", &format!("{name}/t_xy_scaled"), &[&t_xy, &self.center_variance], &[]);
        let offset = g.node("Mul", &format!("{name}/offset"), &[&scaled, size], &[]);
        let centre = g.node("Add", &format!("{name}/center"), &[center, &offset], &[]);
        let log_scale = g.node("Mul", &format!("{name}/log_scale"), &[&t_wh, &self.size_variance], &[]);
        let clamped = g.node("Clip", &format!("{name}/log_scale_clamped"), &[&log_scale, &self.low, &self.high], &[]);
        let scale = g.node("Exp", &format!("{name}/scale"), &[&clamped], &[]);
        let wh = g.node("Mul", &format!("{name}/size"), &[size, &scale], &[]);
        let half = g.node("Div", &format!("{name}/half_size"), &[&wh, &self.two], &[]);
        let x1y1 = g.node("Sub", &format!("{name}/x1y1"), &[&centre, &half], &[]);
        let x2y2 = g.node("Add", &format!("{name}/x2y2"), &[&wh, &x1y1], &[]);
        (x1y1, x2y2)
    }
}

/// `[N, A, 4]` corners `x1, y1, x2, y2` in input pixels, named `output`: `stage_locs` (each
/// `[N, A, 4]`, first stage first) decoded through the cascade against `anchors` (in pixels,
/// in the heads' row order).
pub fn decoded_boxes(
    g: &mut GraphBuilder,
    anchors: &[Anchor],
    variance: Variance,
    stage_locs: &[String],
    output: &str,
) -> String {
    let decoder = Decoder::new(g, variance);
    let centers: Vec<f32> = anchors.iter().flat_map(|a| [a.cx, a.cy]).collect();
    let sizes: Vec<f32> = anchors.iter().flat_map(|a| [a.w, a.h]).collect();
    let mut center = g.floats("priors/center", &[1, anchors.len(), 2], &centers);
    let mut size = g.floats("priors/size", &[1, anchors.len(), 2], &sizes);
    let mut corners: Option<(String, String)> = None;
    for (stage, loc) in stage_locs.iter().enumerate() {
        let name = format!("decode.{stage}");
        if let Some((x1y1, x2y2)) = &corners {
            size = g.node("Sub", &format!("{name}/anchor_size"), &[x2y2, x1y1], &[]);
            let half = g.node("Div", &format!("{name}/anchor_half_size"), &[&size, &decoder.two], &[]);
            center = g.node("Add", &format!("{name}/anchor_center"), &[x1y1, &half], &[]);
        }
        corners = Some(decoder.corners(g, &name, loc, &center, &size));
    }
    let (x1y1, x2y2) = corners.unwrap_or_else(|| unreachable!("a network has at least one head stage"));
    g.node("Concat", output, &[&x1y1, &x2y2], &[("axis", Attr::Int(2))])
}

#[cfg(test)]
mod tests {
    use tract_onnx::prelude::*;

    use super::super::{Dim, model_proto, value_info};
    use super::*;
    use crate::geometry::{AnchorLevel, AnchorSpec, decode_box};

    /// The decoding graph alone on `locs` (one `[1, A, 4]` per stage), run by tract.
    fn run(anchors: &[Anchor], variance: Variance, locs: &[Vec<f32>]) -> Vec<f32> {
        let mut g = GraphBuilder::new();
        let names: Vec<String> = (0..locs.len()).map(|s| format!("loc{s}")).collect();
        names.iter().for_each(|n| g.reserve(n));
        decoded_boxes(&mut g, anchors, variance, &names, "boxes");
        let dims = [Dim::Fixed(1), Dim::Fixed(anchors.len()), Dim::Fixed(4)];
        let inputs = names.iter().map(|n| value_info(n, &dims)).collect();
        let proto = model_proto(g, "decode", inputs, vec![value_info("boxes", &dims)], "", Vec::new());
        let bytes = protobuf::Message::write_to_bytes(&proto).unwrap();
        let model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).unwrap().into_optimized().unwrap();
        let model = model.into_runnable().unwrap();
        let inputs = locs
            .iter()
            .map(|l| Tensor::from_shape::<f32>(&[1, anchors.len(), 4], l).unwrap().into())
            .collect::<TVec<TValue>>();
        let out = model.run(inputs).unwrap();
        out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
    }

    fn close(a: &[f32], b: &[f32], tolerance: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tolerance * x.abs().max(1.0))
    }

    #[test]
    fn zero_regressions_give_the_anchors_in_generation_order() {
        let spec = AnchorSpec::new(vec![
            AnchorLevel::new(8, vec![4.0, 10.0]).unwrap(),
            AnchorLevel::new(16, vec![20.0]).unwrap(),
        ])
        .unwrap();
        let anchors = spec.generate(24, 16);
        let got = run(&anchors, Variance::PYTORCH_RETINAFACE, &[vec![0.0; 4 * anchors.len()]]);
        let want: Vec<f32> =
            anchors.iter().flat_map(|a| decode_box([0.0; 4], a, Variance::PYTORCH_RETINAFACE)).collect();
        assert_eq!(got, want, "exp(0) = 1 and the same operations in the same order: exactly equal");
        assert_eq!(&got[..4], &[2.0, 2.0, 6.0, 6.0], "the first anchor: centre (4, 4), size 4");
    }

    #[test]
    fn one_stage_decodes_as_decode_box_including_the_size_clamp() {
        let anchors =
            [Anchor { cx: 100.0, cy: 50.0, w: 32.0, h: 16.0 }, Anchor { cx: 4.0, cy: 12.0, w: 10.0, h: 10.0 }];
        // The second row's size regressions overflow exp without the clamp (300 · 0.2 = 60 > 10).
        let loc = vec![2.5, -1.0, 0.3, 3.4657, -0.7, 0.2, 300.0, -300.0];
        for variance in [Variance::PYTORCH_RETINAFACE, Variance::UNIT] {
            let got = run(&anchors, variance, std::slice::from_ref(&loc));
            let want: Vec<f32> = anchors
                .iter()
                .zip(loc.chunks(4))
                .flat_map(|(a, t)| decode_box(t.try_into().unwrap(), a, variance))
                .collect();
            // exp is the only operation whose rounding may differ between libraries.
            assert!(close(&got, &want, 1e-5), "{variance:?}: {got:?} vs {want:?}");
            assert!(got.iter().all(|v| v.is_finite()), "clamped: {got:?}");
        }
    }

    #[test]
    fn a_cascade_stage_decodes_against_the_first_stages_boxes() {
        let anchors = [Anchor { cx: 40.0, cy: 30.0, w: 16.0, h: 16.0 }, Anchor { cx: 8.0, cy: 8.0, w: 32.0, h: 32.0 }];
        let first = vec![0.5, -0.25, 1.0, -0.5, -1.5, 2.0, 0.1, 0.7];
        let second = vec![-0.3, 0.6, -0.2, 0.4, 1.1, -0.9, 0.8, -1.2];
        let v = Variance::PYTORCH_RETINAFACE;
        let got = run(&anchors, v, &[first.clone(), second.clone()]);
        let want: Vec<f32> = (0..2)
            .flat_map(|i| {
                let stage1 = decode_box(first[4 * i..4 * i + 4].try_into().unwrap(), &anchors[i], v);
                decode_box(second[4 * i..4 * i + 4].try_into().unwrap(), &Anchor::from_corners(stage1), v)
            })
            .collect();
        assert!(close(&got, &want, 1e-5), "{got:?} vs {want:?}");
        let one_stage = run(&anchors, v, &[second]);
        assert!(!close(&got, &one_stage, 1e-3), "the first stage's boxes change the result");
    }
}
