//! A generated line and what must become of it, and the valid records' lines.

use serde_json::Value;

use crate::record::{Record, object};
use crate::rng::Rng;

/// Where a landed line must end up.
#[derive(Debug, Clone)]
pub enum Fate {
    /// Whitespace only: no row anywhere.
    Blank,
    /// Silver, with these declared values (what the reference pipeline is fed).
    Silver(Record),
    /// Quarantine with this id, `reason` among its `_failed_expectations`.
    Quarantine {
        id: Option<String>,
        reason: &'static str,
    },
    /// Bronze's `_corrupt_record` holds the raw text; quarantine says `corrupt_record`.
    Corrupt,
}

/// One generated line (no line end) and what must become of it.
#[derive(Debug, Clone)]
pub struct Line {
    pub bytes: Vec<u8>,
    /// One of `KINDS`: what the line is, for coverage and failure messages.
    pub kind: &'static str,
    pub fate: Fate,
    /// Keys bronze's `_rescued_data` must hold, with these values.
    pub rescued: Vec<(String, Value)>,
}

impl Line {
    pub fn new(kind: &'static str, bytes: impl Into<Vec<u8>>, fate: Fate) -> Self {
        Self {
            bytes: bytes.into(),
            kind,
            fate,
            rescued: Vec::new(),
        }
    }

    /// The line for a failure message (cut, invalid UTF-8 shown as U+FFFD).
    pub fn show(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let cut: String = text.chars().take(160).collect();
        if cut.len() < text.len() {
            format!("{cut:?}… ({} bytes)", self.bytes.len())
        } else {
            format!("{cut:?}")
        }
    }
}

/// Quarantine with the id `id`, failing `reason`.
pub fn quarantined(id: &str, reason: &'static str) -> Fate {
    Fate::Quarantine {
        id: Some(id.to_string()),
        reason,
    }
}

/// Quarantine with no id: the line has none, so it fails `has_id`.
pub fn quarantined_without_id() -> Fate {
    Fate::Quarantine {
        id: None,
        reason: "has_id",
    }
}

/// A valid record's line: schema order or shuffled, `:` or `": "`, sometimes padded.
pub fn valid_line(rng: &mut Rng, record: &Record) -> Line {
    let mut fields = record.fields();
    if rng.chance(30) {
        rng.shuffle(&mut fields);
    }
    let colon = if rng.chance(20) { ": " } else { ":" };
    let mut text = object(&fields, colon);
    if rng.chance(10) {
        text = format!("  {text}\t");
    }
    Line::new("valid", text, Fate::Silver(record.clone()))
}
