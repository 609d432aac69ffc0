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
//! - [`Mtan`]: a shared trunk with per-task attention modules at every stage (Liu et al.
//!   2019).
//! - [`Mmoe`]: experts mixed per task by softmax gates over the input (Ma et al. 2018).
//! - [`Cgc`]: shared experts and each task's own, gated per task (Tang et al. 2020).
//! - [`Ple`]: CGC at every stage, with shared gates between levels (Tang et al. 2020).
//! - [`DselectK`]: each task selects `k` experts with differentiable binary-coded gates
//!   (Hazimeh et al. 2021).
//! - [`Ltb`]: a branching tree over the stages searched with Gumbel-softmax (Guo et al.
//!   2020).
//!
//! [`SharingConfig`] names any of them in a serde configuration and builds it.
//!
//! [`Averaged`] ([`ensemble`]) averages trained networks — a seed ensemble, mirrored inputs —
//! behind the same trait, for evaluation and prediction.
//!
//! Every strategy returns a [`NetOutput`] (per-task predictions and an optional penalty the
//! trainer adds to the objective) and names its parameter groups ([`ParamGroups`]) by
//! `VarBuilder` path prefix, so the trainer, weightings and stoppers work the same for all.
//!
//! Checkpoint names are a format: `trunk.*` (hard sharing, MTAN), `columns.<task>.*` (one
//! column per task), `stitch.<stage>` (a cross-stitch unit's `α`), `experts.*` and `gates.*`
//! (the mixtures of experts), `attention.<task>.<stage>.*` (MTAN), `branch.<stage>` (LTB's
//! logits), `heads.<task>.*`.
//!
//! The gated architectures expose their gates ([`MultiTaskNet::gates`]) so a run can report
//! which experts each task uses.
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
mod cgc;
mod columns;
mod cross_stitch;
mod dselect_k;
pub mod ensemble;
mod error;
mod experts;
mod hard;
mod independent;
mod ltb;
mod mmoe;
mod mtan;
mod net;
mod ple;
mod soft;
mod stages;

pub use build::SharingConfig;
pub use cgc::{Cgc, CgcConfig};
pub use cross_stitch::{CrossStitch, CrossStitchConfig};
pub use dselect_k::{smooth_step, DselectK, DselectKConfig};
pub use ensemble::{Averaged, Mirror, OutputKind, TaskOutput};
pub use error::{Result, ShareError};
pub use hard::HardSharing;
pub use independent::Independent;
pub use ltb::{Ltb, LtbConfig};
pub use mmoe::{Mmoe, MmoeConfig};
pub use mtan::{Mtan, MtanConfig};
pub use net::{MultiTaskNet, NetOutput, ParamGroups, SplitOutput};
pub use ple::Ple;
pub use soft::{SoftConfig, SoftSharing, TieMode};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
