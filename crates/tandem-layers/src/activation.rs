//! Activation functions: [`Activation`] is `tandem_tensor::ops::Activation` (identity, relu,
//! tanh, and TCDCN's `|tanh|`), applied by the trunk through the fused
//! bias + activation (+ pooling) kernels.
//!
//! `|tanh(x)|` has the derivative `sign(tanh x)·(1 − tanh²x)`.
pub use tandem_tensor::ops::Activation;

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Result, Var};

    #[test]
    fn abs_tanh_value_and_gradient() -> Result<()> {
        let x = Var::new(&[-1.0f32, 0.5], &Device::Cpu)?;
        let y = Activation::AbsTanh.apply_candle(x.as_tensor())?;
        let v = y.to_vec1::<f32>()?;
        assert!((v[0] - 1f32.tanh()).abs() < 1e-6 && (v[1] - 0.5f32.tanh()).abs() < 1e-6);
        let g = y.sum_all()?.backward()?;
        let gx = g
            .get(&x)
            .map(|t| t.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        let d = |x: f32| 1.0 - x.tanh().powi(2);
        assert!((gx[0] + d(-1.0)).abs() < 1e-6, "{gx:?}");
        assert!((gx[1] - d(0.5)).abs() < 1e-6, "{gx:?}");
        Ok(())
    }
}
