//! TCDCN's task-wise early stopping (Zhang, Luo, Loy & Tang 2014, "Facial Landmark Detection by
//! Deep Multi-task Learning", eq. 4).
//!
//! An auxiliary task `a` stops at epoch `t` when
//! ```text
//!        k · med_{j=t−k..t} E_tr(j)                E_val(t) − min_{j≤t} E_tr(j)
//! ─────────────────────────────────────────── · ──────────────────────────────── > ε
//!  Σ_{j=t−k..t} E_tr(j) − k · med_{j=t−k..t} E_tr(j)      λ_a · min_{j≤t} E_tr(j)
//! ```
//! The first factor measures the training trend over a window of `k + 1` epochs: about `k` when
//! the training loss has flattened, small while it still falls fast. The second is the
//! generalisation gap relative to the best training loss and to the task's weight `λ_a`, so a
//! lightly weighted task that overfits stops sooner. There is no stop before `k + 1` epochs have
//! been seen, while the first factor's denominator is ≤ 0, or while `λ_a · min E_tr ≤ 0`.
//! The median of an even number of values is the mean of the middle two.
use super::{Observation, TaskStopper};
use crate::state;
use serde::{Deserialize, Serialize};

/// The name of this state in errors.
const STATE: &str = "stopper state (tcdcn)";

/// The TCDCN criterion over a window of `k + 1` epochs, threshold `ε`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcdcnStopper {
    k: usize,
    epsilon: f64,
    memory: Memory,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Memory {
    /// `E_tr(j)` for every epoch seen.
    train: Vec<f64>,
    /// The criterion at the last epoch, when defined.
    last: Option<f64>,
}

impl Default for TcdcnStopper {
    /// `k = 5`, `ε = 1`.
    fn default() -> Self {
        Self::new(5, 1.0)
    }
}

impl TcdcnStopper {
    /// A stopper with window `k` (≥ 1) and threshold `ε`.
    pub fn new(k: usize, epsilon: f64) -> Self {
        Self {
            k: k.max(1),
            epsilon,
            memory: Memory::default(),
        }
    }

    /// The criterion's value at the last epoch, when it was defined.
    pub fn last_criterion(&self) -> Option<f64> {
        self.memory.last
    }

    /// The criterion for training losses `train` (every epoch so far, the last being `t`), the
    /// validation loss `val` at `t` and weight `λ_a`; `None` where it is undefined.
    pub fn criterion(k: usize, train: &[f64], val: f64, weight: f64) -> Option<f64> {
        let window = train.get(train.len().checked_sub(k + 1)?..)?;
        let mut sorted = window.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let med = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            0.5 * (sorted[mid - 1] + sorted[mid])
        };
        let kf = k as f64;
        let denom = window.iter().sum::<f64>() - kf * med;
        if denom.is_nan() || denom <= 0.0 {
            return None;
        }
        let min = train.iter().copied().fold(f64::INFINITY, f64::min);
        let scale = weight * min;
        if scale.is_nan() || scale <= 0.0 {
            return None;
        }
        let value = (kf * med / denom) * ((val - min) / scale);
        value.is_finite().then_some(value)
    }
}

impl TaskStopper for TcdcnStopper {
    fn name(&self) -> &str {
        "tcdcn"
    }

    fn update(&mut self, obs: &Observation) -> bool {
        self.memory.train.push(obs.train_loss);
        self.memory.last = Self::criterion(self.k, &self.memory.train, obs.val_loss, obs.weight);
        self.memory.last.is_some_and(|c| c > self.epsilon)
    }

    fn state(&self) -> crate::Result<serde_json::Value> {
        state::to_json(STATE, &self.memory)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> crate::Result<()> {
        self.memory = state::from_json(STATE, state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(epoch: usize, train_loss: f64, val_loss: f64) -> Observation {
        Observation {
            epoch,
            train_loss,
            val_loss,
            val_metric: None,
            weight: 0.5,
        }
    }

    /// A synthetic history, `k = 2`, `λ_a = 0.5`, checked by hand:
    ///
    /// | t | E_tr | E_val | window | med | Σ − k·med | factor 1 | min E_tr | factor 2 | criterion |
    /// |---|---|---|---|---|---|---|---|---|---|
    /// | 0 | 1.0 | 1.1 | — | | | | | | — |
    /// | 1 | 0.6 | 0.8 | — | | | | | | — |
    /// | 2 | 0.4 | 0.6 | 1, .6, .4 | .6 | 2 − 1.2 = .8 | 1.5 | .4 | .2/.2 = 1 | 1.5 |
    /// | 3 | 0.35 | 0.6 | .6, .4, .35 | .4 | 1.35 − .8 = .55 | 1.4545 | .35 | .25/.175 = 1.4286 | 2.0779 |
    ///
    /// So `ε = 2` stops the task at epoch 3 and `ε = 1` at epoch 2.
    #[test]
    fn stops_at_the_hand_computed_epoch() {
        let history = [(1.0, 1.1), (0.6, 0.8), (0.4, 0.6), (0.35, 0.6), (0.33, 0.7)];
        let mut s = TcdcnStopper::new(2, 2.0);
        let mut stopped = None;
        for (t, (tr, val)) in history.iter().enumerate() {
            if s.update(&obs(t, *tr, *val)) {
                stopped = Some(t);
                break;
            }
            if t == 2 {
                assert!((s.last_criterion().unwrap_or(0.0) - 1.5).abs() < 1e-12);
            }
        }
        assert_eq!(stopped, Some(3));
        assert!((s.last_criterion().unwrap_or(0.0) - (0.8 / 0.55) * (0.25 / 0.175)).abs() < 1e-12);

        // With ε = 1 the criterion 1.5 at t = 2 already stops.
        let mut s = TcdcnStopper::new(2, 1.0);
        let first = history
            .iter()
            .enumerate()
            .position(|(t, (tr, val))| s.update(&obs(t, *tr, *val)));
        assert_eq!(first, Some(2));
    }

    #[test]
    fn no_stop_before_the_window_fills_or_with_a_non_positive_denominator() {
        assert_eq!(
            TcdcnStopper::criterion(3, &[1.0, 0.5, 0.4], 10.0, 1.0),
            None
        );
        // Flat window: Σ − k·med = med > 0 → factor 1 = k.
        assert_eq!(
            TcdcnStopper::criterion(2, &[1.0, 1.0, 1.0], 2.0, 1.0),
            Some(2.0)
        );
        // A window whose sum is at most k·med (a single low outlier): undefined.
        assert_eq!(
            TcdcnStopper::criterion(2, &[1.0, 1.0, -1.5], 2.0, 1.0),
            None
        );
        // Weight 0 → undefined, no stop.
        assert_eq!(TcdcnStopper::criterion(2, &[1.0, 1.0, 1.0], 2.0, 0.0), None);
    }

    #[test]
    fn state_round_trips() -> crate::Result<()> {
        let mut s = TcdcnStopper::new(2, 2.0);
        s.update(&obs(0, 1.0, 1.1));
        s.update(&obs(1, 0.6, 0.8));
        let mut r = TcdcnStopper::new(2, 2.0);
        r.load_state(&s.state()?)?;
        assert_eq!(r, s);
        Ok(())
    }
}
