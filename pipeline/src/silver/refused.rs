//! A batch the pipeline refuses to commit because its data breaks a declared rule (exit 4):
//! nothing of it is committed, and a rerun after fixing the data or the config resumes.

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "expectation {name:?} (action = fail) failed on {failed} row(s) of batch {batch}; \
         first offending row: {row}. Nothing of this batch was committed: fix the data or the \
         expectation in the config, then run again to resume"
    )]
    ExpectationFailed {
        name: String,
        batch: u64,
        failed: usize,
        row: String,
    },

    #[error(
        "new column(s) {columns} in {file} and schema.evolution = \"fail_on_new_columns\": \
         declare them in [schema] fields, or choose add_new_columns / rescue / none"
    )]
    NewColumns { columns: String, file: String },
}
