//! Tests on the real MTFL training data, when it is present: `$TANDEM_MTFL_DIR`, or
//! `shared/data/mtfl-train` three folders above this crate. Skipped with a printed reason when
//! absent. The data folder is only read; caches go under the target folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tandem_data::mtfl::{BoxSpread, CacheDir, CacheStatus, FaceTransform, Mtfl, MtflOptions};
use tandem_data::{Dataset, Label, Sample, Transform};

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TANDEM_MTFL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mtfl-train")
        });
    if dir.join("training.txt").is_file() {
        Some(dir)
    } else {
        println!(
            "skipped: no MTFL data at {} (set TANDEM_MTFL_DIR)",
            dir.display()
        );
        None
    }
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("mtfl-cache")
}

/// The full training set, opened once for all tests of this file.
fn full() -> Option<&'static Mtfl> {
    static MTFL: OnceLock<Option<Mtfl>> = OnceLock::new();
    MTFL.get_or_init(|| {
        let dir = data_dir()?;
        let options = MtflOptions {
            cache: CacheDir::At(cache_dir()),
            ..MtflOptions::default()
        };
        Some(Mtfl::open(dir, options).unwrap())
    })
    .as_ref()
}

fn points(s: &Sample) -> Vec<f32> {
    match s.labels.get("landmarks") {
        Some(Label::Points(p)) => p.clone(),
        other => panic!("no landmarks: {other:?}"),
    }
}

fn assert_close(got: &[f32], want: &[(usize, f32)], tol: f32) {
    for &(i, w) in want {
        assert!(
            (got[i] - w).abs() < tol,
            "value {i}: got {}, want {w}",
            got[i]
        );
    }
}

