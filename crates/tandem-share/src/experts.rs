//! What the mixture-of-experts architectures ([`Mmoe`](crate::Mmoe), [`Cgc`](crate::Cgc),
//! [`Ple`](crate::Ple), [`DselectK`](crate::DselectK)) are made of: softmax gates over a
//! flattened input, the weighted sum of expert outputs, and per-task heads.
//!
//! A softmax gate over `E` experts reads `x ∈ ℝ^{B×…}` flattened to `[B, d]`:
//!
//! `g(x) = softmax(x W^T + b) ∈ ℝ^{B×E}`, rows non-negative and summing to 1,
//!
//! with `W [E, d]`, `b [E]` initialised as PyTorch's `nn.Linear` (uniform `±1/√d`).
//! The mixture of expert outputs `f_e ∈ ℝ^{B×…}` is `Σ_e g_e(x) ⊙ f_e`, summed in expert
//! order (a fixed order: the same bits on every run).
use crate::{ParamGroups, Result, ShareError};
use candle_core::{Module, Tensor, D};
use candle_nn::{Linear, VarBuilder};
use tandem_heads::{Head, TaskSet};
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// A softmax gate over `E` experts from a flattened input of `d` values.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    linear: Linear,
}

impl Gate {
    /// A gate from `d` inputs to `experts` weights, parameters `weight [E, d]` and `bias [E]`
    /// under `vb`.
    pub(crate) fn new(d: usize, experts: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: tandem_tensor::torch_linear(d, experts, vb)?,
        })
    }

    /// The logits `x W^T + b`, `[B, E]`, of `x [B, …]` flattened.
    pub(crate) fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.linear.forward(&x.flatten_from(1)?)
    }

    /// The weights `softmax(x W^T + b)`, `[B, E]`.
    pub(crate) fn weights(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // `softmax` (not the fused `softmax_last_dim`, which has no backward pass)
        candle_nn::ops::softmax(&self.logits(x)?, D::Minus1)
    }
}

/// `Σ_e w[:, e] ⊙ outputs[e]`: `w [B, E]`, each output `[B, …]` (broadcast over the trailing
/// axes), summed in expert order.
pub(crate) fn mix(w: &Tensor, outputs: &[&Tensor]) -> candle_core::Result<Tensor> {
    let mut acc: Option<Tensor> = None;
    for (e, out) in outputs.iter().enumerate() {
        let mut shape = vec![out.dim(0)?, 1];
        shape.extend(std::iter::repeat_n(1, out.rank().saturating_sub(2)));
        let we = w.narrow(D::Minus1, e, 1)?.reshape(shape)?;
        let term = out.broadcast_mul(&we)?;
        acc = Some(match acc {
            None => term,
            Some(a) => (a + term)?,
        });
    }
    match acc {
        Some(a) => Ok(a),
        None => candle_core::bail!("a mixture of no experts"),
    }
}

/// The number of values in one sample of `shape` (`Π shape`).
pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// One head per task on features of width `d`, under `vb.pp(task)`, and their prefixes.
pub(crate) struct Heads {
    pub(crate) heads: TaskMap<Head>,
    pub(crate) prefixes: TaskMap<String>,
}

impl Heads {
    pub(crate) fn new(tasks: &TaskSet, d: usize, vb: VarBuilder) -> Result<Self> {
        let mut heads = TaskMap::new();
        let mut prefixes = TaskMap::new();
        for task in tasks.iter() {
            let hvb = vb.pp(task.name());
            prefixes.insert(task.name(), hvb.prefix());
            heads.insert(task.name(), task.build_head(d, hvb)?);
        }
        if heads.is_empty() {
            return Err(ShareError::Config(
                "a multi-task network needs a task".into(),
            ));
        }
        Ok(Self { heads, prefixes })
    }
}

/// One gate per task under `vb.pp(task)`, built by `make`, and their prefixes.
pub(crate) fn per_task<G>(
    tasks: &TaskSet,
    vb: &VarBuilder,
    mut make: impl FnMut(VarBuilder) -> Result<G>,
) -> Result<(TaskMap<G>, TaskMap<String>)> {
    let mut gates = TaskMap::new();
    let mut prefixes = TaskMap::new();
    for task in tasks.iter() {
        let gvb = vb.pp(task.name());
        prefixes.insert(task.name(), gvb.prefix());
        gates.insert(task.name(), make(gvb)?);
    }
    Ok((gates, prefixes))
}

/// Every backbone of `experts` whole (`shared`) and its last stage (`last_shared`); task `t`
/// owns `own[t]` and its head.
pub(crate) fn expert_groups<'a, B: Backbone + 'a>(
    experts: impl Iterator<Item = &'a B>,
    own: impl Fn(&str) -> Vec<String>,
    heads: &TaskMap<String>,
) -> ParamGroups {
    let mut shared = Vec::new();
    let mut last_shared = Vec::new();
    for e in experts {
        shared.push(e.prefix());
        last_shared.extend(e.stage_prefixes(e.num_stages().saturating_sub(1)));
    }
    ParamGroups {
        shared,
        last_shared,
        tasks: heads.map(|t, h| {
            let mut o = own(t);
            o.push(h.clone());
            o
        }),
    }
}

/// Checks a count key: at least `min`.
pub(crate) fn at_least(key: &str, value: usize, min: usize) -> Result<()> {
    if value < min {
        return Err(ShareError::key(
            key,
            format!("{value} is not allowed; it must be at least {min}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn gate_rows_are_distributions_and_mix_weights_outputs() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 3, DType::F32, &dev);
        let gate = Gate::new(6, 3, vb).map_err(candle_core::Error::wrap)?;
        let x = Tensor::arange(0f32, 12.0, &dev)?.reshape((2, 1, 2, 3))?;
        let w = gate.weights(&x)?;
        assert_eq!(w.dims(), &[2, 3]);
        for row in w.to_vec2::<f32>()? {
            assert!(row.iter().all(|&v| v >= 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // Hand-derived mixture: w = [[1, 0], [0.25, 0.75]].
        let w = Tensor::new(&[[1f32, 0.0], [0.25, 0.75]], &dev)?;
        let a = Tensor::new(&[[1f32, 2.0], [4.0, 8.0]], &dev)?;
        let b = Tensor::new(&[[3f32, 5.0], [8.0, 4.0]], &dev)?;
        let m = mix(&w, &[&a, &b])?.to_vec2::<f32>()?;
        assert_eq!(m, [[1.0, 2.0], [7.0, 5.0]]);
        Ok(())
    }
}
