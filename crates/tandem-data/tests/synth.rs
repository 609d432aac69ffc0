//! SynthFaces: determinism, landmark bounds, label conventions and attribute effects.
use proptest::prelude::*;
use tandem_data::{Attributes, DataError, Dataset, FaceParams, Label, SynthConfig, SynthFaces};

fn cfg(len: usize) -> SynthConfig {
    SynthConfig {
        len,
        ..Default::default()
    }
}

fn clean(len: usize) -> SynthConfig {
    SynthConfig {
        len,
        difficulty: 0.0,
        ..Default::default()
    }
}

#[test]
fn same_seed_gives_bit_identical_faces_in_any_order_and_thread_count() {
    let a = SynthFaces::new(cfg(40), 11);
    let b = SynthFaces::new(cfg(40), 11);
    let forward: Vec<_> = (0..40).map(|i| a.get(i).unwrap()).collect();
    let backward: Vec<_> = (0..40).rev().map(|i| b.get(i).unwrap()).collect();
    for (i, s) in forward.iter().enumerate() {
        let t = &backward[39 - i];
        assert_eq!(s, t);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&s.image.pixels), bits(&t.image.pixels));
    }
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let par: Vec<_> = pool.install(|| {
            use rayon::prelude::*;
            (0..40usize)
                .into_par_iter()
                .map(|i| a.get(i).unwrap())
                .collect()
        });
        assert_eq!(par, forward);
    }
}

#[test]
fn different_seeds_and_indices_differ() {
    let a = SynthFaces::new(cfg(10), 1);
    let b = SynthFaces::new(cfg(10), 2);
    for i in 0..10 {
        assert_ne!(a.get(i).unwrap().image, b.get(i).unwrap().image);
    }
    assert_ne!(a.get(0).unwrap().image, a.get(1).unwrap().image);
}

