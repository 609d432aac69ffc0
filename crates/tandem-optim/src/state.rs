//! State as plain JSON: the one way weightings, stoppers and optimizers save and restore what
//! they remember beyond the model's variables (for checkpoints and exact resume).
//!
//! Both directions return errors naming what failed ([`OptimError::Config`] with the state's
//! name as the field); nothing is silently replaced by `null` or a default.
//!
//! ```
//! use tandem_optim::state;
//! let v = state::to_json("stopper state (patience)", &vec![1.5f64, 2.0])?;
//! let back: Vec<f64> = state::from_json("stopper state (patience)", &v)?;
//! assert_eq!(back, [1.5, 2.0]);
//! assert!(state::from_json::<Vec<f64>>("stopper state (patience)", &serde_json::json!("x")).is_err());
//! # Ok::<(), tandem_optim::OptimError>(())
//! ```
use crate::{OptimError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Serialises the state `value` of `what` (e.g. `weighting state (dwa)`) to JSON.
pub fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| OptimError::config(what, e.to_string()))
}

/// Reads the state of `what` back from JSON written by [`to_json`].
pub fn from_json<T: DeserializeOwned>(what: &str, state: &Value) -> Result<T> {
    T::deserialize(state).map_err(|e| OptimError::config(what, e.to_string()))
}
