//! Landmark regression.
//!
//! Predictions and targets are `[B, 2n]`: `[x1..xn, y1..yn]` (MTFL's order) normalised to the
//! input image (`x / width`, `y / height`), so `0 ≤ x, y ≤ 1` inside the image.
//!
//! **Loss** (per labelled sample, averaged over labelled samples), by [`RegressionLoss`]:
//!
//! - `Mse` (the default): `L = Σ_{j=1}^{2n} (ŷ_j − y_j)²`;
//! - `L1`: `L = Σ_{j=1}^{2n} |ŷ_j − y_j|`;
//! - `SmoothL1`: `L = Σ_{j=1}^{2n} s(ŷ_j − y_j)`, `s(d) = 0.5·d²` if `|d| < 1`, else
//!   `|d| − 0.5` (PyTorch's `SmoothL1Loss` with `β = 1`).
//!
//! Unlike [`RegressionTask`](crate::RegressionTask), which averages over its columns, the
//! landmark loss **sums** over the `2n` coordinates: this is the loss tandem's landmark results
//! were trained with, and the default `Mse` path computes it with the very same operations as
//! before `with_loss` existed, so those results stay bit-identical.
//!
//! **NME** of one face, in percent: the mean point-to-point error normalised by the
//! inter-ocular distance (points 1 and 2, the eye centres),
//! `NME = 100 · (1/n) Σ_k ‖p̂_k − p_k‖ / ‖p_1 − p_2‖`, computed in normalised coordinates (the
//! same as pixels for square inputs). **Failure rate**: percentage of faces with NME > 10 %.
//! The reported `nme` is the mean over faces.
use crate::metric::{mask_vec, masked_mean};
use crate::{Metric, MetricValues, RegressionLoss, Task, TaskKind};
use candle_core::{Result, Tensor, D};
use tandem_tensor::Target;

/// NME threshold, in percent, above which a face counts as a failure.
pub const FAILURE_THRESHOLD: f64 = 10.0;

/// Facial landmark regression: `n` points, `2n` outputs.
#[derive(Debug, Clone)]
pub struct LandmarkTask {
    name: String,
    points: usize,
    auxiliary: bool,
    loss: RegressionLoss,
}

impl LandmarkTask {
    /// A main task named `name` predicting `points` landmarks (the first two are the eyes),
    /// with the squared-error loss.
    pub fn new(name: impl Into<String>, points: usize) -> Self {
        Self {
            name: name.into(),
            points,
            auxiliary: false,
            loss: RegressionLoss::default(),
        }
    }

    /// Marks the task auxiliary.
    pub fn auxiliary(mut self) -> Self {
        self.auxiliary = true;
        self
    }

    /// Uses `loss` on each coordinate, summed over the `2n` coordinates of a face.
    /// [`RegressionLoss::Mse`] (the default) is `Σ_j (ŷ_j − y_j)²`, bit-identical to the loss
    /// of a task built without `with_loss`.
    pub fn with_loss(mut self, loss: RegressionLoss) -> Self {
        self.loss = loss;
        self
    }

    /// Number of landmarks.
    pub fn points(&self) -> usize {
        self.points
    }

    /// The per-coordinate loss.
    pub fn regression_loss(&self) -> RegressionLoss {
        self.loss
    }
}

impl Task for LandmarkTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> TaskKind {
        TaskKind::Regression
    }
    fn out_dim(&self) -> usize {
        2 * self.points
    }
    fn is_auxiliary(&self) -> bool {
        self.auxiliary
    }
    fn loss(&self, prediction: &Tensor, target: &Target) -> Result<Tensor> {
        let (b, d) = prediction.dims2()?;
        let (tb, td) = target.values.dims2()?;
        if (b, d) != (tb, td) || d != self.out_dim() {
            candle_core::bail!(
                "task {}: prediction {:?} and target {:?} must both be [B, {}]",
                self.name,
                prediction.dims(),
                target.values.dims(),
                self.out_dim()
            )
        }
        let per_sample = match self.loss {
            // Exactly the operations of the original L2 loss: keep results bit-identical.
            RegressionLoss::Mse => (prediction - &target.values)?.sqr()?.sum(D::Minus1)?,
            loss => loss
                .elementwise(&(prediction - &target.values)?)?
                .sum(D::Minus1)?,
        };
        masked_mean(&per_sample, target)
    }
    fn metrics(&self) -> Box<dyn Metric> {
        Box::new(LandmarkMetrics::new(self.points))
    }
    fn primary_metric(&self) -> &'static str {
        "nme"
    }
}

