//! The `timeline` subcommand through the binary: answers on a generated corpus equal its
//! ground truth, text/CSV/SVG/PNG outputs are well-formed, and bad arguments are usage
//! errors.

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn meshdoctor() -> Command {
    Command::cargo_bin("meshdoctor").expect("the meshdoctor binary is built")
}

/// `$MESHDOCTOR_GENLOGS`, else a copy in the workspace's `bench/`, else the shared bench
/// generator next to the workspace.
fn generator() -> PathBuf {
    if let Some(p) = std::env::var_os("MESHDOCTOR_GENLOGS") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let vendored = root.join("bench/genlogs.py");
    if vendored.exists() {
        return vendored;
    }
    root.join("../shared/bench/genlogs.py")
}

/// One 8 MiB corpus for every test in this file (generated once; about a second).
fn corpus() -> &'static (tempfile::TempDir, Value) {
    static CORPUS: OnceLock<(tempfile::TempDir, Value)> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("python3")
            .arg(generator())
            .arg(dir.path())
            .args(["--size-mb", "8", "--seed", "5", "--jobs", "2"])
            .status()
            .expect("python3 runs genlogs.py");
        assert!(status.success());
        let truth = std::fs::read_to_string(dir.path().join("ground_truth.json")).expect("truth");
        let truth = serde_json::from_str(&truth).expect("truth is JSON");
        (dir, truth)
    })
}

fn log_dirs(dir: &Path) -> Vec<PathBuf> {
    ["app", "envoy-access", "envoy-debug"]
        .iter()
        .map(|d| dir.join(d))
        .collect()
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
fn resets_per_utc_day_per_service_equal_ground_truth() {
    let (dir, truth) = corpus();
    let doc = json_of(
        meshdoctor()
            .arg("timeline")
            .args(log_dirs(dir.path()))
            .args(["--signature", "connection-reset", "--bucket", "1d"])
            .args(["--by", "service", "--format", "json"]),
    );
    assert_eq!(doc["signature"], "connection-reset");
    assert_eq!(doc["bucket"], "1d");
    let mut got: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for row in doc["rows"].as_array().expect("rows") {
        let day = row["start"].as_str().expect("start")[..10].to_string();
        let service = row["group"]["service"]
            .as_str()
            .expect("service")
            .to_string();
        *got.entry(day).or_default().entry(service).or_default() +=
            row["count"].as_u64().expect("count");
        assert!(row["requests"].is_null());
    }
    let want: BTreeMap<String, BTreeMap<String, u64>> =
        serde_json::from_value(truth["app"]["reset_by_day_service"].clone()).expect("table");
    assert_eq!(got, want);
    assert_eq!(doc["total"], truth["app"]["reset_exceptions_total"]);
    assert_eq!(doc["untimed"], 0);
    assert_eq!(doc["unknown_service"], 0);
}

#[test]
fn status_503_per_flag_equal_ground_truth() {
    let (dir, truth) = corpus();
    let doc = json_of(
        meshdoctor()
            .arg("timeline")
            .args(log_dirs(dir.path()))
            .args(["-s", "status:503", "--by", "flag", "--format", "json"]),
    );
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for row in doc["rows"].as_array().expect("rows") {
        *got.entry(row["group"]["flag"].as_str().expect("flag").to_string())
            .or_default() += row["count"].as_u64().expect("count");
    }
    let want: BTreeMap<String, u64> =
        serde_json::from_value(truth["envoy_access"]["503_by_flag"].clone()).expect("flags");
    assert_eq!(got, want);
}

#[test]
fn text_csv_svg_and_rates() {
    let (dir, _) = corpus();
    let out = tempfile::tempdir().expect("tempdir");
    let svg = out.path().join("chart.svg");
    let text = stdout_of(
        meshdoctor()
            .arg("timeline")
            .arg(dir.path().join("envoy-access"))
            .args(["-s", "status:503", "--rate", "--svg"])
            .arg(&svg),
    );
    assert!(
        text.starts_with("status:503 per 1d by service (UTC)"),
        "{text}"
    );
    assert!(text.contains("per 1k"), "{text}");
    assert!(text.contains('█'), "{text}");
    let chart = std::fs::read_to_string(&svg).expect("svg written");
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert!(chart.contains("2020-10-19"));

    let csv = stdout_of(
        meshdoctor()
            .arg("timeline")
            .arg(dir.path().join("envoy-access"))
            .args([
                "-s",
                "flag:UC",
                "--by",
                "service,flag",
                "--format",
                "csv",
                "--rate",
            ]),
    );
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("start,service,flag,count,requests"));
    let mut rows = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[2], "UC");
        let count: u64 = fields[3].parse().expect("count");
        let requests: u64 = fields[4].parse().expect("requests");
        assert!(count <= requests, "{line}");
        rows += 1;
    }
    assert!(rows > 0);
}

#[test]
fn png_is_written_or_explained() {
    let (dir, _) = corpus();
    let out = tempfile::tempdir().expect("tempdir");
    let png = out.path().join("chart.png");
    let assert = meshdoctor()
        .arg("timeline")
        .arg(dir.path().join("envoy-access"))
        .args(["-s", "status:503", "--png"])
        .arg(&png)
        .assert();
    let has_rsvg = std::process::Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_rsvg {
        assert.success();
        let bytes = std::fs::read(&png).expect("png written");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        assert_eq!((width, height), (960, 440));
        assert!(bytes.len() > 1000);
    } else {
        assert
            .failure()
            .stderr(predicates::str::contains("rsvg-convert"));
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    let (dir, _) = corpus();
    for (flag, value, says) in [
        ("--signature", "cause:idle-timeout", "diagnose"),
        ("--signature", "nonsense", "meshdoctor signatures"),
        ("--bucket", "3x", "bucket"),
        ("--by", "colour", "cannot group by"),
        ("--tz", "Mars/Olympus", "time zone"),
    ] {
        meshdoctor()
            .arg("timeline")
            .arg(dir.path().join("envoy-access"))
            .args([flag, value])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
}

#[test]
fn a_splunk_list_view_paste_counts_the_same_from_stdin_and_from_a_file() {
    // Two events pasted from Splunk's list view: each `{ [-]` block up to its `}` is one
    // record, whose `key: value` lines would each look like a record of their own to a reader
    // that jumped straight to the literal.
    let paste = "{ [-]\nlevel: ERROR\nmessage: call failed\nstack_trace: java.net.SocketException: Connection reset\nat java.net.SocketInputStream.read(SocketInputStream.java:186)\ntimestamp: 2020-10-23T00:26:14.871Z\n}\n\
                 { [-]\nlevel: ERROR\nmessage: call failed again\nstack_trace: java.net.SocketException: Connection reset\ntimestamp: 2020-10-23T00:27:14.871Z\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splunk-paste.txt");
    std::fs::write(&path, paste).unwrap();
    let args = [
        "--signature",
        "connection-reset",
        "--bucket",
        "1d",
        "--service",
        "orders",
        "--format",
        "json",
    ];
    let from_file = json_of(meshdoctor().arg("timeline").arg(&path).args(args));
    let from_stdin = json_of(
        meshdoctor()
            .args(["timeline", "-"])
            .args(args)
            .write_stdin(paste),
    );
    assert_eq!(from_file["total"], 2, "{from_file}");
    assert_eq!(from_stdin["total"], from_file["total"], "{from_stdin}");
}
