//! One lake holds one pipeline (issue 17): a second pipeline id on a lake that another id
//! writes is refused at start, before anything is changed.
#![allow(clippy::unwrap_used)]

use isolake_tests::lake::{Lake, generate};

#[test]
fn a_second_pipeline_id_on_a_lake_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", "");
    generate(&lake.landing(), 200, 1, 4, 0.0);
    lake.run_once();
    let bronze_commits = lake.commits("bronze");
    let config = lake.dir.join("isolake.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("id = \"fraud\"", "id = \"other\"")).unwrap();
    generate(&lake.landing(), 100, 1, 5, 0.0);
    let out = lake.command(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("belongs to pipeline \"fraud\", not \"other\""),
        "{stderr}"
    );
    assert_eq!(lake.commits("bronze"), bronze_commits);
    assert_eq!(lake.read("bronze").height(), 200);
}
