//! The bad-input matrix: every kind of bad input the workspace handles, each answered by an
//! error that says what is wrong (never a panic, never a silent wrong number).
//!
//! Groups: MTFL annotation files and images, model checkpoints (tandem-tensor), trainer
//! checkpoints (tandem-train), run configurations (TOML), tensors of the wrong shape given to
//! task heads, nets and the batcher, numeric guards, and hub failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::path::Path;
use tandem::data::mtfl::{CacheDir, DataSource, HubOptions, Mtfl, MtflOptions};
use tandem::data::{GrayImage, Label, Sample};
use tandem::heads::{ClassTask, LandmarkTask, Task};
use tandem::run::{train_with, RunData, RunOptions};
use tandem::tensor::checkpoint::{self as tc, CheckpointMeta};
use tandem::tensor::{Target, TaskMap};
use tandem::train::checkpoint::{load_checkpoint, read_trainer_state};
use tandem::train::CheckpointConfig;
use tandem::RunConfig;

/// Collects the cases: each must be an error whose message holds every `want` substring.
#[derive(Default)]
struct Matrix {
    cases: usize,
    failures: Vec<String>,
}

impl Matrix {
    fn check<T, E: std::fmt::Display>(&mut self, name: &str, result: Result<T, E>, want: &[&str]) {
        self.cases += 1;
        match result {
            Ok(_) => self.failures.push(format!("{name}: accepted")),
            Err(e) => {
                // Without the backtrace candle appends when RUST_BACKTRACE is set.
                let full = e.to_string();
                let msg = full
                    .split("\n   0: ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                for w in want {
                    if !msg.contains(w) {
                        self.failures
                            .push(format!("{name}: error {msg:?} does not mention {w:?}"));
                    }
                }
            }
        }
    }

    fn finish(self, at_least: usize) {
        assert!(self.failures.is_empty(), "{:#?}", self.failures);
        assert!(self.cases >= at_least, "only {} cases", self.cases);
    }
}

const GOOD: &str = "imgs\\a.png 30.5 70 50 35 65 40 41 55 70 71 1 2 2 3";

fn with(field: usize, value: &str) -> String {
    let mut f: Vec<String> = GOOD.split(' ').map(String::from).collect();
    f[field] = value.to_string();
    f.join(" ")
}

fn open_mtfl(dir: &Path, annotations: Option<&[u8]>) -> tandem::data::Result<Mtfl> {
    if let Some(text) = annotations {
        std::fs::write(dir.join("training.txt"), text).unwrap();
    }
    let options = MtflOptions {
        cache: CacheDir::Off,
        ..MtflOptions::default()
    };
    Mtfl::open(dir, options)
}

fn annotations_and_images(m: &mut Matrix) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("imgs")).unwrap();
    let fourteen = GOOD.rsplit_once(' ').unwrap().0.to_string();
    let lines: [(&str, String, &[&str]); 8] = [
        (
            "14 fields",
            fourteen,
            &["training.txt", "training.txt:1", "pose"],
        ),
        ("x1 not a number", with(1, "abc"), &["training.txt:1", "x1"]),
        ("y3 NaN", with(8, "NaN"), &["y3"]),
        ("x2 infinite", with(2, "inf"), &["x2"]),
        ("gender code 7", with(11, "7"), &["gender"]),
        ("pose code 0", with(14, "0"), &["pose"]),
        ("16 fields", format!("{GOOD} 1"), &["training.txt:1"]),
        (
            "path only",
            "imgs/a.png".to_string(),
            &["training.txt:1", "x1"],
        ),
    ];
    for (name, line, want) in lines {
        m.check(
            &format!("annotation: {name}"),
            open_mtfl(d, Some(line.as_bytes())),
            want,
        );
    }
    m.check(
        "annotation: not UTF-8",
        open_mtfl(d, Some(b"imgs/\xff\xfe.png 1 2 3\n")),
        &["training.txt"],
    );
    m.check(
        "annotation: empty file",
        open_mtfl(d, Some(b"")),
        &["training.txt"],
    );
    let empty = tempfile::tempdir().unwrap();
    m.check(
        "annotation: no training.txt",
        open_mtfl(empty.path(), None),
        &["training.txt"],
    );
    m.check(
        "image: missing file",
        open_mtfl(d, Some(format!("{GOOD}\n").as_bytes())),
        &["a.png"],
    );
    std::fs::write(d.join("imgs/a.png"), b"this is not an image\n").unwrap();
    m.check(
        "image: not an image",
        open_mtfl(d, Some(format!("{GOOD}\n").as_bytes())),
        &["a.png"],
    );
    std::fs::write(d.join("imgs/a.png"), b"").unwrap();
    m.check(
        "image: empty file",
        open_mtfl(d, Some(format!("{GOOD}\n").as_bytes())),
        &["a.png"],
    );
}

