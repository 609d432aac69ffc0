//! Data-parallel steps ([`Trainer::data_parallel`]): what the ranks exchange.
//!
//! Rank `r` of `R` holds the contiguous shard `⌊r·B/R⌋ .. ⌊(r+1)·B/R⌋` of every global batch
//! of `B` samples. One step exchanges, with [`Collective::sum`] (added in rank order, so two
//! runs with the same seed and `R` give identical bits):
//!
//! 1. **Losses** (`2T + 2` numbers): `n_{r,t} L_{r,t}` and `n_{r,t}` per active task `t`
//!    (`n_{r,t}`: the shard's labelled samples of `t`), and `b_r P_r`, `b_r` for the penalty
//!    (`b_r`: the shard's samples). The weighting then sees, for each task,
//!    `L̃_t = L_t + a_{r,t} (L_{r,t} − sg(L_{r,t}))` with `L_t = Σ_r n_{r,t} L_{r,t} / N_t` and
//!    `a_{r,t} = n_{r,t} / N_t` (`sg`: stop-gradient): its value is exactly the global loss on
//!    every rank (`x − x = 0`), its gradient the rank's share of the global gradient. The
//!    penalty likewise with `a_r = b_r / B` (a penalty on parameters has the same value on every
//!    rank, so its shares add up to its gradient).
//! 2. **What the weighting needs** before it decides (see `tandem_optim::weighting`, "Data
//!    parallelism"): nothing for loss-level methods; the `T × n` per-task gradients of the
//!    shared parameters for gradient methods in parameter mode; the `T × T` Gramian in
//!    representation mode; the `T × |W|` rows of the last shared layer for GradNorm.
//! 3. **Gradients** (`n` numbers and a presence flag per variable): every network variable's
//!    gradient, except those the weighting already summed (its shared rows), plus the
//!    penalty's share. Variables under `weighting.` (uncertainty's `s_t`, ...) are the
//!    weighting's own: their gradients are functions of the global loss values, the same on
//!    every rank, and are not summed.
//! 4. **Buffers** (batch norm's running statistics): each rank updates them from its shard;
//!    after the step every rank holds their mean over the ranks, so the replicas stay equal.
use super::step::{non_finite, Losses};
use super::Trainer;
use crate::{Result, RunState, TrainError};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, TensorId, Var};
use candle_nn::VarMap;
use tandem_tensor::{is_buffer, sorted_vars, Collective, TaskMap};

/// The prefix of a weighting's own variables.
const WEIGHTING_PREFIX: &str = "weighting.";

/// The global losses with this rank's gradient share (see the module docs), or the error
/// naming the first non-finite global loss or penalty (the same verdict on every rank).
#[allow(clippy::too_many_arguments)]
pub(super) fn share_losses(
    c: &dyn Collective,
    active: &[String],
    local: Losses,
    penalty: Option<&Tensor>,
    shard_len: usize,
    batch_len: usize,
    epoch: usize,
    step: u64,
) -> Result<std::result::Result<(Losses, Option<Tensor>), TrainError>> {
    let mut buf = Vec::with_capacity(2 * active.len() + 2);
    for name in active {
        match local.values.iter().position(|(n, _)| n == name) {
            Some(i) => {
                let n = local.labelled[i];
                buf.push(n * local.values[i].1);
                buf.push(n);
            }
            None => buf.extend([0.0, 0.0]),
        }
    }
    let p_local = match penalty {
        Some(p) => f64::from(p.to_dtype(DType::F32)?.to_scalar::<f32>()?),
        None => 0.0,
    };
    buf.push(shard_len as f64 * p_local);
    buf.push(shard_len as f64);
    c.sum(&mut buf)?;
    let mut out = Losses {
        tensors: TaskMap::new(),
        values: Vec::new(),
        labelled: Vec::new(),
    };
    let mut tensors = local.tensors;
    for (i, name) in active.iter().enumerate() {
        let (sum, total) = (buf[2 * i], buf[2 * i + 1]);
        if total <= 0.0 {
            continue;
        }
        let global = sum / total;
        if !global.is_finite() {
            return Ok(Err(non_finite("loss", name, epoch, step)));
        }
        let n_local = local
            .values
            .iter()
            .position(|(n, _)| n == name)
            .map_or(0.0, |i| local.labelled[i]);
        let l = tensors.remove(name);
        let device = c_device(l.as_ref(), penalty);
        let tilde = shared_value(global, l.as_ref(), n_local / total, &device)?;
        out.values.push((name.clone(), global));
        out.labelled.push(total);
        out.tensors.insert(name.as_str(), tilde);
    }
    let penalty = match penalty {
        Some(p) => {
            let (sum, total) = (buf[2 * active.len()], buf[2 * active.len() + 1]);
            let global = sum / total.max(1.0);
            if !global.is_finite() {
                return Ok(Err(non_finite("penalty", &active.join(", "), epoch, step)));
            }
            let share = shard_len as f64 / batch_len.max(1) as f64;
            Some(shared_value(global, Some(p), share, p.device())?)
        }
        None => None,
    };
    Ok(Ok((out, penalty)))
}

