//! The training loop.
//!
//! One epoch: for every batch of the seeded [`Batcher`] order, `NetOutput = net(x)`, per-task
//! losses `L_t` for the active tasks that have at least one labelled sample in the batch,
//! `Update = weighting.backward(L, ctx)`, an optimizer step on the trainable variables; then
//! evaluation on the validation split, one [`EpochRecord`], and each auxiliary task's
//! [`TaskStopper`] verdict. A stopped task leaves the objective and its own variables
//! (`ParamGroups::tasks`) leave the optimizer. The report's metrics are those of the epoch with
//! the best validation main-task metric.
use crate::checkpoint::{self, CheckpointConfig, TrainerState};
use crate::{
    evaluate, EpochRecord, Equal, History, LrSchedule, Observation, Optimizer, OptimizerConfig,
    Report, Result, StepContext, StopperConfig, TaskStopper, TrainError, Weighting,
};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tandem_data::{Batcher, Dataset, Transform};
use tandem_heads::TaskSet;
use tandem_share::{MultiTaskNet, ParamGroups};
use tandem_tensor::{hash_seed, is_finite, select_vars, sorted_vars, TaskMap};

/// What the trainer does when a loss, the soft-sharing penalty or a gradient is NaN or infinite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Stop with [`TrainError::NonFinite`] naming the task, the epoch and the step (default).
    #[default]
    Error,
    /// Skip the batch (no optimizer step) and count it in
    /// [`EpochRecord::skipped_batches`](crate::EpochRecord::skipped_batches).
    SkipBatch,
}

impl NonFinitePolicy {
    fn is_error(&self) -> bool {
        *self == Self::Error
    }
}

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set. Default 30.
    pub epochs: usize,
    /// Training batch size. Default 64.
    pub batch_size: usize,
    /// Evaluation batch size. Default 256.
    pub eval_batch_size: usize,
    /// Seed of every random choice of the run (shuffling, augmentation, randomised weightings).
    pub seed: u64,
    /// The optimizer and its hyper-parameters. Default AdamW with [`crate::AdamWConfig::default`].
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// What a non-finite loss or gradient does: `error` (default) or `skip_batch`.
    #[serde(skip_serializing_if = "NonFinitePolicy::is_error")]
    pub on_non_finite: NonFinitePolicy,
    /// Clip the global L2 norm of the gradients to this value (PyTorch's `clip_grad_norm_`);
    /// unset: no clipping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_clip_norm: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 64,
            eval_batch_size: 256,
            seed: 0,
            optimizer: OptimizerConfig::default(),
            schedule: LrSchedule::Constant,
            on_non_finite: NonFinitePolicy::Error,
            grad_clip_norm: None,
        }
    }
}

impl TrainConfig {
    /// Checks every value, naming the offending key.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(TrainError::config("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(TrainError::config("batch_size", "must be at least 1"));
        }
        if self.eval_batch_size == 0 {
            return Err(TrainError::config("eval_batch_size", "must be at least 1"));
        }
        if let Some(c) = self.grad_clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(TrainError::config(
                    "grad_clip_norm",
                    format!("{c} is not a positive number (leave it unset for no clipping)"),
                ));
            }
        }
        self.optimizer.validate()?;
        self.schedule.validate()?;
        Ok(())
    }
}

/// Callback run after every epoch.
pub type EpochCallback = Box<dyn FnMut(&EpochRecord) + Send>;

/// Where a training step stands, passed to [`Trainer::on_step`] after every optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The batch of the epoch just trained on (0-based).
    pub batch: usize,
    /// Optimizer steps taken, this one included.
    pub step: u64,
    /// The learning rate of this step.
    pub lr: f64,
}

/// Where the wall-clock time of [`Trainer::fit`] went, in seconds (see [`Trainer::timing`]).
/// Never part of a [`Report`]: timings differ between runs, reports must not.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FitTiming {
    /// Assembling training batches: reading (or generating) samples, augmenting and stacking
    /// them (wall-clock).
    pub batch_seconds: f64,
    /// Of which augmentation: CPU time in the transform ([`Trainer::transform`]) of training
    /// samples, summed over the threads that assemble a batch in parallel (so it may exceed
    /// `batch_seconds` on several cores).
    pub augment_seconds: f64,
    /// Training steps: forward, losses, weighting and backward, optimizer update.
    pub step_seconds: f64,
    /// Evaluation on the validation split after every epoch (transforms included).
    pub eval_seconds: f64,
    /// Writing checkpoints.
    pub checkpoint_seconds: f64,
}

