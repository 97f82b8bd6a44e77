//! The one error type of `isolake-models`.
//!
//! Every fallible function of the crate returns [`Result`]. Variants are specific (rather than
//! one catch-all string) so that callers — the training job, the scorer, and later the model
//! registry — can react to a given failure, and each message says what to do about it.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while configuring, fitting, scoring, saving or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter is out of its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the builder method / field.
        name: &'static str,
        /// Why the value was refused and what is accepted.
        reason: String,
    },

    /// `fit` was given no rows.
    #[error("the training set is empty: an isolation forest needs at least 2 rows to fit")]
    EmptyTrainingSet,

    /// `fit` was given fewer rows than the forest can learn from.
    #[error(
        "the training set has {rows} row(s): an isolation forest needs at least {needed} rows \
         (with one row there is nothing to isolate it from)"
    )]
    TooFewTrainingRows {
        /// Rows supplied.
        rows: usize,
        /// Minimum rows required.
        needed: usize,
    },

    /// The input has no feature columns.
    #[error("the input has no feature columns: supply at least one numeric feature")]
    NoFeatures,

    /// A NaN or infinite value was found where only finite numbers are accepted.
    #[error(
        "non-finite value (NaN or infinity) at row {row}, column {column}: clean or impute the \
         input first (the slice scorer `score_rows_into` maps such rows to NaN instead)"
    )]
    NonFiniteValue {
        /// Zero-based row of the first offending value.
        row: usize,
        /// Zero-based column of the first offending value.
        column: usize,
    },

    /// The input's number of columns differs from the model's.
    #[error(
        "feature count mismatch: the model was trained on {expected} feature(s) but the input \
         has {found}; select the model's features, in the model's order"
    )]
    FeatureCountMismatch {
        /// Features the model expects.
        expected: usize,
        /// Features found in the input.
        found: usize,
    },

    /// A list of feature names does not match the number of feature columns.
    #[error(
        "{names} feature name(s) given for {features} feature column(s): give one name per \
         column, in column order"
    )]
    FeatureNameCountMismatch {
        /// Names given.
        names: usize,
        /// Feature columns.
        features: usize,
    },

    /// A row-major buffer's length is not a multiple of the feature count, or the output
    /// buffer's length does not match the number of rows.
    #[error(
        "buffer shape mismatch: {values} value(s) with {features} feature(s) per row and an \
         output of {outputs} slot(s); pass exactly one output slot per row of {features} values"
    )]
    BufferShapeMismatch {
        /// Length of the row-major input buffer.
        values: usize,
        /// Features per row.
        features: usize,
        /// Length of the output buffer.
        outputs: usize,
    },

    /// The artifact does not start with the expected magic line.
    #[error("not an isolake forest artifact: {reason}")]
    ArtifactNotRecognised {
        /// What was found instead.
        reason: String,
    },

    /// The artifact was written in a format version this build cannot read.
    #[error(
        "unsupported artifact format version {found} (this build of isolake-models reads version \
         {supported}): retrain the model or use a matching isolake release"
    )]
    ArtifactUnsupportedVersion {
        /// Version found in the file.
        found: String,
        /// Version this build reads.
        supported: u32,
    },

    /// The artifact (or one of its parts) is larger than the loader accepts.
    #[error(
        "artifact {what} is {size} bytes, over the {limit}-byte limit: refusing to load it \
         (artifacts are untrusted input)"
    )]
    ArtifactTooLarge {
        /// Which part was too large ("file", "header", ...).
        what: &'static str,
        /// Its size in bytes (or a lower bound of it).
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// The payload's SHA-256 differs from the one recorded in the header.
    #[error(
        "artifact checksum mismatch: header records SHA-256 {expected} but the payload hashes to \
         {actual}; the file is corrupt or was modified — re-export it from the model registry"
    )]
    ArtifactChecksumMismatch {
        /// Checksum in the header.
        expected: String,
        /// Checksum of the payload read.
        actual: String,
    },

    /// The artifact is structurally invalid (truncated, inconsistent header, invalid trees...).
    #[error("malformed artifact: {reason}")]
    ArtifactMalformed {
        /// What exactly is wrong.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An error reported by linfa (its traits require the conversion).
    #[error("linfa: {0}")]
    Linfa(#[from] linfa::Error),

    /// A registry location, model URI or registry argument is invalid (a usage error).
    #[error("invalid registry input: {reason}")]
    RegistryInput {
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// A model, version or alias the caller asked for does not exist in the registry.
    #[error("not found in the registry {registry}: {what}")]
    RegistryNotFound {
        /// The registry (its URI, never with credentials).
        registry: String,
        /// What was looked up.
        what: String,
    },

    /// The registry cannot be reached (connection refused, DNS, timeout, lock held too long).
    #[error("registry {registry} is unreachable: {reason}")]
    RegistryUnreachable {
        /// The registry (its URI, never with credentials).
        registry: String,
        /// Why, and what to check.
        reason: String,
    },

    /// The registry answered but refused the request (authentication, permissions, a server
    /// error or a response isolake does not understand).
    #[error("registry {registry} refused the request: {reason}")]
    RegistryRefused {
        /// The registry (its URI, never with credentials).
        registry: String,
        /// The server's answer and what to do about it.
        reason: String,
    },

    /// A fetched or cached model artifact does not hash to the checksum the registry
    /// recorded for that version.
    #[error(
        "model artifact {path} has SHA-256 {actual} but the registry records {expected} for \
         {model}: refusing to load it; delete the file to fetch it again, or check who \
         modified the registry"
    )]
    RegistryChecksumMismatch {
        /// The model version (`models:/NAME/VERSION`).
        model: String,
        /// The cached or fetched file.
        path: PathBuf,
        /// Checksum recorded in the registry.
        expected: String,
        /// Checksum of the bytes found.
        actual: String,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::ArtifactMalformed`].
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Error::ArtifactMalformed {
            reason: reason.into(),
        }
    }
}
