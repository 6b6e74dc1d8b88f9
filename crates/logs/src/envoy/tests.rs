//! Tests of the sidecar-line parsers: every layout and id form from formats.md §1 (lines
//! constructed from the documented templates), the founding incident's Istio 1.6 lines,
//! lines that must not be claimed, and properties (never panics; tabs flattened to spaces
//! give the same fields).

use super::{parse_json, parse_text};
use crate::Parsed;
use meshdoctor_model::{
    AgentKind, AgentLine, EnvoyLayout, EnvoyLine, Payload, Severity, SkipReason,
};
use proptest::prelude::*;
use std::borrow::Cow;

fn parse(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    if record.starts_with('{') {
        parse_json(record)
    } else {
        parse_text(record)
    }
}

fn envoy(record: &str) -> (Option<String>, EnvoyLine<'_>) {
    match parse(record) {
        Some(Ok(Parsed {
            time,
            payload: Payload::Envoy(line),
            ..
        })) => (time.map(|t| t.to_string()), *line),
        other => panic!("not an Envoy line: {record:?} -> {other:?}"),
    }
}

fn agent(record: &str) -> (Option<String>, AgentLine<'_>) {
    match parse(record) {
        Some(Ok(Parsed {
            time,
            payload: Payload::Agent(line),
            ..
        })) => (time.map(|t| t.to_string()), *line),
        other => panic!("not an agent line: {record:?} -> {other:?}"),
    }
}

/// What we expect of one Envoy line.
struct Want {
    layout: EnvoyLayout,
    time: &'static str,
    level: Severity,
    logger: &'static str,
    location: Option<&'static str>,
    thread: Option<u32>,
    conn: Option<u64>,
    stream: Option<u64>,
    message: &'static str,
}