/// A transform that adds the time it spends in training mode to a counter.
struct TimedTransform {
    inner: Arc<dyn Transform>,
    nanos: Arc<AtomicU64>,
}

impl Transform for TimedTransform {
    fn apply(
        &self,
        sample: tandem_data::Sample,
        rng: &mut rand_chacha::ChaCha8Rng,
        train: bool,
    ) -> tandem_data::Result<tandem_data::Sample> {
        if !train {
            return self.inner.apply(sample, rng, train);
        }
        let t = Instant::now();
        let out = self.inner.apply(sample, rng, train);
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(ns, Ordering::Relaxed);
        out
    }
}

/// Callback run after every optimizer step.
pub type StepCallback = Box<dyn FnMut(&StepInfo) + Send>;

/// Where a run resumes from.
enum Resume {
    No,
    /// The newest valid checkpoint of the checkpoint folder, if there is one.
    Latest,
    /// A checkpoint folder, or a folder of them; none is an error.
    From(PathBuf),
}

/// Makes the stopper of one auxiliary task (given its name).
pub type StopperFactory = Box<dyn Fn(&str) -> Box<dyn TaskStopper> + Send>;

/// Where auxiliary tasks' stoppers come from.
enum Stoppers {
    Config(StopperConfig),
    Custom(StopperFactory),
}

impl Stoppers {
    fn make(&self, task: &str) -> Option<Box<dyn TaskStopper>> {
        match self {
            Self::Config(c) => c.build(),
            Self::Custom(f) => Some(f(task)),
        }
    }
}

/// Trains a [`MultiTaskNet`].
pub struct Trainer {
    config: TrainConfig,
    weighting: Box<dyn Weighting>,
    transform: Option<Arc<dyn Transform>>,
    device: Device,
    on_epoch: Option<EpochCallback>,
    on_step: Option<StepCallback>,
    stopper: Stoppers,
    checkpoints: Option<CheckpointConfig>,
    resume: Resume,
    timing: FitTiming,
    augment_nanos: Arc<AtomicU64>,
}

