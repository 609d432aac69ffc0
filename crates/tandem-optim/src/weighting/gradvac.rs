//! GradVac, Gradient Vaccine (Wang, Tsvetkov, Firat & Cao, ICLR 2021, "Gradient Vaccine:
//! Investigating and Improving Multi-task Optimization in Massively Multilingual Models").
//!
//! PCGrad only acts when two gradients conflict (`cos < 0`); GradVac instead keeps, for every
//! ordered pair of tasks, an exponential moving average `ρ̂_ij` of their cosine similarity and
//! pulls `g_i` towards `g_j` whenever the current similarity falls below that target:
//! ```text
//! g_i^PC ← g_i
//! for j in a random order of the other tasks:
//!     ρ_ij = g_i^PC · g_j / (‖g_i^PC‖ ‖g_j‖ + 10⁻⁸)
//!     if ρ_ij < ρ̂_ij:
//!         a = ‖g_i^PC‖ (ρ̂_ij √(1 − ρ_ij²) − ρ_ij √(1 − ρ̂_ij²)) / (‖g_j‖ √(1 − ρ̂_ij²) + 10⁻⁸)
//!         g_i^PC ← g_i^PC + a g_j                  (now cos(g_i^PC, g_j) = ρ̂_ij)
//!     ρ̂_ij ← (1 − β) ρ̂_ij + β ρ_ij
//! d = Σ_i g_i^PC
//! ```
//! with `ρ̂ = 0` before the first step (so the first step acts like PCGrad's projection onto the
//! normal plane). This is LibMTL's `group_type = 0`: one similarity per pair over the whole
//! shared gradient (the paper's per-layer variants are not offered).
//!
//! Every `g_i^PC` stays a combination of the rows, `g_i^PC = Σ_k C_ik g_k`, and every quantity
//! above is an inner product of such combinations: the method runs on the Gramian alone,
//! `g_i^PC · g_j = (C G)_ij`, `‖g_i^PC‖² = c_iᵀ G c_i`, and returns the weights
//! `w_k = Σ_i C_ik` (`d = Jᵀ w`). This is the same update as LibMTL's row-by-row loop in exact
//! arithmetic (computed in f64 here). A zero `g_j` adds nothing and is skipped (LibMTL adds
//! `a · 0`); `1 − ρ²` is clamped at 0 against rounding.
//!
//! The random order of the other tasks comes from the step's RNG, so one seed gives identical
//! bits. LibMTL refuses `rep_grad`; here `on = "representation"` runs the same rule on the
//! representation's gradients.
//!
//! Shapes: `G` is `T × T`; the state `ρ̂` is `T × T` (row `i`, column `j`: the target of task `i`
//! against task `j`; the diagonal is unused). Cost: `T` backward passes (parameters) or `T` head
//! passes and one trunk pass (representation), plus `O(T³)` on the Gramian. When the number of
//! tasks changes (a task stopped), `ρ̂` restarts at 0 (logged).
//!
//! Default `beta = 0.5` (LibMTL's `GradVac_beta`; must lie in `[0, 1]`).
//!
//! ```toml
//! weighting = { kind = "gradvac" }
//! weighting = { kind = "gradvac", beta = 0.01 }
//! ```
use super::config::MethodConfig;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::state;
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The name of GradVac's state in errors.
const STATE: &str = "weighting state (gradvac)";

/// GradVac's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradVacConfig {
    /// EMA rate `β` of the similarity targets, in `[0, 1]` (default 0.5, LibMTL's).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_beta() -> f64 {
    0.5
}

impl Default for GradVacConfig {
    fn default() -> Self {
        Self {
            beta: default_beta(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for GradVacConfig {
    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(OptimError::config("weighting.beta", "must lie in [0, 1]"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            GradVac::new(*self),
            self.on,
        )))
    }
}

/// What GradVac remembers: the similarity targets `ρ̂_ij`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GradVacState {
    /// `ρ̂` as `T` rows of `T` (empty before the first step).
    pub rho: Vec<Vec<f64>>,
}

/// GradVac (see the module doc).
#[derive(Debug, Clone)]
pub struct GradVac {
    config: GradVacConfig,
    state: GradVacState,
}

impl GradVac {
    /// GradVac with `config`'s `β`, targets at 0.
    pub fn new(config: GradVacConfig) -> Self {
        Self {
            config,
            state: GradVacState::default(),
        }
    }

    /// The similarity targets `ρ̂`.
    pub fn targets(&self) -> &GradVacState {
        &self.state
    }
}

/// `a · b` for coefficient vectors through the Gramian: `aᵀ G b`.
fn inner(g: &super::linalg::Gramian, a: &[f64], b: &[f64]) -> f64 {
    let gb = g.mul(b);
    super::linalg::dot(a, &gb)
}

impl Aggregator for GradVac {
    fn name(&self) -> &str {
        "gradvac"
    }

