//! FAMO (Liu, Feng, Stone & Liu, NeurIPS 2023, "FAMO: Fast Adaptive Multitask Optimization").
//!
//! FAMO balances the rate at which every task's loss falls using the loss values only. With task
//! logits `ξ ∈ ℝ^T`, `z = softmax(ξ)` and `D_t = L_t − b_t + ε` (`b_t = 0`, `ε = 10⁻⁸`, as LibMTL
//! and the official code):
//! ```text
//! L = Σ_t (z_t / c) · log D_t,   c = Σ_t z_t / D_t   (c held constant)
//! ∂L/∂L_t = z_t / (c · D_t)       (positive, Σ_t = 1: a convex combination of the gradients)
//! ```
//! The logits learn from how much each loss fell across a model update,
//! `δ_t = log D_t(before) − log D_t(after)`: their gradient is `∂z/∂ξᵀ δ`, i.e.
//! `d_t = z_t (δ_t − Σ_j z_j δ_j)`, and one Adam step (PyTorch's `Adam`: β = (0.9, 0.999),
//! ε = 10⁻⁸, L2 weight decay `gamma` added to the gradient) moves `ξ` with learning rate `w_lr`.
//!
//! ## When the logits are updated
//! FAMO's official code and LibMTL recompute the losses **on the same batch** after the model
//! step and update `ξ` right away. A [`Weighting`] sees losses only inside
//! [`Weighting::backward`], so this implementation updates `ξ` at the start of the next
//! `backward`, from the previous step's losses ("before") and the current losses ("after"):
//! the current losses are measured after the model update, as FAMO needs, but **on the next
//! batch**, not on the same one, so `δ` carries the batch-to-batch noise as well (and saves
//! FAMO's extra forward pass). The update is made only when exactly one optimizer step lies
//! between the two calls (`ctx.step = previous step + 1`); otherwise (a skipped step) the
//! remembered losses are replaced without an update. Tasks absent from either batch (stopped,
//! or without labels in it) are left out of that update: the softmax and `δ` run over the tasks
//! present in both, and the absent tasks' logits and Adam moments stay as they are.
//!
//! - Shapes: `T` scalar losses → `T` weights; `ξ`, two Adam moments and the last losses: `3T + T`
//!   floats.
//! - Cost: one backward pass; `O(T)` extra work.
//! - State: `ξ`, Adam's moments and step count, the previous step's losses and step number,
//!   saved by [`Weighting::state`] and restored exactly.
//! - Weights logged: `∂L/∂L_t = z_t / (c D_t)`.
//! - Defaults: `w_lr = 0.025`, `gamma = 10⁻³` (TorchJD's `FAMO`, the same as LibMTL's
//!   `FAMO_w_lr` / `FAMO_w_gamma` and the paper's Algorithm 2; the official code uses
//!   `gamma = 10⁻⁵`).
//! - Losses must exceed `−ε` (the logarithm); a smaller loss is an error naming the task.
//!
//! ```toml
//! weighting = { kind = "famo", w_lr = 0.025, gamma = 0.001 }
//! ```
use super::config::MethodConfig;
use super::{StepContext, Update, Weighting};
use crate::{state, OptimError, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskInfo, TaskMap};

/// The name of this state in errors.
const STATE: &str = "weighting state (famo)";
/// `ε` in `D_t = L_t + ε` (LibMTL's and the official code's).
const EPS: f64 = 1e-8;
/// PyTorch `Adam`'s defaults.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

/// `famo`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamoConfig {
    /// Learning rate of the logits' Adam (default 0.025).
    #[serde(default = "default_w_lr")]
    pub w_lr: f64,
    /// Weight decay (L2) of the logits' Adam (default 10⁻³).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
}

fn default_w_lr() -> f64 {
    0.025
}
fn default_gamma() -> f64 {
    1e-3
}

impl Default for FamoConfig {
    fn default() -> Self {
        Self {
            w_lr: default_w_lr(),
            gamma: default_gamma(),
        }
    }
}

impl MethodConfig for FamoConfig {
    fn validate(&self) -> Result<()> {
        if !(self.w_lr.is_finite() && self.w_lr >= 0.0) {
            return Err(OptimError::config("weighting.w_lr", "must be ≥ 0"));
        }
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(OptimError::config("weighting.gamma", "must be ≥ 0"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(Famo::new(*self)))
    }
}

/// One task's logit and its Adam moments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Logit {
    xi: f64,
    m: f64,
    v: f64,
}

