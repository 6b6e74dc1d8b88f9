//! Effective settings per service port and the config-only risk findings.
//!
//! Combines the facts the readers recorded: Istio's port-protocol rules, the protocol
//! detection timeout for the detected Istio version (config dump > mesh config > version
//! default), PeerAuthentication precedence (port > workload > namespace > mesh), the client
//! TLS mode and pool limits from DestinationRules. Findings use the cause ids of
//! `rootcauses.md`. This module must not read files or print.

use crate::ConfigSet;
use crate::facts::{DestinationRule, MtlsMode, Service, ServicePort, Sourced, TrafficPolicy};
use crate::values::{IstioVersion, format_duration};
use meshdoctor_model::Location;
use serde::Serialize;
use std::time::Duration;

/// The protocol Istio uses for a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// HTTP/1.1.
    Http,
    /// HTTP/2 (h2c).
    Http2,
    /// gRPC.
    Grpc,
    /// gRPC-Web.
    GrpcWeb,
    /// HTTP CONNECT proxy.
    HttpProxy,
    /// TLS passthrough with HTTPS semantics.
    Https,
    /// TLS passthrough.
    Tls,
    /// Opaque TCP.
    Tcp,
    /// UDP (not proxied).
    Udp,
    /// MongoDB (TCP unless its filter is on).
    Mongo,
    /// Redis (TCP unless its filter is on).
    Redis,
    /// MySQL (TCP unless its filter is on).
    Mysql,
    /// Not declared: detected by sniffing the first bytes.
    Auto,
}

impl Protocol {
    /// The name shown in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::HttpProxy => "http_proxy",
            Protocol::Https => "https",
            Protocol::Tls => "tls",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Mongo => "mongo",
            Protocol::Redis => "redis",
            Protocol::Mysql => "mysql",
            Protocol::Auto => "auto",
        }
    }

    /// HTTP-ish: handled by the HTTP connection manager.
    #[must_use]
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http
                | Protocol::Http2
                | Protocol::Grpc
                | Protocol::GrpcWeb
                | Protocol::HttpProxy
        )
    }
}

/// Why the port has its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolSource {
    /// Kubernetes `protocol: UDP`.
    KubernetesProtocol,
    /// `appProtocol`.
    AppProtocol,
    /// The port name's prefix.
    PortName,
    /// Istio's well-known ports (25, 53, 3306, 27017) are TCP when undeclared.
    WellKnownPort,
    /// Nothing declares it: sniffed.
    Sniffed,
}

/// Istio's port-protocol rules (`ConvertProtocol`): UDP first, then `appProtocol` (which
/// replaces the name), then `grpc-web*`, then the name's text before the first `-`, else
/// sniffed — except the well-known TCP ports.
#[must_use]
pub fn declared_protocol(
    name: Option<&str>,
    app_protocol: Option<&str>,
    kube_protocol: &str,
    port: u16,
) -> (Protocol, ProtocolSource) {
    if kube_protocol.eq_ignore_ascii_case("UDP") {
        return (Protocol::Udp, ProtocolSource::KubernetesProtocol);
    }
    let (text, source) = match app_protocol.filter(|a| !a.trim().is_empty()) {
        Some(a) => (a.trim(), ProtocolSource::AppProtocol),
        None => (name.unwrap_or("").trim(), ProtocolSource::PortName),
    };
    let lower = text.to_ascii_lowercase();
    let special = match lower.as_str() {
        "kubernetes.io/h2c" => Some(Protocol::Http2),
        "kubernetes.io/ws" => Some(Protocol::Http),
        "kubernetes.io/wss" => Some(Protocol::Https),
        _ => None,
    };
    if let Some(p) = special {
        return (p, source);
    }
    if lower.starts_with("grpc-web") {
        return (Protocol::GrpcWeb, source);
    }
    let prefix = lower.split('-').next().unwrap_or("");
    let parsed = match prefix {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "grpc" => Some(Protocol::Grpc),
        "http" => Some(Protocol::Http),
        "http_proxy" => Some(Protocol::HttpProxy),
        "http2" => Some(Protocol::Http2),
        "https" => Some(Protocol::Https),
        "tls" => Some(Protocol::Tls),
        "mongo" => Some(Protocol::Mongo),
        "redis" => Some(Protocol::Redis),
        "mysql" => Some(Protocol::Mysql),
        _ => None,
    };
    match parsed {
        Some(p) => (p, source),
        None if matches!(port, 25 | 53 | 3306 | 27017) => {
            (Protocol::Tcp, ProtocolSource::WellKnownPort)
        }
        None => (Protocol::Auto, ProtocolSource::Sniffed),
    }
}

/// Where a detection timeout comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeoutSource {
    /// A listener's `listener_filters_timeout` in a config dump.
    ConfigDump,
    /// A config dump listener without the field: Envoy's 15 s.
    EnvoyDefault,
    /// `meshConfig.protocolDetectionTimeout`.
    MeshConfig,
    /// istiod env `PILOT_INBOUND_PROTOCOL_DETECTION_TIMEOUT`.
    InboundEnv,
    /// The default of the detected Istio version (the location is where the version was seen).
    VersionDefault,
}

