//! [`SharingConfig`]: choose a strategy by configuration.
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
//! kind = "mtan"                        # shared trunk, per-task attention at every stage
//! kind = "mmoe"                        # experts mixed per task by a softmax gate
//! experts = 3                          #   [3]
//! kind = "cgc"                         # shared experts and each task's own, gated per task
//! experts = 1                          #   [1] shared experts
//! task_experts = 1                     #   [1] experts of each task's own
//! kind = "ple"                         # CGC at every stage (same keys as cgc)
//! kind = "dselect_k"                   # each task selects k experts, differentiably
//! experts = 4                          #   [4]
//! k = 2                                #   [2], 1 ≤ k ≤ experts
//! gamma = 1.0                          #   [1.0] smooth-step width
//! entropy = 1e-3                       #   [1e-3] weight of the selectors' entropy
//! kind = "ltb"                         # learning to branch: a searched tree over the stages
//! search_epochs = 10                   #   [half the run's epochs]
//! temperature = 1.0                    #   [1.0] Gumbel-softmax τ
//! ```
//!
//! Every architecture builds its trunks (columns, experts) from the configured trunk, TCDCN
//! or MLP; the stage-wise ones (soft sharing, cross-stitch units, MTAN, PLE, LTB) work on the
//! trunk's stages, the MLP's hidden layers being its stages.
use crate::stages::TCDCN_STAGES;
use crate::{
    Cgc, CgcConfig, CrossStitch, CrossStitchConfig, DselectK, DselectKConfig, HardSharing,
    Independent, Ltb, LtbConfig, Mmoe, MmoeConfig, Mtan, MtanConfig, MultiTaskNet, Ple, Result,
    ShareError, SoftConfig, SoftSharing, TieMode,
};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_layers::{Trunk, TrunkConfig};

/// A sharing strategy as configuration (`kind = "hard"` in TOML). Unknown fields are errors,
/// for every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(from = "Repr", into = "Repr")]
pub enum SharingConfig {
    /// One column per task ([`Independent`]).
    Independent,
    /// One trunk, a head per task ([`HardSharing`]).
    #[default]
    Hard,
    /// One column per task tied by an L2 penalty ([`SoftSharing`]).
    Soft(SoftConfig),
    /// One column per task mixed by cross-stitch units ([`CrossStitch`]).
    CrossStitch(CrossStitchConfig),
    /// A shared trunk with per-task attention modules ([`Mtan`]).
    Mtan(MtanConfig),
    /// Experts mixed per task by softmax gates ([`Mmoe`]).
    Mmoe(MmoeConfig),
    /// Shared and task-specific experts, gated per task ([`Cgc`]).
    Cgc(CgcConfig),
    /// CGC at every stage ([`Ple`]).
    Ple(CgcConfig),
    /// Experts selected `k` at a time per task ([`DselectK`]).
    DselectK(DselectKConfig),
    /// A branching tree searched over the stages ([`Ltb`]).
    Ltb(LtbConfig),
}

/// The serde form of [`SharingConfig`]. serde ignores extra fields next to the tag of a unit
/// variant even under `deny_unknown_fields`; empty struct variants reject them.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Repr {
    Independent {},
    Hard {},
    Soft(SoftConfig),
    CrossStitch(CrossStitchConfig),
    Mtan(MtanConfig),
    Mmoe(MmoeConfig),
    Cgc(CgcConfig),
    Ple(CgcConfig),
    DselectK(DselectKConfig),
    Ltb(LtbConfig),
}

impl From<Repr> for SharingConfig {
    fn from(r: Repr) -> Self {
        match r {
            Repr::Independent {} => Self::Independent,
            Repr::Hard {} => Self::Hard,
            Repr::Soft(c) => Self::Soft(c),
            Repr::CrossStitch(c) => Self::CrossStitch(c),
            Repr::Mtan(c) => Self::Mtan(c),
            Repr::Mmoe(c) => Self::Mmoe(c),
            Repr::Cgc(c) => Self::Cgc(c),
            Repr::Ple(c) => Self::Ple(c),
            Repr::DselectK(c) => Self::DselectK(c),
            Repr::Ltb(c) => Self::Ltb(c),
        }
    }
}

