//! The error type of `tandem-tensor`.
use std::path::PathBuf;

/// Errors raised by `tandem-tensor`.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A tensor held NaN or infinite values.
    #[error("non-finite value in {name}: {detail}")]
    NonFinite {
        /// The tensor's name (variable path, task loss, ...).
        name: String,
        /// What was found (count and first offending value).
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint is missing, corrupt, or does not fit the model it is loaded into.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file or folder.
        path: PathBuf,
        /// What is wrong, naming the offending tensors and their shapes.
        reason: String,
    },
}

/// Result alias of `tandem-tensor`.
pub type Result<T> = std::result::Result<T, TensorError>;

impl TensorError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
