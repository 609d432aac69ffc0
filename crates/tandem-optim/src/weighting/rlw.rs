//! Random Loss Weighting (Lin, Ye, Xu, Shi & Zhang, TMLR 2022, "Reasonable Effectiveness of
//! Random Weighting: A Litmus Test for Multi-Task Learning").
//!
//! Every step draws fresh weights from a standard normal pushed through a softmax:
//! ```text
//! z ~ N(0, I_T),   w = softmax(z),   L = Σ_t w_t L_t
//! ```
//! so `w` lies in the open simplex (`w_t > 0`, `Σ_t w_t = 1`) and `E[w_t] = 1/T`. This is the
//! paper's "normal" distribution, the one LibMTL's `RLW` and TorchJD's `Random` scalarizer
//! implement; the paper's other distributions (uniform, Dirichlet, Bernoulli, ...) are not offered.
//!
//! - Shapes: `T` scalar losses (the active tasks of the batch, in task order) → `T` weights.
//! - Cost: one backward pass; `O(T)` extra work, no extra memory.
//! - Randomness: `z` comes from [`StepContext::rng`] only (the trainer seeds it from the run
//!   seed and the step), two uniform draws per task through the Box–Muller transform in `f64`,
//!   in task order: the same seed gives the same weights bit for bit.
//! - State: none.
//! - Weights logged: `w_t`, which is `∂L/∂L_t`.
//! - Defaults: no parameter (LibMTL and TorchJD have none either).
//!
//! ```toml
//! weighting = { kind = "rlw" }
//! ```
use super::config::MethodConfig;
use super::{weighted_sum, StepContext, Update, Weighting};
use crate::Result;
use candle_core::Tensor;
use candle_nn::VarBuilder;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskInfo, TaskMap};

/// Random Loss Weighting: `w = softmax(z)`, `z ~ N(0, I)` drawn anew every step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlw;

impl Rlw {
    /// RLW (it has no parameter).
    pub fn new() -> Self {
        Self
    }

    /// `softmax(z)` for `z ~ N(0, I_t)` drawn from `rng` (`t` values, two uniforms each).
    pub fn draw(t: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let z: Vec<f64> = (0..t).map(|_| standard_normal(rng)).collect();
        softmax(&z)
    }
}

/// One draw from `N(0, 1)` by the Box–Muller transform: `√(−2 ln u₁) · cos(2π u₂)` with
/// `u₁ ∈ (0, 1]`, `u₂ ∈ [0, 1)` from `rng`.
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `softmax(z)` with the maximum subtracted (the same value, no overflow).
fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

impl Weighting for Rlw {
    fn name(&self) -> &str {
        "rlw"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let w = Self::draw(losses.len(), ctx.rng);
        let weights: TaskMap<f64> = losses.keys().zip(w).collect();
        let grads = ctx.backward(weighted_sum(losses, &weights)?)?;
        Ok(Update { grads, weights })
    }
}

/// `rlw`'s configuration: no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlwConfig {}

impl MethodConfig for RlwConfig {
    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(Rlw::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    /// `L_a = a²`, `L_b = b²`, one `rlw` step with `rng` seeded `seed`: the weights and
    /// `(∂/∂a, ∂/∂b)`.
    fn step(seed: u64, a: f32, b: f32) -> candle_core::Result<(TaskMap<f64>, [f64; 2])> {
        let dev = Device::Cpu;
        let (va, vb) = (Var::new(a, &dev)?, Var::new(b, &dev)?);
        let losses = TaskMap::new()
            .with("a", va.as_tensor().sqr()?)
            .with("b", vb.as_tensor().sqr()?);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ctx = StepContext {
            trainable: &[],
            shared: &[],
            last_shared: &[],
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step: 0,
            collective: None,
            reduced: Vec::new(),
        };
        let u = Rlw::new().backward(&losses, &mut ctx)?;
        let g = |v: &Var| -> candle_core::Result<f64> {
            Ok(match u.grads.get(v.as_tensor()) {
                Some(g) => f64::from(g.to_scalar::<f32>()?),
                None => 0.0,
            })
        };
        Ok((u.weights.clone(), [g(&va)?, g(&vb)?]))
    }

    /// The weights are `softmax` of two normals drawn from the step's RNG, and the gradient
    /// of `w_a a² + w_b b²` is `(2 w_a a, 2 w_b b)`.
    #[test]
    fn weights_are_softmax_of_normals_and_scale_the_gradients() -> candle_core::Result<()> {
        let (w, [ga, gb]) = step(3, 1.5, -2.0)?;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let z = [standard_normal(&mut rng), standard_normal(&mut rng)];
        // softmax of two values: w_a = 1 / (1 + e^{z_b − z_a}).
        let wa = 1.0 / (1.0 + (z[1] - z[0]).exp());
        assert!((w["a"] - wa).abs() < 1e-15, "{w:?} {z:?}");
        assert!((w["a"] + w["b"] - 1.0).abs() < 1e-15);
        assert!(w["a"] > 0.0 && w["b"] > 0.0);
        assert!((ga - 2.0 * w["a"] * 1.5).abs() < 1e-6, "{ga}");
        assert!((gb - 2.0 * w["b"] * -2.0).abs() < 1e-6, "{gb}");
        Ok(())
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() -> candle_core::Result<()> {
        let (w1, g1) = step(42, 1.0, 1.0)?;
        let (w2, g2) = step(42, 1.0, 1.0)?;
        assert_eq!(w1["a"].to_bits(), w2["a"].to_bits());
        assert_eq!(w1["b"].to_bits(), w2["b"].to_bits());
        assert_eq!(g1, g2);
        let (w3, _) = step(43, 1.0, 1.0)?;
        assert_ne!(w1["a"], w3["a"]);
        Ok(())
    }

    /// The sampler is a standard normal: mean 0, variance 1, `P(|z| < 1) ≈ 0.6827`
    /// (tolerances ≈ 5 standard errors at n = 20 000).
    #[test]
    fn box_muller_draws_are_standard_normal() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let n = 20_000;
        let z: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let within = z.iter().filter(|v| v.abs() < 1.0).count() as f64 / n as f64;
        assert!(mean.abs() < 0.036, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        assert!((within - 0.6827).abs() < 0.017, "{within}");
        assert!(z.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn config_has_no_keys() {
        assert!(serde_json::from_str::<RlwConfig>("{}").is_ok());
        assert!(serde_json::from_str::<RlwConfig>(r#"{"distribution":"dirichlet"}"#).is_err());
    }
}
