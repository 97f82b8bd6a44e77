//! The lock of a pipeline on an object store: a lease object `<lake>/_locks/<id>.lease`.
//!
//! - **Taking it.** Absent or released: created (put-if-absent) or replaced (put-if-match),
//!   with an epoch one above the last. Held: the taker watches the object; once it has not
//!   changed for a whole TTL *by the taker's own monotonic clock*, its holder is gone and it
//!   is replaced (put-if-match). No clocks are compared across machines.
//! - **Holding it.** A thread of its own renews it every quarter TTL (put-if-match on the
//!   version it wrote). The holder may commit only while its last successful renewal was
//!   sent less than three quarters of a TTL ago, and never after a renewal found the object
//!   replaced; so it stops a quarter TTL before anyone can take over.
//! - **Fencing.** A paused holder can wake up between that check and its commit. So the
//!   taker first claims every table with its epoch ([`Fence`]); a commit of an older epoch
//!   then either landed before the claim (and the taker reads it back, as after a crash) or
//!   is refused.
//! - **Leaving.** Dropping the lease marks it released, so the next start need not wait.

use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use isolake_data::lake::objects::{Conditional, ObjectDir, Versioned};
use isolake_data::lake::{Fence, FenceGuard, FenceState, s3_store};
use serde::{Deserialize, Serialize};

use super::{LockError, LockOptions};

const FORMAT: u32 = 1;

/// The lease object's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    format: u32,
    pipeline: String,
    /// Who holds it (host, pid), for messages.
    holder: String,
    epoch: i64,
    /// Wall-clock time of the write, for people; takeover never reads it.
    written_at: String,
    ttl_ms: u64,
    released: bool,
}

/// What the holder's commits and its renewer share.
struct Held {
    epoch: i64,
    ttl: Duration,
    /// When the last successful write of the lease was sent.
    renewed: Mutex<Instant>,
    /// Why the lease is lost, once it is.
    lost: Mutex<Option<String>>,
}

impl FenceGuard for Held {
    /// Held while the last renewal was sent less than 3/4 TTL ago. Older (the process was
    /// paused, or the store did not answer): unsure until the renewer's next write settles
    /// it (it writes at once after a pause); lost once it found the lease replaced.
    fn check(&self) -> FenceState {
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return FenceState::Lost { reason };
        }
        let age = self.renewed.lock().map(|r| r.elapsed()).unwrap_or(self.ttl);
        match age < self.ttl * 3 / 4 {
            true => FenceState::Held,
            false => FenceState::Unsure {
                reason: format!(
                    "its lease was last renewed {} ms ago (TTL {} ms)",
                    age.as_millis(),
                    self.ttl.as_millis()
                ),
                retry_after: self.ttl / 16,
            },
        }
    }
}

/// A held lease; released when dropped.
pub struct Lease {
    held: Arc<Held>,
    pipeline: String,
    location: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({} epoch {})", self.location, self.held.epoch)
    }
}

impl Lease {
    /// Takes pipeline `id`'s lease in `dir` (see the module doc); `options.standby` waits
    /// for a live holder to stop instead of failing.
    pub async fn acquire(
        dir: ObjectDir,
        id: &str,
        ttl: Duration,
        options: LockOptions,
    ) -> Result<Self, LockError> {
        let name = format!("{id}.lease");
        let location = format!("{}{name}", dir.url());
        let store = |source| LockError::Store {
            location: location.clone(),
            source: Box::new(source),
        };
        check_store(&dir).await.map_err(store)?;
        let poll = (ttl / 8).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut watched: Option<(Versioned, Instant)> = None;
        loop {
            let current = dir.get(&name).await.map_err(store)?;
            let record = match &current {
                Some(v) => Some(parse(&v.bytes, &location, id)?),
                None => None,
            };
            let free = match (&current, &record) {
                (None, _) => true,
                (Some(_), Some(r)) if r.released => true,
                (Some(now), _) => match &watched {
                    Some((seen, since)) if seen.version == now.version => since.elapsed() >= ttl,
                    Some(_) if !options.standby => {
                        return Err(held(id, &location, record.as_ref()));
                    }
                    _ => {
                        watched = Some((now.clone(), Instant::now()));
                        false
                    }
                },
            };
            if !free {
                tokio::time::sleep(poll).await;
                continue;
            }
            let epoch = record.as_ref().map_or(0, |r| r.epoch) + 1;
            let bytes = render(id, epoch, ttl, false);
            let sent = Instant::now();
            let written = match &current {
                None => dir.put_if_absent(&name, bytes).await,
                Some(v) => dir.put_if_unchanged(&name, bytes, &v.version).await,
            };
            match written.map_err(store)? {
                Conditional::Written(version) => {
                    if record.is_some_and(|r| !r.released) {
                        tracing::warn!(
                            epoch,
                            "took over the lease {location}: its holder stopped renewing it"
                        );
                    }
                    return Ok(Self::hold(dir, name, id, epoch, ttl, sent, version));
                }
                // Another instance took it first: watch the new holder.
                Conditional::Lost => watched = None,
            }
        }
    }

