//! [`StopperConfig`]: a task stopper as serde data.
use super::{PatienceStopper, TaskStopper, TcdcnStopper};
use crate::{OptimError, Result};
use serde::{Deserialize, Serialize};

/// Which task-wise early stopping to apply to every auxiliary task, serialised with a `kind`
/// tag: `{"kind": "off"}`, `{"kind": "tcdcn", "k": 5, "epsilon": 1.0}`,
/// `{"kind": "patience", "patience": 5, "min_delta": 0.0}` (fields optional, defaults shown).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StopperConfig {
    /// No task stops.
    #[default]
    Off,
    /// [`TcdcnStopper`].
    Tcdcn {
        /// Window length `k` (the window holds `k + 1` epochs). Default 5.
        #[serde(default = "default_k")]
        k: usize,
        /// Threshold `ε`. Default 1.
        #[serde(default = "default_epsilon")]
        epsilon: f64,
    },
    /// [`PatienceStopper`].
    Patience {
        /// Epochs without improvement before stopping. Default 5.
        #[serde(default = "default_patience")]
        patience: usize,
        /// The least decrease of the metric that counts as improvement. Default 0.
        #[serde(default)]
        min_delta: f64,
    },
}

fn default_k() -> usize {
    5
}
fn default_epsilon() -> f64 {
    1.0
}
fn default_patience() -> usize {
    5
}

impl StopperConfig {
    /// The `kind` tag (`off`, `tcdcn`, `patience`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Tcdcn { .. } => "tcdcn",
            Self::Patience { .. } => "patience",
        }
    }

    /// Checks every value, naming the offending key.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Off => Ok(()),
            Self::Tcdcn { k, epsilon } => {
                if k == 0 {
                    return Err(OptimError::config("stopper.k", "must be at least 1"));
                }
                if !epsilon.is_finite() {
                    return Err(OptimError::config("stopper.epsilon", "must be finite"));
                }
                Ok(())
            }
            Self::Patience {
                patience,
                min_delta,
            } => {
                if patience == 0 {
                    return Err(OptimError::config("stopper.patience", "must be at least 1"));
                }
                if !(min_delta.is_finite() && min_delta >= 0.0) {
                    return Err(OptimError::config("stopper.min_delta", "must be ≥ 0"));
                }
                Ok(())
            }
        }
    }

    /// A fresh stopper for one task; `None` for `Off`.
    pub fn build(&self) -> Option<Box<dyn TaskStopper>> {
        match *self {
            Self::Off => None,
            Self::Tcdcn { k, epsilon } => Some(Box::new(TcdcnStopper::new(k, epsilon))),
            Self::Patience {
                patience,
                min_delta,
            } => Some(Box::new(PatienceStopper::new(patience, min_delta))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults() -> std::result::Result<(), serde_json::Error> {
        let c: StopperConfig = serde_json::from_str(r#"{"kind":"tcdcn"}"#)?;
        assert_eq!(c, StopperConfig::Tcdcn { k: 5, epsilon: 1.0 });
        let c: StopperConfig = serde_json::from_str(r#"{"kind":"patience","patience":3}"#)?;
        assert_eq!(
            c,
            StopperConfig::Patience {
                patience: 3,
                min_delta: 0.0
            }
        );
        assert_eq!(
            c.build().map(|s| s.name().to_string()).as_deref(),
            Some("patience")
        );
        assert!(StopperConfig::Off.build().is_none());
        assert!(serde_json::from_str::<StopperConfig>(r#"{"kind":"tcdcn","eps":1}"#).is_err());
        Ok(())
    }
}
