//! IMTL, hybrid impartial multi-task learning (Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang,
//! ICLR 2021, "Towards Impartial Multi-task Learning"; LibMTL's `IMTL`): IMTL-L's learnable loss
//! scales, then IMTL-G's gradient balancing on the scaled losses.
//!
//! Each task has a learnable scale `s_t`; the losses become `L̃_t = e^{s_t} L_t − s_t` and IMTL-G
//! ([`imtl_g_weights`](super::imtl_g::imtl_g_weights)) weighs the per-task gradients `g̃_t =
//! ∇L̃_t = e^{s_t} ∇L_t` of the shared parameters (or of the shared representation, `on`):
//! ```text
//! G̃ = J̃ J̃ᵀ,   v = G̃⁺ √diag(G̃),   w = v / Σ_t v_t,    d_shared = Σ_t w_t e^{s_t} ∇L_t
//! ∂/∂s_t = e^{s_t} L_t − 1,        d_task-specific(t) = e^{s_t} ∇L_t
//! ```
//! The shared update has equal projections on every task's unit gradient (IMTL-G, unchanged by
//! the scales' directions; the scales set its length through `Σ w = 1`), while `s_t` settles
//! where `e^{s_t} L_t = 1` (IMTL-L). `s_t` appears only in task `t`'s scaled loss, so it gets
//! that loss's own gradient, as task-specific parameters do (LibMTL's backward of each scaled
//! loss): the scales are trained by the model's optimizer, like [`imtl_l`](super::imtl_l).
//!
//! The `s_t` are variables of the model's `VarMap` (`weighting.s.<task>`, shape `[1]`, the same
//! names as `imtl_l`, created under the builder given to [`MethodConfig::build`]); a variable
//! loaded from a checkpoint keeps its value.
//!
//! - Shapes: `T` scalar losses; `J̃` is `T × n` (shared parameters) or `T × (B·d)`
//!   (representation); `T` weights; `T` extra parameters.
//! - Cost: `T` backward passes (parameters), or `T` head passes and one trunk pass
//!   (representation); one `T × T` SVD; memory: the `T` per-task gradient stores.
//! - State: none beyond the variables (they are the model's).
//! - Weights logged: the weight each original loss `L_t` received, `w_t e^{s_t}`.
//! - Defaults: `init = 0` (`s_t = 0`, LibMTL's initial scale), `on = "parameters"`.
//!
//! ```toml
//! weighting = { kind = "imtl" }
//! weighting = { kind = "imtl", init = 0.0, on = "representation" }
//! ```
use super::config::MethodConfig;
use super::imtl_g::ImtlG;
use super::{GradientWeighting, On, StepContext, Update, Weighting};
use crate::{OptimError, Result};
use candle_core::{DType, Tensor};
use candle_nn::init::Init;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_tensor::{TaskInfo, TaskList, TaskMap};

/// `imtl`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImtlConfig {
    /// Initial `s_t` (default 0).
    #[serde(default)]
    pub init: f64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

impl MethodConfig for ImtlConfig {
    fn validate(&self) -> Result<()> {
        if !self.init.is_finite() {
            return Err(OptimError::config("weighting.init", "must be finite"));
        }
        Ok(())
    }

    fn build(&self, tasks: &[TaskInfo], vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(Imtl::with_init(tasks, self.init, self.on, vb)?))
    }
}

/// IMTL: learnable loss scales, then IMTL-G on the scaled losses' gradients (module doc).
pub struct Imtl {
    /// `s_t` (shape `[1]`) by task.
    scales: TaskMap<Tensor>,
    /// IMTL-G on the gradients named by `on`.
    inner: GradientWeighting,
}

