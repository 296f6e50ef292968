//! Box and landmark regression targets relative to anchors (SSD/RetinaFace parametrisation).
//!
//! With anchor `(a_x, a_y, a_w, a_h)` and variance `(v0, v1)`:
//! `t_xy = (g_xy − a_xy) / (v0 · a_wh)`, `t_wh = ln(g_wh / a_wh) / v1`, landmarks like `t_xy`.
//! Decoding mirrors Pytorch_Retinaface's `decode`/`decode_landm` operation by operation in
//! f32, so that detections match the reference to the last bit where the maths library allows.

use super::{Anchor, BBox, GeometryError, Landmarks};

/// Scales of the regression targets: `center` (v0) divides centre and landmark offsets,
/// `size` (v1) divides log size ratios. They exist to bring targets to roughly unit variance.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Variance {
    pub center: f32,
    pub size: f32,
}

impl Variance {
    /// `(0.1, 0.2)`, what Pytorch_Retinaface (and every checkpoint trained with it) uses.
    pub const PYTORCH_RETINAFACE: Variance = Variance { center: 0.1, size: 0.2 };

    /// `(1, 1)`, the plain formulas as written in the RetinaFace report.
    pub const UNIT: Variance = Variance { center: 1.0, size: 1.0 };
}

/// `CENTER/SIZE`, e.g. `0.1/0.2`: both finite and `> 0` (what `--variance` and the diagnosis'
/// `variance=` take).
impl std::str::FromStr for Variance {
    type Err = String;

    fn from_str(text: &str) -> Result<Variance, String> {
        let bad = || format!("expected CENTER/SIZE, two positive numbers such as 0.1/0.2, got {text:?}");
        let (c, s) = text.split_once('/').ok_or_else(bad)?;
        let (center, size): (f32, f32) = (c.trim().parse().map_err(|_| bad())?, s.trim().parse().map_err(|_| bad())?);
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if positive(center) && positive(size) { Ok(Variance { center, size }) } else { Err(bad()) }
    }
}

/// Checks what encoding divides by: anchor size and both variances must be finite and `> 0`.
fn check_divisors(a: &Anchor, v: Variance) -> Result<(), GeometryError> {
    for (name, value) in
        [("anchor width", a.w), ("anchor height", a.h), ("variance.center", v.center), ("variance.size", v.size)]
    {
        if !(value.is_finite() && value > 0.0) {
            return Err(GeometryError::NotPositive { name, value });
        }
    }
    Ok(())
}

/// Regression target `[t_x, t_y, t_w, t_h]` of ground-truth box `gt` against anchor `a`
/// (same units for both). Fails for a degenerate `gt` (log of zero size) or for an anchor
/// size or variance that is not finite and positive.
pub fn encode_box(gt: &BBox, a: &Anchor, v: Variance) -> Result<[f32; 4], GeometryError> {
    check_divisors(a, v)?;
    if gt.is_degenerate() {
        return Err(GeometryError::DegenerateBox { width: gt.width(), height: gt.height() });
    }
    // Same operation order as Pytorch_Retinaface `encode`.
    let c = gt.center();
    Ok([
        (c.x - a.cx) / (v.center * a.w),
        (c.y - a.cy) / (v.center * a.h),
        (gt.width() / a.w).ln() / v.size,
        (gt.height() / a.h).ln() / v.size,
    ])
}

/// The largest `|t_w · variance.size|` decoding uses: a box at most e¹⁰ ≈ 22 000 times its
/// anchor. An untrained head's size outputs can be large enough to overflow `exp`; training
/// (`decode_to_anchors`, the cascade's anchors) and detection clamp alike, so a cascade model's
/// second stage regresses from the same boxes in both.
pub const MAX_LOG_SCALE: f32 = 10.0;

