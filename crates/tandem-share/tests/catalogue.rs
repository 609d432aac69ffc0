//! The architectures of the catalogue (MTAN, MMoE, CGC, PLE, DSelect-k, Learning to Branch)
//! on both trunks: shapes, gradients, gates, the one-expert limit, determinism, bad keys.
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use proptest::prelude::*;
use tandem_layers::{MlpConfig, Trunk, TrunkConfig};
use tandem_share::{
    smooth_step, CgcConfig, DselectKConfig, HardSharing, LtbConfig, MmoeConfig, MtanConfig,
    MultiTaskNet, SharingConfig,
};
mod common;
use common::{tasks, R};

fn catalogue() -> Vec<SharingConfig> {
    vec![
        SharingConfig::Mtan(MtanConfig::default()),
        SharingConfig::Mmoe(MmoeConfig::default()),
        SharingConfig::Cgc(CgcConfig::default()),
        SharingConfig::Ple(CgcConfig::default()),
        SharingConfig::DselectK(DselectKConfig::default()),
        SharingConfig::Ltb(LtbConfig::default()),
    ]
}

fn mlp() -> TrunkConfig {
    TrunkConfig::Mlp(MlpConfig {
        in_features: 6,
        hidden: vec![8, 4],
        ..Default::default()
    })
}

/// A batch for `trunk`: faces `[B, 1, 40, 40]` or rows `[B, 6]`, seeded.
fn input(trunk: &TrunkConfig, b: usize, seed: u64) -> candle_core::Result<Tensor> {
    let dev = Device::Cpu;
    let n = match trunk {
        TrunkConfig::Tcdcn(_) => b * 1600,
        TrunkConfig::Mlp(_) => b * 6,
    };
    let v: Vec<f32> = (0..n)
        .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32) / 1000.0)
        .collect();
    match trunk {
        TrunkConfig::Tcdcn(_) => Tensor::from_vec(v, (b, 1, 40, 40), &dev),
        TrunkConfig::Mlp(_) => Tensor::from_vec(v, (b, 6), &dev),
    }
}

fn build(s: &SharingConfig, trunk: &TrunkConfig, seed: u64) -> R<(VarMap, Box<dyn MultiTaskNet>)> {
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, seed, DType::F32, &Device::Cpu);
    let net = s.build(trunk, &tasks(), vb)?;
    Ok((vars, net))
}

/// A scalar that every prediction (and the penalty) reaches.
fn loss(net: &dyn MultiTaskNet, x: &Tensor) -> candle_core::Result<Tensor> {
    let out = net.forward_t(x, true)?;
    let mut total = out
        .penalty
        .clone()
        .unwrap_or(Tensor::new(0f32, x.device())?);
    for (_, p) in out.predictions.iter() {
        total = (total + p.sqr()?.sum_all()?)?;
    }
    Ok(total)
}

#[test]
fn every_architecture_predicts_every_task_on_both_trunks() -> R {
    for trunk in [TrunkConfig::default(), mlp()] {
        for s in catalogue() {
            let (_, net) = build(&s, &trunk, 3)?;
            let out = net.forward_t(&input(&trunk, 4, 1)?, true)?;
            let dims: Vec<Vec<usize>> = out
                .predictions
                .iter()
                .map(|(_, p)| p.dims().to_vec())
                .collect();
            assert_eq!(dims, [vec![4, 10], vec![4, 2], vec![4, 5]], "{}", s.key());
            assert_eq!(
                out.penalty.is_some(),
                matches!(s, SharingConfig::DselectK(_))
            );
            let groups = net.param_groups();
            assert!(!groups.shared.is_empty(), "{}", s.key());
            assert_eq!(groups.tasks.len(), 3);
        }
    }
    Ok(())
}

