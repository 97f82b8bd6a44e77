//! The model artifact: a versioned, self-describing, checksummed file.
//!
//! ```text
//! ISOLAKE-FOREST 1\n                      magic + format version (readable with `head -1`)
//! {"format_version":1,...}\n              JSON header: ModelMetadata + payload length + SHA-256
//! <payload>                               the trees, little-endian binary
//! ```
//!
//! Payload: `u32 n_trees, u32 terms`, then per tree `u32 n_nodes`, `n_nodes × u32` left
//! children, `n_nodes × u32` sample counts, `n_nodes·terms × u32` features,
//! `n_nodes·terms × f64` coefficients and `n_nodes × f64` thresholds. Depths and leaf values
//! are re-derived on load rather than trusted.
//!
//! An artifact is untrusted input: it may be truncated, corrupted, hand-edited or hostile.
//! Loading bounds every size before allocating, verifies the checksum, re-checks the
//! hyperparameters and every tree invariant the scorer relies on (child indices in range and
//! after their parent, feature indices below the feature count, finite thresholds, depths
//! within the limit), and refuses anything else with a specific [`Error`].

use std::fs::File;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::forest::IsolationForest;
use crate::forest::params::{Contamination, IsolationForestValidParams};
use crate::forest::tree::Tree;
use crate::metadata::{ModelMetadata, TrainingDataRef};

/// First line's leading word.
pub const ARTIFACT_MAGIC: &str = "ISOLAKE-FOREST";
/// The format version this build writes and reads.
pub const ARTIFACT_FORMAT_VERSION: u32 = 1;
/// Largest artifact accepted (256 MiB; 100 trees of ψ = 256 take about 1.5 MiB).
pub const MAX_ARTIFACT_BYTES: u64 = 256 << 20;
/// Largest JSON header accepted (16 MiB: room for very many feature names).
pub const MAX_HEADER_BYTES: usize = 16 << 20;

/// The JSON header: [`ModelMetadata`] plus what identifies and protects the payload.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactHeader {
    format_version: u32,
    feature_names: Vec<String>,
    hyperparameters: IsolationForestValidParams,
    samples_per_tree: usize,
    features_per_tree: usize,
    offset: f64,
    training_rows: usize,
    training_data: Option<TrainingDataRef>,
    created_at: DateTime<Utc>,
    crate_version: String,
    payload_len: u64,
    payload_sha256: String,
}

impl IsolationForest {
    /// The artifact's bytes (see the module documentation for the format).
    pub fn to_artifact_bytes(&self) -> Result<Vec<u8>> {
        let payload = encode_payload(self);
        let m = self.metadata().clone();
        let header = ArtifactHeader {
            format_version: ARTIFACT_FORMAT_VERSION,
            feature_names: m.feature_names,
            hyperparameters: m.hyperparameters,
            samples_per_tree: m.samples_per_tree,
            features_per_tree: m.features_per_tree,
            offset: m.offset,
            training_rows: m.training_rows,
            training_data: m.training_data,
            created_at: m.created_at,
            crate_version: m.crate_version,
            payload_len: payload.len() as u64,
            payload_sha256: sha256_hex(&payload),
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| Error::malformed(format!("cannot serialise the header: {e}")))?;
        let mut out = Vec::with_capacity(32 + json.len() + payload.len());
        out.extend_from_slice(format!("{ARTIFACT_MAGIC} {ARTIFACT_FORMAT_VERSION}\n").as_bytes());
        out.extend_from_slice(&json);
        out.push(b'\n');
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// SHA-256 (hex) of the trees: equal fingerprints mean identical forests, whatever the
    /// metadata (creation time, names) says.
    pub fn fingerprint(&self) -> String {
        sha256_hex(&encode_payload(self))
    }

    /// Writes the artifact atomically: to a temporary file in the same directory, flushed to
    /// disk, then renamed over `path`, so readers never see a half-written model.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::fsutil::write_atomic(path.as_ref(), &self.to_artifact_bytes()?)
    }

