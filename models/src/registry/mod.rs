//! Model registries: where training runs are recorded and model versions are registered,
//! aliased and fetched from.
//!
//! A [`Registry`] is opened from a URI: a path or `file://` URL is a [`LocalRegistry`] (a
//! directory of readable JSON files, default [`DEFAULT_LOCAL`]); `http(s)://` is an MLflow
//! tracking server (feature `mlflow`), reached over its REST API with HTTP Basic auth from
//! `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`.
//!
//! Models are named by URI everywhere ([`ModelUri`]): `models:/NAME@ALIAS`,
//! `models:/NAME/VERSION` or an artifact path. [`Registry::load_model`] resolves one,
//! fetches the artifact into a local cache keyed by its SHA-256, verifies it against the
//! checksum recorded at registration, and loads it.
//!
//! **Blocking.** Every call blocks the calling thread (the MLflow client is
//! `reqwest::blocking`, which panics when used on an async runtime's thread): from async
//! code, call it through `tokio::task::spawn_blocking`.

mod backend;
mod local;
#[cfg(feature = "mlflow")]
mod mlflow;
mod types;
mod uri;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use backend::RegistryBackend;
pub use local::LocalRegistry;
#[cfg(feature = "mlflow")]
pub use mlflow::MlflowRegistry;
pub use types::{
    LoggedModel, ModelVersion, ResolvedModel, RunData, RunInfo, RunStatus, TAG_ARTIFACT_FILE,
    TAG_LOGGED_MODEL, TAG_REPLACED_BY, TAG_RUN_KEY, TAG_SHA256,
};
pub use uri::ModelUri;

use crate::error::{Error, Result};
use crate::forest::IsolationForest;
use crate::mlflow_model;

/// The local registry used when neither a flag nor `MLFLOW_TRACKING_URI` names one.
pub const DEFAULT_LOCAL: &str = "./lake/_registry";

/// HTTP Basic credentials. `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password (kept out of every message and `Debug` output).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`, if the user name is set.
    pub fn from_env() -> Option<Self> {
        let username = std::env::var("MLFLOW_TRACKING_USERNAME").ok()?;
        let password = std::env::var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default();
        Some(Credentials { username, password })
    }
}

/// A model registry (local or MLflow), with the training and loading workflows.
#[derive(Debug)]
pub struct Registry {
    backend: Box<dyn RegistryBackend>,
}

