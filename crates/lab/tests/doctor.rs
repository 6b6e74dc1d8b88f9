//! The lab is the doctor's ground truth: every scenario runs on real sockets into a temporary
//! directory, `meshdoctor-diagnose` reads that directory exactly as `meshdoctor diagnose DIR`
//! would (logs and the config the lab writes), and its verdict must equal `truth.json`'s cause.
//! The seed's fix (a 5 s detection timeout) must give no resets and no sniffing verdict.
//! This file only drives the public APIs; it must not special-case a scenario's output.

use std::path::Path;
use std::time::{Duration, Instant};

use meshdoctor_diagnose::{Diagnosis, RuleSet, diagnose};
use meshdoctor_input::{DiscoverOptions, discover};
use meshdoctor_lab::{LabConfig, Scenario, run_blocking};
use meshdoctor_logs::RunOptions;

fn doctor(dir: &Path) -> Diagnosis {
    let rules = RuleSet::builtin().expect("built-in rules load");
    let (inputs, errors) = discover(&[dir.to_path_buf()], &DiscoverOptions::default());
    assert!(errors.is_empty(), "unreadable lab output: {errors:?}");
    diagnose(&inputs, &RunOptions::default(), &rules)
}

fn truth_cause(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("truth.json")).expect("truth.json");
    let truth: serde_json::Value = serde_json::from_str(&text).expect("truth.json is JSON");
    truth["cause"].as_str().expect("truth.cause").to_string()
}

fn ranking(d: &Diagnosis) -> String {
    d.findings
        .iter()
        .map(|f| format!("{} {:.2}", f.cause, f.confidence))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn the_doctor_names_every_lab_scenario() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut wrong = Vec::new();
    for scenario in Scenario::ALL {
        let out = tmp.path().join(scenario.name());
        let summary = run_blocking(LabConfig::new(scenario, &out)).expect("lab run");
        assert!(
            summary.failures > 0,
            "{}: the lab reproduced no failure",
            scenario.name()
        );
        let truth = truth_cause(&out);
        assert_eq!(
            truth,
            scenario.cause(),
            "truth.json agrees with the scenario"
        );
        let d = doctor(&out);
        if d.verdict != truth {
            wrong.push(format!(
                "{}: verdict {} (want {truth}); ranking: {}",
                scenario.name(),
                d.verdict,
                ranking(&d)
            ));
        }
    }
    assert!(wrong.is_empty(), "misdiagnosed:\n{}", wrong.join("\n"));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the lab runs stay fast ({:?})",
        started.elapsed()
    );
}

#[test]
fn the_seed_fix_gives_no_resets_and_no_sniffing_verdict() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = LabConfig::new(Scenario::SniffingTimeout, tmp.path());
    cfg.protocol_detection_timeout = Some(Duration::from_secs(5));
    let summary = run_blocking(cfg).expect("lab run");
    assert_eq!(summary.failures, 0, "5 s detection timeout: no resets");
    let d = doctor(tmp.path());
    assert_eq!(d.verdict, "inconclusive", "{}", ranking(&d));
    // The config line with the 5 s value is read and speaks against the sniffing cause.
    if let Some(f) = d
        .findings
        .iter()
        .find(|f| f.cause == "protocol-sniffing-timeout")
    {
        assert!(
            f.items
                .iter()
                .any(|i| i.signal == "config.detection_timeout_long" && i.fired),
            "the 5 s ConfigMap counts against sniffing"
        );
    }
}

#[test]
fn a_mesh_tcp_fallback_times_out_without_failures_and_names_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = LabConfig::new(Scenario::SniffingTimeout, tmp.path());
    cfg.fallback = meshdoctor_lab::Fallback::MeshTcp;
    let summary = run_blocking(cfg).expect("lab run");
    assert_eq!(
        summary.failures, 0,
        "mesh-tcp fallback keeps mTLS: no resets"
    );
    let d = doctor(tmp.path());
    assert_eq!(d.verdict, "inconclusive", "{}", ranking(&d));
}
