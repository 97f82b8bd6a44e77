//! What both registries store and return, in the vocabulary of MLflow (experiments, runs,
//! registered models, versions, aliases), so a model can move between them unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version tag: the MLflow 3 logged model the version was registered from (the MLflow
/// backend also sets the version's `model_id` from it).
pub const TAG_LOGGED_MODEL: &str = "isolake.logged_model_id";
/// Version tag: SHA-256 (hex) of the model artifact file. Verified on every load.
pub const TAG_SHA256: &str = "isolake.sha256";
/// Version tag: the artifact's file name inside the version's source directory.
pub const TAG_ARTIFACT_FILE: &str = "isolake.artifact_file";
/// Version and run tag: the `--run-key` of the scheduled run that produced the version.
pub const TAG_RUN_KEY: &str = "isolake.run_key";
/// Version tag, set on the version an alias moved away from: which version replaced it.
pub const TAG_REPLACED_BY: &str = "isolake.replaced_by";

/// A run's end state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Still going.
    Running,
    /// Completed.
    Finished,
    /// Stopped by an error.
    Failed,
}

impl RunStatus {
    /// MLflow's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
        }
    }
}

/// A started run: where its parameters, metrics, tags and artifacts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// The run's id (32 hex digits in both registries).
    pub run_id: String,
    /// Its experiment's id.
    pub experiment_id: String,
    /// Where its artifacts live (`mlflow-artifacts:/…` or a path inside the local registry).
    pub artifact_uri: String,
}

/// A registered model version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// The registered model's name.
    pub name: String,
    /// Its version number, from 1.
    pub version: u64,
    /// The artifact directory the version was registered from.
    pub source: String,
    /// The run that produced it.
    pub run_id: Option<String>,
    /// Tags (checksum, artifact file, run key, what replaced it...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Aliases pointing at this version (filled on reads; not stored with the version).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub creation_timestamp: i64,
}

impl ModelVersion {
    /// `models:/NAME/VERSION`, the URI that always means this exact version.
    pub fn uri(&self) -> String {
        format!("models:/{}/{}", self.name, self.version)
    }
}

/// Everything a run records besides its artifacts, for one `log_batch` call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunData {
    /// Parameters (values are strings, as in MLflow).
    pub params: Vec<(String, String)>,
    /// Metrics (NaN is allowed).
    pub metrics: Vec<(String, f64)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// The MLflow 3 logged model the metrics describe (they are linked to it), if any.
    pub model_id: Option<String>,
}

/// An MLflow 3 logged model: the model as a first-class object of its experiment, with its
/// own params, linked metrics, tags and artifacts (what MLflow 3's model view shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedModel {
    /// `m-…`, also loadable as `models:/<id>`.
    pub id: String,
    /// Where its artifacts go (`mlflow-artifacts:/…`).
    pub artifact_uri: String,
}

/// The model [`Registry::load_model`](super::Registry::load_model) loaded, and where from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    /// Registered model name (for a plain file, its file stem).
    pub name: String,
    /// Version number (`None` for a plain file).
    pub version: Option<u64>,
    /// The URI the caller gave.
    pub requested: String,
    /// `models:/NAME/VERSION` for a registered model, the file path otherwise.
    pub uri: String,
    /// SHA-256 (hex) of the artifact file.
    pub sha256: String,
    /// The local file the model was loaded from (the cache entry, for a registered model).
    pub path: std::path::PathBuf,
}
