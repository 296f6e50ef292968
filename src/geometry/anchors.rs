//! Anchor (prior box) layouts and their generation.
//!
//! Anchor order is part of the model's contract: the network's heads emit one row per anchor
//! in exactly this order, so decoding with a differently ordered list silently pairs
//! regressions with the wrong anchors. The order is: level (finest stride first), then row,
//! then column, then anchor size — the order of Pytorch_Retinaface's `PriorBox`.

use serde::{Deserialize, Serialize};

use super::GeometryError;

/// One anchor `(cx, cy, w, h)`: centre and size, in pixels or normalised by the image size
/// depending on which generator produced it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

impl Anchor {
    /// A decoded box `[x1, y1, x2, y2]` as an anchor: how the cascade's second stage regresses
    /// from the first stage's boxes.
    pub fn from_corners([x1, y1, x2, y2]: [f32; 4]) -> Anchor {
        let (w, h) = (x2 - x1, y2 - y1);
        Anchor { cx: x1 + w / 2.0, cy: y1 + h / 2.0, w, h }
    }
}

/// One pyramid level: anchors of each size in `sizes` (square, edge length in pixels) centred
/// on every cell of a grid with spacing `stride`.
///
/// Fields are private so that a level always has a stride `>= 1` and at least one finite,
/// positive size; deserializing validates the same way as [`AnchorLevel::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AnchorLevelFields")]
pub struct AnchorLevel {
    stride: u32,
    sizes: Vec<f32>,
}

/// Unvalidated serde form of [`AnchorLevel`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorLevelFields {
    stride: u32,
    sizes: Vec<f32>,
}

impl TryFrom<AnchorLevelFields> for AnchorLevel {
    type Error = GeometryError;

    fn try_from(fields: AnchorLevelFields) -> Result<Self, Self::Error> {
        Self::new(fields.stride, fields.sizes)
    }
}

impl AnchorLevel {
    /// A level with the given stride (`>= 1`) and anchor sizes (non-empty, each finite and
    /// `> 0`).
    pub fn new(stride: u32, sizes: Vec<f32>) -> Result<Self, GeometryError> {
        if stride == 0 {
            return Err(GeometryError::ZeroStride);
        }
        if sizes.is_empty() {
            return Err(GeometryError::NoAnchorSizes { stride });
        }
        if let Some(&bad) = sizes.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(GeometryError::NotPositive { name: "anchor size", value: bad });
        }
        Ok(Self { stride, sizes })
    }

    pub fn stride(&self) -> u32 {
        self.stride
    }

    /// Anchor edge lengths in pixels, in the order anchors are emitted per cell.
    pub fn sizes(&self) -> &[f32] {
        &self.sizes
    }
}

/// Size of one level's anchor grid for a given input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureMapSize {
    pub stride: u32,
    /// `ceil(image_height / stride)`.
    pub rows: u32,
    /// `ceil(image_width / stride)`.
    pub cols: u32,
}

/// A complete anchor layout: the pyramid levels, finest stride first.
///
/// Validated like [`AnchorSpec::new`] on construction and on deserialization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AnchorSpecFields")]
pub struct AnchorSpec {
    levels: Vec<AnchorLevel>,
}

/// Unvalidated serde form of [`AnchorSpec`] (each level is already validated).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorSpecFields {
    levels: Vec<AnchorLevel>,
}

impl TryFrom<AnchorSpecFields> for AnchorSpec {
    type Error = GeometryError;

    fn try_from(fields: AnchorSpecFields) -> Result<Self, Self::Error> {
        Self::new(fields.levels)
    }
}

impl AnchorSpec {
    /// A spec from its levels: at least one, with strictly increasing strides (finest first,
    /// the order the network's heads are concatenated in).
    pub fn new(levels: Vec<AnchorLevel>) -> Result<Self, GeometryError> {
        if levels.is_empty() {
            return Err(GeometryError::NoAnchorLevels);
        }
        if let Some(pair) = levels.windows(2).find(|p| p[0].stride >= p[1].stride) {
            return Err(GeometryError::StridesNotIncreasing { previous: pair[0].stride, next: pair[1].stride });
        }
        Ok(Self { levels })
    }