#[allow(clippy::too_many_lines)]
fn envoy_cases() -> Vec<(&'static str, Want)> {
    use EnvoyLayout::{Bracketed, IstioTab, IstioTabWithCaller, Json};
    use Severity::{Debug, Trace, Warn};
    vec![
        (
            // Plain Envoy, old: location inside %v.
            "[2019-06-28 13:02:36.789][36][debug][connection] [source/common/network/connection_impl.cc:520] [C3755] remote close",
            Want {
                layout: Bracketed,
                time: "2019-06-28T13:02:36.789Z",
                level: Debug,
                logger: "connection",
                location: Some("source/common/network/connection_impl.cc:520"),
                thread: Some(36),
                conn: Some(3755),
                stream: None,
                message: "remote close",
            },
        ),
        (
            // Plain Envoy >= 1.27: `[%g:%#]` token and log tags.
            "[2025-11-13 21:56:58.871][53][debug][conn_handler] [source/common/listener_manager/active_tcp_listener.cc:160] [Tags: \"ConnectionId\":\"18262\"] new connection from 10.0.18.24:49702",
            Want {
                layout: Bracketed,
                time: "2025-11-13T21:56:58.871Z",
                level: Debug,
                logger: "conn_handler",
                location: Some("source/common/listener_manager/active_tcp_listener.cc:160"),
                thread: Some(53),
                conn: Some(18262),
                stream: None,
                message: "new connection from 10.0.18.24:49702",
            },
        ),
        (
            // Istio 1.3, stream-scoped, 19-digit stream id.
            "[2019-06-28 13:02:36.789][36][debug][router] [external/envoy/source/common/router/router.cc:332] [C5][S9427162315425862375] cluster 'outbound|80||b.svc' match for URL '/'",
            Want {
                layout: Bracketed,
                time: "2019-06-28T13:02:36.789Z",
                level: Debug,
                logger: "router",
                location: Some("external/envoy/source/common/router/router.cc:332"),
                thread: Some(36),
                conn: Some(5),
                stream: Some(9_427_162_315_425_862_375),
                message: "cluster 'outbound|80||b.svc' match for URL '/'",
            },
        ),
        (
            // Istio 1.4/1.5 epoch prefix.
            "[Envoy (Epoch 0)] [2020-03-01 12:00:00.123][24][debug][connection] [external/envoy/source/common/network/connection_impl.cc:101] [C12] closing socket: 0",
            Want {
                layout: Bracketed,
                time: "2020-03-01T12:00:00.123Z",
                level: Debug,
                logger: "connection",
                location: Some("external/envoy/source/common/network/connection_impl.cc:101"),
                thread: Some(24),
                conn: Some(12),
                stream: None,
                message: "closing socket: 0",
            },
        ),
        (
            // Bracketed without location (Envoy with --log-format-prefix-with-location 0).
            "[2021-02-03 04:05:06.007][1][warning][config] gRPC config stream closed: 14, no healthy upstream",
            Want {
                layout: Bracketed,
                time: "2021-02-03T04:05:06.007Z",
                level: Warn,
                logger: "config",
                location: None,
                thread: Some(1),
                conn: None,
                stream: None,
                message: "gRPC config stream closed: 14, no healthy upstream",
            },
        ),
        (
            // Istio 1.6: tabs, location inside the message.
            "2020-10-23T00:26:14.869776Z\tdebug\tenvoy connection\t[external/envoy/source/common/network/connection_impl.cc:200] [C3656911] closing socket: 0",
            Want {
                layout: IstioTab,
                time: "2020-10-23T00:26:14.869776Z",
                level: Debug,
                logger: "connection",
                location: Some("external/envoy/source/common/network/connection_impl.cc:200"),
                thread: None,
                conn: Some(3_656_911),
                stream: None,
                message: "closing socket: 0",
            },
        ),
        (
            // Istio 1.7-1.16: no location.
            "2021-06-01T08:00:00.000001Z\tdebug\tenvoy connection\t[C23] closing socket: 0",
            Want {
                layout: IstioTab,
                time: "2021-06-01T08:00:00.000001Z",
                level: Debug,
                logger: "connection",
                location: None,
                thread: None,
                conn: Some(23),
                stream: None,
                message: "closing socket: 0",
            },
        ),
        (
            // Istio 1.7-1.16 as pasted in envoyproxy/envoy#14661 (tabs became two spaces).
            "2021-01-12T01:01:55.673439Z  debug  envoy connection  [C23] connected",
            Want {
                layout: IstioTab,
                time: "2021-01-12T01:01:55.673439Z",
                level: Debug,
                logger: "connection",
                location: None,
                thread: None,
                conn: Some(23),
                stream: None,
                message: "connected",
            },
        ),
        (
            // Istio 1.17-1.18: caller field and thread, old id prefix.
            "2023-02-01T08:00:00.000001Z\tdebug\tenvoy connection external/envoy/source/common/network/connection_impl.cc:250\t[C23] closing socket: 0\tthread=21",
            Want {
                layout: IstioTabWithCaller,
                time: "2023-02-01T08:00:00.000001Z",
                level: Debug,
                logger: "connection",
                location: Some("external/envoy/source/common/network/connection_impl.cc:250"),
                thread: Some(21),
                conn: Some(23),
                stream: None,
                message: "closing socket: 0",
            },
        ),
        (
            // Istio >= 1.19: tags.
            "2024-09-24T01:25:55.435803Z\tdebug\tenvoy connection external/envoy/source/common/network/connection_impl.cc:746\t[Tags: \"ConnectionId\":\"43\"] closing socket: 0\tthread=25",
            Want {
                layout: IstioTabWithCaller,
                time: "2024-09-24T01:25:55.435803Z",
                level: Debug,
                logger: "connection",
                location: Some("external/envoy/source/common/network/connection_impl.cc:746"),
                thread: Some(25),
                conn: Some(43),
                stream: None,
                message: "closing socket: 0",
            },
        ),
        (
            // Tags in another order, an extra tag, a 20-digit stream id.
            "2024-09-24T01:25:55.435803Z\tdebug\tenvoy router external/envoy/source/common/router/upstream_request.cc:563\t[Tags: \"StreamId\":\"18446744073709551615\",\"ConnectionId\":\"7\",\"Route\":\"default\"] pool ready\tthread=25",
            Want {
                layout: IstioTabWithCaller,
                time: "2024-09-24T01:25:55.435803Z",
                level: Debug,
                logger: "router",
                location: Some("external/envoy/source/common/router/upstream_request.cc:563"),
                thread: Some(25),
                conn: Some(7),
                stream: Some(u64::MAX),
                message: "pool ready",
            },
        ),
        (
            // Single spaces instead of tabs, 1.17+ layout.
            "2024-09-24T01:25:55.435803Z debug envoy connection external/envoy/source/common/network/connection_impl.cc:746 [Tags: \"ConnectionId\":\"43\"] remote close thread=25",
            Want {
                layout: IstioTabWithCaller,
                time: "2024-09-24T01:25:55.435803Z",
                level: Debug,
                logger: "connection",
                location: Some("external/envoy/source/common/network/connection_impl.cc:746"),
                thread: Some(25),
                conn: Some(43),
                stream: None,
                message: "remote close",
            },
        ),
        (
            // Listener-filter line: no id (formats.md §2.1).
            "2024-05-01T10:00:00.100000Z\tdebug\tenvoy filter external/envoy/source/extensions/filters/listener/tls_inspector/tls_inspector.cc:137\ttls:onServerName(), requestedServerName: outbound_.8080_._.orders.shop.svc.cluster.local\tthread=21",
            Want {
                layout: IstioTabWithCaller,
                time: "2024-05-01T10:00:00.1Z",
                level: Debug,
                logger: "filter",
                location: Some(
                    "external/envoy/source/extensions/filters/listener/tls_inspector/tls_inspector.cc:137",
                ),
                thread: Some(21),
                conn: None,
                stream: None,
                message: "tls:onServerName(), requestedServerName: outbound_.8080_._.orders.shop.svc.cluster.local",
            },
        ),
        (
            // New TLS error text (formats.md §2.2).
            "2025-01-10T09:00:00.000100Z\tdebug\tenvoy connection external/envoy/source/common/tls/ssl_socket.cc:248\t[Tags: \"ConnectionId\":\"812\"] remote address:10.244.3.9:51234,TLS_error:|268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST:TLS_error_end\tthread=19",
            Want {
                layout: IstioTabWithCaller,
                time: "2025-01-10T09:00:00.0001Z",
                level: Debug,
                logger: "connection",
                location: Some("external/envoy/source/common/tls/ssl_socket.cc:248"),
                thread: Some(19),
                conn: Some(812),
                stream: None,
                message: "remote address:10.244.3.9:51234,TLS_error:|268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST:TLS_error_end",
            },
        ),
        (
            // Trace level, stream prefix without a space before the message.
            "2022-03-04T05:06:07.080910Z\ttrace\tenvoy http\t[C0][S123]stream reset",
            Want {
                layout: IstioTab,
                time: "2022-03-04T05:06:07.08091Z",
                level: Trace,
                logger: "http",
                location: None,
                thread: None,
                conn: Some(0),
                stream: Some(123),
                message: "stream reset",
            },
        ),
        (
            // Windows line end.
            "2021-06-01T08:00:00.000001Z\twarning\tenvoy config\tStreamAggregatedResources gRPC config stream closed: 14, connection error\r",
            Want {
                layout: IstioTab,
                time: "2021-06-01T08:00:00.000001Z",
                level: Warn,
                logger: "config",
                location: None,
                thread: None,
                conn: None,
                stream: None,
                message: "StreamAggregatedResources gRPC config stream closed: 14, connection error",
            },
        ),
        (
            // Istio 1.8/1.9 JSON.
            r#"{"level":"debug","time":"2021-01-01T00:00:00.123456Z","scope":"envoy connection","msg":"[C12] closing socket: 0"}"#,
            Want {
                layout: Json,
                time: "2021-01-01T00:00:00.123456Z",
                level: Debug,
                logger: "connection",
                location: None,
                thread: None,
                conn: Some(12),
                stream: None,
                message: "closing socket: 0",
            },
        ),
        (
            // Istio 1.17-1.21 JSON: numeric thread; tags need unescaping (owned message).
            r#"{"level":"debug","time":"2024-02-01T10:00:00.123456Z","scope":"envoy connection","msg":"[Tags: \"ConnectionId\":\"43\"] remote close","caller":"external/envoy/source/common/network/connection_impl.cc:714","thread":22}"#,
            Want {
                layout: Json,
                time: "2024-02-01T10:00:00.123456Z",
                level: Debug,
                logger: "connection",
                location: Some("external/envoy/source/common/network/connection_impl.cc:714"),
                thread: Some(22),
                conn: Some(43),
                stream: None,
                message: "remote close",
            },
        ),
        (
            // Istio >= 1.22 JSON: string thread, other key order, ids as keys, extra keys.
            r#"{"time":"2025-03-01T10:00:00.000001Z","thread":"19","caller":"external/envoy/source/common/router/router.cc:1400","level":"debug","ConnectionId":"77","StreamId":"12345678901234567890","scope":"envoy router","msg":"upstream reset: reset reason: connection termination, transport failure reason: ","extra":{"a":[1,2]}}"#,
            Want {
                layout: Json,
                time: "2025-03-01T10:00:00.000001Z",
                level: Debug,
                logger: "router",
                location: Some("external/envoy/source/common/router/router.cc:1400"),
                thread: Some(19),
                conn: Some(77),
                stream: Some(12_345_678_901_234_567_890),
                message: "upstream reset: reset reason: connection termination, transport failure reason:",
            },
        ),
        (
            // JSON with numeric ids and warning level.
            r#"{"level":"warning","time":"2025-03-01T10:00:00.000001Z","scope":"envoy main","msg":"caught SIGTERM","ConnectionId":5,"thread":1}"#,
            Want {
                layout: Json,
                time: "2025-03-01T10:00:00.000001Z",
                level: Warn,
                logger: "main",
                location: None,
                thread: Some(1),
                conn: Some(5),
                stream: None,
                message: "caught SIGTERM",
            },
        ),
    ]
}