/// Box `[x1, y1, x2, y2]` from regression `t` against anchor `a`, as Pytorch_Retinaface `decode`
/// with the size exponent clamped to [`MAX_LOG_SCALE`] (identical for any trained network's
/// outputs). No validation or clipping otherwise: turn the result into a [`BBox`] with
/// [`BBox::new`] where a valid box is needed.
pub fn decode_box(t: [f32; 4], a: &Anchor, v: Variance) -> [f32; 4] {
    let cx = a.cx + t[0] * v.center * a.w;
    let cy = a.cy + t[1] * v.center * a.h;
    let scale = |t: f32| (t * v.size).clamp(-MAX_LOG_SCALE, MAX_LOG_SCALE).exp();
    let w = a.w * scale(t[2]);
    let h = a.h * scale(t[3]);
    let x1 = cx - w / 2.0;
    let y1 = cy - h / 2.0;
    [x1, y1, w + x1, h + y1]
}

/// Regression target `[t_x0, t_y0, …, t_x4, t_y4]` of `lm` against anchor `a`. Fails for an
/// anchor size or variance that is not finite and positive.
pub fn encode_landmarks(lm: &Landmarks, a: &Anchor, v: Variance) -> Result<[f32; 10], GeometryError> {
    check_divisors(a, v)?;
    let flat = lm.to_flat();
    Ok(std::array::from_fn(|i| {
        let (a_xy, a_wh) = if i % 2 == 0 { (a.cx, a.w) } else { (a.cy, a.h) };
        (flat[i] - a_xy) / (v.center * a_wh)
    }))
}

