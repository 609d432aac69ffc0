//! OL-AUX, online learning of auxiliary weights (Lin, Baweja, Kantor & Held, NeurIPS 2019,
//! "Adaptive Auxiliary Task Weighting for Reinforcement Learning").
//!
//! The objective is `L_m + Σ_a w_a L_a`; the weights `w_a` follow the main loss `N` steps
//! ahead. With plain gradient steps of rate `α`, `∂L_m(θ_{t+N}) / ∂w_a ≈ −α Σ_{j<N}
//! ∇L_m(θ_{t+j}) · ∇L_a(θ_{t+j})`, so every `N = horizon` steps
//! ```text
//! S_a = Σ_{j < N} s_a(t + j)                    (inner products of the last N steps)
//! w_a ← max(0, w_a + η S_a)                     (update = "additive", the paper's step)
//! w_a ← w_a · exp(η S_a)                         (update = "multiplicative")
//! s_a = g_a · g_m                               (signal = "dot", the paper's)
//! s_a = g_a · g_m / (‖g_a‖ ‖g_m‖)               (signal = "cosine")
//! d   = Σ_{m ∈ M} g_m + Σ_a w_a g_a
//! ```
//! `η` (`lr`) stands for the paper's `βα`. The dot product's scale is that of the gradients
//! (an L2 landmark loss and a cross-entropy differ by orders of magnitude), which is why the
//! unit-free cosine and the multiplicative step (a mirror-descent step on the same gradient,
//! which keeps a small weight small) are offered beside the paper's forms. `g_m` is the main
//! gradient ([`main_aux`](super::main_aux)); inner products come from the Gramian.
//!
//! Defaults: `init = 1.0` (every auxiliary weight at the start), `lr = 0.01`, `horizon = 5`,
//! `signal = "dot"`, `update = "additive"` (the paper's forms; its `β` is tuned per task, so
//! `lr` is a choice here). State: the weights, the running sums and the step count within the
//! horizon, saved and restored exactly. Cost: `T` backward passes (parameters) or `T` head
//! passes and one trunk pass (representation).
//!
//! ```toml
//! weighting = { kind = "ol_aux" }
//! weighting = { kind = "ol_aux", init = 0.002, lr = 0.1, signal = "cosine", update = "multiplicative" }
//! ```
use super::config::MethodConfig;
use super::main_aux::{main_tasks, validate_aux, MainAux};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::state;
use crate::{OptimError, Result};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// The name of OL-AUX's state in errors.
const STATE: &str = "weighting state (ol_aux)";

/// What one step contributes to an auxiliary weight's sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OlAuxSignal {
    /// `g_a · g_m` (the paper's).
    #[default]
    Dot,
    /// `cos(g_a, g_m)`.
    Cosine,
}

/// How the sum moves a weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OlAuxUpdate {
    /// `w ← max(0, w + η S)` (the paper's).
    #[default]
    Additive,
    /// `w ← w · exp(η S)`.
    Multiplicative,
}

/// OL-AUX's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OlAuxConfig {
    /// Every auxiliary weight at the start (default 1.0, finite and non-negative).
    #[serde(default = "default_init")]
    pub init: f64,
    /// The step `η` (default 0.01, finite and non-negative).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Steps per weight update, `N` (default 5, at least 1).
    #[serde(default = "default_horizon")]
    pub horizon: u64,
    /// What a step adds to the sum (default `dot`).
    #[serde(default)]
    pub signal: OlAuxSignal,
    /// How the sum moves a weight (default `additive`).
    #[serde(default)]
    pub update: OlAuxUpdate,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_init() -> f64 {
    1.0
}
fn default_lr() -> f64 {
    0.01
}
fn default_horizon() -> u64 {
    5
}

impl Default for OlAuxConfig {
    fn default() -> Self {
        Self {
            init: default_init(),
            lr: default_lr(),
            horizon: default_horizon(),
            signal: OlAuxSignal::Dot,
            update: OlAuxUpdate::Additive,
            on: On::Parameters,
        }
    }
}