#[test]
fn every_parameter_receives_a_gradient() -> R {
    for trunk in [TrunkConfig::default(), mlp()] {
        for s in catalogue() {
            let (vars, net) = build(&s, &trunk, 5)?;
            let grads = loss(net.as_ref(), &input(&trunk, 3, 2)?)?.backward()?;
            for (name, var) in tandem_tensor::sorted_vars(&vars) {
                let g = grads
                    .get(var.as_tensor())
                    .ok_or_else(|| format!("{}: {name} gets no gradient", s.key()))?;
                let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
                assert!(norm > 0.0, "{}: {name} has a zero gradient", s.key());
            }
        }
    }
    Ok(())
}

#[test]
fn gates_are_distributions_over_the_experts() -> R {
    let trunk = TrunkConfig::default();
    let x = input(&trunk, 5, 4)?;
    let expect: [(&str, Vec<usize>); 4] = [
        ("mmoe", vec![3]),
        ("cgc", vec![2]),
        ("ple", vec![2; 5]),
        ("dselect_k", vec![4]),
    ];
    for s in catalogue() {
        let (_, net) = build(&s, &trunk, 9)?;
        let gates = net.gates(&x)?;
        let Some((_, widths)) = expect.iter().find(|(k, _)| *k == s.key()) else {
            assert!(gates.is_none(), "{} has no gates", s.key());
            continue;
        };
        let gates = gates.ok_or("gated architecture without gates")?;
        assert_eq!(gates.len(), 3);
        for (task, levels) in gates.iter() {
            let w: Vec<usize> = levels.iter().map(|g| g.dim(1)).collect::<Result<_, _>>()?;
            assert_eq!(&w, widths, "{} {task}", s.key());
            for g in levels {
                for row in g.to_vec2::<f32>()? {
                    assert!(row.iter().all(|&v| v >= 0.0), "{} {task} {row:?}", s.key());
                    let sum: f32 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{} {task} sums to {sum}", s.key());
                }
            }
        }
    }
    Ok(())
}

/// Sets the variable `name` of `vars` to `value`.
fn set(vars: &VarMap, name: &str, value: Tensor) -> R {
    let data = vars.data().lock().map_err(|_| "poisoned")?;
    let var: &Var = data
        .get(name)
        .ok_or_else(|| format!("no variable {name}"))?;
    var.set(&value)?;
    Ok(())
}

