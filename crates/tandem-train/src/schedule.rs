//! Learning-rate schedules.
//!
//! With base rate `η`, total steps `T` and warm-up steps `W`:
//! - `Constant`: `η_t = η`.
//! - `Cosine`: `η_t = η · t/W` for `t < W`, then
//!   `η_t = η_min + ½ (η − η_min)(1 + cos(π (t − W)/(T − W)))`, `η_min = min_factor · η`.
use serde::{Deserialize, Serialize};

/// A learning-rate schedule over optimizer steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Linear warm-up then cosine decay.
    Cosine {
        /// Warm-up length in epochs.
        warmup_epochs: f64,
        /// Final rate as a fraction of the base rate.
        min_factor: f64,
    },
}

impl LrSchedule {
    /// The rate at step `t` of `total` (`steps_per_epoch` converts warm-up epochs to steps).
    pub fn rate(&self, base: f64, t: u64, total: u64, steps_per_epoch: u64) -> f64 {
        match *self {
            Self::Constant => base,
            Self::Cosine {
                warmup_epochs,
                min_factor,
            } => {
                let w = (warmup_epochs * steps_per_epoch as f64).round() as u64;
                if t < w {
                    return base * (t + 1) as f64 / w as f64;
                }
                let span = total.saturating_sub(w).max(1) as f64;
                let p = ((t - w) as f64 / span).min(1.0);
                let min = min_factor * base;
                min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * p).cos())
            }
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
}
