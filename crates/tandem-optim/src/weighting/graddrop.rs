//! GradDrop, gradient sign dropout (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov,
//! NeurIPS 2020, "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign
//! Dropout").
//!
//! Coordinate by coordinate, GradDrop measures how much the tasks agree on the sign of the
//! gradient (its *positive sign purity* `P`), draws one uniform number `U`, and keeps either the
//! positive or the negative task gradients there:
//! ```text
//! P_k = ½ (1 + Σ_t g_tk / (Σ_t |g_tk| + 10⁻⁷))          (k = 1..n)
//! U_k ~ Uniform[0, 1)
//! M_tk = [P_k > U_k and g_tk > 0] + [P_k < U_k and g_tk < 0]
//! d_k = Σ_t g_tk (ℓ + (1 − ℓ) M_tk)                      (ℓ = leak)
//! ```
//! With `leak = 1` this is the plain sum; with `leak = 0` every coordinate of `d` takes the
//! positive part or the negative part of the tasks' gradients, never both. `U` is drawn from the
//! step's RNG, one number per coordinate in order (also where every gradient is zero), so one
//! seed gives identical bits.
//!
//! ## Parameters or representation
//! The paper and LibMTL (which refuses parameter gradients) apply GradDrop to the gradients of
//! the shared representation, summed over the batch after multiplying by the sign of the layer's
//! input. The aggregator sees only the flattened rows, so:
//! - `on = "representation"`: each of the `B·d` coordinates of the representation's gradient
//!   gets its own purity and mask (no sum over the batch, no input-sign correction: that needs
//!   the representation's values, which an aggregator does not see). For a batch of one and a
//!   non-negative representation (after a ReLU) this is LibMTL's rule.
//! - `on = "parameters"` (default): the rule runs coordinate-wise on the flattened shared
//!   parameters' gradients (`n = |θ|`), a common adaptation of GradDrop outside LibMTL.
//!
//! Shapes: `J` is `T × n` (the rows are needed: the rule reads signs), the direction `n`.
//! Cost: `T` backward passes (parameters) or `T` head passes and one trunk pass
//! (representation), `O(T n)` here and `n` random numbers. The logged weights are all 1 (each
//! task enters once, masked). Stateless.
//!
//! Default `leak = 0` (LibMTL's; must lie in `[0, 1]`).
//!
//! ```toml
//! weighting = { kind = "graddrop", on = "representation" }
//! weighting = { kind = "graddrop", leak = 0.1 }
//! ```
use super::config::MethodConfig;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// GradDrop's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradDropConfig {
    /// `ℓ`: the share of a dropped gradient that is kept anyway, in `[0, 1]` (default 0,
    /// LibMTL's).
    #[serde(default)]
    pub leak: f64,
    /// Where the gradients are taken (default `parameters`; the paper's is `representation`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

impl Default for GradDropConfig {
    fn default() -> Self {
        Self {
            leak: 0.0,
            on: On::Parameters,
        }
    }
}

impl MethodConfig for GradDropConfig {
    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.leak) {
            return Err(OptimError::config("weighting.leak", "must lie in [0, 1]"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            GradDrop::new(*self),
            self.on,
        )))
    }
}

/// GradDrop (see the module doc).
#[derive(Debug, Clone)]
pub struct GradDrop {
    config: GradDropConfig,
}

impl GradDrop {
    /// GradDrop with `config`'s leak.
    pub fn new(config: GradDropConfig) -> Self {
        Self { config }
    }
}

impl Aggregator for GradDrop {
    fn name(&self) -> &str {
        "graddrop"
    }

    fn needs_jacobian(&self) -> bool {
        true
    }

