//! The training loop.
//!
//! One epoch: for every batch of the seeded [`Batcher`] order, `NetOutput = net(x)`, per-task
//! losses `L_t` for the active tasks that have at least one labelled sample in the batch,
//! `Update = weighting.backward(L, ctx)`, an optimizer step on the trainable variables; then
//! evaluation on the validation split, one [`EpochRecord`], and each auxiliary task's
//! [`TaskStopper`] verdict. A stopped task leaves the objective and its own variables
//! (`ParamGroups::tasks`) leave the optimizer. The report's metrics are those of the epoch with
//! the best validation main-task metric.
//!
//! The rooms: this module holds the [`Trainer`] and [`Trainer::fit`] (set-up, then
//! `train_epoch` / `end_epoch` until the last epoch); `epoch` the two halves of an epoch;
//! `step` one optimizer step with its numeric guards and clipping. The configuration lives in
//! [`crate::config`], the checkpoint policy in [`crate::checkpoint`], the variable groups in
//! `params` and the time accounting in [`crate::timing`].
use crate::checkpoint::{BestEpoch, Checkpointer, Parts, Resume, RunShape};
use crate::params::Params;
use crate::timing::AugmentClock;
use crate::{
    CheckpointConfig, EpochRecord, FitTiming, Report, Result, RunState, TrainConfig, TrainError,
    TrainerState,
};
use candle_core::Device;
use candle_nn::VarMap;
use std::path::PathBuf;
use std::sync::Arc;
use tandem_data::{Batcher, Dataset, Transform};
use tandem_heads::{Task, TaskSet};
use tandem_optim::{Equal, Optimizer, StopperConfig, TaskStopper, Weighting};
use tandem_share::MultiTaskNet;
use tandem_tensor::{Collective, Solo, TaskMap};

mod epoch;
mod parallel;
mod refit;
mod step;

pub use refit::RefitConfig;

/// Callback run after every epoch.
pub type EpochCallback = Box<dyn FnMut(&EpochRecord) + Send>;

/// Callback run after every optimizer step.
pub type StepCallback = Box<dyn FnMut(&StepInfo) + Send>;

/// Makes the stopper of one auxiliary task (given its name).
pub type StopperFactory = Box<dyn Fn(&str) -> Box<dyn TaskStopper> + Send>;

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
    checkpointer: Checkpointer,
    keep_best: bool,
    best: Option<BestEpoch>,
    timing: FitTiming,
    augment: AugmentClock,
    collective: Arc<dyn Collective>,
}