impl Registry {
    /// Opens the registry at `uri`; an MLflow server gets the credentials of
    /// [`Credentials::from_env`].
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, Credentials::from_env())
    }

    /// Opens the registry at `uri` with explicit credentials (used for `http(s)://` only).
    pub fn open_with(uri: &str, credentials: Option<Credentials>) -> Result<Self> {
        let uri = uri.trim();
        if uri.is_empty() {
            return Err(Error::RegistryInput {
                reason: "the registry location is empty".into(),
            });
        }
        if uri.starts_with("http://") || uri.starts_with("https://") {
            return Self::open_mlflow(uri, credentials);
        }
        if uri.starts_with("file:") {
            let path = url::Url::parse(uri)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| Error::RegistryInput {
                    reason: format!("{uri:?} is not a valid local file URL"),
                })?;
            return Ok(Self::local(path));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(Error::RegistryInput {
                reason: format!(
                    "unsupported registry scheme {scheme:?}: use a local path, file://, \
                     http:// or https:// (an MLflow tracking server)"
                ),
            });
        }
        Ok(Self::local(uri))
    }

    #[cfg(feature = "mlflow")]
    fn open_mlflow(uri: &str, credentials: Option<Credentials>) -> Result<Self> {
        Ok(Registry {
            backend: Box::new(MlflowRegistry::new(uri, credentials)?),
        })
    }

    #[cfg(not(feature = "mlflow"))]
    fn open_mlflow(uri: &str, _credentials: Option<Credentials>) -> Result<Self> {
        Err(Error::RegistryInput {
            reason: format!(
                "{uri} is an MLflow server, but this build of isolake-models has no `mlflow` \
                 feature; rebuild with it or use a local registry"
            ),
        })
    }

    /// The local registry in `root`.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Registry {
            backend: Box::new(LocalRegistry::new(root)),
        }
    }

    /// `MLFLOW_TRACKING_URI` if set (and not empty), else `default`.
    pub fn from_env_or(default: &str) -> Result<Self> {
        Self::open(&Self::uri_from_env_or(default))
    }

    /// The registry URI [`from_env_or`](Self::from_env_or) would open.
    pub fn uri_from_env_or(default: &str) -> String {
        std::env::var("MLFLOW_TRACKING_URI")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| default.to_string())
    }

    /// A registry over any backend.
    pub fn with_backend(backend: Box<dyn RegistryBackend>) -> Self {
        Registry { backend }
    }

    /// The backend, for operations without a workflow here.
    pub fn backend(&self) -> &dyn RegistryBackend {
        self.backend.as_ref()
    }

    /// The registry's location, safe to print (no credentials).
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Registers a model version from a run's artifact directory holding `artifact_file`,
    /// tagging it with the file's checksum. With a `TAG_RUN_KEY` tag, an existing version
    /// carrying the same key is returned instead of registering another (`false`).
    pub fn register_model(
        &self,
        name: &str,
        run: &RunInfo,
        artifact_dir: &str,
        artifact_file: &str,
        artifact_bytes: &[u8],
        extra_tags: &[(String, String)],
    ) -> Result<(ModelVersion, bool)> {
        if let Some((_, key)) = extra_tags.iter().find(|(k, _)| k == TAG_RUN_KEY)
            && let Some(v) = self.version_for_run_key(name, key)?
        {
            return Ok((v, false));
        }
        let mut tags = vec![
            (TAG_SHA256.to_string(), sha256_hex(artifact_bytes)),
            (TAG_ARTIFACT_FILE.to_string(), artifact_file.to_string()),
        ];
        tags.extend(extra_tags.iter().cloned());
        self.backend
            .register_version(name, run, artifact_dir, &tags)
    }

    /// The version a scheduled run with `key` registered, if any.
    pub fn version_for_run_key(&self, name: &str, key: &str) -> Result<Option<ModelVersion>> {
        Ok(self
            .backend
            .find_versions_by_tag(name, TAG_RUN_KEY, key)?
            .into_iter()
            .min_by_key(|v| v.version))
    }

    /// Points `alias` at `version`. If it pointed at another version, that version gets a
    /// [`TAG_REPLACED_BY`] tag saying what replaced it. Returns the previous version number.
    pub fn promote(&self, name: &str, alias: &str, version: u64) -> Result<Option<u64>> {
        let previous = self.backend.get_alias(name, alias)?.map(|v| v.version);
        self.backend.set_alias(name, alias, version)?;
        if let Some(prev) = previous.filter(|p| *p != version) {
            self.backend.set_version_tag(
                name,
                prev,
                TAG_REPLACED_BY,
                &format!(
                    "models:/{name}/{version} as @{alias} at {}",
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )?;
        }
        Ok(previous)
    }

    /// Resolves a registered model URI to its version (`None` for a file URI).
    pub fn resolve(&self, uri: &ModelUri) -> Result<Option<ModelVersion>> {
        let not_found = |what: String| Error::RegistryNotFound {
            registry: self.describe(),
            what,
        };
        match uri {
            ModelUri::Alias { name, alias } => self
                .backend
                .get_alias(name, alias)?
                .map(Some)
                .ok_or_else(|| not_found(format!("models:/{name}@{alias} (no such alias)"))),
            ModelUri::Version { name, version } => self
                .backend
                .get_version(name, *version)?
                .map(Some)
                .ok_or_else(|| not_found(format!("models:/{name}/{version} (no such version)"))),
            ModelUri::File(_) => Ok(None),
        }
    }

    /// Resolves, fetches (through the cache in `cache_dir`, default [`default_cache_dir`]),
    /// verifies and loads a model.
    ///
    /// A registered version's artifact is stored in the cache as `<sha256>.isolake`; a cached
    /// file whose bytes no longer hash to the registry's checksum is refused, never used.
    pub fn load_model(
        &self,
        uri: &str,
        cache_dir: Option<&Path>,
    ) -> Result<(IsolationForest, ResolvedModel)> {
        let parsed = ModelUri::parse(uri)?;
        let Some(version) = self.resolve(&parsed)? else {
            let ModelUri::File(path) = parsed else {
                unreachable!("only file URIs resolve to no version")
            };
            return load_file(uri, &path);
        };
        let cache = match cache_dir {
            Some(d) => d.to_path_buf(),
            None => default_cache_dir(),
        };
        let model_uri = version.uri();
        let expected =
            version
                .tags
                .get(TAG_SHA256)
                .cloned()
                .ok_or_else(|| Error::RegistryRefused {
                    registry: self.describe(),
                    reason: format!(
                        "{model_uri} has no {TAG_SHA256} tag: it was not registered by isolake, \
                     so its artifact cannot be verified"
                    ),
                })?;
        if expected.len() != 64 || !expected.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::RegistryRefused {
                registry: self.describe(),
                reason: format!("{model_uri} has an invalid {TAG_SHA256} tag {expected:?}"),
            });
        }
        let file = version
            .tags
            .get(TAG_ARTIFACT_FILE)
            .map_or("model.isolake", String::as_str);
        let cached = cache.join(format!("{expected}.isolake"));
        let mismatch = |path: &Path, actual: String| Error::RegistryChecksumMismatch {
            model: model_uri.clone(),
            path: path.to_path_buf(),
            expected: expected.clone(),
            actual,
        };
        let bytes = match std::fs::read(&cached) {
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                if actual != expected {
                    return Err(mismatch(&cached, actual));
                }
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = self.backend.download_artifact(&version, file)?;
                let actual = sha256_hex(&bytes);
                if actual != expected {
                    return Err(mismatch(
                        Path::new(&version.source).join(file).as_path(),
                        actual,
                    ));
                }
                crate::fsutil::write_atomic(&cached, &bytes)?;
                bytes
            }
            Err(e) => return Err(crate::fsutil::io_error(&cached)(e)),
        };
        self.verify_mlflow_files(&version)?;
        let model = IsolationForest::from_artifact_bytes(&bytes)?;
        Ok((
            model,
            ResolvedModel {
                name: version.name.clone(),
                version: Some(version.version),
                requested: uri.to_string(),
                uri: model_uri,
                sha256: expected,
                path: cached,
            },
        ))
    }
}

