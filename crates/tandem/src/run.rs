//! Running one configured training: data, model, weighting, trainer, evaluation.
//!
//! [`train`] builds the model of a [`RunConfig`], trains it, keeps the variables of the epoch
//! with the best validation main-task metric (the epoch the report's metrics come from) and,
//! when the data has a test split, scores those variables on it.
use crate::{Error, Result, RunConfig};
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tandem_data::mtfl::{pose_resample, CropPolicy, FaceTransform, Mtfl, MtflOptions};
use tandem_data::table::{Table, TableOptions};
use tandem_data::{Batcher, Dataset, EvalSet, Subset, SynthFaces, Transform};
use tandem_heads::MetricValues;
use tandem_share::MultiTaskNet;
use tandem_tensor::TaskMap;
use tandem_train::{evaluate, CheckpointConfig, EpochRecord, FitTiming, Report, StepInfo, Trainer};

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
    /// Further evaluation sets, scored like `test` with the selected model and never used for
    /// selection (for real MTFL: [`Mtfl::evaluation_sets`]).
    pub evals: Vec<EvalSet>,
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
            evals: Vec::new(),
        })
    }

    /// Real MTFL from an opened folder: a seeded random split of `training.txt` (seed
    /// `cfg.data.split_seed`, else `seed`) holding out `cfg.data.val_fraction` for validation,
    /// the training part cut to `cfg.data.train_size` faces when that is non-zero, and
    /// `testing.txt` as the test split when present.
    ///
    /// Faces are cropped as `cfg.data.crop` says: training faces from their jittered face box,
    /// validation faces from a *test-like* box (a fixed per-face draw of MTFL's test-crop
    /// spread), test faces whole. Besides `val` (which selects the model), `evals` holds the
    /// validation split with centred crops (`val_centred`) and the validation faces of each
    /// source folder (`val_lfw_5590`, `val_net_7876`), test-like ([`Mtfl::evaluation_sets`]),
    /// and the proxy set `val_proxy` (the validation faces at the test split's pose mix,
    /// degraded as in-the-wild photos are; [`Mtfl::proxy_set`], `cfg.data.proxy`). With
    /// `cfg.data.pose_balance` the training faces are resampled to that non-frontal share.
    pub fn mtfl(mtfl: &Mtfl, cfg: &RunConfig, seed: u64) -> Result<Self> {
        let split_seed = cfg.data.split_seed_or(seed);
        let (train, val) = mtfl.split(1.0 - cfg.data.val_fraction, split_seed)?;
        let train = if cfg.data.train_size > 0 {
            train.take(cfg.data.train_size)
        } else {
            train
        };
        let crop = &cfg.data.crop;
        let transform = FaceTransform {
            crop: CropPolicy::LandmarkBox {
                scale: crop.box_scale,
                jitter: crop.jitter,
            },
            eval_spread: crop.eval_spread,
            eval_seed: crop.eval_seed,
            augment: cfg.data.augment,
            ..mtfl.face_transform()
        };
        let mut evals = mtfl.evaluation_sets(&val, &transform)?;
        evals.push(mtfl.proxy_set(&val, &transform, &cfg.data.proxy)?);
        let train = if cfg.data.pose_balance > 0.0 {
            let items = pose_resample(&mtfl.poses(&train), cfg.data.pose_balance, seed);
            Subset::new(mtfl.train(), items.into_iter().map(|(i, _)| i).collect())?
        } else {
            train
        };
        let transform: Arc<dyn Transform> = Arc::new(transform);
        Ok(Self {
            train: Arc::new(train),
            val: Arc::new(val),
            test: mtfl.test(),
            transform: Some(transform),
            evals,
        })
    }

    /// A CSV table (`cfg.data.kind = "table"`, [`tandem_data::table`]): the rows its split
    /// column assigns, else a split seeded by `cfg.data.split_seed` (else `seed`) holding out
    /// `cfg.data.val_fraction` for validation; numeric features standardised with the
    /// training rows' statistics, or images resized to the trunk's input size; one label per
    /// declared task.
    pub fn table(cfg: &RunConfig, path: &Path, seed: u64) -> Result<Self> {
        let tcdcn = cfg.model.as_tcdcn();
        let options = TableOptions {
            features: cfg.data.features.clone(),
            image: cfg.data.image.clone(),
            tasks: cfg.task.iter().map(|t| t.table_task()).collect(),
            image_size: tcdcn.map_or(0, |t| t.input_size),
            channels: tcdcn.map_or(1, |t| t.in_channels),
            split_column: cfg.data.split_column.clone(),
        };
        let table = Table::open(path, &options)?;
        let splits = table.splits(cfg.data.val_fraction, cfg.data.split_seed_or(seed))?;
        Ok(Self {
            train: splits.train,
            val: splits.val,
            test: splits.test,
            transform: None,
            evals: Vec::new(),
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

/// What a run produced.
pub struct RunOutput {
    /// Validation metrics and history.
    pub report: Report,
    /// Test metrics of the selected model, when the data has a test split.
    pub test: Option<TaskMap<MetricValues>>,
    /// Metrics of the selected model on each of [`RunData::evals`], by name.
    pub evals: Vec<(String, TaskMap<MetricValues>)>,
    /// The variables of the selected (best validation) epoch.
    pub vars: VarMap,
    /// Where the training time went.
    pub timing: FitTiming,
    /// The network's trainable parameters (every variable but the buffers and the weighting's
    /// own, e.g. uncertainty weighting's `log σ²`), counted in values.
    pub parameters: usize,
    /// For a gated architecture (MMoE, CGC, PLE, DSelect-k): per task, per gating level, each
    /// expert's mean weight over the validation set, for the selected model; `None` otherwise
    /// (and on ranks other than 0).
    pub gates: Option<tandem_train::GateMeans>,
}

/// A callback run after every optimizer step, shared so that [`RunOptions`] stays `Clone`.
#[derive(Clone)]
pub struct StepHook(Arc<Mutex<StepFn>>);

/// The callback inside a [`StepHook`].
type StepFn = dyn FnMut(&StepInfo) + Send;

impl StepHook {
    /// Wraps `f`.
    pub fn new(f: impl FnMut(&StepInfo) + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(f)))
    }

    fn call(&self, info: &StepInfo) {
        if let Ok(mut f) = self.0.lock() {
            f(info);
        }
    }
}

impl std::fmt::Debug for StepHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepHook(..)")
    }
}

