//! The schema change start-up refuses.

/// A change to existing rows that an append cannot make.
#[derive(Debug, thiserror::Error)]
#[error("table {table}: column {column} {change}; {hint}")]
pub struct NotAdditive {
    pub table: String,
    pub column: String,
    pub change: String,
    pub hint: &'static str,
}
