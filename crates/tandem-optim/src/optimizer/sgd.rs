//! SGD with momentum and Nesterov momentum, the same update as PyTorch's `torch.optim.SGD`.
//!
//! For each parameter `θ` with gradient `g`, rate `η`, momentum `μ`, dampening `τ`, weight decay
//! `λ` (coupled L2, added to the gradient):
//! ```text
//! g ← g + λθ
//! b ← g                          (first step)
//! b ← μ b + (1 − τ) g            (later steps)
//! d ← g + μ b  (Nesterov)   or   d ← b
//! θ ← θ − η d
//! ```
//! With `μ = 0` it is plain SGD (`d = g`) and keeps no state. Parameters are visited in
//! sorted-name order; a parameter without a gradient is left untouched, its buffer included.
use super::{other_kind, Optimizer, OptimizerState, STATE};
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Hyper-parameters of [`Sgd`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Base learning rate `η`. Default 0.01.
    pub lr: f64,
    /// Momentum `μ`. Default 0.9.
    pub momentum: f64,
    /// Dampening `τ` of the momentum buffer. Default 0.
    pub dampening: f64,
    /// Nesterov momentum (needs `μ > 0` and `τ = 0`). Default false.
    pub nesterov: bool,
    /// Coupled L2 weight decay `λ`. Default 0.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 0.01,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// Checks every value, naming the offending key.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(OptimError::config(
                "optimizer.lr",
                format!("{} is not a positive number", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(OptimError::config(
                "optimizer.momentum",
                "must be in [0, 1)",
            ));
        }
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(OptimError::config(
                "optimizer.dampening",
                "must be in [0, 1]",
            ));
        }
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(OptimError::config(
                "optimizer.nesterov",
                "needs momentum > 0 and dampening 0",
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(OptimError::config("optimizer.weight_decay", "must be ≥ 0"));
        }
        Ok(())
    }
}

/// The optimizer's state as plain data: each parameter's momentum buffer `b`, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SgdState {
    /// Flattened momentum buffers.
    pub buffers: BTreeMap<String, Vec<f32>>,
}

