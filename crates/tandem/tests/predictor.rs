//! `Predictor`: a checkpoint folder alone rebuilds the network, and predictions are the
//! network's outputs mapped to image pixels.
#![allow(clippy::unwrap_used)]
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use tandem::data::{Dataset, Image, SynthConfig, SynthFaces};
use tandem::optim::WeightingConfig;
use tandem::tensor::checkpoint::{self, CheckpointMeta};
use tandem::{FaceBox, Predictor, RunConfig};

/// Builds the (untrained) network of `cfg` and saves it to `dir`.
fn save(cfg: &RunConfig, dir: &std::path::Path) -> VarMap {
    let tasks = cfg.task_set();
    let vars = VarMap::new();
    let vb = tandem::tensor::seeded_var_builder(&vars, cfg.train.seed, DType::F32, &Device::Cpu);
    let _net = cfg.sharing.build(&cfg.model, &tasks, vb.clone()).unwrap();
    let _w = cfg.weighting.build(&tasks, vb).unwrap();
    let meta = CheckpointMeta::new(10, 1, cfg.train.seed, serde_json::to_value(cfg).unwrap());
    checkpoint::save(dir, &vars, &meta).unwrap();
    vars
}

#[test]
fn predictions_are_the_networks_outputs_in_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        weighting: WeightingConfig::Uncertainty { init: 0.0 },
        ..RunConfig::default()
    };
    save(&cfg, tmp.path());
    let p = Predictor::load(tmp.path(), &Device::Cpu).unwrap();
    assert_eq!(p.config(), &cfg);
    assert_eq!(p.meta().step, 10);
    assert_eq!(p.input_size(), 40);

    let faces = SynthFaces::new(
        SynthConfig {
            len: 3,
            ..Default::default()
        },
        5,
    );
    let images: Vec<_> = (0..3).map(|i| faces.get(i).unwrap().image).collect();
    let preds = p.predict(&images).unwrap();
    assert_eq!(preds.len(), 3);

    // The same network, run by hand on the stacked images.
    let pixels: Vec<f32> = images.iter().flat_map(|i| i.pixels.clone()).collect();
    let x = Tensor::from_vec(pixels, (3, 1, 40, 40), &Device::Cpu).unwrap();
    let out = p.net().forward_t(&x, false).unwrap();
    let lm = out.predictions["landmarks"].to_vec2::<f32>().unwrap();
    for (pred, row) in preds.iter().zip(&lm) {
        let points = pred.landmarks.as_ref().unwrap();
        assert_eq!(points.len(), 5);
        for (k, (x, y)) in points.iter().enumerate() {
            assert!((x - row[k] * 40.0).abs() < 1e-3 && (y - row[5 + k] * 40.0).abs() < 1e-3);
        }
        let names: Vec<&str> = pred.classes.keys().collect();
        assert_eq!(names, ["gender", "smile", "glasses", "pose"]);
        let pose = &pred.classes["pose"];
        assert_eq!(pose.probabilities.len(), 5);
        assert!((pose.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    // A box over the whole image is the image (same batch size, same bits); a box over its top-left quarter maps the
    // points into that quarter.
    let whole = FaceBox {
        x: 0.0,
        y: 0.0,
        width: 40.0,
        height: 40.0,
    };
    let boxed = p.predict_boxed(&[(&images[0], whole)]).unwrap();
    assert_eq!(boxed, p.predict(&images[..1]).unwrap());
    let quarter = FaceBox {
        x: 0.0,
        y: 0.0,
        width: 20.0,
        height: 20.0,
    };
    let q = p.predict_boxed(&[(&images[0], quarter)]).unwrap();
    for (x, y) in q[0].landmarks.as_ref().unwrap() {
        assert!((-20.0..40.0).contains(x) && (-20.0..40.0).contains(y));
    }
    let bad = FaceBox {
        x: 0.0,
        y: 0.0,
        width: 0.0,
        height: 5.0,
    };
    assert!(p.predict_boxed(&[(&images[0], bad)]).is_err());
}

#[test]
fn load_errors_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = Predictor::load(tmp.path().join("nowhere"), &Device::Cpu).unwrap_err();
    assert!(missing.to_string().contains("meta.json"), "{missing}");

    // A checkpoint whose config asks for a different network than its tensors hold.
    let cfg = RunConfig::default();
    save(&cfg, tmp.path());
    let meta_path = tmp.path().join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["config"]["tasks"] = serde_json::json!(["landmarks"]);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let mismatch = Predictor::load(tmp.path(), &Device::Cpu).unwrap_err();
    assert!(mismatch.to_string().contains("heads.smile"), "{mismatch}");

    meta["config"]["tasks"] = serde_json::json!(["age"]);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let invalid = Predictor::load(tmp.path(), &Device::Cpu).unwrap_err();
    assert!(invalid.to_string().contains("age"), "{invalid}");
}

/// Declared tasks of every kind on an MLP: regression outputs are values, binary outputs a
/// two-class prediction whose class follows the logit's sign, class outputs softmax
/// probabilities; grey face images are refused with the way to go.
#[test]
fn declared_tasks_predict_by_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RunConfig::from_toml(
        r#"
        [data]
        kind = "table"
        features = ["x", "y", "z"]

        [model]
        kind = "mlp"
        in_features = 3
        hidden = [8]

        [[task]]
        name = "price"
        kind = "regression"
        columns = ["a", "b"]

        [[task]]
        name = "churn"
        kind = "binary"

        [[task]]
        name = "plan"
        kind = "class"
        classes = 3
        "#,
        "t.toml",
    )
    .unwrap();
    save(&cfg, tmp.path());
    let p = Predictor::load(tmp.path(), &Device::Cpu).unwrap();
    let rows: Vec<Image> = (0..4)
        .map(|i| Image::features(vec![i as f32 * 0.5 - 1.0, 0.25, -(i as f32)]))
        .collect();
    let preds = p.predict_inputs(&rows).unwrap();
    assert_eq!(preds.len(), 4);

    let pixels: Vec<f32> = rows.iter().flat_map(|r| r.pixels.clone()).collect();
    let x = Tensor::from_vec(pixels, (4, 3, 1, 1), &Device::Cpu).unwrap();
    let out = p.net().forward_t(&x, false).unwrap();
    let price = out.predictions["price"].to_vec2::<f32>().unwrap();
    let churn = out.predictions["churn"].to_vec2::<f32>().unwrap();
    for (i, pred) in preds.iter().enumerate() {
        assert!(pred.landmarks.is_none());
        assert_eq!(pred.values["price"], price[i]);
        let c = &pred.classes["churn"];
        let q = 1.0 / (1.0 + (-churn[i][0]).exp());
        assert!((c.probabilities[1] - q).abs() < 1e-6);
        assert!((c.probabilities[0] + c.probabilities[1] - 1.0).abs() < 1e-6);
        assert_eq!(c.class, u32::from(churn[i][0] > 0.0));
        let plan = &pred.classes["plan"];
        assert_eq!(plan.probabilities.len(), 3);
        assert!((plan.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let json = serde_json::to_value(&preds[0]).unwrap();
    assert_eq!(json["values"]["price"].as_array().map(Vec::len), Some(2));
    assert!(json.get("points").is_none());

    // A row of the wrong width names the input and the shape the model reads.
    let err = p
        .predict_inputs(&[Image::features(vec![0.0; 2])])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input 0") && err.contains("[3, 1, 1]"),
        "{err}"
    );
    // Face images on a table model: a clear error, not a shape failure inside the network.
    let err = p.predict(&[Image::new(40, 40)]).unwrap_err().to_string();
    assert!(
        err.contains("3 features") && err.contains("predict_inputs"),
        "{err}"
    );
}

/// An ensemble scored on validation faces needs one train/validation split: members of other
/// seeds are refused unless they share `data.split_seed`, which fixes the split whatever the
/// run's seed.
#[test]
fn ensemble_members_must_share_their_validation_split() {
    let tmp = tempfile::tempdir().unwrap();
    let member = |seed: u64, split_seed: Option<u64>, name: &str| {
        let mut cfg = RunConfig::default();
        cfg.train.seed = seed;
        cfg.data.split_seed = split_seed;
        let dir = tmp.path().join(name);
        save(&cfg, &dir);
        dir
    };
    let a = member(7, None, "a");
    let b = member(8, None, "b");
    let c = member(8, Some(7), "c");
    let one = Predictor::load_ensemble(&[&a], &Device::Cpu).unwrap();
    assert!(one.check_one_split().is_ok());
    let shared = Predictor::load_ensemble(&[&a, &c], &Device::Cpu).unwrap();
    assert!(shared.check_one_split().is_ok());
    let err = Predictor::load_ensemble(&[&a, &b], &Device::Cpu)
        .unwrap()
        .check_one_split()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data.split_seed") && err.contains("seed 8"),
        "{err}"
    );

    // the split of a table without a split column follows data.split_seed, not train.seed
    let csv = tmp.path().join("t.csv");
    let mut text = String::from("x,y\n");
    for i in 0..40 {
        text.push_str(&format!("{i},{}\n", i % 3));
    }
    std::fs::write(&csv, text).unwrap();
    let table = |seed: u64, split_seed: Option<u64>| {
        let mut cfg = RunConfig::from_toml(
            r#"
            [data]
            kind = "table"
            features = ["x"]
            val_fraction = 0.25
            [model]
            kind = "mlp"
            in_features = 1
            hidden = [4]
            [[task]]
            name = "y"
            kind = "class"
            classes = 3
            "#,
            "t.toml",
        )
        .unwrap();
        cfg.train.seed = seed;
        cfg.data.split_seed = split_seed;
        let data = tandem::run::RunData::table(&cfg, &csv, seed).unwrap();
        (0..data.val.len())
            .map(|i| data.val.get(i).unwrap().image.pixels[0])
            .collect::<Vec<f32>>()
    };
    assert_eq!(table(7, None), table(8, Some(7)));
    assert_ne!(table(7, None), table(8, None));
}
