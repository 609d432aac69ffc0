//! # tandem-heads
//!
//! What a task predicts and how it is scored:
//!
//! - [`Task`]: a task's name, head, loss and metrics. A task is plain data until a network asks
//!   it for a head, so `LandmarkTask::new("landmarks", 5)` needs no `VarBuilder`.
//! - [`LandmarkTask`]: landmark regression, L2 loss (or L1 / smooth L1), NME and failure rate.
//! - [`RegressionTask`]: regression on `D` label columns, MSE, L1 or smooth L1 loss
//!   ([`RegressionLoss`]), RMSE, MAE and R².
//! - [`ClassTask`]: classification, stable cross-entropy, accuracy and error.
//! - [`BinaryTask`]: binary classification with one logit, stable binary cross-entropy with
//!   logits, accuracy and error.
//! - [`TaskSet`]: the tasks of a model, in a fixed order, with the main task first.
//!
//! Losses and metrics honour [`Target::mask`](tandem_tensor::Target): they average over the
//! labelled samples only, and a batch with no label for a task contributes zero. A task of
//! one's own can do the same with [`masked_mean`] (in its loss) and [`mask_vec`] (in its
//! metric).
//!
//! ```
//! use tandem_heads::{
//!     BinaryTask, ClassTask, LandmarkTask, RegressionLoss, RegressionTask, TaskSet,
//! };
//! let tasks = TaskSet::new()
//!     .with(LandmarkTask::new("landmarks", 5))
//!     .with(ClassTask::new("smile", 2).auxiliary())
//!     .with(BinaryTask::new("glasses").auxiliary())
//!     .with(RegressionTask::new("pose", 3).with_loss(RegressionLoss::SmoothL1).auxiliary());
//! assert_eq!(tasks.main().map(|t| t.name()), Some("landmarks"));
//! assert_eq!(tasks.names(), ["landmarks", "smile", "glasses", "pose"]);
//! ```
#![warn(missing_docs)]

mod binary;
mod class;
mod landmark;
mod metric;
mod regression;
mod task;
mod task_set;

pub use binary::{BinaryMetrics, BinaryTask};
pub use class::{ClassMetrics, ClassTask};
pub use landmark::{LandmarkMetrics, LandmarkTask};
pub use metric::{mask_vec, masked_mean, Metric, MetricValues};
pub use regression::{RegressionLoss, RegressionMetrics, RegressionTask};
pub use task::{Head, Task};
pub use task_set::TaskSet;

/// Re-exported so users of this crate alone can build targets and name task kinds.
pub use tandem_tensor::{Target, TaskKind};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
