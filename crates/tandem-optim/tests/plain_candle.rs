//! A plain candle model (`candle_nn::Linear` layers), this crate's only dependencies, trained
//! with uncertainty weighting: the losses fall and the learned log-variances move the way the
//! tasks' noise says they should.
#[allow(dead_code)]
#[path = "../examples/plain_candle.rs"]
mod example;

#[test]
fn uncertainty_weighting_trains_a_plain_candle_model() -> candle_core::Result<()> {
    let out = example::train(400)?;
    let (s_clean, s_noisy) = (out.log_variances["clean"], out.log_variances["noisy"]);
    // Both tasks learn.
    assert!(
        out.last["clean"] < 0.2 * out.first["clean"],
        "clean loss {} → {}",
        out.first["clean"],
        out.last["clean"]
    );
    assert!(
        out.last["noisy"] < out.first["noisy"],
        "noisy loss {} → {}",
        out.first["noisy"],
        out.last["noisy"]
    );
    // s_t moves towards log MSE_t: far below 0 for the clean task (its noise variance is
    // 0.0025), near 0 for the noisy one (variance 1); from s = 0 both started equal.
    assert!(s_clean < -2.0, "s_clean = {s_clean}");
    assert!(s_noisy > -0.5, "s_noisy = {s_noisy}");
    assert!(
        out.weights["clean"] > 5.0 * out.weights["noisy"],
        "{:?}",
        out.weights
    );
    Ok(())
}
