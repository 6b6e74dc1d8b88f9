//! End-to-end runs of every lab scenario on loopback: failure counts against the ground truth
//! and the shapes of the log lines the doctor will read.

use std::path::Path;
use std::time::Duration;

use meshdoctor_lab::{
    AccessFormat, CloseKind, Fallback, LabConfig, LabSummary, Scenario, StrictReject, run_blocking,
};

fn run(cfg: LabConfig) -> LabSummary {
    run_blocking(cfg).expect("lab run")
}

/// Text of `<out>/default/<app>-*/<container>.log`.
fn log(out: &Path, app: &str, container: &str) -> String {
    let dir = out.join("default");
    for e in std::fs::read_dir(&dir).expect("default/") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if name.starts_with(&format!("{app}-")) && name.len() > app.len() + 10 {
            return std::fs::read_to_string(p.join(format!("{container}.log"))).expect("log file");
        }
    }
    panic!("no pod for {app}");
}

/// Envoy 1.6 lines split on tabs: (level, logger, location, message after the id prefix).
fn envoy16_lines(text: &str) -> Vec<(String, String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (_ts, lvl, logger, rest) = (f.next()?, f.next()?, f.next()?, f.next()?);
            let logger = logger.strip_prefix("envoy ")?;
            let rest = rest.strip_prefix("[external/envoy/")?;
            let (loc, msg) = rest.split_once("] ")?;
            Some((
                lvl.to_string(),
                logger.to_string(),
                loc.to_string(),
                msg.to_string(),
            ))
        })
        .collect()
}

fn has_conn_line(lines: &[(String, String, String, String)], logger: &str, text: &str) -> bool {
    lines.iter().any(|(_, lg, _, m)| {
        lg == logger
            && m.strip_prefix("[C")
                .and_then(|r| r.split_once("] "))
                .is_some_and(|(id, rest)| id.bytes().all(|b| b.is_ascii_digit()) && rest == text)
    })
}

