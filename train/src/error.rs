//! The one error type of `isolake-train`, and the exit code of each failure.

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag or the input is wrong (exit 2).
    #[error("{0}")]
    Usage(String),

    /// Reading the input failed (exit 2).
    #[error(transparent)]
    Input(#[from] isolake_data::input::InputError),

    /// Fitting, saving or the registry failed (exit 2, or 3 for the registry).
    #[error(transparent)]
    Model(#[from] isolake_models::Error),

    /// polars failed while preparing the training rows (exit 2).
    #[error("polars: {0}")]
    Polars(#[from] isolake_data::polars::error::PolarsError),

    /// The model was registered but a promotion gate refused to move the alias (exit 4).
    #[error(
        "promotion gate failed: {reason}; {version_uri} is registered but @{alias} still \
         points at its previous version"
    )]
    Gate {
        /// The version that was registered but not promoted (`models:/NAME/VERSION`).
        version_uri: String,
        /// The alias that was not moved.
        alias: String,
        /// Which gate failed, with the measured value and the limit.
        reason: String,
    },
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code for this failure: 2 bad input or configuration, 3 registry
    /// unreachable or refused, 4 a promotion gate failed.
    pub fn exit_code(&self) -> u8 {
        use isolake_models::Error as M;
        let model = |m: &M| match m {
            M::RegistryUnreachable { .. }
            | M::RegistryRefused { .. }
            | M::RegistryChecksumMismatch { .. } => 3,
            _ => 2,
        };
        match self {
            Error::Gate { .. } => 4,
            Error::Model(m) => model(m),
            Error::Usage(_) | Error::Input(_) | Error::Polars(_) => 2,
        }
    }
}
