//! tandem's task runner.
//!
//! - `cargo xtask reproduce [--quick] [--only NAME,..] [--out DIR] [--seed N] [--data DIR]`:
//!   reruns the experiments behind tandem's multi-task claims and writes `metrics.json` and
//!   `REPORT.md`.
//! - `cargo xtask bench [--rounds N] [--seconds S] [--json FILE]`: training and inference
//!   speed of the TCDCN network, tandem vs PyTorch (see `docs/performance.md`);
//!   `--weightings`: the training step of every weighting method relative to `equal`;
//!   `--mpi R` (an xtask built with the `mpi` feature): data-parallel samples/s over R MPI
//!   ranks against one process.
//!
//! The `xtask` alias builds this binary in release mode, so training runs optimized and
//! in-process.
mod bench;
mod bench_parallel;
mod bench_weighting;
mod ranks;
mod reproduce;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "tandem's task runner")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rerun the experiments and write a report.
    Reproduce(reproduce::Args),
    /// Training and inference speed of the TCDCN network, tandem vs PyTorch.
    Bench(bench::BenchArgs),
    /// One timing run of tandem's step, JSON on stdout (used by `bench`).
    #[command(hide = true)]
    BenchStep(bench::StepArgs),
    /// One data-parallel timing run, JSON on stdout of rank 0 (used by `bench --mpi`).
    #[command(hide = true)]
    BenchParallel(bench_parallel::ParallelArgs),
}

fn main() -> anyhow::Result<()> {
    tandem::run::init_cpu_threads();
    let result = match Cli::parse().command {
        Command::Reproduce(args) => reproduce::run(args),
        Command::Bench(args) => bench::bench(&args),
        Command::BenchStep(args) => bench::step(&args),
        Command::BenchParallel(args) => bench_parallel::run_one(&args),
    };
    if let Err(e) = &result {
        // Under mpirun, a failing rank ends the others rather than leave them waiting.
        eprintln!("error: {e:#}");
        ranks::abort_others();
    }
    result
}
