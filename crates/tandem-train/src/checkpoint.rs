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
use crate::{History, OptimizerState, Result, TrainConfig, TrainError};
use candle_core::Var;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tandem_tensor::checkpoint::{self as tc, CheckpointMeta};
use tandem_tensor::{sorted_vars, TaskMap};

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
    /// The epoch in progress (`epochs` when the run has finished).
    pub epoch: usize,
    /// The next batch of `epoch` to train on (0 at an epoch boundary).
    pub batch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Whether every epoch has been trained.
    pub finished: bool,
    /// Learning rate of the last step of the epoch in progress.
    pub lr: f64,
    /// Partial epoch: per-task sums of training losses and their counts.
    pub loss_sum: TaskMap<(f64, f64)>,
    /// Partial epoch: per-task sums of loss weights and their counts.
    pub weight_sum: TaskMap<(f64, f64)>,
    /// Partial epoch: batches skipped for non-finite values.
    pub skipped: u64,
    /// Tasks still trained.
    pub active: Vec<String>,
    /// The optimizer's state.
    pub optimizer: OptimizerState,
    /// The weighting's state ([`crate::Weighting::state`]).
    pub weighting: Value,
    /// Each auxiliary task's stopper state ([`crate::TaskStopper::state`]).
    pub stoppers: TaskMap<Value>,
    /// Every finished epoch.
    pub history: History,
}

impl TrainerState {
    /// Current format of `trainer.json`.
    pub const FORMAT: u32 = 1;

    /// Batches consumed since the start of the run; names the checkpoint folder.
    pub fn position(&self) -> u64 {
        (self.epoch as u64) * (self.batches_per_epoch as u64) + self.batch as u64
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

/// Writes a complete checkpoint for `state` and `vars` under `cfg.dir` and prunes old ones;
/// returns the new folder.
pub(crate) fn save(cfg: &CheckpointConfig, vars: &VarMap, state: &TrainerState) -> Result<PathBuf> {
    let dir = &cfg.dir;
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = folder_name(state.position());
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    // `state.epoch` is the epoch in progress, which is also the number of epochs completed.
    let meta = CheckpointMeta::new(
        state.step,
        state.epoch,
        state.config.seed,
        cfg.model_config.clone(),
    );
    tc::save(&tmp, vars, &meta)?;
    let value = serde_json::to_value(state)
        .map_err(|e| ckpt(&tmp, format!("serialising the trainer state: {e}")))?;
    let json = serde_json::to_vec_pretty(&encode(value))
        .map_err(|e| ckpt(&tmp, format!("serialising the trainer state: {e}")))?;
    tc::write_atomic(&tmp.join(TRAINER_FILE), &json)?;
    let mut sums = String::new();
    for f in [tc::MODEL_FILE, tc::META_FILE, TRAINER_FILE] {
        sums.push_str(&format!("{}  {f}\n", sha256_file(&tmp.join(f))?));
    }
    tc::write_atomic(&tmp.join(SUMS_FILE), sums.as_bytes())?;
    let target = dir.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|e| io(&target, e))?;
    }
    std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    prune(dir, cfg.keep_last)?;
    Ok(target)
}

/// Deletes all but the newest `keep` checkpoints, and leftovers of interrupted writes by other
/// processes.
fn prune(dir: &Path, keep: usize) -> Result<()> {
    let all = tc::list(dir);
    let n = all.len().saturating_sub(keep.max(1));
    for old in &all[..n] {
        std::fs::remove_dir_all(old).map_err(|e| io(old, e))?;
    }
    let own = format!(".partial-{}", std::process::id());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".step-") && name.contains(".partial-") && !name.ends_with(&own) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Loads the checkpoint folder `path` into `vars` (built beforehand) and returns its trainer
/// state.
///
/// Everything is checked before any variable changes: the SHA-256 sums (a truncated or altered
/// file), the sidecar against the tensors, and every tensor's name and shape against `vars`;
/// errors list the offending files, names and shapes.
pub fn load_checkpoint(path: &Path, vars: &VarMap) -> Result<TrainerState> {
    let state = read_trainer_state(path)?;
    load_model(path, vars)?;
    Ok(state)
}