#[test]
fn envoy_layouts_and_id_forms() {
    for (record, want) in envoy_cases() {
        let (time, line) = envoy(record);
        assert_eq!(line.layout, want.layout, "{record}");
        assert_eq!(time.as_deref(), Some(want.time), "{record}");
        assert_eq!(line.level, want.level, "{record}");
        assert_eq!(line.logger, want.logger, "{record}");
        assert_eq!(line.source_location.as_deref(), want.location, "{record}");
        assert_eq!(line.thread, want.thread, "{record}");
        assert_eq!(line.connection_id, want.conn, "{record}");
        assert_eq!(line.stream_id, want.stream, "{record}");
        assert_eq!(line.message, want.message, "{record}");
    }
}

#[test]
fn tabs_flattened_to_spaces_give_the_same_fields() {
    for (record, _) in envoy_cases() {
        if !record.contains('\t') {
            continue;
        }
        let (time, line) = envoy(record);
        for replacement in [" ", "  ", "    "] {
            let flat = record.replace('\t', replacement);
            let (flat_time, flat_line) = envoy(&flat);
            assert_eq!(flat_time, time, "{flat}");
            assert_eq!(flat_line.layout, line.layout, "{flat}");
            assert_eq!(flat_line.level, line.level, "{flat}");
            assert_eq!(flat_line.logger, line.logger, "{flat}");
            assert_eq!(flat_line.source_location, line.source_location, "{flat}");
            assert_eq!(flat_line.thread, line.thread, "{flat}");
            assert_eq!(flat_line.connection_id, line.connection_id, "{flat}");
            assert_eq!(flat_line.stream_id, line.stream_id, "{flat}");
            assert_eq!(flat_line.message, line.message, "{flat}");
        }
    }
}

#[test]
fn common_text_case_borrows() {
    for (record, _) in envoy_cases() {
        if record.starts_with('{') {
            continue;
        }
        let (_, line) = envoy(record);
        assert!(matches!(line.message, Cow::Borrowed(_)), "{record}");
        assert!(matches!(line.logger, Cow::Borrowed(_)), "{record}");
    }
}

/// The Envoy lines of the founding incident (Istio 1.6.8, tabs pasted as single spaces).
const SEED_LINES: &[&str] = &[
    "2020-10-23T00:26:14.869776Z debug envoy filter [external/envoy/source/extensions/filters/listener/http_inspector/http_inspector.cc:37] http inspector: new connection accepted",
    "2020-10-23T00:26:14.869797Z debug envoy conn_handler [external/envoy/source/server/connection_handler_impl.cc:411] [C3656911] new connection",
    "2020-10-23T00:26:14.869803Z debug envoy connection [external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:198] [C3656911] handshake error: 1",
    "2020-10-23T00:26:14.869806Z debug envoy connection [external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:226] [C3656911] TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
    "2020-10-23T00:26:14.869808Z debug envoy connection [external/envoy/source/common/network/connection_impl.cc:200] [C3656911] closing socket: 0",
    "2020-10-23T00:26:14.869824Z debug envoy conn_handler [external/envoy/source/server/connection_handler_impl.cc:111] [C3656911] adding to cleanup list",
    "2020-10-24T17:37:23.593519Z debug envoy filter [external/envoy/source/extensions/filters/listener/original_dst/original_dst.cc:18] original_dst: New connection accepted",
    "2020-10-24T17:37:23.593538Z debug envoy filter [external/envoy/source/extensions/filters/listener/tls_inspector/tls_inspector.cc:78] tls inspector: new connection accepted",
    "2020-10-24T17:37:23.593562Z debug envoy filter [external/envoy/source/extensions/filters/listener/tls_inspector/tls_inspector.cc:148] tls:onServerName(), requestedServerName: outbound_.80_._.xxxx-service-b.preview.svc.cluster.local",
    "2020-10-24T17:37:23.593570Z debug envoy filter [external/envoy/source/extensions/filters/listener/http_inspector/http_inspector.cc:37] http inspector: new connection accepted",
    "2020-10-24T17:37:23.593612Z debug envoy conn_handler [external/envoy/source/server/connection_handler_impl.cc:411] [C3849060] new connection",
    "2020-10-24T17:37:23.594383Z debug envoy connection [external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:191] [C3849060] handshake expecting read",
    "2020-10-24T17:37:23.596346Z debug envoy connection [external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:176] [C3849060] handshake complete``` ",
];

