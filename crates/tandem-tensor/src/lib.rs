//! # tandem-tensor
//!
//! Tensor plumbing shared by every tandem crate, over [candle](https://docs.rs/candle-core):
//!
//! - [`TaskMap`]: an insertion-ordered map keyed by task name, so that iteration order — and
//!   therefore every summed loss, every metric table and every checkpoint — never depends on
//!   hashing.
//! - [`Target`]: one task's targets for a batch, with an optional mask for partial labels.
//! - [`seeded_var_builder`]: a `VarBuilder` whose variables are initialised from a ChaCha RNG
//!   seeded by `hash(seed, variable path)`. candle's CPU RNG cannot be seeded; with this
//!   backend a variable's initial value depends only on the seed and its name.
//! - [`sorted_vars`] / [`select_vars`]: variables of a `VarMap` in sorted-name order.
//! - [`ensure_finite`]: a numeric guard that names the offending tensor.
//! - [`torch_linear`]: a linear layer initialised as PyTorch's `nn.Linear`.
//! - [`TaskKind`], [`TaskInfo`], [`TaskList`]: what a loss weighting needs to know of a task.
//! - [`checkpoint`]: safetensors + JSON sidecar checkpoints, written atomically.
//! - [`Collective`]: the rank-ordered sums and gathers of data-parallel training ([`Solo`],
//!   [`ThreadGroup`]).
//!
//! ```
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use tandem_tensor::{seeded_var_builder, sorted_vars};
//!
//! let vars = VarMap::new();
//! let vb = seeded_var_builder(&vars, 7, DType::F32, &Device::Cpu);
//! let layer = candle_nn::linear(4, 2, vb.pp("fc"))?;
//! let names: Vec<String> = sorted_vars(&vars).into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["fc.bias", "fc.weight"]);
//! # let _ = layer;
//! # Ok::<(), candle_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod checkpoint;
pub mod collective;
pub mod device;
mod error;
mod guard;
mod init;
mod linear;
pub mod ops;
pub mod runtime;
mod target;
mod task;
mod task_map;
mod vars;

pub use collective::{Collective, CollectiveError, Solo, ThreadGroup};
pub use device::{DeviceError, DeviceSpec};
pub use error::{Result, TensorError};
pub use guard::{ensure_finite, is_finite};
pub use init::{hash_seed, seeded_var_builder, SeededBackend};
pub use linear::torch_linear;
pub use target::Target;
pub use task::{TaskInfo, TaskKind, TaskList};
pub use task_map::TaskMap;
pub use vars::{is_buffer, parameter_vars, select_vars, sorted_vars, BUFFER_NAMES};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
