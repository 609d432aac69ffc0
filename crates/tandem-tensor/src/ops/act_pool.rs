//! Fused per-channel bias, activation and 2×2 max-pooling, forward and backward, f32, CPU.
//!
//! # Formulas
//! For `x [B, C, H, W]` and bias `b [C]`, with `z = x + b[c]` and `a = act(z)`:
//!
//! ```text
//! y[n,c,i,j] = max over the window (2i..2i+2, 2j..2j+2) of a[n,c,·,·]     [B, C, ⌊H/2⌋, ⌊W/2⌋]
//! ∂x = ∂y[n,c,i,j] · act'(z) at the window's argmax, 0 elsewhere
//! ∂b[c] = Σ_{n,h,w} ∂x[n,c,h,w]
//! ```
//!
//! This is exactly `max_pool2x2(bias_act(x, b, act))` — same activation code, same tie rule
//! (first maximum in row-major order) — without materialising the full-size activation or its
//! gradient: one read of `x` forward, one read of `x` and `∂y` and one write of `∂x` backward
//! (the activation is recomputed there), instead of four full-size tensors and their candle
//! gradient accumulations. The bias gradient sums per-chunk partials in chunk order, so it is
//! bit-identical for any number of threads.
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::act::{chunk_items, tanh_abs, with_act, Activation};
use super::cpu::{cpu_f32, grad_tensor, keep_if, sum_f32, sum_in_order, wide, with_f32};
use super::pool::window_max;

/// `y = pool(act(x + b))` for `x [B, C, H, W]`.
fn forward(
    x: &[f32],
    bias: Option<&[f32]>,
    (b, c, h, w): (usize, usize, usize, usize),
    act: Activation,
) -> Vec<f32> {
    let (ho, wo) = (h / 2, w / 2);
    let mut y = vec![0f32; b * c * ho * wo];
    if y.is_empty() {
        return y;
    }
    let nb = chunk_items(b, c * h * w);
    y.par_chunks_mut(nb * c * ho * wo)
        .zip(x.par_chunks(nb * c * h * w))
        .for_each(|(y, x)| {
            wide(|| {
                let mut rows = vec![0f32; 4 * wo];
                for (pi, (yp, xp)) in y
                    .chunks_exact_mut(ho * wo)
                    .zip(x.chunks_exact(h * w))
                    .enumerate()
                {
                    let bv = bias.map_or(0.0, |bs| bs[pi % c]);
                    with_act!(act, |f, _df| {
                        for (i, yrow) in yp.chunks_exact_mut(wo).enumerate() {
                            // the two input rows' activations, contiguous so that they vectorise
                            let (a0, a1) = rows.split_at_mut(2 * wo);
                            let r0 = &xp[2 * i * w..][..2 * wo];
                            let r1 = &xp[(2 * i + 1) * w..][..2 * wo];
                            for ((a, &v), (a_, &v_)) in
                                a0.iter_mut().zip(r0).zip(a1.iter_mut().zip(r1))
                            {
                                *a = f(v + bv);
                                *a_ = f(v_ + bv);
                            }
                            for ((yv, p0), p1) in yrow
                                .iter_mut()
                                .zip(a0.chunks_exact(2))
                                .zip(a1.chunks_exact(2))
                            {
                                *yv = window_max(p0[0], p0[1], p1[0], p1[1]).0;
                            }
                        }
                    })
                }
            })
        });
    y
}

