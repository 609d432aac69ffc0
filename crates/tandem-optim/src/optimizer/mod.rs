//! Optimizers whose state is plain data, so a resumed run continues exactly: the open
//! [`Optimizer`] trait, [`AdamW`] and [`Sgd`] (with momentum or Nesterov momentum), and
//! [`OptimizerConfig`], which names and builds one of them.
//!
//! candle's own `AdamW` keeps its moments private and its `SGD` has no momentum; these follow
//! PyTorch's `torch.optim.AdamW` and `torch.optim.SGD` update rules (see each type).
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::Var;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod adamw;
mod sgd;

pub use adamw::{AdamW, AdamWConfig, AdamWState};
pub use sgd::{Sgd, SgdConfig, SgdState};

/// Which optimizer to train with, serialised with a `kind` tag (`adamw` or `sgd`) next to the
/// optimizer's own fields, e.g. `{"kind": "sgd", "lr": 0.05, "nesterov": true}`.
///
/// ```
/// use tandem_optim::{OptimizerConfig, SgdConfig};
/// let c: OptimizerConfig = serde_json::from_str(r#"{"kind": "sgd", "lr": 0.05, "nesterov": true}"#)?;
/// assert_eq!(c, OptimizerConfig::Sgd(SgdConfig { lr: 0.05, nesterov: true, ..Default::default() }));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// [`AdamW`] (the default, with [`AdamWConfig::default`]).
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
    /// [`Sgd`] with momentum.
    Sgd(SgdConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self::AdamW(AdamWConfig::default())
    }
}

impl OptimizerConfig {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::AdamW(c) => c.lr,
            Self::Sgd(c) => c.lr,
        }
    }

    /// Sets the base learning rate.
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Self::AdamW(c) => c.lr = lr,
            Self::Sgd(c) => c.lr = lr,
        }
    }

    /// Checks every value, naming the offending key.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::AdamW(c) => c.validate(),
            Self::Sgd(c) => c.validate(),
        }
    }

    /// A fresh optimizer.
    pub fn build(&self) -> Box<dyn Optimizer> {
        match self {
            Self::AdamW(c) => Box::new(AdamW::new(*c)),
            Self::Sgd(c) => Box::new(Sgd::new(*c)),
        }
    }
}

/// The state of one of tandem's optimizers as plain data, tagged like [`OptimizerConfig`]:
/// what [`AdamW`] and [`Sgd`] write through [`Optimizer::state`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerState {
    /// [`AdamW`]'s moments.
    #[serde(rename = "adamw")]
    AdamW(AdamWState),
    /// [`Sgd`]'s momentum buffers.
    Sgd(SgdState),
}

impl OptimizerState {
    /// Reads a state written by [`Optimizer::state`] of [`AdamW`] or [`Sgd`].
    pub fn from_json(state: &Value) -> Result<Self> {
        crate::state::from_json(STATE, state)
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Result<Value> {
        crate::state::to_json(STATE, self)
    }
}

/// The name of an optimizer's state in errors.
pub(crate) const STATE: &str = "optimizer state";

/// The error for a state saved by another kind of optimizer.
pub(crate) fn other_kind() -> OptimError {
    OptimError::config(STATE, "saved by a different kind of optimizer")
}

/// Updates variables from their gradients. The trait is open: the trainer and one's own
/// training loop drive any implementation the same way; [`OptimizerConfig::build`] makes the
/// built-in ones.
///
/// Variables come as `(name, variable)` pairs in sorted-name order, and per-variable state is
/// kept by name, so a state saved by [`Optimizer::state`] restores into a rebuilt model.
pub trait Optimizer: Send {
    /// A short name (`adamw`, `sgd`).
    fn name(&self) -> &str;

    /// One update of `vars` from `grads` at learning rate `lr`; variables without a gradient are
    /// left untouched.
    fn step(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()>;

    /// The state beyond the model's variables as plain JSON (see [`crate::state`]).
    fn state(&self) -> Result<Value>;

    /// Restores a state returned by [`Optimizer::state`]; `vars` gives per-variable state its
    /// shape and device.
    fn load_state(&mut self, state: &Value, vars: &[(String, Var)]) -> Result<()>;

    /// Drops the per-variable state (moments, buffers) of the named variables, e.g. those of a
    /// task that stopped training. Stateless optimizers keep the default, which does nothing.
    fn forget(&mut self, _names: &[String]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_unknown_fields() -> std::result::Result<(), serde_json::Error>
    {
        for c in [
            OptimizerConfig::default(),
            OptimizerConfig::Sgd(SgdConfig::default()),
        ] {
            let back: OptimizerConfig = serde_json::from_str(&serde_json::to_string(&c)?)?;
            assert_eq!(back, c);
        }
        let c: OptimizerConfig = serde_json::from_str(r#"{"kind":"adamw","lr":0.01}"#)?;
        assert_eq!(c.lr(), 0.01);
        assert!(
            serde_json::from_str::<OptimizerConfig>(r#"{"kind":"adamw","momentum":0.9}"#).is_err()
        );
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind":"sgd","beta1":0.9}"#).is_err());
        Ok(())
    }
}
