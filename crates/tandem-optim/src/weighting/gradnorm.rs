//! GradNorm (Chen, Badrinarayanan, Lee & Rabinovich 2018, "GradNorm: Gradient Normalization for
//! Adaptive Loss Balancing in Deep Multitask Networks").
//!
//! The objective is `L = Σ_i w_i L_i` with weights `Σ_i w_i = T` (the number of tasks). After
//! each step the weights move to equalise the tasks' gradient norms on the last shared layer
//! `W`, scaled by how far each task still has to go:
//! ```text
//! G_i = w_i · ‖∇_W L_i‖,   Ḡ = mean_i G_i
//! L̃_i = L_i(t) / L_i(0),   r_i = L̃_i / mean_j L̃_j          (relative inverse training rate)
//! L_grad = Σ_i | G_i − Ḡ · r_i^α |                          (target Ḡ·r_i^α held constant)
//! ∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) · ‖∇_W L_i‖
//! w_i ← max(w_i − η_w · ∂L_grad/∂w_i, 10⁻⁶),   then  w ← T · w / Σ_j w_j
//! ```
//! candle has no double backward, so `G_i = w_i ‖∇_W L_i‖` is used directly: its derivative
//! in `w_i` is exact, and the target is constant as in the paper. `L_i(0)` is the task's loss at
//! its first step. A task absent from an epoch's training losses (stopped) is dropped at the
//! epoch's end and the rest renormalised to sum to their count.
//! Cost: one backward pass per task.
//!
//! ## `update = "libmtl"`: LibMTL's variant
//! LibMTL's `GradNorm.py` (Lin et al. 2022) differs in three ways, and `update = "libmtl"`
//! follows it: the weights are `w = T·softmax(s)` with logits `s_t` that are variables of the
//! model (`weighting.gradnorm.<task>`, trained by the run's optimizer with the gradient
//! `∂L_grad/∂s_k = d_k w_k − p_k Σ_i d_i w_i`, `d_i = sign(G_i − Ḡ r_i^α)·‖∇ L_i‖`,
//! `p = softmax(s)`), so a weight moves by about one learning rate per step in log space
//! whatever the gradient scale; the first epoch trains with equal weights and `L_i(0)` is
//! its mean training loss; and `‖∇ L_i‖` is taken on all shared parameters, not the last
//! shared layer. `lr` is unused there. docs/experiments.md compares the two on the face tasks.
use super::per_task::{flat, norm, per_task_grads};
use super::{weighted_sum, StepContext, Update, Weighting};
use crate::state;
use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskList, TaskMap};

/// How GradNorm moves its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradNormUpdate {
    /// The paper's rule: gradient descent on `w` at `lr`, clamped and renormalised; `L_i(0)`
    /// the first step's loss; norms on the last shared layer (default).
    #[default]
    Paper,
    /// LibMTL's: softmax logits trained by the model's optimizer, a first epoch of equal
    /// weights, norms on every shared parameter.
    Libmtl,
}

impl GradNormUpdate {
    /// `true` for the default, to leave it out when serialising.
    pub fn is_default(&self) -> bool {
        *self == Self::Paper
    }
}

/// The name of this state in errors.
const STATE: &str = "weighting state (gradnorm)";

/// The smallest weight GradNorm lets a task have before renormalising.
const MIN_WEIGHT: f64 = 1e-6;

/// GradNorm's learned state, as plain data (for resume).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GradNormState {
    /// The current weights `w_i` (`Σ w_i` = number of tasks).
    pub weights: TaskMap<f64>,
    /// Each task's loss at its first step, `L_i(0)`.
    pub initial_losses: TaskMap<f64>,
}

/// Gradient normalisation.
#[derive(Debug, Clone)]
pub struct GradNorm {
    alpha: f64,
    lr: f64,
    state: GradNormState,
    /// LibMTL's logits `s_t` (`update = "libmtl"`), `None` for the paper's rule.
    logits: Option<TaskMap<Tensor>>,
}

impl Default for GradNorm {
    fn default() -> Self {
        Self::new(1.5, 0.025)
    }
}