/// `(∂x, ∂b)`, each when asked for.
fn backward(
    x: &[f32],
    bias: Option<&[f32]>,
    dy: &[f32],
    (b, c, h, w): (usize, usize, usize, usize),
    act: Activation,
    need_db: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (ho, wo) = (h / 2, w / 2);
    let mut dx = vec![0f32; b * c * h * w];
    let nb = chunk_items(b, c * h * w);
    let partials: Vec<Vec<f32>> = if dx.is_empty() || ho * wo == 0 {
        Vec::new()
    } else {
        dx.par_chunks_mut(nb * c * h * w)
            .zip(x.par_chunks(nb * c * h * w))
            .zip(dy.par_chunks(nb * c * ho * wo))
            .map(|((dx, x), dy)| {
                wide(|| {
                    let mut rows = vec![0f32; 8 * wo];
                    let mut db = vec![0f32; if need_db { c } else { 0 }];
                    for (pi, ((dxp, xp), dyp)) in dx
                        .chunks_exact_mut(h * w)
                        .zip(x.chunks_exact(h * w))
                        .zip(dy.chunks_exact(ho * wo))
                        .enumerate()
                    {
                        let bv = bias.map_or(0.0, |bs| bs[pi % c]);
                        with_act!(act, |f, df| {
                            for (i, dyrow) in dyp.chunks_exact(wo).enumerate() {
                                let (d0, d1) = dxp[2 * i * w..].split_at_mut(w);
                                let (d0, d1) = (&mut d0[..2 * wo], &mut d1[..2 * wo]);
                                let x0 = &xp[2 * i * w..][..2 * wo];
                                let x1 = &xp[(2 * i + 1) * w..][..2 * wo];
                                // recompute the activations and their derivatives, vectorised
                                let (a0, rest) = rows.split_at_mut(2 * wo);
                                let (a1, rest) = rest.split_at_mut(2 * wo);
                                let (g0, g1) = rest.split_at_mut(2 * wo);
                                for (((a, g), &v), ((a_, g_), &v_)) in a0
                                    .iter_mut()
                                    .zip(g0.iter_mut())
                                    .zip(x0)
                                    .zip(a1.iter_mut().zip(g1.iter_mut()).zip(x1))
                                {
                                    let (z, z_) = (v + bv, v_ + bv);
                                    *a = f(z);
                                    *a_ = f(z_);
                                    *g = df(z, *a);
                                    *g_ = df(z_, *a_);
                                }
                                for ((((q0, q1), (p0, p1)), (e0, e1)), &g) in d0
                                    .chunks_exact_mut(2)
                                    .zip(d1.chunks_exact_mut(2))
                                    .zip(a0.chunks_exact(2).zip(a1.chunks_exact(2)))
                                    .zip(g0.chunks_exact(2).zip(g1.chunks_exact(2)))
                                    .zip(dyrow)
                                {
                                    let (_, bottom, right) = window_max(p0[0], p0[1], p1[0], p1[1]);
                                    // bit masks: no data-dependent branches
                                    let pick = |b: bool, r: bool, d: f32| {
                                        keep_if(g * d, bottom == b && right == r)
                                    };
                                    q0[0] = pick(false, false, e0[0]);
                                    q0[1] = pick(false, true, e0[1]);
                                    q1[0] = pick(true, false, e1[0]);
                                    q1[1] = pick(true, true, e1[1]);
                                }
                            }
                        });
                        if need_db {
                            db[pi % c] += sum_f32(dxp);
                        }
                    }
                    db
                })
            })
            .collect()
    };
    let db = need_db.then(|| sum_in_order(&partials, c));
    (dx, db)
}

/// candle op: `max_pool2x2(act(x + b))` (two arguments) or `max_pool2x2(act(x))` (one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BiasActPoolOp {
    pub act: Activation,
}

impl BiasActPoolOp {
    fn run(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let d = l1.shape().dims4()?;
        let x = cpu_f32(s1, l1)?;
        let b = match bias {
            Some((s, l)) => {
                if l.shape().dims() != [d.1] {
                    bail!(
                        "bias_act_pool2x2: bias shape {:?}, expected [{}]",
                        l.shape(),
                        d.1
                    )
                }
                Some(cpu_f32(s, l)?)
            }
            None => None,
        };
        let y = forward(x, b, d, self.act);
        Ok((
            CpuStorage::F32(y),
            Shape::from((d.0, d.1, d.2 / 2, d.3 / 2)),
        ))
    }

    fn grads(
        &self,
        x: &Tensor,
        bias: Option<&Tensor>,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = x.dims4()?;
        let (need_dx, need_db) = (x.track_op(), bias.is_some_and(|b| b.track_op()));
        if !need_dx && !need_db {
            return Ok((None, None));
        }
        let run = |bs: Option<&[f32]>| {
            with_f32(x, |xs| {
                with_f32(dy, |dys| Ok(backward(xs, bs, dys, d, self.act, need_db)))
            })
        };
        let (dx, db) = match bias {
            Some(b) => with_f32(b, |bs| run(Some(bs)))?,
            None => run(None)?,
        };
        let dev = x.device();
        Ok((
            grad_tensor(need_dx.then_some(dx), x.shape(), dev)?,
            grad_tensor(db, d.1, dev)?,
        ))
    }
}

impl CustomOp1 for BiasActPoolOp {
    fn name(&self) -> &'static str {
        "tandem-act-pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.run((s, l), None)
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(self.grads(x, None, dy)?.0)
    }
}

impl CustomOp2 for BiasActPoolOp {
    fn name(&self) -> &'static str {
        "tandem-bias-act-pool"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((s1, l1), Some((s2, l2)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.grads(x, Some(b), dy)
    }
}
