//! Trainer checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! With [`crate::Trainer::checkpoints`], the trainer writes a checkpoint every
//! [`CheckpointConfig::every_steps`] optimizer steps and after every epoch into one folder per
//! position, keeping the last [`CheckpointConfig::keep_last`]:
//!
//! ```text
//! DIR/
//!   step-0000000012/          12 = training batches consumed since the start of the run
//!     model.safetensors       every variable of the VarMap (tandem_tensor::checkpoint)
//!     meta.json               tandem_tensor::CheckpointMeta (step, epochs done, seed, model config)
//!     trainer.json            TrainerState: position, partial-epoch sums, optimizer, weighting
//!                             and stopper state, history
//!     SHA256SUMS              SHA-256 of the three files above (`sha256sum -c` format)
//!   step-0000000024/
//! ```
//!
//! A checkpoint folder is assembled under a hidden temporary name (`.step-….partial-PID`), every
//! file written and fsynced, and then renamed into place, so a crash leaves either a complete
//! checkpoint or none. Loading checks the SHA-256 sums, the tensors' names and shapes against
//! the model, and that the run's [`TrainConfig`] and data size match.
//!
//! ## Exactness
//! JSON numbers do not always survive a round trip through `serde_json` bit for bit, so every
//! floating-point number in `trainer.json` is stored as a string `"f64:<shortest decimal>"`
//! (parsed back with the correctly rounded `str::parse`); a string that would look like one is
//! stored as `"str:<string>"`. Single-precision optimizer moments pass through `f64` exactly.
//!
//! ## Random state
//! There is no RNG stream to save: the epoch's sample order comes from `(seed, epoch)`, each
//! sample's augmentation from `(seed, epoch, index)` and each step's weighting RNG from
//! `(seed, step)`. The position (epoch, next batch, step) is therefore the whole random state.
//!
//! ## The best epoch
//! With [`crate::Trainer::keep_best`] the trainer also keeps a copy of the variables of the
//! epoch with the best validation main-task metric ([`BestEpoch`]) and, with checkpoints, writes
//! it to `DIR/best/` (`model.safetensors` and a `meta.json` whose `config` holds the metric and
//! the [`CheckpointConfig::model_config`]), so that a resumed run selects the same variables.
//!
//! ## Rooms
//! This module holds the format (the types and the public readers); `files` writes and checks
//! the folders, `checkpointer` is the trainer's policy (save, restore with fallback, drop newer
//! checkpoints, check that a checkpoint fits the run) and `best` the keep-the-best policy.
use crate::{Result, RunState, TrainConfig, TrainError};
use candle_nn::VarMap;
use files::{ckpt, decode, io, verify_sums};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tandem_tensor::checkpoint as tc;
use tandem_tensor::TaskMap;

mod best;
mod checkpointer;
mod files;

pub use best::BestEpoch;
pub(crate) use checkpointer::{Checkpointer, Parts, Resume, RunShape};

/// File name of the trainer state inside a checkpoint folder.
pub const TRAINER_FILE: &str = "trainer.json";
/// File name of the checksums inside a checkpoint folder.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// Where and how often the trainer writes checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointConfig {
    /// The folder holding the `step-*` checkpoint folders (created if needed).
    pub dir: PathBuf,
    /// Also write a checkpoint every this many optimizer steps (`None`: only after each epoch).
    pub every_steps: Option<u64>,
    /// How many of the newest checkpoints to keep (at least 1). Default 3.
    pub keep_last: usize,
    /// When resuming, fall back to an older checkpoint if the newest is invalid (otherwise the
    /// invalid checkpoint is an error). Default `false`.
    pub fallback_to_previous: bool,
    /// Stored as `meta.json`'s `config` (e.g. the model configuration), for tools that rebuild
    /// the model from a checkpoint. Default `null`.
    pub model_config: Value,
}