fn linear(vars: &VarMap, out: usize) -> candle_nn::Linear {
    let vb = tandem::tensor::seeded_var_builder(vars, 1, DType::F32, &Device::Cpu);
    candle_nn::linear(3, out, vb.pp("fc")).unwrap()
}

fn model_checkpoints(m: &mut Matrix) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ck");
    let vars = VarMap::new();
    linear(&vars, 2);
    tc::save(
        &dir,
        &vars,
        &CheckpointMeta::new(0, 0, 1, serde_json::Value::Null),
    )
    .unwrap();
    let model = dir.join(tc::MODEL_FILE);
    let meta = dir.join(tc::META_FILE);
    let bytes = std::fs::read(&model).unwrap();
    let meta_text = std::fs::read_to_string(&meta).unwrap();

    let wide = VarMap::new();
    linear(&wide, 4);
    m.check(
        "checkpoint: wrong shape",
        tc::load(&dir, &wide),
        &["fc.weight: model has [4, 3], checkpoint has [2, 3]"],
    );
    let more = VarMap::new();
    linear(&more, 2);
    let vb = tandem::tensor::seeded_var_builder(&more, 1, DType::F32, &Device::Cpu);
    candle_nn::linear(2, 1, vb.pp("extra")).unwrap();
    m.check(
        "checkpoint: missing names",
        tc::load(&dir, &more),
        &["extra.weight [1, 2] missing from checkpoint"],
    );
    let fewer = VarMap::new();
    let vb = tandem::tensor::seeded_var_builder(&fewer, 1, DType::F32, &Device::Cpu);
    candle_nn::linear_no_bias(3, 2, vb.pp("fc")).unwrap();
    m.check(
        "checkpoint: unexpected names",
        tc::load(&dir, &fewer),
        &["fc.bias [2] in checkpoint but not in model"],
    );
    std::fs::write(
        &meta,
        meta_text.replace(
            "\"fc.bias\": [\n      2\n    ]",
            "\"fc.bias\": [\n      3\n    ]",
        ),
    )
    .unwrap();
    m.check(
        "checkpoint: sidecar does not match the tensors",
        tc::load(&dir, &vars),
        &["meta.json does not match model.safetensors", "fc.bias"],
    );
    std::fs::write(&meta, "{ not json").unwrap();
    m.check(
        "checkpoint: sidecar not JSON",
        tc::load(&dir, &vars),
        &["invalid meta.json"],
    );
    std::fs::write(&meta, &meta_text).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    m.check(
        "checkpoint: truncated safetensors",
        tc::load(&dir, &vars),
        &["not a valid safetensors file"],
    );
    std::fs::write(&model, b"").unwrap();
    m.check(
        "checkpoint: empty safetensors",
        tc::load(&dir, &vars),
        &["not a valid safetensors file"],
    );
    m.check(
        "checkpoint: no such folder",
        tc::load(&tmp.path().join("nope"), &vars),
        &["nope"],
    );
}

