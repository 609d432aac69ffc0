//! Soft parameter sharing: one column per task, tied together by an L2 penalty.
//!
//! Every task `t` has its own column (a backbone of one architecture) and head,
//! `ŷ_t = head_t(column_t(x))`, as in [`Independent`](crate::Independent). What links the
//! columns is a penalty the network returns with its forward output
//! ([`NetOutput::penalty`]) and the trainer adds, unweighted, to the objective:
//!
//! `P = λ · Σ_{k ∈ tied} d_k`
//!
//! where each tied stage `k` uses one of two distances ([`TieMode`]):
//!
//! - **Parameters**: `d_k = Σ_p Σ_t ‖W^p_{t} − W̄^p‖²`, summed over the stage's parameter
//!   tensors `p` (weight and bias) and tasks `t`, with `W̄^p = (1/T) Σ_t W^p_t` the mean over
//!   the columns. A Gaussian prior centred on the columns' mean.
//! - **Activations**: `d_k = (1/B) Σ_b Σ_t ‖a_{t,k}(x_b) − ā_k(x_b)‖²`, the same distance on
//!   the stage's outputs for this batch (`B` samples), averaged over the batch so that λ
//!   does not depend on the batch size. It is computed from the forward pass that makes the
//!   predictions (no second pass).
//!
//! ## Why distance to the mean, not pairwise
//! The two are the same penalty up to a factor:
//! `Σ_{s<t} ‖W_s − W_t‖² = T · Σ_t ‖W_t − W̄‖²`. The mean form costs `O(T)` instead of
//! `O(T²)` and its gradient on one column, `2λ(W_t − W̄)`, keeps the same strength whatever
//! the number of tasks (the pairwise gradient is `T` times larger), so a λ tuned for two
//! tasks still means the same with five. For two tasks it is `½‖W_1 − W_2‖²`.
//!
//! ## Shapes
//! Input `[B, C, H, W]`; predictions `[B, out_dim_t]` per task; penalty a scalar `[]`
//! (`None` when λ = 0, nothing is tied, or there is a single task: the penalty is then
//! identically zero).
//!
//! ## Parameter groups
//! Only task `t`'s loss reaches column `t`, so `tasks[t] = [columns.<t>, heads.<t>]`. For
//! gradient-based weightings the *tied* layers of all columns are the shared ones (they are
//! what soft sharing shares): `shared` lists every column's tied stages and `last_shared`
//! every column's last tied stage. Per-task gradients on them have disjoint support, so
//! gradient surgery (PCGrad) finds no conflict — the coupling comes from the penalty, which
//! is not a task loss — while GradNorm measures each task's gradient on its own copy of the
//! last tied layer, the soft analogue of hard sharing's last trunk layer.
//!
//! ## Parameter names
//! `columns.<task>.*` and `heads.<task>.*`, the same as [`Independent`](crate::Independent):
//! with the same seed both start from identical weights, and with λ = 0 they are the same
//! network.
use crate::columns::Columns;
use crate::stages::{stage_indices, TCDCN_STAGES};
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tandem_heads::TaskSet;
use tandem_layers::Backbone;

/// What a tie between corresponding layers of the task columns compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TieMode {
    /// The layer's parameters (weights and biases).
    Parameters,
    /// The layer's outputs on the current batch.
    Activations,
}

/// Configuration of [`SoftSharing`] (`kind = "soft"` in a [`SharingConfig`](crate::SharingConfig)).
///
/// ```toml
/// kind = "soft"
/// lambda = 1e-3
/// ties = { conv1 = "parameters", conv2 = "parameters", fc = "activations" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftConfig {
    /// Strength λ of the tie, `≥ 0`. Default `1e-3` (see [`SoftConfig::parameters`]).
    pub lambda: f64,
    /// The tied stages by name, each with its [`TieMode`]. Default: every TCDCN stage
    /// (`conv1`, `conv2`, `conv3`, `conv4`, `fc`) tied by parameters.
    pub ties: BTreeMap<String, TieMode>,
}

impl Default for SoftConfig {
    fn default() -> Self {
        Self::parameters()
    }
}

impl SoftConfig {
    /// Every TCDCN stage tied by parameters, λ = `1e-3`. At initialisation `T` independent
    /// TCDCN columns are about `580·(T − 1)` apart in `Σ_k Σ_p Σ_t ‖W^p_t − W̄^p‖²`, so the
    /// penalty starts near `0.6·(T − 1)`, the order of a cross-entropy loss, and pulls the
    /// columns together as they train.
    pub fn parameters() -> Self {
        Self::all(1e-3, TieMode::Parameters)
    }

    /// Every TCDCN stage tied by activations, λ = `1e-3`. On 40×40 faces the summed
    /// activation distance of `T` independent columns at initialisation is of the same size
    /// as the parameter distance (about `550·(T − 1)`), so the same λ gives a penalty of the
    /// same order.
    pub fn activations() -> Self {
        Self::all(1e-3, TieMode::Activations)
    }

    /// Every TCDCN stage tied with `mode`, strength `lambda`.
    pub fn all(lambda: f64, mode: TieMode) -> Self {
        Self {
            lambda,
            ties: TCDCN_STAGES.iter().map(|s| (s.to_string(), mode)).collect(),
        }
    }

    /// The mode every tie uses, or `None` when the ties mix modes or there are none.
    pub fn uniform_mode(&self) -> Option<TieMode> {
        let mut modes = self.ties.values();
        let first = *modes.next()?;
        modes.all(|m| *m == first).then_some(first)
    }
}

