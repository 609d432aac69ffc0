//! MoCo, multi-objective gradient correction (Fernando, Shen, Liu, Chaudhury, Murugesan & Chen,
//! ICLR 2023, "Mitigating Gradient Bias in Multi-objective Learning: A Provably Convergent
//! Approach").
//!
//! MGDA's weights computed from stochastic gradients are biased; MoCo tracks each task's
//! gradient with a moving average `y_t` and moves the weights `λ` by one projected-gradient
//! (here softmax, as in LibMTL) step per iteration instead of solving MGDA's QP:
//! ```text
//! k ← k + 1                                             (steps so far, from 1)
//! ĝ_t = L_t · g_t / (‖g_t‖ + 10⁻⁸)                      (LibMTL's loss-scaled unit gradient)
//! y_t ← y_t − (β / k^{β_σ}) (y_t − ĝ_t)                 (y = 0 before the first step)
//! λ ← softmax(λ − (γ / k^{γ_σ}) (Y Yᵀ + ρ I) λ)          (λ = 1/T before the first step)
//! d = Yᵀ λ = Σ_t λ_t y_t
//! ```
//! (`Y` is `T × n` with rows `y_t`.) `y_t` mixes gradients of past parameters, so `d` is not a
//! combination of this step's rows: the method reads the rows and returns its own direction;
//! the logged weights are `λ`.
//!
//! Shapes: `J` and `Y` are `T × n`, `λ` is `T`. Memory: `Y` holds `8·T·n` bytes in f64 (plus
//! the step's rows), and a saved checkpoint stores it as JSON, about 20 bytes a value. Cost: `T`
//! backward passes (parameters) or `T` head passes and one trunk pass (representation), `O(T² n)`
//! here. When the number of tasks or `n` changes, the state restarts (logged). LibMTL refuses
//! `rep_grad`; here `on = "representation"` runs the same rule on the representation's
//! gradients (`B` must stay fixed, or the state restarts).
//!
//! Defaults (LibMTL's): `beta = 0.5`, `beta_sigma = 0.5`, `gamma = 0.1`, `gamma_sigma = 0.5`,
//! `rho = 0`. `beta` must lie in `[0, 1]`; `beta_sigma`, `gamma`, `gamma_sigma`, `rho` must be
//! ≥ 0 and finite.
//!
//! ```toml
//! weighting = { kind = "moco" }
//! weighting = { kind = "moco", beta = 0.9, gamma = 0.05, rho = 0.1 }
//! ```
use super::config::MethodConfig;
use super::linalg::{combine_rows, dot, Gramian};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::state;
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The name of MoCo's state in errors.
const STATE: &str = "weighting state (moco)";

/// MoCo's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoCoConfig {
    /// `β`: the tracking rate of `y`, in `[0, 1]` (default 0.5, LibMTL's).
    #[serde(default = "half")]
    pub beta: f64,
    /// `β_σ`: `β` decays as `β / k^{β_σ}`, ≥ 0 (default 0.5, LibMTL's).
    #[serde(default = "half")]
    pub beta_sigma: f64,
    /// `γ`: the step of `λ`, ≥ 0 (default 0.1, LibMTL's).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// `γ_σ`: `γ` decays as `γ / k^{γ_σ}`, ≥ 0 (default 0.5, LibMTL's).
    #[serde(default = "half")]
    pub gamma_sigma: f64,
    /// `ρ`: ℓ₂ regularisation of `λ`'s update, ≥ 0 (default 0, LibMTL's).
    #[serde(default)]
    pub rho: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn half() -> f64 {
    0.5
}
fn default_gamma() -> f64 {
    0.1
}

impl Default for MoCoConfig {
    fn default() -> Self {
        Self {
            beta: half(),
            beta_sigma: half(),
            gamma: default_gamma(),
            gamma_sigma: half(),
            rho: 0.0,
            on: On::Parameters,
        }
    }
}

