//! tandem's task runner.
//!
//! - `cargo xtask reproduce [--quick] [--only NAME,..] [--out DIR] [--seed N] [--data DIR]`:
//!   reruns the experiments behind tandem's multi-task claims and writes `metrics.json` and
//!   `REPORT.md`.
//!
//! The `xtask` alias builds this binary in release mode, so training runs optimized and
//! in-process.
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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Reproduce(args) => reproduce::run(args),
    }
}
