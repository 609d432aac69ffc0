//! `tandem train`: one configured training run, written to an output folder.
//!
//! ```text
//! OUT/config.toml          the resolved configuration
//! OUT/checkpoint/          the best validation epoch: model.safetensors + meta.json (with the
//!                          config, as JSON)
//! OUT/history.json         per-epoch losses, metrics, task weights
//! OUT/metrics.json         best validation epoch and its metrics (and MTFL test metrics of
//!                          that epoch), the sharing kind, the network's trainable
//!                          `parameters` and, for a gated architecture, `gates`: per task the
//!                          mean weight of each expert over the validation set (a list per
//!                          level for PLE); with MTFL data also `evals`, the selected
//!                          model on each further evaluation set (`val_proxy`, the proxy
//!                          of the test split, `val_centred`, one per source folder)
//! OUT/loss.svg             training and validation loss per task
//! OUT/metrics.svg          validation metric per task
//! OUT/weights.svg          the weight each task's loss received
//! ```
use crate::data::{self, by_task, load_config, metrics_table, write_json, Source};
use crate::{plot, progress};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tandem::data::Dataset;
use tandem::run::RunData;
use tandem::tensor::checkpoint::{self, CheckpointMeta};
use tandem::tensor::Collective;
use tandem::RunConfig;

/// Arguments of `tandem train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run configuration (TOML; see configs/example.toml). Without it, the built-in defaults.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An MTFL data folder (training.txt, optional testing.txt, images), or a CSV table file
    /// (with `[data] kind = "table"` and `[[task]]` tables in the config). Without it, the run
    /// trains on SynthFaces generated as the config's data section says.
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// Output folder (created; existing files in it are replaced).
    #[arg(long, short, value_name = "DIR", default_value = "runs/train")]
    out: PathBuf,
    /// Continue the interrupted run whose output folder is DIR (from its latest valid
    /// training checkpoint in DIR/train-checkpoints).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Override the number of epochs (train.epochs).
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Override the seed (train.seed).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Override the device (train.device): cpu, cuda, cuda:N, metal. A GPU needs a build
    /// with `--features cuda` (or `metal`).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

/// The run's data: SynthFaces, a seeded train/validation split of an MTFL folder (with the
/// training crop as transform) and its test faces, or the splits of a CSV table.
fn run_data(cfg: &mut RunConfig, data: Option<&Path>) -> Result<RunData> {
    Ok(match data::source(cfg, data)? {
        Source::Synth => RunData::synthetic(cfg, cfg.train.seed)?,
        Source::Mtfl(dir) => {
            let mtfl = data::open_mtfl(&dir, cfg)?;
            RunData::mtfl(&mtfl, cfg, cfg.train.seed)?
        }
        Source::Table(path) => {
            let data = data::open_table(&path, cfg)?;
            // Kept in the configuration, so `tandem eval` finds the table again.
            cfg.data.path = Some(std::fs::canonicalize(&path).unwrap_or(path));
            data
        }
    })
}

/// `v` as a TOML integer (TOML integers are `i64`).
fn toml_int(v: u64, flag: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| anyhow::anyhow!("{flag} {v} is larger than {}", i64::MAX))
}

