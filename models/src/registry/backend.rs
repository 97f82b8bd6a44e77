//! The operations a registry must offer; [`Registry`](super::Registry) builds the training
//! and loading workflows once on top of them.

use super::types::{LoggedModel, ModelVersion, RunData, RunInfo, RunStatus};
use crate::error::Result;

/// One registry implementation (local directory, MLflow server).
///
/// Implementations are blocking. Names and aliases are checked by the caller's URI parsing
/// and again by each implementation where they become paths.
pub trait RegistryBackend: std::fmt::Debug + Send + Sync {
    /// The registry's location for messages: never includes credentials.
    fn describe(&self) -> String;
    /// The id of the experiment called `name`, created if missing.
    fn get_or_create_experiment(&self, name: &str) -> Result<String>;
    /// Starts a run.
    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(String, String)],
    ) -> Result<RunInfo>;
    /// Logs params, metrics and tags in one call.
    fn log_batch(&self, run_id: &str, data: &RunData) -> Result<()>;
    /// Stores one artifact file at `path` (relative, `/`-separated) in the run's artifacts.
    fn log_artifact(&self, run: &RunInfo, path: &str, bytes: &[u8]) -> Result<()>;
    /// Ends a run with a status.
    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()>;
    /// Creates the MLflow 3 logged model of the run's model, with `params` and `tags`;
    /// `None` where the registry has no logged models (the local registry, MLflow before 3).
    fn create_logged_model(
        &self,
        _run: &RunInfo,
        _name: &str,
        _params: &[(String, String)],
        _tags: &[(String, String)],
    ) -> Result<Option<LoggedModel>> {
        Ok(None)
    }
    /// Uploads the model directory's `files` to the logged model, marks it ready and records
    /// it as the run's output (lineage).
    fn finalize_logged_model(
        &self,
        _run: &RunInfo,
        _model: &LoggedModel,
        _files: &[(String, Vec<u8>)],
    ) -> Result<()> {
        Ok(())
    }
    /// Registers a new version of `name` (creating the model if needed) from the run's
    /// artifact directory `artifact_dir`. Returns the version and whether it is new: a
    /// backend that can check a `TAG_RUN_KEY` tag atomically returns the existing version.
    fn register_version(
        &self,
        name: &str,
        run: &RunInfo,
        artifact_dir: &str,
        tags: &[(String, String)],
    ) -> Result<(ModelVersion, bool)>;
    /// Versions of `name` carrying the tag `key = value`.
    fn find_versions_by_tag(&self, name: &str, key: &str, value: &str)
    -> Result<Vec<ModelVersion>>;
    /// One version, or `None` if the model or version does not exist.
    fn get_version(&self, name: &str, version: u64) -> Result<Option<ModelVersion>>;
    /// Sets a tag on a version.
    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()>;
    /// The version an alias points at, or `None` if the alias (or model) does not exist.
    fn get_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>>;
    /// Points `alias` at `version` (moving it if it exists).
    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()>;
    /// Removes an alias (no error if it does not exist).
    fn delete_alias(&self, name: &str, alias: &str) -> Result<()>;
    /// The bytes of `file` inside the version's source directory.
    fn download_artifact(&self, version: &ModelVersion, file: &str) -> Result<Vec<u8>>;
}
