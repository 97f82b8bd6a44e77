//! The proposal as a commented `isolake.toml`: every choice init made is said next to it, so
//! that the file can be reviewed without the summary. Names from the data are quoted where
//! TOML or SQL need it, and comments never carry a line break from the data.

use std::path::Path;

use polars::prelude::col;

use super::infer::{Proposal, type_name};
use super::sample::SampleStats;
use crate::config::Action;

/// What the file says besides the proposal.
pub struct Context<'a> {
    pub id: &'a str,
    /// `source.landing` as written: relative to the config's directory when possible.
    pub landing: &'a str,
    /// The config's path as the user gave it (for the commands in the header).
    pub out: &'a Path,
    pub stats: &'a SampleStats,
}

/// The config text.
pub fn render(cx: &Context<'_>, p: &Proposal) -> String {
    let mut out = String::new();
    header(&mut out, cx);
    schema(&mut out, p);
    fields(&mut out, p);
    casts(&mut out, p);
    model(&mut out, cx.id, p);
    expectations(&mut out, p);
    out
}

fn header(out: &mut String, cx: &Context<'_>) {
    let s = cx.stats;
    let config = cx.out.display().to_string();
    comment(
        out,
        "isolake pipeline proposed by `isolake-pipeline init` from a sample of the",
    );
    comment(
        out,
        &format!(
            "landed files: {} of {} file(s), {} line(s), {} malformed line(s) skipped{}.",
            s.files_read,
            s.files_listed,
            s.lines,
            s.malformed,
            if s.truncated {
                " (byte limit reached)"
            } else {
                ""
            }
        ),
    );
    comment(out, "Review it, then:");
    comment(
        out,
        &format!("  isolake-pipeline validate --config {config}"),
    );
    comment(
        out,
        &format!("  isolake-pipeline run --once --config {config}"),
    );
    comment(
        out,
        "Relative paths are resolved against this file's directory.",
    );
    out.push('\n');
    line(out, &format!("id = {}", toml_string(cx.id)));
    comment(
        out,
        "Tables: <lake>/bronze, silver, quarantine and event_log.",
    );
    line(out, "lake = \"./lake\"");
    out.push('\n');
    line(out, "[source]");
    line(out, &format!("landing = {}", toml_string(cx.landing)));
    comment(
        out,
        "patterns: the defaults, *.json, *.jsonl, *.ndjson and their .gz variants.",
    );
    out.push('\n');
}

fn schema(out: &mut String, p: &Proposal) {
    let e = &p.event_time;
    line(out, "[schema]");
    comment(
        out,
        "The event-time column: silver parses it to UTC; dedup's window follows it.",
    );
    if let Some(from) = &e.from {
        comment(
            out,
            "Computed from a declared field, which keeps its own type (a computed",
        );
        comment(out, "column must not be a declared field).");
        line(out, &format!("event_time = {}", toml_string(&e.column)));
        line(out, &format!("event_time_from = {}", toml_string(from)));
    } else {
        line(out, &format!("event_time = {}", toml_string(&e.column)));
    }
    match e.format.config_value() {
        Some(format) => line(out, &format!("event_time_format = {}", toml_string(format))),
        None => comment(out, "event_time_format: the default, RFC 3339."),
    }
    match &p.key {
        Some(key) => {
            comment(out, "Dedup key: unique and never null in the sample.");
            line(out, &format!("key = {}", toml_string(key)));
        }
        None => {
            comment(
                out,
                "No dedup key: no string or id field was unique and never null in",
            );
            comment(out, "the sample. Add key = \"...\" to deduplicate.");
        }
    }
    comment(
        out,
        "Fields landing later that are not declared become new text columns of",
    );
    comment(
        out,
        "bronze (evolution = \"add_new_columns\", the default).",
    );
    out.push('\n');
}

