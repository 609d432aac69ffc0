//! [`CrossStitchUnit`]: a learnable linear mix of task columns (Misra et al., CVPR 2016).
//!
//! Given the activations `x_1 … x_T` of the `T` task columns after one stage, the unit
//! returns
//!
//! `x̃_i = Σ_j α_ij · x_j`
//!
//! with one learnable matrix `α ∈ ℝ^{T×T}`. Row `i` says how much column `i` reads from each
//! column. The unit is applied element-wise over every other axis, so a convolutional stage
//! mixes whole feature maps (the "per layer" variant of the paper; one `α` for all
//! channels).
//!
//! # Initialisation
//! `α_ii = s` (`self_weight`, 0.9 by default) and `α_ij = (1 − s)/(T − 1)` for `j ≠ i`, so
//! every row sums to 1 and a column starts by mostly keeping its own features. With `s = 1`
//! the unit is the identity (independent columns); with `s = 1/T` it averages the columns.
//! A single task has nothing to mix: `α = [[1]]`.
//!
//! If the variable already exists under the builder (a model built twice on one `VarMap`,
//! or a builder over stored tensors), its value is kept.
//!
//! # Shapes
//! `α`: `[T, T]`. Input: `T` tensors of one shape `[B, …]` (e.g. `[B, C, H, W]` or
//! `[B, D]`). Output: `T` tensors of that shape. Internally the inputs are stacked to
//! `[T, N]` (`N` = elements per column) and mixed by one matrix product `α · X`.
//!
//! # Parameter names
//! The unit owns one variable, `α`, at `<vb prefix>.<name>` (`stitch.conv2` when `vb` is
//! `root.pp("stitch")` and `name` is the stage name). Being a variable of its own, it can be
//! given its own learning rate.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use tandem_layers::CrossStitchUnit;
//!
//! let vars = VarMap::new();
//! let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
//! let unit = CrossStitchUnit::new(2, 0.9, vb.pp("stitch"), "conv2")?;
//! assert_eq!(unit.alpha().to_vec2::<f32>()?, [[0.9, 0.1], [0.1, 0.9]]);
//! let a = Tensor::ones((3, 4), DType::F32, &Device::Cpu)?;
//! let b = Tensor::zeros((3, 4), DType::F32, &Device::Cpu)?;
//! let mixed = unit.forward(&[a, b])?;
//! assert_eq!(mixed[1].to_vec2::<f32>()?[0][0], 0.1);
//! assert!(vars.data().lock().map(|d| d.contains_key("stitch.conv2")).unwrap_or(false));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use crate::{LayerError, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

/// A learnable `T×T` mix of `T` task columns' activations.
#[derive(Debug, Clone)]
pub struct CrossStitchUnit {
    alpha: Tensor,
    num_tasks: usize,
}

/// The initial mixing matrix, row-major: `s` on the diagonal, `(1 − s)/(T − 1)` elsewhere
/// (`[[1]]` for one task).
pub fn initial_alpha(num_tasks: usize, self_weight: f64) -> Vec<f64> {
    let t = num_tasks;
    if t == 1 {
        return vec![1.0];
    }
    let off = (1.0 - self_weight) / (t - 1) as f64;
    (0..t * t)
        .map(|k| if k / t == k % t { self_weight } else { off })
        .collect()
}

impl CrossStitchUnit {
    /// A unit mixing `num_tasks` columns, its `α` at `<vb prefix>.<name>`, initialised with diagonal `self_weight` (see the module docs).
    pub fn new(num_tasks: usize, self_weight: f64, vb: VarBuilder, name: &str) -> Result<Self> {
        if num_tasks == 0 {
            return Err(LayerError::Config {
                field: "num_tasks".into(),
                reason: "a cross-stitch unit needs at least one task".into(),
            });
        }
        if !self_weight.is_finite() {
            return Err(LayerError::Config {
                field: "self_weight".into(),
                reason: format!("must be finite, got {self_weight}"),
            });
        }
        let t = num_tasks;
        let exists = vb.contains_tensor(name);
        let off = if t == 1 {
            1.0
        } else {
            (1.0 - self_weight) / (t - 1) as f64
        };
        // The builder only knows per-element hints, so the variable is created constant
        // (the off-diagonal value) and, when new, overwritten in place with the full matrix.
        let alpha = vb.get_with_hints((t, t), name, candle_nn::Init::Const(off))?;
        if !exists {
            let init = Tensor::from_vec(initial_alpha(t, self_weight), (t, t), &Device::Cpu)?
                .to_dtype(alpha.dtype())?
                .to_device(alpha.device())?;
            alpha.slice_set(&init, 0, 0)?;
        }
        Ok(Self {
            alpha,
            num_tasks: t,
        })
    }

