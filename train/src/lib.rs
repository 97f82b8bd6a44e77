//! `isolake-train`: the scheduled training job of a fraud team — fit an isolation forest on
//! recent unlabelled data, record the run, register a version, promote it if it is good.
//!
//! ```text
//! job        the run: read → fit → evaluate, then record
//! record     log the run, register the version, promote it behind its gates
//! metrics    score quantiles, ROC AUC, average precision (scikit-learn's definitions)
//! histogram  the PNG of training scores with the threshold marked
//! ```
//!
//! The binary only parses flags into a [`TrainConfig`], opens the registry and maps
//! [`Error::exit_code`] to the process exit code.

pub mod error;
pub mod histogram;
pub mod job;
pub mod metrics;
mod record;

pub use error::{Error, Result};
pub use job::{Hyper, Outcome, Progress, TrainConfig, run};
