//! Test-time averaging ([`tandem_share::Averaged`]): one member is the member itself, identical
//! members average to the member, and the mirrored average is exactly mirror-equivariant.
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use proptest::prelude::*;
use std::sync::Arc;
use tandem_layers::{Tcdcn, TcdcnConfig};
use tandem_share::ensemble::{mirror_images, unmirror};
use tandem_share::{Averaged, HardSharing, Mirror, MultiTaskNet, OutputKind, TaskOutput};
use tandem_tensor::TaskMap;
mod common;
use common::{tasks, R};

fn outputs() -> TaskMap<TaskOutput> {
    TaskMap::new()
        .with(
            "landmarks",
            TaskOutput {
                kind: OutputKind::Points,
                mirror: Mirror::Points {
                    pairs: vec![(0, 1), (3, 4)],
                },
            },
        )
        .with(
            "smile",
            TaskOutput {
                kind: OutputKind::Class,
                mirror: Mirror::Invariant,
            },
        )
        .with(
            "pose",
            TaskOutput {
                kind: OutputKind::Class,
                mirror: Mirror::Classes(vec![4, 3, 2, 1, 0]),
            },
        )
}

fn net(seed: u64) -> R<Arc<dyn MultiTaskNet>> {
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, seed, DType::F32, &Device::Cpu);
    let trunk = Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?;
    Ok(Arc::new(HardSharing::new(trunk, &tasks(), vb.pp("heads"))?))
}

fn input(seed: u64) -> R<Tensor> {
    let v: Vec<f32> = (0..3 * 1600)
        .map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 1000.0)
        .collect();
    Ok(Tensor::from_vec(v, (3, 1, 40, 40), &Device::Cpu)?)
}

fn values(t: &Tensor) -> R<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

#[test]
fn one_member_without_mirror_is_the_member() -> R {
    let m = net(1)?;
    let avg = Averaged::new(vec![m.clone()], outputs(), false)?;
    let x = input(0)?;
    let (a, b) = (avg.forward_t(&x, false)?, m.forward_t(&x, false)?);
    for t in ["landmarks", "smile", "pose"] {
        assert_eq!(
            values(&a.predictions[t])?,
            values(&b.predictions[t])?,
            "{t}"
        );
    }
    Ok(())
}

#[test]
fn identical_members_average_to_the_member() -> R {
    let m = net(2)?;
    let avg = Averaged::new(vec![m.clone(), m.clone()], outputs(), false)?;
    let x = input(1)?;
    let (a, b) = (avg.forward_t(&x, false)?, m.forward_t(&x, false)?);
    // (y + y) / 2 = y exactly
    assert_eq!(
        values(&a.predictions["landmarks"])?,
        values(&b.predictions["landmarks"])?
    );
    for t in ["smile", "pose"] {
        let pa = values(&a.predictions[t].exp()?)?;
        let pb = values(&candle_nn::ops::softmax(&b.predictions[t], D::Minus1)?)?;
        for (u, v) in pa.iter().zip(&pb) {
            assert!((u - v).abs() < 1e-6, "{t}: {pa:?} vs {pb:?}");
        }
    }
    Ok(())
}

#[test]
fn members_differ_and_are_averaged() -> R {
    let (m1, m2) = (net(3)?, net(4)?);
    let avg = Averaged::new(vec![m1.clone(), m2.clone()], outputs(), false)?;
    let x = input(2)?;
    let a = values(&avg.forward_t(&x, false)?.predictions["landmarks"])?;
    let y1 = values(&m1.forward_t(&x, false)?.predictions["landmarks"])?;
    let y2 = values(&m2.forward_t(&x, false)?.predictions["landmarks"])?;
    assert_ne!(y1, y2);
    for ((a, u), v) in a.iter().zip(&y1).zip(&y2) {
        assert!((a - (u + v) / 2.0).abs() < 1e-6);
    }
    Ok(())
}

#[test]
fn bad_mirror_maps_are_errors() -> R {
    let mut bad = outputs();
    bad.insert(
        "pose",
        TaskOutput {
            kind: OutputKind::Class,
            mirror: Mirror::Classes(vec![0, 0, 2, 3, 4]),
        },
    );
    let e = Averaged::new(vec![net(1)?], bad, true)
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("permutation")));
    assert!(Averaged::new(Vec::new(), outputs(), true).is_err());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    /// With mirroring, the prediction on a mirrored face is the mirror of the prediction on the
    /// face: points `x → 1 − x` with the eyes and mouth corners swapped, pose reversed, smile
    /// unchanged.
    #[test]
    fn mirrored_average_is_mirror_equivariant(seed in 0u64..1000) {
        let run = || -> R {
            let avg = Averaged::new(vec![net(seed)?], outputs(), true)?;
            let x = input(seed)?;
            let plain = avg.forward_t(&x, false)?;
            let flipped = avg.forward_t(&mirror_images(&x)?, false)?;
            for (task, out) in outputs().iter() {
                let back = unmirror(&flipped.predictions[task], &out.mirror)?;
                let (a, b) = (values(&back)?, values(&plain.predictions[task])?);
                for (u, v) in a.iter().zip(&b) {
                    assert!((u - v).abs() < 1e-5, "{task}: {a:?} vs {b:?}");
                }
            }
            Ok(())
        };
        prop_assert!(run().is_ok(), "{:?}", run().err().map(|e| e.to_string()));
    }
}
