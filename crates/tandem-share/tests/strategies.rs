//! Soft sharing and cross-stitch against their limits: λ = 0 is `Independent`, α = I is
//! `Independent`, equal columns with uniform α are `HardSharing`; the parameter penalty is
//! zero exactly when the columns agree, and its gradient matches finite differences.
#![allow(clippy::unwrap_used)] // test helpers may unwrap
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use proptest::prelude::*;
use std::collections::BTreeMap;
use tandem_layers::{Activation, Tcdcn, TcdcnConfig};
use tandem_share::{
    CrossStitch, CrossStitchConfig, HardSharing, Independent, MultiTaskNet, ParamGroups,
    SoftConfig, SoftSharing, TieMode,
};
use tandem_tensor::{seeded_var_builder, select_vars, sorted_vars};
mod common;
use common::tasks;

fn trunk() -> TcdcnConfig {
    TcdcnConfig {
        input_size: 32,
        channels: [4, 8, 8, 8],
        feature_dim: 16,
        ..Default::default()
    }
}

/// A deterministic batch `[4, 1, 32, 32]` in [0, 1].
fn input(dtype: DType) -> Tensor {
    let v: Vec<f32> = (0..4 * 32 * 32)
        .map(|i| 0.5 + 0.5 * (i as f32 * 0.37).sin())
        .collect();
    Tensor::from_vec(v, (4, 1, 32, 32), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn soft(
    cfg: &SoftConfig,
    vars: &VarMap,
    seed: u64,
    trunk_cfg: &TcdcnConfig,
    dtype: DType,
) -> SoftSharing<Tcdcn> {
    let vb = seeded_var_builder(vars, seed, dtype, &Device::Cpu);
    SoftSharing::new(cfg, &tasks(), vb, |vb| Tcdcn::new(trunk_cfg.clone(), vb)).unwrap()
}

fn independent(vars: &VarMap, seed: u64) -> Independent<Tcdcn> {
    let vb = seeded_var_builder(vars, seed, DType::F32, &Device::Cpu);
    Independent::new(&tasks(), vb, |vb| Tcdcn::new(trunk(), vb)).unwrap()
}

fn cross_stitch(self_weight: f64, vars: &VarMap, seed: u64) -> CrossStitch<Tcdcn> {
    let vb = seeded_var_builder(vars, seed, DType::F32, &Device::Cpu);
    let cfg = CrossStitchConfig {
        self_weight,
        ..Default::default()
    };
    CrossStitch::new(&cfg, &tasks(), vb, |vb| Tcdcn::new(trunk(), vb)).unwrap()
}

/// The names of every variable a parameter group selects, shared ones and each task's, sorted
/// (a variable in two groups appears twice).
fn covered(vars: &VarMap, g: &ParamGroups) -> Vec<String> {
    let mut names: Vec<String> = select_vars(vars, &g.shared)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for p in g.tasks.values() {
        names.extend(select_vars(vars, p).into_iter().map(|(n, _)| n));
    }
    names.sort();
    names
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn assert_same_predictions(a: &dyn MultiTaskNet, b: &dyn MultiTaskNet, tol: f64) {
    let x = input(DType::F32);
    let (pa, pb) = (
        a.forward_t(&x, true).unwrap(),
        b.forward_t(&x, true).unwrap(),
    );
    assert_eq!(
        pa.predictions.keys().collect::<Vec<_>>(),
        pb.predictions.keys().collect::<Vec<_>>()
    );
    for (name, p) in pa.predictions.iter() {
        let d = max_diff(p, &pb.predictions[name]);
        assert!(d <= tol, "{name}: predictions differ by {d}");
    }
}

/// Gradients of `Σ_t Σ ŷ_t²` (+ the penalty) with respect to every variable, by name.
fn gradients(net: &dyn MultiTaskNet, vars: &VarMap) -> BTreeMap<String, Vec<f64>> {
    let out = net.forward_t(&input(DType::F32), true).unwrap();
    let mut total = out
        .penalty
        .unwrap_or(Tensor::new(0f32, &Device::Cpu).unwrap());
    for p in out.predictions.values() {
        total = (total + p.sqr().unwrap().sum_all().unwrap()).unwrap();
    }
    let g = total.backward().unwrap();
    sorted_vars(vars)
        .into_iter()
        .map(|(n, v)| {
            let grad = g
                .get(&v)
                .map(values)
                .unwrap_or_else(|| vec![0.0; v.elem_count()]);
            (n, grad)
        })
        .collect()
}

fn assert_same_gradients(a: &BTreeMap<String, Vec<f64>>, b: &BTreeMap<String, Vec<f64>>, tol: f64) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, ga) in a {
        let d = ga
            .iter()
            .zip(&b[name])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(d <= tol, "{name}: gradients differ by {d}");
    }
}

/// Copies the value of every variable under `from` to the same name under `to`.
fn copy_prefix(vars: &VarMap, from: &str, to: &str) {
    let all = sorted_vars(vars);
    for (name, v) in select_vars(vars, &[from.to_string()]) {
        let target = format!("{to}{}", &name[from.len()..]);
        let (_, dst) = all.iter().find(|(n, _)| *n == target).unwrap();
        dst.set(v.as_tensor()).unwrap();
    }
}

#[test]
fn soft_with_zero_lambda_is_independent() {
    for mode in [TieMode::Parameters, TieMode::Activations] {
        let (sv, iv) = (VarMap::new(), VarMap::new());
        let s = soft(&SoftConfig::all(0.0, mode), &sv, 9, &trunk(), DType::F32);
        let i = independent(&iv, 9);
        assert_eq!(s.param_groups().tasks, i.param_groups().tasks);
        assert!(s
            .forward_t(&input(DType::F32), true)
            .unwrap()
            .penalty
            .is_none());
        assert_same_predictions(&s, &i, 0.0);
        assert_same_gradients(&gradients(&s, &sv), &gradients(&i, &iv), 0.0);
    }
}

#[test]
fn cross_stitch_with_identity_alpha_is_independent() {
    let (cv, iv) = (VarMap::new(), VarMap::new());
    let c = cross_stitch(1.0, &cv, 4);
    let i = independent(&iv, 4);
    assert_eq!(
        c.stitch("conv2").unwrap().alpha().to_vec2::<f32>().unwrap()[0],
        [1.0, 0.0, 0.0]
    );
    assert_same_predictions(&c, &i, 1e-6);
    let mut gc = gradients(&c, &cv);
    gc.retain(|n, _| !n.starts_with("stitch."));
    assert_same_gradients(&gc, &gradients(&i, &iv), 1e-5);
}

#[test]
fn cross_stitch_with_equal_columns_and_uniform_alpha_is_hard_sharing() {
    let (cv, hv) = (VarMap::new(), VarMap::new());
    let c = cross_stitch(1.0 / 3.0, &cv, 6);
    let vb = seeded_var_builder(&hv, 6, DType::F32, &Device::Cpu);
    let h = HardSharing::new(
        Tcdcn::new(trunk(), vb.pp("trunk")).unwrap(),
        &tasks(),
        vb.pp("heads"),
    )
    .unwrap();
    // Columns start different, so the outputs differ...
    let x = input(DType::F32);
    let d = max_diff(
        &c.forward_t(&x, false).unwrap().predictions["pose"],
        &h.forward_t(&x, false).unwrap().predictions["pose"],
    );
    assert!(d > 1e-4, "{d}");
    // ...until every column holds the hard-shared trunk.
    let trunk_vars = VarMap::new();
    let tvb = seeded_var_builder(&trunk_vars, 6, DType::F32, &Device::Cpu);
    Tcdcn::new(trunk(), tvb.pp("trunk")).unwrap();
    for (name, v) in sorted_vars(&trunk_vars) {
        for t in ["landmarks", "smile", "pose"] {
            let target = format!("columns.{t}{}", &name["trunk".len()..]);
            let all = sorted_vars(&cv);
            let (_, dst) = all.iter().find(|(n, _)| *n == target).unwrap();
            dst.set(v.as_tensor()).unwrap();
        }
    }
    assert_same_predictions(&c, &h, 1e-5);
}

#[test]
fn cross_stitch_param_groups_and_names() {
    let vars = VarMap::new();
    let vb = seeded_var_builder(&vars, 1, DType::F32, &Device::Cpu);
    let cfg = CrossStitchConfig {
        stages: vec!["conv2".into(), "conv4".into()],
        self_weight: 0.9,
        groups: vec![],
    };
    let c = CrossStitch::new(&cfg, &tasks(), vb, |vb| Tcdcn::new(trunk(), vb)).unwrap();
    let g = c.param_groups();
    assert_eq!(
        g.last_shared,
        [
            "columns.landmarks.conv4",
            "columns.smile.conv4",
            "columns.pose.conv4",
            "stitch.conv4"
        ]
    );
    assert!(g.shared.contains(&"columns.pose.conv1".to_string()));
    assert!(g.shared.contains(&"stitch.conv2".to_string()));
    assert!(!g.shared.contains(&"columns.pose.fc".to_string()));
    assert_eq!(g.tasks["pose"], ["columns.pose.fc", "heads.pose"]);
    let names: Vec<String> = sorted_vars(&vars).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.contains(&"stitch.conv2".to_string()) && names.contains(&"stitch.conv4".to_string())
    );
    assert_eq!(names.iter().filter(|n| n.starts_with("stitch")).count(), 2);
    let a = c.stitch("conv2").unwrap().alpha().to_vec2::<f32>().unwrap();
    assert_eq!(a, [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]);
    // Every variable is in exactly one place: shared, or one task's group.
    assert_eq!(covered(&vars, &g), names);
    // Unknown and repeated stages are configuration errors.
    for stages in [vec!["conv9".to_string()], vec!["fc".into(), "fc".into()]] {
        let cfg = CrossStitchConfig {
            stages,
            self_weight: 0.9,
            groups: vec![],
        };
        let vb = seeded_var_builder(&VarMap::new(), 1, DType::F32, &Device::Cpu);
        assert!(CrossStitch::new(&cfg, &tasks(), vb, |vb| Tcdcn::new(trunk(), vb)).is_err());
    }
}

