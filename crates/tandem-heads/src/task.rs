//! The [`Task`] trait.
use crate::Metric;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use tandem_tensor::{Target, TaskKind};

/// A task head: maps features `[B, in_dim]` to predictions `[B, out_dim]`.
pub type Head = Box<dyn candle_nn::Module + Send + Sync>;

/// What one task predicts and how it is scored.
pub trait Task: Send + Sync {
    /// The task's name: its key in batches, predictions, metrics and checkpoint paths.
    fn name(&self) -> &str;

    /// Regression or classification.
    fn kind(&self) -> TaskKind;

    /// Width of the head's output.
    fn out_dim(&self) -> usize;

    /// Whether the task is trained only to help the main task.
    fn is_auxiliary(&self) -> bool;

    /// Builds the head on features of width `in_dim`, its parameters under `vb`.
    fn build_head(&self, in_dim: usize, vb: VarBuilder) -> Result<Head> {
        Ok(Box::new(tandem_tensor::torch_linear(
            in_dim,
            self.out_dim(),
            vb,
        )?))
    }

    /// Scalar loss over the labelled samples of the batch (`target.mask`).
    fn loss(&self, prediction: &Tensor, target: &Target) -> Result<Tensor>;

    /// A fresh metric accumulator.
    fn metrics(&self) -> Box<dyn Metric>;

    /// The metric that selects the best epoch (lower is better), e.g. `nme` or `error`.
    fn primary_metric(&self) -> &'static str;
}
