//! Event times silver must refuse (in the future, before 2000, beyond what RFC 3339 holds)
//! and times RFC 3339 allows in other spellings.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Base;
use crate::line::Line;
use crate::record::{json_string, time};
use crate::rng::Rng;

/// A time later than ingestion plus `schema.max_future_skew`, far or near
/// (`event_time_in_future`), or past year 9999, which RFC 3339 cannot hold (`valid_types(ts)`).
pub fn future(rng: &mut Rng, base: Base<'_>) -> Line {
    const FUTURE: &str = "event_time_in_future";
    match rng.below(3) {
        0 => {
            let year = rng.range(2100, 9999);
            let ts = json_string(&time(rng, year));
            base.quarantined_with("far_future", "ts", ts, FUTURE)
        }
        1 => {
            let year = this_year() + 2;
            let ts = json_string(&time(rng, year));
            base.quarantined_with("near_future", "ts", ts, FUTURE)
        }
        _ => {
            let v = *rng.pick(&["+10000-01-01T00:00:00Z", "275760-09-13T00:00:00Z"]);
            base.quarantined_with("beyond_year_9999", "ts", json_string(v), "valid_types(ts)")
        }
    }
}

/// A time before 2000, the epoch among them (the declared `ts_sane`), or before year 0,
/// which RFC 3339 cannot hold (`valid_types(ts)`).
pub fn past(rng: &mut Rng, base: Base<'_>) -> Line {
    match rng.below(3) {
        0 => {
            let year = rng.range(1, 1999);
            let ts = json_string(&time(rng, year));
            base.quarantined_with("far_past", "ts", ts, "ts_sane")
        }
        1 => {
            let v = *rng.pick(&[
                "1970-01-01T00:00:00Z",
                "1969-12-31T23:59:59.999999Z",
                "0000-01-01T00:00:00Z",
            ]);
            base.quarantined_with("epoch", "ts", json_string(v), "ts_sane")
        }
        _ => {
            let v = *rng.pick(&["-0001-01-01T00:00:00Z", "-290000-01-01T00:00:00Z"]);
            base.quarantined_with("before_year_0", "ts", json_string(v), "valid_types(ts)")
        }
    }
}

/// Times RFC 3339 allows, or silver trims: silver holds their canonical instant.
pub fn odd_time(rng: &mut Rng, base: Base<'_>) -> Line {
    let (y, mo, d) = (rng.range(2015, 2022), rng.range(1, 12), rng.range(1, 28));
    let (h, mi, sec) = (rng.below(24), rng.below(60), rng.below(60));
    let date = format!("{y}-{mo:02}-{d:02}");
    let clock = format!("{h:02}:{mi:02}:{sec:02}");
    let (landed, canonical) = match rng.below(4) {
        0 => (format!("{date}t{clock}z"), format!("{date}T{clock}Z")),
        1 => (format!(" {date}T{clock}Z\t"), format!("{date}T{clock}Z")),
        2 => (
            format!("{date}T{clock}.123456789Z"),
            format!("{date}T{clock}.123456Z"),
        ),
        // A leap second is the next second's first instant.
        _ => (
            format!("{y}-06-30T23:59:60Z"),
            format!("{y}-07-01T00:00:00Z"),
        ),
    };
    let mut clean = base.good.clone();
    clean.ts = canonical;
    base.silver_with("odd_time", "ts", json_string(&landed), clean)
}

/// The current year, from the clock (for times just ahead of ingestion).
fn this_year() -> usize {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    1970 + (secs / 31_556_952) as usize
}
