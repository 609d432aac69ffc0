//! Optimizers whose state is plain data, so a resumed run continues exactly: [`AdamW`] and
//! [`Sgd`] (with momentum or Nesterov momentum), chosen by [`OptimizerConfig`].
//!
//! candle's own `AdamW` keeps its moments private and its `SGD` has no momentum; these follow
//! PyTorch's `torch.optim.AdamW` and `torch.optim.SGD` update rules (see each type).
use crate::Result;
use candle_core::backprop::GradStore;
use candle_core::Var;
use serde::{Deserialize, Serialize};

mod adamw;
mod sgd;

pub use adamw::{AdamW, AdamWConfig, AdamWState};
pub use sgd::{Sgd, SgdConfig, SgdState};

/// Which optimizer to train with, serialised with a `kind` tag (`adamw` or `sgd`) next to the
/// optimizer's own fields, e.g. `{"kind": "sgd", "lr": 0.05, "nesterov": true}`.
///
/// ```
/// use tandem_train::{OptimizerConfig, SgdConfig};
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
            Self::AdamW(c) => AdamW::validate_config(c),
            Self::Sgd(c) => c.validate(),
        }
    }

    /// A fresh optimizer.
    pub fn build(&self) -> Optimizer {
        match self {
            Self::AdamW(c) => Optimizer::AdamW(AdamW::new(*c)),
            Self::Sgd(c) => Optimizer::Sgd(Sgd::new(*c)),
        }
    }
}

/// An optimizer's state as plain data, tagged like [`OptimizerConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerState {
    /// [`AdamW`]'s moments.
    #[serde(rename = "adamw")]
    AdamW(AdamWState),
    /// [`Sgd`]'s momentum buffers.
    Sgd(SgdState),
}

/// One of tandem's optimizers.
#[derive(Debug, Clone)]
pub enum Optimizer {
    /// AdamW.
    AdamW(AdamW),
    /// SGD with momentum.
    Sgd(Sgd),
}

impl Optimizer {
    /// One update of `vars` from `grads` at learning rate `lr`; variables without a gradient are
    /// left untouched.
    pub fn step(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        match self {
            Self::AdamW(o) => o.step(vars, grads, lr),
            Self::Sgd(o) => o.step(vars, grads, lr),
        }
    }

    /// The state as plain data.
    pub fn state(&self) -> Result<OptimizerState> {
        Ok(match self {
            Self::AdamW(o) => OptimizerState::AdamW(o.state()?),
            Self::Sgd(o) => OptimizerState::Sgd(o.state()?),
        })
    }

    /// Restores a state saved by [`Optimizer::state`] (of the same kind).
    pub fn load_state(&mut self, state: &OptimizerState, vars: &[(String, Var)]) -> Result<()> {
        match (self, state) {
            (Self::AdamW(o), OptimizerState::AdamW(s)) => o.load_state(s, vars),
            (Self::Sgd(o), OptimizerState::Sgd(s)) => o.load_state(s, vars),
            _ => Err(crate::TrainError::config(
                "optimizer state",
                "saved by a different kind of optimizer",
            )),
        }
    }

    /// Drops the per-parameter state (moments, buffers) of the named parameters.
    pub fn forget(&mut self, names: &[String]) {
        match self {
            Self::AdamW(o) => o.forget(names),
            Self::Sgd(o) => o.forget(names),
        }
    }
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
