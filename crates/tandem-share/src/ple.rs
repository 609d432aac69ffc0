//! Progressive layered extraction (Tang, Liu, Zhao, Gong, RecSys 2020, section 4.3): CGC
//! stacked over the backbone's stages.
//!
//! The experts are backbones (`S` shared, `E_t` of each task's own), run stage by stage. At
//! level `k` (stage `k` of every expert) task `t` and the shared part each have their own
//! input, `x^k_t` and `x^k_s` (both the network's input at `k = 0`):
//!
//! `o^k_{s,j} = stage_k(shared_j)(x^k_s)`,  `o^k_{t,i} = stage_k(own_{t,i})(x^k_t)`,
//!
//! `x^{k+1}_t = Σ g^k_t(x^k_t) ⊙ [o^k_{s,1..S}, o^k_{t,1..E_t}]`   (task gate over `S + E_t`),
//!
//! `x^{k+1}_s = Σ g^k_s(x^k_s) ⊙ [o^k_{s,1..S}, o^k_{1,1..E_1}, …, o^k_{T,1..E_T}]`
//! (shared gate over every expert, on every level but the last),
//!
//! each `g = softmax(W vec(·) + b)`, and `ŷ_t = head_t(x^K_t)` after the last stage `K`. With
//! one stage PLE is [CGC](crate::Cgc).
//!
//! ## Shapes
//! Level `k`'s inputs have the shape of stage `k − 1`'s output (`[B, C, H, W]` or `[B, D]`;
//! the input's at `k = 0`), flattened for the gates; task gates `[B, S + E_t]`, shared gates
//! `[B, S + Σ_t E_t]`. No penalty. [`MultiTaskNet::gates`] reports the task gates, one
//! `[B, S + E_t]` per level.
//!
//! ## Parameter names and groups
//! `experts.shared.<j>.*`, `experts.<task>.<i>.*`, `gates.<stage>.<task>.*`,
//! `gates.<stage>.shared.*`, `heads.<task>.*`. Through the shared gates every expert's
//! stages before the last, and every gate before the last level, reach every task: `shared`.
//! At the last level the shared experts' stage is shared (`last_shared`), and task `t`'s own
//! experts' last stage, its last gate and its head are `tasks[t]`.
//!
//! ## Cost
//! `S + Σ_t E_t` backbones per step, plus `T + 1` gates per level.
use crate::cgc::{CgcConfig, ExpertSet};
use crate::experts::{mix, numel, per_task, Gate, Heads};
use crate::mmoe::missing;
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use tandem_heads::TaskSet;
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// The gates of one level.
struct Level {
    tasks: TaskMap<Gate>,
    task_prefixes: TaskMap<String>,
    /// `None` on the last level.
    shared: Option<(Gate, String)>,
}

/// CGC at every stage of the experts, with shared gates between levels (module docs).
/// Configured by a [`CgcConfig`] (`kind = "ple"`, same keys).
pub struct Ple<B: Backbone> {
    experts: ExpertSet<B>,
    levels: Vec<Level>,
    heads: Heads,
}

/// What one pass computes: predictions and, when asked, each task's gate weights per level.
type Pass = (TaskMap<Tensor>, Option<TaskMap<Vec<Tensor>>>);

impl<B: Backbone> Ple<B> {
    /// Builds the experts as [`Cgc`](crate::Cgc) does, the gates of stage `k` under
    /// `vb.pp("gates").pp(<stage name>)` and a head per task under `vb.pp("heads")`.
    pub fn new<E>(
        config: &CgcConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
        mut build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        let experts = ExpertSet::new(config, tasks, &vb, &mut build)?;
        let first = experts.first();
        let n = first.num_stages();
        let all = config.experts + tasks.len() * config.task_experts;
        let mut levels = Vec::with_capacity(n);
        for k in 0..n {
            let shape = if k == 0 {
                first.input_shape()
            } else {
                first.stage_shape(k - 1)
            };
            let d = numel(&shape);
            let lvb = vb.pp("gates").pp(first.stage_name(k));
            let width = config.experts + config.task_experts;
            let (gates, task_prefixes) = per_task(tasks, &lvb, |gvb| Gate::new(d, width, gvb))?;
            let shared = if k + 1 < n {
                let gvb = lvb.pp("shared");
                Some((Gate::new(d, all, gvb.clone())?, gvb.prefix()))
            } else {
                None
            };
            levels.push(Level {
                tasks: gates,
                task_prefixes,
                shared,
            });
        }
        let heads = Heads::new(tasks, first.out_dim(), vb.pp("heads"))?;
        Ok(Self {
            experts,
            levels,
            heads,
        })
    }

