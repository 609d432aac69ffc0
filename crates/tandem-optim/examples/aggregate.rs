//! One step of any weighting on plain numbers.
//!
//! ```text
//! echo '{"grads": [[1, 0], [-0.5, 1]], "losses": [1, 1]}' \
//!   | cargo run --release -p tandem-optim --example aggregate -- cagrad c=0.5
//! {"grad":[...],"weights":[...]}
//! ```
//! Reads `{"grads": [[...], ...], "losses": [...]}` (one row per task; `losses` optional, all
//! ones by default) on standard input and prints the update the method gives on those rows from a
//! fresh state, and its task weights (see `tandem_optim::weighting::rows`). `key=value`
//! arguments are the method's TOML keys (`c=0.5`, `on=representation`, `solver=frank_wolfe`);
//! values are read as JSON where they parse, else as strings. `seed=N` seeds randomised
//! methods (default 0).
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::io::Read;
use tandem_optim::weighting::rows::run_on_rows;
use tandem_optim::WeightingConfig;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    grads: Vec<Vec<f64>>,
    #[serde(default)]
    losses: Option<Vec<f64>>,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(method) = args.next() else {
        bail!(
            "usage: aggregate METHOD [key=value ...] < {{\"grads\": [[...]], \"losses\": [...]}}\n\
             methods: {}",
            WeightingConfig::kinds().join(", ")
        );
    };
    let mut table = serde_json::Map::new();
    table.insert("kind".into(), serde_json::Value::String(method.clone()));
    let mut seed = 0u64;
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("argument {arg:?}: expected key=value");
        };
        if key == "seed" {
            seed = value
                .parse()
                .with_context(|| format!("seed={value}: not an integer"))?;
            continue;
        }
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        table.insert(key.to_string(), value);
    }
    let config: WeightingConfig = serde_json::from_value(serde_json::Value::Object(table))
        .with_context(|| format!("weighting {method:?}"))?;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let input: Input = serde_json::from_str(&text).context("standard input")?;
    let losses = input.losses.unwrap_or_else(|| vec![1.0; input.grads.len()]);
    let update = run_on_rows(&config, &input.grads, &losses, seed)?;
    println!(
        "{}",
        serde_json::json!({"grad": update.grad, "weights": update.weights})
    );
    Ok(())
}