impl MethodConfig for OlAuxConfig {
    fn validate(&self) -> Result<()> {
        validate_aux("weighting.init", self.init)?;
        validate_aux("weighting.lr", self.lr)?;
        if self.horizon == 0 {
            return Err(OptimError::config(
                "weighting.horizon",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn build(&self, tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            OlAux::new(*self, tasks),
            self.on,
        )))
    }
}

/// What OL-AUX remembers, by auxiliary task in task order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OlAuxState {
    /// `(task, w_a)`.
    pub weights: Vec<(String, f64)>,
    /// `(task, S_a)`: the sums of the current horizon.
    pub sums: Vec<(String, f64)>,
    /// Steps taken within the current horizon.
    pub count: u64,
}

/// OL-AUX (see the module doc).
#[derive(Debug, Clone)]
pub struct OlAux {
    config: OlAuxConfig,
    main: Vec<String>,
    state: OlAuxState,
}

impl OlAux {
    /// OL-AUX with `config` for `tasks` (main tasks as [`main_tasks`] says).
    pub fn new(config: OlAuxConfig, tasks: &[TaskInfo]) -> Self {
        let main = main_tasks(tasks);
        let aux: Vec<String> = tasks
            .iter()
            .filter(|t| !main.contains(&t.name))
            .map(|t| t.name.clone())
            .collect();
        Self {
            config,
            main,
            state: OlAuxState {
                weights: aux.iter().map(|n| (n.clone(), config.init)).collect(),
                sums: aux.iter().map(|n| (n.clone(), 0.0)).collect(),
                count: 0,
            },
        }
    }

    /// The current auxiliary weights and sums.
    pub fn state(&self) -> &OlAuxState {
        &self.state
    }

    fn weight(&self, task: &str) -> f64 {
        self.state
            .weights
            .iter()
            .find(|(n, _)| n == task)
            .map_or(self.config.init, |(_, w)| *w)
    }
}

impl Aggregator for OlAux {
    fn name(&self) -> &str {
        "ol_aux"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let names = input.tasks;
        let Some(split) = MainAux::of_step(input, &self.main, "ol_aux", "weights kept") else {
            let w = names.iter().map(|n| self.weight(n)).collect();
            return Ok(Aggregation::weights(w));
        };
        // This step's weights, then its signal into the sums.
        let weights: Vec<f64> = names
            .iter()
            .zip(&split.is_main)
            .map(|(n, &m)| if m { 1.0 } else { self.weight(n) })
            .collect();
        for a in split.aux() {
            let s = match self.config.signal {
                OlAuxSignal::Dot => split.dot_main[a],
                OlAuxSignal::Cosine => split.cosine(g, a),
            };
            if let Some((_, sum)) = self.state.sums.iter_mut().find(|(n, _)| *n == names[a]) {
                *sum += s;
            }
        }
        self.state.count += 1;
        if self.state.count >= self.config.horizon {
            let lr = self.config.lr;
            for ((_, w), (_, s)) in self.state.weights.iter_mut().zip(&mut self.state.sums) {
                *w = match self.config.update {
                    OlAuxUpdate::Additive => (*w + lr * *s).max(0.0),
                    OlAuxUpdate::Multiplicative => *w * (lr * *s).exp(),
                };
                if !w.is_finite() {
                    tracing::warn!(
                        step = input.step,
                        "ol_aux: a weight left the finite range; reset to init"
                    );
                    *w = self.config.init;
                }
                *s = 0.0;
            }
            self.state.count = 0;
        }
        Ok(Aggregation::weights(weights))
    }

    fn state(&self) -> Result<serde_json::Value> {
        state::to_json(STATE, &self.state)
    }

