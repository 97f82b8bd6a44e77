//! Delta tables on an S3-compatible store (a real moto server on 127.0.0.1), the first step of
//! object-storage lakes (issue 19): commits go through put-if-absent, so two writers that
//! both start from one version never both create the next log entry — the second rebases
//! and lands after it — and Python's deltalake reads the table through the same server.
#![allow(clippy::unwrap_used)]

use isolake_data::lake::{AppTransaction, AppendOutcome, Commit, CreateOptions, LakeTable};
use isolake_data::polars::prelude::*;
use isolake_tests::lake::block_on;
use isolake_tests::s3::MotoServer;

fn rows(ids: &[&str]) -> DataFrame {
    df! { "transaction_id" => ids, "amount" => vec![1.5; ids.len()] }.unwrap()
}

fn commit(app: &str, version: i64) -> Commit {
    Commit {
        app_transaction: Some(AppTransaction {
            app_id: app.into(),
            version,
        }),
        ..Default::default()
    }
}

#[test]
fn two_writers_from_one_version_both_land_once_and_python_reads_the_rows() {
    let moto = MotoServer::start("lake");
    isolake_data::lake::s3_store::configure(moto.options());
    let location = format!("s3://{}/tables/t", moto.bucket);
    let versions = block_on(async {
        let first = rows(&["a", "b"]);
        LakeTable::create(&location, first.schema(), CreateOptions::default())
            .await
            .unwrap();
        // Both writers load version 0, then commit one after the other: the second's put of
        // log entry 1 is refused (412), so it rebases onto version 1 and commits version 2.
        let mut one = LakeTable::open(&location).await.unwrap();
        let mut two = LakeTable::open(&location).await.unwrap();
        let a = one.append(&first, commit("one", 1)).await.unwrap();
        let b = two.append(&rows(&["c"]), commit("two", 1)).await.unwrap();
        // A retried batch is a no-op, also on object storage.
        let again = two.append(&rows(&["c"]), commit("two", 1)).await.unwrap();
        (a, b, again)
    });
    assert_eq!(versions.0, AppendOutcome::Committed { version: 1 });
    assert_eq!(versions.1, AppendOutcome::Committed { version: 2 });
    assert_eq!(
        versions.2,
        AppendOutcome::AlreadyCommitted { app_version: 1 }
    );
    let read = isolake_tests::run_python(
        r#"
import json, os, sys
from deltalake import DeltaTable
options = json.loads(sys.argv[2])
t = DeltaTable(sys.argv[1], storage_options=options)
rows = t.to_pyarrow_table().to_pydict()
print(json.dumps({"version": t.version(), "ids": sorted(rows["transaction_id"])}), flush=True)
# pyarrow's AWS SDK, once started, can abort the interpreter's shutdown ("terminate called
# without an active exception"): the answer is out, so leave without one.
os._exit(0)
"#,
        &[
            &location,
            &serde_json::to_string(
                &moto
                    .env()
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .unwrap(),
        ],
    );
    assert_eq!(
        read,
        serde_json::json!({"version": 2, "ids": ["a", "b", "c"]})
    );
}
