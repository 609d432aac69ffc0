//! `cargo xtask bench --weightings`: the training step of every weighting method, 5 tasks,
//! batch 64, hard sharing on the TCDCN trunk (SynthFaces), relative to `equal`.
//!
//! Each method trains `--steps` optimizer steps (after one warm-up run of the same length
//! for `equal`) through the real trainer (`tandem::run::train_with`); the figure is the
//! trainer's own step time (forward, losses, the weighting's backward passes and solver,
//! optimizer update; batching and evaluation excluded) per step, the median of `--rounds`
//! runs. Gradient methods are timed on the shared parameters (`T` backward passes) and, for
//! those listed in [`REPRESENTATION`], on the shared representation as well (`<kind>_rep`).
//!
//! `cargo xtask bench --regularisers` times the same step with `equal` weighting for every
//! regulariser option of the trunk ([`REGULARISERS`]), relative to the trunk without one.
//!
//! `cargo xtask bench --sharing` times it with `equal` weighting for every sharing
//! architecture at its defaults ([`SHARING`]), relative to hard sharing, and reports each
//! network's trainable parameters.
use anyhow::{Context, Result};
use candle_core::Device;
use serde_json::{json, Map, Value};
use tandem::optim::WeightingConfig;
use tandem::RunConfig;

/// Gradient methods also timed in the representation mode.
const REPRESENTATION: [&str; 5] = ["mgda", "upgrad", "cagrad", "nash_mtl", "imtl_g"];

/// The regulariser options `--regularisers` times: (key, `[model]` lines).
pub const REGULARISERS: [(&str, &str); 13] = [
    ("none", ""),
    ("dropout", "dropout = 0.3"),
    ("dropout_fc", "dropout = 0.3\ndropout_at = [\"fc\"]"),
    ("dropconnect", "dropconnect = 0.3"),
    ("batch_norm", "norm = \"batch\""),
    ("layer_norm", "norm = \"layer\""),
    ("instance_norm", "norm = \"instance\""),
    ("group_norm", "norm = \"group\""),
    ("weight_norm", "weight_norm = true"),
    ("selu", "activation = \"selu\""),
    ("selu_dropout", "activation = \"selu\"\ndropout = 0.3"),
    ("he_normal", "init = \"he_normal\""),
    ("glorot_uniform", "init = \"glorot_uniform\""),
];

/// The sharing architectures `--sharing` times, at their defaults.
pub const SHARING: [&str; 10] = [
    "hard",
    "independent",
    "soft",
    "cross_stitch",
    "mtan",
    "mmoe",
    "cgc",
    "ple",
    "dselect_k",
    "ltb",
];

fn config(weighting: &str, model: &str, steps: usize) -> Result<RunConfig> {
    config_shared("hard", weighting, model, steps)
}

fn config_shared(sharing: &str, weighting: &str, model: &str, steps: usize) -> Result<RunConfig> {
    let text = format!(
        r#"tasks = ["landmarks", "gender", "smile", "glasses", "pose"]
sharing = {{ kind = "{sharing}" }}
stopper = {{ kind = "off" }}
weighting = {weighting}
[model]
{model}
[train]
epochs = 1
batch_size = 64
seed = 7
[data]
train_size = {}
val_size = 64
"#,
        64 * steps
    );
    RunConfig::from_toml(&text, "bench").map_err(|e| anyhow::anyhow!("{e}"))
}

/// Median milliseconds per optimizer step of one method with the `[model]` lines `model`.
fn time_with(weighting: &str, model: &str, steps: usize, rounds: usize) -> Result<f64> {
    Ok(time_cfg(&config(weighting, model, steps)?, steps, rounds)?.0)
}

/// Median milliseconds per optimizer step of `cfg`, and the network's parameters.
fn time_cfg(cfg: &RunConfig, steps: usize, rounds: usize) -> Result<(f64, usize)> {
    let what = format!("{} sharing", cfg.sharing.key());
    let data = tandem::run::RunData::synthetic(cfg, 7).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut v = Vec::new();
    let mut parameters = 0;
    for _ in 0..rounds {
        let out = tandem::run::train_with(
            cfg,
            &data,
            &Device::Cpu,
            &tandem::run::RunOptions::default(),
            |_| {},
        )
        .with_context(|| format!("training with {what}"))?;
        v.push(out.timing.step_seconds * 1000.0 / steps as f64);
        parameters = out.parameters;
    }
    v.sort_by(f64::total_cmp);
    Ok((v[v.len() / 2], parameters))
}

