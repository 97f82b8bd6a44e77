//! `isolake-models`: isolake's isolation forest — classic (Liu et al.) and extended
//! (Hariri et al.) — with scikit-learn's exact scoring convention, per-row explanations, and
//! a versioned, checksummed model artifact.
//!
//! ```
//! use isolake_models::{IsolationForest, Result};
//! use ndarray::array;
//!
//! # fn main() -> Result<()> {
//! let x = array![[0.0, 1.0], [0.1, 0.9], [0.2, 1.1], [0.1, 1.0], [9.0, -7.0]];
//! let model = IsolationForest::params().n_estimators(50).seed(42).fit_array(&x)?;
//! let scores = model.score_samples(&x)?; // lower = more abnormal
//! assert!(scores[4] < scores[0]);
//! let top = model.explain(&x.slice(ndarray::s![4..5, ..]), 1)?;
//! assert_eq!(top[0].len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! The forest follows linfa's estimator pattern: [`IsolationForest::params`] returns an
//! unchecked builder, `ParamGuard::check` validates it, linfa's `Fit` fits a
//! `DatasetBase` of rows, and linfa's `Predict` flags anomalies.

pub mod artifact;
pub mod error;
pub mod forest;
mod fsutil;
pub mod metadata;
pub mod mlflow_model;
pub mod registry;

pub use artifact::{ARTIFACT_FORMAT_VERSION, ARTIFACT_MAGIC, MAX_ARTIFACT_BYTES, MAX_HEADER_BYTES};
pub use error::{Error, Result};
pub use forest::IsolationForest;
pub use forest::explain::{FeatureContribution, NamedContribution};
pub use forest::params::{
    Contamination, IsolationForestParams, IsolationForestValidParams, MaxFeatures, MaxSamples,
};
pub use forest::score::{EULER_GAMMA, average_path_length, depth_limit, score_from_path_sum};
pub use metadata::{ModelMetadata, TrainingDataRef};
pub use registry::{ModelUri, Registry, ResolvedModel};
