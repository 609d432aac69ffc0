//! [`Target`]: one task's targets for a batch.
//!
//! Shapes: regression targets are `[B, D]` f32; class targets are `[B]` u32 class indices.
//! `mask`, when present, is `[B]` f32 with 1 for a labelled sample and 0 for a missing label;
//! losses and metrics average over labelled samples only.
use candle_core::{Result, Tensor};

/// The targets of one task for one batch, with an optional label mask.
#[derive(Debug, Clone)]
pub struct Target {
    /// `[B, D]` f32 for regression, `[B]` u32 for classification.
    pub values: Tensor,
    /// `[B]` f32, 1 = labelled, 0 = missing. `None` means every sample is labelled.
    pub mask: Option<Tensor>,
}

impl Target {
    /// A fully labelled target.
    pub fn new(values: Tensor) -> Self {
        Self { values, mask: None }
    }

    /// A partially labelled target.
    pub fn masked(values: Tensor, mask: Tensor) -> Self {
        Self {
            values,
            mask: Some(mask),
        }
    }

    /// Batch size.
    pub fn batch_size(&self) -> Result<usize> {
        self.values.dim(0)
    }

    /// Number of labelled samples (the batch size when there is no mask).
    pub fn labelled(&self) -> Result<f32> {
        match &self.mask {
            None => Ok(self.batch_size()? as f32),
            Some(m) => m.sum_all()?.to_scalar::<f32>(),
        }
    }
}
