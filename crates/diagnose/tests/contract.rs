//! The `--format json` contract of a diagnosis (issue 3 item 6), as a snapshot.

mod common;

use common::{case_inputs, scenario, seed_rules};
use meshdoctor_diagnose::diagnose;
use meshdoctor_logs::RunOptions;

#[test]
fn json_contract() {
    let rules = seed_rules();
    let inputs = case_inputs(&scenario("protocol-sniffing-timeout/fires"));
    let d = diagnose(&inputs, &RunOptions::default(), &rules);
    let v = serde_json::to_value(&d).expect("serialises");
    // The keys the contract promises.
    for key in ["verdict", "findings", "missing_evidence", "inputs"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let f0 = &v["findings"][0];
    for key in [
        "cause",
        "confidence",
        "summary",
        "workloads",
        "occurrences",
        "evidence",
        "fix",
        "verify",
        "references",
    ] {
        assert!(f0.get(key).is_some(), "findings[0] missing {key}");
    }
    assert_eq!(v["verdict"], f0["cause"]);
    for key in ["file", "line", "text"] {
        assert!(
            f0["evidence"][0].get(key).is_some(),
            "evidence missing {key}"
        );
    }
    for key in ["file", "kind", "lines", "skipped"] {
        assert!(v["inputs"][0].get(key).is_some(), "inputs missing {key}");
    }
    let contract = serde_json::json!({
        "verdict": v["verdict"],
        "findings": v["findings"].as_array().map(|a| a.iter().map(|f| serde_json::json!({
            "cause": f["cause"], "confidence": f["confidence"], "summary": f["summary"],
            "workloads": f["workloads"], "occurrences": f["occurrences"], "evidence": f["evidence"],
            "fix": f["fix"], "verify": f["verify"], "references": f["references"],
        })).collect::<Vec<_>>()),
        "missing_evidence": v["missing_evidence"],
        "inputs": v["inputs"].as_array().map(|a| a.iter().map(|i| serde_json::json!({
            "file": i["file"], "kind": i["kind"], "lines": i["lines"], "skipped": i["skipped"],
        })).collect::<Vec<_>>()),
    });
    let mut settings = insta::Settings::clone_current();
    // `scenario("")` ends in the separator.
    let root = scenario("").display().to_string();
    settings.add_filter(&regex::escape(&root), "[SCENARIOS]/");
    settings.bind(|| insta::assert_json_snapshot!("sniffing_fires_contract", contract));
}
