//! Running one configured training: data, model, weighting, trainer.
use crate::{Error, Result, RunConfig};
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::sync::Arc;
use tandem_data::{Dataset, Subset, SynthFaces, Transform};
use tandem_train::{CheckpointConfig, EpochRecord, Report, Trainer};

/// The data of one run.
#[derive(Clone)]
pub struct RunData {
    /// Training samples.
    pub train: Arc<dyn Dataset>,
    /// Validation samples.
    pub val: Arc<dyn Dataset>,
    /// A per-sample transform (cropping, augmentation), if any.
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
            transform: None,
        })
    }
}

/// What a run produced.
pub struct RunOutput {
    /// Metrics and history.
    pub report: Report,
    /// The trained variables (at the last epoch).
    pub vars: VarMap,
}

/// Checkpointing and resume of one run (see [`train_with`]).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Write checkpoints as configured (`None`: none). When its `model_config` is `null`, the
    /// run's [`RunConfig`] is stored in every checkpoint's `meta.json`.
    pub checkpoints: Option<CheckpointConfig>,
    /// Continue from the newest valid checkpoint of `checkpoints.dir` when there is one (a run
    /// without one starts afresh; a finished run returns its report without training).
    pub resume: bool,
}

/// Builds the model of `cfg`, trains it on `data` and returns the report.
pub fn train(
    cfg: &RunConfig,
    data: &RunData,
    device: &Device,
    on_epoch: impl FnMut(&EpochRecord) + Send + 'static,
) -> Result<RunOutput> {
    train_with(cfg, data, device, &RunOptions::default(), on_epoch)
}

/// [`train`] with checkpoints and resume.
///
/// ```no_run
/// # fn f(cfg: &tandem::RunConfig, data: &tandem::run::RunData) -> tandem::Result<()> {
/// use tandem::run::{train_with, RunOptions};
/// use tandem::train::CheckpointConfig;
/// let options = RunOptions {
///     checkpoints: Some(CheckpointConfig::new("out/variant-a/checkpoints").every_steps(500)),
///     resume: true,
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
    let tasks = cfg.task_set();
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, cfg.train.seed, DType::F32, device);
    let net = cfg.sharing.build(&cfg.model, &tasks, vb.clone())?;
    let weighting = cfg.weighting.build(&tasks, vb)?;
    let mut trainer = Trainer::new(cfg.train.clone())
        .weighting_boxed(weighting)
        .stopper(cfg.stopper)
        .device(device.clone())
        .on_epoch(on_epoch);
    if let Some(t) = &data.transform {
        trainer = trainer.transform(t.clone());
    }
    if let Some(c) = &options.checkpoints {
        let mut c = c.clone();
        if c.model_config.is_null() {
            c.model_config = serde_json::to_value(cfg).map_err(|e| Error::Config {
                key: "config".into(),
                reason: e.to_string(),
            })?;
        }
        trainer = trainer.checkpoints(c).resume(options.resume);
    }
    let report = trainer.fit(net.as_ref(), &tasks, &vars, &data.train, &data.val)?;
    Ok(RunOutput { report, vars })
}