#[test]
fn soft_param_groups_and_config_errors() {
    let vars = VarMap::new();
    let cfg = SoftConfig {
        lambda: 1e-3,
        ties: [
            ("conv2".to_string(), TieMode::Parameters),
            ("conv3".into(), TieMode::Activations),
        ]
        .into(),
    };
    let s = soft(&cfg, &vars, 1, &trunk(), DType::F32);
    let g = s.param_groups();
    assert_eq!(g.tasks["smile"], ["columns.smile", "heads.smile"]);
    assert_eq!(
        g.last_shared,
        [
            "columns.landmarks.conv3",
            "columns.smile.conv3",
            "columns.pose.conv3"
        ]
    );
    assert_eq!(g.shared.len(), 6);
    for bad in [
        SoftConfig {
            lambda: -1.0,
            ..Default::default()
        },
        SoftConfig {
            lambda: f64::NAN,
            ..Default::default()
        },
        SoftConfig {
            ties: [("conv7".to_string(), TieMode::Parameters)].into(),
            ..Default::default()
        },
    ] {
        let vb = seeded_var_builder(&VarMap::new(), 1, DType::F32, &Device::Cpu);
        let e = SoftSharing::new(&bad, &tasks(), vb, |vb| Tcdcn::new(trunk(), vb));
        assert!(e.is_err());
    }
}