impl Imtl {
    /// Creates (or reuses) `s.<task> = init` under `vb` for every task of `tasks`, taking the
    /// gradients where `on` says; pass `vb.pp("weighting")` to get `weighting.s.<task>`.
    pub fn with_init<T: TaskList + ?Sized>(
        tasks: &T,
        init: f64,
        on: On,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let mut scales = TaskMap::new();
        for task in tasks.task_info() {
            let s = vb.get_with_hints(1, &format!("s.{}", task.name), Init::Const(init))?;
            scales.insert(task.name, s);
        }
        Ok(Self {
            scales,
            inner: GradientWeighting::new(ImtlG, on),
        })
    }
}

impl Weighting for Imtl {
    fn name(&self) -> &str {
        "imtl"
    }

    fn wants_representation(&self) -> bool {
        self.inner.wants_representation()
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let mut scaled = TaskMap::new();
        let mut factors = TaskMap::new();
        for (name, loss) in losses.iter() {
            let Some(s) = self.scales.get(name) else {
                candle_core::bail!("imtl has no scale s for task {name}");
            };
            let s = s.reshape(())?.to_dtype(loss.dtype())?;
            let factor = s.exp()?;
            factors.insert(name, factor.to_dtype(DType::F64)?.to_scalar::<f64>()?);
            scaled.insert(name, ((&factor * loss.reshape(())?)? - &s)?);
        }
        let update = self.inner.backward(&scaled, ctx)?;
        // The weight of the original L_t: w_t on L̃_t = e^{s_t} L_t − s_t.
        let weights = update
            .weights
            .map(|name, w| w * factors.get(name).copied().unwrap_or(1.0));
        Ok(Update {
            grads: update.grads,
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::imtl_g::imtl_g_weights;
    use crate::weighting::linalg::Gramian;
    use crate::weighting::Representation;
    use candle_core::{Device, Var};
    use candle_nn::VarMap;
    use rand::SeedableRng;

    const INIT: f64 = 0.3;
    /// Task gradients (rows) and loss values: `L_t = ℓ_t + g_t · θ` at `θ = 0`.
    const G: [[f64; 2]; 2] = [[1.0, 0.0], [0.5, 2.0]];
    const L: [f64; 2] = [4.0, 0.5];

    struct Out {
        weights: TaskMap<f64>,
        theta: Vec<f64>,
        scales: [f64; 2],
        heads: [f64; 2],
    }

    /// One IMTL step on tasks `a`, `b`: `L_t = ℓ_t + g_t · θ + 3 h_t` (`θ` shared, `h_t` task
    /// `t`'s head, all zero). With `on = representation`, `θ` is a trunk whose output the heads
    /// read through a leaf, as the trainer does.
    fn step(on: On) -> Result<Out> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F64, &dev);
        let tasks = [TaskInfo::regression("a"), TaskInfo::regression("b")];
        let mut w = ImtlConfig { init: INIT, on }.build(&tasks, vb.pp("weighting"))?;
        assert_eq!(w.name(), "imtl");
        assert_eq!(w.wants_representation(), on == On::Representation);
        let theta = Var::zeros(2, DType::F64, &dev)?;
        let features = (theta.as_tensor() * 1.0)?;
        let leaf = Var::from_tensor(&features.detach())?;
        let input = match on {
            On::Parameters => theta.as_tensor().clone(),
            On::Representation => leaf.as_tensor().clone(),
        };
        let heads = [
            Var::zeros((), DType::F64, &dev)?,
            Var::zeros((), DType::F64, &dev)?,
        ];
        let mut losses = TaskMap::new();
        for (k, name) in ["a", "b"].into_iter().enumerate() {
            let g = Tensor::new(&G[k], &dev)?;
            let loss = (((&input * g)?.sum_all()? + L[k])? + (heads[k].as_tensor() * 3.0)?)?;
            losses.insert(name, loss);
        }
        let s = |task: &str| {
            vars.get(
                1,
                &format!("weighting.s.{task}"),
                Init::Const(0.0),
                DType::F64,
                &dev,
            )
        };
        let (sa, sb) = (Var::from_tensor(&s("a")?)?, Var::from_tensor(&s("b")?)?);
        let mut trainable = vec![
            ("head.a".to_string(), heads[0].clone()),
            ("head.b".to_string(), heads[1].clone()),
            ("theta".to_string(), theta.clone()),
        ];
        trainable.extend(
            vars.data()
                .lock()
                .expect("vars")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        trainable.sort_by(|a, b| a.0.cmp(&b.0));
        let shared = vec![("theta".to_string(), theta.clone())];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut ctx = StepContext {
            trainable: &trainable,
            shared: &shared,
            last_shared: &shared,
            penalty: None,
            representation: (on == On::Representation).then_some(Representation {
                leaf: &leaf,
                features: &features,
            }),
            rng: &mut rng,
            epoch: 0,
            step: 0,
            collective: None,
            reduced: Vec::new(),
        };
        let u = w.backward(&losses, &mut ctx)?;
        let grad = |t: &Tensor| -> candle_core::Result<Vec<f64>> {
            match u.grads.get(t) {
                Some(g) => g.flatten_all()?.to_vec1::<f64>(),
                None => Ok(vec![f64::NAN]),
            }
        };
        assert!(u.grads.get(leaf.as_tensor()).is_none());
        Ok(Out {
            weights: u.weights.clone(),
            theta: grad(theta.as_tensor())?,
            scales: [grad(sa.as_tensor())?[0], grad(sb.as_tensor())?[0]],
            heads: [
                grad(heads[0].as_tensor())?[0],
                grad(heads[1].as_tensor())?[0],
            ],
        })
    }

    /// By hand: `e^{0.3} = 1.3498588`; scaled rows `g̃_t = e^{0.3} g_t`. IMTL-G's `w` makes
    /// `d · g_t/‖g_t‖` equal with `Σ w = 1` on the scaled rows; `∂/∂s_t = e^{0.3} ℓ_t − 1`
    /// (4.3994352, −0.3250706); the heads get `3 e^{0.3}`.
    #[test]
    fn scales_heads_and_shared_update() -> Result<()> {
        let e = INIT.exp();
        let rows: Vec<Vec<f64>> = G
            .iter()
            .map(|g| g.iter().map(|x| x * e).collect())
            .collect();
        let w = imtl_g_weights(&Gramian::of_rows(&rows));
        let d: Vec<f64> = (0..2)
            .map(|j| w[0] * rows[0][j] + w[1] * rows[1][j])
            .collect();
        // Equal projections on the unit gradients (IMTL-G's defining property), w sums to 1.
        let proj = |g: &[f64; 2]| (d[0] * g[0] + d[1] * g[1]) / g[0].hypot(g[1]);
        assert!((proj(&G[0]) - proj(&G[1])).abs() < 1e-12 && (w[0] + w[1] - 1.0).abs() < 1e-12);
        for on in [On::Parameters, On::Representation] {
            let out = step(on)?;
            for j in 0..2 {
                assert!(
                    (out.theta[j] - d[j]).abs() < 1e-12,
                    "{on:?}: {:?} vs {d:?}",
                    out.theta
                );
            }
            for (t, l) in L.iter().enumerate() {
                assert!(
                    (out.scales[t] - (e * l - 1.0)).abs() < 1e-12,
                    "{:?}",
                    out.scales
                );
                assert!((out.heads[t] - 3.0 * e).abs() < 1e-12, "{:?}", out.heads);
            }
            assert!(
                (out.weights["a"] - w[0] * e).abs() < 1e-12,
                "{:?}",
                out.weights
            );
            assert!(
                (out.weights["b"] - w[1] * e).abs() < 1e-12,
                "{:?}",
                out.weights
            );
        }
        Ok(())
    }

    #[test]
    fn validate_names_the_key() {
        let err = ImtlConfig {
            init: f64::INFINITY,
            on: On::Parameters,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("weighting.init"), "{err}");
        assert!(ImtlConfig::default().validate().is_ok());
    }
}
