//! Binary classification with one logit.
//!
//! Predictions are logits `[B, 1]` (the head's output; `[B]` is accepted too); targets are
//! `[B]` labels in `{0, 1}` (f32, or any dtype that converts to the logits' dtype, e.g. u32).
//!
//! **Loss**: binary cross-entropy with logits in the numerically stable form of PyTorch's
//! `BCEWithLogitsLoss`,
//! `L_i = max(z_i, 0) − z_i·y_i + log(1 + exp(−|z_i|))`,
//! averaged over labelled samples (`Σ_i m_i L_i / max(Σ_i m_i, 1)`). `exp` only ever sees
//! `−|z| ≤ 0`, so a logit of ±1000 gives a finite loss and gradient; the gradient is
//! `σ(z_i) − y_i` per sample (divided by the number of labelled samples).
//!
//! **Metrics**: the prediction is 1 when `z > 0` (probability above one half) and a label
//! counts as 1 when it is above 0.5; `accuracy` and `error = 100 − accuracy`, in percent, as
//! for [`ClassTask`](crate::ClassTask).
use crate::metric::{check_mask, mask_vec, masked_mean};
use crate::{ClassMetrics, Metric, MetricValues, Task, TaskKind};
use candle_core::{Result, Tensor};
use tandem_tensor::Target;

/// A binary classification task: one logit per sample.
#[derive(Debug, Clone)]
pub struct BinaryTask {
    name: String,
    auxiliary: bool,
}

impl BinaryTask {
    /// A main task named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            auxiliary: false,
        }
    }

    /// Marks the task auxiliary.
    pub fn auxiliary(mut self) -> Self {
        self.auxiliary = true;
        self
    }

    /// The logits as `[B]`, or an error naming the task unless they are `[B, 1]` or `[B]`.
    fn logits(&self, prediction: &Tensor) -> Result<Tensor> {
        match prediction.dims() {
            [_, 1] => prediction.squeeze(1),
            [_] => Ok(prediction.clone()),
            dims => candle_core::bail!("task {}: logits {dims:?} must be [B, 1]", self.name),
        }
    }
}

impl Task for BinaryTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> TaskKind {
        TaskKind::Classification
    }
    fn out_dim(&self) -> usize {
        1
    }
    fn is_auxiliary(&self) -> bool {
        self.auxiliary
    }
    fn loss(&self, prediction: &Tensor, target: &Target) -> Result<Tensor> {
        let z = self.logits(prediction)?;
        let b = z.dim(0)?;
        if target.values.dims() != [b] {
            candle_core::bail!(
                "task {}: logits {:?} are [B, 1] but targets {:?} are not [B]",
                self.name,
                prediction.dims(),
                target.values.dims()
            )
        }
        check_mask(&self.name, target, b)?;
        let y = target.values.to_dtype(z.dtype())?;
        let mask = mask_vec(target, b)?;
        let labels = y.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        if let Some((&bad, _)) = labels
            .iter()
            .zip(&mask)
            .find(|&(&v, &m)| m && v != 0.0 && v != 1.0)
        {
            candle_core::bail!("task {}: binary label {bad} is not 0 or 1", self.name)
        }
        // max(z, 0) − z·y + log(1 + exp(−|z|))
        let softplus_neg_abs = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
        let per_sample = ((z.relu()? - (&z * &y)?)? + softplus_neg_abs)?;
        masked_mean(&per_sample, target)
    }
    fn metrics(&self) -> Box<dyn Metric> {
        Box::new(BinaryMetrics::default())
    }
    fn primary_metric(&self) -> &'static str {
        "error"
    }
}

/// Accumulates the accuracy of one-logit predictions (`z > 0` means 1).
#[derive(Debug, Clone, Default)]
pub struct BinaryMetrics {
    counts: ClassMetrics,
}

impl Metric for BinaryMetrics {
    fn update(&mut self, prediction: &Tensor, target: &Target) -> Result<()> {
        let z = prediction.flatten_all()?.to_vec1::<f32>()?;
        let truth = target
            .values
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if z.len() != truth.len() {
            candle_core::bail!(
                "binary metrics: logits {:?} and targets {:?} must hold one value per sample",
                prediction.dims(),
                target.values.dims()
            )
        }
        let mask = mask_vec(target, z.len())?;
        for ((&z, &t), m) in z.iter().zip(&truth).zip(mask) {
            if m {
                self.counts.add((z > 0.0) == (t > 0.5));
            }
        }
        Ok(())
    }