/// The losses of the last call and the optimizer step they were taken at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Previous {
    step: u64,
    losses: TaskMap<f64>,
}

/// Everything FAMO remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FamoState {
    /// By task, created at 0 the first time the task is seen.
    logits: TaskMap<Logit>,
    /// Adam steps taken.
    adam_steps: u64,
    previous: Option<Previous>,
}

/// Fast Adaptive Multitask Optimization (loss-level; see the module doc).
#[derive(Debug, Clone)]
pub struct Famo {
    config: FamoConfig,
    state: FamoState,
}

impl Famo {
    /// FAMO with `config`'s learning rate and weight decay, all logits 0 (equal `z`).
    pub fn new(config: FamoConfig) -> Self {
        Self {
            config,
            state: FamoState::default(),
        }
    }

    /// The current logits `ξ_t` of the tasks seen so far.
    pub fn logits(&self) -> TaskMap<f64> {
        self.state.logits.map(|_, l| l.xi)
    }

    /// One Adam step of the logits from the losses before (`prev`) and after (`cur`) a model
    /// update, over the tasks present in both.
    fn update_logits(&mut self, prev: &TaskMap<f64>, cur: &TaskMap<f64>) {
        let common: Vec<(&str, f64)> = cur
            .iter()
            .filter_map(|(name, after)| {
                let before = prev.get(name)?;
                Some((name, (before + EPS).ln() - (after + EPS).ln()))
            })
            .collect();
        if common.is_empty() {
            return;
        }
        let xi: Vec<f64> = common
            .iter()
            .map(|(n, _)| self.state.logits.get(n).map_or(0.0, |l| l.xi))
            .collect();
        let z = softmax(&xi);
        let mean: f64 = z.iter().zip(&common).map(|(z, (_, d))| z * d).sum();
        self.state.adam_steps += 1;
        let t = self.state.adam_steps as f64;
        let (bc1, bc2) = (1.0 - BETA1.powf(t), 1.0 - BETA2.powf(t));
        for (zt, (name, delta)) in z.iter().zip(&common) {
            // Every task of the previous call got a logit then.
            let Some(logit) = self.state.logits.get_mut(name) else {
                continue;
            };
            let g = zt * (delta - mean) + self.config.gamma * logit.xi;
            logit.m = BETA1 * logit.m + (1.0 - BETA1) * g;
            logit.v = BETA2 * logit.v + (1.0 - BETA2) * g * g;
            let denom = (logit.v / bc2).sqrt() + ADAM_EPS;
            logit.xi -= self.config.w_lr * (logit.m / bc1) / denom;
        }
    }
}

impl Default for Famo {
    fn default() -> Self {
        Self::new(FamoConfig::default())
    }
}

