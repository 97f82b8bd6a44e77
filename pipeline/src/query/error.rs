//! Why a query cannot run: bad SQL, an unknown or missing table, an unknown version, or a
//! failure reading or writing.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query: invalid SQL: {0}")]
    InvalidSql(String),
    #[error("query: refused: {0}")]
    Refused(String),
    #[error("query: table {0} does not exist yet (run the pipeline first)")]
    NotCreated(String),
    #[error("query: {name}{when}: {source}")]
    TimeTravel {
        name: String,
        /// ` as of <time>`, or empty for a version.
        when: String,
        source: Box<isolake_data::Error>,
    },
    #[error("query: --as-of {given:?}: {reason} (use RFC 3339)")]
    AsOf { given: String, reason: String },
    /// polars could not plan or run the query (unknown table names, columns, functions).
    #[error("query: {reason} (tables: {tables})")]
    Plan { reason: String, tables: String },
    #[error("query: {0}")]
    Run(polars::prelude::PolarsError),
    #[error("query: {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(Box<isolake_data::Error>),
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
}

impl From<isolake_data::Error> for QueryError {
    fn from(e: isolake_data::Error) -> Self {
        QueryError::Data(Box::new(e))
    }
}

impl QueryError {
    /// A mistake in what the user asked (exit 2), not a failure of the lake.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            QueryError::InvalidSql(_)
                | QueryError::Refused(_)
                | QueryError::NotCreated(_)
                | QueryError::TimeTravel { .. }
                | QueryError::AsOf { .. }
                | QueryError::Plan { .. }
                | QueryError::Run(_)
        )
    }
}
