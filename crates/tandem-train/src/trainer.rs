//! The training loop.
//!
//! One epoch: for every batch of the seeded [`Batcher`] order, `NetOutput = net(x)`, per-task
//! losses `L_t` for the active tasks, `Update = weighting.backward(L, ctx)`, an AdamW step on the
//! trainable variables; then evaluation on the validation split and one [`EpochRecord`].
//! The report's metrics are those of the epoch with the best validation main-task metric.
use crate::{
    evaluate, AdamW, AdamWConfig, EpochRecord, Equal, History, LrSchedule, Report, Result,
    StepContext, TrainError, Weighting,
};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tandem_data::{Batcher, Dataset, Transform};
use tandem_heads::TaskSet;
use tandem_share::MultiTaskNet;
use tandem_tensor::{ensure_finite, hash_seed, select_vars, sorted_vars, TaskMap};

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
    /// AdamW hyper-parameters.
    pub optimizer: AdamWConfig,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 64,
            eval_batch_size: 256,
            seed: 0,
            optimizer: AdamWConfig::default(),
            schedule: LrSchedule::Constant,
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
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(TrainError::config(
                "optimizer.lr",
                format!("{} is not a positive number", o.lr),
            ));
        }
        if !(0.0..1.0).contains(&o.beta1) || !(0.0..1.0).contains(&o.beta2) {
            return Err(TrainError::config(
                "optimizer.beta1/beta2",
                "must be in [0, 1)",
            ));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return Err(TrainError::config("optimizer.weight_decay", "must be ≥ 0"));
        }
        if let LrSchedule::Cosine {
            warmup_epochs,
            min_factor,
        } = self.schedule
        {
            if !(warmup_epochs >= 0.0 && (0.0..=1.0).contains(&min_factor)) {
                return Err(TrainError::config(
                    "schedule",
                    "cosine needs warmup_epochs ≥ 0 and min_factor in [0, 1]",
                ));
            }
        }
        Ok(())
    }
}

/// Callback run after every epoch.
pub type EpochCallback = Box<dyn FnMut(&EpochRecord) + Send>;

/// Trains a [`MultiTaskNet`].
pub struct Trainer {
    config: TrainConfig,
    weighting: Box<dyn Weighting>,
    transform: Option<Arc<dyn Transform>>,
    device: Device,
    on_epoch: Option<EpochCallback>,
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

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn batchers(&self) -> (Batcher, Batcher) {
        let mut tb = Batcher::train(self.config.batch_size, self.config.seed);
        let mut eb = Batcher::eval(self.config.eval_batch_size);
        if let Some(t) = &self.transform {
            tb = tb.with_transform(t.clone());
            eb = eb.with_transform(t.clone());
        }
        (tb, eb)
    }

    /// Trains `net` (whose variables live in `vars`) on `train`, evaluating on `val` after
    /// every epoch.
    pub fn fit(
        &mut self,
        net: &dyn MultiTaskNet,
        tasks: &TaskSet,
        vars: &VarMap,
        train: &dyn Dataset,
        val: &dyn Dataset,
    ) -> Result<Report> {
        self.config.validate()?;
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
        let (train_batcher, eval_batcher) = self.batchers();
        let groups = net.param_groups();
        let shared = select_vars(vars, &groups.shared);
        let last_shared = select_vars(vars, &groups.last_shared);
        let trainable = sorted_vars(vars);
        let steps_per_epoch = train_batcher.num_batches(train.len()) as u64;
        let total_steps = steps_per_epoch * self.config.epochs as u64;
        let mut opt = AdamW::new(self.config.optimizer);
        let mut history = History::default();
        let mut step: u64 = 0;
        let active: Vec<String> = tasks.names().into_iter().map(String::from).collect();

        for epoch in 0..self.config.epochs {
            let mut loss_sum = TaskMap::<f64>::new();
            let mut weight_sum = TaskMap::<f64>::new();
            let mut lr = self.config.optimizer.lr;
            let mut batches = 0usize;
            for batch in train_batcher.iter(train, epoch, &self.device) {
                let batch = batch?;
                let out = net.forward_t(&batch.input, true)?;
                let mut losses = TaskMap::<Tensor>::new();
                for name in &active {
                    let (Some(task), Some(pred), Some(target)) = (
                        tasks.get(name),
                        out.predictions.get(name),
                        batch.targets.get(name),
                    ) else {
                        continue;
                    };
                    let loss = task.loss(pred, target)?;
                    let value = f64::from(loss.to_scalar::<f32>()?);
                    if !value.is_finite() {
                        return Err(TrainError::NonFinite {
                            what: "loss".into(),
                            task: name.clone(),
                            epoch,
                            step,
                        });
                    }
                    add(&mut loss_sum, name, value);
                    losses.insert(name.clone(), loss);
                }
                if let Some(p) = &out.penalty {
                    ensure_finite("penalty", p)?;
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
                let update = self.weighting.backward(&losses, &mut ctx)?;
                for (name, w) in update.weights.iter() {
                    add(&mut weight_sum, name, *w);
                }
                lr = self.config.schedule.rate(
                    self.config.optimizer.lr,
                    step,
                    total_steps,
                    steps_per_epoch,
                );
                opt.step(&trainable, &update.grads, lr)?;
                step += 1;
                batches += 1;
            }
            let n = batches.max(1) as f64;
            let train_loss = loss_sum.map(|_, s| s / n);
            let eval = evaluate(net, tasks, val, &eval_batcher, &self.device)?;
            let record = EpochRecord {
                epoch,
                lr,
                train_loss: train_loss.clone(),
                val_loss: eval.losses,
                val_metrics: eval.metrics,
                weights: weight_sum.map(|_, s| s / n),
                active: active.clone(),
            };
            if let Some(f) = self.on_epoch.as_mut() {
                f(&record);
            }
            history.epochs.push(record);
            self.weighting.end_epoch(epoch, &train_loss)?;
        }

        let metric = main.primary_metric();
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
}

fn add(map: &mut TaskMap<f64>, name: &str, v: f64) {
    match map.get_mut(name) {
        Some(s) => *s += v,
        None => {
            map.insert(name, v);
        }
    }
}