/// A protocol detection timeout and its provenance. Zero means disabled (wait forever).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetectionTimeout {
    /// The timeout.
    pub value: Duration,
    /// Where it was read (or where the version that implies it was seen).
    pub at: Location,
    /// Kind of source.
    pub source: TimeoutSource,
    /// One line of explanation (`Istio 1.6.8 chart default`).
    pub note: String,
}

/// The effective settings of one service port.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effective {
    /// Service name.
    pub service: String,
    /// Namespace.
    pub namespace: String,
    /// Service port.
    pub port: u16,
    /// Target (container) port when known.
    pub target_port: Option<u16>,
    /// Port name.
    pub port_name: Option<String>,
    /// The port entry's location.
    pub port_at: Location,
    /// Protocol Istio uses.
    pub protocol: Protocol,
    /// Why.
    pub protocol_source: ProtocolSource,
    /// Outbound (client sidecar) detection timeout, when listener filters wait for the first
    /// bytes on this port; `None` when no detection applies or nothing is known.
    pub detection_timeout: Option<DetectionTimeout>,
    /// Inbound (server sidecar) detection timeout.
    pub inbound_detection_timeout: Option<DetectionTimeout>,
    /// mTLS mode after precedence.
    pub mtls_mode: MtlsMode,
    /// The PeerAuthentication line that decided it.
    pub mtls_at: Option<Location>,
    /// Client-side TLS mode from a DestinationRule (`None` = auto mTLS).
    pub client_tls_mode: Option<Sourced<String>>,
    /// The DestinationRule policy applying to this port (port-level merged in).
    pub policy: TrafficPolicy,
    /// The DestinationRule's name, when one applies.
    pub destination_rule: Option<String>,
    /// The server sidecar's `terminationDrainDuration` (pod `proxy.istio.io/config`
    /// annotation, else mesh `defaultConfig`), when set; Istio's default is 5s.
    pub termination_drain: Option<Sourced<Duration>>,
}

/// A config-only risk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// Cause id from the root-cause catalogue.
    pub id: &'static str,
    /// The deciding location.
    pub at: Location,
    /// One line.
    pub summary: String,
    /// Other locations that support it.
    pub evidence: Vec<Location>,
}

fn default_root_namespace(set: &ConfigSet) -> String {
    set.mesh
        .root_namespace
        .as_ref()
        .map_or_else(|| "istio-system".to_string(), |r| r.value.clone())
}

/// The mesh-wide outbound detection timeout: explicit mesh config, else the version default.
pub(crate) fn mesh_detection_timeout(set: &ConfigSet) -> Option<DetectionTimeout> {
    if let Some(t) = &set.mesh.protocol_detection_timeout {
        return Some(DetectionTimeout {
            value: t.value,
            at: t.at,
            source: TimeoutSource::MeshConfig,
            note: format!(
                "meshConfig.protocolDetectionTimeout: {}",
                format_duration(t.value)
            ),
        });
    }
    let version = set.istio_version()?;
    let (value, note) = version_default(version.value, set.mesh.mesh_config_at.is_some())?;
    Some(DetectionTimeout {
        value,
        at: version.at,
        source: TimeoutSource::VersionDefault,
        note,
    })
}

/// The outbound default of an Istio version; `with_mesh_config` = a mesh config without the
/// key was read (then the compiled-in default applies, not the chart's rendered value).
fn version_default(v: IstioVersion, with_mesh_config: bool) -> Option<(Duration, String)> {
    let ms = |n| Duration::from_millis(n);
    let chart_or_code = if with_mesh_config {
        "compiled-in default"
    } else {
        "install default"
    };
    Some(if v < IstioVersion::new(1, 3, 0) {
        return None;
    } else if v < IstioVersion::new(1, 6, 5) {
        (ms(100), format!("Istio {v} default 100ms"))
    } else if v < IstioVersion::new(1, 6, 9) {
        if with_mesh_config {
            (
                ms(5000),
                format!("Istio {v} {chart_or_code} 5s (key absent from the mesh config)"),
            )
        } else {
            (ms(100), format!("Istio {v} chart default 100ms"))
        }
    } else if v < IstioVersion::new(1, 8, 0) {
        (ms(5000), format!("Istio {v} default 5s"))
    } else {
        (Duration::ZERO, format!("Istio {v} default 0s (disabled)"))
    })
}

fn old_istio(set: &ConfigSet) -> Option<bool> {
    set.istio_version()
        .map(|v| v.value < IstioVersion::new(1, 8, 0))
}

/// An outbound listener for `port` in any dump (`0.0.0.0_8080`, `10.96.0.5_8080`).
fn dump_outbound_timeout(set: &ConfigSet, port: u16) -> Option<DetectionTimeout> {
    for dump in &set.dumps {
        for l in &dump.listeners {
            let outbound =
                l.direction.as_deref() == Some("OUTBOUND") || l.name.ends_with(&format!("_{port}"));
            if !outbound || l.port != Some(u32::from(port)) || l.listener_filters.is_empty() {
                continue;
            }
            return Some(listener_timeout(l));
        }
    }
    None
}

