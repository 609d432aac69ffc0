//! The trainer with every weighting, task-wise early stopping and partial labels.
#![allow(clippy::unwrap_used)]
mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::sync::{Arc, Mutex};
use tandem_optim::{
    Equal, Observation, OptimizerConfig, SgdConfig, StepContext, StopperConfig, TaskStopper,
    Update, Weighting, WeightingConfig,
};
use tandem_tensor::TaskMap;
use tandem_train::{TrainConfig, Trainer};

fn config(epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig {
        epochs,
        batch_size: 16,
        seed: 3,
        ..Default::default()
    };
    cfg.optimizer.set_lr(3e-3);
    cfg
}

#[test]
fn every_weighting_trains_through_the_same_loop() {
    for json in [
        r#"{"kind":"equal"}"#,
        r#"{"kind":"static","weights":{"half":0.1}}"#,
        r#"{"kind":"uncertainty"}"#,
        r#"{"kind":"dwa"}"#,
        r#"{"kind":"gradnorm","alpha":1.5,"lr":0.01}"#,
        r#"{"kind":"pcgrad"}"#,
    ] {
        let wc: WeightingConfig = serde_json::from_str(json).unwrap();
        let s = common::setup(3, 96, |_| false);
        let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
        let weighting = wc.build(&s.tasks, vb).unwrap();
        let report = Trainer::new(config(3))
            .weighting_boxed(weighting)
            .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
            .unwrap();
        let h = &report.history.epochs;
        assert_eq!(h.len(), 3, "{json}");
        for r in h {
            assert!(
                r.train_loss.values().all(|l| l.is_finite()),
                "{json}: {r:?}"
            );
            assert_eq!(r.weights.len(), 2, "{json}: {r:?}");
        }
        match wc.kind() {
            "gradnorm" => {
                let w = &h[2].weights;
                // Mean weights over an epoch of weights that each sum to 2.
                assert!((w["landmarks"] + w["half"] - 2.0).abs() < 1e-9, "{w:?}");
                assert!(w["landmarks"] != 1.0, "{w:?}");
            }
            "uncertainty" => {
                let s_half = common::snapshot(&s.vars, "weighting.s.half");
                assert_eq!(s_half.len(), 1);
                assert!(s_half[0].1[0] != 0.0, "s did not move: {s_half:?}");
                assert!((h[0].weights["landmarks"] - 0.5).abs() < 0.05);
            }
            "dwa" => {
                assert_eq!(h[1].weights["half"], 1.0);
                assert!(h[2].weights["half"] != 1.0);
                assert!((h[2].weights["half"] + h[2].weights["landmarks"] - 2.0).abs() < 1e-9);
            }
            _ => {}
        }
    }
}

#[test]
fn pcgrad_and_gradnorm_repeat_bit_for_bit() {
    for json in [r#"{"kind":"pcgrad"}"#, r#"{"kind":"gradnorm"}"#] {
        let run = || {
            let s = common::setup(5, 64, |_| false);
            let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
            let w = serde_json::from_str::<WeightingConfig>(json)
                .unwrap()
                .build(&s.tasks, vb)
                .unwrap();
            let r = Trainer::new(config(2))
                .weighting_boxed(w)
                .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
                .unwrap();
            serde_json::to_string(&r).unwrap()
        };
        assert_eq!(run(), run(), "{json}");
    }
}

#[test]
fn sgd_with_nesterov_trains() {
    let s = common::setup(3, 96, |_| false);
    let mut cfg = config(3);
    cfg.optimizer = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.003,
        nesterov: true,
        ..Default::default()
    });
    let r = Trainer::new(cfg)
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    let h = &r.history.epochs;
    assert!(
        h[2].train_loss["landmarks"] < h[0].train_loss["landmarks"],
        "{h:?}"
    );
}

/// Stops whichever task it watches at a fixed epoch.
struct StopAt(usize);

impl TaskStopper for StopAt {
    fn name(&self) -> &str {
        "stop_at"
    }
    fn update(&mut self, obs: &Observation) -> bool {
        obs.epoch == self.0
    }
}