#[test]
fn sniffing_timeout_fails_at_the_rate_the_delay_distribution_predicts() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::SniffingTimeout, out.path());
    cfg.requests = Some(200);
    cfg.seed = 42;
    let s = run(cfg);
    assert_eq!(s.requests, 200);
    let p = s.expected_failure_rate.unwrap();
    assert!((p - 0.225).abs() < 1e-9);
    let n = s.requests as f64;
    let sd = (n * p * (1.0 - p)).sqrt();
    assert!(
        ((s.failures as f64) - n * p).abs() <= 4.0 * sd,
        "failures {} vs expected {}",
        s.failures,
        n * p
    );
    // Per connection: pauses well past the timeout fail, pauses well under it succeed. A
    // starved sidecar can fire its timer late (as a real one can), so allow a couple of
    // exceptions on a loaded machine.
    let mut exceptions = 0;
    for o in &s.outcomes {
        let d = o.delay_ms.unwrap();
        if (d > 160.0 && !o.failed) || (d < 80.0 && o.failed) {
            exceptions += 1;
        }
        if o.failed {
            assert_eq!(o.error_class.as_deref(), Some("reset"));
            assert_eq!(
                o.os_error.as_deref(),
                Some("Connection reset by peer (os error 104)")
            );
            assert_eq!(
                o.java_error.as_deref(),
                Some("java.net.SocketException: Connection reset")
            );
        }
    }
    assert!(
        exceptions <= 3,
        "{exceptions} connections disagree with their pause"
    );

    let a = log(out.path(), "service-a", "istio-proxy");
    let la = envoy16_lines(&a);
    for (logger, loc_prefix, msg) in [
        (
            "conn_handler",
            "source/server/connection_handler_impl.cc:",
            "listener filter times out after 100 ms",
        ),
        (
            "conn_handler",
            "source/server/connection_handler_impl.cc:",
            "fallback to default listener filter",
        ),
        (
            "filter",
            "source/extensions/filters/listener/http_inspector/http_inspector.cc:37",
            "http inspector: new connection accepted",
        ),
        (
            "filter",
            "source/extensions/filters/listener/tls_inspector/tls_inspector.cc:78",
            "tls inspector: new connection accepted",
        ),
    ] {
        assert!(
            la.iter().any(|(lvl, lg, loc, m)| lvl == "debug"
                && lg == logger
                && loc.starts_with(loc_prefix)
                && m == msg),
            "missing {msg}"
        );
    }
    assert!(has_conn_line(
        &la,
        "filter",
        "Creating connection to cluster PassthroughCluster"
    ));
    let pass_rows: Vec<&str> = a
        .lines()
        .filter(|l| l.starts_with('[') && l.contains(" PassthroughCluster "))
        .collect();
    // Every failed request went out as plaintext through PassthroughCluster.
    assert!(
        pass_rows.len() >= s.failures,
        "{} rows, {} failures",
        pass_rows.len(),
        s.failures
    );
    let row = pass_rows.first().expect("a passthrough row");
    assert!(row.contains("] \"- - -\" 0 - \"-\" \"-\" "), "{row}");
    assert!(row.ends_with(" - -"), "{row}");
    assert!(a.lines().any(|l| l.contains("\" 200 - \"-\" \"-\" ")
        && l.contains(" outbound|80||service-b.default.svc.cluster.local ")));

    let b =
        log(out.path(), "service-b", "istio-proxy") + &log(out.path(), "service-c", "istio-proxy");
    let lb = envoy16_lines(&b);
    assert!(has_conn_line(
        &lb,
        "connection",
        "TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST"
    ));
    assert!(has_conn_line(&lb, "connection", "handshake error: 1"));
    assert!(has_conn_line(&lb, "connection", "handshake complete"));
    assert!(lb.iter().any(|(_, lg, _, m)| lg == "filter"
        && (m == "tls:onServerName(), requestedServerName: outbound_.80_._.service-b.default.svc.cluster.local"
            || m == "tls:onServerName(), requestedServerName: outbound_.80_._.service-c.default.svc.cluster.local")));

    // App log: logstash JSON, one object per line, with the seed's fields.
    let app = log(out.path(), "service-a", "service-a");
    let errors: Vec<serde_json::Value> = app
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .filter(|v| v["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), s.failures);
    let e = errors.first().expect("an error line");
    for k in [
        "timestamp",
        "level",
        "logger_name",
        "message",
        "stack_trace",
        "thread_name",
        "requestId",
        "x-correlation-id",
    ] {
        assert!(e.get(k).is_some(), "missing {k}");
    }
    let st = e["stack_trace"].as_str().unwrap();
    assert_eq!(
        st.lines().rfind(|l| l.starts_with("Caused by: ")),
        Some("Caused by: java.net.SocketException: Connection reset")
    );

    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("truth.json")).unwrap())
            .unwrap();
    assert_eq!(truth["cause"], "protocol-sniffing-timeout");
    assert_eq!(truth["requests"], 200);
    assert_eq!(truth["failures"], s.failures);
    let mesh = std::fs::read_to_string(out.path().join("config/istio-configmap.yaml")).unwrap();
    assert!(mesh.contains("\n    protocolDetectionTimeout: 100ms\n"));
    let pa = std::fs::read_to_string(out.path().join("config/peerauthentication.yaml")).unwrap();
    assert!(pa.contains("mode: STRICT"));
}

#[test]
fn sniffing_timeout_fixed_by_a_5s_timeout() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::SniffingTimeout, out.path());
    cfg.protocol_detection_timeout = Some(Duration::from_secs(5));
    cfg.requests = Some(120);
    let s = run(cfg);
    assert_eq!(s.failures, 0);
    assert_eq!(s.expected_failure_rate, Some(0.0));
    assert!(
        s.outcomes.iter().any(|o| o.delay_ms.unwrap_or(0.0) > 100.0),
        "some pauses must exceed the old timeout"
    );
    let a = log(out.path(), "service-a", "istio-proxy");
    assert!(!a.contains("PassthroughCluster"));
    let mesh = std::fs::read_to_string(out.path().join("config/istio-configmap.yaml")).unwrap();
    assert!(mesh.contains("protocolDetectionTimeout: 5s"));
}

