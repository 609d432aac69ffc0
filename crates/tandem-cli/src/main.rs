//! `tandem`: train, evaluate and run multi-task face models from the command line.
//!
//! ```text
//! tandem train   --config run.toml [--data DIR] [--out DIR] [--resume DIR]
//! tandem eval    --checkpoint DIR [--data DIR]
//! tandem predict --checkpoint DIR IMAGE... [--box x,y,w,h] [--draw OUT.png] [--json]
//! tandem synth   --n N --out DIR
//! ```
//!
//! Exit status: 0 on success, 1 when the command failed (the message says why), 2 for a
//! usage error (unknown flag, missing argument; clap's convention).
//! Logs go to standard error; set `RUST_LOG` (e.g. `RUST_LOG=debug`) to see more.
//!
//! Built with the `mpi` feature, `mpirun -np R tandem train ...` trains data-parallel over R
//! processes (rank 0 logs and writes the output folder); see docs/performance.md.
#![warn(missing_docs)]

mod data;
mod draw;
mod eval;
mod labels;
mod output;
mod parallel;
mod plot;
mod predict;
mod progress;
mod synth;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Multi-task face models on candle: train, evaluate, predict, and write synthetic data.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model (SynthFaces by default, MTFL with --data) and write a checkpoint, history,
    /// metrics and plots.
    Train(train::Args),
    /// Score a checkpoint: per-task loss and metrics on a data folder or on its own
    /// validation faces.
    Eval(eval::Args),
    /// Predict landmarks and attributes of face images with a checkpoint.
    Predict(predict::Args),
    /// Write synthetic faces as an MTFL data folder (training.txt plus images).
    Synth(synth::Args),
}

fn main() -> ExitCode {
    tandem::run::init_cpu_threads();
    let cli = Cli::parse();
    let ranks = match parallel::Ranks::init() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if ranks.rank() == 0 {
        progress::init_logging();
    }
    let result = match cli.command {
        Command::Train(a) => train::run(a, ranks.collective()),
        Command::Eval(a) => eval::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Synth(a) => synth::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Show each cause once: many errors already include their source's message.
            let mut shown = e.to_string();
            match ranks.collective() {
                Some(c) => eprintln!("error on rank {} of {}: {shown}", c.rank(), c.ranks()),
                None => eprintln!("error: {shown}"),
            }
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !shown.contains(&c) {
                    eprintln!("  caused by: {c}");
                    shown = c;
                }
            }
            ranks.abort_others(1);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
