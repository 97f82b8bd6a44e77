//! Scoring a polars frame with a loaded model: the function the pipeline calls per
//! micro-batch, and what `isolake-score` calls per chunk.

use isolake_data::input::FeatureMatrix;
use isolake_data::polars::prelude::*;
use isolake_models::IsolationForest;
use isolake_models::forest::explain::NO_FEATURE;

use crate::error::Result;

/// Columns the scorer adds.
pub const ANOMALY_SCORE: &str = "anomaly_score";
/// `true` when the model flags the row (its decision function is negative).
pub const IS_ANOMALY: &str = "is_anomaly";
/// The registered model's name.
pub const MODEL_NAME: &str = "model_name";
/// The model version (null for a model loaded from a plain file).
pub const MODEL_VERSION: &str = "model_version";
/// With explanations: the features that isolated the row, heaviest first.
pub const TOP_FEATURES: &str = "top_features";

/// Rows per scoring chunk: bounds the row-major copy of the features (8 bytes × features
/// per row) whatever the frame's size.
pub const CHUNK_ROWS: usize = 65_536;

/// What a scoring call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreSummary {
    /// Rows seen.
    pub rows: u64,
    /// Rows that got a score.
    pub scored: u64,
    /// Rows with a null, non-numeric or non-finite feature: null score and flag.
    pub unscorable: u64,
    /// Scored rows the model flags.
    pub anomalies: u64,
}

impl ScoreSummary {
    /// Adds another summary's counts.
    pub fn add(&mut self, other: &ScoreSummary) {
        self.rows += other.rows;
        self.scored += other.scored;
        self.unscorable += other.unscorable;
        self.anomalies += other.anomalies;
    }
}

/// Scores frames with one model version.
#[derive(Debug)]
pub struct Scorer<'m> {
    model: &'m IsolationForest,
    name: String,
    version: Option<u64>,
    explain: usize,
    chunk_rows: usize,
}

impl<'m> Scorer<'m> {
    /// A scorer adding `model_name = name` and `model_version = version` to every row.
    pub fn new(model: &'m IsolationForest, name: impl Into<String>, version: Option<u64>) -> Self {
        Scorer {
            model,
            name: name.into(),
            version,
            explain: 0,
            chunk_rows: CHUNK_ROWS,
        }
    }

    /// Also adds `top_features`: the `k` features that isolated each row (0: no column).
    pub fn explain(mut self, k: usize) -> Self {
        self.explain = k;
        self
    }

    /// Rows scored at a time (default [`CHUNK_ROWS`]).
    pub fn chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }

    /// The model's feature names.
    pub fn features(&self) -> &[String] {
        self.model.feature_names()
    }

    /// `df` with `anomaly_score` (f64 in (0, 1], higher = more anomalous, i.e.
    /// −score_samples), `is_anomaly`, `model_name`, `model_version` and, with
    /// [`explain`](Self::explain), `top_features` (list of strings). Unscorable rows get nulls
    /// and are counted. Works through the frame `chunk_rows` rows at a time.
    pub fn score(&self, df: &DataFrame) -> Result<(DataFrame, ScoreSummary)> {
        let n = df.height();
        let mut scores: Vec<Option<f64>> = Vec::with_capacity(n);
        let mut flags: Vec<Option<bool>> = Vec::with_capacity(n);
        // One builder for the whole frame: no Series (or String) per row.
        let mut top = ListStringChunkedBuilder::new(
            TOP_FEATURES.into(),
            if self.explain > 0 { n } else { 0 },
            if self.explain > 0 {
                n * self.explain
            } else {
                0
            },
        );
        let mut summary = ScoreSummary::default();
        let features = self.model.feature_names().to_vec();
        let offset = self.model.offset();
        let mut start = 0;
        while start < n || (n == 0 && start == 0) {
            let len = self.chunk_rows.min(n - start);
            let chunk = df.slice(start as i64, len);
            let m = FeatureMatrix::extract(&chunk, &features)?;
            let mut raw = vec![0.0; m.scorable_rows()];
            // Explaining walks every row to its leaves anyway: the same walk gives the scores.
            let explained = if self.explain > 0 && !raw.is_empty() {
                self.model
                    .score_and_explain_rows(&m.values, &mut raw, self.explain)?
            } else {
                self.model.score_rows_into(&m.values, &mut raw)?;
                Vec::new()
            };
            let mut k = 0;
            for ok in &m.valid {
                if *ok {
                    let s = raw[k];
                    let flagged = s - offset < 0.0;
                    scores.push(Some(-s));
                    flags.push(Some(flagged));
                    summary.anomalies += u64::from(flagged);
                    if self.explain > 0 {
                        let slots = &explained[k * self.explain..(k + 1) * self.explain];
                        top.append_values_iter(
                            slots
                                .iter()
                                .take_while(|f| **f != NO_FEATURE)
                                .map(|f| features[*f as usize].as_str()),
                        );
                    }
                    k += 1;
                } else {
                    scores.push(None);
                    flags.push(None);
                    if self.explain > 0 {
                        top.append_null();
                    }
                }
            }
            summary.scored += k as u64;
            summary.unscorable += (len - k) as u64;
            start += len;
            if n == 0 {
                break;
            }
        }
        summary.rows = n as u64;
        let mut columns = vec![
            Column::new(ANOMALY_SCORE.into(), scores),
            Column::new(IS_ANOMALY.into(), flags),
            Column::new(MODEL_NAME.into(), vec![self.name.as_str(); n]),
            Column::new(
                MODEL_VERSION.into(),
                vec![self.version.map(|v| v as i64); n],
            ),
        ];
        if self.explain > 0 {
            columns.push(top.finish().into_series().into_column());
        }
        let mut out = df.clone();
        for c in columns {
            out.with_column(c)?;
        }
        Ok((out, summary))
    }
}