#[test]
fn seed_lines_parse() {
    for record in SEED_LINES {
        let (time, line) = envoy(record);
        assert!(time.is_some_and(|t| t.starts_with("2020-10-2")), "{record}");
        assert_eq!(line.layout, EnvoyLayout::IstioTab, "{record}");
        assert_eq!(line.level, Severity::Debug, "{record}");
        let location = line.source_location.as_deref().unwrap_or_default();
        assert!(location.starts_with("external/envoy/source/"), "{record}");
        assert!(!line.message.starts_with('['), "{record}");
        // Connection-scoped lines carry their id; listener-filter lines carry none.
        assert_eq!(
            line.connection_id.is_some(),
            record.contains("] [C"),
            "{record}"
        );
    }
    let (_, sni) = envoy(SEED_LINES[8]);
    assert_eq!(sni.logger, "filter");
    assert_eq!(
        sni.message,
        "tls:onServerName(), requestedServerName: outbound_.80_._.xxxx-service-b.preview.svc.cluster.local"
    );
    let (_, tls) = envoy(SEED_LINES[3]);
    assert_eq!(tls.connection_id, Some(3_656_911));
    assert_eq!(
        tls.message,
        "TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST"
    );
}

#[test]
fn multi_line_messages_keep_their_continuations() {
    // 1.6 header dump (formats.md §1.5): continuation lines start with `'`.
    let record = "2021-03-01T10:00:00.000001Z\tdebug\tenvoy http\t[external/envoy/source/common/http/conn_manager_impl.cc:609] [C7][S99] request headers complete (end_stream=true):\n':authority', 'orders:8080'\n':path', '/'\n\n";
    let (_, line) = envoy(record);
    assert_eq!((line.connection_id, line.stream_id), (Some(7), Some(99)));
    assert_eq!(
        line.message,
        "request headers complete (end_stream=true):\n':authority', 'orders:8080'\n':path', '/'"
    );
    assert!(matches!(line.message, Cow::Borrowed(_)));

    // 1.17+: `\tthread=N` follows the last line of the message.
    let record = "2023-05-01T10:00:00.000001Z\tdebug\tenvoy http external/envoy/source/common/http/conn_manager_impl.cc:1046\t[Tags: \"ConnectionId\":\"1\",\"StreamId\":\"2\"] request headers complete (end_stream=false):\n':authority', 'x'\n':method', 'GET'\tthread=21";
    let (_, line) = envoy(record);
    assert_eq!(line.thread, Some(21));
    assert_eq!(
        line.message,
        "request headers complete (end_stream=false):\n':authority', 'x'\n':method', 'GET'"
    );
    assert!(matches!(line.message, Cow::Borrowed(_)));

    // A finished 1.17+ line followed by stray continuation text: thread from the header.
    let record = "2023-05-01T10:00:00.000001Z\tdebug\tenvoy main external/envoy/source/server/server.cc:1\tdump\tthread=3\n}";
    let (_, line) = envoy(record);
    assert_eq!(line.thread, Some(3));
    assert_eq!(line.message, "dump\n}");

    // Bracketed layout with a continuation.
    let record = "[2019-06-28 13:02:36.789][36][debug][router] [external/envoy/source/common/router/router.cc:320] [C5][S4] router decoding headers:\n':authority', 'b'";
    let (_, line) = envoy(record);
    assert_eq!(line.message, "router decoding headers:\n':authority', 'b'");
}

