//! Smooth Tchebycheff scalarization (Lin, Zhang, Yang, Zhang & Zhang, ICML 2024, "Smooth
//! Tchebycheff Scalarization for Multi-Objective Optimization"), in the multi-task form of the
//! official `STCH_MTL` code and LibMTL's `STCH`.
//!
//! Three phases by epoch `e` (0-based, [`StepContext::epoch`]), with `δ = 10⁻²⁰` (LibMTL's):
//! ```text
//! e <  warmup_epoch:  L = Σ_t log(L_t + δ)                           ∂L/∂L_t = 1/(L_t + δ)
//! e == warmup_epoch:  the same, and every step's L_t is summed: n_t = mean of L_t over the epoch
//! e >  warmup_epoch:  u_t = log(L_t / n_t + δ)
//!                     L = T · μ · log Σ_t exp(u_t / μ)                ∂L/∂L_t = T · p_t / (L_t + δ n_t)
//!                     p = softmax(u / μ)
//! ```
//! So STCH proper is a smooth maximum of the log losses normalised by the nadir point `n` (the
//! mean losses of the last warm-up epoch, fixed at the first step after it), `T` its scale (the
//! weights `T p_t` sum to `T`, as those of a plain sum). The maximum `max_t u_t` is subtracted
//! inside the exponentials and added back outside (the value and the gradient are unchanged,
//! nothing overflows for small `μ`). During the warm-up the objective is the scale-invariant
//! `Σ log L_t`, as in LibMTL and the official code (not the plain sum).
//!
//! The nadir comes from the step losses of epoch `warmup_epoch` (each task's mean over the steps
//! in which it had a loss), as LibMTL does. A task without a loss in that epoch gets `n_t = 1`
//! (and if no task had one, e.g. a run resumed past the warm-up without this state, a warning is
//! logged when the nadir is fixed).
//!
//! - Shapes: `T` scalar losses → `T` weights; state `3T` floats.
//! - Cost: one backward pass; `O(T)` extra work.
//! - State: the warm-up sums and counts and the nadir, saved by [`Weighting::state`] and
//!   restored exactly.
//! - Weights logged: `∂L/∂L_t` (LibMTL logs ones).
//! - Losses must be non-negative (`log`); a negative loss is an error naming the task.
//! - Defaults: `mu = 1`, `warmup_epoch = 4` (LibMTL's `STCH_mu`, `STCH_warmup_epoch`; TorchJD's
//!   `STCH` scalarizer has no default `μ` and no warm-up).
//!
//! ```toml
//! weighting = { kind = "stch", mu = 1.0, warmup_epoch = 4 }
//! ```
use super::config::MethodConfig;
use super::{StepContext, Update, Weighting};
use crate::{state, OptimError, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskInfo, TaskMap};

/// The name of this state in errors.
const STATE: &str = "weighting state (stch)";
/// `δ` inside the logarithms (LibMTL's `1e-20`).
const DELTA: f64 = 1e-20;

/// `stch`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StchConfig {
    /// Smoothing `μ > 0` (default 1); smaller is closer to the maximum.
    #[serde(default = "default_mu")]
    pub mu: f64,
    /// The epoch whose losses give the nadir point; STCH proper starts after it (default 4).
    #[serde(default = "default_warmup_epoch")]
    pub warmup_epoch: usize,
}

fn default_mu() -> f64 {
    1.0
}
fn default_warmup_epoch() -> usize {
    4
}

impl Default for StchConfig {
    fn default() -> Self {
        Self {
            mu: default_mu(),
            warmup_epoch: default_warmup_epoch(),
        }
    }
}

impl MethodConfig for StchConfig {
    fn validate(&self) -> Result<()> {
        if !(self.mu.is_finite() && self.mu > 0.0) {
            return Err(OptimError::config("weighting.mu", "must be > 0"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(Stch::new(*self)))
    }
}

/// What STCH remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StchState {
    /// Σ L_t over the steps of epoch `warmup_epoch`.
    sums: TaskMap<f64>,
    /// The number of those steps, by task.
    counts: TaskMap<u64>,
    /// `n_t`, fixed at the first step after the warm-up.
    nadir: Option<TaskMap<f64>>,
}

/// Smooth Tchebycheff scalarization (see the module doc).
#[derive(Debug, Clone)]
pub struct Stch {
    config: StchConfig,
    state: StchState,
}

impl Stch {
    /// STCH with `config`'s `μ` and warm-up.
    pub fn new(config: StchConfig) -> Self {
        Self {
            config,
            state: StchState::default(),
        }
    }

