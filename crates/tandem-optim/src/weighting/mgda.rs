//! MGDA: the multiple-gradient descent algorithm (Désidéri 2012, "Multiple-gradient descent
//! algorithm (MGDA) for multiobjective optimization"; Sener & Koltun, NeurIPS 2018,
//! "Multi-Task Learning as Multi-Objective Optimization").
//!
//! The update is the min-norm point of the convex hull of the task gradients:
//! ```text
//! w* = argmin_{w ≥ 0, Σ w = 1} ‖Σ_t w_t g_t‖² = argmin wᵀ G w,      d = Jᵀ w*
//! ```
//! `d` is a common descent direction of every task (`d · g_t ≥ ‖d‖²` for all `t`) or zero at a
//! Pareto-stationary point. By default the QP is solved exactly (see
//! [`linalg::min_norm_simplex`](super::linalg::min_norm_simplex));
//! `solver = "frank_wolfe"` runs Sener & Koltun's Frank–Wolfe iteration as TorchJD does
//! (`epsilon = 1e-3`, `max_iters = 100`, which stops before the optimum on many matrices).
//! With `on = "representation"` this is MGDA-UB, the paper's upper bound on the
//! representation's gradients. Cost: `T` backward passes (parameters) or `T` head passes and one
//! trunk pass (representation); the solve is `O(2^T T³)` for `T ≤ 12`, negligible. Stateless.
//!
//! ```toml
//! weighting = { kind = "mgda" }
//! weighting = { kind = "mgda", on = "representation", solver = "frank_wolfe", epsilon = 1e-3 }
//! ```
use super::config::MethodConfig;
use super::linalg::{frank_wolfe, min_norm_simplex, Solve};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// How MGDA solves its QP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MgdaSolver {
    /// The exact min-norm point (default).
    #[default]
    Exact,
    /// Frank–Wolfe from `1/T`, stopping when the step is below `epsilon` or after `max_iters`.
    FrankWolfe,
}

/// MGDA's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MgdaConfig {
    /// The QP solver (default `exact`).
    #[serde(default)]
    pub solver: MgdaSolver,
    /// Frank–Wolfe's stopping step (default 10⁻³, TorchJD's).
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Frank–Wolfe's iteration limit (default 100, TorchJD's).
    #[serde(default = "default_max_iters")]
    pub max_iters: usize,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_epsilon() -> f64 {
    1e-3
}
fn default_max_iters() -> usize {
    100
}

impl Default for MgdaConfig {
    fn default() -> Self {
        Self {
            solver: MgdaSolver::Exact,
            epsilon: default_epsilon(),
            max_iters: default_max_iters(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for MgdaConfig {
    fn validate(&self) -> Result<()> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(OptimError::config("weighting.epsilon", "must be > 0"));
        }
        if self.max_iters == 0 {
            return Err(OptimError::config("weighting.max_iters", "must be ≥ 1"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(Mgda::new(*self), self.on)))
    }
}

/// MGDA (see the module doc).
#[derive(Debug, Clone)]
pub struct Mgda {
    config: MgdaConfig,
}

impl Mgda {
    /// MGDA with `config`'s solver.
    pub fn new(config: MgdaConfig) -> Self {
        Self { config }
    }
}

impl Aggregator for Mgda {
    fn name(&self) -> &str {
        "mgda"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let (w, solve) = match self.config.solver {
            MgdaSolver::Exact => min_norm_simplex(input.gramian),
            MgdaSolver::FrankWolfe => {
                frank_wolfe(input.gramian, self.config.epsilon, self.config.max_iters)
            }
        };
        if solve == Solve::MaxIterations && self.config.solver == MgdaSolver::Exact {
            tracing::warn!(
                step = input.step,
                "mgda: the min-norm solver stopped at its iteration limit; using its last iterate"
            );
        }
        Ok(Aggregation::weights(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use rand::SeedableRng;

    /// Two gradients at an obtuse angle: `g₁ = (1, 0)`, `g₂ = (−½, 1)`. The min-norm point of
    /// the segment is `w = (a, 1−a)` with `a = (g₂·g₂ − g₁·g₂)/‖g₁ − g₂‖² = (1.25 + 0.5)/3.25`.
    #[test]
    fn two_rows_by_hand() -> Result<()> {
        let rows = vec![vec![1.0, 0.0], vec![-0.5, 1.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(
            &mut Mgda::new(MgdaConfig::default()),
            &rows,
            &[1.0, 1.0],
            &mut rng,
        )?;
        let want = 1.75 / 3.25;
        assert!((a.weights[0] - want).abs() < 1e-12, "{:?}", a.weights);
        // d is orthogonal to g₁ − g₂
        assert!((d[0] * 1.5 - d[1]).abs() < 1e-12);
        Ok(())
    }
}