fn penalty(net: &SoftSharing<Tcdcn>, dtype: DType) -> f64 {
    let out = net.forward_t(&input(dtype), false).unwrap();
    out.penalty
        .map(|p| p.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap())
        .unwrap_or(0.0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Zero when every column holds the same weights (or activations), positive otherwise,
    /// linear in λ.
    #[test]
    fn penalty_is_zero_exactly_for_equal_columns(seed in 0u64..1_000, lambda in 1e-4f64..10.0, by_params in any::<bool>()) {
        let mode = if by_params { TieMode::Parameters } else { TieMode::Activations };
        let vars = VarMap::new();
        let s = soft(&SoftConfig::all(lambda, mode), &vars, seed, &trunk(), DType::F32);
        let p = penalty(&s, DType::F32);
        prop_assert!(p > 0.0, "{p}");
        let double = VarMap::new();
        let p2 = penalty(&soft(&SoftConfig::all(2.0 * lambda, mode), &double, seed, &trunk(), DType::F32), DType::F32);
        prop_assert!((p2 - 2.0 * p).abs() <= 1e-5 * p2, "{p} {p2}");
        if by_params {
            let pp = s.parameter_penalty().unwrap().unwrap().to_scalar::<f32>().unwrap() as f64;
            prop_assert!((pp - p).abs() <= 1e-6 * p);
        }
        copy_prefix(&vars, "columns.landmarks", "columns.smile");
        copy_prefix(&vars, "columns.landmarks", "columns.pose");
        prop_assert_eq!(penalty(&s, DType::F32), 0.0);
    }
}

/// Both ties' gradients against central differences, in f64 (with the smooth `tanh`).
#[test]
fn penalty_gradient_matches_finite_differences() {
    let cfg = TcdcnConfig {
        activation: Activation::Tanh,
        ..trunk()
    };
    let ties = [
        ("conv1".to_string(), TieMode::Parameters),
        ("conv2".into(), TieMode::Activations),
        ("conv4".into(), TieMode::Parameters),
        ("fc".into(), TieMode::Activations),
    ];
    let sc = SoftConfig {
        lambda: 0.3,
        ties: ties.into(),
    };
    let vars = VarMap::new();
    let s = soft(&sc, &vars, 3, &cfg, DType::F64);
    let out = s.forward_t(&input(DType::F64), false).unwrap();
    let grads = out.penalty.unwrap().backward().unwrap();
    let all = sorted_vars(&vars);
    let var = |n: &str| -> Var { all.iter().find(|(m, _)| m == n).unwrap().1.clone() };
    let probes = [
        ("columns.smile.conv1.weight", 7),
        ("columns.pose.conv1.bias", 2),
        ("columns.landmarks.conv2.weight", 11),
        ("columns.pose.conv3.weight", 5),
        ("columns.smile.conv4.bias", 1),
        ("columns.landmarks.fc.weight", 40),
        ("columns.pose.fc.bias", 3),
    ];
    for (name, i) in probes {
        let v = var(name);
        let analytic = values(grads.get(&v).unwrap())[i];
        let base = values(v.as_tensor());
        let at = |delta: f64| {
            let mut w = base.clone();
            w[i] += delta;
            v.set(&Tensor::from_vec(w, v.shape(), &Device::Cpu).unwrap())
                .unwrap();
            penalty(&s, DType::F64)
        };
        let h = 1e-5;
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        at(0.0);
        let err = (analytic - numeric).abs() / analytic.abs().max(1e-6);
        assert!(
            err < 1e-5,
            "{name}[{i}]: analytic {analytic}, numeric {numeric}"
        );
        assert!(analytic.abs() > 1e-9, "{name}[{i}]: zero gradient");
    }
}

#[test]
fn cross_stitch_groups_share_a_column() {
    let vars = VarMap::new();
    let vb = seeded_var_builder(&vars, 1, DType::F32, &Device::Cpu);
    let cfg = CrossStitchConfig {
        stages: vec!["conv2".into(), "conv4".into()],
        self_weight: 0.9,
        groups: vec![vec!["smile".into(), "pose".into()]],
    };
    let c = CrossStitch::new(&cfg, &tasks(), vb, |vb| Tcdcn::new(trunk(), vb)).unwrap();
    // Two columns: landmarks alone, smile and pose together.
    let a = c.stitch("conv2").unwrap().alpha().to_vec2::<f32>().unwrap();
    assert_eq!(a, [[0.9, 0.1], [0.1, 0.9]]);
    let names: Vec<String> = sorted_vars(&vars).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"columns.smile+pose.fc.weight".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("columns.pose.")));
    let g = c.param_groups();
    assert_eq!(
        g.last_shared,
        [
            "columns.landmarks.conv4",
            "columns.smile+pose.conv4",
            "stitch.conv4"
        ]
    );
    // The group's column is shared whole; the landmark column's fc is the landmarks' own.
    assert!(g.shared.contains(&"columns.smile+pose.fc".to_string()));
    assert_eq!(
        g.tasks["landmarks"],
        ["columns.landmarks.fc", "heads.landmarks"]
    );
    assert_eq!(g.tasks["smile"], ["heads.smile"]);
    assert_eq!(g.tasks["pose"], ["heads.pose"]);
    assert_eq!(covered(&vars, &g), names);
    let out = c.forward_t(&input(DType::F32), true).unwrap();
    assert_eq!(out.predictions["landmarks"].dims(), &[4, 10]);
    assert_eq!(out.predictions["pose"].dims(), &[4, 5]);
    assert_eq!(out.predictions["smile"].dims(), &[4, 2]);
    // A group naming an unknown task, a task in two groups, or an empty group is an error.
    for groups in [
        vec![vec!["smiles".to_string()]],
        vec![vec!["smile".into()], vec!["smile".into(), "pose".into()]],
        vec![vec![]],
    ] {
        let cfg = CrossStitchConfig {
            groups,
            ..Default::default()
        };
        let vb = seeded_var_builder(&VarMap::new(), 1, DType::F32, &Device::Cpu);
        assert!(CrossStitch::new(&cfg, &tasks(), vb, |vb| Tcdcn::new(trunk(), vb)).is_err());
    }
}
