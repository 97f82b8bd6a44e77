//! Artifact round trip and refusal of malformed, corrupt or oversized files.
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::{
    Contamination, Error, IsolationForest, MAX_ARTIFACT_BYTES, MAX_HEADER_BYTES, TrainingDataRef,
};
use sha2::{Digest, Sha256};

fn model(level: usize) -> IsolationForest {
    let mut m = IsolationForest::params()
        .n_estimators(30)
        .seed(11)
        .extension_level(level)
        .contamination(Contamination::Fraction(0.05))
        .fit_named(
            &common::gaussian(700, 3, 1),
            vec!["amount".into(), "hour".into(), "merchant_risk".into()],
        )
        .unwrap();
    m.set_training_data(TrainingDataRef {
        table_uri: "file:///lake/silver/transactions".into(),
        delta_version: 17,
    });
    m
}

/// Splits artifact bytes into (first line + header line, payload).
fn split(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let first = bytes.iter().position(|&b| b == b'\n').unwrap();
    let second = first + 1 + bytes[first + 1..].iter().position(|&b| b == b'\n').unwrap();
    (bytes[..=second].to_vec(), bytes[second + 1..].to_vec())
}

/// Rebuilds an artifact around a modified header JSON and/or payload, with a valid checksum:
/// what a hostile (not merely corrupt) file looks like.
fn forge(bytes: &[u8], edit_header: impl Fn(&mut serde_json::Value), payload: &[u8]) -> Vec<u8> {
    let (head, _) = split(bytes);
    let text = std::str::from_utf8(&head).unwrap();
    let mut lines = text.lines();
    let magic = lines.next().unwrap();
    let mut header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    edit_header(&mut header);
    header["payload_len"] = payload.len().into();
    let sha: String = Sha256::digest(payload)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    header["payload_sha256"] = sha.into();
    let mut out = format!("{magic}\n{header}\n").into_bytes();
    out.extend_from_slice(payload);
    out
}

fn malformed(r: Result<IsolationForest, Error>, needle: &str) {
    match r {
        Err(Error::ArtifactMalformed { reason }) => {
            assert!(reason.contains(needle), "expected `{needle}` in: {reason}")
        }
        Err(other) => panic!("expected ArtifactMalformed({needle}), got {other}"),
        Ok(_) => panic!("a malformed artifact ({needle}) was accepted"),
    }
}

#[test]
fn save_load_round_trip_gives_identical_scores_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let x = common::gaussian(2000, 3, 2);
    for level in [0, 1] {
        let m = model(level);
        let path = dir.path().join(format!("model-{level}.isoforest"));
        m.save(&path).unwrap();
        let loaded = IsolationForest::load(&path).unwrap();
        assert_eq!(loaded.metadata(), m.metadata());
        assert_eq!(loaded.fingerprint(), m.fingerprint());
        let a = m.decision_function(&x).unwrap();
        let b = loaded.decision_function(&x).unwrap();
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
        assert_eq!(
            loaded.explain(&x, 2).unwrap(),
            m.explain(&x, 2).unwrap(),
            "explanations differ after a round trip"
        );
        let md = loaded.metadata();
        assert_eq!(md.feature_names[2], "merchant_risk");
        assert_eq!(md.training_data.as_ref().unwrap().delta_version, 17);
        assert_eq!(md.crate_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(md.training_rows, 700);
        // Saving again over the same path replaces it atomically; no temp file is left.
        loaded.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), level + 1);
    }
    let bytes = std::fs::read(dir.path().join("model-0.isoforest")).unwrap();
    assert!(bytes.starts_with(b"ISOLAKE-FOREST 1\n{\"format_version\":1,"));
}

