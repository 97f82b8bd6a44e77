//! TOML values with their positions → typed values, or issues naming key and line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use isolake_data::record::FieldType;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Action, ConfigIssue, parse_duration};

pub(super) struct Walker<'t> {
    text: &'t str,
    pub(super) issues: Vec<ConfigIssue>,
    /// Every value read: key path → line (kept in the config for later messages).
    pub(super) lines: BTreeMap<String, usize>,
}

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

impl<'t> Walker<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Self {
            text,
            issues: Vec::new(),
            lines: BTreeMap::new(),
        }
    }

    /// Remembers where the value of `path` stands.
    fn note(&mut self, path: &str, value: &Value<'_>) {
        let line = self.line(value.span());
        self.lines.insert(path.to_string(), line);
    }

    pub(super) fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(super) fn issue(
        &mut self,
        key: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) {
        let line = span.map(|s| self.line(s));
        self.issues.push(ConfigIssue {
            key: key.to_string(),
            line,
            message: message.into(),
        });
    }

    /// Reports keys of `table` not in `known`.
    pub(super) fn unknown_keys(&mut self, prefix: &str, table: &DeTable<'_>, known: &[&str]) {
        for (key, _) in table.iter() {
            if !known.contains(&key.get_ref().as_ref()) {
                let path = join(prefix, key.get_ref());
                self.issue(
                    &path,
                    Some(key.span()),
                    format!("unknown key (expected one of: {})", known.join(", ")),
                );
            }
        }
    }

    pub(super) fn string(&mut self, path: &str, value: &Value<'_>) -> Option<String> {
        self.note(path, value);
        match value.get_ref().as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                let found = value.get_ref().type_str();
                self.issue(
                    path,
                    Some(value.span()),
                    format!("expected a string, found {found}"),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, path: &str, value: &Value<'_>) -> Option<bool> {
        self.note(path, value);
        match value.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                let found = value.get_ref().type_str();
                self.issue(
                    path,
                    Some(value.span()),
                    format!("expected true or false, found {found}"),
                );
                None
            }
        }
    }

    pub(super) fn positive_integer(&mut self, path: &str, value: &Value<'_>) -> Option<u64> {
        match self.unsigned(path, value) {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.issue(path, Some(value.span()), "expected a positive integer");
                None
            }
        }
    }

    pub(super) fn non_negative_integer(&mut self, path: &str, value: &Value<'_>) -> Option<u64> {
        let parsed = self.unsigned(path, value);
        if parsed.is_none() {
            self.issue(path, Some(value.span()), "expected 0 or a positive integer");
        }
        parsed
    }

    fn unsigned(&mut self, path: &str, value: &Value<'_>) -> Option<u64> {
        self.note(path, value);
        value
            .get_ref()
            .as_integer()
            .and_then(|i| u64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok())
    }

    pub(super) fn duration(&mut self, path: &str, value: &Value<'_>) -> Option<Duration> {
        let text = self.string(path, value)?;
        let parsed = parse_duration(&text);
        if parsed.is_none() {
            self.issue(
                path,
                Some(value.span()),
                format!("{text:?} is not a duration (examples: 500ms, 30s, 15m, 24h, 7d)"),
            );
        }
        parsed
    }

    pub(super) fn number(&mut self, path: &str, value: &Value<'_>) -> Option<f64> {
        self.note(path, value);
        let v = value.get_ref();
        let parsed = match (v.as_float(), v.as_integer()) {
            (Some(f), _) => f.as_str().replace('_', "").parse::<f64>().ok(),
            (None, Some(i)) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                .ok()
                .map(|i| i as f64),
            (None, None) => None,
        };
        if parsed.is_none_or(|n| !n.is_finite()) {
            self.issue(path, Some(value.span()), "expected a number");
            return None;
        }
        parsed
    }

    pub(super) fn field_type(&mut self, path: &str, value: &Value<'_>) -> Option<FieldType> {
        let text = self.string(path, value)?;
        let ty = match text.as_str() {
            "string" => FieldType::String,
            "integer" | "int" | "long" | "bigint" => FieldType::Integer,
            "double" | "float" => FieldType::Double,
            "boolean" | "bool" => FieldType::Boolean,
            "timestamp" => FieldType::Timestamp,
            _ => {
                self.issue(
                    path,
                    Some(value.span()),
                    format!("{text:?} is not a type (string, integer, double, boolean, timestamp)"),
                );
                return None;
            }
        };
        Some(ty)
    }

    pub(super) fn action(&mut self, path: &str, value: &Value<'_>) -> Option<Action> {
        let text = self.string(path, value)?;
        let action = match text.as_str() {
            "warn" => Action::Warn,
            "drop" => Action::Drop,
            "quarantine" => Action::Quarantine,
            "fail" => Action::Fail,
            _ => {
                self.issue(
                    path,
                    Some(value.span()),
                    format!("{text:?} is not an action (warn, drop, quarantine, fail)"),
                );
                return None;
            }
        };
        Some(action)
    }

    pub(super) fn table<'a, 'i>(
        &mut self,
        path: &str,
        value: &'a Value<'i>,
    ) -> Option<&'a DeTable<'i>> {
        let table = value.get_ref().as_table();
        if table.is_none() {
            let found = value.get_ref().type_str();
            self.issue(
                path,
                Some(value.span()),
                format!("expected a table, found {found}"),
            );
        }
        table
    }

    /// A `{ name = "type", ... }` table, in file order.
    pub(super) fn typed_fields(
        &mut self,
        path: &str,
        value: &Value<'_>,
    ) -> Vec<(String, FieldType, Range<usize>)> {
        let Some(table) = self.table(path, value) else {
            return Vec::new();
        };
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut out = Vec::new();
        for (key, ty) in entries {
            let sub = join(path, key.get_ref());
            if let Some(t) = self.field_type(&sub, ty) {
                out.push((key.get_ref().to_string(), t, key.span()));
            }
        }
        out
    }
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

pub(super) fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Value<'i>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}
