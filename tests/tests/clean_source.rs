//! `source.clean_source`: landed files that a committed batch read are moved or deleted once
//! the retention passed; nothing else in the landing zone is touched.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use isolake_tests::lake::{Lake, count_lines, generate};

/// The names under `dir`, relative and sorted (recursively).
fn names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn lake(dir: &Path, clean: &str, retention: &str) -> Lake {
    let source = format!(
        "stability_ms = 1\nclean_source = \"{clean}\"\nclean_source_retention = \"{retention}\""
    );
    let lake = Lake::new(dir, &source, "");
    generate(&lake.landing(), 300, 3, 7, 0.0);
    assert_eq!(count_lines(&lake.landing()), 300);
    std::fs::write(lake.landing().join("notes.txt"), "not a pattern's file\n").unwrap();
    lake
}

#[test]
fn read_files_are_deleted_and_files_no_batch_read_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = lake(tmp.path(), "delete", "0s");
    let landed = names(&lake.landing());
    assert_eq!(landed.len(), 4, "{landed:?}");
    lake.run_once();
    assert_eq!(lake.read("bronze").height(), 300);
    assert_eq!(names(&lake.landing()), ["notes.txt"]);
}

#[test]
fn read_files_are_moved_to_the_archive_and_never_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = lake(tmp.path(), "move", "0s");
    let before = names(&lake.landing());
    let content: Vec<Vec<u8>> = (before.iter().filter(|n| n.ends_with(".json")))
        .map(|n| std::fs::read(lake.landing().join(n)).unwrap())
        .collect();
    lake.run_once();
    let archived: Vec<String> = (before.iter().filter(|n| n.ends_with(".json")))
        .map(|n| format!("_archived/{n}"))
        .collect();
    let mut expected = archived.clone();
    expected.push("notes.txt".into());
    expected.sort();
    assert_eq!(names(&lake.landing()), expected);
    let moved: Vec<Vec<u8>> = (archived.iter())
        .map(|n| std::fs::read(lake.landing().join(n)).unwrap())
        .collect();
    assert_eq!(moved, content, "moved whole");
    lake.run_once();
    assert_eq!(lake.read("bronze").height(), 300, "the archive is not read");
}

#[test]
fn files_read_within_the_retention_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = lake(tmp.path(), "delete", "1h");
    let before = names(&lake.landing());
    lake.run_once();
    assert_eq!(names(&lake.landing()), before);
    assert_eq!(lake.read("bronze").height(), 300);
}