/// Once the selectors' logits leave the smooth step's transition, each task's gate has exactly
/// `k` non-zero weights (selectors on distinct experts) or fewer (on the same expert).
#[test]
fn converged_dselect_k_gates_select_exactly_k_experts() -> R {
    let trunk = TrunkConfig::default();
    let config = DselectKConfig {
        experts: 8,
        k: 3,
        ..Default::default()
    };
    let (vars, net) = build(&SharingConfig::DselectK(config.clone()), &trunk, 2)?;
    let m = config.bits();
    assert_eq!(m, 3);
    let dev = Device::Cpu;
    // selectors of "landmarks" on experts 1, 6, 3 (codes, low bit first); of "smile" on 5, 5, 2
    for (task, picks) in [
        ("landmarks", [1usize, 6, 3]),
        ("smile", [5, 5, 2]),
        ("pose", [0, 7, 4]),
    ] {
        set(
            &vars,
            &format!("gates.{task}.z.weight"),
            Tensor::zeros((3 * m, 1600), DType::F32, &dev)?,
        )?;
        let bias: Vec<f32> = picks
            .iter()
            .flat_map(|&e| (0..m).map(move |j| if (e >> j) & 1 == 1 { 5.0 } else { -5.0 }))
            .collect();
        set(
            &vars,
            &format!("gates.{task}.z.bias"),
            Tensor::from_vec(bias, 3 * m, &dev)?,
        )?;
    }
    let gates = net.gates(&input(&trunk, 4, 1)?)?.ok_or("no gates")?;
    for (task, want) in [("landmarks", 3usize), ("smile", 2), ("pose", 3)] {
        for row in gates.get(task).ok_or("task")?[0].to_vec2::<f32>()? {
            let nonzero = row.iter().filter(|&&v| v > 0.0).count();
            assert_eq!(nonzero, want, "{task}: {row:?}");
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }
    // the chosen experts are the coded ones
    let row = &gates.get("landmarks").ok_or("task")?[0].to_vec2::<f32>()?[0];
    let chosen: Vec<usize> = (0..8).filter(|&e| row[e] > 0.0).collect();
    assert_eq!(chosen, [1, 3, 6]);
    Ok(())
}

/// With one expert, MMoE and DSelect-k are hard sharing: the same predictions from the same
/// trunk and head weights.
#[test]
fn one_expert_is_the_plain_trunk() -> R {
    for trunk in [TrunkConfig::default(), mlp()] {
        for s in [
            SharingConfig::Mmoe(MmoeConfig { experts: 1 }),
            SharingConfig::DselectK(DselectKConfig {
                experts: 1,
                k: 1,
                entropy: 0.0,
                ..Default::default()
            }),
        ] {
            let (vars, net) = build(&s, &trunk, 11)?;
            let hard_vars = VarMap::new();
            let vb = tandem_tensor::seeded_var_builder(&hard_vars, 99, DType::F32, &Device::Cpu);
            let hard = HardSharing::new(
                Trunk::new(&trunk, vb.pp("trunk"))?,
                &tasks(),
                vb.pp("heads"),
            )?;
            for (name, var) in tandem_tensor::sorted_vars(&hard_vars) {
                let from = name.replacen("trunk.", "experts.0.", 1);
                let src = vars
                    .data()
                    .lock()
                    .map_err(|_| "poisoned")?
                    .get(&from)
                    .cloned();
                let src = src.ok_or_else(|| format!("{}: no {from}", s.key()))?;
                var.set(src.as_tensor())?;
            }
            let x = input(&trunk, 3, 8)?;
            let a = net.forward_t(&x, false)?;
            let b = hard.forward_t(&x, false)?;
            for (task, p) in a.predictions.iter() {
                let q = b.predictions.get(task).ok_or("task")?;
                let diff = (p - q)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-6, "{} {task}: {diff}", s.key());
            }
        }
    }
    Ok(())
}

