//! [`StageNorm`]: the normalisation layer of one trunk stage, between its conv or linear layer
//! and its activation.
//!
//! Built on candle-nn's `BatchNorm` (running statistics, train/eval behaviour of PyTorch's
//! `BatchNorm1d/2d`) and `GroupNorm` (which, with 1 group, is layer norm over channels and
//! positions, and with `C` groups instance norm). Formulas and sources: [`crate::regularise`].
//!
//! # Shapes
//! Convolution stages `[B, C, H, W]`; feature vectors `[B, D]` (group and layer norm see them
//! as `[B, D, 1]`). Parameters under `<stage>.norm`: `weight` (γ, ones) and `bias` (β, zeros);
//! batch norm adds the buffers `running_mean` (zeros) and `running_var` (ones).
use crate::NormKind;
use candle_core::{bail, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, GroupNorm, Module, ModuleT, VarBuilder};

/// `ε` of every normalisation layer (PyTorch's default).
pub const NORM_EPS: f64 = 1e-5;

#[derive(Debug, Clone)]
enum Layer {
    Batch(BatchNorm),
    Group {
        norm: GroupNorm,
        gamma: Tensor,
        beta: Tensor,
    },
}

/// A stage's normalisation layer.
#[derive(Debug, Clone)]
pub struct StageNorm {
    layer: Layer,
}

impl StageNorm {
    /// The `kind` layer over `channels` channels (`spatial`: the stage has positions) with
    /// `groups` groups for group norm, its variables under `vb`; `None` for
    /// [`NormKind::None`], and for instance norm on a feature vector (which it would map to
    /// `β`).
    pub fn new(
        kind: NormKind,
        channels: usize,
        spatial: bool,
        groups: usize,
        vb: VarBuilder,
    ) -> Result<Option<Self>> {
        let groups = match kind {
            NormKind::None => return Ok(None),
            NormKind::Instance if !spatial => return Ok(None),
            NormKind::Batch => {
                let config = BatchNormConfig {
                    eps: NORM_EPS,
                    remove_mean: true,
                    affine: true,
                    momentum: 0.1,
                };
                let layer = Layer::Batch(candle_nn::batch_norm(channels, config, vb)?);
                return Ok(Some(Self { layer }));
            }
            NormKind::Layer => 1,
            NormKind::Instance => channels,
            NormKind::Group => groups,
        };
        let gamma = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.0))?;
        let beta = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.0))?;
        let norm = GroupNorm::new(gamma.clone(), beta.clone(), channels, groups, NORM_EPS)?;
        Ok(Some(Self {
            layer: Layer::Group { norm, gamma, beta },
        }))
    }

    /// Normalises `x` (`[B, C, …]` or `[B, D]`); `train` selects batch statistics (and updates
    /// the running ones) or the running statistics, for batch norm. A training batch of one
    /// sample is an error naming `model.norm`: its batch statistics are degenerate.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.layer {
            Layer::Batch(bn) => {
                if train && x.dim(0)? < 2 {
                    bail!(
                        "model.norm = \"batch\" needs at least 2 samples per training batch, got {} (raise train.batch_size or choose another norm)",
                        x.dim(0)?
                    )
                }
                bn.forward_t(x, train)
            }
            Layer::Group { norm, .. } => {
                if x.rank() == 2 {
                    norm.forward(&x.unsqueeze(2)?)?.squeeze(2)
                } else {
                    norm.forward(x)
                }
            }
        }
    }

    /// The trained parameters `[γ, β]` (not the running statistics).
    pub fn parameters(&self) -> Vec<Tensor> {
        match &self.layer {
            Layer::Batch(bn) => bn
                .weight_and_bias()
                .map(|(w, b)| vec![w.clone(), b.clone()])
                .unwrap_or_default(),
            Layer::Group { gamma, beta, .. } => vec![gamma.clone(), beta.clone()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn build(kind: NormKind, c: usize, spatial: bool, g: usize) -> Result<(StageNorm, VarMap)> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        let n = StageNorm::new(kind, c, spatial, g, vb.pp("norm"))?
            .ok_or_else(|| candle_core::Error::Msg("no layer".into()))?;
        Ok((n, vars))
    }

    #[test]
    fn none_and_instance_on_vectors_build_nothing() -> Result<()> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        assert!(StageNorm::new(NormKind::None, 4, true, 1, vb.clone())?.is_none());
        assert!(StageNorm::new(NormKind::Instance, 4, false, 1, vb)?.is_none());
        Ok(())
    }

    #[test]
    fn layer_norm_on_vectors_standardises_each_row() -> Result<()> {
        let (n, _) = build(NormKind::Layer, 4, false, 1)?;
        let x = Tensor::new(&[[1f32, 2., 3., 4.], [0., 0., 0., 8.]], &Device::Cpu)?;
        let y = n.forward(&x, true)?.to_vec2::<f32>()?;
        for row in y {
            let m = row.iter().sum::<f32>() / 4.0;
            let v = row.iter().map(|a| (a - m).powi(2)).sum::<f32>() / 4.0;
            assert!(m.abs() < 1e-6 && (v - 1.0).abs() < 1e-4, "{m} {v}");
        }
        Ok(())
    }

    #[test]
    fn batch_norm_of_one_sample_names_the_key() -> Result<()> {
        let (n, vars) = build(NormKind::Batch, 3, false, 1)?;
        let e = n
            .forward(&Tensor::ones((1, 3), DType::F32, &Device::Cpu)?, true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("model.norm"), "{e}");
        // evaluation of one sample is fine, and the buffers are named as buffers
        n.forward(&Tensor::ones((1, 3), DType::F32, &Device::Cpu)?, false)?;
        let names: Vec<String> = tandem_tensor::sorted_vars(&vars)
            .into_iter()
            .map(|v| v.0)
            .collect();
        assert_eq!(
            names,
            [
                "norm.bias",
                "norm.running_mean",
                "norm.running_var",
                "norm.weight"
            ]
        );
        assert_eq!(
            names.iter().filter(|n| tandem_tensor::is_buffer(n)).count(),
            2
        );
        assert_eq!(n.parameters().len(), 2);
        Ok(())
    }
}
