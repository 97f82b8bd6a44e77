//! `isolake-pipeline init`: a config proposed from the files already landed, the way Auto
//! Loader infers a schema (`cloudFiles.inferColumnTypes`) or `dbt init` scaffolds a project.
//! It samples the landing directory (bounded), infers each top-level field's type, proposes
//! the event time, a dedup key, model features and one expectation per field, and writes a
//! commented `isolake.toml`. The text is checked with the compile step `validate` and `run`
//! use ([`Plan::from_toml`]) before it is written, so what init writes, `run --once` runs.
//!
//! ```text
//! error    InitError (imports nothing of the crate)
//! stats    one field's values as sampled: JSON kinds, date-time formats, distinctness
//! sample   the bounded sample: listing order, max files and bytes, lines in key order
//! infer    types, the event time, the key, features, casts
//! render   the commented TOML
//! summary  what init tells the user
//! ```

pub mod error;
pub mod infer;
mod render;
pub mod sample;
pub mod stats;
mod summary;

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::plan::Plan;
pub use error::InitError;
pub use summary::Summary;

/// What `init` samples and where it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    pub landing: PathBuf,
    /// The config to write; refused if it exists, unless `force`.
    pub out: PathBuf,
    /// The pipeline id written.
    pub id: String,
    pub force: bool,
    /// At most this many files are sampled, in listing order.
    pub max_files: usize,
    /// At most this many bytes (after decompression) are sampled in total.
    pub max_bytes: u64,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            landing: PathBuf::new(),
            out: PathBuf::new(),
            id: String::new(),
            force: false,
            max_files: 20,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Samples, infers, writes the config and says what it did.
pub fn run(options: &InitOptions) -> Result<Summary, InitError> {
    check_id(&options.id)?;
    if !options.force && options.out.exists() {
        return Err(InitError::OutputExists {
            path: options.out.clone(),
        });
    }
    let landing = options
        .landing
        .canonicalize()
        .map_err(|source| InitError::Landing {
            path: options.landing.clone(),
            source,
        })?;
    let sample = sample::read(&landing, options.max_files, options.max_bytes)?;
    let proposal = infer::propose(&sample)?;
    let config_dir = config_dir(&options.out)?;
    let landing_text = relative(&config_dir, &landing);
    let context = render::Context {
        id: &options.id,
        landing: &landing_text,
        out: &options.out,
        stats: &sample.stats,
    };
    let text = render::render(&context, &proposal);
    Plan::from_toml(&text, &config_dir).map_err(|issues| InitError::Rejected {
        issues: issues.iter().map(ToString::to_string).collect(),
    })?;
    write(&options.out, &text, options.force)?;
    Ok(Summary {
        out: options.out.clone(),
        landing,
        sample: sample.stats,
        proposal,
    })
}

/// The same rule as the config's `id` (it names app transactions and lock files).
fn check_id(id: &str) -> Result<(), InitError> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    match ok {
        true => Ok(()),
        false => Err(InitError::InvalidId { id: id.to_string() }),
    }
}

/// The directory the config will be in (created if missing), absolute and canonical, since
/// the config's relative paths are resolved against it.
fn config_dir(out: &Path) -> Result<PathBuf, InitError> {
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |source| InitError::Io {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    dir.canonicalize().map_err(io)
}

/// `to` relative to `from` (`./landing`, `../data/landing`) when they share more than the
/// root, else `to` as is; both are canonical.
fn relative(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let shares_more_than_root = a[..common]
        .iter()
        .any(|c| matches!(c, Component::Normal(_)));
    if !shares_more_than_root {
        return to.to_string_lossy().into_owned();
    }
    let mut parts: Vec<String> = vec![".".to_string()];
    parts.extend((common..a.len()).map(|_| "..".to_string()));
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.len() > 1 && parts[1] == ".." {
        parts.remove(0);
    }
    parts.join("/")
}

/// Writes the config; without `force` an existing file is never replaced, even one created
/// since the check at the start.
fn write(out: &Path, text: &str, force: bool) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: out.to_path_buf(),
        source,
    };
    let mut file = match force {
        true => std::fs::File::create(out).map_err(io)?,
        false => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => InitError::OutputExists {
                    path: out.to_path_buf(),
                },
                _ => io(source),
            })?,
    };
    file.write_all(text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_paths_relative_to_the_config() {
        let rel = |a: &str, b: &str| relative(Path::new(a), Path::new(b));
        assert_eq!(rel("/p/x", "/p/x/landing"), "./landing");
        assert_eq!(rel("/p/x", "/p/x"), ".");
        assert_eq!(rel("/p/x/conf", "/p/x/landing/in"), "../landing/in");
        assert_eq!(rel("/p", "/q/landing"), "/q/landing");
    }
}
