//! A Delta table as isolake uses it: create, append a polars frame in one commit (optionally
//! with an application transaction and commit metadata), read an app's progress, list versions.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::DataType as ArrowType;
use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema};
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{Action, MetadataExt, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use deltalake::{DeltaTable, DeltaTableBuilder};
use polars::prelude::{DataFrame, Schema};
use serde_json::{Map, Value};
use url::Url;

use super::arrow_bridge;
use super::encoding;
use super::fence::Fence;
use super::location;
use crate::error::{Error, Result};

/// An application transaction: "app `app_id` has committed up to `version`" (the Delta `txn`
/// action). Written in the same commit as the data, it makes a retried append detectable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTransaction {
    pub app_id: String,
    pub version: i64,
}

/// What to write alongside the rows of an append.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Recorded atomically with the rows; an append whose app version is not newer than the
    /// table's is skipped (see [`AppendOutcome::AlreadyCommitted`]).
    pub app_transaction: Option<AppTransaction>,
    /// Free-form metadata stored in the commit's `commitInfo` (e.g. a batch's progress).
    pub metadata: Map<String, Value>,
    /// Let the table's schema grow by the frame's new columns, in this same commit.
    pub evolve_schema: bool,
    /// The writer's claim on the table, checked before every attempt of this commit.
    pub fence: Option<Fence>,
}

/// Data files written by [`LakeTable::stage`], not yet committed.
#[derive(Debug, Clone, Default)]
pub struct Staged {
    pub(super) adds: Vec<deltalake::kernel::Add>,
    /// The grown schema, when the frame brought new columns.
    pub(super) schema: Option<StructType>,
}

impl Staged {
    /// How many data files were staged.
    pub fn files(&self) -> usize {
        self.adds.len()
    }

    /// Both stagings' files, to commit together (e.g. halves of a frame written in parallel).
    pub fn merge(mut self, other: Staged) -> Staged {
        self.adds.extend(other.adds);
        self.schema = self.schema.or(other.schema);
        self
    }
}

/// The result of [`LakeTable::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The rows (possibly none) were committed as this table version.
    Committed { version: u64 },
    /// The table already holds this app version or a newer one: nothing was written.
    AlreadyCommitted { app_version: i64 },
}

/// Options for creating a table.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub partition_columns: Vec<String>,
    /// Delta table properties, e.g. `delta.checkpointInterval`.
    pub properties: HashMap<String, String>,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// One version of a table, from its commit in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub version: u64,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    pub operation: Option<String>,
    /// The commit's `commitInfo` object, including metadata passed in [`Commit::metadata`].
    pub commit_info: Map<String, Value>,
    /// The `txn` actions of the commit.
    pub app_transactions: Vec<AppTransaction>,
    /// The table's id, when the commit holds a `metaData` action (always version 0).
    pub table_id: Option<String>,
}

/// A Delta table at a loaded version.
#[derive(Debug, Clone)]
pub struct LakeTable {
    pub(super) url: Url,
    pub(super) table: DeltaTable,
}

