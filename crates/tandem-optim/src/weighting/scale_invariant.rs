//! The scale-invariant loss `Σ_t log L_t`, the baseline "SI" of Navon, Shamsian, Achituve,
//! Maron, Kawaguchi, Chechik & Fetaya (ICML 2022, "Multi-Task Learning as a Bargaining Game")
//! and of TorchJD's comparisons.
//!
//! ```text
//! L = Σ_t log max(L_t, ε)
//! ∂L/∂L_t = 1 / L_t   (0 for a clamped loss)
//! ```
//! Rescaling a task's loss (`L_t → k L_t`) adds a constant `log k` and leaves the update
//! unchanged: every task's gradient is divided by its own loss.
//!
//! ## Small and negative losses
//! A loss below `ε` (default `10⁻⁸`) is clamped to `ε`: its term is the constant `log ε`, so that
//! task gives no gradient this step (its weight is 0) instead of an unbounded one. A negative
//! loss has no logarithm: it is an error naming the task (a task whose loss can be negative, a
//! negative log-likelihood of a density for instance, needs another weighting).
//!
//! - Shapes: `T` scalar losses → `T` weights.
//! - Cost: one backward pass; no extra memory.
//! - State: none.
//! - Weights logged: `∂L/∂L_t = 1 / L_t` (0 when clamped).
//! - Defaults: `eps = 10⁻⁸` (ours: neither the paper nor LibMTL clamp; 10⁻⁸ is LibMTL's FAMO
//!   epsilon).
//!
//! ```toml
//! weighting = { kind = "scale_invariant", eps = 1e-8 }
//! ```
use super::config::MethodConfig;
use super::{StepContext, Update, Weighting};
use crate::{OptimError, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskInfo, TaskMap};

/// `scale_invariant`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleInvariantConfig {
    /// Losses below `eps` are clamped to it (default 10⁻⁸).
    #[serde(default = "default_eps")]
    pub eps: f64,
}

fn default_eps() -> f64 {
    1e-8
}

impl Default for ScaleInvariantConfig {
    fn default() -> Self {
        Self { eps: default_eps() }
    }
}

impl MethodConfig for ScaleInvariantConfig {
    fn validate(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(OptimError::config("weighting.eps", "must be > 0"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(ScaleInvariant::new(self.eps)))
    }
}

/// `Σ_t log L_t` (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleInvariant {
    eps: f64,
}

impl ScaleInvariant {
    /// With losses clamped below at `eps`.
    pub fn new(eps: f64) -> Self {
        Self { eps }
    }
}

impl Default for ScaleInvariant {
    fn default() -> Self {
        Self::new(default_eps())
    }
}

/// `log max(L, ε)` as a graph term and its derivative `∂/∂L` (0 when clamped); an error naming
/// `task` for a negative or non-finite loss. Shared by the `log`-based loss weightings.
pub(crate) fn clamped_log(
    task: &str,
    loss: &Tensor,
    eps: f64,
    method: &str,
) -> candle_core::Result<(Tensor, f64, f64)> {
    let v = loss
        .to_dtype(DType::F64)?
        .flatten_all()?
        .reshape(())?
        .to_scalar::<f64>()?;
    if !(v >= 0.0 && v.is_finite()) {
        candle_core::bail!(
            "{method} takes log(L): the loss of task {task} is {v}; \
             use a weighting that accepts negative losses"
        );
    }
    if v < eps {
        let term = Tensor::new(eps.ln(), loss.device())?.to_dtype(loss.dtype())?;
        Ok((term, eps.ln(), 0.0))
    } else {
        Ok((loss.reshape(())?.log()?, v.ln(), 1.0 / v))
    }
}

impl Weighting for ScaleInvariant {
    fn name(&self) -> &str {
        "scale_invariant"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let mut weights = TaskMap::new();
        let mut total: Option<Tensor> = None;
        for (name, loss) in losses.iter() {
            let (term, _, w) = clamped_log(name, loss, self.eps, "scale_invariant")?;
            weights.insert(name, w);
            total = Some(match total {
                None => term,
                Some(t) => (t + term)?,
            });
        }
        let Some(total) = total else {
            candle_core::bail!("no loss to optimise: every task is stopped");
        };
        Ok(Update {
            grads: ctx.backward(total)?,
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    /// `L_a = a²`, `L_b = b²`: the weights and `(∂/∂a, ∂/∂b)`.
    fn step(a: f32, b: f32) -> candle_core::Result<(TaskMap<f64>, [f64; 2])> {
        let dev = Device::Cpu;
        let (va, vb) = (Var::new(a, &dev)?, Var::new(b, &dev)?);
        let losses = TaskMap::new()
            .with("a", va.as_tensor().sqr()?)
            .with("b", vb.as_tensor().sqr()?);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut ctx = StepContext {
            trainable: &[],
            shared: &[],
            last_shared: &[],
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step: 0,
            collective: None,
            reduced: Vec::new(),
        };
        let u = ScaleInvariant::default().backward(&losses, &mut ctx)?;
        let g = |v: &Var| -> candle_core::Result<f64> {
            Ok(match u.grads.get(v.as_tensor()) {
                Some(g) => f64::from(g.to_scalar::<f32>()?),
                None => 0.0,
            })
        };
        Ok((u.weights.clone(), [g(&va)?, g(&vb)?]))
    }

    /// `∂ log a² / ∂a = 2/a`: `(2/0.5, 2/−4) = (4, −0.5)`; weights `1/L = (4, 1/16)`.
    #[test]
    fn gradient_is_each_gradient_over_its_loss() -> candle_core::Result<()> {
        let (w, [ga, gb]) = step(0.5, -4.0)?;
        assert!(
            (w["a"] - 4.0).abs() < 1e-6 && (w["b"] - 0.0625).abs() < 1e-9,
            "{w:?}"
        );
        assert!(
            (ga - 4.0).abs() < 1e-5 && (gb + 0.5).abs() < 1e-6,
            "{ga} {gb}"
        );
        // Scale invariance: multiplying b by 10 (its loss by 100) keeps ∂/∂b · b.
        let (_, [_, gb10]) = step(0.5, -40.0)?;
        assert!((gb10 * 40.0 - gb * 4.0).abs() < 1e-5, "{gb10}");
        Ok(())
    }

    #[test]
    fn zero_loss_is_clamped_and_negative_is_an_error() -> candle_core::Result<()> {
        let (w, [ga, gb]) = step(0.0, 1.0)?;
        assert_eq!(w["a"], 0.0);
        assert_eq!(ga, 0.0);
        assert!((gb - 2.0).abs() < 1e-6);
        let dev = Device::Cpu;
        let err = clamped_log("depth", &Tensor::new(-1f32, &dev)?, 1e-8, "scale_invariant")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("depth"), "{err}");
        Ok(())
    }

    #[test]
    fn validate_names_the_key() {
        let bad = ScaleInvariantConfig { eps: 0.0 };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("weighting.eps"));
        assert!(ScaleInvariantConfig::default().validate().is_ok());
    }
}
