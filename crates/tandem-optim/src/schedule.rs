//! Learning-rate schedules over optimizer steps (candle ships none).
//!
//! With base rate `η`, step `t` (0-based), total steps `T`, steps per epoch `S` and warm-up
//! steps `W = round(warmup_epochs · S)`, every schedule but `Constant` starts with a linear
//! warm-up `η_t = η · (t + 1)/W` for `t < W`, then:
//! - `Constant`: `η_t = η`.
//! - `Warmup`: `η_t = η`.
//! - `Step`: `η_t = η · γ^⌊t / (every_epochs · S)⌋` (PyTorch's `StepLR`, counted from step 0).
//! - `Cosine`: `η_t = η_min + ½ (η − η_min)(1 + cos(π (t − W)/(T − W)))`, `η_min = min_factor · η`.
use serde::{Deserialize, Serialize};

/// A learning-rate schedule over optimizer steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Linear warm-up, then the base rate.
    Warmup {
        /// Warm-up length in epochs.
        warmup_epochs: f64,
    },
    /// Multiply the rate by `gamma` every `every_epochs` epochs.
    Step {
        /// Epochs between decays (≥ 1).
        every_epochs: usize,
        /// Decay factor `γ`. Default 0.1.
        #[serde(default = "default_gamma")]
        gamma: f64,
        /// Warm-up length in epochs. Default 0.
        #[serde(default)]
        warmup_epochs: f64,
    },
    /// Linear warm-up then cosine decay.
    Cosine {
        /// Warm-up length in epochs.
        warmup_epochs: f64,
        /// Final rate as a fraction of the base rate.
        min_factor: f64,
    },
}

fn default_gamma() -> f64 {
    0.1
}

impl LrSchedule {
    /// The rate at step `t` of `total` (`steps_per_epoch` converts epochs to steps).
    pub fn rate(&self, base: f64, t: u64, total: u64, steps_per_epoch: u64) -> f64 {
        let warmup = |epochs: f64| (epochs * steps_per_epoch as f64).round() as u64;
        let w = match *self {
            Self::Constant => 0,
            Self::Warmup { warmup_epochs }
            | Self::Step { warmup_epochs, .. }
            | Self::Cosine { warmup_epochs, .. } => warmup(warmup_epochs),
        };
        if t < w {
            return base * (t + 1) as f64 / w as f64;
        }
        match *self {
            Self::Constant | Self::Warmup { .. } => base,
            Self::Step {
                every_epochs,
                gamma,
                ..
            } => {
                let period = (every_epochs as u64 * steps_per_epoch).max(1);
                base * gamma.powi(i32::try_from(t / period).unwrap_or(i32::MAX))
            }
            Self::Cosine { min_factor, .. } => {
                let span = total.saturating_sub(w).max(1) as f64;
                let p = ((t - w) as f64 / span).min(1.0);
                let min = min_factor * base;
                min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }

    /// Checks every value, naming the offending key.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |reason: &str| Err(crate::OptimError::config("schedule", reason));
        match *self {
            Self::Constant => Ok(()),
            Self::Warmup { warmup_epochs }
                if !(warmup_epochs >= 0.0 && warmup_epochs.is_finite()) =>
            {
                bad("warmup needs warmup_epochs ≥ 0")
            }
            Self::Step {
                every_epochs,
                gamma,
                warmup_epochs,
            } if every_epochs == 0
                || !(gamma.is_finite() && gamma > 0.0)
                || !(warmup_epochs.is_finite() && warmup_epochs >= 0.0) =>
            {
                bad("step needs every_epochs ≥ 1, gamma > 0 and warmup_epochs ≥ 0")
            }
            Self::Cosine {
                warmup_epochs,
                min_factor,
            } if !(warmup_epochs >= 0.0 && (0.0..=1.0).contains(&min_factor)) => {
                bad("cosine needs warmup_epochs ≥ 0 and min_factor in [0, 1]")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_endpoints() {
        let s = LrSchedule::Cosine {
            warmup_epochs: 1.0,
            min_factor: 0.1,
        };
        assert!((s.rate(1.0, 0, 100, 10) - 0.1).abs() < 1e-12);
        assert!((s.rate(1.0, 10, 100, 10) - 1.0).abs() < 1e-12);
        assert!((s.rate(1.0, 55, 100, 10) - 0.55).abs() < 1e-12);
        assert!((s.rate(1.0, 100, 100, 10) - 0.1).abs() < 1e-12);
    }

    /// PyTorch's `StepLR(opt, step_size=2 * 10, gamma=0.5)` gives the same rates.
    #[test]
    fn step_decays_every_period_after_warmup() {
        let s = LrSchedule::Step {
            every_epochs: 2,
            gamma: 0.5,
            warmup_epochs: 0.5,
        };
        assert!((s.rate(1.0, 0, 100, 10) - 0.2).abs() < 1e-12);
        assert!((s.rate(1.0, 4, 100, 10) - 1.0).abs() < 1e-12);
        assert!((s.rate(1.0, 19, 100, 10) - 1.0).abs() < 1e-12);
        assert!((s.rate(1.0, 20, 100, 10) - 0.5).abs() < 1e-12);
        assert!((s.rate(1.0, 45, 100, 10) - 0.25).abs() < 1e-12);
        let w = LrSchedule::Warmup { warmup_epochs: 1.0 };
        assert!((w.rate(2.0, 4, 100, 10) - 1.0).abs() < 1e-12);
        assert!((w.rate(2.0, 50, 100, 10) - 2.0).abs() < 1e-12);
        let parsed: LrSchedule =
            serde_json::from_str(r#"{"kind":"step","every_epochs":3}"#).unwrap_or_default();
        assert_eq!(
            parsed,
            LrSchedule::Step {
                every_epochs: 3,
                gamma: 0.1,
                warmup_epochs: 0.0
            }
        );
    }
}