/// The device of the local tensors (CPU when this rank has none).
fn c_device(l: Option<&Tensor>, p: Option<&Tensor>) -> candle_core::Device {
    l.or(p)
        .map_or(candle_core::Device::Cpu, |t| t.device().clone())
}

/// `global + share · (local − sg(local))`: the value `global` (exactly), the gradient
/// `share · ∇local`; a constant `global` without a local tensor.
fn shared_value(
    global: f64,
    local: Option<&Tensor>,
    share: f64,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let dtype = local.map_or(DType::F32, Tensor::dtype);
    let g = Tensor::new(global, device)?.to_dtype(dtype)?;
    Ok(match local {
        Some(l) => {
            let l = l.reshape(())?;
            let zero = ((&l - l.detach())? * share)?;
            (g + zero)?
        }
        None => g,
    })
}

/// The update every rank applies: the sum over the ranks of each network variable's gradient
/// in `grads` (except the `reduced` ones, already sums) plus the penalty's share, in one
/// collective sum; the weighting's own variables as they are.
pub(super) fn reduce_grads(
    c: &dyn Collective,
    trainable: &[(String, Var)],
    grads: Option<GradStore>,
    reduced: &[TensorId],
    penalty: Option<&Tensor>,
) -> Result<GradStore> {
    let pen = penalty.map(Tensor::backward).transpose()?;
    let mut grads = match (grads, &pen) {
        (Some(g), _) => g,
        // Only the penalty: its own backward pass holds the variables it reaches.
        (None, Some(_)) => match penalty {
            Some(p) => p.backward()?,
            None => return Err(TrainError::Exchange("penalty vanished".into())),
        },
        (None, None) => {
            return Err(TrainError::config(
                "weighting",
                "no loss to optimise: every task is stopped",
            ))
        }
    };
    let summed: Vec<&(String, Var)> = trainable
        .iter()
        .filter(|(n, _)| !n.starts_with(WEIGHTING_PREFIX))
        .collect();
    let mut buf = Vec::new();
    for (_, var) in &summed {
        let own = if reduced.contains(&var.id()) {
            None
        } else {
            grads.get(var.as_tensor()).cloned()
        };
        let p = pen.as_ref().and_then(|p| p.get(var.as_tensor())).cloned();
        let local = match (own, p) {
            (Some(a), Some(b)) => Some((a + b)?),
            (a, b) => a.or(b),
        };
        match local {
            Some(g) => {
                buf.push(1.0);
                buf.extend(g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
            }
            None => {
                buf.push(0.0);
                buf.resize(buf.len() + var.elem_count(), 0.0);
            }
        }
    }
    c.sum(&mut buf)?;
    let mut at = 0;
    for (_, var) in &summed {
        let n = var.elem_count();
        let present = buf[at] > 0.0;
        let values = &buf[at + 1..at + 1 + n];
        at += n + 1;
        let sum = if present {
            Some(Tensor::from_slice(values, var.shape(), var.device())?.to_dtype(var.dtype())?)
        } else {
            None
        };
        let total = match (reduced.contains(&var.id()), grads.get(var.as_tensor()), sum) {
            (true, Some(g), Some(s)) => Some((g + s)?),
            (true, Some(g), None) => Some(g.clone()),
            (_, _, s) => s,
        };
        match total {
            Some(g) => grads.insert(var.as_tensor(), g.detach()),
            None => grads.remove(var.as_tensor()),
        };
    }
    Ok(grads)
}

/// Every buffer (batch norm's running statistics) replaced by its mean over the ranks.
pub(super) fn average_buffers(c: &dyn Collective, vars: &VarMap) -> Result<()> {
    let buffers: Vec<(String, Var)> = sorted_vars(vars)
        .into_iter()
        .filter(|(n, _)| is_buffer(n))
        .collect();
    if buffers.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    for (_, v) in &buffers {
        buf.extend(v.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
    }
    c.sum(&mut buf)?;
    let r = c.ranks() as f64;
    let mut at = 0;
    for (_, v) in &buffers {
        let n = v.elem_count();
        let mean: Vec<f64> = buf[at..at + n].iter().map(|x| x / r).collect();
        at += n;
        v.set(&Tensor::from_slice(&mean, v.shape(), v.device())?.to_dtype(v.dtype())?)?;
    }
    Ok(())
}

impl Trainer {
    /// With several ranks: every rank must start (or resume) at the same position.
    pub(super) fn check_same_position(&self, run: &RunState) -> Result<()> {
        let c = self.collective.as_ref();
        if c.ranks() <= 1 {
            return Ok(());
        }
        let mine = [run.epoch as f64, run.batch as f64, run.step as f64];
        let all = c.gather(&mine)?;
        if let Some((r, other)) = all.iter().enumerate().find(|(_, v)| v[..] != mine[..]) {
            return Err(TrainError::config(
                "resume",
                format!(
                    "rank {} starts at epoch {}, batch {}, step {} but rank {r} at epoch {}, \
                     batch {}, step {}: every rank must read the same checkpoint folder",
                    c.rank(),
                    mine[0],
                    mine[1],
                    mine[2],
                    other.first().copied().unwrap_or(f64::NAN),
                    other.get(1).copied().unwrap_or(f64::NAN),
                    other.get(2).copied().unwrap_or(f64::NAN),
                ),
            ));
        }
        Ok(())
    }
}
