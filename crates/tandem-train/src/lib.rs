//! # tandem-train
//!
//! Training multi-task networks:
//!
//! - [`Trainer`]: the loop — seeded batches, forward, per-task losses, a
//!   [`Weighting`](tandem_optim::Weighting) that owns the backward pass, an optimizer step,
//!   evaluation on a validation split every epoch.
//! - [`TrainConfig`] ([`config`]): the run's hyper-parameters, the optimizer and schedule
//!   included.
//! - Checkpoints and exact resume ([`CheckpointConfig`], [`checkpoint`]): a run killed at any
//!   step and resumed ends bit-identical to an uninterrupted one; with
//!   [`Trainer::keep_best`] the best epoch's variables are kept too ([`BestEpoch`]).
//! - Numeric guards: a non-finite loss or gradient stops the run naming task, epoch and step,
//!   or skips the batch ([`NonFinitePolicy`]); optional gradient-norm clipping.
//! - [`History`]: per-epoch losses, metrics and task weights, written as JSON; the reported
//!   metrics are those of the epoch with the best validation main-task metric ([`Report`]).
//! - [`FitTiming`] ([`timing`]): where the time went, kept apart from the results.
//!
//! The pieces the loop drives live in [`tandem_optim`], which needs only candle and
//! `tandem-tensor`, and are used from there (one path per item):
//! [`Weighting`](tandem_optim::Weighting) and its catalogue
//! ([`WeightingConfig`](tandem_optim::WeightingConfig)),
//! [`TaskStopper`](tandem_optim::TaskStopper) ([`StopperConfig`](tandem_optim::StopperConfig)),
//! the [`Optimizer`](tandem_optim::Optimizer) trait with AdamW and SGD
//! ([`OptimizerConfig`](tandem_optim::OptimizerConfig)) and
//! [`LrSchedule`](tandem_optim::LrSchedule).
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
//! use tandem_optim::Static;
//! use tandem_train::{TrainConfig, Trainer};
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
pub mod config;
mod error;
mod evaluate;
mod history;
mod losses;
#[cfg(feature = "mpi")]
pub mod mpi;
mod params;
mod run_state;
pub mod timing;
mod trainer;

pub use checkpoint::{BestEpoch, CheckpointConfig, TrainerState};
pub use config::{NonFinitePolicy, TrainConfig};
pub use error::{Result, TrainError};
pub use evaluate::{evaluate, evaluate_sharded, gate_means, Evaluation, GateMeans};
pub use history::{improves, EpochRecord, History, Report};
pub use losses::{batch_losses, BatchLoss};
pub use run_state::RunState;
pub use timing::FitTiming;
pub use trainer::{EpochCallback, RefitConfig, StepCallback, StepInfo, StopperFactory, Trainer};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