#[test]
fn sniffing_timeout_fixed_by_mesh_tcp_fallback() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::SniffingTimeout, out.path());
    cfg.fallback = Fallback::MeshTcp;
    cfg.requests = Some(120);
    let s = run(cfg);
    assert_eq!(s.failures, 0);
    assert!(s.connections_delayed_past_timeout > 0);
    let a = log(out.path(), "service-a", "istio-proxy");
    let la = envoy16_lines(&a);
    // The timeouts still happen, but the fallback stays on mTLS to the service's cluster.
    assert!(
        la.iter()
            .any(|(_, _, _, m)| m == "listener filter times out after 100 ms")
    );
    assert!(
        has_conn_line(
            &la,
            "filter",
            "Creating connection to cluster outbound|80||service-b.default.svc.cluster.local"
        ) || has_conn_line(
            &la,
            "filter",
            "Creating connection to cluster outbound|80||service-c.default.svc.cluster.local"
        )
    );
    assert!(!a.contains("PassthroughCluster"));
}

#[test]
fn strict_rejects_a_plaintext_client_with_a_real_rst() {
    let out = tempfile::tempdir().unwrap();
    let s = run(LabConfig::new(Scenario::StrictPlaintextClient, out.path()));
    let legacy: Vec<_> = s
        .outcomes
        .iter()
        .filter(|o| o.service == "service-b" && o.failed)
        .collect();
    assert_eq!(s.failures, 30);
    assert_eq!(legacy.len(), 30);
    for o in legacy {
        // The kernel's RST reached the client: ECONNRESET, not EOF.
        assert_eq!(
            o.os_error.as_deref(),
            Some("Connection reset by peer (os error 104)")
        );
    }
    let b = log(out.path(), "service-b", "istio-proxy");
    let lb = envoy16_lines(&b);
    assert!(has_conn_line(
        &lb,
        "connection",
        "TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST"
    ));
    assert!(has_conn_line(&lb, "connection", "closing socket: 0"));
    let legacy_log = log(out.path(), "legacy-client", "legacy-client");
    assert!(legacy_log.contains("Caused by: java.net.SocketException: Connection reset\\n"));
    assert!(!out.path().join("default").read_dir().unwrap().any(|e| {
        let p = e.unwrap().path();
        p.to_string_lossy().contains("legacy-client") && p.join("istio-proxy.log").exists()
    }));
}

#[test]
fn strict_with_fin_close_gives_eof_not_reset() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::StrictPlaintextClient, out.path());
    cfg.reject_close = CloseKind::Fin;
    cfg.requests = Some(8);
    let s = run(cfg);
    assert_eq!(s.failures, 4);
    assert!(
        s.outcomes
            .iter()
            .filter(|o| o.failed)
            .all(|o| o.error_class.as_deref() == Some("eof")),
        "{:?}",
        s.failures_by_class
    );
}

#[test]
fn strict_newer_istio_says_no_matching_filter_chain() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::StrictPlaintextClient, out.path());
    cfg.strict_reject = StrictReject::NoFilterChain;
    cfg.envoy_layout = meshdoctor_lab::EnvoyLayout::Istio122;
    cfg.access_format = AccessFormat::Istio19;
    cfg.requests = Some(10);
    let s = run(cfg);
    assert_eq!(s.failures, 5);
    let b = log(out.path(), "service-b", "istio-proxy");
    let line = b
        .lines()
        .find(|l| l.contains("no matching filter chain found"))
        .expect("NR debug line");
    let f: Vec<&str> = line.split('\t').collect();
    assert_eq!(f.get(1), Some(&"debug"));
    assert!(
        f.get(2)
            .is_some_and(|x| x.starts_with("envoy conn_handler external/envoy/source/"))
    );
    assert!(
        f.get(3)
            .is_some_and(|m| m.starts_with("closing connection from 127.")
                && m.ends_with(": no matching filter chain found"))
    );
    assert!(f.get(4).is_some_and(|t| t.starts_with("thread=")));
    assert!(
        b.lines()
            .any(|l| l.contains("\"- - -\" 0 NR filter_chain_not_found - \"-\" 0 0 "))
    );
    assert!(b.contains("[Tags: \"ConnectionId\":\""));
}

