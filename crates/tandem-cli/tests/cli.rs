//! The `tandem` binary end to end: synth, train, eval, predict with drawing, help and errors.
#![allow(clippy::unwrap_used)]
use std::path::Path;
use std::process::{Command, Output};

fn tandem(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env("TANDEM_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tandem(dir, args);
    assert!(
        out.status.success(),
        "tandem {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `tandem ARGS`, asserts that it fails, and returns its standard error.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = tandem(dir, args);
    assert!(!out.status.success(), "tandem {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const TINY: &str = r#"
tasks = ["landmarks", "gender", "smile", "glasses", "pose"]
sharing = { kind = "hard" }
weighting = { kind = "uncertainty" }

[train]
epochs = 2
batch_size = 32
seed = 3

[data]
train_size = 128
val_size = 32
"#;

/// Colours of the marks (as in `src/draw.rs`).
const COLORS: [[u8; 3]; 5] = [
    [255, 0, 0],
    [0, 200, 0],
    [0, 80, 255],
    [255, 200, 0],
    [255, 0, 255],
];

#[test]
fn synth_train_eval_predict_draw() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // synth: MTFL's 15-field format, images in a subfolder, no other .txt file.
    ok(dir, &["synth", "--n", "12", "--out", "faces"]);
    let ann = std::fs::read_to_string(dir.join("faces/training.txt")).unwrap();
    let lines: Vec<&str> = ann.lines().collect();
    assert_eq!(lines.len(), 12);
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 15, "{l}");
        assert!(dir.join("faces").join(f[0]).is_file());
        for (i, code) in f[11..].iter().enumerate() {
            let c: u32 = code.parse().unwrap();
            assert!((1..=if i == 3 { 5 } else { 2 }).contains(&c), "{l}");
        }
    }
    let txt = std::fs::read_dir(dir.join("faces"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "txt")
        })
        .count();
    assert_eq!(txt, 1);

    // train on SynthFaces: checkpoint, history, metrics, plots.
    std::fs::write(dir.join("tiny.toml"), TINY).unwrap();
    ok(dir, &["train", "--config", "tiny.toml", "--out", "run"]);
    for f in [
        "config.toml",
        "checkpoint/model.safetensors",
        "checkpoint/meta.json",
        "history.json",
        "metrics.json",
        "loss.svg",
        "metrics.svg",
        "weights.svg",
    ] {
        assert!(dir.join("run").join(f).is_file(), "{f}");
    }

    // eval rebuilds the model from the checkpoint alone.
    let table = ok(dir, &["eval", "--checkpoint", "run/checkpoint"]);
    assert!(
        table.contains("| landmarks |") && table.contains("nme"),
        "{table}"
    );
    let on_folder = ok(
        dir,
        &["eval", "--checkpoint", "run/checkpoint", "--data", "faces"],
    );
    assert!(on_folder.contains("12 faces"), "{on_folder}");

    // predict with a drawing: every mark sits at its predicted landmark.
    let image = format!("faces/{}", lines[0].split_whitespace().next().unwrap());
    let json = ok(
        dir,
        &[
            "predict",
            "--checkpoint",
            "run/checkpoint",
            &image,
            "--draw",
            "drawn.png",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let points: Vec<(f64, f64)> = v["prediction"]["landmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(points.len(), 5);
    for t in ["gender", "smile", "glasses", "pose"] {
        assert!(v["prediction"]["classes"][t]["class"].is_u64(), "{v}");
    }
    let drawn = image::open(dir.join("drawn.png")).unwrap().to_rgb8();
    let k = f64::from(drawn.width()) / 40.0;
    assert_eq!(k, 8.0);
    for (j, (x, y)) in points.iter().enumerate() {
        let (ex, ey) = (x * k, y * k);
        if !(0.0..f64::from(drawn.width())).contains(&ex)
            || !(0.0..f64::from(drawn.height())).contains(&ey)
        {
            continue;
        }
        assert_eq!(
            drawn.get_pixel(ex as u32, ey as u32).0,
            COLORS[j],
            "mark {j} should cover its landmark at ({ex}, {ey})"
        );
    }

    // A box covering the whole image predicts as the image itself.
    let boxed = ok(
        dir,
        &[
            "predict",
            "--checkpoint",
            "run/checkpoint",
            &image,
            "--box",
            "0,0,40,40",
            "--json",
        ],
    );
    assert_eq!(boxed, json);
}

#[test]
fn help_and_errors_are_what_a_shell_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for cmd in [
        vec!["--help"],
        vec!["train", "--help"],
        vec!["eval", "--help"],
        vec!["predict", "--help"],
        vec!["synth", "--help"],
    ] {
        let out = ok(dir, &cmd);
        assert!(out.contains("Usage"), "{cmd:?}: {out}");
    }
    let usage = tandem(dir, &["train", "--no-such-flag"]);
    assert_eq!(usage.status.code(), Some(2));
    let missing = tandem(dir, &["eval", "--checkpoint", "nowhere"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("nowhere"),
        "{err}"
    );
    let bad = tandem(
        dir,
        &["predict", "--checkpoint", "x", "a.png", "--box", "1,2"],
    );
    assert_eq!(bad.status.code(), Some(2));
    std::fs::write(dir.join("bad.toml"), "[train]\nepochs = 0\n").unwrap();
    let cfg = tandem(dir, &["train", "--config", "bad.toml"]);
    assert_eq!(cfg.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cfg.stderr).contains("epochs"));
    // devices: a name that is none is an error naming the accepted ones; a GPU this build
    // has no feature for is an error naming the feature
    let gpu = tandem(dir, &["train", "--device", "gpu", "--epochs", "1"]);
    assert_eq!(gpu.status.code(), Some(1));
    let err = String::from_utf8_lossy(&gpu.stderr);
    assert!(
        err.contains("unknown device") && err.contains("cuda:N"),
        "{err}"
    );
    if !cfg!(feature = "cuda") {
        let cuda = tandem(dir, &["train", "--device", "cuda", "--epochs", "1"]);
        assert_eq!(cuda.status.code(), Some(1));
        let err = String::from_utf8_lossy(&cuda.stderr);
        assert!(err.contains("--features cuda"), "{err}");
        let eval = tandem(dir, &["eval", "--checkpoint", "x", "--device", "cuda"]);
        assert!(String::from_utf8_lossy(&eval.stderr).contains("--features cuda"));
    }
}

/// `metrics.json` counts the trainable parameters (hand-derived for hard sharing on TCDCN)
/// and holds a gated architecture's mean gate weights, per level for PLE; `eval` rebuilds a
/// gated network from its checkpoint.
#[test]
fn parameters_and_gates_in_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let json = |run: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(run).join("metrics.json")).unwrap())
            .unwrap()
    };
    let small = TINY
        .replace("epochs = 2", "epochs = 1")
        .replace("train_size = 128", "train_size = 64");
    std::fs::write(dir.join("hard.toml"), &small).unwrap();
    let log = ok(dir, &["train", "--config", "hard.toml", "--out", "hard"]);
    // TCDCN: conv 416 + 6,960 + 27,712 + 16,448, fc 25,700; heads 1,010 + 3 × 202 + 505
    // (uncertainty weighting's own log σ² are not the network's)
    assert_eq!(json("hard")["parameters"], 79_357);
    assert!(log.contains("79357 trainable parameters"), "{log}");
    assert!(json("hard").get("gates").is_none());

    for (kind, levels) in [("mmoe", 0usize), ("ple", 5)] {
        std::fs::write(
            dir.join(format!("{kind}.toml")),
            small.replace("kind = \"hard\"", &format!("kind = \"{kind}\"")),
        )
        .unwrap();
        ok(
            dir,
            &["train", "--config", &format!("{kind}.toml"), "--out", kind],
        );
        let m = json(kind);
        assert!(m["parameters"].as_u64().unwrap() > 79_357, "{kind}");
        let gates = m["gates"].as_object().unwrap();
        assert_eq!(gates.len(), 5, "{kind}");
        for (task, g) in gates {
            let rows: Vec<Vec<f64>> = if levels == 0 {
                vec![serde_json::from_value(g.clone()).unwrap()]
            } else {
                serde_json::from_value(g.clone()).unwrap()
            };
            assert_eq!(rows.len(), levels.max(1), "{kind} {task}");
            for row in rows {
                assert!(row.iter().all(|w| *w >= 0.0));
                assert!(
                    (row.iter().sum::<f64>() - 1.0).abs() < 1e-4,
                    "{kind} {task} {row:?}"
                );
            }
        }
        let table = ok(
            dir,
            &["eval", "--checkpoint", &format!("{kind}/checkpoint")],
        );
        assert!(table.contains("| landmarks |"), "{table}");
    }
}

