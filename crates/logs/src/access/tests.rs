//! Tests of both access log parsers: rows built from every template in formats.md §3,
//! snapshots of representative parses, negative cases and properties.

use super::*;
use meshdoctor_model::{AccessEntry, AccessFormat, Payload};
use proptest::prelude::*;
use std::borrow::Cow;

fn entry(line: &str) -> AccessEntry<'_> {
    let parsed = parse_text(line)
        .or_else(|| parse_json(line))
        .unwrap_or_else(|| panic!("not claimed: {line}"))
        .unwrap_or_else(|e| panic!("rejected ({e:?}): {line}"));
    match parsed.payload {
        Payload::Access(entry) => *entry,
        other => panic!("not an access payload: {other:?}"),
    }
}

/// What a table row expects; `None` in a text column means "`-`/absent in the row".
struct Want {
    format: Option<AccessFormat>,
    method: Option<&'static str>,
    code: u16,
    flags: &'static str,
    details: Option<&'static str>,
    tfr: Option<&'static str>,
    user_agent: Option<&'static str>,
    cluster: Option<&'static str>,
    sni: Option<&'static str>,
    route: Option<&'static str>,
}

fn check(line: &str, want: &Want) {
    let e = entry(line);
    assert_eq!(e.format, want.format, "format of {line}");
    assert_eq!(e.method.as_deref(), want.method, "method of {line}");
    assert_eq!(e.response_code, want.code, "code of {line}");
    assert_eq!(e.response_flags.to_string(), want.flags, "flags of {line}");
    assert_eq!(
        e.response_code_details.as_deref(),
        want.details,
        "details of {line}"
    );
    assert_eq!(
        e.upstream_transport_failure_reason.as_deref(),
        want.tfr,
        "transport failure of {line}"
    );
    assert_eq!(
        e.user_agent.as_deref(),
        want.user_agent,
        "user agent of {line}"
    );
    assert_eq!(
        e.upstream_cluster.as_deref(),
        want.cluster,
        "cluster of {line}"
    );
    assert_eq!(
        e.requested_server_name.as_deref(),
        want.sni,
        "sni of {line}"
    );
    assert_eq!(e.route_name.as_deref(), want.route, "route of {line}");
}

