//! 2-D convolution (stride 1, zero padding) as im2col + GEMM, forward and backward, f32, CPU.
//!
//! # Formulas
//! With input `x [B, C, H, W]`, weight `w [O, C, Kh, Kw]`, bias `b [O]` and padding `p`,
//! the output `y [B, O, Ho, Wo]`, `Ho = H + 2p − Kh + 1`, `Wo = W + 2p − Kw + 1`, is
//!
//! ```text
//! y[n,o,i,j] = b[o] + Σ_{c,u,v} w[o,c,u,v] · x[n, c, i+u−p, j+v−p]     (x = 0 outside)
//! ```
//!
//! Images are processed in chunks of `nb` consecutive images. For a chunk, `im2col` lays the
//! receptive fields out as `cols [K, nb·Ho·Wo]`, `K = C·Kh·Kw`, and the chunk's output is one
//! product `Y = W · cols` with `W` the weight seen as `[O, K]`. The backward pass is
//!
//! ```text
//! ∂W = Σ_chunks ∂Y · colsᵀ          [O, K]
//! ∂b = Σ_chunks Σ_columns ∂Y        [O]
//! ∂x = col2im(Wᵀ · ∂Y)              scatter-add of [K, nb·Ho·Wo] back onto [nb, C, H, W]
//! ```
//!
//! Chunks run in parallel on rayon's current pool. The chunk size depends only on the shapes,
//! each chunk's partial `∂W` and `∂b` are computed single-threaded, and the partials are summed
//! in chunk order: gradients are bit-identical whatever the number of threads. `∂x` is only
//! computed when the input takes part in the gradient (`Tensor::track_op`), so the first layer
//! of a network never pays for it.
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{
    avx2_fn, cpu_f32, grad_tensor, sum_f32, sum_in_order, wide, with_f32, with_scratch,
};
use super::gemm::{matmul, MatRef};

/// The columns a chunk aims at: enough to keep the GEMM efficient for small images.
const TARGET_COLUMNS: usize = 512;
/// A chunk holds at most `B / MIN_CHUNKS` images (rounded up), so that a batch splits
/// into at least this many tasks for the pool.
const MIN_CHUNKS: usize = 8;

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub(crate) b: usize,
    c: usize,
    h: usize,
    w: usize,
    pub(crate) o: usize,
    kh: usize,
    kw: usize,
    pad: usize,
    pub(crate) ho: usize,
    pub(crate) wo: usize,
}

impl Geom {
    pub(crate) fn new(x: &Shape, w: &Shape, pad: usize) -> Result<Self> {
        let (b, c, h, wd) = x.dims4()?;
        let (o, c2, kh, kw) = w.dims4()?;
        if c != c2 {
            bail!("conv2d: input has {c} channels, weight expects {c2}")
        }
        if c == 0 || h == 0 || wd == 0 {
            bail!("conv2d: empty input image {c}x{h}x{wd}")
        }
        if kh == 0 || kw == 0 || kh > h + 2 * pad || kw > wd + 2 * pad {
            bail!("conv2d: kernel {kh}x{kw} does not fit input {h}x{wd} with padding {pad}")
        }
        Ok(Self {
            b,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            pad,
            ho: h + 2 * pad - kh + 1,
            wo: wd + 2 * pad - kw + 1,
        })
    }

    /// Rows of the im2col matrix, `C·Kh·Kw`.
    pub(crate) fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per image and channel.
    pub(crate) fn p(&self) -> usize {
        self.ho * self.wo
    }

    pub(crate) fn in_image(&self) -> usize {
        self.c * self.h * self.w
    }

    pub(crate) fn out_image(&self) -> usize {
        self.o * self.p()
    }

