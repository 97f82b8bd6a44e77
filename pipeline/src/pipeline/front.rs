//! The front of a batch: read and parse its files, build bronze's rows, run silver and
//! quarantine, and write (stage) the three tables' data files — everything before a commit.
//! It borrows only what it needs, so it can run while the previous batch's gold commits.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use isolake_data::lake::{LakeTable, Staged};
use polars::prelude::*;
use rayon::prelude::*;

use crate::bronze;
use crate::config::{Config, Evolution};
use crate::error::{Error, Result};
use crate::event_log::{Flow, FlowEvent, Status};
use crate::silver::refused::Refused;
use crate::silver::{SilverBatch, SilverStage};
use crate::source::SourceFile;
use crate::source::listing::Candidate;
use crate::source::reader::{self, ReadError, ReadFile, ReadSchema};

/// The files of a batch as read: parsed ones, refused ones (over `max_file_bytes`: recorded
/// as seen with no rows), unreadable ones (not recorded), and events for the last two.
#[derive(Default)]
struct Read {
    parsed: Vec<(SourceFile, ReadFile)>,
    refused: Vec<SourceFile>,
    unreadable: Vec<SourceFile>,
    events: Vec<FlowEvent>,
}

impl Read {
    /// Nothing to commit: no file was read or refused.
    fn is_empty(&self) -> bool {
        self.parsed.is_empty() && self.refused.is_empty()
    }
}

/// A prepared batch: everything computed and every data file of bronze, silver and
/// quarantine written, nothing committed.
pub enum Prepared {
    /// No file could be read: no batch, only the events saying so.
    Unreadable {
        events: Vec<FlowEvent>,
        unreadable: Vec<SourceFile>,
    },
    Batch(Box<PreparedBatch>),
}

pub struct PreparedBatch {
    pub(super) batch: u64,
    /// How long the preparation took (not the wait for the batch before to finish).
    pub(super) prepared_in: Duration,
    pub(super) sources: Vec<SourceFile>,
    /// Columns the batch adds to bronze (schema evolution).
    pub(super) new_columns: Vec<String>,
    pub(super) bronze_rows: usize,
    pub(super) bytes: u64,
    pub(super) backlog: (u64, u64),
    pub(super) out: SilverBatch,
    /// Bronze's, silver's and quarantine's files.
    pub(super) staged: [Staged; 3],
    pub(super) read_events: Vec<FlowEvent>,
    pub(super) unreadable: Vec<SourceFile>,
}

/// What the front of a batch uses: the silver stage (its dedup index) and the tables it
/// stages files in.
pub(super) struct Front<'a> {
    pub config: &'a Config,
    pub bronze: &'a LakeTable,
    pub silver_table: &'a LakeTable,
    pub quarantine: &'a LakeTable,
    pub read_schema: &'a ReadSchema,
    pub silver: &'a mut SilverStage,
}

