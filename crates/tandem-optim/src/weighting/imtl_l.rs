//! IMTL-L, the loss-balancing half of Impartial Multi-Task Learning (Liu, Li, Kuang, Xue, Chen,
//! Yang, Liao & Zhang, ICLR 2021, "Towards Impartial Multi-task Learning").
//!
//! Each task has a learnable scale `s_t` and the objective is
//! ```text
//! L = Σ_t (e^{s_t} L_t − s_t)
//! ∂L/∂s_t = e^{s_t} L_t − 1,   ∂L/∂θ = Σ_t e^{s_t} ∂L_t/∂θ
//! ```
//! so `s_t` settles where the scaled loss `e^{s_t} L_t = 1`: every task's loss is brought to the
//! same scale, without a distributional assumption. It is uncertainty weighting's objective up to
//! a factor 2 and the sign of the parameter (TorchJD's `IMTLL` notes this). LibMTL's `IMTL`
//! applies this scaling and then IMTL-G's gradient balancing; this is the loss part alone
//! (IMTL-G is an aggregator of its own).
//!
//! The `s_t` are ordinary variables of the model's `VarMap` (`weighting.s.<task>`, shape `[1]`,
//! created under the builder given to [`MethodConfig::build`]), so the model's optimizer trains
//! them and checkpoints save them with the network (its weight decay, if any, also pulls them
//! towards 0). A variable that already exists (loaded from a checkpoint) keeps its value.
//!
//! - Shapes: `T` scalar losses → `T` weights; `T` extra parameters.
//! - Cost: one backward pass.
//! - State: none beyond the variables (they are the model's).
//! - Weights logged: `∂L/∂L_t = e^{s_t}`.
//! - Defaults: `init = 0` (`s_t = 0`, weights 1; LibMTL's and TorchJD's initial scale).
//!
//! ```toml
//! weighting = { kind = "imtl_l", init = 0.0 }
//! ```
use super::config::MethodConfig;
use super::{StepContext, Update, Weighting};
use crate::{OptimError, Result};
use candle_core::Tensor;
use candle_nn::init::Init;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskInfo, TaskList, TaskMap};

/// `imtl_l`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImtlLConfig {
    /// Initial `s_t` (default 0).
    #[serde(default)]
    pub init: f64,
}

impl MethodConfig for ImtlLConfig {
    fn validate(&self) -> Result<()> {
        if !self.init.is_finite() {
            return Err(OptimError::config("weighting.init", "must be finite"));
        }
        Ok(())
    }

    fn build(&self, tasks: &[TaskInfo], vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(ImtlL::with_init(tasks, self.init, vb)?))
    }
}

/// IMTL-L: learnable loss scales `e^{s_t}` (see the module doc).
#[derive(Debug, Clone)]
pub struct ImtlL {
    /// `s_t` (shape `[1]`) by task.
    scales: TaskMap<Tensor>,
}

impl ImtlL {
    /// Creates (or reuses) `s.<task> = init` under `vb` for every task of `tasks`; pass
    /// `vb.pp("weighting")` to get the documented `weighting.s.<task>`.
    pub fn with_init<T: TaskList + ?Sized>(
        tasks: &T,
        init: f64,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let mut scales = TaskMap::new();
        for task in tasks.task_info() {
            let s = vb.get_with_hints(1, &format!("s.{}", task.name), Init::Const(init))?;
            scales.insert(task.name, s);
        }
        Ok(Self { scales })
    }

    /// The current `s_t` of every task.
    pub fn scales(&self) -> candle_core::Result<TaskMap<f64>> {
        self.scales.try_map(|_, s| {
            Ok(f64::from(
                s.flatten_all()?
                    .to_dtype(candle_core::DType::F32)?
                    .to_vec1::<f32>()?
                    .first()
                    .copied()
                    .unwrap_or(0.0),
            ))
        })
    }
}

