//! A tiny procedural data set and network shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::sync::Arc;
use tandem_data::{Dataset, GrayImage, Label, Sample, Subset};
use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
use tandem_layers::{Tcdcn, TcdcnConfig};
use tandem_share::HardSharing;
use tandem_tensor::TaskMap;

/// 32×32 images with five bright dots at the landmarks; `half` says whether the dots sit in the
/// upper or lower half. `missing(i)` removes sample `i`'s `half` label.
pub struct Dots {
    pub len: usize,
    pub missing: fn(usize) -> bool,
}

impl Dataset for Dots {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, i: usize) -> tandem_data::Result<Sample> {
        let h = tandem_tensor::hash_seed(11, &i.to_string());
        let lower = h % 2 == 1;
        let mut img = GrayImage::new(32, 32);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for k in 0..5u64 {
            let x = 4 + ((h >> (8 * k)) % 24) as usize;
            let y = if lower { 17 } else { 3 } + ((h >> (8 * k + 4)) % 12) as usize;
            img.pixels[y * 32 + x] = 1.0;
            xs.push((x as f32 + 0.5) / 32.0);
            ys.push((y as f32 + 0.5) / 32.0);
        }
        xs.extend(ys);
        let half = if (self.missing)(i) {
            Label::Missing
        } else {
            Label::Class(u32::from(lower))
        };
        Ok(Sample {
            image: img,
            labels: TaskMap::new()
                .with("landmarks", Label::Points(xs))
                .with("half", half),
        })
    }
}

/// Everything a test run needs.
pub struct Setup {
    pub tasks: TaskSet,
    pub vars: VarMap,
    pub net: HardSharing<Tcdcn>,
    pub train: Subset,
    pub val: Subset,
}

pub fn setup(seed: u64, len: usize, missing: fn(usize) -> bool) -> Setup {
    let data: Arc<dyn Dataset> = Arc::new(Dots { len, missing });
    let (train, val) = Subset::split(data, 0.75, seed).unwrap();
    let tasks = TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("half", 2).auxiliary());
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, seed, DType::F32, &Device::Cpu);
    let cfg = TcdcnConfig {
        input_size: 32,
        channels: [4, 8, 8, 8],
        feature_dim: 16,
        ..Default::default()
    };
    let net = HardSharing::new(
        Tcdcn::new(cfg, vb.pp("trunk")).unwrap(),
        &tasks,
        vb.pp("heads"),
    )
    .unwrap();
    Setup {
        tasks,
        vars,
        net,
        train,
        val,
    }
}

/// The values of every variable whose name starts with `prefix`, by name.
pub fn snapshot(vars: &VarMap, prefix: &str) -> Vec<(String, Vec<f32>)> {
    tandem_tensor::sorted_vars(vars)
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, v)| {
            (
                n,
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect()
}
