//! Activation functions.
//!
//! TCDCN uses the absolute hyperbolic tangent `|tanh(x)|`; its derivative is
//! `sign(tanh x)·(1 − tanh²x)`, which candle's autograd derives from `abs` and `tanh`.
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// A pointwise non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `|tanh(x)|`, as in TCDCN.
    #[default]
    AbsTanh,
    /// `tanh(x)`.
    Tanh,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::AbsTanh => x.tanh()?.abs(),
            Self::Tanh => x.tanh(),
            Self::Relu => x.relu(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn abs_tanh_value_and_gradient() -> Result<()> {
        let x = Var::new(&[-1.0f32, 0.5], &Device::Cpu)?;
        let y = Activation::AbsTanh.apply(x.as_tensor())?;
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
