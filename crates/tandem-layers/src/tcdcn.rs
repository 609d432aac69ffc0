//! The TCDCN trunk (Zhang, Luo, Loy, Tang, ECCV 2014).
//!
//! For a 40×40 grayscale face with the default [`TcdcnConfig`]:
//!
//! | stage | layers | output shape |
//! |---|---|---|
//! | `conv1` | conv 5×5 → 16, act, max-pool 2 | `[B, 16, 18, 18]` |
//! | `conv2` | conv 3×3 → 48, act, max-pool 2 | `[B, 48, 8, 8]` |
//! | `conv3` | conv 3×3 → 64, act, max-pool 2 | `[B, 64, 3, 3]` |
//! | `conv4` | conv 2×2 → 64, act | `[B, 64, 2, 2]` |
//! | `fc` | flatten, linear → 100, act | `[B, 100]` |
//!
//! `act` is `|tanh|` by default. Convolutions are "valid" (no padding), stride 1.
//! Parameter names: `<prefix>.conv{1..4}.{weight,bias}`, `<prefix>.fc.{weight,bias}`.
use crate::{Activation, Backbone, Conv2d, LayerError, Result};
use candle_core::Tensor;
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};
use tandem_tensor::ops::{bias_act, Backend};
use tandem_tensor::torch_linear;

/// Configuration of the [`Tcdcn`] trunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcdcnConfig {
    /// Side of the square input image in pixels. Default 40.
    pub input_size: usize,
    /// Input channels. Default 1 (grayscale).
    pub in_channels: usize,
    /// Output channels of the four convolutions. Default `[16, 48, 64, 64]`.
    pub channels: [usize; 4],
    /// Kernel sizes of the four convolutions. Default `[5, 3, 3, 2]`.
    pub kernels: [usize; 4],
    /// Width of the fully connected feature layer. Default 100.
    pub feature_dim: usize,
    /// Activation after every layer. Default `abs_tanh`.
    pub activation: Activation,
    /// Which convolution and pooling kernels to run. Default `tandem` (tandem's own CPU
    /// kernels; candle's ops on other devices).
    pub kernels_backend: Backend,
    /// Standardise every input image to zero mean and unit variance before `conv1`
    /// (`x ← (x − μ) / (σ + 10⁻⁵)` per image), which makes the trunk indifferent to global
    /// brightness and contrast. Default true.
    pub standardize: bool,
}

impl Default for TcdcnConfig {
    fn default() -> Self {
        Self {
            input_size: 40,
            in_channels: 1,
            channels: [16, 48, 64, 64],
            kernels: [5, 3, 3, 2],
            feature_dim: 100,
            activation: Activation::AbsTanh,
            kernels_backend: Backend::Tandem,
            standardize: true,
        }
    }
}

