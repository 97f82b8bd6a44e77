//! Listing the landing directory.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::SourceFile;
use crate::error::{Error, Result};

/// A file that matches the patterns, with where to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub file: SourceFile,
    pub absolute: PathBuf,
}

/// One listing: the candidates, and entries refused (with the reason) that the user should
/// hear about.
#[derive(Debug, Default)]
pub struct Listing {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<(String, String)>,
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

/// Lists `landing` recursively (skipping ignored names at every level).
pub fn list(landing: &Path, patterns: &[String]) -> Result<Listing> {
    let root = landing.canonicalize().map_err(|e| Error::io(landing, e))?;
    let mut listing = Listing::default();
    walk(&root, &root, patterns, &mut listing)?;
    listing
        .candidates
        .sort_by(|a, b| (a.file.mtime_ms, &a.file.path).cmp(&(b.file.mtime_ms, &b.file.path)));
    Ok(listing)
}

fn walk(root: &Path, dir: &Path, patterns: &[String], out: &mut Listing) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A sub-directory removed while we look is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir != root => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_ignored_name(&name) {
            continue;
        }
        let path = entry.path();
        let relative = relative_name(root, &path);
        let Ok(file_type) = entry.file_type() else {
            continue;
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
        let Ok(meta) = std::fs::metadata(&target) else {
            continue;
        };
        if meta.is_dir() {
            if !file_type.is_symlink() {
                walk(root, &path, patterns, out)?;
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
        });
    }
    Ok(())
}

fn relative_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
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
