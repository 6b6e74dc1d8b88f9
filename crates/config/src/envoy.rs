//! Envoy config dumps: the admin `/config_dump` (snake_case, `configs[]` sections found by
//! `@type`) and `istioctl proxy-config ... -o json` (camelCase; `all` gives the same sections,
//! `listener`/`cluster` give bare arrays). Both spellings are read through [`Node::get`].
//!
//! Only listeners, listener filters and their timeout, filter-chain matches, clusters (TLS,
//! circuit breakers, idle timeouts) and the bootstrap node identity are read. This module
//! must not decide what the values mean for a workload.

use crate::Collector;
use crate::facts::{
    Cluster, EnvoyDump, FilterChain, Listener, ListenerFilter, Sourced, Thresholds, VersionSighting,
};
use crate::node::{Node, Value};
use crate::values::{IstioVersion, parse_duration};
use meshdoctor_model::{FileId, Location};
use std::time::Duration;

/// True when the tree looks like a config dump or a proxy-config listing.
pub(crate) fn looks_like_dump(node: &Node) -> bool {
    if node.get("configs").is_some() {
        return true;
    }
    node.items()
        .first()
        .is_some_and(|first| is_listener(first) || is_cluster(first))
}

fn is_listener(n: &Node) -> bool {
    n.get("filter_chains").is_some()
        || n.get("listener_filters").is_some()
        || (n.get("address").is_some() && n.get("name").is_some() && n.get("type").is_none())
}

fn is_cluster(n: &Node) -> bool {
    n.get("connect_timeout").is_some()
        || n.get("eds_cluster_config").is_some()
        || n.get("load_assignment").is_some()
        || (n.get("type").is_some() && n.get("name").is_some())
}

/// Read a dump into `out`.
pub(crate) fn read_dump(file: FileId, root: &Node, out: &mut Collector) {
    let at = |line| Location { file, line };
    let mut dump = EnvoyDump {
        file,
        pod: None,
        namespace: None,
        listeners: Vec::new(),
        clusters: Vec::new(),
    };
    for item in root.items() {
        if is_listener(item) {
            dump.listeners.push(read_listener(file, item));
        } else if is_cluster(item) {
            dump.clusters.push(read_cluster(file, item));
        }
    }
    for section in root.field("configs").items() {
        let kind = section.field("@type").as_str().unwrap_or("");
        if kind.ends_with("BootstrapConfigDump") {
            read_bootstrap(file, section.field("bootstrap"), &mut dump, out);
        } else if kind.ends_with("ListenersConfigDump") {
            for l in section.field("static_listeners").items() {
                dump.listeners
                    .push(read_listener(file, l.field("listener")));
            }
            for l in section.field("dynamic_listeners").items() {
                // Warming listeners are not serving yet; the active state is what runs.
                if let Some(listener) = l.at(&["active_state", "listener"]) {
                    dump.listeners.push(read_listener(file, listener));
                }
            }
            // Envoy before ~1.13 (Istio <= 1.5) listed active listeners separately.
            for l in section.field("dynamic_active_listeners").items() {
                dump.listeners
                    .push(read_listener(file, l.field("listener")));
            }
        } else if kind.ends_with("ClustersConfigDump") {
            for list in ["static_clusters", "dynamic_active_clusters"] {
                for c in section.field(list).items() {
                    dump.clusters.push(read_cluster(file, c.field("cluster")));
                }
            }
        }
    }
    let _ = at;
    out.dumps.push(dump);
}

fn read_bootstrap(file: FileId, bootstrap: &Node, dump: &mut EnvoyDump, out: &mut Collector) {
    let node = bootstrap.field("node");
    // `sidecar~10.244.1.7~orders-5d8f9c7b6-abcde.shop~shop.svc.cluster.local`
    if let Some(id) = node.field("id").as_str() {
        let mut parts = id.split('~');
        let pod_ns = parts.nth(2).unwrap_or("");
        if let Some((pod, ns)) = pod_ns.split_once('.') {
            dump.pod = Some(pod.to_string());
            dump.namespace = Some(ns.to_string());
        }
    }
    let meta = node.field("metadata");
    if let Some(name) = meta.field("NAME").text() {
        dump.pod = Some(name);
    }
    if let Some(ns) = meta.field("NAMESPACE").text() {
        dump.namespace = Some(ns);
    }
    if let Some(v) = meta.get("ISTIO_VERSION")
        && let Some(version) = v.text().as_deref().and_then(IstioVersion::parse)
    {
        out.versions.push(VersionSighting {
            version,
            at: Location { file, line: v.line },
            control_plane: false,
            source: "bootstrap ISTIO_VERSION",
        });
    }
}

/// A proto Duration in either JSON form: `"0.100s"` or `{"seconds": 0, "nanos": 100000000}`.
fn duration_of(n: &Node) -> Option<Duration> {
    match &n.value {
        Value::Map(_) => {
            let secs = n.field("seconds").as_u64().unwrap_or(0);
            let nanos = n.field("nanos").as_u64().unwrap_or(0);
            Some(Duration::from_secs(secs) + Duration::from_nanos(nanos))
        }
        _ => parse_duration(&n.text()?),
    }
}

fn u32_of(n: &Node) -> Option<u32> {
    // Wrapped scalars (`{"value": 8080}`) appear in some older dumps.
    n.as_u64()
        .or_else(|| n.field("value").as_u64())
        .and_then(|v| u32::try_from(v).ok())
}

