//! MLflow's REST API as a [`RegistryBackend`]: experiments, runs, artifacts through the
//! artifact proxy, registered versions, tags and aliases.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Body, MAX_METRICS, MAX_PARAMS, MAX_TAGS, MlflowRegistry};
use crate::error::{Error, Result};
use crate::registry::backend::RegistryBackend;
use crate::registry::types::{
    LoggedModel, ModelVersion, RunData, RunInfo, RunStatus, TAG_LOGGED_MODEL,
};

fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// A metric value as MLflow's JSON accepts it: non-finite values as strings.
fn metric_value(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

/// `LoggedModelStatus.LOGGED_MODEL_READY` in MLflow's protocol.
const LOGGED_MODEL_READY: i32 = 2;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Quotes a value for an MLflow search filter.
fn filter_literal(v: &str) -> Result<String> {
    if v.contains('\'') || v.contains('\\') {
        return Err(Error::RegistryInput {
            reason: format!("{v:?} may not contain quotes or backslashes"),
        });
    }
    Ok(format!("'{v}'"))
}

impl RegistryBackend for MlflowRegistry {
    fn describe(&self) -> String {
        self.base.clone()
    }

    fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        let id = |v: &Value| {
            v.pointer("/experiment/experiment_id")
                .or_else(|| v.get("experiment_id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let get = || {
            self.call_optional(
                "experiments/get-by-name",
                &[("experiment_name", name)],
                |e| e.code == "RESOURCE_DOES_NOT_EXIST",
            )
        };
        if let Some(v) = get()? {
            return id(&v).ok_or_else(|| self.refused("get-by-name returned no id".into()));
        }
        match self.create_named("experiments/create", name)? {
            Some(created) => {
                id(&created).ok_or_else(|| self.refused("experiments/create returned no id".into()))
            }
            // Created by someone else meanwhile.
            None => get()?
                .as_ref()
                .and_then(id)
                .ok_or_else(|| self.refused(format!("experiment {name:?} vanished"))),
        }
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let v = self.call(
            Method::POST,
            "runs/create",
            &[],
            Some(json!({
                "experiment_id": experiment_id,
                "run_name": run_name,
                "start_time": now_ms(),
                "tags": tags_json(tags),
            })),
        )?;
        let info = v
            .pointer("/run/info")
            .cloned()
            .ok_or_else(|| self.refused("runs/create returned no run".into()))?;
        let field = |k: &str| {
            info.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Ok(RunInfo {
            run_id: field("run_id"),
            experiment_id: field("experiment_id"),
            artifact_uri: field("artifact_uri"),
        })
    }

    fn log_batch(&self, run_id: &str, data: &RunData) -> Result<()> {
        let ts = now_ms();
        let params: Vec<Value> = data
            .params
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let metrics: Vec<Value> = data
            .metrics
            .iter()
            .map(|(k, v)| {
                let mut m =
                    json!({"key": k, "value": metric_value(*v), "timestamp": ts, "step": 0});
                if let Some(id) = &data.model_id {
                    m["model_id"] = json!(id);
                }
                m
            })
            .collect();
        let tags: Vec<Value> = data
            .tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let (mut p, mut m, mut t) = (&params[..], &metrics[..], &tags[..]);
        while !(p.is_empty() && m.is_empty() && t.is_empty()) {
            let (pa, pr) = p.split_at(p.len().min(MAX_PARAMS));
            let (ma, mr) = m.split_at(m.len().min(MAX_METRICS));
            let (ta, tr) = t.split_at(t.len().min(MAX_TAGS));
            self.call(
                Method::POST,
                "runs/log-batch",
                &[],
                Some(json!({"run_id": run_id, "params": pa, "metrics": ma, "tags": ta})),
            )?;
            (p, m, t) = (pr, mr, tr);
        }
        Ok(())
    }

    fn log_artifact(&self, run: &RunInfo, path: &str, bytes: &[u8]) -> Result<()> {
        let url_path = self.artifact_path(&run.artifact_uri, path)?;
        match self.send(
            Method::PUT,
            &url_path,
            &[],
            Some(Body::Bytes(bytes.to_vec())),
        )? {
            Ok(_) => Ok(()),
            Err(e) => Err(self.api_error(&format!("uploading artifact {path}"), e)),
        }
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        self.call(
            Method::POST,
            "runs/update",
            &[],
            Some(json!({"run_id": run_id, "status": status.as_str(), "end_time": now_ms()})),
        )?;
        Ok(())
    }

    fn create_logged_model(
        &self,
        run: &RunInfo,
        name: &str,
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<Option<LoggedModel>> {
        let params: Vec<Value> = params
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let body = json!({
            "experiment_id": run.experiment_id,
            "name": name,
            "model_type": "isolake isolation forest",
            "source_run_id": run.run_id,
            "params": params,
            "tags": tags_json(tags),
        });
        let path = "/api/2.0/mlflow/logged-models";
        let created = match self.send(Method::POST, path, &[], Some(Body::Json(body)))? {
            Ok(bytes) => self.parse("logged-models", &bytes)?,
            // A server before MLflow 3: versions are registered from the run as before.
            Err(e) if e.status == 404 || e.code == "ENDPOINT_NOT_FOUND" => return Ok(None),
            Err(e) => return Err(self.api_error("logged-models", e)),
        };
        let info = &created["model"]["info"];
        match (info["model_id"].as_str(), info["artifact_uri"].as_str()) {
            (Some(id), Some(uri)) => Ok(Some(LoggedModel {
                id: id.to_string(),
                artifact_uri: uri.to_string(),
            })),
            _ => Err(self.refused(format!("logged-models returned no model id: {created}"))),
        }
    }

    fn finalize_logged_model(
        &self,
        run: &RunInfo,
        model: &LoggedModel,
        files: &[(String, Vec<u8>)],
    ) -> Result<()> {
        for (file, bytes) in files {
            let url_path = self.artifact_path(&model.artifact_uri, file)?;
            let body = Some(Body::Bytes(bytes.clone()));
            if let Err(e) = self.send(Method::PUT, &url_path, &[], body)? {
                return Err(self.api_error(&format!("uploading {file} to the logged model"), e));
            }
        }
        let ready = json!({"model_id": model.id, "status": LOGGED_MODEL_READY});
        self.call(
            Method::PATCH,
            &format!("logged-models/{}", model.id),
            &[],
            Some(ready),
        )?;
        let output = json!({"run_id": run.run_id, "models": [{"model_id": model.id, "step": 0}]});
        self.call(Method::POST, "runs/outputs", &[], Some(output))?;
        Ok(())
    }

    fn register_version(
        &self,
        name: &str,
        run: &RunInfo,
        artifact_dir: &str,
        tags: &[(String, String)],
    ) -> Result<(ModelVersion, bool)> {
        self.create_named("registered-models/create", name)?;
        let mut source = format!(
            "{}/{}",
            run.artifact_uri.trim_end_matches('/'),
            artifact_dir.trim_matches('/')
        );
        let logged = tags.iter().find(|(k, _)| k == TAG_LOGGED_MODEL);
        if let Some((_, id)) = logged {
            // MLflow wants a logged model's version to come from the logged model's files.
            source = self.logged_model_artifacts(id)?;
        }
        let mut body = json!({
            "name": name,
            "source": source,
            "run_id": run.run_id,
            "tags": tags_json(tags),
        });
        if let Some((_, id)) = logged {
            body["model_id"] = json!(id);
        }
        let v = self.call(Method::POST, "model-versions/create", &[], Some(body))?;
        let version = v
            .get("model_version")
            .cloned()
            .ok_or_else(|| self.refused("model-versions/create returned no version".into()))?;
        Ok((self.version_from(version)?, true))
    }

    fn find_versions_by_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<ModelVersion>> {
        if key.contains('`') {
            return Err(Error::RegistryInput {
                reason: format!("tag key {key:?} may not contain backticks"),
            });
        }
        let filter = format!(
            "name={} and tag.`{key}`={}",
            filter_literal(name)?,
            filter_literal(value)?
        );
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![("filter", filter.as_str()), ("max_results", "1000")];
            if !token.is_empty() {
                query.push(("page_token", token.as_str()));
            }
            let v = self.call(Method::GET, "model-versions/search", &query, None)?;
            if let Some(list) = v.get("model_versions").and_then(Value::as_array) {
                for item in list {
                    out.push(self.version_from(item.clone())?);
                }
            }
            match v.get("next_page_token").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => break,
            }
        }
        Ok(out)
    }

    fn get_version(&self, name: &str, version: u64) -> Result<Option<ModelVersion>> {
        let version = version.to_string();
        self.call_optional(
            "model-versions/get",
            &[("name", name), ("version", &version)],
            |e| e.code == "RESOURCE_DOES_NOT_EXIST",
        )?
        .and_then(|v| v.get("model_version").cloned())
        .map(|v| self.version_from(v))
        .transpose()
    }

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        self.call(
            Method::POST,
            "model-versions/set-tag",
            &[],
            Some(json!({"name": name, "version": version.to_string(), "key": key, "value": value})),
        )?;
        Ok(())
    }

    fn get_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>> {
        // A missing alias is a 400 INVALID_PARAMETER_VALUE, a missing model a 404.
        self.call_optional(
            "registered-models/alias",
            &[("name", name), ("alias", alias)],
            |e| {
                e.code == "RESOURCE_DOES_NOT_EXIST"
                    || (e.status == 400
                        && e.code == "INVALID_PARAMETER_VALUE"
                        && e.message.contains("not found"))
            },
        )?
        .and_then(|v| v.get("model_version").cloned())
        .map(|v| self.version_from(v))
        .transpose()
    }

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        self.call(
            Method::POST,
            "registered-models/alias",
            &[],
            Some(json!({"name": name, "alias": alias, "version": version.to_string()})),
        )?;
        Ok(())
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.call(
            Method::DELETE,
            "registered-models/alias",
            &[],
            Some(json!({"name": name, "alias": alias})),
        )?;
        Ok(())
    }

    fn download_artifact(&self, version: &ModelVersion, file: &str) -> Result<Vec<u8>> {
        let url_path = self.artifact_path(&version.source, file)?;
        match self.send(Method::GET, &url_path, &[], None)? {
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(self.api_error(&format!("downloading {}/{file}", version.source), e)),
        }
    }
}

impl MlflowRegistry {
    /// The artifact location of logged model `id`.
    fn logged_model_artifacts(&self, id: &str) -> Result<String> {
        let model = self.call(Method::GET, &format!("logged-models/{id}"), &[], None)?;
        model["model"]["info"]["artifact_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.refused(format!("logged model {id} has no artifact location")))
    }
}
