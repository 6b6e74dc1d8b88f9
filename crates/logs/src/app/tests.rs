//! Tests for the app parsers: one table per field set and text layout, the founding
//! incident's record in both of its shapes, snapshots of representative records, and
//! never-panic properties.
//!
//! Lines are built from the documented shapes of each encoder (formats.md §6), not copied
//! from one fixture, and each table row checks every field the parser fills.

use super::{parse_json, parse_text};
use crate::Parsed;
use meshdoctor_model::{AppRecord, Payload, SkipReason};
use proptest::prelude::*;
use std::fmt::Write as _;

/// The founding incident's Splunk list-view paste, as it appears in the seed text.
const SEED_SPLUNK: &str = include_str!("testdata/seed_splunk.txt");

fn app<'p>(parsed: &'p Parsed<'_>) -> &'p AppRecord<'p> {
    match &parsed.payload {
        Payload::App(a) => a,
        other => panic!("not an app record: {other:?}"),
    }
}

/// A one-line view of everything the parser filled, so each table row checks it all.
fn summary(parsed: &Parsed<'_>) -> String {
    let a = app(parsed);
    let mut out = String::new();
    let _ = write!(
        out,
        "t={} sev={} logger={} thread={} msg={:?}",
        parsed.time.map_or("-".to_string(), |t| t.to_string()),
        a.severity
            .map_or("-".to_string(), |s| format!("{s:?}").to_lowercase()),
        a.logger.as_deref().unwrap_or("-"),
        a.thread.as_deref().unwrap_or("-"),
        a.message,
    );
    if a.time_zone_assumed {
        out.push_str(" tz=assumed");
    }
    if a.stack_trace.is_some() {
        out.push_str(" stack");
    }
    for (name, value) in [
        ("req", &a.request_id),
        ("corr", &a.correlation_id),
        ("trace", &a.trace_id),
        ("ns", &parsed.origin.namespace),
        ("pod", &parsed.origin.pod),
        ("ctr", &parsed.origin.container),
        ("wl", &parsed.origin.workload),
    ] {
        if let Some(v) = value {
            let _ = write!(out, " {name}={v}");
        }
    }
    if let Some(e) = &a.error {
        let _ = write!(out, " err={}", e.class.as_str());
        if !e.chain.is_empty() {
            let _ = write!(out, " chain={}", e.chain.join(">"));
        }
        if let Some(p) = &e.peer {
            let _ = write!(out, " peer={p}");
        }
    }
    out
}

fn check_json(line: &str, want: &str) {
    let parsed = parse_json(line)
        .unwrap_or_else(|| panic!("not claimed: {line}"))
        .unwrap_or_else(|e| panic!("{e:?}: {line}"));
    assert_eq!(summary(&parsed), want, "{line}");
}

fn check_text(record: &str, want: &str) {
    let parsed = parse_text(record)
        .unwrap_or_else(|| panic!("not claimed: {record}"))
        .unwrap_or_else(|e| panic!("{e:?}: {record}"));
    assert_eq!(summary(&parsed), want, "{record}");
}