/// Landmarks `[x0, y0, …, x4, y4]` from regression `t`, exactly as Pytorch_Retinaface
/// `decode_landm` (`a_xy + t * v0 * a_wh`, raw like [`decode_box`]).
pub fn decode_landmarks(t: [f32; 10], a: &Anchor, v: Variance) -> [f32; 10] {
    std::array::from_fn(|i| {
        let (a_xy, a_wh) = if i % 2 == 0 { (a.cx, a.w) } else { (a.cy, a.h) };
        a_xy + t[i] * v.center * a_wh
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_parses_center_slash_size_and_rejects_the_rest() {
        assert_eq!("0.1/0.2".parse::<Variance>(), Ok(Variance::PYTORCH_RETINAFACE));
        assert_eq!(" 1 / 1 ".trim().parse::<Variance>(), Ok(Variance::UNIT));
        for bad in ["0.1", "0/1", "1/-1", "a/b", "nan/1", "1/inf"] {
            let err = bad.parse::<Variance>().unwrap_err();
            assert!(err.contains("CENTER/SIZE") && err.contains(bad), "{bad}: {err}");
        }
    }

    const ANCHOR: Anchor = Anchor { cx: 100.0, cy: 50.0, w: 32.0, h: 16.0 };

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn encode_box_hand_computed_with_pytorch_variance() {
        // Centre (108, 54), size 64x16: t_x = 8 / (0.1*32) = 2.5, t_y = 4 / (0.1*16) = 2.5,
        // t_w = ln(2) / 0.2, t_h = ln(1) / 0.2 = 0.
        let gt = BBox::new(76.0, 46.0, 140.0, 62.0).expect("valid");
        let t = encode_box(&gt, &ANCHOR, Variance::PYTORCH_RETINAFACE).expect("encodable");
        let want = [2.5, 2.5, std::f32::consts::LN_2 / 0.2, 0.0];
        assert!(close(&t, &want, 1e-5), "{t:?}");
    }

    #[test]
    fn encode_box_hand_computed_with_unit_variance() {
        let gt = BBox::new(76.0, 46.0, 140.0, 62.0).expect("valid");
        let t = encode_box(&gt, &ANCHOR, Variance::UNIT).expect("encodable");
        assert!(close(&t, &[0.25, 0.25, std::f32::consts::LN_2, 0.0], 1e-6), "{t:?}");
    }

    #[test]
    fn decode_box_hand_computed() {
        // cx = 100 + 2.5*0.1*32 = 108, w = 32*exp(0) = 32 -> x1 = 92, x2 = 124;
        // cy = 50 + (-1)*0.1*16 = 48.4, h = 16*exp(ln2) = 32 -> y1 = 32.4, y2 = 64.4.
        let t = [2.5, -1.0, 0.0, std::f32::consts::LN_2 / 0.2];
        let b = decode_box(t, &ANCHOR, Variance::PYTORCH_RETINAFACE);
        assert!(close(&b, &[92.0, 32.4, 124.0, 64.4], 1e-4), "{b:?}");
    }

    #[test]
    fn decode_box_of_zero_regression_is_the_anchor() {
        let b = decode_box([0.0; 4], &ANCHOR, Variance::PYTORCH_RETINAFACE);
        assert_eq!(b, [84.0, 42.0, 116.0, 58.0]);
    }

    #[test]
    fn box_round_trip_for_both_variances() {
        let gt = BBox::new(61.3, 20.7, 131.9, 77.2).expect("valid");
        for v in [Variance::PYTORCH_RETINAFACE, Variance::UNIT] {
            let t = encode_box(&gt, &ANCHOR, v).expect("encodable");
            let back = decode_box(t, &ANCHOR, v);
            assert!(close(&back, &gt.corners(), 1e-4), "{v:?}: {back:?}");
        }
    }

    #[test]
    fn encode_box_rejects_degenerate_box() {
        let gt = BBox::new(10.0, 10.0, 10.0, 20.0).expect("valid");
        assert_eq!(
            encode_box(&gt, &ANCHOR, Variance::UNIT),
            Err(GeometryError::DegenerateBox { width: 0.0, height: 10.0 })
        );
    }

    #[test]
    fn encode_rejects_zero_size_anchor_and_zero_variance() {
        let gt = BBox::new(0.0, 0.0, 1.0, 1.0).expect("valid");
        let flat = Anchor { w: 0.0, ..ANCHOR };
        let err = encode_box(&gt, &flat, Variance::UNIT).unwrap_err();
        assert_eq!(err.to_string(), "anchor width must be finite and > 0, got 0");
        let v = Variance { center: 0.0, size: 1.0 };
        assert!(matches!(
            encode_landmarks(&Landmarks::from_flat([0.0; 10]), &ANCHOR, v),
            Err(GeometryError::NotPositive { name: "variance.center", .. })
        ));
    }

    #[test]
    fn encode_landmarks_hand_computed() {
        // x: (x - 100) / (0.1*32) = (x - 100) / 3.2; y: (y - 50) / 1.6.
        let lm = Landmarks::from_flat([103.2, 51.6, 96.8, 48.4, 100.0, 50.0, 106.4, 53.2, 90.4, 45.2]);
        let t = encode_landmarks(&lm, &ANCHOR, Variance::PYTORCH_RETINAFACE).expect("encodable");
        let want = [1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 2.0, 2.0, -3.0, -3.0];
        assert!(close(&t, &want, 1e-5), "{t:?}");
    }

    #[test]
    fn decode_landmarks_hand_computed() {
        let t = [1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 2.0, 2.0, -3.0, -3.0];
        let d = decode_landmarks(t, &ANCHOR, Variance::PYTORCH_RETINAFACE);
        let want = [103.2, 51.6, 96.8, 48.4, 100.0, 50.0, 106.4, 53.2, 90.4, 45.2];
        assert!(close(&d, &want, 1e-4), "{d:?}");
    }

    #[test]
    fn landmark_round_trip_for_both_variances() {
        let lm = Landmarks::from_flat([90.1, 40.2, 111.7, 41.0, 101.3, 55.5, 93.0, 66.6, 108.8, 65.9]);
        for v in [Variance::PYTORCH_RETINAFACE, Variance::UNIT] {
            let t = encode_landmarks(&lm, &ANCHOR, v).expect("encodable");
            let back = decode_landmarks(t, &ANCHOR, v);
            assert!(close(&back, &lm.to_flat(), 1e-4), "{v:?}: {back:?}");
        }
    }
}