const TINY: &str = r#"
tasks = ["landmarks", "smile"]
[model]
input_size = 32
channels = [4, 8, 8, 8]
feature_dim = 16
[train]
epochs = 1
batch_size = 16
seed = 3
[data]
train_size = 32
val_size = 16
[data.synth]
size = 32
"#;

fn trainer_checkpoints(m: &mut Matrix) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RunConfig::from_toml(TINY, "tiny.toml").unwrap();
    let data = RunData::synthetic(&cfg, 3).unwrap();
    let dir = tmp.path().join("ck");
    let options = RunOptions {
        checkpoints: Some(CheckpointConfig::new(&dir)),
        resume: false,
        ..Default::default()
    };
    let out = train_with(&cfg, &data, &Device::Cpu, &options, |_| {}).unwrap();
    let ck = tandem::train::checkpoint::latest_checkpoint(&dir).unwrap();
    let sums = ck.join("SHA256SUMS");
    let trainer = ck.join("trainer.json");
    let model = ck.join(tc::MODEL_FILE);
    let (sums_text, trainer_text, model_bytes) = (
        std::fs::read(&sums).unwrap(),
        std::fs::read_to_string(&trainer).unwrap(),
        std::fs::read(&model).unwrap(),
    );

    std::fs::write(
        &trainer,
        trainer_text.replacen("\"step\": 2", "\"step\": 3", 1),
    )
    .unwrap();
    m.check(
        "trainer checkpoint: trainer.json altered",
        read_trainer_state(&ck),
        &["trainer.json", "SHA-256"],
    );
    std::fs::write(&trainer, &trainer_text).unwrap();
    let mut altered = model_bytes.clone();
    let n = altered.len();
    altered[n - 1] ^= 1;
    std::fs::write(&model, &altered).unwrap();
    m.check(
        "trainer checkpoint: tensor data altered",
        load_checkpoint(&ck, &out.vars),
        &["model.safetensors", "SHA-256"],
    );
    std::fs::write(&model, &model_bytes).unwrap();
    std::fs::remove_file(&sums).unwrap();
    m.check(
        "trainer checkpoint: no SHA256SUMS",
        read_trainer_state(&ck),
        &["SHA256SUMS"],
    );
    std::fs::write(&sums, &sums_text).unwrap();
    let mut other = cfg.clone();
    other.train.seed = 4;
    let resume = RunOptions {
        checkpoints: Some(CheckpointConfig::new(&dir)),
        resume: true,
        ..Default::default()
    };
    m.check(
        "trainer checkpoint: written by another configuration",
        train_with(&other, &data, &Device::Cpu, &resume, |_| {}),
        &["train.seed (checkpoint 3, now 4)"],
    );
    let mut bigger = cfg.clone();
    if let Some(t) = bigger.model.as_tcdcn_mut() {
        t.feature_dim = 32;
    }
    m.check(
        "trainer checkpoint: tensors of another model",
        train_with(&bigger, &data, &Device::Cpu, &resume, |_| {}),
        &["does not fit the model", "model has"],
    );
    let bad_keep = RunOptions {
        checkpoints: Some(CheckpointConfig::new(&dir).keep_last(0)),
        resume: false,
        ..Default::default()
    };
    m.check(
        "trainer checkpoint: keep_last = 0",
        train_with(&cfg, &data, &Device::Cpu, &bad_keep, |_| {}),
        &["checkpoints.keep_last"],
    );
}