    fn load_state(&mut self, value: &serde_json::Value) -> Result<()> {
        let s: OlAuxState = state::from_json(STATE, value)?;
        let names = |v: &[(String, f64)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&s.weights) != names(&self.state.weights) || names(&s.sums) != names(&s.weights) {
            return Err(OptimError::config(
                STATE,
                format!(
                    "auxiliary tasks {:?} do not match this run's {:?}",
                    names(&s.weights),
                    names(&self.state.weights)
                ),
            ));
        }
        self.state = s;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::{aggregate_rows, row_names};
    use rand::SeedableRng;

    fn ol_aux(config: OlAuxConfig, t: usize) -> OlAux {
        let tasks: Vec<TaskInfo> = row_names(t).into_iter().map(TaskInfo::regression).collect();
        OlAux::new(config, &tasks)
    }

    #[test]
    fn weights_move_every_horizon_by_the_summed_inner_products() {
        let config = OlAuxConfig {
            init: 0.5,
            lr: 0.1,
            horizon: 2,
            ..OlAuxConfig::default()
        };
        let mut agg = ol_aux(config, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // main (1, 0); helper (2, 1): dot 2; conflicting (−1, 1): dot −1.
        let rows = vec![vec![1.0, 0.0], vec![2.0, 1.0], vec![-1.0, 1.0]];
        let l = [1.0; 3];
        let (a, _) = aggregate_rows(&mut agg, &rows, &l, &mut rng).unwrap();
        assert_eq!(a.weights, vec![1.0, 0.5, 0.5]);
        let (a, _) = aggregate_rows(&mut agg, &rows, &l, &mut rng).unwrap();
        assert_eq!(a.weights, vec![1.0, 0.5, 0.5]);
        // after two steps: 0.5 + 0.1·4 = 0.9 and max(0, 0.5 − 0.1·2) = 0.3
        let (a, _) = aggregate_rows(&mut agg, &rows, &l, &mut rng).unwrap();
        assert!((a.weights[1] - 0.9).abs() < 1e-12 && (a.weights[2] - 0.3).abs() < 1e-12);
        assert_eq!(agg.state().count, 1);

        // multiplicative on cosines: 0.5 · exp(0.1 · 2 · cos)
        let mut agg = ol_aux(
            OlAuxConfig {
                signal: OlAuxSignal::Cosine,
                update: OlAuxUpdate::Multiplicative,
                ..config
            },
            3,
        );
        for _ in 0..3 {
            aggregate_rows(&mut agg, &rows, &l, &mut rng).unwrap();
        }
        let c1 = 2.0 / 5f64.sqrt();
        let c2 = -1.0 / 2f64.sqrt();
        let w = &agg.state().weights;
        assert!((w[0].1 - 0.5 * (0.2 * c1).exp()).abs() < 1e-12);
        assert!((w[1].1 - 0.5 * (0.2 * c2).exp()).abs() < 1e-12);
    }

    #[test]
    fn state_round_trips_and_a_foreign_state_is_refused() {
        let config = OlAuxConfig {
            horizon: 3,
            ..OlAuxConfig::default()
        };
        let mut agg = ol_aux(config, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let rows = vec![vec![1.0, 0.5], vec![0.25, 1.0], vec![-1.0, 1.0]];
        for _ in 0..4 {
            aggregate_rows(&mut agg, &rows, &[1.0; 3], &mut rng).unwrap();
        }
        let saved = Aggregator::state(&agg).unwrap();
        let mut back = ol_aux(config, 3);
        back.load_state(&saved).unwrap();
        assert_eq!(back.state(), agg.state());
        let mut other = ol_aux(config, 2);
        assert!(other.load_state(&saved).is_err());
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        for (c, key) in [
            (
                OlAuxConfig {
                    horizon: 0,
                    ..OlAuxConfig::default()
                },
                "weighting.horizon",
            ),
            (
                OlAuxConfig {
                    lr: f64::NAN,
                    ..OlAuxConfig::default()
                },
                "weighting.lr",
            ),
            (
                OlAuxConfig {
                    init: -1.0,
                    ..OlAuxConfig::default()
                },
                "weighting.init",
            ),
        ] {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