    /// Images per chunk: a function of the shapes only (never of the thread count).
    pub(crate) fn chunk(&self) -> usize {
        let by_columns = TARGET_COLUMNS.div_ceil(self.p().max(1));
        let by_batch = self.b.div_ceil(MIN_CHUNKS).max(1);
        by_columns.clamp(1, by_batch)
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.b, self.o, self.ho, self.wo))
    }

    /// The output columns `[lo, hi)` whose input column `j + v − p` lies inside `[0, W)`.
    fn valid_cols(&self, v: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(v).min(self.wo);
        let hi = (self.w + self.pad).saturating_sub(v).min(self.wo).max(lo);
        (lo, hi)
    }

    /// The input row read by output row `i` and kernel row `u`, if inside the image.
    fn in_row(&self, i: usize, u: usize) -> Option<usize> {
        (i + u).checked_sub(self.pad).filter(|&r| r < self.h)
    }

    /// Lays the receptive fields of `nb` images `x [nb, C, H, W]` out as `cols [K, nb·P]`.
    pub(crate) fn im2col(&self, x: &[f32], nb: usize, cols: &mut [f32]) {
        let (p, n) = (self.p(), nb * self.p());
        let plane = self.h * self.w;
        for (row_idx, row) in cols.chunks_exact_mut(n).enumerate().take(self.k()) {
            let (c, u, v) = (
                row_idx / (self.kh * self.kw),
                (row_idx / self.kw) % self.kh,
                row_idx % self.kw,
            );
            let (lo, hi) = self.valid_cols(v);
            for bi in 0..nb {
                let src = &x[(bi * self.c + c) * plane..][..plane];
                for i in 0..self.ho {
                    let dst = &mut row[bi * p + i * self.wo..][..self.wo];
                    match self.in_row(i, u) {
                        None => dst.fill(0.0),
                        Some(r) => {
                            dst[..lo].fill(0.0);
                            dst[hi..].fill(0.0);
                            let start = r * self.w + lo + v - self.pad;
                            dst[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                        }
                    }
                }
            }
        }
    }

    /// Output pixels per image and channel that a 2×2 pooling reads: `4·⌊Ho/2⌋·⌊Wo/2⌋`.
    pub(crate) fn p_pooled(&self) -> usize {
        4 * (self.ho / 2) * (self.wo / 2)
    }

    /// The pooled columns `[lo, hi)` whose input column `2j + s − p` lies inside `[0, W)`.
    fn valid_pooled_cols(&self, s: usize) -> (usize, usize) {
        let wp = self.wo / 2;
        let lo = self.pad.saturating_sub(s).div_ceil(2).min(wp);
        let hi = (self.w + self.pad)
            .saturating_sub(s)
            .div_ceil(2)
            .min(wp)
            .max(lo);
        (lo, hi)
    }

    /// [`Self::im2col`] restricted to the outputs a 2×2 pooling reads, in window order:
    /// `cols [K, nb·4·Pp]`, column `bi·4·Pp + q·Pp + i·Wp + j` (`Pp = Hp·Wp`, `Hp = ⌊Ho/2⌋`,
    /// `Wp = ⌊Wo/2⌋`) holding the receptive field of output `(2i + q/2, 2j + q%2)` of image
    /// `bi`. The four positions `q` of every window then lie in four contiguous blocks.
    pub(crate) fn im2col_pooled(&self, x: &[f32], nb: usize, cols: &mut [f32]) {
        avx2_fn! {
            fn run(g: &Geom, x: &[f32], nb: usize, cols: &mut [f32]) {
                g.im2col_pooled_any(x, nb, cols)
            }
        }
        run(self, x, nb, cols)
    }

    #[inline(always)]
    fn im2col_pooled_any(&self, x: &[f32], nb: usize, cols: &mut [f32]) {
        let (hp, wp) = (self.ho / 2, self.wo / 2);
        let pp = hp * wp;
        let n = nb * 4 * pp;
        let plane = self.h * self.w;
        if n == 0 {
            return;
        }
        if self.pad == 0 {
            return self.im2col_pooled_valid(x, nb, cols);
        }
        for (row_idx, row) in cols.chunks_exact_mut(n).enumerate().take(self.k()) {
            let (c, u, v) = (
                row_idx / (self.kh * self.kw),
                (row_idx / self.kw) % self.kh,
                row_idx % self.kw,
            );
            for bi in 0..nb {
                let src = &x[(bi * self.c + c) * plane..][..plane];
                for q in 0..4 {
                    let (dr, dc) = (q / 2, q % 2);
                    let (lo, hi) = self.valid_pooled_cols(v + dc);
                    for i in 0..hp {
                        let dst = &mut row[bi * 4 * pp + q * pp + i * wp..][..wp];
                        match self.in_row(2 * i + dr, u) {
                            None => dst.fill(0.0),
                            Some(r) => {
                                dst[..lo].fill(0.0);
                                dst[hi..].fill(0.0);
                                if lo == hi {
                                    continue;
                                }
                                let start = r * self.w + 2 * lo + v + dc - self.pad;
                                copy_stride2(&mut dst[lo..hi], &src[start..]);
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`Self::im2col_pooled`] without padding, through phase planes: each input plane is first
    /// split into its four (row parity, column parity) sub-planes, in which every row segment
    /// of a window block is contiguous, so the copies are plain contiguous moves.
    #[inline(always)]
    fn im2col_pooled_valid(&self, x: &[f32], nb: usize, cols: &mut [f32]) {
        let (hp, wp) = (self.ho / 2, self.wo / 2);
        let pp = hp * wp;
        let n = nb * 4 * pp;
        let plane = self.h * self.w;
        let ph = Phases::new(self.h, self.w);
        with_scratch(plane, |phases| {
            for bi in 0..nb {
                for c in 0..self.c {
                    ph.split(&x[(bi * self.c + c) * plane..][..plane], self.w, phases);
                    for u in 0..self.kh {
                        for v in 0..self.kw {
                            let row_idx = (c * self.kh + u) * self.kw + v;
                            let row = &mut cols[row_idx * n + bi * 4 * pp..][..4 * pp];
                            for (q, block) in row.chunks_exact_mut(pp).enumerate() {
                                let (sr, sc) = (q / 2 + u, q % 2 + v);
                                let (src, wc) = ph.plane(phases, sr % 2, sc % 2);
                                let src = &src[(sr / 2) * wc + sc / 2..];
                                for (i, drow) in block.chunks_exact_mut(wp).enumerate() {
                                    drow.copy_from_slice(&src[i * wc..][..wp]);
                                }
                            }
                        }
                    }
                }
            }
        })
    }

    /// [`Self::col2im_pooled`] without padding, through phase planes (see
    /// [`Self::im2col_pooled_valid`]).
    #[inline(always)]
    fn col2im_pooled_valid(&self, dcols: &[f32], nb: usize, dx: &mut [f32]) {
        let (hp, wp) = (self.ho / 2, self.wo / 2);
        let pp = hp * wp;
        let n = nb * 4 * pp;
        let plane = self.h * self.w;
        let ph = Phases::new(self.h, self.w);
        with_scratch(plane, |phases| {
            for bi in 0..nb {
                for c in 0..self.c {
                    phases.fill(0.0);
                    for u in 0..self.kh {
                        for v in 0..self.kw {
                            let row_idx = (c * self.kh + u) * self.kw + v;
                            let row = &dcols[row_idx * n + bi * 4 * pp..][..4 * pp];
                            for (q, block) in row.chunks_exact(pp).enumerate() {
                                let (sr, sc) = (q / 2 + u, q % 2 + v);
                                let (dst, wc) = ph.plane_mut(phases, sr % 2, sc % 2);
                                let dst = &mut dst[(sr / 2) * wc + sc / 2..];
                                for (i, srow) in block.chunks_exact(wp).enumerate() {
                                    for (d, s) in dst[i * wc..][..wp].iter_mut().zip(srow) {
                                        *d += s;
                                    }
                                }
                            }
                        }
                    }
                    ph.merge_add(
                        phases,
                        self.w,
                        &mut dx[(bi * self.c + c) * plane..][..plane],
                    );
                }
            }
        })
    }

    /// Adds `dcols` laid out as by [`Self::im2col_pooled`] back onto `dx [nb, C, H, W]`.
    pub(crate) fn col2im_pooled(&self, dcols: &[f32], nb: usize, dx: &mut [f32]) {
        avx2_fn! {
            fn run(g: &Geom, dcols: &[f32], nb: usize, dx: &mut [f32]) {
                g.col2im_pooled_any(dcols, nb, dx)
            }
        }
        run(self, dcols, nb, dx)
    }

    #[inline(always)]
    fn col2im_pooled_any(&self, dcols: &[f32], nb: usize, dx: &mut [f32]) {
        let (hp, wp) = (self.ho / 2, self.wo / 2);
        let pp = hp * wp;
        let n = nb * 4 * pp;
        let plane = self.h * self.w;
        if n == 0 {
            return;
        }
        if self.pad == 0 {
            return self.col2im_pooled_valid(dcols, nb, dx);
        }
        for (row_idx, row) in dcols.chunks_exact(n).enumerate().take(self.k()) {
            let (c, u, v) = (
                row_idx / (self.kh * self.kw),
                (row_idx / self.kw) % self.kh,
                row_idx % self.kw,
            );
            for bi in 0..nb {
                let dst = &mut dx[(bi * self.c + c) * plane..][..plane];
                for q in 0..4 {
                    let (dr, dc) = (q / 2, q % 2);
                    let (lo, hi) = self.valid_pooled_cols(v + dc);
                    for i in 0..hp {
                        if let Some(r) = self.in_row(2 * i + dr, u).filter(|_| lo < hi) {
                            let src = &row[bi * 4 * pp + q * pp + i * wp..][lo..hi];
                            let start = r * self.w + 2 * lo + v + dc - self.pad;
                            add_stride2(&mut dst[start..], src);
                        }
                    }
                }
            }
        }
    }

    /// Adds `dcols [K, nb·P]` back onto `dx [nb, C, H, W]` (the adjoint of [`Self::im2col`]).
    pub(crate) fn col2im(&self, dcols: &[f32], nb: usize, dx: &mut [f32]) {
        let (p, n) = (self.p(), nb * self.p());
        let plane = self.h * self.w;
        for (row_idx, row) in dcols.chunks_exact(n).enumerate().take(self.k()) {
            let (c, u, v) = (
                row_idx / (self.kh * self.kw),
                (row_idx / self.kw) % self.kh,
                row_idx % self.kw,
            );
            let (lo, hi) = self.valid_cols(v);
            for bi in 0..nb {
                let dst = &mut dx[(bi * self.c + c) * plane..][..plane];
                for i in 0..self.ho {
                    if let Some(r) = self.in_row(i, u) {
                        let src = &row[bi * p + i * self.wo..][lo..hi];
                        let start = r * self.w + lo + v - self.pad;
                        for (d, s) in dst[start..start + (hi - lo)].iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// The four phase planes of an `H×W` plane: `(r, s)` holds the elements at even/odd rows `r`
/// and even/odd columns `s`, `⌈(H − r)/2⌉ × ⌈(W − s)/2⌉`, one after the other in one buffer
/// of `H·W` floats.
struct Phases {
    /// `(offset, rows, cols)` of plane `2r + s`.
    planes: [(usize, usize, usize); 4],
}

impl Phases {
    fn new(h: usize, w: usize) -> Self {
        let mut planes = [(0, 0, 0); 4];
        let mut off = 0;
        for (q, p) in planes.iter_mut().enumerate() {
            let (rows, cols) = ((h - q / 2).div_ceil(2), (w - q % 2).div_ceil(2));
            *p = (off, rows, cols);
            off += rows * cols;
        }
        Self { planes }
    }

    /// Plane `(r, s)` and its row length.
    #[inline(always)]
    fn plane<'a>(&self, buf: &'a [f32], r: usize, s: usize) -> (&'a [f32], usize) {
        let (off, rows, cols) = self.planes[2 * r + s];
        (&buf[off..][..rows * cols], cols)
    }

    #[inline(always)]
    fn plane_mut<'a>(&self, buf: &'a mut [f32], r: usize, s: usize) -> (&'a mut [f32], usize) {
        let (off, rows, cols) = self.planes[2 * r + s];
        (&mut buf[off..][..rows * cols], cols)
    }

    /// Splits `src [H, W]` (row length `w`) into the phase planes in `buf`.
    #[inline(always)]
    fn split(&self, src: &[f32], w: usize, buf: &mut [f32]) {
        for (q, &(off, rows, cols)) in self.planes.iter().enumerate() {
            if rows * cols == 0 {
                continue;
            }
            let dst = &mut buf[off..][..rows * cols];
            for (i, drow) in dst.chunks_exact_mut(cols).enumerate() {
                copy_stride2(drow, &src[(2 * i + q / 2) * w + q % 2..]);
            }
        }
    }

    /// Adds the phase planes in `buf` back onto `dst [H, W]` (row length `w`).
    #[inline(always)]
    fn merge_add(&self, buf: &[f32], w: usize, dst: &mut [f32]) {
        for (q, &(off, rows, cols)) in self.planes.iter().enumerate() {
            if rows * cols == 0 {
                continue;
            }
            let src = &buf[off..][..rows * cols];
            for (i, srow) in src.chunks_exact(cols).enumerate() {
                add_stride2(&mut dst[(2 * i + q / 2) * w + q % 2..], srow);
            }
        }
    }
}

/// `dst[j] = src[2j]` for every `j < dst.len()`.
#[inline(always)]
fn copy_stride2(dst: &mut [f32], src: &[f32]) {
    let Some((last, head)) = dst.split_last_mut() else {
        return;
    };
    for (d, pair) in head.iter_mut().zip(src.chunks_exact(2)) {
        *d = pair[0];
    }
    *last = src[2 * head.len()];
}

/// `dst[2j] += src[j]` for every `j < src.len()`.
#[inline(always)]
fn add_stride2(dst: &mut [f32], src: &[f32]) {
    let Some((last, head)) = src.split_last() else {
        return;
    };
    for (pair, s) in dst.chunks_exact_mut(2).zip(head) {
        pair[0] += s;
    }
    dst[2 * head.len()] += last;
}

/// Forward convolution of `x [B, C, H, W]` with `w [O, C, Kh, Kw]` and optional bias `[O]`.
pub(crate) fn forward(g: &Geom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Result<Vec<f32>> {
    let (k, p, o) = (g.k(), g.p(), g.o);
    let nb = g.chunk();
    let mut out = vec![0f32; g.b * g.out_image()];
    if out.is_empty() {
        return Ok(out);
    }
    out.par_chunks_mut(nb * g.out_image())
        .zip(x.par_chunks(nb * g.in_image()))
        .try_for_each(|(y, x)| {
            wide(|| -> Result<()> {
                let nbi = y.len() / g.out_image();
                let n = nbi * p;
                with_scratch(k * n, |cols| {
                    g.im2col(x, nbi, cols);
                    let direct = nbi == 1;
                    with_scratch(if direct { 0 } else { o * n }, |tmp| {
                        let dst: &mut [f32] = if direct { &mut *y } else { tmp };
                        if let Some(bias) = bias {
                            for (row, &bv) in dst.chunks_exact_mut(n).zip(bias) {
                                row.fill(bv);
                            }
                        }
                        matmul(
                            (o, n, k),
                            dst,
                            n,
                            bias.is_some(),
                            MatRef::rows(w, k),
                            MatRef::rows(cols, n),
                        )?;
                        if !direct {
                            // [O, nb·P] → [nb, O, P]
                            for (bi, img) in y.chunks_exact_mut(o * p).enumerate() {
                                for (oc, dst_row) in img.chunks_exact_mut(p).enumerate() {
                                    dst_row.copy_from_slice(&tmp[oc * n + bi * p..][..p]);
                                }
                            }
                        }
                        Ok(())
                    })
                })
            })
        })?;
    Ok(out)
}

/// Gradients of a convolution; each is computed only when asked for.
pub(crate) struct Grads {
    pub dx: Option<Vec<f32>>,
    pub dw: Option<Vec<f32>>,
    pub db: Option<Vec<f32>>,
}

impl Grads {
    /// The gradients as tensors shaped like `x`, `w` and the bias `[O]`.
    pub(crate) fn into_tensors(self, x: &Tensor, w: &Tensor) -> Result<GradTensors> {
        let dev = x.device();
        Ok((
            grad_tensor(self.dx, x.shape(), dev)?,
            grad_tensor(self.dw, w.shape(), dev)?,
            grad_tensor(self.db, w.dim(0)?, dev)?,
        ))
    }
}

/// `(∂x, ∂w, ∂b)` as candle's `CustomOp3::bwd` returns them.
pub(crate) type GradTensors = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// Backward convolution: `dy [B, O, Ho, Wo]` → `∂x`, `∂w`, `∂b` as requested.
pub(crate) fn backward(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    need: (bool, bool, bool),
) -> Result<Grads> {
    let (o, p) = (g.o, g.p());
    backward_from(g, x, w, need, Columns::All, |b0, nbi, dyc| {
        // ∂Y of the chunk, [nb, O, P] → [O, nb·P]
        let n = nbi * p;
        let dy_img = &dy[b0 * g.out_image()..][..nbi * g.out_image()];
        for (bi, img) in dy_img.chunks_exact(o * p).enumerate() {
            for (oc, src) in img.chunks_exact(p).enumerate() {
                dyc[oc * n + bi * p..][..p].copy_from_slice(src);
            }
        }
    })
}

/// Which output columns a backward pass works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    /// Every output, in row-major order ([`Geom::im2col`]).
    All,
    /// The outputs a 2×2 pooling reads, in window order ([`Geom::im2col_pooled`]); the others
    /// have a zero gradient.
    Pooled,
}

/// Backward convolution with the output gradient supplied chunk by chunk:
/// `fill(b0, nb, dyc)` writes every element of `∂Y [O, nb·P]` for images `b0..b0 + nb`
/// (`P` and the column order as `columns` says).
pub(crate) fn backward_from(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    (need_dx, need_dw, need_db): (bool, bool, bool),
    columns: Columns,
    fill: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Result<Grads> {
    let (k, o) = (g.k(), g.o);
    let p = match columns {
        Columns::All => g.p(),
        Columns::Pooled => g.p_pooled(),
    };
    let nb = g.chunk();
    let n_chunks = g.b.div_ceil(nb);
    let mut dx = if need_dx {
        vec![0f32; g.b * g.in_image()]
    } else {
        Vec::new()
    };
    let dx_chunks: Vec<Option<&mut [f32]>> = if need_dx && !dx.is_empty() {
        dx.chunks_mut(nb * g.in_image()).map(Some).collect()
    } else {
        (0..n_chunks).map(|_| None).collect()
    };
    type Partial = (Option<Vec<f32>>, Option<Vec<f32>>);
    let partials: Vec<Partial> = dx_chunks
        .into_par_iter()
        .enumerate()
        .map(|(ci, dx)| {
            wide(|| -> Result<Partial> {
                let b0 = ci * nb;
                let nbi = nb.min(g.b - b0);
                let n = nbi * p;
                with_scratch(o * n, |dyc| {
                    fill(b0, nbi, dyc);
                    let dyc: &[f32] = dyc;
                    let db = need_db.then(|| dyc.chunks_exact(n).map(sum_f32).collect());
                    let dw = if need_dw {
                        let mut dw = vec![0f32; o * k];
                        with_scratch(k * n, |cols| {
                            let x = &x[b0 * g.in_image()..];
                            match columns {
                                Columns::All => g.im2col(x, nbi, cols),
                                Columns::Pooled => g.im2col_pooled(x, nbi, cols),
                            }
                            matmul(
                                (o, k, n),
                                &mut dw,
                                k,
                                false,
                                MatRef::rows(dyc, n),
                                MatRef::rows_t(cols, n),
                            )
                        })?;
                        Some(dw)
                    } else {
                        None
                    };
                    if let Some(dx) = dx {
                        with_scratch(k * n, |dcols| {
                            matmul(
                                (k, n, o),
                                dcols,
                                n,
                                false,
                                MatRef::rows_t(w, k),
                                MatRef::rows(dyc, n),
                            )?;
                            match columns {
                                Columns::All => g.col2im(dcols, nbi, dx),
                                Columns::Pooled => g.col2im_pooled(dcols, nbi, dx),
                            }
                            Ok::<_, candle_core::Error>(())
                        })?;
                    }
                    Ok((dw, db))
                })
            })
        })
        .collect::<Result<_>>()?;
    Ok(Grads {
        dx: need_dx.then_some(dx),
        dw: need_dw.then(|| sum_in_order(partials.iter().filter_map(|p| p.0.as_ref()), o * k)),
        db: need_db.then(|| sum_in_order(partials.iter().filter_map(|p| p.1.as_ref()), o)),
    })
}

/// candle op: `conv2d(x, w)` (two arguments) or `conv2d(x, w) + b` (three arguments).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conv2dOp {
    pub padding: usize,
}

impl Conv2dOp {
    fn run(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.shape(), l2.shape(), self.padding)?;
        let x = cpu_f32(s1, l1)?;
        let w = cpu_f32(s2, l2)?;
        let b = match bias {
            Some((s, l)) => {
                if l.shape().dims() != [g.o] {
                    bail!("conv2d: bias shape {:?}, expected [{}]", l.shape(), g.o)
                }
                Some(cpu_f32(s, l)?)
            }
            None => None,
        };
        let y = forward(&g, x, w, b)?;
        Ok((CpuStorage::F32(y), g.out_shape()))
    }

    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        dy: &Tensor,
    ) -> Result<GradTensors> {
        let g = Geom::new(x.shape(), w.shape(), self.padding)?;
        let need = (x.track_op(), w.track_op(), b.is_some_and(|b| b.track_op()));
        let grads = with_f32(x, |xs| {
            with_f32(w, |ws| with_f32(dy, |dys| backward(&g, xs, ws, dys, need)))
        })?;
        grads.into_tensors(x, w)
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "tandem-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.grads(x, w, None, dy)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "tandem-conv2d-bias"
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
        self.run((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<GradTensors> {
        self.grads(x, w, Some(b), dy)
    }
}