    /// Builds a preset from literal levels that are valid by inspection.
    fn preset(levels: &[(u32, &[f32])]) -> Self {
        Self { levels: levels.iter().map(|&(stride, sizes)| AnchorLevel { stride, sizes: sizes.to_vec() }).collect() }
    }

    /// The layout of Table 1 of the RetinaFace report: levels P2–P6 (strides 4 to 64), three
    /// scales per level, base size `16 * 2^k` on level `k` times `{1, 2^(1/3), 2^(2/3)}`
    /// (P2: 16, 20.16, 25.40 … P6: 256, 322.54, 406.37). 102,300 anchors at 640×640.
    pub fn report_table1() -> Self {
        Self {
            levels: (0..5u32)
                .map(|k| {
                    let base = 16.0 * f64::from(1u32 << k);
                    AnchorLevel {
                        stride: 4 << k,
                        sizes: (0..3).map(|j| (base * 2f64.powf(f64::from(j) / 3.0)) as f32).collect(),
                    }
                })
                .collect(),
        }
    }

    /// Pytorch_Retinaface `cfg_mnet` / `cfg_re50`: strides 8, 16, 32 with sizes
    /// `[[16, 32], [64, 128], [256, 512]]`. 16,800 anchors at 640×640.
    pub fn pytorch_retinaface() -> Self {
        Self::preset(&[(8, &[16.0, 32.0]), (16, &[64.0, 128.0]), (32, &[256.0, 512.0])])
    }

    /// Face-Detector-1MB-with-landmark (the network of `mobilenet0.25_Final.pth`): strides
    /// 8, 16, 32 with sizes `[[10, 20], [32, 64], [128, 256]]`.
    pub fn fd1mb() -> Self {
        Self::preset(&[(8, &[10.0, 20.0]), (16, &[32.0, 64.0]), (32, &[128.0, 256.0])])
    }

    /// The levels, finest stride first.
    pub fn levels(&self) -> &[AnchorLevel] {
        &self.levels
    }

    /// Grid size of every level for an input of `image_width × image_height` pixels:
    /// `ceil(input / stride)`, so a partial cell at the border still gets anchors.
    pub fn feature_sizes(&self, image_width: u32, image_height: u32) -> Vec<FeatureMapSize> {
        self.levels
            .iter()
            .map(|level| FeatureMapSize {
                stride: level.stride,
                rows: image_height.div_ceil(level.stride),
                cols: image_width.div_ceil(level.stride),
            })
            .collect()
    }

    /// Number of anchors for an input of `image_width × image_height`.
    pub fn count(&self, image_width: u32, image_height: u32) -> usize {
        self.feature_sizes(image_width, image_height)
            .iter()
            .zip(&self.levels)
            .map(|(fs, level)| fs.rows as usize * fs.cols as usize * level.sizes.len())
            .sum()
    }

    /// Anchors in pixels: centre `((col + 0.5) * stride, (row + 0.5) * stride)`, edge = size.
    pub fn generate(&self, image_width: u32, image_height: u32) -> Vec<Anchor> {
        self.generate_with(image_width, image_height, |cx, cy, size| Anchor {
            cx: cx as f32,
            cy: cy as f32,
            w: size as f32,
            h: size as f32,
        })
    }

    /// Anchors normalised by the image size, bit-for-bit what Pytorch_Retinaface's `PriorBox`
    /// produces: `((col + 0.5) * stride / W, (row + 0.5) * stride / H, size / W, size / H)`
    /// computed in f64 (Python floats) and then rounded to f32 (`torch.Tensor`).
    pub fn generate_normalized(&self, image_width: u32, image_height: u32) -> Vec<Anchor> {
        let (w, h) = (f64::from(image_width), f64::from(image_height));
        self.generate_with(image_width, image_height, |cx, cy, size| Anchor {
            cx: (cx / w) as f32,
            cy: (cy / h) as f32,
            w: (size / w) as f32,
            h: (size / h) as f32,
        })
    }

