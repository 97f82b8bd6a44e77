//! The model that scores gold: resolved from the registry, cached, and re-resolved every
//! `model_refresh` so that a newly promoted version takes over at the next batch boundary
//! (hot swap) — without a restart, and with the switch in the event log.
//!
//! When the registry cannot be reached the cached version keeps scoring (with a warning);
//! when no model is registered yet, `on_missing_model` decides: null scores, or fail.

use std::path::PathBuf;
use std::time::Instant;

use isolake_models::registry::TAG_SHA256;
use isolake_models::{Error as ModelError, IsolationForest, ModelUri, Registry, ResolvedModel};

use crate::config::{ModelConfig, OnMissingModel};
use crate::error::{Error, Result};
use crate::event_log::{Flow, FlowEvent, Status};
use crate::plan::gold::ModelPlan;

pub struct Loaded {
    pub forest: IsolationForest,
    pub resolved: ResolvedModel,
}

pub struct ModelSlot {
    config: ModelConfig,
    registry_uri: String,
    cache_dir: Option<PathBuf>,
    current: Option<Loaded>,
    last_check: Option<Instant>,
    /// A pinned version or a file never changes: resolve once.
    pinned: bool,
    /// Silver's numeric columns: the features a version may need.
    numeric: Vec<String>,
    /// The checksum of the last version refused (said once, not at every refresh).
    rejected: Option<String>,
}

impl ModelSlot {
    pub fn new(plan: &ModelPlan) -> Self {
        let config = &plan.config;
        let pinned = !matches!(ModelUri::parse(&config.uri), Ok(ModelUri::Alias { .. }));
        Self {
            config: config.clone(),
            registry_uri: plan.registry.clone(),
            cache_dir: std::env::var_os("ISOLAKE_MODEL_CACHE").map(PathBuf::from),
            current: None,
            last_check: None,
            pinned,
            numeric: plan.numeric_columns.clone(),
            rejected: None,
        }
    }

    pub fn current(&self) -> Option<&Loaded> {
        self.current.as_ref()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Resolves the model again when it is due (always before the first batch) and returns
    /// what the event log should say about it. Blocking: registry calls are HTTP or file I/O.
    pub fn refresh(&mut self, batch: u64) -> Result<Vec<FlowEvent>> {
        let due = match self.last_check {
            None => true,
            Some(_) if self.pinned && self.current.is_some() => false,
            Some(at) => at.elapsed() >= self.config.refresh,
        };
        if !due {
            return Ok(Vec::new());
        }
        self.last_check = Some(Instant::now());
        let registry = Registry::open(&self.registry_uri);
        if let Ok(registry) = &registry
            && self.still_current(registry)
        {
            return Ok(Vec::new());
        }
        let loaded =
            registry.and_then(|r| r.load_model(&self.config.uri, self.cache_dir.as_deref()));
        match loaded {
            Ok((forest, resolved)) => {
                let lacking = self.lacking(&forest);
                match lacking.is_empty() {
                    true => Ok(self.switch(batch, forest, resolved)),
                    false => self.reject(batch, &resolved, &lacking),
                }
            }
            Err(e) => self.unavailable(batch, e),
        }
    }

    /// Whether the URI still resolves to the artifact scoring now (one registry lookup): then
    /// nothing is fetched, verified or parsed again. Any doubt (a file URI, an error) loads.
    fn still_current(&self, registry: &Registry) -> bool {
        let Some(current) = &self.current else {
            return false;
        };
        let Ok(uri) = ModelUri::parse(&self.config.uri) else {
            return false;
        };
        matches!(
            registry.resolve(&uri),
            Ok(Some(v)) if v.tags.get(TAG_SHA256) == Some(&current.resolved.sha256)
        )
    }

    /// Takes `resolved` unless it is the version already scoring.
    fn switch(
        &mut self,
        batch: u64,
        forest: IsolationForest,
        resolved: ResolvedModel,
    ) -> Vec<FlowEvent> {
        let previous = self.current.as_ref().map(|c| c.resolved.clone());
        if previous
            .as_ref()
            .is_some_and(|p| p.sha256 == resolved.sha256)
        {
            return Vec::new();
        }
        let (status, message) = match &previous {
            Some(p) => (
                Status::ModelSwitched,
                format!("{} → {} (from {})", p.uri, resolved.uri, self.config.uri),
            ),
            None => (
                Status::ModelLoaded,
                format!("{} (from {})", resolved.uri, self.config.uri),
            ),
        };
        let mut e = event(batch, status, message);
        e.model_version = resolved.version;
        tracing::info!(model = %resolved.uri, "{}", status.as_str());
        self.current = Some(Loaded { forest, resolved });
        vec![e]
    }

    /// The features `forest` needs that silver has no numeric column for.
    fn lacking(&self, forest: &IsolationForest) -> Vec<String> {
        forest
            .feature_names()
            .iter()
            .filter(|f| !self.numeric.contains(f))
            .cloned()
            .collect()
    }

    /// A version silver cannot be scored with: the current one keeps scoring (a registry
    /// action never stops ingestion), or `on_missing_model` decides when there is none.
    fn reject(
        &mut self,
        batch: u64,
        resolved: &ResolvedModel,
        lacking: &[String],
    ) -> Result<Vec<FlowEvent>> {
        let reason = format!(
            "{} needs feature(s) {} that silver does not have as numeric columns",
            resolved.uri,
            lacking.join(", ")
        );
        let said = self.rejected.as_deref() == Some(resolved.sha256.as_str());
        self.rejected = Some(resolved.sha256.clone());
        let message = match (&self.current, self.config.on_missing) {
            (Some(current), _) => format!("{reason}; still scoring with {}", current.resolved.uri),
            (None, OnMissingModel::Fail) => {
                return Err(Error::ModelRejected {
                    uri: self.config.uri.clone(),
                    reason,
                });
            }
            (None, OnMissingModel::SkipScoring) => {
                format!("{reason}; score columns are null (on_missing_model = skip_scoring)")
            }
        };
        tracing::warn!("model_rejected: {message}");
        Ok(match said {
            true => Vec::new(),
            false => vec![event(batch, Status::ModelRejected, message)],
        })
    }

    /// No model could be loaded: keep the current one, or do what `on_missing_model` says.
    fn unavailable(&mut self, batch: u64, e: ModelError) -> Result<Vec<FlowEvent>> {
        let missing = matches!(e, ModelError::RegistryNotFound { .. });
        let status = match missing {
            true => Status::ModelMissing,
            false => Status::RegistryUnreachable,
        };
        if let Some(current) = &self.current {
            let uri = &current.resolved.uri;
            tracing::warn!("{}: {e}; still scoring with {uri}", status.as_str());
            let message = format!("{e}; still scoring with {uri}");
            return Ok(vec![event(batch, status, message)]);
        }
        match self.config.on_missing {
            OnMissingModel::Fail => Err(Error::NoModel {
                uri: self.config.uri.clone(),
                source: Box::new(e),
            }),
            OnMissingModel::SkipScoring => {
                // A model may be promoted any moment: look again at the next batch (an
                // unreachable registry is retried after `model_refresh`).
                if missing {
                    self.last_check = None;
                }
                tracing::warn!("no model to score with ({e}); score columns stay null");
                let message =
                    format!("{e}; score columns are null (on_missing_model = skip_scoring)");
                Ok(vec![event(batch, status, message)])
            }
        }
    }
}

fn event(batch: u64, status: Status, message: String) -> FlowEvent {
    FlowEvent {
        batch_id: Some(batch),
        error: Some(message),
        ..FlowEvent::new(Flow::Model, status)
    }
}
