//! `isolake-score`: batch scoring of tables and files with any model version.
//!
//! ```text
//! input    (re-exported from isolake-data) a Delta table or CSV / Parquet / NDJSON files
//! scorer   a loaded model + a polars frame → the frame with anomaly_score, is_anomaly,
//!          model_name, model_version (and top_features); the pipeline's per-batch call
//! output   where scored chunks go: Delta, Parquet, CSV or NDJSON, written as they come
//! ```
//!
//! The `isolake-score` binary is a thin wrapper: parse arguments, load the model through a
//! registry ([`isolake_models::Registry::load_model`]), stream the input through a
//! [`Scorer`] into an [`output::Sink`], print the [`ScoreSummary`].

pub mod error;
pub mod output;
pub mod scorer;

pub use error::{Error, Result};
/// What scoring and training read (it lives in the data layer).
pub use isolake_data::input::{self, FeatureMatrix, FileFormat, Input};
pub use output::{IfExists, OutputFormat, Sink};
pub use scorer::{
    ANOMALY_SCORE, CHUNK_ROWS, IS_ANOMALY, MODEL_NAME, MODEL_VERSION, ScoreSummary, Scorer,
    TOP_FEATURES,
};
