//! The README's first command: `meshdoctor diagnose examples/sniffing-timeout` names the
//! founding incident's cause with the missing-SNI evidence, the ConfigMap line and the fix;
//! the same mesh after the fix is not blamed on it.

use assert_cmd::Command;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn diagnose(dir: &PathBuf) -> (Option<i32>, serde_json::Value) {
    let out = Command::cargo_bin("meshdoctor")
        .unwrap()
        .args(["diagnose", "--format", "json"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).expect("JSON on stdout"),
    )
}

#[test]
fn bundled_incident_is_diagnosed_with_evidence_and_fix() {
    let (code, doc) = diagnose(&example("sniffing-timeout"));
    assert_eq!(code, Some(1), "a named cause exits 1");
    assert_eq!(doc["verdict"], "protocol-sniffing-timeout");
    let top = &doc["findings"][0];
    assert_eq!(top["cause"], "protocol-sniffing-timeout");
    let evidence: Vec<&str> = top["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        evidence
            .iter()
            .any(|t| t.contains("OPENSSL_internal:HTTP_REQUEST")),
        "{evidence:#?}"
    );
    assert!(
        evidence
            .iter()
            .any(|t| t.contains("listener filter times out")),
        "{evidence:#?}"
    );
    assert!(
        evidence
            .iter()
            .any(|t| t.contains("protocolDetectionTimeout")),
        "the ConfigMap line: {evidence:#?}"
    );
    let fix = top["fix"].as_array().unwrap();
    assert!(fix.iter().any(|f| {
        f.as_str()
            .unwrap()
            .contains("meshConfig.protocolDetectionTimeout=5s")
    }));
    assert!(!top["verify"].as_array().unwrap().is_empty());
}

#[test]
fn the_fixed_mesh_is_not_blamed_on_sniffing() {
    let (code, doc) = diagnose(&example("sniffing-timeout-fixed"));
    assert_eq!(code, Some(0));
    assert_eq!(doc["verdict"], "inconclusive");
}