#[test]
fn agent_lines() {
    let cases: &[(&str, Severity, Option<&str>, &str)] = &[
        (
            "2024-05-01T10:00:00.000000Z\tinfo\tEnvoy command: [-c etc/istio/proxy/envoy-rev.json --drain-time-s 45 --drain-strategy immediate]",
            Severity::Info,
            None,
            "Envoy command: [-c etc/istio/proxy/envoy-rev.json --drain-time-s 45 --drain-strategy immediate]",
        ),
        (
            "2024-05-01T10:00:00.100000Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod.istio-system.svc:15012",
            Severity::Info,
            Some("xdsproxy"),
            "connected to upstream XDS server: istiod.istio-system.svc:15012",
        ),
        (
            "2024-05-01T10:10:05.000100Z\twarn\tAborted proxy instance",
            Severity::Warn,
            None,
            "Aborted proxy instance",
        ),
        (
            "2024-05-01T10:10:05.000100Z\terror\tads\tADS: \"\" ERROR: connection closed\tid=4 node=sidecar~10.0.0.1",
            Severity::Error,
            Some("ads"),
            "ADS: \"\" ERROR: connection closed\tid=4 node=sidecar~10.0.0.1",
        ),
        (
            // --log_caller adds a caller column.
            "2024-05-01T10:00:00.100000Z\tinfo\tsds\tsds/server.go:123\tSDS server started",
            Severity::Info,
            Some("sds"),
            "SDS server started",
        ),
        (
            "2020-05-28T12:01:06.578718Z\tinfo\tFLAG: --binaryPath=\"/usr/local/bin/envoy\"",
            Severity::Info,
            None,
            "FLAG: --binaryPath=\"/usr/local/bin/envoy\"",
        ),
        (
            "2020-05-28T12:01:06.600000Z\tinfo\tEpoch 0 starting",
            Severity::Info,
            None,
            "Epoch 0 starting",
        ),
        (
            // Tabs pasted as two spaces.
            "2024-05-01T10:00:00.100000Z  info  xdsproxy  connected to upstream XDS server: istiod.istio-system.svc:15012",
            Severity::Info,
            Some("xdsproxy"),
            "connected to upstream XDS server: istiod.istio-system.svc:15012",
        ),
        (
            // Tabs pasted as single spaces: the scope cannot be told from the message.
            "2024-05-01T10:00:01.000000Z info Envoy proxy is ready",
            Severity::Info,
            None,
            "Envoy proxy is ready",
        ),
        (
            r#"{"level":"info","time":"2024-05-01T10:00:00.000000Z","scope":"xdsproxy","msg":"connected to upstream XDS server: istiod.istio-system.svc:15012"}"#,
            Severity::Info,
            Some("xdsproxy"),
            "connected to upstream XDS server: istiod.istio-system.svc:15012",
        ),
        (
            r#"{"msg":"Graceful termination period is 5s, starting...","level":"info","time":"2024-05-01T10:10:00.000100Z","caller":"envoy/agent.go:42"}"#,
            Severity::Info,
            None,
            "Graceful termination period is 5s, starting...",
        ),
        (
            // Scope starts with "envoy" but not "envoy ": the agent's own scope.
            r#"{"level":"warn","time":"2024-05-01T10:10:00.000100Z","scope":"envoyproxy","msg":"x"}"#,
            Severity::Warn,
            Some("envoyproxy"),
            "x",
        ),
    ];
    for &(record, level, scope, message) in cases {
        let (time, line) = agent(record);
        assert!(time.is_some(), "{record}");
        assert_eq!(line.proxy, AgentKind::IstioAgent, "{record}");
        assert_eq!(line.level, level, "{record}");
        assert_eq!(line.scope.as_deref(), scope, "{record}");
        assert_eq!(line.message, message, "{record}");
    }
}

#[test]
fn linkerd_lines() {
    let cases: &[(&str, Severity, Option<&str>, &str)] = &[
        (
            "[     0.002411s]  INFO ThreadId(01) linkerd2_proxy: Admin interface on 0.0.0.0:4191",
            Severity::Info,
            Some("linkerd2_proxy"),
            "Admin interface on 0.0.0.0:4191",
        ),
        (
            "[ 12.3s]  WARN ThreadId(02) inbound:server{port=8080}: linkerd_app_core::serve: Connection closed error=TLS detection timeout",
            Severity::Warn,
            Some("linkerd_app_core::serve"),
            "Connection closed error=TLS detection timeout",
        ),
        (
            "[    30.123456s]  INFO ThreadId(01) inbound:server{port=8080}:rescue{client.addr=10.0.0.1:34567}: linkerd_app_core::errors::respond: HTTP/1.1 request failed error=connection closed",
            Severity::Info,
            Some("linkerd_app_core::errors::respond"),
            "HTTP/1.1 request failed error=connection closed",
        ),
        (
            "[  1234.567890s]  INFO ThreadId(02) daemon:identity: linkerd_app::identity: Certified identity id=default.ns.serviceaccount.identity.linkerd.cluster.local",
            Severity::Info,
            Some("linkerd_app::identity"),
            "Certified identity id=default.ns.serviceaccount.identity.linkerd.cluster.local",
        ),
        (
            "[    30.1s] DEBUG ThreadId(03) outbound: linkerd_app_outbound::tcp::connect: Connecting server.addr=10.0.0.9:80",
            Severity::Debug,
            Some("linkerd_app_outbound::tcp::connect"),
            "Connecting server.addr=10.0.0.9:80",
        ),
        (
            "[     0.1s]  INFO linkerd2_proxy::rt: Using single-threaded proxy runtime",
            Severity::Info,
            Some("linkerd2_proxy::rt"),
            "Using single-threaded proxy runtime",
        ),
        (
            r#"{"timestamp":"[    12.345s]","level":"INFO","fields":{"message":"Connection closed"},"target":"linkerd_app_core::serve","spans":[{"name":"inbound"}],"threadId":"ThreadId(2)"}"#,
            Severity::Info,
            Some("linkerd_app_core::serve"),
            "Connection closed",
        ),
        (
            r#"{"level":"WARN","fields":{"message":"Connection closed","error":"TLS detection timeout","client.addr":"10.0.0.1:4567","port":8080},"target":"linkerd_app_core::serve","timestamp":"[ 3.2s]"}"#,
            Severity::Warn,
            Some("linkerd_app_core::serve"),
            "Connection closed error=TLS detection timeout",
        ),
        (
            // Flattened tracing JSON.
            r#"{"timestamp":"[     0.5s]","level":"INFO","message":"Admin interface on 0.0.0.0:4191","target":"linkerd2_proxy"}"#,
            Severity::Info,
            Some("linkerd2_proxy"),
            "Admin interface on 0.0.0.0:4191",
        ),
    ];
    for &(record, level, scope, message) in cases {
        let (time, line) = agent(record);
        assert_eq!(time, None, "{record}");
        assert_eq!(line.proxy, AgentKind::LinkerdProxy, "{record}");
        assert_eq!(line.level, level, "{record}");
        assert_eq!(line.scope.as_deref(), scope, "{record}");
        assert_eq!(line.message, message, "{record}");
    }
}