fn listener_timeout(l: &crate::facts::Listener) -> DetectionTimeout {
    match &l.listener_filters_timeout {
        Some(t) => DetectionTimeout {
            value: t.value,
            at: t.at,
            source: TimeoutSource::ConfigDump,
            note: format!(
                "listener {} listener_filters_timeout {}",
                l.name,
                format_duration(t.value)
            ),
        },
        None => DetectionTimeout {
            value: Duration::from_secs(15),
            at: l.at,
            source: TimeoutSource::EnvoyDefault,
            note: format!(
                "listener {} has no listener_filters_timeout (Envoy default 15s)",
                l.name
            ),
        },
    }
}

fn inbound_timeout(set: &ConfigSet) -> Option<DetectionTimeout> {
    for dump in &set.dumps {
        if let Some(l) = dump
            .listeners
            .iter()
            .find(|l| l.name == "virtualInbound" || l.port == Some(15006))
        {
            return Some(listener_timeout(l));
        }
    }
    let version = set.istio_version();
    let env = set
        .mesh
        .inbound_detection_env
        .as_ref()
        .map(|e| DetectionTimeout {
            value: e.value,
            at: e.at,
            source: TimeoutSource::InboundEnv,
            note: format!(
                "PILOT_INBOUND_PROTOCOL_DETECTION_TIMEOUT={}",
                format_duration(e.value)
            ),
        });
    match version.as_ref().map(|v| v.value) {
        Some(v) if v < IstioVersion::new(1, 8, 0) => env.or_else(|| {
            let version = version?;
            Some(DetectionTimeout {
                value: Duration::from_secs(1),
                at: version.at,
                source: TimeoutSource::VersionDefault,
                note: format!("Istio {} inbound default 1s (istiod env)", version.value),
            })
        }),
        Some(v) if v < IstioVersion::new(1, 19, 0) => env.or_else(|| mesh_detection_timeout(set)),
        _ => mesh_detection_timeout(set),
    }
}

fn fqdn_matches(host: &str, dr_namespace: &str, svc: &Service) -> u8 {
    // 3 = exact, 2 = namespace wildcard, 1 = `*`; 0 = no match.
    let host = host.trim().trim_end_matches('.');
    let full = format!("{}.{}.svc.", svc.name, svc.namespace);
    if host == "*" {
        return 1;
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        let svc_fqdn = format!("{}.{}.svc.cluster.local", svc.name, svc.namespace);
        return if svc_fqdn.ends_with(suffix) { 2 } else { 0 };
    }
    let exact = if host.contains('.') {
        host.starts_with(&full)
            || host == format!("{}.{}", svc.name, svc.namespace)
            || host == format!("{}.{}.svc", svc.name, svc.namespace)
    } else {
        host == svc.name && dr_namespace == svc.namespace
    };
    if exact { 3 } else { 0 }
}

fn destination_rule_for<'a>(set: &'a ConfigSet, svc: &Service) -> Option<&'a DestinationRule> {
    set.destination_rules
        .iter()
        .map(|dr| (fqdn_matches(&dr.host, &dr.namespace, svc), dr))
        .filter(|(score, _)| *score > 0)
        .max_by_key(|(score, dr)| (*score, dr.namespace == svc.namespace))
        .map(|(_, dr)| dr)
}

fn workload_labels_for(set: &ConfigSet, svc: &Service) -> Vec<Vec<(String, String)>> {
    let labels: Vec<_> = set
        .workloads
        .iter()
        .filter(|w| w.namespace == svc.namespace && w.matches(&svc.selector))
        .map(|w| w.labels.clone())
        .collect();
    if labels.is_empty() && !svc.selector.is_empty() {
        // No pods in the dump: the selector is a subset of the pods' labels; use it.
        vec![svc.selector.clone()]
    } else {
        labels
    }
}

/// `terminationDrainDuration` from a selected workload's `proxy.istio.io/config` annotation,
/// else from the mesh `defaultConfig`.
fn termination_drain(set: &ConfigSet, svc: &Service) -> Option<Sourced<Duration>> {
    for w in set
        .workloads
        .iter()
        .filter(|w| w.namespace == svc.namespace && w.matches(&svc.selector))
    {
        let Some(config) = w.annotation("proxy.istio.io/config") else {
            continue;
        };
        for doc in crate::node::parse_yaml_documents(&config.value) {
            if let Ok(tree) = doc.result
                && let Some(d) = tree
                    .get("terminationDrainDuration")
                    .and_then(crate::node::Node::text)
                    .as_deref()
                    .and_then(crate::values::parse_duration)
            {
                // The annotation is one YAML string: its key line is the annotation's line.
                return Some(Sourced::new(d, config.at));
            }
        }
    }
    set.mesh.termination_drain_duration.clone()
}

