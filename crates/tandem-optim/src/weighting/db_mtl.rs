//! DB-MTL, dual-balancing multi-task learning (Lin, Ye, Xu, Shi & Zhang, 2023, arXiv:2308.12029,
//! "Dual-Balancing for Multi-Task Learning").
//!
//! *Loss-scale balancing*: every task is trained on `log L_t`, whose gradient is
//! `g̃_t = g_t / (L_t + 10⁻⁸)`. *Gradient-magnitude balancing*: an exponential moving average of
//! those gradients is rescaled so that every task's has the largest norm:
//! ```text
//! k ← k + 1                                     (steps so far, from 1)
//! b_t ← g̃_t + (β / k^σ) (b_t − g̃_t)             (b_t = 0 before the first step)
//! α_t = max_s ‖b_s‖ / (‖b_t‖ + 10⁻⁸)
//! d = Σ_t α_t b_t
//! ```
//! (`β = beta`, `σ = beta_sigma`; with `σ = 0` the EMA keeps a share `β` of the past.) As in
//! LibMTL the buffer is not bias-corrected: the first step's update is `(1 − β)` times that of a
//! plain normalised sum.
//!
//! `b_t` mixes gradients of past parameters, so `d` is not a combination of this step's rows:
//! the method reads the rows and returns its own direction. The logged weights are the
//! balancing factors `α_t`.
//!
//! Shapes: `J` is `T × n`; the state `b` is `T × n` (with `n = |θ|` on the parameters, `B·d` on
//! the representation). Memory: the state holds `8·T·n` bytes in f64 (plus the step's rows, also
//! `8·T·n`), and a saved checkpoint stores it as JSON, about 20 bytes a value, so on parameters
//! it scales with the shared network times `T`. Cost: `T` backward passes (parameters) or `T`
//! head passes and one trunk pass (representation), `O(T n)` here. When the number of tasks or
//! `n` changes, the buffer and the step count restart (logged). LibMTL refuses `rep_grad`; here
//! `on = "representation"` runs the same rule on the representation's gradients (whose length
//! `B·d` must then stay the same from batch to batch, or the buffer restarts).
//!
//! A loss with `L_t + 10⁻⁸ ≤ 0` (or not finite) has no logarithm: the step fails with an error
//! naming the task's index (LibMTL would silently flip that task's gradient).
//!
//! Defaults `beta = 0.9`, `beta_sigma = 0` (LibMTL's `DB_beta`, `DB_beta_sigma`); `beta` in
//! `[0, 1]`, `beta_sigma ≥ 0`.
//!
//! ```toml
//! weighting = { kind = "db_mtl" }
//! weighting = { kind = "db_mtl", beta = 0.9, beta_sigma = 0.5 }
//! ```
use super::config::MethodConfig;
use super::linalg::dot;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::state;
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The name of DB-MTL's state in errors.
const STATE: &str = "weighting state (db_mtl)";

/// DB-MTL's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbMtlConfig {
    /// `β`: the share of the past kept by the gradient EMA, in `[0, 1]` (default 0.9, LibMTL's).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// `σ`: the EMA's share of the past decays as `β / k^σ`, `σ ≥ 0` (default 0, LibMTL's).
    #[serde(default)]
    pub beta_sigma: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_beta() -> f64 {
    0.9
}

impl Default for DbMtlConfig {
    fn default() -> Self {
        Self {
            beta: default_beta(),
            beta_sigma: 0.0,
            on: On::Parameters,
        }
    }
}

impl MethodConfig for DbMtlConfig {
    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(OptimError::config("weighting.beta", "must lie in [0, 1]"));
        }
        if !(self.beta_sigma.is_finite() && self.beta_sigma >= 0.0) {
            return Err(OptimError::config("weighting.beta_sigma", "must be ≥ 0"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(DbMtl::new(*self), self.on)))
    }
}

/// What DB-MTL remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DbMtlState {
    /// Steps taken, `k`.
    pub step: u64,
    /// The EMA of the log-loss gradients, `T` rows of `n` (empty before the first step).
    pub buffer: Vec<Vec<f64>>,
}

/// DB-MTL (see the module doc).
#[derive(Debug, Clone)]
pub struct DbMtl {
    config: DbMtlConfig,
    state: DbMtlState,
}