impl GradNorm {
    /// GradNorm with asymmetry `α` (1.5 default; 0 equalises the gradient norms) and weight
    /// learning rate `η_w`.
    pub fn new(alpha: f64, lr: f64) -> Self {
        Self {
            alpha,
            lr,
            state: GradNormState::default(),
            logits: None,
        }
    }

    /// LibMTL's variant (see the module doc): one logit `s_t = 0` per task under `vb`
    /// (`<vb>.gradnorm.<task>`), trained by the run's optimizer.
    pub fn libmtl<T: TaskList + ?Sized>(
        alpha: f64,
        tasks: &T,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let mut logits = TaskMap::new();
        for task in tasks.task_info() {
            let s = vb.get_with_hints(1, &format!("gradnorm.{}", task.name), Init::Const(0.0))?;
            logits.insert(task.name, s);
        }
        Ok(Self {
            logits: Some(logits),
            ..Self::new(alpha, 0.0)
        })
    }

    /// LibMTL's step: equal weights in the first epoch, then `T·softmax(s)` with the logits'
    /// gradient from `L_grad`.
    fn backward_libmtl(
        &mut self,
        logits: &TaskMap<Tensor>,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let ready = ctx.epoch >= 1 && losses.keys().all(|t| self.state.initial_losses.contains(t));
        if !ready {
            let ones = losses.map(|_, _| 1.0);
            let grads = ctx.backward(weighted_sum(losses, &ones)?)?;
            return Ok(Update {
                grads,
                weights: ones,
            });
        }
        let names: Vec<String> = losses.keys().map(String::from).collect();
        let mut s = Vec::with_capacity(names.len());
        for name in &names {
            let Some(l) = logits.get(name) else {
                candle_core::bail!("gradnorm: no logit for task {name}");
            };
            s.push(f64::from(l.flatten_all()?.to_vec1::<f32>()?[0]));
        }
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
        let z: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / z).collect();
        let t = names.len() as f64;
        let w: Vec<f64> = p.iter().map(|p| t * p).collect();
        let weights = TaskMap::from_iter(names.iter().cloned().zip(w.iter().copied()));
        let values = losses.try_map(|_, l| l.to_scalar::<f32>().map(f64::from))?;
        let mut stores = per_task_grads(losses)?;
        let shared = ctx.shared;
        ctx.reduce_rows(&mut stores, shared)?;
        let mut norms = Vec::with_capacity(names.len());
        for (_, store) in &stores {
            norms.push(norm(&flat(store, ctx.shared)?));
        }
        let mut grads = ctx.combine(stores, &weights)?;
        let g: Vec<f64> = w.iter().zip(&norms).map(|(w, n)| w * n).collect();
        let g_mean = g.iter().sum::<f64>() / t;
        let ratios: Vec<f64> = names
            .iter()
            .map(
                |n| match (values.get(n), self.state.initial_losses.get(n)) {
                    (Some(l), Some(l0)) if *l0 > 0.0 && l0.is_finite() && l.is_finite() => l / l0,
                    _ => 1.0,
                },
            )
            .collect();
        let ratio_mean = ratios.iter().sum::<f64>() / t;
        let d: Vec<f64> = g
            .iter()
            .zip(&ratios)
            .zip(&norms)
            .map(|((gi, ratio), n)| {
                let r = if ratio_mean > 0.0 {
                    ratio / ratio_mean
                } else {
                    1.0
                };
                let diff = gi - g_mean * r.powf(self.alpha);
                let sign = if diff > 0.0 {
                    1.0
                } else if diff < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                sign * n
            })
            .collect();
        let dw: f64 = d.iter().zip(&w).map(|(d, w)| d * w).sum();
        for (k, name) in names.iter().enumerate() {
            let Some(l) = logits.get(name) else { continue };
            let gs = d[k] * w[k] - p[k] * dw;
            let grad = Tensor::full(gs as f32, l.shape(), l.device())?.to_dtype(l.dtype())?;
            grads.insert(l, grad);
        }
        Ok(Update { grads, weights })
    }

    /// The learned state.
    pub fn grad_norm_state(&self) -> &GradNormState {
        &self.state
    }

    /// One weight update from the losses `L_i(t)` and gradient norms `‖∇_W L_i‖` of the tasks
    /// of this step (see the module formulas).
    fn update_weights(&mut self, losses: &TaskMap<f64>, norms: &TaskMap<f64>) {
        let n = losses.len() as f64;
        if n == 0.0 {
            return;
        }
        let w = |s: &GradNormState, t: &str| s.weights.get(t).copied().unwrap_or(1.0);
        let g: Vec<f64> = norms.iter().map(|(t, gn)| w(&self.state, t) * gn).collect();
        let g_mean = g.iter().sum::<f64>() / n;
        let ratios: Vec<f64> = losses
            .iter()
            .map(|(t, l)| match self.state.initial_losses.get(t) {
                Some(l0) if *l0 > 0.0 && l0.is_finite() && l.is_finite() => l / l0,
                _ => 1.0,
            })
            .collect();
        let ratio_mean = ratios.iter().sum::<f64>() / n;
        for (((task, gn), gi), ratio) in norms.iter().zip(&g).zip(&ratios) {
            let r = if ratio_mean > 0.0 {
                ratio / ratio_mean
            } else {
                1.0
            };
            let target = g_mean * r.powf(self.alpha);
            let diff = gi - target;
            let sign = if diff > 0.0 {
                1.0
            } else if diff < 0.0 {
                -1.0
            } else {
                0.0
            };
            let new = (w(&self.state, task) - self.lr * sign * gn).max(MIN_WEIGHT);
            self.state.weights.insert(task, new);
        }
        self.renormalise();
    }

    fn renormalise(&mut self) {
        let sum: f64 = self.state.weights.values().sum();
        let count = self.state.weights.len() as f64;
        if sum > 0.0 && sum.is_finite() {
            for (_, w) in self.state.weights.iter_mut() {
                *w *= count / sum;
            }
        }
    }
}

