//! CAGrad: conflict-averse gradient descent (Liu et al., NeurIPS 2021, "Conflict-Averse
//! Gradient Descent for Multi-task Learning"; TorchJD's `CAGrad`, LibMTL's `CAGrad`).
//!
//! The update maximises the worst task's improvement within a ball around the average
//! gradient `g₀ = Jᵀū` (`ū = 1/T`) of radius `c‖g₀‖`. In the dual, on the trace-normalised
//! Gramian `Ĝ = G / tr(G)`:
//! ```text
//! w* = argmin_{w ∈ Δ} wᵀ Ĝ ū + φ √(wᵀ Ĝ w),   φ = c √(ūᵀ Ĝ ū)
//! weights = ū + (φ / √(w*ᵀ Ĝ w*)) w*,        d = Jᵀ weights   (÷ (1 + c²) with rescale = 1,
//!                                                             ÷ (1 + c) with rescale = 2)
//! ```
//! The dual is solved exactly for `T ≤ 12` by enumerating the supports `S` of `w*`: on a
//! support, stationarity gives `w_S ∝ Ĝ_S⁺(μ1 − b_S)` with `μ` a root of a quadratic
//! (`‖w_S‖_Ĝ` fixes it), so every support has at most two candidates and the feasible one with
//! the lowest objective is the optimum; beyond 12 tasks, projected gradient descent with
//! backtracking (at most 10,000 steps) runs instead. TorchJD solves the same dual with cvxpy
//! (Clarabel). `c = 0` is the mean; larger `c` moves towards MGDA.
//!
//! Defaults: `c = 0.5` (LibMTL's `calpha`; TorchJD requires it), `norm_eps = 1e-4`
//! (TorchJD's: a `√(w*ᵀĜw*)` below it gives a zero update), `rescale = 0` (TorchJD's; LibMTL's
//! default is 1). One deviation: where `tr(G) < norm_eps`, TorchJD returns a zero update, which
//! stalls training once gradients get small; tandem normalises any non-zero Gramian (the
//! weights do not depend on the scale of `G`). Cost: `T` backward passes (parameters) or `T`
//! head passes and one trunk pass (representation), `2^T` small solves. Stateless.
//!
//! ```toml
//! weighting = { kind = "cagrad", c = 0.5 }
//! ```
use super::config::MethodConfig;
use super::linalg::{dot, pinv, project_simplex, Gramian, EXACT_MAX_TASKS};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// `argmin_{w ∈ Δ} wᵀb + φ √(wᵀ G w)` (see the module doc).
pub fn cagrad_dual(g: &Gramian, b: &[f64], phi: f64) -> Vec<f64> {
    let t = g.len();
    let f = |w: &[f64]| dot(w, b) + phi * g.quad(w).max(0.0).sqrt();
    let mut best: Option<(f64, Vec<f64>)> = None;
    let offer = |w: Vec<f64>, best: &mut Option<(f64, Vec<f64>)>| {
        if w.iter().any(|x| !x.is_finite() || *x < -1e-12) {
            return;
        }
        let w: Vec<f64> = w.iter().map(|x| x.max(0.0)).collect();
        let v = f(&w);
        if best.as_ref().is_none_or(|(b, _)| v < *b) {
            *best = Some((v, w));
        }
    };
    if t <= EXACT_MAX_TASKS {
        let full = g.matrix();
        for mask in 1u32..(1 << t) {
            let s: Vec<usize> = (0..t).filter(|i| mask & (1 << i) != 0).collect();
            let k = s.len();
            if k == 1 {
                let mut w = vec![0.0; t];
                w[s[0]] = 1.0;
                offer(w, &mut best);
                continue;
            }
            if phi <= 0.0 {
                continue; // a linear objective: its optimum is a vertex
            }
            let a = pinv(&DMatrix::from_fn(k, k, |r, c| full[(s[r], s[c])]));
            let one = DVector::from_element(k, 1.0);
            let bs = DVector::from_fn(k, |r, _| b[s[r]]);
            let qa = one.dot(&(&a * &one));
            let qc = one.dot(&(&a * &bs));
            let qe = bs.dot(&(&a * &bs));
            // a μ² − 2c μ + e − φ² = 0
            let disc = qc * qc - qa * (qe - phi * phi);
            if qa <= 0.0 || disc < 0.0 {
                continue;
            }
            for mu in [(qc + disc.sqrt()) / qa, (qc - disc.sqrt()) / qa] {
                let y = &a * (&one * mu - &bs) / phi;
                let sum: f64 = y.iter().sum();
                if sum <= 0.0 {
                    continue;
                }
                let mut w = vec![0.0; t];
                for (r, &i) in s.iter().enumerate() {
                    w[i] = y[r] / sum;
                }
                offer(w, &mut best);
            }
        }
    } else {
        offer(projected_gradient(g, b, phi), &mut best);
    }
    best.map(|(_, w)| w)
        .unwrap_or_else(|| vec![1.0 / t as f64; t])
}