/// Runs `tandem train` (data-parallel over the ranks of `collective` when given: every rank
/// trains, rank 0 alone writes the output folder).
pub fn run(args: Args, collective: Option<Arc<dyn Collective>>) -> Result<()> {
    let writer = collective.as_ref().is_none_or(|c| c.rank() == 0);
    let mut train = toml::Table::new();
    if let Some(e) = args.epochs {
        train.insert(
            "epochs".into(),
            toml::Value::Integer(toml_int(e as u64, "--epochs")?),
        );
    }
    if let Some(s) = args.seed {
        train.insert("seed".into(), toml::Value::Integer(toml_int(s, "--seed")?));
    }
    if let Some(d) = &args.device {
        train.insert("device".into(), toml::Value::String(d.clone()));
    }
    let mut overrides = toml::Table::new();
    if !train.is_empty() {
        overrides.insert("train".into(), toml::Value::Table(train));
    }
    let mut cfg = load_config(args.config.as_deref(), overrides)?;
    let out = &args.out;
    if writer {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    }
    let data = run_data(&mut cfg, args.data.as_deref())?;
    if writer {
        std::fs::write(out.join("config.toml"), cfg.to_toml()?)
            .with_context(|| format!("cannot write to {}", out.display()))?;
    }
    if let Some(c) = &collective {
        tracing::info!(
            "data-parallel over {} ranks: {} samples of each batch of {} per rank",
            c.ranks(),
            cfg.train.batch_size.div_ceil(c.ranks()),
            cfg.train.batch_size
        );
    }
    tracing::info!(
        "training {} on {} samples, validating on {} ({} sharing, {} epochs, seed {})",
        cfg.task_names().join("+"),
        data.train.len(),
        data.val.len(),
        cfg.sharing.key(),
        cfg.train.epochs,
        cfg.train.seed
    );

    let tasks = cfg.task_set();
    let main = tasks
        .main()
        .map(|t| (t.name().to_string(), t.primary_metric().to_string()))
        .unwrap_or_default();
    let batch = cfg.train.batch_size;
    let steps_per_epoch = if data.train.len() >= batch {
        data.train.len() / batch
    } else {
        1
    };
    let bar = Arc::new(Mutex::new(progress::TrainProgress::new(
        cfg.train.epochs,
        steps_per_epoch,
        batch.min(data.train.len()),
        main,
    )));
    let cb = bar.clone();
    let device = cfg.train.device.open()?;
    // Training checkpoints (model, optimizer, weighting and stopper state) go to
    // `OUT/train-checkpoints`; `--resume DIR` continues from those of the run in DIR.
    let options = tandem::run::RunOptions {
        checkpoints: Some(
            tandem::train::CheckpointConfig::new(
                args.resume
                    .as_deref()
                    .unwrap_or(out)
                    .join("train-checkpoints"),
            )
            .keep_last(2)
            .fallback_to_previous(true),
        ),
        resume: args.resume.is_some(),
        on_step: writer.then(|| {
            let bar = bar.clone();
            tandem::run::StepHook::new(move |info| {
                if let Ok(mut b) = bar.lock() {
                    b.step(info);
                }
            })
        }),
        collective,
    };
    let output = tandem::run::train_with(&cfg, &data, &device, &options, move |r| {
        if !writer {
            return;
        }
        if let Ok(mut b) = cb.lock() {
            b.epoch(r);
        }
    });
    if let (true, Ok(b)) = (writer, bar.lock()) {
        b.finish();
    }
    let output = output?;
    if !writer {
        return Ok(());
    }
    let report = &output.report;

    let ckpt = out.join("checkpoint");
    // The variables are those of the best validation epoch (`report.best_epoch`, 0-based).
    let meta = CheckpointMeta::new(
        ((report.best_epoch + 1) * steps_per_epoch) as u64,
        report.best_epoch + 1,
        cfg.train.seed,
        serde_json::to_value(&cfg)?,
    );
    checkpoint::save(&ckpt, &output.vars, &meta)?;
    write_json(&out.join("history.json"), &report.history)?;

    let mut metrics = serde_json::json!({
        "main_task": report.main_task,
        "main_metric": report.main_metric,
        "best_epoch": report.best_epoch,
        "validation": by_task(&report.best)?,
        "last_epoch": report.history.epochs.last().map(|r| by_task(&r.val_metrics)).transpose()?,
    });
    metrics["sharing"] = cfg.sharing.key().into();
    metrics["parameters"] = output.parameters.into();
    if let Some(gates) = &output.gates {
        metrics["gates"] = gates_json(gates);
    }
    if let Some(test) = &output.test {
        metrics["test"] = by_task(test)?;
    }
    if !output.evals.is_empty() {
        let mut sets = serde_json::Map::new();
        for (name, m) in &output.evals {
            sets.insert(name.clone(), by_task(m)?);
        }
        metrics["evals"] = serde_json::Value::Object(sets);
    }
    write_json(&out.join("metrics.json"), &metrics)?;
    plot::write_all(out, &report.history).context("cannot write the plots")?;

    crate::output::outln!(
        "sharing {}: {} trainable parameters",
        cfg.sharing.key(),
        output.parameters
    );
    if let Some(gates) = &output.gates {
        crate::output::outln!("mean gate weights over the validation set (one row per level):");
        for (task, levels) in gates.iter() {
            for row in levels {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:.3}")).collect();
                crate::output::outln!("  {task:<12} [{}]", cells.join(", "));
            }
        }
    }
    crate::output::outln!("{}", report.table());
    if let (Some(test), Some(faces)) = (&output.test, &data.test) {
        crate::output::outln!(
            "test split ({} faces, scored once with the best validation epoch):\n\n{}",
            faces.len(),
            metrics_table(test)
        );
    }
    crate::output::outln!(
        "wrote {} (the best validation epoch), history.json, metrics.json and plots to {}",
        ckpt.display(),
        out.display()
    );
    Ok(())
}

/// `{"TASK": [w_1, …, w_E]}`, or per level `{"TASK": [[…], …]}` when the architecture gates
/// at several levels (PLE).
fn gates_json(gates: &tandem::train::GateMeans) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (task, levels) in gates.iter() {
        let value = match levels.as_slice() {
            [one] => serde_json::json!(one),
            many => serde_json::json!(many),
        };
        map.insert(task.to_string(), value);
    }
    serde_json::Value::Object(map)
}
