//! A whole convolution stage as one op — convolution, per-channel bias, activation and 2×2
//! max-pooling — forward and backward, f32, CPU.
//!
//! # Formulas
//! For `x [B, C, H, W]`, `w [O, C, Kh, Kw]`, `b [O]` and padding `p`, with the convolution
//! `z = conv(x, w) [B, O, Ho, Wo]` (see [`super::conv`]):
//!
//! ```text
//! y[n,o,i,j] = act(z[n,o,r*,s*] + b[o])        [B, O, ⌊Ho/2⌋, ⌊Wo/2⌋]
//! (r*, s*)   = argmax over the window (2i..2i+2, 2j..2j+2) of key(z + b)
//! ```
//!
//! with `key(v) = |v|` for |tanh| and `key(v) = v` for the others. Every activation here is a
//! non-decreasing function of its key, so `y` is the maximum of the activations over the
//! window: this is `max_pool2x2(act(conv(x, w) + b))`, with one activation evaluated per
//! output instead of four. Ties go to the first maximum in row-major order. The backward pass
//! is
//!
//! ```text
//! ∂z[n,o,r*,s*] = ∂y[n,o,i,j] · act'(z + b)[n,o,r*,s*]     (0 elsewhere)
//! ∂b = Σ ∂z,   ∂w and ∂x from ∂z as for the convolution
//! ```
//!
//! # Memory
//! The forward pass keeps, per output, the window position of the maximum (one byte) and
//! `act'` there (one f32); neither the full-size pre-activation `z` nor its gradient is ever a
//! tensor: each chunk of images computes its `z` (or `∂z`) in a per-thread scratch buffer.
//! Beside the FLOPs saved, that spares the page faults and the zero-filled gradient
//! accumulations candle's backward pass would do on the largest tensors of the network.
//!
//! # Determinism
//! Chunks of the batch run in parallel; their size depends only on the shapes, and the
//! partial weight and bias gradients are summed in chunk order, so the gradients are
//! bit-identical for any number of threads.
use std::sync::Mutex;

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::act::{tanh_abs, with_act, Activation};
use super::conv::{backward_from, Columns, Geom, GradTensors};
use super::cpu::{avx2_fn, cpu_f32, keep_if, wide, with_f32, with_scratch};
use super::gemm::{matmul, MatRef};

/// What the forward pass keeps for the backward pass, one entry per output element.
#[derive(Debug, Default)]
struct Saved {
    /// Position of the window's maximum: `2·bottom + right`.
    arg: Vec<u8>,
    /// `act'` at the maximum.
    deriv: Vec<f32>,
}

/// `(y, saved)` of the fused stage.
fn forward(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    act: Activation,
) -> Result<(Vec<f32>, Saved)> {
    let (k, o) = (g.k(), g.o);
    let pp = (g.ho / 2) * (g.wo / 2);
    let out_image = o * pp;
    let len = g.b * out_image;
    let mut y = vec![0f32; len];
    let mut saved = Saved {
        arg: vec![0; len],
        deriv: vec![0.0; len],
    };
    if len == 0 {
        return Ok((y, saved));
    }
    let nb = g.chunk();
    y.par_chunks_mut(nb * out_image)
        .zip(saved.arg.par_chunks_mut(nb * out_image))
        .zip(saved.deriv.par_chunks_mut(nb * out_image))
        .zip(x.par_chunks(nb * g.in_image()))
        .try_for_each(|(((y, arg), deriv), x)| {
            let nbi = y.len() / out_image;
            let n = nbi * 4 * pp;
            with_scratch(k * n, |cols| {
                wide(|| g.im2col_pooled(x, nbi, cols));
                with_scratch(o * n + 2 * pp, |buf| {
                    let (z, row) = buf.split_at_mut(o * n);
                    matmul(
                        (o, n, k),
                        z,
                        n,
                        false,
                        MatRef::rows(w, k),
                        MatRef::rows(cols, n),
                    )?;
                    let planes = y
                        .chunks_exact_mut(pp)
                        .zip(arg.chunks_exact_mut(pp))
                        .zip(deriv.chunks_exact_mut(pp));
                    for (pi, ((yp, ap), dp)) in planes.enumerate() {
                        let (bi, oc) = (pi / o, pi % o);
                        let zp = &z[oc * n + bi * 4 * pp..][..4 * pp];
                        pool_plane_fast(zp, bias[oc], act, (yp, ap, dp), row);
                    }
                    Ok::<_, candle_core::Error>(())
                })
            })
        })?;
    Ok((y, saved))
}