/// SGD with (Nesterov) momentum and inspectable state.
#[derive(Debug, Clone)]
pub struct Sgd {
    config: SgdConfig,
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// A fresh optimizer.
    pub fn new(config: SgdConfig) -> Self {
        Self {
            config,
            buffers: BTreeMap::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// One update of `vars` (name, variable) from `grads` at learning rate `lr`.
    fn update(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        let c = self.config;
        for (name, var) in vars {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let theta = var.as_tensor();
            let mut g = g.detach();
            if c.weight_decay != 0.0 {
                g = (g + (theta * c.weight_decay)?)?;
            }
            let d = if c.momentum == 0.0 {
                g
            } else {
                let b = match self.buffers.remove(name) {
                    Some(b) => ((b * c.momentum)? + (&g * (1.0 - c.dampening))?)?,
                    None => g.clone(),
                };
                let d = if c.nesterov {
                    (&g + (&b * c.momentum)?)?
                } else {
                    b.clone()
                };
                self.buffers.insert(name.clone(), b);
                d
            };
            var.set(&(theta - (d * lr)?)?)?;
        }
        Ok(())
    }

    /// The state as typed plain data ([`Optimizer::state`] writes it as JSON).
    pub fn state_data(&self) -> Result<SgdState> {
        let mut buffers = BTreeMap::new();
        for (k, b) in &self.buffers {
            buffers.insert(k.clone(), b.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(SgdState { buffers })
    }

    /// Restores a state saved by [`Sgd::state_data`]; `vars` gives each buffer its shape and
    /// device.
    pub fn load_state_data(&mut self, state: &SgdState, vars: &[(String, Var)]) -> Result<()> {
        let mut buffers = BTreeMap::new();
        for (name, b) in &state.buffers {
            let Some((_, var)) = vars.iter().find(|(n, _)| n == name) else {
                return Err(OptimError::config(
                    STATE,
                    format!("a momentum buffer for {name}, which the model does not have"),
                ));
            };
            if b.len() != var.elem_count() {
                return Err(OptimError::config(
                    STATE,
                    format!(
                        "the buffer of {name} does not match its shape {:?}",
                        var.dims()
                    ),
                ));
            }
            buffers.insert(
                name.clone(),
                Tensor::from_slice(b, var.shape(), var.device())?,
            );
        }
        self.buffers = buffers;
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &str {
        "sgd"
    }

    fn step(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        self.update(vars, grads, lr)
    }

    fn state(&self) -> Result<Value> {
        OptimizerState::Sgd(self.state_data()?).to_json()
    }

    fn load_state(&mut self, state: &Value, vars: &[(String, Var)]) -> Result<()> {
        match OptimizerState::from_json(state)? {
            OptimizerState::Sgd(s) => self.load_state_data(&s, vars),
            _ => Err(other_kind()),
        }
    }

    /// Drops the buffers of the named parameters (a stopped task's head).
    fn forget(&mut self, names: &[String]) {
        for n in names {
            self.buffers.remove(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Three steps on f(θ) = Σ c·θ, by hand; PyTorch gives the same:
    /// ```python
    /// for nesterov in (False, True):
    ///     p = torch.tensor([1.0, -2.0], requires_grad=True)
    ///     opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.0)
    ///     for c in ([0.5, -1.0], [-0.2, -1.0], [1.0, 0.0]):
    ///         opt.zero_grad(); (p * torch.tensor(c)).sum().backward(); opt.step()
    /// ```
    /// Heavy ball, θ₀: b = 0.5, 0.25, 1.225 → θ₀ = 1 − 0.1·(0.5 + 0.25 + 1.225) = 0.8025.
    /// Nesterov, θ₀: d = 0.5 + 0.45, −0.2 + 0.225, 1 + 1.1025 → θ₀ = 1 − 0.1·3.0775 = 0.69225.
    #[test]
    fn matches_hand_derived_sgd() -> Result<()> {
        let dev = Device::Cpu;
        for (nesterov, want) in [(false, 0.8025f32), (true, 0.69225)] {
            let p = Var::new(&[1.0f32, -2.0], &dev)?;
            let vars = vec![("p".to_string(), p.clone())];
            let mut opt = Sgd::new(SgdConfig {
                lr: 0.1,
                nesterov,
                ..Default::default()
            });
            for c in [[0.5f32, -1.0], [-0.2, -1.0], [1.0, 0.0]] {
                let loss = (p.as_tensor() * Tensor::new(&c, &dev)?)?.sum_all()?;
                opt.step(&vars, &loss.backward()?, 0.1)?;
            }
            let v = p.to_vec1::<f32>()?;
            assert!((v[0] - want).abs() < 1e-6, "nesterov={nesterov}: {v:?}");
        }
        Ok(())
    }

    #[test]
    fn weight_decay_is_coupled() -> Result<()> {
        // g = 0 + 0.5·2 = 1 → θ = 2 − 0.1 = 1.9 (no momentum).
        let dev = Device::Cpu;
        let p = Var::new(&[2.0f32], &dev)?;
        let vars = vec![("p".to_string(), p.clone())];
        let mut opt = Sgd::new(SgdConfig {
            momentum: 0.0,
            weight_decay: 0.5,
            ..Default::default()
        });
        let loss = (p.as_tensor() * Tensor::new(&[0.0f32], &dev)?)?.sum_all()?;
        opt.step(&vars, &loss.backward()?, 0.1)?;
        let v = p.to_vec1::<f32>()?;
        assert!((v[0] - 1.9).abs() < 1e-6, "{v:?}");
        Ok(())
    }

    #[test]
    fn state_round_trip_continues_identically() -> Result<()> {
        let dev = Device::Cpu;
        let run = |split: bool| -> Result<Vec<f32>> {
            let p = Var::new(&[0.3f32, -0.7, 1.1], &dev)?;
            let vars = vec![("p".to_string(), p.clone())];
            let cfg = SgdConfig {
                nesterov: true,
                ..Default::default()
            };
            let mut opt = Sgd::new(cfg);
            for i in 0..6 {
                if split && i == 3 {
                    let s = opt.state()?;
                    opt = Sgd::new(cfg);
                    opt.load_state(&s, &vars)?;
                }
                let loss = p.as_tensor().sqr()?.sum_all()?;
                opt.step(&vars, &loss.backward()?, 0.01)?;
            }
            Ok(p.to_vec1::<f32>()?)
        };
        assert_eq!(run(false)?, run(true)?);
        Ok(())
    }
}
