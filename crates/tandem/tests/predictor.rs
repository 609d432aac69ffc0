//! `Predictor`: a checkpoint folder alone rebuilds the network, and predictions are the
//! network's outputs mapped to image pixels.
#![allow(clippy::unwrap_used)]
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use tandem::data::{Dataset, SynthConfig, SynthFaces};
use tandem::tensor::checkpoint::{self, CheckpointMeta};
use tandem::train::WeightingConfig;
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
