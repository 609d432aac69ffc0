//! A bounds-checked, single-threaded f32 matrix product over the `gemm` crate.
//!
//! `dst[m×n] = (accumulate ? dst : 0) + lhs[m×k] · rhs[k×n]`, every operand given by a slice
//! and its row and column strides (in elements), `dst` row-major with row stride `dst_rs`.
//!
//! The product always runs with `Parallelism::None`: the kernels parallelise over the batch
//! themselves, and a product whose blocking depended on the thread count could round
//! differently with 1 and 2 threads.
use candle_core::{bail, Result};

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major view with row stride `rs`.
    pub fn rows(data: &'a [f32], rs: usize) -> Self {
        Self { data, rs, cs: 1 }
    }

    /// The transpose of a row-major matrix whose row stride is `rs`.
    pub fn rows_t(data: &'a [f32], rs: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: rs,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `dst[m×n] (row stride dst_rs) = (accumulate ? dst : 0) + lhs · rhs`.
pub(crate) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    if !(MatRef::rows(dst, dst_rs).fits(m, n) && lhs.fits(m, k) && rhs.fits(k, n)) {
        bail!("matmul: operand too small for {m}x{k} · {k}x{n}")
    }
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_rs.max(1)).take(m) {
                row[..n].fill(0.0);
            }
        }
        return Ok(());
    }
    // SAFETY: the checks above guarantee that every index the product touches,
    // `(i, j) -> i * rs + j * cs` for i < rows and j < cols, lies inside its slice; `dst` is
    // borrowed mutably and so cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_product_and_transpose() {
        // [[1,2,3],[4,5,6]] · [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
        let a = [1f32, 2., 3., 4., 5., 6.];
        let b = [1f32, 0., 0., 1., 1., 1.];
        let mut c = [0f32; 4];
        matmul(
            (2, 2, 3),
            &mut c,
            2,
            false,
            MatRef::rows(&a, 3),
            MatRef::rows(&b, 2),
        )
        .unwrap();
        assert_eq!(c, [4., 5., 10., 11.]);
        // accumulate, with aᵀ stored as b's layout: (bᵀ)·(aᵀ)... use bᵀ [2x3] · aᵀ [3x2]
        let mut d = [1f32; 4];
        matmul(
            (2, 2, 3),
            &mut d,
            2,
            true,
            MatRef::rows_t(&b, 2),
            MatRef::rows_t(&a, 3),
        )
        .unwrap();
        assert_eq!(d, [5., 11., 6., 12.]);
        assert!(matmul(
            (3, 2, 3),
            &mut c,
            2,
            false,
            MatRef::rows(&a, 3),
            MatRef::rows(&b, 2)
        )
        .is_err());
    }
}