/// Accumulates NME and failure rate.
#[derive(Debug, Clone)]
pub struct LandmarkMetrics {
    points: usize,
    per_face: Vec<f64>,
}

impl LandmarkMetrics {
    /// An empty accumulator for `points` landmarks.
    pub fn new(points: usize) -> Self {
        Self {
            points,
            per_face: Vec::new(),
        }
    }

    /// NME in percent of one face; `pred` and `truth` are `[x1..xn, y1..yn]`.
    pub fn face_nme(points: usize, pred: &[f32], truth: &[f32]) -> f64 {
        let n = points;
        let p = |v: &[f32], k: usize| (f64::from(v[k]), f64::from(v[n + k]));
        let (lx, ly) = p(truth, 0);
        let (rx, ry) = p(truth, 1);
        let iod = ((lx - rx).powi(2) + (ly - ry).powi(2)).sqrt().max(1e-12);
        let err: f64 = (0..n)
            .map(|k| {
                let (a, b) = p(pred, k);
                let (c, d) = p(truth, k);
                ((a - c).powi(2) + (b - d).powi(2)).sqrt()
            })
            .sum();
        100.0 * err / (n as f64 * iod)
    }

    /// Per-face NME values seen so far.
    pub fn per_face(&self) -> &[f64] {
        &self.per_face
    }
}

impl Metric for LandmarkMetrics {
    fn update(&mut self, prediction: &Tensor, target: &Target) -> Result<()> {
        let pred = prediction.to_vec2::<f32>()?;
        let truth = target.values.to_vec2::<f32>()?;
        let mask = mask_vec(target, pred.len())?;
        for ((p, t), m) in pred.iter().zip(&truth).zip(mask) {
            if m {
                if p.len() != 2 * self.points || t.len() != 2 * self.points {
                    candle_core::bail!("landmark rows must have {} values", 2 * self.points)
                }
                self.per_face.push(Self::face_nme(self.points, p, t));
            }
        }
        Ok(())
    }

