//! The Jacobian core of every gradient method: per-task gradients as a `T × n` matrix `J` (one
//! row `g_t = ∇L_t` per task) and its Gramian `G = J Jᵀ`, an [`Aggregator`] that turns them into
//! one update, and [`GradientWeighting`], the [`Weighting`] that runs any aggregator on the shared
//! parameters or on the shared representation.
//!
//! ## What an aggregator sees
//! Most methods (MGDA, UPGrad, DualProj, IMTL-G, CAGrad, Nash-MTL, Aligned-MTL, ConFIG,
//! FairGrad, PCGrad's projections, ...) give their update as a combination of the rows,
//! `d = Jᵀ w = Σ_t w_t g_t`, with weights `w` that depend on inner products only: they read the
//! Gramian (`T × T`) and return weights ([`Aggregation::weights`]), and the core never builds the
//! `T × n` matrix for them: it accumulates `G` variable by variable and forms `Σ_t w_t g_t` with
//! tensor operations. Methods that look at coordinates (GradDrop's signs, MoCo's tracked
//! gradients) ask for the rows ([`Aggregator::needs_jacobian`]) and may return a direction of
//! their own ([`Aggregation::direction`]).
//!
//! ## Parameters or representation ([`On`])
//! - `on = "parameters"` (default): `J` holds the gradients of the shared parameters `θ`
//!   (`StepContext::shared`, flattened in sorted-name order; `n = |θ|`). Cost: `T` backward
//!   passes through the whole network.
//! - `on = "representation"` (LibMTL's `rep_grad`; MGDA-UB in Sener & Koltun 2018): `J` holds
//!   the gradients of the shared representation `z = trunk(x)` (`[B, d]`, so `n = B·d`). The
//!   network cuts its graph at `z` ([`Representation`]): the `T` per-task backward passes run
//!   through the heads only, and one more backward pass of `z · (Jᵀ w)` runs through the trunk.
//!   Cost: about one backward pass of the whole network plus `T` of the heads.
//!
//! In both modes, task-specific parameters (heads, columns) receive their own task's plain
//! gradient, as in LibMTL and TorchJD's `mtl_backward`; a penalty (soft sharing's tie) is added
//! unweighted. The weights logged to the history are the aggregator's `w`.
//!
//! ## Non-finite gradients
//! A NaN or an infinity in any task's gradient makes the Gramian non-finite; the aggregator is
//! then not called and the plain sum `Σ_t g_t` is returned, so the trainer's guard sees the
//! non-finite gradient, names it and applies the run's non-finite policy.
use super::linalg::Gramian;
use super::per_task::{combine, flat, per_task_grads};
use super::{StepContext, Update, Weighting};
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskMap;

/// Where a gradient method takes its per-task gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// The shared parameters (the full per-task Jacobian). Default.
    #[default]
    Parameters,
    /// The shared representation (the trunk's output), as LibMTL's `rep_grad`.
    Representation,
}

impl On {
    /// `true` for the default ([`On::Parameters`]), to leave it out when serialising.
    pub fn is_default(&self) -> bool {
        *self == Self::Parameters
    }
}

/// The shared representation of a network whose graph is cut after the trunk: `features` is
/// `z = trunk(x)` (attached to the trunk's graph), `leaf` a variable holding the same values
/// that the heads read, so a task loss's backward pass stops at `leaf`.
#[derive(Clone, Copy)]
pub struct Representation<'a> {
    /// The leaf the heads consume (`[B, d]`).
    pub leaf: &'a Var,
    /// The trunk's output, with its graph (`[B, d]`).
    pub features: &'a Tensor,
}

/// What an [`Aggregator`] is given for one step.
pub struct AggregatorInput<'a> {
    /// `G = J Jᵀ`, `T × T`, tasks in order.
    pub gramian: &'a Gramian,
    /// The rows `g_t` (`T × n`), when [`Aggregator::needs_jacobian`] says so.
    pub jacobian: Option<&'a [Vec<f64>]>,
    /// The task losses `L_t` of this batch (`T`).
    pub losses: &'a [f64],
    /// The tasks' names, one per row, in task order (stopped tasks left out).
    pub tasks: &'a [String],
    /// Optimizer steps taken so far.
    pub step: u64,
}

