//! [`LayerWeight`]: a conv or linear weight, plain or weight-normalised, and [`Dense`]: a
//! linear layer with such a weight and optional DropConnect.
//!
//! Weight normalisation (Salimans & Kingma, NeurIPS 2016), as PyTorch's
//! `torch.nn.utils.weight_norm(module, dim=0)`:
//!
//! ```text
//! w[o, …] = g[o] · v[o, …] / ‖v[o, ·]‖₂
//! ```
//!
//! with `v` (`weight_v`, the weight's shape) and `g` (`weight_g`, `[C_out, 1, …]`) trained
//! instead of `w`. `v` starts as the layer's initial weight would and `g` as its row norms, so
//! the layer starts computing what it would without the option. `g` is set from `v` when the
//! layer is built, if it still holds its creation value (all ones); a `VarMap` that already
//! holds trained values keeps them.
use crate::WeightInit;
use candle_core::{Result, Tensor, Var};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
enum Repr {
    Plain(Tensor),
    Normed { g: Tensor, v: Tensor },
}

/// A layer's weight `[C_out, …]`: a variable, or `g·v/‖v‖`.
#[derive(Debug, Clone)]
pub struct LayerWeight {
    repr: Repr,
}

impl LayerWeight {
    /// A weight of `shape` initialised by `init` (`weight`), or weight-normalised
    /// (`weight_g`, `weight_v`), under `vb`.
    pub fn new(
        shape: &[usize],
        init: candle_nn::Init,
        weight_norm: bool,
        vb: &VarBuilder,
    ) -> Result<Self> {
        if !weight_norm {
            let w = vb.get_with_hints(shape, "weight", init)?;
            return Ok(Self {
                repr: Repr::Plain(w),
            });
        }
        let v = vb.get_with_hints(shape, "weight_v", init)?;
        let mut g_shape = vec![1; shape.len()];
        g_shape[0] = shape[0];
        let g = vb.get_with_hints(g_shape, "weight_g", candle_nn::Init::Const(1.0))?;
        let fresh = g
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?
            .iter()
            .all(|&x| x == 1.0);
        if fresh && g.is_variable() {
            Var::from_tensor(&g)?.set(&row_norms(&v)?)?;
        }
        Ok(Self {
            repr: Repr::Normed { g, v },
        })
    }

    /// The weight the layer applies: the variable, or `g·v/‖v‖` (on the graph of `g` and `v`).
    pub fn value(&self) -> Result<Tensor> {
        match &self.repr {
            Repr::Plain(w) => Ok(w.clone()),
            Repr::Normed { g, v } => v.broadcast_div(&row_norms(v)?)?.broadcast_mul(g),
        }
    }

    /// The trained tensors: `[weight]` or `[weight_g, weight_v]`.
    pub fn parameters(&self) -> Vec<Tensor> {
        match &self.repr {
            Repr::Plain(w) => vec![w.clone()],
            Repr::Normed { g, v } => vec![g.clone(), v.clone()],
        }
    }
}

/// `‖v[o, ·]‖₂` as `[C_out, 1, …]`.
fn row_norms(v: &Tensor) -> Result<Tensor> {
    let o = v.dim(0)?;
    let mut shape = vec![1; v.rank()];
    shape[0] = o;
    v.reshape((o, ()))?
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .reshape(shape)
}

/// A linear layer `y = x·Wᵀ + b`, `W [out, in]`, `b [out]`, with the trunk's initialisation,
/// optional weight norm and optional DropConnect.
#[derive(Debug, Clone)]
pub struct Dense {
    weight: LayerWeight,
    bias: Tensor,
    path: String,
}