#[test]
fn corrupt_truncated_and_foreign_files_are_refused() {
    let m = model(0);
    let bytes = m.to_artifact_bytes().unwrap();
    let (head, payload) = split(&bytes);

    let mut flipped = bytes.clone();
    let k = head.len() + payload.len() / 2;
    flipped[k] ^= 0x40;
    assert!(matches!(
        IsolationForest::from_artifact_bytes(&flipped),
        Err(Error::ArtifactChecksumMismatch { .. })
    ));

    for cut in [bytes.len() - 1, head.len() + 10, head.len(), 40, 10, 0] {
        let err = IsolationForest::from_artifact_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ArtifactMalformed { .. } | Error::ArtifactNotRecognised { .. }
            ),
            "cut at {cut}: {err}"
        );
    }

    let mut v2 = bytes.clone();
    v2[15] = b'2';
    let err = IsolationForest::from_artifact_bytes(&v2).unwrap_err();
    assert!(
        matches!(err, Error::ArtifactUnsupportedVersion { ref found, supported: 1 } if found == "2")
    );
    assert!(err.to_string().contains("version 2"));
    let header_v2 = forge(&bytes, |h| h["format_version"] = 2.into(), &payload);
    assert!(matches!(
        IsolationForest::from_artifact_bytes(&header_v2),
        Err(Error::ArtifactUnsupportedVersion { .. })
    ));

    for foreign in [
        &b"PK\x03\x04 zip file"[..],
        b"{\"json\": true}\n",
        b"ISOLAKE-FORESTX 1\n{}\n",
    ] {
        assert!(matches!(
            IsolationForest::from_artifact_bytes(foreign),
            Err(Error::ArtifactNotRecognised { .. })
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        IsolationForest::load(dir.path().join("missing")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn oversized_files_and_headers_are_refused_before_parsing() {
    // calloc'd: the pages are never touched, the size check comes first.
    let huge = vec![0u8; MAX_ARTIFACT_BYTES as usize + 1];
    assert!(matches!(
        IsolationForest::from_artifact_bytes(&huge),
        Err(Error::ArtifactTooLarge { what: "file", .. })
    ));
    let mut long_header = b"ISOLAKE-FOREST 1\n".to_vec();
    long_header.resize(long_header.len() + MAX_HEADER_BYTES + 10, b' ');
    assert!(matches!(
        IsolationForest::from_artifact_bytes(&long_header),
        Err(Error::ArtifactTooLarge { what: "header", .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_ARTIFACT_BYTES + 1).unwrap(); // sparse file
    assert!(matches!(
        IsolationForest::load(&path),
        Err(Error::ArtifactTooLarge { what: "file", .. })
    ));
}

#[test]
fn hostile_but_checksummed_artifacts_are_refused() {
    let m = model(0);
    let bytes = m.to_artifact_bytes().unwrap();
    let (_, payload) = split(&bytes);
    let same = |_: &mut serde_json::Value| {};
    // Sanity: forging without changes loads.
    IsolationForest::from_artifact_bytes(&forge(&bytes, same, &payload)).unwrap();

    // Header inconsistent with the payload or with itself.
    let r = |f: &dyn Fn(&mut serde_json::Value)| {
        IsolationForest::from_artifact_bytes(&forge(&bytes, f, &payload))
    };
    malformed(
        r(&|h| h["hyperparameters"]["n_estimators"] = 31.into()),
        "30 trees",
    );
    malformed(
        r(&|h| h["hyperparameters"]["extension_level"] = 1.into()),
        "term",
    );
    malformed(
        r(&|h| h["hyperparameters"]["n_estimators"] = 0.into()),
        "n_estimators",
    );
    malformed(
        r(&|h| h["feature_names"] = serde_json::json!(["a", "b"])),
        "features_per_tree",
    );
    malformed(
        r(&|h| h["feature_names"] = serde_json::json!([])),
        "no feature",
    );
    malformed(
        r(&|h| h["samples_per_tree"] = 300.into()),
        "samples_per_tree",
    );
    malformed(r(&|h| h["offset"] = 3.0.into()), "offset");
    malformed(r(&|h| h["training_rows"] = 1.into()), "training_rows");
    malformed(r(&|h| h["unexpected"] = 1.into()), "unknown field");

    // Payload: offsets of tree 0's arrays.
    let u32_at = |p: &[u8], i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap()) as usize;
    let n0 = u32_at(&payload, 8);
    let child0 = 12;
    let samples0 = child0 + 4 * n0;
    let features0 = samples0 + 4 * n0;
    let coefs0 = features0 + 4 * n0;
    let thresholds0 = coefs0 + 8 * n0;
    let load = |p: &[u8]| IsolationForest::from_artifact_bytes(&forge(&bytes, same, p));
    let edit = |at: usize, v: &[u8]| {
        let mut p = payload.clone();
        p[at..at + v.len()].copy_from_slice(v);
        p
    };
    malformed(load(&edit(features0, &7u32.to_le_bytes())), "feature 7");
    malformed(
        load(&edit(child0, &(n0 as u32).to_le_bytes())),
        "child index",
    );
    malformed(load(&edit(child0, &0u32.to_le_bytes())), "unreachable");
    malformed(
        load(&edit(thresholds0, &f64::NAN.to_le_bytes())),
        "non-finite",
    );
    malformed(
        load(&edit(thresholds0, &f64::INFINITY.to_le_bytes())),
        "non-finite",
    );
    malformed(load(&edit(coefs0, &2.0f64.to_le_bytes())), "coefficient");
    malformed(load(&edit(samples0, &699u32.to_le_bytes())), "samples");
    malformed(load(&edit(8, &u32::MAX.to_le_bytes())), "nodes");
    malformed(load(&edit(0, &31u32.to_le_bytes())), "31 trees");
    malformed(load(&payload[..payload.len() - 8]), "truncated");
    let mut longer = payload.clone();
    longer.extend_from_slice(&[0; 4]);
    malformed(load(&longer), "unexpected bytes");
    // A child pointing back to an ancestor (a cycle) is refused.
    let second_child = u32_at(&payload, child0 + 4 * u32_at(&payload, child0));
    if second_child != 0 {
        let at = child0 + 4 * u32_at(&payload, child0);
        malformed(load(&edit(at, &1u32.to_le_bytes())), "child index");
    }
}
