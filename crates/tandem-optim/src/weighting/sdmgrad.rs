//! SDMGrad, stochastic direction-oriented multi-objective gradient descent (Xiao, Ban & Ji,
//! NeurIPS 2023, "Direction-oriented Multi-objective Learning: Simple and Provable Stochastic
//! Algorithms").
//!
//! SDMGrad looks for the weights `w` on the simplex whose combination `Σ_t w_t g_t` is shortest
//! while staying close to the average gradient `g₀ = (1/T) Σ_t g_t` (the regularisation `λ`),
//! with a few projected heavy-ball steps per iteration warm-started from the last iteration's
//! `w`:
//! ```text
//! Ĝ = G / (s² + 10⁻⁸),   s = mean_t √max(G_tt, 0)        (normalised Gramian, T × T)
//! c_t = mean_s Ĝ_ts
//! repeat niter times:                                      (momentum buffer m restarts each step)
//!     m ← ∇ (first time) or 0.5 m + ∇,   ∇ = Ĝ w + λ c
//!     w ← Π_Δ(w − 5 m)                                     (Euclidean projection onto the simplex)
//! d = (Σ_t w_t g_t + λ g₀) / (1 + λ)   ⇒   weights (w_t + λ/T) / (1 + λ)
//! ```
//! (learning rate 5 and momentum 0.5 are LibMTL's, fixed). The update is a combination of the
//! rows and depends on the Gramian only: no rows are kept.
//!
//! ## Single-batch variant
//! The paper and LibMTL draw **three** independent batches per step: two give the unbiased
//! Gramian estimate `Ĝ = J_ξ₁ J_ξ₂ᵀ`, the third (`ζ`) the update `d`. A [`Weighting`] sees one
//! batch, so here all three are the same batch: `Ĝ` is the (biased) `J Jᵀ` and `d` uses the same
//! rows. This is the single-batch SDMGrad; its convergence guarantee for stochastic gradients
//! (which rests on the independent samples) does not carry over, as for MGDA.
//!
//! Shapes: `G` is `T × T`; the state is `w` (`T`). Cost: `T` backward passes (parameters) or `T`
//! head passes and one trunk pass (representation), plus `niter` `O(T²)` steps. When the number
//! of tasks changes, `w` restarts at `1/T` (logged). LibMTL refuses `rep_grad`; here
//! `on = "representation"` runs the same rule on the representation's gradients.
//!
//! Defaults (LibMTL's): `lamda = 0.3` (≥ 0; spelled as LibMTL does), `niter = 20` (≥ 1).
//!
//! ```toml
//! weighting = { kind = "sdmgrad" }
//! weighting = { kind = "sdmgrad", lamda = 0.6, niter = 20 }
//! ```
use super::config::MethodConfig;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::state;
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The name of SDMGrad's state in errors.
const STATE: &str = "weighting state (sdmgrad)";

/// LibMTL's inner learning rate.
const LR: f64 = 5.0;
/// LibMTL's inner momentum.
const MOMENTUM: f64 = 0.5;

/// SDMGrad's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdmGradConfig {
    /// `λ`: the pull towards the average gradient, ≥ 0 (default 0.3, LibMTL's `SDMGrad_lamda`).
    #[serde(default = "default_lamda")]
    pub lamda: f64,
    /// Inner projected steps per iteration, ≥ 1 (default 20, LibMTL's `SDMGrad_niter`).
    #[serde(default = "default_niter")]
    pub niter: usize,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_lamda() -> f64 {
    0.3
}
fn default_niter() -> usize {
    20
}