#[test]
fn loads_all_faces_with_the_file_counts() {
    let Some(m) = full() else { return };
    let train = m.train();
    assert_eq!(train.len(), 10_000);
    // Counts per code, from the file itself with an independent reading of its columns.
    let text = std::fs::read_to_string(m.dir().join("training.txt")).unwrap();
    let mut want = [[0usize; 5]; 4];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        for a in 0..4 {
            let code: usize = f[11 + a].parse().unwrap();
            want[a][code - 1] += 1;
        }
    }
    // And as measured once by hand (awk over the columns).
    assert_eq!(want[0][..2], [5807, 4193]);
    assert_eq!(want[3], [136, 1113, 7445, 1111, 195]);
    let mut got = [[0usize; 5]; 4];
    for i in 0..train.len() {
        let s = train.get(i).unwrap();
        for (a, name) in ["gender", "smile", "glasses", "pose"].iter().enumerate() {
            match s.labels.get(name) {
                Some(Label::Class(c)) => got[a][*c as usize] += 1,
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    assert_eq!(got, want);
    let s = train.get(0).unwrap();
    assert_eq!((s.image.width, s.image.height), (80, 80));
    let names: Vec<&str> = s.labels.keys().collect();
    assert_eq!(names, ["landmarks", "gender", "smile", "glasses", "pose"]);
}

#[test]
fn landmark_positions_after_crop_and_resize() {
    let Some(m) = full() else { return };
    let train = m.train();
    // The centred evaluation crop (the test-like one moves it by a per-face draw).
    let tf = FaceTransform {
        eval_spread: BoxSpread::NONE,
        ..m.face_transform()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    // Line 1, lfw_5590\Aaron_Eckhart_0001.jpg (250×250):
    // x = 107.25 147.75 126.25 106.25 140.75, y = 108.75 113.25 143.75 158.75 162.75.
    // Centroid (125.65, 137.45); extents 41.5 and 54, side 2.85 · 54 = 153.9.
    // Cached region: side 2 · 153.9 = 307.8 from (−28.25, −16.45):
    //   x1 = 135.5 / 307.8 = 0.440221, y1 = 125.2 / 307.8 = 0.406758.
    // Evaluation crop: side 153.9 from (48.7, 60.5):
    //   x1 = 58.55 / 153.9 = 0.380442, x2 = 99.05 / 153.9 = 0.643600,
    //   y1 = 48.25 / 153.9 = 0.313515, y5 = 102.25 / 153.9 = 0.664392.
    let s = train.get(0).unwrap();
    assert_close(&points(&s), &[(0, 0.440221), (5, 0.406758)], 1e-4);
    let e = tf.apply(s, &mut rng, false).unwrap();
    assert_eq!((e.image.width, e.image.height), (40, 40));
    assert_close(
        &points(&e),
        &[(0, 0.380442), (1, 0.643600), (5, 0.313515), (9, 0.664392)],
        1e-4,
    );

    // Line 10000, net_7876\_60_991_0.jpg (160×216):
    // x = 68 100 89 66 90, y = 57 59 83 97 98. Centroid (82.6, 78.8); extents 34 and 41,
    // side 2.85 · 41 = 116.85; evaluation crop from (24.175, 20.375):
    //   x1 = 43.825 / 116.85 = 0.375054, x5 = 65.825 / 116.85 = 0.563329,
    //   y1 = 36.625 / 116.85 = 0.313436, y5 = 77.625 / 116.85 = 0.664313.
    let e = tf.apply(train.get(9999).unwrap(), &mut rng, false).unwrap();
    assert_close(
        &points(&e),
        &[(0, 0.375054), (4, 0.563329), (5, 0.313436), (9, 0.664313)],
        1e-4,
    );

    // The default (test-like) evaluation crop of line 1 moves the landmark centroid off the
    // centre by at most 2.5 s.d. of the test crops' spread, plus what the rotation and scale do.
    let t = m
        .face_transform()
        .apply(train.get(0).unwrap(), &mut rng, false)
        .unwrap();
    let p = points(&t);
    let cx = p[..5].iter().sum::<f32>() / 5.0;
    let cy = p[5..].iter().sum::<f32>() / 5.0;
    let centred = tf.apply(train.get(0).unwrap(), &mut rng, false).unwrap();
    assert_ne!(p, points(&centred));
    assert!(
        (cx - 0.5).abs() < 0.2 && (cy - 0.5).abs() < 0.2,
        "{cx} {cy}"
    );
}

#[test]
fn crop_pixels_come_from_the_landmark_box() {
    let Some(m) = full() else { return };
    // The mean of the 40×40 evaluation crop of line 1 is the mean of its source box
    // [48.7, 202.6] × [60.5, 214.4] (inside the 250×250 image), up to resampling.
    let img = tandem_data::mtfl::image::read_gray(
        &m.dir().join("lfw_5590/Aaron_Eckhart_0001.jpg"),
        &Default::default(),
    )
    .unwrap();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in 61..214 {
        for x in 49..202 {
            sum += f64::from(img.get(x, y));
            n += 1;
        }
    }
    let want = sum / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let centred = FaceTransform {
        eval_spread: BoxSpread::NONE,
        ..m.face_transform()
    };
    let e = centred
        .apply(m.train().get(0).unwrap(), &mut rng, false)
        .unwrap();
    let got = e.image.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / 1600.0;
    assert!(
        (got - want).abs() < 0.01,
        "crop mean {got}, source box mean {want}"
    );
}

#[test]
fn training_crops_are_seeded_and_in_range() {
    let Some(m) = full() else { return };
    let tf = m.train_transform();
    let s = m.train().get(42).unwrap();
    let a = tf
        .apply(s.clone(), &mut tandem_data::sample_rng(7, 0, 42), true)
        .unwrap();
    let b = tf
        .apply(s.clone(), &mut tandem_data::sample_rng(7, 0, 42), true)
        .unwrap();
    let c = tf
        .apply(s, &mut tandem_data::sample_rng(7, 1, 42), true)
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.image.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(points(&a).iter().all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn split_is_random_not_by_position() {
    let Some(m) = full() else { return };
    let (train, val) = m.split(0.9, 3).unwrap();
    assert_eq!((train.len(), val.len()), (9000, 1000));
    let net_in_val = val.indices().iter().filter(|&&i| i >= 9000).count();
    assert!(
        net_in_val < 200,
        "{net_in_val} of the last 1,000 lines in validation"
    );
    let (_, again) = m.split(0.9, 3).unwrap();
    assert_eq!(again.indices(), val.indices());
}

#[test]
fn a_second_open_reads_the_cache() {
    let Some(m) = full() else { return };
    let again = Mtfl::open(m.dir(), m.options().clone()).unwrap();
    assert!(
        matches!(again.train_split().cache, CacheStatus::Loaded(_)),
        "{:?}",
        again.train_split().cache
    );
    assert_eq!(again.train_split().table, m.train_split().table);
}

/// A 600-face slice as shipped (CRLF, leading spaces, `\`) with a `testing.txt` in LF and `/`,
/// in a temporary folder that links to the real image folders.
fn slice(dir: &Path, edit_line_7: Option<&str>) -> PathBuf {
    let src = data_dir().unwrap();
    let t = dir.to_path_buf();
    for d in ["lfw_5590", "net_7876"] {
        std::os::unix::fs::symlink(src.join(d), t.join(d)).unwrap();
    }
    let text = std::fs::read_to_string(src.join("training.txt")).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut train: Vec<String> = lines[..600].iter().map(|l| format!("{l}\n")).collect();
    if let Some(l) = edit_line_7 {
        train[6] = format!("{l}\n");
    }
    std::fs::write(t.join("training.txt"), train.concat()).unwrap();
    let test: String = lines[600..700]
        .iter()
        .map(|l| l.replace('\\', "/").replace('\r', "") + "\n")
        .collect();
    std::fs::write(t.join("testing.txt"), test).unwrap();
    t
}

#[test]
fn quirky_slice_loads_and_a_14_field_line_names_line_7() {
    let Some(_) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let options = MtflOptions {
        cache: CacheDir::At(tmp.path().join("cache")),
        ..MtflOptions::default()
    };
    let good = tmp.path().join("good");
    std::fs::create_dir(&good).unwrap();
    let m = Mtfl::open(slice(&good, None), options.clone()).unwrap();
    assert_eq!(m.train().len(), 600);
    let test = m.test().unwrap();
    assert_eq!(test.len(), 100);
    // Line 601 is lfw_5590 (250×250), used whole: landmarks are x / 250, y / 250.
    let rec = &m.test_split().unwrap().records[0];
    let s = test.get(0).unwrap();
    assert_eq!((s.image.width, s.image.height), (40, 40));
    assert_close(
        &points(&s),
        &[(0, rec.landmarks[0] / 250.0), (5, rec.landmarks[5] / 250.0)],
        1e-5,
    );

    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    let text = std::fs::read_to_string(data_dir().unwrap().join("training.txt")).unwrap();
    let line7 = text.lines().nth(6).unwrap().trim();
    let fourteen = line7.rsplit_once(' ').unwrap().0.to_string() + " ";
    let e = Mtfl::open(slice(&bad, Some(&fourteen)), options)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("training.txt:7: field pose: missing"), "{e}");
}

/// The proxy set of a validation split: the test split's 39 % non-frontal faces, 40 × 40 final
/// inputs in range, the same sample every time, and copy 0 of a face is its test-like
/// validation crop, degraded or not.
#[test]
fn proxy_set_has_the_test_pose_mix_and_is_fixed() {
    use tandem_data::mtfl::ProxyOptions;
    let Some(m) = full() else { return };
    let (_, val) = m.split(0.9, 7).unwrap();
    let tf = m.face_transform();
    let options = ProxyOptions::default();
    let set = m.proxy_set(&val, &tf, &options).unwrap();
    assert_eq!(set.name, "val_proxy");
    assert!(set.transform.is_none());
    assert!(
        set.compare_plain,
        "the proxy is also scored without test-time mirroring"
    );
    let data = set.data;
    assert!(data.len() > val.len());
    let pose = |s: &Sample| match s.labels.get("pose") {
        Some(Label::Class(c)) => *c,
        other => panic!("pose label {other:?}"),
    };
    let samples: Vec<Sample> = (0..data.len()).map(|i| data.get(i).unwrap()).collect();
    let nonfrontal = samples.iter().filter(|s| pose(s) != 2).count() as f64;
    let share = nonfrontal / samples.len() as f64;
    assert!((share - 0.39).abs() < 0.03, "non-frontal share {share}");
    let before = val
        .indices()
        .iter()
        .filter(|&&i| pose(&m.train().get(i).unwrap()) != 2)
        .count() as f64
        / val.len() as f64;
    assert!(before < 0.3, "validation share {before}");
    for s in samples.iter().take(50) {
        assert_eq!((s.image.width, s.image.height), (40, 40));
        assert!(s.image.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    assert_eq!(data.get(17).unwrap(), samples[17]);
    // without degradation, copy 0 of the first face is the validation crop itself
    let clean = ProxyOptions {
        degrade: tandem_data::mtfl::Degrade::OFF,
        ..options
    };
    let plain = m.proxy_set(&val, &tf, &clean).unwrap().data;
    let first = val.indices()[0];
    let crop = tf
        .apply(
            m.train().get(first).unwrap(),
            &mut ChaCha8Rng::seed_from_u64(0),
            false,
        )
        .unwrap();
    assert_eq!(plain.get(0).unwrap(), crop);
}
