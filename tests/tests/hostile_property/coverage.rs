//! The generator's coverage: the default seeds must make every kind of line, file and cut.

use std::collections::BTreeSet;

use crate::case::Case;

/// Every kind the generator makes: the default seeds must make each at least once.
const KINDS: [&str; 51] = [
    "valid",
    "bad_utf8",
    "huge_int",
    "huge_negative_int",
    "int_above_i64",
    "float_in_int",
    "huge_double",
    "double_overflow",
    "int_beyond_f64",
    "double_underflow",
    "deep_array",
    "deep_object",
    "deep_field",
    "deep_unclosed",
    "nested_amount",
    "nested_extra",
    "reserved_only",
    "reserved_names",
    "bom_mid_file",
    "bom_truncated",
    "bom_in_value",
    "bare_cr",
    "trailing_cr",
    "cr_only",
    "far_future",
    "near_future",
    "beyond_year_9999",
    "far_past",
    "epoch",
    "before_year_0",
    "duplicate_amount",
    "duplicate_ts",
    "duplicate_id",
    "duplicate_last_good",
    "missing_fields",
    "malformed",
    "wrong_type",
    "blank",
    "odd_key",
    "odd_time",
    "unusual_valid",
    "huge_int_id",
    "crlf_file",
    "bom_file",
    "no_final_eol",
    "empty_file",
    "odd_file_name",
    "several_files",
    "several_groups",
    "one_file_per_batch",
    "byte_limited_batch",
];

/// The seeds' cases make only kinds in [`KINDS`] and, unless one seed is replayed
/// (`all_seeds` false), every one of them.
pub fn assert_covered(seeds: &[u64], all_seeds: bool) {
    let covered: BTreeSet<&str> = seeds
        .iter()
        .flat_map(|seed| coverage(&Case::generate(*seed)))
        .collect();
    let unknown: Vec<_> = covered.iter().filter(|k| !KINDS.contains(k)).collect();
    assert!(unknown.is_empty(), "kinds missing in KINDS: {unknown:?}");
    if all_seeds {
        let missed: Vec<_> = KINDS.iter().filter(|k| !covered.contains(*k)).collect();
        assert!(missed.is_empty(), "no seed generates {missed:?}: add seeds");
    }
}

/// The kinds of lines, files and cuts a case has (to check the seeds cover them all).
fn coverage(case: &Case) -> BTreeSet<&'static str> {
    let mut kinds: BTreeSet<&'static str> = case.lines.iter().map(|l| l.kind).collect();
    for (flag, kind) in [
        (case.files.iter().any(|f| f.crlf), "crlf_file"),
        (case.files.iter().any(|f| f.bom), "bom_file"),
        (case.files.iter().any(|f| !f.final_eol), "no_final_eol"),
        (case.files.iter().any(|f| f.lines.is_empty()), "empty_file"),
        (
            case.files.iter().any(|f| !f.name[4..].starts_with('.')),
            "odd_file_name",
        ),
        (case.files.len() > 1, "several_files"),
        (case.groups.len() > 1, "several_groups"),
        (case.limits.iter().any(|l| l.0 == 1), "one_file_per_batch"),
        (
            case.limits.iter().any(|l| l.1.is_some()),
            "byte_limited_batch",
        ),
    ] {
        if flag {
            kinds.insert(kind);
        }
    }
    kinds
}