/// An aggregator's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    /// `w_t`: the update is `Σ_t w_t g_t` (unless `direction` is set; then these are only
    /// logged).
    pub weights: Vec<f64>,
    /// An update that is not a combination of the rows (length `n`), for methods that read
    /// coordinates.
    pub direction: Option<Vec<f64>>,
}

impl Aggregation {
    /// An update `Σ_t w_t g_t`.
    pub fn weights(weights: Vec<f64>) -> Self {
        Self {
            weights,
            direction: None,
        }
    }
}

/// A gradient aggregator: per-task gradients in, one update out. Implement this (rather than
/// [`Weighting`]) for a method that works on gradients; [`GradientWeighting`] runs it in a
/// training step, on parameters or on the representation.
pub trait Aggregator: Send {
    /// The method's name (`mgda`, `upgrad`, ...).
    fn name(&self) -> &str;

    /// `true` when the method needs the rows themselves, not only their Gramian.
    fn needs_jacobian(&self) -> bool {
        false
    }

    /// The update for one step. `rng` is the step's seeded RNG.
    fn aggregate(&mut self, input: &AggregatorInput, rng: &mut ChaCha8Rng) -> Result<Aggregation>;

    /// State carried across steps, as plain JSON (`null` when stateless).
    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores a state returned by [`Aggregator::state`].
    fn load_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// Runs `agg` on `rows` (one per task) and `losses`, returning the aggregation and the update
/// `d` (`Jᵀ w`, or the method's own direction): the whole method on plain numbers, as the
/// `aggregate` example and the reference tests use it.
pub fn aggregate_rows(
    agg: &mut dyn Aggregator,
    rows: &[Vec<f64>],
    losses: &[f64],
    rng: &mut ChaCha8Rng,
) -> Result<(Aggregation, Vec<f64>)> {
    let gramian = Gramian::of_rows(rows);
    let tasks = row_names(rows.len());
    let input = AggregatorInput {
        gramian: &gramian,
        jacobian: agg.needs_jacobian().then_some(rows),
        losses,
        tasks: &tasks,
        step: 0,
    };
    let a = agg.aggregate(&input, rng)?;
    check_len(agg.name(), a.weights.len(), rows.len())?;
    let d = match &a.direction {
        Some(d) => d.clone(),
        None => super::linalg::combine_rows(rows, &a.weights),
    };
    Ok((a, d))
}

/// The names plain rows go by: `t0`, `t1`, ... (row `i` is task `t{i}`), as in
/// [`rows::run_on_rows`](super::rows::run_on_rows).
pub fn row_names(t: usize) -> Vec<String> {
    (0..t).map(|i| format!("t{i}")).collect()
}

fn check_len(name: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(OptimError::config(
            &format!("weighting ({name})"),
            format!("returned {got} weights for {want} tasks"),
        ));
    }
    Ok(())
}

/// A [`Weighting`] that runs an [`Aggregator`] on per-task gradients of the shared parameters or
/// of the shared representation (see the module doc).
pub struct GradientWeighting {
    agg: Box<dyn Aggregator>,
    on: On,
}

impl GradientWeighting {
    /// `agg` on the gradients named by `on`.
    pub fn new(agg: impl Aggregator + 'static, on: On) -> Self {
        Self::boxed(Box::new(agg), on)
    }

    /// A boxed aggregator on the gradients named by `on`.
    pub fn boxed(agg: Box<dyn Aggregator>, on: On) -> Self {
        Self { agg, on }
    }

    /// Where the gradients are taken.
    pub fn on(&self) -> On {
        self.on
    }

    /// The aggregator.
    pub fn aggregator(&self) -> &dyn Aggregator {
        self.agg.as_ref()
    }
}

fn to_candle(e: OptimError) -> candle_core::Error {
    match e {
        OptimError::Candle(e) => e,
        other => candle_core::Error::Msg(other.to_string()),
    }
}

/// The gradient of `var` in each store, as `f64` values (zeros where a store has none).
fn rows_of(stores: &[(String, GradStore)], var: &Var) -> candle_core::Result<Vec<Vec<f64>>> {
    stores
        .iter()
        .map(|(_, s)| match s.get(var.as_tensor()) {
            Some(g) => g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>(),
            None => Ok(vec![0.0; var.elem_count()]),
        })
        .collect()
}

