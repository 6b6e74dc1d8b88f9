//! Per-line cost of the hot parsers, on lines built from the documented layouts
//! (`../shared/knowledge/formats.md`): `cargo bench -p meshdoctor-logs --bench parsers`.
//!
//! Each benchmark parses one representative line; divan reports the time per line and,
//! through the byte counter, MB/s. These are measurements, not tests: nothing here asserts a
//! time, and no benchmark should be read as a target on its own (the end-to-end numbers are
//! in `bench/compare.sh`).

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use meshdoctor_logs::{access, app, dispatch, envoy, record, timestamp, wrapper};

fn main() {
    divan::main();
}

/// Istio 1.6: tab separated, the source location at the start of the message.
const ENVOY_16: &str = "2020-10-23T00:26:14.869776Z\tdebug\tenvoy connection\t[external/envoy/source/common/network/connection_impl.cc:200] [C3656911] closing socket: 0";

/// Istio 1.17+: the location after the logger name, a trailing `thread=`.
const ENVOY_117: &str = "2023-02-01T08:00:00.000001Z\tdebug\tenvoy connection external/envoy/source/common/network/connection_impl.cc:250\t[C23] closing socket: 0\tthread=21";

/// Istio 1.9+ default TEXT access-log row (22 tokens), a 503 UC.
const ACCESS_19: &str = "[2024-05-01T10:00:00.123Z] \"GET /api/orders/42 HTTP/1.1\" 503 UC upstream_reset_before_response_started{connection_termination} - \"-\" 0 95 3 - \"-\" \"okhttp/4.12.0\" \"0b6f3c1e-9d55-4f0e-a0c9-2a1f0d3b7e11\" \"orders:8080\" \"10.244.1.17:8080\" outbound|8080||orders.shop.svc.cluster.local 10.244.2.5:45678 10.96.12.34:8080 10.244.2.5:52110 - default";

/// The fields a logstash encoder and the cluster's collector put on every line.
const APP_HEAD: &str = r#"{"@timestamp":"2020-10-22T14:03:11.482+02:00","@version":"1","message":"#;
const APP_TAIL: &str = r#","logger_name":"com.acme.orders.client.PaymentsClient","thread_name":"http-nio-8080-exec-7","level":"#;
const APP_K8S: &str = r#","requestId":"a15ebb00-a491-9f4c-8c30-efdffdaa54e6","x-correlation-id":"5d1c7e0a-1f7b-4a43-9c9a-7e3b1d2f6a10","kubernetes":{"namespace_name":"shop","pod_name":"orders-7d9c8b6f5-x2k4q","container_name":"orders","host":"node-3","labels":{"app":"orders","version":"v1"}}}"#;

fn app_line_info() -> String {
    format!(
        r#"{APP_HEAD}"Order 8812 accepted for customer 1930"{APP_TAIL}"INFO","level_value":20000{APP_K8S}"#
    )
}

/// A RestTemplate chain whose root cause is `SocketException: Connection reset`, 30 frames,
/// as one JSON string (newlines and tabs escaped, the way logstash writes it).
fn app_line_stack() -> String {
    let mut stack = String::from(
        "org.springframework.web.client.ResourceAccessException: I/O error on POST request for \\\"http://payments:8080/api/v1/charge\\\": Connection reset; nested exception is java.net.SocketException: Connection reset",
    );
    for i in 0..24 {
        stack.push_str(&format!(
            "\\n\\tat org.springframework.web.servlet.FrameworkServlet.processRequest{i}(FrameworkServlet.java:{})",
            1000 + i
        ));
    }
    stack.push_str("\\nCaused by: java.net.SocketException: Connection reset");
    for frame in [
        "java.base/java.net.SocketInputStream.read(SocketInputStream.java:186)",
        "java.base/java.io.BufferedInputStream.fill(BufferedInputStream.java:252)",
        "org.apache.http.impl.io.SessionInputBufferImpl.fillBuffer(SessionInputBufferImpl.java:153)",
        "org.apache.http.impl.conn.DefaultHttpResponseParser.parseHead(DefaultHttpResponseParser.java:88)",
        "org.apache.http.impl.io.AbstractMessageParser.parse(AbstractMessageParser.java:259)",
        "... 62 common frames omitted",
    ] {
        stack.push_str("\\n\\tat ");
        stack.push_str(frame);
    }
    format!(
        r#"{APP_HEAD}"Request processing failed"{APP_TAIL}"ERROR","level_value":40000,"stack_trace":"{stack}"{APP_K8S}"#
    )
}