#[test]
fn json_field_sets() {
    let table: &[(&str, &str)] = &[
        // logstash-logback-encoder, local time with an offset: the UTC day is the day before.
        (
            r#"{"@timestamp":"2024-05-01T01:30:00.123+02:00","@version":"1","message":"call to orders failed","logger_name":"com.example.OrdersClient","thread_name":"http-nio-8080-exec-3","level":"ERROR","level_value":40000,"stack_trace":"org.springframework.web.client.ResourceAccessException: I/O error on GET request for \"http://orders:8080/api\": Connection reset\n\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:791)\nCaused by: java.net.SocketException: Connection reset\n\tat java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:328)\n\t... 40 common frames omitted\n","traceId":"4bf92f3577b34da6","x-request-id":"r-1","HOSTNAME":"orders-1"}"#,
            "t=2024-04-30T23:30:00.123Z sev=error logger=com.example.OrdersClient thread=http-nio-8080-exec-3 msg=\"call to orders failed\" stack req=r-1 trace=4bf92f3577b34da6 err=connection-reset chain=org.springframework.web.client.ResourceAccessException>java.net.SocketException peer=http://orders:8080/api",
        ),
        // Only level_value, keys reordered, MDC correlation id.
        (
            r#"{"x-correlation-id":"c-9","level_value":30000,"message":"Retrying POST http://users:8080/api after I/O error: Connection reset (attempt 1/3)","@timestamp":"2024-05-01T10:00:00Z"}"#,
            "t=2024-05-01T10:00:00Z sev=warn logger=- thread=- msg=\"Retrying POST http://users:8080/api after I/O error: Connection reset (attempt 1/3)\" corr=c-9 err=connection-reset peer=http://users:8080/api",
        ),
        // ECS, nested objects.
        (
            r#"{"@timestamp":"2024-05-01T10:00:00.123Z","log":{"level":"error","logger":"orders.client"},"message":"upstream failed","service":{"name":"checkout"},"trace":{"id":"abc123"},"error":{"type":"java.io.IOException","message":"Broken pipe"},"ecs":{"version":"1.6.0"},"event":{"dataset":"checkout.log"}}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=orders.client thread=- msg=\"upstream failed\" stack trace=abc123 wl=checkout err=broken-pipe chain=java.io.IOException",
        ),
        // ECS as ecs-logging-java writes it: dotted keys at the top level.
        (
            r#"{"@timestamp":"2024-05-01T10:00:00.123Z","log.level":"WARN","message":"retry","ecs.version":"1.2.0","service.name":"orders","event.dataset":"orders.log","process.thread.name":"main","log.logger":"com.x.Client","error.type":"java.net.SocketException","error.message":"Connection reset","error.stack_trace":"java.net.SocketException: Connection reset\n\tat a.B.c(B.java:1)","trace.id":"t-1"}"#,
            "t=2024-05-01T10:00:00.123Z sev=warn logger=com.x.Client thread=main msg=\"retry\" stack trace=t-1 wl=orders err=connection-reset chain=java.net.SocketException",
        ),
        // zap production config: epoch seconds as a float, error value and Go stack apart.
        (
            r#"{"level":"error","ts":1714557600.5,"caller":"client/client.go:42","msg":"request failed","error":"Post \"http://orders:8080/api\": read tcp 10.0.0.1:1234->10.0.0.2:8080: read: connection reset by peer","stacktrace":"main.call\n\t/app/main.go:42\nmain.main\n\t/app/main.go:12"}"#,
            "t=2024-05-01T10:00:00.5Z sev=error logger=- thread=- msg=\"request failed\" stack err=connection-reset peer=http://orders:8080/api",
        ),
        // zap development config: ISO time, logger name, gRPC error with an Envoy body.
        (
            r#"{"level":"warn","ts":"2024-05-01T10:00:00.123Z","logger":"grpc","msg":"retrying","error":"rpc error: code = Unavailable desc = upstream connect error or disconnect/reset before headers. reset reason: connection termination"}"#,
            "t=2024-05-01T10:00:00.123Z sev=warn logger=grpc thread=- msg=\"retrying\" stack err=envoy-reset-before-headers",
        ),
        // pino: numeric level, epoch millis, err object with a code outside its stack.
        (
            r#"{"level":50,"time":1714557600123,"pid":1,"hostname":"orders-7d9f-abcde","name":"orders","msg":"request failed","err":{"type":"Error","message":"aborted","stack":"Error: aborted\n    at connResetException (node:internal/errors:705:14)","code":"ECONNRESET"}}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=- thread=- msg=\"request failed\" stack wl=orders err=connection-reset chain=Error",
        ),
        // bunyan: numeric level, ISO time, `v`.
        (
            r#"{"name":"cart","hostname":"h1","pid":7,"level":40,"msg":"slow upstream","time":"2024-05-01T10:00:00.123Z","v":0}"#,
            "t=2024-05-01T10:00:00.123Z sev=warn logger=- thread=- msg=\"slow upstream\" wl=cart",
        ),
        // python-json-logger: asctime without a zone, traceback in exc_info.
        (
            r#"{"asctime":"2024-05-01 10:00:00,123","name":"app.client","levelname":"ERROR","message":"call failed","exc_info":"Traceback (most recent call last):\n  File \"/app/c.py\", line 3, in <module>\n    r = s.get(u)\nConnectionResetError: [Errno 104] Connection reset by peer"}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=app.client thread=- msg=\"call failed\" tz=assumed stack err=connection-reset chain=ConnectionResetError",
        ),
        // structlog: the message is `event`, the traceback `exception`.
        (
            r#"{"event":"upstream call failed","level":"error","timestamp":"2024-05-01T10:00:00.123456Z","logger":"svc","exception":"Traceback (most recent call last):\n  File \"/app/x.py\", line 9, in call\n    raise\nrequests.exceptions.ConnectionError: ('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"}"#,
            "t=2024-05-01T10:00:00.123456Z sev=error logger=svc thread=- msg=\"upstream call failed\" stack err=closed-without-response chain=requests.exceptions.ConnectionError",
        ),
        // Serilog compact: template only, .NET inner exceptions in @x.
        (
            r#"{"@t":"2024-05-01T10:00:00.1234567Z","@mt":"Call to {Url} failed","@l":"Error","@x":"System.Net.Http.HttpRequestException: An error occurred while sending the request.\n ---> System.IO.IOException: Unable to read data from the transport connection: Connection reset by peer.\n ---> System.Net.Sockets.SocketException (104): Connection reset by peer\n   --- End of inner exception stack trace ---","Url":"http://orders/api"}"#,
            "t=2024-05-01T10:00:00.1234567Z sev=error logger=- thread=- msg=\"Call to {Url} failed\" stack err=connection-reset chain=System.Net.Http.HttpRequestException>System.IO.IOException>System.Net.Sockets.SocketException",
        ),
        // Serilog compact leaves @l out for Information.
        (
            r#"{"@t":"2024-05-01T10:00:00Z","@m":"Started"}"#,
            "t=2024-05-01T10:00:00Z sev=info logger=- thread=- msg=\"Started\"",
        ),
        // GCP: severity, timestamp as seconds/nanos, trace key, Envoy body as the message.
        (
            r#"{"severity":"ERROR","timestamp":{"seconds":1714557600,"nanos":123000000},"message":"upstream connect error or disconnect/reset before headers. reset reason: connection termination","logging.googleapis.com/trace":"projects/p/traces/abc"}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=- thread=- msg=\"upstream connect error or disconnect/reset before headers. reset reason: connection termination\" trace=projects/p/traces/abc err=envoy-reset-before-headers",
        ),
        (
            r#"{"severity":"WARNING","time":"2024-05-01T10:00:00.123Z","message":"no healthy upstream"}"#,
            "t=2024-05-01T10:00:00.123Z sev=warn logger=- thread=- msg=\"no healthy upstream\" err=envoy-no-healthy-upstream",
        ),
        // .NET JSON console formatter (PascalCase keys).
        (
            r#"{"Timestamp":"2024-05-01T10:00:00.123Z","EventId":0,"LogLevel":"Error","Category":"Orders.Client","Message":"Call failed","Exception":"System.Net.Http.HttpRequestException: An error occurred while sending the request.\n ---> System.IO.IOException: Unable to read data from the transport connection: An existing connection was forcibly closed by the remote host.","State":{"Message":"Call failed","{OriginalFormat}":"Call failed"}}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=Orders.Client thread=- msg=\"Call failed\" stack err=connection-reset chain=System.Net.Http.HttpRequestException>System.IO.IOException",
        ),
        // Serilog's full JSON formatter.
        (
            r#"{"Timestamp":"2024-05-01T12:00:00.1234567+02:00","Level":"Warning","MessageTemplate":"Retry {Attempt}","RenderedMessage":"Retry 2","Properties":{"Attempt":2}}"#,
            "t=2024-05-01T10:00:00.1234567Z sev=warn logger=- thread=- msg=\"Retry 2\"",
        ),
        // log4j2 JsonLayout: `instant`, `thrown` without a text trace.
        (
            r#"{"instant":{"epochSecond":1714557600,"nanoOfSecond":123000000},"thread":"main","level":"ERROR","loggerName":"com.x.Client","message":"call failed","thrown":{"commonElementCount":0,"localizedMessage":"Connection refused","message":"Connection refused","name":"java.net.ConnectException","extendedStackTrace":[{"class":"x","method":"y","file":"X.java","line":1}]},"endOfBatch":false,"threadId":1}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=com.x.Client thread=main msg=\"call failed\" stack err=connection-refused chain=java.net.ConnectException",
        ),
        // GELF (Spring Boot structured logging): epoch seconds, syslog level number.
        (
            r#"{"version":"1.1","host":"h","short_message":"call failed","timestamp":1714557600.123,"level":3,"_logger_name":"com.x.Client","_thread_name":"main","_error_type":"java.net.SocketException","_error_message":"Connection reset","_error_stack_trace":"java.net.SocketException: Connection reset\n\tat a.B.c(B.java:1)"}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=com.x.Client thread=main msg=\"call failed\" stack err=connection-reset chain=java.net.SocketException",
        ),
        // winston: `stack` at the top level.
        (
            r#"{"level":"error","message":"request failed","timestamp":"2024-05-01T10:00:00.123Z","stack":"Error: read ECONNRESET\n    at TCP.onStreamRead (node:internal/stream_base_commons:217:20)"}"#,
            "t=2024-05-01T10:00:00.123Z sev=error logger=- thread=- msg=\"request failed\" stack err=connection-reset chain=Error",
        ),
        // Go slog: `err` as a string.
        (
            r#"{"time":"2024-05-01T12:00:00.123456789+02:00","level":"ERROR","msg":"call failed","err":"dial tcp 10.96.0.5:8080: connect: connection refused"}"#,
            "t=2024-05-01T10:00:00.123456789Z sev=error logger=- thread=- msg=\"call failed\" stack err=connection-refused peer=10.96.0.5:8080",
        ),
        // fluentd kubernetes metadata: the app label names the workload.
        (
            r#"{"message":"ready","level":"INFO","kubernetes":{"namespace_name":"shop","pod_name":"orders-5d8f9c7b6-abcde","container_name":"orders","host":"n1","labels":{"app":"orders-app","version":"v1"}},"@timestamp":"2024-05-01T10:00:00Z"}"#,
            "t=2024-05-01T10:00:00Z sev=info logger=- thread=- msg=\"ready\" ns=shop pod=orders-5d8f9c7b6-abcde ctr=orders wl=orders-app",
        ),
        // Container name alone names the workload.
        (
            r#"{"kubernetes":{"container_name":"orders"},"level":"INFO","message":"x"}"#,
            "t=- sev=info logger=- thread=- msg=\"x\" ctr=orders wl=orders",
        ),
        // Several spellings at once are not a duplicate-key error; the first wins.
        (
            r#"{"timestamp":"2024-05-01T10:00:00Z","@timestamp":"2024-05-01T09:00:00Z","event":"e","message":"m","level":"info","levelname":"ERROR"}"#,
            "t=2024-05-01T09:00:00Z sev=info logger=- thread=- msg=\"m\"",
        ),
        // Keys sidecar lines write (`scope`, `target`) are no part of an application record,
        // so repeating them is no duplicate-key error, as repeating an unknown key is not.
        (
            r#"{"message":"m","level":"INFO","scope":"a","scope":"b","target":1,"target":null}"#,
            "t=- sev=info logger=- thread=- msg=\"m\"",
        ),
        // INFO lines that mention a reset are not classified.
        (
            r#"{"level":"INFO","message":"connection reset handled successfully","time":"2024-05-01T10:00:00Z"}"#,
            "t=2024-05-01T10:00:00Z sev=info logger=- thread=- msg=\"connection reset handled successfully\"",
        ),
        // A read timeout wrapped in the same Spring exception is a timeout, not a reset.
        (
            r#"{"level":"ERROR","message":"failed","stack_trace":"org.springframework.web.client.ResourceAccessException: I/O error on POST request for \"http://pricing:8080/x\": Read timed out; nested exception is java.net.SocketTimeoutException: Read timed out\n\tat a.B.c(B.java:1)\nCaused by: java.net.SocketTimeoutException: Read timed out\n\tat d.E.f(E.java:2)"}"#,
            "t=- sev=error logger=- thread=- msg=\"failed\" stack err=timeout chain=org.springframework.web.client.ResourceAccessException>java.net.SocketTimeoutException peer=http://pricing:8080/x",
        ),
    ];
    for (line, want) in table {
        check_json(line, want);
        // CRLF line endings and surrounding whitespace do not change the result.
        check_json(&format!("{line}\r"), want);
    }
}

