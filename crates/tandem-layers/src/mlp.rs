//! An MLP trunk for tabular inputs.
//!
//! For a batch of `B` rows of `D = in_features` values and `hidden = [h₁, …, h_L]`:
//!
//! | stage | layers | output shape |
//! |---|---|---|
//! | `fc1` | flatten, linear `D → h₁`, act, dropout | `[B, h₁]` |
//! | `fc2` | linear `h₁ → h₂`, act, dropout | `[B, h₂]` |
//! | … | … | … |
//! | `fc{L}` | linear `h_{L−1} → h_L`, act, dropout | `[B, h_L]` |
//!
//! Stage `k` computes `x_{k+1} = drop_k(act(x_k·Wₖᵀ + bₖ))`, `Wₖ [h_{k+1}, h_k]`, `bₖ [h_{k+1}]`,
//! initialised as PyTorch's `nn.Linear` ([`torch_linear`]: uniform `±1/√fan_in`).
//! Parameter names: `<prefix>.fc{1..L}.{weight,bias}`. The input may have any shape `[B, …]`
//! whose trailing axes hold `D` values in all (a table batch arrives as `[B, D, 1, 1]`); it is
//! flattened to `[B, D]`. `act` is relu by default, applied with the fused
//! bias + activation kernel ([`tandem_tensor::ops::bias_act`], candle's ops off the CPU).
//!
//! # Dropout and the other regularisers
//!
//! With `p = dropout > 0` and `train = true` each stage (or each stage of `dropout_at`) ends
//! with *inverted* dropout (Srivastava et al., JMLR 2014, in the form PyTorch's `nn.Dropout`
//! uses): `y = a ⊙ m / (1 − p)`, so that `E[y] = a` and evaluation is the identity. The mask
//! is seeded by the stage input `[B, D]`, the layer path `<prefix>.fc{k+1}` and the run's seed
//! ([`crate::dropout`]): the same batch through the same stage gets the same mask on every
//! run, on every number of threads and after a resume. With `activation = "selu"` dropout is
//! alpha dropout. The other options of [`crate::regularise`] apply too: `dropconnect` on every
//! weight, `norm` between each linear layer and its activation (`layer`, `batch`, `group`;
//! `instance` has no positions to normalise over here and is rejected), `weight_norm`,
//! `init`.
use crate::dropout::{alpha_dropout, dropout, mask_seed};
use crate::regularise::default_groups;
use crate::{
    Activation, Backbone, Dense, LayerError, NormKind, Regularisers, Result, StageNorm, WeightInit,
};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::ops::{bias_act, Backend};

/// Configuration of the [`Mlp`] trunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Width `D` of an input row. Default 0, meaning "taken from the data": the caller sets it
    /// before building ([`Mlp::new`] rejects 0).
    pub in_features: usize,
    /// Widths of the hidden layers, one stage each; the last is the feature width.
    /// Default `[256, 128]`. At least one layer, none of width 0.
    pub hidden: Vec<usize>,
    /// Activation after every linear layer. Default `relu`.
    pub activation: Activation,
    /// Dropout probability after every activation (or those of `dropout_at`), training only.
    /// Default 0.0; must lie in `[0, 1)`.
    pub dropout: f32,
    /// The stages dropout follows (`fc1`, `fc2`, …). Default: every stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout_at: Option<Vec<String>>,
    /// DropConnect probability on every weight, training only. Default 0.0.
    pub dropconnect: f32,
    /// Normalisation between every linear layer and its activation (`instance` is rejected).
    /// Default `none`.
    pub norm: NormKind,
    /// Groups of `norm = "group"`; must divide every hidden width. Default 4.
    #[serde(default = "default_groups")]
    pub groups: usize,
    /// Weight normalisation of every weight. Default false.
    pub weight_norm: bool,
    /// Initialisation of the weights. Default `default` (PyTorch's).
    pub init: WeightInit,
    /// Mixed into the dropout and DropConnect masks' seeds: the run sets its seed here. Not
    /// part of the TOML form.
    #[serde(skip)]
    pub mask_seed: u64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            in_features: 0,
            hidden: vec![256, 128],
            activation: Activation::Relu,
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

