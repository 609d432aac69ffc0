//! Hard parameter sharing: one trunk, one head per task.
//!
//! `ŷ_t = head_t(trunk(x))` for every task `t`. Parameter names: `<trunk prefix>.*` (usually
//! `trunk.*`) and `<heads prefix>.<task>.*` (usually `heads.<task>.*`).
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, SplitOutput};
use candle_core::{Tensor, Var};
use candle_nn::VarBuilder;
use tandem_heads::{Head, TaskSet};
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// One shared trunk, a head per task.
pub struct HardSharing<B: Backbone> {
    trunk: B,
    heads: TaskMap<Head>,
    head_prefixes: TaskMap<String>,
}

impl<B: Backbone> HardSharing<B> {
    /// Attaches one head per task of `tasks` to `trunk`, heads under `vb` (`vb.pp(task)`).
    pub fn new(trunk: B, tasks: &TaskSet, vb: VarBuilder) -> Result<Self> {
        let mut heads = TaskMap::new();
        let mut head_prefixes = TaskMap::new();
        for task in tasks.iter() {
            let hvb = vb.pp(task.name());
            head_prefixes.insert(task.name(), hvb.prefix());
            heads.insert(task.name(), task.build_head(trunk.out_dim(), hvb)?);
        }
        Ok(Self {
            trunk,
            heads,
            head_prefixes,
        })
    }

    /// The shared trunk.
    pub fn trunk(&self) -> &B {
        &self.trunk
    }
}

impl<B: Backbone> MultiTaskNet for HardSharing<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let features = self.trunk.forward_t(input, train)?;
        let predictions = self.heads.try_map(|_, h| h.forward(&features))?;
        Ok(NetOutput {
            predictions,
            penalty: None,
        })
    }

    fn forward_split(
        &self,
        input: &Tensor,
        train: bool,
    ) -> candle_core::Result<Option<SplitOutput>> {
        let features = self.trunk.forward_t(input, train)?;
        let leaf = Var::from_tensor(&features.detach())?;
        let predictions = self.heads.try_map(|_, h| h.forward(leaf.as_tensor()))?;
        Ok(Some(SplitOutput {
            output: NetOutput {
                predictions,
                penalty: None,
            },
            features,
            leaf,
        }))
    }

    fn has_shared_representation(&self) -> bool {
        true
    }

    fn param_groups(&self) -> ParamGroups {
        let last = self.trunk.num_stages().saturating_sub(1);
        ParamGroups {
            shared: vec![self.trunk.prefix()],
            last_shared: self.trunk.stage_prefixes(last),
            tasks: self.head_prefixes.map(|_, p| vec![p.clone()]),
        }
    }
}
