//! tandem's task runner.
use clap::{Parser, Subcommand};

mod bench;

#[derive(Parser)]
#[command(about = "tandem's task runner")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Training and inference speed of the TCDCN network, tandem vs PyTorch.
    Bench(bench::BenchArgs),
    /// One timing run of tandem's step (used by `bench`).
    #[command(hide = true)]
    BenchStep(bench::StepArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Bench(args) => bench::bench(&args),
        Cmd::BenchStep(args) => bench::step(&args),
    }
}
