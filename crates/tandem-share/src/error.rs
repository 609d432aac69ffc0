//! The error type of `tandem-share`.

/// Errors raised by `tandem-share`.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error building layers.
    #[error(transparent)]
    Layer(#[from] tandem_layers::LayerError),
    /// A configuration that cannot build a network.
    #[error("invalid config: {0}")]
    Config(String),
    /// A value of the sharing configuration out of its range, by key (`experts`, `k`, …).
    #[error("{key}: {reason}")]
    Key {
        /// The key inside the sharing table, e.g. `experts`.
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl ShareError {
    /// A [`ShareError::Key`] for `key`.
    pub fn key(key: &str, reason: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias of `tandem-share`.
pub type Result<T> = std::result::Result<T, ShareError>;
