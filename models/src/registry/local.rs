//! The local registry: MLflow's model of experiments, runs and registered models, as plain
//! JSON files in a directory (default `./lake/_registry`).
//!
//! ```text
//! experiments/<name>.json                      {"experiment_id", "name", "creation_timestamp"}
//! runs/<run_id>/run.json                       status, times, params, metrics, tags
//! runs/<run_id>/artifacts/<path>               logged artifacts
//! models/<name>/versions/<n>/version.json      a registered version (source, run, tags)
//! models/<name>/aliases.json                   {"production": 3, ...}
//! .lock                                        held while writing (see `fsutil`)
//! ```
//!
//! Every file is replaced atomically. A version becomes visible in one step: its directory
//! is filled under a hidden temporary name and renamed to its number, so a crash leaves at
//! most a hidden directory that readers ignore, never a half-registered version. Its
//! `source` points at artifacts that were written before it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::backend::RegistryBackend;
use super::types::{ModelVersion, RunData, RunInfo, RunStatus, TAG_RUN_KEY};
use super::uri::check_name;
use crate::error::{Error, Result};
use crate::fsutil::{WriteLock, io_error, read_json, unique_suffix, write_atomic, write_json};

/// A registry in a local directory.
#[derive(Clone, Debug)]
pub struct LocalRegistry {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Experiment {
    experiment_id: String,
    name: String,
    creation_timestamp: i64,
}

/// A run's `run.json`.
#[derive(Serialize, Deserialize)]
struct Run {
    run_id: String,
    experiment_id: String,
    run_name: String,
    status: RunStatus,
    start_time: i64,
    end_time: Option<i64>,
    params: BTreeMap<String, String>,
    /// Last value of each metric; `null` stands for NaN (JSON has no NaN).
    metrics: BTreeMap<String, Option<f64>>,
    tags: BTreeMap<String, String>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl LocalRegistry {
    /// A registry rooted at `root` (created on the first write, not before: opening a
    /// registry to read from it must not leave directories behind).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalRegistry { root: root.into() }
    }

    /// The registry's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> Result<WriteLock> {
        WriteLock::acquire(&self.root.join(".lock"))
    }

    fn experiment_path(&self, name: &str) -> Result<PathBuf> {
        check(name, "experiment name")?;
        Ok(self.root.join("experiments").join(format!("{name}.json")))
    }

    fn run_dir(&self, run_id: &str) -> Result<PathBuf> {
        if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::RegistryInput {
                reason: format!("{run_id:?} is not a run id (32 hex digits)"),
            });
        }
        Ok(self.root.join("runs").join(run_id))
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf> {
        check(name, "model name")?;
        Ok(self.root.join("models").join(name))
    }

    fn read_run(&self, run_id: &str) -> Result<(PathBuf, Run)> {
        let path = self.run_dir(run_id)?.join("run.json");
        match read_json::<Run>(&path)? {
            Some(run) => Ok((path, run)),
            None => Err(self.not_found(format!("run {run_id}"))),
        }
    }

    fn not_found(&self, what: String) -> Error {
        Error::RegistryNotFound {
            registry: self.describe(),
            what,
        }
    }

    /// All registered versions of `name`, in version order.
    pub fn list_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        let dir = self.model_dir(name)?.join("versions");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_error(&dir)(e)),
        };
        let mut numbers: Vec<u64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        numbers.sort_unstable();
        let aliases = self.aliases(name)?;
        let mut out = Vec::with_capacity(numbers.len());
        for n in numbers {
            if let Some(v) = self.read_version(name, n, &aliases)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn read_version(
        &self,
        name: &str,
        version: u64,
        aliases: &BTreeMap<String, u64>,
    ) -> Result<Option<ModelVersion>> {
        let path = self.version_path(name, version)?;
        Ok(read_json::<ModelVersion>(&path)?.map(|mut v| {
            v.aliases = aliases
                .iter()
                .filter(|(_, n)| **n == version)
                .map(|(a, _)| a.clone())
                .collect();
            v
        }))
    }

    fn version_path(&self, name: &str, version: u64) -> Result<PathBuf> {
        Ok(self
            .model_dir(name)?
            .join("versions")
            .join(version.to_string())
            .join("version.json"))
    }

    fn aliases(&self, name: &str) -> Result<BTreeMap<String, u64>> {
        Ok(read_json(&self.model_dir(name)?.join("aliases.json"))?.unwrap_or_default())
    }

    /// The absolute directory a version's `source` names.
    fn source_dir(&self, source: &str) -> Result<PathBuf> {
        let rel = Path::new(source);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::RegistryRefused {
                registry: self.describe(),
                reason: format!("version source {source:?} is not inside the registry"),
            });
        }
        Ok(self.root.join(rel))
    }
}

fn check(name: &str, what: &str) -> Result<()> {
    check_name(name).map_err(|reason| Error::RegistryInput {
        reason: format!("{what}: {reason}"),
    })
}

/// A fresh 32-hex-digit run id (like MLflow's), unique across processes.
fn new_run_id() -> String {
    let digest = Sha256::digest(unique_suffix().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks an artifact path is relative and stays inside the run's artifact directory.
fn check_artifact_path(path: &str) -> Result<&Path> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(p)
    } else {
        Err(Error::RegistryInput {
            reason: format!("artifact path {path:?} must be relative, without `..`"),
        })
    }
}

