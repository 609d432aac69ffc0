//! The error type of `tandem-layers`.

/// Errors raised by `tandem-layers`.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A configuration that cannot build a network.
    #[error("invalid config: {field}: {reason}")]
    Config {
        /// The offending field.
        field: String,
        /// Why, and what is allowed.
        reason: String,
    },
}

/// Result alias of `tandem-layers`.
pub type Result<T> = std::result::Result<T, LayerError>;
