//! AdamW (Loshchilov & Hutter 2019) with state that can be saved and restored.
//!
//! For each parameter `θ` with gradient `g` at step `t` (1-based), rate `η`:
//! ```text
//! θ ← θ − η·λ·θ                      (decoupled weight decay)
//! m ← β₁ m + (1 − β₁) g
//! v ← β₂ v + (1 − β₂) g²
//! θ ← θ − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
//! ```
//! the same as PyTorch's `torch.optim.AdamW`. Parameters are visited in sorted-name order;
//! a parameter without a gradient (or not passed in) is left untouched, moments included.
use super::{other_kind, Optimizer, OptimizerState, STATE};
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Hyper-parameters of [`AdamW`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Base learning rate. Default 1e-3.
    pub lr: f64,
    /// β₁. Default 0.9.
    pub beta1: f64,
    /// β₂. Default 0.999.
    pub beta2: f64,
    /// ε. Default 1e-8.
    pub eps: f64,
    /// Decoupled weight decay λ. Default 1e-4.
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// Checks every value, naming the offending key.
    pub fn validate(&self) -> Result<()> {
        let c = self;
        if !(c.lr.is_finite() && c.lr > 0.0) {
            return Err(OptimError::config(
                "optimizer.lr",
                format!("{} is not a positive number", c.lr),
            ));
        }
        if !(0.0..1.0).contains(&c.beta1) || !(0.0..1.0).contains(&c.beta2) {
            return Err(OptimError::config(
                "optimizer.beta1/beta2",
                "must be in [0, 1)",
            ));
        }
        if !(c.eps.is_finite() && c.eps > 0.0) {
            return Err(OptimError::config("optimizer.eps", "must be > 0"));
        }
        if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
            return Err(OptimError::config("optimizer.weight_decay", "must be ≥ 0"));
        }
        Ok(())
    }
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-4,
        }
    }
}

/// The moments of one parameter.
#[derive(Debug, Clone)]
struct Moments {
    m: Tensor,
    v: Tensor,
    t: u64,
}

/// The optimizer's state as plain data: per-parameter step counts and moments, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdamWState {
    /// Per-parameter `(t, m, v)`, flattened.
    pub params: BTreeMap<String, (u64, Vec<f32>, Vec<f32>)>,
}