impl DbMtl {
    /// DB-MTL with `config`'s `β` and `σ`, an empty buffer.
    pub fn new(config: DbMtlConfig) -> Self {
        Self {
            config,
            state: DbMtlState::default(),
        }
    }
}

impl Aggregator for DbMtl {
    fn name(&self) -> &str {
        "db_mtl"
    }

    fn needs_jacobian(&self) -> bool {
        true
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let Some(rows) = input.jacobian else {
            return Err(OptimError::config(
                "weighting (db_mtl)",
                "needs the per-task gradients (rows)",
            ));
        };
        let t = rows.len();
        let n = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != n) || input.losses.len() != t {
            return Err(OptimError::config(
                "weighting (db_mtl)",
                "task gradients of different lengths, or one loss per task missing",
            ));
        }
        let mut inv = Vec::with_capacity(t);
        for (i, &l) in input.losses.iter().enumerate() {
            let shifted = l + 1e-8;
            if !(shifted.is_finite() && shifted > 0.0) {
                return Err(OptimError::config(
                    "weighting (db_mtl)",
                    format!("task {i}'s loss is {l}: log-loss gradients need losses > 0"),
                ));
            }
            inv.push(1.0 / shifted);
        }
        let fits = self.state.buffer.len() == t && self.state.buffer.iter().all(|b| b.len() == n);
        if !fits {
            if !self.state.buffer.is_empty() {
                tracing::warn!(
                    step = input.step,
                    tasks = t,
                    len = n,
                    "db_mtl: the number of tasks or the gradient length changed; the gradient \
                     EMA restarts"
                );
            }
            self.state = DbMtlState {
                step: 0,
                buffer: vec![vec![0.0; n]; t],
            };
        }
        self.state.step += 1;
        let c = self.config.beta / (self.state.step as f64).powf(self.config.beta_sigma);
        for ((b, r), s) in self.state.buffer.iter_mut().zip(rows).zip(&inv) {
            for (bk, gk) in b.iter_mut().zip(r) {
                let g = gk * s;
                *bk = g + c * (*bk - g);
            }
        }
        let norms: Vec<f64> = self.state.buffer.iter().map(|b| dot(b, b).sqrt()).collect();
        let max = norms.iter().copied().fold(0.0, f64::max);
        let alpha: Vec<f64> = norms.iter().map(|u| max / (u + 1e-8)).collect();
        let d = super::linalg::combine_rows(&self.state.buffer, &alpha);
        Ok(Aggregation {
            weights: alpha,
            direction: Some(d),
        })
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

    fn db(beta: f64, beta_sigma: f64) -> DbMtl {
        DbMtl::new(DbMtlConfig {
            beta,
            beta_sigma,
            on: On::Parameters,
        })
    }

