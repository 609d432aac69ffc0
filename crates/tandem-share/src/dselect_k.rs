//! DSelect-k gates (Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong, Chi,
//! NeurIPS 2021, "DSelect-k: Differentiable Selection in the Mixture of Experts with
//! Applications to Multi-Task Learning"), per-example form.
//!
//! `E` experts (whole backbones) as in [MMoE](crate::Mmoe), but each task's gate selects at
//! most `k` of them, differentiably. With `m = ⌈log₂ E⌉` bits, each of the task's `k`
//! selectors `i` reads the input and gives `z_i = W^z_i vec(x) + b^z_i ∈ ℝ^m`, and a
//! selector weight `α = W^α vec(x) + b^α ∈ ℝ^k`. With the smooth step
//!
//! `S(t) = 0` for `t ≤ −γ/2`, `1` for `t ≥ γ/2`, else `−2t³/γ³ + 3t/(2γ) + 1/2`,
//!
//! selector `i` puts on expert `e` (binary code `b(e) ∈ {0,1}^m`) the weight
//!
//! `r_i(e) = Π_{j=1..m} (b_j(e) S(z_ij) + (1 − b_j(e))(1 − S(z_ij)))`,
//!
//! a distribution over the `2^m` codes; the gate is `w = Σ_i softmax(α)_i · r_i ∈ ℝ^E` and
//! `f_t(x) = Σ_e w_e · expert_e(x)`. When every `z_ij` has left `(−γ/2, γ/2)`, each `r_i`
//! is one-hot, so `w` has at most `k` non-zero entries (exactly `k` when the selectors pick
//! distinct experts); training gets there through the entropy regulariser
//!
//! `penalty = λ · mean_batch Σ_t Σ_i H(r_{t,i})`,  `H(p) = −Σ_e p_e log p_e`,
//!
//! which the network returns as [`NetOutput::penalty`]. When `E` is not a power of two, a code
//! `c ≥ E` has no expert of its own and stands for expert `c − 2^{m−1}` (its top bit
//! dropped), so every code selects an expert, `r_i` still sums to 1 and a converged selector
//! is still one-hot (the paper's experiments use powers of two, the default here).
//!
//! ## Shapes
//! Input `[B, …]` (`vec(x)`: `[B, d]`); `z` `[B, k, m]`; `α` `[B, k]`; `r` `[B, k, E]`; gates
//! `[B, E]`; experts `[B, D]`; predictions `[B, out_dim_t]`; penalty a scalar.
//!
//! ## Parameter names and groups
//! `experts.<e>.*`, `gates.<task>.z.{weight,bias}` (`[k·m, d]`, `[k·m]`),
//! `gates.<task>.alpha.{weight,bias}` (`[k, d]`, `[k]`), `heads.<task>.*`; groups as MMoE's.
use crate::experts::{at_least, expert_groups, mix, numel, per_task, Heads};
use crate::mmoe::missing;
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::{Module, Tensor, D};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// Configuration of [`DselectK`] (`kind = "dselect_k"`).
///
/// ```toml
/// kind = "dselect_k"
/// experts = 4
/// k = 2
/// gamma = 1.0
/// entropy = 1e-3
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DselectKConfig {
    /// Number of experts `E` (at least 1). Default 4.
    pub experts: usize,
    /// Experts each task selects, `1 ≤ k ≤ E`. Default 2.
    pub k: usize,
    /// Width `γ > 0` of the smooth step's transition. Default 1.0 (the paper's).
    pub gamma: f64,
    /// Weight `λ ≥ 0` of the entropy regulariser that drives the selectors to single
    /// experts. Default 1e-3.
    pub entropy: f64,
}

impl Default for DselectKConfig {
    fn default() -> Self {
        Self {
            experts: 4,
            k: 2,
            gamma: 1.0,
            entropy: 1e-3,
        }
    }
}

