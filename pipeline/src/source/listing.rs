//! Listing the landing zone: a local directory, or an object-store prefix.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use isolake_data::lake::objects::ObjectDir;

use super::SourceFile;
use crate::error::{Error, Result};

/// A file that matches the patterns, with where to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub file: SourceFile,
    /// The local file (for an object, its name).
    pub absolute: PathBuf,
    /// The object, when the landing zone is on an object store.
    pub object: Option<LandedObject>,
}

/// An object of an object-store landing zone: complete once it is visible.
#[derive(Debug, Clone)]
pub struct LandedObject {
    pub dir: ObjectDir,
    pub name: String,
}

impl PartialEq for LandedObject {
    fn eq(&self, other: &Self) -> bool {
        self.dir.url() == other.dir.url() && self.name == other.name
    }
}

impl Eq for LandedObject {}

/// Lists the object-store landing zone `url` by prefix (paged), only keys after `after`
/// when given; ignored names are skipped at every level, as in a directory. Objects are
/// taken in key order.
pub async fn list_remote(url: &str, patterns: &[String], after: Option<&str>) -> Result<Listing> {
    let parsed = url::Url::parse(url).map_err(|e| isolake_data::Error::InvalidLocation {
        location: url.to_string(),
        reason: e.to_string(),
    })?;
    let dir = ObjectDir::open(&parsed)?;
    let mut listing = Listing::default();
    for object in dir.list_after("", after).await? {
        let parts: Vec<&str> = object.name.split('/').collect();
        let name = parts.last().copied().unwrap_or_default();
        if parts.iter().any(|p| is_ignored_name(p)) || !patterns.iter().any(|p| glob_match(p, name))
        {
            continue;
        }
        listing.candidates.push(Candidate {
            file: SourceFile {
                path: object.name.clone(),
                size: object.size,
                mtime_ms: object.modified_ms,
            },
            absolute: PathBuf::from(&object.name),
            object: Some(LandedObject {
                dir: dir.clone(),
                name: object.name,
            }),
        });
    }
    listing
        .candidates
        .sort_by(|a, b| (a.file.mtime_ms, &a.file.path).cmp(&(b.file.mtime_ms, &b.file.path)));
    Ok(listing)
}

/// One listing: the candidates, and entries refused or unreadable (with the reason) that the
/// user should hear about.
#[derive(Debug, Default)]
pub struct Listing {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<(String, String)>,
    /// Directories and files that could not be looked at (e.g. no permission): skipped.
    pub unreadable: Vec<(String, String)>,
}

/// Names that are never data: hidden (`.x`), underscore (`_x`, e.g. `_SUCCESS`), in-flight
/// temporary files (`*.tmp`, `*.crc`, `*.part`, `*.swp`).
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || name.starts_with('_')
        || [".tmp", ".crc", ".part", ".swp", "~"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// Glob match of a file name against `*` (any run) and `?` (one char).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Lists `landing` recursively (skipping ignored names at every level). Only the landing
/// directory itself must be readable; an entry below it that is not is reported in
/// [`Listing::unreadable`].
pub fn list(landing: &Path, patterns: &[String]) -> Result<Listing> {
    let root = landing.canonicalize().map_err(|e| Error::io(landing, e))?;
    std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
    let mut listing = Listing::default();
    walk(&root, &root, patterns, &mut listing);
    listing
        .candidates
        .sort_by(|a, b| (a.file.mtime_ms, &a.file.path).cmp(&(b.file.mtime_ms, &b.file.path)));
    Ok(listing)
}

fn walk(root: &Path, dir: &Path, patterns: &[String], out: &mut Listing) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A sub-directory removed while we look is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            out.unreadable
                .push((relative_name(root, dir), e.to_string()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                out.unreadable
                    .push((relative_name(root, dir), e.to_string()));
                continue;
            }
        };
        let name = escaped(&entry.file_name());
        if is_ignored_name(&name) {
            continue;
        }
        let path = entry.path();
        let relative = relative_name(root, &path);
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(e) => {
                out.unreadable.push((relative, e.to_string()));
                continue;
            }
        };
        let target = if file_type.is_symlink() {
            match path.canonicalize() {
                Ok(target) if target.starts_with(root) => target,
                Ok(target) => {
                    out.refused.push((
                        relative,
                        format!(
                            "symlink to {} outside the landing directory: refused",
                            target.display()
                        ),
                    ));
                    continue;
                }
                Err(e) => {
                    out.refused.push((relative, format!("broken symlink: {e}")));
                    continue;
                }
            }
        } else {
            path.clone()
        };
        let meta = match std::fs::metadata(&target) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.unreadable.push((relative, e.to_string()));
                continue;
            }
        };
        if meta.is_dir() {
            if !file_type.is_symlink() {
                walk(root, &path, patterns, out);
            }
            continue;
        }
        if !meta.is_file() || !patterns.iter().any(|p| glob_match(p, &name)) {
            continue;
        }
        let mtime_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        out.candidates.push(Candidate {
            file: SourceFile {
                path: relative,
                size: meta.len(),
                mtime_ms,
            },
            absolute: target,
            object: None,
        });
    }
}

/// A landed file's name relative to the landing directory, `/`-separated: its identity in the
/// source progress, so it must keep the exact bytes (see [`escaped`]).
pub fn relative_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| escaped(c.as_os_str()))
        .collect::<Vec<_>>()
        .join("/")
}

/// A name component as text that keeps its exact bytes: UTF-8 as it is, with a backslash
/// written `\\` and each byte of an invalid sequence `\xHH`. Two different names never give
/// the same text (a lossy conversion would turn both into U+FFFD and collide).
pub fn escaped(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(&chunk.valid().replace('\\', "\\\\"));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.json", "a.json"));
        assert!(glob_match("*.json.gz", "txns-1.json.gz"));
        assert!(!glob_match("*.json", "a.json.gz"));
        assert!(glob_match("t?.ndjson", "t1.ndjson"));
        assert!(!glob_match("t?.ndjson", "t12.ndjson"));
    }

    #[test]
    fn names_keep_their_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let name = |b: &[u8]| escaped(std::ffi::OsStr::from_bytes(b));
        assert_eq!(name(b"txns-1.json"), "txns-1.json");
        assert_eq!(name(b"a\xff.json"), "a\\xFF.json");
        assert_eq!(name(b"a\xfe.json"), "a\\xFE.json");
        // The text `\xFF` itself is not the byte 0xFF.
        assert_eq!(name(b"a\\xFF.json"), "a\\\\xFF.json");
    }

    #[test]
    fn ignored_names() {
        for name in [
            ".a.json",
            "_SUCCESS",
            "a.json.tmp",
            "a.crc",
            ".txns-1.json.tmp",
        ] {
            assert!(is_ignored_name(name), "{name}");
        }
        assert!(!is_ignored_name("txns-1.json"));
    }
}
