//! `isolake-pipeline report`: one self-contained HTML page (inline SVG, no script, no network)
//! of what the lake holds: anomalies over time, the score histogram with the threshold, alerts
//! per detector, expectation pass/fail rates, batch latency and rows per batch, model versions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use isolake_data::lake::{LakeTable, scan_table};
use polars::prelude::*;

use crate::config::Config;
use crate::error::Result;

async fn table(config: &Config, name: &str) -> Result<Option<DataFrame>> {
    let location = config.table_location(name);
    if !LakeTable::exists(&location).await? {
        return Ok(None);
    }
    Ok(Some(scan_table(&location, None).await?.collect()?))
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;

/// Vertical bars with labels under them; `mark`: an x value (in bar units) to draw a red rule at.
fn bars(labels: &[String], values: &[f64], color: &str, mark: Option<f64>) -> String {
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let n = values.len().max(1) as f64;
    let step = (W - 2.0 * PAD) / n;
    let mut svg = format!("<svg viewBox=\"0 0 {W} {H}\" role=\"img\">");
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{y}\" x2=\"{x}\" y2=\"{y}\" stroke=\"#999\"/>",
        y = H - PAD,
        x = W - PAD
    );
    for (i, (label, v)) in labels.iter().zip(values).enumerate() {
        let h = (H - 2.0 * PAD) * v / max;
        let x = PAD + i as f64 * step;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\"><title>{}: {v}</title></rect>",
            x + step * 0.1,
            H - PAD - h,
            step * 0.8,
            escape(label)
        );
        if values.len() <= 24 || i % (values.len() / 12).max(1) == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x + step / 2.0,
                H - PAD + 14.0,
                escape(label)
            );
        }
    }
    if let Some(m) = mark {
        let x = PAD + m * step;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{PAD}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#c0392b\" stroke-width=\"2\" stroke-dasharray=\"4\"/>",
            H - PAD
        );
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{PAD}\" font-size=\"10\">{max:.0}</text></svg>"
    );
    svg
}

/// A polyline of `values` (in order), with the largest value marked on the axis.
fn line(values: &[f64], color: &str) -> String {
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let n = (values.len().max(2) - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                PAD + (W - 2.0 * PAD) * i as f64 / n,
                H - PAD - (H - 2.0 * PAD) * v / max
            )
        })
        .collect();
    format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\"><line x1=\"{PAD}\" y1=\"{y}\" x2=\"{x}\" y2=\"{y}\" stroke=\"#999\"/>\
         <polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\
         <text x=\"4\" y=\"{PAD}\" font-size=\"10\">{max:.0}</text></svg>",
        points.join(" "),
        y = H - PAD,
        x = W - PAD
    )
}

/// Builds the report page.
pub async fn render(config: &Config) -> Result<String> {
    let mut sections: Vec<(String, String, String)> = Vec::new();
    let scored = table(config, "gold/scored_transactions").await?;
    if let Some(scored) = &scored {
        // Anomalies per hour of event time.
        let times = scored
            .column(&config.schema.event_time)
            .and_then(|c| c.cast(&DataType::Int64))
            .map(|c| {
                c.i64()
                    .map(|c| c.iter().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let flags = scored
            .column("is_anomaly")
            .map(|c| {
                c.bool()
                    .map(|c| c.iter().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let mut per_hour: BTreeMap<i64, f64> = BTreeMap::new();
        for (t, f) in times.iter().zip(&flags) {
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
        sections.push((
            "Anomalies over time".into(),
            format!(
                "{} rows the model flagged, per hour of event time.",
                values.iter().sum::<f64>()
            ),
            bars(&labels, &values, "#c0392b", None),
        ));
        // Score histogram with the threshold.
        let scores = f64s(scored, "anomaly_score");
        let mut bins = [0.0f64; 20];
        let mut threshold: Option<f64> = None;
        for (s, f) in scores.iter().zip(&flags) {
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
                Some(t) => format!("How scores spread; the dashed line is the threshold ({t:.3})."),
                None => "How scores spread (no model has flagged a row yet).".into(),
            },
            bars(&labels, &bins, "#2c7fb8", threshold.map(|t| t * 20.0)),
        ));
    }
    if let Some(alerts) = table(config, "gold/alerts").await? {
        let mut per: BTreeMap<String, f64> = BTreeMap::new();
        for d in texts(&alerts, "detector").into_iter().flatten() {
            *per.entry(d).or_default() += 1.0;
        }
        sections.push((
            "Alerts per detector".into(),
            format!("{} alerts in all.", alerts.height()),
            bars(
                &per.keys().cloned().collect::<Vec<_>>(),
                &per.values().copied().collect::<Vec<_>>(),
                "#8e44ad",
                None,
            ),
        ));
    }
    if let Some(events) = table(config, "event_log").await? {
        let flows = texts(&events, "flow");
        let expectations = texts(&events, "expectations");
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
        sections.push((
            "Expectations".into(),
            "Share of rows failing each expectation, in percent.".into(),
            bars(&labels, &rates, "#e67e22", None),
        ));
        let bronze = events
            .clone()
            .lazy()
            .filter(col("flow").eq(lit("bronze")))
            .sort(["batch_id"], Default::default())
            .collect()?;
        let durations: Vec<f64> = f64s(&bronze, "duration_ms").into_iter().flatten().collect();
        let rows: Vec<f64> = f64s(&bronze, "rows_in").into_iter().flatten().collect();
        sections.push((
            "Batch latency".into(),
            format!(
                "Milliseconds per micro-batch, {} batches in order.",
                durations.len()
            ),
            line(&durations, "#16a085"),
        ));
        sections.push((
            "Rows per batch".into(),
            "Landed rows each micro-batch read.".into(),
            line(&rows, "#2c3e50"),
        ));
        let gold = events
            .lazy()
            .filter(col("flow").eq(lit("gold")))
            .sort(["batch_id"], Default::default())
            .collect()?;
        let versions: Vec<f64> = f64s(&gold, "model_version")
            .into_iter()
            .map(|v| v.unwrap_or(0.0))
            .collect();
        sections.push((
            "Model versions".into(),
            "The model version that scored each batch (0: no model yet).".into(),
            line(&versions, "#d35400"),
        ));
    }
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>isolake report — {id}</title>\
         <style>body{{font-family:sans-serif;margin:2em auto;max-width:720px;color:#222}}\
         section{{margin:2em 0}}h1{{font-size:1.6em}}h2{{font-size:1.2em;margin-bottom:.2em}}\
         p{{color:#555;margin-top:0}}svg{{width:100%;height:auto;background:#fafafa}}</style>\
         </head><body><h1>isolake — pipeline {id}</h1><p>Generated {now} from {lake}.</p>",
        id = escape(&config.id),
        now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        lake = escape(&config.lake),
    );
    if sections.is_empty() {
        html.push_str("<p>Nothing yet: run the pipeline first.</p>");
    }
    for (title, text, svg) in sections {
        let _ = write!(
            html,
            "<section><h2>{}</h2><p>{}</p>{svg}</section>",
            escape(&title),
            escape(&text)
        );
    }
    html.push_str("</body></html>\n");
    Ok(html)
}