    fn compute(&self) -> MetricValues {
        self.counts.compute()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use proptest::prelude::*;

    /// By hand, in f64 (`max(z,0) − z·y + log1p(exp(−|z|))`), which is what PyTorch's
    /// `F.binary_cross_entropy_with_logits(torch.tensor([2.,-1.,0.,3.]),
    /// torch.tensor([1.,0.,1.,0.]), reduction='none')` computes:
    /// [0.1269280110, 0.3132616875, 0.6931471806, 3.0485873516], mean 1.0454810577.
    /// Gradient of the mean: (σ(z) − y)/4 = [−0.0298007305, 0.0672353553, −0.125, 0.2381435317].
    #[test]
    fn matches_bce_with_logits_by_hand() -> Result<()> {
        let dev = Device::Cpu;
        let z = Var::new(&[[2f32], [-1.], [0.], [3.]], &dev)?;
        let t = Target::new(Tensor::new(&[1f32, 0., 1., 0.], &dev)?);
        let task = BinaryTask::new("smile");
        let l = task.loss(z.as_tensor(), &t)?;
        let lv = l.to_scalar::<f32>()?;
        assert!((lv - 1.045_481_1).abs() < 1e-6, "{lv}");
        let g = l.backward()?;
        let gz = g
            .get(&z)
            .map(|t| t.flatten_all()?.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        let want = [-0.029_800_73f32, 0.067_235_36, -0.125, 0.238_143_53];
        assert_eq!(gz.len(), 4);
        for (g, w) in gz.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{gz:?}");
        }
        // error: predictions [1, 0, 0, 1] against [1, 0, 1, 0] → 50 %.
        let mut m = task.metrics();
        m.update(z.as_tensor(), &t)?;
        assert_eq!(m.compute()["error"], 50.0);
        assert_eq!(m.compute()["accuracy"], 50.0);
        Ok(())
    }

    /// z = ±1000: loss 0 when right, 1000 when wrong (mean 500); gradient (σ(z) − y)/4 is
    /// exactly [0, 0, 0.25, −0.25] — finite, where a naive `−y·log σ(z)` gives inf/NaN.
    #[test]
    fn extreme_logits_give_finite_loss_and_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let z = Var::new(&[[1000f32], [-1000.], [1000.], [-1000.]], &dev)?;
        let t = Target::new(Tensor::new(&[1f32, 0., 0., 1.], &dev)?);
        let l = BinaryTask::new("s").loss(z.as_tensor(), &t)?;
        assert_eq!(l.to_scalar::<f32>()?, 500.0);
        let g = l.backward()?;
        let gz = g
            .get(&z)
            .map(|t| t.flatten_all()?.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert_eq!(gz, vec![0.0, 0.0, 0.25, -0.25]);
        Ok(())
    }

    /// Masking sample 2 leaves (0.1269280110 + 0.3132616875 + 3.0485873516)/3 = 1.1629256834,
    /// whatever its logit and label; the error over samples 0, 1, 3 is 1/3.
    #[test]
    fn masked_sample_changes_nothing() -> Result<()> {
        let dev = Device::Cpu;
        let mask = Tensor::new(&[1f32, 1., 0., 1.], &dev)?;
        let task = BinaryTask::new("s");
        let mut values = Vec::new();
        for (z2, y2) in [(0f32, 1f32), (-50., 0.), (7., 1.)] {
            let z = Tensor::new(&[[2f32], [-1.], [z2], [3.]], &dev)?;
            let t = Target::masked(Tensor::new(&[1f32, 0., y2, 0.], &dev)?, mask.clone());
            let l = task.loss(&z, &t)?.to_scalar::<f32>()?;
            assert!((l - 1.162_925_7).abs() < 1e-6, "{l}");
            let mut m = task.metrics();
            m.update(&z, &t)?;
            values.push(m.compute());
        }
        assert!(
            (values[0]["error"] - 100.0 / 3.0).abs() < 1e-9,
            "{values:?}"
        );
        assert!(values.iter().all(|v| v == &values[0]));
        // No labelled sample: zero loss, no metrics.
        let z = Tensor::new(&[[2f32]], &dev)?;
        let none = Target::masked(
            Tensor::new(&[1f32], &dev)?,
            Tensor::zeros(1, DType::F32, &dev)?,
        );
        assert_eq!(task.loss(&z, &none)?.to_scalar::<f32>()?, 0.0);
        let mut m = task.metrics();
        m.update(&z, &none)?;
        assert!(m.compute().is_empty());
        Ok(())
    }

    #[test]
    fn task_properties_and_label_dtypes() -> Result<()> {
        let t = BinaryTask::new("smile").auxiliary();
        assert_eq!(t.name(), "smile");
        assert_eq!(t.kind(), TaskKind::Classification);
        assert_eq!(t.out_dim(), 1);
        assert!(t.is_auxiliary());
        assert!(!BinaryTask::new("smile").is_auxiliary());
        assert_eq!(t.primary_metric(), "error");
        // u32 labels and [B] logits give the same loss as f32 labels and [B, 1] logits.
        let dev = Device::Cpu;
        let z = Tensor::new(&[2f32, -1., 0., 3.], &dev)?;
        let a = t
            .loss(&z, &Target::new(Tensor::new(&[1u32, 0, 1, 0], &dev)?))?
            .to_scalar::<f32>()?;
        let b = t
            .loss(
                &z.unsqueeze(1)?,
                &Target::new(Tensor::new(&[1f32, 0., 1., 0.], &dev)?),
            )?
            .to_scalar::<f32>()?;
        assert_eq!(a, b);
        Ok(())
    }

    #[test]
    fn bad_shapes_and_labels_are_errors_naming_the_task() -> Result<()> {
        let dev = Device::Cpu;
        let task = BinaryTask::new("smile");
        let err = |p: &Tensor, t: &Target| {
            task.loss(p, t)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let z = Tensor::zeros((2, 1), DType::F32, &dev)?;
        let two_logits = Tensor::zeros((2, 2), DType::F32, &dev)?;
        let ok = Target::new(Tensor::new(&[0f32, 1.], &dev)?);
        assert!(err(&two_logits, &ok).contains("task smile"));
        let wrong_batch = Target::new(Tensor::new(&[0f32, 1., 1.], &dev)?);
        assert!(err(&z, &wrong_batch).contains("task smile"));
        let bad_mask = Target::masked(
            Tensor::new(&[0f32, 1.], &dev)?,
            Tensor::ones(3, DType::F32, &dev)?,
        );
        assert!(err(&z, &bad_mask).contains("task smile"));
        let class_index = Target::new(Tensor::new(&[0f32, 2.], &dev)?);
        assert!(err(&z, &class_index).contains("binary label 2 is not 0 or 1"));
        // A placeholder label on a masked sample is fine.
        let placeholder = Target::masked(
            Tensor::new(&[0f32, -1.], &dev)?,
            Tensor::new(&[1f32, 0.], &dev)?,
        );
        assert!(task.loss(&z, &placeholder).is_ok());
        Ok(())
    }

    proptest! {
        /// The masked loss equals the loss over only the labelled rows (0 when there is none).
        #[test]
        fn masked_loss_equals_loss_of_labelled_rows(
            rows in proptest::collection::vec((-20f32..20.0, any::<bool>(), any::<bool>()), 1..8),
        ) {
            let dev = Device::Cpu;
            let task = BinaryTask::new("b");
            let z: Vec<f32> = rows.iter().map(|r| r.0).collect();
            let y: Vec<f32> = rows.iter().map(|r| f32::from(u8::from(r.1))).collect();
            let mask: Vec<f32> = rows.iter().map(|r| f32::from(u8::from(r.2))).collect();
            let masked = task.loss(
                &Tensor::new(z.as_slice(), &dev)?.unsqueeze(1)?,
                &Target::masked(
                    Tensor::new(y.as_slice(), &dev)?,
                    Tensor::new(mask.as_slice(), &dev)?,
                ),
            )?.to_scalar::<f32>()?;
            let kept: Vec<_> = rows.iter().filter(|r| r.2).collect();
            let plain = if kept.is_empty() {
                0.0
            } else {
                let z: Vec<f32> = kept.iter().map(|r| r.0).collect();
                let y: Vec<f32> = kept.iter().map(|r| f32::from(u8::from(r.1))).collect();
                task.loss(
                    &Tensor::new(z.as_slice(), &dev)?.unsqueeze(1)?,
                    &Target::new(Tensor::new(y.as_slice(), &dev)?),
                )?.to_scalar::<f32>()?
            };
            let tol = 1e-5 * plain.abs().max(1.0);
            prop_assert!((masked - plain).abs() <= tol, "{masked} vs {plain}");
        }
    }
}
