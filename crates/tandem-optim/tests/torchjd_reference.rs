//! tandem's aggregators against TorchJD 0.18 on the committed matrices of
//! `tests/data/torchjd_reference.json` (regenerate with `benches/pytorch/torchjd_reference.py`).
//! Each method runs through the same path as the `aggregate` example
//! ([`run_on_rows`]): its real training step on a linear model whose task gradients are the rows.
use serde::Deserialize;
use std::collections::BTreeMap;
use tandem_optim::weighting::rows::run_on_rows;
use tandem_optim::WeightingConfig;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    grads: Vec<Vec<f64>>,
    expected: BTreeMap<String, Expected>,
}

#[derive(Deserialize)]
struct Expected {
    grad: Vec<f64>,
    comparable: bool,
}

/// TorchJD's aggregator (as the script names it) → tandem's configuration.
fn config_of(method: &str) -> serde_json::Value {
    match method {
        "mgda_frank_wolfe" => serde_json::json!({"kind": "mgda", "solver": "frank_wolfe"}),
        "cagrad" => serde_json::json!({"kind": "cagrad", "c": 0.5}),
        "fairgrad" => serde_json::json!({"kind": "fairgrad", "alpha": 1.0}),
        "fairgrad_alpha_2" => serde_json::json!({"kind": "fairgrad", "alpha": 2.0}),
        other => serde_json::json!({ "kind": other }),
    }
}

#[test]
fn aggregators_match_torchjd() {
    let text = include_str!("data/torchjd_reference.json");
    let reference: Reference = serde_json::from_str(text).expect("reference JSON");
    let mut compared = 0;
    let mut failures = Vec::new();
    for case in &reference.cases {
        let t = case.grads.len();
        for (method, expected) in &case.expected {
            if !expected.comparable {
                continue;
            }
            let config: WeightingConfig =
                serde_json::from_value(config_of(method)).expect("known method");
            let got = run_on_rows(&config, &case.grads, &vec![1.0; t], 0)
                .unwrap_or_else(|e| panic!("{method} on {}: {e}", case.name));
            let scale = expected.grad.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let err = got
                .grad
                .iter()
                .zip(&expected.grad)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            // Relative to the update, or to the rows where the update is zero (0 in the hull).
            let rows = case
                .grads
                .iter()
                .flatten()
                .fold(0.0f64, |m, x| m.max(x.abs()));
            let rel = err / scale.max(1e-6 * rows);
            compared += 1;
            if rel > 2e-3 || got.grad.len() != expected.grad.len() {
                failures.push(format!(
                    "{method} on {}: relative error {rel:.2e}\n  tandem  {:?}\n  torchjd {:?}",
                    case.name, got.grad, expected.grad
                ));
            }
        }
    }
    assert!(compared >= 100, "only {compared} comparisons");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
