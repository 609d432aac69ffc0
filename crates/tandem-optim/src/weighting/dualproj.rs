//! DualProj: the mean projected onto the dual cone of the rows (Quinton & Rey, 2024, "Jacobian
//! Descent for Multi-Objective Optimization", arXiv:2406.16232; TorchJD's `DualProj`).
//!
//! The average gradient `Jᵀu` (`u = 1/T`) is projected onto `{x : Jx ≥ 0}`:
//! ```text
//! w = argmin_{v ≥ u} vᵀ Ĝ v,   Ĝ = G / tr(G) + ε_reg I,   d = Jᵀw
//! ```
//! (see [`project_weights`]). Where the mean conflicts with no
//! task, `d` is the mean; otherwise the closest direction that conflicts with none. One QP of
//! size `T` per step (UPGrad solves `T`). Defaults (TorchJD's): `norm_eps = 1e-4`,
//! `reg_eps = 1e-4`. Cost: `T` backward passes (parameters) or `T` head passes and one trunk
//! pass (representation). Stateless.
//!
//! ```toml
//! weighting = { kind = "dualproj" }
//! ```
use super::config::MethodConfig;
use super::upgrad::{project_weights, validate_eps, DualConeConfig};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, Weighting};
use crate::Result;
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// DualProj (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct DualProj {
    norm_eps: f64,
    reg_eps: f64,
}

impl DualProj {
    /// DualProj with the dual-cone projector's `norm_eps` and `reg_eps`.
    pub fn new(norm_eps: f64, reg_eps: f64) -> Self {
        Self { norm_eps, reg_eps }
    }
}

impl Aggregator for DualProj {
    fn name(&self) -> &str {
        "dualproj"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let t = input.gramian.len();
        let u = vec![1.0 / t as f64; t];
        Ok(Aggregation::weights(project_weights(
            input.gramian,
            &u,
            self.norm_eps,
            self.reg_eps,
        )))
    }
}

/// DualProj's configuration (the same keys as UPGrad's).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DualProjConfig(pub DualConeConfig);

impl MethodConfig for DualProjConfig {
    fn validate(&self) -> Result<()> {
        validate_eps(self.0.norm_eps, self.0.reg_eps)
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            DualProj::new(self.0.norm_eps, self.0.reg_eps),
            self.0.on,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use rand::SeedableRng;

    #[test]
    fn conflicting_pair_by_hand() -> Result<()> {
        // g1 = (1, 0), g2 = (−1, 1); the mean (0, ½) has g1·mean = 0: no conflict, kept.
        // g1 = (1, 0), g2 = (−2, 1): the mean (−½, ½) conflicts with g1. With
        // G = [[1, −2], [−2, 5]], minimise vᵀGv over v ≥ (½, ½): ∂/∂v1 = 2v1 − 4v2 = 0 at
        // v1 = 2v2 ≥ ½, and ∂/∂v2 = −4v1 + 10v2 = 2v2 > 0 pins v2 = ½: w = (1, ½), d = (0, ½).
        let mut agg = DualProj::new(1e-4, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, _) = aggregate_rows(
            &mut agg,
            &[vec![1.0, 0.0], vec![-1.0, 1.0]],
            &[1.0; 2],
            &mut rng,
        )?;
        assert!((a.weights[0] - 0.5).abs() < 1e-9 && (a.weights[1] - 0.5).abs() < 1e-9);
        let (a, d) = aggregate_rows(
            &mut agg,
            &[vec![1.0, 0.0], vec![-2.0, 1.0]],
            &[1.0; 2],
            &mut rng,
        )?;
        assert!((a.weights[0] - 1.0).abs() < 1e-9, "{:?}", a.weights);
        assert!((a.weights[1] - 0.5).abs() < 1e-9, "{:?}", a.weights);
        assert!(d[0].abs() < 1e-9 && (d[1] - 0.5).abs() < 1e-9);
        Ok(())
    }
}
