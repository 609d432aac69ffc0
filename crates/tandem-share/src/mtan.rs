//! Multi-task attention network (Liu, Johns, Davison, CVPR 2019, "End-to-End Multi-Task
//! Learning with Attention").
//!
//! One shared backbone, and per task an attention module at every stage that selects, element
//! by element, the shared features the task uses. With `s_k` the shared output of stage `k`
//! (`s_k = stage_k(s_{k−1})`, `s_{−1} = x`) and `u^k_t` task `t`'s attended features:
//!
//! `a^k_t = σ(W^k_t ∗ s_k + U^k_t · pool(u^{k−1}_t) + b^k_t)`,  `u^k_t = a^k_t ⊙ s_k`,
//!
//! `ŷ_t = head_t(u^K_t)` after the last stage `K`. `W^k_t ∗` is a 1×1 convolution `C_k → C_k`
//! on a convolutional stage (a `D_k × D_k` linear map on a dense one); `pool` averages the
//! previous attended features over their spatial axes (identity on a dense stage) and
//! `U^k_t` (`C_{k−1} → C_k`, no bias; absent at `k = 0`) broadcasts the result over stage
//! `k`'s positions, so the modules are chained across stages as in the paper.
//!
//! The paper's module reads the concatenation of the shared features and the previous
//! attended features resampled to the new resolution; the channel means used here make the
//! module work on any staged backbone (TCDCN's conv and dense stages, the MLP's layers)
//! without a resampling layer whose gradient candle lacks for down-sampling. The shared
//! backbone runs once per step; the modules add `T` 1×1 convolutions per stage.
//!
//! ## Shapes
//! Input `[B, …]`; `s_k`, `a^k_t`, `u^k_t`: stage `k`'s output shape (`[B, C_k, H_k, W_k]` or
//! `[B, D_k]`); predictions `[B, out_dim_t]`. No penalty.
//!
//! ## Parameter names and groups
//! `trunk.*` (shared; `last_shared`: its last stage), `attention.<task>.<stage>.{weight,bias}`
//! (`W`, `b`), `attention.<task>.<stage>.chain.weight` (`U`), `heads.<task>.*`. A task's
//! attention modules and head are its own.
use crate::experts::Heads;
use crate::mmoe::missing;
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::{Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_layers::{Backbone, Conv2d, KernelBackend};
use tandem_tensor::TaskMap;

/// Configuration of [`Mtan`] (`kind = "mtan"`): no options; every stage gets an attention
/// module per task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtanConfig {}

/// `W ∗ s + b`: a 1×1 convolution or a dense map.
enum Mix {
    Conv(Conv2d),
    Dense(Linear),
}

/// One task's attention module at one stage.
struct Attention {
    mix: Mix,
    /// `U`, from the previous stage's channels (none at the first stage).
    chain: Option<Linear>,
}

impl Attention {
    fn new(shape: &[usize], prev: Option<&[usize]>, vb: VarBuilder) -> Result<Self> {
        let c = shape[0];
        let mix = if shape.len() == 3 {
            Mix::Conv(Conv2d::new(
                c,
                c,
                1,
                0,
                KernelBackend::default(),
                vb.clone(),
            )?)
        } else {
            Mix::Dense(tandem_tensor::torch_linear(c, c, vb.clone())?)
        };
        let chain = match prev {
            None => None,
            Some(p) => {
                let bound = 1.0 / (p[0].max(1) as f64).sqrt();
                let init = candle_nn::init::Init::Uniform {
                    lo: -bound,
                    up: bound,
                };
                let w = vb.pp("chain").get_with_hints((c, p[0]), "weight", init)?;
                Some(Linear::new(w, None))
            }
        };
        Ok(Self { mix, chain })
    }

    /// `a = σ(W ∗ s + U pool(prev) + b)`.
    fn mask(&self, s: &Tensor, prev: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let mut z = match &self.mix {
            Mix::Conv(conv) => conv.forward(s)?,
            Mix::Dense(l) => l.forward(s)?,
        };
        if let (Some(u), Some(p)) = (&self.chain, prev) {
            let pooled = if p.rank() == 4 {
                p.mean((2, 3))?
            } else {
                p.clone()
            };
            let mut v = u.forward(&pooled)?; // [B, C_k]
            if z.rank() == 4 {
                v = v.unsqueeze(2)?.unsqueeze(3)?;
            }
            z = z.broadcast_add(&v)?;
        }
        candle_nn::ops::sigmoid(&z)
    }

    /// `u = a ⊙ s`.
    fn forward(&self, s: &Tensor, prev: Option<&Tensor>) -> candle_core::Result<Tensor> {
        self.mask(s, prev)? * s
    }
}

/// A shared backbone with per-task attention modules at every stage (module docs).
pub struct Mtan<B: Backbone> {
    trunk: B,
    /// Per task, one module per stage.
    attention: TaskMap<Vec<Attention>>,
    attention_prefixes: TaskMap<String>,
    heads: Heads,
}

impl<B: Backbone> Mtan<B> {
    /// Wraps `trunk` (the shared backbone, usually built under `vb.pp("trunk")`) with
    /// attention modules under `vb.pp("attention").pp(task).pp(stage)` and heads under
    /// `vb.pp("heads")`.
    pub fn new(_config: &MtanConfig, trunk: B, tasks: &TaskSet, vb: VarBuilder) -> Result<Self> {
        let n = trunk.num_stages();
        let mut attention = TaskMap::new();
        let mut attention_prefixes = TaskMap::new();
        for task in tasks.iter() {
            let tvb = vb.pp("attention").pp(task.name());
            attention_prefixes.insert(task.name(), tvb.prefix());
            let mut modules = Vec::with_capacity(n);
            for k in 0..n {
                let prev = (k > 0).then(|| trunk.stage_shape(k - 1));
                modules.push(Attention::new(
                    &trunk.stage_shape(k),
                    prev.as_deref(),
                    tvb.pp(trunk.stage_name(k)),
                )?);
            }
            attention.insert(task.name(), modules);
        }
        if attention.is_empty() {
            return Err(ShareError::Config("MTAN needs a task".into()));
        }
        let heads = Heads::new(tasks, trunk.out_dim(), vb.pp("heads"))?;
        Ok(Self {
            trunk,
            attention,
            attention_prefixes,
            heads,
        })
    }

    /// The shared backbone.
    pub fn trunk(&self) -> &B {
        &self.trunk
    }

    /// Task `task`'s attention masks `a^k_t` at every stage for `input` (evaluation mode).
    pub fn attention_masks(&self, task: &str, input: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let modules = self.attention.get(task).ok_or_else(|| missing(task))?;
        let mut s = input.clone();
        let mut prev: Option<Tensor> = None;
        let mut masks = Vec::with_capacity(modules.len());
        for (k, m) in modules.iter().enumerate() {
            s = self.trunk.forward_stage(k, &s, false)?;
            let a = m.mask(&s, prev.as_ref())?;
            let u = (&a * &s)?;
            masks.push(a);
            prev = Some(u);
        }
        Ok(masks)
    }
}

impl<B: Backbone> MultiTaskNet for Mtan<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let n = self.trunk.num_stages();
        let mut s = input.clone();
        let mut u: TaskMap<Option<Tensor>> = self.attention.map(|_, _| None);
        for k in 0..n {
            s = self.trunk.forward_stage(k, &s, train)?;
            u = self.attention.try_map(|t, modules| {
                let prev = u.get(t).and_then(Option::as_ref);
                Ok::<_, candle_core::Error>(Some(modules[k].forward(&s, prev)?))
            })?;
        }
        let predictions = self.heads.heads.try_map(|t, head| {
            let f = u
                .get(t)
                .and_then(Option::as_ref)
                .ok_or_else(|| missing(t))?;
            head.forward(f)
        })?;
        Ok(NetOutput {
            predictions,
            penalty: None,
        })
    }

    fn param_groups(&self) -> ParamGroups {
        let last = self.trunk.num_stages().saturating_sub(1);
        ParamGroups {
            shared: vec![self.trunk.prefix()],
            last_shared: self.trunk.stage_prefixes(last),
            tasks: self.heads.prefixes.map(|t, h| {
                let mut own: Vec<String> = self
                    .attention_prefixes
                    .get(t)
                    .cloned()
                    .into_iter()
                    .collect();
                own.push(h.clone());
                own
            }),
        }
    }
}