impl DselectKConfig {
    /// Checks `experts ≥ 1`, `1 ≤ k ≤ experts`, `gamma > 0` and `entropy ≥ 0` (finite); the
    /// error names the key.
    pub fn validate(&self) -> Result<()> {
        at_least("experts", self.experts, 1)?;
        if self.k == 0 || self.k > self.experts {
            return Err(ShareError::key(
                "k",
                format!(
                    "k = {} is out of range: each task selects between 1 and experts = {} experts",
                    self.k, self.experts
                ),
            ));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(ShareError::key(
                "gamma",
                format!(
                    "{} is not allowed; it must be a positive number",
                    self.gamma
                ),
            ));
        }
        if !(self.entropy.is_finite() && self.entropy >= 0.0) {
            return Err(ShareError::key(
                "entropy",
                format!("{} is not allowed; it must be ≥ 0", self.entropy),
            ));
        }
        Ok(())
    }

    /// Bits of an expert's code, `m = ⌈log₂ E⌉` (at least 1).
    pub fn bits(&self) -> usize {
        let mut m = 1;
        while (1usize << m) < self.experts {
            m += 1;
        }
        m
    }
}

/// One task's DSelect-k gate.
struct KGate {
    z: Linear,
    alpha: Linear,
}

/// `S(t)` of the module docs, element-wise.
pub fn smooth_step(t: &Tensor, gamma: f64) -> candle_core::Result<Tensor> {
    let h = gamma / 2.0;
    let c = t.clamp(-h, h)?;
    let cubic =
        (c.powf(3.0)?.affine(-2.0 / gamma.powi(3), 0.0)? + c.affine(3.0 / (2.0 * gamma), 0.5)?)?;
    // outside the transition the step is exactly 0 or 1 (the cubic would round to ±1e-17 there)
    let inner = t.le(-h)?.where_cond(&cubic.zeros_like()?, &cubic)?;
    t.ge(h)?.where_cond(&cubic.ones_like()?, &inner)
}

/// E experts, each task selecting `k` of them with a DSelect-k gate (module docs).
pub struct DselectK<B: Backbone> {
    config: DselectKConfig,
    experts: Vec<B>,
    gates: TaskMap<KGate>,
    gate_prefixes: TaskMap<String>,
    heads: Heads,
    /// `codes[c][j]`: bit `j` of code `c`, as `[2^m, m]` 0/1 values.
    codes: Tensor,
    /// `fold[c][e] = 1` when code `c` stands for expert `e`, `[2^m, E]`.
    fold: Tensor,
}

impl<B: Backbone> DselectK<B> {
    /// Builds `config.experts` experts with `build(vb.pp("experts").pp(e))`, a gate per
    /// task under `vb.pp("gates")` and a head per task under `vb.pp("heads")`.
    pub fn new<E>(
        config: &DselectKConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
        mut build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        config.validate()?;
        let experts = (0..config.experts)
            .map(|e| build(vb.pp("experts").pp(e)))
            .collect::<std::result::Result<Vec<B>, E>>()?;
        let d_in = numel(&experts[0].input_shape());
        let (k, m) = (config.k, config.bits());
        let (gates, gate_prefixes) = per_task(tasks, &vb.pp("gates"), |gvb| {
            Ok(KGate {
                z: tandem_tensor::torch_linear(d_in, k * m, gvb.pp("z"))?,
                alpha: tandem_tensor::torch_linear(d_in, k, gvb.pp("alpha"))?,
            })
        })?;
        let n_codes = 1usize << m;
        let bits: Vec<f32> = (0..n_codes)
            .flat_map(|c| (0..m).map(move |j| ((c >> j) & 1) as f32))
            .collect();
        let codes = Tensor::from_vec(bits, (n_codes, m), vb.device())?;
        let mut fold = vec![0f32; n_codes * config.experts];
        for c in 0..n_codes {
            let e = if c < config.experts {
                c
            } else {
                c - n_codes / 2
            };
            fold[c * config.experts + e] = 1.0;
        }
        let fold = Tensor::from_vec(fold, (n_codes, config.experts), vb.device())?;
        let heads = Heads::new(tasks, experts[0].out_dim(), vb.pp("heads"))?;
        Ok(Self {
            config: config.clone(),
            experts,
            gates,
            gate_prefixes,
            heads,
            codes,
            fold,
        })
    }

