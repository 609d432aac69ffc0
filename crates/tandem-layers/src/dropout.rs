//! Seeded dropout, alpha dropout and DropConnect masks.
//!
//! candle's `Dropout` draws from a thread RNG that cannot be seeded, so tandem draws its own
//! masks. A mask is a function of the data it acts on and of names, never of a hidden RNG
//! state: with `h(x)` a 64-bit FNV-1a-style hash of the layer input's shape and value bits
//! (f64 inputs hashed as f64, every other dtype as f32), a ChaCha8 RNG is seeded with
//!
//! ```text
//! seed = hash_seed(h(x) ⊕ s, "<layer path>")
//! ```
//!
//! where `s` is the run's seed (0 when none is given) and [`hash_seed`] tandem's stable name
//! hash. The `u32` draws are taken in row-major order and an element is kept when its draw
//! `r < round((1 − p)·2³²)`. Hence the same batch through the same layer gets the same mask on
//! every run, on every number of threads and after a resume from a checkpoint, with no RNG
//! state to save; other layers, batches and seeds get independent masks. Hashing reads the
//! input back to the host (a device-to-host copy off the CPU); with `p = 0` or in evaluation
//! none of this happens.
//!
//! Formulas (inverted dropout, alpha dropout, DropConnect): see [`crate::regularise`].
use candle_core::{DType, Result, Tensor};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_tensor::hash_seed;
use tandem_tensor::ops::{SELU_ALPHA, SELU_LAMBDA};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over 32-bit words: `h ← (h ⊕ w)·prime`.
fn mix(h: u64, w: u32) -> u64 {
    (h ^ u64::from(w)).wrapping_mul(FNV_PRIME)
}

/// A 64-bit hash of a tensor's shape and value bits (f64 values as f64, every other dtype
/// converted to f32, which is exact for f16 and bf16).
pub fn tensor_hash(x: &Tensor) -> Result<u64> {
    let mut h = FNV_OFFSET;
    for &d in x.dims() {
        let d = d as u64;
        h = mix(mix(h, d as u32), (d >> 32) as u32);
    }
    let flat = x.flatten_all()?;
    if x.dtype() == DType::F64 {
        for v in flat.to_vec1::<f64>()? {
            let bits = v.to_bits();
            h = mix(mix(h, bits as u32), (bits >> 32) as u32);
        }
    } else {
        for v in flat.to_dtype(DType::F32)?.to_vec1::<f32>()? {
            h = mix(h, v.to_bits());
        }
    }
    Ok(h)
}

/// The seed of the mask a layer named `name` draws for the input `x` in a run seeded `seed`.
pub fn mask_seed(x: &Tensor, name: &str, seed: u64) -> Result<u64> {
    Ok(hash_seed(tensor_hash(x)? ^ seed, name))
}

/// `n` values of a keep mask scaled by `keep_value`: `keep_value` where a ChaCha8 draw `r`
/// (seeded with `seed`) is below `round((1 − p)·2³²)`, else 0.
pub fn keep_mask(n: usize, p: f32, seed: u64, keep_value: f32) -> Vec<f32> {
    let keep = 1.0 - f64::from(p);
    let threshold = (keep * 4_294_967_296.0).round() as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            if u64::from(rng.next_u32()) < threshold {
                keep_value
            } else {
                0.0
            }
        })
        .collect()
}

fn mask_like(y: &Tensor, p: f32, seed: u64, keep_value: f32) -> Result<Tensor> {
    let mask = keep_mask(y.elem_count(), p, seed, keep_value);
    Tensor::from_vec(mask, y.shape(), y.device())?.to_dtype(y.dtype())
}

/// Inverted dropout of `y` with probability `p` and mask seed `seed`: `y ⊙ m/(1 − p)`.
pub fn dropout(y: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(y.clone());
    }
    let scale = (1.0 / (1.0 - f64::from(p))) as f32;
    y * mask_like(y, p, seed, scale)?
}

/// Inverted dropout of `y` with a given keep mask `keep` (0 or 1, `y`'s shape):
/// `y ⊙ keep/(1 − p)`. [`dropout`] is this with a seeded mask.
pub fn dropout_with_mask(y: &Tensor, keep: &Tensor, p: f32) -> Result<Tensor> {
    let scale = (1.0 / (1.0 - f64::from(p))) as f32;
    y * keep.affine(f64::from(scale), 0.0)?
}

/// `(A, B, α')` of alpha dropout at rate `p`: `α' = −λα`,
/// `A = ((1 − p)(1 + p·α'²))^{−1/2}`, `B = −A·p·α'`.
pub fn alpha_dropout_coefficients(p: f64) -> (f64, f64, f64) {
    let alpha_p = -SELU_LAMBDA * SELU_ALPHA;
    let a = ((1.0 - p) * (1.0 + p * alpha_p * alpha_p)).powf(-0.5);
    (a, -a * p * alpha_p, alpha_p)
}

/// Alpha dropout of `y` (PyTorch's `nn.AlphaDropout`): a dropped unit becomes `α'`, then
/// `A·(·) + B`, with the keep mask seeded by `seed`.
pub fn alpha_dropout(y: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(y.clone());
    }
    alpha_dropout_with_mask(y, &mask_like(y, p, seed, 1.0)?, p)
}

/// Alpha dropout of `y` with a given keep mask `keep` (0 or 1, `y`'s shape).
pub fn alpha_dropout_with_mask(y: &Tensor, keep: &Tensor, p: f32) -> Result<Tensor> {
    let (a, b, alpha_p) = alpha_dropout_coefficients(f64::from(p));
    // A·(y ⊙ k + α'·(1 − k)) + B = (y ⊙ k)·A + (k·(−Aα') + Aα' + B)
    let kept = (y * keep)?.affine(a, 0.0)?;
    kept + keep.affine(-a * alpha_p, a * alpha_p + b)?
}

/// A DropConnect weight: `w ⊙ M/(1 − p)` with the mask seeded by `seed`.
pub fn dropconnect(w: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    dropout(w, p, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn keep_mask_rate_and_determinism() {
        let a = keep_mask(20_000, 0.3, 5, 1.0);
        let b = keep_mask(20_000, 0.3, 5, 1.0);
        assert_eq!(a, b);
        let kept = a.iter().filter(|&&v| v == 1.0).count() as f64 / 20_000.0;
        assert!((kept - 0.7).abs() < 0.015, "{kept}");
        assert_ne!(a, keep_mask(20_000, 0.3, 6, 1.0));
    }

    #[test]
    fn alpha_dropout_keeps_zero_mean_unit_variance() -> Result<()> {
        // on a standard normal input (the fixed point of SELU networks) the output keeps mean 0
        // and variance 1
        let n = 200_000;
        let x = tandem_tensor::SeededBackend::new(&candle_nn::VarMap::new(), 1).initial_value(
            &n.into(),
            "x",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
            DType::F32,
            &Device::Cpu,
        )?;
        let y = alpha_dropout(&x, 0.2, 11)?.to_vec1::<f32>()?;
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = y
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
        Ok(())
    }

    #[test]
    fn seed_changes_the_mask() -> Result<()> {
        let x = Tensor::arange(0f32, 6f32, &Device::Cpu)?;
        assert_ne!(mask_seed(&x, "a", 0)?, mask_seed(&x, "a", 1)?);
        assert_ne!(mask_seed(&x, "a", 0)?, mask_seed(&x, "b", 0)?);
        assert_eq!(mask_seed(&x, "a", 3)?, mask_seed(&x, "a", 3)?);
        Ok(())
    }
}
