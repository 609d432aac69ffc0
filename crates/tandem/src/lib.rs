//! # tandem
//!
//! Multi-task deep learning on [candle](https://docs.rs/candle-core): hard and soft parameter
//! sharing, auxiliary tasks, loss weighting and task-wise early stopping, composable through
//! small traits and reproducible bit for bit.
//!
//! This facade re-exports the workspace's crates; depend on a single crate
//! (`tandem-data`, `tandem-train`, ...) when that is all you need.
//!
//! | crate | what it holds |
//! |---|---|
//! | [`tensor`] | `TaskMap`, seeded variable init, numeric guards, checkpoints, fast CPU kernels |
//! | [`layers`] | `Backbone`, convolutions, the TCDCN trunk |
//! | [`heads`] | `Task`, landmark and classification tasks with losses and metrics |
//! | [`share`] | `MultiTaskNet`: independent, hard and soft sharing, cross-stitch |
//! | [`data`] | `Dataset`, SynthFaces, MTFL, batching |
//! | [`optim`] | weightings, optimizers, schedules, stoppers (candle and `tandem-tensor` only) |
//! | [`train`] | `Trainer`, checkpoints and resume, evaluation, history |
//!
//! The facade's own items: [`RunConfig`], the one TOML schema of a run (shared by the `tandem`
//! command line and the experiments); [`run::train`], which builds, trains and scores a
//! configured run; and [`Predictor`], which rebuilds a trained model from its checkpoint folder
//! and predicts landmarks and attributes of images.
//!
//! ```no_run
//! use tandem::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::Cpu;
//! let data: Arc<dyn Dataset> = Arc::new(SynthFaces::new(SynthConfig::default(), 7));
//! let (train, val) = Subset::split(data, 0.9, 7)?;
//! let tasks = TaskSet::new()
//!     .with(LandmarkTask::new("landmarks", 5))
//!     .with(ClassTask::new("smile", 2).auxiliary())
//!     .with(ClassTask::new("pose", 5).auxiliary());
//! let vars = VarMap::new();
//! let vb = seeded_var_builder(&vars, 7, DType::F32, &device);
//! let net = HardSharing::new(Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?, &tasks, vb.pp("heads"))?;
//! let report = Trainer::new(TrainConfig { epochs: 30, batch_size: 64, seed: 7, ..Default::default() })
//!     .weighting(Static::new([("smile", 0.02), ("pose", 0.02)]))
//!     .fit(&net, &tasks, &vars, &train, &val)?;
//! println!("{}", report.table());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod config;
mod error;
pub mod predict;
pub mod run;
pub mod test_time;

pub use config::{
    CropConfig, DataConfig, DataKind, RunConfig, TaskConfig, TaskKindConfig, TaskLoss,
    TestTimeConfig,
};
pub use error::{Error, Result};
pub use predict::{FaceBox, Prediction, Predictor};

pub use tandem_data as data;
pub use tandem_heads as heads;
pub use tandem_layers as layers;
pub use tandem_optim as optim;
pub use tandem_share as share;
pub use tandem_tensor as tensor;
pub use tandem_train as train;

/// Everything a training script usually needs.
pub mod prelude {
    pub use crate::{Predictor, RunConfig};
    pub use candle_core::{DType, Device, Tensor};
    pub use candle_nn::{VarBuilder, VarMap};
    pub use std::sync::Arc;
    pub use tandem_data::{Batcher, Dataset, Subset, SynthConfig, SynthFaces};
    pub use tandem_heads::{ClassTask, LandmarkTask, Task, TaskSet};
    pub use tandem_layers::{Backbone, Tcdcn, TcdcnConfig};
    pub use tandem_optim::{Equal, Static, Weighting};
    pub use tandem_share::{HardSharing, Independent, MultiTaskNet, SharingConfig};
    pub use tandem_tensor::{seeded_var_builder, Target, TaskMap};
    pub use tandem_train::{TrainConfig, Trainer};
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