impl Dense {
    /// `in_dim → out_dim` under `vb` (`weight` or `weight_g`/`weight_v`, and `bias`). With
    /// [`WeightInit::Default`] and no weight norm its variables are those of
    /// [`torch_linear`](crate::torch_linear), value for value.
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        init: WeightInit,
        weight_norm: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (w_init, b_init) = init.hints(in_dim, out_dim);
        let weight = LayerWeight::new(&[out_dim, in_dim], w_init, weight_norm, &vb)?;
        let bias = vb.get_with_hints(out_dim, "bias", b_init)?;
        Ok(Self {
            weight,
            bias,
            path: vb.prefix(),
        })
    }

    /// The bias `[out]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The weight `[out, in]` for the input `x`: in training with DropConnect `p > 0`, the
    /// weight times a mask seeded by `x`, the layer path and `seed`
    /// ([`crate::dropout::mask_seed`]) over `1 − p`; else the weight.
    pub fn weight_for(
        &self,
        x: &Tensor,
        train: bool,
        dropconnect: f32,
        seed: u64,
    ) -> Result<Tensor> {
        let w = self.weight.value()?;
        if !train || dropconnect <= 0.0 {
            return Ok(w);
        }
        let name = format!("{}.dropconnect", self.path);
        crate::dropout::dropconnect(&w, dropconnect, crate::dropout::mask_seed(x, &name, seed)?)
    }

    /// `x·Wᵀ` for `x [B, in]` with the weight of [`weight_for`](Self::weight_for), without
    /// the bias (the trunk adds it with its activation).
    pub fn matmul(&self, x: &Tensor, train: bool, dropconnect: f32, seed: u64) -> Result<Tensor> {
        x.matmul(&self.weight_for(x, train, dropconnect, seed)?.t()?)
    }

    /// The trained tensors: the weight's, then the bias.
    pub fn parameters(&self) -> Vec<Tensor> {
        let mut p = self.weight.parameters();
        p.push(self.bias.clone());
        p
    }

    /// Input width.
    pub fn in_dim(&self) -> Result<usize> {
        match &self.weight.repr {
            Repr::Plain(w) => w.dim(1),
            Repr::Normed { v, .. } => v.dim(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn default_dense_is_torch_linear() -> Result<()> {
        let (a, b) = (VarMap::new(), VarMap::new());
        let vb = |v: &VarMap| tandem_tensor::seeded_var_builder(v, 3, DType::F32, &Device::Cpu);
        let d = Dense::new(5, 3, WeightInit::Default, false, vb(&a).pp("fc"))?;
        let l = crate::torch_linear(5, 3, vb(&b).pp("fc"))?;
        let x = Tensor::arange(0f32, 10f32, &Device::Cpu)?.reshape((2, 5))?;
        let y1 = d.matmul(&x, true, 0.0, 0)?.broadcast_add(d.bias())?;
        let y2 = candle_nn::Module::forward(&l, &x)?;
        assert_eq!(y1.to_vec2::<f32>()?, y2.to_vec2::<f32>()?);
        Ok(())
    }

    #[test]
    fn weight_norm_starts_as_its_v() -> Result<()> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 3, DType::F32, &Device::Cpu);
        let init = candle_nn::Init::Uniform { lo: -1.0, up: 1.0 };
        let normed = LayerWeight::new(&[4, 2, 3, 3], init, true, &vb.pp("c"))?;
        let g = &normed.parameters()[0];
        assert_eq!(g.dims(), &[4, 1, 1, 1]);
        let want = row_norms(&normed.parameters()[1])?;
        assert_eq!(
            g.flatten_all()?.to_vec1::<f32>()?,
            want.flatten_all()?.to_vec1::<f32>()?
        );
        // w = v at the start: g = ‖v‖
        let v = &normed.parameters()[1];
        let e = (normed.value()? - v)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(e < 1e-6, "{e}");
        Ok(())
    }

    #[test]
    fn dropconnect_only_in_training() -> Result<()> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 1, DType::F32, &Device::Cpu);
        let d = Dense::new(40, 30, WeightInit::Default, false, vb.pp("fc"))?;
        let x = Tensor::ones((2, 40), DType::F32, &Device::Cpu)?;
        let w = d
            .weight_for(&x, false, 0.5, 0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let wd = d
            .weight_for(&x, true, 0.5, 0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let zeros = wd.iter().filter(|&&v| v == 0.0).count();
        assert!((500..700).contains(&zeros), "{zeros}");
        for (a, b) in w.iter().zip(&wd) {
            assert!(*b == 0.0 || (b - 2.0 * a).abs() < 1e-6);
        }
        Ok(())
    }
}