impl MlpConfig {
    /// Checks `hidden` and the regularisers, returning an error naming the offending field
    /// (`hidden`, `hidden[i]`, `dropout`, `groups`, `norm`, …). `in_features = 0` is accepted here (it means
    /// "taken from the data"); [`Mlp::new`] requires it to be set.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() {
            return Err(config_error("hidden", "needs at least one layer"));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(config_error(&format!("hidden[{i}]"), "must be at least 1"));
        }
        let stages: Vec<(String, usize, bool)> = self
            .hidden
            .iter()
            .enumerate()
            .map(|(k, &h)| (stage_name(k), h, false))
            .collect();
        self.regularisers().validate(&stages)
    }

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

    /// Width of the features the trunk returns: the last hidden width (0 if `hidden` is
    /// empty, which [`validate`](Self::validate) rejects).
    pub fn out_dim(&self) -> usize {
        self.hidden.last().copied().unwrap_or(0)
    }
}

fn config_error(field: &str, reason: &str) -> LayerError {
    LayerError::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A multilayer perceptron trunk: `hidden.len()` stages of linear, activation and dropout.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Dense>,
    norms: Vec<Option<StageNorm>>,
    regs: Regularisers,
    config: MlpConfig,
    prefix: String,
}

impl Mlp {
    /// Builds the trunk with its parameters under `vb` (`fc1.weight`, `fc1.bias`, …).
    ///
    /// Errors with [`LayerError::Config`] naming `in_features` when it is 0, or the field
    /// [`MlpConfig::validate`] rejects.
    pub fn new(config: MlpConfig, vb: VarBuilder) -> Result<Self> {
        if config.in_features == 0 {
            return Err(config_error(
                "in_features",
                "must be at least 1 (0 means \"taken from the data\": set it before building)",
            ));
        }
        config.validate()?;
        let regs = config.regularisers();
        let mut layers = Vec::with_capacity(config.hidden.len());
        let mut norms = Vec::with_capacity(config.hidden.len());
        let mut d_in = config.in_features;
        for (k, &h) in config.hidden.iter().enumerate() {
            let vb = vb.pp(stage_name(k));
            layers.push(Dense::new(
                d_in,
                h,
                regs.init,
                regs.weight_norm,
                vb.clone(),
            )?);
            norms.push(StageNorm::new(
                regs.norm,
                h,
                false,
                regs.groups,
                vb.pp("norm"),
            )?);
            d_in = h;
        }
        Ok(Self {
            layers,
            norms,
            regs,
            config,
            prefix: vb.prefix(),
        })
    }

    /// The configuration this trunk was built from.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    fn join(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn layer(&self, k: usize) -> candle_core::Result<&Dense> {
        match self.layers.get(k) {
            Some(l) => Ok(l),
            None => candle_core::bail!("Mlp has {} stages, asked for stage {k}", self.layers.len()),
        }
    }
}

pub(crate) fn stage_name(k: usize) -> String {
    format!("fc{}", k + 1)
}

impl Backbone for Mlp {
    fn out_dim(&self) -> usize {
        self.config.out_dim()
    }

    fn num_stages(&self) -> usize {
        self.layers.len()
    }

    fn stage_name(&self, k: usize) -> String {
        stage_name(k)
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![self.config.in_features]
    }

    fn stage_shape(&self, k: usize) -> Vec<usize> {
        vec![self.config.hidden.get(k).copied().unwrap_or(0)]
    }

