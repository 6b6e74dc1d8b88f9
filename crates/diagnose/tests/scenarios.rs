//! Scenario runner: every `testdata/scenarios/<cause>/<case>/` with an `expect.json` is
//! diagnosed and checked against it (verdict, causes that must not be named, optional
//! minimum confidence). Layout and format are documented in `crates/diagnose/RULES.md`.
//! Set `MESHDOCTOR_SCENARIO=<substring>` to run only matching cases.

mod common;

use common::{case_inputs, scenario};
use meshdoctor_diagnose::{RuleSet, diagnose};
use meshdoctor_logs::RunOptions;
use std::path::PathBuf;

fn case_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(causes) = std::fs::read_dir(scenario("")) else {
        return out;
    };
    for cause in causes.filter_map(Result::ok) {
        let Ok(cases) = std::fs::read_dir(cause.path()) else {
            continue;
        };
        for case in cases.filter_map(Result::ok) {
            if case.path().join("expect.json").is_file() {
                out.push(case.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn scenarios_meet_their_expectations() {
    let rules = RuleSet::builtin().expect("built-in rules load");
    let filter = std::env::var("MESHDOCTOR_SCENARIO").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for dir in case_dirs() {
        let name = dir
            .strip_prefix(scenario(""))
            .unwrap_or(&dir)
            .display()
            .to_string();
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let expect: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expect.json")).expect("read expect.json"),
        )
        .expect("expect.json is JSON");
        let inputs = case_inputs(&dir);
        let d = diagnose(&inputs, &RunOptions::default(), &rules);
        ran += 1;
        let ranking: Vec<String> = d
            .findings
            .iter()
            .map(|f| format!("{} {:.2}", f.cause, f.confidence))
            .collect();
        eprintln!("{name}: verdict {} [{}]", d.verdict, ranking.join(", "));
        if let Some(want) = expect.get("verdict").and_then(|v| v.as_str())
            && d.verdict != want
        {
            failures.push(format!(
                "{name}: verdict {} (want {want}) [{}]",
                d.verdict,
                ranking.join(", ")
            ));
        }
        for bad in expect
            .get("must_not")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
        {
            if d.verdict == bad {
                failures.push(format!("{name}: named {bad}, which it must not"));
            }
        }
        if let Some(min) = expect
            .get("min_confidence")
            .and_then(serde_json::Value::as_f64)
            && d.verdict != "inconclusive"
            && d.confidence < min
        {
            failures.push(format!("{name}: confidence {:.2} < {min}", d.confidence));
        }
    }
    assert!(
        ran > 0 || filter.is_some(),
        "no scenario with expect.json found"
    );
    assert!(
        failures.is_empty(),
        "scenario failures:\n{}",
        failures.join("\n")
    );
}