impl TcdcnConfig {
    /// Spatial side after each of the four conv stages, or an error naming the field that
    /// makes the input too small.
    pub fn spatial_sizes(&self) -> Result<[usize; 4]> {
        let mut s = self.input_size;
        let mut out = [0; 4];
        for (i, &k) in self.kernels.iter().enumerate() {
            if k == 0 || s < k {
                return Err(LayerError::Config {
                    field: if k == 0 { format!("kernels[{i}]") } else { "input_size".into() },
                    reason: format!(
                        "input_size {} is too small for the trunk: stage conv{} gets {s}×{s} for a {k}×{k} kernel",
                        self.input_size,
                        i + 1
                    ),
                });
            }
            s = s - k + 1;
            if i < 3 {
                if s < 2 {
                    return Err(LayerError::Config {
                        field: "input_size".into(),
                        reason: format!(
                            "input_size {} is too small for the trunk: nothing left to pool after conv{}",
                            self.input_size,
                            i + 1
                        ),
                    });
                }
                s /= 2;
            }
            out[i] = s;
        }
        for (field, v) in [
            ("in_channels", self.in_channels),
            ("feature_dim", self.feature_dim),
        ] {
            if v == 0 {
                return Err(LayerError::Config {
                    field: field.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if let Some(i) = self.channels.iter().position(|&c| c == 0) {
            return Err(LayerError::Config {
                field: format!("channels[{i}]"),
                reason: "must be at least 1".into(),
            });
        }
        Ok(out)
    }
}

/// The TCDCN trunk: four convolutions and a fully connected feature layer.
#[derive(Debug, Clone)]
pub struct Tcdcn {
    convs: Vec<Conv2d>,
    fc: Linear,
    config: TcdcnConfig,
    prefix: String,
}

impl Tcdcn {
    /// Builds the trunk with its parameters under `vb`.
    pub fn new(config: TcdcnConfig, vb: VarBuilder) -> Result<Self> {
        let sizes = config.spatial_sizes()?;
        let mut convs = Vec::with_capacity(4);
        let mut c_in = config.in_channels;
        for i in 0..4 {
            convs.push(Conv2d::new(
                c_in,
                config.channels[i],
                config.kernels[i],
                0,
                config.kernels_backend,
                vb.pp(format!("conv{}", i + 1)),
            )?);
            c_in = config.channels[i];
        }
        let flat = config.channels[3] * sizes[3] * sizes[3];
        let fc = torch_linear(flat, config.feature_dim, vb.pp("fc"))?;
        Ok(Self {
            convs,
            fc,
            config,
            prefix: vb.prefix(),
        })
    }

    /// The configuration this trunk was built from.
    pub fn config(&self) -> &TcdcnConfig {
        &self.config
    }

    fn join(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }
}

impl Backbone for Tcdcn {
    fn out_dim(&self) -> usize {
        self.config.feature_dim
    }

    fn num_stages(&self) -> usize {
        5
    }

    fn stage_name(&self, k: usize) -> String {
        if k < 4 {
            format!("conv{}", k + 1)
        } else {
            "fc".into()
        }
    }

    fn forward_stage(&self, k: usize, x: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        let (act, be) = (self.config.activation, self.config.kernels_backend);
        match k {
            0..=2 => {
                let x = if k == 0 && self.config.standardize {
                    standardize(x)?
                } else {
                    x.clone()
                };
                self.convs[k].forward_act_pool2x2(&x, act)
            }
            3 => {
                let z = self.convs[3].forward_no_bias(x)?;
                bias_act(&z, Some(self.convs[3].bias()), act, be)
            }
            4 => {
                let z = x.flatten_from(1)?.matmul(&self.fc.weight().t()?)?;
                bias_act(&z, self.fc.bias(), act, be)
            }
            _ => candle_core::bail!("Tcdcn has 5 stages, asked for stage {k}"),
        }
    }

    fn stage_prefixes(&self, k: usize) -> Vec<String> {
        vec![self.join(&self.stage_name(k))]
    }

    fn prefix(&self) -> String {
        self.prefix.clone()
    }

    /// `[weight, bias]` of the stage's convolution or linear layer.
    fn stage_parameters(&self, k: usize) -> candle_core::Result<Vec<Tensor>> {
        match k {
            0..=3 => Ok(vec![
                self.convs[k].weight().clone(),
                self.convs[k].bias().clone(),
            ]),
            4 => {
                let mut p = vec![self.fc.weight().clone()];
                p.extend(self.fc.bias().cloned());
                Ok(p)
            }
            _ => candle_core::bail!("Tcdcn has 5 stages, asked for stage {k}"),
        }
    }
}

/// Per-sample standardisation of `[B, ...]`: zero mean, unit variance over all but the first axis.
fn standardize(x: &Tensor) -> candle_core::Result<Tensor> {
    let b = x.dim(0)?;
    let flat = x.reshape((b, ()))?;
    let mean = flat.mean_keepdim(1)?;
    let centred = flat.broadcast_sub(&mean)?;
    let std = (centred.sqr()?.mean_keepdim(1)?.sqrt()? + 1e-5)?;
    centred.broadcast_div(&std)?.reshape(x.shape())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn shapes_and_names() -> Result<()> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        let t = Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?;
        let mut x = Tensor::zeros((3, 1, 40, 40), DType::F32, &Device::Cpu)?;
        let want = [[3, 16, 18, 18], [3, 48, 8, 8], [3, 64, 3, 3], [3, 64, 2, 2]];
        for (k, w) in want.iter().enumerate() {
            x = t.forward_stage(k, &x, true)?;
            assert_eq!(x.dims(), w);
        }
        assert_eq!(t.forward_stage(4, &x, true)?.dims(), &[3, 100]);
        let names: Vec<String> = tandem_tensor::sorted_vars(&vars)
            .into_iter()
            .map(|v| v.0)
            .collect();
        assert_eq!(names.len(), 10);
        assert_eq!(names[0], "trunk.conv1.bias");
        assert_eq!(t.stage_prefixes(4), ["trunk.fc"]);
        let n: usize = (0..5)
            .map(|k| {
                t.stage_parameters(k)
                    .map(|p| p.iter().map(|t| t.elem_count()).sum::<usize>())
            })
            .sum::<candle_core::Result<usize>>()?;
        let stored: usize = tandem_tensor::sorted_vars(&vars)
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum();
        assert_eq!(n, stored);
        assert!(t.stage_parameters(5).is_err());
        Ok(())
    }

    /// The output and every parameter gradient of `Σ trunk(x) ⊙ r` for one kernel backend.
    fn trunk_case(backend: Backend, act: Activation) -> Result<Vec<Vec<f32>>> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 3, DType::F32, &dev);
        let cfg = TcdcnConfig {
            activation: act,
            kernels_backend: backend,
            ..Default::default()
        };
        let t = Tcdcn::new(cfg, vb.pp("trunk"))?;
        let x = (Tensor::arange(0f32, 8000f32, &dev)?.reshape((5, 1, 40, 40))? * 0.37)?
            .sin()?
            .abs()?;
        let y = t.forward_t(&x, true)?;
        let r = Tensor::arange(0f32, y.elem_count() as f32, &dev)?
            .reshape(y.shape())?
            .cos()?;
        let g = (&y * &r)?.sum_all()?.backward()?;
        let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
        for (_, v) in tandem_tensor::sorted_vars(&vars) {
            let grad = g
                .get(&v)
                .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?;
            out.push(grad.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    #[test]
    fn tandem_kernels_match_candle_ops_on_the_whole_trunk() -> Result<()> {
        for act in [Activation::AbsTanh, Activation::Tanh, Activation::Relu] {
            let ours = trunk_case(Backend::Tandem, act)?;
            let theirs = trunk_case(Backend::Candle, act)?;
            for (a, b) in ours.iter().zip(&theirs) {
                let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
                assert!(err < 1e-3, "{act:?}: relative error {err}");
            }
        }
        Ok(())
    }

    #[test]
    fn too_small_input_names_the_field() {
        let cfg = TcdcnConfig {
            input_size: 16,
            ..Default::default()
        };
        let e = cfg
            .spatial_sizes()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("input_size") && e.contains("too small"), "{e}");
    }
}
