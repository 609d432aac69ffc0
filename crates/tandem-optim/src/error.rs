//! The error type of `tandem-optim`.

/// Errors raised by `tandem-optim`.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An impossible configuration value, or a saved state that does not fit.
    #[error("invalid config: {field}: {reason}")]
    Config {
        /// The offending key (e.g. `optimizer.lr`, `weighting state (dwa)`).
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

/// Result alias of `tandem-optim`.
pub type Result<T> = std::result::Result<T, OptimError>;

impl OptimError {
    /// A [`OptimError::Config`] naming `field`.
    pub fn config(field: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