/// AdamW with inspectable state.
#[derive(Debug, Clone)]
pub struct AdamW {
    config: AdamWConfig,
    moments: BTreeMap<String, Moments>,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            moments: BTreeMap::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// One update of `vars` (name, variable) from `grads` at learning rate `lr`.
    fn update(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        let c = self.config;
        for (name, var) in vars {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = g.detach();
            let entry = match self.moments.remove(name) {
                Some(e) => e,
                None => Moments {
                    m: g.zeros_like()?,
                    v: g.zeros_like()?,
                    t: 0,
                },
            };
            let t = entry.t + 1;
            let m = ((&entry.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&entry.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let bc1 = 1.0 - c.beta1.powi(t as i32);
            let bc2 = 1.0 - c.beta2.powi(t as i32);
            let denom = ((&v * (1.0 / bc2))?.sqrt()? + c.eps)?;
            let update = ((&m * (lr / bc1))? / denom)?;
            let theta = var.as_tensor();
            let decayed = (theta * (1.0 - lr * c.weight_decay))?;
            var.set(&(decayed - update)?)?;
            self.moments.insert(name.clone(), Moments { m, v, t });
        }
        Ok(())
    }

    /// The state as typed plain data ([`Optimizer::state`] writes it as JSON).
    pub fn state_data(&self) -> Result<AdamWState> {
        let mut params = BTreeMap::new();
        for (k, m) in &self.moments {
            params.insert(
                k.clone(),
                (
                    m.t,
                    m.m.flatten_all()?.to_vec1::<f32>()?,
                    m.v.flatten_all()?.to_vec1::<f32>()?,
                ),
            );
        }
        Ok(AdamWState { params })
    }

    /// Restores a state saved by [`AdamW::state_data`]; `vars` gives each moment its shape and
    /// device.
    pub fn load_state_data(&mut self, state: &AdamWState, vars: &[(String, Var)]) -> Result<()> {
        let mut moments = BTreeMap::new();
        for (name, (t, m, v)) in &state.params {
            let Some((_, var)) = vars.iter().find(|(n, _)| n == name) else {
                return Err(OptimError::config(
                    STATE,
                    format!("moments for {name}, which the model does not have"),
                ));
            };
            let shape = var.shape().clone();
            if m.len() != shape.elem_count() || v.len() != shape.elem_count() {
                return Err(OptimError::config(
                    STATE,
                    format!(
                        "moments for {name} do not match its shape {:?}",
                        shape.dims()
                    ),
                ));
            }
            let dev = var.device();
            moments.insert(
                name.clone(),
                Moments {
                    m: Tensor::from_slice(m, shape.clone(), dev)?,
                    v: Tensor::from_slice(v, shape, dev)?,
                    t: *t,
                },
            );
        }
        self.moments = moments;
        Ok(())
    }
}

impl Optimizer for AdamW {
    fn name(&self) -> &str {
        "adamw"
    }

    fn step(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        self.update(vars, grads, lr)
    }

    fn state(&self) -> Result<Value> {
        OptimizerState::AdamW(self.state_data()?).to_json()
    }

    fn load_state(&mut self, state: &Value, vars: &[(String, Var)]) -> Result<()> {
        match OptimizerState::from_json(state)? {
            OptimizerState::AdamW(s) => self.load_state_data(&s, vars),
            _ => Err(other_kind()),
        }
    }

    /// Drops the moments of the named parameters (a stopped task's head).
    fn forget(&mut self, names: &[String]) {
        for n in names {
            self.moments.remove(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sgd;
    use candle_core::Device;

    /// Two steps on f(θ) = Σ c·θ, hand-derived (PyTorch AdamW gives the same):
    /// ```python
    /// p = torch.tensor([1.0, -2.0], requires_grad=True)
    /// opt = torch.optim.AdamW([p], lr=0.1, weight_decay=0.01)
    /// for c in ([0.5, -1.0], [-0.2, -1.0]):
    ///     opt.zero_grad(); (p * torch.tensor(c)).sum().backward(); opt.step()
    /// ```
    /// Step 1 moves each θ by −η·sign(g) after decay: [0.899, −1.898].
    /// Step 2, θ₀: decay 0.899·(1−0.001)=0.898101; m=0.9·0.05−0.02=0.025, v=0.999·0.00025+0.001·0.04
    /// =0.00028975; m̂=0.025/0.19=0.131579, v̂=0.00028975/0.001999=0.144947, √=0.380719;
    /// update 0.1·0.131579/0.380719=0.034561 → 0.863540.
    #[test]
    fn matches_hand_derived_adamw() -> Result<()> {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f32, -2.0], &dev)?;
        let vars = vec![("p".to_string(), p.clone())];
        let mut opt = AdamW::new(AdamWConfig {
            lr: 0.1,
            weight_decay: 0.01,
            ..Default::default()
        });
        for c in [[0.5f32, -1.0], [-0.2, -1.0]] {
            let loss = (p.as_tensor() * Tensor::new(&c, &dev)?)?.sum_all()?;
            opt.step(&vars, &loss.backward()?, 0.1)?;
            if c[0] == 0.5 {
                let v = p.to_vec1::<f32>()?;
                assert!(
                    (v[0] - 0.899).abs() < 1e-6 && (v[1] + 1.898).abs() < 1e-6,
                    "{v:?}"
                );
            }
        }
        let v = p.to_vec1::<f32>()?;
        assert!((v[0] - 0.863540).abs() < 2e-6, "{v:?}");
        Ok(())
    }

    #[test]
    fn state_round_trip_continues_identically() -> Result<()> {
        let dev = Device::Cpu;
        let run = |split: bool| -> Result<Vec<f32>> {
            let p = Var::new(&[0.3f32, -0.7, 1.1], &dev)?;
            let vars = vec![("p".to_string(), p.clone())];
            let mut opt = AdamW::new(AdamWConfig::default());
            for i in 0..6 {
                if split && i == 3 {
                    let s = opt.state()?;
                    opt = AdamW::new(AdamWConfig::default());
                    opt.load_state(&s, &vars)?;
                    assert!(Sgd::new(Default::default()).load_state(&s, &vars).is_err());
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
