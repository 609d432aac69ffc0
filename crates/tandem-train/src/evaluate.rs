//! Evaluation of a network on a data set: per-task mean loss and metrics.
//!
//! [`evaluate_sharded`] splits the data set over the ranks of a data-parallel run: rank `r`
//! evaluates the contiguous samples `⌊r·n/R⌋ .. ⌊(r+1)·n/R⌋`, and the ranks exchange their
//! loss sums, labelled counts and the predictions and targets of their samples (a few numbers
//! per sample, far less than a gradient). Every rank then feeds the predictions to each task's
//! metric in sample order, exactly as one process does, so any [`tandem_heads::Metric`] — one's
//! own included — gives the one-process result, and evaluation costs `1/R` of the forward
//! passes.
use crate::{Result, TrainError};
use candle_core::{DType, Device, Tensor};
use tandem_data::{Batcher, Dataset};
use tandem_heads::{MetricValues, TaskSet};
use tandem_share::MultiTaskNet;
use tandem_tensor::{Collective, Target, TaskMap};

/// Per-task results of one evaluation pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Mean loss per labelled sample, per task.
    pub losses: TaskMap<f64>,
    /// Metrics per task.
    pub metrics: TaskMap<MetricValues>,
}

/// Runs `net` in evaluation mode over every sample of `data` (in order, batches from `batcher`)
/// and scores every task of `tasks`.
pub fn evaluate(
    net: &dyn MultiTaskNet,
    tasks: &TaskSet,
    data: &dyn Dataset,
    batcher: &Batcher,
    device: &Device,
) -> Result<Evaluation> {
    let mut metrics = tasks.as_map().map(|_, t| t.metrics());
    let mut loss_sum = tasks.as_map().map(|_, _| 0.0f64);
    let mut labelled = tasks.as_map().map(|_, _| 0.0f64);
    for batch in batcher.iter(data, 0, device) {
        let batch = batch?;
        let out = net.forward_t(&batch.input, false)?;
        let losses = crate::batch_losses(tasks, tasks.names(), &out, &batch)?;
        for (name, l) in losses.iter() {
            let n = f64::from(l.labelled);
            let value = f64::from(l.loss.to_scalar::<f32>()?);
            if let (Some(s), Some(c)) = (loss_sum.get_mut(name), labelled.get_mut(name)) {
                *s += value * n;
                *c += n;
            }
            if let (Some(m), Some(pred), Some(target)) = (
                metrics.get_mut(name),
                out.predictions.get(name),
                batch.targets.get(name),
            ) {
                m.update(pred, target)?;
            }
        }
    }
    Ok(Evaluation {
        losses: loss_sum.map(|n, s| s / labelled.get(n).copied().unwrap_or(1.0).max(1.0)),
        metrics: metrics.map(|_, m| m.compute()),
    })
}

/// Per task, per gating level, the weight of each expert averaged over the samples.
pub type GateMeans = TaskMap<Vec<Vec<f64>>>;

/// The gate weights of a gated network ([`MultiTaskNet::gates`]: MMoE, CGC, PLE, DSelect-k)
/// averaged over every sample of `data` in evaluation mode, summed batch by batch in order;
/// `None` for a network without gates or an empty data set.
pub fn gate_means(
    net: &dyn MultiTaskNet,
    data: &dyn Dataset,
    batcher: &Batcher,
    device: &Device,
) -> Result<Option<GateMeans>> {
    let mut sums: Option<GateMeans> = None;
    let mut count = 0usize;
    for batch in batcher.iter(data, 0, device) {
        let batch = batch?;
        let Some(gates) = net.gates(&batch.input)? else {
            return Ok(None);
        };
        count += batch.input.dim(0)?;
        let batch_sums = gates.try_map(|_, levels| {
            levels
                .iter()
                .map(|g| {
                    let s = g.to_dtype(DType::F64)?.sum(0)?.to_vec1::<f64>()?;
                    Ok::<_, candle_core::Error>(s)
                })
                .collect::<std::result::Result<Vec<_>, _>>()
        })?;
        sums = Some(match sums {
            None => batch_sums,
            Some(acc) => acc.map(|t, levels| {
                let add = batch_sums.get(t);
                levels
                    .iter()
                    .enumerate()
                    .map(|(l, row)| {
                        row.iter()
                            .enumerate()
                            .map(|(e, v)| {
                                v + add
                                    .and_then(|a| a.get(l))
                                    .and_then(|r| r.get(e))
                                    .copied()
                                    .unwrap_or(0.0)
                            })
                            .collect()
                    })
                    .collect()
            }),
        });
    }
    if count == 0 {
        return Ok(None);
    }
    let n = count as f64;
    Ok(sums.map(|s| {
        s.map(|_, levels| {
            levels
                .iter()
                .map(|r| r.iter().map(|v| v / n).collect())
                .collect()
        })
    }))
}

