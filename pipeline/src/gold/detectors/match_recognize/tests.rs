#![allow(clippy::unwrap_used)]
//! Property test: random sequences cut into random batches (with the state saved and restored
//! between batches, as across restarts) give exactly the matches of one batch.

use std::sync::Arc;

use polars::prelude::*;

use super::super::{Context, Detector, Progress};
use super::value::Ty;
use super::{MatchRecognize, query};
use crate::gold::watermark::EventBuffer;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const QUERIES: [&str; 4] = [
    "SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts MEASURES FIRST(A.id) AS a, \
     LAST(B.id) AS b, C.id AS c, AVG(B.x) AS avg_b PATTERN (A B+? C) WITHIN INTERVAL '30' SECOND \
     DEFINE A AS A.x = 1, C AS C.x > AVG(B.x) + 1)",
    "SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts MEASURES FIRST(A.id) AS a, \
     COUNT(B.x) AS n AFTER MATCH SKIP PAST LAST ROW PATTERN (A B* C?) DEFINE A AS A.x < 2, \
     B AS B.x >= 2, C AS C.x = 0)",
    "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts MEASURES A.id AS a, LAST(B.id) AS b \
     AFTER MATCH SKIP TO LAST B PATTERN ((A | B){2,3} B) DEFINE A AS A.x = 3, B AS B.x <> 3)",
    "SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts MEASURES A.id AS a, \
     SUM(B.x) AS s PATTERN (A B{1,2}? C+) WITHIN INTERVAL '20' SECOND DEFINE A AS A.x = 4, \
     C AS C.x < 2)",
];

fn columns() -> Vec<(String, Ty)> {
    vec![
        ("id".into(), Ty::Str),
        ("k".into(), Ty::Str),
        ("x".into(), Ty::Int),
        ("ts".into(), Ty::Time),
    ]
}

/// Random rows in arrival order: mostly increasing time, ties, and some rows up to 4 s early.
fn rows(rng: &mut Rng, n: usize) -> DataFrame {
    let mut t = 0i64;
    let (mut ids, mut ks, mut xs, mut ts) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        t += match rng.below(4) {
            0 => 0,
            1 => 1_000_000,
            _ => rng.below(6_000_000) as i64,
        };
        let jitter = if rng.below(10) == 0 {
            rng.below(4_000_000) as i64
        } else {
            0
        };
        ids.push(format!("r{i}"));
        ks.push(format!("k{}", rng.below(3)));
        xs.push(rng.below(5) as i64);
        ts.push(t - jitter);
    }
    let time = Column::new("ts".into(), ts)
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap();
    DataFrame::new(
        n,
        vec![
            Column::new("id".into(), ids),
            Column::new("k".into(), ks),
            Column::new("x".into(), xs),
            time,
        ],
    )
    .unwrap()
}

/// Runs `rows` cut at `cuts` (restoring a fresh detector from saved state at every cut) and
/// returns every match (sorted: the order across partitions is not part of the result).
fn run(sql: &str, rows: &DataFrame, cuts: &[usize]) -> Vec<String> {
    let q = Arc::new(query::compile(sql, "t", &columns(), "ts").unwrap());
    let ctx = Context {
        event_time: "ts".into(),
        id_column: Some("id".into()),
    };
    let mut buffer = EventBuffer::new(std::time::Duration::from_secs(5));
    let mut state = serde_json::Value::Null;
    let mut out = Vec::new();
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied());
    bounds.push(rows.height());
    for (batch, w) in bounds.windows(2).enumerate() {
        let last = batch + 2 == bounds.len();
        let mut d = MatchRecognize::new("p", Arc::clone(&q), false);
        d.restore(state).unwrap();
        let part = rows.slice(w[0] as i64, w[1] - w[0]);
        let admitted = buffer.admit(&part, "ts", batch as u64 + 1, last).unwrap();
        let progress = Progress {
            watermark: buffer.watermark(),
            ended: last,
        };
        d.on_ordered(&admitted.released, &ctx, progress, &mut out)
            .unwrap();
        state = d.save().unwrap();
        // The buffer goes through its parquet form as it would across a restart.
        if let Some(pending) = buffer.pending.as_mut() {
            let mut bytes = Vec::new();
            ParquetWriter::new(&mut bytes).finish(pending).unwrap();
            *pending = ParquetReader::new(std::io::Cursor::new(bytes))
                .finish()
                .unwrap();
        }
    }
    let mut matches: Vec<String> = out
        .into_iter()
        .map(|a| format!("{:?} {:?} {}", a.key, a.transaction_ids, a.measures))
        .collect();
    matches.sort();
    matches
}

#[test]
fn random_batch_splits_give_the_same_matches() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0;
    for round in 0..40 {
        let n = 20 + rng.below(200) as usize;
        let data = rows(&mut rng, n);
        for sql in QUERIES {
            let whole = run(sql, &data, &[]);
            let mut cuts: Vec<usize> = (0..rng.below(12))
                .map(|_| rng.below(n as u64) as usize)
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            let split = run(sql, &data, &cuts);
            assert_eq!(split, whole, "round {round}, cuts {cuts:?}, query {sql}");
            let singles: Vec<usize> = (1..n).collect();
            if round % 8 == 0 {
                assert_eq!(
                    run(sql, &data, &singles),
                    whole,
                    "round {round}: single rows"
                );
            }
            total += whole.len();
        }
    }
    assert!(
        total > 200,
        "the queries matched only {total} times: the test proves little"
    );
}
