//! Access to the f32 data of CPU tensors and storages, for the kernels of this module.
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

/// The contiguous f32 slice a layout selects in a CPU storage.
pub(crate) fn cpu_f32<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("tandem kernels take f32 tensors, got {:?}", s.dtype())
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("tandem kernels take contiguous tensors"),
    }
}

/// Runs `f` on the f32 data of a CPU tensor (made contiguous first if needed).
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(cpu_f32(s, layout)?),
        _ => bail!("tandem kernels run on the CPU only"),
    }
}

thread_local! {
    /// Scratch buffers of this thread, reused across kernel calls.
    static SCRATCH: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a scratch buffer of `len` floats taken from a per-thread pool.
///
/// The buffer's contents are unspecified: `f` must write every element before reading it.
/// Reusing buffers spares the page faults and zeroing of fresh allocations on every call;
/// each thread keeps its largest buffers alive between calls. Always inlined, so that the
/// loops of `f` are compiled with the target features of the caller (see [`wide`]).
#[inline(always)]
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let out = f(&mut buf[..len]);
    SCRATCH.with(|s| s.borrow_mut().push(buf));
    out
}

/// The element-wise sum of per-chunk partial results, added in chunk order (so the result
/// does not depend on how many threads computed the chunks).
pub(crate) fn sum_in_order<'a>(
    parts: impl IntoIterator<Item = &'a Vec<f32>>,
    len: usize,
) -> Vec<f32> {
    let mut acc = vec![0f32; len];
    for part in parts {
        for (a, v) in acc.iter_mut().zip(part) {
            *a += v;
        }
    }
    acc
}

/// A gradient computed as a flat vector, as a tensor of `shape` on `dev` (`None` stays `None`).
pub(crate) fn grad_tensor(
    v: Option<Vec<f32>>,
    shape: impl Into<candle_core::Shape>,
    dev: &candle_core::Device,
) -> Result<Option<Tensor>> {
    v.map(|v| Tensor::from_vec(v, shape, dev)).transpose()
}

/// Sum of `v` in a fixed order that vectorises: eight interleaved partial sums, then the
/// remainder, then the partials pairwise. Deterministic for a given length.
#[inline]
pub(crate) fn sum_f32(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, x) in acc.iter_mut().zip(rest) {
        *a += x;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `v` where `keep`, `+0.0` elsewhere, by a bit mask: no data-dependent branch.
#[inline(always)]
pub(crate) fn keep_if(v: f32, keep: bool) -> f32 {
    f32::from_bits(v.to_bits() & 0u32.wrapping_sub(u32::from(keep)))
}

/// Runs `f` compiled for AVX2 + FMA where the CPU has them (checked at run time), so that
/// the element loops inlined into it vectorise 8-wide; plain `f()` elsewhere. The results are
/// the same on both paths (no contraction into fused multiply-adds happens without fast-math).
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features `avx2_fma` is compiled for (checked above).
        return unsafe { avx2_fma(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Defines `fn $name(args)` that runs `$body` compiled for AVX2 + FMA where the CPU has them
/// (checked at run time, `#[target_feature]`, so the loops inlined into it vectorise 8-wide;
/// closures are not a reliable way to get there) and as plain code elsewhere. The results are
/// the same on both paths (no contraction into fused multiply-adds without fast-math).
macro_rules! avx2_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast($($arg: $ty),*) $body
                // SAFETY: the CPU supports the features `fast` is compiled for (checked above).
                return unsafe { fast($($arg),*) };
            }
            $body
        }
    };
}

pub(crate) use avx2_fn;
