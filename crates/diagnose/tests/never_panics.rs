//! `diagnose` never panics, whatever the input: random mixes of real sidecar line shapes,
//! truncated lines and junk go through the real pipeline, the collector, journeys, compare,
//! scoring and the re-reading of evidence lines.

use meshdoctor_diagnose::{RuleSet, diagnose};
use meshdoctor_input::{DiscoverOptions, discover};
use meshdoctor_logs::RunOptions;
use proptest::prelude::*;

const SHAPES: &[&str] = &[
    "2020-10-23T00:26:14.869776Z\tdebug\tenvoy filter\t[external/envoy/source/extensions/filters/listener/http_inspector/http_inspector.cc:37] http inspector: new connection accepted",
    "2020-10-23T00:26:14.869797Z\tdebug\tenvoy conn_handler\t[external/envoy/source/server/connection_handler_impl.cc:411] [C{id}] new connection",
    "2020-10-23T00:26:14.869806Z\tdebug\tenvoy connection\t[external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:226] [C{id}] TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
    "2020-10-24T17:37:23.593562Z\tdebug\tenvoy filter\t[external/envoy/source/extensions/filters/listener/tls_inspector/tls_inspector.cc:148] tls:onServerName(), requestedServerName: outbound_.80_._.b.ns.svc.cluster.local",
    "2024-09-24T01:25:55.435803Z\tdebug\tenvoy connection external/envoy/source/common/network/connection_impl.cc:746\t[Tags: \"ConnectionId\":\"{id}\"] remote address:10.0.0.1:5,TLS_error:|268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST:TLS_error_end\tthread=25",
    "2024-09-24T01:25:55.435803Z\tdebug\tenvoy conn_handler external/envoy/source/common/listener_manager/active_stream_listener_base.cc:44\tclosing connection from 10.244.7.{id}:4000: no matching filter chain found\tthread=2",
    "2020-10-23T00:26:14.8Z\tdebug\tenvoy conn_handler\tlistener filter times out after 100 ms",
    "2020-10-23T00:26:14.8Z\tdebug\tenvoy conn_handler\tfallback to default listener filter",
    "2020-10-23T00:26:14.9Z\tdebug\tenvoy filter\t[C{id}] Creating connection to cluster PassthroughCluster",
    "[2020-10-23T00:26:14.870Z] \"- - -\" 0 - \"-\" \"-\" 203 0 101 - \"-\" \"-\" \"-\" \"-\" \"10.244.2.17:8080\" PassthroughCluster 10.244.1.9:43514 10.244.2.17:8080 10.244.1.9:43512 - -",
    "[2024-05-01T10:00:00.000Z] \"- - -\" 0 NR filter_chain_not_found - \"-\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" - - 10.244.2.17:8080 10.244.7.{id}:4000 - -",
    "{\"timestamp\":\"2020-10-23T00:26:14.871Z\",\"level\":\"ERROR\",\"message\":\"x\",\"stack_trace\":\"Caused by: java.net.SocketException: Connection reset\"}",
    "2024-05-01T10:00:00.000000Z\tinfo\tEnvoy command: [-c etc/istio/proxy/envoy-rev.json]",
    "2024-05-01T10:10:05.000000Z\tinfo\tGraceful termination period complete, terminating remaining proxies.",
    "\tat java.base/java.net.SocketInputStream.read(Unknown Source)",
];

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..SHAPES.len(), 0u64..5000, 0usize..200).prop_map(|(i, id, cut)| {
            let s = SHAPES[i].replace("{id}", &id.to_string());
            // Sometimes truncated mid-line, on a char boundary.
            let mut end = s.len().saturating_sub(cut % 40);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_string()
        }),
        "\\PC{0,80}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn diagnose_never_panics(lines in prop::collection::vec(line(), 0..60), crlf in any::<bool>()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shop").join("orders-5d8f9c7b6-abcde");
        std::fs::create_dir_all(&path).expect("mkdir");
        let file = path.join("istio-proxy.log");
        let sep = if crlf { "\r\n" } else { "\n" };
        std::fs::write(&file, lines.join(sep)).expect("write");
        let (inputs, _) = discover(&[dir.path().to_path_buf()], &DiscoverOptions::default());
        let rules = RuleSet::builtin().expect("rules");
        let d = diagnose(&inputs, &RunOptions::default(), &rules);
        prop_assert!(d.verdict == "inconclusive" || d.findings.iter().any(|f| f.cause == d.verdict));
        prop_assert!(d.findings.iter().all(|f| (0.0..=1.0).contains(&f.confidence)));
    }
}