/// Lines of other families and plain text: never claimed.
const NOT_OURS: &[&str] = &[
    // Application JSON.
    r#"{"level":"INFO","time":"2024-05-01T10:00:00.123Z","msg":"started"}"#,
    r#"{"@timestamp":"2024-05-01T10:00:00.123Z","level":"ERROR","message":"Connection reset","logger_name":"c.e.Foo"}"#,
    r#"{"level":30,"time":1714557600000,"pid":1,"msg":"request completed"}"#,
    r#"{"level":"info","ts":1714557600.123,"caller":"main.go:12","msg":"listening"}"#,
    r#"{"level":"info","time":"2024-05-01T10:00:00.123+02:00","msg":"listening"}"#,
    r#"{"timestamp":"2024-05-01T10:00:00.123456Z","level":"INFO","fields":{"message":"listening"},"target":"my_app::server"}"#,
    r#"{"level":"error","time":"2024-05-01T10:00:00.123Z","logger":"orders","msg":"upstream connect error or disconnect/reset before headers"}"#,
    r#"{"level":"info","msg":"envoy says \"scope\":\"envoy x\""}"#,
    r#"{"log":"hello\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}"#,
    // Envoy access log rows.
    r#"{"start_time":"2024-05-01T10:00:00.123Z","method":"GET","path":"/orders","response_code":503,"response_flags":"UC","upstream_cluster":"outbound|8080||orders.shop.svc.cluster.local"}"#,
    "[2024-05-01T10:00:00.123Z] \"GET /orders HTTP/1.1\" 503 UC upstream_reset_before_response_started{connection_termination} - \"-\" 0 95 1 - \"-\" \"curl/8.0\" \"0b1f\" \"orders:8080\" \"10.0.0.1:8080\" outbound|8080||orders.shop.svc.cluster.local 10.0.0.2:5000 10.0.0.1:8080 10.0.0.2:4000 - default",
    "[2020-10-23T00:26:14.869Z] \"- - -\" 0 UF,URX \"-\" \"-\" 0 0 1 - \"-\" \"-\" \"-\" \"-\" \"10.0.0.1:443\" PassthroughCluster - 10.0.0.1:443 10.0.0.2:5000 - -",
    // Application text.
    "2024-05-01 10:00:00.123 ERROR 1 --- [main] c.e.Foo : boom",
    "2024-05-01T10:00:00.123Z INFO  [main] c.e.Foo - boom",
    "2024-05-01T10:00:00.123456Z  INFO my_app::server: listening on 0.0.0.0:8080",
    "2024-05-01T10:00:00.123+02:00\tinfo\tmsg",
    "2024-05-01T10:00:00.123Z\tinfo\tmain.go:12\tlistening",
    "2024-05-01T10:00:00.123456Z\tINFO\tlistening",
    "2024-05-01T10:00:00.123456Z",
    "[2024-05-01 10:00:00.123][http-nio-8080-exec-1][ERROR][c.e.Foo] Connection reset",
    "[2024-05-01 10:00:00.123][1][INFO][main] started",
    "[2024-05-01 10:00:00.123] [info] [main] spdlog default layout of another program",
    "[INFO] starting",
    "[main] INFO c.e.Foo - x",
    "[1.2.3] release",
    "[ 12.3] not linkerd",
    "[2024-05-01] done",
    "12:00:00 something",
    "1234",
    "hello world",
    "",
    "{",
];

#[test]
fn other_families_are_not_claimed() {
    for record in NOT_OURS {
        assert!(parse(record).is_none(), "{record:?} -> {:?}", parse(record));
    }
}

#[test]
fn broken_lines_of_our_layouts_are_counted() {
    let cases: &[(&str, SkipReason)] = &[
        (
            "[2019-13-28 13:02:36.789][36][debug][connection] x",
            SkipReason::BadTimestamp,
        ),
        (
            "[2019-06-28 13:02:36.789][36][loud][connection] x",
            SkipReason::Malformed,
        ),
        (
            "[2019-06-28 13:02:36.789][36][debug]",
            SkipReason::Malformed,
        ),
        (
            "[Envoy (Epoch x)] [2020-03-01 12:00:00.123][24]",
            SkipReason::Malformed,
        ),
        ("[Envoy (Epoch 0)] hello", SkipReason::Malformed),
        (
            "2020-10-23T00:26:14.869776Z\tloud\tenvoy connection\tx",
            SkipReason::Malformed,
        ),
        (
            "2020-13-23T00:26:14.869776Z\tdebug\tenvoy connection\tx",
            SkipReason::BadTimestamp,
        ),
        (
            r#"{"level":"debug","time":"2021-01-01T00:00:00.123456Z","scope":"envoy connection","msg":"[C12] clos"#,
            SkipReason::InvalidJson,
        ),
        (
            r#"{"level":"loud","time":"2021-01-01T00:00:00.123456Z","scope":"envoy connection","msg":"x"}"#,
            SkipReason::Malformed,
        ),
        (
            r#"{"level":"debug","time":"yesterday","scope":"envoy connection","msg":"x"}"#,
            SkipReason::BadTimestamp,
        ),
        (
            r#"{"level":"debug","scope":"envoy connection"}"#,
            SkipReason::Malformed,
        ),
        ("[ 1.0s]  LOUD x: y", SkipReason::Malformed),
    ];
    for &(record, reason) in cases {
        assert_eq!(parse(record), Some(Err(reason)), "{record}");
    }
}

