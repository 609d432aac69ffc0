//! UPGrad: unconflicting projection of gradients (Quinton & Rey, 2024, "Jacobian Descent for
//! Multi-Objective Optimization", arXiv:2406.16232; TorchJD's `UPGrad`).
//!
//! Each row `g_i` is projected onto the dual cone of the rows, `{x : Jx ≥ 0}` (the directions
//! that conflict with no task), and the projections are averaged. In weight space, the projection
//! of `Jᵀu` is `Jᵀw` with
//! ```text
//! w = argmin_{v ≥ u} vᵀ Ĝ v,        Ĝ = G / tr(G) + ε_reg I      (G = J Jᵀ, T × T)
//! ```
//! ([`project_weights`], a non-negative QP in `x = v − u` solved exactly by
//! [`nonneg_qp`]). UPGrad projects every unit vector `e_i` and averages with the preference
//! vector `p` (default `1/T`): `w = Σ_i p_i · proj(e_i)`, `d = Jᵀw`. The update satisfies
//! `g_t · d ≥ 0` for every task (up to `ε_reg`) and equals the mean when no row conflicts.
//!
//! Defaults (TorchJD's): `norm_eps = 1e-4` (a Gramian whose trace is below it counts as zero,
//! so the weights become `p`), `reg_eps = 1e-4`. Cost: `T` backward passes (parameters) or `T`
//! head passes and one trunk pass (representation); `T` QPs of size `T` per step. Stateless.
//!
//! ```toml
//! weighting = { kind = "upgrad" }
//! weighting = { kind = "upgrad", on = "representation", reg_eps = 1e-4 }
//! ```
use super::config::MethodConfig;
use super::linalg::{nonneg_qp, Gramian, Solve};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// `w = argmin_{v ≥ u} vᵀ Ĝ v` with `Ĝ = G / tr(G) + reg_eps·I` (`G / tr(G)` replaced by zero
/// when `tr(G) < norm_eps`): the weights of the projection of `Jᵀu` onto the dual cone of the
/// rows of `J`, as TorchJD's dual-cone projector computes them.
///
/// ```
/// use tandem_optim::weighting::linalg::Gramian;
/// use tandem_optim::weighting::upgrad::project_weights;
/// // Orthogonal rows: nothing conflicts, the projection of u is u.
/// let g = Gramian::from_row_major(2, vec![1.0, 0.0, 0.0, 4.0]);
/// let w = project_weights(&g, &[0.5, 0.5], 1e-4, 1e-4);
/// assert!((w[0] - 0.5).abs() < 1e-12 && (w[1] - 0.5).abs() < 1e-12);
/// ```
pub fn project_weights(g: &Gramian, u: &[f64], norm_eps: f64, reg_eps: f64) -> Vec<f64> {
    let reg = regularised(g, norm_eps, reg_eps);
    let c = reg.mul(u);
    let (x, solve) = nonneg_qp(&reg, &c);
    if solve != Solve::Converged {
        tracing::warn!("dual-cone projection: the QP solver stopped at its iteration limit");
    }
    u.iter().zip(&x).map(|(u, x)| u + x).collect()
}

/// `G / tr(G) + reg_eps·I`, with the normalised part zero when `tr(G) < norm_eps`.
fn regularised(g: &Gramian, norm_eps: f64, reg_eps: f64) -> Gramian {
    let t = g.len();
    let trace: f64 = g.diag().iter().sum();
    let scale = if trace < norm_eps { 0.0 } else { 1.0 / trace };
    let data = (0..t * t)
        .map(|k| {
            let (i, j) = (k / t, k % t);
            g.get(i, j) * scale + if i == j { reg_eps } else { 0.0 }
        })
        .collect();
    Gramian::from_row_major(t, data)
}

/// Checks the dual-cone projector's `norm_eps` and `reg_eps`.
pub(crate) fn validate_eps(norm_eps: f64, reg_eps: f64) -> Result<()> {
    if !(norm_eps.is_finite() && norm_eps >= 0.0) {
        return Err(OptimError::config("weighting.norm_eps", "must be ≥ 0"));
    }
    if !(reg_eps.is_finite() && reg_eps >= 0.0) {
        return Err(OptimError::config("weighting.reg_eps", "must be ≥ 0"));
    }
    Ok(())
}