/// Checkpointing, resume and per-step progress of one run (see [`train_with`]).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Write checkpoints as configured (`None`: none). When its `model_config` is `null`, the
    /// run's [`RunConfig`] is stored in every checkpoint's `meta.json`. The best epoch's
    /// variables are kept beside them in `DIR/best/`, so a resumed run selects the same model.
    pub checkpoints: Option<CheckpointConfig>,
    /// Continue from the newest valid checkpoint of `checkpoints.dir` when there is one (a run
    /// without one starts afresh; a finished run returns its report without training).
    pub resume: bool,
    /// Called after every optimizer step (progress bars); `None`: nothing.
    pub on_step: Option<StepHook>,
    /// Train data-parallel over these ranks ([`Trainer::data_parallel`]; `None`: one
    /// process). Every rank calls [`train_with`] with the same configuration and data; rank 0
    /// writes the checkpoints and alone scores the test split and the extra evaluation sets
    /// (the other ranks return them empty).
    pub collective: Option<Arc<dyn tandem_tensor::Collective>>,
}

/// Builds the model of `cfg`, trains it on `data`, restores the best epoch's variables and
/// scores them on the test split if there is one.
pub fn train(
    cfg: &RunConfig,
    data: &RunData,
    device: &Device,
    on_epoch: impl FnMut(&EpochRecord) + Send + 'static,
) -> Result<RunOutput> {
    train_with(cfg, data, device, &RunOptions::default(), on_epoch)
}

