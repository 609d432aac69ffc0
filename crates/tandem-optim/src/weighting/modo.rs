//! MoDo, multi-objective gradient with double sampling (Chen, Fernando, Ying & Chen,
//! NeurIPS 2023, "Three-Way Trade-Off in Multi-Objective Learning: Optimization, Generalization
//! and Conflict-Avoidance").
//!
//! MoDo moves the task weights `λ` by one projected gradient step on MGDA's objective
//! `½‖Jᵀλ‖² + ½ρ‖λ‖²` per iteration, then updates the model along the weighted gradient:
//! ```text
//! λ ← Π_Δ(λ − γ (G λ + ρ λ))          (λ = 1/T before the first step; Π_Δ: projection onto
//!                                      the simplex, see sdmgrad::project_simplex)
//! d = Σ_t λ_t g_t
//! ```
//! The update is a combination of the rows and depends on the Gramian only: no rows are kept.
//! The logged weights are the new `λ`.
//!
//! ## Single-batch variant
//! The paper and LibMTL draw **three** independent batches per step: `G λ` is estimated as
//! `J_ξ₁ (J_ξ₂ᵀ λ)` (double sampling makes it unbiased) and the update uses `J_ξ₃`; LibMTL also
//! divides the heads' gradients by 3 since all three batches reached them. A [`Weighting`] sees
//! one batch, so here all three are the same: `G = J Jᵀ` (biased for stochastic gradients), `d`
//! uses the same rows, and the heads receive their plain gradient (nothing to divide). The
//! paper's analysis of the stochastic case rests on the independent samples and does not carry
//! over to this single-batch MoDo.
//!
//! Shapes: `G` is `T × T`; the state is `λ` (`T`). Cost: `T` backward passes (parameters) or `T`
//! head passes and one trunk pass (representation), `O(T²)` here. When the number of tasks
//! changes, `λ` restarts at `1/T` (logged). LibMTL refuses `rep_grad`; here
//! `on = "representation"` runs the same rule on the representation's gradients.
//!
//! Defaults (LibMTL's): `gamma = 10⁻³` (the step of `λ`, ≥ 0), `rho = 0.1` (≥ 0).
//!
//! ```toml
//! weighting = { kind = "modo" }
//! weighting = { kind = "modo", gamma = 0.01, rho = 0.1 }
//! ```
use super::config::MethodConfig;
use super::sdmgrad::project_simplex;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::state;
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The name of MoDo's state in errors.
const STATE: &str = "weighting state (modo)";

/// MoDo's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoDoConfig {
    /// `γ`: the step of `λ`, ≥ 0 (default 10⁻³, LibMTL's `MoDo_gamma`).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// `ρ`: ℓ₂ regularisation of `λ`, ≥ 0 (default 0.1, LibMTL's `MoDo_rho`).
    #[serde(default = "default_rho")]
    pub rho: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_gamma() -> f64 {
    1e-3
}
fn default_rho() -> f64 {
    0.1
}

