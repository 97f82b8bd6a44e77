//! The model that scores gold: resolved from the registry, cached, and re-resolved every
//! `model_refresh` so that a newly promoted version takes over at the next batch boundary
//! (hot swap) — without a restart, and with the switch in the event log.
//!
//! When the registry cannot be reached the cached version keeps scoring (with a warning);
//! when no model is registered yet, `on_missing_model` decides: null scores, or fail.

use std::path::PathBuf;
use std::time::Instant;

use isolake_models::{Error as ModelError, IsolationForest, ModelUri, Registry, ResolvedModel};

use crate::config::{ModelConfig, OnMissingModel};
use crate::error::{Error, Result};
use crate::event_log::FlowEvent;

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
}

impl ModelSlot {
    pub fn new(config: &ModelConfig, lake_dir: &std::path::Path) -> Self {
        let default_registry = lake_dir.join("_registry").to_string_lossy().into_owned();
        let registry_uri = config
            .registry
            .clone()
            .unwrap_or_else(|| Registry::uri_from_env_or(&default_registry));
        let pinned = !matches!(ModelUri::parse(&config.uri), Ok(ModelUri::Alias { .. }));
        Self {
            config: config.clone(),
            registry_uri,
            cache_dir: std::env::var_os("ISOLAKE_MODEL_CACHE").map(PathBuf::from),
            current: None,
            last_check: None,
            pinned,
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
        let event = |status: &str, message: String| FlowEvent {
            batch_id: Some(batch),
            flow: "model".into(),
            status: status.into(),
            error: Some(message),
            ..Default::default()
        };
        let loaded = Registry::open(&self.registry_uri)
            .and_then(|r| r.load_model(&self.config.uri, self.cache_dir.as_deref()));
        match loaded {
            Ok((forest, resolved)) => {
                let previous = self.current.as_ref().map(|c| c.resolved.clone());
                if previous
                    .as_ref()
                    .is_some_and(|p| p.sha256 == resolved.sha256)
                {
                    return Ok(Vec::new());
                }
                let message = match &previous {
                    Some(p) => format!("{} → {} (from {})", p.uri, resolved.uri, self.config.uri),
                    None => format!("{} (from {})", resolved.uri, self.config.uri),
                };
                let status = if previous.is_some() {
                    "model_switched"
                } else {
                    "model_loaded"
                };
                let mut e = event(status, message);
                e.model_version = resolved.version;
                tracing::info!(model = %resolved.uri, "{status}");
                self.current = Some(Loaded { forest, resolved });
                Ok(vec![e])
            }
            Err(e) => {
                let missing = matches!(e, ModelError::RegistryNotFound { .. });
                if let Some(current) = &self.current {
                    let status = if missing {
                        "model_missing"
                    } else {
                        "registry_unreachable"
                    };
                    tracing::warn!("{status}: {e}; still scoring with {}", current.resolved.uri);
                    return Ok(vec![event(
                        status,
                        format!("{e}; still scoring with {}", current.resolved.uri),
                    )]);
                }
                match self.config.on_missing {
                    OnMissingModel::Fail => Err(Error::Model {
                        uri: self.config.uri.clone(),
                        source: Box::new(e),
                    }),
                    OnMissingModel::SkipScoring => {
                        // A model may be promoted any moment: look again at the next batch
                        // (an unreachable registry is retried after `model_refresh`).
                        if missing {
                            self.last_check = None;
                        }
                        tracing::warn!("no model to score with ({e}); score columns stay null");
                        Ok(vec![event(
                            if missing {
                                "model_missing"
                            } else {
                                "registry_unreachable"
                            },
                            format!(
                                "{e}; score columns are null (on_missing_model = skip_scoring)"
                            ),
                        )])
                    }
                }
            }
        }
    }
}
