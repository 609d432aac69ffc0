//! [`torch_linear`]: a `candle_nn::Linear` initialised the way PyTorch initialises one.
use candle_core::Result;
use candle_nn::{Linear, VarBuilder};

/// A linear layer initialised as PyTorch's `nn.Linear`: weight `[out_dim, in_dim]` and bias
/// `[out_dim]` uniform in `±1/√in_dim`, under `vb` as `weight` and `bias`.
///
/// With [`seeded_var_builder`](crate::seeded_var_builder) the initial values depend only on the
/// seed and the variables' names.
///
/// ```
/// use candle_core::{DType, Device, Module, Tensor};
/// use candle_nn::VarMap;
/// let vars = VarMap::new();
/// let vb = tandem_tensor::seeded_var_builder(&vars, 7, DType::F32, &Device::Cpu);
/// let fc = tandem_tensor::torch_linear(4, 2, vb.pp("fc"))?;
/// let y = fc.forward(&Tensor::zeros((3, 4), DType::F32, &Device::Cpu)?)?;
/// assert_eq!(y.dims(), &[3, 2]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn torch_linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let bound = 1.0 / (in_dim.max(1) as f64).sqrt();
    let init = candle_nn::init::Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let w = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let b = vb.get_with_hints(out_dim, "bias", init)?;
    Ok(Linear::new(w, Some(b)))
}
