//! Run modes: triggered (process what is there, exit) and continuous (watch, low latency).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::auto_compact::AutoCompactor;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::pipeline::batch::Pending;
use crate::pipeline::front::Prepared;
use crate::pipeline::{BatchSummary, Pipeline};
use crate::source::admission::Admission;
use crate::source::clean::Cleaner;
use crate::source::listing::{self, Candidate, Listing};

/// Set by SIGINT/SIGTERM: finish the current batch, commit, exit 0.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<ShutdownState>);

#[derive(Debug, Default)]
struct ShutdownState {
    requested: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    pub fn request(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
    pub fn requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }
    /// Resolves once shutdown is requested.
    pub async fn wait(&self) {
        loop {
            // Created before the check, so a request in between still wakes it.
            let notified = self.0.notify.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
    /// Requests shutdown on SIGINT or SIGTERM.
    pub fn on_signals(&self) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
        let me = self.clone();
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("shutdown requested: finishing the current batch");
            me.request();
        });
        Ok(())
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub batches: Vec<BatchSummary>,
}

impl RunSummary {
    pub fn files(&self) -> usize {
        self.batches.iter().map(|b| b.files).sum()
    }
    pub fn bronze_rows(&self) -> usize {
        self.batches.iter().map(|b| b.bronze_rows).sum()
    }
    pub fn silver_rows(&self) -> usize {
        self.batches.iter().map(|b| b.silver_rows).sum()
    }
    pub fn quarantined(&self) -> usize {
        self.batches.iter().map(|b| b.quarantined).sum()
    }
    pub fn alerts(&self) -> usize {
        self.batches.iter().map(|b| b.alerts).sum()
    }
}

/// The Auto Loader's loop state around a pipeline.
pub struct Runner {
    pub pipeline: Pipeline,
    admission: Admission,
    pub shutdown: Shutdown,
    pub summary: RunSummary,
    /// Updated after every batch when metrics are served.
    pub metrics: Option<crate::metrics::Shared>,
    /// Continuous runs with `[maintenance] auto_compact_every`.
    compactor: Option<AutoCompactor>,
    cleaner: Cleaner,
}

/// The outcome of one look at the landing directory.
struct Poll {
    processed: usize,
    waiting: usize,
}

impl Runner {
    pub fn new(pipeline: Pipeline, shutdown: Shutdown) -> Self {
        Self {
            pipeline,
            admission: Admission::default(),
            shutdown,
            summary: RunSummary::default(),
            metrics: None,
            compactor: None,
            cleaner: Cleaner::default(),
        }
    }

    /// Triggered mode: processes everything that is there (waiting for files still being
    /// written to become complete), then returns.
    pub async fn run_once(&mut self) -> Result<RunSummary> {
        self.skip_existing_if_asked().await?;
        let stability = self.pipeline.config().source.stability;
        // A backlog of many small batches needs compaction as much as a continuous run:
        // deltalake replays every live file at each commit, so without it each batch costs
        // more than the one before.
        self.compactor = AutoCompactor::new(self.pipeline.config(), self.metrics.clone());
        let outcome = self.drain_landing(stability).await;
        if let Some(mut compactor) = self.compactor.take() {
            compactor.finish();
        }
        outcome?;
        Ok(std::mem::take(&mut self.summary))
    }

