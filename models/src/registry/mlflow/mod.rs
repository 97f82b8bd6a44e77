//! An MLflow tracking server as a registry, over its REST API (`/api/2.0/mlflow/…`), with
//! artifacts through the server's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/…`,
//! a server started with `--serve-artifacts`, MLflow's default).
//!
//! What the client respects, as MLflow 3.x behaves: ids, versions and param values are JSON
//! strings; empty fields are omitted from responses; a NaN metric is sent and returned as the
//! string `"NaN"`; a missing alias is an HTTP 400 (`INVALID_PARAMETER_VALUE`), a missing
//! version a 404 (`RESOURCE_DOES_NOT_EXIST`). Stages are deprecated: aliases only.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Client;
use serde::Deserialize;
use serde_json::{Value, json};

mod backend;

use super::Credentials;
use super::types::ModelVersion;
use crate::error::{Error, Result};

/// MLflow's log-batch limits per request.
const MAX_PARAMS: usize = 100;
const MAX_TAGS: usize = 100;
const MAX_METRICS: usize = 1000;

/// An MLflow tracking server. `Debug` shows the URL and user name, never the password.
pub struct MlflowRegistry {
    /// Base URL without credentials or trailing slash.
    base: String,
    credentials: Option<Credentials>,
    client: Client,
}

impl std::fmt::Debug for MlflowRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlflowRegistry")
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// A non-success answer the caller may want to interpret (404, a missing alias...).
struct ApiError {
    status: u16,
    code: String,
    message: String,
}

