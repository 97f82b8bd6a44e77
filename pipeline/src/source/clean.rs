//! `source.clean_source`: moving or deleting landed files once the batch that read them is
//! old enough, so a landing zone does not grow forever. A file is touched only when the
//! seen-files index holds exactly this version of it (path, size, mtime) and its bronze
//! commit is at least `clean_source_retention` old; anything unread, refused or changed
//! since stays where it is.

use std::time::{Duration, Instant};

use super::listing::{Candidate, Listing};
use super::seen::SeenFiles;
use crate::config::{CleanSource, SourceConfig};

/// Where moved files go, under the landing zone (a name listings ignore).
pub const ARCHIVE: &str = "_archived";

/// How often cleaning looks (it lists the whole landing zone).
const EVERY: Duration = Duration::from_secs(60);

/// Cleans at most once a minute.
#[derive(Debug, Default)]
pub struct Cleaner {
    last: Option<Instant>,
}

impl Cleaner {
    /// Whether a cleaning round is due (always for the first).
    pub fn due(&self, source: &SourceConfig) -> bool {
        source.clean_source != CleanSource::Off && self.last.is_none_or(|l| l.elapsed() >= EVERY)
    }

    /// Moves or deletes the listed files that may go; returns how many went.
    pub async fn clean(
        &mut self,
        listing: &Listing,
        seen: &SeenFiles,
        source: &SourceConfig,
    ) -> usize {
        self.last = Some(Instant::now());
        let now = chrono::Utc::now().timestamp_millis();
        let retention = source.clean_source_retention.as_millis() as i64;
        let mut cleaned = 0;
        for candidate in &listing.candidates {
            let old_enough = seen
                .read_at(&candidate.file)
                .is_some_and(|at| at + retention <= now);
            if !old_enough {
                continue;
            }
            match clean_one(candidate, source).await {
                Ok(()) => cleaned += 1,
                Err(e) => tracing::warn!(path = candidate.file.path, "clean_source: {e}"),
            }
        }
        if cleaned > 0 {
            tracing::info!(files = cleaned, mode = ?source.clean_source, "cleaned the landing zone");
        }
        cleaned
    }
}

async fn clean_one(candidate: &Candidate, source: &SourceConfig) -> Result<(), String> {
    let path = &candidate.file.path;
    let archived = format!("{ARCHIVE}/{path}");
    match (&candidate.object, source.clean_source) {
        (_, CleanSource::Off) => Ok(()),
        (Some(object), CleanSource::Delete) => object
            .dir
            .delete(&object.name)
            .await
            .map_err(|e| e.to_string()),
        (Some(object), CleanSource::Move) => {
            (object.dir.rename(&object.name, &archived).await).map_err(|e| e.to_string())
        }
        // An escaped name (`\`, `\xHH`) is not the file's own bytes: leave it.
        (None, _) if path.contains('\\') => Err("a name that is not UTF-8: left".into()),
        (None, CleanSource::Delete) => {
            std::fs::remove_file(source.landing.join(path)).map_err(|e| e.to_string())
        }
        (None, CleanSource::Move) => {
            let target = source.landing.join(&archived);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::rename(source.landing.join(path), &target).map_err(|e| e.to_string())
        }
    }
}
