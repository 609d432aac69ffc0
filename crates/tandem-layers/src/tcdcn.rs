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
//!
//! # Regularisers
//!
//! The options of [`crate::regularise`] (all off by default) change a stage to
//! `conv → norm → act → pool → dropout` (`fc`: `linear → norm → act → dropout`, DropConnect
//! on its weight). A norm layer's variables live under `<prefix>.<stage>.norm`; with weight
//! norm `weight` becomes `weight_g` and `weight_v`. With every option off each stage runs the
//! fused conv + bias + activation + pooling kernel, as without the options.
use crate::dropout::{alpha_dropout, dropout, mask_seed};
use crate::regularise::default_groups;
use crate::{
    Activation, Backbone, Conv2d, Dense, LayerError, NormKind, Regularisers, Result, StageNorm,
    WeightInit,
};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::ops::{bias_act, bias_act_pool2x2, Backend};

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
    /// Dropout probability after the stages of `dropout_at` (training only; alpha dropout
    /// with `activation = "selu"`). Default 0.0; must lie in `[0, 1)`.
    pub dropout: f32,
    /// The stages dropout follows (`conv1`…`conv4`, `fc`). Default: every stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout_at: Option<Vec<String>>,
    /// DropConnect probability on the `fc` weight (training only). Default 0.0.
    pub dropconnect: f32,
    /// Normalisation after every conv and the fc layer (instance norm: conv stages only).
    /// Default `none`.
    pub norm: NormKind,
    /// Groups of `norm = "group"`; must divide every stage's width. Default 4.
    #[serde(default = "default_groups")]
    pub groups: usize,
    /// Weight normalisation of every conv and fc weight. Default false.
    pub weight_norm: bool,
    /// Initialisation of the conv and fc weights. Default `default` (PyTorch's).
    pub init: WeightInit,
    /// Mixed into the dropout and DropConnect masks' seeds: the run sets its seed here. Not
    /// part of the TOML form.
    #[serde(skip)]
    pub mask_seed: u64,
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
            dropout: 0.0,
            dropout_at: None,
            dropconnect: 0.0,
            norm: NormKind::None,
            groups: default_groups(),
            weight_norm: false,
            init: WeightInit::Default,
            mask_seed: 0,
        }
    }
}

impl TcdcnConfig {
    /// The regulariser options as one value.
    pub fn regularisers(&self) -> Regularisers {
        Regularisers {
            dropout: self.dropout,
            dropout_at: self.dropout_at.clone(),
            dropconnect: self.dropconnect,
            norm: self.norm,
            groups: self.groups,
            weight_norm: self.weight_norm,
            init: self.init,
            alpha_dropout: self.activation == Activation::Selu,
            mask_seed: self.mask_seed,
        }
    }

    /// Checks the configuration ([`spatial_sizes`](Self::spatial_sizes) and the
    /// regularisers), returning an error naming the offending field.
    pub fn validate(&self) -> Result<()> {
        self.spatial_sizes()?;
        let mut stages: Vec<(String, usize, bool)> = (0..4)
            .map(|i| (format!("conv{}", i + 1), self.channels[i], true))
            .collect();
        stages.push(("fc".into(), self.feature_dim, false));
        self.regularisers().validate(&stages)
    }

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
    fc: Dense,
    /// The normalisation layer of each stage, if any.
    norms: Vec<Option<StageNorm>>,
    regs: Regularisers,
    config: TcdcnConfig,
    prefix: String,
}

