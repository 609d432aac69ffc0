//! PCGrad, gradient surgery (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning").
//!
//! With `g_t = ∇_θ L_t` on the shared parameters `θ` (flattened, sorted-name order), each task's
//! gradient is projected off every other task's *original* gradient it conflicts with:
//! ```text
//! g_i^PC ← g_i
//! for j in a random order of the other tasks:
//!     if g_i^PC · g_j < 0:  g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) · g_j
//! ∇_θ = Σ_i g_i^PC
//! ```
//! The order is drawn from the step's RNG ([`StepContext::rng`]), so one seed gives identical
//! bits. Task-specific parameters get their plain task gradient; a penalty (soft sharing's tie)
//! is added unprojected. Cost: one backward pass per task.
use super::per_task::{combine, dot, flat, per_task_grads, unflatten_into};
use super::{StepContext, Update, Weighting};
use candle_core::Tensor;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tandem_tensor::TaskMap;

/// Projecting conflicting gradients (PCGrad). Every loss has weight 1.
#[derive(Debug, Clone, Default)]
pub struct PcGrad;

impl PcGrad {
    /// PCGrad.
    pub fn new() -> Self {
        Self
    }
}

/// PCGrad's projection of per-task gradients `grads[i]` (equal lengths): for each `i`, visits the
/// other tasks `j` in an order shuffled by `rng` and, when `g_i^PC · g_j < 0`, sets
/// `g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j` (`g_j` the original gradient; a zero `g_j` is
/// skipped). A projected gradient shorter than 10⁻⁹‖g_i‖ (what is left of `g_i` after removing
/// an antiparallel `g_j`) is rounding noise and becomes zero. Returns the projected gradients,
/// in input order.
///
/// ```
/// use rand::SeedableRng;
/// // g₁ = (1, 0), g₂ = (−1, 1): g₁·g₂ = −1, ‖g₂‖² = 2, ‖g₁‖² = 1
/// let g = vec![vec![1.0, 0.0], vec![-1.0, 1.0]];
/// let pc = tandem_optim::weighting::project_conflicting(&g, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// assert_eq!(pc, vec![vec![0.5, 0.5], vec![0.0, 1.0]]);
/// ```
pub fn project_conflicting(grads: &[Vec<f64>], rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let sq: Vec<f64> = grads.iter().map(|g| dot(g, g)).collect();
    let mut out = Vec::with_capacity(grads.len());
    for (i, gi) in grads.iter().enumerate() {
        let mut order: Vec<usize> = (0..grads.len()).filter(|&j| j != i).collect();
        order.shuffle(rng);
        let mut pc = gi.clone();
        for j in order {
            let gj = &grads[j];
            let d = dot(&pc, gj);
            if d < 0.0 && sq[j] > 0.0 {
                let c = d / sq[j];
                for (p, g) in pc.iter_mut().zip(gj) {
                    *p -= c * g;
                }
            }
        }
        // A projection that cancels g_i (g_j antiparallel) leaves rounding noise of order
        // ε·‖g_i‖ pointing anywhere; it is zero.
        if dot(&pc, &pc) <= SNAP * SNAP * dot(gi, gi) {
            pc.iter_mut().for_each(|p| *p = 0.0);
        }
        out.push(pc);
    }
    out
}

/// A projected gradient shorter than `SNAP·‖g_i‖` is rounding noise and set to zero.
const SNAP: f64 = 1e-9;

