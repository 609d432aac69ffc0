//! The network `cargo xtask bench` times: TCDCN trunk and five heads, one AdamW step.
//!
//! Trunk (input `[B, 1, 40, 40]`): conv 5×5→16, pool, conv 3×3→48, pool, conv 3×3→64, pool,
//! conv 2×2→64, flatten (256), FC→100, each followed by |tanh|. Heads: landmarks (10 outputs,
//! mean squared error), gender, smile, glasses (2 classes each) and pose (5 classes),
//! cross-entropy. The loss is the plain sum. `benches/pytorch/tcdcn_bench.py` is the same
//! network in PyTorch.
//!
//! Shared by the `train_step` criterion bench and `cargo xtask bench` (which includes this
//! file by path).
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

use tandem_tensor::ops::{
    bias_act, conv2d, conv_bias_act_pool2x2, max_pool2x2, Activation, Backend,
};

/// Class counts of the four classification heads.
const CLASSES: [usize; 4] = [2, 2, 2, 5];

/// The TCDCN network with its heads.
pub struct Net {
    convs: Vec<(Tensor, Tensor)>,
    fc: (Tensor, Tensor),
    heads: Vec<Linear>,
    backend: Backend,
    fuse_pool: bool,
}

impl Net {
    /// Builds the network's variables under `vb`; `fuse_pool` runs each pooled stage as one op
    /// ([`conv_bias_act_pool2x2`]) instead of [`conv2d`], [`bias_act`] then [`max_pool2x2`].
    pub fn new(vb: VarBuilder, backend: Backend, fuse_pool: bool) -> Result<Self> {
        let mut convs = Vec::new();
        for (i, (cin, cout, k)) in [(1, 16, 5), (16, 48, 3), (48, 64, 3), (64, 64, 2)]
            .into_iter()
            .enumerate()
        {
            let vb = vb.pp(format!("conv{}", i + 1));
            let bound = 1.0 / ((cin * k * k) as f64).sqrt();
            let w = vb.get_with_hints(
                (cout, cin, k, k),
                "weight",
                candle_nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?;
            let b = vb.get_with_hints(
                cout,
                "bias",
                candle_nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?;
            convs.push((w, b));
        }
        let bound = 1.0 / 16.0;
        let init = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let fc = (
            vb.pp("fc").get_with_hints((100, 256), "weight", init)?,
            vb.pp("fc").get_with_hints(100, "bias", init)?,
        );
        let heads = [10, 2, 2, 2, 5]
            .into_iter()
            .enumerate()
            .map(|(i, n)| candle_nn::linear(100, n, vb.pp(format!("head{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            convs,
            fc,
            heads,
            backend,
            fuse_pool,
        })
    }

    /// Head outputs for an input `[B, 1, 40, 40]`.
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = x.clone();
        let act = Activation::AbsTanh;
        for (i, (w, b)) in self.convs.iter().enumerate() {
            h = match (i < 3, self.fuse_pool) {
                (true, true) => conv_bias_act_pool2x2(&h, w, Some(b), 0, act, self.backend)?,
                (true, false) => {
                    let z = conv2d(&h, w, None, 0, self.backend)?;
                    max_pool2x2(&bias_act(&z, Some(b), act, self.backend)?, self.backend)?
                }
                (false, _) => bias_act(
                    &conv2d(&h, w, None, 0, self.backend)?,
                    Some(b),
                    act,
                    self.backend,
                )?,
            };
        }
        let z = h.flatten_from(1)?.matmul(&self.fc.0.t()?)?;
        let h = bias_act(&z, Some(&self.fc.1), Activation::AbsTanh, self.backend)?;
        self.heads.iter().map(|head| head.forward(&h)).collect()
    }
}

/// One fixed batch: input, landmark targets and four class-label vectors.
pub struct Batch {
    /// `[B, 1, 40, 40]` in `[0, 1)`.
    pub x: Tensor,
    /// `[B, 10]` in `[0, 1)`.
    pub landmarks: Tensor,
    /// Four `[B]` u32 label vectors.
    pub classes: Vec<Tensor>,
}

impl Batch {
    /// A random batch of `b` samples.
    pub fn random(b: usize, dev: &Device) -> Result<Self> {
        let x = Tensor::rand(0f32, 1f32, (b, 1, 40, 40), dev)?;
        let landmarks = Tensor::rand(0f32, 1f32, (b, 10), dev)?;
        let classes = CLASSES
            .iter()
            .map(|&n| {
                (Tensor::rand(0f32, n as f32, b, dev)?.floor()?)
                    .clamp(0f32, (n - 1) as f32)?
                    .to_dtype(DType::U32)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            x,
            landmarks,
            classes,
        })
    }
}

/// Sum of the five task losses.
pub fn loss(outs: &[Tensor], batch: &Batch) -> Result<Tensor> {
    let mut total = candle_nn::loss::mse(&outs[0], &batch.landmarks)?;
    for (o, t) in outs[1..].iter().zip(&batch.classes) {
        total = (total + candle_nn::loss::cross_entropy(o, t)?)?;
    }
    Ok(total)
}