    /// Flattens `x [B, …]` to `[B, d_in]` (an error if the trailing axes do not hold `d_in`
    /// values), then linear, activation and, when training, seeded dropout.
    fn forward_stage(&self, k: usize, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let layer = self.layer(k)?;
        let d_in = layer.in_dim()?;
        let dims = x.dims();
        let Some((&b, rest)) = dims.split_first() else {
            candle_core::bail!(
                "Mlp stage {}: input of shape [B, …] expected, got a scalar",
                stage_name(k)
            )
        };
        let width: usize = rest.iter().product();
        if width != d_in {
            candle_core::bail!(
                "Mlp stage {}: expected {d_in} features per row, got input of shape {dims:?} ({width} per row)",
                stage_name(k)
            )
        }
        let flat = if rest.len() == 1 {
            x.clone()
        } else {
            x.reshape((b, width))?
        };
        let r = &self.regs;
        let z = layer.matmul(&flat, train, r.dropconnect, r.mask_seed)?;
        let act = self.config.activation;
        let y = match &self.norms[k] {
            None => bias_act(&z, Some(layer.bias()), act, Backend::Tandem)?,
            Some(n) => {
                let z = n.forward(&z.broadcast_add(layer.bias())?, train)?;
                bias_act(&z, None, act, Backend::Tandem)?
            }
        };
        if !train || r.dropout <= 0.0 {
            return Ok(y);
        }
        let name = stage_name(k);
        if !r.drops_after(&name) {
            return Ok(y);
        }
        let seed = mask_seed(&flat, &self.join(&name), r.mask_seed)?;
        if r.alpha_dropout {
            alpha_dropout(&y, r.dropout, seed)
        } else {
            dropout(&y, r.dropout, seed)
        }
    }

    fn stage_prefixes(&self, k: usize) -> Vec<String> {
        vec![self.join(&stage_name(k))]
    }

    /// `[weight, bias]` of the stage's linear layer (`[weight_g, weight_v, bias]` under
    /// weight norm), then its norm layer's `[γ, β]` if it has one.
    fn stage_parameters(&self, k: usize) -> candle_core::Result<Vec<Tensor>> {
        let mut p = self.layer(k)?.parameters();
        if let Some(n) = &self.norms[k] {
            p.extend(n.parameters());
        }
        Ok(p)
    }

    fn prefix(&self) -> String {
        self.prefix.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use std::collections::HashMap;

    fn build(cfg: MlpConfig, seed: u64) -> Result<(Mlp, VarMap)> {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, seed, DType::F32, &Device::Cpu);
        Ok((Mlp::new(cfg, vb.pp("trunk"))?, vars))
    }

    fn input(b: usize, d: usize, phase: f32) -> candle_core::Result<Tensor> {
        let t = Tensor::arange(0f32, (b * d) as f32, &Device::Cpu)?.reshape((b, d))?;
        t.affine(0.37, f64::from(phase))?.sin()
    }