/// The key whose window maximum is also the activations' maximum.
#[inline(always)]
fn key<const ABS: bool>(t: f32) -> f32 {
    if ABS {
        t.abs()
    } else {
        t
    }
}

/// Pools one plane whose window positions lie in four blocks, `z [4, Pp]` (see
/// [`Geom::im2col_pooled`]), into `y`, `arg`, `deriv` `[Pp]`; `row` is scratch `[2, Pp]`.
///
/// Every step is a loop over contiguous blocks with no data-dependent branch, so that it
/// vectorises: the maximum of each row's pair, then of the two rows (the tree of
/// [`window_max`](super::pool::window_max), hence its tie rule), then one activation per
/// output.
#[inline(always)]
fn pool_plane<const ABS: bool>(
    z: &[f32],
    bv: f32,
    act: Activation,
    (y, arg, deriv): (&mut [f32], &mut [u8], &mut [f32]),
    row: &mut [f32],
) {
    let pp = y.len();
    let (zs, code) = row.split_at_mut(pp);
    let (z0, rest) = z.split_at(pp);
    let (z1, rest) = rest.split_at(pp);
    let (z2, z3) = rest.split_at(pp);
    for (((((zv, cv), &a), &b), &c), &d) in zs
        .iter_mut()
        .zip(code.iter_mut())
        .zip(z0)
        .zip(z1)
        .zip(&z2[..pp])
        .zip(&z3[..pp])
    {
        let (a, b, c, d) = (a + bv, b + bv, c + bv, d + bv);
        let top_right = key::<ABS>(b) > key::<ABS>(a);
        let top = if top_right { b } else { a };
        let bottom_right = key::<ABS>(d) > key::<ABS>(c);
        let low = if bottom_right { d } else { c };
        let bottom = key::<ABS>(low) > key::<ABS>(top);
        *zv = if bottom { low } else { top };
        let right = if bottom { bottom_right } else { top_right };
        *cv = if bottom { 2.0 } else { 0.0 } + if right { 1.0 } else { 0.0 };
    }
    with_act!(act, |f, df| {
        for ((yv, dv), &zv) in y.iter_mut().zip(deriv.iter_mut()).zip(zs.iter()) {
            let a = f(zv);
            *yv = a;
            *dv = df(zv, a);
        }
    });
    for (a, &c) in arg.iter_mut().zip(code.iter()) {
        *a = c as u8;
    }
}

avx2_fn! {
    /// [`pool_plane`] for the activation's key.
    fn pool_plane_fast(
        z: &[f32],
        bv: f32,
        act: Activation,
        out: (&mut [f32], &mut [u8], &mut [f32]),
        row: &mut [f32],
    ) {
        if act == Activation::AbsTanh {
            pool_plane::<true>(z, bv, act, out, row)
        } else {
            pool_plane::<false>(z, bv, act, out, row)
        }
    }
}

/// Writes `∂z [O, nb·4·Pp]` (window order) of images `b0..b0 + nb` from `∂y` and what the
/// forward pass kept.
fn fill_dz(g: &Geom, saved: &Saved, dy: &[f32], (b0, nbi): (usize, usize), dz: &mut [f32]) {
    let o = g.o;
    let pp = (g.ho / 2) * (g.wo / 2);
    let n = nbi * 4 * pp;
    let start = b0 * o * pp;
    let end = start + nbi * o * pp;
    let planes = dy[start..end]
        .chunks_exact(pp)
        .zip(saved.arg[start..end].chunks_exact(pp))
        .zip(saved.deriv[start..end].chunks_exact(pp));
    for (pi, ((dyp, ap), dp)) in planes.enumerate() {
        let (bi, oc) = (pi / o, pi % o);
        let dst = &mut dz[oc * n + bi * 4 * pp..][..4 * pp];
        scatter_fast(dyp, ap, dp, dst);
    }
}