impl Weighting for ImtlL {
    fn name(&self) -> &str {
        "imtl_l"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let mut total: Option<Tensor> = None;
        let mut weights = TaskMap::new();
        for (name, loss) in losses.iter() {
            let Some(s) = self.scales.get(name) else {
                candle_core::bail!("imtl_l has no scale s for task {name}");
            };
            let s = s.reshape(())?;
            let scale = s.exp()?;
            let term = ((&scale * loss.reshape(())?)? - &s)?;
            weights.insert(
                name,
                f64::from(
                    scale
                        .to_dtype(candle_core::DType::F32)?
                        .to_scalar::<f32>()?,
                ),
            );
            total = Some(match total {
                None => term,
                Some(t) => (t + term)?,
            });
        }
        let Some(total) = total else {
            candle_core::bail!("no loss to optimise: every task is stopped");
        };
        Ok(Update {
            grads: ctx.backward(total)?,
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;
    use rand::SeedableRng;

    /// Builds IMTL-L over tasks `a`, `b` with `init`, runs `L_a = a²`, `L_b = b²`; returns the
    /// weights, `(∂/∂a, ∂/∂b)` and `(∂/∂s_a, ∂/∂s_b)`.
    fn step(init: f64, a: f32, b: f32) -> Result<(TaskMap<f64>, [f64; 2], [f64; 2])> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let tasks = [TaskInfo::regression("a"), TaskInfo::classification("b")];
        let mut w = ImtlLConfig { init }.build(&tasks, vb.pp("weighting"))?;
        assert_eq!(w.name(), "imtl_l");
        let (va, vb_) = (Var::new(a, &dev)?, Var::new(b, &dev)?);
        let losses = TaskMap::new()
            .with("a", va.as_tensor().sqr()?)
            .with("b", vb_.as_tensor().sqr()?);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut ctx = StepContext {
            trainable: &[],
            shared: &[],
            last_shared: &[],
            penalty: None,
            representation: None,
            rng: &mut rng,
            epoch: 0,
            step: 0,
            collective: None,
            reduced: Vec::new(),
        };
        let u = w.backward(&losses, &mut ctx)?;
        let g = |t: &Tensor| -> candle_core::Result<f64> {
            Ok(match u.grads.get(t) {
                Some(g) => f64::from(g.flatten_all()?.to_vec1::<f32>()?[0]),
                None => f64::NAN,
            })
        };
        let s = |task: &str| {
            vars.get(
                1,
                &format!("weighting.s.{task}"),
                Init::Const(0.0),
                DType::F32,
                &dev,
            )
        };
        Ok((
            u.weights.clone(),
            [g(va.as_tensor())?, g(vb_.as_tensor())?],
            [g(&s("a")?)?, g(&s("b")?)?],
        ))
    }

    /// `s = 0.3`, `L = (4, 1)`: `∂/∂s = e^{0.3} L − 1 = (4.3994368, 0.3498588)`,
    /// `∂/∂x = e^{0.3} · 2x = (5.3994368, 2.6997184)`, weights `e^{0.3} = 1.3498588`.
    #[test]
    fn gradients_of_scales_and_model() -> Result<()> {
        let (w, gx, gs) = step(0.3, 2.0, 1.0)?;
        let e = 0.3f64.exp();
        assert!(
            (w["a"] - e).abs() < 1e-6 && (w["b"] - e).abs() < 1e-6,
            "{w:?}"
        );
        assert!((gs[0] - (4.0 * e - 1.0)).abs() < 1e-5, "{gs:?}");
        assert!((gs[1] - (e - 1.0)).abs() < 1e-6, "{gs:?}");
        assert!(
            (gx[0] - 4.0 * e).abs() < 1e-5 && (gx[1] - 2.0 * e).abs() < 1e-5,
            "{gx:?}"
        );
        Ok(())
    }

    /// At `s_t = −log L_t` the scaled loss is 1 and `∂/∂s_t = 0` (here `L_a = 4`, `init = −ln 4`).
    #[test]
    fn scale_gradient_vanishes_at_unit_scaled_loss() -> Result<()> {
        let (w, _, gs) = step(-(4f64.ln()), 2.0, 2.0)?;
        assert!(gs[0].abs() < 1e-6 && gs[1].abs() < 1e-6, "{gs:?}");
        assert!((w["a"] - 0.25).abs() < 1e-7, "{w:?}");
        Ok(())
    }

    #[test]
    fn validate_names_the_key() {
        let err = ImtlLConfig { init: f64::NAN }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("weighting.init"), "{err}");
        assert!(ImtlLConfig::default().validate().is_ok());
    }
}
