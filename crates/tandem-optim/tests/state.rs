//! Every piece with state saves it as JSON and restores it exactly, and a state that does not
//! fit is an error naming whose state it is (never silently replaced by a default).
#![allow(clippy::unwrap_used)]
use candle_core::{Device, Var};
use serde_json::json;
use tandem_optim::{
    AdamW, AdamWConfig, Dwa, GradNorm, Observation, Optimizer, PatienceStopper, Sgd, SgdConfig,
    TaskStopper, TcdcnStopper, Weighting,
};
use tandem_tensor::TaskMap;

fn obs(epoch: usize, train_loss: f64) -> Observation {
    Observation {
        epoch,
        train_loss,
        val_loss: 1.0,
        val_metric: Some(2.0 - train_loss),
        weight: 0.5,
    }
}

#[test]
fn stoppers_round_trip_and_reject_a_foreign_state() {
    let mut tcdcn = TcdcnStopper::new(2, 1.0);
    let mut patience = PatienceStopper::new(3, 0.0);
    for (e, l) in [1.0, 0.7, 0.6].into_iter().enumerate() {
        tcdcn.update(&obs(e, l));
        patience.update(&obs(e, l));
    }
    let mut t2 = TcdcnStopper::new(2, 1.0);
    t2.load_state(&tcdcn.state().unwrap()).unwrap();
    assert_eq!(t2, tcdcn);
    let mut p2 = PatienceStopper::new(3, 0.0);
    p2.load_state(&patience.state().unwrap()).unwrap();
    assert_eq!(p2, patience);

    let bad = json!({"nothing": "here"});
    let e = t2.load_state(&bad).unwrap_err().to_string();
    assert!(e.contains("stopper state (tcdcn)"), "{e}");
    let e = p2.load_state(&json!("x")).unwrap_err().to_string();
    assert!(e.contains("stopper state (patience)"), "{e}");
}

#[test]
fn weightings_round_trip_and_reject_a_foreign_state() {
    let mut dwa = Dwa::new(2.0);
    dwa.end_epoch(0, &TaskMap::new().with("a", 1.0)).unwrap();
    let mut d2 = Dwa::new(2.0);
    d2.load_state(&dwa.state().unwrap()).unwrap();
    assert_eq!(d2.state().unwrap(), dwa.state().unwrap());
    let e = d2.load_state(&json!(null)).unwrap_err().to_string();
    assert!(e.contains("weighting state (dwa)"), "{e}");

    let mut gn = GradNorm::default();
    let e = gn
        .load_state(&json!({"weights": 3}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("weighting state (gradnorm)"), "{e}");
    gn.load_state(&GradNorm::default().state().unwrap())
        .unwrap();
}

#[test]
fn optimizers_are_one_trait_and_refuse_each_other_s_state() {
    let dev = Device::Cpu;
    let p = Var::new(&[1.0f32, -2.0], &dev).unwrap();
    let vars = vec![("p".to_string(), p.clone())];
    let mut opts: Vec<Box<dyn Optimizer>> = vec![
        Box::new(AdamW::new(AdamWConfig::default())),
        Box::new(Sgd::new(SgdConfig::default())),
    ];
    for opt in &mut opts {
        let loss = p.as_tensor().sqr().unwrap().sum_all().unwrap();
        opt.step(&vars, &loss.backward().unwrap(), 0.01).unwrap();
    }
    let (adamw, sgd) = (opts[0].state().unwrap(), opts[1].state().unwrap());
    assert_eq!(adamw["kind"], "adamw");
    assert_eq!(sgd["kind"], "sgd");
    let e = opts[0].load_state(&sgd, &vars).unwrap_err().to_string();
    assert!(e.contains("different kind of optimizer"), "{e}");
    opts[1].load_state(&sgd, &vars).unwrap();
    assert_eq!(opts[1].state().unwrap(), sgd);
    let e = opts[1]
        .load_state(&json!({"kind": "sgd", "buffers": {"q": [1.0]}}), &vars)
        .unwrap_err()
        .to_string();
    assert!(e.contains("q"), "{e}");
}