const ISTIO_123_UC: &str = r#"[2024-05-01T10:00:00.123Z] "GET /api/orders/42 HTTP/1.1" 503 UC upstream_reset_before_response_started{connection_termination} - "-" 0 95 3 - "-" "okhttp/4.12.0" "0b6f3c1e-9d55-4f0e-a0c9-2a1f0d3b7e11" "orders:8080" "10.244.1.17:8080" outbound|8080||orders.shop.svc.cluster.local 10.244.2.5:45678 10.96.12.34:8080 10.244.2.5:52110 - default"#;
const ISTIO_123_TCP: &str = r#"[2024-05-01T10:00:00.456Z] "- - -" 0 UF,URX - - "-" 0 0 10001 - "-" "-" "-" "-" "10.0.0.9:5432" outbound|5432||db.data.svc.cluster.local - 10.96.0.50:5432 10.244.2.5:39812 - -"#;
const ISTIO_123_INBOUND_DC: &str = r#"[2024-05-01T10:00:01.000Z] "POST /charge HTTP/1.1" 0 DC downstream_remote_disconnect - "-" 512 0 30001 - "-" "Go-http-client/1.1" "5a1d..." "payments:8080" "10.244.1.30:8080" inbound|8080|| 127.0.0.6:40121 10.244.1.30:8080 10.244.2.5:52220 outbound_.8080_._.payments.shop.svc.cluster.local default"#;
const ISTIO_123_PASSTHROUGH_TCP: &str = r#"[2024-05-01T10:00:02.000Z] "- - -" 0 - - - "-" 1024 4096 50 - "-" "-" "-" "-" "93.184.216.34:443" PassthroughCluster 10.244.2.5:51000 93.184.216.34:443 10.244.2.5:50998 example.com -"#;
const ISTIO_19_ALT_STAT: &str = r#"[2024-05-01T10:00:03.000Z] "GET /healthz HTTP/2" 200 - via_upstream - "-" 0 2 1 1 "-" "kube-probe/1.29" "f00" "orders:8080" "10.244.1.17:8080" outbound|8080||orders.shop.svc.cluster.local; 10.244.2.5:45678 10.96.12.34:8080 10.244.2.5:52110 - default"#;
const ISTIO_19_TLS: &str = r#"[2024-05-01T10:00:04.000Z] "GET /x HTTP/1.1" 503 UF upstream_reset_before_response_started{remote_connection_failure|TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end} - "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end" 0 190 2 - "-" "curl/8.5.0" "abc" "legacy:443" "10.244.3.3:443" outbound|443||legacy.shop.svc.cluster.local - 10.96.3.3:443 10.244.2.5:40000 - default"#;
const ISTIO_19_QUOTED_UA: &str = r#"[2024-05-01T10:00:05.000Z] "GET /search?q="a b" HTTP/1.1" 200 - via_upstream - "-" 0 10 4 3 "10.0.0.1, 10.0.0.2" "Mozilla/5.0 "quoted" " "also" agent" "id-1" "web:80" "10.244.4.4:80" outbound|80||web.shop.svc.cluster.local 10.244.2.5:40001 10.96.4.4:80 10.244.2.5:40002 - web.shop.svc.cluster.local:80/*"#;
const ISTIO_19_BLACKHOLE: &str = r#"[2024-05-01T10:00:06.000Z] "- - -" 0 UH - - "-" 0 0 0 - "-" "-" "-" "-" "-" BlackHoleCluster - 1.2.3.4:443 10.244.2.5:40003 - -"#;
const ISTIO_19_INBOUND_PASSTHROUGH: &str = r#"[2024-05-01T10:00:07.000Z] "GET /metrics HTTP/1.1" 200 - via_upstream - "-" 0 900 2 1 "-" "Prometheus/2.45.0" "id-2" "10.244.2.5:9090" "10.244.2.5:9090" InboundPassthroughClusterIpv4 127.0.0.6:40004 10.244.2.5:9090 10.244.9.9:40005 - default"#;
const ISTIO_18: &str = r#"[2021-01-12T08:00:00.000Z] "GET /productpage HTTP/1.1" 200 - "-" 0 5183 47 46 "10.1.0.1" "Mozilla/5.0 (X11; Linux x86_64)" "c1b2a3" "productpage:9080" "127.0.0.1:9080" inbound|9080|| 127.0.0.1:44444 10.1.2.3:9080 10.1.0.1:0 outbound_.9080_._.productpage.default.svc.cluster.local default"#;
const ISTIO_18_TCP: &str = r#"[2021-01-12T08:00:01.000Z] "- - -" 0 UF,URX "-" 0 0 1000 - "-" "-" "-" "-" "10.1.9.9:3306" outbound|3306||mysql.default.svc.cluster.local - 10.0.9.9:3306 10.1.2.3:50000 - -"#;
const ISTIO_17: &str = r#"[2020-10-23T00:26:14.869Z] "GET /reviews/0 HTTP/1.1" 503 UC "-" "-" 0 95 3 - "-" "curl/7.64.0" "d5e4" "reviews:9080" "10.1.1.5:9080" outbound|9080||reviews.default.svc.cluster.local 10.1.2.3:40000 10.0.0.7:9080 10.1.2.3:50000 - default"#;
const ISTIO_17_INBOUND: &str = r#"[2020-10-23T00:26:15.000Z] "GET /reviews/0 HTTP/1.1" 200 - "-" "-" 0 295 12 11 "-" "curl/7.64.0" "d5e4" "reviews:9080" "127.0.0.1:9080" inbound|9080|http|reviews.default.svc.cluster.local 127.0.0.1:40010 10.1.1.5:9080 10.1.2.3:40000 outbound_.9080_._.reviews.default.svc.cluster.local default"#;
const ISTIO_17_TCP: &str = r#"[2020-10-23T00:26:16.000Z] "- - -" 0 - "-" "-" 150 300 2000 - "-" "-" "-" "-" "10.1.8.8:6379" outbound|6379||redis.default.svc.cluster.local 10.1.2.3:40020 10.0.8.8:6379 10.1.2.3:40021 - -"#;
const ISTIO_12: &str = r#"[2019-06-28T13:02:36.789Z] "GET /status/200 HTTP/1.1" 200 - "-" "-" 0 0 5 4 "-" "curl/7.60.0" "e6f7" "httpbin:8000" "10.1.3.3:80" outbound|8000||httpbin.default.svc.cluster.local - 10.0.3.3:8000 10.1.2.3:40030 -"#;
const ENVOY_DEFAULT: &str = r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#;

