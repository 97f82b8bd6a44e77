//! Every table the pipeline writes opens in Python `deltalake` and in DuckDB's `delta_scan`
//! with the same rows as isolake's own read — before and after `optimize`.
#![allow(clippy::unwrap_used)]

use isolake_tests::lake::{Lake, generate, strings};
use isolake_tests::registry::{labelled_table, ok, train};
use isolake_tests::run_python;
use polars::prelude::*;

/// (table, key expression parts, numeric column) of each table compared.
const TABLES: [(&str, &[&str], &str); 5] = [
    ("bronze", &["_source_file", "_source_line"], "amount"),
    ("silver", &["transaction_id"], "amount"),
    (
        "gold/scored_transactions",
        &["transaction_id"],
        "anomaly_score",
    ),
    ("gold/alerts", &["alert_id"], "score"),
    ("event_log", &["flow", "batch_id", "status"], "rows_in"),
];

const READ_ELSEWHERE: &str = r#"
import glob, json, os, sys
import duckdb, duckdb_extension_delta
from deltalake import DeltaTable

lake, spec = sys.argv[1], json.loads(sys.argv[2])
ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_delta.__file__),
                             "extensions", "*", "delta.duckdb_extension"))[0]
con = duckdb.connect(config={"autoinstall_known_extensions": "false",
                             "autoload_known_extensions": "false",
                             "allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")

def fingerprint(rows):
    out = []
    for key, num in rows:
        num = "null" if num is None else f"{float(num):.9f}"
        out.append("|".join("null" if k is None else str(k) for k in key) + "=" + num)
    return sorted(out)

result = {}
for table, keys, num in spec:
    path = os.path.join(lake, table)
    t = DeltaTable(path).to_pyarrow_table(columns=keys + [num]).to_pydict()
    rows = [([t[k][i] for k in keys], t[num][i]) for i in range(len(t[num]))]
    cols = ", ".join(f'"{c}"' for c in keys + [num])
    fetched = con.execute(f"SELECT {cols} FROM delta_scan('{path}')").fetchall()
    result[table] = {
        "deltalake": fingerprint(rows),
        "duckdb": fingerprint([(list(r[:-1]), r[-1]) for r in fetched]),
    }
print(json.dumps(result))
"#;

/// isolake's own read, fingerprinted like the Python side does.
fn fingerprint(lake: &Lake, table: &str, keys: &[&str], num: &str) -> Vec<String> {
    let df = lake.read(table);
    let parts: Vec<Vec<Option<String>>> = keys.iter().map(|k| strings(&df, k)).collect();
    let nums = df.column(num).unwrap().cast(&DataType::Float64).unwrap();
    let nums = nums.f64().unwrap();
    let mut out: Vec<String> = (0..df.height())
        .map(|i| {
            let key: Vec<String> = parts
                .iter()
                .map(|p| p[i].clone().unwrap_or_else(|| "null".into()))
                .collect();
            let value = nums
                .get(i)
                .map_or("null".to_string(), |v| format!("{v:.9}"));
            format!("{}={value}", key.join("|"))
        })
        .collect();
    out.sort();
    out
}

fn compare(lake: &Lake, when: &str) {
    let spec: Vec<serde_json::Value> = TABLES
        .iter()
        .map(|(t, k, n)| serde_json::json!([t, k, n]))
        .collect();
    let lake_dir = lake.dir.join("lake");
    let other = run_python(
        READ_ELSEWHERE,
        &[
            lake_dir.to_str().unwrap(),
            &serde_json::Value::Array(spec).to_string(),
        ],
    );
    for (table, keys, num) in TABLES {
        let ours = fingerprint(lake, table, keys, num);
        assert!(
            !ours.is_empty(),
            "{when}: {table} is empty: the test proves little"
        );
        for reader in ["deltalake", "duckdb"] {
            let theirs: Vec<String> = other[table][reader]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                theirs.len(),
                ours.len(),
                "{when}: {table} row count in {reader}"
            );
            assert_eq!(theirs, ours, "{when}: {table} content in {reader}");
        }
    }
}

#[test]
fn every_table_reads_the_same_in_deltalake_and_duckdb_before_and_after_optimize() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    let registry = registry.to_str().unwrap();
    let table = labelled_table(tmp.path(), "train", 3_000, 4);
    ok(&train(
        registry,
        &table,
        "fraud",
        &["--promote", "production"],
        &[],
    ));
    let lake = Lake::new(
        &tmp.path().join("pipeline"),
        "stability_ms = 1\nmax_files_per_batch = 2",
        &format!(
            "[model]\nuri = \"models:/fraud@production\"\nregistry = \"{registry}\"\n\
             [[detectors]]\nname = \"stl\"\nkind = \"small_then_large\"\n"
        ),
    );
    generate(&lake.landing(), 4_000, 8, 21, 0.01);
    lake.run_with(&["run", "--once", "--drain"]);
    compare(&lake, "as written");

    let out = lake.run_with(&["optimize"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("bronze: 4 file(s) → 1"), "{report}");
    compare(&lake, "after optimize");
}
