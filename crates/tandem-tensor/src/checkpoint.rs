//! Checkpoints: a `VarMap` as safetensors plus a JSON sidecar.
//!
//! A checkpoint folder holds `model.safetensors` (every variable under its `VarBuilder` path,
//! e.g. `trunk.conv1.weight`, `heads.landmarks.weight`) and `meta.json` ([`CheckpointMeta`]:
//! step, epoch, seed, the resolved model config and the list of tensor names and shapes).
//! Both files are written to a temporary name, fsynced and renamed, so a crash leaves either
//! the old checkpoint or the new one, never half of one.
//!
//! Loading follows candle's rule: build the model first (which creates its variables), then
//! [`load`] fills them. Missing names, extra names and shape mismatches are all reported at once.
use crate::{sorted_vars, Result, TensorError};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the tensors inside a checkpoint folder.
pub const MODEL_FILE: &str = "model.safetensors";
/// File name of the sidecar inside a checkpoint folder.
pub const META_FILE: &str = "meta.json";

/// What a checkpoint says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Format version of the checkpoint folder.
    pub format: u32,
    /// Optimizer steps taken.
    pub step: u64,
    /// Epochs completed.
    pub epoch: usize,
    /// The seed the run started from.
    pub seed: u64,
    /// The resolved model (and task) configuration, enough to rebuild the model.
    pub config: serde_json::Value,
    /// Every stored tensor's name and shape, sorted by name.
    pub tensors: BTreeMap<String, Vec<usize>>,
}

impl CheckpointMeta {
    /// Current checkpoint format.
    pub const FORMAT: u32 = 1;

    /// A sidecar for the given step, epoch, seed and config; `tensors` is filled by [`save`].
    pub fn new(step: u64, epoch: usize, seed: u64, config: serde_json::Value) -> Self {
        Self {
            format: Self::FORMAT,
            step,
            epoch,
            seed,
            config,
            tensors: BTreeMap::new(),
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename,
/// then fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TensorError::io(path, e)
    })
}

/// Saves every variable of `vars` and `meta` into the folder `dir` (created if needed).
pub fn save(dir: &Path, vars: &VarMap, meta: &CheckpointMeta) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TensorError::io(dir, e))?;
    let vars = sorted_vars(vars);
    let mut meta = meta.clone();
    meta.tensors = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.dims().to_vec()))
        .collect();
    let tensors: Vec<(String, Tensor)> = vars
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
        .map_err(|e| TensorError::checkpoint(dir, format!("serialising tensors: {e}")))?;
    write_atomic(&dir.join(MODEL_FILE), &bytes)?;
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| TensorError::checkpoint(dir, format!("serialising meta.json: {e}")))?;
    write_atomic(&dir.join(META_FILE), &json)
}

