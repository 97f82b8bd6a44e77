//! The one error type of `isolake-score`.

/// Everything that can stop a scoring run (a row that cannot be scored is not an error: it
/// gets a null score and is counted in the [`ScoreSummary`](crate::ScoreSummary)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input or output was specified wrongly (missing path, unknown format...).
    #[error("{0}")]
    Usage(String),

    /// The input could not be read, or lacks a feature the model needs.
    #[error(transparent)]
    Input(#[from] isolake_data::input::InputError),

    /// An error of the data layer (Delta table, polars).
    #[error(transparent)]
    Data(#[from] isolake_data::Error),

    /// An error of the model or the registry.
    #[error(transparent)]
    Model(#[from] isolake_models::Error),

    /// polars failed.
    #[error("polars: {0}")]
    Polars(#[from] isolake_data::polars::error::PolarsError),

    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
