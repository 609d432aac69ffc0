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
}

/// Result alias of `tandem-share`.
pub type Result<T> = std::result::Result<T, ShareError>;