#[test]
fn a_stopped_task_leaves_the_objective_and_the_optimizer() {
    let s = common::setup(3, 96, |_| false);
    let vars = s.vars.clone();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let r = Trainer::new(config(4))
        .stopper_with(|_| Box::new(StopAt(1)))
        .on_epoch(move |_| {
            seen.lock()
                .unwrap()
                .push(common::snapshot(&vars, "heads.half"))
        })
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    let h = &r.history.epochs;
    // The main task has no stopper; the auxiliary one stops after epoch 1.
    assert_eq!(r.history.stops, TaskMap::new().with("half", 1));
    assert_eq!(h[1].active, ["landmarks", "half"]);
    assert_eq!(h[2].active, ["landmarks"]);
    assert!(!h[2].train_loss.contains("half") && !h[2].weights.contains("half"));
    assert!(
        h[3].val_metrics.contains("half"),
        "stopped tasks are still evaluated"
    );
    let heads = heads.lock().unwrap();
    assert_ne!(heads[0], heads[1]);
    assert_eq!(
        heads[1], heads[2],
        "no gradient, momentum or weight decay after the stop"
    );
    assert_eq!(heads[2], heads[3]);
}

#[test]
fn stopper_configs_run_and_never_stop_the_main_task() {
    for (cfg, stops) in [
        (StopperConfig::Off, false),
        (
            StopperConfig::Patience {
                patience: 1,
                min_delta: 1e9,
            },
            true,
        ),
        (
            StopperConfig::Tcdcn {
                k: 1,
                epsilon: -1e9,
            },
            true,
        ),
    ] {
        let s = common::setup(3, 64, |_| false);
        let r = Trainer::new(config(4))
            .stopper(cfg)
            .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
            .unwrap();
        assert!(!r.history.stops.contains("landmarks"));
        assert_eq!(r.history.stops.contains("half"), stops, "{cfg:?}");
        assert!(r
            .history
            .epochs
            .iter()
            .all(|e| e.active.iter().any(|a| a == "landmarks")));
    }
}

/// Passes to [`Equal`], recording the tasks of every step.
struct Recording(Arc<Mutex<Vec<Vec<String>>>>);

impl Weighting for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        self.0
            .lock()
            .unwrap()
            .push(losses.keys().map(String::from).collect());
        Equal::new().backward(losses, ctx)
    }
}

#[test]
fn a_task_without_labels_in_a_batch_contributes_nothing() {
    // Every `half` label missing: the task never enters the objective (its all-missing targets
    // would not even have the right shape for a loss).
    let steps = Arc::new(Mutex::new(Vec::new()));
    let s = common::setup(3, 64, |_| true);
    let r = Trainer::new(config(2))
        .weighting(Recording(steps.clone()))
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    let steps = steps.lock().unwrap();
    assert!(!steps.is_empty());
    assert!(steps.iter().all(|t| t == &["landmarks"]), "{steps:?}");
    assert!(!r.history.epochs[1].train_loss.contains("half"));

    // Labels on a quarter of the samples: some batches have the task, each step's loss only
    // counts labelled samples, training is finite.
    let steps = Arc::new(Mutex::new(Vec::new()));
    let s = common::setup(3, 64, |i| i % 4 != 0);
    let r = Trainer::new(config(2))
        .weighting(Recording(steps.clone()))
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    assert!(steps.lock().unwrap().iter().any(|t| t.len() == 2));
    assert!(r.history.epochs[1].train_loss["half"].is_finite());
}

#[test]
fn keep_best_holds_the_report_s_best_epoch() {
    let s = common::setup(3, 96, |_| false);
    let mut trainer = Trainer::new(config(4)).keep_best(true);
    let r = trainer
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    let last = common::snapshot(&s.vars, "");
    let best = trainer.best().unwrap();
    assert_eq!(best.epoch, r.best_epoch);
    assert_eq!(
        Some(best.metric),
        r.history.epochs[r.best_epoch].val_metric("landmarks", "nme")
    );
    best.restore(&s.vars).unwrap();
    let restored = common::snapshot(&s.vars, "");
    let copied: Vec<(String, Vec<f32>)> = best
        .vars
        .iter()
        .map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    assert_eq!(restored, copied);
    if r.best_epoch == 3 {
        assert_eq!(restored, last);
    } else {
        assert_ne!(restored, last);
    }

    // Without the policy nothing is kept.
    let s = common::setup(3, 96, |_| false);
    let mut trainer = Trainer::new(config(1));
    trainer
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
    assert!(trainer.best().is_none());
}

