//! Reading a landed file into bronze columns, line by line, never dropping a line.
//!
//! Each non-blank line becomes one row. A line that is not valid UTF-8, or not a JSON object,
//! keeps its raw text in `_corrupt_record`. A value of the wrong JSON type for its declared
//! field is kept in `_rescued_data` (a JSON object) and the column is null. Unknown fields
//! follow the evolution mode. `.gz` files are decompressed (a broken stream keeps the lines
//! decoded so far and adds one corrupt row saying why).
//!
//! Limits keep one hostile file from exhausting memory: a file larger than `max_file_bytes`
//! (decompressed) is refused before it is held whole, a line longer than `max_line_bytes` is a
//! corrupt row keeping its first KiB, and at most `max_new_columns` evolved columns exist
//! (further unknown keys are rescued). A corrupt row says why in `_rescued_data`
//! (`{"_corrupt_reason": ...}`), which silver gives quarantine as the reason.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use isolake_data::input::ndjson;
use isolake_data::record::FieldType;
use serde_json::{Map, Value};

use super::json_line::{self, Scalar};
use super::listing::LandedObject;

use crate::config::Evolution;

/// The columns a bronze row is read into.
#[derive(Debug, Clone)]
pub struct ReadSchema {
    /// Declared fields and their types (timestamps stay text in bronze; silver parses them).
    pub fields: Vec<(String, FieldType)>,
    /// Columns earlier batches added by schema evolution (always text).
    pub evolved: Vec<String>,
    pub evolution: Evolution,
    /// Names bronze uses for lineage and system columns (and retired non-text columns): a
    /// landed key with one of these names goes to `_rescued_data` under its own name, never
    /// into a second column of that name.
    pub reserved: Vec<String>,
    pub limits: ReadLimits,
}

impl ReadSchema {
    /// Every column name bronze has or reserves, lowercased: Delta and parquet compare column
    /// names without case, so a new key equal to one of these but for case is rescued.
    pub fn taken_names(&self) -> HashSet<String> {
        self.fields
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(self.evolved.iter().map(String::as_str))
            .chain(self.reserved.iter().map(String::as_str))
            .map(str::to_lowercase)
            .collect()
    }
}

/// Whether a landed key can name a column of its own: not empty, no control character (a NUL
/// cannot cross the Arrow C interface; the others break readers).
pub fn can_name_a_column(key: &str) -> bool {
    !key.is_empty() && !key.chars().any(char::is_control)
}

/// How much one file, one line and schema evolution may take (`source.max_file_bytes`,
/// `source.max_line_bytes`, `schema.max_new_columns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_file_bytes: u64,
    pub max_line_bytes: usize,
    /// Evolved columns bronze may hold in all (those already there count).
    pub max_new_columns: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 2 << 30,
            max_line_bytes: 16 << 20,
            max_new_columns: 200,
        }
    }
}

/// The key of `_rescued_data` naming why a row is corrupt when it is not plain bad JSON.
pub const CORRUPT_REASON_KEY: &str = "_corrupt_reason";
/// How much of an over-long line a corrupt row keeps.
pub const KEPT_PREFIX_BYTES: usize = 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Permanently: the file is recorded as seen (with no rows) and never read again.
    /// `size`: the file's size, or `None` for a `.gz` stopped once it decompressed past `limit`.
    #[error(
        "{shown}, more than source.max_file_bytes = {limit}: refused and never read again \
         (raise the limit and land it under a new name to ingest it)",
        shown = match size { Some(n) => format!("{n} bytes"), None => format!("over {limit} bytes decompressed") }
    )]
    TooLarge { size: Option<u64>, limit: u64 },
    /// For now (it vanished, or may not be read): skipped until it changes or a restart.
    #[error("cannot read it: {0}")]
    Unreadable(#[source] std::io::Error),
}

/// Text cells in one buffer (end offsets and validity per cell): no allocation per value.
#[derive(Debug, Clone, Default)]
pub struct Texts {
    data: String,
    ends: Vec<usize>,
    valid: Vec<bool>,
}