impl Default for MoDoConfig {
    fn default() -> Self {
        Self {
            gamma: default_gamma(),
            rho: default_rho(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for MoDoConfig {
    fn validate(&self) -> Result<()> {
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(OptimError::config(
                "weighting.gamma",
                "must be a number ≥ 0",
            ));
        }
        if !(self.rho.is_finite() && self.rho >= 0.0) {
            return Err(OptimError::config("weighting.rho", "must be a number ≥ 0"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(MoDo::new(*self), self.on)))
    }
}

/// What MoDo remembers: the weights `λ`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoDoState {
    /// `λ` (`T`; empty before the first step).
    pub lambda: Vec<f64>,
}

/// MoDo (see the module doc).
#[derive(Debug, Clone)]
pub struct MoDo {
    config: MoDoConfig,
    state: MoDoState,
}

impl MoDo {
    /// MoDo with `config`'s `γ` and `ρ`, `λ = 1/T`.
    pub fn new(config: MoDoConfig) -> Self {
        Self {
            config,
            state: MoDoState::default(),
        }
    }
}

impl Aggregator for MoDo {
    fn name(&self) -> &str {
        "modo"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let t = g.len();
        if t == 0 {
            return Ok(Aggregation::weights(Vec::new()));
        }
        if self.state.lambda.len() != t {
            if !self.state.lambda.is_empty() {
                tracing::warn!(
                    step = input.step,
                    tasks = t,
                    "modo: the number of tasks changed; λ restarts at 1/T"
                );
            }
            self.state.lambda = vec![1.0 / t as f64; t];
        }
        let MoDoConfig { gamma, rho, .. } = self.config;
        let lambda = &self.state.lambda;
        let stepped: Vec<f64> = g
            .mul(lambda)
            .iter()
            .zip(lambda)
            .map(|(gl, l)| l - gamma * (gl + rho * l))
            .collect();
        match project_simplex(&stepped) {
            Some(p) => self.state.lambda = p,
            None => tracing::warn!(step = input.step, "modo: the λ step is not finite; λ kept"),
        }
        Ok(Aggregation::weights(self.state.lambda.clone()))
    }

    fn state(&self) -> Result<serde_json::Value> {
        state::to_json(STATE, &self.state)
    }

    fn load_state(&mut self, value: &serde_json::Value) -> Result<()> {
        self.state = state::from_json(STATE, value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use rand::SeedableRng;

    fn modo(gamma: f64, rho: f64) -> MoDo {
        MoDo::new(MoDoConfig {
            gamma,
            rho,
            on: On::Parameters,
        })
    }

    fn close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "{got:?} vs {want:?}");
        }
    }

    /// `G = diag(1, 4)`, `λ = (½, ½)`, `γ = ρ = 0.1`: `Gλ + ρλ = (0.55, 2.05)`,
    /// `λ − γ(…) = (0.445, 0.295)` (sum 0.74), projected: `+0.13` each → `(0.575, 0.425)`.
    #[test]
    fn modo_one_step_by_hand() -> Result<()> {
        let rows = vec![vec![1.0, 0.0], vec![0.0, 2.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut modo(0.1, 0.1), &rows, &[1.0; 2], &mut rng)?;
        close(&a.weights, &[0.575, 0.425], 1e-12);
        close(&d, &[0.575, 0.85], 1e-12);
        Ok(())
    }

    /// LibMTL's update (PyTorch, float64, its own simplex projection, the same batch for all
    /// three) over three steps on three tasks; the expected values are from that script.
    #[test]
    fn modo_matches_libmtl_update() -> Result<()> {
        let rows = vec![
            vec![1.0, -2.0, 0.5],
            vec![-1.0, 1.0, 1.0],
            vec![0.3, 0.2, -1.5],
        ];
        let want = [
            [0.2781111111111111, 0.37811111111111106, 0.34377777777777774],
            [0.25935137037037037, 0.39170970370370367, 0.3489389259259259],
            [0.2527676620123457, 0.39552980645679015, 0.35170253153086417],
        ];
        let want_d = [
            -0.03725138498518521,
            -0.03966501126172839,
            -0.005640159833333325,
        ];
        let mut agg = modo(0.1, 0.1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut d = Vec::new();
        for w in want {
            let (a, dd) = aggregate_rows(&mut agg, &rows, &[1.0; 3], &mut rng)?;
            close(&a.weights, &w, 1e-12);
            d = dd;
        }
        close(&d, &want_d, 1e-12);
        Ok(())
    }

    /// Save after two steps, load into a fresh instance: the third step is identical.
    #[test]
    fn modo_state_round_trips() -> Result<()> {
        let steps = [
            vec![vec![1.0, -2.0, 0.5], vec![-1.0, 1.0, 1.0]],
            vec![vec![0.5, 1.0, -1.0], vec![-2.0, 0.1, 0.4]],
            vec![vec![0.3, 0.7, 1.1], vec![-1.0, 0.5, 0.0]],
        ];
        let mut a = modo(0.05, 0.1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for r in &steps[..2] {
            aggregate_rows(&mut a, r, &[1.0; 2], &mut rng)?;
        }
        let mut b = modo(0.05, 0.1);
        b.load_state(&a.state()?)?;
        assert_eq!(a.state, b.state);
        let ra = aggregate_rows(&mut a, &steps[2], &[1.0; 2], &mut rng.clone())?;
        let rb = aggregate_rows(&mut b, &steps[2], &[1.0; 2], &mut rng)?;
        assert_eq!(ra, rb);
        Ok(())
    }

    #[test]
    fn modo_validate_names_keys() {
        let d = MoDoConfig::default();
        for (c, key) in [
            (MoDoConfig { gamma: -1e-3, ..d }, "weighting.gamma"),
            (
                MoDoConfig {
                    gamma: f64::INFINITY,
                    ..d
                },
                "weighting.gamma",
            ),
            (MoDoConfig { rho: -0.1, ..d }, "weighting.rho"),
        ] {
            let err = c.validate();
            assert!(
                matches!(&err, Err(OptimError::Config { field, .. }) if field == key),
                "{err:?}"
            );
        }
        assert!(d.validate().is_ok());
    }
}