    fn aggregate(&mut self, input: &AggregatorInput, rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let t = g.len();
        let fits = self.state.rho.len() == t && self.state.rho.iter().all(|r| r.len() == t);
        if !fits {
            if !self.state.rho.is_empty() {
                tracing::warn!(
                    step = input.step,
                    tasks = t,
                    "gradvac: the number of tasks changed; similarity targets restart at 0"
                );
            }
            self.state.rho = vec![vec![0.0; t]; t];
        }
        let beta = self.config.beta;
        let mut coef = vec![vec![0.0; t]; t];
        for (i, c) in coef.iter_mut().enumerate() {
            c[i] = 1.0;
            let mut order: Vec<usize> = (0..t).filter(|&j| j != i).collect();
            order.shuffle(rng);
            for j in order {
                let gj_sq = g.get(j, j).max(0.0);
                let gj_norm = gj_sq.sqrt();
                // g_i^PC · g_j = Σ_k C_ik G_kj
                let pc_dot: f64 = (0..t).map(|k| c[k] * g.get(k, j)).sum();
                let pc_norm = inner(g, c, c).max(0.0).sqrt();
                let rho = pc_dot / (pc_norm * gj_norm + 1e-8);
                let target = self.state.rho[i][j];
                if rho < target && gj_sq > 0.0 {
                    let s_rho = (1.0 - rho * rho).max(0.0).sqrt();
                    let s_target = (1.0 - target * target).max(0.0).sqrt();
                    let a =
                        pc_norm * (target * s_rho - rho * s_target) / (gj_norm * s_target + 1e-8);
                    c[j] += a;
                }
                self.state.rho[i][j] = (1.0 - beta) * target + beta * rho;
            }
        }
        let weights = (0..t).map(|k| coef.iter().map(|c| c[k]).sum()).collect();
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
    use crate::weighting::linalg::dot;
    use rand::SeedableRng;

    fn gradvac(beta: f64) -> GradVac {
        GradVac::new(GradVacConfig {
            beta,
            on: On::Parameters,
        })
    }

    /// `g₁ = (1, 0)`, `g₂ = (−1, 1)`, targets 0: `ρ₁₂ = ρ₂₁ = −1/√2`, so
    /// `a₁ = ‖g₁‖ (1/√2) / ‖g₂‖ = ½` and `a₂ = ‖g₂‖ (1/√2) / ‖g₁‖ = 1`:
    /// `g₁^PC = g₁ + ½ g₂ = (½, ½)`, `g₂^PC = g₂ + g₁ = (0, 1)`, `w = (2, 3/2)`, `d = (½, 3/2)`;
    /// then `ρ̂₁₂ = ρ̂₂₁ = β·(−1/√2)`.
    #[test]
    fn gradvac_two_rows_by_hand() -> Result<()> {
        let rows = vec![vec![1.0, 0.0], vec![-1.0, 1.0]];
        let mut agg = gradvac(0.5);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut agg, &rows, &[1.0, 1.0], &mut rng)?;
        for (got, want) in a.weights.iter().zip([2.0, 1.5]) {
            assert!((got - want).abs() < 1e-7, "{:?}", a.weights);
        }
        for (got, want) in d.iter().zip([0.5, 1.5]) {
            assert!((got - want).abs() < 1e-7, "{d:?}");
        }
        let r = -0.5 / 2f64.sqrt();
        assert!((agg.targets().rho[0][1] - r).abs() < 1e-7);
        assert!((agg.targets().rho[1][0] - r).abs() < 1e-7);
        Ok(())
    }

    /// With a target above the current similarity, the corrected gradient reaches exactly the
    /// target cosine (two tasks: one correction each).
    #[test]
    fn gradvac_reaches_the_target_similarity() -> Result<()> {
        let rows = vec![vec![1.0, 0.0, 0.5], vec![0.0, 2.0, -1.0]];
        let mut agg = gradvac(0.5);
        agg.load_state(&serde_json::json!({"rho": [[0.0, 0.6], [0.3, 0.0]]}))?;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (a, _) = aggregate_rows(&mut agg, &rows, &[1.0, 1.0], &mut rng)?;
        // recover g_i^PC = g_i + a_i g_j from the weights: w₁ = 1 + a₂, w₂ = 1 + a₁
        let a1 = a.weights[1] - 1.0;
        let a2 = a.weights[0] - 1.0;
        let pc1: Vec<f64> = rows[0]
            .iter()
            .zip(&rows[1])
            .map(|(x, y)| x + a1 * y)
            .collect();
        let pc2: Vec<f64> = rows[1]
            .iter()
            .zip(&rows[0])
            .map(|(x, y)| x + a2 * y)
            .collect();
        let cos = |u: &[f64], v: &[f64]| dot(u, v) / (dot(u, u) * dot(v, v)).sqrt();
        assert!((cos(&pc1, &rows[1]) - 0.6).abs() < 1e-6);
        assert!((cos(&pc2, &rows[0]) - 0.3).abs() < 1e-6);
        Ok(())
    }