impl From<SharingConfig> for Repr {
    fn from(s: SharingConfig) -> Self {
        match s {
            SharingConfig::Independent => Self::Independent {},
            SharingConfig::Hard => Self::Hard {},
            SharingConfig::Soft(c) => Self::Soft(c),
            SharingConfig::CrossStitch(c) => Self::CrossStitch(c),
            SharingConfig::Mtan(c) => Self::Mtan(c),
            SharingConfig::Mmoe(c) => Self::Mmoe(c),
            SharingConfig::Cgc(c) => Self::Cgc(c),
            SharingConfig::Ple(c) => Self::Ple(c),
            SharingConfig::DselectK(c) => Self::DselectK(c),
            SharingConfig::Ltb(c) => Self::Ltb(c),
        }
    }
}

impl SharingConfig {
    /// Builds the network with trunks (or columns, or experts) of the `trunk` configuration,
    /// parameters under `vb` (`trunk.*`, `columns.<task>.*` or `experts.*`, the architecture's
    /// own — `stitch.<stage>`, `attention.*`, `gates.*`, `branch.<stage>` — and
    /// `heads.<task>.*`).
    ///
    /// The default stage lists of soft sharing and cross-stitch units name the TCDCN trunk's
    /// stages; on a trunk without those stages (the MLP's `fc1`, `fc2`, …) a default list
    /// means every stage of that trunk, so `kind = "soft"` alone works on any trunk.
    pub fn build(
        &self,
        trunk: &TrunkConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
    ) -> Result<Box<dyn MultiTaskNet>> {
        let column = |vb: VarBuilder| Trunk::new(trunk, vb);
        let this = self.for_trunk(trunk);
        Ok(match &this {
            Self::Independent => Box::new(Independent::new(tasks, vb, column)?),
            Self::Hard => Box::new(HardSharing::new(
                Trunk::new(trunk, vb.pp("trunk"))?,
                tasks,
                vb.pp("heads"),
            )?),
            Self::Soft(config) => Box::new(SoftSharing::new(config, tasks, vb, column)?),
            Self::CrossStitch(config) => Box::new(CrossStitch::new(config, tasks, vb, column)?),
            Self::Mtan(config) => Box::new(Mtan::new(
                config,
                Trunk::new(trunk, vb.pp("trunk"))?,
                tasks,
                vb,
            )?),
            Self::Mmoe(config) => Box::new(Mmoe::new(config, tasks, vb, column)?),
            Self::Cgc(config) => Box::new(Cgc::new(config, tasks, vb, column)?),
            Self::Ple(config) => Box::new(Ple::new(config, tasks, vb, column)?),
            Self::DselectK(config) => Box::new(DselectK::new(config, tasks, vb, column)?),
            Self::Ltb(config) => Box::new(Ltb::new(config, tasks, vb, trunk.mask_seed(), column)?),
        })
    }

    /// This configuration with default (TCDCN) stage lists replaced by every stage of
    /// `trunk` when `trunk` lacks the TCDCN stages.
    fn for_trunk(&self, trunk: &TrunkConfig) -> Self {
        let defaults: Vec<String> = TCDCN_STAGES.iter().map(|s| s.to_string()).collect();
        let names = trunk.stage_names();
        match self {
            Self::Soft(c) if c.ties.keys().cloned().collect::<Vec<_>>() == defaults => {
                if names == defaults {
                    self.clone()
                } else {
                    let mode = c.uniform_mode().unwrap_or(TieMode::Parameters);
                    Self::Soft(SoftConfig {
                        lambda: c.lambda,
                        ties: names.into_iter().map(|n| (n, mode)).collect(),
                    })
                }
            }
            Self::CrossStitch(c) if c.stages == defaults => Self::CrossStitch(CrossStitchConfig {
                stages: names,
                ..c.clone()
            }),
            _ => self.clone(),
        }
    }

