//! The error type of `tandem-train`.

/// Errors raised by `tandem-train`.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error from tandem-tensor (checkpoints, numeric guards).
    #[error(transparent)]
    Tensor(#[from] tandem_tensor::TensorError),
    /// An error from tandem-data.
    #[error(transparent)]
    Data(#[from] tandem_data::DataError),
    /// A non-finite loss or gradient.
    #[error("non-finite {what} for task {task} at epoch {epoch}, step {step}")]
    NonFinite {
        /// `loss`, `penalty` or `gradient of <variable>`.
        what: String,
        /// The task.
        task: String,
        /// The epoch (0-based).
        epoch: usize,
        /// The optimizer step.
        step: u64,
    },
    /// An impossible configuration.
    #[error("invalid config: {field}: {reason}")]
    Config {
        /// The offending key.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A trainer checkpoint is missing, corrupt, or does not fit this run.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint folder or file.
        path: std::path::PathBuf,
        /// What is wrong, naming the offending files, keys, tensors and shapes.
        reason: String,
    },
    /// A data-parallel exchange failed (a rank died or sent what the others did not expect).
    #[error(transparent)]
    Collective(#[from] tandem_tensor::CollectiveError),
    /// A data-parallel rank's record of an exchange does not match (a bug or a mixed-version
    /// run).
    #[error("data-parallel exchange: {0}")]
    Exchange(String),
    /// Writing the history or a report failed.
    #[error("{path}: {reason}")]
    Output {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Result alias of `tandem-train`.
pub type Result<T> = std::result::Result<T, TrainError>;

/// Configuration errors keep their [`TrainError::Config`] shape (and message); candle errors
/// become [`TrainError::Candle`].
impl From<tandem_optim::OptimError> for TrainError {
    fn from(e: tandem_optim::OptimError) -> Self {
        match e {
            tandem_optim::OptimError::Candle(e) => Self::Candle(e),
            tandem_optim::OptimError::Config { field, reason } => Self::Config { field, reason },
        }
    }
}

impl TrainError {
    pub(crate) fn config(field: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