    fn compute(&self) -> MetricValues {
        let mut m = MetricValues::new();
        if self.per_face.is_empty() {
            return m;
        }
        let n = self.per_face.len() as f64;
        m.insert("nme".into(), self.per_face.iter().sum::<f64>() / n);
        let fails = self
            .per_face
            .iter()
            .filter(|&&e| e > FAILURE_THRESHOLD)
            .count();
        m.insert("failure_rate".into(), 100.0 * fails as f64 / n);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Two faces, hand-computed. Eyes at (0.3,0.4) and (0.7,0.4): IOD 0.4.
    /// Face A: every point off by (0.03, 0.04) → error 0.05 each → NME = 0.05/0.4 = 12.5 %.
    /// Face B: only the nose off by (0.2, 0) → mean error 0.04 → NME = 10 % (not a failure).
    #[test]
    fn nme_and_failure_rate_by_hand() -> Result<()> {
        let truth = [0.3f32, 0.7, 0.5, 0.35, 0.65, 0.4, 0.4, 0.55, 0.75, 0.75];
        let mut a = truth;
        for v in a.iter_mut().take(5) {
            *v += 0.03;
        }
        for v in a.iter_mut().skip(5) {
            *v += 0.04;
        }
        let mut b = truth;
        b[2] += 0.2;
        let dev = Device::Cpu;
        let pred = Tensor::new(&[a, b], &dev)?;
        let target = Target::new(Tensor::new(&[truth, truth], &dev)?);
        let mut m = LandmarkTask::new("lm", 5).metrics();
        m.update(&pred, &target)?;
        let v = m.compute();
        assert!((v["nme"] - 11.25).abs() < 1e-4, "{v:?}");
        assert!((v["failure_rate"] - 50.0).abs() < 1e-9, "{v:?}");
        // loss: face A 5·0.0009 + 5·0.0016 = 0.0125, face B 0.04 → mean 0.02625
        let l = LandmarkTask::new("lm", 5)
            .loss(&pred, &target)?
            .to_scalar::<f32>()?;
        assert!((l - 0.02625).abs() < 1e-6, "{l}");
        Ok(())
    }

    #[test]
    fn masked_samples_are_ignored() -> Result<()> {
        let dev = Device::Cpu;
        let truth = [0.3f32, 0.7, 0.5, 0.35, 0.65, 0.4, 0.4, 0.55, 0.75, 0.75];
        let pred = Tensor::new(&[truth, [0f32; 10]], &dev)?;
        let target = Target::masked(
            Tensor::new(&[truth, truth], &dev)?,
            Tensor::new(&[1f32, 0.0], &dev)?,
        );
        let task = LandmarkTask::new("lm", 5);
        assert_eq!(task.loss(&pred, &target)?.to_scalar::<f32>()?, 0.0);
        let mut m = task.metrics();
        m.update(&pred, &target)?;
        assert_eq!(m.compute()["nme"], 0.0);
        let none = Target::masked(Tensor::new(&[truth], &dev)?, Tensor::new(&[0f32], &dev)?);
        assert_eq!(
            task.loss(&pred.narrow(0, 1, 1)?, &none)?
                .to_scalar::<f32>()?,
            0.0
        );
        Ok(())
    }

    #[test]
    fn wrong_shapes_are_errors() -> Result<()> {
        let dev = Device::Cpu;
        let t = Target::new(Tensor::zeros((2, 8), candle_core::DType::F32, &dev)?);
        let p = Tensor::zeros((2, 10), candle_core::DType::F32, &dev)?;
        let e = LandmarkTask::new("lm", 5)
            .loss(&p, &t)
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("task lm"));
        Ok(())
    }

    /// The faces of `nme_and_failure_rate_by_hand`, every coordinate off by less than 1.
    /// L1: face A 5·0.03 + 5·0.04 = 0.35, face B 0.2 → mean 0.275. Smooth L1 (all |d| < 1, so
    /// half the squares): face A 0.5·0.0125, face B 0.5·0.04 → mean 0.013125. Both sum over
    /// the 10 coordinates, as the MSE loss does.
    #[test]
    fn l1_and_smooth_l1_sum_over_coordinates() -> Result<()> {
        let truth = [0.3f32, 0.7, 0.5, 0.35, 0.65, 0.4, 0.4, 0.55, 0.75, 0.75];
        let mut a = truth;
        for v in a.iter_mut().take(5) {
            *v += 0.03;
        }
        for v in a.iter_mut().skip(5) {
            *v += 0.04;
        }
        let mut b = truth;
        b[2] += 0.2;
        let dev = Device::Cpu;
        let pred = Tensor::new(&[a, b], &dev)?;
        let target = Target::new(Tensor::new(&[truth, truth], &dev)?);
        let task = LandmarkTask::new("lm", 5);
        assert_eq!(task.regression_loss(), RegressionLoss::Mse);
        let l1 = task.clone().with_loss(RegressionLoss::L1);
        assert_eq!(l1.regression_loss(), RegressionLoss::L1);
        let l = l1.loss(&pred, &target)?.to_scalar::<f32>()?;
        assert!((l - 0.275).abs() < 1e-6, "{l}");
        let l = task
            .with_loss(RegressionLoss::SmoothL1)
            .loss(&pred, &target)?
            .to_scalar::<f32>()?;
        assert!((l - 0.013125).abs() < 1e-7, "{l}");
        // Differences of 2 and −3 take the linear branch: (2 − 0.5) + (3 − 0.5) = 4, and the
        // zero differences add nothing.
        let mut far = truth;
        far[0] += 2.0;
        far[6] -= 3.0;
        let l = LandmarkTask::new("lm", 5)
            .with_loss(RegressionLoss::SmoothL1)
            .loss(
                &Tensor::new(&[far], &dev)?,
                &Target::new(Tensor::new(&[truth], &dev)?),
            )?
            .to_scalar::<f32>()?;
        assert!((l - 4.0).abs() < 1e-5, "{l}");
        Ok(())
    }