fn target_port(set: &ConfigSet, svc: &Service, port: &ServicePort) -> Option<u16> {
    if let Some(p) = port.target_port {
        return Some(p);
    }
    if let Some(name) = &port.target_port_name {
        return set
            .workloads
            .iter()
            .filter(|w| w.namespace == svc.namespace && w.matches(&svc.selector))
            .flat_map(|w| w.containers.iter())
            .flat_map(|c| c.ports.iter())
            .find(|(_, n)| n.as_deref() == Some(name.as_str()))
            .map(|(p, _)| *p);
    }
    // Kubernetes defaults targetPort to port.
    Some(port.port)
}

fn mtls_for(set: &ConfigSet, svc: &Service, target: Option<u16>) -> (MtlsMode, Option<Location>) {
    let root = default_root_namespace(set);
    let label_sets = workload_labels_for(set, svc);
    let selected = |sel: &[(String, String)]| {
        label_sets
            .iter()
            .any(|labels| sel.iter().all(|kv| labels.contains(kv)))
    };
    let workload_pa = set
        .peer_authentications
        .iter()
        .find(|pa| pa.namespace == svc.namespace && pa.selector.as_deref().is_some_and(&selected));
    if let Some(pa) = workload_pa {
        if let Some(t) = target
            && let Some((_, m)) = pa.port_level.iter().find(|(p, _)| *p == t)
            && m.value != MtlsMode::Unset
        {
            return (m.value, Some(m.at));
        }
        if let Some(m) = &pa.mode
            && m.value != MtlsMode::Unset
        {
            return (m.value, Some(m.at));
        }
    }
    for ns in [svc.namespace.as_str(), root.as_str()] {
        if let Some(pa) = set
            .peer_authentications
            .iter()
            .find(|pa| pa.namespace == ns && pa.selector.is_none())
            && let Some(m) = &pa.mode
            && m.value != MtlsMode::Unset
        {
            return (m.value, Some(m.at));
        }
    }
    (MtlsMode::Unset, None)
}

pub(crate) fn effective(set: &ConfigSet) -> Vec<Effective> {
    let old = old_istio(set);
    let mesh_timeout = mesh_detection_timeout(set);
    let inbound = inbound_timeout(set);
    let mut rows = Vec::new();
    for svc in &set.services {
        let dr = destination_rule_for(set, svc);
        for port in &svc.ports {
            let (protocol, protocol_source) = declared_protocol(
                port.name.as_deref(),
                port.app_protocol.as_deref(),
                &port.protocol,
                port.port,
            );
            let target = target_port(set, svc, port);
            // Listener filters wait for first bytes on sniffed ports; on 1.3–1.7 Istio put the
            // mesh timeout on every sidecar listener, so HTTP ports are exposed too (the seed).
            let detection_applies = protocol == Protocol::Auto
                || (protocol.is_http()
                    && (old == Some(true)
                        || (old.is_none() && set.mesh.protocol_detection_timeout.is_some())));
            let detection_timeout = if detection_applies {
                dump_outbound_timeout(set, port.port).or_else(|| mesh_timeout.clone())
            } else {
                None
            };
            let (mtls_mode, mtls_at) = mtls_for(set, svc, target);
            let policy = dr.map(|dr| {
                let port_level = dr
                    .port_level
                    .iter()
                    .find(|(p, _)| *p == port.port)
                    .map(|(_, tp)| tp.clone())
                    .unwrap_or_default();
                dr.policy.overlay(&port_level)
            });
            rows.push(Effective {
                service: svc.name.clone(),
                namespace: svc.namespace.clone(),
                port: port.port,
                target_port: target,
                port_name: port.name.clone(),
                port_at: port.at,
                protocol,
                protocol_source,
                detection_timeout,
                inbound_detection_timeout: if protocol == Protocol::Auto || detection_applies {
                    inbound.clone()
                } else {
                    None
                },
                mtls_mode,
                mtls_at,
                client_tls_mode: policy.as_ref().and_then(|p| p.tls_mode.clone()),
                policy: policy.unwrap_or_default(),
                destination_rule: dr.map(|d| d.name.clone()),
                termination_drain: termination_drain(set, svc),
            });
        }
    }
    rows
}

/// Detection timeouts below this are "short": real clients (JVM warm-up, GC, throttling)
/// regularly take longer between connect() and the first write.
const SHORT_DETECTION: Duration = Duration::from_secs(1);
/// Explicit pool limits below this overflow under ordinary bursts (Istio's default is 2^32-1).
const TINY_POOL_LIMIT: u64 = 100;

/// Well-known ports of binary (non-HTTP) protocols: an HTTP codec on them breaks.
const BINARY_PORTS: &[(u16, &str)] = &[
    (22, "SSH"),
    (25, "SMTP"),
    (587, "SMTP submission"),
    (1433, "SQL Server"),
    (1521, "Oracle"),
    (2181, "ZooKeeper"),
    (3306, "MySQL"),
    (4222, "NATS"),
    (5432, "PostgreSQL"),
    (5672, "AMQP"),
    (6379, "Redis"),
    (9042, "Cassandra"),
    (9092, "Kafka"),
    (9300, "Elasticsearch transport"),
    (11211, "memcached"),
    (27017, "MongoDB"),
];

