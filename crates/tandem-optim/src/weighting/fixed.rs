//! Static weighting: `L = Σ_t λ_t L_t (+ penalty)` with fixed `λ_t` (TCDCN's `λ_a`).
//!
//! Loss scales differ by orders of magnitude: an L2 landmark loss on `[0, 1]` coordinates is
//! ~0.002–0.05 while a cross-entropy is ~0.1–1.6, so equal weights let the auxiliary tasks
//! drown the main one. Static weights put them on a chosen footing.
use super::{weighted_sum, StepContext, Update, Weighting};
use candle_core::Tensor;
use tandem_tensor::TaskMap;

/// Fixed per-task weights; tasks not named get 1.
#[derive(Debug, Clone, Default)]
pub struct Static {
    weights: TaskMap<f64>,
}

impl Static {
    /// Weights by task name.
    pub fn new<K: Into<String>>(weights: impl IntoIterator<Item = (K, f64)>) -> Self {
        Self {
            weights: weights.into_iter().collect(),
        }
    }

    /// The configured weights.
    pub fn weights(&self) -> &TaskMap<f64> {
        &self.weights
    }
}

impl Weighting for Static {
    fn name(&self) -> &str {
        "static"
    }
    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let weights = losses.map(|n, _| self.weights.get(n).copied().unwrap_or(1.0));
        let grads = ctx.backward(weighted_sum(losses, &weights)?)?;
        Ok(Update { grads, weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Equal;
    use candle_core::{Device, Var};
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn grads_of(
        w: &mut dyn Weighting,
        l1: f32,
        l2: f32,
    ) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f32, 2.0], &dev)?;
        // L_a = l1·θ₀², L_b = l2·θ₀θ₁
        let t = p.as_tensor();
        let la = (t.narrow(0, 0, 1)?.sqr()? * f64::from(l1))?.sum_all()?;
        let lb = ((t.narrow(0, 0, 1)? * t.narrow(0, 1, 1)?)? * f64::from(l2))?.sum_all()?;
        let losses = TaskMap::new().with("a", la.clone()).with("b", lb.clone());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
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
        let u = w.backward(&losses, &mut ctx)?;
        let wa = u.weights["a"];
        let wb = u.weights["b"];
        let direct = ((la * wa)? + (lb * wb)?)?.backward()?;
        let g = |s: &candle_core::backprop::GradStore| -> candle_core::Result<Vec<f32>> {
            s.get(p.as_tensor())
                .map(|t| t.to_vec1::<f32>())
                .transpose()
                .map(|v| v.unwrap_or_default())
        };
        Ok((g(&u.grads)?, g(&direct)?))
    }

    proptest! {
        #[test]
        fn equal_and_static_are_the_weighted_sum(l1 in 0.001f32..10.0, l2 in 0.001f32..10.0, wa in 0.0f64..5.0) {
            let (a, b) = grads_of(&mut Equal::new(), l1, l2).unwrap();
            prop_assert_eq!(a, b);
            let (a, b) = grads_of(&mut Static::new([("a", wa)]), l1, l2).unwrap();
            prop_assert_eq!(a, b);
        }
    }
}