/// One column and one head per task, the columns tied by an L2 penalty (module docs).
pub struct SoftSharing<B: Backbone> {
    columns: Columns<B>,
    /// The tie mode of each stage (`None`: not tied), indexed by stage.
    ties: Vec<Option<TieMode>>,
    lambda: f64,
}

impl<B: Backbone> SoftSharing<B> {
    /// Builds one column per task with `build(vb.pp("columns").pp(task))` and its head under
    /// `vb.pp("heads").pp(task)`, tied as `config` says. Fails on a negative or non-finite λ
    /// or a tied stage name the backbone does not have.
    pub fn new<E>(
        config: &SoftConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
        build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        if !(config.lambda.is_finite() && config.lambda >= 0.0) {
            return Err(ShareError::Config(format!(
                "soft sharing: lambda must be finite and ≥ 0, got {}",
                config.lambda
            )));
        }
        let columns = Columns::new(tasks, vb, build)?;
        let first = columns.first("soft sharing")?;
        let mut ties = vec![None; first.num_stages()];
        let indices = stage_indices(first, config.ties.keys(), "soft sharing tie")?;
        for (k, mode) in indices.into_iter().zip(config.ties.values()) {
            ties[k] = Some(*mode);
        }
        for (k, tie) in ties.iter().enumerate() {
            if *tie == Some(TieMode::Parameters) {
                first.stage_parameters(k)?;
            }
        }
        Ok(Self {
            columns,
            ties,
            lambda: config.lambda,
        })
    }

    /// The column of `task`.
    pub fn column(&self, task: &str) -> Option<&B> {
        self.columns.column(task)
    }

    /// The tie strength λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    fn active(&self) -> bool {
        self.lambda > 0.0 && self.columns.len() > 1 && self.ties.iter().any(Option::is_some)
    }

    /// The parameter part of the penalty, `λ · Σ_{k tied by parameters} d_k`, a scalar; `None`
    /// when the penalty is off (λ = 0, one task) or no stage is tied by parameters.
    pub fn parameter_penalty(&self) -> candle_core::Result<Option<Tensor>> {
        if !self.active() {
            return Ok(None);
        }
        let mut total: Option<Tensor> = None;
        for (k, tie) in self.ties.iter().enumerate() {
            if *tie != Some(TieMode::Parameters) {
                continue;
            }
            let per_column = self
                .columns
                .backbones()
                .map(|c| c.stage_parameters(k))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let n = per_column.first().map_or(0, Vec::len);
            if per_column.iter().any(|ps| ps.len() != n) {
                candle_core::bail!(
                    "soft sharing: the columns' stage {k} hold different parameter lists"
                )
            }
            for p in 0..n {
                let tensors: Vec<&Tensor> = per_column.iter().map(|ps| &ps[p]).collect();
                total = add(total, spread(&tensors)?)?;
            }
        }
        total.map(|t| t.affine(self.lambda, 0.0)).transpose()
    }
}

/// `Σ_t ‖x_t − x̄‖²` over tensors of one shape, a scalar.
///
/// Computed on the offsets from the first tensor, `d_t = x_t − x_1`, as `Σ_t ‖d_t − d̄‖²`
/// (the same value): equal tensors then give exactly zero, and the subtraction of nearly
/// equal values happens once, before the mean, not after it.
fn spread(xs: &[&Tensor]) -> candle_core::Result<Tensor> {
    let stacked = Tensor::stack(xs, 0)?;
    let offsets = stacked.broadcast_sub(&stacked.narrow(0, 0, 1)?)?;
    let mean = offsets.mean_keepdim(0)?;
    offsets.broadcast_sub(&mean)?.sqr()?.sum_all()
}

fn add(total: Option<Tensor>, term: Tensor) -> candle_core::Result<Option<Tensor>> {
    Ok(Some(match total {
        Some(t) => (t + term)?,
        None => term,
    }))
}

impl<B: Backbone> MultiTaskNet for SoftSharing<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let active = self.active();
        let mut xs: Vec<Tensor> = vec![input.clone(); self.columns.len()];
        let mut activation_ties: Option<Tensor> = None;
        let batch = input.dim(0)?.max(1) as f64;
        for (k, tie) in self.ties.iter().enumerate() {
            self.columns.forward_stage(k, &mut xs, train)?;
            if active && *tie == Some(TieMode::Activations) {
                let refs: Vec<&Tensor> = xs.iter().collect();
                activation_ties = add(activation_ties, (spread(&refs)? / batch)?)?;
            }
        }
        let activation_ties = activation_ties
            .map(|t| t.affine(self.lambda, 0.0))
            .transpose()?;
        let penalty = match (activation_ties, self.parameter_penalty()?) {
            (Some(a), Some(p)) => Some((a + p)?),
            (a, p) => a.or(p),
        };
        Ok(NetOutput {
            predictions: self.columns.predict(&xs)?,
            penalty,
        })
    }

    fn param_groups(&self) -> ParamGroups {
        let tied: Vec<usize> = (0..self.ties.len())
            .filter(|&k| self.ties[k].is_some())
            .collect();
        let mut shared = Vec::new();
        let mut last_shared = Vec::new();
        for c in self.columns.backbones() {
            for &k in &tied {
                shared.extend(c.stage_prefixes(k));
            }
            if let Some(&k) = tied.last() {
                last_shared.extend(c.stage_prefixes(k));
            }
        }
        ParamGroups {
            shared,
            last_shared,
            tasks: self.columns.task_groups(),
        }
    }
}