    /// The Gramian form equals LibMTL's row-by-row loop (written out here on rows, with the
    /// same task orders) on three tasks over three steps.
    #[test]
    fn gradvac_gramian_form_matches_row_loop() -> Result<()> {
        let steps = [
            vec![
                vec![1.0, -2.0, 0.5, 0.0],
                vec![-1.0, 1.0, 1.0, 2.0],
                vec![0.3, 0.2, -1.5, 1.0],
            ],
            vec![
                vec![0.5, 1.0, -1.0, 0.2],
                vec![-2.0, 0.1, 0.4, 1.0],
                vec![1.0, -1.0, 0.0, -0.5],
            ],
            vec![
                vec![1.0, 1.0, 1.0, 1.0],
                vec![-1.0, 0.5, 0.0, 0.3],
                vec![0.2, -0.7, 1.1, -0.4],
            ],
        ];
        let beta = 0.3;
        let mut agg = gradvac(beta);
        let mut rho = [[0.0f64; 3]; 3];
        for (s, rows) in steps.iter().enumerate() {
            let mut rng_a = ChaCha8Rng::seed_from_u64(s as u64);
            let mut rng_b = ChaCha8Rng::seed_from_u64(s as u64);
            let (_, d) = aggregate_rows(&mut agg, rows, &[1.0; 3], &mut rng_a)?;
            let norm = |v: &[f64]| dot(v, v).sqrt();
            let mut want = vec![0.0; 4];
            for i in 0..3 {
                let mut pc = rows[i].clone();
                let mut order: Vec<usize> = (0..3).filter(|&j| j != i).collect();
                order.shuffle(&mut rng_b);
                for j in order {
                    let r = dot(&pc, &rows[j]) / (norm(&pc) * norm(&rows[j]) + 1e-8);
                    if r < rho[i][j] {
                        let st = (1.0 - rho[i][j] * rho[i][j]).sqrt();
                        let a = norm(&pc) * (rho[i][j] * (1.0 - r * r).sqrt() - r * st)
                            / (norm(&rows[j]) * st + 1e-8);
                        for (p, g) in pc.iter_mut().zip(&rows[j]) {
                            *p += a * g;
                        }
                    }
                    rho[i][j] = (1.0 - beta) * rho[i][j] + beta * r;
                }
                for (w, p) in want.iter_mut().zip(&pc) {
                    *w += p;
                }
            }
            for (got, w) in d.iter().zip(&want) {
                assert!((got - w).abs() < 1e-9, "step {s}: {d:?} vs {want:?}");
            }
        }
        Ok(())
    }

    /// Save after two steps, load into a fresh instance: the third step is identical.
    #[test]
    fn gradvac_state_round_trips() -> Result<()> {
        let rows = [
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
                vec![1.0, 1.0, 1.0],
                vec![-1.0, 0.5, 0.0],
                vec![0.2, -0.7, 1.1],
            ],
        ];
        let mut a = gradvac(0.5);
        for (s, r) in rows[..2].iter().enumerate() {
            aggregate_rows(
                &mut a,
                r,
                &[1.0; 3],
                &mut ChaCha8Rng::seed_from_u64(s as u64),
            )?;
        }
        let mut b = gradvac(0.5);
        b.load_state(&a.state()?)?;
        assert_eq!(a.targets(), b.targets());
        let ra = aggregate_rows(
            &mut a,
            &rows[2],
            &[1.0; 3],
            &mut ChaCha8Rng::seed_from_u64(9),
        )?;
        let rb = aggregate_rows(
            &mut b,
            &rows[2],
            &[1.0; 3],
            &mut ChaCha8Rng::seed_from_u64(9),
        )?;
        assert_eq!(ra, rb);
        assert!(b.load_state(&serde_json::json!({"rho": "x"})).is_err());
        Ok(())
    }

    #[test]
    fn gradvac_validate_names_beta() {
        for beta in [-0.1, 1.5, f64::NAN] {
            let err = GradVacConfig {
                beta,
                on: On::Parameters,
            }
            .validate();
            assert!(
                matches!(&err, Err(OptimError::Config { field, .. }) if field == "weighting.beta"),
                "{err:?}"
            );
        }
        assert!(GradVacConfig::default().validate().is_ok());
    }
}