impl CheckpointConfig {
    /// Checkpoints in `dir` after every epoch, keeping the last 3, no fallback.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            every_steps: None,
            keep_last: 3,
            fallback_to_previous: false,
            model_config: Value::Null,
        }
    }

    /// Also checkpoints every `n` optimizer steps.
    pub fn every_steps(mut self, n: u64) -> Self {
        self.every_steps = Some(n);
        self
    }

    /// Keeps the newest `k` checkpoints.
    pub fn keep_last(mut self, k: usize) -> Self {
        self.keep_last = k;
        self
    }

    /// Falls back to older checkpoints when the newest is invalid.
    pub fn fallback_to_previous(mut self, yes: bool) -> Self {
        self.fallback_to_previous = yes;
        self
    }

    /// Stores `config` in every checkpoint's `meta.json`.
    pub fn model_config(mut self, config: Value) -> Self {
        self.model_config = config;
        self
    }

    /// Checks every value, naming the offending key.
    pub fn validate(&self) -> Result<()> {
        if self.keep_last == 0 {
            return Err(TrainError::config(
                "checkpoints.keep_last",
                "must be at least 1",
            ));
        }
        if self.every_steps == Some(0) {
            return Err(TrainError::config(
                "checkpoints.every_steps",
                "must be at least 1 (or unset: only after each epoch)",
            ));
        }
        Ok(())
    }
}

/// The trainer's state at a checkpoint, beside the model's variables.
///
/// In `trainer.json` the fields of [`RunState`] sit beside the others (one flat object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    /// Format version ([`TrainerState::FORMAT`]).
    pub format: u32,
    /// The run's configuration; resuming with a different one is an error.
    pub config: TrainConfig,
    /// Training samples of the run; resuming on a different number is an error.
    pub train_len: usize,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
    /// Ranks of a data-parallel run (1 without one, and then not written); resuming with
    /// another number is an error, since the ranks' shards and sums decide the bits.
    #[serde(default = "one_rank", skip_serializing_if = "is_one_rank")]
    pub ranks: usize,
    /// Whether every epoch has been trained.
    pub finished: bool,
    /// Where the loop stands: position, partial-epoch sums, active tasks, history.
    #[serde(flatten)]
    pub run: RunState,
    /// The optimizer's state ([`tandem_optim::Optimizer::state`]).
    pub optimizer: Value,
    /// The weighting's state ([`tandem_optim::Weighting::state`]).
    pub weighting: Value,
    /// Each auxiliary task's stopper state ([`tandem_optim::TaskStopper::state`]).
    pub stoppers: TaskMap<Value>,
}

fn one_rank() -> usize {
    1
}

fn is_one_rank(r: &usize) -> bool {
    *r == 1
}

impl TrainerState {
    /// Current format of `trainer.json`.
    pub const FORMAT: u32 = 1;

    /// Batches consumed since the start of the run; names the checkpoint folder.
    pub fn position(&self) -> u64 {
        (self.run.epoch as u64) * (self.batches_per_epoch as u64) + self.run.batch as u64
    }
}

/// The name of the checkpoint folder at `position`.
pub fn folder_name(position: u64) -> String {
    format!("step-{position:010}")
}

/// The complete checkpoint folders in `dir`, oldest first.
pub fn list_checkpoints(dir: &Path) -> Vec<PathBuf> {
    tc::list(dir)
}

/// The newest checkpoint folder in `dir`, valid or not.
pub fn latest_checkpoint(dir: &Path) -> Option<PathBuf> {
    tc::list(dir).pop()
}

/// Reads and checks the trainer state of the checkpoint folder `path` (checksums included),
/// without touching any model.
pub fn read_trainer_state(path: &Path) -> Result<TrainerState> {
    verify_sums(path, &[tc::META_FILE, TRAINER_FILE])?;
    let file = path.join(TRAINER_FILE);
    let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
    let raw: Value =
        serde_json::from_slice(&bytes).map_err(|e| ckpt(&file, format!("invalid JSON: {e}")))?;
    let state: TrainerState = serde_json::from_value(decode(raw).map_err(|r| ckpt(&file, r))?)
        .map_err(|e| ckpt(&file, format!("not a trainer state: {e}")))?;
    if state.format != TrainerState::FORMAT {
        return Err(ckpt(
            &file,
            format!(
                "format {} is not supported (expected {})",
                state.format,
                TrainerState::FORMAT
            ),
        ));
    }
    Ok(state)
}

/// Loads the checkpoint folder `path` into `vars` (built beforehand) and returns its trainer
/// state.
///
/// Everything is checked before any variable changes: the SHA-256 sums (a truncated or altered
/// file), the sidecar against the tensors, and every tensor's name and shape against `vars`;
/// errors list the offending files, names and shapes.
pub fn load_checkpoint(path: &Path, vars: &VarMap) -> Result<TrainerState> {
    let state = read_trainer_state(path)?;
    files::load_model(path, vars)?;
    Ok(state)
}