    fn run(&self, input: &Tensor, train: bool, record: bool) -> candle_core::Result<Pass> {
        let mut x_s = input.clone();
        let mut x_t: TaskMap<Tensor> = self.heads.heads.map(|_, _| input.clone());
        let mut recorded: TaskMap<Vec<Tensor>> = self.heads.heads.map(|_, _| Vec::new());
        for (k, level) in self.levels.iter().enumerate() {
            let shared = self
                .experts
                .shared
                .iter()
                .map(|e| e.forward_stage(k, &x_s, train))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let own = self.experts.own.try_map(|t, nets| {
                let x = x_t.get(t).ok_or_else(|| missing(t))?;
                nets.iter()
                    .map(|e| e.forward_stage(k, x, train))
                    .collect::<candle_core::Result<Vec<_>>>()
            })?;
            let next_t = level.tasks.try_map(|t, gate| {
                let x = x_t.get(t).ok_or_else(|| missing(t))?;
                let w = gate.weights(x)?;
                let refs: Vec<&Tensor> = shared
                    .iter()
                    .chain(own.get(t).ok_or_else(|| missing(t))?.iter())
                    .collect();
                let out = mix(&w, &refs)?;
                if record {
                    if let Some(r) = recorded.get_mut(t) {
                        r.push(w);
                    }
                }
                Ok::<_, candle_core::Error>(out)
            })?;
            if let Some((gate, _)) = &level.shared {
                let refs: Vec<&Tensor> = shared.iter().chain(own.values().flatten()).collect();
                x_s = mix(&gate.weights(&x_s)?, &refs)?;
            }
            x_t = next_t;
        }
        let predictions = self
            .heads
            .heads
            .try_map(|t, head| head.forward(x_t.get(t).ok_or_else(|| missing(t))?))?;
        Ok((predictions, record.then_some(recorded)))
    }
}

impl<B: Backbone> MultiTaskNet for Ple<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        Ok(NetOutput {
            predictions: self.run(input, train, false)?.0,
            penalty: None,
        })
    }

    fn gates(&self, input: &Tensor) -> candle_core::Result<Option<TaskMap<Vec<Tensor>>>> {
        Ok(self.run(input, false, true)?.1)
    }

    fn param_groups(&self) -> ParamGroups {
        let n = self.levels.len();
        let last = n.saturating_sub(1);
        let mut shared = Vec::new();
        for e in &self.experts.shared {
            shared.push(e.prefix());
        }
        for nets in self.experts.own.values() {
            for e in nets {
                (0..last).for_each(|k| shared.extend(e.stage_prefixes(k)));
            }
        }
        for level in &self.levels[..last] {
            shared.extend(level.task_prefixes.values().cloned());
            shared.extend(level.shared.iter().map(|(_, p)| p.clone()));
        }
        let last_shared = self
            .experts
            .shared
            .iter()
            .flat_map(|e| e.stage_prefixes(last))
            .collect();
        let tasks = self.heads.prefixes.map(|t, h| {
            let mut own: Vec<String> = self
                .experts
                .own
                .get(t)
                .map(|v| v.iter().flat_map(|e| e.stage_prefixes(last)).collect())
                .unwrap_or_default();
            own.extend(self.levels[last].task_prefixes.get(t).cloned());
            own.push(h.clone());
            own
        });
        ParamGroups {
            shared,
            last_shared,
            tasks,
        }
    }
}