    /// Checks what the strategy says about tasks against the model's task names (the column
    /// groups of a cross-stitch network: each names known tasks, none twice, none empty).
    ///
    /// Also checks the architectures' own values (`experts ≥ 1`, `1 ≤ k ≤ experts`, …); a
    /// [`ShareError::Key`] names the key.
    pub fn validate(&self, tasks: &[&str]) -> Result<()> {
        match self {
            Self::CrossStitch(c) => crate::columns::group_of_tasks(&c.groups, tasks)
                .map(|_| ())
                .map_err(|e| match e {
                    ShareError::Config(m) => ShareError::key("groups", m),
                    e => e,
                }),
            Self::Mmoe(c) => c.validate(),
            Self::Cgc(c) | Self::Ple(c) => {
                c.validate()?;
                if tasks.contains(&"shared") {
                    return Err(ShareError::Config(format!(
                        "{}: a task named \"shared\" would share the names of the shared experts \
                         (experts.shared.*); rename the task",
                        self.key()
                    )));
                }
                Ok(())
            }
            Self::DselectK(c) => c.validate(),
            Self::Ltb(c) => c.validate(),
            _ => Ok(()),
        }
    }

    /// The strategy's key: `independent`, `hard`, `soft_parameters` / `soft_activations`
    /// (soft sharing whose ties all use one mode; `soft` when they mix modes or there are
    /// none), `cross_stitch`, `mtan`, `mmoe`, `cgc`, `ple`, `dselect_k`, `ltb`.
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
            Self::Mtan(_) => "mtan",
            Self::Mmoe(_) => "mmoe",
            Self::Cgc(_) => "cgc",
            Self::Ple(_) => "ple",
            Self::DselectK(_) => "dselect_k",
            Self::Ltb(_) => "ltb",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use std::collections::BTreeMap;
    use tandem_heads::{ClassTask, LandmarkTask};