fn configs(m: &mut Matrix) {
    let cases: [(&str, &str, &[&str]); 29] = [
        ("unknown key", "bogus = 1", &["bogus"]),
        ("unknown nested key", "[train]\nepoch = 3", &["epoch"]),
        ("wrong type", "[train]\nepochs = \"ten\"", &["epochs"]),
        (
            "negative learning rate",
            "[train.optimizer]\nkind = \"adamw\"\nlr = -1.0",
            &["optimizer.lr"],
        ),
        (
            "weighting names an unknown task",
            "tasks = [\"landmarks\"]\nweighting = { kind = \"static\", weights = { smile = 1.0 } }",
            &["weighting.weights.smile"],
        ),
        (
            "input too small for the trunk",
            "[model]\ninput_size = 16\n[data.synth]\nsize = 16",
            &["too small"],
        ),
        (
            "zero batch size",
            "[train]\nbatch_size = 0",
            &["batch_size"],
        ),
        (
            "unknown task",
            "tasks = [\"landmarks\", \"age\"]",
            &["tasks[1]", "allowed"],
        ),
        (
            "task listed twice",
            "tasks = [\"smile\", \"smile\"]",
            &["tasks[1]"],
        ),
        (
            "negative gradient clip",
            "[train]\ngrad_clip_norm = -1.0",
            &["grad_clip_norm"],
        ),
        (
            "unknown non-finite policy",
            "[train]\non_non_finite = \"ignore\"",
            &["on_non_finite"],
        ),
        (
            "synthetic size differs from the input size",
            "[data.synth]\nsize = 48",
            &["data.synth.size"],
        ),
        (
            "validation fraction above 1",
            "[data]\nval_fraction = 1.5",
            &["data.val_fraction"],
        ),
        (
            "unknown weighting kind",
            "weighting = { kind = \"magic\" }",
            &["magic"],
        ),
        (
            "zero DWA temperature",
            "weighting = { kind = \"dwa\", temperature = 0.0 }",
            &["temperature"],
        ),
        (
            "unknown norm",
            "[model]\nnorm = \"sideways\"",
            &["norm", "sideways"],
        ),
        (
            "unknown init",
            "[model]\ninit = \"xavier\"",
            &["init", "xavier"],
        ),
        (
            "dropout of 1",
            "[model]\ndropout = 1.0",
            &["model", "dropout"],
        ),
        (
            "negative DropConnect",
            "[model]\ndropconnect = -0.1",
            &["model", "dropconnect"],
        ),
        (
            "groups that do not divide the channels",
            "[model]\nnorm = \"group\"\ngroups = 3",
            &["groups", "do not divide"],
        ),
        (
            "batch norm with a batch of 1",
            "[model]\nnorm = \"batch\"\n[train]\nbatch_size = 1",
            &["model.norm", "batch_size"],
        ),
        (
            "brightness above 1",
            "[data.augment]\nbrightness = 1.5",
            &["data.augment", "brightness"],
        ),
        (
            "unknown augmentation key",
            "[data.augment]\nblur = 0.5",
            &["blur"],
        ),
        (
            "degradation probability above 1",
            "[data.augment.degrade]\np = 1.5",
            &["data.augment", "degrade"],
        ),
        (
            "proxy share of 1",
            "[data.proxy]\nnonfrontal = 1.0",
            &["data.proxy", "nonfrontal"],
        ),
        (
            "negative pose balance",
            "[data]\npose_balance = -0.2",
            &["data.pose_balance", "-0.2"],
        ),
        (
            "unknown test-time key",
            "[test_time]\nflip = true",
            &["flip"],
        ),
        (
            "mirroring an MLP",
            "[model]\nkind = \"mlp\"\n[test_time]\nmirror = true",
            &["test_time.mirror", "tcdcn"],
        ),
        (
            "instance norm on the MLP",
            "[model]\nkind = \"mlp\"\nnorm = \"instance\"",
            &["model", "norm"],
        ),
    ];
    for (name, text, want) in cases {
        m.check(
            &format!("config: {name}"),
            RunConfig::from_toml(text, "x.toml"),
            want,
        );
    }
}

/// Two faces of different sizes.
struct Mixed;

impl tandem::data::Dataset for Mixed {
    fn len(&self) -> usize {
        2
    }
    fn get(&self, i: usize) -> tandem::data::Result<Sample> {
        let w = 32 + 8 * i;
        Ok(Sample {
            image: GrayImage::new(w, w),
            labels: TaskMap::new().with("smile", Label::Class(1)),
        })
    }
}