/// Every method of the catalogue trains through the trainer's loop with its defaults, and every
/// gradient method also in the representation mode, with finite losses and one weight per task.
#[test]
fn every_catalogue_method_trains_on_parameters_and_representation() {
    for kind in WeightingConfig::kinds() {
        let mut forms = vec![serde_json::json!({ "kind": kind })];
        let rep = serde_json::json!({ "kind": kind, "on": "representation" });
        if serde_json::from_value::<WeightingConfig>(rep.clone()).is_ok() {
            forms.push(rep);
        }
        for form in forms {
            let wc: WeightingConfig = serde_json::from_value(form.clone()).unwrap();
            let s = common::setup(3, 48, |_| false);
            let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
            let weighting = wc.build(&s.tasks, vb).unwrap();
            let before = common::snapshot(&s.vars, "trunk");
            let report = Trainer::new(config(2))
                .weighting_boxed(weighting)
                .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
                .unwrap_or_else(|e| panic!("{form}: {e}"));
            for r in &report.history.epochs {
                assert!(
                    r.train_loss.values().all(|l| l.is_finite()),
                    "{form}: {r:?}"
                );
                assert_eq!(r.weights.len(), 2, "{form}: {r:?}");
            }
            assert_ne!(
                before,
                common::snapshot(&s.vars, "trunk"),
                "{form}: trunk did not move"
            );
        }
    }
}

/// In the representation mode, `sum` runs the per-task backward passes on the cut
/// representation and one pass of `z · Σ_t ∂L_t/∂z` through the trunk: by the chain rule the
/// same update as `equal`'s single backward pass of `Σ_t L_t`.
#[test]
fn representation_sum_equals_equal() {
    let train = |json: &str| {
        let s = common::setup(4, 48, |_| false);
        let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
        let w = serde_json::from_str::<WeightingConfig>(json)
            .unwrap()
            .build(&s.tasks, vb)
            .unwrap();
        let mut cfg = config(1);
        cfg.optimizer = OptimizerConfig::Sgd(SgdConfig::default());
        cfg.optimizer.set_lr(0.05);
        Trainer::new(cfg)
            .weighting_boxed(w)
            .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
            .unwrap();
        common::snapshot(&s.vars, "")
    };
    let equal = train(r#"{"kind":"equal"}"#);
    let rep = train(r#"{"kind":"sum","on":"representation"}"#);
    let params = train(r#"{"kind":"sum"}"#);
    let initial = {
        let s = common::setup(4, 48, |_| false);
        common::snapshot(&s.vars, "")
    };
    for (((name, e), (_, r)), ((_, p), (_, i))) in
        equal.iter().zip(&rep).zip(params.iter().zip(&initial))
    {
        for k in 0..e.len() {
            let moved = (e[k] - i[k]).abs().max(1e-6);
            assert!(
                (e[k] - r[k]).abs() <= 1e-3 * moved + 1e-7,
                "{name}[{k}]: {} vs {}",
                e[k],
                r[k]
            );
            assert!(
                (e[k] - p[k]).abs() <= 1e-3 * moved + 1e-7,
                "{name}[{k}]: {} vs {}",
                e[k],
                p[k]
            );
        }
    }
}

/// A network without one shared representation refuses `on = "representation"`, naming the key.
#[test]
fn representation_mode_needs_a_shared_representation() {
    struct NoSplit(tandem_share::HardSharing<tandem_layers::Tcdcn>);
    impl tandem_share::MultiTaskNet for NoSplit {
        fn forward_t(
            &self,
            x: &Tensor,
            train: bool,
        ) -> candle_core::Result<tandem_share::NetOutput> {
            self.0.forward_t(x, train)
        }
        fn param_groups(&self) -> tandem_share::ParamGroups {
            self.0.param_groups()
        }
    }
    let s = common::setup(3, 32, |_| false);
    let vb = VarBuilder::from_varmap(&s.vars, DType::F32, &Device::Cpu);
    let w = serde_json::from_str::<WeightingConfig>(r#"{"kind":"mgda","on":"representation"}"#)
        .unwrap()
        .build(&s.tasks, vb)
        .unwrap();
    let net = NoSplit(s.net);
    let err = Trainer::new(config(1))
        .weighting_boxed(w)
        .fit(&net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap_err()
        .to_string();
    assert!(err.contains("weighting.on"), "{err}");
}
