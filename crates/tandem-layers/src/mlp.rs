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
//! # Dropout
//!
//! With `p = dropout > 0` and `train = true` each stage ends with *inverted* dropout
//! (Srivastava et al., JMLR 2014, in the form PyTorch's `nn.Dropout` uses):
//!
//! ```text
//! y = a ⊙ m / (1 − p),   m_ij = [u_ij < 1 − p],   u_ij uniform on [0, 1)
//! ```
//!
//! so that `E[y] = a` and evaluation (`train = false`) is the identity, with no rescaling.
//! The mask is **not** drawn from candle's thread RNG (which cannot be seeded). It comes from a
//! ChaCha8 RNG seeded with
//!
//! ```text
//! seed = hash_seed(h(x), "<prefix>.fc{k+1}")
//! ```
//!
//! where `h(x)` is a 64-bit FNV-1a-style hash of the stage input's flattened shape `[B, D]`
//! and the bits of its values (f64 inputs hashed as f64, every other dtype as f32), and
//! [`hash_seed`] is tandem's stable name hash. The `u32` draws are taken in row-major order,
//! and `m_ij = [r_ij < round((1 − p)·2³²)]`. Hence:
//!
//! - the same batch through the same stage gets the same mask on every run, on every number of
//!   threads and after a resume from a checkpoint, with no RNG state to save;
//! - different stages, different layers (prefixes) and different batches get independent
//!   masks; as the weights train, the inputs of stages after the first change and so do their
//!   masks. The first stage's mask, however, is a function of the batch alone: a batch seen
//!   again (next epoch, same rows in the same order) gets the same `fc1` mask again.
//!
//! Hashing reads the stage input back to the host (a device-to-host copy off the CPU) and
//! the mask is built on the host; with `p = 0` or `train = false` none of this happens.
use crate::{Activation, Backbone, LayerError, Result};
use candle_core::{DType, Tensor};
use candle_nn::{Linear, VarBuilder};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::ops::{bias_act, Backend};
use tandem_tensor::{hash_seed, torch_linear};

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
    /// Dropout probability after every activation, training only. Default 0.0; must lie in
    /// `[0, 1)`.
    pub dropout: f32,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            in_features: 0,
            hidden: vec![256, 128],
            activation: Activation::Relu,
            dropout: 0.0,
        }
    }
}

impl MlpConfig {
    /// Checks `hidden` and `dropout`, returning an error naming the offending field
    /// (`hidden`, `hidden[i]` or `dropout`). `in_features = 0` is accepted here (it means
    /// "taken from the data"); [`Mlp::new`] requires it to be set.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() {
            return Err(config_error("hidden", "needs at least one layer"));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(config_error(&format!("hidden[{i}]"), "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(config_error(
                "dropout",
                &format!("{} is not a probability in [0, 1)", self.dropout),
            ));
        }
        Ok(())
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
    layers: Vec<Linear>,
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
        let mut layers = Vec::with_capacity(config.hidden.len());
        let mut d_in = config.in_features;
        for (k, &h) in config.hidden.iter().enumerate() {
            layers.push(torch_linear(d_in, h, vb.pp(stage_name(k)))?);
            d_in = h;
        }
        Ok(Self {
            layers,
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

    fn layer(&self, k: usize) -> candle_core::Result<&Linear> {
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

    /// Flattens `x [B, …]` to `[B, d_in]` (an error if the trailing axes do not hold `d_in`
    /// values), then linear, activation and, when training, seeded dropout.
    fn forward_stage(&self, k: usize, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let layer = self.layer(k)?;
        let d_in = layer.weight().dim(1)?;
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
        let z = flat.matmul(&layer.weight().t()?)?;
        let y = bias_act(&z, layer.bias(), self.config.activation, Backend::Tandem)?;
        let p = self.config.dropout;
        if !train || p <= 0.0 {
            return Ok(y);
        }
        let seed = hash_seed(tensor_hash(&flat)?, &self.join(&stage_name(k)));
        let mask = dropout_mask(y.elem_count(), p, seed);
        let mask = Tensor::from_vec(mask, y.shape(), y.device())?.to_dtype(y.dtype())?;
        y * mask
    }

    fn stage_prefixes(&self, k: usize) -> Vec<String> {
        vec![self.join(&stage_name(k))]
    }

    /// `[weight, bias]` of the stage's linear layer.
    fn stage_parameters(&self, k: usize) -> candle_core::Result<Vec<Tensor>> {
        let layer = self.layer(k)?;
        let mut p = vec![layer.weight().clone()];
        p.extend(layer.bias().cloned());
        Ok(p)
    }

    fn prefix(&self) -> String {
        self.prefix.clone()
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over 32-bit words: `h ← (h ⊕ w)·prime`.
fn mix(h: u64, w: u32) -> u64 {
    (h ^ u64::from(w)).wrapping_mul(FNV_PRIME)
}

/// A 64-bit hash of a `[B, D]` tensor's shape and value bits (f64 values as f64, every other
/// dtype converted to f32, which is exact for f16 and bf16).
fn tensor_hash(x: &Tensor) -> candle_core::Result<u64> {
    let mut h = FNV_OFFSET;
    for &d in x.dims() {
        let d = d as u64;
        h = mix(mix(h, d as u32), (d >> 32) as u32);
    }
    let flat = x.flatten_all()?;
    if x.dtype() == DType::F64 {
        for v in flat.to_vec1::<f64>()? {
            let bits = v.to_bits();
            h = mix(mix(h, bits as u32), (bits >> 32) as u32);
        }
    } else {
        for v in flat.to_dtype(DType::F32)?.to_vec1::<f32>()? {
            h = mix(h, v.to_bits());
        }
    }
    Ok(h)
}

/// `n` values of an inverted-dropout mask: `1/(1 − p)` where a ChaCha8 draw `r` (seeded with
/// `seed`) is below `round((1 − p)·2³²)`, else 0.
fn dropout_mask(n: usize, p: f32, seed: u64) -> Vec<f32> {
    let keep = 1.0 - f64::from(p);
    let threshold = (keep * 4_294_967_296.0).round() as u64;
    let scale = (1.0 / keep) as f32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            if u64::from(rng.next_u32()) < threshold {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
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
