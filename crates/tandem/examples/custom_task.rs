//! A task of your own: implement [`Task`] (name, kind, head, loss, metric) and give your data
//! a label under the task's name. Here the auxiliary task is the eye distance (the face's
//! scale), with an L1 loss, a two-layer head and a mean-absolute-error metric.
//!
//! ```text
//! cargo run --release -p tandem --example custom_task
//! ```
use candle_core::{Module, Result as CandleResult, D};
use candle_nn::Linear;
use tandem::data::{DataError, Label, Sample};
use tandem::heads::{Head, Metric, MetricValues, TaskKind};
use tandem::prelude::*;

/// Predicts the distance between the eyes, as a fraction of the image width.
struct EyeDistance;

/// A small MLP head: `Linear → ReLU → Linear`.
struct MlpHead(Linear, Linear);

impl Module for MlpHead {
    fn forward(&self, x: &Tensor) -> CandleResult<Tensor> {
        self.1.forward(&self.0.forward(x)?.relu()?)
    }
}

impl Task for EyeDistance {
    fn name(&self) -> &str {
        "eye_distance"
    }
    fn kind(&self) -> TaskKind {
        TaskKind::Regression
    }
    fn out_dim(&self) -> usize {
        1
    }
    fn is_auxiliary(&self) -> bool {
        true
    }
    // The head's variables go under `vb` (`heads.eye_distance.{hidden,out}.*`).
    fn build_head(&self, in_dim: usize, vb: VarBuilder) -> CandleResult<Head> {
        let hidden = candle_nn::linear(in_dim, 32, vb.pp("hidden"))?;
        let out = candle_nn::linear(32, 1, vb.pp("out"))?;
        Ok(Box::new(MlpHead(hidden, out)))
    }
    // Mean |ŷ − y| over the labelled samples.
    fn loss(&self, prediction: &Tensor, target: &Target) -> CandleResult<Tensor> {
        let per_sample = (prediction - &target.values)?.abs()?.sum(D::Minus1)?;
        match &target.mask {
            None => per_sample.mean_all(),
            Some(m) => {
                let n = m.sum_all()?.to_scalar::<f32>()?.max(1.0);
                (per_sample * m)?.sum_all()?.affine(1.0 / f64::from(n), 0.0)
            }
        }
    }
    fn metrics(&self) -> Box<dyn Metric> {
        Box::new(MeanAbsError::default())
    }
    fn primary_metric(&self) -> &'static str {
        "mae"
    }
}

/// Mean absolute error in percent of the image width.
#[derive(Default)]
struct MeanAbsError {
    sum: f64,
    n: f64,
}

impl Metric for MeanAbsError {
    fn update(&mut self, prediction: &Tensor, target: &Target) -> CandleResult<()> {
        let p = prediction.flatten_all()?.to_vec1::<f32>()?;
        let t = target.values.flatten_all()?.to_vec1::<f32>()?;
        let m = match &target.mask {
            Some(m) => m.to_vec1::<f32>()?,
            None => vec![1.0; p.len()],
        };
        for ((p, t), m) in p.iter().zip(&t).zip(&m) {
            self.sum += f64::from(m * (p - t).abs());
            self.n += f64::from(*m);
        }
        Ok(())
    }
    fn compute(&self) -> MetricValues {
        let mut v = MetricValues::new();
        if self.n > 0.0 {
            v.insert("mae".into(), 100.0 * self.sum / self.n);
        }
        v
    }
}

/// SynthFaces with one more label: the eye distance, from the landmarks.
struct WithEyeDistance(SynthFaces);

impl Dataset for WithEyeDistance {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let mut s = self.0.get(index)?;
        let d = match s.labels.get("landmarks") {
            Some(Label::Points(p)) => ((p[0] - p[1]).powi(2) + (p[5] - p[6]).powi(2)).sqrt(),
            _ => return Err(DataError::Invalid("a face without landmarks".into())),
        };
        s.labels.insert("eye_distance", Label::Points(vec![d]));
        Ok(s)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let faces = SynthFaces::try_new(
        SynthConfig {
            len: 1000,
            ..Default::default()
        },
        7,
    )?;
    let data: Arc<dyn Dataset> = Arc::new(WithEyeDistance(faces));
    let (train, val) = Subset::split(data, 0.8, 7)?;
    let tasks = TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(EyeDistance);
    let vars = VarMap::new();
    let vb = seeded_var_builder(&vars, 7, DType::F32, &Device::Cpu);
    let net = HardSharing::new(
        Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?,
        &tasks,
        vb.pp("heads"),
    )?;
    let config = TrainConfig {
        epochs: 4,
        batch_size: 32,
        seed: 7,
        ..Default::default()
    };
    let report = Trainer::new(config)
        .weighting(Static::new([("eye_distance", 0.1)]))
        .fit(&net, &tasks, &vars, &train, &val)?;
    println!("{}", report.table());
    Ok(())
}
