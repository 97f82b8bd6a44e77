//! A table's log as history: every version's commit information, app transactions and
//! the table's id, read from the commit entries themselves (what start-up and `query`'s
//! history need, and what deltalake's snapshot does not keep).

use serde_json::{Map, Value};

use super::table::{AppTransaction, LakeTable, VersionInfo};
use crate::error::Result;

impl LakeTable {
    /// Every version still in the log, oldest first, with its commit information.
    pub async fn versions(&self) -> Result<Vec<VersionInfo>> {
        let latest = self.table.get_latest_version().await?;
        let mut out = Vec::new();
        for version in 0..=latest {
            if let Some(info) = self.version_info(version).await? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// The id the table got at creation (from version 0's `metaData`), or `None` once that
    /// entry is cleaned from the log. A table deleted and created again has another id.
    pub async fn table_id(&self) -> Result<Option<String>> {
        Ok(self.version_info(0).await?.and_then(|v| v.table_id))
    }

    /// The commit information of one version, or `None` if its log entry is gone.
    pub async fn version_info(&self, version: u64) -> Result<Option<VersionInfo>> {
        let Some(bytes) = self.table.log_store().read_commit_entry(version).await? else {
            return Ok(None);
        };
        let mut info = VersionInfo {
            version,
            timestamp_ms: None,
            operation: None,
            commit_info: Map::new(),
            app_transactions: Vec::new(),
            table_id: None,
        };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let action: Value = serde_json::from_slice(line)?;
            if let Some(Value::Object(ci)) = action.get("commitInfo") {
                info.timestamp_ms = ci.get("timestamp").and_then(Value::as_i64);
                info.operation = ci
                    .get("operation")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                info.commit_info = ci.clone();
            } else if let Some(Value::Object(meta)) = action.get("metaData") {
                info.table_id = meta.get("id").and_then(Value::as_str).map(str::to_string);
            } else if let Some(txn) = action.get("txn")
                && let (Some(app_id), Some(v)) = (
                    txn.get("appId").and_then(Value::as_str),
                    txn.get("version").and_then(Value::as_i64),
                )
            {
                info.app_transactions.push(AppTransaction {
                    app_id: app_id.to_string(),
                    version: v,
                });
            }
        }
        Ok(Some(info))
    }
}