#[test]
fn text_templates() {
    let none = Want {
        format: None,
        method: None,
        code: 0,
        flags: "-",
        details: None,
        tfr: None,
        user_agent: None,
        cluster: None,
        sni: None,
        route: None,
    };
    let cases = [
        (
            ISTIO_123_UC,
            Want {
                format: Some(AccessFormat::TextIstio19),
                method: Some("GET"),
                code: 503,
                flags: "UC",
                details: Some("upstream_reset_before_response_started{connection_termination}"),
                user_agent: Some("okhttp/4.12.0"),
                cluster: Some("outbound|8080||orders.shop.svc.cluster.local"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_123_TCP,
            Want {
                format: Some(AccessFormat::TextIstio19),
                flags: "UF,URX",
                cluster: Some("outbound|5432||db.data.svc.cluster.local"),
                ..none
            },
        ),
        (
            ISTIO_123_INBOUND_DC,
            Want {
                format: Some(AccessFormat::TextIstio19),
                method: Some("POST"),
                flags: "DC",
                details: Some("downstream_remote_disconnect"),
                user_agent: Some("Go-http-client/1.1"),
                cluster: Some("inbound|8080||"),
                sni: Some("outbound_.8080_._.payments.shop.svc.cluster.local"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_123_PASSTHROUGH_TCP,
            Want {
                format: Some(AccessFormat::TextIstio19),
                cluster: Some("PassthroughCluster"),
                sni: Some("example.com"),
                ..none
            },
        ),
        (
            ISTIO_19_ALT_STAT,
            Want {
                format: Some(AccessFormat::TextIstio19),
                method: Some("GET"),
                code: 200,
                details: Some("via_upstream"),
                user_agent: Some("kube-probe/1.29"),
                cluster: Some("outbound|8080||orders.shop.svc.cluster.local"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_19_TLS,
            Want {
                format: Some(AccessFormat::TextIstio19),
                method: Some("GET"),
                code: 503,
                flags: "UF",
                details: Some(
                    "upstream_reset_before_response_started{remote_connection_failure|TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end}",
                ),
                tfr: Some(
                    "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end",
                ),
                user_agent: Some("curl/8.5.0"),
                cluster: Some("outbound|443||legacy.shop.svc.cluster.local"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_19_QUOTED_UA,
            Want {
                format: Some(AccessFormat::TextIstio19),
                method: Some("GET"),
                code: 200,
                details: Some("via_upstream"),
                user_agent: Some(r#"Mozilla/5.0 "quoted" " "also" agent"#),
                cluster: Some("outbound|80||web.shop.svc.cluster.local"),
                route: Some("web.shop.svc.cluster.local:80/*"),
                ..none
            },
        ),
        (
            ISTIO_19_BLACKHOLE,
            Want {
                format: Some(AccessFormat::TextIstio19),
                flags: "UH",
                cluster: Some("BlackHoleCluster"),
                ..none
            },
        ),
        (
            ISTIO_19_INBOUND_PASSTHROUGH,
            Want {
                format: Some(AccessFormat::TextIstio19),
                method: Some("GET"),
                code: 200,
                details: Some("via_upstream"),
                user_agent: Some("Prometheus/2.45.0"),
                cluster: Some("InboundPassthroughClusterIpv4"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_18,
            Want {
                format: Some(AccessFormat::TextIstio18),
                method: Some("GET"),
                code: 200,
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)"),
                cluster: Some("inbound|9080||"),
                sni: Some("outbound_.9080_._.productpage.default.svc.cluster.local"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_18_TCP,
            Want {
                format: Some(AccessFormat::TextIstio18),
                flags: "UF,URX",
                cluster: Some("outbound|3306||mysql.default.svc.cluster.local"),
                ..none
            },
        ),
        (
            ISTIO_17,
            Want {
                format: Some(AccessFormat::TextIstio13),
                method: Some("GET"),
                code: 503,
                flags: "UC",
                user_agent: Some("curl/7.64.0"),
                cluster: Some("outbound|9080||reviews.default.svc.cluster.local"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_17_INBOUND,
            Want {
                format: Some(AccessFormat::TextIstio13),
                method: Some("GET"),
                code: 200,
                user_agent: Some("curl/7.64.0"),
                cluster: Some("inbound|9080|http|reviews.default.svc.cluster.local"),
                sni: Some("outbound_.9080_._.reviews.default.svc.cluster.local"),
                route: Some("default"),
                ..none
            },
        ),
        (
            ISTIO_17_TCP,
            Want {
                format: Some(AccessFormat::TextIstio13),
                cluster: Some("outbound|6379||redis.default.svc.cluster.local"),
                ..none
            },
        ),
        (
            ISTIO_12,
            Want {
                format: Some(AccessFormat::TextIstio13),
                method: Some("GET"),
                code: 200,
                user_agent: Some("curl/7.60.0"),
                cluster: Some("outbound|8000||httpbin.default.svc.cluster.local"),
                ..none
            },
        ),
        (
            ENVOY_DEFAULT,
            Want {
                method: Some("POST"),
                code: 204,
                user_agent: Some("nsq2http"),
                ..none
            },
        ),
    ];
    for (line, want) in &cases {
        check(line, want);
        // Tools and copy-paste turn the record separator into CRLF or keep a continuation.
        check(&format!("{line}\r\n"), want);
        check(&format!("{line}\n  continuation"), want);
    }
}

#[test]
fn text_numbers_and_addresses() {
    let e = entry(ISTIO_123_UC);
    assert_eq!(
        (
            e.bytes_received,
            e.bytes_sent,
            e.duration_ms,
            e.upstream_service_time_ms
        ),
        (Some(0), Some(95), Some(3), None)
    );
    assert_eq!(e.path.as_deref(), Some("/api/orders/42"));
    assert_eq!(e.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(
        e.request_id.as_deref(),
        Some("0b6f3c1e-9d55-4f0e-a0c9-2a1f0d3b7e11")
    );
    assert_eq!(e.authority.as_deref(), Some("orders:8080"));
    assert_eq!(e.upstream_host.as_deref(), Some("10.244.1.17:8080"));
    assert_eq!(
        e.upstream_local_address.as_deref(),
        Some("10.244.2.5:45678")
    );
    assert_eq!(
        e.downstream_local_address.as_deref(),
        Some("10.96.12.34:8080")
    );
    assert_eq!(
        e.downstream_remote_address.as_deref(),
        Some("10.244.2.5:52110")
    );
    assert_eq!(e.connection_termination_details, None);
    assert!(!e.is_tcp());
    assert!(entry(ISTIO_123_TCP).is_tcp());

    let e = entry(ISTIO_19_QUOTED_UA);
    assert_eq!(e.path.as_deref(), Some(r#"/search?q="a b""#));
    assert_eq!(e.x_forwarded_for.as_deref(), Some("10.0.0.1, 10.0.0.2"));
    assert_eq!(e.request_id.as_deref(), Some("id-1"));
    assert_eq!(e.upstream_service_time_ms, Some(3));

    let e = entry(ENVOY_DEFAULT);
    assert_eq!(e.upstream_host.as_deref(), Some("tcp://10.0.2.1:80"));
    assert_eq!(e.protocol.as_deref(), Some("HTTP/2"));
    assert_eq!(e.upstream_cluster, None);
}

#[test]
fn text_time_is_start_time() {
    let parsed = parse_text(ISTIO_123_UC).unwrap().unwrap();
    assert_eq!(
        parsed.time.map(|t| t.to_string()).as_deref(),
        Some("2024-05-01T10:00:00.123Z")
    );
    assert!(parsed.origin.is_empty());
}

#[test]
fn text_variations_are_tolerated() {
    // Bare ISO time (custom formats drop the brackets), tabs for spaces, extra fields after
    // the route name, and a row whose route name was cut off.
    let bare = ISTIO_123_UC.replacen('[', "", 1).replacen(']', "", 1);
    assert_eq!(entry(&bare).response_code, 503);
    let tabs = ISTIO_123_UC.replace(' ', "\t");
    let e = entry(&tabs);
    assert_eq!(e.upstream_host.as_deref(), Some("10.244.1.17:8080"));
    assert_eq!(e.route_name.as_deref(), Some("default"));
    let extra = format!("{ISTIO_123_UC} extra1 extra2");
    assert_eq!(entry(&extra).route_name.as_deref(), Some("default"));
    let no_route = ISTIO_123_UC.trim_end_matches(" default");
    let e = entry(no_route);
    assert_eq!(e.route_name, None);
    assert_eq!(e.requested_server_name, None);
    assert_eq!(e.format, Some(AccessFormat::TextIstio19));
    // Epoch seconds from `%START_TIME(%s)%`.
    let epoch = ISTIO_123_UC.replace("2024-05-01T10:00:00.123Z", "1714557600");
    let parsed = parse_text(&epoch).unwrap().unwrap();
    assert_eq!(
        parsed.time.map(|t| t.to_string()).as_deref(),
        Some("2024-05-01T10:00:00Z")
    );
    // Unknown flags are kept as OTHER, and flag order does not matter.
    let reordered = ISTIO_123_TCP.replace("UF,URX", "URX,UF,ZZ");
    let e = entry(&reordered);
    assert_eq!(e.response_flags.to_string(), "UF,URX,OTHER");
}

#[test]
fn text_truncated_rows_are_claimed_but_rejected() {
    for cut in [
        r#"[2024-05-01T10:00:00.123Z] "GET"#,
        r#"[2024-05-01T10:00:00.123Z] "GET /api/orders/42 HTTP/1.1"#,
        r#"[2024-05-01T10:00:00.123Z] "GET /api/orders/42 HTTP/1.1" 503"#,
        r#"[2024-05-01T10:00:00.123Z] "GET /api/orders/42 HTTP/1.1" 503 UC upstream_reset_before_response_started{connection_termination} - "-" 0 95"#,
        r#"[2024-05-01T10:00:00.123Z] "GET /api/orders/42 HTTP/1.1" 503 UC upstream_reset_before_response_started{connection_termination} - "-" 0 95 3 - "-" "okhttp/4.12.0" "0b6f3c1e"#,
        r#"[2024-05-01T10:00:00.123Z] "GET /api/orders/42 HTTP/1.1" 503 UC upstream_reset_before_response_started{connection_termination} - "-" 0 95 3 - "-" "okhttp/4.12.0" "0b6f3c1e-9d55-4f0e-a0c9-2a1f0d3b7e11" "orders:8080" "10.244.1.17:8080" outbound|8080||orders.shop.svc.cluster.local 10.244.2.5:45678"#,
    ] {
        assert_eq!(parse_text(cut), Some(Err(SkipReason::Malformed)), "{cut}");
    }
    let bad_time = ISTIO_123_UC.replace("2024-05-01T10", "2024-13-01T10");
    assert_eq!(parse_text(&bad_time), Some(Err(SkipReason::BadTimestamp)));
}

#[test]
fn text_non_access_lines_are_not_claimed() {
    for line in [
        "",
        "[",
        "[]",
        "hello world",
        r#"[2019-06-28 13:02:36.789][36][debug][router] [source/common/router/router.cc:434] [C1][S2] cluster 'outbound|9080||reviews' match for URL '/reviews/0'"#,
        r#"[2024-05-01 10:00:00.000][15][warning][config] [external/envoy/source/common/config/grpc_stream.h:101] StreamAggregatedResources gRPC config stream closed: 14, "x""#,
        "2020-10-23T00:26:14.869776Z\tdebug\tenvoy filter\t[C1] new tcp proxy session",
        "2024-05-01T10:00:00.123Z\twarning\tenvoy config\tStreamAggregatedResources gRPC config stream closed",
        r#"[INFO] "GET / HTTP/1.1" 200 - handled"#,
        r#"[2024-05-01 10:00:00,123] "Started application" in 3.2s"#,
        r#"2024-05-01 10:00:00.123 INFO  "GET /x" took 3ms"#,
        r#"{"level":"info","msg":"GET /x 503"}"#,
    ] {
        assert_eq!(parse_text(line), None, "{line}");
    }
}

#[test]
fn head_only_fast_path() {
    let (time, code, flags) = parse_head(ISTIO_123_UC).unwrap();
    assert_eq!(time.to_string(), "2024-05-01T10:00:00.123Z");
    assert_eq!(code, 503);
    assert!(flags.has("UC"));
    // The head does not need the rest of the row.
    let head_only = r#"[2024-05-01T10:00:00.456Z] "- - -" 0 UF,URX"#;
    let (_, code, flags) = parse_head(head_only).unwrap();
    assert_eq!((code, flags.to_string().as_str()), (0, "UF,URX"));
    assert_eq!(parse_head("[2019-06-28 13:02:36.789][36][debug] x"), None);
    let head = split_head(ISTIO_123_UC).unwrap().unwrap();
    assert_eq!(head.response_flags, "UC");
    assert_eq!(head.path, "/api/orders/42");
}

const JSON_19: &str = r#"{"authority":"orders:8080","bytes_received":0,"bytes_sent":95,"connection_termination_details":null,"downstream_local_address":"10.96.12.34:8080","downstream_remote_address":"10.244.2.5:52110","duration":3,"method":"GET","path":"/api/orders/42","protocol":"HTTP/1.1","request_id":"0b6f3c1e-9d55-4f0e-a0c9-2a1f0d3b7e11","requested_server_name":null,"response_code":503,"response_code_details":"upstream_reset_before_response_started{connection_termination}","response_flags":"UC","route_name":"default","start_time":"2024-05-01T10:00:00.123Z","upstream_cluster":"outbound|8080||orders.shop.svc.cluster.local","upstream_host":"10.244.1.17:8080","upstream_local_address":"10.244.2.5:45678","upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":"okhttp/4.12.0","x_forwarded_for":null}"#;
const JSON_STRINGS: &str = r#"{"start_time":"2024-05-01T10:00:00.456Z","method":"-","path":"-","protocol":"-","response_code":"0","response_flags":"UF,URX","response_code_details":"-","connection_termination_details":"-","upstream_transport_failure_reason":"-","bytes_received":"0","bytes_sent":"0","duration":"10001","upstream_service_time":"-","x_forwarded_for":"-","user_agent":"-","request_id":"-","authority":"-","upstream_host":"10.0.0.9:5432","upstream_cluster":"outbound|5432||db.data.svc.cluster.local;","upstream_local_address":"-","downstream_local_address":"10.96.0.50:5432","downstream_remote_address":"10.244.2.5:39812","requested_server_name":"-","route_name":"-"}"#;
const JSON_17: &str = r#"{"upstream_cluster":"outbound|9080||reviews.default.svc.cluster.local","istio_policy_status":"-","response_flags":"UC","start_time":"2020-10-23T00:26:14.869Z","response_code":"503","method":"GET","path":"/reviews/0","protocol":"HTTP/1.1","bytes_received":"0","bytes_sent":"95","duration":"3","upstream_service_time":"-","x_forwarded_for":"-","user_agent":"curl/7.64.0","request_id":"d5e4","authority":"reviews:9080","upstream_host":"10.1.1.5:9080","upstream_local_address":"10.1.2.3:40000","downstream_local_address":"10.0.0.7:9080","downstream_remote_address":"10.1.2.3:50000","requested_server_name":"-","route_name":"default","upstream_transport_failure_reason":"-"}"#;
const JSON_ESCAPED_EXTRA: &str = r#"{"kubernetes":{"pod_name":"orders-1"},"tags":[1,2],"response_code":200,"duration":12.0,"user_agent":"Mozilla/5.0 \"quoted\"","path":"/a\\b","response_flags":"-","upstream_cluster":"inbound|8080||","start_time":1714557600123,"bytes_sent":-1,"sampled":true}"#;

#[test]
fn json_templates() {
    let e = entry(JSON_19);
    assert_eq!(e.format, Some(AccessFormat::Json));
    assert_eq!(
        (e.response_code, e.response_flags.to_string().as_str()),
        (503, "UC")
    );
    assert_eq!(
        e.upstream_cluster.as_deref(),
        Some("outbound|8080||orders.shop.svc.cluster.local")
    );
    assert_eq!(
        (e.bytes_sent, e.duration_ms, e.upstream_service_time_ms),
        (Some(95), Some(3), None)
    );
    assert_eq!(e.requested_server_name, None);
    assert!(matches!(e.user_agent, Some(Cow::Borrowed("okhttp/4.12.0"))));

    let e = entry(JSON_STRINGS);
    assert!(e.is_tcp());
    assert_eq!(e.response_code, 0);
    assert_eq!(e.response_flags.to_string(), "UF,URX");
    assert_eq!(e.duration_ms, Some(10001));
    assert_eq!(
        e.upstream_cluster.as_deref(),
        Some("outbound|5432||db.data.svc.cluster.local")
    );
    assert_eq!(e.response_code_details, None);

    let e = entry(JSON_17);
    assert_eq!((e.response_code, e.bytes_sent), (503, Some(95)));
    assert_eq!(e.response_code_details, None);
    assert_eq!(e.route_name.as_deref(), Some("default"));

    let parsed = parse_json(JSON_ESCAPED_EXTRA).unwrap().unwrap();
    assert_eq!(
        parsed.time.map(|t| t.to_string()).as_deref(),
        Some("2024-05-01T10:00:00.123Z")
    );
    let Payload::Access(e) = parsed.payload else {
        panic!("not access")
    };
    assert_eq!(e.user_agent.as_deref(), Some(r#"Mozilla/5.0 "quoted""#));
    assert_eq!(e.path.as_deref(), Some(r"/a\b"));
    assert_eq!((e.duration_ms, e.bytes_sent), (Some(12), None));
    assert_eq!(e.upstream_cluster.as_deref(), Some("inbound|8080||"));
}

#[test]
fn json_claims_only_access_rows() {
    for line in [
        r#"{"level":"info","msg":"done","status":503}"#,
        r#"{"response_code":503,"message":"no companion key"}"#,
        r#"{"msg":"saw \"response_code\": 503 and \"duration\": 3 in a payload"}"#,
        r#"{"level":"debug","time":"2024-05-01T10:00:00.123Z","scope":"envoy router","msg":"[C1][S2] upstream reset"}"#,
        "not json",
        "",
    ] {
        assert_eq!(parse_json(line), None, "{line}");
    }
    let truncated = JSON_19.get(..JSON_19.len() - 40).unwrap();
    assert_eq!(parse_json(truncated), Some(Err(SkipReason::InvalidJson)));
    assert_eq!(
        parse_json(&JSON_19.replace(r#""response_code":503"#, r#""response_code":"abc""#)),
        Some(Err(SkipReason::Malformed))
    );
    assert_eq!(
        parse_json(&JSON_19.replace("2024-05-01T10", "yesterday")),
        Some(Err(SkipReason::BadTimestamp))
    );
}

#[test]
fn snapshots() {
    for (name, line) in [
        ("istio123_uc", ISTIO_123_UC),
        ("istio123_tcp", ISTIO_123_TCP),
        ("istio123_inbound_dc", ISTIO_123_INBOUND_DC),
        ("istio19_quoted_ua", ISTIO_19_QUOTED_UA),
        ("istio18", ISTIO_18),
        ("istio17", ISTIO_17),
        ("envoy_default", ENVOY_DEFAULT),
        ("json19", JSON_19),
        ("json_strings", JSON_STRINGS),
    ] {
        let parsed = parse_text(line)
            .or_else(|| parse_json(line))
            .unwrap()
            .unwrap();
        let time = parsed.time.map(|t| t.to_string());
        let Payload::Access(e) = parsed.payload else {
            panic!("not access")
        };
        let flags = e.response_flags.to_string();
        let direction = e.direction();
        insta::assert_debug_snapshot!(name, (time, flags, direction, e));
    }
}

/// Valid rows of every layout, for the mutation properties.
const VALID: [&str; 10] = [
    ISTIO_123_UC,
    ISTIO_123_TCP,
    ISTIO_19_QUOTED_UA,
    ISTIO_19_TLS,
    ISTIO_18,
    ISTIO_17,
    ISTIO_12,
    ENVOY_DEFAULT,
    JSON_19,
    JSON_ESCAPED_EXTRA,
];

fn render_19(path: &str, ua: &str, req_id: &str, flags: &str, code: u16) -> String {
    format!(
        r#"[2024-05-01T10:00:00.123Z] "GET {path} HTTP/1.1" {code} {flags} via_upstream - "-" 1 2 3 4 "-" "{ua}" "{req_id}" "a:80" "10.0.0.1:80" outbound|80||a.b.svc.cluster.local 10.0.0.2:1 10.0.0.3:80 10.0.0.2:2 - default"#
    )
}

/// How a JSON row spells one numeric value: 0 number, 1 numeric string, 2 `"-"`, 3 `null`,
/// 4 absent.
fn json_number(key: &str, value: u64, spelling: u8) -> Option<String> {
    match spelling {
        0 => Some(format!("\"{key}\":{value}")),
        1 => Some(format!("\"{key}\":\"{value}\"")),
        2 => Some(format!("\"{key}\":\"-\"")),
        3 => Some(format!("\"{key}\":null")),
        _ => None,
    }
}

proptest! {
    #[test]
    fn json_keys_in_any_order_and_any_spelling(
        code in prop_oneof![Just(0u64), Just(200), Just(503)],
        numbers in prop::collection::vec((0u64..100_000, 0u8..5), 4),
        code_as_string in any::<bool>(),
        ua in "[ -~]{0,30}",
        order in Just((0usize..9).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let keys = ["bytes_received", "bytes_sent", "duration", "upstream_service_time"];
        let mut fields: Vec<String> = keys
            .iter()
            .zip(&numbers)
            .filter_map(|(key, &(value, spelling))| json_number(key, value, spelling))
            .collect();
        fields.push(if code_as_string {
            format!("\"response_code\":\"{code}\"")
        } else {
            format!("\"response_code\":{code}")
        });
        fields.push(r#""response_flags":"UF,URX""#.to_string());
        fields.push(format!("\"user_agent\":{}", serde_json::to_string(&ua).unwrap()));
        fields.push(r#""upstream_cluster":"outbound|80||a.b.svc.cluster.local;""#.to_string());
        fields.push(r#""extra":{"nested":[1,"x",null]}"#.to_string());
        let mut shuffled: Vec<&String> = order.iter().filter_map(|&i| fields.get(i)).collect();
        shuffled.extend(fields.iter().skip(9));
        let line = format!("{{{}}}", shuffled.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","));
        let e = entry(&line);
        prop_assert_eq!(u64::from(e.response_code), code);
        prop_assert_eq!(e.response_flags.to_string(), "UF,URX");
        prop_assert_eq!(e.user_agent.as_deref(), non_empty(&ua));
        prop_assert_eq!(e.upstream_cluster.as_deref(), Some("outbound|80||a.b.svc.cluster.local"));
        let got = [e.bytes_received, e.bytes_sent, e.duration_ms, e.upstream_service_time_ms];
        for (got, &(value, spelling)) in got.iter().zip(&numbers) {
            prop_assert_eq!(*got, (spelling < 2).then_some(value));
        }
    }

    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = parse_text(&s);
        let _ = parse_json(&s);
        let _ = parse_head(&s);
    }

    #[test]
    fn never_panics_on_access_like_text(s in r#"[\[\]" 0-9a-zA-Z{}:,.|;\-\t]{0,120}"#) {
        let line = format!("[2024-05-01T10:00:00.123Z] \"GET {s}");
        let _ = parse_text(&line);
        let json = format!("{{\"response_code\":503,\"duration\":{s}");
        let _ = parse_json(&json);
    }

    #[test]
    fn truncations_are_claimed_and_never_panic(idx in 0usize..VALID.len(), cut in 0usize..800) {
        let row = VALID[idx];
        let mut end = cut.min(row.len());
        while !row.is_char_boundary(end) {
            end -= 1;
        }
        let prefix = &row[..end];
        let text = parse_text(prefix);
        let _ = parse_json(prefix);
        // Once `[time] "M` is there the row is recognisably an access row.
        if row.starts_with('[') && end > row.find("] \"").unwrap_or(usize::MAX) + 3 {
            prop_assert!(text.is_some(), "not claimed: {prefix}");
        }
    }

    #[test]
    fn mutations_never_panic(idx in 0usize..VALID.len(), at in 0usize..800, len in 0usize..20, insert in "\\PC{0,4}") {
        let row = VALID[idx];
        let mut from = at.min(row.len());
        while !row.is_char_boundary(from) {
            from -= 1;
        }
        let mut to = (from + len).min(row.len());
        while !row.is_char_boundary(to) {
            to -= 1;
        }
        let mutated = format!("{}{insert}{}", &row[..from], &row[to..]);
        let _ = parse_text(&mutated);
        let _ = parse_json(&mutated);
        let _ = parse_head(&mutated);
    }

    #[test]
    fn quotes_and_spaces_in_values_round_trip(
        path in "/[!-~]{0,30}",
        ua in "[ -~]{1,40}",
        req_id in "[a-f0-9-]{1,36}",
        flags in "(-|UC|UF,URX|UH|DC)",
        code in prop_oneof![Just(0u16), Just(200), Just(503)],
    ) {
        let line = render_19(&path, &ua, &req_id, &flags, code);
        let parsed = parse_text(&line);
        prop_assert!(matches!(parsed, Some(Ok(_))), "{line}");
        let e = entry(&line);
        prop_assert_eq!(e.path.as_deref(), non_empty(&path));
        prop_assert_eq!(e.user_agent.as_deref(), non_empty(&ua));
        prop_assert_eq!(e.request_id.as_deref(), non_empty(&req_id));
        prop_assert_eq!(e.response_code, code);
        prop_assert_eq!(e.response_flags, ResponseFlags::parse(&flags));
        prop_assert_eq!(e.route_name.as_deref(), Some("default"));
        let (_, head_code, head_flags) = parse_head(&line).unwrap();
        prop_assert_eq!((head_code, head_flags), (code, ResponseFlags::parse(&flags)));
    }
}
