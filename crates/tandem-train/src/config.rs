//! [`TrainConfig`]: the hyper-parameters of a training run, and [`NonFinitePolicy`].
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use tandem_optim::{LrSchedule, OptimizerConfig};
use tandem_tensor::DeviceSpec;

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

    /// Applies the policy to the non-finite value `e`: returns it as the error, or counts one
    /// more skipped batch in `skipped`.
    pub(crate) fn handle(self, e: TrainError, skipped: &mut u64) -> Result<()> {
        match self {
            Self::Error => Err(e),
            Self::SkipBatch => {
                *skipped += 1;
                Ok(())
            }
        }
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
    /// The optimizer and its hyper-parameters. Default AdamW with [`tandem_optim::AdamWConfig::default`].
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
    /// Also evaluate the model on the training set after every epoch, in evaluation mode
    /// (no dropout, batch norm on its running statistics, the evaluation crop), and record its
    /// losses as [`EpochRecord::train_eval_loss`](crate::EpochRecord::train_eval_loss): the
    /// training loss a generalisation gap should use, since the running training loss is
    /// measured with the regularisers on. Costs one pass over the training set per epoch.
    /// Default false.
    #[serde(skip_serializing_if = "is_false")]
    pub eval_train: bool,
    /// The device the run trains on: `"cpu"` (default), `"cuda"`, `"cuda:N"`, `"metal"`
    /// ([`tandem_tensor::DeviceSpec`]; a GPU needs a build with its feature).
    #[serde(skip_serializing_if = "DeviceSpec::is_cpu")]
    pub device: DeviceSpec,
}

fn is_false(b: &bool) -> bool {
    !*b
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
            eval_train: false,
            device: DeviceSpec::Cpu,
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

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_optim::SgdConfig;

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
