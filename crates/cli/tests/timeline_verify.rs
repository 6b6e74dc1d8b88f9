//! The `verify` and `signatures` subcommands through the binary: `verify` calls a removed
//! failure "fixed" (with --before/--after and with --change-at, chart included), and
//! `signatures` lists every name.

use assert_cmd::Command;
use serde_json::Value;

fn meshdoctor() -> Command {
    Command::cargo_bin("meshdoctor").expect("the meshdoctor binary is built")
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("stdout is JSON")
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn signatures_lists_every_name() {
    let text = stdout_of(meshdoctor().arg("signatures"));
    for name in [
        "connection-reset",
        "reset-before-headers",
        "tls-handshake-error",
        "passthrough",
        "status:NNN",
        "flag:XX",
        "cause:<id>",
        "regex:<pattern>",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let doc = json_of(meshdoctor().args(["signatures", "--format", "json"]));
    assert_eq!(doc.as_array().map(Vec::len), Some(8));
}

/// An access log of `checkout` calling `payments`: one request a minute for `hours` hours
/// from `start_hour` (UTC, 2020-10-22), every `fail_every`-th answered 503 UC.
fn access_log(start_hour: u32, hours: u32, fail_every: Option<u32>) -> String {
    let mut s = String::new();
    for i in 0..hours * 60 {
        let (h, m) = (start_hour + i / 60, i % 60);
        let failed = fail_every.is_some_and(|n| i % n == 0);
        let (code, flags, details) = if failed {
            (
                "503",
                "UC",
                "upstream_reset_before_response_started{connection_termination}",
            )
        } else {
            ("200", "-", "via_upstream")
        };
        s.push_str(&format!(
            "[2020-10-22T{h:02}:{m:02}:00.000Z] \"POST /api/v1/pay HTTP/1.1\" {code} {flags} {details} - \"-\" 10 20 5 4 \"-\" \"Java/11.0.9\" \"req-{i}\" \"payments:8080\" \"10.0.0.2:8080\" outbound|8080||payments.payments.svc.cluster.local 10.0.0.1:5000 10.96.0.2:8080 10.0.0.1:6000 - default\n"
        ));
    }
    s
}

#[test]
fn verify_calls_a_removed_failure_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = dir.path().join("before");
    let after = dir.path().join("after");
    std::fs::create_dir_all(&before).expect("mkdir");
    std::fs::create_dir_all(&after).expect("mkdir");
    // 8 h with one failure in 20 requests, then 8 h with none.
    std::fs::write(before.join("checkout.log"), access_log(0, 8, Some(20))).expect("write");
    std::fs::write(after.join("checkout.log"), access_log(8, 8, None)).expect("write");

    let doc = json_of(
        meshdoctor()
            .args([
                "verify",
                "--signature",
                "reset-before-headers",
                "--format",
                "json",
            ])
            .arg("--before")
            .arg(&before)
            .arg("--after")
            .arg(&after),
    );
    let pair = &doc["pairs"][0];
    assert_eq!(pair["service"], "checkout");
    assert_eq!(pair["peer"], "payments");
    assert_eq!(pair["before"], 24);
    assert_eq!(pair["after"], 0);
    assert_eq!(pair["exposure"], "requests");
    assert_eq!(pair["verdict"], "fixed");

    // The same with one input and --change-at, plus the chart with the change marked.
    let both = dir.path().join("checkout.log");
    let mut text = access_log(0, 8, Some(20));
    text.push_str(&access_log(8, 8, None));
    std::fs::write(&both, text).expect("write");
    let svg = dir.path().join("verify.svg");
    let out = stdout_of(
        meshdoctor()
            .arg("verify")
            .arg(&both)
            .args(["-s", "reset-before-headers"])
            .args(["--change-at", "2020-10-22T08:00:00Z", "--svg"])
            .arg(&svg),
    );
    assert!(out.contains("checkout -> payments"), "{out}");
    assert!(out.contains("fixed"), "{out}");
    let chart = std::fs::read_to_string(&svg).expect("svg");
    assert!(chart.contains(">change</text>"));
}

/// The bundled lab runs of the founding incident, before and after the 5 s fix: `verify`
/// calls it fixed, with the counts and traffic the lab's truth files record.
#[test]
fn verify_says_the_bundled_incident_was_fixed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let truth = |dir: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(root.join(dir).join("truth.json")).expect("truth.json"),
        )
        .expect("json")
    };
    let (before, after) = (truth("sniffing-timeout"), truth("sniffing-timeout-fixed"));
    let doc = json_of(
        meshdoctor()
            .args(["verify", "--format", "json", "--before"])
            .arg(root.join("sniffing-timeout"))
            .arg("--after")
            .arg(root.join("sniffing-timeout-fixed")),
    );
    let pair = &doc["pairs"][0];
    assert_eq!(pair["service"], "service-a");
    assert_eq!(pair["before"], before["failures"]);
    assert_eq!(pair["after"], after["failures"]);
    assert_eq!(pair["requests_before"], before["requests"]);
    assert_eq!(pair["verdict"], "fixed");
    assert!(pair["test"]["p_value"].as_f64().unwrap() < 0.001);
}