/// UPGrad (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct UpGrad {
    norm_eps: f64,
    reg_eps: f64,
}

impl UpGrad {
    /// UPGrad with the dual-cone projector's `norm_eps` and `reg_eps`.
    pub fn new(norm_eps: f64, reg_eps: f64) -> Self {
        Self { norm_eps, reg_eps }
    }
}

impl Default for UpGrad {
    fn default() -> Self {
        Self::new(default_eps(), default_eps())
    }
}

impl Aggregator for UpGrad {
    fn name(&self) -> &str {
        "upgrad"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let t = input.gramian.len();
        let mut w = vec![0.0; t];
        for i in 0..t {
            let mut e = vec![0.0; t];
            e[i] = 1.0;
            let p = project_weights(input.gramian, &e, self.norm_eps, self.reg_eps);
            for (w, p) in w.iter_mut().zip(p) {
                *w += p / t as f64;
            }
        }
        Ok(Aggregation::weights(w))
    }
}

pub(crate) fn default_eps() -> f64 {
    1e-4
}

/// The configuration of UPGrad and DualProj.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DualConeConfig {
    /// A Gramian whose trace is below this counts as zero (default 10⁻⁴, TorchJD's).
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// Added to the normalised Gramian's diagonal (default 10⁻⁴, TorchJD's).
    #[serde(default = "default_eps")]
    pub reg_eps: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

impl Default for DualConeConfig {
    fn default() -> Self {
        Self {
            norm_eps: default_eps(),
            reg_eps: default_eps(),
            on: On::Parameters,
        }
    }
}

/// UPGrad's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UpGradConfig(pub DualConeConfig);

impl MethodConfig for UpGradConfig {
    fn validate(&self) -> Result<()> {
        validate_eps(self.0.norm_eps, self.0.reg_eps)
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            UpGrad::new(self.0.norm_eps, self.0.reg_eps),
            self.0.on,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use crate::weighting::linalg::dot;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn conflicting_pair_by_hand() -> Result<()> {
        // g1 = (1, 0), g2 = (−1, 1), no regularisation, G = [[1, −1], [−1, 2]] (the trace
        // scaling does not move the minimiser). vᵀGv = v1² − 2v1v2 + 2v2².
        // proj(e1): v1 ≥ 1, v2 ≥ 0; ∂/∂v2 = 0 at v2 = v1/2, then ∂/∂v1 = v1 > 0: v = (1, ½).
        // proj(e2): v1 ≥ 0, v2 ≥ 1; ∂/∂v1 = 0 at v1 = v2, then ∂/∂v2 = 2v2 > 0: v = (1, 1).
        // w = (1, ¾), d = (¼, ¾).
        let mut agg = UpGrad::new(1e-4, 0.0);
        let rows = vec![vec![1.0, 0.0], vec![-1.0, 1.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut agg, &rows, &[1.0, 1.0], &mut rng)?;
        assert!((a.weights[0] - 1.0).abs() < 1e-9, "{:?}", a.weights);
        assert!((a.weights[1] - 0.75).abs() < 1e-9, "{:?}", a.weights);
        assert!((d[0] - 0.25).abs() < 1e-9 && (d[1] - 0.75).abs() < 1e-9);
        Ok(())
    }

    proptest! {
        #[test]
        fn no_task_is_hurt(rows in prop::collection::vec(prop::collection::vec(-3.0f64..3.0, 4), 2..5)) {
            let mut agg = UpGrad::new(1e-4, 0.0);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let t = rows.len();
            let (_, d) = aggregate_rows(&mut agg, &rows, &vec![1.0; t], &mut rng).unwrap();
            let scale: f64 = rows.iter().map(|r| dot(r, r)).sum::<f64>().max(1.0);
            for r in &rows {
                prop_assert!(dot(r, &d) >= -1e-7 * scale, "{:?}", (r, &d));
            }
        }
    }
}
