//! # tandem-share
//!
//! How tasks share parameters, behind one trait, [`MultiTaskNet`]:
//!
//! - [`HardSharing`]: one trunk, one head per task (Caruana 1997).
//! - [`Independent`]: one trunk per task — the single-task baseline, trained jointly but sharing
//!   nothing.
//! - [`SoftSharing`]: one column per task, corresponding layers tied by an L2 penalty on their
//!   parameters or activations (Duong et al. 2015).
//! - [`CrossStitch`]: one column per task, mixed after chosen stages by learnable `T×T`
//!   matrices (Misra et al. 2016).
//!
//! [`SharingConfig`] names any of them in a serde configuration and builds it.
//!
//! Every strategy returns a [`NetOutput`] (per-task predictions and an optional penalty the
//! trainer adds to the objective) and names its parameter groups ([`ParamGroups`]) by
//! `VarBuilder` path prefix, so the trainer, weightings and stoppers work the same for all.
//!
//! Checkpoint names are a format: `trunk.*` (hard sharing), `columns.<task>.*` (one column per
//! task), `stitch.<stage>` (a cross-stitch unit's `α`), `heads.<task>.*`.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
//! use tandem_layers::{Tcdcn, TcdcnConfig};
//! use tandem_share::{HardSharing, MultiTaskNet};
//!
//! let tasks = TaskSet::new()
//!     .with(LandmarkTask::new("landmarks", 5))
//!     .with(ClassTask::new("smile", 2).auxiliary());
//! let vars = VarMap::new();
//! let vb = tandem_tensor::seeded_var_builder(&vars, 7, DType::F32, &Device::Cpu);
//! let trunk = Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?;
//! let net = HardSharing::new(trunk, &tasks, vb.pp("heads"))?;
//! let out = net.forward_t(&Tensor::zeros((4, 1, 40, 40), DType::F32, &Device::Cpu)?, false)?;
//! assert_eq!(out.predictions["landmarks"].dims(), &[4, 10]);
//! assert_eq!(out.predictions["smile"].dims(), &[4, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod build;
mod columns;
mod cross_stitch;
mod error;
mod hard;
mod independent;
mod net;
mod soft;
mod stages;

pub use build::SharingConfig;
pub use cross_stitch::{CrossStitch, CrossStitchConfig};
pub use error::{Result, ShareError};
pub use hard::HardSharing;
pub use independent::Independent;
pub use net::{MultiTaskNet, NetOutput, ParamGroups, SplitOutput};
pub use soft::{SoftConfig, SoftSharing, TieMode};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
