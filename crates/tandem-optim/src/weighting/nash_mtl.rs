//! Nash-MTL: multi-task learning as a bargaining game (Navon et al., ICML 2022, "Multi-Task
//! Learning as a Bargaining Game"; TorchJD's `NashMTL`, LibMTL's `Nash_MTL`).
//!
//! The update `d = Jᵀα` is the Nash bargaining solution: every task's utility `g_t · d` is
//! balanced against its weight,
//! ```text
//! α_t (G α)_t = 1  for every t,   α > 0,          then   α ← α · min(1, max_norm / ‖Jᵀα‖)
//! ```
//! The paper and TorchJD approach this with a sequence of convex programs (cvxpy/ECOS, at most
//! `optim_niter = 20` of them); tandem solves the equations themselves with Newton's method on
//! a strictly convex potential ([`balance`] with `p = 1`, on `G / ‖G‖_F`, then rescaled), which
//! reaches the same point to 10⁻¹² where TorchJD's sequence converges. Where no solution exists
//! (a singular `G` with a positive null direction) or Newton stops early, the previous step's
//! `α` is kept (all ones at the first step), as TorchJD does when its solver fails, and a
//! warning is logged. Weights are recomputed every `update_weights_every` steps and reused in
//! between.
//!
//! Defaults (TorchJD's and LibMTL's): `max_norm = 1.0` (0 turns the clipping off),
//! `update_weights_every = 1`. Cost: `T` backward passes (parameters) or `T` head passes and one
//! trunk pass (representation), a few `T × T` Cholesky solves. State: the last `α` and the step
//! counter, saved and restored exactly.
//!
//! ```toml
//! weighting = { kind = "nash_mtl" }
//! weighting = { kind = "nash_mtl", max_norm = 0.0, update_weights_every = 10 }
//! ```
use super::config::MethodConfig;
use super::linalg::{balance, Gramian, Solve};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::{state, OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

const STATE: &str = "weighting state (nash_mtl)";

/// Nash-MTL (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct NashMtl {
    max_norm: f64,
    every: u64,
    state: NashState,
}

/// What Nash-MTL remembers: the last weights before clipping and the calls so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct NashState {
    alpha: Vec<f64>,
    calls: u64,
}

impl NashMtl {
    /// Nash-MTL clipping the update's norm to `max_norm` (0: no clipping), solving every
    /// `update_weights_every` steps.
    pub fn new(max_norm: f64, update_weights_every: u64) -> Self {
        Self {
            max_norm,
            every: update_weights_every.max(1),
            state: NashState::default(),
        }
    }

    fn solve(&mut self, g: &Gramian) -> Vec<f64> {
        let t = g.len();
        let previous = if self.state.alpha.len() == t {
            self.state.alpha.clone()
        } else {
            vec![1.0; t]
        };
        let fro = (0..t * t)
            .map(|k| g.get(k / t, k % t).powi(2))
            .sum::<f64>()
            .sqrt();
        if !(fro > 0.0 && fro.is_finite()) {
            return previous;
        }
        let scaled =
            Gramian::from_row_major(t, (0..t * t).map(|k| g.get(k / t, k % t) / fro).collect());
        // α = β / √‖G‖ solves α (Gα) = 1 when β solves β (Ĝβ) = 1.
        let start: Vec<f64> = previous.iter().map(|a| a * fro.sqrt()).collect();
        match balance(&scaled, 1.0, &start) {
            (beta, Solve::Converged) => beta.iter().map(|b| b / fro.sqrt()).collect(),
            (_, Solve::MaxIterations) => {
                tracing::warn!(
                    "nash_mtl: no bargaining solution found; keeping the previous weights"
                );
                previous
            }
        }
    }
}

impl Default for NashMtl {
    fn default() -> Self {
        Self::new(1.0, 1)
    }
}

