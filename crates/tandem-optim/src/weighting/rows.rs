//! Any weighting on plain numbers: per-task gradients as rows of a matrix, per-task loss values,
//! one step from a fresh state.
//!
//! The rows `g_t` (`T × n`) become the gradients of a linear model: one `f64` parameter vector
//! `θ ∈ ℝⁿ` (zero) shared by every task, and the losses `L_t(θ) = ℓ_t + g_t · θ`, so that
//! `L_t = ℓ_t` and `∇_θ L_t = g_t`. The weighting runs its real training step on them (the
//! same [`Weighting::backward`] the trainer calls, per-task backward passes, Gramian, solver),
//! and the gradient it returns for `θ` is the method's update. The `aggregate` example and the
//! TorchJD reference test use this.
use super::{StepContext, Weighting, WeightingConfig};
use crate::{OptimError, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem_tensor::{TaskInfo, TaskMap};

/// What a weighting made of one step on rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsUpdate {
    /// The update `d` (`n`): the gradient the optimizer would apply to `θ`.
    pub grad: Vec<f64>,
    /// The weight the method gave each task (`T`).
    pub weights: Vec<f64>,
}

/// Runs `config` for one step on `rows` (`T × n`) with task losses `losses` (`T`, all positive
/// for the methods that take logarithms), from a fresh state, randomness from `seed`.
///
/// ```
/// use tandem_optim::weighting::rows::run_on_rows;
/// use tandem_optim::WeightingConfig;
/// let c: WeightingConfig = serde_json::from_str(r#"{"kind": "mean"}"#).unwrap();
/// let u = run_on_rows(&c, &[vec![1.0, 0.0], vec![0.0, 3.0]], &[1.0, 1.0], 0)?;
/// assert_eq!(u.grad, vec![0.5, 1.5]);
/// # Ok::<(), tandem_optim::OptimError>(())
/// ```
pub fn run_on_rows(
    config: &WeightingConfig,
    rows: &[Vec<f64>],
    losses: &[f64],
    seed: u64,
) -> Result<RowsUpdate> {
    let t = rows.len();
    let n = rows.first().map(Vec::len).unwrap_or(0);
    if t == 0 || n == 0 {
        return Err(OptimError::config(
            "grads",
            "needs at least one non-empty row",
        ));
    }
    if let Some(i) = rows.iter().position(|r| r.len() != n) {
        return Err(OptimError::config(
            &format!("grads[{i}]"),
            format!("has {} values where row 0 has {n}", rows[i].len()),
        ));
    }
    if losses.len() != t {
        return Err(OptimError::config(
            "losses",
            format!("has {} values for {t} rows", losses.len()),
        ));
    }
    let dev = Device::Cpu;
    let tasks: Vec<TaskInfo> = super::row_names(t)
        .into_iter()
        .map(TaskInfo::regression)
        .collect();
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F64, &dev);
    let mut weighting: Box<dyn Weighting> = config.build(&tasks[..], vb)?;
    let theta = Var::zeros(n, DType::F64, &dev)?;
    let mut losses_map = TaskMap::new();
    for ((task, row), l) in tasks.iter().zip(rows).zip(losses) {
        let g = Tensor::from_slice(row, n, &dev)?;
        let loss = ((theta.as_tensor() * g)?.sum_all()? + *l)?;
        losses_map.insert(task.name.clone(), loss);
    }
    let mut trainable = vec![("theta".to_string(), theta.clone())];
    trainable.extend(
        vars.data()
            .lock()
            .map_err(|_| OptimError::config("weighting", "variable map poisoned"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    trainable.sort_by(|a, b| a.0.cmp(&b.0));
    let shared = vec![("theta".to_string(), theta.clone())];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ctx = StepContext {
        trainable: &trainable,
        shared: &shared,
        last_shared: &shared,
        penalty: None,
        representation: None,
        rng: &mut rng,
        epoch: 0,
        step: 0,
        collective: None,
        reduced: Vec::new(),
    };
    let update = weighting.backward(&losses_map, &mut ctx)?;
    let grad = match update.grads.get(theta.as_tensor()) {
        Some(g) => g.to_dtype(DType::F64)?.to_vec1::<f64>()?,
        None => vec![0.0; n],
    };
    let weights = tasks
        .iter()
        .map(|task| update.weights.get(&task.name).copied().unwrap_or(0.0))
        .collect();
    Ok(RowsUpdate { grad, weights })
}