/// [`train`] with checkpoints and resume: killed at any point and called again with
/// `resume: true`, it returns what an uninterrupted call would have, bit for bit.
///
/// ```no_run
/// # fn f(cfg: &tandem::RunConfig, data: &tandem::run::RunData) -> tandem::Result<()> {
/// use tandem::run::{train_with, RunOptions};
/// use tandem::train::CheckpointConfig;
/// let options = RunOptions {
///     checkpoints: Some(CheckpointConfig::new("out/variant-a/checkpoints").every_steps(500)),
///     resume: true,
///     ..RunOptions::default()
/// };
/// let out = train_with(cfg, data, &candle_core::Device::Cpu, &options, |_| {})?;
/// # Ok(()) }
/// ```
pub fn train_with(
    cfg: &RunConfig,
    data: &RunData,
    device: &Device,
    options: &RunOptions,
    on_epoch: impl FnMut(&EpochRecord) + Send + 'static,
) -> Result<RunOutput> {
    cfg.validate()?;
    let cfg = &resolve_inputs(cfg, data)?;
    let cfg_json = serde_json::to_value(cfg).map_err(|e| Error::Config {
        key: "config".into(),
        reason: e.to_string(),
    })?;
    let tasks = cfg.task_set();
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, cfg.train.seed, DType::F32, device);
    let net = cfg.sharing.build(&cfg.model, &tasks, vb.clone())?;
    let weighting = cfg.weighting.build(&tasks, vb)?;
    // The variables of the epoch with the best validation main-task metric (the epoch the
    // report's metrics come from) are kept by the trainer and, with checkpoints, written to
    // DIR/best so that a resumed run selects the same ones.
    let mut trainer = Trainer::new(cfg.train.clone())
        .weighting_boxed(weighting)
        .stopper(cfg.stopper)
        .device(device.clone())
        .keep_best(true)
        .on_epoch(on_epoch);
    if let Some(t) = &data.transform {
        trainer = trainer.transform(t.clone());
    }
    let rank = options.collective.as_ref().map_or(0, |c| c.rank());
    if let Some(c) = &options.collective {
        trainer = trainer.data_parallel(c.clone());
    }
    if let Some(hook) = options.on_step.clone() {
        trainer = trainer.on_step(move |info| hook.call(info));
    }
    if let Some(c) = &options.checkpoints {
        let mut c = c.clone();
        if c.model_config.is_null() {
            c.model_config = cfg_json.clone();
        }
        trainer = trainer.checkpoints(c).resume(options.resume);
    }
    let report = trainer.fit(net.as_ref(), &tasks, &vars, &data.train, &data.val)?;
    let mut timing = trainer.timing();
    if let Some(best) = trainer.best() {
        best.restore(&vars)?;
    }
    let mut report = report;
    let stopped: Vec<String> = report
        .history
        .stops
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    if !stopped.is_empty() {
        let refit = trainer.refit(
            net.as_ref(),
            &tasks,
            &vars,
            data.train.as_ref(),
            data.val.as_ref(),
            &stopped,
            &cfg.refit,
        )?;
        if let Some(eval) = refit {
            for name in &stopped {
                if let Some(m) = eval.metrics.get(name) {
                    report.best.insert(name.as_str(), m.clone());
                }
            }
        }
        timing = trainer.timing();
    }
    let t_test = std::time::Instant::now();
    // Test and the extra evaluation sets are scored with the configured test-time options
    // (mirroring); validation above selected the epoch without them.
    let net: Arc<dyn MultiTaskNet> = Arc::from(net);
    let scorer = crate::test_time::scorer(cfg, vec![net.clone()], cfg.test_time.mirror)?;
    let test = match &data.test {
        Some(test) if rank == 0 => {
            let eval = evaluate(
                scorer.as_ref(),
                &tasks,
                test.as_ref(),
                &Batcher::eval(cfg.train.eval_batch_size),
                device,
            )?;
            Some(eval.metrics)
        }
        _ => None,
    };
    let mut evals = Vec::with_capacity(data.evals.len());
    for set in data.evals.iter().filter(|_| rank == 0) {
        let mut batcher = Batcher::eval(cfg.train.eval_batch_size);
        if let Some(t) = &set.transform {
            batcher = batcher.with_transform(t.clone());
        }
        let eval = evaluate(scorer.as_ref(), &tasks, set.data.as_ref(), &batcher, device)?;
        evals.push((set.name.clone(), eval.metrics));
        if cfg.test_time.mirror && set.compare_plain {
            // what the mirroring adds (on the proxy of the test split)
            let plain = evaluate(net.as_ref(), &tasks, set.data.as_ref(), &batcher, device)?;
            evals.push((format!("{}_no_mirror", set.name), plain.metrics));
        }
    }
    let gates = match rank {
        0 => {
            // the validation samples as the trainer scored them (evaluation-mode transform)
            let mut batcher = Batcher::eval(cfg.train.eval_batch_size);
            if let Some(t) = &data.transform {
                batcher = batcher.with_transform(t.clone());
            }
            tandem_train::gate_means(net.as_ref(), data.val.as_ref(), &batcher, device)?
        }
        _ => None,
    };
    timing.eval_seconds += t_test.elapsed().as_secs_f64();
    Ok(RunOutput {
        report,
        test,
        evals,
        parameters: count_parameters(&vars),
        vars,
        timing,
        gates,
    })
}

/// The number of trainable values of a model's variables: every variable but the buffers
/// (batch-norm running statistics) and the weighting's own (`weighting.*`).
pub fn count_parameters(vars: &VarMap) -> usize {
    tandem_tensor::parameter_vars(vars)
        .iter()
        .filter(|(n, _)| !n.starts_with("weighting."))
        .map(|(_, v)| v.elem_count())
        .sum()
}

/// `cfg` with what the data decides filled in: an MLP trunk's `in_features = 0` becomes the
/// width of the training samples' input (a table's number of features).
pub fn resolve_inputs(cfg: &RunConfig, data: &RunData) -> Result<RunConfig> {
    let mut cfg = cfg.clone();
    // dropout and DropConnect masks differ between seeds, as everything random in a run does
    cfg.model.set_mask_seed(cfg.train.seed);
    if let Some(mlp) = cfg.model.as_mlp_mut() {
        if mlp.in_features == 0 {
            if data.train.is_empty() {
                return Err(Error::config("data", "the training split has no sample"));
            }
            mlp.in_features = data.train.get(0)?.image.pixels.len();
        }
    }
    Ok(cfg)
}

/// Sets the process up for fast CPU training: candle's element-wise ops on the calling thread
/// (`CANDLE_NUM_THREADS=1` unless set) and glibc's malloc tuned for large short-lived tensors
/// (see [`tandem_tensor::runtime`]). Call it at the start of `main`, before any tensor work.
pub fn init_cpu_threads() {
    tandem_tensor::runtime::tune_cpu_runtime();
}
