//! Learning to Branch (Guo, Lee, Ulbricht, ICML 2020, "Learning to Branch for Multi-Task
//! Learning").
//!
//! The network is a tree over the backbone's stages, found by training. Every stage `k` has
//! `T` nodes (stage `k` of one column per task, as in [`Independent`](crate::Independent));
//! node `i` of stage `k ≥ 1` reads one parent among the `T` nodes of stage `k − 1`, chosen by
//! learnable logits `β^k ∈ ℝ^{T×T}` (`β^k_ij`: child `i`, parent `j`; zeros at the start). The
//! nodes of stage 0 read the input, and task `t`'s head reads node `t` of the last stage.
//!
//! **Search** (the first `search_epochs` epochs): parents are relaxed with Gumbel-softmax,
//!
//! `x^k_i = stage_k(col_i)(Σ_j π^k_ij x^{k−1}_j)`,  `π^k_i = softmax((β^k_i + g^k_i)/τ)`,
//!
//! `g = −log(−log u)`, `u ~ U(0, 1)` drawn per step from a ChaCha8 RNG seeded by the run's
//! seed, the stage's name and the batch's contents (hashed once per step): the same bits on
//! every run and on a resume, as the dropout masks. Every column and `β` learn.
//!
//! **Fixed tree** (after the search, and in evaluation): node `i` of stage `k` reads
//! `x^{k−1}_{p_k(i)}`, `p_k(i) = argmax_j β^k_ij` (the lowest `j` on a tie); only the nodes on
//! a path to a head are computed, so the chosen tree costs what its branches cost. Training
//! goes on from the searched weights with the tree fixed (`β` no longer changes), so one run
//! searches and then trains the chosen network.
//!
//! ## Shapes
//! Input `[B, …]`; node outputs have their stage's shape; `β^k` `[T, T]`; predictions
//! `[B, out_dim_t]`. No penalty.
//!
//! ## Parameter names and groups
//! `columns.<task>.*` (the nodes), `branch.<stage>` (`β`, stages after the first),
//! `heads.<task>.*`. During the search every task's loss reaches every node of every stage but
//! the last, and every `β`: `shared` (`last_shared`: the stage before the last of every
//! column); node `t` of the last stage and head `t` are `tasks[t]`.
use crate::columns::Columns;
use crate::experts::mix;
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::{Tensor, D};
use candle_nn::VarBuilder;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use tandem_heads::TaskSet;
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// Configuration of [`Ltb`] (`kind = "ltb"`).
///
/// ```toml
/// kind = "ltb"
/// search_epochs = 10   # [half the run's epochs, rounded up]
/// temperature = 1.0    # [1.0] Gumbel-softmax τ
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LtbConfig {
    /// Epochs of the branching search before the tree is fixed. Default (`None`): half the
    /// run's epochs, rounded up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_epochs: Option<usize>,
    /// Gumbel-softmax temperature `τ > 0`. Default 1.0.
    pub temperature: f64,
}

impl Default for LtbConfig {
    fn default() -> Self {
        Self {
            search_epochs: None,
            temperature: 1.0,
        }
    }
}

impl LtbConfig {
    /// Checks `temperature > 0` (finite); the error names the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(ShareError::key(
                "temperature",
                format!(
                    "{} is not allowed; it must be a positive number",
                    self.temperature
                ),
            ));
        }
        Ok(())
    }

    /// The search epochs of a run of `epochs` epochs.
    pub fn search_epochs_of(&self, epochs: usize) -> usize {
        self.search_epochs.unwrap_or(epochs.div_ceil(2))
    }
}

/// A branching tree over the backbone's stages, searched with Gumbel-softmax (module docs).
pub struct Ltb<B: Backbone> {
    config: LtbConfig,
    columns: Columns<B>,
    /// `β^k` for stages `k ≥ 1` (index `k − 1`), with their names.
    branch: Vec<(Tensor, String)>,
    seed: u64,
    searching: AtomicBool,
}