    fn hold(
        dir: ObjectDir,
        name: String,
        id: &str,
        epoch: i64,
        ttl: Duration,
        sent: Instant,
        version: isolake_data::lake::objects::UpdateVersion,
    ) -> Self {
        let held = Arc::new(Held {
            epoch,
            ttl,
            renewed: Mutex::new(sent),
            lost: Mutex::new(None),
        });
        let location = format!("{}{name}", dir.url());
        let (stop, stopped) = mpsc::channel();
        let renewer = Renewer {
            url: dir.url().clone(),
            name,
            pipeline: id.to_string(),
            held: held.clone(),
            version,
        };
        let thread = std::thread::Builder::new()
            .name("lease-renewer".into())
            .spawn(move || renewer.run(stopped));
        let renewer = match thread {
            Ok(handle) => Some(handle),
            Err(e) => {
                // Without a renewer the lease lapses: the guard fences every commit.
                tracing::error!("cannot start the lease renewer: {e}");
                None
            }
        };
        Self {
            held,
            pipeline: id.to_string(),
            location,
            stop: Some(stop),
            renewer,
        }
    }

    /// The fence of this lease's epoch, for every commit.
    pub fn fence(&self) -> Fence {
        Fence {
            app_id: format!("{}.lease", self.pipeline),
            epoch: self.held.epoch,
            guard: self.held.clone(),
        }
    }

    pub fn epoch(&self) -> i64 {
        self.held.epoch
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Closing the channel makes the renewer release the lease and stop.
        self.stop.take();
        if let Some(handle) = self.renewer.take() {
            let _ = handle.join();
        }
    }
}

/// The renewing thread: on a runtime of its own, so a busy batch cannot delay it. It opens
/// a store of its own too: a pooled connection is driven by the runtime that opened it, and
/// one opened here would stall the pipeline's requests between two renewals.
struct Renewer {
    url: url::Url,
    name: String,
    pipeline: String,
    held: Arc<Held>,
    version: isolake_data::lake::objects::UpdateVersion,
}

impl Renewer {
    fn run(mut self, stopped: mpsc::Receiver<()>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => return tracing::error!("cannot start the lease renewer: {e}"),
        };
        let dir = match ObjectDir::open(&self.url) {
            Ok(dir) => dir,
            Err(e) => return tracing::error!("cannot open the lease's store: {e}"),
        };
        let period = self.held.ttl / 4;
        loop {
            match stopped.recv_timeout(period) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return runtime.block_on(self.release(&dir)),
            }
            let sent = Instant::now();
            let bytes = render(&self.pipeline, self.held.epoch, self.held.ttl, false);
            match runtime.block_on(dir.put_if_unchanged(&self.name, bytes, &self.version)) {
                Ok(Conditional::Written(version)) => {
                    self.version = version;
                    if let Ok(mut renewed) = self.held.renewed.lock() {
                        *renewed = sent;
                    }
                }
                Ok(Conditional::Lost) => {
                    let why = "another instance took its lease over".to_string();
                    tracing::error!(
                        epoch = self.held.epoch,
                        "lease lost: {why}; committing nothing more"
                    );
                    if let Ok(mut lost) = self.held.lost.lock() {
                        *lost = Some(why);
                    }
                    return;
                }
                Err(e) => tracing::warn!("could not renew the lease (will retry): {e}"),
            }
        }
    }

    /// Marks the lease released (only if it is still this holder's).
    async fn release(&self, dir: &ObjectDir) {
        if self.held.check() != FenceState::Held {
            return;
        }
        let bytes = render(&self.pipeline, self.held.epoch, self.held.ttl, true);
        if let Err(e) = dir.put_if_unchanged(&self.name, bytes, &self.version).await {
            tracing::warn!("could not release the lease (it expires by itself): {e}");
        }
    }
}

/// Refuses a store without conditional writes, unless the user opted into one writer.
async fn check_store(dir: &ObjectDir) -> isolake_data::Result<()> {
    match dir.check_conditional_writes().await {
        Err(isolake_data::Error::NoConditionalWrites { .. })
            if s3_store::unsafe_single_writer() =>
        {
            tracing::warn!(
                "{} has no conditional writes: running as the only writer (unsafe_single_writer)",
                dir.url()
            );
            Ok(())
        }
        other => other,
    }
}

fn render(pipeline: &str, epoch: i64, ttl: Duration, released: bool) -> Vec<u8> {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "?".into());
    let record = Record {
        format: FORMAT,
        pipeline: pipeline.to_string(),
        holder: format!("{host} pid {}", std::process::id()),
        epoch,
        written_at: chrono::Utc::now().to_rfc3339(),
        ttl_ms: ttl.as_millis() as u64,
        released,
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

fn parse(bytes: &[u8], location: &str, id: &str) -> Result<Record, LockError> {
    let corrupt = |reason: String| LockError::Corrupt {
        location: location.to_string(),
        id: id.to_string(),
        reason,
    };
    let record: Record = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if record.format != FORMAT {
        return Err(corrupt(format!("format {}", record.format)));
    }
    Ok(record)
}

fn held(id: &str, location: &str, record: Option<&Record>) -> LockError {
    LockError::Held {
        id: id.to_string(),
        path: location.to_string(),
        holder: record.map_or(String::new(), |r| format!(" by {}", r.holder)),
    }
}