/// Times every sharing architecture; prints a table and returns
/// `{"sharing_<kind>_step_ms": .., "sharing_<kind>_ratio": .., "sharing_<kind>_parameters": ..}`.
pub fn run_sharing(steps: usize, rounds: usize) -> Result<Map<String, Value>> {
    let equal = r#"{ kind = "equal" }"#;
    time(equal, steps, 1)?; // warm-up
    let mut out = Map::new();
    let mut hard = None;
    println!(
        "\n{:<22} {:>12} {:>10} {:>8}",
        "sharing (T=5, B=64)", "parameters", "ms/step", "× hard"
    );
    for kind in SHARING {
        let (ms, params) = time_cfg(&config_shared(kind, equal, "", steps)?, steps, rounds)?;
        let base = *hard.get_or_insert(ms);
        println!("{kind:<22} {params:>12} {ms:>10.1} {:>8.2}", ms / base);
        out.insert(format!("sharing_{kind}_step_ms"), json!(ms));
        out.insert(format!("sharing_{kind}_ratio"), json!(ms / base));
        out.insert(format!("sharing_{kind}_parameters"), json!(params));
    }
    Ok(out)
}

fn time(weighting: &str, steps: usize, rounds: usize) -> Result<f64> {
    time_with(weighting, "", steps, rounds)
}

/// Times every regulariser option; prints a table and returns
/// `{"regulariser_<key>_step_ms": .., "regulariser_<key>_ratio": ..}`.
pub fn run_regularisers(steps: usize, rounds: usize) -> Result<Map<String, Value>> {
    let equal = r#"{ kind = "equal" }"#;
    time(equal, steps, 1)?; // warm-up
    let none = time(equal, steps, rounds)?;
    let mut out = Map::new();
    println!(
        "\n{:<22} {:>10} {:>8}",
        "trunk option (B=64)", "ms/step", "× none"
    );
    for (key, model) in REGULARISERS {
        let ms = if key == "none" {
            none
        } else {
            time_with(equal, model, steps, rounds)?
        };
        println!("{key:<22} {ms:>10.1} {:>8.2}", ms / none);
        out.insert(format!("regulariser_{key}_step_ms"), json!(ms));
        out.insert(format!("regulariser_{key}_ratio"), json!(ms / none));
    }
    Ok(out)
}

/// Times every method; prints a table and returns `{"weighting_<key>_step_ms": ..,
/// "weighting_<key>_ratio": ..}`.
pub fn run(steps: usize, rounds: usize) -> Result<Map<String, Value>> {
    let mut methods: Vec<(String, String)> = WeightingConfig::kinds()
        .iter()
        .map(|k| {
            let w = match *k {
                "static" => r#"{ kind = "static", aux = 0.01 }"#.to_string(),
                k => format!(r#"{{ kind = "{k}" }}"#),
            };
            (k.to_string(), w)
        })
        .collect();
    for k in REPRESENTATION {
        methods.push((
            format!("{k}_rep"),
            format!(r#"{{ kind = "{k}", on = "representation" }}"#),
        ));
    }
    time(r#"{ kind = "equal" }"#, steps, 1)?; // warm-up
    let equal = time(r#"{ kind = "equal" }"#, steps, rounds)?;
    let mut out = Map::new();
    println!(
        "\n{:<22} {:>10} {:>8}",
        "weighting (T=5, B=64)", "ms/step", "× equal"
    );
    for (key, w) in methods {
        let ms = if key == "equal" {
            equal
        } else {
            time(&w, steps, rounds)?
        };
        println!("{key:<22} {ms:>10.1} {:>8.2}", ms / equal);
        out.insert(format!("weighting_{key}_step_ms"), json!(ms));
        out.insert(format!("weighting_{key}_ratio"), json!(ms / equal));
    }
    Ok(out)
}
