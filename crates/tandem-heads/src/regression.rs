//! Generic regression: `D` real-valued label columns per sample.
//!
//! Predictions and targets are `[B, D]` f32.
//!
//! **Loss** ([`RegressionLoss`], element loss `ℓ` of the difference `d = ŷ − y`):
//!
//! - `Mse` (the default): `ℓ(d) = d²`;
//! - `L1`: `ℓ(d) = |d|`;
//! - `SmoothL1` (Huber with `β = 1`, PyTorch's `SmoothL1Loss`): `ℓ(d) = 0.5·d²` if `|d| < 1`,
//!   else `|d| − 0.5`.
//!
//! Per sample the mean over the `D` columns, `L_i = (1/D) Σ_j ℓ(ŷ_ij − y_ij)`, then the mean
//! over labelled samples, `L = Σ_i m_i L_i / max(Σ_i m_i, 1)` (see [`masked_mean`]). Without a
//! mask this is PyTorch's `reduction='mean'` (`F.mse_loss`, `F.l1_loss`, `F.smooth_l1_loss`).
//!
//! **Metrics**, over labelled samples only, each computed per column `j` over the `n` labelled
//! samples and then averaged over the `D` columns (scikit-learn's
//! `multioutput='uniform_average'`):
//!
//! - `rmse = (1/D) Σ_j √(SSE_j / n)` with `SSE_j = Σ_i (ŷ_ij − y_ij)²`;
//! - `mae = (1/D) Σ_j SAE_j / n` with `SAE_j = Σ_i |ŷ_ij − y_ij|`;
//! - `r2 = (1/D) Σ_j (1 − SSE_j / SST_j)` with `SST_j = Σ_i (y_ij − ȳ_j)²`; when `SST_j = 0`
//!   the column scores 1 if `SSE_j = 0` and 0 otherwise (scikit-learn's `r2_score` with
//!   `force_finite=True`).
//!
//! The sums are accumulated in f64, in sample order, so the result does not depend on how the
//! samples are split into batches. `SST_j` is computed from running sums shifted by the
//! column's first labelled value `K_j`: `SST_j = Σ(y − K)² − (Σ(y − K))² / n`, which is exactly
//! 0 for a constant column (plain `Σy² − (Σy)²/n` can leave a rounding residue there and turn
//! `r2` into a huge negative number).
//!
//! [`masked_mean`]: crate::masked_mean
use crate::metric::{check_mask, mask_vec, masked_mean};
use crate::{Metric, MetricValues, Task, TaskKind};
use candle_core::{Result, Tensor, D};
use serde::{Deserialize, Serialize};
use tandem_tensor::Target;

/// The element loss of a regression task, applied to each difference `d = ŷ − y`.
///
/// In TOML and JSON it is written `"mse"`, `"l1"` or `"smooth_l1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLoss {
    /// Squared error `d²` (a Gaussian likelihood).
    #[default]
    Mse,
    /// Absolute error `|d|` (a Laplace likelihood).
    L1,
    /// Smooth L1 with `β = 1`: `0.5·d²` if `|d| < 1`, else `|d| − 0.5` (PyTorch's
    /// `SmoothL1Loss`, the Huber loss with `δ = 1`).
    SmoothL1,
}

impl RegressionLoss {
    /// The element loss of every entry of `diff` (`ŷ − y`), same shape as `diff`.
    pub(crate) fn elementwise(self, diff: &Tensor) -> Result<Tensor> {
        match self {
            Self::Mse => diff.sqr(),
            Self::L1 => diff.abs(),
            Self::SmoothL1 => {
                let abs = diff.abs()?;
                let quadratic = diff.sqr()?.affine(0.5, 0.0)?;
                let linear = abs.affine(1.0, -0.5)?;
                abs.lt(1.0)?.where_cond(&quadratic, &linear)
            }
        }
    }
}

/// A regression task with `dim` label columns: predictions and targets `[B, dim]`.
#[derive(Debug, Clone)]
pub struct RegressionTask {
    name: String,
    dim: usize,
    auxiliary: bool,
    loss: RegressionLoss,
}

impl RegressionTask {
    /// A main task named `name` predicting `dim` values per sample, with the MSE loss.
    pub fn new(name: impl Into<String>, dim: usize) -> Self {
        Self {
            name: name.into(),
            dim,
            auxiliary: false,
            loss: RegressionLoss::default(),
        }
    }

