//! Issue 6 acceptance: the seed's fix is confirmed from a ConfigMap showing 100 ms (its line is
//! evidence of the verdict) and the verify step shows the 5 s value to check after the fix.
//! Inputs are the scenario directories under `testdata/scenarios/protocol-sniffing-timeout/`.

mod common;

use common::{case_inputs, scenario};
use meshdoctor_diagnose::{RuleSet, diagnose};
use meshdoctor_logs::RunOptions;

fn case(name: &str) -> meshdoctor_diagnose::Diagnosis {
    let inputs = case_inputs(&scenario("protocol-sniffing-timeout").join(name));
    diagnose(
        &inputs,
        &RunOptions::default(),
        &RuleSet::builtin().expect("rules"),
    )
}

#[test]
fn the_100ms_configmap_line_is_evidence_and_verify_shows_5s() {
    let d = case("fires-with-configmap-100ms");
    assert_eq!(d.verdict, "protocol-sniffing-timeout");
    let f = d.findings.first().expect("a finding");
    let line = f
        .evidence
        .iter()
        .find(|e| e.file.ends_with("istio-configmap.yaml"))
        .expect("the ConfigMap line is cited");
    assert!(
        line.text.contains("protocolDetectionTimeout: 100ms"),
        "{line:?}"
    );
    assert!(
        f.items
            .iter()
            .any(|i| i.signal == "config.detection_timeout_short" && i.fired)
    );
    let verify = f.verify.join("\n");
    assert!(verify.contains("protocolDetectionTimeout: 5s"), "{verify}");
    assert!(
        verify.contains("before the fix: 100ms at "),
        "the value read is quoted: {verify}"
    );
    assert!(
        f.fix.join("\n").contains("detected Istio 1.6"),
        "{:?}",
        f.fix
    );
}

#[test]
fn the_5s_configmap_speaks_against_sniffing() {
    let d = case("fires-with-configmap-5s");
    assert_ne!(d.verdict, "protocol-sniffing-timeout");
    let f = d
        .findings
        .iter()
        .find(|f| f.cause == "protocol-sniffing-timeout")
        .expect("still a candidate");
    assert!(
        f.items
            .iter()
            .any(|i| i.signal == "config.detection_timeout_long" && i.fired && i.weight < 0.0)
    );
    assert!(
        f.counter_evidence
            .iter()
            .any(|e| e.text.contains("protocolDetectionTimeout: 5s")),
        "{:?}",
        f.counter_evidence
    );
}