fn projected_gradient(g: &Gramian, b: &[f64], phi: f64) -> Vec<f64> {
    let t = g.len();
    let f = |w: &[f64]| dot(w, b) + phi * g.quad(w).max(0.0).sqrt();
    let mut w = vec![1.0 / t as f64; t];
    let mut step = 1.0;
    for _ in 0..10_000 {
        let gw = g.mul(&w);
        let norm = g.quad(&w).max(0.0).sqrt();
        let grad: Vec<f64> = b
            .iter()
            .zip(&gw)
            .map(|(b, gw)| b + if norm > 0.0 { phi * gw / norm } else { 0.0 })
            .collect();
        let f0 = f(&w);
        let mut moved = false;
        while step > 1e-20 {
            let cand = project_simplex(
                &w.iter()
                    .zip(&grad)
                    .map(|(w, d)| w - step * d)
                    .collect::<Vec<_>>(),
            );
            let diff: Vec<f64> = cand.iter().zip(&w).map(|(a, b)| a - b).collect();
            if f(&cand) <= f0 - dot(&diff, &diff) / (2.0 * step) + 1e-300 {
                let change = diff.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                w = cand;
                moved = change > 1e-15;
                step *= 2.0;
                break;
            }
            step *= 0.5;
        }
        if !moved {
            break;
        }
    }
    w
}

/// CAGrad's weights for a Gramian (see the module doc).
pub fn cagrad_weights(g: &Gramian, c: f64, norm_eps: f64, rescale: u8) -> Vec<f64> {
    let t = g.len();
    let u = vec![1.0 / t as f64; t];
    let trace: f64 = g.diag().iter().sum();
    if !(trace > 0.0 && trace.is_finite()) {
        return u;
    }
    let gn = Gramian::from_row_major(t, (0..t * t).map(|k| g.get(k / t, k % t) / trace).collect());
    let b = gn.mul(&u);
    let phi = c * gn.quad(&u).max(0.0).sqrt();
    let w = cagrad_dual(&gn, &b, phi);
    let norm = gn.quad(&w).max(0.0).sqrt();
    if norm < norm_eps {
        return vec![0.0; t];
    }
    let div = match rescale {
        1 => 1.0 + c * c,
        2 => 1.0 + c,
        _ => 1.0,
    };
    u.iter()
        .zip(&w)
        .map(|(u, w)| (u + phi / norm * w) / div)
        .collect()
}

/// CAGrad (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cagrad {
    c: f64,
    norm_eps: f64,
    rescale: u8,
}

impl Cagrad {
    /// CAGrad with radius `c ≥ 0`, `norm_eps` and `rescale` (0, 1 or 2).
    pub fn new(c: f64, norm_eps: f64, rescale: u8) -> Self {
        Self {
            c,
            norm_eps,
            rescale,
        }
    }
}

impl Aggregator for Cagrad {
    fn name(&self) -> &str {
        "cagrad"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        Ok(Aggregation::weights(cagrad_weights(
            input.gramian,
            self.c,
            self.norm_eps,
            self.rescale,
        )))
    }
}

/// CAGrad's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CagradConfig {
    /// The radius `c ≥ 0` (default 0.5).
    #[serde(default = "default_c")]
    pub c: f64,
    /// Below this `√(w*ᵀĜw*)` the update is zero (default 10⁻⁴).
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// 0: none (default), 1: divide by `1 + c²`, 2: by `1 + c`.
    #[serde(default)]
    pub rescale: u8,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_c() -> f64 {
    0.5
}
fn default_norm_eps() -> f64 {
    1e-4
}

impl Default for CagradConfig {
    fn default() -> Self {
        Self {
            c: default_c(),
            norm_eps: default_norm_eps(),
            rescale: 0,
            on: On::Parameters,
        }
    }
}

impl MethodConfig for CagradConfig {
    fn validate(&self) -> Result<()> {
        if !(self.c.is_finite() && self.c >= 0.0) {
            return Err(OptimError::config(
                "weighting.c",
                format!("{} is not ≥ 0", self.c),
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return Err(OptimError::config("weighting.norm_eps", "must be ≥ 0"));
        }
        if self.rescale > 2 {
            return Err(OptimError::config("weighting.rescale", "must be 0, 1 or 2"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            Cagrad::new(self.c, self.norm_eps, self.rescale),
            self.on,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_radius_is_the_mean_and_bad_c_is_named() {
        let g = Gramian::of_rows(&[vec![1.0, 0.0], vec![-0.5, 2.0]]);
        assert_eq!(cagrad_weights(&g, 0.0, 1e-4, 0), vec![0.5, 0.5]);
        let err = CagradConfig {
            c: -1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("weighting.c"));
    }

    proptest! {
        // The enumeration finds the optimum: no point of a fine projected-gradient run is lower.
        #[test]
        fn exact_dual_beats_projected_gradient(
            rows in prop::collection::vec(prop::collection::vec(-3.0f64..3.0, 5), 2..5),
            c in 0.1f64..2.0,
        ) {
            let g = Gramian::of_rows(&rows);
            let t = g.len();
            let trace: f64 = g.diag().iter().sum();
            prop_assume!(trace > 1e-6);
            let gn = Gramian::from_row_major(t, (0..t * t).map(|k| g.get(k / t, k % t) / trace).collect());
            let u = vec![1.0 / t as f64; t];
            let b = gn.mul(&u);
            let phi = c * gn.quad(&u).sqrt();
            let f = |w: &[f64]| dot(w, &b) + phi * gn.quad(w).max(0.0).sqrt();
            let exact = cagrad_dual(&gn, &b, phi);
            let pg = projected_gradient(&gn, &b, phi);
            prop_assert!((exact.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            prop_assert!(f(&exact) <= f(&pg) + 1e-9, "{} > {}", f(&exact), f(&pg));
        }
    }
}