    fn config_field(cfg: MlpConfig) -> String {
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 0, DType::F32, &Device::Cpu);
        match Mlp::new(cfg, vb) {
            Err(LayerError::Config { field, .. }) => field,
            Err(e) => format!("not a config error: {e}"),
            Ok(_) => "built".into(),
        }
    }

    #[test]
    fn shapes_names_and_parameters() -> Result<()> {
        let cfg = MlpConfig {
            in_features: 6,
            hidden: vec![5, 4, 3],
            ..Default::default()
        };
        let (m, vars) = build(cfg, 0)?;
        assert_eq!(m.out_dim(), 3);
        assert_eq!(m.num_stages(), 3);
        let x = input(7, 6, 0.0)?;
        let y2 = m.forward_t(&x, false)?;
        assert_eq!(y2.dims(), &[7, 3]);
        let y4 = m.forward_t(&x.reshape((7, 6, 1, 1))?, false)?;
        assert_eq!(y4.dims(), &[7, 3]);
        assert_eq!(y2.to_vec2::<f32>()?, y4.to_vec2::<f32>()?);
        let h = m.forward_stage(0, &x.reshape((7, 6, 1, 1))?, false)?;
        assert_eq!(h.dims(), &[7, 5]);
        assert!(m.forward_stage(0, &input(7, 5, 0.0)?, false).is_err());
        assert!(m.forward_stage(3, &h, false).is_err());

        let names: Vec<String> = tandem_tensor::sorted_vars(&vars)
            .into_iter()
            .map(|v| v.0)
            .collect();
        assert_eq!(
            names,
            [
                "trunk.fc1.bias",
                "trunk.fc1.weight",
                "trunk.fc2.bias",
                "trunk.fc2.weight",
                "trunk.fc3.bias",
                "trunk.fc3.weight"
            ]
        );
        assert_eq!(m.stage_name(1), "fc2");
        assert_eq!(m.stage_prefixes(1), ["trunk.fc2"]);
        assert_eq!(m.prefix(), "trunk");
        let p = m.stage_parameters(0)?;
        assert_eq!((p[0].dims(), p[1].dims()), (&[5, 6][..], &[5][..]));
        let n: usize = (0..3)
            .map(|k| {
                m.stage_parameters(k)
                    .map(|p| p.iter().map(|t| t.elem_count()).sum::<usize>())
            })
            .sum::<candle_core::Result<usize>>()?;
        assert_eq!(n, 5 * 6 + 5 + 4 * 5 + 4 + 3 * 4 + 3);
        assert!(m.stage_parameters(3).is_err());
        Ok(())
    }

    #[test]
    fn hand_derived_forward() -> Result<()> {
        let dev = Device::Cpu;
        let t = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &dev);
        let tensors = HashMap::from([
            (
                "m.fc1.weight".to_string(),
                t(&[1.0, -1.0, 0.5, 0.5], &[2, 2])?,
            ),
            ("m.fc1.bias".to_string(), t(&[0.5, -1.0], &[2])?),
            ("m.fc2.weight".to_string(), t(&[2.0, 3.0], &[1, 2])?),
            ("m.fc2.bias".to_string(), t(&[0.25], &[1])?),
        ]);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let cfg = MlpConfig {
            in_features: 2,
            hidden: vec![2, 1],
            ..Default::default()
        };
        let m = Mlp::new(cfg.clone(), vb.pp("m"))?;
        // x = [1, 2]:  z₁ = [1 − 2 + 0.5, 0.5 + 1 − 1] = [−0.5, 0.5] → relu [0, 0.5]
        //              z₂ = 2·0 + 3·0.5 + 0.25 = 1.75
        // x = [−1, 0]: z₁ = [−0.5, −1.5] → [0, 0];  z₂ = 0.25
        let x = t(&[1.0, 2.0, -1.0, 0.0], &[2, 2, 1, 1])?;
        let y = m.forward_t(&x, false)?.to_vec2::<f32>()?;
        assert_eq!(y, [[1.75], [0.25]]);
        // Same weights, tanh: tanh(3·tanh(0.5) + 2·tanh(−0.5) + 0.25)
        let tensors = HashMap::from([
            (
                "m.fc1.weight".to_string(),
                t(&[1.0, -1.0, 0.5, 0.5], &[2, 2])?,
            ),
            ("m.fc1.bias".to_string(), t(&[0.5, -1.0], &[2])?),
            ("m.fc2.weight".to_string(), t(&[2.0, 3.0], &[1, 2])?),
            ("m.fc2.bias".to_string(), t(&[0.25], &[1])?),
        ]);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let m = Mlp::new(
            MlpConfig {
                activation: Activation::Tanh,
                ..cfg
            },
            vb.pp("m"),
        )?;
        let y = m
            .forward_t(&t(&[1.0, 2.0], &[1, 2])?, false)?
            .to_vec2::<f32>()?;
        let want = (2.0 * (-0.5f32).tanh() + 3.0 * 0.5f32.tanh() + 0.25).tanh();
        assert!((y[0][0] - want).abs() < 1e-6, "{} vs {want}", y[0][0]);
        Ok(())
    }

    #[test]
    fn dropout_is_seeded_inverted_and_train_only() -> Result<()> {
        let p = 0.3f32;
        let cfg = MlpConfig {
            in_features: 8,
            hidden: vec![64, 32],
            dropout: p,
            ..Default::default()
        };
        let (m, _vars) = build(cfg.clone(), 5)?;
        let x = input(16, 8, 0.0)?;
        // train = false: no dropout at all.
        let plain = m.forward_stage(0, &x, false)?;
        let no_drop = {
            let (m0, _v) = build(
                MlpConfig {
                    dropout: 0.0,
                    ..cfg.clone()
                },
                5,
            )?;
            m0.forward_stage(0, &x, true)?
        };
        assert_eq!(plain.to_vec2::<f32>()?, no_drop.to_vec2::<f32>()?);
        // The same input gives the same mask, also in a rebuilt model (a resumed run).
        let a = m.forward_stage(0, &x, true)?.to_vec2::<f32>()?;
        let b = m.forward_stage(0, &x, true)?.to_vec2::<f32>()?;
        assert_eq!(a, b);
        let (again, _v) = build(cfg.clone(), 5)?;
        assert_eq!(a, again.forward_stage(0, &x, true)?.to_vec2::<f32>()?);
        // A [B, D, 1, 1] table batch gets the mask of its [B, D] form.
        assert_eq!(
            a,
            m.forward_stage(0, &x.reshape((16, 8, 1, 1))?, true)?
                .to_vec2::<f32>()?
        );
        // Kept values are scaled by 1/(1 − p), dropped ones are 0.
        let plain = plain.to_vec2::<f32>()?;
        let (mut kept, mut dropped) = (0, 0);
        for (ra, rp) in a.iter().zip(&plain) {
            for (&va, &vp) in ra.iter().zip(rp) {
                if va == 0.0 {
                    dropped += 1;
                } else {
                    kept += 1;
                    assert!((va - vp / (1.0 - p)).abs() <= 1e-6 * vp.abs().max(1.0));
                }
            }
        }
        assert!(kept > 0 && dropped > 0, "{kept} kept, {dropped} dropped");
        // Another batch gets another mask (identity activation: zeros are the mask's).
        let (lin, _v) = build(
            MlpConfig {
                activation: Activation::Identity,
                ..cfg.clone()
            },
            5,
        )?;
        let dropped = |x: &Tensor| -> candle_core::Result<Vec<bool>> {
            let y = lin
                .forward_stage(0, x, true)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            Ok(y.iter().map(|&v| v == 0.0).collect())
        };
        let (m1, m2) = (dropped(&x)?, dropped(&input(16, 8, 1.0)?)?);
        assert_eq!(m1, dropped(&x)?);
        assert!(m1.iter().zip(&m2).any(|(a, b)| a != b));
        // Another layer prefix gets another mask.
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 5, DType::F32, &Device::Cpu);
        let renamed = Mlp::new(
            MlpConfig {
                activation: Activation::Identity,
                ..cfg
            },
            vb.pp("other"),
        )?;
        let y = renamed
            .forward_stage(0, &x, true)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let m3: Vec<bool> = y.iter().map(|&v| v == 0.0).collect();
        assert!(m1.iter().zip(&m3).any(|(a, b)| a != b));
        Ok(())
    }

    fn dropout_mask(n: usize, p: f32, seed: u64) -> Vec<f32> {
        crate::dropout::keep_mask(n, p, seed, 1.0 / (1.0 - p))
    }

    #[test]
    fn dropout_keeps_about_one_minus_p() -> Result<()> {
        for p in [0.1f32, 0.5, 0.8] {
            let n = 200_000;
            let mask = dropout_mask(n, p, 42);
            let kept = mask.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
            // Binomial standard deviation ≤ 0.0012 here: 5σ.
            assert!(
                (kept - (1.0 - f64::from(p))).abs() < 0.006,
                "p {p}: kept {kept}"
            );
            let scale = 1.0 / (1.0 - p);
            assert!(mask.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-6));
            assert_eq!(mask, dropout_mask(n, p, 42));
            assert_ne!(mask, dropout_mask(n, p, 43));
        }
        // Through a stage, on 64 × 4096 activations.
        let cfg = MlpConfig {
            in_features: 4,
            hidden: vec![4096],
            activation: Activation::Identity,
            dropout: 0.25,
            ..Default::default()
        };
        let (m, _v) = build(cfg, 1)?;
        let x = (input(64, 4, 0.0)? + 2.0)?;
        let y = m.forward_stage(0, &x, true)?;
        let plain = m.forward_stage(0, &x, false)?;
        let nz = |t: &Tensor| -> candle_core::Result<f32> {
            t.ne(0f32)?
                .to_dtype(DType::F32)?
                .mean_all()?
                .to_scalar::<f32>()
        };
        let frac = nz(&y)? / nz(&plain)?;
        assert!((frac - 0.75).abs() < 0.01, "kept {frac}");
        // Inverted dropout keeps the expectation: E|y| = |a|.
        let ratio =
            y.abs()?.sum_all()?.to_scalar::<f32>()? / plain.abs()?.sum_all()?.to_scalar::<f32>()?;
        assert!((ratio - 1.0).abs() < 0.02, "mean ratio {ratio}");
        Ok(())
    }

    #[test]
    fn dropout_backward_goes_through_the_mask() -> Result<()> {
        let cfg = MlpConfig {
            in_features: 3,
            hidden: vec![50],
            activation: Activation::Identity,
            dropout: 0.5,
            ..Default::default()
        };
        let (m, vars) = build(cfg, 2)?;
        let x = input(4, 3, 0.0)?;
        let y = m.forward_stage(0, &x, true)?;
        let g = y.sum_all()?.backward()?;
        let bias = tandem_tensor::sorted_vars(&vars)
            .into_iter()
            .find(|(n, _)| n == "trunk.fc1.bias")
            .map(|(_, v)| v)
            .ok_or_else(|| candle_core::Error::Msg("no bias".into()))?;
        let gb = g
            .get(&bias)
            .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?
            .to_vec1::<f32>()?;
        // ∂Σy/∂b_j = Σ_i m_ij, a multiple of the scale 2.
        let mask = y.ne(0f32)?.to_dtype(DType::F32)?.sum(0)?.to_vec1::<f32>()?;
        for (g, c) in gb.iter().zip(&mask) {
            assert!((g - 2.0 * c).abs() < 1e-5, "{g} vs {c}");
        }
        Ok(())
    }

    #[test]
    fn config_errors_name_the_field() {
        let ok = MlpConfig {
            in_features: 3,
            ..Default::default()
        };
        assert_eq!(config_field(ok.clone()), "built");
        assert_eq!(config_field(MlpConfig::default()), "in_features");
        for (cfg, field) in [
            (
                MlpConfig {
                    hidden: vec![],
                    ..ok.clone()
                },
                "hidden",
            ),
            (
                MlpConfig {
                    hidden: vec![4, 0],
                    ..ok.clone()
                },
                "hidden[1]",
            ),
            (
                MlpConfig {
                    dropout: 1.0,
                    ..ok.clone()
                },
                "dropout",
            ),
            (
                MlpConfig {
                    dropout: -0.1,
                    ..ok.clone()
                },
                "dropout",
            ),
            (
                MlpConfig {
                    dropout: f32::NAN,
                    ..ok.clone()
                },
                "dropout",
            ),
        ] {
            assert_eq!(config_field(cfg.clone()), field);
            let msg = cfg
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(field), "{msg}");
        }
        // in_features = 0 passes validate: it is set from the data later.
        assert!(MlpConfig::default().validate().is_ok());
    }

    #[test]
    fn serde_defaults_and_unknown_fields() -> std::result::Result<(), toml::de::Error> {
        let c: MlpConfig = toml::from_str("hidden = [8]\ndropout = 0.5")?;
        assert_eq!(
            c,
            MlpConfig {
                hidden: vec![8],
                dropout: 0.5,
                ..Default::default()
            }
        );
        let e = toml::from_str::<MlpConfig>("hiden = [8]")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("hiden"), "{e}");
        Ok(())
    }
}
