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

use super::cpu::{cpu_f32, keep_if, wide, with_f32};

/// Planes per parallel task.
const PLANES_PER_TASK: usize = 16;

/// The maximum of a 2×2 window `[[a, b], [c, d]]` and where it is: `(bottom, right)`.
///
/// Compared as a tree — `(a, b)`, `(c, d)`, then the two winners — with strict `>`, so ties
/// go to the first of the four in row-major order. Branch-free, so the loops vectorise.
#[inline(always)]
pub(crate) fn window_max(a: f32, b: f32, c: f32, d: f32) -> (f32, bool, bool) {
    let top_right = b > a;
    let m01 = if top_right { b } else { a };
    let bottom_right = d > c;
    let m23 = if bottom_right { d } else { c };
    let bottom = m23 > m01;
    let m = if bottom { m23 } else { m01 };
    (m, bottom, if bottom { bottom_right } else { top_right })
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
            wide(|| {
                for (yp, xp) in y.chunks_exact_mut(ho * wo).zip(x.chunks_exact(h * w)) {
                    for (i, yrow) in yp.chunks_exact_mut(wo).enumerate() {
                        let r0 = &xp[2 * i * w..][..2 * wo];
                        let r1 = &xp[(2 * i + 1) * w..][..2 * wo];
                        for ((yv, p0), p1) in yrow
                            .iter_mut()
                            .zip(r0.chunks_exact(2))
                            .zip(r1.chunks_exact(2))
                        {
                            *yv = window_max(p0[0], p0[1], p1[0], p1[1]).0;
                        }
                    }
                }
            })
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
            wide(|| {
                for ((dxp, xp), dyp) in dx
                    .chunks_exact_mut(h * w)
                    .zip(x.chunks_exact(h * w))
                    .zip(dy.chunks_exact(ho * wo))
                {
                    for (i, dyrow) in dyp.chunks_exact(wo).enumerate() {
                        let (d0, d1) = dxp[2 * i * w..].split_at_mut(w);
                        let (d0, d1) = (&mut d0[..2 * wo], &mut d1[..2 * wo]);
                        let x0 = &xp[2 * i * w..][..2 * wo];
                        let x1 = &xp[(2 * i + 1) * w..][..2 * wo];
                        for (((q0, q1), (p0, p1)), &g) in d0
                            .chunks_exact_mut(2)
                            .zip(d1.chunks_exact_mut(2))
                            .zip(x0.chunks_exact(2).zip(x1.chunks_exact(2)))
                            .zip(dyrow)
                        {
                            let (_, bottom, right) = window_max(p0[0], p0[1], p1[0], p1[1]);
                            // bit masks: no data-dependent branches
                            let pick = |b: bool, r: bool| keep_if(g, bottom == b && right == r);
                            q0[0] = pick(false, false);
                            q0[1] = pick(false, true);
                            q1[0] = pick(true, false);
                            q1[1] = pick(true, true);
                        }
                    }
                }
            })
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