impl MethodConfig for MoCoConfig {
    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(OptimError::config("weighting.beta", "must lie in [0, 1]"));
        }
        for (key, v) in [
            ("weighting.beta_sigma", self.beta_sigma),
            ("weighting.gamma", self.gamma),
            ("weighting.gamma_sigma", self.gamma_sigma),
            ("weighting.rho", self.rho),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(OptimError::config(key, "must be a number ≥ 0"));
            }
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(MoCo::new(*self), self.on)))
    }
}

/// What MoCo remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoCoState {
    /// Steps taken, `k`.
    pub step: u64,
    /// The tracked gradients `y`, `T` rows of `n` (empty before the first step).
    pub y: Vec<Vec<f64>>,
    /// The weights `λ` (`T`).
    pub lambda: Vec<f64>,
}

/// MoCo (see the module doc).
#[derive(Debug, Clone)]
pub struct MoCo {
    config: MoCoConfig,
    state: MoCoState,
}

impl MoCo {
    /// MoCo with `config`'s rates, `y = 0`, `λ = 1/T`.
    pub fn new(config: MoCoConfig) -> Self {
        Self {
            config,
            state: MoCoState::default(),
        }
    }
}

/// `softmax(v)`, shifted by the largest entry.
fn softmax(v: &[f64]) -> Vec<f64> {
    let top = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - top).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

impl Aggregator for MoCo {
    fn name(&self) -> &str {
        "moco"
    }

