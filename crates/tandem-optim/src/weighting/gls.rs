//! Geometric Loss Strategy (Chennupati, Sistu, Yogamani & Rawashdeh, CVPR Workshops 2019,
//! "MultiNet++: Multi-Stream Feature Aggregation and Geometric Loss Strategy for Multi-Task
//! Learning").
//!
//! The objective is the geometric mean of the losses, built in the graph as
//! `exp(mean log L_t)` (the same value as `(Π_t L_t)^{1/T}`, without the product's under- or
//! overflow):
//! ```text
//! G = (Π_t L_t)^{1/T} = exp((1/T) Σ_t log L_t)
//! ∂G/∂L_t = G / (T · L_t)          e.g. T = 2: ½ √(L_2 / L_1) for L_1
//! ```
//! Like the scale-invariant loss, a task's gradient is divided by its own loss; the common
//! factor `G/T` keeps the step size on the scale of the losses.
//!
//! ## Small and negative losses
//! A loss below `ε` (default `10⁻⁸`) is clamped to `ε` (a constant factor, so that task gives no
//! gradient this step and its weight is 0); a negative loss is an error naming the task (the
//! geometric mean is defined for non-negative losses only, as TorchJD's `GeometricMean` checks).
//!
//! - Shapes: `T` scalar losses → `T` weights.
//! - Cost: one backward pass; no extra memory.
//! - State: none.
//! - Weights logged: `∂G/∂L_t = G / (T L_t)` (LibMTL returns `L_t / (T Π_j L_j)` instead, which is
//!   not the derivative for `T > 1`).
//! - Defaults: no parameter in LibMTL or TorchJD; `eps = 10⁻⁸` is ours.
//!
//! ```toml
//! weighting = { kind = "gls" }
//! ```
use super::config::MethodConfig;
use super::scale_invariant::clamped_log;
use super::{StepContext, Update, Weighting};
use crate::{OptimError, Result};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskInfo, TaskMap};

/// `gls`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlsConfig {
    /// Losses below `eps` are clamped to it (default 10⁻⁸).
    #[serde(default = "default_eps")]
    pub eps: f64,
}

fn default_eps() -> f64 {
    1e-8
}

impl Default for GlsConfig {
    fn default() -> Self {
        Self { eps: default_eps() }
    }
}

impl MethodConfig for GlsConfig {
    fn validate(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(OptimError::config("weighting.eps", "must be > 0"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(Gls::new(self.eps)))
    }
}

/// The geometric mean of the losses (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gls {
    eps: f64,
}

impl Gls {
    /// With losses clamped below at `eps`.
    pub fn new(eps: f64) -> Self {
        Self { eps }
    }
}

impl Default for Gls {
    fn default() -> Self {
        Self::new(default_eps())
    }
}

impl Weighting for Gls {
    fn name(&self) -> &str {
        "gls"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let t = losses.len() as f64;
        let mut sum: Option<Tensor> = None;
        let mut log_sum = 0.0;
        let mut inverse = Vec::with_capacity(losses.len());
        for (name, loss) in losses.iter() {
            let (term, log_value, inv) = clamped_log(name, loss, self.eps, "gls")?;
            log_sum += log_value;
            inverse.push((name, inv));
            sum = Some(match sum {
                None => term,
                Some(s) => (s + term)?,
            });
        }
        let Some(sum) = sum else {
            candle_core::bail!("no loss to optimise: every task is stopped");
        };
        let g = (log_sum / t).exp();
        let weights = inverse
            .into_iter()
            .map(|(name, inv)| (name, g * inv / t))
            .collect();
        Ok(Update {
            grads: ctx.backward((sum / t)?.exp()?)?,
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    /// Losses `x_i²` for `xs`: the weights and `∂G/∂x_i`.
    fn step(xs: &[f32]) -> candle_core::Result<(Vec<f64>, Vec<f64>)> {
        let dev = Device::Cpu;
        let vars = xs
            .iter()
            .map(|x| Var::new(*x, &dev))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let losses = vars
            .iter()
            .enumerate()
            .map(|(i, v)| Ok((format!("t{i}"), v.as_tensor().sqr()?)))
            .collect::<candle_core::Result<TaskMap<Tensor>>>()?;
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
        let u = Gls::default().backward(&losses, &mut ctx)?;
        let grads = vars
            .iter()
            .map(|v| {
                Ok(match u.grads.get(v.as_tensor()) {
                    Some(g) => f64::from(g.to_scalar::<f32>()?),
                    None => 0.0,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok((u.weights.iter().map(|(_, w)| *w).collect(), grads))
    }

    /// `L = (1, 4)`: `G = 2`, `∂G/∂L_1 = ½√(L_2/L_1) = 1`, `∂G/∂L_2 = ½√(L_1/L_2) = ¼`;
    /// with `L_i = x_i²`, `∂G/∂x = (1·2·1, ¼·2·2) = (2, 1)`.
    #[test]
    fn two_task_gradient_by_hand() -> candle_core::Result<()> {
        let (w, g) = step(&[1.0, 2.0])?;
        assert!(
            (w[0] - 1.0).abs() < 1e-7 && (w[1] - 0.25).abs() < 1e-7,
            "{w:?}"
        );
        assert!(
            (g[0] - 2.0).abs() < 1e-5 && (g[1] - 1.0).abs() < 1e-5,
            "{g:?}"
        );
        Ok(())
    }

    /// `L = (1, 4, 16)`: `G = 4`, `∂G/∂L_t = G/(3 L_t) = (4/3, 1/3, 1/12)`; `G` is homogeneous of
    /// degree 1, so `Σ_t L_t ∂G/∂L_t = G` (Euler).
    #[test]
    fn three_tasks_and_euler_identity() -> candle_core::Result<()> {
        let (w, g) = step(&[1.0, 2.0, 4.0])?;
        let expect = [4.0 / 3.0, 1.0 / 3.0, 1.0 / 12.0];
        for (i, e) in expect.iter().enumerate() {
            assert!((w[i] - e).abs() < 1e-7, "{w:?}");
        }
        let l = [1.0, 4.0, 16.0];
        let euler: f64 = w.iter().zip(l).map(|(w, l)| w * l).sum();
        assert!((euler - 4.0).abs() < 1e-7, "{euler}");
        // ∂G/∂x_t = w_t · 2 x_t.
        for (i, x) in [1.0, 2.0, 4.0].iter().enumerate() {
            assert!((g[i] - w[i] * 2.0 * x).abs() < 1e-5, "{g:?}");
        }
        Ok(())
    }

    #[test]
    fn zero_loss_is_clamped_negative_rejected() -> candle_core::Result<()> {
        let (w, g) = step(&[0.0, 2.0])?;
        assert_eq!((w[0], g[0]), (0.0, 0.0));
        // G = √(1e-8 · 4) = 2e-4; ∂G/∂L_2 = G / (2·4).
        assert!((w[1] - 2.5e-5).abs() < 1e-12, "{w:?}");
        assert!(g.iter().all(|v| v.is_finite()));
        let dev = Device::Cpu;
        let losses = TaskMap::new().with("depth", Tensor::new(-1f32, &dev)?);
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
        let err = Gls::default().backward(&losses, &mut ctx).err();
        assert!(err.is_some_and(|e| e.to_string().contains("depth")));
        Ok(())
    }

    #[test]
    fn validate_names_the_key() {
        let bad = GlsConfig { eps: -1.0 };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("weighting.eps"));
        assert!(GlsConfig::default().validate().is_ok());
    }
}
