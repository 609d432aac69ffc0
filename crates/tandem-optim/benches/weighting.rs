//! Per-step cost of each weighting (forward, losses, the weighting's backward) on a small
//! multi-task MLP: a shared trunk `64 → 256 → 256` (ReLU) and five heads (one regression of 10
//! outputs, four 2–5-way classifications), batch 64. After the criterion group, the mean step
//! time of each weighting relative to Equal is printed.
//!
//! `cargo bench -p tandem-optim --bench weighting`
#![allow(clippy::unwrap_used, missing_docs)]
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use std::time::Instant;
use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
use tandem_optim::{StepContext, Weighting, WeightingConfig};
use tandem_tensor::{select_vars, sorted_vars, Target, TaskMap};

struct Toy {
    tasks: TaskSet,
    vars: VarMap,
    trunk: Vec<Linear>,
    heads: Vec<(String, Linear)>,
    input: Tensor,
    targets: TaskMap<Target>,
}

fn toy() -> Toy {
    let dev = Device::Cpu;
    let tasks = TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("smile", 2).auxiliary())
        .with(ClassTask::new("glasses", 2).auxiliary())
        .with(ClassTask::new("gender", 2).auxiliary())
        .with(ClassTask::new("pose", 5).auxiliary());
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, 1, DType::F32, &dev);
    let trunk = vec![
        candle_nn::linear(64, 256, vb.pp("trunk").pp("fc1")).unwrap(),
        candle_nn::linear(256, 256, vb.pp("trunk").pp("fc2")).unwrap(),
    ];
    let heads = tasks
        .iter()
        .map(|t| {
            (
                t.name().to_string(),
                candle_nn::linear(256, t.out_dim(), vb.pp("heads").pp(t.name())).unwrap(),
            )
        })
        .collect();
    let b = 64;
    let input = Tensor::randn(0f32, 1.0, (b, 64), &dev).unwrap();
    let mut targets = TaskMap::new();
    targets.insert(
        "landmarks",
        Target::new(Tensor::rand(0f32, 1.0, (b, 10), &dev).unwrap()),
    );
    for (name, classes) in [("smile", 2u32), ("glasses", 2), ("gender", 2), ("pose", 5)] {
        let v: Vec<u32> = (0..b as u32).map(|i| (i * 7 + 3) % classes).collect();
        targets.insert(name, Target::new(Tensor::new(v, &dev).unwrap()));
    }
    Toy {
        tasks,
        vars,
        trunk,
        heads,
        input,
        targets,
    }
}

fn step(toy: &Toy, w: &mut dyn Weighting, step: u64) {
    let mut h = toy.input.clone();
    for l in &toy.trunk {
        h = l.forward(&h).unwrap().relu().unwrap();
    }
    let mut losses = TaskMap::new();
    for (name, head) in &toy.heads {
        let task = toy.tasks.get(name).unwrap();
        let pred = head.forward(&h).unwrap();
        losses.insert(
            name.clone(),
            task.loss(&pred, &toy.targets[name.as_str()]).unwrap(),
        );
    }
    let trainable = sorted_vars(&toy.vars);
    let shared = select_vars(&toy.vars, &["trunk".to_string()]);
    let last = select_vars(&toy.vars, &["trunk.fc2".to_string()]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step);
    let mut ctx = StepContext {
        trainable: &trainable,
        shared: &shared,
        last_shared: &last,
        penalty: None,
        representation: None,
        rng: &mut rng,
        epoch: 0,
        step,
        collective: None,
        reduced: Vec::new(),
    };
    w.backward(&losses, &mut ctx).unwrap();
}

const KINDS: [&str; 6] = [
    r#"{"kind":"equal"}"#,
    r#"{"kind":"static","weights":{"smile":0.1}}"#,
    r#"{"kind":"uncertainty"}"#,
    r#"{"kind":"dwa"}"#,
    r#"{"kind":"gradnorm"}"#,
    r#"{"kind":"pcgrad"}"#,
];

fn build(toy: &Toy, json: &str) -> Box<dyn Weighting> {
    let vb = VarBuilder::from_varmap(&toy.vars, DType::F32, &Device::Cpu);
    serde_json::from_str::<WeightingConfig>(json)
        .unwrap()
        .build(&toy.tasks, vb)
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let toy = toy();
    let mut group = c.benchmark_group("weighting_step");
    for json in KINDS {
        let mut w = build(&toy, json);
        let name = w.name().to_string();
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                step(&toy, w.as_mut(), i);
                i += 1;
            })
        });
    }
    group.finish();

    // Relative cost, measured the same way for every method.
    let mut means = Vec::new();
    for json in KINDS {
        let mut w = build(&toy, json);
        for i in 0..5 {
            step(&toy, w.as_mut(), i);
        }
        let n = 50;
        let t = Instant::now();
        for i in 0..n {
            step(&toy, w.as_mut(), i);
        }
        means.push((
            w.name().to_string(),
            t.elapsed().as_secs_f64() / f64::from(n as u32),
        ));
    }
    let equal = means[0].1;
    eprintln!("\nper-step cost relative to equal (batch 64, 5 tasks):");
    for (name, m) in &means {
        eprintln!("  {name:<12} {:>8.3} ms  {:>5.2}×", m * 1e3, m / equal);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