/// Protocols where the server speaks first: a sniffing sidecar waits for client bytes that
/// never come. Matched on the port number or a name hint.
const SERVER_FIRST: &[(u16, &str, &str)] = &[
    (21, "ftp", "FTP"),
    (22, "ssh", "SSH"),
    (25, "smtp", "SMTP"),
    (110, "pop3", "POP3"),
    (143, "imap", "IMAP"),
    (587, "submission", "SMTP submission"),
    (3306, "mysql", "MySQL"),
    (4222, "nats", "NATS"),
];

pub(crate) fn findings(set: &ConfigSet) -> Vec<Finding> {
    let rows = effective(set);
    let mut out = Vec::new();
    let version = set.istio_version();
    let version_text = version.as_ref().map_or_else(
        || "Istio version unknown".to_string(),
        |v| format!("Istio {}", v.value),
    );
    sniffing_findings(set, &rows, &version_text, &mut out);
    for row in &rows {
        tls_conflict(set, row, &mut out);
        misdeclared(set, row, &mut out);
    }
    pool_findings(set, &mut out);
    workload_findings(set, &mut out);
    headless_findings(set, &rows, &mut out);
    excluded_port_findings(set, &rows, &mut out);
    for t in set.mesh.outbound_traffic_policy.iter().chain(
        set.others
            .iter()
            .filter_map(|o| o.outbound_traffic_policy.as_ref()),
    ) {
        if t.value.eq_ignore_ascii_case("REGISTRY_ONLY") {
            out.push(Finding {
                id: "registry-only-blackhole",
                at: t.at,
                summary: "outboundTrafficPolicy REGISTRY_ONLY: calls to hosts without a ServiceEntry go to BlackHoleCluster and are reset".to_string(),
                evidence: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| (a.at, a.id).cmp(&(b.at, b.id)));
    out.dedup_by(|a, b| a.id == b.id && a.at == b.at && a.summary == b.summary);
    out
}

fn sniffing_findings(
    set: &ConfigSet,
    rows: &[Effective],
    version_text: &str,
    out: &mut Vec<Finding>,
) {
    let mut per_port = 0;
    for row in rows {
        let Some(t) = &row.detection_timeout else {
            continue;
        };
        if t.value.is_zero() || t.value >= SHORT_DETECTION {
            continue;
        }
        let kind = if row.protocol == Protocol::Auto {
            "sniffed port".to_string()
        } else {
            format!("{} port", row.protocol.as_str())
        };
        let strict = if row.mtls_mode == MtlsMode::Strict {
            " and mTLS is STRICT, so the server sidecar resets the plaintext connection"
        } else {
            ""
        };
        let mut evidence = vec![row.port_at];
        evidence.extend(row.mtls_at);
        out.push(Finding {
            id: "protocol-sniffing-timeout",
            at: t.at,
            summary: format!(
                "{}.{}:{} ({kind}): client sidecars give up protocol detection after {} ({}; {version_text}); a client slower to send its first bytes falls through to PassthroughCluster in plaintext{strict}",
                row.service,
                row.namespace,
                row.port,
                format_duration(t.value),
                t.note,
            ),
            evidence,
        });
        per_port += 1;
    }
    // Without Services to attach it to, report the mesh-wide value itself.
    if per_port == 0
        && let Some(t) = mesh_detection_timeout(set)
        && !t.value.is_zero()
        && t.value < SHORT_DETECTION
        && (t.source == TimeoutSource::MeshConfig || old_istio(set) == Some(true))
    {
        out.push(Finding {
            id: "protocol-sniffing-timeout",
            at: t.at,
            summary: format!(
                "mesh protocol detection timeout is {} ({}; {version_text}): connections whose client writes later fall through to PassthroughCluster in plaintext",
                format_duration(t.value),
                t.note
            ),
            evidence: Vec::new(),
        });
    }
    for dump in &set.dumps {
        // One finding per dump, timeout value and continue flag, at the first listener.
        type Group<'a> = ((Duration, bool), Vec<&'a crate::facts::Listener>);
        let mut groups: Vec<Group<'_>> = Vec::new();
        for l in &dump.listeners {
            let inspects = l.inspects("http_inspector", None) || l.inspects("tls_inspector", None);
            let Some(t) = l.listener_filters_timeout.as_ref().map(|t| t.value) else {
                continue;
            };
            if !inspects || t.is_zero() || t >= SHORT_DETECTION {
                continue;
            }
            let key = (t, l.continue_on_timeout);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, ls)) => ls.push(l),
                None => groups.push((key, vec![l])),
            }
        }
        for ((value, continues), listeners) in groups {
            let Some(first) = listeners.first() else {
                continue;
            };
            let Some(t) = &first.listener_filters_timeout else {
                continue;
            };
            let then = if continues {
                "then continue without a detected protocol"
            } else {
                "then close the connection (continue_on_listener_filters_timeout is false)"
            };
            out.push(Finding {
                id: "protocol-sniffing-timeout",
                at: t.at,
                summary: format!(
                    "{} listener(s){} wait only {} for the first bytes and {then} (e.g. {})",
                    listeners.len(),
                    dump.pod
                        .as_deref()
                        .map(|p| format!(" of {p}"))
                        .unwrap_or_default(),
                    format_duration(value),
                    first.name
                ),
                evidence: listeners.iter().skip(1).take(5).map(|l| l.at).collect(),
            });
        }
    }
}

