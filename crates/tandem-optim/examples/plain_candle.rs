//! Uncertainty weighting (Kendall et al. 2018) for a model built from plain `candle_nn` layers,
//! trained in a loop of one's own: this crate, candle and `tandem-tensor` are all it takes.
//!
//! The model is a shared `Linear(4 → 16)` + tanh trunk with one `Linear(16 → 1)` head per task.
//! Both tasks regress a linear function of the input; `clean` has noise of variance 0.05²,
//! `noisy` of variance 1. Uncertainty weighting learns `s_t = log σ_t²` per task and settles
//! where `e^{−s_t} · MSE_t = 1`, so `s_clean` falls far below 0 and `s_noisy` stays near
//! `log 1 = 0`: the clean task gets the larger weight.
//!
//! ```text
//! cargo run --release -p tandem-optim --example plain_candle
//! ```
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_optim::{AdamW, AdamWConfig, Optimizer, StepContext, Uncertainty, Weighting};
use tandem_tensor::{seeded_var_builder, sorted_vars, TaskInfo, TaskMap};

/// What a training run produced.
pub struct Outcome {
    /// Each task's unweighted training loss (MSE) before the first step.
    pub first: TaskMap<f64>,
    /// Each task's unweighted training loss after the last step.
    pub last: TaskMap<f64>,
    /// The learned `s_t = log σ_t²`.
    pub log_variances: TaskMap<f64>,
    /// The weight `½ e^{−s_t}` each task's loss received at the last step.
    pub weights: TaskMap<f64>,
}

/// `n` samples `x ∈ [−1, 1]⁴` with targets `w·x + noise`, the noise uniform with standard
/// deviation `sigma`.
fn data(n: usize, w: [f32; 4], sigma: f32, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
    let half_width = sigma * 3f32.sqrt();
    let mut xs = Vec::with_capacity(4 * n);
    let mut ys = Vec::with_capacity(n);
    for _ in 0..n {
        let x: [f32; 4] = std::array::from_fn(|_| rng.random_range(-1.0f32..1.0));
        let clean: f32 = x.iter().zip(w).map(|(a, b)| a * b).sum();
        ys.push(clean + rng.random_range(-half_width..half_width));
        xs.extend(x);
    }
    (xs, ys)
}

/// Trains the two-task model for `steps` full-batch steps with AdamW.
pub fn train(steps: u64) -> candle_core::Result<Outcome> {
    let dev = Device::Cpu;
    let n = 256;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (xs, clean) = data(n, [0.5, -1.0, 0.8, 0.3], 0.05, &mut rng);
    // The same inputs, another function of them, much more noise.
    let noisy: Vec<f32> = {
        let mut r = ChaCha8Rng::seed_from_u64(4);
        xs.chunks(4)
            .map(|x| -0.7 * x[0] + 0.4 * x[3] + r.random_range(-1.0f32..1.0) * 3f32.sqrt())
            .collect()
    };
    let x = Tensor::from_vec(xs, (n, 4), &dev)?;
    let targets = TaskMap::new()
        .with("clean", Tensor::from_vec(clean, (n, 1), &dev)?)
        .with("noisy", Tensor::from_vec(noisy, (n, 1), &dev)?);

    let vars = VarMap::new();
    let vb = seeded_var_builder(&vars, 7, DType::F32, &dev);
    let trunk = candle_nn::linear(4, 16, vb.pp("trunk"))?;
    let heads: TaskMap<Linear> = TaskMap::new()
        .with("clean", candle_nn::linear(16, 1, vb.pp("heads.clean"))?)
        .with("noisy", candle_nn::linear(16, 1, vb.pp("heads.noisy"))?);
    let tasks = [TaskInfo::regression("clean"), TaskInfo::regression("noisy")];
    let mut weighting = Uncertainty::new(&tasks, vb.pp("weighting"))?;
    let lr = 0.02;
    let mut opt = AdamW::new(AdamWConfig {
        lr,
        ..Default::default()
    });

    let trainable = sorted_vars(&vars);
    let shared: Vec<_> = trainable
        .iter()
        .filter(|(n, _)| n.starts_with("trunk"))
        .cloned()
        .collect();
    let mut first = None;
    let mut last = TaskMap::new();
    let mut weights = TaskMap::new();
    for step in 0..steps {
        let h = trunk.forward(&x)?.tanh()?;
        let mut losses = TaskMap::new();
        for (task, head) in heads.iter() {
            let target = &targets[task];
            losses.insert(task, candle_nn::loss::mse(&head.forward(&h)?, target)?);
        }
        last = losses.try_map(|_, l| l.to_scalar::<f32>().map(f64::from))?;
        first.get_or_insert_with(|| last.clone());
        let mut step_rng = ChaCha8Rng::seed_from_u64(step);
        let mut ctx = StepContext {
            trainable: &trainable,
            shared: &shared,
            last_shared: &shared,
            penalty: None,
            representation: None,
            rng: &mut step_rng,
            epoch: 0,
            step,
            collective: None,
            reduced: Vec::new(),
        };
        let update = weighting.backward(&losses, &mut ctx)?;
        weights = update.weights;
        opt.step(&trainable, &update.grads, lr)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    }
    Ok(Outcome {
        first: first.unwrap_or_default(),
        last,
        log_variances: weighting.log_variances()?,
        weights,
    })
}

#[allow(dead_code)]
fn main() -> candle_core::Result<()> {
    let out = train(400)?;
    for (task, s) in out.log_variances.iter() {
        println!(
            "{task}: loss {:.4} → {:.4}, s = log σ² {s:+.3}, weight {:.3}",
            out.first[task], out.last[task], out.weights[task]
        );
    }
    Ok(())
}
