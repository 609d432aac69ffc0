//! Where a run's samples come from: `[data]`.
//!
//! ```toml
//! [data]
//! kind = "synth"          # synth (default) | mtfl | table
//! train_size = 8000       # synth: training faces; mtfl: at most this many (0 = all)
//! val_size = 1000         # synth: validation faces
//! val_fraction = 0.1      # mtfl and table: the seeded share held out for validation
//!
//! # kind = "table": a CSV file given by `tandem train --data FILE.csv`
//! features = ["age", "hours"]   # numeric input columns, standardised with training statistics
//! # image = "path"              # or: a column of image paths (relative to the CSV's folder)
//! split_column = "split"        # a column of train / val / test, when the header has it
//!
//! # kind = "mtfl": training augmentation besides the crop jitter of [data.crop]
//! [data.augment]
//! mirror = true       # mirror half of the faces (landmarks, eyes, mouth corners, pose swapped)
//! brightness = 0.1    # largest brightness offset on the [0, 1] scale
//! contrast = 0.2      # largest relative contrast change
//! # degrade = { p = 0.5 }  # in-the-wild blur, low light, noise, JPEG (off by default)
//!
//! # kind = "mtfl": the proxy evaluation set `val_proxy` (validation faces, test's pose mix,
//! # degraded; tandem_data::mtfl::proxy) and pose-balanced training
//! [data.proxy]
//! nonfrontal = 0.39   # share of non-frontal faces the proxy set is resampled to
//! [data]
//! pose_balance = 0.0  # training: repeat non-frontal faces up to this share (0 = off)
//! ```
//!
//! `--data DIR` (a folder holding `training.txt`) means MTFL whatever `kind` says, as it
//! always has; `--data FILE.csv` needs `kind = "table"`.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tandem_data::mtfl::{Augment, BoxSpread, Jitter, ProxyOptions, DEFAULT_BOX_SCALE};
use tandem_data::SynthConfig;

/// Which data set a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Built-in synthetic faces ([`tandem_data::SynthFaces`]); the default.
    #[default]
    Synth,
    /// An MTFL folder (`--data DIR`).
    Mtfl,
    /// A CSV table of features or image paths and label columns (`--data FILE.csv`, see
    /// [`tandem_data::table`]).
    Table,
}

/// Where the data of a run comes from and how much of it is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Which data set: `synth` (default), `mtfl` or `table`.
    pub kind: DataKind,
    /// Training faces (synthetic data; for real data, at most this many, 0 = all).
    pub train_size: usize,
    /// Validation faces (synthetic data).
    pub val_size: usize,
    /// Fraction of a real annotation file held out for validation.
    pub val_fraction: f64,
    /// The seed of the train/validation split of a real annotation file (MTFL's
    /// `training.txt`, a table without a split column); default: the run's `train.seed`. Runs
    /// of several seeds that are to be averaged as an ensemble and scored on their validation
    /// faces must share it, or each member has trained on faces the others validate on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// The synthetic face generator.
    pub synth: SynthConfig,
    /// How real faces are cropped (MTFL).
    pub crop: CropConfig,
    /// Training augmentation of real faces besides the crop jitter (MTFL): a mirror with
    /// probability ½ and brightness/contrast draws; `{ mirror = false, brightness = 0.0,
    /// contrast = 0.0 }` turns it off.
    pub augment: Augment,
    /// The proxy evaluation set of real MTFL runs (`val_proxy`, scored after training beside
    /// the other sets; [`tandem_data::mtfl::proxy`]).
    pub proxy: ProxyOptions,
    /// Pose-balanced training on real MTFL: the training faces of the rarer pose group
    /// (non-frontal) are repeated, by [`tandem_data::mtfl::pose_resample`] with the run's
    /// seed, until they make this share of each epoch (0 = off, the default; MTFL's test split
    /// has 0.39). An epoch grows by the repeated faces.
    pub pose_balance: f64,
    /// A table's numeric input columns (`kind = "table"`; or `image`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// A table's column of image paths, relative to the CSV's folder (`kind = "table"`; or
    /// `features`). Images are resized to `model.input_size` with `model.in_channels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The column of a table that assigns rows to `train`, `val` or `test` when the header
    /// has it (else a seeded split holds out `val_fraction`). Default `split`.
    pub split_column: String,
    /// The table file of a run (set from `--data FILE.csv`; `tandem eval` reads it again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// How real (MTFL) faces become model inputs: every training-split face is cropped from a box
/// derived from its landmarks — a square centred on their centroid, `box_scale` times their
/// larger extent — jittered in training and spread by a fixed per-face draw in validation, so
/// that validation crops stray from the landmarks as MTFL's test crops do (see
/// [`tandem_data::mtfl::BoxSpread`]). Test faces are the whole image, as the data set defines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CropConfig {
    /// Side of the face box over the landmarks' larger extent (default 2.85).
    pub box_scale: f32,
    /// Training jitter of the box (uniform draws).
    pub jitter: Jitter,
    /// Spread of the validation crops ([`BoxSpread::MTFL_TEST`] by default: test-like crops;
    /// all zeros: the centred landmark box).
    pub eval_spread: BoxSpread,
    /// Seed of the per-face validation draws (the same validation crops for every run seed).
    pub eval_seed: u64,
}

impl Default for CropConfig {
    fn default() -> Self {
        Self {
            box_scale: DEFAULT_BOX_SCALE,
            jitter: Jitter::default(),
            eval_spread: BoxSpread::MTFL_TEST,
            eval_seed: 0,
        }
    }
}

impl DataConfig {
    /// The seed of the train/validation split for a run of seed `run_seed`: `split_seed` when
    /// set, else `run_seed`.
    pub fn split_seed_or(&self, run_seed: u64) -> u64 {
        self.split_seed.unwrap_or(run_seed)
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            train_size: 8000,
            val_size: 1000,
            val_fraction: 0.1,
            split_seed: None,
            synth: SynthConfig::default(),
            crop: CropConfig::default(),
            augment: Augment::default(),
            proxy: ProxyOptions::default(),
            pose_balance: 0.0,
            kind: DataKind::Synth,
            features: Vec::new(),
            image: None,
            split_column: "split".into(),
            path: None,
        }
    }
}
