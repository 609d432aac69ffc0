//! Properties: no input makes the MTFL loader panic; mirroring twice is the identity.
#![allow(clippy::unwrap_used)]
mod common;

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tandem_data::mtfl::cache::{build_table, Prep};
use tandem_data::mtfl::parse::{parse_annotations, ParseOptions};
use tandem_data::mtfl::{mirror, Augment, BoxSpread, CropPolicy, FaceTransform, Jitter};
use tandem_data::{GrayImage, Label, Sample, Transform};
use tandem_tensor::TaskMap;

const VALID: &str = " imgs\\a.png 30.5 70 50 35 65 40 41 55 70 71 1 2 2 3\r\n imgs/c.jpg 30 70 50 35 65 20 21 40 55 56 2 1 2 5\r\n";

/// 256 cases, or `PROPTEST_CASES` (a longer fuzzing run).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        Just(b' '),
        Just(b'\r'),
        Just(b'\n'),
        Just(b'\\'),
        Just(b'/'),
        Just(b'.'),
        Just(b'-'),
        Just(b'e'),
        b'0'..=b'9',
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Set(i, b) if n > 0 => bytes[i % n] = b,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Delete(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
    bytes
}

fn fixture() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        common::write_images(d.path());
        d
    })
    .path()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_annotations(Path::new("training.txt"), &bytes, ParseOptions { reject_duplicates: true });
    }

    #[test]
    fn mutated_lines_never_panic(edits in proptest::collection::vec(edit(), 1..6)) {
        let bytes = apply(VALID.as_bytes().to_vec(), &edits);
        let file = Path::new("training.txt");
        if let Ok(records) = parse_annotations(file, &bytes, ParseOptions::default()) {
            let prep = Prep {
                crop: CropPolicy::landmark_box(),
                margin: 2.0,
                size: 16,
                allow_outside: edits.len() % 2 == 0,
                limits: Default::default(),
            };
            if let Ok(table) = build_table(fixture(), file, &records, &prep) {
                prop_assert_eq!(table.faces.len(), records.len());
            }
        }
    }

    #[test]
    fn transform_never_panics(
        w in 1usize..60,
        h in 1usize..60,
        pts in proptest::collection::vec(-2.0f32..3.0, 10),
        seed in any::<u64>(),
        train in any::<bool>(),
        scale in 0.01f32..6.0,
    ) {
        let labels = TaskMap::new().with("landmarks", Label::Points(pts)).with("pose", Label::Class(2));
        let s = Sample { image: GrayImage::new(w, h), labels };
        let t = FaceTransform {
            crop: CropPolicy::LandmarkBox { scale, jitter: Jitter::default() },
            width: 12,
            height: 12,
            augment: Augment::default(),
            eval_spread: BoxSpread::MTFL_TEST,
            eval_seed: seed,
        };
        if let Ok(out) = t.apply(s, &mut ChaCha8Rng::seed_from_u64(seed), train) {
            prop_assert_eq!(out.image.pixels.len(), 144);
        }
    }

    #[test]
    fn mirroring_twice_is_the_identity(
        w in 1usize..20,
        h in 1usize..20,
        pts in proptest::collection::vec(0.0f32..=1.0, 10),
        pose in 0u32..5,
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut image = GrayImage::new(w, h);
        for p in &mut image.pixels {
            *p = rand::Rng::random(&mut rng);
        }
        let labels = TaskMap::new()
            .with("landmarks", Label::Points(pts.clone()))
            .with("smile", Label::Class(1))
            .with("pose", Label::Class(pose));
        let s = Sample { image, labels };
        let once = mirror(s.clone());
        prop_assert_eq!(once.labels.get("pose"), Some(&Label::Class(4 - pose)));
        let twice = mirror(once);
        prop_assert_eq!(&twice.image, &s.image);
        prop_assert_eq!(twice.labels.get("pose"), s.labels.get("pose"));
        prop_assert_eq!(twice.labels.get("smile"), s.labels.get("smile"));
        let Some(Label::Points(back)) = twice.labels.get("landmarks") else {
            return Err(TestCaseError::fail("landmarks lost"));
        };
        for (a, b) in back.iter().zip(&pts) {
            prop_assert!((a - b).abs() <= 1e-6, "{} vs {}", a, b);
        }
    }
}
