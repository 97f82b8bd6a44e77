//! `isolake-pipeline report`: one self-contained HTML page (inline SVG, no script, no network)
//! of what the lake holds: anomalies over time, the score histogram with the threshold, alerts
//! per detector, expectation pass/fail rates, batch latency and rows per batch, model versions.

mod chart;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chart::{bars, escape, line, number};

use isolake_data::lake::{LakeTable, scan_table};
use polars::prelude::*;

use crate::config::Config;
use crate::error::Result;
use crate::tables;

/// The table's `columns` (all when empty), or `None` when the pipeline has not made it yet.
async fn table(config: &Config, name: &str, columns: &[&str]) -> Result<Option<DataFrame>> {
    let location = config.table_location(name);
    if !LakeTable::exists(&location).await? {
        return Ok(None);
    }
    let mut scan = scan_table(&location, None).await?;
    if !columns.is_empty() {
        scan = scan.select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>());
    }
    Ok(Some(scan.collect()?))
}

/// One headline figure at the top of the page.
struct Figure {
    label: &'static str,
    value: String,
    note: String,
}

fn f64s(df: &DataFrame, column: &str) -> Vec<Option<f64>> {
    df.column(column)
        .and_then(|c| c.cast(&DataType::Float64))
        .map(|c| c.f64().map(|c| c.iter().collect()).unwrap_or_default())
        .unwrap_or_default()
}