impl Tcdcn {
    /// The stage names, in order: the default stage lists of soft sharing, cross-stitch units
    /// and the stage-wise architectures that build on this trunk.
    pub const STAGES: [&'static str; 5] = ["conv1", "conv2", "conv3", "conv4", "fc"];

    /// Builds the trunk with its parameters under `vb`.
    pub fn new(config: TcdcnConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let sizes = config.spatial_sizes()?;
        let regs = config.regularisers();
        let mut convs = Vec::with_capacity(4);
        let mut norms = Vec::with_capacity(5);
        let mut c_in = config.in_channels;
        for i in 0..4 {
            let vb = vb.pp(format!("conv{}", i + 1));
            let c = config.channels[i];
            convs.push(Conv2d::with_options(
                (c_in, c, config.kernels[i], 0),
                regs.init,
                regs.weight_norm,
                config.kernels_backend,
                vb.clone(),
            )?);
            norms.push(StageNorm::new(
                regs.norm,
                c,
                true,
                regs.groups,
                vb.pp("norm"),
            )?);
            c_in = c;
        }
        let flat = config.channels[3] * sizes[3] * sizes[3];
        let vb_fc = vb.pp("fc");
        let fc = Dense::new(
            flat,
            config.feature_dim,
            regs.init,
            regs.weight_norm,
            vb_fc.clone(),
        )?;
        norms.push(StageNorm::new(
            regs.norm,
            config.feature_dim,
            false,
            regs.groups,
            vb_fc.pp("norm"),
        )?);
        Ok(Self {
            convs,
            fc,
            norms,
            regs,
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
        Self::STAGES.get(k).copied().unwrap_or("none").into()
    }

    fn input_shape(&self) -> Vec<usize> {
        let (c, s) = (self.config.in_channels, self.config.input_size);
        vec![c, s, s]
    }

    fn stage_shape(&self, k: usize) -> Vec<usize> {
        match (k, self.config.spatial_sizes()) {
            (0..=3, Ok(sizes)) => vec![self.config.channels[k], sizes[k], sizes[k]],
            _ => vec![self.config.feature_dim],
        }
    }

    fn forward_stage(&self, k: usize, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (act, be) = (self.config.activation, self.config.kernels_backend);
        let norm = self.norms.get(k).and_then(Option::as_ref);
        let y = match k {
            0..=2 => {
                let x = if k == 0 && self.config.standardize {
                    standardize(x)?
                } else {
                    x.clone()
                };
                match norm {
                    None => self.convs[k].forward_act_pool2x2(&x, act)?,
                    Some(n) => {
                        let z = n.forward(&self.convs[k].forward(&x)?, train)?;
                        bias_act_pool2x2(&z, None, act, be)?
                    }
                }
            }
            3 => match norm {
                None => {
                    let z = self.convs[3].forward_no_bias(x)?;
                    bias_act(&z, Some(self.convs[3].bias()), act, be)?
                }
                Some(n) => bias_act(
                    &n.forward(&self.convs[3].forward(x)?, train)?,
                    None,
                    act,
                    be,
                )?,
            },
            4 => {
                let r = &self.regs;
                let z = self
                    .fc
                    .matmul(&x.flatten_from(1)?, train, r.dropconnect, r.mask_seed)?;
                match norm {
                    None => bias_act(&z, Some(self.fc.bias()), act, be)?,
                    Some(n) => {
                        let z = n.forward(&z.broadcast_add(self.fc.bias())?, train)?;
                        bias_act(&z, None, act, be)?
                    }
                }
            }
            _ => candle_core::bail!("Tcdcn has 5 stages, asked for stage {k}"),
        };
        if !train || self.regs.dropout <= 0.0 {
            return Ok(y);
        }
        let name = self.stage_name(k);
        if !self.regs.drops_after(&name) {
            return Ok(y);
        }
        let seed = mask_seed(x, &self.join(&name), self.regs.mask_seed)?;
        if self.regs.alpha_dropout {
            alpha_dropout(&y, self.regs.dropout, seed)
        } else {
            dropout(&y, self.regs.dropout, seed)
        }
    }

    fn stage_prefixes(&self, k: usize) -> Vec<String> {
        vec![self.join(&self.stage_name(k))]
    }

    fn prefix(&self) -> String {
        self.prefix.clone()
    }

    /// `[weight, bias]` of the stage's convolution or linear layer (`[weight_g, weight_v,
    /// bias]` under weight norm), then its norm layer's `[γ, β]` if it has one. Running
    /// statistics are buffers, not parameters.
    fn stage_parameters(&self, k: usize) -> candle_core::Result<Vec<Tensor>> {
        let mut p = match k {
            0..=3 => self.convs[k].parameters(),
            4 => self.fc.parameters(),
            _ => candle_core::bail!("Tcdcn has 5 stages, asked for stage {k}"),
        };
        if let Some(n) = &self.norms[k] {
            p.extend(n.parameters());
        }
        Ok(p)
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
