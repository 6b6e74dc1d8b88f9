//! `meshdoctor scan` on a directory of mixed, partly corrupted inputs: it reports exactly
//! what it skipped and why, uses everything else, and exits 0.

use assert_cmd::Command;
use std::io::Write;

fn mixed_bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pod = root.join("shop/orders-5d8f9c7b6-x2x4z");
    std::fs::create_dir_all(&pod).unwrap();
    // A sidecar log: Istio 1.6 debug lines, an access row, a pilot-agent line, and junk.
    std::fs::write(
        pod.join("istio-proxy.log"),
        concat!(
            "2020-10-23T00:26:14.869776Z\tdebug\tenvoy filter\t[external/envoy/source/extensions/filters/listener/http_inspector/http_inspector.cc:37] http inspector: new connection accepted\n",
            "2020-10-23T00:26:14.869806Z\tdebug\tenvoy connection\t[external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:226] [C3656911] TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST\n",
            "[2020-10-23T00:26:14.870Z] \"- - -\" 0 - \"-\" \"-\" 0 0 1 - \"-\" \"-\" \"-\" \"-\" \"10.0.0.7:80\" PassthroughCluster 10.0.0.5:4242 10.0.0.7:80 10.0.0.5:4241 - -\n",
            "2020-10-23T00:26:15.000000Z\tinfo\tEnvoy proxy is ready\n",
            "this line is in no format at all\n",
        ),
    )
    .unwrap();
    // An app log: JSON lines with a stack trace, then a truncated JSON line and invalid UTF-8.
    let mut app = Vec::new();
    app.extend_from_slice(b"{\"timestamp\":\"2020-10-23T00:26:14.871Z\",\"level\":\"ERROR\",\"logger_name\":\"c.a.Handler\",\"message\":\"call failed\",\"stack_trace\":\"java.net.SocketException: Connection reset\\n\\tat java.base/java.net.SocketInputStream.read(Unknown Source)\\n\"}\n");
    app.extend_from_slice(
        b"{\"timestamp\":\"2020-10-23T00:26:15.000Z\",\"level\":\"INFO\",\"message\":\"ok\"}\n",
    );
    app.extend_from_slice(
        b"{\"timestamp\":\"2020-10-23T00:26:16.000Z\",\"level\":\"INFO\",\"mess\n",
    );
    app.extend_from_slice(b"\xff\xfe\xfd\xfc\xfb binary junk \xff\xff\xff\xff\xff\n");
    std::fs::write(pod.join("orders.log"), app).unwrap();
    // A line over the 1 MiB limit, an empty file, a gzip file and a config document.
    std::fs::write(
        root.join("huge.log"),
        format!(
            "{}\n2020-10-23T00:26:17.000000Z\tinfo\tafter the long line\n",
            "x".repeat(1_100_000)
        ),
    )
    .unwrap();
    std::fs::write(root.join("empty.log"), b"").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"2021-01-12T01:01:55.673439Z\tdebug\tenvoy connection\t[C23] connected\n")
        .unwrap();
    std::fs::write(root.join("rotated.log.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        root.join("mesh.yaml"),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n",
    )
    .unwrap();
    dir
}

#[test]
fn mixed_corrupted_inputs_are_reported_line_by_line() {
    let dir = mixed_bundle();
    let out = Command::cargo_bin("meshdoctor")
        .unwrap()
        .args(["scan", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Paths differ per run: keep the part below the temporary directory.
    let prefix = format!("{}/", dir.path().display());
    for list in ["inputs", "config_inputs"] {
        for input in report[list].as_array_mut().unwrap() {
            let file = input["file"].as_str().unwrap().replace(&prefix, "");
            input["file"] = file.into();
        }
    }
    insta::assert_json_snapshot!("scan_mixed_corrupted", report);

    let inputs = report["inputs"].as_array().unwrap();
    let by_name = |name: &str| {
        inputs
            .iter()
            .find(|i| i["file"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let app = by_name("shop/orders-5d8f9c7b6-x2x4z/orders.log");
    assert_eq!(app["events"], 2);
    assert_eq!(app["skipped"], 2);
    assert_eq!(app["skipped_examples"][0]["line"], 3);
    assert_eq!(app["skipped_examples"][0]["reason"], "invalid-json");
    assert_eq!(app["skipped_examples"][1]["line"], 4);
    let sidecar = by_name("shop/orders-5d8f9c7b6-x2x4z/istio-proxy.log");
    assert_eq!(sidecar["events"], 4);
    assert_eq!(sidecar["skipped_examples"][0]["line"], 5);
    assert_eq!(sidecar["workloads"][0], "orders");
    let huge = by_name("huge.log");
    assert_eq!(huge["skipped_examples"][0]["reason"], "too-long");
    assert_eq!(huge["events"], 1);
    assert_eq!(by_name("rotated.log.gz")["events"], 1);
    assert_eq!(by_name("empty.log")["kind"], "empty");
    assert_eq!(report["config_inputs"][0]["kind"], "yaml");
}

#[test]
fn text_output_names_file_and_line_of_skipped_lines() {
    let dir = mixed_bundle();
    let out = Command::cargo_bin("meshdoctor")
        .unwrap()
        .arg("scan")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("orders.log:3: invalid-json"), "{text}");
    assert!(
        text.contains("istio-proxy.log:5: unknown-format: this line is in no format at all"),
        "{text}"
    );
}