/// Everything one call of [`Trainer::fit`] works with.
struct Fit<'a> {
    net: &'a dyn MultiTaskNet,
    tasks: &'a TaskSet,
    vars: &'a VarMap,
    train: &'a dyn Dataset,
    val: &'a dyn Dataset,
    main: Arc<dyn Task>,
    train_batcher: Batcher,
    eval_batcher: Batcher,
    batches_per_epoch: usize,
    total_steps: u64,
    base_lr: f64,
    params: Params,
    opt: Box<dyn Optimizer>,
    stoppers: TaskMap<Box<dyn TaskStopper>>,
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
            checkpointer: Checkpointer::default(),
            keep_best: false,
            best: None,
            timing: FitTiming::default(),
            augment: AugmentClock::default(),
            collective: Arc::new(Solo),
        }
    }

    /// Trains data-parallel over the ranks of `collective`: each rank takes its contiguous
    /// shard of every global batch (`batch_size` is the global batch), the ranks exchange what
    /// each weighting needs (see [`tandem_optim::weighting`], "Data parallelism") and sum the
    /// gradients in rank order, so every rank applies the same update. Evaluation is sharded
    /// too ([`crate::evaluate_sharded`]). Only rank 0 writes checkpoints; every rank reads them
    /// to resume. Every rank must call [`Trainer::fit`] with the same configuration, network
    /// and data. Without it (the default) the run has one rank.
    pub fn data_parallel(mut self, collective: Arc<dyn Collective>) -> Self {
        self.collective = collective;
        self
    }

    /// This process's rank in a data-parallel run (0 without one).
    pub fn rank(&self) -> usize {
        self.collective.rank()
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
        self.checkpointer.config = Some(config);
        self
    }

    /// With `true`, [`Trainer::fit`] continues from the newest valid checkpoint in the
    /// checkpoint folder ([`Trainer::checkpoints`]) when there is one, and starts afresh when
    /// there is none. An invalid newest checkpoint is an error unless
    /// [`CheckpointConfig::fallback_to_previous`] is set.
    pub fn resume(mut self, resume: bool) -> Self {
        self.checkpointer.resume = if resume { Resume::Latest } else { Resume::No };
        self
    }

    /// [`Trainer::fit`] continues from the checkpoint folder `path` (a `step-*` folder) or from
    /// the newest valid checkpoint of the folder of checkpoints `path`; finding none is an error.
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpointer.resume = Resume::From(path.into());
        self
    }

    /// With `true`, [`Trainer::fit`] keeps a copy of the variables of the epoch with the best
    /// validation main-task metric (the epoch the report's metrics come from), available after
    /// the run as [`Trainer::best`]. With checkpoints it is also written to `DIR/best/`, so that
    /// a resumed run keeps the same copy. Default `false` (the variables are those of the last
    /// epoch).
    pub fn keep_best(mut self, keep: bool) -> Self {
        self.keep_best = keep;
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

    /// The best epoch's variables of the last [`Trainer::fit`], with [`Trainer::keep_best`];
    /// restore them with [`BestEpoch::restore`].
    pub fn best(&self) -> Option<&BestEpoch> {
        self.best.as_ref()
    }

    fn batchers(&self) -> (Batcher, Batcher) {
        let mut tb = Batcher::train(self.config.batch_size, self.config.seed);
        let mut eb = Batcher::eval(self.config.eval_batch_size);
        if let Some(t) = &self.transform {
            tb = tb.with_transform(self.augment.wrap(t.clone()));
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
        let main = self.check(tasks, train, val)?;
        if self.weighting.wants_representation() && !net.has_shared_representation() {
            return Err(TrainError::config(
                "weighting.on",
                format!(
                    "{}: \"representation\" needs a network with one shared representation \
                     (hard sharing); this network has none, use on = \"parameters\"",
                    self.weighting.name()
                ),
            ));
        }
        self.timing = FitTiming::default();
        self.augment.reset();
        self.checkpointer.reader_only = self.collective.rank() != 0;
        self.best = None;
        let (train_batcher, eval_batcher) = self.batchers();
        let batches_per_epoch = train_batcher.num_batches(train.len());
        let base_lr = self.config.optimizer.lr();
        let mut opt = self.config.optimizer.build();
        let mut stoppers = TaskMap::<Box<dyn TaskStopper>>::new();
        for task in tasks.iter().filter(|t| t.is_auxiliary()) {
            if let Some(s) = self.stopper.make(task.name()) {
                stoppers.insert(task.name(), s);
            }
        }
        let shape = RunShape {
            config: &self.config,
            tasks,
            train_len: train.len(),
            batches_per_epoch,
            ranks: self.collective.ranks(),
        };
        let parts = Parts {
            optimizer: opt.as_mut(),
            weighting: self.weighting.as_mut(),
            stoppers: &mut stoppers,
        };
        let mut run = match self.checkpointer.start(vars, shape, parts)? {
            Some(state) => {
                if self.keep_best {
                    self.best = self.checkpointer.load_best(vars)?;
                }
                state.run
            }
            None => RunState::fresh(tasks, base_lr),
        };
        self.check_same_position(&run)?;
        let mut fit = Fit {
            net,
            tasks,
            vars,
            train,
            val,
            main,
            train_batcher,
            eval_batcher,
            batches_per_epoch,
            total_steps: batches_per_epoch as u64 * self.config.epochs as u64,
            base_lr,
            params: Params::new(vars, net.param_groups(), &run.history),
            opt,
            stoppers,
        };
        while run.epoch < self.config.epochs {
            // architectures with phases (Learning to Branch) switch by epoch, resumes included
            net.begin_epoch(run.epoch, self.config.epochs);
            self.train_epoch(&mut fit, &mut run)?;
            self.end_epoch(&mut fit, &mut run)?;
        }
        self.timing.augment_seconds = self.augment.seconds();
        Report::from_history(fit.main.name(), fit.main.primary_metric(), run.history)
    }

    /// Checks the configuration and the data before a run; returns the main task.
    fn check(
        &self,
        tasks: &TaskSet,
        train: &dyn Dataset,
        val: &dyn Dataset,
    ) -> Result<Arc<dyn Task>> {
        self.config.validate()?;
        if let Stoppers::Config(c) = &self.stopper {
            c.validate()?;
        }
        self.checkpointer.validate()?;
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
        Ok(main)
    }

    /// Writes a checkpoint of the run at its current position (nothing without checkpoints).
    fn save(&mut self, fit: &Fit, run: &RunState) -> Result<()> {
        if !self.checkpointer.is_on() {
            return Ok(());
        }
        let t = std::time::Instant::now();
        let state = TrainerState {
            format: TrainerState::FORMAT,
            config: self.config.clone(),
            train_len: fit.train.len(),
            batches_per_epoch: fit.batches_per_epoch,
            ranks: self.collective.ranks(),
            finished: run.epoch >= self.config.epochs,
            run: run.clone(),
            optimizer: fit.opt.state()?,
            weighting: self.weighting.state()?,
            stoppers: fit.stoppers.try_map(|_, s| s.state())?,
        };
        self.checkpointer.save(fit.vars, &state)?;
        crate::timing::add_since(&mut self.timing.checkpoint_seconds, t);
        Ok(())
    }
}
