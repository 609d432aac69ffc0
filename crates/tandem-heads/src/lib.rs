//! # tandem-heads
//!
//! What a task predicts and how it is scored:
//!
//! - [`Task`]: a task's name, head, loss and metrics. A task is plain data until a network asks
//!   it for a head, so `LandmarkTask::new("landmarks", 5)` needs no `VarBuilder`.
//! - [`LandmarkTask`]: landmark regression, L2 loss, NME and failure rate.
//! - [`ClassTask`]: classification, stable cross-entropy, accuracy and error.
//! - [`TaskSet`]: the tasks of a model, in a fixed order, with the main task first.
//!
//! Losses and metrics honour [`Target::mask`](tandem_tensor::Target): they average over the
//! labelled samples only, and a batch with no label for a task contributes zero.
//!
//! ```
//! use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
//! let tasks = TaskSet::new()
//!     .with(LandmarkTask::new("landmarks", 5))
//!     .with(ClassTask::new("smile", 2).auxiliary());
//! assert_eq!(tasks.main().map(|t| t.name()), Some("landmarks"));
//! assert_eq!(tasks.names(), ["landmarks", "smile"]);
//! ```
#![warn(missing_docs)]

mod class;
mod landmark;
mod metric;
mod task;
mod task_set;

pub use class::{ClassMetrics, ClassTask};
pub use landmark::{LandmarkMetrics, LandmarkTask};
pub use metric::{Metric, MetricValues};
pub use task::{Head, Task};
pub use task_set::TaskSet;

/// Re-exported so users of this crate alone can build targets and name task kinds.
pub use tandem_tensor::{Target, TaskKind};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
