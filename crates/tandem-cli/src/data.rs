//! What `train` and `eval` share: reading the configuration, finding the data a run reads
//! (SynthFaces, an MTFL folder or a CSV table), and writing metrics as JSON or tables.
use crate::progress;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tandem::config::DataKind;
use tandem::data::Mtfl;
use tandem::heads::MetricValues;
use tandem::run::RunData;
use tandem::tensor::TaskMap;
use tandem::RunConfig;

/// Reads the run configuration (the built-in defaults without a file) with `overrides` from
/// the command line laid over it (`{ train = { epochs = 3 } }`), and validates the result once.
pub fn load_config(path: Option<&Path>, overrides: toml::Table) -> Result<RunConfig> {
    match path {
        None => Ok(RunConfig::from_toml_with("", "the defaults", overrides)?),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the config file {}", p.display()))?;
            Ok(RunConfig::from_toml_with(
                &text,
                &p.display().to_string(),
                overrides,
            )?)
        }
    }
}

/// Where a run's samples come from.
pub enum Source {
    /// Built-in synthetic faces, as the configuration's `[data.synth]` says.
    Synth,
    /// An MTFL folder.
    Mtfl(PathBuf),
    /// A CSV table.
    Table(PathBuf),
}

/// The source of `--data` (or its absence) for `cfg`: a folder is MTFL (whatever
/// `data.kind` says, as `--data DIR` always meant), a file a CSV table, which needs
/// `data.kind = "table"`; without `--data`, a table run reads `data.path`.
pub fn source(cfg: &RunConfig, data: Option<&Path>) -> Result<Source> {
    Ok(match data {
        None => match cfg.data.kind {
            DataKind::Synth => Source::Synth,
            DataKind::Mtfl => bail!("data.kind = \"mtfl\" needs --data DIR (an MTFL folder)"),
            DataKind::Table => match &cfg.data.path {
                Some(p) => Source::Table(p.clone()),
                None => bail!("data.kind = \"table\" needs --data FILE.csv"),
            },
        },
        Some(p) if p.is_dir() => {
            if cfg.data.kind == DataKind::Table {
                bail!(
                    "--data {} is a folder, but data.kind = \"table\" reads a CSV file",
                    p.display()
                );
            }
            Source::Mtfl(p.to_path_buf())
        }
        Some(p) if !p.exists() => bail!("--data {}: no such file or folder", p.display()),
        Some(p) => {
            if cfg.data.kind != DataKind::Table {
                bail!(
                    "--data {} is a file: a CSV table needs `[data] kind = \"table\"` and \
                     `[[task]]` tables in the configuration (an MTFL data set is given as its \
                     folder)",
                    p.display()
                );
            }
            Source::Table(p.to_path_buf())
        }
    })
}

/// Opens an MTFL folder at the model's input size, with a spinner.
pub fn open_mtfl(dir: &Path, cfg: &RunConfig) -> Result<Mtfl> {
    let spin = progress::spinner(&format!("loading MTFL faces from {}", dir.display()));
    let mtfl = RunData::open_mtfl(dir, cfg.input_size().unwrap_or(40))
        .with_context(|| format!("cannot load the MTFL data folder {}", dir.display()))?;
    spin.finish_and_clear();
    tracing::info!(
        "loaded {} training faces{} from {} (cache: {:?})",
        mtfl.train_split().records.len(),
        mtfl.test_split()
            .map(|t| format!(" and {} test faces", t.records.len()))
            .unwrap_or_default(),
        dir.display(),
        mtfl.train_split().cache
    );
    Ok(mtfl)
}

/// Reads a CSV table as `cfg` describes it, with a spinner.
pub fn open_table(path: &Path, cfg: &RunConfig) -> Result<RunData> {
    let spin = progress::spinner(&format!("reading the table {}", path.display()));
    let data = RunData::table(cfg, path, cfg.train.seed)?;
    spin.finish_and_clear();
    tracing::info!(
        "read {} training, {} validation{} rows from {}",
        data.train.len(),
        data.val.len(),
        data.test
            .as_ref()
            .map(|t| format!(" and {} test", t.len()))
            .unwrap_or_default(),
        path.display()
    );
    Ok(data)
}

/// A task map as a JSON object keyed by task name.
pub fn by_task<T: serde::Serialize>(map: &TaskMap<T>) -> Result<serde_json::Value> {
    let mut object = serde_json::Map::new();
    for (task, v) in map.iter() {
        object.insert(task.to_string(), serde_json::to_value(v)?);
    }
    Ok(serde_json::Value::Object(object))
}

/// Writes `value` as pretty JSON.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A per-task table of metrics.
pub fn metrics_table(metrics: &TaskMap<MetricValues>) -> String {
    let mut s = String::from("| task | metric | value |\n|---|---|---|\n");
    for (task, m) in metrics.iter() {
        for (k, v) in m {
            s.push_str(&format!("| {task} | {k} | {v:.2} |\n"));
        }
    }
    s
}
