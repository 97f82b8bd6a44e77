//! MATCH_RECOGNIZE benchmark (issue 7): Flink's tutorial Q3 over 1M generated sales rows of
//! 5k users, fed to the detector in event-time order in 10 batches (BATCHES=n), as gold does. Prints
//! rows/s and the ratio against the target (1M rows/s on 2 cores; real Flink in local mode
//! needs ~13 s for 100k rows, start-up included).
//!
//!   cargo bench -p isolake-pipeline -p isolake-data --bench match_recognize   # ROWS=1000000 USERS=5000

use std::sync::Arc;
use std::time::Instant;

use isolake_pipeline::gold::alerts::Alert;
use isolake_pipeline::gold::detectors::match_recognize::value::Ty;
use isolake_pipeline::gold::detectors::match_recognize::{MatchRecognize, query};
use isolake_pipeline::gold::detectors::{Context, Detector, Progress};
use polars::prelude::*;

const Q3: &str = "SELECT * FROM SalesRecordTable MATCH_RECOGNIZE (
    PARTITION BY user_id
    ORDER BY purchase_time
    MEASURES
        UNUSUAL_SALE.invoice_id AS unusual_invoice_id,
        CAST(UNUSUAL_SALE.quantity AS INT) AS unusual_quantity,
        UNUSUAL_SALE.purchase_time AS unusual_tstamp,
        AVG(CAST(TYPICAL_SALE.quantity AS INT)) AS avg_quantity,
        FIRST(TYPICAL_SALE.purchase_time) AS avg_first_sale_tstamp,
        LAST(TYPICAL_SALE.purchase_time) AS avg_last_sale_tstamp
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (TYPICAL_SALE+? UNUSUAL_SALE) WITHIN INTERVAL '10' SECOND
    DEFINE UNUSUAL_SALE AS UNUSUAL_SALE.quantity > AVG(CAST(TYPICAL_SALE.quantity AS INT)) * 3
)";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sales rows in event-time order: one every 2 ms on average, quantities mostly 1–3 with a
/// spike now and then.
fn sales(rows: usize, users: usize) -> DataFrame {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut time = 1_752_156_000_000_000i64;
    let (mut ids, mut user, mut quantity, mut times) = (vec![], vec![], vec![], vec![]);
    for i in 0..rows {
        time += (next() % 4_000) as i64;
        ids.push(format!("i{i}"));
        user.push(format!("u{}", next() % users as u64));
        let q = if next() % 20 == 0 {
            5 + next() % 20
        } else {
            1 + next() % 3
        };
        quantity.push(q.to_string());
        times.push(time);
    }
    let purchase_time = Column::new("purchase_time".into(), times)
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .expect("a datetime column");
    DataFrame::new(
        rows,
        vec![
            Column::new("invoice_id".into(), ids),
            Column::new("user_id".into(), user),
            Column::new("quantity".into(), quantity),
            purchase_time,
        ],
    )
    .expect("a frame")
}

fn main() {
    let rows = env("ROWS", 1_000_000);
    let users = env("USERS", 5_000);
    let batches = env("BATCHES", 10);
    let columns = vec![
        ("invoice_id".to_string(), Ty::Str),
        ("user_id".to_string(), Ty::Str),
        ("quantity".to_string(), Ty::Str),
        ("purchase_time".to_string(), Ty::Time),
    ];
    let q = query::compile(Q3, "SalesRecordTable", &columns, "purchase_time").expect("Q3 compiles");
    let data = sales(rows, users);
    let ctx = Context {
        event_time: "purchase_time".into(),
        id_column: Some("invoice_id".into()),
    };
    let mut best = f64::INFINITY;
    let mut matched = 0;
    for _ in 0..3 {
        let mut detector = MatchRecognize::new("q3", Arc::new(q.clone()), true);
        let mut alerts: Vec<Alert> = Vec::new();
        let started = Instant::now();
        let per = rows.div_ceil(batches);
        for b in 0..batches {
            let part = data.slice((b * per) as i64, per);
            let last = b + 1 == batches;
            let watermark = part
                .column("purchase_time")
                .and_then(|c| c.cast(&DataType::Int64))
                .ok()
                .and_then(|c| c.i64().ok().and_then(|c| c.max()))
                .map(|m| m - 5_000_000);
            let progress = Progress {
                watermark,
                ended: last,
            };
            detector
                .on_ordered(&part, &ctx, progress, &mut alerts)
                .expect("Q3 runs");
            detector.take_output().expect("output rows");
        }
        best = best.min(started.elapsed().as_secs_f64());
        matched = alerts.len();
    }
    let rate = rows as f64 / best;
    println!(
        "match_recognize Q3: {rows} rows, {users} users, {matched} matches in {best:.3} s = \
         {rate:.0} rows/s (target 1,000,000: ratio {:.2}; best of 3)",
        rate / 1e6
    );
}
