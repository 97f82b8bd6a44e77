//! Schema changes a config makes to tables that already exist.
//!
//! Declaring a field, casting to a wider type or adding a measure must not need a new lake:
//!
//! - a new column is additive: the batch's own commit adds it (old rows read NULL);
//! - a wider type (integer → double) keeps every value: start-up rewrites the table's files
//!   into it in one commit, before the first batch;
//! - a narrowed type or a removed column would change rows already committed: `validate` and
//!   start-up refuse it (exit 2, naming the table and column), and `run --full-refresh`
//!   applies it by rebuilding the derived tables with the new schema. Bronze is never rebuilt
//!   (it is what landed), so a field declared narrower there is refused even then; silver's
//!   casts narrow a column without touching bronze.

use isolake_data::lake::{Commit, LakeTable, SchemaDiff};
use polars::prelude::{Schema, SchemaExt};

use crate::error::Result;
use crate::gold::{self, Gold};
use crate::plan::Plan;
use crate::tables::{ALERTS, BRONZE, EVENT_LOG, QUARANTINE, SCORED, SILVER};
use crate::{bronze, event_log, silver};

pub mod error;
pub use error::NotAdditive;

/// How strictly a table's columns follow the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Bronze: keeps every column it ever had (retired fields, evolved columns).
    Landed,
    /// Derived, and may hold columns beyond the plan's (evolved bronze columns in
    /// quarantine, dimension columns in alerts, older silver columns in gold).
    DerivedOpen,
    /// Derived, exactly the plan's columns (silver, a detector's output table).
    DerivedExact,
    /// The event log: grows, never rebuilt.
    Log,
}

/// What start-up is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `validate`: look only.
    Check,
    /// `run`: widen what must be widened.
    Start,
    /// `run --full-refresh`: the derived tables are rebuilt (with the new schema) anyway.
    FullRefresh,
}

/// Every table the plan writes, with the schema the plan wants and its role.
fn wanted(plan: &Plan) -> Vec<(String, Schema, Role)> {
    let config = &plan.config;
    let bronze_schema = bronze::schema(&config.schema.fields);
    let mut out = vec![
        (BRONZE.to_string(), bronze_schema.clone(), Role::Landed),
        (
            SILVER.into(),
            plan.silver_schema.clone(),
            Role::DerivedExact,
        ),
        (
            QUARANTINE.into(),
            silver::quarantine_schema(&bronze_schema),
            Role::DerivedOpen,
        ),
        (EVENT_LOG.into(), event_log::schema(), Role::Log),
    ];
    if let Some(gold_plan) = &plan.gold {
        let scored = gold::scored_schema(&plan.silver_schema);
        out.push((SCORED.into(), scored, Role::DerivedOpen));
        let alerts = gold::alerts::schema(&gold_plan.alert_keys);
        out.push((ALERTS.into(), alerts, Role::DerivedOpen));
        let stage = Gold::new(
            gold_plan,
            &config.schema.event_time,
            config.schema.key.as_deref(),
        );
        for (name, schema) in stage.output_schemas() {
            out.push((format!("gold/{name}"), schema, Role::DerivedExact));
        }
    }
    out
}

/// The schemas of the derived tables as the plan wants them (a full refresh empties each
/// table into its schema).
pub fn derived_schemas(plan: &Plan) -> Vec<(String, Schema)> {
    wanted(plan)
        .into_iter()
        .filter(|(_, _, role)| matches!(role, Role::DerivedOpen | Role::DerivedExact))
        .map(|(name, schema, _)| (name, schema))
        .collect()
}

/// Compares every existing table with the plan: refuses what an append cannot do, and (unless
/// only checking) widens columns in place. Returns a line per change made or to be made.
pub async fn reconcile(plan: &Plan, mode: Mode) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for (name, schema, role) in wanted(plan) {
        let location = plan.config.table_location(&name);
        if !LakeTable::exists(&location).await? {
            continue;
        }
        let mut table = LakeTable::open(&location).await?;
        let schema = match role {
            // What bronze will store (see `bronze::stored_fields`).
            Role::Landed => {
                let fields = &plan.config.schema.fields;
                bronze::schema(&bronze::stored_fields(fields, &table.schema()?))
            }
            _ => schema,
        };
        let diff = table.diff(&schema)?;
        let rebuilt = mode == Mode::FullRefresh && role != Role::Landed && role != Role::Log;
        if rebuilt {
            continue;
        }
        refuse(&name, &diff, role)?;
        for column in &diff.added {
            notes.push(format!("{name}: adds column {column} (old rows read NULL)"));
        }
        if diff.widened.is_empty() {
            continue;
        }
        for change in &diff.widened {
            let verb = if mode == Mode::Check {
                "will widen"
            } else {
                "widened"
            };
            let (column, from, to) = (&change.column, &change.from, &change.to);
            notes.push(format!(
                "{name}: {verb} column {column} from {from} to {to}"
            ));
        }
        if mode != Mode::Check {
            let target = widened(&table.schema()?, &schema, &diff);
            table.reshape(&target, true, Commit::default()).await?;
            tracing::info!(table = name, "widened in place");
        }
    }
    Ok(notes)
}

/// The first change `role` does not allow, as an error.
fn refuse(name: &str, diff: &SchemaDiff, role: Role) -> Result<()> {
    let hint = match role {
        Role::Landed => {
            "bronze keeps what landed, so declare the field as before and narrow it in silver \
             with silver.casts"
        }
        _ => {
            "this changes rows already committed: run `isolake-pipeline run --full-refresh` \
             to rebuild silver, quarantine and gold with it"
        }
    };
    if let Some(change) = diff.narrowed.first() {
        return Err(NotAdditive {
            table: name.to_string(),
            column: change.column.clone(),
            change: format!("is {} and would become {}", change.from, change.to),
            hint,
        }
        .into());
    }
    if role == Role::DerivedExact
        && let Some(column) = diff.removed.first()
    {
        return Err(NotAdditive {
            table: name.to_string(),
            column: column.clone(),
            change: "is no longer produced (a removed column)".into(),
            hint,
        }
        .into());
    }
    Ok(())
}

/// The table's own schema with the widened columns given their new type (every other column
/// kept, in its place).
fn widened(table: &Schema, wanted: &Schema, diff: &SchemaDiff) -> Schema {
    table
        .iter_fields()
        .map(|mut field| {
            if diff
                .widened
                .iter()
                .any(|c| c.column == field.name().as_str())
                && let Some(dtype) = wanted.get(field.name())
            {
                field.dtype = dtype.clone();
            }
            field
        })
        .collect()
}