fn tensors(m: &mut Matrix) {
    let dev = Device::Cpu;
    let landmarks = LandmarkTask::new("landmarks", 5);
    let pred = Tensor::zeros((4, 7), DType::F32, &dev).unwrap();
    let target = Target::new(Tensor::zeros((4, 10), DType::F32, &dev).unwrap());
    m.check(
        "head: landmark prediction of the wrong width",
        landmarks.loss(&pred, &target),
        &["landmarks", "[4, 7]", "[4, 10]"],
    );
    let smile = ClassTask::new("smile", 2);
    let logits = Tensor::zeros((4, 2), DType::F32, &dev).unwrap();
    let labels = Target::new(Tensor::zeros(3, DType::U32, &dev).unwrap());
    m.check(
        "head: class labels for another batch size",
        smile.loss(&logits, &labels),
        &["smile", "[4, 2]", "[3]"],
    );

    let cfg = RunConfig::from_toml(TINY, "tiny.toml").unwrap();
    let tasks = cfg.task_set();
    let vars = VarMap::new();
    let vb = tandem::tensor::seeded_var_builder(&vars, 1, DType::F32, &dev);
    let net = cfg.sharing.build(&cfg.model, &tasks, vb).unwrap();
    let small = Tensor::zeros((2, 1, 16, 16), DType::F32, &dev).unwrap();
    m.check(
        "net: input smaller than the trunk's",
        net.forward_t(&small, false),
        &["conv2d", "does not fit"],
    );
    let rgb = Tensor::zeros((2, 3, 32, 32), DType::F32, &dev).unwrap();
    m.check("net: three channels", net.forward_t(&rgb, false), &["3"]);
    let flat = Tensor::zeros((2, 32 * 32), DType::F32, &dev).unwrap();
    m.check("net: rank-2 input", net.forward_t(&flat, false), &["rank"]);

    let batcher = tandem::data::Batcher::eval(2);
    m.check(
        "batcher: images of different sizes",
        batcher.batch(&Mixed, 0, 0, &dev),
        &["sample 1"],
    );
    m.check(
        "batcher: batch out of range",
        batcher.batch(&Mixed, 0, 5, &dev),
        &["batch 5 out of range"],
    );
    let nan = Tensor::new(&[1.0f32, f32::NAN], &dev).unwrap();
    m.check(
        "guard: NaN in a tensor",
        tandem::tensor::ensure_finite("loss.smile", &nan),
        &["loss.smile", "1 of 2"],
    );
}

fn hub(m: &mut Matrix) {
    let tmp = tempfile::tempdir().unwrap();
    let source = |sha: &str| DataSource::Hub {
        repo: "owner/mtfl".into(),
        revision: "main".into(),
        archive: "MTFL.tar.gz".into(),
        sha256: sha.into(),
    };
    let offline = HubOptions {
        hub_cache: Some(tmp.path().join("hub")),
        unpack_dir: Some(tmp.path().join("unpacked")),
        offline: true,
        token: None,
        ..HubOptions::default()
    };
    m.check(
        "hub: malformed SHA-256",
        source("xyz").resolve(&offline),
        &["sha256"],
    );
    let sha = "0".repeat(64);
    m.check(
        "hub: offline with an empty cache",
        source(&sha).resolve(&offline),
        &["offline"],
    );
    let unreachable = HubOptions {
        endpoint: "http://127.0.0.1:9".into(),
        offline: false,
        stall_timeout: std::time::Duration::from_secs(2),
        ..offline
    };
    m.check(
        "hub: endpoint refuses connections",
        source(&sha).resolve(&unreachable),
        &["127.0.0.1:9"],
    );
}

#[test]
fn every_bad_input_is_a_clear_error() {
    let mut m = Matrix::default();
    annotations_and_images(&mut m);
    model_checkpoints(&mut m);
    trainer_checkpoints(&mut m);
    configs(&mut m);
    tensors(&mut m);
    hub(&mut m);
    m.finish(30);
}
