//! Auxiliary projection: each auxiliary gradient that conflicts with the main task's loses its
//! component against it; the main gradient is untouched. This is PCGrad's projection (Yu,
//! Kumar, Gupta, Levine, Hausman & Finn, NeurIPS 2020, "Gradient Surgery for Multi-Task
//! Learning") made one-sided for a main task with helpers, as in the auxiliary-learning
//! literature (e.g. Dery, Dauphin & Grangier, ICLR 2021, "Auxiliary Task Update
//! Decomposition", whose conflicting part is dropped here).
//!
//! With `g_m` the main gradient ([`main_aux`](super::main_aux)) and `λ` the auxiliary weight:
//! ```text
//! g_a' = g_a − (g_a · g_m / ‖g_m‖²) g_m    if g_a · g_m < 0
//! g_a' = g_a                               otherwise
//! d    = Σ_{m ∈ M} g_m + λ Σ_a g_a'
//! ```
//! so `d · g_m ≥ ‖g_m‖²`: the auxiliary tasks never slow the main one to first order. Every
//! `g_a'` is a combination of the rows, so the method runs on the Gramian: the auxiliary row
//! keeps weight `λ` and each main row gains `−λ c_a`, `c_a = g_a · g_m / ‖g_m‖²`, for each
//! conflicting `a`.
//!
//! Defaults: `aux = 1.0` (finite, non-negative). Cost: `T` backward passes (parameters) or `T`
//! head passes and one trunk pass (representation). Stateless. A zero main gradient projects
//! nothing; with no main task left, every task weighs `aux` (logged).
//!
//! ```toml
//! weighting = { kind = "aux_project" }
//! weighting = { kind = "aux_project", aux = 0.01, on = "representation" }
//! ```
use super::config::MethodConfig;
use super::main_aux::{default_aux, main_tasks, validate_aux, MainAux};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::Result;
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The auxiliary projection's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuxProjectConfig {
    /// The auxiliary weight `λ` (default 1.0, finite and non-negative).
    #[serde(default = "default_aux")]
    pub aux: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

impl Default for AuxProjectConfig {
    fn default() -> Self {
        Self {
            aux: default_aux(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for AuxProjectConfig {
    fn validate(&self) -> Result<()> {
        validate_aux("weighting.aux", self.aux)
    }

    fn build(&self, tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            AuxProject::new(*self, main_tasks(tasks)),
            self.on,
        )))
    }
}

/// The auxiliary projection (see the module doc).
#[derive(Debug, Clone)]
pub struct AuxProject {
    config: AuxProjectConfig,
    main: Vec<String>,
}

impl AuxProject {
    /// The projection with `config`, the tasks named in `main` being the main ones.
    pub fn new(config: AuxProjectConfig, main: Vec<String>) -> Self {
        Self { config, main }
    }
}

impl Aggregator for AuxProject {
    fn name(&self) -> &str {
        "aux_project"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let aux = self.config.aux;
        let Some(split) =
            MainAux::of_step(input, &self.main, "aux_project", "every task weighs aux")
        else {
            return Ok(Aggregation::weights(vec![aux; g.len()]));
        };
        let mut weights: Vec<f64> = split
            .is_main
            .iter()
            .map(|&m| if m { 1.0 } else { aux })
            .collect();
        if split.main_sq > 0.0 {
            let shift: f64 = split
                .aux()
                .filter(|&a| split.dot_main[a] < 0.0)
                .map(|a| aux * split.dot_main[a] / split.main_sq)
                .sum();
            for (w, &m) in weights.iter_mut().zip(&split.is_main) {
                if m {
                    *w -= shift;
                }
            }
        }
        Ok(Aggregation::weights(weights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::{aggregate_rows, linalg::dot, row_names};
    use rand::SeedableRng;

    fn run(aux: f64, rows: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let config = AuxProjectConfig {
            aux,
            ..AuxProjectConfig::default()
        };
        let mut agg = AuxProject::new(config, vec![row_names(1).remove(0)]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut agg, rows, &vec![1.0; rows.len()], &mut rng).unwrap();
        (a.weights, d)
    }

    #[test]
    fn a_conflicting_helper_loses_its_component_against_the_main_gradient() {
        // main (2, 0); helper (1, 1) agrees; conflicting (−1, 3): projected to (0, 3).
        let rows = vec![vec![2.0, 0.0], vec![1.0, 1.0], vec![-1.0, 3.0]];
        let (w, d) = run(1.0, &rows);
        // c = (−2)/4 = −0.5: main weight 1.5
        assert_eq!(w, vec![1.5, 1.0, 1.0]);
        assert_eq!(d, vec![3.0, 4.0]);
        let (w, d) = run(0.5, &rows);
        assert_eq!(w, vec![1.25, 0.5, 0.5]);
        assert_eq!(d, vec![2.5 + 0.5 - 0.5, 0.5 + 1.5]);
    }

    #[test]
    fn the_update_never_slows_the_main_task() {
        let rows = vec![
            vec![1.0, -2.0, 0.5],
            vec![-3.0, 1.0, 0.0],
            vec![0.0, 4.0, -1.0],
        ];
        let (_, d) = run(1.0, &rows);
        assert!(dot(&d, &rows[0]) >= dot(&rows[0], &rows[0]) - 1e-12);
    }
}
