//! # tandem-data
//!
//! Data for multi-task face models:
//!
//! - [`Dataset`]: indexable samples ([`Sample`]: a grayscale image plus one [`Label`] per task).
//! - [`Subset`]: index views and seeded train/validation splits.
//! - [`SynthFaces`]: seeded synthetic faces whose attributes cause landmarks and looks.
//! - [`Batcher`]: seeded shuffling, per-sample [`Transform`]s (augmentation) and stacking into a
//!   [`Batch`] `{ input: [B, 1, H, W], targets: TaskMap<Target> }`.
//!
//! - [`mtfl`]: the real MTFL data set ([`mtfl::Mtfl::open`]): annotation parser, image decoding
//!   with limits, crop policies, augmentation and a preprocessing cache.
//!
//! Randomness is derived from `(seed, epoch, index)` ([`sample_rng`]), never from a shared
//! stream, so a batch can be rebuilt exactly after a restart and does not depend on threads.
//!
//! Landmarks are stored normalised to the image: `x / width`, `y / height`, in MTFL's order
//! `[x1..xn, y1..yn]`.
#![warn(missing_docs)]

mod batch;
mod dataset;
mod error;
pub mod mtfl;
mod sample;
mod synth;
pub mod table;

pub use batch::{sample_rng, Batch, Batcher, Transform};
pub use dataset::{Dataset, EvalSet, Subset};
pub use error::{DataError, Result};
pub use mtfl::{Mtfl, MtflOptions};
pub use sample::{GrayImage, Image, Label, Sample};
pub use synth::{Attributes, FaceParams, SynthConfig, SynthFaces, POSE_YAW_DEG};
pub use table::{FeatureStats, Table, TableOptions, TableSplits, TableTask, TableTaskKind};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
