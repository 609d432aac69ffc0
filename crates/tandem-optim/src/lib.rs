//! # tandem-optim
//!
//! How per-task losses become updates of a multi-task candle model — with nothing but candle
//! and `tandem-tensor` underneath, so it serves a model of one's own as well as tandem's
//! trainer:
//!
//! - [`Weighting`]: how per-task losses become one update ([`Equal`], [`Static`],
//!   [`Uncertainty`], [`Dwa`], [`GradNorm`], [`PcGrad`]; [`WeightingConfig`] as serde data).
//!   A weighting owns the backward pass and returns the gradients and the weights it used.
//! - [`Optimizer`]: an open trait (step, state, load_state) with [`AdamW`] and [`Sgd`]
//!   (momentum, Nesterov), whose state is plain data, chosen by [`OptimizerConfig`];
//!   [`LrSchedule`]: constant, warm-up, step, cosine.
//! - [`TaskStopper`]: task-wise early stopping of auxiliary tasks ([`TcdcnStopper`],
//!   [`PatienceStopper`]; [`StopperConfig`]).
//! - [`state`]: the one way all of them save and restore their state as JSON, with errors
//!   instead of silent defaults.
//!
//! Tasks are described by [`tandem_tensor::TaskList`]: `tandem_heads::TaskSet` is one, and so
//! is a list of [`TaskInfo`](tandem_tensor::TaskInfo).
//!
//! Uncertainty weighting in one's own training step, with a plain `candle_nn::Linear` per task
//! (the crate's test `plain_candle` trains such a model end to end):
//!
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::VarMap;
//! use rand::SeedableRng;
//! use tandem_optim::{AdamW, AdamWConfig, Optimizer, StepContext, Uncertainty, Weighting};
//! use tandem_tensor::{seeded_var_builder, sorted_vars, TaskInfo, TaskMap};
//!
//! let dev = Device::Cpu;
//! let vars = VarMap::new();
//! let vb = seeded_var_builder(&vars, 7, DType::F32, &dev);
//! let depth = candle_nn::linear(4, 1, vb.pp("depth"))?;
//! let edges = candle_nn::linear(4, 1, vb.pp("edges"))?;
//! let tasks = [TaskInfo::regression("depth"), TaskInfo::regression("edges")];
//! let mut weighting = Uncertainty::new(&tasks, vb.pp("weighting"))?;
//! let mut opt = AdamW::new(AdamWConfig::default());
//!
//! let x = Tensor::ones((8, 4), DType::F32, &dev)?;
//! let y = Tensor::zeros((8, 1), DType::F32, &dev)?;
//! let losses = TaskMap::new()
//!     .with("depth", candle_nn::loss::mse(&depth.forward(&x)?, &y)?)
//!     .with("edges", candle_nn::loss::mse(&edges.forward(&x)?, &y)?);
//! let trainable = sorted_vars(&vars);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let mut ctx = StepContext {
//!     trainable: &trainable,
//!     shared: &[],
//!     last_shared: &[],
//!     penalty: None,
//!     representation: None,
//!     rng: &mut rng,
//!     epoch: 0,
//!     step: 0,
//!  collective: None, reduced: Vec::new() };
//! let update = weighting.backward(&losses, &mut ctx)?;
//! opt.step(&trainable, &update.grads, 1e-3)?;
//! assert_eq!(update.weights["depth"], 0.5); // c_t·e^{−s_t} with s_t = 0 for a regression
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod error;
mod optimizer;
mod schedule;
pub mod state;
pub mod stop;
pub mod weighting;

pub use error::{OptimError, Result};
pub use optimizer::{
    AdamW, AdamWConfig, AdamWState, Optimizer, OptimizerConfig, OptimizerState, Sgd, SgdConfig,
    SgdState,
};
pub use schedule::LrSchedule;
pub use stop::{Observation, PatienceStopper, StopperConfig, TaskStopper, TcdcnStopper};
pub use weighting::{
    Dwa, Equal, GradNorm, GradNormState, PcGrad, Static, StepContext, Uncertainty, Update,
    Weighting, WeightingConfig,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
