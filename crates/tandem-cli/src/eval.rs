//! `tandem eval`: per-task loss and metrics of a checkpoint.
use crate::data::{self, by_task, Source};
use anyhow::Result;
use std::path::PathBuf;
use tandem::data::Dataset;
use tandem::run::RunData;
use tandem::train::Evaluation;

/// Arguments of `tandem eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint folder written by `tandem train` (OUT/checkpoint). Give it several times to
    /// score a seed ensemble: the checkpoints' predictions are averaged (same tasks and input
    /// size; the first one's configuration holds).
    #[arg(long, value_name = "DIR", required = true)]
    checkpoint: Vec<PathBuf>,
    #[command(flatten)]
    test_time: crate::predict::TestTimeArgs,
    /// The device to run on: cpu (default), cuda, cuda:N, metal (a GPU needs a build with
    /// `--features cuda` or `metal`).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: tandem::tensor::DeviceSpec,
    /// An MTFL data folder. Its test faces (testing.txt) are scored when present, else every
    /// face of training.txt (centred on its landmarks, as validation faces are). A CSV table
    /// (for a table checkpoint): its test rows when its split column has some, else the
    /// validation rows of the training split. Without --data, the checkpoint's own validation
    /// split is scored (SynthFaces, or the table it was trained on).
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// With an MTFL folder: score the checkpoint's own validation split of its training.txt
    /// (the same seed and fraction as training) and its evaluation sets — `val` (test-like),
    /// `val_centred`, one per source folder and `val_proxy`, the proxy of the test split —
    /// instead of testing.txt.
    #[arg(long)]
    validation: bool,
    /// Print the metrics as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A per-task table of an evaluation: loss and every metric.
pub fn table(eval: &Evaluation) -> String {
    let mut s = String::from("| task | loss | metric | value |\n|---|---|---|---|\n");
    for (task, metrics) in eval.metrics.iter() {
        let loss = eval.losses.get(task).copied().unwrap_or(f64::NAN);
        for (k, v) in metrics {
            s.push_str(&format!("| {task} | {loss:.4} | {k} | {v:.2} |\n"));
        }
    }
    s
}

/// An evaluation as JSON: `{"losses": {TASK: ..}, "metrics": {TASK: {..}}}`.
fn json(eval: &Evaluation) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "losses": by_task(&eval.losses)?,
        "metrics": by_task(&eval.metrics)?,
    }))
}

/// Runs `tandem eval`.
pub fn run(args: Args) -> Result<()> {
    let device = args.device.open()?;
    let predictor = crate::predict::load(&args.checkpoint, &args.test_time, &device)?;
    let cfg = predictor.config().clone();
    let (what, eval) = match data::source(&cfg, args.data.as_deref())? {
        Source::Synth => {
            let data = RunData::synthetic(&cfg, cfg.train.seed)?;
            let what = format!("{} SynthFaces validation faces", data.val.len());
            (what, predictor.evaluate(data.val.as_ref(), None)?)
        }
        Source::Table(path) => {
            // The same split as training (same seed, same split column).
            let data = data::open_table(&path, &cfg)?;
            match &data.test {
                Some(test) => (
                    format!("{} test rows of {}", test.len(), path.display()),
                    predictor.evaluate(test.as_ref(), None)?,
                ),
                None => {
                    // a seeded split: members of other seeds trained on these rows
                    predictor.check_one_split()?;
                    (
                        format!("{} validation rows of {}", data.val.len(), path.display()),
                        predictor.evaluate(data.val.as_ref(), None)?,
                    )
                }
            }
        }
        Source::Mtfl(dir) if args.validation => {
            predictor.check_one_split()?;
            let mtfl = data::open_mtfl(&dir, &cfg)?;
            let data = RunData::mtfl(&mtfl, &cfg, cfg.train.seed)?;
            let mut sets = vec![(
                "val".to_string(),
                predictor.evaluate(data.val.as_ref(), data.transform.clone())?,
            )];
            for set in &data.evals {
                sets.push((
                    set.name.clone(),
                    predictor.evaluate(set.data.as_ref(), set.transform.clone())?,
                ));
            }
            let what = format!(
                "the validation split ({} faces) of {}/training.txt and its evaluation sets",
                data.val.len(),
                dir.display()
            );
            if args.json {
                let mut object = serde_json::Map::new();
                for (name, eval) in &sets {
                    object.insert(name.clone(), json(eval)?);
                }
                let v = serde_json::json!({ "data": what, "sets": object });
                crate::output::outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let mut text = format!("{what}\n");
                for (name, eval) in &sets {
                    text.push_str(&format!("\n{name}\n\n{}", table(eval)));
                }
                crate::output::outln!("{text}");
            }
            return Ok(());
        }
        Source::Mtfl(dir) => {
            let dir = &dir;
            let mtfl = data::open_mtfl(dir, &cfg)?;
            match mtfl.test() {
                // Test faces are already at the model size: no transform.
                Some(test) => (
                    format!("{} test faces of {}", test.len(), dir.display()),
                    predictor.evaluate(test.as_ref(), None)?,
                ),
                None => {
                    let all = mtfl.train();
                    (
                        format!("{} faces of {}/training.txt", all.len(), dir.display()),
                        predictor.evaluate(all.as_ref(), Some(mtfl.train_transform()))?,
                    )
                }
            }
        }
    };
    if args.json {
        let mut v = json(&eval)?;
        v["data"] = serde_json::Value::String(what);
        crate::output::outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        crate::output::outln!("{what}\n\n{}", table(&eval));
    }
    Ok(())
}