#[test]
fn same_seed_same_bits_other_seed_other_weights() -> R {
    let trunk = TrunkConfig::default();
    let x = input(&trunk, 2, 3)?;
    for s in catalogue() {
        let run = |seed| -> R<Vec<f32>> {
            let (_, net) = build(&s, &trunk, seed)?;
            let out = net.forward_t(&x, true)?;
            Ok(out
                .predictions
                .get("landmarks")
                .ok_or("task")?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        assert_eq!(run(4)?, run(4)?, "{}", s.key());
        assert_ne!(run(4)?, run(5)?, "{}", s.key());
    }
    Ok(())
}

/// After the search, LTB trains and predicts with the tree its logits choose, without noise.
#[test]
fn ltb_searches_then_fixes_the_argmax_tree() -> R {
    let trunk = mlp();
    let (vars, net) = build(&SharingConfig::Ltb(LtbConfig::default()), &trunk, 6)?;
    let x = input(&trunk, 3, 5)?;
    // search: Gumbel noise depends on the batch, seeded: same batch, same bits
    net.begin_epoch(0, 4);
    let a = net.forward_t(&x, true)?.predictions;
    let b = net.forward_t(&x, true)?.predictions;
    assert_eq!(
        a.get("smile").ok_or("t")?.to_vec2::<f32>()?,
        b.get("smile").ok_or("t")?.to_vec2::<f32>()?
    );
    // every node of stage fc2 reads node 2 ("pose") of stage fc1
    let logits = Tensor::new(
        &[[0f32, 0.0, 3.0], [0.0, 1.0, 2.0], [-1.0, 0.0, 0.5]],
        &Device::Cpu,
    )?;
    set(&vars, "branch.fc2", logits)?;
    net.begin_epoch(2, 4); // default search: half of 4 epochs
    let train = net.forward_t(&x, true)?.predictions;
    let eval = net.forward_t(&x, false)?.predictions;
    // by hand: smile's head on column smile's fc2 over column pose's fc1
    let col = |t: &str| -> R<Trunk> {
        let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        Ok(Trunk::new(&trunk, vb.pp("columns").pp(t))?)
    };
    use tandem_layers::Backbone;
    let h = col("pose")?.forward_stage(0, &x, false)?;
    let z = col("smile")?.forward_stage(1, &h, false)?;
    let w = vars
        .data()
        .lock()
        .map_err(|_| "p")?
        .get("heads.smile.weight")
        .cloned()
        .ok_or("w")?;
    let bias = vars
        .data()
        .lock()
        .map_err(|_| "p")?
        .get("heads.smile.bias")
        .cloned()
        .ok_or("b")?;
    let want = z
        .matmul(&w.as_tensor().t()?)?
        .broadcast_add(bias.as_tensor())?;
    for got in [&train, &eval] {
        let d = (got.get("smile").ok_or("t")? - &want)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-6, "{d}");
    }
    // the fixed tree leaves the logits without a gradient
    let grads = loss(net.as_ref(), &x)?.backward()?;
    let data = vars.data().lock().map_err(|_| "p")?;
    assert!(grads
        .get(data.get("branch.fc2").ok_or("b")?.as_tensor())
        .is_none());
    Ok(())
}

#[test]
fn bad_keys_are_rejected_by_name() {
    let parse = |s: &str| toml::from_str::<SharingConfig>(s);
    let names = ["landmarks", "smile"];
    for (text, key) in [
        ("kind = \"mmoe\"\nexperts = 0", "experts"),
        ("kind = \"cgc\"\nexperts = 0", "experts"),
        ("kind = \"ple\"\ntask_experts = 0", "task_experts"),
        ("kind = \"dselect_k\"\nexperts = 4\nk = 5", "k"),
        ("kind = \"dselect_k\"\nk = 0", "k"),
        ("kind = \"dselect_k\"\ngamma = 0.0", "gamma"),
        ("kind = \"ltb\"\ntemperature = -1.0", "temperature"),
    ] {
        let c = parse(text).expect(text);
        let e = c.validate(&names).expect_err(text);
        assert!(
            matches!(&e, tandem_share::ShareError::Key { key: k, .. } if k == key),
            "{text}: {e}"
        );
        assert!(e.to_string().starts_with(key), "{e}");
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 1, DType::F32, &Device::Cpu);
        assert!(
            c.build(&TrunkConfig::default(), &tasks(), vb).is_err(),
            "{text} builds"
        );
    }
    for text in [
        "kind = \"mmoe\"\nexpert = 3",
        "kind = \"mtan\"\nstages = []",
        "kind = \"dselect_k\"\ntop_k = 2",
        "kind = \"ltb\"\nsearch = 3",
        "kind = \"moe\"",
    ] {
        let e = parse(text).expect_err(text).to_string();
        assert!(e.contains("unknown"), "{text}: {e}");
    }
    assert!(parse("kind = \"cgc\"")
        .expect("cgc")
        .validate(&["landmarks", "shared"])
        .is_err());
}

proptest! {
    /// The smooth step is in [0, 1], symmetric (`S(t) + S(−t) = 1`) and non-decreasing.
    #[test]
    fn smooth_step_is_a_symmetric_monotone_step(t in -3.0f64..3.0, d in 0.0f64..1.0, gamma in 0.1f64..4.0) {
        let dev = Device::Cpu;
        let x = Tensor::new(&[t, -t, t + d], &dev).unwrap();
        let s = smooth_step(&x, gamma).unwrap().to_vec1::<f64>().unwrap();
        prop_assert!(s.iter().all(|&v| (0.0..=1.0).contains(&v)));
        prop_assert!((s[0] + s[1] - 1.0).abs() < 1e-12);
        prop_assert!(s[2] >= s[0] - 1e-12);
        if t.abs() >= gamma / 2.0 {
            prop_assert_eq!(s[0], if t > 0.0 { 1.0 } else { 0.0 });
        }
    }
}
