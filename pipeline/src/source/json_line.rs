//! One NDJSON line parsed without building a `serde_json::Map`: keys and string values borrow
//! from the line when they have no escapes, and scalars stay scalars. The reader's hot loop
//! used to spend most of its time allocating and hashing maps it threw away at once.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::Value;

/// A field's value as landed.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An object or an array.
    Other(Value),
}

impl Scalar<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// The value as JSON (for `_rescued_data`).
    pub fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::from(*i),
            Scalar::UInt(u) => Value::from(*u),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Scalar::Str(s) => Value::String(s.to_string()),
            Scalar::Other(v) => v.clone(),
        }
    }

    /// A string field takes any scalar as its text; objects and arrays as their JSON.
    pub fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.to_string(),
            Scalar::Int(i) => i.to_string(),
            other => other.to_value().to_string(),
        }
    }
}

/// The fields of a line that is a JSON object, in order; `None` if it is anything else.
pub fn parse(line: &str) -> Option<Vec<(Cow<'_, str>, Scalar<'_>)>> {
    let mut de = serde_json::Deserializer::from_str(line);
    let fields = (&mut de).deserialize_map(ObjectVisitor).ok()?;
    de.end().ok()?;
    Some(fields)
}

/// The landed text of the top-level value of `key` (its last occurrence, as the last value
/// wins): a number exactly as written, such as an integer beyond 64 bits or `1.10`, which an
/// f64 would change. Called only for numbers bound for text columns, so speed does not matter.
pub fn raw_value<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut found = None;
    loop {
        i = skip_ws(b, i);
        if b.get(i) == Some(&b'}') {
            return found;
        }
        let key_end = string_end(b, i)?;
        let name: String = serde_json::from_str(&line[i..key_end]).ok()?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let end = value_end(b, i)?;
        if name == key {
            found = Some(&line[i..end]);
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return found,
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the string token starting at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The index after the value token starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                j += 1;
            }
            Some(j)
        }
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<(Cow<'de, str>, Scalar<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(ScalarSeed)?;
            out.push((key, value));
        }
        Ok(out)
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Scalar::UInt(v), Scalar::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v: Value = serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Scalar::Other(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v: Value = serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Scalar::Other(v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_borrowed_and_everything_else_is_refused() {
        let fields =
            parse(r#"{"a":"x","b\u0041":1,"c":2.5,"d":null,"e":[1,{"f":2}],"g":true}"#).unwrap();
        assert!(matches!(
            &fields[0],
            (Cow::Borrowed("a"), Scalar::Str(Cow::Borrowed("x")))
        ));
        assert_eq!(fields[1], (Cow::Owned("bA".into()), Scalar::Int(1)));
        assert_eq!(fields[2].1, Scalar::Float(2.5));
        assert!(fields[3].1.is_null());
        assert_eq!(fields[4].1.text(), r#"[1,{"f":2}]"#);
        assert_eq!(fields[5].1, Scalar::Bool(true));
        for bad in [
            "[1,2]",
            "{broken",
            "{\"a\":1} trailing",
            "\"text\"",
            "{\"a\":1,}",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            parse(r#"{"n":18446744073709551615}"#).unwrap()[0].1,
            Scalar::UInt(u64::MAX)
        );
    }

    #[test]
    fn raw_values_keep_the_landed_digits() {
        let line = r#"{ "a" : {"x": "}"}, "b\u0041": 12345678901234567890123 ,"c":1.10,"c":2.50}"#;
        assert_eq!(raw_value(line, "bA"), Some("12345678901234567890123"));
        assert_eq!(raw_value(line, "c"), Some("2.50"));
        assert_eq!(raw_value(line, "a"), Some(r#"{"x": "}"}"#));
        assert_eq!(raw_value(line, "z"), None);
        assert_eq!(raw_value("[1]", "a"), None);
    }
}
