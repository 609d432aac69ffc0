//! The files of a trainer checkpoint: writing a folder atomically, checksums, the exact
//! encoding of floats in `trainer.json`, and loading tensors after checking them.
use super::{folder_name, TrainerState, SUMS_FILE, TRAINER_FILE};
use crate::{CheckpointConfig, Result, TrainError};
use candle_core::Var;
use candle_nn::VarMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tandem_tensor::checkpoint::{self as tc, CheckpointMeta};
use tandem_tensor::sorted_vars;

/// Writes a complete checkpoint for `state` and `vars` under `cfg.dir` and prunes old ones;
/// returns the new folder.
pub(crate) fn write(
    cfg: &CheckpointConfig,
    vars: &VarMap,
    state: &TrainerState,
) -> Result<PathBuf> {
    let dir = &cfg.dir;
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = folder_name(state.position());
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    // `state.run.epoch` is the epoch in progress, which is also the number of epochs completed.
    let meta = CheckpointMeta::new(
        state.run.step,
        state.run.epoch,
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
pub(crate) fn verify_sums(path: &Path, files: &[&str]) -> Result<()> {
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
pub(crate) fn decode(v: Value) -> std::result::Result<Value, String> {
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

pub(crate) fn io(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

pub(crate) fn ckpt(path: &Path, reason: impl Into<String>) -> TrainError {
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