/// Loads the tensors of the checkpoint folder `path` into `vars`, checking them first.
pub(crate) fn load_model(path: &Path, vars: &VarMap) -> Result<CheckpointMeta> {
    if let Err(sum_err) = verify_sums(path, &[tc::MODEL_FILE]) {
        // Say what is wrong with the tensors if that can be told (names, shapes, a truncated
        // header), using a scratch copy of the model's variables.
        let scratch = shapes_only(vars)?;
        tc::load(path, &scratch)?;
        return Err(sum_err);
    }
    Ok(tc::load(path, vars)?)
}

/// A VarMap with zero variables of the same names and shapes as `vars`.
fn shapes_only(vars: &VarMap) -> Result<VarMap> {
    let scratch = VarMap::new();
    {
        let mut data = scratch
            .data()
            .lock()
            .map_err(|_| TrainError::config("vars", "variable map lock poisoned"))?;
        for (name, var) in sorted_vars(vars) {
            let v = Var::zeros(var.shape(), var.dtype(), &candle_core::Device::Cpu)?;
            data.insert(name, v);
        }
    }
    Ok(scratch)
}

/// Checks the named files of `path` against its `SHA256SUMS`.
fn verify_sums(path: &Path, files: &[&str]) -> Result<()> {
    let sums_path = path.join(SUMS_FILE);
    let text = std::fs::read_to_string(&sums_path).map_err(|e| io(&sums_path, e))?;
    let mut bad = Vec::new();
    for f in files {
        let want = text.lines().find_map(|l| {
            let (hash, name) = l.split_once("  ")?;
            (name == *f).then(|| hash.to_string())
        });
        let Some(want) = want else {
            bad.push(format!("{f} is not listed in {SUMS_FILE}"));
            continue;
        };
        let got = sha256_file(&path.join(f))?;
        if got != want {
            let len = std::fs::metadata(path.join(f))
                .map(|m| m.len())
                .unwrap_or(0);
            bad.push(format!(
                "{f} ({len} bytes) fails its SHA-256 check (truncated or altered)"
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ckpt(path, bad.join("; ")))
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Replaces every float with an exact string (see the module documentation).
fn encode(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(x) => Value::String(format!("f64:{x:?}")),
            None => Value::Number(n),
        },
        Value::String(s) if s.starts_with("f64:") || s.starts_with("str:") => {
            Value::String(format!("str:{s}"))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(encode).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, encode(v))).collect()),
        other => other,
    }
}

/// Inverse of [`encode`].
fn decode(v: Value) -> std::result::Result<Value, String> {
    Ok(match v {
        Value::String(s) => {
            if let Some(x) = s.strip_prefix("f64:") {
                let f: f64 = x
                    .parse()
                    .map_err(|_| format!("{s:?} is not a floating-point number"))?;
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{s:?} is not finite"))?
            } else if let Some(x) = s.strip_prefix("str:") {
                Value::String(x.to_string())
            } else {
                Value::String(s)
            }
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(decode)
                .collect::<std::result::Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| decode(v).map(|v| (k, v)))
                .collect::<std::result::Result<_, _>>()?,
        ),
        other => other,
    })
}

fn io(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn ckpt(path: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_survive_exactly() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let xs = [
            0.1f64,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            1e300,
            -2.718_281_828_459_1,
            0.123_456_789_012_345_68,
            f64::from(0.1f32),
        ];
        let v = serde_json::json!({"xs": xs, "s": "f64:1.0", "t": "str:x", "n": 3});
        let text = serde_json::to_string(&encode(v.clone()))?;
        let back = decode(serde_json::from_str(&text)?)?;
        assert_eq!(back, v);
        let ys: Vec<f64> = serde_json::from_value(back["xs"].clone())?;
        for (a, b) in xs.iter().zip(&ys) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        Ok(())
    }
}
