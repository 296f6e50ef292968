//! IoU between two sets of boxes (anchor matching, evaluation).

use super::BBox;

/// IoU of every box in `a` with every box in `b`, row-major: entry `i * b.len() + j` is
/// `a[i].iou(&b[j])`. Same continuous convention as [`BBox::iou`] (0 when the union is 0).
///
/// Areas of `b` are computed once rather than per pair, since `a` is typically the ~100k
/// anchors and `b` a handful of ground-truth faces.
pub fn iou_matrix(a: &[BBox], b: &[BBox]) -> Vec<f32> {
    let b_areas: Vec<f32> = b.iter().map(BBox::area).collect();
    let mut out = Vec::with_capacity(a.len() * b.len());
    for box_a in a {
        let area_a = box_a.area();
        for (box_b, &area_b) in b.iter().zip(&b_areas) {
            let inter = box_a.intersection_area(box_b);
            let union = area_a + area_b - inter;
            out.push(if union > 0.0 { inter / union } else { 0.0 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(seed: u64, n: usize) -> Vec<BBox> {
        // Small xorshift so that the test needs no random-number crate.
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        (0..n)
            .map(|_| {
                let (x, y) = (next() * 100.0, next() * 100.0);
                let (w, h) = (next() * 40.0, next() * 40.0);
                BBox::from_xywh(x, y, w, h).expect("valid random box")
            })
            .collect()
    }

    #[test]
    fn iou_matrix_matches_pairwise_iou_row_major() {
        let (a, b) = (boxes(1, 37), boxes(2, 11));
        let m = iou_matrix(&a, &b);
        assert_eq!(m.len(), a.len() * b.len());
        for (i, box_a) in a.iter().enumerate() {
            for (j, box_b) in b.iter().enumerate() {
                assert_eq!(m[i * b.len() + j], box_a.iou(box_b), "pair ({i}, {j})");
            }
        }
        assert!(m.iter().any(|&v| v > 0.0), "test boxes should overlap somewhere");
    }

    #[test]
    fn iou_matrix_with_empty_side_is_empty() {
        assert!(iou_matrix(&boxes(3, 5), &[]).is_empty());
        assert!(iou_matrix(&[], &boxes(3, 5)).is_empty());
    }
}