impl Aggregator for NashMtl {
    fn name(&self) -> &str {
        "nash_mtl"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let alpha =
            if self.state.calls.is_multiple_of(self.every) || self.state.alpha.len() != g.len() {
                self.solve(g)
            } else {
                self.state.alpha.clone()
            };
        self.state.calls += 1;
        self.state.alpha = alpha.clone();
        let norm = g.quad(&alpha).max(0.0).sqrt();
        let w = if self.max_norm > 0.0 && norm > self.max_norm {
            alpha.iter().map(|a| a / norm * self.max_norm).collect()
        } else {
            alpha
        };
        Ok(Aggregation::weights(w))
    }

    fn state(&self) -> Result<serde_json::Value> {
        state::to_json(STATE, &self.state)
    }

    fn load_state(&mut self, value: &serde_json::Value) -> Result<()> {
        self.state = state::from_json(STATE, value)?;
        Ok(())
    }
}

/// Nash-MTL's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NashMtlConfig {
    /// The update's norm is clipped to this (default 1.0; 0 turns clipping off).
    #[serde(default = "default_max_norm")]
    pub max_norm: f64,
    /// Solve for new weights every this many steps (default 1).
    #[serde(default = "default_every")]
    pub update_weights_every: u64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_max_norm() -> f64 {
    1.0
}
fn default_every() -> u64 {
    1
}

impl Default for NashMtlConfig {
    fn default() -> Self {
        Self {
            max_norm: default_max_norm(),
            update_weights_every: default_every(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for NashMtlConfig {
    fn validate(&self) -> Result<()> {
        if !(self.max_norm.is_finite() && self.max_norm >= 0.0) {
            return Err(OptimError::config("weighting.max_norm", "must be ≥ 0"));
        }
        if self.update_weights_every == 0 {
            return Err(OptimError::config(
                "weighting.update_weights_every",
                "must be ≥ 1",
            ));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            NashMtl::new(self.max_norm, self.update_weights_every),
            self.on,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use rand::SeedableRng;

    #[test]
    fn bargaining_solution_by_hand_and_clipping() -> Result<()> {
        // Orthogonal g1 = (2, 0), g2 = (0, 1): α_t ‖g_t‖² α_t = 1, α = (½, 1), d = (1, 1),
        // ‖d‖ = √2 > 1: clipped to d = (1, 1)/√2.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let rows = [vec![2.0, 0.0], vec![0.0, 1.0]];
        let (a, d) = aggregate_rows(&mut NashMtl::new(0.0, 1), &rows, &[1.0; 2], &mut rng)?;
        assert!((a.weights[0] - 0.5).abs() < 1e-12 && (a.weights[1] - 1.0).abs() < 1e-12);
        assert!((d[0] - 1.0).abs() < 1e-12);
        let (_, d) = aggregate_rows(&mut NashMtl::default(), &rows, &[1.0; 2], &mut rng)?;
        let s = 0.5f64.sqrt();
        assert!((d[0] - s).abs() < 1e-12 && (d[1] - s).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn state_round_trip_reuses_weights() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut a = NashMtl::new(1.0, 2);
        let r1 = [vec![2.0, 0.0], vec![0.0, 1.0]];
        let r2 = [vec![1.0, 1.0], vec![-1.0, 3.0]];
        aggregate_rows(&mut a, &r1, &[1.0; 2], &mut rng)?;
        let mut b = NashMtl::new(1.0, 2);
        b.load_state(&a.state()?)?;
        // Step 2 reuses step 1's α (update_weights_every = 2), in both.
        let (wa, _) = aggregate_rows(&mut a, &r2, &[1.0; 2], &mut rng)?;
        let (wb, _) = aggregate_rows(&mut b, &r2, &[1.0; 2], &mut rng)?;
        assert_eq!(wa, wb);
        let (w3a, _) = aggregate_rows(&mut a, &r2, &[1.0; 2], &mut rng)?;
        let (w3b, _) = aggregate_rows(&mut b, &r2, &[1.0; 2], &mut rng)?;
        assert_eq!(w3a, w3b);
        assert_ne!(wa, w3a);
        Ok(())
    }
}