    fn needs_jacobian(&self) -> bool {
        true
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let Some(rows) = input.jacobian else {
            return Err(OptimError::config(
                "weighting (moco)",
                "needs the per-task gradients (rows)",
            ));
        };
        let t = rows.len();
        let n = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != n) || input.losses.len() != t {
            return Err(OptimError::config(
                "weighting (moco)",
                "task gradients of different lengths, or one loss per task missing",
            ));
        }
        let c = &self.config;
        let st = &mut self.state;
        let fits = st.y.len() == t && st.y.iter().all(|y| y.len() == n) && st.lambda.len() == t;
        if !fits {
            if !st.y.is_empty() {
                tracing::warn!(
                    step = input.step,
                    tasks = t,
                    len = n,
                    "moco: the number of tasks or the gradient length changed; its state restarts"
                );
            }
            *st = MoCoState {
                step: 0,
                y: vec![vec![0.0; n]; t],
                lambda: vec![1.0 / t as f64; t],
            };
        }
        st.step += 1;
        let k = st.step as f64;
        let b = c.beta / k.powf(c.beta_sigma);
        for ((y, g), l) in st.y.iter_mut().zip(rows).zip(input.losses) {
            let scale = l / (dot(g, g).sqrt() + 1e-8);
            for (yk, gk) in y.iter_mut().zip(g) {
                *yk -= b * (*yk - gk * scale);
            }
        }
        let yy = Gramian::of_rows(&st.y);
        let mut v = yy.mul(&st.lambda);
        for (vi, li) in v.iter_mut().zip(&st.lambda) {
            *vi += c.rho * li;
        }
        let step = c.gamma / k.powf(c.gamma_sigma);
        let moved: Vec<f64> = st
            .lambda
            .iter()
            .zip(&v)
            .map(|(l, vi)| l - step * vi)
            .collect();
        let lambda = softmax(&moved);
        if lambda.iter().all(|x| x.is_finite()) {
            st.lambda = lambda;
        } else {
            tracing::warn!(
                step = input.step,
                "moco: the λ update is not finite; λ kept"
            );
        }
        let d = combine_rows(&st.y, &st.lambda);
        Ok(Aggregation {
            weights: st.lambda.clone(),
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

    fn close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "{got:?} vs {want:?}");
        }
    }

    /// `g₁ = (3, 0)`, `L₁ = 1`, `g₂ = (0, 2)`, `L₂ = 2`, defaults: `ĝ = ((1, 0), (0, 2))`,
    /// `y = ½ ĝ = ((½, 0), (0, 1))`, `Y Yᵀ λ = (⅛, ½)` at `λ = (½, ½)`,
    /// `λ = softmax((½ − 0.0125, ½ − 0.05))`, `d = (λ₁/2, λ₂)`. Step 2 on the same rows:
    /// `β₂ = ½/√2`, `γ₂ = 0.1/√2`.
    #[test]
    fn moco_two_steps_by_hand() -> Result<()> {
        let rows = vec![vec![3.0, 0.0], vec![0.0, 2.0]];
        let mut agg = MoCo::new(MoCoConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut agg, &rows, &[1.0, 2.0], &mut rng)?;
        let e = (0.05f64 - 0.0125).exp(); // λ₁/λ₂
        let l = [e / (1.0 + e), 1.0 / (1.0 + e)];
        close(&a.weights, &l, 1e-8);
        close(&d, &[l[0] / 2.0, l[1]], 1e-8);
        let (a, _) = aggregate_rows(&mut agg, &rows, &[1.0, 2.0], &mut rng)?;
        let b = 0.5 / 2f64.sqrt();
        let y = [0.5 + b * 0.5, 1.0 + b * 1.0];
        let g = 0.1 / 2f64.sqrt();
        let m = [l[0] - g * y[0] * y[0] * l[0], l[1] - g * y[1] * y[1] * l[1]];
        let e = (m[0] - m[1]).exp();
        close(&a.weights, &[e / (1.0 + e), 1.0 / (1.0 + e)], 1e-8);
        close(&agg.state.y[1], &[0.0, y[1]], 1e-8);
        Ok(())
    }

    /// With `ρ > 0` and a large `γ`, `λ` stays positive with sum 1 and `d = Σ_t λ_t y_t`.
    #[test]
    fn moco_rho_and_softmax_keep_a_simplex() -> Result<()> {
        let rows = vec![
            vec![1.0, -2.0, 0.5],
            vec![-1.0, 1.0, 1.0],
            vec![0.3, 0.2, -1.5],
        ];
        let cfg = MoCoConfig {
            rho: 1.0,
            gamma: 0.5,
            ..MoCoConfig::default()
        };
        let mut agg = MoCo::new(cfg);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..10 {
            let (a, d) = aggregate_rows(&mut agg, &rows, &[1.0, 0.5, 2.0], &mut rng)?;
            assert!((a.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(a.weights.iter().all(|&w| w > 0.0));
            assert_eq!(d, combine_rows(&agg.state.y, &a.weights));
        }
        Ok(())
    }

    /// Save after two steps, load into a fresh instance: the third step is identical.
    #[test]
    fn moco_state_round_trips() -> Result<()> {
        let steps = [
            vec![vec![1.0, -2.0, 0.5], vec![-1.0, 1.0, 1.0]],
            vec![vec![0.5, 1.0, -1.0], vec![-2.0, 0.1, 0.4]],
            vec![vec![0.3, 0.7, 1.1], vec![-1.0, 0.5, 0.0]],
        ];
        let losses = [0.7, 1.3];
        let mut a = MoCo::new(MoCoConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for r in &steps[..2] {
            aggregate_rows(&mut a, r, &losses, &mut rng)?;
        }
        let mut b = MoCo::new(MoCoConfig::default());
        b.load_state(&a.state()?)?;
        assert_eq!(a.state, b.state);
        let ra = aggregate_rows(&mut a, &steps[2], &losses, &mut rng.clone())?;
        let rb = aggregate_rows(&mut b, &steps[2], &losses, &mut rng)?;
        assert_eq!(ra, rb);
        Ok(())
    }

    #[test]
    fn moco_validate_names_keys() {
        let d = MoCoConfig::default();
        let bad = [
            (MoCoConfig { beta: 1.2, ..d }, "weighting.beta"),
            (
                MoCoConfig {
                    beta_sigma: -0.1,
                    ..d
                },
                "weighting.beta_sigma",
            ),
            (
                MoCoConfig {
                    gamma: f64::NAN,
                    ..d
                },
                "weighting.gamma",
            ),
            (
                MoCoConfig {
                    gamma_sigma: -1.0,
                    ..d
                },
                "weighting.gamma_sigma",
            ),
            (MoCoConfig { rho: -0.5, ..d }, "weighting.rho"),
        ];
        for (c, key) in bad {
            let err = c.validate();
            assert!(
                matches!(&err, Err(OptimError::Config { field, .. }) if field == key),
                "{err:?}"
            );
        }
        assert!(d.validate().is_ok());
    }
}