#[test]
fn labels_have_mtfl_order_and_ranges() {
    let faces = SynthFaces::new(cfg(300), 3);
    for i in 0..300 {
        let (s, p) = faces.face(i).unwrap();
        let keys: Vec<&str> = s.labels.keys().collect();
        assert_eq!(keys, ["landmarks", "gender", "smile", "glasses", "pose"]);
        let Label::Points(pts) = &s.labels["landmarks"] else {
            panic!("landmarks are not points")
        };
        assert_eq!(pts.len(), 10);
        for k in 0..5 {
            assert!((pts[k] * 40.0 - p.landmarks[k][0]).abs() < 1e-4);
            assert!((pts[5 + k] * 40.0 - p.landmarks[k][1]).abs() < 1e-4);
        }
        let a = p.attributes;
        assert_eq!(s.labels["gender"], Label::Class(a.gender));
        assert_eq!(s.labels["smile"], Label::Class(a.smile));
        assert_eq!(s.labels["glasses"], Label::Class(a.glasses));
        assert_eq!(s.labels["pose"], Label::Class(a.pose));
        assert!(a.gender <= 1 && a.smile <= 1 && a.glasses <= 1 && a.pose <= 4);
        assert_eq!(s.image.pixels.len(), 40 * 40);
        assert!(s.image.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        // MTFL convention: the "left" eye and mouth corner have the smaller x unless the face
        // is rolled far, and the eyes sit above the mouth.
        if a.pose == 2 && p.roll.abs() < 0.3 {
            assert!(pts[0] < pts[1] && pts[3] < pts[4], "face {i}: {pts:?}");
            assert!(pts[5] < pts[8] && pts[6] < pts[9]);
        }
    }
}

#[test]
fn attribute_frequencies_follow_the_priors() {
    let n = 4000;
    let faces = SynthFaces::new(cfg(n), 5);
    let mut counts = [0usize; 3];
    let mut pose = [0usize; 5];
    for i in 0..n {
        let a = faces.attributes(i).unwrap();
        counts[0] += usize::from(a.is_female());
        counts[1] += usize::from(a.is_smiling());
        counts[2] += usize::from(a.has_glasses());
        pose[a.pose as usize] += 1;
    }
    let frac = |c: usize| c as f32 / n as f32;
    let d = SynthConfig::default();
    assert!((frac(counts[0]) - d.female_prob).abs() < 0.03);
    assert!((frac(counts[1]) - d.smile_prob).abs() < 0.03);
    assert!((frac(counts[2]) - d.glasses_prob).abs() < 0.02);
    for k in 0..5 {
        assert!((frac(pose[k]) - d.pose_probs[k]).abs() < 0.02, "{pose:?}");
    }
}

/// The nose's offset from the eye midpoint along the eye axis, in landmark IODs.
fn nose_offset(p: &FaceParams) -> f32 {
    let [l, r, n] = [p.landmarks[0], p.landmarks[1], p.landmarks[2]];
    let (ex, ey) = (r[0] - l[0], r[1] - l[1]);
    let len = (ex * ex + ey * ey).sqrt();
    let m = [0.5 * (l[0] + r[0]), 0.5 * (l[1] + r[1])];
    ((n[0] - m[0]) * ex + (n[1] - m[1]) * ey) / (len * len)
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn with(i: usize, faces: &SynthFaces, f: impl Fn(&mut Attributes)) -> FaceParams {
    let mut a = faces.attributes(i).unwrap_or(Attributes::NEUTRAL);
    f(&mut a);
    match faces.face_with(i, a) {
        Ok((_, p)) => p,
        Err(e) => panic!("face {i}: {e}"),
    }
}

#[test]
fn pose_turns_the_nose_and_narrows_the_eyes() {
    let faces = SynthFaces::new(cfg(100), 8);
    for i in 0..100 {
        let by_pose: Vec<FaceParams> = (0..5u32)
            .map(|pose| with(i, &faces, |a| a.pose = pose))
            .collect();
        let off: Vec<f32> = by_pose.iter().map(nose_offset).collect();
        // Left poses put the nose towards the left eye, right poses towards the right eye,
        // profiles further than half-profiles.
        assert!(off[0] < off[1] && off[1] < -0.1, "face {i}: {off:?}");
        assert!(off[4] > off[3] && off[3] > 0.1, "face {i}: {off:?}");
        assert!(off[2].abs() < 0.1, "face {i}: {off:?}");
        // The eyes come closer together (relative to the face scale) as the head turns.
        let ratio: Vec<f32> = by_pose.iter().map(|p| p.landmark_iod() / p.iod).collect();
        assert!(ratio[0] < ratio[1] && ratio[1] < ratio[2], "{ratio:?}");
        assert!(ratio[4] < ratio[3] && ratio[3] < ratio[2], "{ratio:?}");
        assert!(ratio[2] > 0.98);
    }
}

#[test]
fn smiling_widens_and_raises_the_mouth() {
    let faces = SynthFaces::new(cfg(100), 9);
    for i in 0..100 {
        let smiling = with(i, &faces, |a| a.smile = 0);
        let neutral = with(i, &faces, |a| a.smile = 1);
        let width = |p: &FaceParams| dist(p.landmarks[3], p.landmarks[4]) / p.landmark_iod();
        assert!(width(&smiling) > width(&neutral) * 1.1, "face {i}");
        let drop = |p: &FaceParams| {
            let eyes = [
                0.5 * (p.landmarks[0][0] + p.landmarks[1][0]),
                0.5 * (p.landmarks[0][1] + p.landmarks[1][1]),
            ];
            let mouth = [
                0.5 * (p.landmarks[3][0] + p.landmarks[4][0]),
                0.5 * (p.landmarks[3][1] + p.landmarks[4][1]),
            ];
            dist(eyes, mouth) / p.iod
        };
        assert!(drop(&smiling) < drop(&neutral) - 0.05, "face {i}");
        // Eyes and nose do not move.
        assert_eq!(smiling.yaw, neutral.yaw);
        assert_eq!(smiling.roll, neutral.roll);
    }
}

#[test]
fn men_have_lower_mouths() {
    let faces = SynthFaces::new(cfg(50), 10);
    for i in 0..50 {
        let man = with(i, &faces, |a| a.gender = 0);
        let woman = with(i, &faces, |a| a.gender = 1);
        let mouth_y = |p: &FaceParams| {
            let d = |k: usize| {
                dist(p.landmarks[0], p.landmarks[k]) + dist(p.landmarks[1], p.landmarks[k])
            };
            (d(3) + d(4)) / p.iod
        };
        assert!(mouth_y(&man) > mouth_y(&woman), "face {i}");
    }
}

#[test]
fn glasses_darken_the_eye_region_and_attributes_change_the_image() {
    let faces = SynthFaces::new(clean(60), 12);
    let patch = |s: &tandem_data::Sample, c: [f32; 2]| {
        let mut sum = 0.0;
        for dy in -2i32..=2 {
            for dx in -2i32..=2 {
                let x = (c[0].floor() as i32 + dx).clamp(0, 39) as usize;
                let y = (c[1].floor() as i32 + dy).clamp(0, 39) as usize;
                sum += s.image.get(x, y);
            }
        }
        sum / 25.0
    };
    for i in 0..60 {
        let mut a = faces.attributes(i).unwrap();
        a.glasses = 0;
        let (with_glasses, p) = faces.face_with(i, a).unwrap();
        a.glasses = 1;
        let (without, q) = faces.face_with(i, a).unwrap();
        assert_eq!(p.landmarks, q.landmarks, "glasses do not move landmarks");
        for k in 0..2 {
            assert!(
                patch(&with_glasses, p.landmarks[k]) < patch(&without, p.landmarks[k]),
                "face {i} eye {k}"
            );
        }
        for change in [
            |a: &mut Attributes| a.gender = 1 - a.gender,
            |a: &mut Attributes| a.smile = 1 - a.smile,
        ] {
            let mut b = a;
            change(&mut b);
            assert_ne!(faces.face_with(i, b).unwrap().0.image, without.image);
        }
    }
}

#[test]
fn errors_for_bad_indices_configs_and_attributes() {
    let faces = SynthFaces::new(cfg(3), 0);
    assert!(matches!(faces.get(3), Err(DataError::Invalid(_))));
    let bad = SynthFaces::new(
        SynthConfig {
            size: 2,
            ..Default::default()
        },
        0,
    );
    assert!(bad.get(0).is_err());
    assert!(SynthFaces::try_new(bad.config().clone(), 0).is_err());
    let a = Attributes {
        pose: 5,
        ..Attributes::NEUTRAL
    };
    assert!(faces.face_with(0, a).is_err());
}

#[test]
fn config_serde_fills_defaults_and_rejects_unknown_fields() {
    let cfg: SynthConfig = serde_json::from_str(r#"{"size": 64, "difficulty": 0.5}"#).unwrap();
    assert_eq!(cfg.size, 64);
    assert_eq!(cfg.difficulty, 0.5);
    assert_eq!(cfg.len, SynthConfig::default().len);
    assert!(serde_json::from_str::<SynthConfig>(r#"{"sise": 64}"#).is_err());
    let back: SynthConfig =
        serde_json::from_str(&serde_json::to_string(&SynthConfig::default()).unwrap()).unwrap();
    assert_eq!(back, SynthConfig::default());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every landmark lies inside the image, for any seed, index, size and difficulty.
    /// Any valid configuration renders finite pixels in `[0, 1]` with landmarks inside.
    #[test]
    fn any_valid_config_renders(
        seed in any::<u64>(),
        difficulty in 0.0f32..=10.0,
        noise in 0.0f32..1.0,
        clutter in 0.0f32..3.0,
        occluder_prob in 0.0f32..=1.0,
        lighting in 0.0f32..5.0,
        roll_deg in 0.0f32..90.0,
        scale_jitter in 0.0f32..0.99,
        shift in 0.0f32..1.0,
        identity in 0.0f32..=0.5,
    ) {
        let cfg = SynthConfig {
            size: 24, len: 4, difficulty, noise, clutter, occluder_prob, lighting, roll_deg,
            scale_jitter, shift, identity, ..Default::default()
        };
        prop_assert!(cfg.validate().is_ok());
        let faces = SynthFaces::new(cfg, seed);
        for i in 0..4 {
            let (s, p) = faces.face(i).unwrap();
            prop_assert!(s.image.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
            for l in p.landmarks {
                prop_assert!(l[0] > 0.0 && l[0] < 24.0 && l[1] > 0.0 && l[1] < 24.0, "{p:?}");
            }
        }
    }

    #[test]
    fn landmarks_always_inside_the_image(
        seed in any::<u64>(),
        index in 0usize..usize::MAX,
        size in 8usize..96,
        difficulty in 0.0f32..4.0,
        scale in 0.05f32..0.5,
    ) {
        let cfg = SynthConfig { size, len: usize::MAX, difficulty, scale, ..Default::default() };
        let faces = SynthFaces::new(cfg, seed);
        let (s, p) = faces.face(index).unwrap();
        let Label::Points(pts) = &s.labels["landmarks"] else { panic!("not points") };
        for v in pts {
            prop_assert!(*v > 0.0 && *v < 1.0, "{pts:?} {p:?}");
        }
        prop_assert!(s.image.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
