//! `isolake-data`: the canonical transaction record, the Delta Lake + polars data layer the
//! other crates read and write tables through, and the seeded transaction generator.
//!
//! ```text
//! record     the canonical record's fields and types
//! lake       Delta tables: create, append (with app transactions), read as LazyFrame
//! generator  deterministic synthetic transactions with labelled anomalies
//! ```

pub mod error;
pub mod generator;
#[cfg(feature = "lake")]
pub mod input;
#[cfg(feature = "lake")]
pub mod lake;
pub mod record;

pub use error::{Error, Result};

/// The polars this crate's frames belong to, so users need not pin a matching version.
#[cfg(feature = "lake")]
pub use polars;
