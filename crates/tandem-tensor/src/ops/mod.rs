//! Hot kernels of a training step: 2-D convolution and 2×2 max-pooling.
//!
//! # Shapes
//! - [`conv2d`]: input `[B, C_in, H, W]`, weight `[C_out, C_in, K_h, K_w]`, optional bias
//!   `[C_out]`, stride 1, zero padding `p` → output `[B, C_out, H + 2p − K_h + 1, W + 2p − K_w + 1]`.
//! - [`max_pool2x2`]: `[B, C, H, W]` → `[B, C, ⌊H/2⌋, ⌊W/2⌋]` (a trailing odd row/column is
//!   dropped, as in PyTorch's `MaxPool2d(2)`).
//!
//! [`Backend::Tandem`] (the default) runs tandem's own kernels on f32 CPU tensors — im2col +
//! GEMM convolutions parallel over the batch, whose backward skips the input gradient when the
//! input needs none, and a 2×2 pooling whose gradient goes whole to each window's maximum —
//! and candle's operations on other devices and dtypes, so the same layer code runs on a GPU.
//! The kernels run on rayon's current thread pool, and their gradients are bit-identical for
//! any number of threads: weight and bias gradients are summed over chunks of the batch whose
//! size depends only on the shapes, in chunk order, and every GEMM runs single-threaded.
//!
//! [`Backend::Candle`] uses candle's own operations, which run on every device.
//! For pooling it uses the reshape-and-max formulation: candle 0.11.1's `max_pool2d` backward
//! passes 0.25 of the gradient to the maximum of a 2×2 window instead of 1.
use candle_core::{DType, Device, Result, Tensor, D};
use serde::{Deserialize, Serialize};

pub use act::{Activation, SELU_ALPHA, SELU_LAMBDA};

/// Which implementation of the hot kernels to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// tandem's own CPU kernels where the tensor is on the CPU, candle's ops elsewhere.
    #[default]
    Tandem,
    /// candle's own operations everywhere.
    Candle,
}

mod act;
mod act_pool;
mod conv;
mod conv_act_pool;
mod cpu;
mod gemm;
mod pool;

/// Whether tandem's own kernels handle these tensors: f32, all on the CPU.
fn tandem_handles(backend: Backend, tensors: &[&Tensor]) -> bool {
    backend == Backend::Tandem
        && tensors
            .iter()
            .all(|t| t.dtype() == DType::F32 && matches!(t.device(), Device::Cpu))
}

