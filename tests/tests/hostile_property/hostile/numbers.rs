//! Numbers that do not fit their field, and valid numbers (and escapes) written unusually.

use super::Base;
use crate::line::{Fate, Line};
use crate::record::{object, set};
use crate::rng::Rng;

/// A number its field cannot hold: an integer beyond i64 or with a fraction in `qty`
/// (`valid_types(qty)`), a huge double (`amount_sane`), a number beyond f64 (corrupt); or
/// `1e-400`, which is 0.0 (valid).
pub fn out_of_range(rng: &mut Rng, base: Base<'_>) -> Line {
    const QTY: &str = "valid_types(qty)";
    match rng.below(8) {
        0 => {
            let digits = rng.range(20, 30);
            base.quarantined_with("huge_int", "qty", rng.digits(digits), QTY)
        }
        1 => {
            let digits = rng.range(20, 30);
            let value = format!("-{}", rng.digits(digits));
            base.quarantined_with("huge_negative_int", "qty", value, QTY)
        }
        2 => {
            let v = *rng.pick(&["18446744073709551615", "9223372036854775808"]);
            base.quarantined_with("int_above_i64", "qty", v.to_string(), QTY)
        }
        3 => {
            let v = *rng.pick(&["1e2", "100.0", "-0.0", "7.5"]);
            base.quarantined_with("float_in_int", "qty", v.to_string(), QTY)
        }
        4 => {
            let v = *rng.pick(&[
                "1e300",
                "1.7976931348623157e308",
                "-1e300",
                "123456789012345678901234567890",
            ]);
            base.quarantined_with("huge_double", "amount", v.to_string(), "amount_sane")
        }
        5 => {
            let v = *rng.pick(&["1e400", "-1e400", "2e308"]);
            base.corrupt_with("double_overflow", "amount", v.to_string())
        }
        6 => {
            let digits = rng.range(400, 600);
            base.corrupt_with("int_beyond_f64", "qty", rng.digits(digits))
        }
        _ => {
            let mut clean = base.good.clone();
            clean.amount = 0.0;
            base.silver_with("double_underflow", "amount", "1e-400".to_string(), clean)
        }
    }
}

/// Valid numbers and escapes written unusually: silver holds their values.
pub fn unusual_valid(rng: &mut Rng, base: Base<'_>) -> Line {
    let mut clean = base.good.clone();
    let amount = match rng.below(4) {
        0 => {
            let whole = rng.below(10_000);
            clean.amount = whole as f64;
            whole.to_string()
        }
        1 => {
            clean.amount = -0.0;
            "-0.0".into()
        }
        2 => {
            clean.amount = 15.0;
            "1.5e1".into()
        }
        _ => return escaped_id(base),
    };
    base.silver_with("unusual_valid", "amount", amount, clean)
}

/// The id written with escapes (`\u00e9`, a surrogate pair, `\/`) under a key written with
/// one (`\u0069d`): silver holds the unescaped id.
fn escaped_id(mut base: Base<'_>) -> Line {
    let mut clean = base.good.clone();
    clean.id = format!("{}é😀/", base.own_id);
    let escaped = format!(r#""{}\u00e9\ud83d\ude00\/""#, base.own_id);
    set(&mut base.good_fields, "id", escaped);
    let text = object(&base.good_fields, ":").replacen(r#""id":"#, r#""\u0069d":"#, 1);
    Line::new("unusual_valid", text, Fate::Silver(clean))
}

/// An integer id too big for 64 bits, as a JSON number: a string field holds a number as
/// its text, so the id is its digits. Every such id of a case shares its first 19 digits
/// (more than an f64 keeps): they stay distinct records.
pub fn huge_int_id(_rng: &mut Rng, base: Base<'_>) -> Line {
    let digits = format!("1234567890123456789{:04}", base.n);
    let mut clean = base.good.clone();
    clean.id = digits.clone();
    base.silver_with("huge_int_id", "id", digits, clean)
}
