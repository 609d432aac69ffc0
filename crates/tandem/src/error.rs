//! The error type of the facade: any crate's error, or a configuration error.

/// Errors of the `tandem` facade.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// From tandem-tensor.
    #[error(transparent)]
    Tensor(#[from] tandem_tensor::TensorError),
    /// From tandem-layers.
    #[error(transparent)]
    Layer(#[from] tandem_layers::LayerError),
    /// From tandem-share.
    #[error(transparent)]
    Share(#[from] tandem_share::ShareError),
    /// From tandem-data.
    #[error(transparent)]
    Data(#[from] tandem_data::DataError),
    /// From tandem-optim (building a weighting, an optimizer or a stopper).
    #[error(transparent)]
    Optim(#[from] tandem_optim::OptimError),
    /// From tandem-train.
    #[error(transparent)]
    Train(#[from] tandem_train::TrainError),
    /// An image that cannot be read or decoded.
    #[error("{}: {reason}", path.display())]
    Image {
        /// The image file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration key with an impossible value.
    #[error("config: {key}: {reason}")]
    Config {
        /// The key (dotted path) or file.
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl Error {
    pub(crate) fn config(key: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias of the facade.
pub type Result<T> = std::result::Result<T, Error>;
