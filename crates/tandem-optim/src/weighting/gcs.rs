//! GCS, gradient cosine similarity (Du, Czarnecki, Jayakumar, Farajtabar, Pascanu &
//! Lakshminarayanan, 2018, "Adapting Auxiliary Losses Using Gradient Similarity",
//! arXiv:1812.02224): an auxiliary task's gradient on the shared parameters is used only when
//! it points the same way as the main task's.
//!
//! With `g_m` the main gradient ([`main_aux`](super::main_aux): the sum of the main tasks')
//! and `λ` the auxiliary weight:
//! ```text
//! cos_a = g_a · g_m / (‖g_a‖ ‖g_m‖)
//! w_m = 1 for every main task
//! w_a = λ · [cos_a > 0]          (weighted = false, the paper's Algorithm 1)
//! w_a = λ · max(cos_a, 0)        (weighted = true, the paper's weighted variant)
//! d   = Σ_t w_t g_t
//! ```
//! Task-specific parameters (the auxiliary heads) get their own task's gradient whatever the
//! gate says, as in the paper, where only the shared parameters are gated. The cosines come
//! from the Gramian, so the method keeps no rows.
//!
//! Defaults: `weighted = false`, `aux = 1.0` (the paper's unweighted sum of main and
//! auxiliary losses; `aux` must be finite and non-negative). Cost: `T` backward passes
//! (parameters) or `T` head passes and one trunk pass (representation). Stateless. When no
//! main task is left (a stopper took it out), every task gets weight `aux` (logged).
//!
//! ```toml
//! weighting = { kind = "gcs" }
//! weighting = { kind = "gcs", weighted = true, aux = 0.01, on = "representation" }
//! ```
use super::config::MethodConfig;
use super::main_aux::{default_aux, main_tasks, validate_aux, MainAux};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::Result;
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// GCS's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    /// Scale an admitted auxiliary gradient by its cosine with the main gradient (default
    /// `false`: admit it whole).
    #[serde(default)]
    pub weighted: bool,
    /// The auxiliary weight `λ` (default 1.0, finite and non-negative).
    #[serde(default = "default_aux")]
    pub aux: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

impl Default for GcsConfig {
    fn default() -> Self {
        Self {
            weighted: false,
            aux: default_aux(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for GcsConfig {
    fn validate(&self) -> Result<()> {
        validate_aux("weighting.aux", self.aux)
    }

    fn build(&self, tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            Gcs::new(*self, main_tasks(tasks)),
            self.on,
        )))
    }
}

/// GCS (see the module doc).
#[derive(Debug, Clone)]
pub struct Gcs {
    config: GcsConfig,
    main: Vec<String>,
}

impl Gcs {
    /// GCS with `config`, the tasks named in `main` being the main ones.
    pub fn new(config: GcsConfig, main: Vec<String>) -> Self {
        Self { config, main }
    }
}

impl Aggregator for Gcs {
    fn name(&self) -> &str {
        "gcs"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let aux = self.config.aux;
        let Some(split) = MainAux::of_step(input, &self.main, "gcs", "every task weighs aux")
        else {
            return Ok(Aggregation::weights(vec![aux; g.len()]));
        };
        let weights = (0..g.len())
            .map(|t| {
                if split.is_main[t] {
                    return 1.0;
                }
                let cos = split.cosine(g, t);
                match (cos > 0.0, self.config.weighted) {
                    (false, _) => 0.0,
                    (true, false) => aux,
                    (true, true) => aux * cos,
                }
            })
            .collect();
        Ok(Aggregation::weights(weights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::{aggregate_rows, row_names};
    use rand::SeedableRng;

    fn run(config: GcsConfig, rows: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let mut agg = Gcs::new(config, vec![row_names(1).remove(0)]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut agg, rows, &vec![1.0; rows.len()], &mut rng).unwrap();
        (a.weights, d)
    }

    #[test]
    fn conflicting_auxiliary_gradients_are_dropped() {
        // main (1, 0); helper (1, 1): cos 1/√2 > 0; conflicting (−1, 2): cos −1/√5 < 0.
        let rows = vec![vec![1.0, 0.0], vec![1.0, 1.0], vec![-1.0, 2.0]];
        let (w, d) = run(GcsConfig::default(), &rows);
        assert_eq!(w, vec![1.0, 1.0, 0.0]);
        assert_eq!(d, vec![2.0, 1.0]);
        let (w, d) = run(
            GcsConfig {
                weighted: true,
                aux: 0.5,
                ..GcsConfig::default()
            },
            &rows,
        );
        let c = 0.5 / 2f64.sqrt();
        assert!((w[1] - c).abs() < 1e-12 && w[2] == 0.0 && w[0] == 1.0);
        assert!((d[0] - (1.0 + c)).abs() < 1e-12 && (d[1] - c).abs() < 1e-12);
    }

    #[test]
    fn orthogonal_and_zero_gradients_are_not_admitted() {
        let rows = vec![vec![1.0, 0.0], vec![0.0, 3.0], vec![0.0, 0.0]];
        let (w, _) = run(GcsConfig::default(), &rows);
        assert_eq!(w, vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn a_negative_weight_is_an_error_naming_the_key() {
        let e = GcsConfig {
            aux: -1.0,
            ..GcsConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("weighting.aux"), "{e}");
    }
}