fn strings(n: &Node) -> Vec<String> {
    n.items().iter().filter_map(Node::text).collect()
}

fn read_listener(file: FileId, l: &Node) -> Listener {
    let sock = l.at(&["address", "socket_address"]);
    let mut listener_filters = Vec::new();
    for f in l.field("listener_filters").items() {
        let mut disabled = Vec::new();
        let fd = f.field("filter_disabled");
        let mut ranges: Vec<&Node> = fd.get("destination_port_range").into_iter().collect();
        for rule in fd
            .at(&["or_match", "rules"])
            .map(Node::items)
            .unwrap_or(&[])
        {
            ranges.extend(rule.get("destination_port_range"));
        }
        for r in ranges {
            if let (Some(s), Some(e)) = (u32_of(r.field("start")), u32_of(r.field("end"))) {
                disabled.push((s, e));
            }
        }
        listener_filters.push(ListenerFilter {
            name: f.field("name").text().unwrap_or_default(),
            disabled_ports: disabled,
        });
    }
    let mut filter_chains: Vec<FilterChain> = l
        .field("filter_chains")
        .items()
        .iter()
        .map(|c| read_chain(file, c))
        .collect();
    if let Some(default) = l.get("default_filter_chain") {
        let mut chain = read_chain(file, default);
        chain
            .name
            .get_or_insert_with(|| "default_filter_chain".to_string());
        filter_chains.push(chain);
    }
    Listener {
        name: l.field("name").text().unwrap_or_default(),
        address: sock.and_then(|s| s.field("address").text()),
        port: sock.and_then(|s| u32_of(s.field("port_value"))),
        direction: l.field("traffic_direction").text(),
        at: Location { file, line: l.line },
        listener_filters,
        listener_filters_timeout: l.get("listener_filters_timeout").and_then(|n| {
            Some(Sourced::new(
                duration_of(n)?,
                Location { file, line: n.line },
            ))
        }),
        continue_on_timeout: l
            .field("continue_on_listener_filters_timeout")
            .as_bool()
            .unwrap_or(false),
        filter_chains,
    }
}

fn read_chain(file: FileId, c: &Node) -> FilterChain {
    let m = c.field("filter_chain_match");
    let mut filters = Vec::new();
    let mut tcp_cluster = None;
    for f in c.field("filters").items() {
        let name = f.field("name").text().unwrap_or_default();
        if name.contains("tcp_proxy") {
            let tc = f.field("typed_config");
            tcp_cluster = tc.field("cluster").text().or_else(|| {
                tc.at(&["weighted_clusters", "clusters"])
                    .and_then(|w| w.items().first())
                    .and_then(|w| w.field("name").text())
            });
        }
        filters.push(name);
    }
    FilterChain {
        name: c.field("name").text(),
        at: Location { file, line: c.line },
        destination_port: u32_of(m.field("destination_port")),
        transport_protocol: m.field("transport_protocol").text(),
        application_protocols: strings(m.field("application_protocols")),
        server_names: strings(m.field("server_names")),
        filters,
        tcp_cluster,
        tls: is_tls_socket(c.field("transport_socket")),
    }
}

fn is_tls_socket(ts: &Node) -> bool {
    let name = ts.field("name").as_str().unwrap_or("");
    let ty = ts
        .at(&["typed_config", "@type"])
        .and_then(Node::as_str)
        .unwrap_or("");
    name.contains("tls") || ty.contains("TlsContext")
}

fn read_cluster(file: FileId, c: &Node) -> Cluster {
    let ts = c.field("transport_socket");
    let mut thresholds = Thresholds::default();
    if let Some(t) = c
        .at(&["circuit_breakers", "thresholds"])
        .map(Node::items)
        .unwrap_or(&[])
        .iter()
        .find(|t| t.field("priority").as_str().is_none_or(|p| p == "DEFAULT"))
    {
        thresholds = Thresholds {
            max_connections: u32_of(t.field("max_connections")).map(u64::from),
            max_pending_requests: u32_of(t.field("max_pending_requests")).map(u64::from),
            max_requests: u32_of(t.field("max_requests")).map(u64::from),
            max_retries: u32_of(t.field("max_retries")).map(u64::from),
        };
    }
    // HTTP options moved from the cluster into typed_extension_protocol_options (Envoy 1.18+).
    let mut http_opts = c.get("common_http_protocol_options");
    for (key, v) in c.field("typed_extension_protocol_options").entries() {
        if key.contains("HttpProtocolOptions") || key.contains("http_protocol_options") {
            http_opts = http_opts.or_else(|| v.get("common_http_protocol_options"));
        }
    }
    Cluster {
        name: c.field("name").text().unwrap_or_default(),
        at: Location { file, line: c.line },
        kind: c.field("type").text(),
        connect_timeout: c.get("connect_timeout").and_then(duration_of),
        tls: is_tls_socket(ts),
        sni: ts.at(&["typed_config", "sni"]).and_then(Node::text),
        thresholds,
        idle_timeout: http_opts
            .and_then(|o| o.get("idle_timeout"))
            .and_then(duration_of),
        max_requests_per_connection: http_opts
            .and_then(|o| o.get("max_requests_per_connection"))
            .or_else(|| c.get("max_requests_per_connection"))
            .and_then(u32_of)
            .map(u64::from),
    }
}
