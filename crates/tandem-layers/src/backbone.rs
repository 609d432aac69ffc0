//! The [`Backbone`] trait: a feature extractor made of stages.
//!
//! A backbone maps an input `[B, C, H, W]` to features `[B, out_dim]` through
//! `num_stages()` stages, `x_{k+1} = stage_k(x_k)`. Exposing the stages (not only the whole
//! forward pass) is what lets sharing strategies tie activations between task columns
//! (soft sharing) or mix them (cross-stitch units) after any stage.
use candle_core::{Result, Tensor};

/// A feature extractor shared by tasks (or one per task column).
pub trait Backbone: Send + Sync {
    /// Width of the feature vector the last stage returns.
    fn out_dim(&self) -> usize;

    /// Number of stages.
    fn num_stages(&self) -> usize;

    /// Name of stage `k` (used in configs and checkpoint paths, e.g. `conv1`).
    fn stage_name(&self, k: usize) -> String;

    /// The shape of one input sample (`[C, H, W]` for an image trunk, `[d_in]` for a table),
    /// without the batch axis. Architectures that gate on the input (MMoE's gates read the
    /// flattened input) size their layers from it.
    fn input_shape(&self) -> Vec<usize>;

    /// The shape of one sample of stage `k`'s output, without the batch axis: `[C_k, H_k, W_k]`
    /// for a convolutional stage, `[D_k]` for a dense one. Stage-wise architectures (MTAN's
    /// attention modules, PLE's gates) size their layers from it.
    fn stage_shape(&self, k: usize) -> Vec<usize>;

    /// Runs stage `k` on `x`. `train` enables training-only behaviour such as dropout.
    fn forward_stage(&self, k: usize, x: &Tensor, train: bool) -> Result<Tensor>;

    /// Runs every stage in order.
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for k in 0..self.num_stages() {
            x = self.forward_stage(k, &x, train)?;
        }
        Ok(x)
    }

    /// The `VarBuilder` prefixes of the parameters of stage `k` (e.g. `trunk.conv1`).
    fn stage_prefixes(&self, k: usize) -> Vec<String>;

    /// The parameter tensors of stage `k`, in a fixed order that is the same for every
    /// backbone of the same architecture (soft sharing ties them across task columns
    /// element by element).
    ///
    /// The default returns an error: a backbone that does not expose its parameters cannot
    /// take part in a parameter tie, and saying so beats a silent zero penalty.
    fn stage_parameters(&self, k: usize) -> Result<Vec<Tensor>> {
        candle_core::bail!(
            "backbone does not expose the parameters of stage {k} ({})",
            self.stage_name(k)
        )
    }

    /// The `VarBuilder` prefix under which all this backbone's parameters live.
    fn prefix(&self) -> String;
}
