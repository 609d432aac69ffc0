//! # tandem-train
//!
//! Training multi-task networks:
//!
//! - [`Trainer`]: the loop — seeded batches, forward, per-task losses, a [`Weighting`] that owns
//!   the backward pass, an optimizer step, evaluation on a validation split every epoch.
//! - [`Weighting`]: how per-task losses become one update ([`Equal`], [`Static`],
//!   [`Uncertainty`], [`Dwa`], [`GradNorm`], [`PcGrad`]; [`WeightingConfig`] as serde data).
//! - [`TaskStopper`]: task-wise early stopping of auxiliary tasks ([`TcdcnStopper`],
//!   [`PatienceStopper`]; [`StopperConfig`]).
//! - [`AdamW`] and [`Sgd`] (momentum, Nesterov), whose state is plain data (saveable,
//!   resumable), chosen by [`OptimizerConfig`]; [`LrSchedule`]: constant, warm-up, step, cosine.
//! - Checkpoints and exact resume ([`CheckpointConfig`], [`checkpoint`]): a run killed at any
//!   step and resumed ends bit-identical to an uninterrupted one.
//! - Numeric guards: a non-finite loss or gradient stops the run naming task, epoch and step,
//!   or skips the batch ([`NonFinitePolicy`]); optional gradient-norm clipping.
//! - [`History`]: per-epoch losses, metrics and task weights, written as JSON; the reported
//!   metrics are those of the epoch with the best validation main-task metric ([`Report`]).
//!
//! Every loop over tasks follows the [`TaskSet`](tandem_heads::TaskSet) order and every loop
//! over variables follows sorted names, so a run is bit-for-bit repeatable for a seed.
//!
//! ```no_run
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use std::sync::Arc;
//! use tandem_data::{Dataset, Subset};
//! use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
//! use tandem_layers::{Tcdcn, TcdcnConfig};
//! use tandem_share::HardSharing;
//! use tandem_train::{Static, TrainConfig, Trainer};
//!
//! # fn run(data: Arc<dyn Dataset>) -> Result<(), Box<dyn std::error::Error>> {
//! let (train, val) = Subset::split(data, 0.9, 7)?;
//! let tasks = TaskSet::new()
//!     .with(LandmarkTask::new("landmarks", 5))
//!     .with(ClassTask::new("smile", 2).auxiliary());
//! let vars = VarMap::new();
//! let vb = tandem_tensor::seeded_var_builder(&vars, 7, DType::F32, &Device::Cpu);
//! let net = HardSharing::new(Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?, &tasks, vb.pp("heads"))?;
//! let report = Trainer::new(TrainConfig { epochs: 10, ..Default::default() })
//!     .weighting(Static::new([("landmarks", 1.0), ("smile", 0.01)]))
//!     .fit(&net, &tasks, &vars, &train, &val)?;
//! println!("{}", report.table());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod checkpoint;
mod error;
mod evaluate;
mod history;
mod optim;
mod schedule;
pub mod stop;
mod trainer;
pub mod weighting;

pub use checkpoint::{CheckpointConfig, TrainerState};
pub use error::{Result, TrainError};
pub use evaluate::{evaluate, Evaluation};
pub use history::{EpochRecord, History, Report};
pub use optim::{
    AdamW, AdamWConfig, AdamWState, Optimizer, OptimizerConfig, OptimizerState, Sgd, SgdConfig,
    SgdState,
};
pub use schedule::LrSchedule;
pub use stop::{Observation, PatienceStopper, StopperConfig, TaskStopper, TcdcnStopper};
pub use trainer::{
    EpochCallback, FitTiming, NonFinitePolicy, StepCallback, StepInfo, StopperFactory, TrainConfig,
    Trainer,
};
pub use weighting::{
    Dwa, Equal, GradNorm, GradNormState, PcGrad, Static, StepContext, Uncertainty, Update,
    Weighting, WeightingConfig,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