fn bytes(line: &str) -> BytesCount {
    BytesCount::of_str(line)
}

#[divan::bench]
fn envoy_text_16(b: Bencher) {
    b.counter(bytes(ENVOY_16))
        .bench(|| envoy::parse_text(black_box(ENVOY_16)));
}

#[divan::bench]
fn envoy_text_117(b: Bencher) {
    b.counter(bytes(ENVOY_117))
        .bench(|| envoy::parse_text(black_box(ENVOY_117)));
}

#[divan::bench]
fn access_text_19(b: Bencher) {
    b.counter(bytes(ACCESS_19))
        .bench(|| access::parse_text(black_box(ACCESS_19)));
}

/// Only the time, code and flags: what a `status:503` count needs after a prefilter.
#[divan::bench]
fn access_head_19(b: Bencher) {
    b.counter(bytes(ACCESS_19))
        .bench(|| access::parse_head(black_box(ACCESS_19)));
}

#[divan::bench]
fn app_json_info(b: Bencher) {
    let line = app_line_info();
    b.counter(bytes(&line))
        .bench(|| app::parse_json(black_box(&line)).map(|r| r.is_ok()));
}

#[divan::bench]
fn app_json_stack_trace(b: Bencher) {
    let line = app_line_stack();
    b.counter(bytes(&line))
        .bench(|| app::parse_json(black_box(&line)).map(|r| r.is_ok()));
}

/// The dispatcher in front of the family parsers, on each kind of line.
#[divan::bench(args = ["envoy_16", "envoy_117", "access_19", "app_info", "app_stack"])]
fn dispatch_record(b: Bencher, kind: &str) {
    let line = match kind {
        "envoy_16" => ENVOY_16.to_string(),
        "envoy_117" => ENVOY_117.to_string(),
        "access_19" => ACCESS_19.to_string(),
        "app_info" => app_line_info(),
        _ => app_line_stack(),
    };
    b.counter(bytes(&line))
        .bench(|| dispatch::parse_record(black_box(&line), None).is_ok());
}

/// Record boundaries: asked of every physical line.
#[divan::bench(args = ["stack_frame", "exception_header", "envoy_16", "access_19"])]
fn boundary_check(b: Bencher, kind: &str) {
    let line = match kind {
        "stack_frame" => {
            "\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:186)"
        }
        "exception_header" => "java.net.SocketException: Connection reset",
        "envoy_16" => ENVOY_16,
        _ => ACCESS_19,
    };
    b.counter(bytes(line))
        .bench(|| record::is_continuation(black_box(line.as_bytes())));
}

/// Collector wrappers: asked of every physical line; most lines carry none.
#[divan::bench(args = ["plain", "kubectl_timestamps", "cri"])]
fn wrapper_strip(b: Bencher, kind: &str) {
    let line = match kind {
        "plain" => ACCESS_19.to_string(),
        "kubectl_timestamps" => format!("2024-05-01T10:00:00.123456789Z {ACCESS_19}"),
        _ => format!("2024-05-01T10:00:00.123456789Z stdout F {ACCESS_19}"),
    };
    b.counter(bytes(&line)).bench(|| {
        matches!(
            wrapper::unwrap_line(black_box(&line)),
            wrapper::Unwrapped::Borrowed(..)
        )
    });
}

#[divan::bench(args = [
    "2020-10-23T00:26:14.869776Z",
    "2020-10-22T14:03:11.482+02:00",
    "2024-05-01T10:00:00.123Z",
])]
fn timestamp_iso(b: Bencher, ts: &str) {
    b.counter(bytes(ts))
        .bench(|| timestamp::parse_iso(black_box(ts)).map(|p| p.time));
}
