//! Uncertainty weighting (Kendall, Gal & Cipolla 2018, "Multi-Task Learning Using Uncertainty to
//! Weigh Losses for Scene Geometry and Semantics").
//!
//! Each task has a learnable `s_t = log σ_t²` and the objective is
//! ```text
//! L = Σ_t c_t · e^{−s_t} · L_t + ½ s_t,   c_t = ½ (regression, Gaussian likelihood)
//!                                         c_t = 1 (classification, softmax likelihood)
//! ∂L/∂s_t = ½ − c_t · e^{−s_t} · L_t
//! ```
//! so `s_t` settles where `c_t e^{−s_t} L_t = ½`: a task with a large loss gets a small weight.
//! The `s_t` are ordinary variables of the model's `VarMap` (`weighting.s.<task>`, shape `[1]`),
//! optimised and checkpointed with the network (note that the optimizer's weight decay, if any,
//! also pulls them towards 0). The reported weight of a task is its multiplier `c_t e^{−s_t}`.
use super::{StepContext, Update, Weighting};
use candle_core::Tensor;
use candle_nn::init::Init;
use candle_nn::VarBuilder;
use tandem_tensor::TaskMap;
use tandem_tensor::{TaskKind, TaskList};

/// Homoscedastic-uncertainty weighting with one learnable `s_t = log σ_t²` per task.
#[derive(Debug, Clone)]
pub struct Uncertainty {
    /// Per task: `(s_t` of shape `[1]`, `c_t)`.
    params: TaskMap<(Tensor, f64)>,
}

impl Uncertainty {
    /// Creates `s_t = 0` for every task of `tasks` (a `tandem_heads::TaskSet`, or a list of
    /// [`TaskInfo`](tandem_tensor::TaskInfo) for a model of one's own), under `vb` (variables
    /// `s.<task>`; pass `vb.pp("weighting")` to get the documented `weighting.s.<task>`).
    pub fn new<T: TaskList + ?Sized>(tasks: &T, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::with_init(tasks, 0.0, vb)
    }

    /// Like [`Uncertainty::new`] with `s_t = init` (`σ_t² = e^{init}`). A variable that already
    /// exists in the `VarMap` (e.g. loaded from a checkpoint) keeps its value.
    pub fn with_init<T: TaskList + ?Sized>(
        tasks: &T,
        init: f64,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let mut params = TaskMap::new();
        for task in tasks.task_info() {
            let s = vb.get_with_hints(1, &format!("s.{}", task.name), Init::Const(init))?;
            let c = match task.kind {
                TaskKind::Regression => 0.5,
                TaskKind::Classification => 1.0,
            };
            params.insert(task.name, (s, c));
        }
        Ok(Self { params })
    }

    /// The current `s_t = log σ_t²` of every task.
    pub fn log_variances(&self) -> candle_core::Result<TaskMap<f64>> {
        self.params.try_map(|_, (s, _)| {
            Ok(f64::from(
                s.flatten_all()?
                    .to_vec1::<f32>()?
                    .first()
                    .copied()
                    .unwrap_or(0.0),
            ))
        })
    }
}

impl Weighting for Uncertainty {
    fn name(&self) -> &str {
        "uncertainty"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let mut total: Option<Tensor> = None;
        let mut weights = TaskMap::new();
        for (name, loss) in losses.iter() {
            let Some((s, c)) = self.params.get(name) else {
                candle_core::bail!("uncertainty weighting has no s for task {name}");
            };
            let s = s.reshape(())?;
            let precision = s.neg()?.exp()?;
            let term = (((&precision * loss)? * *c)? + (&s * 0.5)?)?;
            weights.insert(name, *c * f64::from(precision.to_scalar::<f32>()?));
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
    use tandem_tensor::TaskInfo;

    /// `∂/∂s = ½ − c·e^{−s}·L` and `∂/∂θ = c·e^{−s}·∂L/∂θ`, by hand; PyTorch agrees:
    /// ```python
    /// s = torch.tensor(0.3, requires_grad=True); th = torch.tensor(2.0, requires_grad=True)
    /// L = th**2 / 2                                  # L = 2, dL/dθ = 2
    /// (0.5 * torch.exp(-s) * L + 0.5 * s).backward() # s.grad = 0.5 − e^{−0.3} = −0.2408182
    ///                                                # th.grad = e^{−0.3} = 0.7408182
    /// # classification: (torch.exp(-s) * L + 0.5 * s) → s.grad = 0.5 − 2e^{−0.3} = −0.9816364
    /// ```
    #[test]
    fn gradient_of_s_and_theta() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let tasks = [
            TaskInfo::regression("lm"),
            TaskInfo::classification("cls").auxiliary(),
        ];
        let mut w = Uncertainty::with_init(&tasks, 0.3, vb.pp("weighting"))?;
        let th = Var::new(2.0f32, &dev)?;
        let l = (th.as_tensor().sqr()? * 0.5)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for (task, ds, dth, weight) in [
            ("lm", -0.240_818_2, 0.740_818_2, 0.370_409_1),
            ("cls", -0.981_636_4, 1.481_636_4, 0.740_818_2),
        ] {
            let losses = TaskMap::new().with(task, l.clone());
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
            let s = vars.get(
                1,
                &format!("weighting.s.{task}"),
                Init::Const(0.0),
                DType::F32,
                &dev,
            )?;
            let gs = u
                .grads
                .get(&s)
                .map(|g| g.to_vec1::<f32>())
                .transpose()?
                .unwrap_or_default();
            assert!((f64::from(gs[0]) - ds).abs() < 1e-6, "{task}: {gs:?}");
            let gt = u
                .grads
                .get(th.as_tensor())
                .map(|g| g.to_scalar::<f32>())
                .transpose()?
                .unwrap_or(0.0);
            assert!((f64::from(gt) - dth).abs() < 1e-6, "{task}: {gt}");
            assert!((u.weights[task] - weight).abs() < 1e-6);
        }
        assert!((w.log_variances()?["cls"] - 0.3).abs() < 1e-7);
        Ok(())
    }
}
