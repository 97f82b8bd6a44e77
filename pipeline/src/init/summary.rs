//! What `init` tells the user: what it sampled, what it inferred of each field and why, what
//! it proposes, and the commands to run next.

use std::fmt;
use std::path::PathBuf;

use super::infer::{Proposal, type_name};
use super::sample::SampleStats;

/// The outcome of `init`: the config was written to `out`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub out: PathBuf,
    pub landing: PathBuf,
    pub sample: SampleStats,
    pub proposal: Proposal,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.sample;
        writeln!(
            f,
            "sampled {} of {} file(s) in {}: {} line(s), {} JSON object(s), {} malformed line(s) \
             skipped{}",
            s.files_read,
            s.files_listed,
            self.landing.display(),
            s.lines,
            s.objects,
            s.malformed,
            if s.truncated {
                " (the sample stopped at its byte limit)"
            } else {
                ""
            }
        )?;
        writeln!(f)?;
        self.fields(f)?;
        writeln!(f)?;
        self.choices(f)?;
        let out = self.out.display();
        writeln!(f)?;
        writeln!(f, "wrote {out}; next:")?;
        writeln!(f, "  isolake-pipeline validate --config {out}")?;
        writeln!(f, "  isolake-pipeline run --once --config {out}")
    }
}

impl Summary {
    fn fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.proposal;
        writeln!(f, "fields:")?;
        let width = p.fields.iter().map(|x| x.name.chars().count()).max();
        let width = width.unwrap_or(0);
        for field in &p.fields {
            let remarks = p.remarks(field).join("; ");
            let line = format!(
                "  {:<width$}  {:<9}  {remarks}",
                field.name,
                type_name(field.ty)
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }

    fn choices(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.proposal;
        let e = &p.event_time;
        let from = match &e.from {
            Some(from) => format!(", computed from {from} (event_time_from)"),
            None => String::new(),
        };
        writeln!(
            f,
            "event time: {} ({}){from}",
            e.column,
            e.format.describe()
        )?;
        match &p.key {
            Some(key) => writeln!(f, "key:        {key}")?,
            None => writeln!(
                f,
                "key:        none (no string or id field is unique and never null in the sample: \
                 no dedup)"
            )?,
        }
        match p.features.is_empty() {
            true => writeln!(
                f,
                "features:   none (no numeric field besides keys, ids and times)"
            )?,
            false => writeln!(
                f,
                "features:   {} (the model is trained separately: isolake-train --features {})",
                p.features.join(", "),
                p.features.join(",")
            )?,
        }
        if !p.casts.is_empty() {
            let casts: Vec<String> = p
                .casts
                .iter()
                .map(|(name, ty)| format!("{name} → {}", type_name(*ty)))
                .collect();
            writeln!(
                f,
                "casts:      {} (numeric text; suggested, commented out in the config)",
                casts.join(", ")
            )?;
        }
        Ok(())
    }
}