/// [`evaluate`] with the samples split over the ranks of `collective` (see the module docs);
/// every rank gets the same [`Evaluation`]. With one rank it is [`evaluate`].
pub fn evaluate_sharded(
    net: &dyn MultiTaskNet,
    tasks: &TaskSet,
    data: &dyn Dataset,
    batcher: &Batcher,
    device: &Device,
    collective: &dyn Collective,
) -> Result<Evaluation> {
    let ranks = collective.ranks();
    if ranks <= 1 {
        return evaluate(net, tasks, data, batcher, device);
    }
    let (n, r) = (data.len(), collective.rank());
    let (start, end) = (r * n / ranks, (r + 1) * n / ranks);
    // Per task: loss sum, labelled count, then the encoded predictions and targets.
    let mut loss_sum = tasks.as_map().map(|_, _| 0.0f64);
    let mut labelled = tasks.as_map().map(|_, _| 0.0f64);
    let mut seen: TaskMap<Vec<(Tensor, Target)>> = tasks.as_map().map(|_, _| Vec::new());
    let size = batcher.batch_size().max(1);
    let mut at = start;
    while at < end {
        let stop = (at + size).min(end);
        let batch = batcher.batch_of(data, (at..stop).collect(), 0, device)?;
        at = stop;
        let out = net.forward_t(&batch.input, false)?;
        let losses = crate::batch_losses(tasks, tasks.names(), &out, &batch)?;
        for (name, l) in losses.iter() {
            let c = f64::from(l.labelled);
            let value = f64::from(l.loss.to_scalar::<f32>()?);
            if let (Some(s), Some(k)) = (loss_sum.get_mut(name), labelled.get_mut(name)) {
                *s += value * c;
                *k += c;
            }
            if let (Some(v), Some(pred), Some(target)) = (
                seen.get_mut(name),
                out.predictions.get(name),
                batch.targets.get(name),
            ) {
                v.push((pred.clone(), target.clone()));
            }
        }
    }
    let mut mine = Vec::new();
    for (name, _) in tasks.as_map().iter() {
        mine.push(loss_sum.get(name).copied().unwrap_or(0.0));
        mine.push(labelled.get(name).copied().unwrap_or(0.0));
        let parts = seen.get(name).map(Vec::as_slice).unwrap_or(&[]);
        mine.push(parts.len() as f64);
        for (pred, target) in parts {
            encode(pred, &mut mine)?;
            encode(&target.values, &mut mine)?;
            match &target.mask {
                Some(m) => {
                    mine.push(1.0);
                    encode(m, &mut mine)?;
                }
                None => mine.push(0.0),
            }
        }
    }
    let all = collective.gather(&mine)?;
    let mut metrics = tasks.as_map().map(|_, t| t.metrics());
    let mut total = tasks.as_map().map(|_, _| (0.0f64, 0.0f64));
    let mut readers: Vec<Reader> = all.iter().map(|v| Reader { v, at: 0 }).collect();
    for (name, _) in tasks.as_map().iter() {
        for rd in readers.iter_mut() {
            let (s, c) = (rd.next()?, rd.next()?);
            if let Some(t) = total.get_mut(name) {
                // Rank order: the same additions on every rank.
                t.0 += s;
                t.1 += c;
            }
            let parts = rd.next()? as usize;
            for _ in 0..parts {
                let pred = rd.tensor(device)?;
                let values = rd.tensor(device)?;
                let mask = if rd.next()? > 0.0 {
                    Some(rd.tensor(device)?)
                } else {
                    None
                };
                if let Some(m) = metrics.get_mut(name) {
                    m.update(&pred, &Target { values, mask })?;
                }
            }
        }
    }
    Ok(Evaluation {
        losses: total.map(|_, (s, c)| s / c.max(1.0)),
        metrics: metrics.map(|_, m| m.compute()),
    })
}

/// `[dtype code, rank, dims..., values...]` of `t` (f64 holds every f32 and u32 exactly).
fn encode(t: &Tensor, out: &mut Vec<f64>) -> Result<()> {
    let code = match t.dtype() {
        DType::U32 => 0.0,
        DType::F32 => 1.0,
        DType::F64 => 2.0,
        DType::I64 => 3.0,
        DType::U8 => 4.0,
        other => {
            return Err(TrainError::Exchange(format!(
                "evaluation cannot exchange {other:?} tensors"
            )))
        }
    };
    out.push(code);
    out.push(t.rank() as f64);
    out.extend(t.dims().iter().map(|&d| d as f64));
    out.extend(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
    Ok(())
}

/// Reads what [`encode`] wrote, in order.
struct Reader<'a> {
    v: &'a [f64],
    at: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<f64> {
        let x =
            self.v.get(self.at).copied().ok_or_else(|| {
                TrainError::Exchange("a rank sent a short evaluation record".into())
            })?;
        self.at += 1;
        Ok(x)
    }

    fn tensor(&mut self, device: &Device) -> Result<Tensor> {
        let dtype = match self.next()? as u32 {
            0 => DType::U32,
            1 => DType::F32,
            2 => DType::F64,
            3 => DType::I64,
            _ => DType::U8,
        };
        let rank = self.next()? as usize;
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(self.next()? as usize);
        }
        let n: usize = dims.iter().product();
        let Some(values) = self.v.get(self.at..self.at + n) else {
            return Err(TrainError::Exchange(
                "a rank sent a short evaluation record".into(),
            ));
        };
        self.at += n;
        Ok(Tensor::from_slice(values, dims, device)?.to_dtype(dtype)?)
    }
}
