//! `isolake-pipeline`: landed JSON files → bronze → silver (+ quarantine) Delta tables,
//! exactly once, with expectations and an event log; gold joins the same micro-batch.
//!
//! ```text
//! config      isolake.toml as plain data: parsed with positions, every problem with key and line
//! plan        the config compiled once (schemas, expectations, detectors): what runs
//! committer   every table's commit of a batch: app transaction, progress, schema evolution
//! source      the Auto Loader: listing, stability, progress from the Delta log, reading lines
//! bronze      every landed line as read, with _source_file/_line, _rescued_data, _corrupt_record
//! silver      typing, expectations (warn/drop/quarantine/fail), dedup
//! gold        scores (model UDF), rule detectors, alerts, detector state, dimensions
//! event_log   one row per flow per batch
//! lock        one running pipeline per id
//! pipeline    the micro-batch and crash recovery
//! runner      triggered and continuous modes
//! query       SQL over the lake's tables, with time travel
//! init        a commented config proposed from a sample of the landed files (types, key, …)
//! maintenance optimize (compaction, Z-order) and vacuum
//! auto_compact small-file compaction in the background of continuous runs
//! metrics     Prometheus text on /metrics while running
//! report      one self-contained HTML page of charts
//! ```

pub mod auto_compact;
pub mod bronze;
pub mod committer;
pub mod config;
pub mod durable;
pub mod error;
pub mod event_log;
pub mod gold;
pub mod init;
pub mod lake_root;
pub mod lock;
pub mod maintenance;
pub mod metrics;
pub mod pipeline;
pub mod plan;
pub mod query;
pub mod report;
pub mod runner;
pub mod schema_change;
pub mod silver;
pub mod source;
pub mod tables;

pub use config::Config;
pub use error::{Error, Result};
pub use pipeline::Pipeline;
pub use plan::Plan;
pub use runner::{Runner, Shutdown};