impl RegistryBackend for LocalRegistry {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        let path = self.experiment_path(name)?;
        if let Some(e) = read_json::<Experiment>(&path)? {
            return Ok(e.experiment_id);
        }
        let _lock = self.lock()?;
        if let Some(e) = read_json::<Experiment>(&path)? {
            return Ok(e.experiment_id);
        }
        let dir = self.root.join("experiments");
        let count = fs::read_dir(&dir).map_or(0, |d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        });
        let experiment = Experiment {
            experiment_id: (count + 1).to_string(),
            name: name.to_string(),
            creation_timestamp: now_ms(),
        };
        write_json(&path, &experiment)?;
        Ok(experiment.experiment_id)
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let run_id = new_run_id();
        let dir = self.run_dir(&run_id)?;
        let run = Run {
            run_id: run_id.clone(),
            experiment_id: experiment_id.to_string(),
            run_name: run_name.to_string(),
            status: RunStatus::Running,
            start_time: now_ms(),
            end_time: None,
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            tags: tags.iter().cloned().collect(),
        };
        // A fresh id: nobody else writes this run, so no lock is needed.
        write_json(&dir.join("run.json"), &run)?;
        Ok(RunInfo {
            run_id: run_id.clone(),
            experiment_id: experiment_id.to_string(),
            artifact_uri: format!("runs/{run_id}/artifacts"),
        })
    }

    fn log_batch(&self, run_id: &str, data: &RunData) -> Result<()> {
        let (path, mut run) = self.read_run(run_id)?;
        for (k, v) in &data.params {
            match run.params.get(k) {
                Some(old) if old != v => {
                    return Err(Error::RegistryRefused {
                        registry: self.describe(),
                        reason: format!(
                            "param {k:?} of run {run_id} is already {old:?}; params are \
                             immutable, log a new run instead"
                        ),
                    });
                }
                _ => {
                    run.params.insert(k.clone(), v.clone());
                }
            }
        }
        for (k, v) in &data.metrics {
            run.metrics.insert(k.clone(), v.is_finite().then_some(*v));
        }
        run.tags.extend(data.tags.iter().cloned());
        write_json(&path, &run)
    }

    fn log_artifact(&self, run: &RunInfo, path: &str, bytes: &[u8]) -> Result<()> {
        let rel = check_artifact_path(path)?;
        write_atomic(
            &self.run_dir(&run.run_id)?.join("artifacts").join(rel),
            bytes,
        )
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        let (path, mut run) = self.read_run(run_id)?;
        run.status = status;
        run.end_time = Some(now_ms());
        write_json(&path, &run)
    }

    fn register_version(
        &self,
        name: &str,
        run: &RunInfo,
        artifact_dir: &str,
        tags: &[(String, String)],
    ) -> Result<(ModelVersion, bool)> {
        let source = format!("{}/{}", run.artifact_uri, artifact_dir);
        self.source_dir(&source)?;
        let versions_dir = self.model_dir(name)?.join("versions");
        let _lock = self.lock()?;
        // Under the lock, so two jobs with the same run key cannot both register.
        if let Some((_, key)) = tags.iter().find(|(k, _)| k == TAG_RUN_KEY)
            && let Some(v) = self
                .list_versions(name)?
                .into_iter()
                .find(|v| v.tags.get(TAG_RUN_KEY) == Some(key))
        {
            return Ok((v, false));
        }
        let next = self
            .list_versions(name)?
            .last()
            .map_or(1, |v| v.version + 1);
        let version = ModelVersion {
            name: name.to_string(),
            version: next,
            source,
            run_id: Some(run.run_id.clone()),
            tags: tags.iter().cloned().collect(),
            aliases: vec![],
            creation_timestamp: now_ms(),
        };
        let tmp = versions_dir.join(format!(".{next}.tmp-{}", unique_suffix()));
        write_json(&tmp.join("version.json"), &version)?;
        let target = versions_dir.join(next.to_string());
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io_error(&target)(e));
        }
        crate::fsutil::sync_dir(&versions_dir);
        Ok((version, true))
    }

    fn find_versions_by_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<ModelVersion>> {
        Ok(self
            .list_versions(name)?
            .into_iter()
            .filter(|v| v.tags.get(key).map(String::as_str) == Some(value))
            .collect())
    }

    fn get_version(&self, name: &str, version: u64) -> Result<Option<ModelVersion>> {
        let aliases = self.aliases(name)?;
        self.read_version(name, version, &aliases)
    }

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        let path = self.version_path(name, version)?;
        let _lock = self.lock()?;
        let mut v: ModelVersion =
            read_json(&path)?.ok_or_else(|| self.not_found(format!("models:/{name}/{version}")))?;
        v.tags.insert(key.to_string(), value.to_string());
        v.aliases.clear();
        write_json(&path, &v)
    }

    fn get_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>> {
        check(alias, "alias")?;
        let aliases = self.aliases(name)?;
        match aliases.get(alias) {
            Some(n) => self.read_version(name, *n, &aliases),
            None => Ok(None),
        }
    }

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        check(alias, "alias")?;
        let path = self.model_dir(name)?.join("aliases.json");
        let _lock = self.lock()?;
        if !self.version_path(name, version)?.exists() {
            return Err(self.not_found(format!("models:/{name}/{version}")));
        }
        let mut aliases = self.aliases(name)?;
        aliases.insert(alias.to_string(), version);
        write_json(&path, &aliases)
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        check(alias, "alias")?;
        let path = self.model_dir(name)?.join("aliases.json");
        let _lock = self.lock()?;
        let mut aliases = self.aliases(name)?;
        if aliases.remove(alias).is_some() {
            write_json(&path, &aliases)?;
        }
        Ok(())
    }

    fn download_artifact(&self, version: &ModelVersion, file: &str) -> Result<Vec<u8>> {
        let path = self
            .source_dir(&version.source)?
            .join(check_artifact_path(file)?);
        fs::read(&path).map_err(io_error(&path))
    }
}
