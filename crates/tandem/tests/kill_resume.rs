//! Exact resume after SIGKILL: a real child process trains a tiny configuration with
//! checkpoints, is killed at a seeded random step, and is started again with resume; its final
//! report must equal, byte for byte, that of a run that was never interrupted. Three kill points,
//! one in each third of the run.
//!
//! The test binary re-executes itself: with `TANDEM_KILL_RESUME_CHILD=DIR` set, the test
//! `child_process_entry` trains into `DIR` (printing `TANDEM-STEP N` after every optimizer step, then
//! waiting for a line on stdin, so the parent kills it exactly after step N) and writes
//! `DIR/report.json`; without it, that test does nothing. A fourth, free-running kill (no
//! waiting) can land anywhere, checkpoint writes included. The network has batch norm, dropout
//! and DropConnect, whose running statistics and masks a resume must reproduce too.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use tandem::run::{train_with, RunData, RunOptions};
use tandem::train::{CheckpointConfig, Trainer};
use tandem::RunConfig;

const CHILD_ENV: &str = "TANDEM_KILL_RESUME_CHILD";

/// 96 training faces in batches of 16: 6 steps per epoch, 24 in all.
const CONFIG: &str = r#"
tasks = ["landmarks", "smile", "pose"]
weighting = { kind = "dwa" }
stopper = { kind = "patience", patience = 1 }

[model]
input_size = 32
channels = [4, 8, 8, 8]
feature_dim = 16
# state a resume must restore beside the parameters: batch norm's running statistics, and the
# seeded dropout and DropConnect masks
norm = "batch"
dropout = 0.2
dropconnect = 0.2

[train]
epochs = 4
batch_size = 16
eval_batch_size = 32
seed = 11

[data]
train_size = 96
val_size = 32

[data.synth]
size = 32
"#;
const TOTAL_STEPS: u64 = 24;

/// The child: train (resuming from `DIR/checkpoints` if anything is there), print each step,
/// write the report.
#[test]
fn child_process_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let lockstep = std::env::var("TANDEM_KILL_RESUME_LOCKSTEP").is_ok();
    let cfg = RunConfig::from_toml(CONFIG, "kill_resume.toml").unwrap();
    let data = RunData::synthetic(&cfg, cfg.train.seed).unwrap();
    let wait = move || {
        if lockstep {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
        }
    };
    if std::env::var("TANDEM_KILL_RESUME_FACADE").is_ok() {
        // Through `run::train_with`, counting epochs instead of steps; the selected (best
        // epoch's) variables are part of the result.
        let options = RunOptions {
            checkpoints: Some(CheckpointConfig::new(dir.join("checkpoints")).keep_last(2)),
            resume: true,
            ..Default::default()
        };
        let out = train_with(&cfg, &data, &Device::Cpu, &options, move |r| {
            println!("TANDEM-STEP {}", r.epoch + 1);
            wait();
        })
        .unwrap();
        let selected: Vec<(String, Vec<u32>)> = tandem::tensor::sorted_vars(&out.vars)
            .into_iter()
            .map(|(n, v)| {
                let x = v
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                (n, x.iter().map(|f| f.to_bits()).collect())
            })
            .collect();
        let result = serde_json::json!({ "report": out.report, "selected": selected });
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_vec(&result).unwrap(),
        )
        .unwrap();
        return;
    }
    let tasks = cfg.task_set();
    let vars = VarMap::new();
    let vb = tandem::tensor::seeded_var_builder(&vars, cfg.train.seed, DType::F32, &Device::Cpu);
    let net = cfg.sharing.build(&cfg.model, &tasks, vb.clone()).unwrap();
    let weighting = cfg.weighting.build(&tasks, vb).unwrap();
    let report = Trainer::new(cfg.train.clone())
        .weighting_boxed(weighting)
        .stopper(cfg.stopper)
        .checkpoints(
            CheckpointConfig::new(dir.join("checkpoints"))
                .every_steps(4)
                .keep_last(2),
        )
        .resume(true)
        .on_step(move |s| {
            println!("TANDEM-STEP {}", s.step);
            wait();
        })
        .fit(net.as_ref(), &tasks, &vars, &data.train, &data.val)
        .unwrap();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
}