#[test]
fn idle_keepalive_race_gives_503_uc() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::IdleKeepaliveRace, out.path());
    cfg.access_format = AccessFormat::Istio19;
    let s = run(cfg);
    assert!(s.failures > 0, "the race should trigger at least once");
    assert!(
        s.outcomes
            .iter()
            .filter(|o| o.failed)
            .all(|o| o.status == 503)
    );
    let b = log(out.path(), "service-b", "istio-proxy");
    let uc: Vec<&str> = b.lines().filter(|l| l.contains(" 503 UC ")).collect();
    assert_eq!(uc.len(), s.failures);
    let row = uc.first().unwrap();
    assert!(
        row.contains(
            "\" 503 UC upstream_reset_before_response_started{connection_termination} - \"-\" 0 95 "
        ),
        "{row}"
    );
    assert!(row.contains(" inbound|80|http|service-b.default.svc.cluster.local "));
    let lb = envoy16_lines(&b);
    assert!(has_conn_line(
        &lb,
        "client",
        "disconnect. resetting 1 pending requests"
    ));
    let app = log(out.path(), "service-a", "service-a");
    assert!(app.contains("upstream connect error or disconnect/reset before headers. reset reason: connection termination"));
}

#[test]
fn app_before_sidecar_is_refused_only_at_start() {
    let out = tempfile::tempdir().unwrap();
    let s = run(LabConfig::new(Scenario::AppBeforeSidecar, out.path()));
    assert!(s.failures > 0);
    assert!(s.failures < s.requests);
    // Refusals only until the sidecar listens; after the first success, nothing fails (the
    // absolute time depends on machine load, the order does not).
    let first_ok = s
        .outcomes
        .iter()
        .filter(|o| !o.failed)
        .map(|o| o.at_ms)
        .min()
        .unwrap();
    for o in s.outcomes.iter().filter(|o| o.failed) {
        assert_eq!(o.error_class.as_deref(), Some("refused"));
        assert!(
            o.at_ms <= first_ok + 20,
            "{o:?} after first success at {first_ok} ms"
        );
    }
    let a = log(out.path(), "service-a", "istio-proxy");
    assert!(a.contains("\twarn\tEnvoy proxy is NOT ready: "));
    assert!(a.contains("\tinfo\tEnvoy proxy is ready"));
    let app = log(out.path(), "service-a", "service-a");
    assert!(
        app.contains(
            "Caused by: java.net.ConnectException: Connection refused (Connection refused)"
        )
    );
}

#[test]
fn server_first_protocol_hangs_without_timeout_and_works_with_one() {
    let out = tempfile::tempdir().unwrap();
    let s = run(LabConfig::new(Scenario::ServerFirstProtocol, out.path()));
    assert_eq!(s.failures, s.requests);
    assert!(
        s.outcomes
            .iter()
            .all(|o| o.error_class.as_deref() == Some("timeout"))
    );
    let svc = std::fs::read_to_string(out.path().join("config/services.yaml")).unwrap();
    assert!(svc.contains("- name: db\n    port: 3306\n"));
    let mesh = std::fs::read_to_string(out.path().join("config/istio-configmap.yaml")).unwrap();
    assert!(mesh.contains("protocolDetectionTimeout: 0s"));

    let out2 = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::ServerFirstProtocol, out2.path());
    cfg.protocol_detection_timeout = Some(Duration::from_millis(100));
    let s2 = run(cfg);
    assert_eq!(s2.failures, 0);
    let a = log(out2.path(), "service-a", "istio-proxy");
    assert!(a.contains(
        "Creating connection to cluster outbound|3306||service-c.default.svc.cluster.local"
    ));
}

#[test]
fn permissive_accepts_the_plaintext_client() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::StrictPlaintextClient, out.path());
    cfg.mtls = meshdoctor_lab::MtlsMode::Permissive;
    cfg.requests = Some(10);
    let s = run(cfg);
    assert_eq!(s.failures, 0);
    let pa = std::fs::read_to_string(out.path().join("config/peerauthentication.yaml")).unwrap();
    assert!(pa.contains("mode: PERMISSIVE"));
}

#[test]
fn sniffing_with_fin_toward_the_app_gives_unexpected_eof() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(Scenario::SniffingTimeout, out.path());
    cfg.downstream_close_after_reset = CloseKind::Fin;
    cfg.requests = Some(60);
    cfg.seed = 3;
    let s = run(cfg);
    assert!(s.failures > 0);
    for o in s.outcomes.iter().filter(|o| o.failed) {
        assert_eq!(o.error_class.as_deref(), Some("eof"), "{o:?}");
        assert_eq!(
            o.java_error.as_deref(),
            Some("java.net.SocketException: Unexpected end of file from server")
        );
    }
}
