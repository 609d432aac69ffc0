//! # tandem-layers
//!
//! Building blocks of tandem's networks:
//!
//! - [`Backbone`]: a feature extractor made of *stages*, so that sharing strategies can tie or
//!   mix the activations between stages (soft sharing, cross-stitch units).
//! - [`Conv2d`], [`Activation`], [`max_pool2x2`]: the trunk's
//!   layers, running on tandem's CPU kernels by default ([`KernelBackend::Tandem`]).
//! - [`Tcdcn`]: the TCDCN trunk of Zhang et al. (ECCV 2014) for 40×40 grayscale faces.
//! - [`Mlp`]: a multilayer perceptron trunk for tabular inputs (`[B, D]` or `[B, D, 1, 1]`),
//!   with deterministic, seeded inverted dropout.
//! - [`Trunk`] / [`TrunkConfig`]: either trunk, chosen by a config's `kind` (`"tcdcn"`, the
//!   default when `kind` is absent, or `"mlp"`).
//! - [`CrossStitchUnit`]: a learnable `T×T` mix of task columns' activations (Misra et al.
//!   2016).
//! - [`regularise`]: the classic regularisers as options of every trunk (dropout,
//!   DropConnect, batch / layer / instance / group norm, weight norm, SELU with alpha
//!   dropout, Glorot / He / LeCun initialisations), built from [`StageNorm`], [`Dense`],
//!   [`LayerWeight`] and the seeded masks of [`dropout`].
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use tandem_layers::{Backbone, Tcdcn, TcdcnConfig};
//!
//! let vars = VarMap::new();
//! let vb = tandem_tensor::seeded_var_builder(&vars, 7, DType::F32, &Device::Cpu);
//! let trunk = Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?;
//! let x = Tensor::zeros((2, 1, 40, 40), DType::F32, &Device::Cpu)?;
//! let features = trunk.forward_t(&x, false)?;
//! assert_eq!(features.dims(), &[2, trunk.out_dim()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod activation;
mod backbone;
mod conv;
mod cross_stitch;
pub mod dropout;
mod error;
mod mlp;
mod norm;
pub mod regularise;
mod tcdcn;
mod trunk;
mod weight;

pub use activation::Activation;
pub use backbone::Backbone;
pub use conv::Conv2d;
pub use cross_stitch::{initial_alpha, CrossStitchUnit};
pub use error::{LayerError, Result};
pub use mlp::{Mlp, MlpConfig};
pub use norm::{StageNorm, NORM_EPS};
pub use regularise::{NormKind, Regularisers, WeightInit};
pub use tandem_tensor::ops::{max_pool2x2, Backend as KernelBackend};
pub use tandem_tensor::torch_linear;
pub use tcdcn::{Tcdcn, TcdcnConfig};
pub use trunk::{Trunk, TrunkConfig};
pub use weight::{Dense, LayerWeight};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