    /// The mixing matrix `α`, `[T, T]`; row `i` holds the weights column `i` reads with.
    pub fn alpha(&self) -> &Tensor {
        &self.alpha
    }

    /// Number of task columns `T`.
    pub fn num_tasks(&self) -> usize {
        self.num_tasks
    }

    /// Mixes the columns' activations: `out[i] = Σ_j α_ij · xs[j]`. All `xs` must share one
    /// shape; there must be exactly `T` of them.
    pub fn forward(&self, xs: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
        let t = self.num_tasks;
        if xs.len() != t {
            candle_core::bail!(
                "cross-stitch unit mixes {t} columns, got {} activations",
                xs.len()
            )
        }
        let shape = xs[0].shape().clone();
        let stacked = Tensor::stack(xs, 0)?.reshape((t, shape.elem_count()))?;
        let mixed = self.alpha.matmul(&stacked)?;
        (0..t).map(|i| mixed.get(i)?.reshape(&shape)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Var};
    use candle_nn::VarMap;

    #[test]
    fn init_rows_sum_to_one() {
        for t in 1..5 {
            let a = initial_alpha(t, 0.9);
            for i in 0..t {
                let row: f64 = a[i * t..(i + 1) * t].iter().sum();
                assert!((row - 1.0).abs() < 1e-12, "t {t} row {i}: {row}");
            }
            if t > 1 {
                assert_eq!(a[0], 0.9);
            }
        }
    }

    #[test]
    fn mixes_over_the_task_axis_with_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &dev);
        let unit = CrossStitchUnit::new(3, 0.8, vb.pp("stitch"), "conv1")?;
        let xs: Vec<Tensor> = (0..3)
            .map(|i| Tensor::full(i as f32 + 1.0, (2, 2, 3, 3), &dev))
            .collect::<candle_core::Result<_>>()?;
        let out = unit.forward(&xs)?;
        assert_eq!(out[0].dims(), &[2, 2, 3, 3]);
        // Row 0: 0.8·1 + 0.1·2 + 0.1·3 = 1.3.
        let v = out[0].flatten_all()?.to_vec1::<f32>()?;
        assert!(v.iter().all(|x| (x - 1.3).abs() < 1e-6), "{v:?}");
        // d(Σ out[0]) / dα_0j = Σ x_j = 36·(j + 1); the other rows get none.
        let g = out[0].sum_all()?.backward()?;
        let (_, alpha) = &tandem_tensor::sorted_vars(&vars)[0];
        let ga = g
            .get(alpha)
            .map(|t| t.to_vec2::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert_eq!(ga, [[36.0, 72.0, 108.0], [0.0; 3], [0.0; 3]]);
        assert!(unit.forward(&xs[..2]).is_err());
        Ok(())
    }

    #[test]
    fn existing_alpha_is_kept() -> Result<()> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        let _ = CrossStitchUnit::new(2, 0.9, vb.pp("stitch"), "fc")?;
        let (name, alpha): (String, Var) = tandem_tensor::sorted_vars(&vars).remove(0);
        assert_eq!(name, "stitch.fc");
        alpha.set(&Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu)?)?;
        let again = CrossStitchUnit::new(2, 0.9, vb.pp("stitch"), "fc")?;
        assert_eq!(again.alpha().to_vec2::<f32>()?, [[1.0, 2.0], [3.0, 4.0]]);
        Ok(())
    }
}
