//! Multi-gate mixture-of-experts (Ma, Zhao, Yi, Chen, Hong, Chi, KDD 2018, "Modeling Task
//! Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts").
//!
//! `E` experts, each a whole backbone, and one softmax gate per task that reads the input:
//!
//! `f_t(x) = Σ_{e=1..E} g_t(x)_e · expert_e(x)`,  `g_t(x) = softmax(W_t vec(x) + b_t)`,
//! `ŷ_t = head_t(f_t(x))`.
//!
//! Tasks that disagree can lean on different experts, tasks that agree on the same ones; with
//! `E = 1` every gate is 1 and the network is [hard sharing](crate::HardSharing).
//!
//! ## Shapes
//! Input `[B, …]` (`vec(x)` flattens it to `[B, d]`, `d = Π input_shape`); experts `[B, D]`
//! each; gates `[B, E]`; predictions `[B, out_dim_t]`. No penalty.
//!
//! ## Parameter names and groups
//! `experts.<e>.*` (`e = 0..E`), `gates.<task>.{weight,bias}`, `heads.<task>.*`. Every task
//! reaches every expert: the experts are `shared` (`last_shared`: each expert's last stage);
//! a task's gate and head are its own.
//!
//! ## Cost
//! `E` backbones per step: about `E` times hard sharing's compute and parameters.
use crate::experts::{at_least, expert_groups, mix, numel, per_task, Gate, Heads};
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// Configuration of [`Mmoe`] (`kind = "mmoe"` in a [`SharingConfig`](crate::SharingConfig)).
///
/// ```toml
/// kind = "mmoe"
/// experts = 3
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MmoeConfig {
    /// Number of experts `E` (at least 1). Default 3.
    pub experts: usize,
}

impl Default for MmoeConfig {
    fn default() -> Self {
        Self { experts: 3 }
    }
}

impl MmoeConfig {
    /// Checks `experts ≥ 1`; the error names the key.
    pub fn validate(&self) -> Result<()> {
        at_least("experts", self.experts, 1)
    }
}

/// `E` expert backbones mixed per task by a softmax gate over the input (module docs).
pub struct Mmoe<B: Backbone> {
    experts: Vec<B>,
    gates: TaskMap<Gate>,
    gate_prefixes: TaskMap<String>,
    heads: Heads,
}

impl<B: Backbone> Mmoe<B> {
    /// Builds `config.experts` experts with `build(vb.pp("experts").pp(e))`, a gate per task
    /// under `vb.pp("gates")` and a head per task under `vb.pp("heads")`.
    pub fn new<E>(
        config: &MmoeConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
        mut build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        config.validate()?;
        let experts = (0..config.experts)
            .map(|e| build(vb.pp("experts").pp(e)))
            .collect::<std::result::Result<Vec<B>, E>>()?;
        let d_in = numel(&experts[0].input_shape());
        let (gates, gate_prefixes) = per_task(tasks, &vb.pp("gates"), |gvb| {
            Gate::new(d_in, config.experts, gvb)
        })?;
        let heads = Heads::new(tasks, experts[0].out_dim(), vb.pp("heads"))?;
        Ok(Self {
            experts,
            gates,
            gate_prefixes,
            heads,
        })
    }

    /// The experts, in order.
    pub fn experts(&self) -> &[B] {
        &self.experts
    }
}

impl<B: Backbone> MultiTaskNet for Mmoe<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let outs = self
            .experts
            .iter()
            .map(|e| e.forward_t(input, train))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = outs.iter().collect();
        let predictions = self.heads.heads.try_map(|t, head| {
            let gate = self.gates.get(t).ok_or_else(|| missing(t))?;
            head.forward(&mix(&gate.weights(input)?, &refs)?)
        })?;
        Ok(NetOutput {
            predictions,
            penalty: None,
        })
    }

    fn gates(&self, input: &Tensor) -> candle_core::Result<Option<TaskMap<Vec<Tensor>>>> {
        one_level(&self.gates, input).map(Some)
    }

    fn param_groups(&self) -> ParamGroups {
        let own = |t: &str| self.gate_prefixes.get(t).cloned().into_iter().collect();
        expert_groups(self.experts.iter(), own, &self.heads.prefixes)
    }
}

/// Each task's softmax gate for `input`, as one level.
pub(crate) fn one_level(
    gates: &TaskMap<Gate>,
    input: &Tensor,
) -> candle_core::Result<TaskMap<Vec<Tensor>>> {
    gates.try_map(|_, g| Ok::<_, candle_core::Error>(vec![g.weights(input)?]))
}

pub(crate) fn missing(task: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("no gate for task {task:?}"))
}
