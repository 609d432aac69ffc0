//! Data-parallel training over MPI (feature `mpi`): run as `cargo test -p tandem-train
//! --features mpi --test mpi`, this binary starts itself under `mpirun -np 2` (OpenMPI) and
//! checks, on every rank, that
//! - two ranks reproduce one process with the same global batch (validation NME within 1e-3
//!   relative) for `equal`, `uncertainty`, `gradnorm`, `pcgrad` and `mgda` in both modes;
//! - the ranks end with identical variables;
//! - two data-parallel runs give identical bits.
//!
//! It has no test harness (`harness = false`): MPI is initialised once per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use tandem_optim::WeightingConfig;
use tandem_tensor::Collective;
use tandem_train::mpi::Mpi;
use tandem_train::{Report, TrainConfig, Trainer};

/// Set in the environment of every process `mpirun` starts (OpenMPI, MPICH and PMIx).
const UNDER_MPIRUN: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"];

fn main() -> ExitCode {
    if !UNDER_MPIRUN.iter().any(|v| std::env::var_os(v).is_some()) {
        return launch();
    }
    let mpi = Arc::new(Mpi::init().expect("MPI initialises"));
    let c: Arc<dyn Collective> = mpi.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checks(&c)));
    match result {
        Ok(()) => {
            if c.rank() == 0 {
                println!("mpi: every check passed on {} ranks", c.ranks());
            }
            ExitCode::SUCCESS
        }
        Err(_) => mpi.abort(1),
    }
}

/// Starts this binary under `mpirun -np 2` and reports its outcome.
fn launch() -> ExitCode {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new("mpirun");
    // Root in CI containers; more ranks than cores on a small machine.
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(&exe)
        // Keep OpenMPI from probing for network interfaces and high-speed fabrics it
        // does not need on one machine.
        .env("OMPI_MCA_btl", "self,vader,tcp")
        .env("OMPI_MCA_btl_tcp_if_include", "lo");
    match cmd.status() {
        Ok(s) if s.success() => {
            println!("mpi: passed under mpirun -np 2");
            ExitCode::SUCCESS
        }
        Ok(s) => {
            eprintln!("mpi: mpirun -np 2 {} failed: {s}", exe.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("mpi: cannot start mpirun ({e}); install OpenMPI (openmpi-bin)");
            ExitCode::FAILURE
        }
    }
}

fn config() -> TrainConfig {
    let mut cfg = TrainConfig {
        epochs: 2,
        batch_size: 16,
        eval_batch_size: 7,
        seed: 3,
        ..Default::default()
    };
    cfg.optimizer.set_lr(3e-3);
    cfg
}

type Outcome = (Report, Vec<(String, Vec<f32>)>);

fn run(form: &serde_json::Value, collective: Option<Arc<dyn Collective>>) -> Outcome {
    let wc: WeightingConfig = serde_json::from_value(form.clone()).unwrap();
    let s = common::setup(5, 48, |i| i % 4 == 1);
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

fn val_nme(r: &Report) -> f64 {
    r.history
        .epochs
        .last()
        .and_then(|e| e.val_metric("landmarks", "nme"))
        .unwrap()
}

fn flat(vars: &[(String, Vec<f32>)]) -> Vec<f64> {
    vars.iter()
        .flat_map(|(_, v)| v.iter().map(|x| f64::from(*x)))
        .collect()
}

fn checks(c: &Arc<dyn Collective>) {
    let rank = c.rank();
    for form in [
        serde_json::json!({ "kind": "equal" }),
        serde_json::json!({ "kind": "uncertainty" }),
        serde_json::json!({ "kind": "gradnorm" }),
        serde_json::json!({ "kind": "pcgrad" }),
        serde_json::json!({ "kind": "mgda" }),
        serde_json::json!({ "kind": "mgda", "on": "representation" }),
    ] {
        let (one, _) = run(&form, None);
        let (two, vars) = run(&form, Some(c.clone()));
        let (a, b) = (val_nme(&one), val_nme(&two));
        assert!(
            (a - b).abs() <= 1e-3 * a.abs(),
            "rank {rank}, {form}: one process {a}, two ranks {b}"
        );
        let all = c.gather(&flat(&vars)).unwrap();
        assert!(
            all.iter().all(|v| v == &all[0]),
            "rank {rank}, {form}: the ranks' variables differ"
        );
        if rank == 0 {
            println!("mpi: {form}: nme one process {a:.6}, two ranks {b:.6}");
        }
    }
    let form = serde_json::json!({ "kind": "mgda" });
    let (first, a) = run(&form, Some(c.clone()));
    let (second, b) = run(&form, Some(c.clone()));
    assert_eq!(a, b, "rank {rank}: two data-parallel runs differ");
    assert_eq!(first.history.epochs, second.history.epochs);
}
