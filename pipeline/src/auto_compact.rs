//! Auto compaction in continuous runs: every `[maintenance] auto_compact_every` committed
//! batches, the small files micro-batches leave behind are compacted, on a thread of their
//! own, so ingestion never waits for it.
//!
//! A compaction rewrites only files below `target_file_bytes` in one `dataChange = false`
//! commit: the same rows in fewer files, app transactions and batch progress untouched, so a
//! query gives the same result before and after. When a batch commits meanwhile, the
//! compaction is rebased onto it (see `isolake_data::lake::rewrite`); when a manual
//! `optimize` got to the same files first, it gives up and the next round tries again.

use std::thread::JoinHandle;

use isolake_data::lake::{Compacted, LakeTable};

use crate::config::Config;
use crate::metrics::Shared;

/// Batches between compactions when `auto_compact_every` is not set: Databricks' auto
/// compaction threshold (50 small files). It is on by default because deltalake replays the
/// table's whole file list (with statistics) at every commit, so without it the cost of a
/// batch grows with the number of batches already run (`pipeline/benches/latency.sh`, 100
/// batches: p50 37 ms / p99 382 ms without, 31 / 184 ms every 50, 27 / 189 ms every 10).
pub const DEFAULT_EVERY: u64 = 50;

/// Files below this size are rewritten when `target_file_bytes` is not set.
pub const DEFAULT_TARGET_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Counts committed batches and starts a background compaction every `every` of them.
pub struct AutoCompactor {
    every: u64,
    target_file_bytes: u64,
    config: Config,
    since_last: u64,
    running: Option<JoinHandle<()>>,
    metrics: Option<Shared>,
}

impl AutoCompactor {
    /// `None` when `[maintenance] auto_compact_every = 0` turns it off.
    pub fn new(config: &Config, metrics: Option<Shared>) -> Option<Self> {
        let every = config
            .maintenance
            .auto_compact_every
            .unwrap_or(DEFAULT_EVERY);
        if every == 0 {
            return None;
        }
        Some(Self {
            every,
            target_file_bytes: config
                .maintenance
                .target_file_bytes
                .unwrap_or(DEFAULT_TARGET_FILE_BYTES),
            config: config.clone(),
            since_last: 0,
            running: None,
            metrics,
        })
    }

    /// Called after each committed batch. A compaction that comes due while the previous one
    /// still runs waits for the next batch (never two at once, never blocking the caller).
    pub fn after_batch(&mut self) {
        self.since_last += 1;
        if self.since_last < self.every || self.running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.reap();
        let config = self.config.clone();
        let target = self.target_file_bytes;
        let metrics = self.metrics.clone();
        match std::thread::Builder::new()
            .name("isolake-compact".into())
            .spawn(move || compact_all(&config, target, metrics.as_ref()))
        {
            Ok(handle) => {
                self.since_last = 0;
                self.running = Some(handle);
            }
            Err(e) => tracing::warn!(error = %e, "auto compaction could not start a thread"),
        }
    }

    /// Waits for a running compaction (at the end of a run; it only rewrites small files).
    pub fn finish(&mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        if let Some(handle) = self.running.take()
            && handle.join().is_err()
        {
            tracing::warn!("auto compaction panicked; the next one starts afresh");
        }
    }
}

/// Compacts the small files of every table batches append to (detector tables too, listed
/// afresh each round), on a runtime of this thread's own (polars needs a multi-threaded tokio
/// runtime; one worker is enough).
fn compact_all(config: &Config, target: u64, metrics: Option<&Shared>) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "auto compaction could not start a runtime");
            return;
        }
    };
    let tables = match runtime.block_on(crate::tables::appended(config)) {
        Ok(tables) => tables,
        Err(e) => {
            tracing::warn!(error = %e, "auto compaction could not list the tables");
            return;
        }
    };
    runtime.block_on(async {
        for (name, location) in &tables {
            let outcome: isolake_data::Result<Option<Compacted>> = async {
                if !LakeTable::exists(location).await? {
                    return Ok(None);
                }
                let mut table = LakeTable::open(location).await?;
                table.compact_small(target).await.map(Some)
            }
            .await;
            match outcome {
                Ok(Some(compacted)) if compacted.version.is_some() => {
                    tracing::info!(
                        table = name,
                        files_before = compacted.files_before,
                        files_after = compacted.files_after,
                        rows = compacted.rows,
                        "auto compaction"
                    );
                    if let Some(m) = metrics
                        && let Ok(mut m) = m.lock()
                    {
                        m.record_compaction(name, true);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(table = name, error = %e, "auto compaction skipped; the next round tries again");
                    if let Some(m) = metrics
                        && let Ok(mut m) = m.lock()
                    {
                        m.record_compaction(name, false);
                    }
                }
            }
        }
    });
}