impl Trainer {
    /// A trainer with equal weighting on the CPU.
    pub fn new(config: TrainConfig) -> Self {
        Self {
            config,
            weighting: Box::new(Equal::new()),
            transform: None,
            device: Device::Cpu,
            on_epoch: None,
            on_step: None,
            stopper: Stoppers::Config(StopperConfig::Off),
            checkpoints: None,
            resume: Resume::No,
            timing: FitTiming::default(),
            augment_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Uses `weighting` to combine task losses.
    pub fn weighting(mut self, weighting: impl Weighting + 'static) -> Self {
        self.weighting = Box::new(weighting);
        self
    }

    /// Uses a boxed weighting.
    pub fn weighting_boxed(mut self, weighting: Box<dyn Weighting>) -> Self {
        self.weighting = weighting;
        self
    }

    /// Gives every auxiliary task a stopper made from `config` (`Off`: none, the default).
    pub fn stopper(mut self, config: StopperConfig) -> Self {
        self.stopper = Stoppers::Config(config);
        self
    }

    /// Gives every auxiliary task the stopper `make(task_name)` returns.
    pub fn stopper_with(
        mut self,
        make: impl Fn(&str) -> Box<dyn TaskStopper> + Send + 'static,
    ) -> Self {
        self.stopper = Stoppers::Custom(Box::new(make));
        self
    }

    /// Applies `transform` to every sample (training mode on the training set, evaluation mode
    /// on the validation set).
    pub fn transform(mut self, transform: Arc<dyn Transform>) -> Self {
        self.transform = Some(transform);
        self
    }

    /// Runs on `device` (batches are built there).
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Calls `f` after every epoch (progress output).
    pub fn on_epoch(mut self, f: impl FnMut(&EpochRecord) + Send + 'static) -> Self {
        self.on_epoch = Some(Box::new(f));
        self
    }

    /// Calls `f` after every optimizer step (progress output).
    pub fn on_step(mut self, f: impl FnMut(&StepInfo) + Send + 'static) -> Self {
        self.on_step = Some(Box::new(f));
        self
    }

    /// Writes checkpoints as configured (see [`crate::checkpoint`] for the folder layout).
    pub fn checkpoints(mut self, config: CheckpointConfig) -> Self {
        self.checkpoints = Some(config);
        self
    }

    /// With `true`, [`Trainer::fit`] continues from the newest valid checkpoint in the
    /// checkpoint folder ([`Trainer::checkpoints`]) when there is one, and starts afresh when
    /// there is none. An invalid newest checkpoint is an error unless
    /// [`CheckpointConfig::fallback_to_previous`] is set.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = if resume { Resume::Latest } else { Resume::No };
        self
    }

    /// [`Trainer::fit`] continues from the checkpoint folder `path` (a `step-*` folder) or from
    /// the newest valid checkpoint of the folder of checkpoints `path`; finding none is an error.
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume = Resume::From(path.into());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Where the time of the last [`Trainer::fit`] went.
    pub fn timing(&self) -> FitTiming {
        self.timing
    }

    fn batchers(&self) -> (Batcher, Batcher) {
        let mut tb = Batcher::train(self.config.batch_size, self.config.seed);
        let mut eb = Batcher::eval(self.config.eval_batch_size);
        if let Some(t) = &self.transform {
            tb = tb.with_transform(Arc::new(TimedTransform {
                inner: t.clone(),
                nanos: self.augment_nanos.clone(),
            }));
            eb = eb.with_transform(t.clone());
        }
        (tb, eb)
    }

    /// Trains `net` (whose variables live in `vars`) on `train`, evaluating on `val` after
    /// every epoch.
    ///
    /// With [`Trainer::checkpoints`] it writes checkpoints as it goes; with [`Trainer::resume`]
    /// or [`Trainer::resume_from`] it first restores the newest valid checkpoint and continues
    /// from its exact position (epoch, batch, step), so the report equals that of an
    /// uninterrupted run bit for bit. A run that does not resume starts by deleting the
    /// checkpoints already in the checkpoint folder.
    pub fn fit(
        &mut self,
        net: &dyn MultiTaskNet,
        tasks: &TaskSet,
        vars: &VarMap,
        train: &dyn Dataset,
        val: &dyn Dataset,
    ) -> Result<Report> {
        self.config.validate()?;
        if let Stoppers::Config(c) = &self.stopper {
            c.validate()?;
        }
        if let Some(c) = &self.checkpoints {
            c.validate()?;
        }
        let main = tasks
            .main()
            .ok_or_else(|| TrainError::config("tasks", "no main (non-auxiliary) task"))?
            .clone();
        if train.is_empty() || val.is_empty() {
            return Err(TrainError::config(
                "data",
                format!(
                    "empty split: {} training and {} validation samples",
                    train.len(),
                    val.len()
                ),
            ));
        }
        self.timing = FitTiming::default();
        self.augment_nanos.store(0, Ordering::Relaxed);
        let (train_batcher, eval_batcher) = self.batchers();
        let groups = net.param_groups();
        let shared = select_vars(vars, &groups.shared);
        let last_shared = select_vars(vars, &groups.last_shared);
        let owners = owners(vars, &groups);
        let batches_per_epoch = train_batcher.num_batches(train.len());
        let steps_per_epoch = batches_per_epoch as u64;
        let total_steps = steps_per_epoch * self.config.epochs as u64;
        let base_lr = self.config.optimizer.lr();
        let mut opt = self.config.optimizer.build();
        let mut stoppers = TaskMap::<Box<dyn TaskStopper>>::new();
        for task in tasks.iter().filter(|t| t.is_auxiliary()) {
            if let Some(s) = self.stopper.make(task.name()) {
                stoppers.insert(task.name(), s);
            }
        }
        let mut run = RunState::fresh(tasks, base_lr);
        let fit = FitShape {
            train_len: train.len(),
            batches_per_epoch,
        };
        match self.resume_source() {
            Some((source, strict)) => {
                if let Some(state) =
                    self.restore(&source, strict, vars, &mut opt, &mut stoppers, tasks, fit)?
                {
                    run = RunState::from_checkpoint(state);
                } else {
                    self.clear_checkpoints()?;
                }
            }
            None => self.clear_checkpoints()?,
        }
        let mut trainable = trainable_vars(vars, &groups, &run.history);

        while run.epoch < self.config.epochs {
            let epoch = run.epoch;
            while run.batch < batches_per_epoch {
                let k = run.batch;
                let t_batch = Instant::now();
                let batch = train_batcher.batch(train, epoch, k, &self.device)?;
                self.timing.batch_seconds += t_batch.elapsed().as_secs_f64();
                let t_step = Instant::now();
                run.batch += 1;
                let step = run.step;
                let out = net.forward_t(&batch.input, true)?;
                let mut losses = TaskMap::<Tensor>::new();
                let mut values = Vec::new();
                let mut bad = None;
                for name in &run.active {
                    let (Some(task), Some(pred), Some(target)) = (
                        tasks.get(name),
                        out.predictions.get(name),
                        batch.targets.get(name),
                    ) else {
                        continue;
                    };
                    // Partial labels: a task with no labelled sample in this batch contributes
                    // nothing (no loss, no weight, no gradient).
                    if target.labelled()? <= 0.0 {
                        continue;
                    }
                    let loss = task.loss(pred, target)?;
                    let value = f64::from(loss.to_scalar::<f32>()?);
                    if !value.is_finite() {
                        bad = Some(non_finite("loss", name, epoch, step));
                        break;
                    }
                    values.push((name.clone(), value));
                    losses.insert(name.clone(), loss);
                }
                if bad.is_none() {
                    if let Some(p) = &out.penalty {
                        if !is_finite(p)? {
                            let all = run.active.join(", ");
                            bad = Some(non_finite("penalty", &all, epoch, step));
                        }
                    }
                }
                if let Some(e) = bad {
                    self.on_non_finite(e, &mut run.skipped)?;
                    continue;
                }
                if losses.is_empty() && out.penalty.is_none() {
                    continue;
                }
                let mut rng =
                    ChaCha8Rng::seed_from_u64(hash_seed(self.config.seed ^ step, "weighting"));
                let mut ctx = StepContext {
                    trainable: &trainable,
                    shared: &shared,
                    last_shared: &last_shared,
                    penalty: out.penalty.as_ref(),
                    rng: &mut rng,
                    epoch,
                    step,
                };
                let mut update = self.weighting.backward(&losses, &mut ctx)?;
                match grad_norm(&trainable, &update.grads)? {
                    Err(var) => {
                        let task = match owners.get(&var) {
                            Some(t) => t.clone(),
                            None => format!(
                                "shared by {}",
                                losses.keys().collect::<Vec<_>>().join(", ")
                            ),
                        };
                        let e = non_finite(&format!("gradient of {var}"), &task, epoch, step);
                        self.on_non_finite(e, &mut run.skipped)?;
                        continue;
                    }
                    Ok(norm) => {
                        if let Some(max) = self.config.grad_clip_norm {
                            clip(&trainable, &mut update.grads, norm, max)?;
                        }
                    }
                }
                for (name, value) in values {
                    add(&mut run.loss_sum, &name, (value, 1.0));
                }
                for (name, w) in update.weights.iter() {
                    add(&mut run.weight_sum, name, (*w, 1.0));
                }
                run.lr = self
                    .config
                    .schedule
                    .rate(base_lr, step, total_steps, steps_per_epoch);
                opt.step(&trainable, &update.grads, run.lr)?;
                self.timing.step_seconds += t_step.elapsed().as_secs_f64();
                run.step += 1;
                let due = self
                    .checkpoints
                    .as_ref()
                    .and_then(|c| c.every_steps)
                    .is_some_and(|n| run.step.is_multiple_of(n));
                // The epoch-end checkpoint follows the last batch immediately.
                if due && run.batch < batches_per_epoch {
                    let t = Instant::now();
                    self.save(vars, &run, &opt, &stoppers, fit)?;
                    self.timing.checkpoint_seconds += t.elapsed().as_secs_f64();
                }
                if let Some(f) = self.on_step.as_mut() {
                    f(&StepInfo {
                        epoch,
                        batch: k,
                        step: run.step,
                        lr: run.lr,
                    });
                }
            }
            let train_loss = run.loss_sum.map(|_, (s, n)| s / n);
            let weights = run.weight_sum.map(|_, (s, n)| s / n);
            let t_eval = Instant::now();
            let eval = evaluate(net, tasks, val, &eval_batcher, &self.device)?;
            self.timing.eval_seconds += t_eval.elapsed().as_secs_f64();

            // Task-wise early stopping of auxiliary tasks.
            let mut stopped = Vec::new();
            for (name, stopper) in stoppers.iter_mut() {
                let (Some(tr), Some(vl), Some(task)) =
                    (train_loss.get(name), eval.losses.get(name), tasks.get(name))
                else {
                    continue;
                };
                if !run.active.iter().any(|a| a == name) {
                    continue;
                }
                let obs = Observation {
                    epoch,
                    train_loss: *tr,
                    val_loss: *vl,
                    val_metric: eval
                        .metrics
                        .get(name)
                        .and_then(|m| m.get(task.primary_metric()))
                        .copied(),
                    weight: weights.get(name).copied().unwrap_or(1.0),
                };
                if stopper.update(&obs) {
                    stopped.push(name.to_string());
                }
            }

            let record = EpochRecord {
                epoch,
                lr: run.lr,
                train_loss: train_loss.clone(),
                val_loss: eval.losses,
                val_metrics: eval.metrics,
                weights,
                active: run.active.clone(),
                skipped_batches: run.skipped,
            };
            if let Some(f) = self.on_epoch.as_mut() {
                f(&record);
            }
            run.history.epochs.push(record);

            for name in &stopped {
                run.active.retain(|a| a != name);
                run.history.stops.insert(name.clone(), epoch);
                let frozen = task_vars(vars, &groups, name);
                trainable.retain(|(n, _)| !frozen.contains(n));
                opt.forget(&frozen);
            }
            let still_active: TaskMap<f64> = train_loss
                .iter()
                .filter(|(n, _)| run.active.iter().any(|a| a == n))
                .map(|(n, v)| (n, *v))
                .collect();
            self.weighting.end_epoch(epoch, &still_active)?;
            run.next_epoch(base_lr);
            if self.checkpoints.is_some() {
                let t = Instant::now();
                self.save(vars, &run, &opt, &stoppers, fit)?;
                self.timing.checkpoint_seconds += t.elapsed().as_secs_f64();
            }
        }
        self.timing.augment_seconds = self.augment_nanos.load(Ordering::Relaxed) as f64 * 1e-9;

        let metric = main.primary_metric();
        let history = run.history;
        let best_epoch = history.best_epoch(main.name(), metric).ok_or_else(|| {
            TrainError::config("data", "validation split gave no main-task metric")
        })?;
        let best = history.epochs[best_epoch].val_metrics.clone();
        Ok(Report {
            main_task: main.name().to_string(),
            main_metric: metric.to_string(),
            best_epoch,
            best,
            history,
        })
    }

    /// Where to resume from, and whether a missing checkpoint is an error.
    fn resume_source(&self) -> Option<(PathBuf, bool)> {
        match &self.resume {
            Resume::No => None,
            Resume::Latest => self.checkpoints.as_ref().map(|c| (c.dir.clone(), false)),
            Resume::From(p) => Some((p.clone(), true)),
        }
    }

    /// Deletes the checkpoints in the checkpoint folder (a fresh run).
    fn clear_checkpoints(&self) -> Result<()> {
        if let Some(c) = &self.checkpoints {
            for p in checkpoint::list_checkpoints(&c.dir) {
                std::fs::remove_dir_all(&p).map_err(|e| TrainError::Checkpoint {
                    path: p.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// Restores the newest valid checkpoint of `source` (a checkpoint folder, or a folder of
    /// them) into `vars`, the optimizer, the weighting and the stoppers.
    #[allow(clippy::too_many_arguments)]
    fn restore(
        &mut self,
        source: &Path,
        strict: bool,
        vars: &VarMap,
        opt: &mut Optimizer,
        stoppers: &mut TaskMap<Box<dyn TaskStopper>>,
        tasks: &TaskSet,
        fit: FitShape,
    ) -> Result<Option<TrainerState>> {
        let single = source.join(checkpoint::TRAINER_FILE).exists()
            || source.join(checkpoint::SUMS_FILE).exists();
        let mut candidates = if single {
            vec![source.to_path_buf()]
        } else {
            checkpoint::list_checkpoints(source)
        };
        candidates.reverse();
        if candidates.is_empty() {
            if strict {
                return Err(TrainError::Checkpoint {
                    path: source.to_path_buf(),
                    reason: "no checkpoint (step-* folder) to resume from".into(),
                });
            }
            return Ok(None);
        }
        let fallback = self
            .checkpoints
            .as_ref()
            .is_some_and(|c| c.fallback_to_previous);
        let mut failures = Vec::new();
        for path in &candidates {
            match self.restore_one(path, vars, opt, stoppers, tasks, fit) {
                Ok(state) => {
                    self.drop_newer(state.position(), &failures)?;
                    return Ok(Some(state));
                }
                Err(e) if fallback => failures.push((path.clone(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Err(TrainError::Checkpoint {
            path: source.to_path_buf(),
            reason: format!(
                "no valid checkpoint: {}",
                failures
                    .iter()
                    .map(|(p, e)| format!("{}: {e}", p.display()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    }

    fn restore_one(
        &mut self,
        path: &Path,
        vars: &VarMap,
        opt: &mut Optimizer,
        stoppers: &mut TaskMap<Box<dyn TaskStopper>>,
        tasks: &TaskSet,
        fit: FitShape,
    ) -> Result<TrainerState> {
        let state = checkpoint::read_trainer_state(path)?;
        check_fits(path, &state, &self.config, tasks, stoppers, fit)?;
        checkpoint::load_model(path, vars)?;
        opt.load_state(&state.optimizer, &sorted_vars(vars))?;
        self.weighting.load_state(&state.weighting)?;
        for (name, s) in state.stoppers.iter() {
            if let Some(stopper) = stoppers.get_mut(name) {
                stopper.load_state(s)?;
            }
        }
        Ok(state)
    }

    /// After resuming at `position`: checkpoints that failed to load are renamed
    /// `invalid-step-…` (kept for inspection), newer ones are deleted (the run re-creates them).
    fn drop_newer(&self, position: u64, failed: &[(PathBuf, String)]) -> Result<()> {
        let Some(c) = &self.checkpoints else {
            return Ok(());
        };
        for p in checkpoint::list_checkpoints(&c.dir) {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let pos = name
                .strip_prefix("step-")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            let io = |e: std::io::Error| TrainError::Checkpoint {
                path: p.clone(),
                reason: e.to_string(),
            };
            if failed.iter().any(|(f, _)| f == &p) {
                std::fs::rename(&p, c.dir.join(format!("invalid-{name}"))).map_err(io)?;
            } else if pos > position {
                std::fs::remove_dir_all(&p).map_err(io)?;
            }
        }
        Ok(())
    }

    fn save(
        &self,
        vars: &VarMap,
        run: &RunState,
        opt: &Optimizer,
        stoppers: &TaskMap<Box<dyn TaskStopper>>,
        fit: FitShape,
    ) -> Result<()> {
        let Some(c) = &self.checkpoints else {
            return Ok(());
        };
        let state = TrainerState {
            format: TrainerState::FORMAT,
            config: self.config.clone(),
            train_len: fit.train_len,
            batches_per_epoch: fit.batches_per_epoch,
            epoch: run.epoch,
            batch: run.batch,
            step: run.step,
            finished: run.epoch >= self.config.epochs,
            lr: run.lr,
            loss_sum: run.loss_sum.clone(),
            weight_sum: run.weight_sum.clone(),
            skipped: run.skipped,
            active: run.active.clone(),
            optimizer: opt.state()?,
            weighting: self.weighting.state(),
            stoppers: stoppers.map(|_, s| s.state()),
            history: run.history.clone(),
        };
        checkpoint::save(c, vars, &state)?;
        Ok(())
    }

    fn on_non_finite(&self, e: TrainError, skipped: &mut u64) -> Result<()> {
        match self.config.on_non_finite {
            NonFinitePolicy::Error => Err(e),
            NonFinitePolicy::SkipBatch => {
                *skipped += 1;
                Ok(())
            }
        }
    }
}

/// The shape of a run that a checkpoint must match.
#[derive(Debug, Clone, Copy)]
struct FitShape {
    train_len: usize,
    batches_per_epoch: usize,
}

/// The loop's position and everything of the epoch in progress.
struct RunState {
    epoch: usize,
    batch: usize,
    step: u64,
    lr: f64,
    loss_sum: TaskMap<(f64, f64)>,
    weight_sum: TaskMap<(f64, f64)>,
    skipped: u64,
    active: Vec<String>,
    history: History,
}

impl RunState {
    fn fresh(tasks: &TaskSet, lr: f64) -> Self {
        Self {
            epoch: 0,
            batch: 0,
            step: 0,
            lr,
            loss_sum: TaskMap::new(),
            weight_sum: TaskMap::new(),
            skipped: 0,
            active: tasks.names().into_iter().map(String::from).collect(),
            history: History::default(),
        }
    }

    fn from_checkpoint(s: TrainerState) -> Self {
        Self {
            epoch: s.epoch,
            batch: s.batch,
            step: s.step,
            lr: s.lr,
            loss_sum: s.loss_sum,
            weight_sum: s.weight_sum,
            skipped: s.skipped,
            active: s.active,
            history: s.history,
        }
    }

    fn next_epoch(&mut self, lr: f64) {
        self.epoch += 1;
        self.batch = 0;
        self.lr = lr;
        self.loss_sum = TaskMap::new();
        self.weight_sum = TaskMap::new();
        self.skipped = 0;
    }
}

/// Checks that a checkpoint's state belongs to this run.
fn check_fits(
    path: &Path,
    state: &TrainerState,
    config: &TrainConfig,
    tasks: &TaskSet,
    stoppers: &TaskMap<Box<dyn TaskStopper>>,
    fit: FitShape,
) -> Result<()> {
    let mut wrong = Vec::new();
    if &state.config != config {
        let (a, b) = (
            serde_json::to_value(&state.config).unwrap_or_default(),
            serde_json::to_value(config).unwrap_or_default(),
        );
        let keys: Vec<String> = match (a.as_object(), b.as_object()) {
            (Some(a), Some(b)) => a
                .keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    format!(
                        "train.{k} (checkpoint {}, now {})",
                        show(a.get(k)),
                        show(b.get(k))
                    )
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            _ => vec!["train".into()],
        };
        wrong.push(format!(
            "the run's configuration differs: {}",
            keys.join(", ")
        ));
    }
    if state.train_len != fit.train_len || state.batches_per_epoch != fit.batches_per_epoch {
        wrong.push(format!(
            "written for {} training samples in {} batches per epoch, this run has {} in {}",
            state.train_len, state.batches_per_epoch, fit.train_len, fit.batches_per_epoch
        ));
    }
    if state.epoch > config.epochs || (state.batch != 0 && state.batch >= fit.batches_per_epoch) {
        wrong.push(format!(
            "position epoch {} batch {} is outside the run",
            state.epoch, state.batch
        ));
    }
    for a in &state.active {
        if tasks.get(a).is_none() {
            wrong.push(format!("active task {a:?} is not one of this run's tasks"));
        }
    }
    let saved: Vec<&str> = state.stoppers.keys().collect();
    let ours: Vec<&str> = stoppers.keys().collect();
    if saved != ours {
        wrong.push(format!(
            "stoppers for tasks {saved:?}, this run has stoppers for {ours:?}"
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason: wrong.join("; "),
        })
    }
}

fn show(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "unset".into(), |v| v.to_string())
}

fn non_finite(what: &str, task: &str, epoch: usize, step: u64) -> TrainError {
    TrainError::NonFinite {
        what: what.into(),
        task: task.into(),
        epoch,
        step,
    }
}

/// Which task owns each task-specific variable.
fn owners(vars: &VarMap, groups: &ParamGroups) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (task, prefixes) in groups.tasks.iter() {
        for (n, _) in select_vars(vars, prefixes) {
            out.insert(n, task.to_string());
        }
    }
    out
}

/// The names of the variables that only `task` owns.
fn task_vars(vars: &VarMap, groups: &ParamGroups, task: &str) -> Vec<String> {
    groups
        .tasks
        .get(task)
        .map(|prefixes| {
            select_vars(vars, prefixes)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        })
        .unwrap_or_default()
}

/// Every variable except those of stopped tasks.
fn trainable_vars(vars: &VarMap, groups: &ParamGroups, history: &History) -> Vec<(String, Var)> {
    let mut trainable = sorted_vars(vars);
    for (name, _) in history.stops.iter() {
        let frozen = task_vars(vars, groups, name);
        trainable.retain(|(n, _)| !frozen.contains(n));
    }
    trainable
}

/// The global L2 norm of the gradients of `vars`, or the name of the first variable whose
/// gradient holds a NaN or an infinity.
fn grad_norm(
    vars: &[(String, Var)],
    grads: &GradStore,
) -> Result<std::result::Result<f64, String>> {
    let mut total = 0.0f64;
    for (name, var) in vars {
        let Some(g) = grads.get(var.as_tensor()) else {
            continue;
        };
        let sq = f64::from(
            g.sqr()?
                .sum_all()?
                .to_dtype(DType::F32)?
                .to_scalar::<f32>()?,
        );
        if !sq.is_finite() {
            // Squares of large finite values can overflow f32: decide on the values themselves.
            if !is_finite(g)? {
                return Ok(Err(name.clone()));
            }
            let g64 = g.to_dtype(DType::F64)?;
            total += g64.sqr()?.sum_all()?.to_scalar::<f64>()?;
        } else {
            total += sq;
        }
    }
    Ok(Ok(total.sqrt()))
}

/// Scales every gradient by `max / (norm + 1e-6)` when `norm > max` (PyTorch's
/// `clip_grad_norm_`).
fn clip(vars: &[(String, Var)], grads: &mut GradStore, norm: f64, max: f64) -> Result<()> {
    let coef = max / (norm + 1e-6);
    if coef >= 1.0 {
        return Ok(());
    }
    for (_, var) in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            let scaled = (g * coef)?;
            grads.insert(var.as_tensor(), scaled);
        }
    }
    Ok(())
}

fn add(map: &mut TaskMap<(f64, f64)>, name: &str, v: (f64, f64)) {
    match map.get_mut(name) {
        Some(s) => {
            s.0 += v.0;
            s.1 += v.1;
        }
        None => {
            map.insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SgdConfig;

    #[test]
    fn config_round_trips_and_names_bad_keys() -> std::result::Result<(), serde_json::Error> {
        let cfg = TrainConfig {
            optimizer: OptimizerConfig::Sgd(SgdConfig {
                nesterov: true,
                ..Default::default()
            }),
            schedule: LrSchedule::Step {
                every_epochs: 10,
                gamma: 0.5,
                warmup_epochs: 1.0,
            },
            ..Default::default()
        };
        let back: TrainConfig = serde_json::from_str(&serde_json::to_string(&cfg)?)?;
        assert_eq!(back, cfg);
        let parsed: TrainConfig = serde_json::from_str(
            r#"{"epochs": 3, "optimizer": {"kind": "sgd", "lr": 0.1}, "schedule": {"kind": "warmup", "warmup_epochs": 2}}"#,
        )?;
        assert_eq!(parsed.optimizer.lr(), 0.1);
        assert!(serde_json::from_str::<TrainConfig>(r#"{"epoch": 3}"#).is_err());
        let bad = TrainConfig {
            optimizer: OptimizerConfig::Sgd(SgdConfig {
                momentum: 0.0,
                nesterov: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            matches!(bad.validate(), Err(TrainError::Config { field, .. }) if field == "optimizer.nesterov")
        );
        Ok(())
    }
}
