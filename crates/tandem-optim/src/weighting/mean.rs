//! `mean` and `sum`: the plain aggregators, `d = (1/T) Σ_t g_t` and `d = Σ_t g_t` (TorchJD's
//! `Mean` and `Sum`).
//!
//! On the shared parameters, `sum` gives the same update as [`Equal`](super::Equal) at `T`
//! backward passes instead of one; they exist as baselines for the other gradient methods (the
//! same code path, the same cost) and for the representation mode. Cost: `T` backward passes
//! (parameters) or `T` head passes and one trunk pass (representation). Stateless.
//!
//! ```toml
//! weighting = { kind = "mean" }             # or "sum"; on = "representation" optional
//! ```
use super::config::MethodConfig;
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::Result;
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

/// `w_t = 1/T` (`mean`) or `w_t = 1` (`sum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mean {
    sum: bool,
}

impl Mean {
    /// The average of the task gradients.
    #[allow(clippy::self_named_constructors)]
    pub fn mean() -> Self {
        Self { sum: false }
    }

    /// The sum of the task gradients.
    pub fn sum() -> Self {
        Self { sum: true }
    }
}

impl Aggregator for Mean {
    fn name(&self) -> &str {
        if self.sum {
            "sum"
        } else {
            "mean"
        }
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let t = input.gramian.len();
        let w = if self.sum { 1.0 } else { 1.0 / t as f64 };
        Ok(Aggregation::weights(vec![w; t]))
    }
}

/// The TOML/JSON form of `mean` and `sum`: only `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlainConfig {
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

/// `mean`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeanConfig(pub PlainConfig);

/// `sum`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SumConfig(pub PlainConfig);

impl MethodConfig for MeanConfig {
    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(Mean::mean(), self.0.on)))
    }
}

impl MethodConfig for SumConfig {
    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(Mean::sum(), self.0.on)))
    }
}
