//! Checkpoints and resume: a run resumed from any of its checkpoints ends bit-identical to the
//! uninterrupted run; corrupt checkpoints are named errors (or skipped when fallback is on);
//! non-finite values stop the run naming the task, or are skipped and counted.
#![allow(clippy::unwrap_used)]
mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;
use tandem_optim::{Equal, StepContext, StopperConfig, Update, Weighting, WeightingConfig};
use tandem_tensor::TaskMap;
use tandem_train::checkpoint::{list_checkpoints, read_trainer_state};
use tandem_train::{CheckpointConfig, NonFinitePolicy, Report, TrainConfig, TrainError, Trainer};

fn config() -> TrainConfig {
    let mut cfg = TrainConfig {
        epochs: 4,
        batch_size: 16,
        seed: 5,
        ..Default::default()
    };
    cfg.optimizer.set_lr(3e-3);
    cfg
}

fn missing(i: usize) -> bool {
    i.is_multiple_of(3)
}

/// Trains the tiny net with `weighting`, optionally checkpointing into `dir` and resuming.
fn run(
    weighting: &str,
    cfg: TrainConfig,
    dir: Option<&Path>,
    resume: bool,
) -> Result<Report, TrainError> {
    let s = common::setup(5, 96, missing);
    let wc: WeightingConfig = serde_json::from_str(weighting).unwrap();
    let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
    let mut t = Trainer::new(cfg)
        .weighting_boxed(wc.build(&s.tasks, vb).unwrap())
        .stopper(StopperConfig::Patience {
            patience: 1,
            min_delta: 0.0,
        });
    if let Some(d) = dir {
        t = t
            .checkpoints(CheckpointConfig::new(d).every_steps(3).keep_last(100))
            .resume(resume);
    }
    t.fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
}

fn json(r: &Report) -> String {
    serde_json::to_string(r).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn resuming_from_any_checkpoint_is_bit_identical() {
    for w in [
        r#"{"kind":"dwa"}"#,
        r#"{"kind":"gradnorm"}"#,
        r#"{"kind":"uncertainty"}"#,
    ] {
        let plain = run(w, config(), None, false).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let full = tmp.path().join("full");
        let reference = run(w, config(), Some(&full), false).unwrap();
        assert_eq!(
            json(&plain),
            json(&reference),
            "checkpointing changed the run"
        );
        let ckpts = list_checkpoints(&full);
        // 4 epochs of 3 batches (72 training samples / 16): a checkpoint at every epoch end and
        // every 3 steps in between.
        assert!(ckpts.len() >= 5, "{ckpts:?}");
        for (i, ck) in ckpts.iter().enumerate() {
            let dir = tmp.path().join(format!("resumed-{i}"));
            copy_dir(ck, &dir.join(ck.file_name().unwrap()));
            let resumed = run(w, config(), Some(&dir), true).unwrap();
            assert_eq!(
                json(&resumed),
                json(&reference),
                "{w}: resumed from {}",
                ck.display()
            );
        }
        let last = read_trainer_state(ckpts.last().unwrap()).unwrap();
        assert!(last.finished);
    }
}

#[test]
fn corrupt_checkpoints_are_named_and_fallback_is_opt_in() {
    let w = r#"{"kind":"dwa"}"#;
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let reference = run(w, config(), Some(&full), false).unwrap();
    let ckpts = list_checkpoints(&full);
    let newest = ckpts.last().unwrap();
    let model = newest.join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();

    // Without fallback: an error naming the file.
    let e = run(w, config(), Some(&full), true).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");

    // Altered bytes inside tensor data: caught by the checksum.
    let mut altered = bytes.clone();
    let n = altered.len();
    altered[n - 3] ^= 0x40;
    std::fs::write(&model, &altered).unwrap();
    let e = run(w, config(), Some(&full), true).unwrap_err().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("SHA-256"),
        "{e}"
    );

    // With fallback: the previous checkpoint, and the same result.
    let s = common::setup(5, 96, missing);
    let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
    let wc: WeightingConfig = serde_json::from_str(w).unwrap();
    let resumed = Trainer::new(config())
        .weighting_boxed(wc.build(&s.tasks, vb).unwrap())
        .stopper(StopperConfig::Patience {
            patience: 1,
            min_delta: 0.0,
        })
        .checkpoints(
            CheckpointConfig::new(&full)
                .every_steps(3)
                .keep_last(100)
                .fallback_to_previous(true),
        )
        .resume(true)
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    assert_eq!(json(&resumed), json(&reference));
    let invalid: Vec<_> = std::fs::read_dir(&full)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.starts_with("invalid-step-").then_some(n)
        })
        .collect();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
}

#[test]
fn a_checkpoint_of_another_run_is_refused() {
    let w = r#"{"kind":"equal"}"#;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let mut short = config();
    short.epochs = 1;
    run(w, short.clone(), Some(&dir), false).unwrap();
    let mut other = short.clone();
    other.seed = 6;
    let e = run(w, other, Some(&dir), true).unwrap_err().to_string();
    assert!(e.contains("train.seed (checkpoint 5, now 6)"), "{e}");
    // The trainer refuses a checkpoint whose tensors do not fit the model (tested in
    // tandem-tensor); an empty folder given explicitly is an error too.
    let s = common::setup(5, 96, missing);
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = Trainer::new(short)
        .resume_from(&empty)
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no checkpoint"), "{e}");
}

/// Equal weighting whose gradient of `heads.half.*` turns NaN at step 2.
struct Poisoned(Equal);

impl Weighting for Poisoned {
    fn name(&self) -> &str {
        "poisoned"
    }
    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let mut u = self.0.backward(losses, ctx)?;
        if ctx.step == 2 {
            for (n, v) in ctx.trainable {
                if n.starts_with("heads.half") {
                    if let Some(g) = u.grads.get(v.as_tensor()) {
                        let nan = (g * f64::NAN)?;
                        u.grads.insert(v.as_tensor(), nan);
                    }
                }
            }
        }
        Ok(u)
    }
}

#[test]
fn a_non_finite_gradient_names_task_epoch_and_step_or_is_skipped() {
    let s = common::setup(5, 96, |_| false);
    let e = Trainer::new(config())
        .weighting(Poisoned(Equal::new()))
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("non-finite gradient of heads.half.")
            && msg.ends_with("for task half at epoch 0, step 2"),
        "{msg}"
    );

    let s = common::setup(5, 96, |_| false);
    let mut cfg = config();
    cfg.on_non_finite = NonFinitePolicy::SkipBatch;
    let r = Trainer::new(cfg)
        .weighting(Poisoned(Equal::new()))
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    // Step 2 is never taken, so every later batch is poisoned and skipped.
    let skipped: u64 = r.history.epochs.iter().map(|e| e.skipped_batches).sum();
    assert_eq!(skipped, 4 * 4 - 2);
    assert!(r.history.epochs[3].train_loss.is_empty());
}

#[test]
fn gradient_clipping_changes_the_run_and_is_validated() {
    let w = r#"{"kind":"equal"}"#;
    let mut cfg = config();
    cfg.epochs = 1;
    let plain = run(w, cfg.clone(), None, false).unwrap();
    cfg.grad_clip_norm = Some(1e-3);
    let clipped = run(w, cfg.clone(), None, false).unwrap();
    assert_ne!(json(&plain), json(&clipped));
    cfg.grad_clip_norm = Some(-1.0);
    let e = run(w, cfg, None, false).unwrap_err().to_string();
    assert!(e.contains("grad_clip_norm"), "{e}");
}