impl Weighting for GradNorm {
    fn name(&self) -> &str {
        "gradnorm"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        if let Some(logits) = self.logits.clone() {
            return self.backward_libmtl(&logits, losses, ctx);
        }
        if ctx.last_shared.is_empty() && !losses.is_empty() {
            candle_core::bail!("GradNorm needs the network's last shared layer, and it names none");
        }
        let values = losses.try_map(|_, l| l.to_scalar::<f32>().map(f64::from))?;
        for (task, v) in values.iter() {
            if !self.state.initial_losses.contains(task) {
                self.state.initial_losses.insert(task, *v);
            }
            if !self.state.weights.contains(task) {
                self.state.weights.insert(task, 1.0);
                self.renormalise();
            }
        }
        let weights = losses.map(|t, _| self.state.weights.get(t).copied().unwrap_or(1.0));
        let mut stores = per_task_grads(losses)?;
        let last_shared = ctx.last_shared;
        ctx.reduce_rows(&mut stores, last_shared)?;
        let mut norms = TaskMap::new();
        for (task, store) in &stores {
            norms.insert(task.clone(), norm(&flat(store, ctx.last_shared)?));
        }
        let grads = ctx.combine(stores, &weights)?;
        self.update_weights(&values, &norms);
        Ok(Update { grads, weights })
    }

    fn end_epoch(&mut self, epoch: usize, train_losses: &TaskMap<f64>) -> candle_core::Result<()> {
        if self.logits.is_some() {
            // LibMTL: L_i(0) is the first epoch's mean training loss.
            if epoch == 0 {
                for (task, l) in train_losses.iter() {
                    self.state.initial_losses.insert(task, *l);
                }
            }
            return Ok(());
        }
        let before = self.state.weights.len();
        self.state.weights = self
            .state
            .weights
            .iter()
            .filter(|(t, _)| train_losses.contains(t))
            .map(|(t, w)| (t, *w))
            .collect();
        if self.state.weights.len() != before {
            self.renormalise();
        }
        Ok(())
    }

