//! Aligned-MTL (Senushkin et al., CVPR 2023, "Independent Component Alignment for Multi-Task
//! Learning"; TorchJD's `AlignedMTL`).
//!
//! The task gradients are made orthogonal and of equal norm (the condition number of the
//! aligned system is 1) with a balance transformation of the Gramian `G = V Λ Vᵀ`:
//! ```text
//! B = √σ · V_r Λ_r^{−½} V_rᵀ,    w = B p,    d = Jᵀw
//! ```
//! with `V_r, Λ_r` the eigenpairs above `max λ · T · ε_f64` (rank `r`; `B = I` when `r = 0`),
//! `p` the preference vector (`1/T`) and the scale `σ`: the smallest kept eigenvalue (`min`,
//! default, TorchJD's), their `median` or their mean (`rmse`). Cost: `T` backward passes
//! (parameters) or `T` head passes and one trunk pass (representation), one `T × T`
//! eigendecomposition. Stateless.
//!
//! ```toml
//! weighting = { kind = "aligned_mtl" }
//! weighting = { kind = "aligned_mtl", scale_mode = "median" }
//! ```
use super::config::MethodConfig;
use super::linalg::Gramian;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::Result;
use candle_nn::VarBuilder;
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// How Aligned-MTL scales the balanced gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMode {
    /// The smallest kept eigenvalue (default).
    #[default]
    Min,
    /// The median kept eigenvalue (the lower middle one for an even count, as `torch.median`).
    Median,
    /// The mean kept eigenvalue.
    Rmse,
}

/// Aligned-MTL's weights `B p` for a Gramian (`p = 1/T`).
pub fn aligned_weights(g: &Gramian, mode: ScaleMode) -> Vec<f64> {
    let t = g.len();
    let p = DVector::from_element(t, 1.0 / t as f64);
    let eig = SymmetricEigen::new(g.matrix());
    let max = eig
        .eigenvalues
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    let tol = max * t as f64 * f64::EPSILON;
    let mut kept: Vec<usize> = (0..t).filter(|&i| eig.eigenvalues[i] > tol).collect();
    if kept.is_empty() {
        return p.iter().copied().collect();
    }
    // Descending eigenvalues (a fixed order: ties broken by index).
    kept.sort_by(|&a, &b| {
        eig.eigenvalues[b]
            .total_cmp(&eig.eigenvalues[a])
            .then(a.cmp(&b))
    });
    let lambda: Vec<f64> = kept.iter().map(|&i| eig.eigenvalues[i]).collect();
    let r = lambda.len();
    let scale = match mode {
        ScaleMode::Min => lambda[r - 1],
        // `lambda` descends; the lower middle value of the ascending order.
        ScaleMode::Median => lambda[r - 1 - (r - 1) / 2],
        ScaleMode::Rmse => lambda.iter().sum::<f64>() / r as f64,
    };
    let v = DMatrix::from_fn(t, r, |i, k| eig.eigenvectors[(i, kept[k])]);
    let s = DMatrix::from_diagonal(&DVector::from_iterator(
        r,
        lambda.iter().map(|l| 1.0 / l.sqrt()),
    ));
    let b = (&v * s * v.transpose()) * scale.sqrt();
    (b * p).iter().copied().collect()
}

/// Aligned-MTL (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlignedMtl {
    mode: ScaleMode,
}

impl AlignedMtl {
    /// Aligned-MTL with a scale mode.
    pub fn new(mode: ScaleMode) -> Self {
        Self { mode }
    }
}

impl Aggregator for AlignedMtl {
    fn name(&self) -> &str {
        "aligned_mtl"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        Ok(Aggregation::weights(aligned_weights(
            input.gramian,
            self.mode,
        )))
    }
}

/// Aligned-MTL's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignedMtlConfig {
    /// `min` (default, TorchJD's), `median` or `rmse`.
    #[serde(default)]
    pub scale_mode: ScaleMode,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

impl MethodConfig for AlignedMtlConfig {
    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            AlignedMtl::new(self.scale_mode),
            self.on,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use crate::weighting::linalg::dot;
    use rand::SeedableRng;

    #[test]
    fn aligned_rows_are_orthogonal_with_the_smallest_singular_value() -> Result<()> {
        // Orthogonal g1 = (3, 0), g2 = (0, 1): Λ = (9, 1), V = I, σ = 1:
        // B = diag(⅓, 1), w = B·½ = (⅙, ½), d = (½, ½).
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(
            &mut AlignedMtl::default(),
            &[vec![3.0, 0.0], vec![0.0, 1.0]],
            &[1.0; 2],
            &mut rng,
        )?;
        assert!((a.weights[0] - 1.0 / 6.0).abs() < 1e-12 && (a.weights[1] - 0.5).abs() < 1e-12);
        assert!((d[0] - 0.5).abs() < 1e-12 && (d[1] - 0.5).abs() < 1e-12);
        // In general the rows of B J are orthogonal with norm √σ: (BJ)(BJ)ᵀ = B G B = σ I.
        let rows = vec![
            vec![1.0, 0.5, 0.0],
            vec![-0.3, 2.0, 0.1],
            vec![0.2, 0.1, 3.0],
        ];
        let g = Gramian::of_rows(&rows);
        let eig = SymmetricEigen::new(g.matrix());
        let sigma = eig
            .eigenvalues
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        // B e_i = T · w(e_i) is not exposed; check through d = Jᵀ B p with p = 1/T instead:
        // ‖d‖² = pᵀ B G B p = σ ‖p‖².
        let (_, d) = aggregate_rows(&mut AlignedMtl::default(), &rows, &[1.0; 3], &mut rng)?;
        assert!((dot(&d, &d) - sigma / 3.0).abs() < 1e-9 * sigma.max(1.0));
        Ok(())
    }
}