avx2_fn! {
    /// `dst [4, Pp]`: block `q` holds `dy · deriv` where `arg = q`, 0 elsewhere.
    fn scatter_fast(dy: &[f32], arg: &[u8], deriv: &[f32], dst: &mut [f32]) {
        let pp = dy.len();
        for (q, block) in dst.chunks_exact_mut(pp).enumerate() {
            let q = q as u8;
            for (((d, &g), &a), &f) in block.iter_mut().zip(dy).zip(arg).zip(deriv) {
                *d = keep_if(g * f, a == q);
            }
        }
    }
}

/// candle op: `max_pool2x2(act(conv2d(x, w, padding) + b))` with arguments `(x, w, b)`.
#[derive(Debug)]
pub(crate) struct ConvActPoolOp {
    padding: usize,
    act: Activation,
    saved: Mutex<Option<Saved>>,
}

impl ConvActPoolOp {
    pub(crate) fn new(padding: usize, act: Activation) -> Self {
        Self {
            padding,
            act,
            saved: Mutex::new(None),
        }
    }

    fn geom(&self, x: &Shape, w: &Shape, b: &Shape) -> Result<Geom> {
        let g = Geom::new(x, w, self.padding)?;
        if b.dims() != [g.o] {
            bail!(
                "conv_bias_act_pool2x2: bias shape {b:?}, expected [{}]",
                g.o
            )
        }
        Ok(g)
    }

    fn keep(&self, saved: Saved) {
        // a poisoned lock only means another thread panicked while holding it: replace it
        let mut slot = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(saved);
    }
}

impl CustomOp3 for ConvActPoolOp {
    fn name(&self) -> &'static str {
        "tandem-conv-bias-act-pool"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geom(l1.shape(), l2.shape(), l3.shape())?;
        let (x, w, b) = (cpu_f32(s1, l1)?, cpu_f32(s2, l2)?, cpu_f32(s3, l3)?);
        let (y, saved) = forward(&g, x, w, b, self.act)?;
        self.keep(saved);
        Ok((
            CpuStorage::F32(y),
            Shape::from((g.b, g.o, g.ho / 2, g.wo / 2)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<GradTensors> {
        let g = self.geom(x.shape(), w.shape(), b.shape())?;
        let need = (x.track_op(), w.track_op(), b.track_op());
        if need == (false, false, false) {
            return Ok((None, None, None));
        }
        if g.b == 0 || g.ho < 2 || g.wo < 2 {
            // no output: every gradient is zero
            let zeros = |t: &Tensor, on: bool| on.then(|| t.zeros_like()).transpose();
            return Ok((zeros(x, need.0)?, zeros(w, need.1)?, zeros(b, need.2)?));
        }
        let mut slot = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        let grads = with_f32(x, |xs| {
            with_f32(w, |ws| {
                if slot.is_none() {
                    // not kept (never expected): recompute it
                    let saved = with_f32(b, |bs| Ok(forward(&g, xs, ws, bs, self.act)?.1))?;
                    *slot = Some(saved);
                }
                let Some(saved) = slot.as_ref() else {
                    bail!("conv_bias_act_pool2x2: forward state missing")
                };
                with_f32(dy, |dys| {
                    if dys.len() != saved.deriv.len() {
                        bail!(
                            "conv_bias_act_pool2x2: gradient shape {:?} does not fit",
                            dy.shape()
                        )
                    }
                    backward_from(&g, xs, ws, need, Columns::Pooled, |b0, nbi, dz| {
                        fill_dz(&g, saved, dys, (b0, nbi), dz)
                    })
                })
            })
        })?;
        grads.into_tensors(x, w)
    }
}
