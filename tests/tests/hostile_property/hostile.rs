//! The generator of hostile lines: one function per family, picked from a table.
//!
//! Every hostile line starts from the same draws (a [`Base`]); its family then spoils the
//! base's records, or writes a valid one unusually. The families live beside this file, by
//! what they attack: [`encoding`] (bytes, marks, line ends), [`numbers`], [`times`], [`keys`]
//! (reserved names, repeats, odd names) and [`structure`] (nesting, malformed JSON, types).

mod encoding;
mod keys;
mod numbers;
mod structure;
mod times;

use crate::line::{Fate, Line, quarantined};
use crate::record::{Record, object, set};
use crate::rng::Rng;

/// A family of hostile lines: from the base's draws, one line of one of its kinds.
type Family = fn(&mut Rng, Base<'_>) -> Line;

/// The families, in draw order: `rng.below(16)` picks one by its index here, so reordering
/// (or inserting) one changes what every seed generates.
const FAMILIES: [Family; 16] = [
    encoding::bad_utf8,
    numbers::out_of_range,
    structure::nesting,
    keys::reserved,
    encoding::byte_order_marks,
    encoding::carriage_returns,
    times::future,
    times::past,
    keys::duplicates,
    structure::malformed,
    structure::wrong_type,
    encoding::blank,
    keys::odd_key,
    times::odd_time,
    numbers::unusual_valid,
    numbers::huge_int_id,
];

/// Hostile line number `n`. Records that must be quarantined sometimes take a valid id.
pub fn hostile(rng: &mut Rng, n: usize, valid_ids: &[String]) -> Line {
    let base = Base::draw(rng, n, valid_ids);
    let family = FAMILIES[rng.below(FAMILIES.len())];
    family(rng, base)
}

/// What every hostile line is made from, drawn before its family is picked.
pub struct Base<'a> {
    /// The line's number among its case's hostile lines.
    pub n: usize,
    /// `h<n>`: the line's own id, which no valid record has.
    pub own_id: String,
    /// The id of a record that does not reach silver: its own, or one a valid record has.
    pub bad_id: String,
    /// A record with `bad_id`, for the kinds that spoil it (quarantined or corrupt).
    pub bad: Record,
    /// `bad`'s fields as (key, JSON text), to spoil.
    pub bad_fields: Vec<(String, String)>,
    /// A valid record with `own_id`, for the kinds that must still reach silver.
    pub good: Record,
    /// `good`'s fields as (key, JSON text), to write unusually.
    pub good_fields: Vec<(String, String)>,
    /// The ids of the case's valid records, to borrow.
    pub valid_ids: &'a [String],
}

impl<'a> Base<'a> {
    /// The draws, in the generator's order: whether to borrow an id, then both records.
    fn draw(rng: &mut Rng, n: usize, valid_ids: &'a [String]) -> Self {
        let own_id = format!("h{n:03}");
        let bad_id = if rng.chance(25) {
            rng.pick(valid_ids).clone()
        } else {
            own_id.clone()
        };
        let bad = Record::random(rng, bad_id.clone());
        let good = Record::random(rng, own_id.clone());
        Self {
            n,
            bad_fields: bad.fields(),
            good_fields: good.fields(),
            own_id,
            bad_id,
            bad,
            good,
            valid_ids,
        }
    }

    /// `bad_fields` as they are now, as a line of `kind` that must become `fate`.
    pub fn bad_line(&self, kind: &'static str, fate: Fate) -> Line {
        Line::new(kind, object(&self.bad_fields, ":"), fate)
    }

    /// `bad` with `key` set to `value` (JSON text), quarantined with `bad_id` for `reason`.
    pub fn quarantined_with(
        mut self,
        kind: &'static str,
        key: &str,
        value: String,
        reason: &'static str,
    ) -> Line {
        set(&mut self.bad_fields, key, value);
        self.bad_line(kind, quarantined(&self.bad_id, reason))
    }

    /// `bad` with `key` set to `value` (JSON text), which the reader cannot decode.
    pub fn corrupt_with(mut self, kind: &'static str, key: &str, value: String) -> Line {
        set(&mut self.bad_fields, key, value);
        self.bad_line(kind, Fate::Corrupt)
    }

    /// `good_fields` as they are now, as a line of `kind` that silver holds as `good`.
    pub fn good_line(self, kind: &'static str) -> Line {
        Line::new(
            kind,
            object(&self.good_fields, ":"),
            Fate::Silver(self.good),
        )
    }

    /// `good` with `key` written as `value` (JSON text), which silver must hold as `clean`.
    pub fn silver_with(
        mut self,
        kind: &'static str,
        key: &str,
        value: String,
        clean: Record,
    ) -> Line {
        set(&mut self.good_fields, key, value);
        Line::new(kind, object(&self.good_fields, ":"), Fate::Silver(clean))
    }
}