fn fields(out: &mut String, p: &Proposal) {
    comment(
        out,
        "The declared fields, in landed order, with the types inferred from the",
    );
    comment(
        out,
        "sample. A value of another JSON type is kept in bronze's _rescued_data (the",
    );
    comment(
        out,
        "column is null) and silver quarantines its row (valid_types).",
    );
    line(out, "[schema.fields]");
    let entries: Vec<String> = p
        .fields
        .iter()
        .map(|f| format!("{} = {}", toml_key(&f.name), toml_string(type_name(f.ty))))
        .collect();
    let width = entries.iter().map(|e| e.chars().count()).max().unwrap_or(0);
    for (field, entry) in p.fields.iter().zip(&entries) {
        let remarks = p.remarks(field);
        if remarks.is_empty() {
            line(out, entry);
        } else {
            let pad = width - entry.chars().count();
            let text = sanitize(&remarks.join("; "));
            line(out, &format!("{entry}{}  # {text}", " ".repeat(pad)));
        }
    }
    out.push('\n');
}

fn casts(out: &mut String, p: &Proposal) {
    if p.casts.is_empty() {
        return;
    }
    let casts: Vec<String> = p
        .casts
        .iter()
        .map(|(name, ty)| format!("{} = {}", toml_key(name), toml_string(type_name(*ty))))
        .collect();
    comment(
        out,
        "Numeric text is kept as landed. Every sampled value parses, so silver could",
    );
    comment(
        out,
        "type it (a value that does not parse is then quarantined): uncomment",
    );
    comment(out, "[silver]");
    comment(out, &format!("casts = {{ {} }}", casts.join(", ")));
    out.push('\n');
}

fn model(out: &mut String, id: &str, p: &Proposal) {
    if p.features.is_empty() {
        comment(
            out,
            "Model features: none (no numeric field besides keys, ids and times).",
        );
        comment(
            out,
            "Gold runs once a [model] or [[detectors]] is declared.",
        );
        out.push('\n');
        return;
    }
    comment(
        out,
        "Model features: the numeric fields that are not the key, an id or a time.",
    );
    comment(
        out,
        "The model is trained separately, on silver (from this file's directory):",
    );
    comment(
        out,
        &format!(
            "  isolake-train --input ./lake/silver --features {} --model-name {id} \\",
            p.features.join(",")
        ),
    );
    comment(
        out,
        "      --registry ./lake/_registry --promote production",
    );
    comment(out, "then, to score gold with it, uncomment:");
    comment(out, "[model]");
    comment(out, &format!("uri = \"models:/{id}@production\""));
    out.push('\n');
}

fn expectations(out: &mut String, p: &Proposal) {
    comment(
        out,
        "One presence check per field. Types need none: silver's implicit valid_types",
    );
    comment(
        out,
        "check already quarantines a row whose value could not be typed ([silver]",
    );
    comment(
        out,
        "on_type_error). The key and the event time must be there (quarantine); a",
    );
    comment(out, "missing other field is counted (warn).");
    let e = &p.event_time;
    for field in &p.fields {
        let vital = p.key.as_ref() == Some(&field.name)
            || e.column == field.name
            || e.from.as_ref() == Some(&field.name);
        let action = if vital {
            Action::Quarantine
        } else {
            Action::Warn
        };
        let name = format!("has_{}", field.name);
        let expr = format!("{} IS NOT NULL", sql_ident(&field.name));
        line(out, "[[expectations]]");
        line(out, &format!("name = {}", toml_string(&name)));
        line(out, &format!("expr = {}", toml_string(&expr)));
        line(out, &format!("action = {}", toml_string(action.as_str())));
        out.push('\n');
    }
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push('\n');
}

/// A comment line (text from the data cannot end it early).
fn comment(out: &mut String, text: &str) {
    out.push_str("# ");
    out.push_str(&sanitize(text));
    out.push('\n');
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A TOML basic string.
pub fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        toml_string(name)
    }
}

/// A SQL column name: bare when polars reads the bare name as that very column (`amount`,
/// `timestamp`), else double-quoted (`from` is a keyword, `unit cost` two words).
fn sql_ident(name: &str) -> String {
    let bare = polars::sql::sql_expr(format!("{name} IS NOT NULL")).ok();
    if bare == Some(col(name).is_not_null()) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(toml_key("amount"), "amount");
        assert_eq!(toml_key("unit cost"), "\"unit cost\"");
        assert_eq!(sql_ident("amount"), "amount");
        assert_eq!(sql_ident("timestamp"), "timestamp");
        assert_eq!(sql_ident("from"), "\"from\"");
        assert_eq!(sql_ident("channel"), "channel");
        assert_eq!(sql_ident("unit cost"), "\"unit cost\"");
        assert_eq!(sql_ident("a\"b"), "\"a\"\"b\"");
    }
}