impl<B: Backbone> Ltb<B> {
    /// Builds one column per task with `build(vb.pp("columns").pp(task))`, heads under
    /// `vb.pp("heads")` and the branching logits under `vb.pp("branch")`; `seed` seeds the
    /// Gumbel noise (the run's seed). The network starts in the search phase.
    pub fn new<E>(
        config: &LtbConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
        seed: u64,
        build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        config.validate()?;
        let columns = Columns::new(tasks, vb.clone(), build)?;
        let first = columns.first("learning to branch")?;
        let t = columns.len();
        let bvb = vb.pp("branch");
        let branch = (1..first.num_stages())
            .map(|k| {
                let name = first.stage_name(k);
                let logits =
                    bvb.get_with_hints((t, t), &name, candle_nn::init::Init::Const(0.0))?;
                Ok((logits, bvb.pp(&name).prefix()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            columns,
            branch,
            seed,
            searching: AtomicBool::new(true),
        })
    }

    /// `true` while the branching search runs ([`MultiTaskNet::begin_epoch`] sets it).
    pub fn searching(&self) -> bool {
        self.searching.load(Ordering::Relaxed)
    }

    /// The chosen tree: for each stage `k ≥ 1`, the parent `p_k(i)` of each node `i`.
    pub fn tree(&self) -> candle_core::Result<Vec<Vec<usize>>> {
        self.branch
            .iter()
            .map(|(b, _)| {
                let rows = b.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let mut best = 0;
                        for (j, v) in r.iter().enumerate() {
                            if *v > r[best] {
                                best = j;
                            }
                        }
                        best
                    })
                    .collect())
            })
            .collect()
    }

    /// Gumbel noise `[T, T]` for stage `k`'s logits; `batch_seed` mixes the run's seed with
    /// the batch's contents (hashed once per step), the stage's name is mixed in here.
    fn gumbel(&self, k: usize, batch_seed: u64) -> candle_core::Result<Tensor> {
        let (logits, name) = &self.branch[k - 1];
        let mut rng = ChaCha8Rng::seed_from_u64(tandem_tensor::hash_seed(batch_seed, name));
        let g: Vec<f32> = (0..logits.elem_count())
            .map(|_| {
                let u = (rng.next_u32() as f64 + 0.5) / 4_294_967_296.0;
                -(-u.ln()).ln() as f32
            })
            .collect();
        Tensor::from_vec(g, logits.shape(), logits.device())?.to_dtype(logits.dtype())
    }

    fn forward_search(&self, input: &Tensor, train: bool) -> candle_core::Result<TaskMap<Tensor>> {
        let t = self.columns.len();
        let b = input.dim(0)?;
        let batch_seed = tandem_layers::dropout::mask_seed(input, "branch", self.seed)?;
        let mut xs: Vec<Tensor> = vec![input.clone(); t];
        for k in 0..self.branch.len() + 1 {
            if k > 0 {
                let logits = &self.branch[k - 1].0;
                let z = (logits + self.gumbel(k, batch_seed)?)?
                    .affine(1.0 / self.config.temperature, 0.0)?;
                let pi = candle_nn::ops::softmax(&z, D::Minus1)?;
                let refs: Vec<&Tensor> = xs.iter().collect();
                // node i reads Σ_j π_ij x_j: a mixture with the same weights for every sample
                xs = (0..t)
                    .map(|i| mix(&pi.get(i)?.unsqueeze(0)?.broadcast_as((b, t))?, &refs))
                    .collect::<candle_core::Result<Vec<_>>>()?;
            }
            self.columns.forward_stage(k, &mut xs, train)?;
        }
        self.columns.predict(&xs)
    }

    fn forward_tree(&self, input: &Tensor, train: bool) -> candle_core::Result<TaskMap<Tensor>> {
        let t = self.columns.len();
        let tree = self.tree()?;
        let n = tree.len() + 1;
        // needed[k][i]: node i of stage k is on a path to a head
        let mut needed = vec![vec![false; t]; n];
        needed[n - 1] = vec![true; t];
        for k in (1..n).rev() {
            for i in 0..t {
                if needed[k][i] {
                    needed[k - 1][tree[k - 1][i]] = true;
                }
            }
        }
        let nets: Vec<&B> = self.columns.backbones().collect();
        let mut xs: Vec<Option<Tensor>> = vec![None; t];
        for k in 0..n {
            let mut next = vec![None; t];
            for i in (0..t).filter(|&i| needed[k][i]) {
                let x = if k == 0 {
                    input
                } else {
                    xs[tree[k - 1][i]]
                        .as_ref()
                        .ok_or_else(|| candle_core::Error::Msg("parent not computed".into()))?
                };
                next[i] = Some(nets[i].forward_stage(k, x, train)?);
            }
            xs = next;
        }
        let xs = xs
            .into_iter()
            .map(|x| x.ok_or_else(|| candle_core::Error::Msg("leaf not computed".into())))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.columns.predict(&xs)
    }
}

impl<B: Backbone> MultiTaskNet for Ltb<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let predictions = if train && self.searching() {
            self.forward_search(input, train)?
        } else {
            self.forward_tree(input, train)?
        };
        Ok(NetOutput {
            predictions,
            penalty: None,
        })
    }

    fn begin_epoch(&self, epoch: usize, epochs: usize) {
        let search = epoch < self.config.search_epochs_of(epochs);
        self.searching.store(search, Ordering::Relaxed);
    }

    fn param_groups(&self) -> ParamGroups {
        let cols = self.columns.columns();
        let n = self.branch.len() + 1;
        if n < 2 {
            return ParamGroups {
                shared: Vec::new(),
                last_shared: Vec::new(),
                tasks: self.columns.task_groups(),
            };
        }
        let mut shared = Vec::new();
        let mut last_shared = Vec::new();
        for c in cols {
            (0..n - 1).for_each(|k| shared.extend(c.net.stage_prefixes(k)));
            last_shared.extend(c.net.stage_prefixes(n - 2));
        }
        shared.extend(self.branch.iter().map(|(_, p)| p.clone()));
        let heads = self.columns.head_prefixes();
        let tasks = heads.map(|t, h| {
            let mut own: Vec<String> = cols
                .iter()
                .filter(|c| c.tasks.iter().any(|x| x == t))
                .flat_map(|c| c.net.stage_prefixes(n - 1))
                .collect();
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
