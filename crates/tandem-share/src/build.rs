//! [`Sharing`]: choose a strategy by configuration.
//!
//! In TOML the strategy is a table with a `kind` tag and the variant's own fields, all of
//! them optional (defaults in brackets):
//!
//! ```toml
//! kind = "independent"                 # one column per task, nothing shared
//! kind = "hard"                        # one trunk, a head per task (the default)
//! kind = "soft"                        # one column per task, L2-tied
//! lambda = 1e-3                        #   [1e-3]
//! ties = { conv1 = "parameters", fc = "activations" }   # [every stage: "parameters"]
//! kind = "cross_stitch"                # one column per task, mixed by learnable α
//! stages = ["conv1", "conv2", "conv3", "conv4", "fc"]   # [every stage]
//! self_weight = 0.9                    #   [0.9]: α_ii; the rest share 1 − self_weight
//! ```
use crate::{
    CrossStitch, CrossStitchConfig, HardSharing, Independent, MultiTaskNet, Result, SoftConfig,
    SoftSharing, TieMode,
};
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
    /// One column per task tied by an L2 penalty ([`SoftSharing`]).
    Soft(SoftConfig),
    /// One column per task mixed by cross-stitch units ([`CrossStitch`]).
    CrossStitch(CrossStitchConfig),
}

impl Sharing {
    /// Builds the network with TCDCN trunks of `trunk` configuration, parameters under `vb`
    /// (`trunk.*` or `columns.<task>.*`, `stitch.<stage>`, and `heads.<task>.*`).
    pub fn build(
        &self,
        trunk: &TcdcnConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
    ) -> Result<Box<dyn MultiTaskNet>> {
        let column = |vb: VarBuilder| Tcdcn::new(trunk.clone(), vb);
        Ok(match self {
            Self::Independent => Box::new(Independent::new(tasks, vb, column)?),
            Self::Hard => Box::new(HardSharing::new(
                Tcdcn::new(trunk.clone(), vb.pp("trunk"))?,
                tasks,
                vb.pp("heads"),
            )?),
            Self::Soft(config) => Box::new(SoftSharing::new(config, tasks, vb, column)?),
            Self::CrossStitch(config) => Box::new(CrossStitch::new(config, tasks, vb, column)?),
        })
    }

    /// The strategy's key: `independent`, `hard`, `soft_parameters` / `soft_activations`
    /// (soft sharing whose ties all use one mode; `soft` when they mix modes or there are
    /// none), `cross_stitch`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Independent => "independent",
            Self::Hard => "hard",
            Self::Soft(c) => match c.uniform_mode() {
                Some(TieMode::Parameters) => "soft_parameters",
                Some(TieMode::Activations) => "soft_activations",
                None => "soft",
            },
            Self::CrossStitch(_) => "cross_stitch",
        }
    }
}