    /// Walks the anchors in contract order, handing `make` the centre and size in pixels as
    /// f64 (exact: they are small integers and halves).
    fn generate_with(
        &self,
        image_width: u32,
        image_height: u32,
        make: impl Fn(f64, f64, f64) -> Anchor,
    ) -> Vec<Anchor> {
        let mut anchors = Vec::with_capacity(self.count(image_width, image_height));
        for (fs, level) in self.feature_sizes(image_width, image_height).iter().zip(&self.levels) {
            let stride = f64::from(fs.stride);
            for row in 0..fs.rows {
                let cy = (f64::from(row) + 0.5) * stride;
                for col in 0..fs.cols {
                    let cx = (f64::from(col) + 0.5) * stride;
                    for &size in &level.sizes {
                        anchors.push(make(cx, cy, f64::from(size)));
                    }
                }
            }
        }
        anchors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::reference_tests::read_reference;
    use crate::test_support::assets;

    #[test]
    fn report_table1_has_102300_anchors_at_640() {
        let spec = AnchorSpec::report_table1();
        assert_eq!(spec.count(640, 640), 102_300);
        assert_eq!(spec.generate(640, 640).len(), 102_300);
    }

    #[test]
    fn report_table1_levels_are_p2_to_p6_with_table_edge_lengths() {
        let expected: [(u32, [f32; 3]); 5] = [
            (4, [16.0, 20.16, 25.40]),
            (8, [32.0, 40.32, 50.80]),
            (16, [64.0, 80.63, 101.59]),
            (32, [128.0, 161.27, 203.19]),
            (64, [256.0, 322.54, 406.37]),
        ];
        let spec = AnchorSpec::report_table1();
        assert_eq!(spec.levels().len(), expected.len());
        for (level, (stride, sizes)) in spec.levels().iter().zip(expected) {
            assert_eq!(level.stride(), stride);
            assert_eq!(level.sizes().len(), 3);
            for (&got, want) in level.sizes().iter().zip(sizes) {
                assert!((got - want).abs() < 0.01, "stride {stride}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn pytorch_retinaface_has_16800_anchors_at_640() {
        let spec = AnchorSpec::pytorch_retinaface();
        assert_eq!(spec.count(640, 640), 16_800);
        assert_eq!(spec.generate_normalized(640, 640).len(), 16_800);
    }

    #[test]
    fn fd1mb_normalized_anchors_match_reference_priors() {
        let Some(assets) = assets("fd1mb_normalized_anchors_match_reference_priors") else {
            return;
        };
        let reference = read_reference(&assets, "test_priors.npy", &[26_240, 4]);

        let anchors = AnchorSpec::fd1mb().generate_normalized(1024, 624);
        assert_eq!(anchors.len(), 26_240);
        let max_diff = anchors
            .iter()
            .zip(reference.chunks_exact(4))
            .flat_map(|(a, r)| [a.cx - r[0], a.cy - r[1], a.w - r[2], a.h - r[3]].map(|d| d.abs()))
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-6, "max abs diff {max_diff}");
    }

    #[test]
    fn feature_sizes_round_up_partial_cells() {
        // 624 / 32 = 19.5 -> 20 rows; 1024 / 32 = 32 cols.
        let sizes = AnchorSpec::fd1mb().feature_sizes(1024, 624);
        let grids: Vec<_> = sizes.iter().map(|f| (f.stride, f.rows, f.cols)).collect();
        assert_eq!(grids, [(8, 78, 128), (16, 39, 64), (32, 20, 32)]);
    }

    #[test]
    fn count_equals_generated_length() {
        let spec = AnchorSpec::fd1mb();
        assert_eq!(spec.count(1024, 624), 26_240);
        assert_eq!(spec.generate(1024, 624).len(), 26_240);
    }

    #[test]
    fn generate_orders_by_level_then_row_then_column_then_size() {
        let spec = AnchorSpec::new(vec![
            AnchorLevel::new(8, vec![1.0, 2.0]).expect("valid"),
            AnchorLevel::new(16, vec![3.0]).expect("valid"),
        ])
        .expect("valid");
        // 16×8 input: level 0 is 1 row × 2 cols × 2 sizes, level 1 is 1×1×1.
        let got: Vec<[f32; 4]> = spec.generate(16, 8).iter().map(|a| [a.cx, a.cy, a.w, a.h]).collect();
        assert_eq!(
            got,
            [
                [4.0, 4.0, 1.0, 1.0],
                [4.0, 4.0, 2.0, 2.0],
                [12.0, 4.0, 1.0, 1.0],
                [12.0, 4.0, 2.0, 2.0],
                [8.0, 8.0, 3.0, 3.0],
            ]
        );
    }

    #[test]
    fn generate_walks_columns_inside_rows() {
        let anchors = AnchorSpec::fd1mb().generate(1024, 624);
        // Second centre of level 0 is one column right; row 1 starts after 128 columns.
        assert_eq!((anchors[2].cx, anchors[2].cy), (12.0, 4.0));
        assert_eq!((anchors[2 * 128].cx, anchors[2 * 128].cy), (4.0, 12.0));
    }

    #[test]
    fn generate_normalized_divides_pixels_by_image_size() {
        let spec = AnchorSpec::pytorch_retinaface();
        let px = spec.generate(320, 200);
        let norm = spec.generate_normalized(320, 200);
        for (p, n) in px.iter().zip(&norm) {
            assert!((p.cx / 320.0 - n.cx).abs() < 1e-6);
            assert!((p.cy / 200.0 - n.cy).abs() < 1e-6);
            assert!((p.w / 320.0 - n.w).abs() < 1e-6);
            assert!((p.h / 200.0 - n.h).abs() < 1e-6);
        }
    }

    #[test]
    fn empty_image_has_no_anchors() {
        assert!(AnchorSpec::fd1mb().generate_normalized(0, 0).is_empty());
    }

    #[test]
    fn level_rejects_zero_stride() {
        assert_eq!(AnchorLevel::new(0, vec![16.0]), Err(GeometryError::ZeroStride));
    }

    #[test]
    fn level_rejects_empty_sizes() {
        assert_eq!(AnchorLevel::new(8, vec![]), Err(GeometryError::NoAnchorSizes { stride: 8 }));
    }

    #[test]
    fn level_rejects_non_positive_size_naming_it() {
        let err = AnchorLevel::new(8, vec![16.0, 0.0]).unwrap_err();
        assert_eq!(err.to_string(), "anchor size must be finite and > 0, got 0");
    }

    #[test]
    fn spec_rejects_no_levels() {
        assert_eq!(AnchorSpec::new(vec![]), Err(GeometryError::NoAnchorLevels));
    }

    #[test]
    fn spec_rejects_strides_not_increasing() {
        let level = |s| AnchorLevel::new(s, vec![16.0]).expect("valid");
        assert_eq!(
            AnchorSpec::new(vec![level(16), level(8)]),
            Err(GeometryError::StridesNotIncreasing { previous: 16, next: 8 })
        );
    }

    #[test]
    fn spec_serde_round_trip() {
        let spec = AnchorSpec::fd1mb();
        let json = serde_json::to_string(&spec).expect("serialize");
        assert!(json.starts_with(r#"{"levels":[{"stride":8,"sizes":[10.0,20.0]}"#), "{json}");
        let back: AnchorSpec = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, spec);
    }

    #[test]
    fn spec_deserialize_validates_levels() {
        let err = serde_json::from_str::<AnchorSpec>(r#"{"levels":[{"stride":0,"sizes":[1]}]}"#).unwrap_err();
        assert!(err.to_string().contains("stride must be >= 1"), "{err}");
    }
}
