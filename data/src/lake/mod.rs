//! The Delta Lake layer: tables as URLs, appends of polars frames in single commits that carry
//! application transactions, and reads back as lazy frames.

mod arrow_bridge;
pub mod counting_store;
mod encoding;
mod fence;
mod history;
mod local_store;
pub mod location;
mod maintain;
pub mod objects;
mod read;
mod reshape;
pub(crate) mod rewrite;
pub mod s3_store;
mod table;

pub use arrow_bridge::{schema_from_arrow, schema_to_arrow};
pub use fence::{Fence, FenceGuard, FenceState};
pub use maintain::Compacted;
pub use read::scan_table;
pub use reshape::{ColumnChange, SchemaDiff};
pub use rewrite::Rewrite;
pub use table::{
    AppTransaction, AppendOutcome, Commit, CreateOptions, LakeTable, Staged, VersionInfo,
};
