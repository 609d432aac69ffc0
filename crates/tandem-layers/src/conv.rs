//! [`Conv2d`]: a stride-1 2-D convolution layer with bias.
//!
//! `y[b, o, i, j] = bias[o] + Σ_c Σ_u Σ_v w[o, c, u, v] · x[b, c, i + u − p, j + v − p]`
//!
//! # Shapes
//! input `[B, C_in, H, W]`, weight `[C_out, C_in, K, K]`, bias `[C_out]`,
//! output `[B, C_out, H + 2p − K + 1, W + 2p − K + 1]`.
//!
//! Weights and biases start as PyTorch's `Conv2d` does: uniform in `±1/√fan_in` with
//! `fan_in = C_in·K²` (Kaiming-uniform with `a = √5`). Larger (ReLU-gain) weights saturate
//! bounded activations such as `|tanh|` and wash out the differences between inputs. Parameter names:
//! `<prefix>.weight`, `<prefix>.bias`. [`Conv2d::with_options`] takes another
//! [`WeightInit`] or weight normalisation (`<prefix>.weight_g`, `<prefix>.weight_v`; see
//! [`LayerWeight`]).
use crate::{LayerWeight, WeightInit};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use tandem_tensor::ops::{self, Backend};

/// A stride-1 convolution with bias.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: LayerWeight,
    bias: Tensor,
    padding: usize,
    backend: Backend,
}

impl Conv2d {
    /// A `kernel×kernel` convolution from `in_channels` to `out_channels` with zero padding
    /// `padding`, its parameters at `vb`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        backend: Backend,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::with_options(
            (in_channels, out_channels, kernel, padding),
            WeightInit::Default,
            false,
            backend,
            vb,
        )
    }

    /// [`Conv2d::new`] for `(in_channels, out_channels, kernel, padding)` with the weight
    /// initialisation `init` (fans `C_in·K²` and `C_out·K²`) and, with `weight_norm`, a
    /// weight-normalised weight.
    pub fn with_options(
        (in_channels, out_channels, kernel, padding): (usize, usize, usize, usize),
        init: WeightInit,
        weight_norm: bool,
        backend: Backend,
        vb: VarBuilder,
    ) -> Result<Self> {
        let k2 = kernel * kernel;
        let (w_init, b_init) = init.hints(in_channels * k2, out_channels * k2);
        let shape = [out_channels, in_channels, kernel, kernel];
        let weight = LayerWeight::new(&shape, w_init, weight_norm, &vb)?;
        let bias = vb.get_with_hints(out_channels, "bias", b_init)?;
        Ok(Self {
            weight,
            bias,
            padding,
            backend,
        })
    }

    /// The weight `[C_out, C_in, K, K]` the convolution applies (`g·v/‖v‖` under weight
    /// norm).
    pub fn weight(&self) -> Result<Tensor> {
        self.weight.value()
    }

    /// The trained tensors: the weight's (`[weight]` or `[weight_g, weight_v]`), then the
    /// bias.
    pub fn parameters(&self) -> Vec<Tensor> {
        let mut p = self.weight.parameters();
        p.push(self.bias.clone());
        p
    }

    /// The bias `[C_out]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The convolution without its bias (`bias` is added by a fused bias + activation op).
    pub fn forward_no_bias(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(x, &self.weight()?, None, self.padding, self.backend)
    }

    /// The convolution, its bias, `act` and 2×2 max-pooling as one fused op
    /// ([`ops::conv_bias_act_pool2x2`]): `[B, C_in, H, W]` → `[B, C_out, ⌊H_o/2⌋, ⌊W_o/2⌋]`.
    pub fn forward_act_pool2x2(&self, x: &Tensor, act: ops::Activation) -> Result<Tensor> {
        ops::conv_bias_act_pool2x2(
            x,
            &self.weight()?,
            Some(&self.bias),
            self.padding,
            act,
            self.backend,
        )
    }

    /// Applies the convolution.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(
            x,
            &self.weight()?,
            Some(&self.bias),
            self.padding,
            self.backend,
        )
    }
}