#[test]
fn id_prefix_edge_cases() {
    let base = "2021-06-01T08:00:00.000001Z\tdebug\tenvoy connection\t";
    let cases: &[(&str, Option<u64>, Option<u64>, &str)] = &[
        // Overflowing id: left in the message rather than guessed.
        (
            "[C99999999999999999999] x",
            None,
            None,
            "[C99999999999999999999] x",
        ),
        ("[C] x", None, None, "[C] x"),
        ("[C12][S] x", Some(12), None, "[S] x"),
        (
            "[Tags: \"ConnectionId\":\"1\" x",
            None,
            None,
            "[Tags: \"ConnectionId\":\"1\" x",
        ),
        ("[Tags: \"Other\":\"v\"] x", None, None, "x"),
        ("[Tags: \"ConnectionId\":\"abc\"] x", None, None, "x"),
        ("[Connection] x", None, None, "[Connection] x"),
        ("[file.cc:12]", None, None, ""),
        ("[a b:12] x", None, None, "[a b:12] x"),
    ];
    for &(message, conn, stream, rest) in cases {
        let record = format!("{base}{message}");
        let (_, line) = envoy(&record);
        assert_eq!(line.connection_id, conn, "{record}");
        assert_eq!(line.stream_id, stream, "{record}");
        assert_eq!(line.message, rest, "{record}");
    }
}

#[test]
fn snapshot_representative_lines() {
    let mut records: Vec<&str> = envoy_cases().into_iter().map(|(r, _)| r).collect();
    records.extend([
        SEED_LINES[8],
        "2024-05-01T10:00:00.100000Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod.istio-system.svc:15012",
        r#"{"level":"info","time":"2024-05-01T10:00:00.000000Z","msg":"Envoy proxy is ready"}"#,
        "[ 12.3s]  WARN ThreadId(02) inbound:server{port=8080}: linkerd_app_core::serve: Connection closed error=TLS detection timeout",
        r#"{"timestamp":"[    12.345s]","level":"INFO","fields":{"message":"Connection closed"},"target":"linkerd_app_core::serve"}"#,
    ]);
    // Input, time as RFC 3339 and payload; the origin is always empty for sidecar lines.
    let parsed: Vec<_> = records
        .iter()
        .map(|record| match parse(record) {
            Some(Ok(p)) => {
                assert!(p.origin.is_empty(), "{record}");
                (*record, Ok((p.time.map(|t| t.to_string()), p.payload)))
            }
            other => (*record, Err(format!("{other:?}"))),
        })
        .collect();
    insta::assert_debug_snapshot!(parsed);
}

/// Valid lines of every kind, used as seeds for mutation.
fn valid_lines() -> Vec<&'static str> {
    let mut lines: Vec<&str> = envoy_cases().into_iter().map(|(r, _)| r).collect();
    lines.extend(SEED_LINES);
    lines.extend([
        "2024-05-01T10:00:00.100000Z\tinfo\tsds\tsds/server.go:123\tSDS server started",
        "[    30.123456s]  INFO ThreadId(01) inbound:server{port=8080}:rescue{client.addr=10.0.0.1:34567}: linkerd_app_core::errors::respond: HTTP/1.1 request failed",
        r#"{"level":"WARN","fields":{"message":"Connection closed","error":"TLS detection timeout"},"target":"linkerd_app_core::serve","timestamp":"[ 3.2s]"}"#,
    ]);
    lines
}

#[test]
fn every_truncation_is_handled() {
    for line in valid_lines() {
        for (cut, _) in line.char_indices() {
            let _ = parse_text(&line[..cut]);
            let _ = parse_json(&line[..cut]);
        }
    }
}

#[test]
fn dispatch_routes_sidecar_lines_here() {
    // The other family parsers run before or after these; none may take a sidecar line.
    for record in valid_lines() {
        let direct = parse(record);
        assert!(matches!(direct, Some(Ok(_))), "{record}");
        let routed = crate::dispatch::parse_record(record, None);
        assert_eq!(Some(routed), direct, "{record}");
    }
}

/// A character that is likely to land on a decision point.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just('\t'),
        Just(' '),
        Just('\n'),
        Just('['),
        Just(']'),
        Just(':'),
        Just('"'),
        Just('{'),
        Just('}'),
        Just('\\'),
        Just('0'),
        Just('9'),
        Just('é'),
        any::<char>(),
    ]
}

/// The id prefix forms of formats.md §1.5, as written by Envoy.
fn id_prefix(form: u8, conn: u64, stream: u64) -> (String, Option<u64>, Option<u64>) {
    match form {
        0 => (String::new(), None, None),
        1 => (format!("[C{conn}] "), Some(conn), None),
        2 => (format!("[C{conn}][S{stream}] "), Some(conn), Some(stream)),
        3 => (
            format!("[Tags: \"ConnectionId\":\"{conn}\"] "),
            Some(conn),
            None,
        ),
        _ => (
            format!("[Tags: \"ConnectionId\":\"{conn}\",\"StreamId\":\"{stream}\"] "),
            Some(conn),
            Some(stream),
        ),
    }
}

