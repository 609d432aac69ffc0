//! [`Sharing`]: choose a strategy by configuration.
use crate::{HardSharing, Independent, MultiTaskNet, Result};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_layers::{Tcdcn, TcdcnConfig};

/// A sharing strategy as configuration (`kind = "hard"` in TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sharing {
    /// One column per task ([`Independent`]).
    Independent,
    /// One trunk, a head per task ([`HardSharing`]).
    #[default]
    Hard,
}

impl Sharing {
    /// Builds the network with TCDCN trunks of `trunk` configuration, parameters under `vb`
    /// (`trunk.*` or `columns.<task>.*`, and `heads.<task>.*`).
    pub fn build(
        &self,
        trunk: &TcdcnConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
    ) -> Result<Box<dyn MultiTaskNet>> {
        Ok(match self {
            Self::Independent => Box::new(Independent::new(tasks, vb, |vb| {
                Tcdcn::new(trunk.clone(), vb)
            })?),
            Self::Hard => Box::new(HardSharing::new(
                Tcdcn::new(trunk.clone(), vb.pp("trunk"))?,
                tasks,
                vb.pp("heads"),
            )?),
        })
    }

    /// The strategy's key (`independent`, `hard`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            Self::Independent => "independent",
            Self::Hard => "hard",
        }
    }
}