/// 2-D convolution, stride 1, zero padding `padding` on every side, optional bias.
///
/// `x [B, C_in, H, W]`, `weight [C_out, C_in, K_h, K_w]`, `bias [C_out]` →
/// `[B, C_out, H + 2p − K_h + 1, W + 2p − K_w + 1]`.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    padding: usize,
    backend: Backend,
) -> Result<Tensor> {
    let mut all = vec![x, weight];
    all.extend(bias);
    if tandem_handles(backend, &all) {
        let op = conv::Conv2dOp { padding };
        let (x, weight) = (x.contiguous()?, weight.contiguous()?);
        return match bias {
            Some(b) => x.apply_op3(&weight, &b.contiguous()?, op),
            None => x.apply_op2(&weight, op),
        };
    }
    let y = x.conv2d(weight, padding, 1, 1, 1)?;
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

/// Per-channel bias and activation in one pass: `act(x + b[c])`, `c` the index along dim 1.
///
/// `x [B, C, …]` (e.g. a convolution's `[B, C, H, W]` or a linear layer's `[B, C]`),
/// `bias [C]` → same shape as `x`. With [`Backend::Tandem`] on f32 CPU tensors this is one
/// fused op forward and backward (the bias gradient is bit-identical for any thread count);
/// otherwise a broadcast add and [`Activation::apply_candle`].
pub fn bias_act(
    x: &Tensor,
    bias: Option<&Tensor>,
    act: Activation,
    backend: Backend,
) -> Result<Tensor> {
    let mut all = vec![x];
    all.extend(bias);
    if tandem_handles(backend, &all) && x.rank() >= 2 {
        let op = act::BiasActOp { act };
        let x = x.contiguous()?;
        return match bias {
            Some(b) => x.apply_op2(&b.contiguous()?, op),
            None => x.apply_op1(op),
        };
    }
    let z = match bias {
        Some(b) => {
            let mut shape = vec![1; x.rank()];
            if let Some(d) = shape.get_mut(1) {
                *d = b.elem_count();
            }
            x.broadcast_add(&b.reshape(shape)?)?
        }
        None => x.clone(),
    };
    act.apply_candle(&z)
}

/// Per-channel bias, activation and 2×2 max-pooling in one op:
/// `max_pool2x2(bias_act(x, bias, act))`, `[B, C, H, W]` → `[B, C, ⌊H/2⌋, ⌊W/2⌋]`.
///
/// With [`Backend::Tandem`] on f32 CPU tensors neither the full-size activation nor its
/// gradient is ever stored (the activation is recomputed in the backward pass); the result and
/// the gradients equal those of the composition. Otherwise it is the composition itself.
pub fn bias_act_pool2x2(
    x: &Tensor,
    bias: Option<&Tensor>,
    act: Activation,
    backend: Backend,
) -> Result<Tensor> {
    let mut all = vec![x];
    all.extend(bias);
    if tandem_handles(backend, &all) && x.rank() == 4 {
        let op = act_pool::BiasActPoolOp { act };
        let x = x.contiguous()?;
        return match bias {
            Some(b) => x.apply_op2(&b.contiguous()?, op),
            None => x.apply_op1(op),
        };
    }
    max_pool2x2(&bias_act(x, bias, act, backend)?, backend)
}

/// A whole convolution stage as one op:
/// `max_pool2x2(bias_act(conv2d(x, weight, None, padding), bias, act))`.
///
/// `x [B, C_in, H, W]`, `weight [C_out, C_in, K_h, K_w]`, `bias [C_out]` →
/// `[B, C_out, ⌊H_o/2⌋, ⌊W_o/2⌋]` with `H_o = H + 2p − K_h + 1`, `W_o = W + 2p − K_w + 1`.
///
/// With [`Backend::Tandem`] on f32 CPU tensors the pre-activation never becomes a tensor:
/// each chunk of images is convolved, activated and pooled in scratch memory, the activation
/// is evaluated once per output (every [`Activation`] is non-decreasing in `|z|` or `z`, so the
/// window's maximum is found before activating), and the backward pass rebuilds the sparse
/// pre-activation gradient from the one-byte window positions and derivatives the forward
/// pass kept. The result and the gradients equal those of the composition up to rounding;
/// the gradients are bit-identical for any number of threads. Otherwise it is the composition.
pub fn conv_bias_act_pool2x2(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    padding: usize,
    act: Activation,
    backend: Backend,
) -> Result<Tensor> {
    let mut all = vec![x, weight];
    all.extend(bias);
    if tandem_handles(backend, &all) && x.rank() == 4 && weight.rank() == 4 {
        let bias = match bias {
            Some(b) => b.contiguous()?,
            None => Tensor::zeros(weight.dim(0)?, DType::F32, x.device())?,
        };
        let op = conv_act_pool::ConvActPoolOp::new(padding, act);
        return x.contiguous()?.apply_op3(&weight.contiguous()?, &bias, op);
    }
    let z = conv2d(x, weight, None, padding, backend)?;
    bias_act_pool2x2(&z, bias, act, backend)
}

/// 2×2 max-pooling with stride 2: `[B, C, H, W]` → `[B, C, ⌊H/2⌋, ⌊W/2⌋]`.
pub fn max_pool2x2(x: &Tensor, backend: Backend) -> Result<Tensor> {
    if tandem_handles(backend, &[x]) {
        return x.contiguous()?.apply_op1(pool::MaxPool2x2Op);
    }
    let (b, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 {
        x.narrow(2, 0, ho * 2)?.narrow(3, 0, wo * 2)?
    } else {
        x.clone()
    };
    x.reshape((b, c, ho, 2, wo, 2))?.max(D::Minus1)?.max(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// candle 0.11.1's own max_pool2d passes 0.25 of the gradient; ours must pass 1.
    #[test]
    fn pool_gradient_goes_whole_to_the_max() -> Result<()> {
        for backend in [Backend::Tandem, Backend::Candle] {
            let x = Var::new(&[[[[1f32, 2.], [3., 4.]]]], &Device::Cpu)?;
            let y = max_pool2x2(x.as_tensor(), backend)?;
            let g = y.sum_all()?.backward()?;
            let gx = g
                .get(&x)
                .map(|t| t.flatten_all()?.to_vec1::<f32>())
                .transpose()?;
            assert_eq!(gx, Some(vec![0.0, 0.0, 0.0, 1.0]), "{backend:?}");
        }
        Ok(())
    }
}
