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
//! `<prefix>.weight`, `<prefix>.bias`.
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use tandem_tensor::ops::{self, Backend};

/// A stride-1 convolution with bias.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
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
        let bound = 1.0 / ((in_channels * kernel * kernel).max(1) as f64).sqrt();
        let init = candle_nn::init::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let weight =
            vb.get_with_hints((out_channels, in_channels, kernel, kernel), "weight", init)?;
        let bias = vb.get_with_hints(out_channels, "bias", init)?;
        Ok(Self {
            weight,
            bias,
            padding,
            backend,
        })
    }

    /// The weight `[C_out, C_in, K, K]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `[C_out]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The convolution without its bias (`bias` is added by a fused bias + activation op).
    pub fn forward_no_bias(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(x, &self.weight, None, self.padding, self.backend)
    }

    /// The convolution, its bias, `act` and 2×2 max-pooling as one fused op
    /// ([`ops::conv_bias_act_pool2x2`]): `[B, C_in, H, W]` → `[B, C_out, ⌊H_o/2⌋, ⌊W_o/2⌋]`.
    pub fn forward_act_pool2x2(&self, x: &Tensor, act: ops::Activation) -> Result<Tensor> {
        ops::conv_bias_act_pool2x2(
            x,
            &self.weight,
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
            &self.weight,
            Some(&self.bias),
            self.padding,
            self.backend,
        )
    }
}
