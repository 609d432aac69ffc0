//! Per-task backward passes and gradient assembly, for methods that look at each task's own
//! gradient (GradNorm, PCGrad).
//!
//! candle has no `autograd.grad(L_t, W)`: each `∇L_t` is a full backward pass of `L_t`. The final
//! update is assembled from these per-task stores, `g = Σ_t w_t ∇L_t (+ ∇penalty)`, variable by
//! variable in sorted-name order, so no extra backward pass of the weighted sum is needed.
use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use tandem_tensor::TaskMap;

/// One backward pass per task: `∇L_t` for every tensor `L_t` reaches, in task order.
pub fn per_task_grads(losses: &TaskMap<Tensor>) -> Result<Vec<(String, GradStore)>> {
    losses
        .iter()
        .map(|(name, loss)| Ok((name.to_string(), loss.backward()?)))
        .collect()
}

/// The gradient of `vars` in `store` as one flat `f64` vector (concatenated in the given order;
/// zeros for a variable the store has no gradient for).
pub fn flat(store: &GradStore, vars: &[(String, Var)]) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for (_, var) in vars {
        match store.get(var.as_tensor()) {
            Some(g) => out.extend(g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?),
            None => out.resize(out.len() + var.elem_count(), 0.0),
        }
    }
    Ok(out)
}

/// `‖v‖₂`.
pub(crate) fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

/// `a · b`, summed in index order.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Writes the flat vector `values` (laid out as [`flat`] does) into `store` as the gradients of
/// `vars`.
pub fn unflatten_into(store: &mut GradStore, vars: &[(String, Var)], values: &[f64]) -> Result<()> {
    let mut offset = 0;
    for (name, var) in vars {
        let n = var.elem_count();
        let Some(chunk) = values.get(offset..offset + n) else {
            candle_core::bail!("flat gradient too short for {name}");
        };
        let g = Tensor::from_slice(chunk, var.shape(), var.device())?.to_dtype(var.dtype())?;
        store.insert(var.as_tensor(), g);
        offset += n;
    }
    Ok(())
}

/// `Σ_t w_t ∇L_t + ∇penalty` for every variable of `vars`, in one store.
///
/// The result reuses the first per-task store (or the penalty's), with each variable's entry
/// replaced by the weighted sum; a variable no task reaches keeps no gradient.
pub fn combine(
    stores: Vec<(String, GradStore)>,
    weights: &TaskMap<f64>,
    vars: &[(String, Var)],
    penalty: Option<GradStore>,
) -> Result<GradStore> {
    if vars.is_empty() {
        candle_core::bail!(
            "StepContext::trainable is empty: no variable to assemble gradients for"
        );
    }
    let mut sums = Vec::with_capacity(vars.len());
    for (_, var) in vars {
        let mut acc: Option<Tensor> = None;
        for (name, store) in &stores {
            let Some(g) = store.get(var.as_tensor()) else {
                continue;
            };
            let w = weights.get(name).copied().unwrap_or(1.0);
            let term = if w == 1.0 { g.clone() } else { (g * w)? };
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
        if let Some(g) = penalty.as_ref().and_then(|p| p.get(var.as_tensor())) {
            acc = Some(match acc {
                None => g.clone(),
                Some(a) => (a + g)?,
            });
        }
        sums.push(acc);
    }
    let mut out = match (stores.into_iter().next(), penalty) {
        (Some((_, s)), _) => s,
        (None, Some(p)) => p,
        (None, None) => candle_core::bail!("no loss to optimise: every task is stopped"),
    };
    for ((_, var), sum) in vars.iter().zip(sums) {
        match sum {
            Some(g) => {
                out.insert(var.as_tensor(), g.detach());
            }
            None => {
                out.remove(var.as_tensor());
            }
        }
    }
    Ok(out)
}