impl Weighting for PcGrad {
    fn name(&self) -> &str {
        "pcgrad"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let weights = losses.map(|_, _| 1.0);
        let mut stores = per_task_grads(losses)?;
        let shared = ctx.shared;
        ctx.reduce_rows(&mut stores, shared)?;
        let task_flat = stores
            .iter()
            .map(|(_, s)| flat(s, ctx.shared))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let penalty = ctx.penalty_grads()?;
        let mut shared = match &penalty {
            Some(p) => flat(p, ctx.shared)?,
            None => vec![0.0; task_flat.first().map_or(0, Vec::len)],
        };
        for g in project_conflicting(&task_flat, ctx.rng) {
            shared.resize(shared.len().max(g.len()), 0.0);
            for (s, v) in shared.iter_mut().zip(&g) {
                *s += v;
            }
        }
        let mut grads = combine(stores, &weights, ctx.trainable, penalty)?;
        if !task_flat.is_empty() {
            unflatten_into(&mut grads, ctx.shared, &shared)?;
        }
        Ok(Update { grads, weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use proptest::prelude::*;
    use rand::SeedableRng;

    /// Two conflicting 2-D gradients through the full weighting, checked by hand (the PyTorch
    /// reference of Yu et al.'s `pc_backward` gives the same):
    /// ```python
    /// g1, g2 = torch.tensor([1., 0.]), torch.tensor([-1., 1.])
    /// p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2   # [0.5, 0.5]
    /// p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1   # [0.0, 1.0]
    /// (p1 + p2)                               # [0.5, 1.5]
    /// ```
    /// The head `h` (task-specific) keeps its plain gradient.
    #[test]
    fn two_conflicting_gradients() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let theta = Var::new(&[0.0f32, 0.0], &dev)?;
        let h = Var::new(&[3.0f32], &dev)?;
        let t = theta.as_tensor();
        // L_a = θ·(1, 0) + h², L_b = θ·(−1, 1)
        let la = ((t * Tensor::new(&[1.0f32, 0.0], &dev)?)?.sum_all()?
            + h.as_tensor().sqr()?.sum_all()?)?;
        let lb = (t * Tensor::new(&[-1.0f32, 1.0], &dev)?)?.sum_all()?;
        let losses = TaskMap::new().with("a", la).with("b", lb);
        let shared = vec![("theta".to_string(), theta.clone())];
        let trainable = vec![
            ("h".to_string(), h.clone()),
            ("theta".to_string(), theta.clone()),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut ctx = StepContext {
            trainable: &trainable,
            shared: &shared,
            last_shared: &[],
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step: 0,
            collective: None,
            reduced: Vec::new(),
        };
        let u = PcGrad::new().backward(&losses, &mut ctx)?;
        let g = u
            .grads
            .get(theta.as_tensor())
            .map(|g| g.to_vec1::<f32>())
            .transpose()?;
        assert_eq!(g, Some(vec![0.5, 1.5]));
        let gh = u
            .grads
            .get(h.as_tensor())
            .map(|g| g.to_vec1::<f32>())
            .transpose()?;
        assert_eq!(gh, Some(vec![6.0]));
        assert_eq!(u.weights["a"], 1.0);
        Ok(())
    }

    #[test]
    fn same_seed_same_projection_for_three_tasks() {
        let g = vec![
            vec![1.0, 0.2, -0.3],
            vec![-0.8, 1.0, 0.1],
            vec![0.3, -1.2, 0.9],
        ];
        let a = project_conflicting(&g, &mut ChaCha8Rng::seed_from_u64(4));
        let b = project_conflicting(&g, &mut ChaCha8Rng::seed_from_u64(4));
        assert_eq!(a, b);
    }

    /// The shared gradient PCGrad returns for `L_a = θ·a`, `L_b = θ·b`.
    fn through_the_weighting(a: &[f32], b: &[f32], seed: u64) -> candle_core::Result<Vec<f32>> {
        let dev = Device::Cpu;
        let theta = Var::zeros(a.len(), candle_core::DType::F32, &dev)?;
        let t = theta.as_tensor();
        let la = (t * Tensor::new(a, &dev)?)?.sum_all()?;
        let lb = (t * Tensor::new(b, &dev)?)?.sum_all()?;
        let vars = vec![("theta".to_string(), theta.clone())];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ctx = StepContext {
            trainable: &vars,
            shared: &vars,
            last_shared: &[],
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step: 0,
            collective: None,
            reduced: Vec::new(),
        };
        let u = PcGrad::new().backward(&TaskMap::new().with("a", la).with("b", lb), &mut ctx)?;
        u.grads.get(t).map_or(Ok(vec![]), |g| g.to_vec1::<f32>())
    }

    proptest! {
        /// The same bound on the weighting's own (f32) output.
        #[test]
        fn two_task_update_never_conflicts(
            a in proptest::collection::vec(-10.0f32..10.0, 1..6),
            bs in proptest::collection::vec(-10.0f32..10.0, 6),
            seed in 0u64..1000,
        ) {
            let b = &bs[..a.len()];
            let g: Vec<f64> = through_the_weighting(&a, b, seed).unwrap().into_iter().map(f64::from).collect();
            let n = dot(&g, &g).sqrt();
            for gi in [&a[..], b] {
                let gi: Vec<f64> = gi.iter().map(|&v| f64::from(v)).collect();
                let ni = dot(&gi, &gi).sqrt();
                prop_assert!(dot(&g, &gi) >= -1e-5 * n * ni, "{g:?} vs {gi:?}");
            }
        }

        /// With two tasks the PCGrad sum never conflicts with either task's gradient:
        /// `g · g_i ≥ −1e-5 ‖g‖ ‖g_i‖`.
        #[test]
        fn two_task_sum_never_conflicts(
            g1 in proptest::collection::vec(-10.0f64..10.0, 1..8),
            g2s in proptest::collection::vec(-10.0f64..10.0, 8),
            seed in 0u64..1000,
        ) {
            let g2: Vec<f64> = g2s[..g1.len()].to_vec();
            let pc = project_conflicting(&[g1.clone(), g2.clone()], &mut ChaCha8Rng::seed_from_u64(seed));
            let sum: Vec<f64> = pc[0].iter().zip(&pc[1]).map(|(a, b)| a + b).collect();
            let n = dot(&sum, &sum).sqrt();
            for gi in [&g1, &g2] {
                let ni = dot(gi, gi).sqrt();
                prop_assert!(dot(&sum, gi) >= -1e-5 * n * ni, "{sum:?} vs {gi:?}");
            }
        }
    }
}