/// `G = Σ_vars J_v J_vᵀ`, variable by variable (never more than one variable's rows in memory).
fn gramian_of(
    stores: &[(String, GradStore)],
    vars: &[(String, Var)],
) -> candle_core::Result<Gramian> {
    let t = stores.len();
    let mut g = vec![0.0; t * t];
    for (_, var) in vars {
        let rows = rows_of(stores, var)?;
        for i in 0..t {
            for j in i..t {
                g[i * t + j] += super::linalg::dot(&rows[i], &rows[j]);
            }
        }
    }
    for i in 0..t {
        for j in 0..i {
            g[i * t + j] = g[j * t + i];
        }
    }
    Ok(Gramian::from_row_major(t, g))
}

/// Every rank's rows (`local`: `T` rows of this rank's coordinates), joined per task in rank
/// order, with the start and length of this rank's coordinates in the joined rows.
fn gather_rows(
    c: &dyn tandem_tensor::Collective,
    local: &[Vec<f64>],
) -> candle_core::Result<(Vec<Vec<f64>>, usize, usize)> {
    let t = local.len();
    let len = local.first().map_or(0, Vec::len);
    let flat: Vec<f64> = local.iter().flatten().copied().collect();
    let all = c
        .gather(&flat)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let mut rows = vec![Vec::new(); t];
    let mut start = 0;
    for (r, part) in all.iter().enumerate() {
        if t == 0 || part.len() % t != 0 {
            candle_core::bail!("rank {r} sent {} row values for {t} tasks", part.len());
        }
        let n = part.len() / t;
        if r < c.rank() {
            start += n;
        }
        for (i, row) in rows.iter_mut().enumerate() {
            row.extend_from_slice(&part[i * n..(i + 1) * n]);
        }
    }
    Ok((rows, start, len))
}

/// `Σ_t w_t g_t` of `var` (computed in f64, in task order; `None` when no store has it).
fn weighted_grad(
    stores: &[(String, GradStore)],
    var: &Var,
    w: &[f64],
) -> candle_core::Result<Option<Tensor>> {
    let mut acc: Option<Tensor> = None;
    for ((_, s), &wt) in stores.iter().zip(w) {
        let Some(g) = s.get(var.as_tensor()) else {
            continue;
        };
        let term = (g.to_dtype(DType::F64)? * wt)?;
        acc = Some(match acc {
            None => term,
            Some(a) => (a + term)?,
        });
    }
    acc.map(|a| a.to_dtype(var.dtype())).transpose()
}

impl Weighting for GradientWeighting {
    fn name(&self) -> &str {
        self.agg.name()
    }

