//! Classification.
//!
//! Predictions are logits `[B, C]`; targets are class indices `[B]` (u32).
//!
//! **Loss**: cross-entropy through a numerically stable log-softmax,
//! `L_i = −(z_{i,y_i} − m_i − log Σ_c exp(z_{i,c} − m_i))` with `m_i = max_c z_{i,c}`, averaged
//! over labelled samples. Binary tasks use the same two-logit form (not a sigmoid), so a logit of
//! ±1000 gives a finite loss and gradient.
//!
//! **Metrics**: `accuracy` and `error = 100 − accuracy`, in percent.
use crate::metric::{mask_vec, masked_mean};
use crate::{Metric, MetricValues, Task, TaskKind};
use candle_core::{Result, Tensor, D};
use tandem_tensor::Target;

/// An `n`-way classification task.
#[derive(Debug, Clone)]
pub struct ClassTask {
    name: String,
    classes: usize,
    auxiliary: bool,
}

impl ClassTask {
    /// A main task named `name` with `classes` classes.
    pub fn new(name: impl Into<String>, classes: usize) -> Self {
        Self {
            name: name.into(),
            classes,
            auxiliary: false,
        }
    }

    /// Marks the task auxiliary.
    pub fn auxiliary(mut self) -> Self {
        self.auxiliary = true;
        self
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }
}

impl Task for ClassTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> TaskKind {
        TaskKind::Classification
    }
    fn out_dim(&self) -> usize {
        self.classes
    }
    fn is_auxiliary(&self) -> bool {
        self.auxiliary
    }
    fn loss(&self, prediction: &Tensor, target: &Target) -> Result<Tensor> {
        let (b, c) = prediction.dims2()?;
        if c != self.classes || target.values.dims() != [b] {
            candle_core::bail!(
                "task {}: logits {:?} must be [B, {}] and targets {:?} must be [B]",
                self.name,
                prediction.dims(),
                self.classes,
                target.values.dims()
            )
        }
        let labels = target.values.to_dtype(candle_core::DType::U32)?;
        if let Some(&bad) = labels.to_vec1::<u32>()?.iter().find(|&&l| l as usize >= c) {
            candle_core::bail!("task {}: class index {bad} out of range 0..{c}", self.name)
        }
        let logp = candle_nn::ops::log_softmax(prediction, D::Minus1)?;
        let picked = logp.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
        masked_mean(&picked.neg()?, target)
    }
    fn metrics(&self) -> Box<dyn Metric> {
        Box::new(ClassMetrics::default())
    }
    fn primary_metric(&self) -> &'static str {
        "error"
    }
}

/// Accumulates accuracy.
#[derive(Debug, Clone, Default)]
pub struct ClassMetrics {
    correct: usize,
    total: usize,
}

impl ClassMetrics {
    /// Counts one labelled sample, predicted right or wrong (for tasks whose predictions are
    /// not `[B, C]` logits, e.g. [`BinaryMetrics`](crate::BinaryMetrics)).
    pub fn add(&mut self, correct: bool) {
        self.total += 1;
        self.correct += usize::from(correct);
    }
}

impl Metric for ClassMetrics {
    fn update(&mut self, prediction: &Tensor, target: &Target) -> Result<()> {
        let pred = prediction.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let truth = target
            .values
            .to_dtype(candle_core::DType::U32)?
            .to_vec1::<u32>()?;
        let mask = mask_vec(target, pred.len())?;
        for ((p, t), m) in pred.iter().zip(&truth).zip(mask) {
            if m {
                self.add(p == t);
            }
        }
        Ok(())
    }

    fn compute(&self) -> MetricValues {
        let mut m = MetricValues::new();
        if self.total > 0 {
            let acc = 100.0 * self.correct as f64 / self.total as f64;
            m.insert("accuracy".into(), acc);
            m.insert("error".into(), 100.0 - acc);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn extreme_logits_give_finite_loss_and_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let z = Var::new(&[[1000f32, -1000.0], [-1000.0, 1000.0]], &dev)?;
        let t = Target::new(Tensor::new(&[1u32, 1], &dev)?);
        let l = ClassTask::new("s", 2).loss(z.as_tensor(), &t)?;
        // sample 0: −log softmax picks the −1000 logit: 2000; sample 1: 0 → mean 1000
        assert_eq!(l.to_scalar::<f32>()?, 1000.0);
        let g = l.backward()?;
        let gz = g
            .get(&z)
            .map(|t| t.to_vec2::<f32>())
            .transpose()?
            .unwrap_or_default();
        // d/dz of mean CE: (softmax − onehot)/B → [[0.5, −0.5], [0, 0]]
        assert_eq!(gz, vec![vec![0.5, -0.5], vec![0.0, 0.0]]);
        Ok(())
    }

    /// PyTorch: F.cross_entropy(torch.tensor([[1.,2.,3.],[1.,0.,-1.]]), torch.tensor([0,1]))
    /// = 1.9076 (mean of 2.4076 and 1.4076).
    #[test]
    fn matches_pytorch_cross_entropy() -> Result<()> {
        let dev = Device::Cpu;
        let z = Tensor::new(&[[1f32, 2., 3.], [1., 0., -1.]], &dev)?;
        let t = Target::new(Tensor::new(&[0u32, 1], &dev)?);
        let l = ClassTask::new("p", 3).loss(&z, &t)?.to_scalar::<f32>()?;
        assert!((l - 1.9076).abs() < 1e-4, "{l}");
        let mut m = ClassTask::new("p", 3).metrics();
        m.update(&z, &t)?;
        assert_eq!(m.compute()["error"], 100.0);
        Ok(())
    }

    #[test]
    fn out_of_range_class_is_an_error() -> Result<()> {
        let dev = Device::Cpu;
        let z = Tensor::zeros((1, 2), candle_core::DType::F32, &dev)?;
        let t = Target::new(Tensor::new(&[2u32], &dev)?);
        let e = ClassTask::new("smile", 2)
            .loss(&z, &t)
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("class index 2 out of range"));
        Ok(())
    }
}
