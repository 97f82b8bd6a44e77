//! File admission: which listed files the next batches take. A file is taken once it is
//! complete (see `stability`) and new, or changed while `allow_overwrites` is set; a changed
//! file is otherwise reported once and ignored, and so is a refused entry. An entry that cannot
//! be read (a directory or file without permission) is reported once and skipped while it
//! stays as it is; the rest of the landing zone is ingested.

use std::collections::HashSet;
use std::time::Duration;

use super::SourceFile;
use super::listing::{Candidate, Listing};
use super::seen::SeenFiles;
use super::stability::StabilityTracker;
use crate::config::SourceConfig;
use crate::event_log::{Flow, FlowEvent, Status};

/// The Auto Loader's memory between looks at the landing zone.
#[derive(Debug, Default)]
pub struct Admission {
    tracker: StabilityTracker,
    /// Paths already reported (refused symlinks, changed files), so each is said once.
    reported: HashSet<String>,
    /// Files a batch could not read, as they were then: skipped until they change.
    unreadable: HashSet<SourceFile>,
}

/// What one look admitted.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Complete new files, in listing order.
    pub ready: Vec<Candidate>,
    /// Files still being written.
    pub waiting: usize,
    /// Refused and changed files, each reported once.
    pub events: Vec<FlowEvent>,
    /// Entries of this listing that cannot be read (the `/metrics` gauge).
    pub unreadable: usize,
}

impl Admission {
    /// The watcher saw `path` (relative, `/`-separated) renamed in: it is complete.
    pub fn renamed_in(&mut self, path: String) {
        self.tracker.renamed_in(path);
    }

    /// How long until a file waiting on its second look may be taken.
    pub fn next_check(&self, stability: Duration) -> Option<Duration> {
        self.tracker.next_check(stability)
    }

    pub fn waiting(&self) -> usize {
        self.tracker.waiting()
    }

    /// A batch could not read `files` (already reported by it): skip them while unchanged.
    pub fn unreadable(&mut self, files: &[SourceFile]) {
        self.unreadable.extend(files.iter().cloned());
    }

    /// Sorts one listing into ready, waiting and reported files.
    pub fn admit(&mut self, listing: Listing, seen: &SeenFiles, source: &SourceConfig) -> Admitted {
        let mut out = Admitted {
            unreadable: listing.unreadable.len(),
            ..Admitted::default()
        };
        for (path, reason) in listing.unreadable {
            if self.reported.insert(format!("unreadable:{path}")) {
                tracing::warn!(path, reason, "cannot read this entry of the landing zone");
                out.events.push(FlowEvent {
                    error: Some(format!("{path}: {reason}")),
                    ..FlowEvent::new(Flow::Source, Status::FileUnreadable)
                });
            }
        }
        for (path, reason) in listing.refused {
            if self.reported.insert(format!("refused:{path}")) {
                tracing::warn!(path, reason, "file refused");
                out.events.push(FlowEvent {
                    files: 1,
                    error: Some(format!("{path}: {reason}")),
                    ..FlowEvent::new(Flow::Source, Status::Refused)
                });
            }
        }
        for candidate in listing.candidates {
            if self.unreadable.contains(&candidate.file) {
                out.unreadable += 1;
                continue;
            }
            if let Some(seen) = seen.get(&candidate.file.path) {
                if *seen == candidate.file {
                    continue;
                }
                if !source.allow_overwrites {
                    out.events.extend(self.changed(&candidate));
                    continue;
                }
            }
            // An object is complete once it is visible.
            if candidate.object.is_some()
                || self.tracker.is_stable(&candidate.file, source.stability)
            {
                out.ready.push(candidate);
            } else {
                out.waiting += 1;
            }
        }
        out
    }

    /// A file that changed after it was ingested: reported once per version of it.
    fn changed(&mut self, candidate: &Candidate) -> Option<FlowEvent> {
        let file = &candidate.file;
        let key = format!("changed:{}:{}:{}", file.path, file.size, file.mtime_ms);
        if !self.reported.insert(key) {
            return None;
        }
        tracing::warn!(path = file.path, "file changed after ingestion: ignored");
        Some(FlowEvent {
            files: 1,
            bytes: file.size,
            error: Some(format!(
                "{} changed after it was ingested; ignored (set allow_overwrites = true to \
                 re-ingest)",
                file.path
            )),
            ..FlowEvent::new(Flow::Source, Status::ChangedAfterIngestion)
        })
    }
}
