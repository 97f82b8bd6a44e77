//! A corpus of bad configs: `validate` and `run` compile them with the same plan, so each is
//! refused by both with exit 2 and the same message, naming the key and the line.
#![allow(clippy::unwrap_used)]

use isolake_tests::lake::Lake;

/// (what is wrong, TOML after `[source] landing`, the key the message must name, a word the
/// message must contain).
const CORPUS: &[(&str, &str, &str, &str, &str)] = &[
    ("syntax", "stability_ms = ", "", "(syntax)", ""),
    (
        "unknown key",
        "colour = 1",
        "",
        "source.colour",
        "unknown key",
    ),
    (
        "wrong type",
        "stability_ms = \"soon\"",
        "",
        "source.stability_ms",
        "positive integer",
    ),
    (
        "expectation on an unknown column",
        "",
        "[[expectations]]\nname = \"x\"\nexpr = \"nope > 1\"",
        "expectations[0].expr",
        "nope",
    ),
    (
        "expectation that is not a predicate",
        "",
        "[[expectations]]\nname = \"x\"\nexpr = \"amount\"",
        "expectations[0].expr",
        "not a boolean",
    ),
    (
        "expectation that does not parse",
        "",
        "[[expectations]]\nname = \"x\"\nexpr = \"amount >\"",
        "expectations[0].expr",
        "invalid expression",
    ),
    (
        "threshold rule on an unknown column",
        "",
        "[[detectors]]\nname = \"t\"\nkind = \"threshold\"\nexpr = \"nope > 1\"",
        "detectors[0].expr",
        "threshold rule \"t\"",
    ),
    (
        "MATCH_RECOGNIZE outside the subset",
        "",
        "[[detectors]]\nname = \"m\"\nkind = \"match_recognize\"\n\
         sql = \"SELECT * FROM silver MATCH_RECOGNIZE (ORDER BY event_time ALL ROWS PER MATCH PATTERN (A) DEFINE A AS true)\"",
        "detectors[0].sql",
        "ALL ROWS PER MATCH",
    ),
    (
        "unknown detector kind",
        "",
        "[[detectors]]\nname = \"d\"\nkind = \"magic\"",
        "detectors[0].kind",
        "not a detector kind",
    ),
    (
        "rule key that is not a field",
        "",
        "[[detectors]]\nname = \"s\"\nkind = \"small_then_large\"\nkey = \"card\"",
        "detectors[0].key",
        "not a field",
    ),
    (
        "dedup key that is not a field",
        "",
        "[schema]\nkey = \"card\"",
        "schema.key",
        "not one of schema.fields",
    ),
    (
        "cast of an unknown field",
        "",
        "[silver]\ncasts = { card = \"integer\" }",
        "silver.casts.card",
        "not one of schema.fields",
    ),
    (
        "bad model URI",
        "",
        "[model]\nuri = \"models:/fraud\"",
        "model.uri",
        "no version or alias",
    ),
];

#[test]
fn validate_and_run_refuse_every_bad_config_alike() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (what, source, rest, key, word)) in CORPUS.iter().enumerate() {
        let lake = Lake::new(&tmp.path().join(format!("c{i}")), source, rest);
        let validate = lake.command(&["validate"]).output().unwrap();
        let run = lake.command(&["run", "--once"]).output().unwrap();
        let said = String::from_utf8_lossy(&validate.stderr).to_string();
        assert_eq!(
            validate.status.code(),
            Some(2),
            "{what}: validate said {said}"
        );
        assert_eq!(
            run.status.code(),
            Some(2),
            "{what}: run exited {:?}",
            run.status
        );
        assert_eq!(
            said,
            String::from_utf8_lossy(&run.stderr),
            "{what}: validate and run say the same"
        );
        assert!(
            said.contains(&format!("`{key}`")),
            "{what}: names {key}: {said}"
        );
        assert!(said.contains(word), "{what}: says {word:?}: {said}");
        assert!(said.contains("line "), "{what}: names the line: {said}");
        assert!(
            !lake.dir.join("lake").exists(),
            "{what}: a refused config creates no table"
        );
    }
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "colour = 1",
        "[[expectations]]\nname = \"x\"\nexpr = \"nope > 1\"\naction = \"explode\"\n\
         [[detectors]]\nname = \"t\"\nkind = \"threshold\"\nexpr = \"amount\"",
    );
    let out = lake.command(&["run", "--once"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("has 4 problem(s)"), "{said}");
    for key in [
        "source.colour",
        "expectations[0].expr",
        "expectations[0].action",
        "detectors[0].expr",
    ] {
        assert!(said.contains(&format!("`{key}`")), "{key} missing: {said}");
    }
}
