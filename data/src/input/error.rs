//! Why an input cannot be read or scored.

/// Everything that stops reading an input (a row that cannot be scored is not an error: it
/// is counted as unscorable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The input was specified wrongly (missing path, unknown format...).
    #[error("{0}")]
    Usage(String),

    /// A feature the model needs is not a column of the input.
    #[error(
        "the input has no column {column:?}, which the model needs (its features: {features}); \
         score a table with the model's features or pick another model"
    )]
    MissingFeature {
        /// The missing column.
        column: String,
        /// All features of the model, comma-separated.
        features: String,
    },

    /// An error of the Delta layer.
    #[error(transparent)]
    Lake(#[from] crate::Error),

    /// A file's good lines could not be made a frame.
    #[error("{}: {source}", path.display())]
    Parse {
        path: std::path::PathBuf,
        source: polars::error::PolarsError,
    },

    /// polars failed.
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),

    /// Reading a file or directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl InputError {
    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        InputError::Usage(msg.into())
    }

    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        InputError::Io {
            path: path.into(),
            source,
        }
    }
}
