//! `meshdoctor diagnose` and `meshdoctor compare` end to end on the seed-cause scenarios.

use assert_cmd::Command;
use predicates::prelude::*;

fn meshdoctor() -> Command {
    let mut cmd = Command::cargo_bin("meshdoctor").expect("binary builds");
    // Paths in the output are relative to the workspace root.
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    cmd
}

const FIRES: &str = "testdata/scenarios/protocol-sniffing-timeout/fires";
const SERVER_ONLY: &str = "testdata/scenarios/protocol-sniffing-timeout/server-side-only";

#[test]
fn diagnose_names_the_seed_cause_and_exits_1() {
    meshdoctor()
        .args(["diagnose", FIRES])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "VERDICT      protocol-sniffing-timeout",
        ))
        .stdout(predicate::str::contains("OPENSSL_internal:HTTP_REQUEST"))
        .stdout(predicate::str::contains(
            "listener filter times out after 100 ms",
        ))
        .stdout(predicate::str::contains(
            "meshConfig.protocolDetectionTimeout=5s",
        ));
}

#[test]
fn diagnose_json_contract() {
    let out = meshdoctor()
        .args(["diagnose", "--format", "json", FIRES])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(v["verdict"], "protocol-sniffing-timeout");
    assert_eq!(v["verdict"], v["findings"][0]["cause"]);
    let c = v["findings"][0]["confidence"].as_f64().expect("number");
    assert!((0.6..=1.0).contains(&c), "{c}");
    let ev = v["findings"][0]["evidence"].as_array().expect("evidence");
    assert!(ev.iter().any(|e| {
        e["text"]
            .as_str()
            .is_some_and(|t| t.contains("HTTP_REQUEST"))
    }));
    assert!(
        ev.iter()
            .all(|e| e["file"].is_string() && e["line"].is_u64())
    );
    assert!(v["missing_evidence"].is_array());
    assert!(v["inputs"].as_array().is_some_and(|a| a.len() >= 3));
}

#[test]
fn thin_evidence_is_inconclusive_and_exits_0() {
    meshdoctor()
        .args(["diagnose", SERVER_ONLY])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("VERDICT      inconclusive"))
        .stdout(predicate::str::contains("COLLECT NEXT"))
        .stdout(predicate::str::contains(
            "istioctl proxy-config log <client-pod>",
        ));
}

#[test]
fn user_rules_load_and_bad_rules_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("custom.toml");
    std::fs::write(
        &good,
        r#"
id = "custom-tls-http-request"
title = "Plaintext on a TLS port (site rule)"
summary = "Plaintext reached {server}."
mechanism = "A site-specific rule."
fix = ["talk to the platform team"]
verify = ["no more HTTP_REQUEST"]
[[evidence]]
signal = "journey.tls_error:HTTP_REQUEST"
weight = 0.9
anchor = true
means = "TLS HTTP_REQUEST errors"
"#,
    )
    .expect("write");
    meshdoctor()
        .args(["diagnose", "--format", "json", "--rules"])
        .arg(&good)
        .arg(SERVER_ONLY)
        .assert()
        .stdout(predicate::str::contains("custom-tls-http-request"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "id = \"x\"\n").expect("write");
    meshdoctor()
        .args(["diagnose", "--rules"])
        .arg(&bad)
        .arg(SERVER_ONLY)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml"));
}

#[test]
fn missing_input_is_exit_2() {
    meshdoctor()
        .args(["diagnose", "does/not/exist.log"])
        .assert()
        .code(2);
}

#[test]
fn compare_points_at_the_missing_sni_step() {
    meshdoctor()
        .args(["compare", SERVER_ONLY])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "lack the `sni (tls:onServerName)` step that",
        ))
        .stdout(predicate::str::contains("TLS error: 268435612"));
}

#[test]
fn help_documents_exit_codes() {
    meshdoctor()
        .args(["diagnose", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "Exit codes: 1 when a cause is named",
        ));
}