    /// The default loss, and `with_loss(Mse)`, are bit for bit the original expression
    /// `masked_mean(Σ_j (ŷ_j − y_j)²)`, masked or not.
    #[test]
    fn mse_is_bit_identical_to_the_original_l2_loss() -> Result<()> {
        let dev = Device::Cpu;
        let pred = Tensor::new(
            &[
                [0.11f32, 0.93, 0.47, 0.2],
                [0.31, 0.52, 0.77, 0.05],
                [0.6, 0.4, 0.3, 0.9],
            ],
            &dev,
        )?;
        let truth = Tensor::new(
            &[
                [0.1f32, 0.9, 0.5, 0.25],
                [0.3, 0.6, 0.7, 0.1],
                [0.0, 0.0, 0.0, 0.0],
            ],
            &dev,
        )?;
        for target in [
            Target::new(truth.clone()),
            Target::masked(truth.clone(), Tensor::new(&[1f32, 1., 0.], &dev)?),
        ] {
            let original = masked_mean(&(&pred - &target.values)?.sqr()?.sum(D::Minus1)?, &target)?
                .to_scalar::<f32>()?;
            for task in [
                LandmarkTask::new("lm", 2),
                LandmarkTask::new("lm", 2).with_loss(RegressionLoss::Mse),
            ] {
                let l = task.loss(&pred, &target)?.to_scalar::<f32>()?;
                assert_eq!(l.to_bits(), original.to_bits());
            }
        }
        Ok(())
    }

    proptest::proptest! {
        /// The masked loss equals the loss over only the labelled faces, for every loss.
        #[test]
        fn masked_loss_equals_loss_of_labelled_faces(
            faces in proptest::collection::vec(
                (
                    proptest::collection::vec(-2f32..2.0, 16),
                    proptest::bool::ANY,
                ),
                1..6,
            ),
            which in 0usize..3,
        ) {
            let loss = [RegressionLoss::Mse, RegressionLoss::L1, RegressionLoss::SmoothL1][which];
            let task = LandmarkTask::new("lm", 4).with_loss(loss);
            let dev = Device::Cpu;
            // Each face: 8 predicted then 8 true coordinates.
            let loss_of = |faces: &[&(Vec<f32>, bool)], mask: Option<Vec<f32>>| {
                let b = faces.len();
                let p: Vec<f32> = faces.iter().flat_map(|f| f.0[..8].to_vec()).collect();
                let y: Vec<f32> = faces.iter().flat_map(|f| f.0[8..].to_vec()).collect();
                let y = Tensor::from_vec(y, (b, 8), &dev)?;
                let target = match mask {
                    Some(m) => Target::masked(y, Tensor::new(m.as_slice(), &dev)?),
                    None => Target::new(y),
                };
                task.loss(&Tensor::from_vec(p, (b, 8), &dev)?, &target)?.to_scalar::<f32>()
            };
            let all: Vec<_> = faces.iter().collect();
            let mask = faces.iter().map(|f| f32::from(u8::from(f.1))).collect();
            let masked = loss_of(&all, Some(mask))?;
            let kept: Vec<_> = faces.iter().filter(|f| f.1).collect();
            let plain = if kept.is_empty() { 0.0 } else { loss_of(&kept, None)? };
            let tol = 1e-5 * plain.abs().max(1.0);
            proptest::prop_assert!((masked - plain).abs() <= tol, "{masked} vs {plain}");
        }
    }
}