fn tls_conflict(set: &ConfigSet, row: &Effective, out: &mut Vec<Finding>) {
    let dr = row.destination_rule.as_deref().unwrap_or("?");
    let target = format!("{}.{}:{}", row.service, row.namespace, row.port);
    match row.client_tls_mode.as_ref() {
        Some(tls) if tls.value == "DISABLE" && row.mtls_mode == MtlsMode::Strict => out.push(Finding {
            id: "destinationrule-tls-conflict",
            at: tls.at,
            summary: format!("DestinationRule {dr} sends plaintext (tls.mode DISABLE) to {target}, which PeerAuthentication makes STRICT: every connection is rejected"),
            evidence: row.mtls_at.into_iter().collect(),
        }),
        Some(tls)
            if matches!(tls.value.as_str(), "SIMPLE" | "MUTUAL")
                && !matches!(row.protocol, Protocol::Https | Protocol::Tls)
                && row.mtls_mode != MtlsMode::Disable =>
        {
            out.push(Finding {
                id: "destinationrule-tls-conflict",
                at: tls.at,
                summary: format!("DestinationRule {dr} originates TLS (tls.mode {}) to {target}, a {} port of an in-mesh workload: expect WRONG_VERSION_NUMBER or resets; use ISTIO_MUTUAL or drop the tls block", tls.value, row.protocol.as_str()),
                evidence: vec![row.port_at],
            });
        }
        Some(tls) if tls.value == "ISTIO_MUTUAL" && row.mtls_mode == MtlsMode::Disable => out.push(Finding {
            id: "destinationrule-tls-conflict",
            at: tls.at,
            summary: format!("DestinationRule {dr} sends Istio mTLS to {target}, whose PeerAuthentication is DISABLE (plaintext only)"),
            evidence: row.mtls_at.into_iter().collect(),
        }),
        None if row.mtls_mode == MtlsMode::Strict
            && row.destination_rule.is_some()
            && set.mesh.enable_auto_mtls.as_ref().is_some_and(|a| !a.value) =>
        {
            let at = set
                .mesh
                .enable_auto_mtls
                .as_ref()
                .map_or(row.port_at, |a| a.at);
            out.push(Finding {
                id: "destinationrule-tls-conflict",
                at,
                summary: format!("enableAutoMtls is false and DestinationRule {dr} has no tls block: clients send plaintext to STRICT {target}"),
                evidence: row.mtls_at.into_iter().collect(),
            });
        }
        _ => {}
    }
}

fn misdeclared(set: &ConfigSet, row: &Effective, out: &mut Vec<Finding>) {
    let target = format!("{}.{}:{}", row.service, row.namespace, row.port);
    let name = row.port_name.as_deref().unwrap_or("").to_ascii_lowercase();
    if row.protocol.is_http()
        && let Some((_, what)) = BINARY_PORTS
            .iter()
            .find(|(p, _)| *p == row.port || Some(*p) == row.target_port)
    {
        out.push(Finding {
            id: "port-protocol-misdeclared",
            at: row.port_at,
            summary: format!("{target} is declared {} but is the {what} port: the HTTP codec will reject its bytes; name it tcp-* or set appProtocol: tcp", row.protocol.as_str()),
            evidence: Vec::new(),
        });
        return;
    }
    if row.protocol != Protocol::Auto {
        return;
    }
    let server_first = SERVER_FIRST.iter().find(|(p, hint, _)| {
        *p == row.port || Some(*p) == row.target_port || (!name.is_empty() && name.contains(hint))
    });
    if let Some((_, _, what)) = server_first {
        let effect = match old_istio(set) {
            Some(true) => {
                "every connection waits for the detection timeout before the server's greeting"
            }
            _ => {
                "with no detection timeout (Istio >= 1.8) the sidecar waits forever for client bytes and the connection hangs"
            }
        };
        out.push(Finding {
            id: "port-protocol-misdeclared",
            at: row.port_at,
            summary: format!("{target} looks like {what}, a server-first protocol, on an undeclared (sniffed) port: {effect}; name it tcp-* or set appProtocol: tcp"),
            evidence: Vec::new(),
        });
    }
}