    fn state(&self) -> crate::Result<serde_json::Value> {
        state::to_json(STATE, &self.state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> crate::Result<()> {
        self.state = state::from_json(STATE, state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    /// One step on a fixed toy problem, by hand. `W = (1, 1)`, `L_a = 2W₀²` (= 2, `∇_W = (4, 0)`),
    /// `L_b = ½W₁` (= ½, `∇_W = (0, ½)`); `w = (1, 1)`, `α = 1.5`, `η_w = 0.1`.
    /// First step: `r = (1, 1)`, `G = (4, ½)`, `Ḡ = 2.25`, `∂L_grad/∂w = (4, −½)`,
    /// `w = (0.6, 1.05)`, renormalised ×2/1.65 → `(0.727273, 1.272727)`. PyTorch agrees:
    /// ```python
    /// W = torch.tensor([1., 1.], requires_grad=True); w = torch.ones(2, requires_grad=True)
    /// L = [2 * W[0]**2, 0.5 * W[1]]
    /// G = torch.stack([torch.autograd.grad(w[i] * L[i], W, create_graph=True)[0].norm() for i in range(2)])
    /// target = (G.mean() * torch.ones(2) ** 1.5).detach()
    /// (G - target).abs().sum().backward()      # w.grad = [4.0, -0.5]
    /// with torch.no_grad(): w -= 0.1 * w.grad; w *= 2 / w.sum()   # [0.7273, 1.2727]
    /// ```
    /// A second step with `L_a` halved and `L_b` unchanged checks `r = (2/3, 4/3)`.
    #[test]
    fn weight_update_after_one_step() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let wv = Var::new(&[1.0f32, 1.0], &dev)?;
        let t = wv.as_tensor();
        let la = (t.narrow(0, 0, 1)?.sqr()? * 2.0)?.sum_all()?;
        let lb = (t.narrow(0, 1, 1)? * 0.5)?.sum_all()?;
        let losses = TaskMap::new().with("a", la).with("b", lb);
        let vars = vec![("W".to_string(), wv.clone())];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut ctx = StepContext {
            trainable: &vars,
            shared: &vars,
            last_shared: &vars,
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step: 0,
            collective: None,
            reduced: Vec::new(),
        };
        let mut gn = GradNorm::new(1.5, 0.1);
        let u = gn.backward(&losses, &mut ctx)?;
        assert_eq!(u.weights, TaskMap::new().with("a", 1.0).with("b", 1.0));
        let g = u
            .grads
            .get(wv.as_tensor())
            .map(|g| g.to_vec1::<f32>())
            .transpose()?;
        assert_eq!(g, Some(vec![4.0, 0.5]));
        let w = &gn.grad_norm_state().weights;
        assert!((w["a"] - 0.6 * 2.0 / 1.65).abs() < 1e-12, "{w:?}");
        assert!((w["b"] - 1.05 * 2.0 / 1.65).abs() < 1e-12, "{w:?}");
        assert_eq!(
            gn.grad_norm_state().initial_losses,
            TaskMap::new().with("a", 2.0).with("b", 0.5)
        );

        // Second step: L_a = 1 (L̃ = ½), L_b = ½ (L̃ = 1) → r = (2/3, 4/3).
        // With w = (0.727273, 1.272727) and ‖∇_W L_a‖ = 8W₀ = 4, ‖∇_W L_b‖ = ½.
        let wv2 = Var::new(&[0.5f32, 1.0], &dev)?;
        let t2 = wv2.as_tensor();
        let la = (t2.narrow(0, 0, 1)?.sqr()? * 4.0)?.sum_all()?; // 4·¼ = 1, ∇ = 8·½ = 4
        let lb = (t2.narrow(0, 1, 1)? * 0.5)?.sum_all()?;
        let vars2 = vec![("W".to_string(), wv2)];
        let mut ctx = StepContext {
            trainable: &vars2,
            shared: &vars2,
            last_shared: &vars2,
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step: 1,
            collective: None,
            reduced: Vec::new(),
        };
        let (wa, wb) = (0.6 * 2.0 / 1.65, 1.05 * 2.0 / 1.65);
        gn.backward(&TaskMap::new().with("a", la).with("b", lb), &mut ctx)?;
        // G = (4wa, ½wb) = (2.9091, 0.6364), Ḡ = 1.7727; targets Ḡ·(2/3)^1.5 = 0.9649,
        // Ḡ·(4/3)^1.5 = 2.7293 → signs (+, −) → w = (wa − 0.4, wb + 0.05), renormalised.
        let (na, nb) = (wa - 0.4, wb + 0.05);
        let w = &gn.grad_norm_state().weights;
        assert!((w["a"] - na * 2.0 / (na + nb)).abs() < 1e-12, "{w:?}");
        Ok(())
    }

    #[test]
    fn stopped_task_is_dropped_and_state_round_trips() -> candle_core::Result<()> {
        let mut gn = GradNorm::default();
        gn.state.weights = TaskMap::new().with("a", 0.5).with("b", 1.0).with("c", 1.5);
        gn.end_epoch(0, &TaskMap::new().with("a", 1.0).with("c", 1.0))?;
        assert_eq!(
            gn.grad_norm_state().weights,
            TaskMap::new().with("a", 0.5).with("c", 1.5)
        );
        let mut other = GradNorm::default();
        other
            .load_state(
                &gn.state()
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?,
            )
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        assert_eq!(other.grad_norm_state(), gn.grad_norm_state());
        Ok(())
    }

    /// LibMTL's variant on the same toy: `W = (1, 1)`, `L_a = 2W₀²`, `L_b = ½W₁`. Epoch 0 trains
    /// with equal weights and records `L(0) = (2, ½)` at its end; in epoch 1 with `s = 0`:
    /// `w = (1, 1)`, `p = (½, ½)`, `G = (4, ½)`, `Ḡ = 2.25`, `r = (1, 1)`, `d = (4, −½)`,
    /// `∂L_grad/∂s = d ⊙ w − p (d · w) = (2.25, −2.25)` (PyTorch through `2·softmax(s)` agrees:
    /// `∂w_a/∂s_a = ½`, `∂w_b/∂s_a = −½`, so `4·½ + (−½)(−½) = 2.25`).
    #[test]
    fn libmtl_update_by_hand() -> candle_core::Result<()> {
        use candle_nn::VarMap;
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, candle_core::DType::F32, &dev);
        let tasks = [
            tandem_tensor::TaskInfo::regression("a"),
            tandem_tensor::TaskInfo::regression("b"),
        ];
        let mut gn = GradNorm::libmtl(1.5, &tasks[..], vb.pp("weighting"))?;
        let wv = Var::new(&[1.0f32, 1.0], &dev)?;
        let losses = |wv: &Var| -> candle_core::Result<TaskMap<Tensor>> {
            let t = wv.as_tensor();
            Ok(TaskMap::new()
                .with("a", (t.narrow(0, 0, 1)?.sqr()? * 2.0)?.sum_all()?)
                .with("b", (t.narrow(0, 1, 1)? * 0.5)?.sum_all()?))
        };
        let shared = vec![("W".to_string(), wv.clone())];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for epoch in 0..2 {
            let mut ctx = StepContext {
                trainable: &shared,
                shared: &shared,
                last_shared: &shared,
                penalty: None,
                representation: None,
                rng: &mut rng,
                epoch,
                step: epoch as u64,
                collective: None,
                reduced: Vec::new(),
            };
            let u = gn.backward(&losses(&wv)?, &mut ctx)?;
            assert_eq!(u.weights, TaskMap::new().with("a", 1.0).with("b", 1.0));
            let g = u
                .grads
                .get(wv.as_tensor())
                .map(|g| g.to_vec1::<f32>())
                .transpose()?;
            assert_eq!(g, Some(vec![4.0, 0.5]));
            let data = vars
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("lock".into()))?;
            let sa = data["weighting.gradnorm.a"].as_tensor().clone();
            let sb = data["weighting.gradnorm.b"].as_tensor().clone();
            drop(data);
            let ga = u.grads.get(&sa).map(|g| g.to_vec1::<f32>()).transpose()?;
            let gb = u.grads.get(&sb).map(|g| g.to_vec1::<f32>()).transpose()?;
            if epoch == 0 {
                assert_eq!(
                    (ga, gb),
                    (None, None),
                    "no logit gradient in the first epoch"
                );
                gn.end_epoch(0, &TaskMap::new().with("a", 2.0).with("b", 0.5))?;
            } else {
                assert_eq!((ga, gb), (Some(vec![2.25]), Some(vec![-2.25])));
            }
        }
        Ok(())
    }
}