    fn aggregate(&mut self, input: &AggregatorInput, rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let Some(rows) = input.jacobian else {
            return Err(OptimError::config(
                "weighting (graddrop)",
                "needs the per-task gradients (rows)",
            ));
        };
        let t = rows.len();
        let n = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != n) {
            return Err(OptimError::config(
                "weighting (graddrop)",
                "task gradients of different lengths",
            ));
        }
        let leak = self.config.leak;
        let mut d = vec![0.0; n];
        for (k, dk) in d.iter_mut().enumerate() {
            let (mut sum, mut abs) = (0.0, 0.0);
            for r in rows {
                sum += r[k];
                abs += r[k].abs();
            }
            let p = 0.5 * (1.0 + sum / (abs + 1e-7));
            let u: f64 = rng.random();
            for r in rows {
                let g = r[k];
                let keep = (p > u && g > 0.0) || (p < u && g < 0.0);
                let m = if keep { 1.0 } else { 0.0 };
                *dk += g * (leak + (1.0 - leak) * m);
            }
        }
        Ok(Aggregation {
            weights: vec![1.0; t],
            direction: Some(d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use rand::SeedableRng;

    fn graddrop(leak: f64) -> GradDrop {
        GradDrop::new(GradDropConfig {
            leak,
            on: On::Parameters,
        })
    }

    /// Where the tasks agree, `P` is 1 (or 0) up to 10⁻⁷ and the agreeing gradients are kept;
    /// where they disagree, `leak = 0` keeps exactly one sign: the positive part or the
    /// negative part.
    #[test]
    fn graddrop_keeps_one_sign_per_coordinate() -> Result<()> {
        let rows = vec![
            vec![1.0, -2.0, 3.0, 0.5, 0.0],
            vec![2.0, -1.0, -1.0, -0.5, 0.0],
            vec![0.5, -0.5, 2.0, 1.0, 0.0],
        ];
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (a, d) = aggregate_rows(&mut graddrop(0.0), &rows, &[1.0; 3], &mut rng)?;
            assert_eq!(a.weights, vec![1.0; 3]);
            assert_eq!(d[0], 3.5);
            assert_eq!(d[1], -3.5);
            assert!(d[2] == 5.0 || d[2] == -1.0, "{d:?}");
            assert!(d[3] == 1.5 || d[3] == -0.5, "{d:?}");
            assert_eq!(d[4], 0.0);
        }
        Ok(())
    }

    /// `leak = 1` keeps everything: the plain sum.
    #[test]
    fn graddrop_full_leak_is_the_sum() -> Result<()> {
        let rows = vec![vec![1.0, -2.0, 3.0], vec![2.0, 1.0, -1.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (_, d) = aggregate_rows(&mut graddrop(1.0), &rows, &[1.0; 2], &mut rng)?;
        assert_eq!(d, vec![3.0, -1.0, 2.0]);
        Ok(())
    }

    /// `g₁ = 3`, `g₂ = −1` on every coordinate: `P = ½(1 + 2/4) = ¾`, so the positive gradient
    /// is kept with probability ¾ (4000 draws: within 0.03, > 6 standard deviations).
    #[test]
    fn graddrop_keeps_positive_with_probability_p() -> Result<()> {
        let n = 4000;
        let rows = vec![vec![3.0; n], vec![-1.0; n]];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (_, d) = aggregate_rows(&mut graddrop(0.0), &rows, &[1.0; 2], &mut rng)?;
        let pos = d.iter().filter(|&&v| v == 3.0).count();
        let neg = d.iter().filter(|&&v| v == -1.0).count();
        assert_eq!(pos + neg, n);
        let frac = pos as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.03, "{frac}");
        Ok(())
    }

    /// One seed gives the same bits; another seed draws other masks.
    #[test]
    fn graddrop_is_seeded() -> Result<()> {
        let rows = vec![vec![1.0; 64], vec![-1.0; 64]];
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            aggregate_rows(&mut graddrop(0.2), &rows, &[1.0; 2], &mut rng)
        };
        let (a1, d1) = run(11)?;
        let (a2, d2) = run(11)?;
        assert_eq!(a1, a2);
        assert_eq!(
            d1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            d2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let (_, d3) = run(12)?;
        assert_ne!(d1, d3);
        Ok(())
    }

    /// Through the whole training step ([`GradientWeighting`] on a linear model's parameters):
    /// the parameter gradient is the aggregator's direction, bit for bit, from the same seed.
    #[test]
    fn graddrop_through_the_weighting() -> Result<()> {
        let rows = vec![vec![1.0, -2.0, 3.0, 0.5], vec![-2.0, 1.0, -1.0, 0.25]];
        let c: crate::WeightingConfig =
            serde_json::from_str(r#"{"kind": "graddrop", "leak": 0.25}"#)
                .map_err(|e| OptimError::config("test", e.to_string()))?;
        let u = crate::weighting::rows::run_on_rows(&c, &rows, &[1.0, 1.0], 5)?;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (_, d) = aggregate_rows(&mut graddrop(0.25), &rows, &[1.0; 2], &mut rng)?;
        assert_eq!(u.grad, d);
        assert_eq!(u.weights, vec![1.0, 1.0]);
        Ok(())
    }

    #[test]
    fn graddrop_validate_names_leak() {
        for leak in [-0.1, 1.01, f64::NAN] {
            let err = GradDropConfig {
                leak,
                on: On::Representation,
            }
            .validate();
            assert!(
                matches!(&err, Err(OptimError::Config { field, .. }) if field == "weighting.leak"),
                "{err:?}"
            );
        }
        assert!(GradDropConfig::default().validate().is_ok());
    }
}