fn pool_findings(set: &ConfigSet, out: &mut Vec<Finding>) {
    for dr in &set.destination_rules {
        let policies = std::iter::once(&dr.policy)
            .chain(dr.port_level.iter().map(|(_, p)| p))
            .chain(dr.subsets.iter().map(|(_, p)| p));
        for p in policies {
            for (field, value) in [
                ("maxConnections", &p.max_connections),
                ("http1MaxPendingRequests", &p.http1_max_pending_requests),
                ("http2MaxRequests", &p.http2_max_requests),
            ] {
                if let Some(v) = value
                    && v.value < TINY_POOL_LIMIT
                {
                    out.push(Finding {
                        id: "circuit-breaker-overflow",
                        at: v.at,
                        summary: format!("DestinationRule {} ({}) limits {field} to {}: bursts above it get 503 UO (reset reason: overflow)", dr.name, dr.host, v.value),
                        evidence: Vec::new(),
                    });
                }
            }
            if let Some(v) = &p.max_requests_per_connection
                && v.value > 0
                && v.value <= 10
            {
                out.push(Finding {
                    id: "max-requests-per-connection",
                    at: v.at,
                    summary: format!("DestinationRule {} ({}) closes upstream connections after {} request(s): constant connection churn races with in-flight requests", dr.name, dr.host, v.value),
                    evidence: Vec::new(),
                });
            }
            if let Some(d) = &p.max_connection_duration
                && !d.value.is_zero()
            {
                out.push(Finding {
                    id: "max-requests-per-connection",
                    at: d.at,
                    summary: format!("DestinationRule {} ({}) closes TCP connections after {} (maxConnectionDuration)", dr.name, dr.host, format_duration(d.value)),
                    evidence: Vec::new(),
                });
            }
            if let Some(v) = &p.max_ejection_percent
                && v.value >= 100
            {
                out.push(Finding {
                    id: "outlier-ejection-no-healthy",
                    at: v.at,
                    summary: format!("DestinationRule {} ({}) allows ejecting {}% of endpoints: a burst of errors can leave no healthy upstream (503 UH)", dr.name, dr.host, v.value),
                    evidence: Vec::new(),
                });
            }
        }
    }
    // Dumps show limits the DestinationRules produced; report them when no rule was given.
    if set.destination_rules.is_empty() {
        for dump in &set.dumps {
            for c in &dump.clusters {
                let t = &c.thresholds;
                let tiny = [t.max_connections, t.max_pending_requests, t.max_requests]
                    .into_iter()
                    .flatten()
                    .min()
                    .filter(|v| *v < TINY_POOL_LIMIT);
                if let Some(v) = tiny {
                    out.push(Finding {
                        id: "circuit-breaker-overflow",
                        at: c.at,
                        summary: format!("cluster {} has a circuit-breaker limit of {v}: bursts above it get 503 UO", c.name),
                        evidence: Vec::new(),
                    });
                }
            }
        }
    }
}

fn binds_localhost(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("127.0.0.1")
        || t == "localhost"
        || t.contains("=localhost")
        || t.starts_with("localhost:")
}

fn headless_findings(set: &ConfigSet, rows: &[Effective], out: &mut Vec<Finding>) {
    for svc in set.services.iter().filter(|s| s.headless) {
        let strict = rows.iter().find(|r| {
            r.service == svc.name && r.namespace == svc.namespace && r.mtls_mode == MtlsMode::Strict
        });
        let Some(strict) = strict else { continue };
        let declared: Vec<u16> = rows
            .iter()
            .filter(|r| r.service == svc.name && r.namespace == svc.namespace)
            .flat_map(|r| [Some(r.port), r.target_port])
            .flatten()
            .collect();
        let mut missing: Vec<u16> = set
            .workloads
            .iter()
            .filter(|w| w.namespace == svc.namespace && w.matches(&svc.selector))
            .flat_map(|w| w.containers.iter().filter(|c| c.name != "istio-proxy"))
            .flat_map(|c| c.ports.iter().map(|(p, _)| *p))
            .filter(|p| !declared.contains(p))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
            out.push(Finding {
                id: "headless-or-pod-ip-passthrough",
                at: svc.at,
                summary: format!(
                    "headless Service {}.{} does not declare container port(s) {} while mTLS is STRICT: peers calling pod IPs on them go through PassthroughCluster in plaintext and are rejected",
                    svc.name,
                    svc.namespace,
                    list.join(", ")
                ),
                evidence: strict.mtls_at.into_iter().collect(),
            });
        }
    }
}

/// Callers that bypass their sidecar for some destination ports send plaintext there.
fn excluded_port_findings(set: &ConfigSet, rows: &[Effective], out: &mut Vec<Finding>) {
    for w in &set.workloads {
        let Some(ann) = w.annotation("traffic.sidecar.istio.io/excludeOutboundPorts") else {
            continue;
        };
        for port in ann
            .value
            .split(',')
            .filter_map(|p| p.trim().parse::<u16>().ok())
        {
            if let Some(row) = rows.iter().find(|r| {
                r.mtls_mode == MtlsMode::Strict && (r.port == port || r.target_port == Some(port))
            }) {
                out.push(Finding {
                    id: "mtls-strict-plaintext-client",
                    at: ann.at,
                    summary: format!(
                        "{} {}/{} sends port {port} around its sidecar (excludeOutboundPorts) in plaintext, but {}.{}:{} is STRICT: those calls are reset",
                        w.kind, w.namespace, w.name, row.service, row.namespace, row.port
                    ),
                    evidence: row.mtls_at.into_iter().collect(),
                });
            }
        }
    }
}

