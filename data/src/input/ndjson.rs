//! Landed NDJSON as a frame, keeping going past bad lines: each line that is not a JSON
//! object is skipped and remembered with its file and line number, so a tool can say how many
//! and where, instead of failing on the first with a bare parser message.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{InputError, Result};

/// How many skipped lines are kept with their place and reason (all are counted).
const KEPT: usize = 5;

/// A line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// The lines an input skipped: the count, and the first few with their place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    pub count: usize,
    pub first: Vec<SkippedLine>,
}

impl Skipped {
    fn note(&mut self, file: &Path, line: usize, reason: String) {
        self.count += 1;
        if self.first.len() < KEPT {
            self.first.push(SkippedLine {
                file: file.to_path_buf(),
                line,
                reason,
            });
        }
    }

    pub fn merge(&mut self, other: Skipped) {
        self.count += other.count;
        let room = KEPT.saturating_sub(self.first.len());
        self.first.extend(other.first.into_iter().take(room));
    }
}

impl std::fmt::Display for Skipped {
    /// `3 malformed line(s) skipped: a.json:2 (expected value at line 1 column 1), …`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} malformed line(s) skipped", self.count)?;
        for (i, s) in self.first.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{}:{} ({})", s.file.display(), s.line, s.reason)?;
        }
        if self.count > self.first.len() {
            write!(f, ", …")?;
        }
        Ok(())
    }
}

/// The lines of NDJSON text with their 1-based numbers: a UTF-8 byte-order mark at the start
/// and CRLF line ends are ordinary text files' habits, and blank lines are no records. Every
/// NDJSON reader of isolake (bronze's, `init`'s sample, this one) splits lines with it.
pub fn lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    text.split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
}

/// Reads one NDJSON file; lines that are not a JSON object are skipped and noted in
/// `skipped`. Each line is only checked here (its values skipped unbuilt): polars parses the
/// good ones once.
pub fn read(path: &Path, skipped: &mut Skipped) -> Result<DataFrame> {
    use serde::de::IgnoredAny;
    let bytes = std::fs::read(path).map_err(|e| InputError::io(path, e))?;
    let mut good: Vec<u8> = Vec::with_capacity(bytes.len());
    for (number, line) in lines(&bytes) {
        let object = line.trim_ascii_start().first() == Some(&b'{');
        match serde_json::from_slice::<IgnoredAny>(line) {
            Ok(_) if object => {
                good.extend_from_slice(line);
                good.push(b'\n');
            }
            Ok(_) => skipped.note(path, number, "not a JSON object".into()),
            Err(e) => skipped.note(path, number, e.to_string()),
        }
    }
    if good.is_empty() {
        return Ok(DataFrame::empty());
    }
    JsonReader::new(std::io::Cursor::new(good))
        .with_json_format(JsonFormat::JsonLines)
        .infer_schema_len(None)
        .finish()
        .map_err(|source| InputError::Parse {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let text = "\u{feff}{\"a\":1,\"b\":\"x\"}\r\n{broken\n\n[1,2]\n{\"a\":2.5,\"b\":\"y\"}\n";
        std::fs::write(&path, text).unwrap();
        let mut skipped = Skipped::default();
        let df = read(&path, &mut skipped).unwrap();
        assert_eq!(df.height(), 2);
        assert_eq!(df.column("a").unwrap().dtype(), &DataType::Float64);
        assert_eq!(skipped.count, 2);
        let places: Vec<usize> = skipped.first.iter().map(|s| s.line).collect();
        assert_eq!(places, vec![2, 4]);
        assert!(skipped.first[1].reason.contains("not a JSON object"));
        let shown = skipped.to_string();
        assert!(
            shown.starts_with("2 malformed line(s) skipped: "),
            "{shown}"
        );
        assert!(shown.contains("t.json:2 ("), "{shown}");
    }
}