/// `softmax(x)` with the maximum subtracted.
fn softmax(x: &[f64]) -> Vec<f64> {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// The value of a one-element loss, in `f64`.
fn value(loss: &Tensor) -> candle_core::Result<f64> {
    loss.to_dtype(DType::F64)?
        .flatten_all()?
        .reshape(())?
        .to_scalar::<f64>()
}

impl Weighting for Famo {
    fn name(&self) -> &str {
        "famo"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let values = losses.try_map(|_, l| value(l))?;
        for (name, v) in values.iter() {
            if !v.is_finite() || v + EPS <= 0.0 {
                candle_core::bail!(
                    "famo takes log(L + 1e-8): the loss of task {name} is {v}; \
                     use a weighting that accepts non-positive losses"
                );
            }
        }
        if let Some(prev) = self.state.previous.take() {
            if ctx.step == prev.step.wrapping_add(1) {
                self.update_logits(&prev.losses, &values);
            }
        }
        let xi: Vec<f64> = values
            .keys()
            .map(|n| self.state.logits.get(n).map_or(0.0, |l| l.xi))
            .collect();
        for name in values.keys() {
            if self.state.logits.get(name).is_none() {
                self.state.logits.insert(name, Logit::default());
            }
        }
        let z = softmax(&xi);
        let d: Vec<f64> = values.iter().map(|(_, v)| v + EPS).collect();
        let c: f64 = z.iter().zip(&d).map(|(z, d)| z / d).sum();
        let mut weights = TaskMap::new();
        let mut total: Option<Tensor> = None;
        for (((name, loss), zt), dt) in losses.iter().zip(&z).zip(&d) {
            weights.insert(name, zt / (c * dt));
            let term = ((loss + EPS)?.log()? * (zt / c))?;
            total = Some(match total {
                None => term,
                Some(t) => (t + term)?,
            });
        }
        let Some(total) = total else {
            candle_core::bail!("no loss to optimise: every task is stopped");
        };
        self.state.previous = Some(Previous {
            step: ctx.step,
            losses: values,
        });
        Ok(Update {
            grads: ctx.backward(total)?,
            weights,
        })
    }

    fn state(&self) -> Result<serde_json::Value> {
        state::to_json(STATE, &self.state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.state = state::from_json(STATE, state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    /// `L_a = a²`, `L_b = b²` at optimizer step `step`: the weights and `(∂/∂a, ∂/∂b)`.
    fn step(
        w: &mut dyn Weighting,
        a: f32,
        b: f32,
        step: u64,
    ) -> candle_core::Result<(TaskMap<f64>, [f64; 2])> {
        let dev = Device::Cpu;
        let (va, vb) = (Var::new(a, &dev)?, Var::new(b, &dev)?);
        let losses = TaskMap::new()
            .with("a", va.as_tensor().sqr()?)
            .with("b", vb.as_tensor().sqr()?);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut ctx = StepContext {
            trainable: &[],
            shared: &[],
            last_shared: &[],
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step,
            collective: None,
            reduced: Vec::new(),
        };
        let u = w.backward(&losses, &mut ctx)?;
        let g = |v: &Var| -> candle_core::Result<f64> {
            Ok(match u.grads.get(v.as_tensor()) {
                Some(g) => f64::from(g.to_scalar::<f32>()?),
                None => 0.0,
            })
        };
        Ok((u.weights.clone(), [g(&va)?, g(&vb)?]))
    }

    /// First step, `ξ = 0`, `L = (1, 4)`: `z = (½, ½)`, `c = ½(1 + ¼) = 0.625`,
    /// weights `z/(c D) = (0.8, 0.2)`, gradients `(0.8·2a, 0.2·2b) = (1.6, 0.8)`.
    #[test]
    fn first_step_weights_and_gradients() -> candle_core::Result<()> {
        let mut f = Famo::default();
        let (w, [ga, gb]) = step(&mut f, 1.0, 2.0, 0)?;
        assert!((w["a"] - 0.8).abs() < 1e-7, "{w:?}");
        assert!((w["b"] - 0.2).abs() < 1e-7, "{w:?}");
        assert!(
            (ga - 1.6).abs() < 1e-6 && (gb - 0.8).abs() < 1e-6,
            "{ga} {gb}"
        );
        Ok(())
    }

    /// `L: (1, 4) → (½, 3)` between steps 0 and 1: `δ = (ln 2, ln 4/3)`, `z = (½, ½)`, so the
    /// logit gradient `d_t = z_t (δ_t − z·δ)` is `(+0.1014, −0.1014)`, and Adam's first step is
    /// `−w_lr·g/|g|`: `ξ = (−0.025, 0.025)`. Then `z = softmax(ξ)`, `c = z_a/½ + z_b/3`, the
    /// weights `z_t/(c L_t)`; PyTorch (`torchjd.scalarization.FAMO(2)`, `update([0.5, 3])`)
    /// gives `ξ = ±0.0249999975` and weights `(0.85091041, 0.14908959)`.
    #[test]
    fn logits_follow_the_loss_decrease() -> candle_core::Result<()> {
        let mut f = Famo::default();
        step(&mut f, 1.0, 2.0, 0)?;
        let (w, [ga, gb]) = step(&mut f, 0.5f32.sqrt(), 3f32.sqrt(), 1)?;
        let xi = f.logits();
        assert!((xi["a"] + 0.025).abs() < 1e-8, "{xi:?}");
        assert!((xi["b"] - 0.025).abs() < 1e-8, "{xi:?}");
        let za = 1.0 / (1.0 + 0.05f64.exp());
        let c = za / 0.5 + (1.0 - za) / 3.0;
        assert!((w["a"] - za / (c * 0.5)).abs() < 1e-6, "{w:?}");
        assert!((w["a"] - 0.850_910_41).abs() < 1e-6, "{w:?}");
        assert!((w["b"] - 0.149_089_59).abs() < 1e-6, "{w:?}");
        // ∂/∂a = w_a · 2a, ∂/∂b = w_b · 2b.
        assert!((ga - w["a"] * 2.0 * 0.5f64.sqrt()).abs() < 1e-6, "{ga}");
        assert!((gb - w["b"] * 2.0 * 3f64.sqrt()).abs() < 1e-6, "{gb}");
        Ok(())
    }

    /// Six steps against TorchJD 0.18's `FAMO(2)` in float64 (each `update` fed the next
    /// step's losses, as this implementation pairs them), weight decay included; the losses are
    /// exact in `f32`. Reference `ξ_a` after each step and `∂L/∂L_a`:
    /// ```python
    /// f = FAMO(2)
    /// for i, l in enumerate(L):            # L = [[a², b²] for (a, b) in seq]
    ///     if i: f.update(l)
    ///     x = l.clone().requires_grad_(); f(x).backward(); print(f._w, x.grad)
    /// ```
    #[test]
    fn matches_torchjd_over_six_steps() -> candle_core::Result<()> {
        let seq = [
            (1.0, 2.0),
            (0.75, 1.75),
            (0.5, 1.5),
            (0.5, 1.25),
            (0.25, 1.25),
            (0.25, 1.0),
        ];
        let xi_a = [
            0.0,
            -0.024_999_996_756_420_752,
            -0.049_617_197_838_793_16,
            -0.057_409_067_186_431_594,
            -0.073_257_335_336_612_72,
            -0.082_361_195_961_296_97,
        ];
        let w_a = [
            0.8,
            0.838_159_307_186_256,
            0.890_707_678_117_260_9,
            0.847_840_510_330_133_3,
            0.955_738_156_723_941,
            0.931_366_121_032_037_5,
        ];
        let mut f = Famo::default();
        for (i, (a, b)) in seq.iter().enumerate() {
            let (w, _) = step(&mut f, *a, *b, i as u64)?;
            let xi = f.logits();
            assert!((xi["a"] - xi_a[i]).abs() < 1e-9, "step {i}: {xi:?}");
            assert!((xi["b"] + xi_a[i]).abs() < 1e-9, "step {i}: {xi:?}");
            assert!((w["a"] - w_a[i]).abs() < 1e-7, "step {i}: {w:?}");
            assert!((w["a"] + w["b"] - 1.0).abs() < 1e-12);
        }
        Ok(())
    }

    /// A skipped optimizer step (same `ctx.step` twice) does not update the logits.
    #[test]
    fn no_update_without_a_model_step() -> candle_core::Result<()> {
        let mut f = Famo::default();
        step(&mut f, 1.0, 2.0, 5)?;
        step(&mut f, 0.1, 2.0, 5)?;
        assert!(f.logits().iter().all(|(_, x)| *x == 0.0));
        step(&mut f, 0.05, 2.0, 6)?;
        // a fell faster (δ_a = ln 4 > δ_b = 0): its logit goes down.
        assert!(
            f.logits()["a"] < 0.0 && f.logits()["b"] > 0.0,
            "{:?}",
            f.logits()
        );
        Ok(())
    }

    #[test]
    fn state_round_trip_continues_identically() -> Result<()> {
        let seq = [(1.0, 2.0), (0.8, 1.9), (0.5, 1.85), (0.45, 1.2), (0.3, 1.1)];
        let mut a = Famo::default();
        for (i, (x, y)) in seq[..3].iter().enumerate() {
            step(&mut a, *x, *y, i as u64)?;
        }
        let mut b = Famo::default();
        b.load_state(&a.state()?)?;
        assert_eq!(b.state, a.state);
        for (i, (x, y)) in seq[3..].iter().enumerate() {
            let i = i as u64 + 3;
            let ra = step(&mut a, *x, *y, i)?;
            let rb = step(&mut b, *x, *y, i)?;
            assert_eq!(ra.0, rb.0);
            assert_eq!(ra.1, rb.1);
        }
        assert_eq!(a.logits(), b.logits());
        assert!(Famo::default()
            .load_state(&serde_json::json!({"logits": 3}))
            .is_err());
        Ok(())
    }

    #[test]
    fn negative_loss_is_an_error_naming_the_task() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let losses = TaskMap::new().with("depth", Tensor::new(-0.5f32, &dev)?);
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
        let err = Famo::default()
            .backward(&losses, &mut ctx)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("depth"), "{err}");
        Ok(())
    }

    #[test]
    fn validate_names_the_key() {
        let bad = FamoConfig {
            w_lr: -1.0,
            ..FamoConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("weighting.w_lr"));
        let bad = FamoConfig {
            gamma: f64::NAN,
            ..FamoConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("weighting.gamma"));
        assert!(FamoConfig::default().validate().is_ok());
        let c: FamoConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, FamoConfig::default());
    }
}