impl Texts {
    fn with_capacity(rows: usize) -> Self {
        Self {
            data: String::with_capacity(rows * 12),
            ends: Vec::with_capacity(rows),
            valid: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, value: Option<&str>) {
        if let Some(v) = value {
            self.data.push_str(v);
        }
        self.ends.push(self.data.len());
        self.valid.push(value.is_some());
    }

    fn pop(&mut self) {
        self.ends.pop();
        self.valid.pop();
        self.data.truncate(self.ends.last().copied().unwrap_or(0));
    }

    fn extend(&mut self, other: Texts) {
        let base = self.data.len();
        self.data.push_str(&other.data);
        self.ends.extend(other.ends.iter().map(|e| e + base));
        self.valid.extend(other.valid);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th cell.
    pub fn get(&self, i: usize) -> Option<&str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.valid[i].then(|| &self.data[start..self.ends[i]])
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// One column being filled.
#[derive(Debug, Clone)]
pub enum Cells {
    Str(Texts),
    Int(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
}

impl Cells {
    /// An empty column for a declared field (timestamps stay text in bronze).
    pub fn for_type(ty: FieldType, capacity: usize) -> Self {
        match ty {
            FieldType::String | FieldType::Timestamp => Cells::Str(Texts::with_capacity(capacity)),
            FieldType::Integer => Cells::Int(Vec::with_capacity(capacity)),
            FieldType::Double => Cells::F64(Vec::with_capacity(capacity)),
            FieldType::Boolean => Cells::Bool(Vec::with_capacity(capacity)),
        }
    }

    fn pop(&mut self) {
        match self {
            Cells::Str(v) => v.pop(),
            Cells::Int(v) => drop(v.pop()),
            Cells::F64(v) => drop(v.pop()),
            Cells::Bool(v) => drop(v.pop()),
        }
    }

    fn push_null(&mut self) {
        match self {
            Cells::Str(v) => v.push(None),
            Cells::Int(v) => v.push(None),
            Cells::F64(v) => v.push(None),
            Cells::Bool(v) => v.push(None),
        }
    }

    /// Pushes `value` if it has the column's JSON type; returns false (pushing null) if not.
    fn push(&mut self, value: &Scalar<'_>) -> bool {
        let ok = match (&mut *self, value) {
            (_, Scalar::Null) => {
                self.push_null();
                return true;
            }
            (Cells::Str(v), Scalar::Str(text)) => {
                v.push(Some(text));
                true
            }
            (Cells::Str(v), value) => {
                v.push(Some(&value.text()));
                true
            }
            (Cells::Int(v), Scalar::Int(i)) => {
                v.push(Some(*i));
                true
            }
            (Cells::F64(v), Scalar::Int(i)) => {
                v.push(Some(*i as f64));
                true
            }
            (Cells::F64(v), Scalar::UInt(u)) => {
                v.push(Some(*u as f64));
                true
            }
            (Cells::F64(v), Scalar::Float(f)) => {
                v.push(Some(*f));
                true
            }
            (Cells::Bool(v), Scalar::Bool(b)) => {
                v.push(Some(*b));
                true
            }
            _ => false,
        };
        if !ok {
            self.push_null();
        }
        ok
    }

    /// Appends `other`'s cells. Both come from [`Cells::for_type`] of the same field, so the
    /// kinds match; a mismatch (a bug) pads with nulls rather than losing the row count.
    pub fn extend(&mut self, other: Cells) {
        match (self, other) {
            (Cells::Str(a), Cells::Str(b)) => a.extend(b),
            (Cells::Int(a), Cells::Int(b)) => a.extend(b),
            (Cells::F64(a), Cells::F64(b)) => a.extend(b),
            (Cells::Bool(a), Cells::Bool(b)) => a.extend(b),
            (a, b) => {
                debug_assert!(false, "cells of different kinds");
                (0..b.len()).for_each(|_| a.push_null());
            }
        }
    }

    pub fn into_column(self, name: &str) -> polars::prelude::Column {
        use polars::prelude::Column;
        match self {
            Cells::Str(v) => Column::new(name.into(), v.iter().collect::<Vec<_>>()),
            Cells::Int(v) => Column::new(name.into(), v),
            Cells::F64(v) => Column::new(name.into(), v),
            Cells::Bool(v) => Column::new(name.into(), v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Cells::Str(v) => v.len(),
            Cells::Int(v) => v.len(),
            Cells::F64(v) => v.len(),
            Cells::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file read into columns.
#[derive(Debug)]
pub struct ReadFile {
    pub declared: Vec<Cells>,
    /// Evolved and new text columns, each as long as the row count.
    pub extra: BTreeMap<String, Vec<Option<String>>>,
    pub line: Vec<i64>,
    pub rescued: Vec<Option<String>>,
    pub corrupt: Vec<Option<String>>,
    /// Fields not in the schema (for `fail_on_new_columns`).
    pub new_columns: Vec<String>,
    /// The new columns of `extra`, in the order they first appeared.
    pub appeared: Vec<String>,
    pub bytes: u64,
}

impl ReadFile {
    pub fn rows(&self) -> usize {
        self.line.len()
    }

    /// Moves the values of evolved columns `names` into `_rescued_data` (as text): the batch
    /// as a whole went over `schema.max_new_columns`, which each file only checks for itself.
    pub fn rescue_columns(&mut self, names: &[String]) {
        for name in names {
            let Some(values) = self.extra.remove(name) else {
                continue;
            };
            self.appeared.retain(|a| a != name);
            for (row, value) in values.into_iter().enumerate() {
                let Some(value) = value else { continue };
                let mut rescued: Map<String, Value> = self.rescued[row]
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .unwrap_or_default();
                rescued.insert(name.clone(), Value::String(value));
                rescued.sort_keys();
                self.rescued[row] = Some(Value::Object(rescued).to_string());
            }
        }
    }
}

/// Reads and parses a whole file, holding at most `max_file_bytes` of it (decompressed).
pub fn read(path: &Path, schema: &ReadSchema) -> Result<ReadFile, ReadError> {
    let limit = schema.limits.max_file_bytes;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let too_large = |size| ReadError::TooLarge { size, limit };
    let size = std::fs::metadata(path)
        .map_err(ReadError::Unreadable)?
        .len();
    if size > limit {
        return Err(too_large(Some(size)));
    }
    let raw = std::fs::read(path).map_err(ReadError::Unreadable)?;
    decode(raw, gz, schema)
}

/// Reads and parses a landed object of `size` bytes (from the listing), as [`read`] does a
/// file; `runtime` runs the fetch (this is called from the reading threads).
pub fn read_object(
    object: &LandedObject,
    size: u64,
    schema: &ReadSchema,
    runtime: &tokio::runtime::Handle,
) -> Result<ReadFile, ReadError> {
    let limit = schema.limits.max_file_bytes;
    if size > limit {
        return Err(ReadError::TooLarge {
            size: Some(size),
            limit,
        });
    }
    let fetched = runtime.block_on(object.dir.get(&object.name));
    let raw = match fetched {
        Ok(Some(got)) => got.bytes.to_vec(),
        Ok(None) => {
            let gone = std::io::Error::new(std::io::ErrorKind::NotFound, "the object is gone");
            return Err(ReadError::Unreadable(gone));
        }
        Err(e) => return Err(ReadError::Unreadable(std::io::Error::other(e.to_string()))),
    };
    decode(raw, object.name.ends_with(".gz"), schema)
}

/// Parses a whole file's bytes (gunzipped first when `gz`), at most `max_file_bytes` of
/// them decompressed.
fn decode(raw: Vec<u8>, gz: bool, schema: &ReadSchema) -> Result<ReadFile, ReadError> {
    let limit = schema.limits.max_file_bytes;
    let too_large = |size| ReadError::TooLarge { size, limit };
    let bytes = raw.len() as u64;
    let (text, decode_error) = if gz {
        let mut out = Vec::new();
        let err = flate2::read::MultiGzDecoder::new(raw.as_slice())
            .take(limit + 1)
            .read_to_end(&mut out)
            .err();
        if out.len() as u64 > limit {
            return Err(too_large(None));
        }
        (
            out,
            err.map(|e| format!("gzip stream broken after the lines above: {e}")),
        )
    } else {
        (raw, None)
    };
    let mut file = parse(&text, schema);
    file.bytes = bytes;
    if let Some(reason) = decode_error {
        let line = file.line.last().copied().unwrap_or(0) + 1;
        push_corrupt(&mut file, line, reason, Some("gzip_broken"));
    }
    Ok(file)
}

/// Parses NDJSON bytes (exposed for tests); lines as [`ndjson::lines`] splits them.
pub fn parse(text: &[u8], schema: &ReadSchema) -> ReadFile {
    let capacity = text.len() / 200 + 1;
    let mut file = ReadFile {
        declared: schema
            .fields
            .iter()
            .map(|(_, ty)| Cells::for_type(*ty, capacity))
            .collect(),
        extra: schema
            .evolved
            .iter()
            .map(|name| (name.clone(), Vec::new()))
            .collect(),
        line: Vec::with_capacity(capacity),
        rescued: Vec::with_capacity(capacity),
        corrupt: Vec::with_capacity(capacity),
        new_columns: Vec::new(),
        appeared: Vec::new(),
        bytes: 0,
    };
    let index: BTreeMap<&str, usize> = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    let mut names = NewNames {
        taken: schema.taken_names(),
        new: HashMap::new(),
        budget: schema
            .limits
            .max_new_columns
            .saturating_sub(schema.evolved.len()),
    };
    for (number, line) in ndjson::lines(text) {
        let number = number as i64;
        if line.len() > schema.limits.max_line_bytes {
            let kept = &line[..KEPT_PREFIX_BYTES.min(line.len())];
            let kept = String::from_utf8_lossy(kept).into_owned();
            push_corrupt(&mut file, number, kept, Some("line_too_long"));
            continue;
        }
        let text = std::str::from_utf8(line).ok();
        match text.and_then(|t| json_line::parse(t).map(|o| (t, o))) {
            Some((text, object)) => {
                let landed = Landed { number, text };
                push_object(&mut file, landed, object, schema, &index, &mut names)
            }
            None => push_corrupt(
                &mut file,
                number,
                String::from_utf8_lossy(line).into_owned(),
                None,
            ),
        }
    }
    file
}

/// One line as landed: its number and text.
struct Landed<'l> {
    number: i64,
    text: &'l str,
}

impl Landed<'_> {
    /// `value` as text for a text column: a number keeps its landed digits.
    fn text_of(&self, key: &str, value: &Scalar<'_>) -> String {
        match value {
            Scalar::Float(_) => {
                json_line::raw_value(self.text, key).map_or_else(|| value.text(), str::to_string)
            }
            other => other.text(),
        }
    }
}

/// The columns a file may still add: lowercased names taken, the file's new ones (lowercase
/// → as landed), and how many more `schema.max_new_columns` allows.
struct NewNames {
    taken: HashSet<String>,
    new: HashMap<String, String>,
    budget: usize,
}

impl NewNames {
    /// Whether `key` (not a column yet) may become one.
    fn admits(&self, key: &str) -> bool {
        let lower = key.to_lowercase();
        can_name_a_column(key)
            && !self.taken.contains(&lower)
            && self.new.get(&lower).is_none_or(|k| k == key)
    }
}

fn push_object(
    file: &mut ReadFile,
    landed: Landed<'_>,
    object: Vec<(std::borrow::Cow<'_, str>, Scalar<'_>)>,
    schema: &ReadSchema,
    index: &BTreeMap<&str, usize>,
    names: &mut NewNames,
) {
    let number = landed.number;
    let row = file.line.len();
    let mut filled = vec![false; file.declared.len()];
    let mut rescued = Map::new();
    // Fields usually come in schema order: try the next one before the index.
    let mut expected = 0;
    for (key, value) in object {
        let declared = match schema.fields.get(expected) {
            Some((name, _)) if *name == key => Some(expected),
            _ => index.get(key.as_ref()).copied(),
        };
        if let Some(i) = declared {
            expected = i + 1;
            if filled[i] {
                // A repeated key: the last one wins, as in most JSON readers.
                file.declared[i].pop();
                rescued.remove(key.as_ref());
            }
            filled[i] = true;
            if let (Cells::Str(cells), Scalar::Float(_)) = (&mut file.declared[i], &value) {
                cells.push(Some(&landed.text_of(&key, &value)));
            } else if !file.declared[i].push(&value) {
                rescued.insert(key.into_owned(), value.to_value());
            }
            continue;
        }
        if schema.reserved.iter().any(|r| *r == key) {
            rescued.insert(key.into_owned(), value.to_value());
            continue;
        }
        let known = file.extra.contains_key(key.as_ref());
        let evolve = schema.evolution == Evolution::AddNewColumns;
        if !known && evolve && (!names.admits(&key) || names.budget == 0) {
            // A name no column can have (case, control characters) or schema.max_new_columns
            // reached: kept as rescued text, as the batch-wide pass (`ReadFile::rescue_columns`)
            // keeps it, so batch cuts do not change the row.
            if !value.is_null() {
                rescued.insert(key.to_string(), Value::String(landed.text_of(&key, &value)));
            }
            continue;
        }
        match (known, schema.evolution) {
            (true, _) | (false, Evolution::AddNewColumns) => {
                if !known {
                    names.budget -= 1;
                    names.new.insert(key.to_lowercase(), key.to_string());
                    file.appeared.push(key.to_string());
                }
                let text = (!value.is_null()).then(|| landed.text_of(&key, &value));
                let column = file.extra.entry(key.into_owned()).or_default();
                column.resize(row, None);
                if column.len() == row {
                    column.push(text);
                }
            }
            (false, Evolution::Rescue) => {
                rescued.insert(key.into_owned(), value.to_value());
            }
            (false, Evolution::FailOnNewColumns) => {
                if !file.new_columns.iter().any(|c| *c == key) {
                    file.new_columns.push(key.into_owned());
                }
            }
            (false, Evolution::None) => {}
        }
    }
    for (i, done) in filled.iter().enumerate() {
        if !done {
            file.declared[i].push_null();
        }
    }
    for column in file.extra.values_mut() {
        column.resize(row + 1, None);
    }
    file.line.push(number);
    // Sorted keys: the text does not depend on where a key was rescued (see rescue_columns).
    rescued.sort_keys();
    file.rescued
        .push((!rescued.is_empty()).then(|| Value::Object(rescued).to_string()));
    file.corrupt.push(None);
}

/// A row keeping `raw` as its corrupt record; `reason` (when not plain bad JSON) goes to
/// `_rescued_data` for silver to name.
fn push_corrupt(file: &mut ReadFile, number: i64, raw: String, reason: Option<&str>) {
    let row = file.line.len();
    for cells in &mut file.declared {
        cells.push_null();
    }
    for column in file.extra.values_mut() {
        column.resize(row + 1, None);
    }
    file.line.push(number);
    file.rescued.push(reason.map(|r| {
        let mut why = Map::new();
        why.insert(CORRUPT_REASON_KEY.into(), Value::String(r.into()));
        Value::Object(why).to_string()
    }));
    file.corrupt.push(Some(raw));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(evolution: Evolution) -> ReadSchema {
        ReadSchema {
            fields: vec![
                ("id".into(), FieldType::String),
                ("n".into(), FieldType::Integer),
                ("x".into(), FieldType::Double),
            ],
            evolved: vec![],
            evolution,
            reserved: vec!["_source_file".into()],
            limits: ReadLimits::default(),
        }
    }

    #[test]
    fn lines_are_never_dropped() {
        let text = b"{\"id\":\"a\",\"n\":1,\"x\":2.5}\n\n{broken\n\xff\xfe\n{\"id\":7,\"n\":\"seven\",\"new\":true}\n[1,2]";
        let f = parse(text, &schema(Evolution::AddNewColumns));
        assert_eq!(f.rows(), 5);
        assert_eq!(f.line, vec![1, 3, 4, 5, 6]);
        assert_eq!(f.corrupt[1].as_deref(), Some("{broken"));
        assert!(f.corrupt[2].is_some());
        assert_eq!(f.corrupt[4].as_deref(), Some("[1,2]"));
        // A number in a string field is its text; a string in an integer field is rescued.
        let Cells::Str(ids) = &f.declared[0] else {
            panic!()
        };
        assert_eq!(ids.get(3), Some("7"));
        assert_eq!(f.rescued[3].as_deref(), Some("{\"n\":\"seven\"}"));
        assert_eq!(f.extra["new"][3].as_deref(), Some("true"));
        assert_eq!(f.extra["new"].len(), 5);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let f = parse(
            b"{\"n\":\"x\",\"id\":\"a\",\"n\":2}\n",
            &schema(Evolution::AddNewColumns),
        );
        let Cells::Int(n) = &f.declared[1] else {
            panic!()
        };
        assert_eq!(n, &vec![Some(2)]);
        assert!(
            f.rescued[0].is_none(),
            "the rescued first value was replaced"
        );
    }

    #[test]
    fn evolution_modes() {
        let text = b"{\"id\":\"a\",\"extra\":1}\n";
        let rescue = parse(text, &schema(Evolution::Rescue));
        assert_eq!(rescue.rescued[0].as_deref(), Some("{\"extra\":1}"));
        assert!(rescue.extra.is_empty());
        let fail = parse(text, &schema(Evolution::FailOnNewColumns));
        assert_eq!(fail.new_columns, vec!["extra".to_string()]);
        let none = parse(text, &schema(Evolution::None));
        assert!(none.extra.is_empty() && none.rescued[0].is_none());
    }
}
