//! Cross-stitch networks (Misra, Shrivastava, Gupta, Hebert, CVPR 2016).
//!
//! One column per task (or per group of tasks, [`CrossStitchConfig::groups`]), of one
//! architecture. After each chosen stage `k` a
//! [`CrossStitchUnit`] with its own learnable `α^k ∈ ℝ^{T×T}` mixes the columns:
//!
//! `x̃^k_i = Σ_j α^k_ij · x^k_j`,  then `x^{k+1}_i = stage_{k+1}(x̃^k_i)` in column `i`,
//!
//! and `ŷ_t = head_t(x^{last}_{c(t)})`, `c(t)` the column of task `t` (`T` counts columns). `α` starts at `s` on the diagonal and `(1 − s)/(T − 1)`
//! elsewhere ([`CrossStitchConfig::self_weight`], default 0.9). Two limits:
//!
//! - `α = I` (`s = 1`): no mixing, the network is [`Independent`](crate::Independent).
//! - all columns equal and `α` row-stochastic (e.g. uniform, `s = 1/T`): every column
//!   computes the same features, the network is [`HardSharing`](crate::HardSharing).
//!
//! ## Shapes
//! Input `[B, C, H, W]`; between stages each column holds `[B, C_k, H_k, W_k]` or `[B, D]`,
//! mixed over the task axis; predictions `[B, out_dim_t]` per task. No penalty.
//!
//! ## Parameter groups
//! Let `K` be the last stitched stage. Every task's loss reaches, through the `α`s, every
//! column's stages `0..=K` and every unit: these are `shared`. `last_shared` is stage `K` of
//! every column plus `stitch.<K>` — the last layer all tasks reach, GradNorm's `W`. Column
//! `t`'s stages after `K` and its head are reached by task `t` alone: `tasks[t]`. With the
//! default (a unit after every stage, `fc` included) `tasks[t] = [heads.<t>]`, as in hard
//! sharing. With no unit at all the network is independent and `shared` is empty. A column
//! that serves a group of tasks is `shared` whole, and its heads are the group's `tasks[t]`.
//!
//! ## Parameter names
//! `columns.<task>.*` (`columns.<a>+<b>+….*` for a group), `stitch.<stage>` (`α`, e.g. `stitch.conv2`), `heads.<task>.*`. The
//! columns and heads are named as in [`Independent`](crate::Independent), so both start from
//! the same weights under one seed. The `α`s are variables of their own: an optimizer can
//! give them their own learning rate by selecting the prefix `stitch`.
use crate::columns::Columns;
use crate::stages::{stage_indices, TCDCN_STAGES};
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_layers::{Backbone, CrossStitchUnit};
use tandem_tensor::TaskMap;

/// Configuration of [`CrossStitch`] (`kind = "cross_stitch"` in a
/// [`SharingConfig`](crate::SharingConfig)).
///
/// ```toml
/// kind = "cross_stitch"
/// stages = ["conv2", "conv4", "fc"]
/// self_weight = 0.9
/// groups = [["landmarks"], ["gender", "smile", "glasses", "pose"]]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossStitchConfig {
    /// The stages after which a unit mixes the columns, by name. Default: every TCDCN stage
    /// (`conv1`, `conv2`, `conv3`, `conv4`, `fc`).
    pub stages: Vec<String>,
    /// Initial diagonal `α_ii`; the off-diagonal entries share the rest,
    /// `(1 − self_weight)/(T − 1)`. Default 0.9 (as in Misra et al.).
    pub self_weight: f64,
    /// Groups of tasks that share one column (hard sharing inside the group), e.g.
    /// `[["landmarks"], ["gender", "smile", "glasses", "pose"]]`: two columns, so the main task
    /// keeps a column of its own at twice, not five times, the cost of one. Tasks in no group
    /// get a column each. Default: none (one column per task).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<String>>,
}

impl Default for CrossStitchConfig {
    fn default() -> Self {
        Self {
            stages: TCDCN_STAGES.iter().map(|s| s.to_string()).collect(),
            self_weight: 0.9,
            groups: Vec::new(),
        }
    }
}