    /// Marks the task auxiliary.
    pub fn auxiliary(mut self) -> Self {
        self.auxiliary = true;
        self
    }

    /// Uses `loss` as the element loss.
    pub fn with_loss(mut self, loss: RegressionLoss) -> Self {
        self.loss = loss;
        self
    }

    /// Number of label columns (the head's width).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The element loss.
    pub fn regression_loss(&self) -> RegressionLoss {
        self.loss
    }
}

impl Task for RegressionTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> TaskKind {
        TaskKind::Regression
    }
    fn out_dim(&self) -> usize {
        self.dim
    }
    fn is_auxiliary(&self) -> bool {
        self.auxiliary
    }
    fn loss(&self, prediction: &Tensor, target: &Target) -> Result<Tensor> {
        let b = prediction.dims().first().copied().unwrap_or(0);
        if prediction.dims() != [b, self.dim] || target.values.dims() != [b, self.dim] {
            candle_core::bail!(
                "task {}: prediction {:?} and target {:?} must both be [B, {}]",
                self.name,
                prediction.dims(),
                target.values.dims(),
                self.dim
            )
        }
        check_mask(&self.name, target, b)?;
        let diff = (prediction - &target.values)?;
        let per_sample = self.loss.elementwise(&diff)?.mean(D::Minus1)?;
        masked_mean(&per_sample, target)
    }
    fn metrics(&self) -> Box<dyn Metric> {
        Box::new(RegressionMetrics::new(self.dim))
    }
    fn primary_metric(&self) -> &'static str {
        "rmse"
    }
}

/// Running sums of one label column over the labelled samples.
#[derive(Debug, Clone, Copy, Default)]
struct ColumnSums {
    /// The column's first labelled value `K`, the shift of `s1` and `s2`.
    shift: f64,
    /// `Σ (y − K)`.
    s1: f64,
    /// `Σ (y − K)²`.
    s2: f64,
    /// `Σ (ŷ − y)²`.
    sse: f64,
    /// `Σ |ŷ − y|`.
    sae: f64,
}

/// Accumulates RMSE, MAE and R² over the labelled samples, per column, averaged over columns.
#[derive(Debug, Clone)]
pub struct RegressionMetrics {
    dim: usize,
    n: usize,
    columns: Vec<ColumnSums>,
}

impl RegressionMetrics {
    /// An empty accumulator for `dim` label columns.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            n: 0,
            columns: vec![ColumnSums::default(); dim],
        }
    }

    /// Number of labelled samples seen so far.
    pub fn count(&self) -> usize {
        self.n
    }
}

impl Metric for RegressionMetrics {
    fn update(&mut self, prediction: &Tensor, target: &Target) -> Result<()> {
        let b = prediction.dims().first().copied().unwrap_or(0);
        if prediction.dims() != [b, self.dim] || target.values.dims() != [b, self.dim] {
            candle_core::bail!(
                "regression metrics: prediction {:?} and target {:?} must both be [B, {}]",
                prediction.dims(),
                target.values.dims(),
                self.dim
            )
        }
        let pred = prediction.to_vec2::<f32>()?;
        let truth = target.values.to_vec2::<f32>()?;
        let mask = mask_vec(target, b)?;
        for ((p, t), m) in pred.iter().zip(&truth).zip(mask) {
            if !m {
                continue;
            }
            let first = self.n == 0;
            self.n += 1;
            for ((c, &p), &t) in self.columns.iter_mut().zip(p).zip(t) {
                let (p, t) = (f64::from(p), f64::from(t));
                if first {
                    c.shift = t;
                }
                let dy = t - c.shift;
                c.s1 += dy;
                c.s2 += dy * dy;
                let e = p - t;
                c.sse += e * e;
                c.sae += e.abs();
            }
        }
        Ok(())
    }