impl LakeTable {
    /// Opens the latest version of the table at `location` (a path or URL).
    pub async fn open(location: &str) -> Result<Self> {
        let url = location::parse(location)?;
        if !local_log_exists(&url) {
            return Err(Error::TableNotFound {
                location: url.to_string(),
            });
        }
        let mut table = DeltaTableBuilder::from_url(url.clone())?.build()?;
        match table.load().await {
            Ok(()) => Ok(Self { url, table }),
            Err(deltalake::DeltaTableError::NotATable(_)) => Err(Error::TableNotFound {
                location: url.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a Delta table exists at `location`.
    pub async fn exists(location: &str) -> Result<bool> {
        let url = location::parse(location)?;
        if !local_log_exists(&url) {
            return Ok(false);
        }
        let table = DeltaTableBuilder::from_url(url)?.build()?;
        Ok(table.verify_deltatable_existence().await?)
    }

    /// Creates an empty table with the given schema. Fails if a table is already there.
    pub async fn create(location: &str, schema: &Schema, options: CreateOptions) -> Result<Self> {
        let url = location::parse(location)?;
        if url.scheme() == "file" {
            let dir = location::local_dir(&url)?;
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let arrow_schema = normalised_arrow_schema(schema)?;
        let kernel_schema: StructType = (&arrow_schema).try_into_kernel()?;
        let mut builder = DeltaTable::try_from_url(url.clone())
            .await?
            .create()
            .with_columns(kernel_schema.fields().cloned())
            .with_partition_columns(options.partition_columns)
            .with_configuration(options.properties.into_iter().map(|(k, v)| (k, Some(v))));
        if let Some(name) = options.name {
            builder = builder.with_table_name(name);
        }
        if let Some(description) = options.description {
            builder = builder.with_comment(description);
        }
        let table = builder.await?;
        Ok(Self { url, table })
    }

    /// Opens the table, creating it with `schema` and `options` if there is none yet.
    pub async fn open_or_create(
        location: &str,
        schema: &Schema,
        options: CreateOptions,
    ) -> Result<Self> {
        if Self::exists(location).await? {
            Self::open(location).await
        } else {
            match Self::create(location, schema, options).await {
                Ok(table) => Ok(table),
                // Someone else created it between our look and our create: use theirs.
                Err(_) if Self::exists(location).await? => Self::open(location).await,
                Err(e) => Err(e),
            }
        }
    }

    /// The table's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The loaded version.
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or(0)
    }

    /// The underlying deltalake table, for operations this layer does not wrap.
    pub fn delta(&self) -> &DeltaTable {
        &self.table
    }

    /// Loads the latest version.
    pub async fn refresh(&mut self) -> Result<()> {
        self.table.update_state().await?;
        Ok(())
    }

    /// Loads the given version (time travel).
    pub async fn load_version(&mut self, version: u64) -> Result<()> {
        let latest = self.table.get_latest_version().await?;
        if version > latest {
            return Err(Error::VersionNotFound {
                location: self.url.to_string(),
                version: version as i64,
                latest: latest as i64,
            });
        }
        self.table.load_version(version).await?;
        Ok(())
    }

    /// Loads the latest version committed at or before `timestamp` (time travel).
    pub async fn load_as_of(&mut self, timestamp: chrono::DateTime<chrono::Utc>) -> Result<()> {
        self.table.load_with_datetime(timestamp).await?;
        Ok(())
    }

    /// The table's schema as polars sees it.
    pub fn schema(&self) -> Result<Schema> {
        arrow_bridge::schema_from_arrow(&self.arrow_schema()?)
    }

    /// The table's partition columns.
    pub fn partition_columns(&self) -> Result<Vec<String>> {
        Ok(self
            .table
            .snapshot()?
            .metadata()
            .partition_columns()
            .to_vec())
    }

    pub(crate) fn arrow_schema(&self) -> Result<ArrowSchema> {
        let kernel = self.table.snapshot()?.schema();
        Ok(kernel.as_ref().try_into_arrow()?)
    }

    /// The latest version app `app_id` has committed to this table, if any.
    pub async fn app_version(&self, app_id: &str) -> Result<Option<i64>> {
        let snapshot = self.table.snapshot()?;
        Ok(snapshot
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await?)
    }

    /// Appends `df` in ONE commit that also carries `commit`'s app transaction and metadata.
    ///
    /// Columns are matched by name and cast to the table's types; columns the table has but the
    /// frame lacks are written as nulls. An empty frame still commits (recording progress).
    pub async fn append(&mut self, df: &DataFrame, commit: Commit) -> Result<AppendOutcome> {
        if let Some(app_version) = self.already_committed(&commit).await? {
            return Ok(AppendOutcome::AlreadyCommitted { app_version });
        }
        let staged = self.stage(df, commit.evolve_schema).await?;
        self.commit_adds(staged, commit).await
    }

    /// Loads the latest version and returns the table's app version when it already holds
    /// `commit`'s app transaction (or a newer one of the same app).
    pub(super) async fn already_committed(&mut self, commit: &Commit) -> Result<Option<i64>> {
        self.refresh().await?;
        let Some(txn) = &commit.app_transaction else {
            return Ok(None);
        };
        Ok(self
            .app_version(&txn.app_id)
            .await?
            .filter(|app_version| *app_version >= txn.version))
    }

    /// Writes `df`'s data files without committing them (see [`commit_staged`]): files of
    /// several tables can be written in parallel and then committed in a fixed order. Files
    /// never committed are invisible to readers (and removed by a vacuum).
    ///
    /// [`commit_staged`]: Self::commit_staged
    pub async fn stage(&self, df: &DataFrame, evolve_schema: bool) -> Result<Staged> {
        let table_schema = self.arrow_schema()?;
        let (batches, evolved) = conform(df, &table_schema, evolve_schema, &self.url)?;
        let target = batches.first().map(|b| b.schema());
        let mut writer = RecordBatchWriter::for_table(&self.table)?
            .with_writer_properties(encoding::writer_properties(&batches));
        let mode = if evolved {
            WriteMode::MergeSchema
        } else {
            WriteMode::Default
        };
        for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
            writer.write_with_mode(batch, mode).await?;
        }
        let adds = writer.flush().await?;
        let schema = match (evolved, target) {
            (true, Some(target)) => Some(target.as_ref().try_into_kernel()?),
            _ => None,
        };
        Ok(Staged { adds, schema })
    }

    /// Commits staged files in ONE commit with `commit`'s app transaction and metadata, unless
    /// the table already holds that app version (then nothing is committed).
    pub async fn commit_staged(&mut self, staged: Staged, commit: Commit) -> Result<AppendOutcome> {
        if let Some(app_version) = self.already_committed(&commit).await? {
            return Ok(AppendOutcome::AlreadyCommitted { app_version });
        }
        self.commit_adds(staged, commit).await
    }

    /// The append commit itself, after the already-committed check. A fenced commit is tried
    /// on the latest version only, checking the fence and the app version before each try.
    async fn commit_adds(&mut self, staged: Staged, commit: Commit) -> Result<AppendOutcome> {
        let actions: Vec<Action> = staged.adds.into_iter().map(Action::Add).collect();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: self.partition_by()?,
            predicate: None,
        };
        let Some(fence) = commit.fence.clone() else {
            let version = self
                .commit_actions(actions, staged.schema, commit, operation, None)
                .await?;
            return Ok(AppendOutcome::Committed { version });
        };
        self.commit_fenced(actions, staged.schema, commit, operation, &fence)
            .await
    }

    /// The partition columns for a commit's operation (`None` when unpartitioned).
    pub(super) fn partition_by(&self) -> Result<Option<Vec<String>>> {
        let columns = self.partition_columns()?;
        Ok((!columns.is_empty()).then_some(columns))
    }

    /// Commits `actions` — plus the grown `schema`, if any — with `commit`'s app transaction
    /// and metadata as ONE Delta commit on the loaded version; returns the new version.
    /// `max_retries`: how often deltalake may rebase onto commits that landed meanwhile (its
    /// default when `None`; `Some(0)` fails instead, for callers that check conflicts themselves).
    pub(super) async fn commit_actions(
        &mut self,
        mut actions: Vec<Action>,
        schema: Option<StructType>,
        commit: Commit,
        operation: DeltaOperation,
        max_retries: Option<usize>,
    ) -> Result<u64> {
        let snapshot = self.table.snapshot()?;
        if let Some(schema) = schema {
            let metadata = snapshot
                .metadata()
                .clone()
                .with_schema(&schema)
                .map_err(deltalake::DeltaTableError::from)?;
            actions.push(Action::Metadata(metadata));
        }
        // deltalake cleans expired log entries after every commit, and that lists the whole
        // `_delta_log` with a stat per entry: each commit would cost more the older the table.
        // Entries can only go once a checkpoint covers them, so cleaning right after the
        // commits that write a checkpoint removes the same entries (`clean_log_if_due`).
        let mut properties = CommitProperties::default()
            .with_metadata(commit.metadata)
            .with_cleanup_expired_logs(Some(false));
        if let Some(txn) = commit.app_transaction {
            properties =
                properties.with_application_transaction(Transaction::new(txn.app_id, txn.version));
        }
        if let Some(retries) = max_retries {
            properties = properties.with_max_retries(retries);
        }
        let finalized = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(snapshot as &dyn TableReference),
                self.table.log_store(),
                operation,
            )
            .await?;
        let version = finalized.version() as u64;
        // The commit already brought its read snapshot up to the new version; reloading the
        // table would replay the whole file list a second time (its cost grows with the
        // number of live files).
        self.table.state = Some(finalized.snapshot());
        self.clean_log_if_due(version).await?;
        Ok(version)
    }

    /// Cleans the expired log entries (as the table's properties say) after a commit that
    /// wrote a checkpoint, the only commits after which an entry can become removable.
    async fn clean_log_if_due(&self, version: u64) -> Result<()> {
        let config = self.table.snapshot()?.table_config();
        let interval = config.checkpoint_interval().get();
        if config.enable_expired_log_cleanup() && version > 0 && version.is_multiple_of(interval) {
            deltalake::checkpoints::cleanup_metadata(&self.table, None).await?;
        }
        Ok(())
    }

    /// Commits `staged` files when given (written earlier, e.g. in parallel), else appends
    /// `df`: one call for both paths of a flow.
    pub async fn append_or_commit(
        &mut self,
        staged: Option<Staged>,
        df: &DataFrame,
        commit: Commit,
    ) -> Result<AppendOutcome> {
        match staged {
            Some(files) => self.commit_staged(files, commit).await,
            None => self.append(df, commit).await,
        }
    }
}

/// False only for a local location without a `_delta_log` directory (remote stores are asked).
fn local_log_exists(url: &Url) -> bool {
    match location::local_dir(url) {
        Ok(dir) => dir.join("_delta_log").is_dir(),
        Err(_) => true,
    }
}

/// The arrow schema a polars schema is stored with: strings as `Utf8`, datetimes as
/// microseconds in UTC (Delta's `timestamp`).
pub(super) fn normalised_arrow_schema(schema: &Schema) -> Result<ArrowSchema> {
    let arrow = arrow_bridge::schema_to_arrow(schema)?;
    let fields = arrow
        .fields()
        .iter()
        .map(|f| storage_field(f))
        .collect::<Result<Vec<_>>>()?;
    Ok(ArrowSchema::new(fields))
}

pub(super) fn storage_field(field: &ArrowField) -> Result<ArrowField> {
    use arrow::datatypes::{DataType as A, TimeUnit};
    let unsupported = |hint: &str| Error::UnsupportedType {
        column: field.name().clone(),
        dtype: field.data_type().to_string(),
        hint: hint.to_string(),
    };
    let dtype = match field.data_type() {
        A::Utf8View | A::LargeUtf8 | A::Utf8 => A::Utf8,
        A::BinaryView | A::LargeBinary | A::Binary => A::Binary,
        A::Timestamp(_, _) => A::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        A::UInt8 => A::Int16,
        A::UInt16 => A::Int32,
        A::UInt32 => A::Int64,
        A::UInt64 => return Err(unsupported("cast it to Int64 first")),
        A::List(item) | A::LargeList(item) | A::ListView(item) | A::LargeListView(item) => {
            A::List(Arc::new(storage_field(item)?))
        }
        A::Struct(children) => A::Struct(
            children
                .iter()
                .map(|c| storage_field(c))
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        other => other.clone(),
    };
    Ok(ArrowField::new(field.name(), dtype, true))
}

/// Turns the frame into batches of the table's schema (plus, when `evolve` is set, the frame's
/// new columns at the end). Returns whether the schema grows.
pub(super) fn conform(
    df: &DataFrame,
    table_schema: &ArrowSchema,
    evolve: bool,
    url: &Url,
) -> Result<(Vec<RecordBatch>, bool)> {
    let (frame_schema, batches) = arrow_bridge::dataframe_to_batches(df)?;
    let new_fields: Vec<ArrowField> = frame_schema
        .fields()
        .iter()
        .filter(|f| table_schema.field_with_name(f.name()).is_err())
        .map(|f| storage_field(f))
        .collect::<Result<_>>()?;
    if !new_fields.is_empty() && !evolve {
        let columns = new_fields
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::UnexpectedColumns {
            location: url.to_string(),
            columns,
        });
    }
    let mut fields: Vec<ArrowField> = table_schema
        .fields()
        .iter()
        .map(|f| (**f).clone())
        .collect();
    fields.extend(new_fields);
    let target = Arc::new(ArrowSchema::new(fields));
    for field in frame_schema.fields() {
        if let Ok(to) = target.field_with_name(field.name())
            && !writable(field.data_type(), to.data_type())
        {
            return Err(Error::TypeMismatch {
                location: url.to_string(),
                column: field.name().clone(),
                types: format!("{} ← {}", to.data_type(), field.data_type()),
            });
        }
    }
    // Not `safe`: a value the cast cannot represent (an overflow) fails the write instead of
    // becoming NULL.
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let out = batches
        .iter()
        .map(|batch| {
            let columns = target
                .fields()
                .iter()
                .map(|field| match batch.column_by_name(field.name()) {
                    Some(column) => Ok(cast_with_options(column, field.data_type(), &options)?),
                    None => Ok(new_null_array(field.data_type(), batch.num_rows())),
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            Ok(RecordBatch::try_new(target.clone(), columns)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out, !table_schema_contains_all(table_schema, &target)))
}

/// Whether a column of type `from` may be written to a table column of type `to`: the same
/// kind of value in another layout or a wider one (text views as text, integers to wider
/// integers or doubles, timestamps in another unit), or nulls. Anything else (a double into an
/// integer, text into a number) would change or drop values, so the write fails instead.
pub(super) fn writable(from: &ArrowType, to: &ArrowType) -> bool {
    use ArrowType as A;
    let text = |t: &A| matches!(t, A::Utf8 | A::Utf8View | A::LargeUtf8);
    let binary = |t: &A| matches!(t, A::Binary | A::BinaryView | A::LargeBinary);
    match (from, to) {
        _ if from == to => true,
        (A::Null, _) => true,
        (f, t) if text(f) && text(t) => true,
        (f, t) if binary(f) && binary(t) => true,
        (f, t) if f.is_integer() && t.is_integer() => true,
        (f, A::Float64) if f.is_integer() || f.is_floating() => true,
        (A::Timestamp(..) | A::Date32 | A::Date64, A::Timestamp(..)) => true,
        (
            A::List(f) | A::LargeList(f) | A::ListView(f) | A::LargeListView(f),
            A::List(t) | A::LargeList(t),
        ) => writable(f.data_type(), t.data_type()),
        (A::Struct(f), A::Struct(t)) => f.iter().all(|f| {
            t.iter()
                .find(|t| t.name() == f.name())
                .is_some_and(|t| writable(f.data_type(), t.data_type()))
        }),
        _ => false,
    }
}

fn table_schema_contains_all(table: &ArrowSchema, target: &ArrowSchema) -> bool {
    target
        .fields()
        .iter()
        .all(|f| table.field_with_name(f.name()).is_ok())
}
