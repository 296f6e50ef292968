//! A checked view of the `gemm` crate for the training kernels: matrices are slices with
//! explicit strides, so a transposed operand is the same memory read with its strides swapped.

/// A matrix over a slice: element (r, c) is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The same memory read as its transpose.
    pub fn t(self) -> Mat<'a> {
        Mat { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Columns `first..first + count` of this matrix.
    pub fn columns(self, first: usize, count: usize) -> Mat<'a> {
        assert!(first + count <= self.cols, "columns out of range");
        let offset = if count == 0 { 0 } else { first * self.col_stride };
        Mat { data: &self.data[offset..], cols: count, ..self }
    }

    fn check(&self, what: &str) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "{what} out of bounds");
        }
    }
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`); `dst` is row-major `a.rows × b.cols`
/// with row stride `dst_stride`.
pub fn matmul(dst: &mut [f32], dst_stride: usize, a: Mat, b: Mat, accumulate: bool, parallel: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    a.check("left operand");
    b.check("right operand");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * dst_stride + n <= dst.len() && n <= dst_stride, "destination out of bounds");
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                dst[row * dst_stride..row * dst_stride + n].fill(0.0);
            }
        }
        return;
    }
    let parallelism = if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: every element each operand's strides reach lies inside its slice (checked above),
    // the destination is a distinct mutable slice, and the sizes are the ones checked.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: Mat, b: Mat) -> Vec<f32> {
        let at = |m: &Mat, r: usize, c: usize| m.data[r * m.row_stride + c * m.col_stride];
        let mut out = vec![0.0; a.rows * b.cols];
        for r in 0..a.rows {
            for c in 0..b.cols {
                out[r * b.cols + c] = (0..a.cols).map(|i| at(&a, r, i) * at(&b, i, c)).sum();
            }
        }
        out
    }

    #[test]
    fn transposed_and_sliced_operands_multiply_like_the_textbook() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..42).map(|i| (i as f32 * 0.11).cos()).collect();
        // a as 5×7, b as 6×7 read transposed (7×6), then only columns 2..5 of it.
        let (lhs, rhs) = (Mat::rows(&a, 5, 7), Mat::rows(&b, 6, 7).t().columns(2, 3));
        let expected = naive(lhs, rhs);
        let mut got = vec![1.0; 15];
        matmul(&mut got, 3, lhs, rhs, false, false);
        for (e, g) in expected.iter().zip(&got) {
            assert!((e - g).abs() < 1e-5, "{e} vs {g}");
        }
        matmul(&mut got, 3, lhs, rhs, true, true);
        for (e, g) in expected.iter().zip(&got) {
            assert!((2.0 * e - g).abs() < 1e-5, "accumulated {e} vs {g}");
        }
    }
}
