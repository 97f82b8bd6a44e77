//! `run --continuous --metrics-addr`: Prometheus text on /metrics, scraped during a run.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use isolake_tests::lake::{Lake, generate, metric};
use isolake_tests::{eventually_with, free_port};

#[test]
fn metrics_are_served_and_follow_the_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1",
        "[[detectors]]\nname = \"stl\"\nkind = \"small_then_large\"\n",
    );
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = lake.spawn(&["run", "--continuous", "--metrics-addr", &addr]);
    generate(&lake.landing(), 3_000, 3, 8, 0.0);
    let url = format!("http://{addr}/metrics");
    let client = reqwest::blocking::Client::new();
    let what = "/metrics to count 3000 bronze rows";
    let text = eventually_with(Duration::from_secs(60), what, || {
        let text = client
            .get(&url)
            .send()
            .ok()
            .and_then(|r| r.text().ok())
            .unwrap_or_default();
        if metric(
            &text,
            "isolake_rows_total{pipeline=\"fraud\",layer=\"bronze\"}",
        ) == Some(3000.0)
        {
            Ok(text)
        } else {
            Err(text)
        }
    });
    let silver = metric(
        &text,
        "isolake_rows_total{pipeline=\"fraud\",layer=\"silver\"}",
    )
    .unwrap();
    assert_eq!(silver, lake.read("silver").height() as f64);
    assert_eq!(
        metric(&text, "isolake_files_total{pipeline=\"fraud\"}"),
        Some(3.0)
    );
    let batches = metric(&text, "isolake_batches_total{pipeline=\"fraud\"}").unwrap();
    assert!(batches >= 1.0);
    assert_eq!(
        metric(
            &text,
            "isolake_batch_duration_seconds_count{pipeline=\"fraud\"}"
        ),
        Some(batches)
    );
    for family in [
        "# TYPE isolake_batch_duration_seconds histogram",
        "isolake_backlog_files{pipeline=\"fraud\"}",
        "isolake_model_version{pipeline=\"fraud\"} 0",
        "isolake_last_error_timestamp_seconds{pipeline=\"fraud\"} 0",
        "# TYPE isolake_alerts_total counter",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    // Alerts counted per detector match the alerts table (no line while there are none).
    let alerts = lake.read("gold/alerts").height() as f64;
    let counted = metric(
        &text,
        "isolake_alerts_total{pipeline=\"fraud\",detector=\"stl\"}",
    );
    assert_eq!(counted.unwrap_or(0.0), alerts);
    let missing = client.get(format!("http://{addr}/nope")).send().unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // Clients that connect and send nothing (each may take the 2 s read timeout) do not hold
    // up a scrape: it is answered well within one second.
    let stalled: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let quick = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let scraped = quick.get(&url).send().and_then(|r| r.text());
    assert!(
        scraped
            .as_deref()
            .is_ok_and(|t| t.contains("isolake_rows_total")),
        "a scrape behind stalled clients: {scraped:?}"
    );
    drop(stalled);

    child.sigterm().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