    fn compute(&self) -> MetricValues {
        let mut m = MetricValues::new();
        if self.n == 0 || self.dim == 0 {
            return m;
        }
        let n = self.n as f64;
        let d = self.dim as f64;
        let mean = |f: &dyn Fn(&ColumnSums) -> f64| self.columns.iter().map(f).sum::<f64>() / d;
        m.insert("rmse".into(), mean(&|c| (c.sse / n).sqrt()));
        m.insert("mae".into(), mean(&|c| c.sae / n));
        m.insert(
            "r2".into(),
            mean(&|c| {
                let sst = (c.s2 - c.s1 * c.s1 / n).max(0.0);
                if sst > 0.0 {
                    1.0 - c.sse / sst
                } else if c.sse == 0.0 {
                    1.0
                } else {
                    0.0
                }
            }),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// ŷ = [[1, 2.5], [3, 5]], y = [[0, 2], [3, 2]]: d = [[1, 0.5], [0, 3]], every value exact
    /// in binary. By hand, as PyTorch's `reduction='mean'` (mean over all 4 elements):
    /// `F.mse_loss` = (1 + 0.25 + 0 + 9)/4 = 2.5625; `F.l1_loss` = (1 + 0.5 + 0 + 3)/4 = 1.125;
    /// `F.smooth_l1_loss` = (0.5 + 0.125 + 0 + 2.5)/4 = 0.78125 (|d| = 1 takes the linear branch:
    /// 1 − 0.5).
    #[test]
    fn losses_match_pytorch_mean_reduction() -> Result<()> {
        let dev = Device::Cpu;
        let p = Tensor::new(&[[1f32, 2.5], [3., 5.]], &dev)?;
        let t = Target::new(Tensor::new(&[[0f32, 2.], [3., 2.]], &dev)?);
        for (loss, want) in [
            (RegressionLoss::Mse, 2.5625f32),
            (RegressionLoss::L1, 1.125),
            (RegressionLoss::SmoothL1, 0.78125),
        ] {
            let task = RegressionTask::new("r", 2).with_loss(loss);
            let l = task.loss(&p, &t)?.to_scalar::<f32>()?;
            assert_eq!(l, want, "{loss:?}");
        }
        // MSE is the default.
        let l = RegressionTask::new("r", 2)
            .loss(&p, &t)?
            .to_scalar::<f32>()?;
        assert_eq!(l, 2.5625);
        Ok(())
    }

    /// d smooth_l1/dŷ = d if |d| < 1 else sign(d), over the 4 elements: [[1, 0.5], [0, 1]]/4.
    #[test]
    fn smooth_l1_gradient_by_hand() -> Result<()> {
        let dev = Device::Cpu;
        let p = Var::new(&[[1f32, 2.5], [3., 5.]], &dev)?;
        let t = Target::new(Tensor::new(&[[0f32, 2.], [3., 2.]], &dev)?);
        let task = RegressionTask::new("r", 2).with_loss(RegressionLoss::SmoothL1);
        let g = task.loss(p.as_tensor(), &t)?.backward()?;
        let gp = g
            .get(&p)
            .map(|t| t.to_vec2::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert_eq!(gp, vec![vec![0.25, 0.125], vec![0.0, 0.25]]);
        Ok(())
    }

    #[test]
    fn masked_sample_changes_nothing() -> Result<()> {
        let dev = Device::Cpu;
        let y = [[0f32, 2.], [3., 2.], [7., -7.]];
        let mask = Tensor::new(&[1f32, 1., 0.], &dev)?;
        let p1 = Tensor::new(&[[1f32, 2.5], [3., 5.], [0., 0.]], &dev)?;
        let p2 = Tensor::new(&[[1f32, 2.5], [3., 5.], [100., -100.]], &dev)?;
        let t = Target::masked(Tensor::new(&y, &dev)?, mask);
        let task = RegressionTask::new("r", 2);
        assert_eq!(task.loss(&p1, &t)?.to_scalar::<f32>()?, 2.5625);
        assert_eq!(task.loss(&p2, &t)?.to_scalar::<f32>()?, 2.5625);
        let mut m1 = task.metrics();
        m1.update(&p1, &t)?;
        let mut m2 = task.metrics();
        m2.update(&p2, &t)?;
        assert_eq!(m1.compute(), m2.compute());
        // No labelled sample: zero loss, no metrics.
        let none = Target::masked(Tensor::new(&y, &dev)?, Tensor::zeros(3, DType::F32, &dev)?);
        assert_eq!(task.loss(&p2, &none)?.to_scalar::<f32>()?, 0.0);
        let mut m = task.metrics();
        m.update(&p2, &none)?;
        assert!(m.compute().is_empty());
        Ok(())
    }

    /// Column 0: y = [1, 2, 3], ŷ = [1, 2, 4]: SSE 1, SAE 1, ȳ = 2, SST 2 → rmse √(1/3),
    /// mae 1/3, r2 1 − 1/2 = 0.5. Column 1: y constant 0.1 (SST 0), ŷ = y → r2 1, errors 0.
    /// Column 2: y constant 0.1, ŷ off by 0.5 once → SST 0, SSE > 0 → r2 0. The samples come in
    /// two batches, the middle one also holding a masked sample.
    #[test]
    fn rmse_mae_r2_by_hand() -> Result<()> {
        let dev = Device::Cpu;
        let task = RegressionTask::new("r", 3);
        let mut m = task.metrics();
        assert!(m.compute().is_empty());
        m.update(
            &Tensor::new(&[[1f32, 0.1, 0.6]], &dev)?,
            &Target::new(Tensor::new(&[[1f32, 0.1, 0.1]], &dev)?),
        )?;
        m.update(
            &Tensor::new(&[[2f32, 0.1, 0.1], [9., 9., 9.], [4., 0.1, 0.1]], &dev)?,
            &Target::masked(
                Tensor::new(&[[2f32, 0.1, 0.1], [5., 5., 5.], [3., 0.1, 0.1]], &dev)?,
                Tensor::new(&[1f32, 0., 1.], &dev)?,
            ),
        )?;
        let v = m.compute();
        // Column 2's one error, as the f32 inputs widen to f64 (≈ 0.5).
        let e = f64::from(0.6f32) - f64::from(0.1f32);
        let rmse = ((1.0f64 / 3.0).sqrt() + 0.0 + (e * e / 3.0).sqrt()) / 3.0;
        let mae = (1.0 / 3.0 + 0.0 + e / 3.0) / 3.0;
        assert!(close(v["rmse"], rmse, 1e-12), "{v:?}");
        assert!(close(v["mae"], mae, 1e-12), "{v:?}");
        assert!(close(v["r2"], (0.5 + 1.0 + 0.0) / 3.0, 1e-12), "{v:?}");
        assert_eq!(v.len(), 3);

        // Column 0 alone: the numbers of the brief.
        let mut m = RegressionTask::new("r", 1).metrics();
        m.update(
            &Tensor::new(&[[1f32], [2.], [4.]], &dev)?,
            &Target::new(Tensor::new(&[[1f32], [2.], [3.]], &dev)?),
        )?;
        let v = m.compute();
        assert!(close(v["rmse"], (1.0f64 / 3.0).sqrt(), 1e-15), "{v:?}");
        assert!(close(v["mae"], 1.0 / 3.0, 1e-15), "{v:?}");
        assert_eq!(v["r2"], 0.5);
        Ok(())
    }

    /// A constant column of seven 3.7s: plain `Σy² − (Σy)²/n` in f64 leaves 1.4e-14 here
    /// (checked in Python), which would turn one error of 0.5 into r2 ≈ −2.5e12. The shifted
    /// sums give SST = 0 exactly, so r2 is 0 (and 1 with no error), as scikit-learn's
    /// `force_finite`.
    #[test]
    fn constant_column_r2_is_exactly_forced() -> Result<()> {
        let dev = Device::Cpu;
        let y = Tensor::full(3.7f32, (7, 1), &dev)?;
        let mut off = vec![3.7f32; 7];
        off[3] = 4.2;
        for (pred, want) in [
            (y.clone(), 1.0),
            (Tensor::from_vec(off, (7, 1), &dev)?, 0.0),
        ] {
            let mut m = RegressionTask::new("r", 1).metrics();
            m.update(&pred, &Target::new(y.clone()))?;
            assert_eq!(m.compute()["r2"], want);
        }
        Ok(())
    }

    #[test]
    fn task_properties() {
        let t = RegressionTask::new("age", 3).auxiliary();
        assert_eq!(t.name(), "age");
        assert_eq!(t.kind(), TaskKind::Regression);
        assert_eq!(t.out_dim(), 3);
        assert_eq!(t.dim(), 3);
        assert!(t.is_auxiliary());
        assert_eq!(t.primary_metric(), "rmse");
        assert_eq!(t.regression_loss(), RegressionLoss::Mse);
        assert!(!RegressionTask::new("age", 3).is_auxiliary());
        let t = t.with_loss(RegressionLoss::L1);
        assert_eq!(t.regression_loss(), RegressionLoss::L1);
    }

    #[test]
    fn loss_names_deserialize_as_snake_case() -> std::result::Result<(), serde::de::value::Error> {
        use serde::de::IntoDeserializer;
        for (s, want) in [
            ("mse", RegressionLoss::Mse),
            ("l1", RegressionLoss::L1),
            ("smooth_l1", RegressionLoss::SmoothL1),
        ] {
            let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                s.into_deserializer();
            assert_eq!(RegressionLoss::deserialize(de)?, want);
        }
        let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            "SmoothL1".into_deserializer();
        assert!(RegressionLoss::deserialize(de).is_err());
        Ok(())
    }

    #[test]
    fn wrong_shapes_are_errors_naming_the_task() -> Result<()> {
        let dev = Device::Cpu;
        let task = RegressionTask::new("age", 2);
        let err = |p: &Tensor, t: &Target| {
            task.loss(p, t)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let p = Tensor::zeros((2, 2), DType::F32, &dev)?;
        let wrong_width = Target::new(Tensor::zeros((2, 3), DType::F32, &dev)?);
        let wrong_batch = Target::new(Tensor::zeros((3, 2), DType::F32, &dev)?);
        let flat = Target::new(Tensor::zeros(2, DType::F32, &dev)?);
        let bad_mask = Target::masked(
            Tensor::zeros((2, 2), DType::F32, &dev)?,
            Tensor::ones(3, DType::F32, &dev)?,
        );
        for t in [&wrong_width, &wrong_batch, &flat, &bad_mask] {
            assert!(err(&p, t).contains("task age"), "{}", err(&p, t));
        }
        let p1 = Tensor::zeros(2, DType::F32, &dev)?;
        let ok = Target::new(Tensor::zeros((2, 2), DType::F32, &dev)?);
        assert!(err(&p1, &ok).contains("task age"));
        let mut m = task.metrics();
        assert!(m.update(&p, &wrong_width).is_err());
        Ok(())
    }

    fn rows_strategy() -> impl Strategy<Value = (usize, Vec<f32>, Vec<f32>, Vec<bool>)> {
        (1usize..7, 1usize..4).prop_flat_map(|(b, d)| {
            (
                Just(d),
                proptest::collection::vec(-3f32..3.0, b * d),
                proptest::collection::vec(-3f32..3.0, b * d),
                proptest::collection::vec(any::<bool>(), b),
            )
        })
    }

    proptest! {
        /// The masked loss equals the loss over only the labelled rows (0 when there is none).
        #[test]
        fn masked_loss_equals_loss_of_labelled_rows(
            (d, p, y, keep) in rows_strategy(),
            which in 0usize..3,
        ) {
            let loss = [RegressionLoss::Mse, RegressionLoss::L1, RegressionLoss::SmoothL1][which];
            let task = RegressionTask::new("r", d).with_loss(loss);
            let dev = Device::Cpu;
            let b = keep.len();
            let mask: Vec<f32> = keep.iter().map(|&k| f32::from(u8::from(k))).collect();
            let masked = task.loss(
                &Tensor::from_vec(p.clone(), (b, d), &dev)?,
                &Target::masked(
                    Tensor::from_vec(y.clone(), (b, d), &dev)?,
                    Tensor::new(mask.as_slice(), &dev)?,
                ),
            )?.to_scalar::<f32>()?;
            let rows = |v: &[f32]| -> Vec<f32> {
                v.chunks(d).zip(&keep).filter(|(_, &k)| k).flat_map(|(r, _)| r.to_vec()).collect()
            };
            let kept = keep.iter().filter(|&&k| k).count();
            let plain = if kept == 0 {
                0.0
            } else {
                task.loss(
                    &Tensor::from_vec(rows(&p), (kept, d), &dev)?,
                    &Target::new(Tensor::from_vec(rows(&y), (kept, d), &dev)?),
                )?.to_scalar::<f32>()?
            };
            let tol = 1e-5 * plain.abs().max(1.0);
            prop_assert!((masked - plain).abs() <= tol, "{masked} vs {plain}");
        }
    }
}
