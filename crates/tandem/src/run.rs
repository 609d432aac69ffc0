//! Running one configured training: data, model, weighting, trainer, evaluation.
//!
//! [`train`] builds the model of a [`RunConfig`], trains it, keeps the variables of the epoch
//! with the best validation main-task metric (the epoch the report's metrics come from) and,
//! when the data has a test split, scores those variables on it.
use crate::{Result, RunConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tandem_data::mtfl::{Mtfl, MtflOptions};
use tandem_data::{Batcher, Dataset, Subset, SynthFaces, Transform};
use tandem_heads::MetricValues;
use tandem_tensor::{sorted_vars, TaskMap};
use tandem_train::{evaluate, EpochRecord, Report, Trainer};

/// The data of one run.
#[derive(Clone)]
pub struct RunData {
    /// Training samples.
    pub train: Arc<dyn Dataset>,
    /// Validation samples (model selection).
    pub val: Arc<dyn Dataset>,
    /// Test samples, scored once with the selected model; never used for selection.
    pub test: Option<Arc<dyn Dataset>>,
    /// A per-sample transform for `train` (training mode) and `val` (evaluation mode), if any.
    /// Never applied to `test`.
    pub transform: Option<Arc<dyn Transform>>,
}

impl RunData {
    /// SynthFaces from `cfg.data`, generated with `seed`: faces `0..val_size` validate, the next
    /// `train_size` train (so the validation set is the same for every training-set size).
    pub fn synthetic(cfg: &RunConfig, seed: u64) -> Result<Self> {
        let mut synth = cfg.data.synth.clone();
        synth.len = cfg.data.val_size + cfg.data.train_size;
        let all: Arc<dyn Dataset> = Arc::new(SynthFaces::new(synth, seed));
        let val = Subset::new(all.clone(), (0..cfg.data.val_size).collect())?;
        let train = Subset::new(all.clone(), (cfg.data.val_size..all.len()).collect())?;
        Ok(Self {
            train: Arc::new(train),
            val: Arc::new(val),
            test: None,
            transform: None,
        })
    }

    /// Real MTFL from an opened folder: a seeded random split of `training.txt` holding out
    /// `cfg.data.val_fraction` for validation, the training part cut to `cfg.data.train_size`
    /// faces when that is non-zero, and `testing.txt` as the test split when present.
    pub fn mtfl(mtfl: &Mtfl, cfg: &RunConfig, seed: u64) -> Result<Self> {
        let (train, val) = mtfl.split(1.0 - cfg.data.val_fraction, seed)?;
        let train = if cfg.data.train_size > 0 {
            train.take(cfg.data.train_size)
        } else {
            train
        };
        Ok(Self {
            train: Arc::new(train),
            val: Arc::new(val),
            test: mtfl.test(),
            transform: Some(mtfl.train_transform()),
        })
    }

    /// Opens the MTFL folder `dir` for a model of `input_size` pixels.
    pub fn open_mtfl(dir: &Path, input_size: usize) -> Result<Mtfl> {
        let options = MtflOptions {
            model_size: input_size,
            ..MtflOptions::default()
        };
        Ok(Mtfl::open(dir, options)?)
    }
}

/// The validation metric of an epoch and a copy of its variables, by name.
type Snapshot = (f64, Vec<(String, Tensor)>);

/// What a run produced.
pub struct RunOutput {
    /// Validation metrics and history.
    pub report: Report,
    /// Test metrics of the selected model, when the data has a test split.
    pub test: Option<TaskMap<MetricValues>>,
    /// The variables of the selected (best validation) epoch.
    pub vars: VarMap,
}

/// Builds the model of `cfg`, trains it on `data`, restores the best epoch's variables and
/// scores them on the test split if there is one.
pub fn train(
    cfg: &RunConfig,
    data: &RunData,
    device: &Device,
    mut on_epoch: impl FnMut(&EpochRecord) + Send + 'static,
) -> Result<RunOutput> {
    cfg.validate()?;
    let tasks = cfg.task_set();
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, cfg.train.seed, DType::F32, device);
    let net = cfg.sharing.build(&cfg.model, &tasks, vb.clone())?;
    let weighting = cfg.weighting.build(&tasks, vb)?;
    let (main, metric) = match tasks.main() {
        Some(t) => (t.name().to_string(), t.primary_metric().to_string()),
        None => return Err(crate::Error::config("tasks", "no main task")),
    };
    // The best epoch's variables, copied when the validation main metric improves.
    let best: Arc<Mutex<Option<Snapshot>>> = Arc::new(Mutex::new(None));
    let (best_cb, vars_cb) = (best.clone(), vars.clone());
    let mut trainer = Trainer::new(cfg.train.clone())
        .weighting_boxed(weighting)
        .stopper(cfg.stopper)
        .device(device.clone())
        .on_epoch(move |r| {
            on_epoch(r);
            let Some(v) = r
                .val_metrics
                .get(&main)
                .and_then(|m| m.get(&metric))
                .copied()
            else {
                return;
            };
            if let Ok(mut b) = best_cb.lock() {
                if b.as_ref().is_none_or(|(bv, _)| v < *bv) {
                    let snapshot = sorted_vars(&vars_cb)
                        .into_iter()
                        .filter_map(|(n, var)| var.as_tensor().copy().ok().map(|t| (n, t)))
                        .collect();
                    *b = Some((v, snapshot));
                }
            }
        });
    if let Some(t) = &data.transform {
        trainer = trainer.transform(t.clone());
    }
    let report = trainer.fit(net.as_ref(), &tasks, &vars, &data.train, &data.val)?;
    let snapshot = best.lock().ok().and_then(|mut b| b.take());
    if let Some((_, tensors)) = snapshot {
        for (name, var) in sorted_vars(&vars) {
            if let Some((_, t)) = tensors.iter().find(|(n, _)| *n == name) {
                var.set(t)?;
            }
        }
    }
    let test = match &data.test {
        Some(test) => {
            let eval = evaluate(
                net.as_ref(),
                &tasks,
                test.as_ref(),
                &Batcher::eval(cfg.train.eval_batch_size),
                device,
            )?;
            Some(eval.metrics)
        }
        None => None,
    };
    Ok(RunOutput { report, test, vars })
}

/// Runs candle's own element-wise operations on the calling thread (`CANDLE_NUM_THREADS=1`)
/// unless the variable is already set. On a few cores its spin-waiting pool costs more than it
/// saves (~30 % of a TCDCN step on 2 cores, see docs/performance.md); tandem's kernels and the
/// GEMMs keep using rayon's pool. Call it at the start of `main`, before any tensor work.
pub fn init_cpu_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}
