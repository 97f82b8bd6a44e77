//! The Apache Flink 2.3 reference fixtures (copied from the workplace's shared data; see
//! `tests/fixtures/flink/README.md`): the inputs and the output Flink printed for them, and the
//! pipeline config the transactions fixture is landed with.

use std::path::PathBuf;

/// The Flink fixtures dir. Found at run time: a compile-time path goes stale across clones.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    PathBuf::from(dir).join("fixtures/flink")
}

/// The transactions fixture, `txns/txns.json`: one JSON object per line.
pub fn txns_json() -> PathBuf {
    fixtures().join("txns/txns.json")
}

/// The lines of [`txns_json`], in file order, to land in pieces.
pub fn txns_lines() -> Vec<String> {
    std::fs::read_to_string(txns_json())
        .expect("read txns/txns.json")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The schema of [`txns_json`] (epoch-millisecond event times) and Flink's DataStream rule
/// without a window, as detector `basic`; `more` (further TOML, e.g. detectors) follows.
/// One text, so that the tests comparing with Flink's output land the fixture alike.
pub fn txns_config(more: &str) -> String {
    format!("{TXNS_CONFIG}{more}")
}

const TXNS_CONFIG: &str = r#"
[schema]
fields = { account_id = "string", timestamp = "timestamp", amount = "double" }
event_time = "timestamp"
event_time_format = "epoch_ms"

[[detectors]]
name = "basic"
kind = "small_then_large"
"#;