/// `eval` and `predict` take several checkpoints (a seed ensemble, predictions averaged) and
/// `--mirror`; an ensemble of one model twice scores as the model; a mismatched ensemble is an
/// error naming the checkpoint, and members of other validation splits are refused on
/// validation faces.
#[test]
fn ensembles_and_mirroring() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let small = TINY
        .replace("epochs = 2", "epochs = 1")
        .replace("train_size = 128", "train_size = 64");
    std::fs::write(dir.join("a.toml"), &small).unwrap();
    std::fs::write(dir.join("b.toml"), small.replace("seed = 3", "seed = 4")).unwrap();
    std::fs::write(
        dir.join("c.toml"),
        small.replace(
            r#"tasks = ["landmarks", "gender", "smile", "glasses", "pose"]"#,
            r#"tasks = ["landmarks", "smile"]"#,
        ),
    )
    .unwrap();
    for run in ["a", "b", "c"] {
        ok(
            dir,
            &["train", "--config", &format!("{run}.toml"), "--out", run],
        );
    }
    let nme = |args: &[&str]| -> f64 {
        let mut all = vec!["eval", "--json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&ok(dir, &all)).unwrap();
        v["metrics"]["landmarks"]["nme"].as_f64().unwrap()
    };
    let a = nme(&["--checkpoint", "a/checkpoint"]);
    let b = nme(&["--checkpoint", "b/checkpoint"]);
    let aa = nme(&[
        "--checkpoint",
        "a/checkpoint",
        "--checkpoint",
        "a/checkpoint",
    ]);
    let ab = nme(&[
        "--checkpoint",
        "a/checkpoint",
        "--checkpoint",
        "b/checkpoint",
    ]);
    let mirrored = nme(&["--checkpoint", "a/checkpoint", "--mirror"]);
    assert_eq!(a, aa);
    assert!(ab != a && ab != b, "{a} {b} {ab}");
    assert!(mirrored != a, "{a} {mirrored}");
    assert_eq!(
        nme(&["--checkpoint", "a/checkpoint", "--mirror", "--no-mirror"]),
        a
    );

    let err = fails(
        dir,
        &[
            "eval",
            "--checkpoint",
            "a/checkpoint",
            "--checkpoint",
            "c/checkpoint",
        ],
    );
    assert!(
        err.contains("c/checkpoint") && err.contains("tasks"),
        "{err}"
    );

    // predict with an ensemble and mirroring gives five landmarks per face
    ok(dir, &["synth", "--n", "20", "--out", "faces"]);
    // the checkpoint's validation split of an MTFL folder and its evaluation sets
    let sets: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &[
            "eval",
            "--checkpoint",
            "a/checkpoint",
            "--data",
            "faces",
            "--validation",
            "--json",
        ],
    ))
    .unwrap();
    for set in ["val", "val_centred", "val_proxy"] {
        assert!(
            sets["sets"][set]["metrics"]["landmarks"]["nme"].is_f64(),
            "{set}: {sets}"
        );
    }
    // members of other seeds validated on other faces: refused, naming the key that fixes it
    let err = fails(
        dir,
        &[
            "eval",
            "--checkpoint",
            "a/checkpoint",
            "--checkpoint",
            "b/checkpoint",
            "--data",
            "faces",
            "--validation",
        ],
    );
    assert!(err.contains("data.split_seed"), "{err}");
    let ann = std::fs::read_to_string(dir.join("faces/training.txt")).unwrap();
    let image = format!("faces/{}", ann.split_whitespace().next().unwrap());
    let json = ok(
        dir,
        &[
            "predict",
            "--checkpoint",
            "a/checkpoint",
            "--checkpoint",
            "b/checkpoint",
            "--mirror",
            &image,
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["prediction"]["landmarks"].as_array().unwrap().len(), 5);
}