impl Default for SdmGradConfig {
    fn default() -> Self {
        Self {
            lamda: default_lamda(),
            niter: default_niter(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for SdmGradConfig {
    fn validate(&self) -> Result<()> {
        if !(self.lamda.is_finite() && self.lamda >= 0.0) {
            return Err(OptimError::config(
                "weighting.lamda",
                "must be a number ≥ 0",
            ));
        }
        if self.niter == 0 {
            return Err(OptimError::config("weighting.niter", "must be ≥ 1"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            SdmGrad::new(*self),
            self.on,
        )))
    }
}

/// The Euclidean projection of `v` onto the probability simplex `{w ≥ 0, Σ w = 1}` (Duchi,
/// Shalev-Shwartz, Singer & Chandra 2008): `w = max(v − θ, 0)` with the threshold `θ` found from
/// the sorted entries. A point already on the simplex (`Σ v = 1` exactly, `v ≥ 0`) is returned
/// as it is. `None` when `v` is empty or holds a non-finite value.
///
/// ```
/// use tandem_optim::weighting::sdmgrad::project_simplex;
/// assert_eq!(project_simplex(&[0.25, 0.5, 1.0]), Some(vec![0.0, 0.25, 0.75]));
/// assert_eq!(project_simplex(&[-1.0, 2.0]), Some(vec![0.0, 1.0]));
/// ```
pub fn project_simplex(v: &[f64]) -> Option<Vec<f64>> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    if v.iter().sum::<f64>() == 1.0 && v.iter().all(|&x| x >= 0.0) {
        return Some(v.to_vec());
    }
    let mut u = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut cum = 0.0;
    let mut theta = 0.0;
    for (j, &uj) in u.iter().enumerate() {
        cum += uj;
        let t = (cum - 1.0) / (j + 1) as f64;
        if uj > t {
            theta = t;
        }
    }
    Some(v.iter().map(|x| (x - theta).max(0.0)).collect())
}

/// What SDMGrad remembers: the last iteration's simplex weights `w`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SdmGradState {
    /// `w` (`T`; empty before the first step).
    pub w: Vec<f64>,
}

/// SDMGrad (see the module doc).
#[derive(Debug, Clone)]
pub struct SdmGrad {
    config: SdmGradConfig,
    state: SdmGradState,
}

impl SdmGrad {
    /// SDMGrad with `config`'s `λ` and `niter`, `w = 1/T`.
    pub fn new(config: SdmGradConfig) -> Self {
        Self {
            config,
            state: SdmGradState::default(),
        }
    }
}

impl Aggregator for SdmGrad {
    fn name(&self) -> &str {
        "sdmgrad"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let t = g.len();
        if t == 0 {
            return Ok(Aggregation::weights(Vec::new()));
        }
        if self.state.w.len() != t {
            if !self.state.w.is_empty() {
                tracing::warn!(
                    step = input.step,
                    tasks = t,
                    "sdmgrad: the number of tasks changed; w restarts at 1/T"
                );
            }
            self.state.w = vec![1.0 / t as f64; t];
        }
        let lamda = self.config.lamda;
        let s = (0..t).map(|i| g.get(i, i).max(0.0).sqrt()).sum::<f64>() / t as f64;
        let denom = s * s + 1e-8;
        let gn: Vec<f64> = (0..t * t).map(|k| g.get(k / t, k % t) / denom).collect();
        let gn = super::linalg::Gramian::from_row_major(t, gn);
        let c: Vec<f64> = (0..t)
            .map(|i| (0..t).map(|j| gn.get(i, j)).sum::<f64>() / t as f64)
            .collect();
        let mut w = self.state.w.clone();
        let mut m: Option<Vec<f64>> = None;
        for _ in 0..self.config.niter {
            let grad: Vec<f64> = gn
                .mul(&w)
                .iter()
                .zip(&c)
                .map(|(a, ci)| a + lamda * ci)
                .collect();
            let buf = match m {
                None => grad,
                Some(prev) => prev
                    .iter()
                    .zip(&grad)
                    .map(|(p, q)| MOMENTUM * p + q)
                    .collect(),
            };
            let stepped: Vec<f64> = w.iter().zip(&buf).map(|(wi, bi)| wi - LR * bi).collect();
            m = Some(buf);
            match project_simplex(&stepped) {
                Some(p) => w = p,
                None => {
                    tracing::warn!(
                        step = input.step,
                        "sdmgrad: the inner iteration is not finite; keeping the last weights"
                    );
                    break;
                }
            }
        }
        self.state.w = w;
        let weights = self
            .state
            .w
            .iter()
            .map(|wi| (wi + lamda / t as f64) / (1.0 + lamda))
            .collect();
        Ok(Aggregation::weights(weights))
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

    fn sdm(lamda: f64, niter: usize) -> SdmGrad {
        SdmGrad::new(SdmGradConfig {
            lamda,
            niter,
            on: On::Parameters,
        })
    }

    fn close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn sdmgrad_simplex_projection() {
        close(
            &project_simplex(&[0.2, 0.3, 0.8]).unwrap_or_default(),
            &[0.1, 0.2, 0.7],
            1e-15,
        );
        assert_eq!(project_simplex(&[0.5, 0.5]), Some(vec![0.5, 0.5]));
        assert_eq!(
            project_simplex(&[3.0, -1.0, 0.0]),
            Some(vec![1.0, 0.0, 0.0])
        );
        assert_eq!(project_simplex(&[f64::NAN, 1.0]), None);
    }

    /// One inner step by hand: `g₁ = (1, 0)`, `g₂ = (0, 2)`: `s = 1.5`, `Ĝ = diag(1, 4)/2.25`,
    /// `c = (1, 4)/4.5`, `∇ = Ĝ(½, ½) + 0.3 c = 1.3·(1, 4)/4.5`,
    /// `w − 5∇ = (−0.944…, −5.277…)` projects to `(1, 0)`;
    /// weights `(1 + 0.15, 0.15)/1.3`.
    #[test]
    fn sdmgrad_one_step_by_hand() -> Result<()> {
        let rows = vec![vec![1.0, 0.0], vec![0.0, 2.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, _) = aggregate_rows(&mut sdm(0.3, 1), &rows, &[1.0; 2], &mut rng)?;
        close(&a.weights, &[1.15 / 1.3, 0.15 / 1.3], 1e-12);
        Ok(())
    }

    /// LibMTL's loop (PyTorch SGD with momentum, float64, single batch for all three) on three
    /// tasks: two iterations of `niter = 3` (the second warm-started), and one of `niter = 20`.
    /// The expected `d` values are from that script.
    #[test]
    fn sdmgrad_matches_libmtl_loop() -> Result<()> {
        let rows = vec![
            vec![0.1, 0.02, 0.0],
            vec![0.0, 0.12, 0.03],
            vec![0.05, 0.0, 0.11],
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut agg = sdm(0.3, 3);
        let (_, d) = aggregate_rows(&mut agg, &rows, &[1.0; 3], &mut rng)?;
        close(
            &agg.state.w,
            &[0.7585337984765754, 0.0, 0.24146620152342457],
            1e-12,
        );
        close(
            &d,
            &[
                0.07917437686448367,
                0.022438981515024235,
                0.031200986282751312,
            ],
            1e-12,
        );
        let (_, d) = aggregate_rows(&mut agg, &rows, &[1.0; 3], &mut rng)?;
        close(
            &agg.state.w,
            &[0.700497093277126, 0.19593999930332107, 0.10356290741955032],
            1e-12,
        );
        close(
            &d,
            &[
                0.06940604207591547,
                0.0396328782938008,
                0.024053938304038586,
            ],
            1e-12,
        );
        let (_, d) = aggregate_rows(&mut sdm(0.3, 20), &rows, &[1.0; 3], &mut rng)?;
        close(
            &d,
            &[
                0.07446221793461344,
                0.02055411794307614,
                0.04156773592846583,
            ],
            1e-12,
        );
        Ok(())
    }

    /// Save after two steps, load into a fresh instance: the third step is identical.
    #[test]
    fn sdmgrad_state_round_trips() -> Result<()> {
        let steps = [
            vec![
                vec![1.0, -2.0, 0.5],
                vec![-1.0, 1.0, 1.0],
                vec![0.3, 0.2, -1.5],
            ],
            vec![
                vec![0.5, 1.0, -1.0],
                vec![-2.0, 0.1, 0.4],
                vec![1.0, -1.0, 0.0],
            ],
            vec![
                vec![0.3, 0.7, 1.1],
                vec![-1.0, 0.5, 0.0],
                vec![0.2, -0.7, 1.1],
            ],
        ];
        let mut a = sdm(0.3, 20);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for r in &steps[..2] {
            aggregate_rows(&mut a, r, &[1.0; 3], &mut rng)?;
        }
        let mut b = sdm(0.3, 20);
        b.load_state(&a.state()?)?;
        assert_eq!(a.state, b.state);
        let ra = aggregate_rows(&mut a, &steps[2], &[1.0; 3], &mut rng.clone())?;
        let rb = aggregate_rows(&mut b, &steps[2], &[1.0; 3], &mut rng)?;
        assert_eq!(ra, rb);
        Ok(())
    }

    #[test]
    fn sdmgrad_validate_names_keys() {
        let d = SdmGradConfig::default();
        for (c, key) in [
            (SdmGradConfig { lamda: -0.1, ..d }, "weighting.lamda"),
            (
                SdmGradConfig {
                    lamda: f64::NAN,
                    ..d
                },
                "weighting.lamda",
            ),
            (SdmGradConfig { niter: 0, ..d }, "weighting.niter"),
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
