//! Data-parallel training over ranks in threads ([`ThreadGroup`]) against one process with the
//! same global batch: every weighting of the catalogue, in both modes, gives the same model up
//! to the rounding of sums taken in another order, and two data-parallel runs give the same
//! bits.
#![allow(clippy::unwrap_used)]
mod common;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use std::sync::Arc;
use tandem_optim::WeightingConfig;
use tandem_tensor::{Collective, ThreadGroup};
use tandem_train::{Report, TrainConfig, Trainer};

fn config() -> TrainConfig {
    let mut cfg = TrainConfig {
        epochs: 2,
        // 36 training samples: two batches of 16 and one of 4.
        batch_size: 16,
        eval_batch_size: 7,
        seed: 3,
        ..Default::default()
    };
    cfg.optimizer.set_lr(3e-3);
    cfg
}

/// Every fourth sample lacks its `half` label, so the ranks' shards label different numbers.
fn missing(i: usize) -> bool {
    i % 4 == 1
}

type Outcome = (Report, Vec<(String, Vec<f32>)>);

/// One rank's run (`collective: None` for one process).
fn run(form: &serde_json::Value, collective: Option<Arc<dyn Collective>>) -> Outcome {
    let wc: WeightingConfig = serde_json::from_value(form.clone()).unwrap();
    let s = common::setup(5, 48, missing);
    let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
    let weighting = wc.build(&s.tasks, vb).unwrap();
    let mut trainer = Trainer::new(config()).weighting_boxed(weighting);
    if let Some(c) = collective {
        trainer = trainer.data_parallel(c);
    }
    let report = trainer
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap_or_else(|e| panic!("{form}: {e}"));
    (report, common::snapshot(&s.vars, ""))
}

/// Every rank's outcome of a run over `ranks` threads.
fn run_parallel(form: &serde_json::Value, ranks: usize) -> Vec<Outcome> {
    std::thread::scope(|scope| {
        let jobs: Vec<_> = ThreadGroup::new(ranks)
            .into_iter()
            .map(|h| {
                let c: Arc<dyn Collective> = Arc::new(h);
                scope.spawn(move || run(form, Some(c)))
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    })
}

/// The largest difference between two snapshots, relative to the larger magnitude (at
/// least 1e-2).
fn max_rel_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        for (x, y) in va.iter().zip(vb) {
            let d = f64::from((x - y).abs()) / f64::from(x.abs().max(y.abs()).max(1e-2));
            if d > worst.0 {
                worst = (d, na.clone());
            }
        }
    }
    worst
}

fn val_nme(r: &Report) -> f64 {
    r.history
        .epochs
        .last()
        .and_then(|e| e.val_metric("landmarks", "nme"))
        .unwrap()
}

/// Two ranks reproduce one process for every weighting of the catalogue (both modes): the
/// validation NME within 1e-3 relative, every variable within 1e-3 relative, the weights the
/// history logs within 1e-3; the ranks end with identical variables.
#[test]
fn two_ranks_match_one_process_for_every_weighting() {
    let mut failures = Vec::new();
    for kind in WeightingConfig::kinds() {
        let mut forms = vec![serde_json::json!({ "kind": kind })];
        let rep = serde_json::json!({ "kind": kind, "on": "representation" });
        if serde_json::from_value::<WeightingConfig>(rep.clone()).is_ok() {
            forms.push(rep);
        }
        for form in forms {
            let (one, one_vars) = run(&form, None);
            let two = run_parallel(&form, 2);
            if two[0].1 != two[1].1 || two[0].0.history.epochs != two[1].0.history.epochs {
                failures.push(format!("{form}: the ranks differ"));
            }
            let (a, b) = (val_nme(&one), val_nme(&two[0].0));
            let (d, var) = max_rel_diff(&one_vars, &two[0].1);
            if (a - b).abs() > 1e-3 * a.abs() || d > 1e-3 {
                failures.push(format!(
                    "{form}: nme {a} vs {b}, variable {var} off by {d:.2e}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same seed and number of ranks give the same bits; three ranks work too.
#[test]
fn data_parallel_runs_are_deterministic() {
    let form = serde_json::json!({ "kind": "mgda" });
    let a = run_parallel(&form, 3);
    let b = run_parallel(&form, 3);
    assert_eq!(a[0].1, b[0].1);
    assert_eq!(a[2].1, b[2].1);
    assert_eq!(a[0].0.history.epochs, b[0].0.history.epochs);
    let (one, _) = run(&form, None);
    let (x, y) = (val_nme(&one), val_nme(&a[0].0));
    assert!((x - y).abs() <= 1e-3 * x, "{x} vs {y}");
}

/// A checkpoint of a two-rank run resumes with two ranks, and is refused, naming the ranks,
/// by one process.
#[test]
fn resume_needs_the_same_number_of_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt");
    let fit = |collective: Option<Arc<dyn Collective>>, resume: bool| {
        let s = common::setup(5, 48, missing);
        let mut trainer = Trainer::new(config())
            .checkpoints(tandem_train::CheckpointConfig::new(&path))
            .resume(resume);
        if let Some(c) = collective {
            trainer = trainer.data_parallel(c);
        }
        trainer
            .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
            .map(|r| r.history.epochs)
            .map_err(|e| e.to_string())
    };
    let two = |resume: bool| {
        std::thread::scope(|scope| {
            let jobs: Vec<_> = ThreadGroup::new(2)
                .into_iter()
                .map(|h| {
                    let c: Arc<dyn Collective> = Arc::new(h);
                    scope.spawn(move || fit(Some(c), resume))
                })
                .collect();
            jobs.into_iter()
                .map(|j| j.join().unwrap())
                .collect::<Vec<_>>()
        })
    };
    let first = two(false);
    let again = two(true);
    assert_eq!(first[0].as_ref().unwrap(), again[0].as_ref().unwrap());
    let err = fit(None, true).unwrap_err();
    assert!(
        err.contains("2 rank(s)") && err.contains("mpirun -np 2"),
        "{err}"
    );
}