fn texts(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    df.column(column)
        .and_then(|c| c.cast(&DataType::String))
        .map(|c| {
            c.str()
                .map(|c| c.iter().map(|s| s.map(str::to_string)).collect())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

type Section = (String, String, String);

/// Builds the report page.
pub async fn render(config: &Config) -> Result<String> {
    let mut figures: Vec<Figure> = Vec::new();
    for (label, name) in [
        ("bronze rows", tables::BRONZE),
        ("silver rows", tables::SILVER),
        ("quarantined", tables::QUARANTINE),
    ] {
        if let Some(n) = tables::row_count(config, name).await? {
            figures.push(Figure {
                label,
                value: number(n as f64),
                note: format!("in {name}"),
            });
        }
    }
    let mut sections: Vec<Section> = Vec::new();
    let event_time = config.schema.event_time.as_str();
    let columns = [event_time, "is_anomaly", "anomaly_score"];
    if let Some(scored) = &table(config, tables::SCORED, &columns).await? {
        let flags = scored
            .column("is_anomaly")
            .map(|c| {
                c.bool()
                    .map(|c| c.iter().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        anomaly_section(scored, event_time, &flags, &mut figures, &mut sections);
        score_section(scored, &flags, &mut sections);
    }
    if let Some(alerts) = table(config, tables::ALERTS, &["detector"]).await? {
        alert_section(&alerts, &mut figures, &mut sections);
    }
    if let Some(events) = table(config, tables::EVENT_LOG, &[]).await? {
        expectation_section(&events, &mut sections);
        batch_sections(&events, &mut figures, &mut sections)?;
    }
    Ok(page(config, &figures, &sections))
}

/// Anomalies per hour of event time.
fn anomaly_section(
    scored: &DataFrame,
    event_time: &str,
    flags: &[Option<bool>],
    figures: &mut Vec<Figure>,
    sections: &mut Vec<Section>,
) {
    let times = scored
        .column(event_time)
        .and_then(|c| c.cast(&DataType::Int64))
        .map(|c| {
            c.i64()
                .map(|c| c.iter().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let mut per_hour: BTreeMap<i64, f64> = BTreeMap::new();
    for (t, f) in times.iter().zip(flags) {
        if let (Some(t), Some(true)) = (t, f) {
            *per_hour.entry(t.div_euclid(3_600_000_000)).or_default() += 1.0;
        }
    }
    let labels: Vec<String> = per_hour
        .keys()
        .map(|h| {
            chrono::DateTime::from_timestamp(h * 3600, 0)
                .map(|t| t.format("%d %Hh").to_string())
                .unwrap_or_default()
        })
        .collect();
    let values: Vec<f64> = per_hour.values().copied().collect();
    let flagged = values.iter().sum::<f64>();
    figures.push(Figure {
        label: "anomalies",
        value: number(flagged),
        note: format!(
            "{:.2}% of {} scored rows",
            100.0 * flagged / scored.height().max(1) as f64,
            number(scored.height() as f64)
        ),
    });
    sections.push((
        "Anomalies over time".into(),
        format!(
            "{} rows the model flagged, per hour of event time (UTC).",
            number(flagged)
        ),
        bars(&labels, &values, "#c0392b", "", None),
    ));
}

/// The score histogram with the threshold.
fn score_section(scored: &DataFrame, flags: &[Option<bool>], sections: &mut Vec<Section>) {
    let scores = f64s(scored, "anomaly_score");
    let mut bins = [0.0f64; 20];
    let mut threshold: Option<f64> = None;
    for (s, f) in scores.iter().zip(flags) {
        if let Some(s) = s {
            bins[((s * 20.0) as usize).min(19)] += 1.0;
            if *f == Some(true) {
                threshold = Some(threshold.map_or(*s, |t: f64| t.min(*s)));
            }
        }
    }
    let labels: Vec<String> = (0..20).map(|i| format!("{:.2}", i as f64 / 20.0)).collect();
    sections.push((
        "Anomaly scores".into(),
        match threshold {
            Some(t) => format!(
                "How many rows got each score; rows right of the dashed line (score ≥ {t:.3}) are flagged."
            ),
            None => "How many rows got each score (no model has flagged a row yet).".into(),
        },
        bars(
            &labels,
            &bins,
            "#2c7fb8",
            "",
            threshold.map(|t| (t * 20.0, format!("threshold {t:.3}"))),
        ),
    ));
}

fn alert_section(alerts: &DataFrame, figures: &mut Vec<Figure>, sections: &mut Vec<Section>) {
    let mut per: BTreeMap<String, f64> = BTreeMap::new();
    for d in texts(alerts, "detector").into_iter().flatten() {
        *per.entry(d).or_default() += 1.0;
    }
    figures.push(Figure {
        label: "alerts",
        value: number(alerts.height() as f64),
        note: format!("from {} detectors", per.len()),
    });
    sections.push((
        "Alerts per detector".into(),
        format!("{} alerts in all.", number(alerts.height() as f64)),
        bars(
            &per.keys().cloned().collect::<Vec<_>>(),
            &per.values().copied().collect::<Vec<_>>(),
            "#8e44ad",
            "",
            None,
        ),
    ));
}

/// The share of rows failing each expectation, summed over silver's event log entries.
fn expectation_section(events: &DataFrame, sections: &mut Vec<(String, String, String)>) {
    let flows = texts(events, "flow");
    let expectations = texts(events, "expectations");
    let mut passed: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (flow, text) in flows.iter().zip(&expectations) {
        if flow.as_deref() != Some("silver") {
            continue;
        }
        let Some(text) = text else { continue };
        let Ok(list) = serde_json::from_str::<Vec<serde_json::Value>>(text) else {
            continue;
        };
        for e in list {
            let name = e["name"].as_str().unwrap_or("?").to_string();
            let entry = passed.entry(name).or_default();
            entry.0 += e["passed"].as_f64().unwrap_or(0.0);
            entry.1 += e["failed"].as_f64().unwrap_or(0.0);
        }
    }
    let labels: Vec<String> = passed.keys().cloned().collect();
    let rates: Vec<f64> = passed
        .values()
        .map(|(p, f)| 100.0 * f / (p + f).max(1.0))
        .collect();
    let worst = labels
        .iter()
        .zip(&rates)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .filter(|(_, r)| **r > 0.0);
    sections.push((
        "Expectations".into(),
        match worst {
            Some((name, rate)) => {
                format!("Share of rows failing each expectation; {name} fails most ({rate:.2}%).")
            }
            None => "Share of rows failing each expectation: every row passed.".into(),
        },
        bars(&labels, &rates, "#e67e22", "%", None),
    ));
}

/// Batch latency, rows per batch and model versions, from the bronze and gold event log rows.
fn batch_sections(
    events: &DataFrame,
    figures: &mut Vec<Figure>,
    sections: &mut Vec<(String, String, String)>,
) -> Result<()> {
    let flow = |name: &str| {
        events
            .clone()
            .lazy()
            .filter(col("flow").eq(lit(name)))
            .sort(["batch_id"], Default::default())
            .collect()
    };
    let bronze = flow("bronze")?;
    let durations: Vec<f64> = f64s(&bronze, "duration_ms").into_iter().flatten().collect();
    let rows: Vec<f64> = f64s(&bronze, "rows_in").into_iter().flatten().collect();
    let batches = match durations.len() {
        1 => "1 batch".to_string(),
        n => format!("{} batches", number(n as f64)),
    };
    sections.push((
        "Batch latency".into(),
        format!("Milliseconds per micro-batch, {batches} in order."),
        line(&durations, "#16a085", " ms", false),
    ));
    sections.push((
        "Rows per batch".into(),
        "Landed rows each micro-batch read.".into(),
        line(&rows, "#2c3e50", "", false),
    ));
    let gold = flow("gold")?;
    let versions: Vec<f64> = f64s(&gold, "model_version")
        .into_iter()
        .map(|v| v.unwrap_or(0.0))
        .collect();
    if let Some(current) = versions.last() {
        figures.push(Figure {
            label: "model version",
            value: if *current > 0.0 {
                number(*current)
            } else {
                "none".into()
            },
            note: "scored the last batch".into(),
        });
    }
    sections.push((
        "Model versions".into(),
        "The model version that scored each gold batch (0: no model yet).".into(),
        line(&versions, "#d35400", "", true),
    ));
    Ok(())
}

/// The page: headline figures, then one section per chart.
fn page(config: &Config, figures: &[Figure], sections: &[(String, String, String)]) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>isolake report — {id}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:760px;padding:0 1em;color:#222}}\
         section{{margin:2em 0}}h1{{font-size:1.6em;margin-bottom:.2em}}h2{{font-size:1.2em;margin-bottom:.2em}}\
         p{{color:#555;margin-top:0}}svg{{width:100%;height:auto;background:#fafafa;border-radius:6px}}\
         .figures{{display:flex;flex-wrap:wrap;gap:.8em;margin:1.5em 0}}\
         .figure{{flex:1 1 120px;background:#f3f4f6;border-radius:6px;padding:.6em .8em}}\
         .figure b{{display:block;font-size:1.5em}}.figure span{{color:#666;font-size:.85em}}</style>\
         </head><body><h1>isolake — pipeline {id}</h1><p>Generated {now} from {lake}.</p>",
        id = escape(&config.id),
        now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        lake = escape(&config.lake),
    );
    if !figures.is_empty() {
        html.push_str("<div class=\"figures\">");
        for f in figures {
            let _ = write!(
                html,
                "<div class=\"figure\"><span>{}</span><b>{}</b><span>{}</span></div>",
                escape(f.label),
                escape(&f.value),
                escape(&f.note)
            );
        }
        html.push_str("</div>");
    }
    if sections.is_empty() {
        html.push_str("<p>Nothing yet: run the pipeline first.</p>");
    }
    for (title, text, svg) in sections {
        let _ = write!(
            html,
            "<section><h2>{}</h2><p>{}</p>{svg}</section>",
            escape(title),
            escape(text)
        );
    }
    html.push_str("</body></html>\n");
    html
}