impl Registry {
    /// Checks the MLflow files of `version` (`MLmodel`, the pyfunc loader, ...) against the
    /// checksum recorded at registration, so a tampered loader is refused like a tampered
    /// artifact. Versions registered before isolake wrote them carry no such tag.
    fn verify_mlflow_files(&self, version: &ModelVersion) -> Result<()> {
        let Some(expected) = version.tags.get(mlflow_model::TAG_MLFLOW_MODEL_SHA256) else {
            return Ok(());
        };
        let mut files = Vec::with_capacity(mlflow_model::FILES.len());
        for name in mlflow_model::FILES {
            files.push((name, self.backend.download_artifact(version, name)?));
        }
        let pairs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let actual = mlflow_model::checksum(&pairs);
        if &actual != expected {
            return Err(Error::RegistryChecksumMismatch {
                model: version.uri(),
                path: Path::new(&version.source).join(mlflow_model::MLMODEL_FILE),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// Loads an artifact file given by path.
fn load_file(requested: &str, path: &Path) -> Result<(IsolationForest, ResolvedModel)> {
    let bytes = std::fs::read(path).map_err(crate::fsutil::io_error(path))?;
    let model = IsolationForest::from_artifact_bytes(&bytes)?;
    let name = path
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    Ok((
        model,
        ResolvedModel {
            name,
            version: None,
            requested: requested.to_string(),
            uri: path.display().to_string(),
            sha256: sha256_hex(&bytes),
            path: path.to_path_buf(),
        },
    ))
}

/// `$ISOLAKE_MODEL_CACHE`, else `$XDG_CACHE_HOME/isolake/models`, else
/// `~/.cache/isolake/models`, else `.isolake-cache/models` in the working directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ISOLAKE_MODEL_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|h| h.join(".cache")));
    match base {
        Some(b) => b.join("isolake").join("models"),
        None => PathBuf::from(".isolake-cache").join("models"),
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