/// Reads only the sidecar of the checkpoint in `dir`.
pub fn read_meta(dir: &Path) -> Result<CheckpointMeta> {
    let path = dir.join(META_FILE);
    let bytes = std::fs::read(&path).map_err(|e| TensorError::io(&path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| TensorError::checkpoint(&path, format!("invalid meta.json: {e}")))
}

/// Loads the checkpoint in `dir` into the already built `vars` and returns its sidecar.
///
/// Fails, changing nothing, when the file is not valid safetensors, when the sidecar's tensor
/// list disagrees with the file, or when names or shapes differ from the model's variables;
/// the error lists every offending name with both shapes.
pub fn load(dir: &Path, vars: &VarMap) -> Result<CheckpointMeta> {
    let meta = read_meta(dir)?;
    let path = dir.join(MODEL_FILE);
    let bytes = std::fs::read(&path).map_err(|e| TensorError::io(&path, e))?;
    let stored = load_tensors(&path, &bytes)?;
    let stored_shapes: BTreeMap<String, Vec<usize>> = stored
        .iter()
        .map(|(n, t)| (n.clone(), t.dims().to_vec()))
        .collect();
    if stored_shapes != meta.tensors {
        return Err(TensorError::checkpoint(
            dir,
            format!(
                "meta.json does not match model.safetensors: {}",
                describe_diff(&meta.tensors, &stored_shapes, "meta.json", "file")
            ),
        ));
    }
    let model: BTreeMap<String, Vec<usize>> = sorted_vars(vars)
        .into_iter()
        .map(|(n, v)| (n, v.dims().to_vec()))
        .collect();
    if model != stored_shapes {
        return Err(TensorError::checkpoint(
            dir,
            format!(
                "checkpoint does not fit the model: {}",
                describe_diff(&model, &stored_shapes, "model", "checkpoint")
            ),
        ));
    }
    for (name, var) in sorted_vars(vars) {
        if let Some(t) = stored.get(&name) {
            let t = t.to_dtype(var.dtype())?.to_device(var.device())?;
            var.set(&t)?;
        }
    }
    Ok(meta)
}

fn load_tensors(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| TensorError::checkpoint(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let t = candle_core::safetensors::Load::load(&view, &Device::Cpu)
            .map_err(|e| TensorError::checkpoint(path, format!("tensor {name}: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

fn describe_diff(
    want: &BTreeMap<String, Vec<usize>>,
    got: &BTreeMap<String, Vec<usize>>,
    want_name: &str,
    got_name: &str,
) -> String {
    let mut parts = Vec::new();
    for (n, s) in want {
        match got.get(n) {
            None => parts.push(format!("{n} {s:?} missing from {got_name}")),
            Some(g) if g != s => {
                parts.push(format!("{n}: {want_name} has {s:?}, {got_name} has {g:?}"))
            }
            _ => {}
        }
    }
    for (n, s) in got {
        if !want.contains_key(n) {
            parts.push(format!("{n} {s:?} in {got_name} but not in {want_name}"));
        }
    }
    parts.join("; ")
}

/// The checkpoint folders `dir/step-*` sorted by step, oldest first.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse::<u64>().ok()?;
            Some((step, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded_var_builder;
    use candle_core::DType;
    use candle_nn::Module;

    fn model(vars: &VarMap, seed: u64, out: usize) -> candle_core::Result<candle_nn::Linear> {
        candle_nn::linear(
            3,
            out,
            seeded_var_builder(vars, seed, DType::F32, &Device::Cpu).pp("fc"),
        )
    }

    #[test]
    fn round_trip_gives_identical_outputs() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| TensorError::io("tmp", e))?;
        let a = VarMap::new();
        let ma = model(&a, 1, 2)?;
        let cfg = serde_json::json!({"out": 2});
        save(dir.path(), &a, &CheckpointMeta::new(10, 2, 1, cfg.clone()))?;
        let b = VarMap::new();
        let mb = model(&b, 99, 2)?;
        let x = Tensor::new(&[[0.5f32, -1.0, 2.0]], &Device::Cpu)?;
        assert_ne!(
            ma.forward(&x)?.to_vec2::<f32>()?,
            mb.forward(&x)?.to_vec2::<f32>()?
        );
        let meta = load(dir.path(), &b)?;
        assert_eq!(
            (meta.step, meta.epoch, meta.seed, meta.config),
            (10, 2, 1, cfg)
        );
        assert_eq!(
            ma.forward(&x)?.to_vec2::<f32>()?,
            mb.forward(&x)?.to_vec2::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn shape_mismatch_and_corruption_are_named() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| TensorError::io("tmp", e))?;
        let a = VarMap::new();
        model(&a, 1, 2)?;
        save(
            dir.path(),
            &a,
            &CheckpointMeta::new(0, 0, 1, serde_json::Value::Null),
        )?;
        let b = VarMap::new();
        model(&b, 1, 4)?;
        let e = load(dir.path(), &b)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("fc.weight: model has [4, 3], checkpoint has [2, 3]"),
            "{e}"
        );
        let bytes =
            std::fs::read(dir.path().join(MODEL_FILE)).map_err(|e| TensorError::io("m", e))?;
        std::fs::write(dir.path().join(MODEL_FILE), &bytes[..bytes.len() / 2])
            .map_err(|e| TensorError::io("m", e))?;
        let e = load(dir.path(), &a)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not a valid safetensors file"), "{e}");
        Ok(())
    }
}
