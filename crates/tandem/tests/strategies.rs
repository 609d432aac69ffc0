//! Every strategy trains through the same `Trainer`, with no strategy-specific code: the
//! `strategies` example, run small.
#![allow(clippy::unwrap_used)] // test helpers may unwrap
#[allow(dead_code)]
#[path = "../examples/strategies.rs"]
mod example;

use tandem_layers::TcdcnConfig;

#[test]
fn every_strategy_trains_through_the_trainer() {
    let trunk = TcdcnConfig {
        channels: [4, 8, 8, 8],
        feature_dim: 16,
        ..Default::default()
    };
    for sharing in example::strategies() {
        let report = example::train(&sharing, &trunk, 3, 128, 0.3, 5).unwrap();
        let h = &report.history.epochs;
        assert_eq!(h.len(), 3);
        for r in h {
            for (task, loss) in r.train_loss.iter() {
                assert!(loss.is_finite(), "{}: {task} loss {loss}", sharing.key());
            }
        }
        let (first, last) = (h[0].train_loss["landmarks"], h[2].train_loss["landmarks"]);
        assert!(
            last < first,
            "{}: landmark loss {first} -> {last}",
            sharing.key()
        );
        assert!(report.best["landmarks"]["nme"].is_finite());
    }
}