    fn wants_representation(&self) -> bool {
        self.on == On::Representation
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let rep_var;
        let targets: &[(String, Var)] = match self.on {
            On::Parameters => ctx.shared,
            On::Representation => {
                let Some(rep) = ctx.representation else {
                    candle_core::bail!(
                        "weighting.on = \"representation\": the network has no shared representation"
                    );
                };
                rep_var = [("representation".to_string(), rep.leaf.clone())];
                &rep_var
            }
        };
        let ones = losses.map(|_, _| 1.0);
        let mut stores = per_task_grads(losses)?;
        let parallel = ctx.parallel();
        let gramian = match (self.on, parallel) {
            (On::Parameters, _) => {
                // Data parallelism: the global rows of the shared parameters (nothing alone).
                ctx.reduce_rows(&mut stores, targets)?;
                gramian_of(&stores, targets)?
            }
            (On::Representation, None) => gramian_of(&stores, targets)?,
            (On::Representation, Some(c)) => {
                // The ranks' rows are disjoint coordinates: G = Σ_r G_r.
                let local = gramian_of(&stores, targets)?;
                let t = local.len();
                let mut g: Vec<f64> = (0..t * t).map(|k| local.get(k / t, k % t)).collect();
                c.sum(&mut g)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                Gramian::from_row_major(t, g)
            }
        };
        let penalty = ctx.penalty_grads()?;
        if stores.is_empty() || !gramian.is_finite() {
            // Plain sum: a non-finite gradient reaches the trainer's guard as it is.
            let grads = combine(stores, &ones, ctx.trainable, penalty)?;
            return Ok(Update {
                grads,
                weights: ones,
            });
        }
        // Representation mode under data parallelism: a method that reads the rows gets the
        // global ones (every rank's, concatenated in rank order) and this rank's slice of its
        // direction; `shard` is that slice's start and length.
        let mut shard = None;
        let jacobian = if self.agg.needs_jacobian() {
            let local = stores
                .iter()
                .map(|(_, s)| flat(s, targets))
                .collect::<candle_core::Result<Vec<_>>>()?;
            match (self.on, parallel) {
                (On::Representation, Some(c)) => {
                    let (rows, start, len) = gather_rows(c, &local)?;
                    shard = Some((start, len));
                    Some(rows)
                }
                _ => Some(local),
            }
        } else {
            None
        };
        let loss_values = losses
            .iter()
            .map(|(_, l)| Ok(f64::from(l.to_dtype(DType::F32)?.to_scalar::<f32>()?)))
            .collect::<candle_core::Result<Vec<f64>>>()?;
        let names: Vec<String> = losses.keys().map(str::to_string).collect();
        let input = AggregatorInput {
            gramian: &gramian,
            jacobian: jacobian.as_deref(),
            losses: &loss_values,
            tasks: &names,
            step: ctx.step,
        };
        let agg = self.agg.aggregate(&input, ctx.rng).map_err(to_candle)?;
        check_len(self.agg.name(), agg.weights.len(), stores.len()).map_err(to_candle)?;
        // The update of each target variable, Σ_t w_t g_t or the method's own direction.
        let mut target_grads = Vec::with_capacity(targets.len());
        let mut offset = shard.map_or(0, |(start, _)| start);
        for (_, var) in targets {
            let g = match &agg.direction {
                Some(d) => {
                    let n = var.elem_count();
                    let Some(chunk) = d.get(offset..offset + n) else {
                        candle_core::bail!("{}: direction too short", self.agg.name());
                    };
                    offset += n;
                    Some(
                        Tensor::from_slice(chunk, var.shape(), var.device())?
                            .to_dtype(var.dtype())?,
                    )
                }
                None => weighted_grad(&stores, var, &agg.weights)?,
            };
            target_grads.push(g);
        }
        let weights = TaskMap::from_iter(
            losses
                .keys()
                .zip(&agg.weights)
                .map(|(n, w)| (n.to_string(), *w)),
        );
        let pen_of =
            |p: &Option<GradStore>, v: &Var| p.as_ref().and_then(|p| p.get(v.as_tensor()).cloned());
        match self.on {
            On::Parameters => {
                let pen: Vec<Option<Tensor>> =
                    targets.iter().map(|(_, v)| pen_of(&penalty, v)).collect();
                let mut grads = combine(stores, &ones, ctx.trainable, penalty)?;
                for (((_, var), g), p) in targets.iter().zip(target_grads).zip(pen) {
                    let g = match (g, p) {
                        (Some(g), Some(p)) => Some((g + p)?),
                        (g, p) => g.or(p),
                    };
                    match g {
                        Some(g) => grads.insert(var.as_tensor(), g.detach()),
                        None => grads.remove(var.as_tensor()),
                    };
                }
                Ok(Update { grads, weights })
            }
            On::Representation => {
                let Some(rep) = ctx.representation else {
                    candle_core::bail!("no shared representation");
                };
                let mut grads = combine(stores, &ones, ctx.trainable, penalty)?;
                if let Some(Some(gz)) = target_grads.into_iter().next() {
                    let trunk = (rep.features * gz.detach())?.sum_all()?.backward()?;
                    for (_, var) in ctx.trainable {
                        let Some(g) = trunk.get(var.as_tensor()) else {
                            continue;
                        };
                        let g = match grads.get(var.as_tensor()) {
                            Some(e) => (e + g)?,
                            None => g.clone(),
                        };
                        grads.insert(var.as_tensor(), g.detach());
                    }
                }
                grads.remove(rep.leaf.as_tensor());
                Ok(Update { grads, weights })
            }
        }
    }

    fn state(&self) -> Result<serde_json::Value> {
        self.agg.state()
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.agg.load_state(state)
    }
}
