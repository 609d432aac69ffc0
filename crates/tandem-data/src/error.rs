//! The error type of `tandem-data`.
use std::path::PathBuf;

/// Errors raised by `tandem-data`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An error from candle while building tensors.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A problem in a line of an annotation file.
    #[error("{}:{line}: field {field}: {reason}", file.display())]
    Annotation {
        /// The annotation file (as given, usually `training.txt`).
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field name (`x1`, `pose`, `path`, ...).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An image could not be used.
    #[error("{}:{line}: image {}: {reason}", file.display(), image.display())]
    Image {
        /// The annotation file naming the image.
        file: PathBuf,
        /// 1-based line number of the annotation.
        line: usize,
        /// The image path.
        image: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A problem in a table (CSV) file: a cell, a row, the header, or an option naming columns.
    /// Lines count from 1, the header being line 1; `column` is the header name (empty when no
    /// one column is at fault, and then not shown).
    #[error("{}: line {line}{}: {reason}", file.display(), crate::table::at_column(column))]
    Table {
        /// The table file (as given).
        file: PathBuf,
        /// 1-based line number in the file (1 = the header).
        line: usize,
        /// The column's header name, or empty.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Fetching a data set from a hub failed.
    #[error("data set {repo}: {reason}")]
    Hub {
        /// The repository, `owner/name`.
        repo: String,
        /// What went wrong.
        reason: String,
    },
    /// Samples or arguments do not fit together (index out of range, mismatched tasks, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of `tandem-data`.
pub type Result<T> = std::result::Result<T, DataError>;
