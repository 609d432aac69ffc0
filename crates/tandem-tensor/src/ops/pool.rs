//! 2×2 max-pooling with stride 2, forward and backward, f32, CPU.
//!
//! # Formulas
//! For `x [B, C, H, W]`, the output `y [B, C, ⌊H/2⌋, ⌊W/2⌋]` is
//!
//! ```text
//! y[n,c,i,j] = max(x[n,c,2i,2j], x[n,c,2i,2j+1], x[n,c,2i+1,2j], x[n,c,2i+1,2j+1])
//! ```
//!
//! and the gradient goes whole to the window's maximum (the first one in row-major order on
//! ties): `∂x[n,c,2i+a,2j+b] = ∂y[n,c,i,j]` where `(a, b)` is the argmax, 0 elsewhere. A
//! trailing odd row or column takes no part and gets a zero gradient. The argmax is recomputed
//! from the input in the backward pass, so the forward pass stores nothing. Planes `(n, c)`
//! run in parallel; there is no reduction, so results do not depend on the thread count.
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{cpu_f32, with_f32};

/// Planes per parallel task.
const PLANES_PER_TASK: usize = 16;

/// Index of the maximum of a 2×2 window: 0, 1 (top row) or 2, 3 (bottom row).
#[inline(always)]
fn argmax4(a: f32, b: f32, c: f32, d: f32) -> (usize, f32) {
    let (mut i, mut m) = (0, a);
    if b > m {
        (i, m) = (1, b);
    }
    if c > m {
        (i, m) = (2, c);
    }
    if d > m {
        (i, m) = (3, d);
    }
    (i, m)
}

/// `(planes, H, W)` of an NCHW shape.
fn dims(shape: &Shape) -> Result<(usize, usize, usize)> {
    let (b, c, h, w) = shape.dims4()?;
    Ok((b * c, h, w))
}

/// `x [planes, H, W]` → `y [planes, H/2, W/2]`.
pub(crate) fn forward(x: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (ho, wo) = (h / 2, w / 2);
    let mut y = vec![0f32; planes * ho * wo];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(PLANES_PER_TASK * ho * wo)
        .zip(x.par_chunks(PLANES_PER_TASK * h * w))
        .for_each(|(y, x)| {
            for (yp, xp) in y.chunks_exact_mut(ho * wo).zip(x.chunks_exact(h * w)) {
                for (i, yrow) in yp.chunks_exact_mut(wo).enumerate() {
                    let r0 = &xp[2 * i * w..][..2 * wo];
                    let r1 = &xp[(2 * i + 1) * w..][..2 * wo];
                    for (j, yv) in yrow.iter_mut().enumerate() {
                        *yv = argmax4(r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]).1;
                    }
                }
            }
        });
    y
}

/// `∂y [planes, H/2, W/2]` → `∂x [planes, H, W]`, routing each gradient to its window's argmax.
pub(crate) fn backward(x: &[f32], dy: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (ho, wo) = (h / 2, w / 2);
    let mut dx = vec![0f32; planes * h * w];
    if ho * wo == 0 || dx.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(PLANES_PER_TASK * h * w)
        .zip(x.par_chunks(PLANES_PER_TASK * h * w))
        .zip(dy.par_chunks(PLANES_PER_TASK * ho * wo))
        .for_each(|((dx, x), dy)| {
            for ((dxp, xp), dyp) in dx
                .chunks_exact_mut(h * w)
                .zip(x.chunks_exact(h * w))
                .zip(dy.chunks_exact(ho * wo))
            {
                for (i, dyrow) in dyp.chunks_exact(wo).enumerate() {
                    let (r0, r1) = (2 * i * w, (2 * i + 1) * w);
                    for (j, &g) in dyrow.iter().enumerate() {
                        let (a, b) = (r0 + 2 * j, r1 + 2 * j);
                        let (k, _) = argmax4(xp[a], xp[a + 1], xp[b], xp[b + 1]);
                        let at = [a, a + 1, b, b + 1][k];
                        dxp[at] = g;
                    }
                }
            }
        });
    dx
}

/// candle op: 2×2 max-pooling with stride 2 of an NCHW tensor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaxPool2x2Op;

impl CustomOp1 for MaxPool2x2Op {
    fn name(&self) -> &'static str {
        "tandem-max-pool-2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let x = cpu_f32(s, l)?;
        let y = forward(x, b * c, h, w);
        Ok((CpuStorage::F32(y), Shape::from((b, c, h / 2, w / 2))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None);
        }
        let (planes, h, w) = dims(x.shape())?;
        if dy.elem_count() != planes * (h / 2) * (w / 2) {
            bail!("max_pool2x2: gradient shape {:?} does not fit", dy.shape())
        }
        let dx = with_f32(x, |xs| {
            with_f32(dy, |dys| Ok(backward(xs, dys, planes, h, w)))
        })?;
        Tensor::from_vec(dx, x.shape(), x.device()).map(Some)
    }
}