impl MlflowRegistry {
    /// A client for the server at `uri` (`http(s)://host[:port][/prefix]`). Credentials in
    /// the URL (`http://user:pass@host`) take precedence over `credentials`; they are
    /// removed from the URL so they never appear in messages.
    pub fn new(uri: &str, credentials: Option<Credentials>) -> Result<Self> {
        let mut url = url::Url::parse(uri).map_err(|e| Error::RegistryInput {
            reason: format!("invalid MLflow tracking URI: {e}"),
        })?;
        let mut credentials = credentials;
        if !url.username().is_empty() {
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            credentials = Some(Credentials {
                username: decode(url.username()),
                password: decode(url.password().unwrap_or("")),
            });
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        url.set_query(None);
        url.set_fragment(None);
        let base = url.as_str().trim_end_matches('/').to_string();
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("isolake/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::RegistryInput {
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(MlflowRegistry {
            base,
            credentials,
            client,
        })
    }

    /// Sends one request; transport and authentication failures are errors, other
    /// non-success answers are returned for the caller to interpret.
    fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<std::result::Result<Vec<u8>, ApiError>> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url).query(query);
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        request = match body {
            Some(Body::Json(v)) => request.json(&v),
            Some(Body::Bytes(b)) => request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(b),
            None => request,
        };
        let response = request.send().map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .map_err(|e| self.transport_error(e))?
            .to_vec();
        if (200..300).contains(&status) {
            return Ok(Ok(bytes));
        }
        if status == 401 || status == 403 {
            let hint = if self.credentials.is_some() {
                "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            } else {
                "the server requires a login: set MLFLOW_TRACKING_USERNAME and \
                 MLFLOW_TRACKING_PASSWORD"
            };
            let what = if status == 401 {
                "authentication failed"
            } else {
                "permission denied"
            };
            return Err(self.refused(format!("{what} (HTTP {status}): {hint}")));
        }
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = |k: &str| parsed.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Err(ApiError {
            status,
            code: text("error_code").unwrap_or_default(),
            message: text("message").unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
            }),
        }))
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        let e = e.without_url();
        let reason = if e.is_connect() {
            format!(
                "cannot connect ({}); check the URL and that the MLflow server is running",
                source_chain(&e)
            )
        } else if e.is_timeout() {
            "the request timed out; the server is overloaded or unreachable".into()
        } else {
            source_chain(&e)
        };
        Error::RegistryUnreachable {
            registry: self.base.clone(),
            reason,
        }
    }

    fn refused(&self, reason: String) -> Error {
        Error::RegistryRefused {
            registry: self.base.clone(),
            reason,
        }
    }

    fn api_error(&self, what: &str, e: ApiError) -> Error {
        self.refused(format!(
            "{what}: HTTP {} {} {}",
            e.status, e.code, e.message
        ))
    }

    /// A JSON API call that must succeed.
    fn call(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value> {
        let path = format!("/api/2.0/mlflow/{endpoint}");
        match self.send(method, &path, query, body.map(Body::Json))? {
            Ok(bytes) => self.parse(endpoint, &bytes),
            Err(e) => Err(self.api_error(endpoint, e)),
        }
    }

    /// A JSON API call whose "does not exist" answer is `None`.
    fn call_optional(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
        missing: impl Fn(&ApiError) -> bool,
    ) -> Result<Option<Value>> {
        let path = format!("/api/2.0/mlflow/{endpoint}");
        match self.send(Method::GET, &path, query, None)? {
            Ok(bytes) => self.parse(endpoint, &bytes).map(Some),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(self.api_error(endpoint, e)),
        }
    }

    /// POSTs `{"name": name}` to a `.../create` endpoint: the created object, or `None` when
    /// one of that name already exists (a concurrent creator is not an error).
    fn create_named(&self, endpoint: &str, name: &str) -> Result<Option<Value>> {
        let path = format!("/api/2.0/mlflow/{endpoint}");
        let body = Some(Body::Json(json!({ "name": name })));
        match self.send(Method::POST, &path, &[], body)? {
            Ok(bytes) => self.parse(endpoint, &bytes).map(Some),
            Err(e) if e.code == "RESOURCE_ALREADY_EXISTS" => Ok(None),
            Err(e) => Err(self.api_error(endpoint, e)),
        }
    }

    fn parse(&self, endpoint: &str, bytes: &[u8]) -> Result<Value> {
        if bytes.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(bytes).map_err(|e| {
            self.refused(format!(
                "{endpoint} answered with something that is not JSON ({e}); is this an MLflow \
                 server?"
            ))
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, what: &str, v: Value) -> Result<T> {
        serde_json::from_value(v)
            .map_err(|e| self.refused(format!("unexpected {what} in the server's answer: {e}")))
    }

    /// The proxied artifact path of an `mlflow-artifacts:` URI.
    fn artifact_path(&self, artifact_uri: &str, rel: &str) -> Result<String> {
        let rest = artifact_uri
            .strip_prefix("mlflow-artifacts:")
            .ok_or_else(|| {
                self.refused(format!(
                    "artifacts are stored at {artifact_uri}, which isolake cannot reach through \
                 the server; start the server with --serve-artifacts (MLflow's default)"
                ))
            })?;
        // `mlflow-artifacts://host:port/path` or `mlflow-artifacts:/path`.
        let path = match rest.strip_prefix("//") {
            Some(with_authority) => with_authority
                .split_once('/')
                .map_or("", |(_, p)| p)
                .to_string(),
            None => rest.trim_start_matches('/').to_string(),
        };
        let segments: Vec<&str> = path
            .split('/')
            .chain(rel.split('/'))
            .filter(|s| !s.is_empty())
            .collect();
        // Ids and isolake's artifact names are plain; anything else would need escaping.
        let plain = |s: &&str| {
            *s != "."
                && *s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if let Some(bad) = segments.iter().find(|s| !plain(s)) {
            return Err(Error::RegistryInput {
                reason: format!(
                    "artifact path segment {bad:?} (of {artifact_uri} / {rel}) must use only \
                     letters, digits, `.`, `_` and `-`"
                ),
            });
        }
        let encoded = segments;
        Ok(format!(
            "/api/2.0/mlflow-artifacts/artifacts/{}",
            encoded.join("/")
        ))
    }

    fn version_from(&self, v: Value) -> Result<ModelVersion> {
        let raw: RawVersion = self.decode("model version", v)?;
        Ok(ModelVersion {
            name: raw.name,
            version: raw
                .version
                .parse()
                .map_err(|_| self.refused(format!("version {:?} is not a number", raw.version)))?,
            source: raw.source,
            run_id: raw.run_id.filter(|r| !r.is_empty()),
            tags: raw.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            aliases: raw.aliases,
            creation_timestamp: raw.creation_timestamp,
        })
    }
}

enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

#[derive(Deserialize)]
struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct RawVersion {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    creation_timestamp: i64,
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
