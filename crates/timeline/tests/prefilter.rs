//! The prefilter contract: whenever a signature matches a parsed record, the record's raw
//! text contains one of the signature's literals. A reader that skips records without them
//! (issue 7) then counts exactly what a full parse counts.

use meshdoctor_logs::dispatch::parse_record;
use meshdoctor_model::{Event, Timestamp};
use meshdoctor_timeline::Signature;
use proptest::prelude::*;

/// Fragments of error texts in many languages and cases, with and without reset phrases.
const FRAGMENTS: &[&str] = &[
    "java.net.SocketException: Connection reset",
    "Connection reset by peer",
    "connection reset by peer",
    "CONNECTION RESET",
    "Connection Reset",
    "read ECONNRESET",
    "socket hang up",
    "ConnectionResetError: [Errno 104]",
    "An existing connection was forcibly closed by the remote host",
    "The connection was reset",
    "net::ERR_CONNECTION_RESET",
    "Connection refused",
    "Read timed out",
    "Broken pipe",
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
    "javax.net.ssl.SSLHandshakeException: Remote host terminated the handshake",
    "x509: certificate signed by unknown authority",
    "PKIX path building failed",
    "ssl.SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number",
    "remote error: tls: handshake failure",
    "Retrying after I/O error",
    "all good",
];

fn json_escape(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn app_line(level: &str, message: &str, stack: Option<&str>) -> String {
    let mut line = format!(
        "{{\"@timestamp\":\"2020-10-19T10:00:00.000+00:00\",\"level\":\"{level}\",\"logger_name\":\"com.acme.Client\",\"message\":{}",
        json_escape(message)
    );
    if let Some(st) = stack {
        line.push_str(&format!(",\"stack_trace\":{}", json_escape(st)));
    }
    line.push_str(",\"kubernetes\":{\"container_name\":\"checkout\"}}");
    line
}

fn access_line(code: u16, flags: &str, details: &str, cluster: &str) -> String {
    format!(
        "[2020-10-19T10:00:00.000Z] \"GET /api HTTP/1.1\" {code} {flags} {details} - \"-\" 0 95 16 - \"-\" \"Java/11.0.9\" \"id-1\" \"payments:8080\" \"10.0.0.2:8080\" {cluster} 10.0.0.1:5000 10.96.0.2:8080 10.0.0.1:6000 - default"
    )
}

fn check(raw: &str, signatures: &[Signature]) -> Result<(), TestCaseError> {
    let Ok(parsed) = parse_record(raw, None) else {
        return Ok(());
    };
    let event = Event {
        line: 1,
        line_count: 1,
        time: parsed.time.or(Some(Timestamp(0))),
        collector_time: None,
        origin: parsed.origin,
        payload: parsed.payload,
    };
    for sig in signatures {
        if sig.matches(&event) {
            let pf = sig.prefilter();
            prop_assert!(
                pf.as_ref().is_none_or(|p| p.admits(raw)),
                "{} matched but its prefilter refuses:\n{raw}",
                sig.name()
            );
        }
    }
    Ok(())
}

fn signatures() -> Vec<Signature> {
    [
        "connection-reset",
        "reset-before-headers",
        "tls-handshake-error",
        "passthrough",
        "status:503",
        "status:200",
        "flag:UC",
        "flag:URX",
    ]
    .iter()
    .filter_map(|s| Signature::parse(s).ok())
    .collect()
}

proptest! {
    #[test]
    fn app_records(
        level in prop::sample::select(vec!["ERROR", "WARN", "INFO", "error", "FATAL"]),
        parts in prop::collection::vec(prop::sample::select(FRAGMENTS.to_vec()), 1..4),
        stack_parts in prop::option::of(prop::collection::vec(prop::sample::select(FRAGMENTS.to_vec()), 1..3)),
    ) {
        let message = parts.join("; ");
        let stack = stack_parts.map(|p| {
            p.iter().map(|f| format!("{f}\n\tat com.acme.X.y(X.java:1)")).collect::<Vec<_>>().join("\nCaused by: ")
        });
        check(&app_line(level, &message, stack.as_deref()), &signatures())?;
    }

    #[test]
    fn access_rows(
        code in prop::sample::select(vec![0u16, 200, 503, 504]),
        flags in prop::sample::select(vec!["-", "UC", "UF", "UF,URX", "URX", "UH", "DC", "UO"]),
        details in prop::sample::select(vec![
            "via_upstream",
            "upstream_reset_before_response_started{connection_termination}",
            "upstream_reset_after_response_started{connection_termination}",
            "no_healthy_upstream",
        ]),
        cluster in prop::sample::select(vec![
            "outbound|8080||payments.payments.svc.cluster.local",
            "inbound|8080||",
            "PassthroughCluster",
        ]),
    ) {
        check(&access_line(code, flags, details, cluster), &signatures())?;
    }
}

fn parse(raw: &str) -> Event<'_> {
    let parsed = parse_record(raw, None).expect("the line parses");
    Event {
        line: 1,
        line_count: 1,
        time: parsed.time,
        collector_time: None,
        origin: parsed.origin,
        payload: parsed.payload,
    }
}

/// The generated records do reach the predicates: known matches match.
#[test]
fn known_records_match() {
    let matches =
        |sig: &str, raw: &str| Signature::parse(sig).is_ok_and(|s| s.matches(&parse(raw)));
    let reset = app_line(
        "ERROR",
        "Call failed",
        Some("java.net.SocketException: Connection reset\n\tat com.acme.X.y(X.java:1)"),
    );
    assert!(matches("connection-reset", &reset));
    assert!(!matches(
        "connection-reset",
        &app_line("WARN", "Retrying after Connection reset", None)
    ));
    assert!(matches(
        "tls-handshake-error",
        &app_line("ERROR", "remote error: tls: handshake failure", None)
    ));
    let uc = access_line(
        503,
        "UC",
        "upstream_reset_before_response_started{connection_termination}",
        "outbound|8080||payments.payments.svc.cluster.local",
    );
    assert!(matches("reset-before-headers", &uc));
    assert!(matches("status:503", &uc));
    assert!(matches("flag:UC", &uc));
    assert!(matches(
        "passthrough",
        &access_line(200, "-", "via_upstream", "PassthroughCluster")
    ));
}