fn workload_findings(set: &ConfigSet, out: &mut Vec<Finding>) {
    let at_least_1_10 = set
        .istio_version()
        .is_some_and(|v| v.value >= IstioVersion::new(1, 10, 0));
    let strict = set.peer_authentications.iter().find_map(|pa| {
        pa.mode
            .as_ref()
            .filter(|m| m.value == MtlsMode::Strict)
            .map(|m| (pa, m))
    });
    for w in &set.workloads {
        if w.is_istiod() {
            continue;
        }
        let injected = set.has_sidecar(w);
        let localhost_fixed = set
            .others
            .iter()
            .any(|o| o.kind == "Sidecar" && o.namespace == w.namespace && o.localhost_ingress);
        if at_least_1_10 && injected && !localhost_fixed {
            for c in w.containers.iter().filter(|c| c.name != "istio-proxy") {
                let env = c.env.iter().filter(|(k, _)| {
                    let k = k.to_ascii_uppercase();
                    ["HOST", "BIND", "ADDR", "LISTEN"]
                        .iter()
                        .any(|h| k.contains(h))
                });
                let hit = env
                    .map(|(_, v)| v)
                    .chain(c.args.iter())
                    .find(|v| binds_localhost(&v.value));
                if let Some(v) = hit {
                    out.push(Finding {
                        id: "app-binds-localhost",
                        at: v.at,
                        summary: format!("{} {}/{} container {} listens on localhost ({}): since Istio 1.10 the sidecar forwards inbound traffic to the pod IP, so connections are refused (503 UF)", w.kind, w.namespace, w.name, c.name, v.value),
                        evidence: Vec::new(),
                    });
                }
            }
        }
        if let Some(opt_out) = w.annotation("sidecar.istio.io/inject")
            && opt_out.value.eq_ignore_ascii_case("false")
            && let Some((pa, mode)) = strict
        {
            out.push(Finding {
                id: "mtls-strict-plaintext-client",
                at: opt_out.at,
                summary: format!("{} {}/{} runs without a sidecar while PeerAuthentication {}/{} is STRICT: its plaintext calls to STRICT ports are reset", w.kind, w.namespace, w.name, pa.namespace, pa.name),
                evidence: vec![mode.at],
            });
        }
        let cpu = w
            .annotation("sidecar.istio.io/proxyCPULimit")
            .or_else(|| w.proxy().and_then(|p| p.cpu_limit.as_ref()));
        if let Some(cpu) = cpu
            && let Some(millis) = cpu_millis(&cpu.value)
            && millis < 200
        {
            out.push(Finding {
                id: "envoy-overload-or-cpu-throttle",
                at: cpu.at,
                summary: format!("{} {}/{} limits istio-proxy to {} CPU: a throttled sidecar delays accepts and first bytes under load", w.kind, w.namespace, w.name, cpu.value),
                evidence: Vec::new(),
            });
        }
    }
}

fn cpu_millis(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(m) = t.strip_suffix('m') {
        return m.parse().ok();
    }
    let cores: f64 = t.parse().ok()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (cores.is_finite() && cores >= 0.0).then(|| (cores * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_port_protocol_rules() {
        let p = |name: Option<&str>, app: Option<&str>, port| {
            declared_protocol(name, app, "TCP", port).0
        };
        assert_eq!(p(Some("http-api"), None, 8080), Protocol::Http);
        assert_eq!(p(Some("HTTP2"), None, 8080), Protocol::Http2);
        assert_eq!(p(Some("grpc-web-x"), None, 8080), Protocol::GrpcWeb);
        assert_eq!(p(Some("web"), None, 8080), Protocol::Auto);
        assert_eq!(p(None, None, 8080), Protocol::Auto);
        assert_eq!(p(Some("web"), Some("http"), 8080), Protocol::Http);
        // appProtocol replaces the name entirely.
        assert_eq!(p(Some("http"), Some("custom"), 8080), Protocol::Auto);
        assert_eq!(p(Some("db"), None, 3306), Protocol::Tcp);
        assert_eq!(p(Some("x"), Some("kubernetes.io/h2c"), 80), Protocol::Http2);
        assert_eq!(
            declared_protocol(Some("http"), None, "UDP", 53).0,
            Protocol::Udp
        );
    }

    #[test]
    fn version_defaults_follow_the_release_history() {
        let d = |v, mesh| version_default(v, mesh).map(|(d, _)| d.as_millis());
        assert_eq!(d(IstioVersion::new(1, 6, 8), false), Some(100));
        assert_eq!(d(IstioVersion::new(1, 6, 8), true), Some(5000));
        assert_eq!(d(IstioVersion::new(1, 6, 3), true), Some(100));
        assert_eq!(d(IstioVersion::new(1, 6, 9), false), Some(5000));
        assert_eq!(d(IstioVersion::new(1, 7, 4), false), Some(5000));
        assert_eq!(d(IstioVersion::new(1, 8, 0), false), Some(0));
        assert_eq!(d(IstioVersion::new(1, 2, 0), false), None);
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(cpu_millis("100m"), Some(100));
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("lots"), None);
    }
}