#[test]
fn json_rejects() {
    for (line, want) in [
        (r#"{"foo":1,"bar":{"baz":2}}"#, SkipReason::UnusableJson),
        ("[1,2,3]", SkipReason::UnusableJson),
        ("42", SkipReason::UnusableJson),
        (r#"{"message":"x","message":"y"}"#, SkipReason::UnusableJson),
        (r#"{"level":"info","message":"#, SkipReason::InvalidJson),
        ("{main} started", SkipReason::InvalidJson),
        (
            r#"{"level":"info","msg":"x"} trailing"#,
            SkipReason::InvalidJson,
        ),
    ] {
        let got = parse_json(line).map(|r| r.err());
        assert_eq!(got, Some(Some(want)), "{line}");
    }
}

#[test]
fn json_followed_by_a_plain_trace() {
    check_json(
        "{\"level\":\"error\",\"msg\":\"boom\"}\njava.net.SocketException: Connection reset\n\tat a.B.c(B.java:1)",
        "t=- sev=error logger=- thread=- msg=\"boom\" stack err=connection-reset chain=java.net.SocketException",
    );
}

#[test]
fn text_layouts() {
    let table: &[(&str, &str)] = &[
        // Spring Boot 2.x, padded level and logger columns.
        (
            "2024-05-01 10:00:00.123 ERROR 1 --- [http-nio-8080-exec-3] c.e.OrdersClient                         : call failed",
            "t=2024-05-01T10:00:00.123Z sev=error logger=c.e.OrdersClient thread=http-nio-8080-exec-3 msg=\"call failed\" tz=assumed",
        ),
        (
            "2024-05-01 10:00:00.123  INFO 1 --- [           main] o.s.b.w.e.tomcat.TomcatWebServer         : Tomcat started on port(s): 8080 (http)",
            "t=2024-05-01T10:00:00.123Z sev=info logger=o.s.b.w.e.tomcat.TomcatWebServer thread=main msg=\"Tomcat started on port(s): 8080 (http)\" tz=assumed",
        ),
        // Spring Boot 3.2: ISO with offset, application name bracket before the thread.
        (
            "2024-05-01T10:00:00.123+02:00 ERROR 1 --- [orders] [nio-8080-exec-1] c.e.OrdersClient : call failed",
            "t=2024-05-01T08:00:00.123Z sev=error logger=c.e.OrdersClient thread=nio-8080-exec-1 msg=\"call failed\"",
        ),
        // Spring Cloud Sleuth correlation between level and PID.
        (
            "2020-10-23 00:26:14.871 ERROR [orders,4bf92f3577b34da6,00f067aa0ba902b7,true] 1 --- [nio-8080-exec-5] c.a.s.p.e.CustomExceptionHandler : failed",
            "t=2020-10-23T00:26:14.871Z sev=error logger=c.a.s.p.e.CustomExceptionHandler thread=nio-8080-exec-5 msg=\"failed\" tz=assumed trace=4bf92f3577b34da6",
        ),
        // Spring Boot 3.2+ with Micrometer correlation after the thread.
        (
            "2024-05-01T10:00:00.123Z  WARN 1 --- [orders] [nio-8080-exec-1] [4bf92f3577b34da6-00f067aa0ba902b7] c.e.OrdersClient : retry",
            "t=2024-05-01T10:00:00.123Z sev=warn logger=c.e.OrdersClient thread=nio-8080-exec-1 msg=\"retry\" trace=4bf92f3577b34da6",
        ),
        // logback / log4j patterns.
        (
            "2024-05-01 10:00:00,123 ERROR [pool-1-thread-2] com.example.Foo - boom",
            "t=2024-05-01T10:00:00.123Z sev=error logger=com.example.Foo thread=pool-1-thread-2 msg=\"boom\" tz=assumed",
        ),
        (
            "2024-05-01 10:00:00.123 [main] WARN  com.example.Foo - Connection reset, retrying",
            "t=2024-05-01T10:00:00.123Z sev=warn logger=com.example.Foo thread=main msg=\"Connection reset, retrying\" tz=assumed err=connection-reset",
        ),
        (
            "10:00:00.123 [main] ERROR com.example.Foo - boom",
            "t=- sev=error logger=com.example.Foo thread=main msg=\"boom\"",
        ),
        (
            "[2024-05-01 10:00:00,123] WARN [main] com.example.Foo - slow",
            "t=2024-05-01T10:00:00.123Z sev=warn logger=com.example.Foo thread=main msg=\"slow\" tz=assumed",
        ),
        (
            "2024-05-01 10:00:00 UTC [main] INFO com.example.Foo - started",
            "t=2024-05-01T10:00:00Z sev=info logger=com.example.Foo thread=main msg=\"started\"",
        ),
        // Python logging.
        (
            "2024-05-01 10:00:00,123 - app.client - ERROR - call failed",
            "t=2024-05-01T10:00:00.123Z sev=error logger=app.client thread=- msg=\"call failed\" tz=assumed",
        ),
        (
            "ERROR:root:call failed: [Errno 111] Connection refused",
            "t=- sev=error logger=root thread=- msg=\"call failed: [Errno 111] Connection refused\" err=connection-refused",
        ),
        (
            "2024-05-01 10:00:00,123 app.client ERROR call failed",
            "t=2024-05-01T10:00:00.123Z sev=error logger=app.client thread=- msg=\"call failed\" tz=assumed",
        ),
        (
            "2024-05-01 10:00:00,123 ERROR app.client: call failed",
            "t=2024-05-01T10:00:00.123Z sev=error logger=app.client thread=- msg=\"call failed\" tz=assumed",
        ),
        // glog / klog: no year, so no time.
        (
            "E0501 10:00:00.123456       1 client.go:42] Get \"http://orders:8080/api\": EOF",
            "t=- sev=error logger=client.go:42 thread=- msg=\"Get \\\"http://orders:8080/api\\\": EOF\" err=closed-without-response peer=http://orders:8080/api",
        ),
        // logfmt (logrus), quoted values with escapes.
        (
            "time=\"2024-05-01T10:00:00Z\" level=error msg=\"request \\\"x\\\" failed\" err=\"read tcp 10.0.0.1:1234->10.0.0.2:8080: read: connection reset by peer\" request_id=r-2",
            "t=2024-05-01T10:00:00Z sev=error logger=- thread=- msg=\"request \\\"x\\\" failed\" stack req=r-2 err=connection-reset peer=10.0.0.2:8080",
        ),
        (
            "t=2024-05-01T10:00:00+0000 lvl=eror msg=\"Request error\" logger=context error=\"context deadline exceeded\"",
            "t=2024-05-01T10:00:00Z sev=error logger=context thread=- msg=\"Request error\" stack err=timeout",
        ),
        // Go std log.
        (
            "2024/05/01 10:00:00 http: proxy error: EOF",
            "t=2024-05-01T10:00:00Z sev=- logger=- thread=- msg=\"http: proxy error: EOF\" tz=assumed err=closed-without-response",
        ),
        // No timestamp, but a level.
        (
            "ERROR: something broke",
            "t=- sev=error logger=- thread=- msg=\"something broke\"",
        ),
        (
            "WARN  retrying connection",
            "t=- sev=warn logger=- thread=- msg=\"retrying connection\"",
        ),
        (
            "[ERROR] upstream failed",
            "t=- sev=error logger=- thread=- msg=\"upstream failed\"",
        ),
        // No timestamp and no level, but error text.
        (
            "curl: (56) Recv failure: Connection reset by peer",
            "t=- sev=- logger=- thread=- msg=\"curl: (56) Recv failure: Connection reset by peer\" err=connection-reset",
        ),
        (
            "Exception in thread \"main\" java.net.SocketException: Connection reset",
            "t=- sev=- logger=- thread=- msg=\"Exception in thread \\\"main\\\" java.net.SocketException: Connection reset\" err=connection-reset",
        ),
    ];
    for (record, want) in table {
        check_text(record, want);
        check_text(&format!("{record}\r"), want);
    }
}

#[test]
fn text_that_is_not_an_app_log() {
    for line in [
        "Picked up JAVA_TOOL_OPTIONS: -XX:MaxRAMPercentage=75.0",
        "OpenJDK 64-Bit Server VM warning: Options -Xverify:none and -noverify were deprecated in JDK 13",
        "hello world",
        "",
        "Information about the build follows",
        "user=alice",
    ] {
        assert!(parse_text(line).is_none(), "{line}");
    }
}

#[test]
fn multi_line_text_records() {
    let table: &[(&str, &str)] = &[
        (
            "2024-05-01 10:00:00.123 ERROR 1 --- [http-nio-8080-exec-3] c.e.OrdersClient : call failed\norg.springframework.web.client.ResourceAccessException: I/O error on GET request for \"http://orders:8080/api\": Connection reset\n\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:791)\n\tat java.base/java.lang.Thread.run(Thread.java:840)\nCaused by: java.net.SocketException: Connection reset\n\tat java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:328)\n\t... 40 common frames omitted",
            "t=2024-05-01T10:00:00.123Z sev=error logger=c.e.OrdersClient thread=http-nio-8080-exec-3 msg=\"call failed\" tz=assumed stack err=connection-reset chain=org.springframework.web.client.ResourceAccessException>java.net.SocketException peer=http://orders:8080/api",
        ),
        (
            "2024-05-01 10:00:00,123 - app.client - ERROR - call failed\nTraceback (most recent call last):\n  File \"/app/c.py\", line 10, in get\n    resp = conn.getresponse()\nConnectionResetError: [Errno 104] Connection reset by peer\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/c.py\", line 20, in call\n    return session.get(url)\nrequests.exceptions.ConnectionError: ('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))",
            "t=2024-05-01T10:00:00.123Z sev=error logger=app.client thread=- msg=\"call failed\" tz=assumed stack err=connection-reset chain=requests.exceptions.ConnectionError>ConnectionResetError",
        ),
        (
            "2024/05/01 10:00:00 starting worker\npanic: read tcp 10.0.0.1:1234->10.0.0.2:8080: read: connection reset by peer\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d",
            "t=2024-05-01T10:00:00Z sev=- logger=- thread=- msg=\"starting worker\" tz=assumed stack err=connection-reset peer=10.0.0.2:8080",
        ),
        (
            "2024-05-01T10:00:00.123Z ERROR request failed\nError: socket hang up\n    at connResetException (node:internal/errors:705:14)\n    at Socket.socketOnEnd (node:_http_client:518:23) {\n  code: 'ECONNRESET'\n}",
            "t=2024-05-01T10:00:00.123Z sev=error logger=- thread=- msg=\"request failed\" stack err=connection-reset chain=Error",
        ),
        (
            "2024-05-01 12:00:00.123 +02:00 [ERR] Request failed\nSystem.Net.Http.HttpRequestException: An error occurred while sending the request.\n ---> System.IO.IOException: The response ended prematurely.\n   at System.Net.Http.HttpConnection.SendAsyncCore()\n   --- End of inner exception stack trace ---\n   at System.Net.Http.HttpConnection.SendAsyncCore()",
            "t=2024-05-01T10:00:00.123Z sev=error logger=- thread=- msg=\"Request failed\" stack err=closed-without-response chain=System.Net.Http.HttpRequestException>System.IO.IOException",
        ),
        // A record whose header says nothing but whose trace is an error.
        (
            "Unhandled failure\njava.net.SocketException: Connection reset\n\tat a.B.c(B.java:1)",
            "t=- sev=- logger=- thread=- msg=\"Unhandled failure\" stack err=connection-reset chain=java.net.SocketException",
        ),
    ];
    for (record, want) in table {
        check_text(record, want);
    }
}

#[test]
fn seed_record_as_splunk_paste() {
    let parsed = parse_json(SEED_SPLUNK).unwrap().unwrap();
    assert_eq!(
        summary(&parsed),
        "t=2020-10-23T00:26:14.871Z sev=error logger=c.a.s.p.e.CustomExceptionHandler thread=http-nio-8080-exec-5 msg=\"getMessageWithRootCause >> Exception occurred.\" stack req=a15ebb00-a491-9f4c-8c30-efdffdaa54e6 corr=a15ebb00-a491-4f4c-8c30-efdffdaa54e6-1 err=connection-reset chain=com.xxx.xxx.xxxxxx.exception.xxxxException>xxx.xxx.xxx.resiliency.exception.xxxCommandRetryException>javax.ws.rs.ProcessingException>java.net.SocketException"
    );
    // The text parser accepts the same block.
    assert_eq!(parse_text(SEED_SPLUNK), parse_json(SEED_SPLUNK));
    let a = app(&parsed);
    let stack = a.stack_trace.as_deref().unwrap();
    assert!(stack.starts_with("com.xxx.xxx.xxxxxx.exception.xxxxException: Required Upstream"));
    assert!(stack.ends_with("... 43 common frames omitted"));
    assert_eq!(
        a.error.as_ref().unwrap().root_cause,
        "java.net.SocketException: Connection reset"
    );
}

/// The seed's fields re-encoded as a logstash JSON line (the stack with `\n` escapes).
fn seed_as_json() -> String {
    let mut fields: Vec<(String, String)> = Vec::new();
    let body: Vec<&str> = SEED_SPLUNK.lines().collect();
    let mut i = 1;
    while i + 1 < body.len() {
        let line = body[i];
        let (key, value) = line.split_once(": ").unwrap();
        let mut value = value.to_string();
        if key == "stack_trace" {
            while !body[i + 1].starts_with("thread_name: ") {
                i += 1;
                value.push('\n');
                value.push_str(body[i]);
            }
        }
        fields.push((key.to_string(), value.trim_end().to_string()));
        i += 1;
    }
    let map: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::to_string(&map).unwrap()
}

#[test]
fn seed_record_as_json_line() {
    let line = seed_as_json();
    assert!(line.contains("\\nCaused by: java.net.SocketException: Connection reset\\n"));
    let from_json = parse_json(&line).unwrap().unwrap();
    let from_paste = parse_json(SEED_SPLUNK).unwrap().unwrap();
    assert_eq!(summary(&from_json), summary(&from_paste));
}

fn view(parsed: &Parsed<'_>) -> String {
    format!(
        "time: {}\n{:#?}\n{:#?}",
        parsed.time.map_or("-".to_string(), |t| t.to_string()),
        parsed.origin,
        parsed.payload
    )
}

#[test]
fn snapshots() {
    let cases: &[(&str, &str)] = &[
        ("seed_splunk", SEED_SPLUNK),
        (
            "logstash_resttemplate",
            r#"{"@timestamp":"2020-10-23T02:26:14.871+02:00","@version":"1","message":"Call to payments failed","logger_name":"com.acme.orders.client.PaymentsClient","thread_name":"http-nio-8080-exec-7","level":"ERROR","level_value":40000,"stack_trace":"org.springframework.web.client.ResourceAccessException: I/O error on POST request for \"http://payments:8080/api/v1/payments\": Connection reset; nested exception is java.net.SocketException: Connection reset\n\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:785)\nCaused by: java.net.SocketException: Connection reset\n\tat java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:323)\n\t... 61 common frames omitted","requestId":"5cfd12d5-211b-4fb3-baf0-b5e06d13d6bb","x-correlation-id":"25477838-6179-4d6a-8b68-87a228ee6ff4","service":"orders","kubernetes":{"namespace_name":"shop","pod_name":"orders-703569f27-mvblg","container_name":"orders","labels":{"app":"orders","version":"v1"}}}"#,
        ),
        (
            "zap_go_reset",
            r#"{"level":"error","ts":1714557600.123456,"caller":"client/client.go:42","msg":"request failed","error":"Post \"http://orders:8080/api\": read tcp 10.0.0.1:1234->10.0.0.2:8080: read: connection reset by peer","stacktrace":"main.call\n\t/app/main.go:42"}"#,
        ),
        (
            "pino_socket_hang_up",
            r#"{"level":50,"time":1714557600123,"pid":1,"hostname":"web-1","name":"web-bff","msg":"upstream failed","err":{"type":"Error","message":"socket hang up","stack":"Error: socket hang up\n    at connResetException (node:internal/errors:705:14)","code":"ECONNRESET"}}"#,
        ),
        (
            "python_text_traceback",
            "2024-05-01 10:00:00,123 - app.client - ERROR - call failed\nTraceback (most recent call last):\n  File \"/app/c.py\", line 20, in call\n    return session.get(url)\nrequests.exceptions.ConnectionError: HTTPConnectionPool(host='orders', port=8080): Max retries exceeded with url: /api (Caused by ProtocolError('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer')))",
        ),
        (
            "logback_root_cause_first",
            r#"{"timestamp":"2024-05-01T10:00:00.123Z","level":"ERROR","thread_name":"http-nio-8080-exec-1","logger_name":"com.acme.payments.client.LedgerClient","message":"Call to ledger failed","stack_trace":"java.net.SocketException: Connection reset\n\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:186)\nWrapped by: org.springframework.web.client.ResourceAccessException: I/O error on POST request for \"http://ledger.payments.svc.cluster.local:8080/api\": Connection reset\n\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:785)\n\t... 70 common frames omitted","service":"payments"}"#,
        ),
        (
            "warn_retry_notice",
            r#"{"@timestamp":"2024-05-01T10:00:00.123+00:00","level":"WARN","level_value":30000,"logger_name":"com.acme.cart.client.PricingClient","thread_name":"http-nio-8080-exec-2","message":"Retrying POST http://pricing:8080/api/v1/pricing after I/O error: Connection reset (attempt 1/3)"}"#,
        ),
    ];
    for (name, record) in cases {
        let parsed = if record.starts_with('{') {
            parse_json(record)
        } else {
            parse_text(record)
        };
        let parsed = parsed.unwrap().unwrap();
        insta::assert_snapshot!(*name, view(&parsed));
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(s in "(?s).{0,400}") {
        let _ = parse_json(&s);
        let _ = parse_text(&s);
    }

    #[test]
    fn never_panics_on_json_like_text(
        s in r#"\{("(@timestamp|level|msg|message|ts|time|err|error|stack_trace|kubernetes|log|service|@t|@l|timestamp)":("[^"\\]{0,20}"|-?[0-9]{1,16}(\.[0-9]{1,6})?|null|true|\{|\[|\}|\])[,]?){0,8}\}?"#
    ) {
        let _ = parse_json(&s);
    }

    #[test]
    fn never_panics_on_layout_like_text(
        s in r"(\[|\]|20[0-9]{2}[-/][01][0-9][-/][0-3][0-9][ T][0-2][0-9]:[0-5][0-9]:[0-5][0-9]([.,][0-9]{1,9})?|ERROR|WARN|INFO|:| - | --- |[a-z.]{1,10}|=|\x22|\\|E0501 |\n\t|\n|Caused by: |\{ \[-\]\n|[a-z_]{1,6}: ){0,16}"
    ) {
        let _ = parse_text(&s);
        let _ = parse_json(&s);
    }
}
