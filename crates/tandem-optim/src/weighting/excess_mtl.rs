//! ExcessMTL (He, Zhou, Zhao & Cheng, ICML 2024, "Robust Multi-Task Learning with Excess
//! Risks").
//!
//! Tasks are weighted by their *excess risk* (distance to their own optimum) rather than their
//! loss, so that a task with a high but irreducible loss (label noise) does not take over. The
//! excess risk of task `t` is estimated by a second-order expansion with an AdaGrad-style
//! diagonal curvature, and the weights follow an exponentiated-gradient (mirror ascent) rule:
//! ```text
//! S_t ← S_t + g_t ⊙ g_t                          (accumulated squared gradients, n each)
//! e_t = Σ_k g_tk² / √(S_tk + 10⁻⁷)               (excess-risk estimate)
//! first step:  e⁰ = e, λ = 1 (unchanged)
//! later:       λ_t ← λ_t · exp(η e_t / e⁰_t),   λ ← T λ / Σ_s λ_s
//! d = Σ_t λ_t g_t
//! ```
//! with `η = robust_step_size`. The multiplicative step is computed in log space (shifting by
//! the largest exponent), the same weights without overflow. A task whose first-step estimate
//! `e⁰_t` was 0 (a zero gradient) has no reference: its ratio is taken as 0 (its weight only
//! moves through the normalisation), logged.
//!
//! Shapes: `J` is `T × n` (the rows are needed: `S` is per coordinate); the state is `S`
//! (`T × n`), `λ` (`T`) and `e⁰` (`T`). Memory: `S` holds `8·T·n` bytes in f64 (plus the step's
//! rows), and a saved checkpoint stores it as JSON, about 20 bytes a value. Cost: `T` backward
//! passes (parameters) or `T` head passes and one trunk pass (representation), `O(T n)` here.
//! When the number of tasks or `n` changes, the whole state restarts (logged).
//!
//! Differences from LibMTL (whose rule this follows, including its "first step" reference
//! `e⁰`, which LibMTL names `first_epoch` but sets on the first step):
//! - LibMTL backpropagates `Σ_t λ_t L_t` through the whole model, so task heads receive
//!   `λ_t ∇L_t`; here, as for every gradient method, heads receive their plain gradient and
//!   only the shared part is weighted.
//! - With `on = "representation"`, LibMTL sums the representation's gradient over the batch
//!   (`T × d` rows); here each of the `B·d` coordinates is its own (the rows are the flattened
//!   representation gradients), so `S` has `B·d` entries and `B` must stay fixed.
//!
//! Default `robust_step_size = 10⁻²` (LibMTL's; must be ≥ 0 and finite).
//!
//! ```toml
//! weighting = { kind = "excess_mtl" }
//! weighting = { kind = "excess_mtl", robust_step_size = 0.1 }
//! ```
use super::config::MethodConfig;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::state;
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The name of ExcessMTL's state in errors.
const STATE: &str = "weighting state (excess_mtl)";

/// ExcessMTL's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcessMtlConfig {
    /// `η`: the step of the weights' exponentiated update, ≥ 0 (default 10⁻², LibMTL's).
    #[serde(default = "default_step")]
    pub robust_step_size: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_step() -> f64 {
    1e-2
}

impl Default for ExcessMtlConfig {
    fn default() -> Self {
        Self {
            robust_step_size: default_step(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for ExcessMtlConfig {
    fn validate(&self) -> Result<()> {
        if !(self.robust_step_size.is_finite() && self.robust_step_size >= 0.0) {
            return Err(OptimError::config(
                "weighting.robust_step_size",
                "must be a number ≥ 0",
            ));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            ExcessMtl::new(*self),
            self.on,
        )))
    }
}

/// What ExcessMTL remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExcessMtlState {
    /// `S`: accumulated squared gradients, `T` rows of `n` (empty before the first step).
    pub grad_sq_sum: Vec<Vec<f64>>,
    /// `λ`: the task weights (sum `T`).
    pub weights: Vec<f64>,
    /// `e⁰`: the first step's excess-risk estimates (empty before the first step).
    pub initial: Vec<f64>,
}

/// ExcessMTL (see the module doc).
#[derive(Debug, Clone)]
pub struct ExcessMtl {
    config: ExcessMtlConfig,
    state: ExcessMtlState,
}

impl ExcessMtl {
    /// ExcessMTL with `config`'s step, weights 1.
    pub fn new(config: ExcessMtlConfig) -> Self {
        Self {
            config,
            state: ExcessMtlState::default(),
        }
    }
}

impl Aggregator for ExcessMtl {
    fn name(&self) -> &str {
        "excess_mtl"
    }