/// One column and one head per task, columns mixed by cross-stitch units (module docs).
pub struct CrossStitch<B: Backbone> {
    columns: Columns<B>,
    /// The unit after each stage, indexed by stage (`None`: no unit).
    stitches: Vec<Option<CrossStitchUnit>>,
    stitch_prefixes: Vec<Option<String>>,
}

impl<B: Backbone> CrossStitch<B> {
    /// Builds one column per task with `build(vb.pp("columns").pp(task))`, its head under
    /// `vb.pp("heads").pp(task)`, and a unit at `stitch.<stage>` after each stage of
    /// `config.stages`. Fails on an unknown or repeated stage name, or no task.
    pub fn new<E>(
        config: &CrossStitchConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
        build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        let columns = Columns::grouped(tasks, &config.groups, vb.clone(), build)?;
        let first = columns.first("cross-stitch")?;
        let n = first.num_stages();
        let mut stitches: Vec<Option<CrossStitchUnit>> = (0..n).map(|_| None).collect();
        let mut stitch_prefixes = vec![None; n];
        let svb = vb.pp("stitch");
        for (k, name) in stage_indices(first, &config.stages, "cross-stitch stage")?
            .into_iter()
            .zip(&config.stages)
        {
            if stitches[k].is_some() {
                return Err(ShareError::Config(format!(
                    "cross-stitch stage {name:?} is listed twice"
                )));
            }
            stitches[k] = Some(CrossStitchUnit::new(
                columns.len(),
                config.self_weight,
                svb.clone(),
                name,
            )?);
            stitch_prefixes[k] = Some(svb.pp(name).prefix());
        }
        Ok(Self {
            columns,
            stitches,
            stitch_prefixes,
        })
    }

    /// The column of `task`.
    pub fn column(&self, task: &str) -> Option<&B> {
        self.columns.column(task)
    }

    /// The unit after the stage named `stage`, if there is one.
    pub fn stitch(&self, stage: &str) -> Option<&CrossStitchUnit> {
        let first = self.columns.backbones().next()?;
        (0..first.num_stages())
            .find(|&k| first.stage_name(k) == stage)
            .and_then(|k| self.stitches[k].as_ref())
    }
}

impl<B: Backbone> MultiTaskNet for CrossStitch<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let mut xs: Vec<Tensor> = vec![input.clone(); self.columns.len()];
        for (k, stitch) in self.stitches.iter().enumerate() {
            self.columns.forward_stage(k, &mut xs, train)?;
            if let Some(unit) = stitch {
                xs = unit.forward(&xs)?;
            }
        }
        Ok(NetOutput {
            predictions: self.columns.predict(&xs)?,
            penalty: None,
        })
    }

    fn param_groups(&self) -> ParamGroups {
        let last = self.stitches.iter().rposition(Option::is_some);
        let mut shared = Vec::new();
        let mut last_shared = Vec::new();
        let mut own: TaskMap<Vec<String>> = self.columns.head_prefixes().map(|_, _| Vec::new());
        for col in self.columns.columns() {
            let c = &col.net;
            let alone = match col.tasks.as_slice() {
                [t] => Some(t.as_str()),
                _ => None,
            };
            for k in 0..c.num_stages() {
                match alone {
                    Some(t) if last.is_none_or(|l| k > l) => {
                        if let Some(o) = own.get_mut(t) {
                            o.extend(c.stage_prefixes(k));
                        }
                    }
                    _ => shared.extend(c.stage_prefixes(k)),
                }
            }
            match (last, alone) {
                (Some(l), _) => last_shared.extend(c.stage_prefixes(l)),
                (None, None) => last_shared.extend(c.stage_prefixes(c.num_stages() - 1)),
                (None, Some(_)) => {}
            }
        }
        shared.extend(self.stitch_prefixes.iter().flatten().cloned());
        if let Some(p) = last.and_then(|l| self.stitch_prefixes[l].clone()) {
            last_shared.push(p);
        }
        let heads = self.columns.head_prefixes();
        let tasks = own.map(|t, o| {
            let mut o = o.clone();
            o.extend(heads.get(t).cloned());
            o
        });
        ParamGroups {
            shared,
            last_shared,
            tasks,
        }
    }
}
