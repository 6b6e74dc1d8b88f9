//! `meshdoctor collect` against a stand-in `kubectl` on PATH that serves recorded outputs
//! (`testdata/config/collect/`), then the bundle read back by `config`, `scan` and `diagnose` unchanged.

use assert_cmd::Command;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn collects_a_bundle_that_the_readers_use_unchanged() {
    let recorded = root().join("testdata/config/collect");
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("kubectl-calls.txt");
    let bundle = out.path().join("bundle");
    let path = format!(
        "{}:{}",
        recorded.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Command::cargo_bin("meshdoctor")
        .unwrap()
        .args(["collect", "--namespace", "shop", "--since", "2h", "--out"])
        .arg(&bundle)
        .env("PATH", &path)
        .env("KUBECTL_LOG", &log)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).to_string();
    assert!(stdout.contains("0 failed"), "{stdout}");

    // Exactly the documented commands, and never a secret.
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.to_ascii_lowercase().contains("secret"), "{calls}");
    let calls: Vec<String> = calls
        .lines()
        .map(|l| l.replace("--request-timeout=30s ", ""))
        .collect();
    insta::assert_debug_snapshot!(calls);

    let mut files: Vec<String> = walk(&bundle)
        .into_iter()
        .map(|p| p.strip_prefix(&bundle).unwrap().display().to_string())
        .collect();
    files.sort();
    insta::assert_debug_snapshot!(files);
    let orders =
        std::fs::read_to_string(bundle.join("shop/orders-5d8f9c7b6-abcde/orders.log")).unwrap();
    assert!(orders.starts_with("2020-10-23T00:26:14.871234567Z "));

    // `config` reads the bundle as collected.
    let json = Command::cargo_bin("meshdoctor")
        .unwrap()
        .args(["config", "--format", "json"])
        .arg(&bundle)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let row = &doc["effective"][0];
    assert_eq!(row["service"], "orders");
    assert_eq!(row["detection_timeout_ms"], 100);
    assert_eq!(row["mtls_mode"], "STRICT");
    assert_eq!(doc["istio_version"], "1.6.8");
    assert_eq!(doc["problems"].as_array().unwrap().len(), 0);

    // The log pipeline reads it too, with names from the bundle layout.
    Command::cargo_bin("meshdoctor")
        .unwrap()
        .args(["scan", "--format", "json"])
        .arg(&bundle)
        .assert()
        .success();

    // And `diagnose` takes the bundle as it is: every log is read, nothing is an I/O error
    // (exit 2), and the logs carry the workload names of the bundle layout.
    let out = Command::cargo_bin("meshdoctor")
        .unwrap()
        .args(["diagnose", "--format", "json"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = doc["inputs"].as_array().unwrap();
    assert!(
        inputs
            .iter()
            .any(|i| i["file"].as_str().unwrap().ends_with("orders.log")
                && i["lines"].as_u64() > Some(0))
    );
    // The app and sidecar logs are read whole (istio-init prints iptables rules, no log).
    for input in inputs
        .iter()
        .filter(|i| !i["file"].as_str().unwrap().ends_with("istio-init.log"))
    {
        assert_eq!(input["skipped"], 0, "{input:#?}");
    }
}

#[test]
fn a_failing_command_is_recorded_and_collection_goes_on() {
    let recorded = root().join("testdata/config/collect");
    let out = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        recorded.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Namespace `empty` is unknown to the stand-in: every namespaced call fails.
    Command::cargo_bin("meshdoctor")
        .unwrap()
        .args(["collect", "-n", "empty", "-q", "--out"])
        .arg(out.path())
        .env("PATH", &path)
        .assert()
        .success();
    let manifest = std::fs::read_to_string(out.path().join(".collect-manifest.txt")).unwrap();
    assert!(
        manifest.contains("failed\tempty/workloads.yaml"),
        "{manifest}"
    );
    assert!(
        manifest.contains("ok\tmesh/configmap-istio.yaml"),
        "{manifest}"
    );
    assert!(!out.path().join("empty/workloads.yaml").exists());
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