impl Front<'_> {
    /// Reads, parses and stages batch `batch` of `files`; `backlog` is what is left after it.
    pub fn prepare(
        &mut self,
        files: Vec<Candidate>,
        backlog: (u64, u64),
        batch: u64,
    ) -> Result<Prepared> {
        let started = Instant::now();
        let mut read = self.read(files);
        if read.is_empty() {
            return Ok(Prepared::Unreadable {
                events: read.events,
                unreadable: read.unreadable,
            });
        }
        self.refuse_new_columns(&read)?;
        self.cap_new_columns(&mut read);
        let sources: Vec<SourceFile> = read
            .parsed
            .iter()
            .map(|(f, _)| f.clone())
            .chain(read.refused.iter().cloned())
            .collect();
        let bytes: u64 = read.parsed.iter().map(|(_, r)| r.bytes).sum();
        let new_columns = self.new_columns(&read);
        let now = chrono::Utc::now().timestamp_micros();
        let bronze_rows = bronze::frame(read.parsed, self.read_schema, batch, now)?;
        let (bronze_files, silver) = self.stage(batch, &bronze_rows);
        let (out, silver_files, quarantine_files) = silver?;
        Ok(Prepared::Batch(Box::new(PreparedBatch {
            batch,
            prepared_in: started.elapsed(),
            sources,
            new_columns,
            bronze_rows: bronze_rows.height(),
            bytes,
            backlog,
            out,
            staged: [bronze_files?, silver_files, quarantine_files],
            read_events: read.events,
            unreadable: read.unreadable,
        })))
    }

    /// Reads and parses the batch's files in parallel, keeping them in listing order (landing
    /// time, then name): the order one batch per file would see them in, so that which rows
    /// are late for the watermark does not depend on how files are grouped into batches.
    /// A file that vanished between listing and reading is not read, so not marked seen.
    fn read(&self, files: Vec<Candidate>) -> Read {
        let schema = self.read_schema;
        let runtime = tokio::runtime::Handle::current();
        let results: Vec<(Candidate, std::result::Result<ReadFile, ReadError>)> =
            tokio::task::block_in_place(|| {
                files
                    .into_par_iter()
                    .map(|c| {
                        let r = match &c.object {
                            Some(o) => reader::read_object(o, c.file.size, schema, &runtime),
                            None => reader::read(&c.absolute, schema),
                        };
                        (c, r)
                    })
                    .collect()
            });
        let mut read = Read::default();
        for (candidate, result) in results {
            let file = candidate.file;
            let status = match &result {
                Ok(_) => Status::Ok,
                Err(ReadError::TooLarge { .. }) => Status::Refused,
                Err(ReadError::Unreadable(_)) => Status::FileUnreadable,
            };
            if let Err(e) = &result {
                tracing::warn!(path = file.path, "{e}");
                read.events.push(FlowEvent {
                    files: 1,
                    bytes: file.size,
                    error: Some(format!("{}: {e}", file.path)),
                    ..FlowEvent::new(Flow::Source, status)
                });
            }
            match result {
                Ok(parsed) => read.parsed.push((file, parsed)),
                Err(ReadError::TooLarge { .. }) => read.refused.push(file),
                Err(ReadError::Unreadable(_)) => read.unreadable.push(file),
            }
        }
        read
    }

    /// `schema.max_new_columns` over the whole batch: each file kept within it alone, so the
    /// batch takes new columns in file order and rescues the rest.
    fn cap_new_columns(&self, read: &mut Read) {
        let budget = self
            .read_schema
            .limits
            .max_new_columns
            .saturating_sub(self.read_schema.evolved.len());
        let mut taken: Vec<String> = Vec::new();
        // Lowercased: two files may each add a name the other has in another case.
        let mut lower = self.read_schema.taken_names();
        for (_, file) in &mut read.parsed {
            let mut rest = Vec::new();
            for column in &file.appeared {
                if self.read_schema.evolved.contains(column) || taken.contains(column) {
                    continue;
                }
                if taken.len() < budget && lower.insert(column.to_lowercase()) {
                    taken.push(column.clone());
                } else {
                    rest.push(column.clone());
                }
            }
            file.rescue_columns(&rest);
        }
    }

    /// `schema.evolution = "fail_on_new_columns"`: a file with an undeclared field refuses
    /// the batch.
    fn refuse_new_columns(&self, read: &Read) -> Result<()> {
        if self.config.schema.evolution != Evolution::FailOnNewColumns {
            return Ok(());
        }
        match read.parsed.iter().find(|(_, r)| !r.new_columns.is_empty()) {
            Some((file, r)) => Err(Refused::NewColumns {
                columns: r.new_columns.join(", "),
                file: file.path.clone(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Columns this batch adds to bronze (schema evolution).
    fn new_columns(&self, read: &Read) -> Vec<String> {
        read.parsed
            .iter()
            .flat_map(|(_, r)| r.extra.keys().cloned())
            .filter(|c| !self.read_schema.evolved.contains(c))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Writes bronze's files while silver is computed and its files written (two cores busy).
    #[allow(clippy::type_complexity)]
    fn stage(
        &mut self,
        batch: u64,
        bronze_rows: &DataFrame,
    ) -> (Result<Staged>, Result<(SilverBatch, Staged, Staged)>) {
        let handle = tokio::runtime::Handle::current();
        let (bronze, silver_table, quarantine) = (self.bronze, self.silver_table, self.quarantine);
        let silver = &mut *self.silver;
        tokio::task::block_in_place(|| {
            rayon::join(
                || {
                    // Evolved columns, and fields the config now declares (`schema_change`).
                    let staged = handle.block_on(bronze.stage(bronze_rows, true));
                    staged.map_err(Error::from)
                },
                || -> Result<_> {
                    let out = silver.process(bronze_rows, batch)?;
                    // Growing: columns the config now declares (see `schema_change`).
                    let rows = handle.block_on(silver_table.stage(&out.silver, true))?;
                    let quarantined = handle.block_on(quarantine.stage(&out.quarantine, true))?;
                    Ok((out, rows, quarantined))
                },
            )
        })
    }
}