    fn parse(s: &str) -> std::result::Result<SharingConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn toml_variants_defaults_and_keys() -> std::result::Result<(), Box<dyn std::error::Error>> {
        assert_eq!(parse(r#"kind = "hard""#)?, SharingConfig::Hard);
        assert_eq!(
            parse(r#"kind = "independent""#)?,
            SharingConfig::Independent
        );
        let soft = parse(r#"kind = "soft""#)?;
        assert_eq!(soft, SharingConfig::Soft(SoftConfig::default()));
        assert_eq!(soft.key(), "soft_parameters");
        let SharingConfig::Soft(c) = &soft else {
            panic!()
        };
        assert_eq!(c.lambda, 1e-3);
        assert_eq!(
            c.ties.keys().collect::<Vec<_>>(),
            ["conv1", "conv2", "conv3", "conv4", "fc"]
        );
        let act = parse("kind = \"soft\"\nlambda = 1e-4\nties = { conv1 = \"activations\", fc = \"activations\" }")?;
        assert_eq!(act.key(), "soft_activations");
        let mixed =
            parse("kind = \"soft\"\nties = { conv1 = \"activations\", fc = \"parameters\" }")?;
        assert_eq!(mixed.key(), "soft");
        assert_eq!(
            SharingConfig::Soft(SoftConfig::activations()).key(),
            "soft_activations"
        );
        let cs = parse("kind = \"cross_stitch\"\nstages = [\"conv2\", \"fc\"]")?;
        assert_eq!(
            cs,
            SharingConfig::CrossStitch(CrossStitchConfig {
                stages: vec!["conv2".into(), "fc".into()],
                self_weight: 0.9,
                groups: vec![],
            })
        );
        assert_eq!(cs.key(), "cross_stitch");
        assert_eq!(
            parse(r#"kind = "cross_stitch""#)?,
            SharingConfig::CrossStitch(CrossStitchConfig::default())
        );
        // Round trip.
        for s in [
            soft,
            act,
            mixed,
            cs,
            SharingConfig::Hard,
            SharingConfig::Independent,
        ] {
            assert_eq!(parse(&toml::to_string(&s)?)?, s);
        }
        Ok(())
    }

    #[test]
    fn unknown_fields_and_modes_are_rejected() {
        for bad in [
            "kind = \"soft\"\nlamda = 1.0",
            "kind = \"soft\"\nties = { conv1 = \"weights\" }",
            "kind = \"cross_stitch\"\nself = 0.5",
            "kind = \"hard\"\nlambda = 1.0",
            "kind = \"stitch\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_variant_builds_with_stable_names() -> Result<()> {
        let tasks = TaskSet::new()
            .with(LandmarkTask::new("landmarks", 5))
            .with(ClassTask::new("smile", 2).auxiliary());
        let mut names = BTreeMap::new();
        for s in [
            SharingConfig::Independent,
            SharingConfig::Hard,
            SharingConfig::Soft(SoftConfig::parameters()),
            SharingConfig::Soft(SoftConfig::activations()),
            SharingConfig::CrossStitch(CrossStitchConfig::default()),
        ] {
            let vars = VarMap::new();
            let vb = tandem_tensor::seeded_var_builder(&vars, 1, DType::F32, &Device::Cpu);
            let net = s.build(&TrunkConfig::default(), &tasks, vb)?;
            let x = candle_core::Tensor::zeros((2, 1, 40, 40), DType::F32, &Device::Cpu)?;
            let out = net.forward_t(&x, true)?;
            assert_eq!(out.predictions["smile"].dims(), &[2, 2]);
            assert_eq!(
                out.penalty.is_some(),
                matches!(s, SharingConfig::Soft(_)),
                "{}",
                s.key()
            );
            let n: Vec<String> = tandem_tensor::sorted_vars(&vars)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            names.insert(s.key(), n);
        }
        assert_eq!(names["independent"], names["soft_parameters"]);
        assert_eq!(names["independent"], names["soft_activations"]);
        assert!(names["hard"].contains(&"trunk.conv1.weight".to_string()));
        assert!(names["hard"].contains(&"heads.landmarks.weight".to_string()));
        let cs = &names["cross_stitch"];
        assert!(cs.contains(&"columns.smile.fc.weight".to_string()));
        let stitches: Vec<&String> = cs.iter().filter(|n| n.starts_with("stitch.")).collect();
        assert_eq!(
            stitches,
            [
                "stitch.conv1",
                "stitch.conv2",
                "stitch.conv3",
                "stitch.conv4",
                "stitch.fc"
            ]
        );
        assert_eq!(cs.len(), names["independent"].len() + 5);
        Ok(())
    }

    /// The default (TCDCN-named) stage lists mean every stage of an MLP trunk.
    #[test]
    fn default_stage_lists_follow_an_mlp_trunk() -> Result<()> {
        let tasks = TaskSet::new()
            .with(LandmarkTask::new("landmarks", 5))
            .with(ClassTask::new("smile", 2).auxiliary());
        let trunk = TrunkConfig::Mlp(tandem_layers::MlpConfig {
            in_features: 6,
            hidden: vec![8, 4],
            ..Default::default()
        });
        assert_eq!(trunk.stage_names(), ["fc1", "fc2"]);
        for s in [
            SharingConfig::Soft(SoftConfig::default()),
            SharingConfig::CrossStitch(CrossStitchConfig::default()),
        ] {
            let vars = VarMap::new();
            let vb = tandem_tensor::seeded_var_builder(&vars, 1, DType::F32, &Device::Cpu);
            let net = s.build(&trunk, &tasks, vb)?;
            let x = candle_core::Tensor::zeros((3, 6, 1, 1), DType::F32, &Device::Cpu)?;
            assert_eq!(
                net.forward_t(&x, true)?.predictions["landmarks"].dims(),
                &[3, 10]
            );
        }
        Ok(())
    }
}
