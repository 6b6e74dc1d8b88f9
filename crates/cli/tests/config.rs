//! `meshdoctor config` end to end on the fixtures of `testdata/config/`.

use assert_cmd::Command;

fn meshdoctor() -> Command {
    let mut cmd = Command::cargo_bin("meshdoctor").unwrap();
    // Paths in the output are relative to the workspace root.
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    cmd
}

const SEED: [&str; 3] = [
    "testdata/config/seed-1.6.8/istio-configmap.yaml",
    "testdata/config/seed-1.6.8/shop.yaml",
    "testdata/config/seed-1.6.8/istiod.json",
];

#[test]
fn json_contract_on_the_seed_install() {
    let out = meshdoctor()
        .arg("config")
        .args(SEED)
        .args(["--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    // The contract fields, with their types.
    for row in doc["effective"].as_array().unwrap() {
        assert!(row["service"].is_string() && row["namespace"].is_string());
        assert!(row["port"].is_u64() && row["protocol"].is_string());
        assert!(row["detection_timeout_ms"].is_u64() || row["detection_timeout_ms"].is_null());
        let mode = row["mtls_mode"].as_str().unwrap();
        assert!(["STRICT", "PERMISSIVE", "DISABLE", "UNSET"].contains(&mode));
    }
    for f in doc["findings"].as_array().unwrap() {
        assert!(f["id"].is_string() && f["file"].is_string() && f["line"].is_u64());
        assert!(f["summary"].is_string());
    }
    insta::assert_json_snapshot!(doc);
}

#[test]
fn text_table_on_the_seed_install() {
    let out = meshdoctor().arg("config").args(SEED).assert().success();
    insta::assert_snapshot!(String::from_utf8_lossy(&out.get_output().stdout));
}

#[test]
fn verify_step_after_the_fix_shows_5s() {
    let out = meshdoctor()
        .arg("config")
        .args([
            "testdata/config/seed-fixed/istio-configmap.yaml",
            "testdata/config/seed-1.6.8/shop.yaml",
            "testdata/config/seed-1.6.8/istiod.json",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let orders = doc["effective"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "orders")
        .unwrap();
    assert_eq!(orders["detection_timeout_ms"], 5000);
    assert!(
        !doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "protocol-sniffing-timeout")
    );
}

#[test]
fn reads_stdin_and_reports_missing_paths() {
    let mesh = std::fs::read("testdata/config/forms/mesh.yaml")
        .or_else(|_| std::fs::read("../../testdata/config/forms/mesh.yaml"))
        .unwrap();
    let out = meshdoctor()
        .args(["config", "-", "--format", "json"])
        .write_stdin(mesh)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["findings"][0]["id"], "registry-only-blackhole");
    assert_eq!(doc["findings"][0]["file"], "-");
    assert_eq!(doc["findings"][0]["line"], 8);

    meshdoctor()
        .args(["config", "testdata/config/does-not-exist"])
        .assert()
        .code(2);
}