    /// The selectors' distributions `r [B, k, E]` and the gate `w [B, E]` of `gate` for `x`.
    fn select(&self, gate: &KGate, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (k, m, e) = (self.config.k, self.config.bits(), self.config.experts);
        let n_codes = 1usize << m;
        let flat = x.flatten_from(1)?;
        let b = flat.dim(0)?;
        let s = smooth_step(&gate.z.forward(&flat)?, self.config.gamma)?.reshape((b, k, 1, m))?;
        let codes = self
            .codes
            .to_dtype(s.dtype())?
            .reshape((1, 1, n_codes, m))?;
        // b S + (1 − b)(1 − S) = 1 − b − S + 2 b S, then the product over the m bits.
        let on = s.broadcast_mul(&codes)?;
        let factors = on
            .affine(2.0, 1.0)?
            .broadcast_sub(&s)?
            .broadcast_sub(&codes)?;
        let mut r = factors.narrow(3, 0, 1)?;
        for j in 1..m {
            r = (r * factors.narrow(3, j, 1)?)?;
        }
        // [B, k, 2^m] over the codes, folded onto the E experts
        let r = r.squeeze(3)?.reshape((b * k, n_codes))?;
        let r = r
            .matmul(&self.fold.to_dtype(r.dtype())?)?
            .reshape((b, k, e))?;
        let a = candle_nn::ops::softmax(&gate.alpha.forward(&flat)?, D::Minus1)?; // [B, k]
        let w = a.unsqueeze(1)?.matmul(&r)?.squeeze(1)?; // [B, E]
        Ok((r, w))
    }
}

/// `Σ_e −p_e log p_e` over the last axis, with `0 log 0 = 0`.
fn entropy(p: &Tensor) -> candle_core::Result<Tensor> {
    let logp = p.clamp(1e-12, f64::INFINITY)?.log()?;
    (p * logp)?.sum(D::Minus1)?.neg()
}

impl<B: Backbone> MultiTaskNet for DselectK<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let outs = self
            .experts
            .iter()
            .map(|e| e.forward_t(input, train))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = outs.iter().collect();
        let mut penalty: Option<Tensor> = None;
        let predictions = self.heads.heads.try_map(|t, head| {
            let gate = self.gates.get(t).ok_or_else(|| missing(t))?;
            let (r, w) = self.select(gate, input)?;
            if self.config.entropy > 0.0 {
                // mean over the batch of Σ_i H(r_i)
                let h = entropy(&r)?.sum(D::Minus1)?.mean(0)?;
                penalty = Some(match penalty.take() {
                    None => h,
                    Some(p) => (p + h)?,
                });
            }
            head.forward(&mix(&w, &refs)?)
        })?;
        let penalty = match penalty {
            Some(p) => Some(p.affine(self.config.entropy, 0.0)?),
            None => None,
        };
        Ok(NetOutput {
            predictions,
            penalty,
        })
    }

    fn gates(&self, input: &Tensor) -> candle_core::Result<Option<TaskMap<Vec<Tensor>>>> {
        Ok(Some(self.gates.try_map(|_, g| {
            Ok::<_, candle_core::Error>(vec![self.select(g, input)?.1])
        })?))
    }

    fn param_groups(&self) -> ParamGroups {
        let own = |t: &str| self.gate_prefixes.get(t).cloned().into_iter().collect();
        expert_groups(self.experts.iter(), own, &self.heads.prefixes)
    }
}
