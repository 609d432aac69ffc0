//! Numeric guards: detect NaN and infinity early, and say where they are.
use crate::{Result, TensorError};
use candle_core::{DType, Tensor};

/// Whether every element of `t` is finite.
pub fn is_finite(t: &Tensor) -> candle_core::Result<bool> {
    let v = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    Ok(v.iter().all(|x| x.is_finite()))
}

/// Fails with [`TensorError::NonFinite`] naming `name` when `t` holds a NaN or an infinity.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let t = Tensor::new(&[1.0f32, f32::NAN], &Device::Cpu)?;
/// let err = tandem_tensor::ensure_finite("loss.smile", &t).unwrap_err();
/// assert!(err.to_string().contains("loss.smile"));
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn ensure_finite(name: &str, t: &Tensor) -> Result<()> {
    let v = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let bad: Vec<(usize, f64)> = v
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, x)| !x.is_finite())
        .collect();
    if let Some(&(i, x)) = bad.first() {
        return Err(TensorError::NonFinite {
            name: name.to_string(),
            detail: format!(
                "{} of {} values non-finite (first at flat index {i}: {x})",
                bad.len(),
                v.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn names_the_tensor_and_counts() -> Result<()> {
        let t = Tensor::new(&[1.0f32, f32::INFINITY, f32::NAN], &Device::Cpu)?;
        let e = ensure_finite("w", &t).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("non-finite value in w: 2 of 3 values non-finite (first at flat index 1: inf)")
        );
        ensure_finite("ok", &Tensor::new(&[0f32, 1.0], &Device::Cpu)?)?;
        Ok(())
    }
}
