//! The training loop.
//!
//! One epoch: for every batch of the seeded [`Batcher`] order, `NetOutput = net(x)`, per-task
//! losses `L_t` for the active tasks that have at least one labelled sample in the batch,
//! `Update = weighting.backward(L, ctx)`, an optimizer step on the trainable variables; then
//! evaluation on the validation split, one [`EpochRecord`], and each auxiliary task's
//! [`TaskStopper`] verdict. A stopped task leaves the objective and its own variables
//! (`ParamGroups::tasks`) leave the optimizer. The report's metrics are those of the epoch with
//! the best validation main-task metric.
use crate::{
    evaluate, EpochRecord, Equal, History, LrSchedule, Observation, OptimizerConfig, Report,
    Result, StepContext, StopperConfig, TaskStopper, TrainError, Weighting,
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
    /// The optimizer and its hyper-parameters. Default AdamW with [`crate::AdamWConfig::default`].
    pub optimizer: OptimizerConfig,
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
            optimizer: OptimizerConfig::default(),
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
        self.optimizer.validate()?;
        self.schedule.validate()?;
        Ok(())
    }
}

/// Callback run after every epoch.
pub type EpochCallback = Box<dyn FnMut(&EpochRecord) + Send>;

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
    stopper: Stoppers,
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
            stopper: Stoppers::Config(StopperConfig::Off),
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
        if let Stoppers::Config(c) = &self.stopper {
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
        let (train_batcher, eval_batcher) = self.batchers();
        let groups = net.param_groups();
        let shared = select_vars(vars, &groups.shared);
        let last_shared = select_vars(vars, &groups.last_shared);
        let mut trainable = sorted_vars(vars);
        let steps_per_epoch = train_batcher.num_batches(train.len()) as u64;
        let total_steps = steps_per_epoch * self.config.epochs as u64;
        let base_lr = self.config.optimizer.lr();
        let mut opt = self.config.optimizer.build();
        let mut history = History::default();
        let mut step: u64 = 0;
        let mut active: Vec<String> = tasks.names().into_iter().map(String::from).collect();
        let mut stoppers = TaskMap::<Box<dyn TaskStopper>>::new();
        for task in tasks.iter().filter(|t| t.is_auxiliary()) {
            if let Some(s) = self.stopper.make(task.name()) {
                stoppers.insert(task.name(), s);
            }
        }

        for epoch in 0..self.config.epochs {
            let mut loss_sum = TaskMap::<(f64, f64)>::new();
            let mut weight_sum = TaskMap::<(f64, f64)>::new();
            let mut lr = base_lr;
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
                    // Partial labels: a task with no labelled sample in this batch contributes
                    // nothing (no loss, no weight, no gradient).
                    if target.labelled()? <= 0.0 {
                        continue;
                    }
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
                    add(&mut loss_sum, name, (value, 1.0));
                    losses.insert(name.clone(), loss);
                }
                if let Some(p) = &out.penalty {
                    ensure_finite("penalty", p)?;
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
                let update = self.weighting.backward(&losses, &mut ctx)?;
                for (name, w) in update.weights.iter() {
                    add(&mut weight_sum, name, (*w, 1.0));
                }
                lr = self
                    .config
                    .schedule
                    .rate(base_lr, step, total_steps, steps_per_epoch);
                opt.step(&trainable, &update.grads, lr)?;
                step += 1;
            }
            let train_loss = loss_sum.map(|_, (s, n)| s / n);
            let weights = weight_sum.map(|_, (s, n)| s / n);
            let eval = evaluate(net, tasks, val, &eval_batcher, &self.device)?;

            // Task-wise early stopping of auxiliary tasks.
            let mut stopped = Vec::new();
            for (name, stopper) in stoppers.iter_mut() {
                let (Some(tr), Some(vl), Some(task)) =
                    (train_loss.get(name), eval.losses.get(name), tasks.get(name))
                else {
                    continue;
                };
                if !active.iter().any(|a| a == name) {
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
                lr,
                train_loss: train_loss.clone(),
                val_loss: eval.losses,
                val_metrics: eval.metrics,
                weights,
                active: active.clone(),
            };
            if let Some(f) = self.on_epoch.as_mut() {
                f(&record);
            }
            history.epochs.push(record);

            for name in &stopped {
                active.retain(|a| a != name);
                history.stops.insert(name.clone(), epoch);
                let frozen: Vec<String> = groups
                    .tasks
                    .get(name)
                    .map(|prefixes| {
                        select_vars(vars, prefixes)
                            .into_iter()
                            .map(|(n, _)| n)
                            .collect()
                    })
                    .unwrap_or_default();
                trainable.retain(|(n, _)| !frozen.contains(n));
                opt.forget(&frozen);
            }
            let still_active: TaskMap<f64> = train_loss
                .iter()
                .filter(|(n, _)| active.iter().any(|a| a == n))
                .map(|(n, v)| (n, *v))
                .collect();
            self.weighting.end_epoch(epoch, &still_active)?;
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