/// Runs the child in `dir`; kills it with SIGKILL once it has printed step `kill_at`. In
/// lockstep the child waits after each step until told to go on. Returns whether it was killed.
fn spawn_child(dir: &Path, kill_at: Option<u64>, lockstep: bool) -> bool {
    spawn(dir, kill_at, lockstep, false)
}

/// [`spawn_child`], through `run::train_with` when `facade` (counting epochs, not steps).
fn spawn(dir: &Path, kill_at: Option<u64>, lockstep: bool, facade: bool) -> bool {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_process_entry",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, dir)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if lockstep {
        cmd.env("TANDEM_KILL_RESUME_LOCKSTEP", "1");
    }
    if facade {
        cmd.env("TANDEM_KILL_RESUME_FACADE", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest prints `test child_process_entry ... ` before the first line of output.
        let Some(step) = line
            .rsplit_once("TANDEM-STEP ")
            .and_then(|(_, s)| s.trim().parse::<u64>().ok())
        else {
            continue;
        };
        if kill_at.is_some_and(|k| step >= k) && !killed {
            child.kill().unwrap(); // SIGKILL on Unix
            killed = true;
        } else if lockstep && !killed {
            // A broken pipe only means the child is gone already.
            let _ = stdin.write_all(b"go\n").and_then(|()| stdin.flush());
        }
    }
    let status = child.wait().unwrap();
    if killed {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "child was not killed: {status}");
        }
    } else {
        assert!(status.success(), "child failed: {status}");
    }
    killed
}

#[test]
fn killed_and_resumed_runs_end_bit_identical() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    spawn_child(&reference, None, false);
    let want = std::fs::read(reference.join("report.json")).unwrap();
    for i in 0..3u64 {
        // A seeded random step in the i-th third of steps 5..=22 (after the first checkpoint,
        // at step 4, and before the last).
        let kill_at = 5 + 6 * i + tandem::tensor::hash_seed(2024, &format!("kill {i}")) % 6;
        let dir = tmp.path().join(format!("killed-{i}"));
        assert!(
            spawn_child(&dir, Some(kill_at), true),
            "kill point {kill_at}"
        );
        assert!(
            !dir.join("report.json").exists(),
            "the child finished before it was killed at step {kill_at}"
        );
        let left = tandem::train::checkpoint::list_checkpoints(&dir.join("checkpoints"));
        eprintln!("killed after step {kill_at}; resuming from {left:?}");
        assert!(!left.is_empty());
        spawn_child(&dir, None, false);
        let got = std::fs::read(dir.join("report.json")).unwrap();
        assert!(
            got == want,
            "killed at step {kill_at}: the resumed report differs from the uninterrupted one"
        );
    }
    // Free-running: the kill lands wherever the child is by then.
    let dir = tmp.path().join("killed-free");
    spawn_child(&dir, Some(TOTAL_STEPS / 2 + 1), false);
    spawn_child(&dir, None, false);
    assert!(std::fs::read(dir.join("report.json")).unwrap() == want);
}

/// Through `run::train_with`: killed right after an epoch's record (before that epoch's
/// checkpoint), the resumed run selects the same best epoch and the same variables.
#[test]
fn train_with_resumes_to_the_same_selected_model() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    spawn(&reference, None, false, true);
    let want = std::fs::read(reference.join("report.json")).unwrap();
    for kill_after_epoch in [1, 3] {
        let dir = tmp.path().join(format!("killed-{kill_after_epoch}"));
        assert!(spawn(&dir, Some(kill_after_epoch), true, true));
        spawn(&dir, None, false, true);
        let got = std::fs::read(dir.join("report.json")).unwrap();
        assert!(got == want, "killed after epoch {kill_after_epoch}");
    }
}