    /// Triggered mode's loop: batches until nothing is left or waiting.
    async fn drain_landing(&mut self, stability: Duration) -> Result<()> {
        loop {
            let poll = self.poll().await?;
            if self.shutdown.requested() || (poll.processed == 0 && poll.waiting == 0) {
                break;
            }
            if poll.processed == 0 {
                let wait = self.admission.next_check(stability).unwrap_or(stability);
                // A signal ends the wait at once (the stability wait may be minutes).
                tokio::select! {
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(20))) => {}
                    _ = self.shutdown.wait() => {}
                }
            }
        }
        Ok(())
    }

    /// Continuous mode: a watcher for low latency plus a full listing every trigger
    /// interval as a safety net (watchers can miss events), until shutdown.
    pub async fn run_continuous(&mut self) -> Result<RunSummary> {
        self.skip_existing_if_asked().await?;
        if self.pipeline.config().source.remote_landing.is_some() {
            let interval = self.pipeline.config().trigger_interval;
            self.compactor = AutoCompactor::new(self.pipeline.config(), self.metrics.clone());
            let outcome = self.poll_remote(interval).await;
            if let Some(mut compactor) = self.compactor.take() {
                compactor.finish();
            }
            outcome?;
            return Ok(std::mem::take(&mut self.summary));
        }
        let configured = self.pipeline.config().source.landing.clone();
        let landing = configured
            .canonicalize()
            .map_err(|e| Error::io(&configured, e))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, PathBuf)>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    let renamed = matches!(
                        event.kind,
                        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                    );
                    if let Some(path) = event.paths.last() {
                        let _ = tx.send((renamed, path.clone()));
                    }
                }
            })
            .map_err(|source| Error::Watch {
                path: landing.clone(),
                source,
            })?;
        if let Err(e) = watcher.watch(&landing, RecursiveMode::Recursive) {
            // A sub-directory it may not read fails the recursive watch as a whole: watch the
            // landing directory alone; the listing every trigger interval finds the rest.
            tracing::warn!("cannot watch the whole landing zone ({e}); watching its top level");
            watcher
                .watch(&landing, RecursiveMode::NonRecursive)
                .map_err(|source| Error::Watch {
                    path: landing.clone(),
                    source,
                })?;
        }
        let interval = self.pipeline.config().trigger_interval;
        let stability = self.pipeline.config().source.stability;
        self.compactor = AutoCompactor::new(self.pipeline.config(), self.metrics.clone());
        let outcome = self.watch(landing, &mut rx, interval, stability).await;
        if let Some(mut compactor) = self.compactor.take() {
            compactor.finish();
        }
        drop(watcher);
        outcome?;
        Ok(std::mem::take(&mut self.summary))
    }

    /// The continuous loop: a batch whenever the watcher reports a change, a full listing
    /// every `interval`, until shutdown.
    async fn watch(
        &mut self,
        landing: PathBuf,
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<(bool, PathBuf)>,
        interval: Duration,
        stability: Duration,
    ) -> Result<()> {
        let mut last_full = Instant::now();
        let shutdown = self.shutdown.clone();
        self.poll().await?;
        while !self.shutdown.requested() {
            let wait = self
                .admission
                .next_check(stability)
                .unwrap_or(interval)
                .min(interval.saturating_sub(last_full.elapsed()))
                .max(Duration::from_millis(5));
            let mut changed = false;
            tokio::select! {
                event = rx.recv() => {
                    let Some((renamed, path)) = event else { break };
                    changed = true;
                    self.note_event(&landing, renamed, &path);
                    // Take whatever else arrived at once, then look.
                    while let Ok((renamed, path)) = rx.try_recv() {
                        self.note_event(&landing, renamed, &path);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => break,
            }
            if changed || last_full.elapsed() >= interval || self.admission.waiting() > 0 {
                if last_full.elapsed() >= interval {
                    last_full = Instant::now();
                }
                self.poll().await?;
            }
        }
        Ok(())
    }

    fn note_event(&mut self, landing: &std::path::Path, renamed: bool, path: &std::path::Path) {
        if renamed && path.starts_with(landing) {
            self.admission
                .renamed_in(listing::relative_name(landing, path));
        }
    }

    /// `include_existing_files = false`: on the very first start, the files already there
    /// are recorded as seen (in a bronze commit of no rows) and never read.
    async fn skip_existing_if_asked(&mut self) -> Result<()> {
        let config = self.pipeline.config();
        if config.source.include_existing_files || self.pipeline.next_batch() != 1 {
            return Ok(());
        }
        let files: Vec<Candidate> = self.list().await?.candidates;
        tracing::info!(
            files = files.len(),
            "include_existing_files = false: skipping existing files"
        );
        self.pipeline
            .skip_files(files.into_iter().map(|c| c.file).collect())
            .await
    }

    /// Lists the landing zone: the directory, or the object-store prefix (from the last key
    /// seen when `source.list_after_last_seen` says the layout allows it).
    async fn list(&self) -> Result<Listing> {
        let source = &self.pipeline.config().source;
        let after = (source.list_after_last_seen)
            .then(|| self.pipeline.seen.last_path())
            .flatten();
        self.list_after(after).await
    }

    async fn list_after(&self, after: Option<&str>) -> Result<Listing> {
        let source = &self.pipeline.config().source;
        match &source.remote_landing {
            Some(url) => listing::list_remote(url, &source.patterns, after).await,
            None => listing::list(&source.landing, &source.patterns),
        }
    }

    /// `source.clean_source`, at most once a minute, over a full listing.
    async fn clean_landing(&mut self) -> Result<()> {
        let source = self.pipeline.config().source.clone();
        if self.cleaner.due(&source) {
            let listing = self.list_after(None).await?;
            (self.cleaner)
                .clean(&listing, &self.pipeline.seen, &source)
                .await;
        }
        Ok(())
    }

    /// Continuous mode on an object-store landing zone: no watcher there, a listing every
    /// trigger interval (and at once after a batch, while there is a backlog).
    async fn poll_remote(&mut self, interval: Duration) -> Result<()> {
        while !self.shutdown.requested() {
            if self.poll().await?.processed > 0 {
                continue;
            }
            let shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait() => break,
            }
        }
        Ok(())
    }

    /// Lists the landing directory and processes every complete new file, in batches.
    async fn poll(&mut self) -> Result<Poll> {
        let config = self.pipeline.config().clone();
        let listing = self.list().await?;
        let admitted = self
            .admission
            .admit(listing, &self.pipeline.seen, &config.source);
        self.pipeline.commit_events(None, admitted.events).await?;
        if let Some(m) = &self.metrics
            && let Ok(mut m) = m.lock()
        {
            m.set_unreadable(admitted.unreadable);
        }
        let processed = self.process(&admitted.ready, &config).await?;
        self.clean_landing().await?;
        Ok(Poll {
            processed,
            waiting: admitted.waiting,
        })
    }

    /// Processes `ready` in batches, each batch's gold overlapping the preparation of the
    /// next (see `pipeline::batch`). A shutdown stops taking new batches; the one in flight
    /// is committed and finished. Returns the files processed.
    async fn process(&mut self, ready: &[Candidate], config: &Config) -> Result<usize> {
        let mut processed = 0;
        let mut rest = ready;
        let mut pending: Option<InFlight> = None;
        loop {
            let mut next = None;
            if !rest.is_empty() && !self.shutdown.requested() {
                let take = batch_size(rest, config.batch.max_files, config.batch.max_bytes);
                let (batch, tail) = rest.split_at(take);
                next = Some((batch.to_vec(), backlog_of(tail), Instant::now()));
                rest = tail;
            }
            let (prepared, started, backlog) = match (pending.take(), next) {
                (None, None) => break,
                (Some(flight), None) => {
                    let finished = self.pipeline.finish(flight.pending).await;
                    processed += self.finished(finished, flight.started, flight.backlog)?;
                    break;
                }
                (None, Some((files, backlog, started))) => (
                    self.pipeline.prepare(files, backlog).await,
                    started,
                    backlog,
                ),
                (Some(flight), Some((files, backlog, started))) => {
                    let (finished, prepared) = (self.pipeline)
                        .finish_while_preparing(flight.pending, files, backlog)
                        .await;
                    processed += self.finished(finished, flight.started, flight.backlog)?;
                    (prepared, started, backlog)
                }
            };
            match self.counted(prepared)? {
                Prepared::Unreadable { events, unreadable } => {
                    self.pipeline.commit_events(None, events).await?;
                    self.admission.unreadable(&unreadable);
                }
                Prepared::Batch(batch) => {
                    let committed = self.pipeline.commit_prepared(*batch).await;
                    pending = Some(InFlight {
                        pending: self.counted(committed)?,
                        started,
                        backlog,
                    });
                }
            }
        }
        Ok(processed)
    }

    /// Counts an error in the metrics and passes the result on.
    fn counted<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err()
            && let Some(m) = &self.metrics
            && let Ok(mut m) = m.lock()
        {
            m.record_error();
        }
        result
    }

    /// Books a finished batch (metrics, log, summary, compaction) and returns its files.
    fn finished(
        &mut self,
        result: Result<BatchSummary>,
        started: Instant,
        backlog: (u64, u64),
    ) -> Result<usize> {
        let summary = self.counted(result)?;
        self.admission.unreadable(&summary.unreadable);
        if let Some(m) = &self.metrics
            && let Ok(mut m) = m.lock()
        {
            m.record_batch(&summary, started.elapsed(), backlog);
        }
        tracing::info!(
            batch = summary.batch,
            files = summary.files,
            bronze = summary.bronze_rows,
            silver = summary.silver_rows,
            quarantined = summary.quarantined,
            "batch committed"
        );
        let files = summary.files;
        self.summary.batches.push(summary);
        if let Some(compactor) = &mut self.compactor {
            compactor.after_batch();
        }
        Ok(files)
    }
}

/// A batch whose bronze, silver and quarantine are committed, with what its booking needs.
struct InFlight {
    pending: Pending,
    started: Instant,
    backlog: (u64, u64),
}

/// The files and bytes of `tail`: the backlog after a batch.
fn backlog_of(tail: &[Candidate]) -> (u64, u64) {
    (
        tail.len() as u64,
        tail.iter().map(|c| c.file.size).sum::<u64>(),
    )
}

/// How many of `files` (in order) the next batch takes: at least one, then up to the limits.
fn batch_size(files: &[Candidate], max_files: usize, max_bytes: u64) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for c in files.iter().take(max_files) {
        if n > 0 && bytes + c.file.size > max_bytes {
            break;
        }
        bytes += c.file.size;
        n += 1;
    }
    n.max(1)
}
