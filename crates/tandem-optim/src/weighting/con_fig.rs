//! ConFIG: conflict-free inverse gradients (Liu et al., ICLR 2025, "ConFIG: Towards
//! Conflict-free Training of Physics Informed Neural Networks"; TorchJD's `ConFIG`).
//!
//! The direction has equal cosine with every task gradient, and its length is the sum of the
//! gradients' projections on it:
//! ```text
//! ĝ_t = g_t / ‖g_t‖ (0 for a zero row),   u = Ûᵀ⁺ p  (Û the unit rows, p = 1 by default),
//! d = (Σ_t g_t · û) û,   û = u / ‖u‖
//! ```
//! `Û⁺ p = Ûᵀ (Û Ûᵀ)⁺ p`, and `Û Ûᵀ` is the Gramian scaled by the row norms, so the method
//! reads only `G`: `v = (D⁻¹ G D⁻¹)⁺ 1` with `D = diag(‖g_t‖)`, `u = Σ_t (v_t/‖g_t‖) g_t`, and
//! `d = Jᵀw` with `w_t = (1ᵀ G ω) / (ωᵀ G ω) · ω_t`, `ω_t = v_t/‖g_t‖`. Cost: `T` backward passes
//! (parameters) or `T` head passes and one trunk pass (representation), one `T × T` SVD.
//! Stateless, no parameters (TorchJD's default preference `p = 1`).
//!
//! ```toml
//! weighting = { kind = "config" }
//! ```
use super::config::MethodConfig;
use super::linalg::{pinv, Gramian};
use super::mean::PlainConfig;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, Weighting};
use crate::Result;
use candle_nn::VarBuilder;
use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// ConFIG's weights for a Gramian.
pub fn config_weights(g: &Gramian) -> Vec<f64> {
    let t = g.len();
    let norms: Vec<f64> = g.diag().iter().map(|x| x.max(0.0).sqrt()).collect();
    let inv: Vec<f64> = norms
        .iter()
        .map(|n| if *n > 0.0 { 1.0 / n } else { 0.0 })
        .collect();
    let unit = DMatrix::from_fn(t, t, |i, j| g.get(i, j) * inv[i] * inv[j]);
    let v = pinv(&unit) * DVector::from_element(t, 1.0);
    let omega: Vec<f64> = v.iter().zip(&inv).map(|(v, s)| v * s).collect();
    let norm2 = g.quad(&omega);
    if norm2.is_nan() || norm2 <= 0.0 {
        return vec![0.0; t];
    }
    let length: f64 = g.mul(&omega).iter().sum::<f64>() / norm2.sqrt();
    omega.iter().map(|o| length * o / norm2.sqrt()).collect()
}

/// ConFIG (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConFig;

impl Aggregator for ConFig {
    fn name(&self) -> &str {
        "config"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        Ok(Aggregation::weights(config_weights(input.gramian)))
    }
}

/// ConFIG's configuration: only `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConFigConfig(pub PlainConfig);

impl MethodConfig for ConFigConfig {
    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(ConFig, self.0.on)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use crate::weighting::linalg::dot;
    use rand::SeedableRng;

    #[test]
    fn equal_cosines_and_summed_projections() -> Result<()> {
        // g1 = (2, 0), g2 = (0, 1): û = (1, 1)/√2, length = (2 + 1)/√2, d = (1.5, 1.5).
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (_, d) = aggregate_rows(
            &mut ConFig,
            &[vec![2.0, 0.0], vec![0.0, 1.0]],
            &[1.0; 2],
            &mut rng,
        )?;
        assert!(
            (d[0] - 1.5).abs() < 1e-12 && (d[1] - 1.5).abs() < 1e-12,
            "{d:?}"
        );
        let rows = vec![
            vec![1.0, 0.5, 0.0],
            vec![-0.3, 2.0, 0.1],
            vec![0.2, 0.1, 3.0],
        ];
        let (_, d) = aggregate_rows(&mut ConFig, &rows, &[1.0; 3], &mut rng)?;
        let cos: Vec<f64> = rows
            .iter()
            .map(|r| dot(r, &d) / (dot(r, r) * dot(&d, &d)).sqrt())
            .collect();
        assert!(
            (cos[0] - cos[1]).abs() < 1e-9 && (cos[0] - cos[2]).abs() < 1e-9,
            "{cos:?}"
        );
        let length: f64 = rows.iter().map(|r| dot(r, &d)).sum::<f64>() / dot(&d, &d).sqrt();
        assert!((length - dot(&d, &d).sqrt()).abs() < 1e-9);
        Ok(())
    }
}