/// Write one Envoy line in `layout` (0..=6) from its parts; returns the line, the layout
/// the parser should report and whether a location and thread are carried.
#[allow(clippy::too_many_arguments)]
fn write_envoy_line(
    layout: u8,
    time: jiff::Timestamp,
    level: &str,
    logger: &str,
    location: &str,
    thread: u32,
    prefix: &str,
    message: &str,
) -> (String, EnvoyLayout, bool, bool) {
    let millis = time.strftime("%Y-%m-%d %H:%M:%S%.3f");
    let micros = time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
    match layout {
        0 => (
            format!("[{millis}][{thread}][{level}][{logger}] [{location}] {prefix}{message}"),
            EnvoyLayout::Bracketed,
            true,
            true,
        ),
        1 => (
            format!("[Envoy (Epoch 3)] [{millis}][{thread}][{level}][{logger}] {prefix}{message}"),
            EnvoyLayout::Bracketed,
            false,
            true,
        ),
        2 => (
            format!("{micros}\t{level}\tenvoy {logger}\t[{location}] {prefix}{message}"),
            EnvoyLayout::IstioTab,
            true,
            false,
        ),
        3 => (
            format!("{micros}\t{level}\tenvoy {logger}\t{prefix}{message}"),
            EnvoyLayout::IstioTab,
            false,
            false,
        ),
        4 => (
            format!(
                "{micros}\t{level}\tenvoy {logger} {location}\t{prefix}{message}\tthread={thread}"
            ),
            EnvoyLayout::IstioTabWithCaller,
            true,
            true,
        ),
        5 => (
            serde_json::json!({
                "level": level,
                "time": micros.to_string(),
                "scope": format!("envoy {logger}"),
                "msg": format!("{prefix}{message}"),
                "caller": location,
                "thread": thread,
            })
            .to_string(),
            EnvoyLayout::Json,
            true,
            true,
        ),
        _ => (
            serde_json::json!({
                "thread": thread.to_string(),
                "msg": format!("{prefix}{message}"),
                "scope": format!("envoy {logger}"),
                "time": micros.to_string(),
                "level": level,
            })
            .to_string(),
            EnvoyLayout::Json,
            false,
            true,
        ),
    }
}

proptest! {
    #[test]
    fn constructed_envoy_lines_read_back(
        layout in 0u8..7,
        seconds in 946_684_800i64..4_102_444_800,
        micros in 0i32..1_000_000,
        level in prop::sample::select(vec!["trace", "debug", "info", "warning", "error", "critical"]),
        logger in "[a-z][a-z0-9_]{0,14}",
        location in "[a-z]{1,8}(/[a-z_]{1,12}){1,5}\\.cc:[1-9][0-9]{0,4}",
        thread in any::<u32>(),
        form in 0u8..5,
        conn in any::<u64>(),
        stream in any::<u64>(),
        message in "[A-Za-z0-9][A-Za-z0-9 :,._/|()'-]{0,60}[A-Za-z0-9)]",
    ) {
        let time = jiff::Timestamp::new(seconds, micros * 1000).unwrap();
        let (prefix, want_conn, want_stream) = id_prefix(form, conn, stream);
        let (line, want_layout, has_location, has_thread) =
            write_envoy_line(layout, time, level, &logger, &location, thread, &prefix, &message);
        let (parsed_time, parsed) = envoy(&line);
        // Bracketed lines keep milliseconds only.
        let want_time = if want_layout == EnvoyLayout::Bracketed {
            jiff::Timestamp::new(seconds, micros / 1000 * 1_000_000).unwrap()
        } else {
            time
        };
        prop_assert_eq!(parsed_time, Some(want_time.to_string()));
        prop_assert_eq!(parsed.layout, want_layout);
        prop_assert_eq!(Some(parsed.level), Severity::parse(level));
        prop_assert_eq!(&parsed.logger, &logger);
        prop_assert_eq!(parsed.source_location.as_deref(), has_location.then_some(location.as_str()));
        prop_assert_eq!(parsed.thread, has_thread.then_some(thread));
        prop_assert_eq!(parsed.connection_id, want_conn);
        prop_assert_eq!(parsed.stream_id, want_stream);
        prop_assert_eq!(&parsed.message, &message);
    }

    #[test]
    fn constructed_agent_lines_read_back(
        seconds in 946_684_800i64..4_102_444_800,
        micros in 0i32..1_000_000,
        level in prop::sample::select(vec![("debug", Severity::Debug), ("info", Severity::Info), ("warn", Severity::Warn), ("error", Severity::Error), ("fatal", Severity::Critical)]),
        scope in proptest::option::of("[a-z][a-z0-9_]{0,11}"),
        message in "[A-Z][A-Za-z0-9 :,._/()'=-]{0,60}[A-Za-z0-9)]",
        json in any::<bool>(),
    ) {
        let time = jiff::Timestamp::new(seconds, micros * 1000).unwrap();
        let stamp = time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let line = if json {
            let mut object = serde_json::json!({"level": level.0, "time": stamp, "msg": message});
            if let Some(scope) = &scope {
                object["scope"] = serde_json::Value::from(scope.as_str());
            }
            object.to_string()
        } else {
            match &scope {
                Some(scope) => format!("{stamp}\t{}\t{scope}\t{message}", level.0),
                None => format!("{stamp}\t{}\t{message}", level.0),
            }
        };
        let (parsed_time, parsed) = agent(&line);
        prop_assert_eq!(parsed_time, Some(time.to_string()));
        prop_assert_eq!(parsed.proxy, AgentKind::IstioAgent);
        prop_assert_eq!(parsed.level, level.1);
        prop_assert_eq!(parsed.scope.as_deref(), scope.as_deref());
        prop_assert_eq!(&parsed.message, &message);
    }

    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = parse_text(&s);
        let _ = parse_json(&s);
    }

    #[test]
    fn never_panics_on_layout_like_text(s in "[\\[{0-9]{0,3}[-0-9 :.TZ\\[\\]\\ta-zA-Z\"{}=(),/_]{0,120}") {
        let _ = parse_text(&s);
        let _ = parse_json(&s);
    }

    #[test]
    fn never_panics_on_mutated_valid_lines(
        pick in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..3, interesting_char()), 1..6),
    ) {
        let lines = valid_lines();
        let mut chars: Vec<char> = pick.get(&lines).chars().collect();
        for (at, op, c) in edits {
            let len = chars.len();
            match op {
                0 => chars.insert(if len == 0 { 0 } else { at.index(len + 1) }, c),
                1 if len > 0 => { chars.remove(at.index(len)); }
                _ if len > 0 => chars[at.index(len)] = c,
                _ => chars.push(c),
            }
        }
        let mutated: String = chars.into_iter().collect();
        let _ = parse_text(&mutated);
        let _ = parse_json(&mutated);
    }
}