    /// Reads and validates an artifact file (at most [`MAX_ARTIFACT_BYTES`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > MAX_ARTIFACT_BYTES {
            return Err(Error::ArtifactTooLarge {
                what: "file",
                size,
                limit: MAX_ARTIFACT_BYTES,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // `take` guards against a file that grows while being read.
        file.take(MAX_ARTIFACT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        Self::from_artifact_bytes(&bytes)
    }

    /// Parses and validates artifact bytes; see the module documentation for what is checked.
    pub fn from_artifact_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() as u64 > MAX_ARTIFACT_BYTES {
            return Err(Error::ArtifactTooLarge {
                what: "file",
                size: bytes.len() as u64,
                limit: MAX_ARTIFACT_BYTES,
            });
        }
        let (line1, rest) = split_line(bytes, 64).ok_or_else(|| Error::ArtifactNotRecognised {
            reason: "no short first line (expected `ISOLAKE-FOREST <version>`)".into(),
        })?;
        let line1 = std::str::from_utf8(line1).unwrap_or("");
        let version = line1
            .strip_prefix(ARTIFACT_MAGIC)
            .and_then(|v| v.strip_prefix(' '))
            .ok_or_else(|| Error::ArtifactNotRecognised {
                reason: format!("first line is {line1:?}, expected `{ARTIFACT_MAGIC} <version>`"),
            })?;
        if version != ARTIFACT_FORMAT_VERSION.to_string() {
            return Err(Error::ArtifactUnsupportedVersion {
                found: version.to_string(),
                supported: ARTIFACT_FORMAT_VERSION,
            });
        }
        let (json, payload) = match split_line(rest, MAX_HEADER_BYTES) {
            Some(parts) => parts,
            None if rest.len() > MAX_HEADER_BYTES => {
                return Err(Error::ArtifactTooLarge {
                    what: "header",
                    size: rest.len() as u64,
                    limit: MAX_HEADER_BYTES as u64,
                });
            }
            None => return Err(Error::malformed("truncated: the header line never ends")),
        };
        let header: ArtifactHeader = serde_json::from_slice(json)
            .map_err(|e| Error::malformed(format!("invalid JSON header: {e}")))?;
        if header.format_version != ARTIFACT_FORMAT_VERSION {
            return Err(Error::ArtifactUnsupportedVersion {
                found: header.format_version.to_string(),
                supported: ARTIFACT_FORMAT_VERSION,
            });
        }
        if payload.len() as u64 != header.payload_len {
            return Err(Error::malformed(format!(
                "the payload is {} bytes but the header records {} (truncated or padded file)",
                payload.len(),
                header.payload_len
            )));
        }
        let actual = sha256_hex(payload);
        if actual != header.payload_sha256 {
            return Err(Error::ArtifactChecksumMismatch {
                expected: header.payload_sha256,
                actual,
            });
        }
        let metadata = ModelMetadata {
            feature_names: header.feature_names,
            hyperparameters: header.hyperparameters,
            samples_per_tree: header.samples_per_tree,
            features_per_tree: header.features_per_tree,
            offset: header.offset,
            training_rows: header.training_rows,
            training_data: header.training_data,
            created_at: header.created_at,
            crate_version: header.crate_version,
        };
        validate_metadata(&metadata)?;
        let trees = decode_payload(payload, &metadata)?;
        Ok(IsolationForest::from_parts(metadata, trees))
    }
}

/// Splits at the first `\n` within `max` bytes.
fn split_line(bytes: &[u8], max: usize) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().take(max + 1).position(|&b| b == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Header consistency: the metadata must describe a model `fit` could have produced.
fn validate_metadata(m: &ModelMetadata) -> Result<()> {
    let bad = |reason: String| Err(Error::malformed(reason));
    let p = &m.hyperparameters;
    p.validate()
        .map_err(|e| Error::malformed(format!("invalid hyperparameters: {e}")))?;
    let d = m.n_features();
    if d == 0 {
        return bad("the header lists no feature".into());
    }
    if m.training_rows < 2 {
        return bad(format!("training_rows is {}", m.training_rows));
    }
    let psi = p
        .resolve_max_samples(m.training_rows)
        .map_err(|e| Error::malformed(format!("max_samples: {e}")))?;
    if psi != m.samples_per_tree {
        return bad(format!(
            "samples_per_tree is {} but {:?} of {} rows gives {psi}",
            m.samples_per_tree, p.max_samples, m.training_rows
        ));
    }
    let per_tree = p
        .resolve_max_features(d)
        .map_err(|e| Error::malformed(format!("max_features: {e}")))?;
    if per_tree != m.features_per_tree {
        return bad(format!(
            "features_per_tree is {} but {:?} of {d} features gives {per_tree}",
            m.features_per_tree, p.max_features
        ));
    }
    let offset_ok = match p.contamination {
        Contamination::Auto => m.offset == -0.5,
        Contamination::Fraction(_) => m.offset.is_finite() && (-1.0..=0.0).contains(&m.offset),
    };
    if !offset_ok {
        return bad(format!(
            "offset {} is impossible with contamination {:?}",
            m.offset, p.contamination
        ));
    }
    if p.seed.is_none() {
        return bad("the seed is missing (every fitted model records its seed)".into());
    }
    Ok(())
}

fn encode_payload(model: &IsolationForest) -> Vec<u8> {
    let trees = model.trees();
    let terms = trees.first().map_or(1, |t| t.terms);
    let nodes: usize = trees.iter().map(Tree::len).sum();
    let mut out = Vec::with_capacity(8 + trees.len() * 4 + nodes * (8 + 12 * terms + 8));
    let put_u32 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    put_u32(&mut out, trees.len() as u32);
    put_u32(&mut out, terms as u32);
    for t in trees {
        put_u32(&mut out, t.len() as u32);
        for &v in t.child.iter().chain(&t.samples).chain(&t.features) {
            put_u32(&mut out, v);
        }
        for v in t.coefs.iter().chain(&t.thresholds) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Bounds-checked little-endian reader: every read checks the remaining length first, so a
/// hostile count cannot trigger a huge allocation.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Error::malformed(format!(
                "truncated payload: {what} needs {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32s(&mut self, count: usize, what: &str) -> Result<Vec<u32>> {
        let n = count
            .checked_mul(4)
            .ok_or_else(|| Error::malformed("size overflow"))?;
        Ok(self
            .take(n, what)?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn f64s(&mut self, count: usize, what: &str) -> Result<Vec<f64>> {
        let n = count
            .checked_mul(8)
            .ok_or_else(|| Error::malformed("size overflow"))?;
        Ok(self
            .take(n, what)?
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect())
    }
}

fn decode_payload(payload: &[u8], m: &ModelMetadata) -> Result<Vec<Tree>> {
    let mut r = Reader { buf: payload };
    let n_trees = r.u32("the tree count")? as usize;
    let expected_trees = m.hyperparameters.n_estimators;
    if n_trees != expected_trees {
        return Err(Error::malformed(format!(
            "the payload holds {n_trees} trees but n_estimators is {expected_trees}"
        )));
    }
    let terms = r.u32("the split width")? as usize;
    if terms != m.hyperparameters.extension_level + 1 {
        return Err(Error::malformed(format!(
            "splits have {terms} term(s) but extension_level {} needs {}",
            m.hyperparameters.extension_level,
            m.hyperparameters.extension_level + 1
        )));
    }
    let limits = IsolationForest::tree_limits(m);
    // A binary tree no deeper than the limit has at most 2^(limit+1) − 1 nodes.
    let max_nodes = 1usize
        .checked_shl(limits.depth_limit as u32 + 1)
        .map_or(usize::MAX, |v| v - 1);
    let mut trees = Vec::with_capacity(n_trees.min(payload.len() / 4));
    for t in 0..n_trees {
        let n = r.u32("a node count")? as usize;
        if n == 0 || n > max_nodes {
            return Err(Error::malformed(format!(
                "tree {t} claims {n} nodes; a tree of depth ≤ {} has 1 to {max_nodes}",
                limits.depth_limit
            )));
        }
        let nt = n
            .checked_mul(terms)
            .ok_or_else(|| Error::malformed("size overflow"))?;
        let child = r.u32s(n, "child indices")?;
        let samples = r.u32s(n, "sample counts")?;
        let features = r.u32s(nt, "split features")?;
        let coefs = r.f64s(nt, "split coefficients")?;
        let thresholds = r.f64s(n, "thresholds")?;
        let tree = Tree::from_parts(terms, child, samples, features, coefs, thresholds, &limits)
            .map_err(|e| match e {
                Error::ArtifactMalformed { reason } => {
                    Error::malformed(format!("tree {t}: {reason}"))
                }
                other => other,
            })?;
        trees.push(tree);
    }
    if !r.buf.is_empty() {
        return Err(Error::malformed(format!(
            "{} unexpected bytes after the last tree",
            r.buf.len()
        )));
    }
    Ok(trees)
}
