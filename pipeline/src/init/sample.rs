//! The bounded sample init infers from: the landed files in listing order (the run's own
//! listing and default patterns), at most so many files and bytes, every non-blank line
//! parsed as a JSON object with its keys in file order. Lines that are not JSON objects are
//! skipped and counted, as bronze would keep them in `_corrupt_record`.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::error::InitError;
use super::stats::FieldStats;
use crate::config::Config;
use crate::error::Error;
use crate::source::listing;

/// What the sample read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Files matching the patterns.
    pub files_listed: usize,
    pub files_read: usize,
    /// Bytes parsed (after `.gz` decompression).
    pub bytes: u64,
    /// Non-blank lines read.
    pub lines: usize,
    /// Lines that were JSON objects.
    pub objects: usize,
    /// Lines that were not (bronze's `_corrupt_record`), and broken `.gz` streams.
    pub malformed: usize,
    /// The byte limit cut the sample short (files or lines were left out).
    pub truncated: bool,
}

/// The sample: what was read, and each field's values in first-seen order.
#[derive(Debug, Clone)]
pub struct Sample {
    pub stats: SampleStats,
    pub fields: Vec<FieldStats>,
}

/// The patterns a config without `source.patterns` reads: the defaults `run` uses, taken
/// from the config parser so that they cannot drift apart.
pub fn default_patterns() -> Vec<String> {
    Config::parse_all("", Path::new(".")).0.source.patterns
}

/// Reads at most `max_files` files and `max_bytes` bytes of `landing`, in listing order.
pub fn read(landing: &Path, max_files: usize, max_bytes: u64) -> Result<Sample, InitError> {
    let patterns = default_patterns();
    let listing = listing::list(landing, &patterns).map_err(|e| listing_error(landing, e))?;
    if listing.candidates.is_empty() {
        return Err(InitError::NoFiles {
            landing: landing.to_path_buf(),
            patterns: patterns.join(", "),
        });
    }
    let mut sample = Sampler::default();
    sample.stats.files_listed = listing.candidates.len();
    for candidate in listing.candidates.iter().take(max_files) {
        let budget = max_bytes.saturating_sub(sample.stats.bytes);
        if budget == 0 {
            sample.stats.truncated = true;
            break;
        }
        let (bytes, cut, broken) = read_bounded(&candidate.absolute, budget)?;
        sample.stats.files_read += 1;
        sample.stats.bytes += bytes.len() as u64;
        sample.lines(&bytes);
        sample.stats.malformed += usize::from(broken);
        if cut {
            sample.stats.truncated = true;
            break;
        }
    }
    if sample.stats.objects == 0 {
        return Err(InitError::NothingParseable {
            files: sample.stats.files_read,
            lines: sample.stats.lines,
        });
    }
    Ok(Sample {
        stats: sample.stats,
        fields: sample.fields,
    })
}

/// The listing fails only on I/O; its path and cause are kept.
fn listing_error(landing: &Path, e: Error) -> InitError {
    match e {
        Error::Io { path, source } => InitError::Landing { path, source },
        other => InitError::Landing {
            path: landing.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// At most `budget` bytes of a file (decompressed if `.gz`), cut after the last whole line
/// when the budget ends inside the file; whether it was cut; whether its gzip stream broke.
fn read_bounded(path: &Path, budget: u64) -> Result<(Vec<u8>, bool, bool), InitError> {
    let io = |source| InitError::Io {
        path: PathBuf::from(path),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let reader: Box<dyn Read> = match gz {
        true => Box::new(flate2::read::MultiGzDecoder::new(file)),
        false => Box::new(file),
    };
    let mut bytes = Vec::new();
    // One byte past the budget tells a file that fits from one that does not.
    let broken = match reader
        .take(budget.saturating_add(1))
        .read_to_end(&mut bytes)
    {
        Ok(_) => false,
        // Like bronze: the lines decoded before the break are kept.
        Err(_) if gz => true,
        Err(e) => return Err(io(e)),
    };
    let cut = bytes.len() as u64 > budget;
    if cut {
        bytes.truncate(budget as usize);
        let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
    }
    Ok((bytes, cut, broken))
}

/// The sample being filled.
#[derive(Default)]
struct Sampler {
    stats: SampleStats,
    fields: Vec<FieldStats>,
    index: HashMap<String, usize>,
}

impl Sampler {
    fn lines(&mut self, bytes: &[u8]) {
        for (_, line) in isolake_data::input::ndjson::lines(bytes) {
            self.stats.lines += 1;
            let object = std::str::from_utf8(line)
                .ok()
                .and_then(|text| serde_json::from_str::<Ordered>(text).ok());
            match object {
                Some(Ordered(pairs)) => self.object(pairs),
                None => self.stats.malformed += 1,
            }
        }
    }

    fn object(&mut self, pairs: Vec<(String, Value)>) {
        self.stats.objects += 1;
        for (i, (key, value)) in pairs.iter().enumerate() {
            // A repeated key: the last one wins, as in bronze's reader.
            if pairs[i + 1..].iter().any(|(later, _)| later == key) {
                continue;
            }
            let at = match self.index.get(key) {
                Some(at) => *at,
                None => {
                    self.index.insert(key.clone(), self.fields.len());
                    self.fields.push(FieldStats::new(key));
                    self.fields.len() - 1
                }
            };
            self.fields[at].observe(value);
        }
    }
}

/// A JSON object's fields in file order (a `serde_json::Map` may sort its keys).
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, Value>()? {
                    pairs.push(pair);
                }
                Ok(Ordered(pairs))
            }
        }
        d.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_key_order_and_count_malformed_ones() {
        let mut s = Sampler::default();
        s.lines(
            b"{\"b\":1,\"a\":\"x\"}\r\n\n{broken\n[1]\n\xff\n{\"c\":true,\"b\":2,\"b\":null}\n",
        );
        assert_eq!(
            (s.stats.lines, s.stats.objects, s.stats.malformed),
            (5, 2, 3)
        );
        let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(
            s.fields[0].values, 1,
            "the repeated b's last value (null) won"
        );
    }

    #[test]
    fn the_sample_is_bounded_in_files_and_bytes() {
        let dir = std::env::temp_dir().join(format!("isolake-init-sample-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for name in ["a.json", "b.jsonl", "c.ndjson", "_SUCCESS", "d.csv"] {
            std::fs::write(dir.join(name), "{\"a\":1}\n{\"a\":2}\n").expect("write");
        }
        let two = read(&dir, 2, 1 << 20).expect("sample").stats;
        assert_eq!((two.files_listed, two.files_read, two.lines), (3, 2, 4));
        let cut = read(&dir, 20, 24).expect("sample").stats;
        assert_eq!((cut.files_read, cut.lines, cut.truncated), (2, 3, true));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn the_byte_budget_cuts_after_a_whole_line() {
        let path = std::env::temp_dir().join(format!("isolake-init-{}.json", std::process::id()));
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n").expect("write");
        let (bytes, cut, broken) = read_bounded(&path, 10).expect("read");
        assert_eq!(
            (bytes.as_slice(), cut, broken),
            (&b"{\"a\":1}\n"[..], true, false)
        );
        let (bytes, cut, _) = read_bounded(&path, 16).expect("read");
        assert_eq!((bytes.len(), cut), (16, false));
        std::fs::remove_file(&path).expect("remove");
    }
}