    fn close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "{got:?} vs {want:?}");
        }
    }

    /// `g₁ = (2, 0)`, `L₁ = 2`, `g₂ = (0, 3)`, `L₂ = 1`, `β = 0.9`: step 1 gives
    /// `b = 0.1·(g/L) = ((0.1, 0), (0, 0.3))`, `α = (3, 1)`, `d = (0.3, 0.3)`; step 2 on the same
    /// rows gives `b₁ = (1, 0) + 0.9((0.1, 0) − (1, 0)) = (0.19, 0)`, `b₂ = (0, 0.57)`,
    /// `d = (0.57, 0.57)`.
    #[test]
    fn db_mtl_two_steps_by_hand() -> Result<()> {
        let rows = vec![vec![2.0, 0.0], vec![0.0, 3.0]];
        let mut agg = db(0.9, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut agg, &rows, &[2.0, 1.0], &mut rng)?;
        close(&a.weights, &[3.0, 1.0], 1e-6);
        close(&d, &[0.3, 0.3], 1e-7);
        let (_, d) = aggregate_rows(&mut agg, &rows, &[2.0, 1.0], &mut rng)?;
        close(&d, &[0.57, 0.57], 1e-7);
        Ok(())
    }

    /// `σ = 1`: the second step keeps `β/2` of the past: `b₁ = (1, 0) + 0.45((0.1, 0) − (1, 0))`.
    #[test]
    fn db_mtl_decaying_beta() -> Result<()> {
        let rows = vec![vec![2.0, 0.0], vec![0.0, 3.0]];
        let mut agg = db(0.9, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        aggregate_rows(&mut agg, &rows, &[2.0, 1.0], &mut rng)?;
        aggregate_rows(&mut agg, &rows, &[2.0, 1.0], &mut rng)?;
        let b0 = 1.0 + 0.45 * (0.1 - 1.0);
        close(&agg.state.buffer[0], &[b0, 0.0], 1e-8);
        assert_eq!(agg.state.step, 2);
        Ok(())
    }

    /// The update gives every task's EMA gradient the largest norm: on orthogonal rows every
    /// coordinate of `d` is the same, whatever the gradient and loss scales (up to the 10⁻⁸).
    #[test]
    fn db_mtl_balances_scales() -> Result<()> {
        let rows = vec![
            vec![1000.0, 0.0, 0.0],
            vec![0.0, 0.01, 0.0],
            vec![0.0, 0.0, 5.0],
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (_, d) = aggregate_rows(&mut db(0.5, 0.0), &rows, &[3.0, 0.2, 40.0], &mut rng)?;
        for v in &d {
            assert!((v - d[0]).abs() < 1e-6 * d[0].abs(), "{d:?}");
        }
        Ok(())
    }

    /// Through the whole training step (a linear model's parameters, losses read back from
    /// the loss tensors): the update of the first step by hand.
    #[test]
    fn db_mtl_through_the_weighting() -> Result<()> {
        let c: crate::WeightingConfig = serde_json::from_str(r#"{"kind": "db_mtl"}"#)
            .map_err(|e| OptimError::config("test", e.to_string()))?;
        let rows = vec![vec![2.0, 0.0], vec![0.0, 3.0]];
        let u = crate::weighting::rows::run_on_rows(&c, &rows, &[2.0, 1.0], 0)?;
        close(&u.grad, &[0.3, 0.3], 1e-7);
        close(&u.weights, &[3.0, 1.0], 1e-6);
        Ok(())
    }

    #[test]
    fn db_mtl_rejects_non_positive_losses() {
        let rows = vec![vec![1.0], vec![2.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(aggregate_rows(&mut db(0.9, 0.0), &rows, &[1.0, -1.0], &mut rng).is_err());
        assert!(aggregate_rows(&mut db(0.9, 0.0), &rows, &[f64::NAN, 1.0], &mut rng).is_err());
    }

    /// Save after two steps, load into a fresh instance: the third step is identical.
    #[test]
    fn db_mtl_state_round_trips() -> Result<()> {
        let steps = [
            vec![vec![1.0, -2.0, 0.5], vec![-1.0, 1.0, 1.0]],
            vec![vec![0.5, 1.0, -1.0], vec![-2.0, 0.1, 0.4]],
            vec![vec![0.3, 0.7, 1.1], vec![-1.0, 0.5, 0.0]],
        ];
        let losses = [0.7, 1.3];
        let mut a = db(0.9, 0.5);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for r in &steps[..2] {
            aggregate_rows(&mut a, r, &losses, &mut rng)?;
        }
        let mut b = db(0.9, 0.5);
        b.load_state(&a.state()?)?;
        assert_eq!(a.state, b.state);
        let ra = aggregate_rows(&mut a, &steps[2], &losses, &mut rng.clone())?;
        let rb = aggregate_rows(&mut b, &steps[2], &losses, &mut rng)?;
        assert_eq!(ra, rb);
        Ok(())
    }

    #[test]
    fn db_mtl_validate_names_keys() {
        let bad = [
            (
                DbMtlConfig {
                    beta: 1.5,
                    ..DbMtlConfig::default()
                },
                "weighting.beta",
            ),
            (
                DbMtlConfig {
                    beta: f64::NAN,
                    ..DbMtlConfig::default()
                },
                "weighting.beta",
            ),
            (
                DbMtlConfig {
                    beta_sigma: -1.0,
                    ..DbMtlConfig::default()
                },
                "weighting.beta_sigma",
            ),
        ];
        for (c, key) in bad {
            let err = c.validate();
            assert!(
                matches!(&err, Err(OptimError::Config { field, .. }) if field == key),
                "{err:?}"
            );
        }
        assert!(DbMtlConfig::default().validate().is_ok());
    }
}
