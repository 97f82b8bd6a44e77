//! Deciding that a landed file is complete.
//!
//! A file is complete when it was renamed into place while the watcher looked (writers that
//! write `.name.tmp` then rename), when its mtime is at least the stability time in the past,
//! or when two looks at least that far apart saw the same size and mtime. A file still being
//! written in pieces keeps changing, so it is never picked half-written.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::SourceFile;

#[derive(Debug, Default)]
pub struct StabilityTracker {
    looks: HashMap<String, (u64, i64, Instant)>,
    renamed_in: HashSet<String>,
}

impl StabilityTracker {
    /// The watcher saw `path` renamed into the landing directory: it is complete.
    pub fn renamed_in(&mut self, path: String) {
        self.renamed_in.insert(path);
    }

    /// Whether `file` (as just listed) is complete.
    pub fn is_stable(&mut self, file: &SourceFile, stability: Duration) -> bool {
        if self.renamed_in.remove(&file.path) {
            self.looks.remove(&file.path);
            return true;
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if now_ms - file.mtime_ms >= stability.as_millis() as i64 {
            self.looks.remove(&file.path);
            return true;
        }
        match self.looks.get(&file.path) {
            Some((size, mtime, first))
                if *size == file.size
                    && *mtime == file.mtime_ms
                    && first.elapsed() >= stability =>
            {
                self.looks.remove(&file.path);
                true
            }
            Some((size, mtime, _)) if *size == file.size && *mtime == file.mtime_ms => false,
            _ => {
                self.looks.insert(
                    file.path.clone(),
                    (file.size, file.mtime_ms, Instant::now()),
                );
                false
            }
        }
    }

    /// How long until the earliest file waiting on its second look may be picked.
    pub fn next_check(&self, stability: Duration) -> Option<Duration> {
        self.looks
            .values()
            .map(|(_, _, first)| stability.saturating_sub(first.elapsed()))
            .min()
    }

    pub fn waiting(&self) -> usize {
        self.looks.len()
    }
}
