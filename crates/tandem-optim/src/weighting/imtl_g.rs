//! IMTL-G: impartial multi-task learning, gradient part (Liu et al., ICLR 2021, "Towards
//! Impartial Multi-task Learning"; TorchJD's `IMTLG`).
//!
//! The update `d = Jᵀw` has equal projections onto every task's unit gradient
//! (`d · g_t/‖g_t‖` the same for all `t`), with `Σ w = 1`:
//! ```text
//! v = G⁺ √diag(G),     w = v / Σ_t v_t      (w = 0 when |Σ v| < 10⁻¹²)
//! ```
//! (`G⁺` the pseudo-inverse of the `T × T` Gramian). Cost: `T` backward passes (parameters) or
//! `T` head passes and one trunk pass (representation), one `T × T` SVD. Stateless, no
//! parameters. `imtl_l` is the loss part and `imtl` the two together.
//!
//! ```toml
//! weighting = { kind = "imtl_g" }
//! ```
use super::config::MethodConfig;
use super::linalg::{pinv, Gramian};
use super::mean::PlainConfig;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, Weighting};
use crate::Result;
use candle_nn::VarBuilder;
use nalgebra::DVector;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// IMTL-G's weights for a Gramian: `v = G⁺ √diag(G)`, normalised to sum 1.
pub fn imtl_g_weights(g: &Gramian) -> Vec<f64> {
    let t = g.len();
    let d = DVector::from_iterator(t, g.diag().into_iter().map(|x| x.max(0.0).sqrt()));
    let v = pinv(&g.matrix()) * d;
    let sum: f64 = v.iter().sum();
    if sum.abs() < 1e-12 {
        return vec![0.0; t];
    }
    v.iter().map(|x| x / sum).collect()
}

/// IMTL-G (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImtlG;

impl Aggregator for ImtlG {
    fn name(&self) -> &str {
        "imtl_g"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        Ok(Aggregation::weights(imtl_g_weights(input.gramian)))
    }
}

/// IMTL-G's configuration: only `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImtlGConfig(pub PlainConfig);

impl MethodConfig for ImtlGConfig {
    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(ImtlG, self.0.on)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use crate::weighting::linalg::dot;
    use rand::SeedableRng;

    #[test]
    fn equal_projections_on_unit_gradients() -> Result<()> {
        // g1 = (2, 0), g2 = (0, 1): v = G⁻¹(2, 1) = (½, 1), w = (⅓, ⅔), d = (⅔, ⅔).
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let rows = vec![vec![2.0, 0.0], vec![0.0, 1.0]];
        let (a, d) = aggregate_rows(&mut ImtlG, &rows, &[1.0; 2], &mut rng)?;
        assert!(
            (a.weights[0] - 1.0 / 3.0).abs() < 1e-12 && (a.weights[1] - 2.0 / 3.0).abs() < 1e-12
        );
        assert!((d[0] - 2.0 / 3.0).abs() < 1e-12 && (d[1] - 2.0 / 3.0).abs() < 1e-12);
        // A non-orthogonal triple: the projections on the unit gradients agree.
        let rows = vec![
            vec![1.0, 0.5, 0.0],
            vec![-0.3, 2.0, 0.1],
            vec![0.2, 0.1, 3.0],
        ];
        let (_, d) = aggregate_rows(&mut ImtlG, &rows, &[1.0; 3], &mut rng)?;
        let p: Vec<f64> = rows.iter().map(|r| dot(r, &d) / dot(r, r).sqrt()).collect();
        assert!(
            (p[0] - p[1]).abs() < 1e-9 && (p[0] - p[2]).abs() < 1e-9,
            "{p:?}"
        );
        Ok(())
    }
}
