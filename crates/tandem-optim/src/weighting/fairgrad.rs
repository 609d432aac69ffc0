//! FairGrad: α-fair resource allocation among tasks (Ban & Ji, ICML 2024, "Fair Resource
//! Allocation in Multi-Task Learning"; TorchJD's `FairGrad`, LibMTL's `FairGrad`).
//!
//! The update `d = Jᵀw` gives every task a utility `u_t = g_t · d` that maximises the α-fair
//! welfare `Σ_t u_t^{1−α}/(1−α)`; its weights solve
//! ```text
//! (G w)_t = w_t^{−1/α}   for every t,   w > 0
//! ```
//! (`α = 1`: proportional fairness, the same equations as Nash-MTL's without its clipping;
//! `α → ∞`: max-min fairness; `α = 0`: the mean, `w = 1/T`). TorchJD solves the equations with
//! scipy's bounded least squares from `1/T`; tandem with Newton's method on a strictly convex
//! potential ([`balance`] with `p = 1/α`, on `G / ‖G‖_F`, rescaled by `‖G‖_F^{−α/(α+1)}`), the
//! same point where TorchJD's least squares converges. The update is not normalised (as in
//! TorchJD). Where no solution exists (a singular `G` with a positive null direction), the
//! equations are solved for `G + 10⁻⁴·‖G‖_F·I` instead and a warning is logged.
//!
//! Default: `alpha = 1.0` (LibMTL's; TorchJD requires it). Cost: `T` backward passes
//! (parameters) or `T` head passes and one trunk pass (representation), a few `T × T` Cholesky
//! solves. Stateless.
//!
//! ```toml
//! weighting = { kind = "fairgrad", alpha = 2.0 }
//! ```
use super::config::MethodConfig;
use super::linalg::{balance, Gramian, Solve};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// FairGrad's weights for a Gramian and `α > 0` (`α = 0`: `1/T`).
pub fn fairgrad_weights(g: &Gramian, alpha: f64) -> Vec<f64> {
    let t = g.len();
    if alpha == 0.0 {
        return vec![1.0 / t as f64; t];
    }
    let fro = (0..t * t)
        .map(|k| g.get(k / t, k % t).powi(2))
        .sum::<f64>()
        .sqrt();
    if !(fro > 0.0 && fro.is_finite()) {
        return vec![1.0 / t as f64; t];
    }
    let solve = |reg: f64| {
        let scaled = Gramian::from_row_major(
            t,
            (0..t * t)
                .map(|k| g.get(k / t, k % t) / fro + if k / t == k % t { reg } else { 0.0 })
                .collect(),
        );
        balance(&scaled, 1.0 / alpha, &vec![1.0; t])
    };
    let y = match solve(0.0) {
        (y, Solve::Converged) => y,
        (_, Solve::MaxIterations) => {
            tracing::warn!("fairgrad: no solution for a singular Gramian; regularised by 1e-4");
            solve(1e-4).0
        }
    };
    // G = s Ĝ: w = k y with s k = k^{−1/α}, k = s^{−α/(α+1)}.
    let k = fro.powf(-alpha / (alpha + 1.0));
    y.iter().map(|v| v * k).collect()
}

/// FairGrad (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FairGrad {
    alpha: f64,
}

impl FairGrad {
    /// FairGrad with fairness `α ≥ 0`.
    pub fn new(alpha: f64) -> Self {
        Self { alpha }
    }
}

impl Aggregator for FairGrad {
    fn name(&self) -> &str {
        "fairgrad"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        Ok(Aggregation::weights(fairgrad_weights(
            input.gramian,
            self.alpha,
        )))
    }
}

/// FairGrad's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairGradConfig {
    /// The fairness `α > 0` (default 1.0, LibMTL's).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_alpha() -> f64 {
    1.0
}

impl Default for FairGradConfig {
    fn default() -> Self {
        Self {
            alpha: default_alpha(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for FairGradConfig {
    fn validate(&self) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(OptimError::config("weighting.alpha", "must be > 0"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            FairGrad::new(self.alpha),
            self.on,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_fair_weights_by_hand() {
        // G = diag(4, 1): α = 1: 4w1 = 1/w1, w = (½, 1); α = 2: 4w1 = w1^{−½}, w1 = 4^{−⅔}.
        let g = Gramian::from_row_major(2, vec![4.0, 0.0, 0.0, 1.0]);
        let w = fairgrad_weights(&g, 1.0);
        assert!(
            (w[0] - 0.5).abs() < 1e-9 && (w[1] - 1.0).abs() < 1e-9,
            "{w:?}"
        );
        let w = fairgrad_weights(&g, 2.0);
        assert!((w[0] - 4f64.powf(-2.0 / 3.0)).abs() < 1e-9 && (w[1] - 1.0).abs() < 1e-9);
        assert!(FairGradConfig {
            alpha: 0.0,
            on: On::Parameters
        }
        .validate()
        .unwrap_err()
        .to_string()
        .contains("weighting.alpha"));
    }
}
