//! Dynamic Weight Average (Liu, Johns & Davison 2019, "End-to-End Multi-Task Learning with
//! Attention").
//!
//! The weight of task `k` in epoch `e` follows the rate at which its training loss fell over
//! the two previous epochs:
//! ```text
//! w_k = L_k(e−1) / L_k(e−2),   λ_k(e) = K · exp(w_k / T) / Σ_i exp(w_i / T)
//! ```
//! with `K` the number of tasks in the objective, `T` a temperature (2 in the paper; larger is
//! more uniform) and `λ_k = 1` in the first two epochs. `L_k(e)` is the task's mean unweighted
//! training loss in epoch `e` (from [`Weighting::end_epoch`]); a task without both epochs' losses
//! gets `w_k = 1`.
use super::{weighted_sum, StepContext, Update, Weighting};
use crate::state;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskMap;

/// The name of this state in errors.
const STATE: &str = "weighting state (dwa)";

/// Dynamic Weight Average.
#[derive(Debug, Clone)]
pub struct Dwa {
    temperature: f64,
    state: DwaState,
}

/// The training losses DWA remembers: the last two epochs', oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct DwaState {
    history: Vec<TaskMap<f64>>,
}

impl Default for Dwa {
    fn default() -> Self {
        Self::new(2.0)
    }
}

impl Dwa {
    /// DWA with temperature `T` (the paper uses 2).
    pub fn new(temperature: f64) -> Self {
        Self {
            temperature,
            state: DwaState::default(),
        }
    }

    /// The weights `λ_k` for the tasks of `tasks` given the remembered losses.
    pub fn weights_for<'a>(&self, tasks: impl IntoIterator<Item = &'a str>) -> TaskMap<f64> {
        let names: Vec<&str> = tasks.into_iter().collect();
        let [prev2, prev1] = match self.state.history.as_slice() {
            [a, b] => [a, b],
            _ => return names.iter().map(|n| (*n, 1.0)).collect(),
        };
        let rates: Vec<f64> = names
            .iter()
            .map(|n| match (prev1.get(n), prev2.get(n)) {
                (Some(l1), Some(l2)) if *l2 > 0.0 && l1.is_finite() && l2.is_finite() => l1 / l2,
                _ => 1.0,
            })
            .collect();
        // Softmax with the maximum subtracted, for range safety; the result is the same.
        let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = rates
            .iter()
            .map(|w| ((w - max) / self.temperature).exp())
            .collect();
        let sum: f64 = exps.iter().sum();
        let k = names.len() as f64;
        names
            .iter()
            .zip(exps)
            .map(|(n, e)| (*n, k * e / sum))
            .collect()
    }
}

impl Weighting for Dwa {
    fn name(&self) -> &str {
        "dwa"
    }

    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let weights = self.weights_for(losses.keys());
        let grads = ctx.backward(weighted_sum(losses, &weights)?)?;
        Ok(Update { grads, weights })
    }

    fn end_epoch(&mut self, _epoch: usize, train_losses: &TaskMap<f64>) -> candle_core::Result<()> {
        self.state.history.push(train_losses.clone());
        if self.state.history.len() > 2 {
            self.state.history.remove(0);
        }
        Ok(())
    }

    fn state(&self) -> crate::Result<serde_json::Value> {
        state::to_json(STATE, &self.state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> crate::Result<()> {
        self.state = state::from_json(STATE, state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Losses a: 1.0 → 0.5, b: 2.0 → 1.8, T = 2, by hand (and NumPy):
    /// ```python
    /// w = np.array([0.5 / 1.0, 1.8 / 2.0]); e = np.exp(w / 2); 2 * e / e.sum()
    /// # array([0.90033201, 1.09966799])
    /// ```
    #[test]
    fn weights_from_a_loss_history() -> candle_core::Result<()> {
        let mut d = Dwa::default();
        assert_eq!(
            d.weights_for(["a", "b"]),
            TaskMap::new().with("a", 1.0).with("b", 1.0)
        );
        d.end_epoch(0, &TaskMap::new().with("a", 1.0).with("b", 2.0))?;
        assert_eq!(d.weights_for(["a", "b"])["b"], 1.0);
        d.end_epoch(1, &TaskMap::new().with("a", 0.5).with("b", 1.8))?;
        let w = d.weights_for(["a", "b"]);
        assert!((w["a"] - 0.900_332_01).abs() < 1e-8, "{w:?}");
        assert!((w["b"] - 1.099_667_99).abs() < 1e-8, "{w:?}");
        let mut restored = Dwa::default();
        restored
            .load_state(
                &d.state()
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?,
            )
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        assert_eq!(restored.weights_for(["a", "b"]), w);
        Ok(())
    }
}
