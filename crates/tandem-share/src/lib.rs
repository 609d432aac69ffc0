//! # tandem-share
//!
//! How tasks share parameters, behind one trait, [`MultiTaskNet`]:
//!
//! - [`HardSharing`]: one trunk, one head per task (Caruana 1997).
//! - [`Independent`]: one trunk per task — the single-task baseline, trained jointly but sharing
//!   nothing.
//!
//! Every strategy returns a [`NetOutput`] (per-task predictions and an optional penalty the
//! trainer adds to the objective) and names its parameter groups ([`ParamGroups`]) by
//! `VarBuilder` path prefix, so the trainer, weightings and stoppers work the same for all.
//!
//! Checkpoint names are a format: `trunk.*` (hard sharing), `columns.<task>.*` (one column per
//! task), `heads.<task>.*`.
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
mod error;
mod hard;
mod independent;
mod net;

pub use build::Sharing;
pub use error::{Result, ShareError};
pub use hard::HardSharing;
pub use independent::Independent;
pub use net::{MultiTaskNet, NetOutput, ParamGroups};