    /// The nadir point `n_t`, once fixed.
    pub fn nadir(&self) -> Option<&TaskMap<f64>> {
        self.state.nadir.as_ref()
    }

    /// Fixes `n_t = Σ L_t / count` from the warm-up epoch (first call after it).
    fn fix_nadir(&mut self) -> &TaskMap<f64> {
        let state = &mut self.state;
        state.nadir.get_or_insert_with(|| {
            let nadir: TaskMap<f64> = state
                .sums
                .iter()
                .filter_map(|(name, s)| {
                    let c = *state.counts.get(name)?;
                    (c > 0).then(|| (name, s / c as f64))
                })
                .collect();
            if nadir.is_empty() {
                tracing::warn!(
                    "stch: no loss was recorded in the warm-up epoch {}; every nadir is 1",
                    self.config.warmup_epoch
                );
            }
            nadir
        })
    }
}

impl Default for Stch {
    fn default() -> Self {
        Self::new(StchConfig::default())
    }
}

/// The value of a one-element loss, in `f64`; an error naming `task` if negative or not finite.
fn value(task: &str, loss: &Tensor) -> candle_core::Result<f64> {
    let v = loss
        .to_dtype(DType::F64)?
        .flatten_all()?
        .reshape(())?
        .to_scalar::<f64>()?;
    if !(v >= 0.0 && v.is_finite()) {
        candle_core::bail!(
            "stch takes log(L): the loss of task {task} is {v}; \
             use a weighting that accepts negative losses"
        );
    }
    Ok(v)
}

/// `Σ` of `terms` in order.
fn sum(terms: Vec<Tensor>) -> candle_core::Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for term in terms {
        total = Some(match total {
            None => term,
            Some(t) => (t + term)?,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => candle_core::bail!("no loss to optimise: every task is stopped"),
    }
}

impl Weighting for Stch {
    fn name(&self) -> &str {
        "stch"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let values: Vec<f64> = losses
            .iter()
            .map(|(name, l)| value(name, l))
            .collect::<candle_core::Result<_>>()?;
        let warmup = self.config.warmup_epoch;
        if ctx.epoch <= warmup {
            if ctx.epoch == warmup {
                for ((name, _), v) in losses.iter().zip(&values) {
                    let s = self.state.sums.get(name).copied().unwrap_or(0.0);
                    self.state.sums.insert(name, s + v);
                    let c = self.state.counts.get(name).copied().unwrap_or(0);
                    self.state.counts.insert(name, c + 1);
                }
            }
            let terms = losses
                .iter()
                .map(|(_, l)| (l + DELTA)?.log())
                .collect::<candle_core::Result<Vec<_>>>()?;
            let weights = losses
                .keys()
                .zip(&values)
                .map(|(name, v)| (name, 1.0 / (v + DELTA)))
                .collect();
            return Ok(Update {
                grads: ctx.backward(sum(terms)?)?,
                weights,
            });
        }

        let mu = self.config.mu;
        let t = losses.len() as f64;
        let nadir = self.fix_nadir().clone();
        let n: Vec<f64> = losses
            .keys()
            .map(|name| nadir.get(name).copied().unwrap_or(1.0))
            .collect();
        let u: Vec<f64> = values
            .iter()
            .zip(&n)
            .map(|(v, n)| (v / n + DELTA).ln())
            .collect();
        let max = u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = u.iter().map(|u| ((u - max) / mu).exp()).collect();
        let total: f64 = e.iter().sum();
        let weights = losses
            .keys()
            .zip(e.iter().zip(values.iter().zip(&n)))
            .map(|(name, (e, (v, n)))| (name, t * (e / total) / (v + DELTA * n)))
            .collect();
        let terms = losses
            .iter()
            .zip(&n)
            .map(|((_, l), n)| {
                // exp((log(L_t / n_t + δ) − max) / μ)
                ((l / *n)? + DELTA)?
                    .log()?
                    .affine(1.0 / mu, -max / mu)?
                    .exp()
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let objective = sum(terms)?.log()?.affine(t * mu, t * max)?;
        Ok(Update {
            grads: ctx.backward(objective)?,
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

    /// `L_a = a²`, `L_b = b²` in `epoch`: the weights and `(∂/∂a, ∂/∂b)`.
    fn step(
        w: &mut dyn Weighting,
        epoch: usize,
        a: f32,
        b: f32,
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
            epoch,
            step: 0,
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

    fn config(mu: f64, warmup_epoch: usize) -> StchConfig {
        StchConfig { mu, warmup_epoch }
    }

    /// Warm-up: `Σ log L_t`, so `∂/∂a = 2/a`: `(2/0.5, 2/2) = (4, 1)`, weights `1/L = (4, ¼)`.
    #[test]
    fn warm_up_is_the_log_sum() -> candle_core::Result<()> {
        let mut s = Stch::new(config(1.0, 1));
        let (w, [ga, gb]) = step(&mut s, 0, 0.5, 2.0)?;
        assert!(
            (w["a"] - 4.0).abs() < 1e-9 && (w["b"] - 0.25).abs() < 1e-9,
            "{w:?}"
        );
        assert!(
            (ga - 4.0).abs() < 1e-5 && (gb - 1.0).abs() < 1e-6,
            "{ga} {gb}"
        );
        assert!(s.state.sums.is_empty(), "epoch 0 < warm-up records nothing");
        Ok(())
    }

    /// Warm-up epoch 1 sees `L = (1, 4)` and `(1, 16)`: nadir `(1, 10)`. Then `L = (1, 5)`:
    /// `u = (0, log ½)`; with `μ = 1`, `p = (⅔, ⅓)`, weights `2 p_t / L_t = (4/3, 2/15)`;
    /// `∂/∂a = 4/3 · 2a = 8/3`, `∂/∂b = 2/15 · 2√5`. With `μ = 0.5`: `p ∝ (1, ¼)`,
    /// `p = (0.8, 0.2)`, weights `(1.6, 0.08)`.
    #[test]
    fn nadir_from_the_warm_up_epoch_then_smooth_max() -> candle_core::Result<()> {
        for (mu, wa, wb) in [(1.0, 4.0 / 3.0, 2.0 / 15.0), (0.5, 1.6, 0.08)] {
            let mut s = Stch::new(config(mu, 1));
            step(&mut s, 0, 3.0, 3.0)?;
            step(&mut s, 1, 1.0, 2.0)?;
            step(&mut s, 1, 1.0, 4.0)?;
            assert!(s.nadir().is_none());
            let (w, [ga, gb]) = step(&mut s, 2, 1.0, 5f32.sqrt())?;
            let nadir = s.nadir().cloned().unwrap_or_default();
            assert_eq!(nadir, TaskMap::new().with("a", 1.0).with("b", 10.0));
            assert!(
                (w["a"] - wa).abs() < 1e-6 && (w["b"] - wb).abs() < 1e-6,
                "{w:?}"
            );
            assert!((ga - wa * 2.0).abs() < 1e-5, "{ga}");
            assert!((gb - wb * 2.0 * 5f64.sqrt()).abs() < 1e-5, "{gb}");
        }
        Ok(())
    }

    /// Small `μ` does not overflow: the weights go to `T/L_t` on the largest normalised loss.
    #[test]
    fn small_mu_tends_to_the_maximum() -> candle_core::Result<()> {
        let mut s = Stch::new(config(1e-3, 0));
        step(&mut s, 0, 1.0, 1.0)?;
        let (w, [ga, gb]) = step(&mut s, 1, 1.0, 2.0)?;
        assert!((w["b"] - 0.5).abs() < 1e-9 && w["a"] < 1e-100, "{w:?}");
        assert!(ga.abs() < 1e-12 && (gb - 2.0).abs() < 1e-5, "{ga} {gb}");
        Ok(())
    }

    #[test]
    fn state_round_trip_continues_identically() -> Result<()> {
        let mut a = Stch::new(config(0.7, 1));
        step(&mut a, 0, 2.0, 1.0)?;
        step(&mut a, 1, 1.5, 0.9)?;
        let mut b = Stch::new(config(0.7, 1));
        b.load_state(&a.state()?)?;
        for (epoch, x, y) in [(1, 1.2, 0.8), (2, 1.0, 0.7), (3, 0.9, 0.75)] {
            let ra = step(&mut a, epoch, x, y)?;
            let rb = step(&mut b, epoch, x, y)?;
            assert_eq!(ra.0, rb.0);
            assert_eq!(ra.1, rb.1);
        }
        assert_eq!(a.state, b.state);
        assert!(a.nadir().is_some());
        assert!(b.load_state(&serde_json::json!([1])).is_err());
        Ok(())
    }

    #[test]
    fn negative_loss_is_an_error_naming_the_task() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let err = value("depth", &Tensor::new(-1f32, &dev)?).err();
        assert!(err.is_some_and(|e| e.to_string().contains("depth")));
        Ok(())
    }

    #[test]
    fn validate_names_the_key() {
        for mu in [0.0, -1.0, f64::INFINITY] {
            let err = config(mu, 4).validate().unwrap_err().to_string();
            assert!(err.contains("weighting.mu"), "{err}");
        }
        assert!(StchConfig::default().validate().is_ok());
        let c: StchConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, config(1.0, 4));
    }
}