    fn needs_jacobian(&self) -> bool {
        true
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let Some(rows) = input.jacobian else {
            return Err(OptimError::config(
                "weighting (excess_mtl)",
                "needs the per-task gradients (rows)",
            ));
        };
        let t = rows.len();
        let n = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != n) {
            return Err(OptimError::config(
                "weighting (excess_mtl)",
                "task gradients of different lengths",
            ));
        }
        let st = &mut self.state;
        let fits = st.grad_sq_sum.len() == t
            && st.grad_sq_sum.iter().all(|s| s.len() == n)
            && st.weights.len() == t
            && (st.initial.is_empty() || st.initial.len() == t);
        if !fits {
            if !st.grad_sq_sum.is_empty() {
                tracing::warn!(
                    step = input.step,
                    tasks = t,
                    len = n,
                    "excess_mtl: the number of tasks or the gradient length changed; its state \
                     restarts"
                );
            }
            *st = ExcessMtlState {
                grad_sq_sum: vec![vec![0.0; n]; t],
                weights: vec![1.0; t],
                initial: Vec::new(),
            };
        }
        let mut excess = Vec::with_capacity(t);
        for (s, r) in st.grad_sq_sum.iter_mut().zip(rows) {
            let mut e = 0.0;
            for (sk, gk) in s.iter_mut().zip(r) {
                *sk += gk * gk;
                e += gk * gk / (*sk + 1e-7).sqrt();
            }
            excess.push(e);
        }
        if st.initial.is_empty() {
            st.initial = excess;
        } else {
            let eta = self.config.robust_step_size;
            let mut logs = Vec::with_capacity(t);
            for ((w, e), e0) in st.weights.iter().zip(&excess).zip(&st.initial) {
                let ratio = if *e0 > 0.0 {
                    e / e0
                } else {
                    tracing::warn!(
                        step = input.step,
                        "excess_mtl: a task's first-step excess estimate is 0; its ratio is 0"
                    );
                    0.0
                };
                logs.push(w.ln() + eta * ratio);
            }
            let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
            let sum: f64 = exps.iter().sum();
            if sum.is_finite() && sum > 0.0 {
                st.weights = exps.iter().map(|e| e / sum * t as f64).collect();
            } else {
                tracing::warn!(
                    step = input.step,
                    "excess_mtl: the weight update is not finite; weights kept"
                );
            }
        }
        Ok(Aggregation::weights(st.weights.clone()))
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

    fn excess(eta: f64) -> ExcessMtl {
        ExcessMtl::new(ExcessMtlConfig {
            robust_step_size: eta,
            on: On::Parameters,
        })
    }

    /// One coordinate each. Step 1, `g = (2, 1)`: `S = (4, 1)`, `e⁰ = (4/2, 1/1) = (2, 1)`,
    /// weights stay 1. Step 2, `g = (2, 2)`: `S = (8, 5)`, `e = (4/√8, 4/√5)`,
    /// ratios `r = (√2/2, 4/√5)`, `λ_t = 2 e^{η r_t} / Σ_s e^{η r_s}` with `η = 1`.
    #[test]
    fn excess_mtl_two_steps_by_hand() -> Result<()> {
        let mut agg = excess(1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut agg, &[vec![2.0], vec![1.0]], &[1.0; 2], &mut rng)?;
        assert_eq!(a.weights, vec![1.0, 1.0]);
        assert_eq!(d, vec![3.0]);
        let (a, _) = aggregate_rows(&mut agg, &[vec![2.0], vec![2.0]], &[1.0; 2], &mut rng)?;
        let r = [2f64.sqrt() / 2.0, 4.0 / 5f64.sqrt()];
        let z = r[0].exp() + r[1].exp();
        let want = [2.0 * r[0].exp() / z, 2.0 * r[1].exp() / z];
        for (g, w) in a.weights.iter().zip(want) {
            assert!((g - w).abs() < 1e-7, "{:?} vs {want:?}", a.weights);
        }
        assert!((agg.state.initial[0] - 2.0).abs() < 1e-7);
        Ok(())
    }

    /// The weights always sum to `T`, and a task whose excess estimate grows relative to its
    /// start gains weight.
    #[test]
    fn excess_mtl_favours_the_task_further_from_its_optimum() -> Result<()> {
        let mut agg = excess(0.5);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        aggregate_rows(
            &mut agg,
            &[vec![1.0, 1.0], vec![1.0, 1.0], vec![1.0, 0.0]],
            &[1.0; 3],
            &mut rng,
        )?;
        for _ in 0..5 {
            let rows = [vec![3.0, 1.0], vec![0.1, 0.1], vec![0.5, 0.0]];
            let (a, _) = aggregate_rows(&mut agg, &rows, &[1.0; 3], &mut rng)?;
            assert!((a.weights.iter().sum::<f64>() - 3.0).abs() < 1e-12);
            assert!(
                a.weights[0] > a.weights[2] && a.weights[2] > a.weights[1],
                "{:?}",
                a.weights
            );
        }
        Ok(())
    }

    /// Save after two steps, load into a fresh instance: the third step is identical.
    #[test]
    fn excess_mtl_state_round_trips() -> Result<()> {
        let steps = [
            vec![vec![1.0, -2.0, 0.5], vec![-1.0, 1.0, 1.0]],
            vec![vec![0.5, 1.0, -1.0], vec![-2.0, 0.1, 0.4]],
            vec![vec![0.3, 0.7, 1.1], vec![-1.0, 0.5, 0.0]],
        ];
        let mut a = excess(0.1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for r in &steps[..2] {
            aggregate_rows(&mut a, r, &[1.0; 2], &mut rng)?;
        }
        let mut b = excess(0.1);
        b.load_state(&a.state()?)?;
        assert_eq!(a.state, b.state);
        let ra = aggregate_rows(&mut a, &steps[2], &[1.0; 2], &mut rng.clone())?;
        let rb = aggregate_rows(&mut b, &steps[2], &[1.0; 2], &mut rng)?;
        assert_eq!(ra, rb);
        Ok(())
    }

    #[test]
    fn excess_mtl_validate_names_step() {
        for robust_step_size in [-1e-3, f64::INFINITY, f64::NAN] {
            let err = ExcessMtlConfig {
                robust_step_size,
                on: On::Parameters,
            }
            .validate();
            assert!(
                matches!(&err, Err(OptimError::Config { field, .. }) if field == "weighting.robust_step_size"),
                "{err:?}"
            );
        }
        assert!(ExcessMtlConfig::default().validate().is_ok());
    }
}
