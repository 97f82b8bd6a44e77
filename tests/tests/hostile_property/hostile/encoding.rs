//! Lines whose bytes or line ends are hostile: bytes that are not UTF-8, byte-order marks
//! where a file does not start, carriage returns without a line feed, whitespace only.

use super::Base;
use crate::line::{Fate, Line};
use crate::record::{Record, json_string};
use crate::rng::Rng;

/// Bytes that are not UTF-8: a UTF-16 mark, an overlong `/`, a surrogate, a cut sequence, a
/// lone continuation byte, Latin-1, a five-byte form.
const BAD_UTF8: [&[u8]; 7] = [
    b"\xff\xfe",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\x80",
    b"caf\xe9",
    b"\xf8\x88\x80\x80\x80",
];

/// Bytes that are not UTF-8, alone or inside a record's id: corrupt.
pub fn bad_utf8(rng: &mut Rng, base: Base<'_>) -> Line {
    let bad = *rng.pick(&BAD_UTF8);
    let bytes = if rng.chance(30) {
        bad.to_vec()
    } else {
        let text = base.bad.line();
        // Inside the id's string, before its closing quote.
        let quoted = json_string(&base.bad.id);
        let at = text.find(&quoted).unwrap() + quoted.len() - 1;
        [&text.as_bytes()[..at], bad, &text.as_bytes()[at..]].concat()
    };
    Line::new("bad_utf8", bytes, Fate::Corrupt)
}

/// A byte-order mark before a record that does not start its file, whole or cut (corrupt),
/// or inside a string value (valid: the value keeps it).
pub fn byte_order_marks(rng: &mut Rng, base: Base<'_>) -> Line {
    match rng.below(3) {
        0 => Line::new(
            "bom_mid_file",
            [&b"\xEF\xBB\xBF"[..], base.bad.line().as_bytes()].concat(),
            Fate::Corrupt,
        ),
        1 => Line::new(
            "bom_truncated",
            [&b"\xEF\xBB"[..], base.bad.line().as_bytes()].concat(),
            Fate::Corrupt,
        ),
        _ => {
            let mut good = base.good;
            good.id.push('\u{feff}');
            Line::new("bom_in_value", good.line(), Fate::Silver(good))
        }
    }
}

/// A carriage return without a line feed: between two objects (one corrupt line, since
/// only LF ends a line), after a valid record (trailing whitespace), or alone (blank).
pub fn carriage_returns(rng: &mut Rng, base: Base<'_>) -> Line {
    match rng.below(3) {
        0 => {
            let other = Record::random(rng, format!("h{:03}b", base.n));
            Line::new(
                "bare_cr",
                format!("{}\r{}", base.bad.line(), other.line()),
                Fate::Corrupt,
            )
        }
        1 => Line::new(
            "trailing_cr",
            format!("{} \r", base.good.line()),
            Fate::Silver(base.good),
        ),
        _ => Line::new("cr_only", "\r", Fate::Blank),
    }
}

/// Whitespace only, form feed included: no row anywhere.
pub fn blank(rng: &mut Rng, _base: Base<'_>) -> Line {
    let text = *rng.pick(&["", " ", "\t \t", "\x0c", "  \r"]);
    Line::new("blank", text, Fate::Blank)
}
