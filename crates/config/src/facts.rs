//! The facts read from configuration, each with the file and line it came from.
//!
//! Plain data: readers fill these in, `effective` combines them. Nothing here reads text or
//! decides what a setting means.

use crate::values::IstioVersion;
use meshdoctor_model::Location;
use serde::Serialize;
use std::time::Duration;

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// File and 1-based line.
    pub at: Location,
}

impl<T> Sourced<T> {
    /// Wrap a value with its location.
    pub fn new(value: T, at: Location) -> Self {
        Self { value, at }
    }
}

/// Mesh-wide settings (from the `istio` ConfigMap, a bare mesh document, IstioOperator or Helm
/// values, and istiod's environment). A later file overrides an earlier one.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MeshSettings {
    /// Where a mesh config document was read (then absent keys mean compiled-in defaults).
    pub mesh_config_at: Option<Location>,
    /// `protocolDetectionTimeout`.
    pub protocol_detection_timeout: Option<Sourced<Duration>>,
    /// istiod env `PILOT_INBOUND_PROTOCOL_DETECTION_TIMEOUT`.
    pub inbound_detection_env: Option<Sourced<Duration>>,
    /// `enableAutoMtls`.
    pub enable_auto_mtls: Option<Sourced<bool>>,
    /// `outboundTrafficPolicy.mode`.
    pub outbound_traffic_policy: Option<Sourced<String>>,
    /// `defaultConfig.terminationDrainDuration`.
    pub termination_drain_duration: Option<Sourced<Duration>>,
    /// `defaultConfig.drainDuration`.
    pub drain_duration: Option<Sourced<Duration>>,
    /// `defaultConfig.holdApplicationUntilProxyStarts`.
    pub hold_application_until_proxy_starts: Option<Sourced<bool>>,
    /// `rootNamespace` (default `istio-system`).
    pub root_namespace: Option<Sourced<String>>,
}

/// Istio mTLS modes of PeerAuthentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    /// Inherit from the parent scope.
    Unset,
    /// Plaintext only.
    Disable,
    /// Both plaintext and mTLS.
    Permissive,
    /// mTLS only.
    Strict,
}

impl MtlsMode {
    /// Parse the API spelling (case-insensitive); unknown text is `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "UNSET" => MtlsMode::Unset,
            "DISABLE" => MtlsMode::Disable,
            "PERMISSIVE" => MtlsMode::Permissive,
            "STRICT" => MtlsMode::Strict,
            _ => return None,
        })
    }

    /// The API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Unset => "UNSET",
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        }
    }
}

/// A Kubernetes Service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Service {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`default` when absent).
    pub namespace: String,
    /// The object's first line.
    pub at: Location,
    /// `spec.selector`.
    pub selector: Vec<(String, String)>,
    /// `clusterIP: None`.
    pub headless: bool,
    /// `spec.ports`.
    pub ports: Vec<ServicePort>,
}

/// One Service port.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServicePort {
    /// `name`.
    pub name: Option<String>,
    /// `port`.
    pub port: u16,
    /// `targetPort` when numeric.
    pub target_port: Option<u16>,
    /// `targetPort` when it names a container port.
    pub target_port_name: Option<String>,
    /// `protocol` (TCP when absent).
    pub protocol: String,
    /// `appProtocol`.
    pub app_protocol: Option<String>,
    /// The port entry's line.
    pub at: Location,
}

/// A container of a workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Container {
    /// `name`.
    pub name: String,
    /// `image`.
    pub image: Option<Sourced<String>>,
    /// `ports[].containerPort` with their names.
    pub ports: Vec<(u16, Option<String>)>,
    /// `env` literal values.
    pub env: Vec<(String, Sourced<String>)>,
    /// `command` and `args`, joined.
    pub args: Vec<Sourced<String>>,
    /// `resources.limits.cpu`.
    pub cpu_limit: Option<Sourced<String>>,
}

/// A Pod or a pod-owning controller (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The object's first line.
    pub at: Location,
    /// Pod labels (the pod template's for controllers).
    pub labels: Vec<(String, String)>,
    /// Pod annotations (the pod template's for controllers).
    pub annotations: Vec<(String, Sourced<String>)>,
    /// Containers and init containers.
    pub containers: Vec<Container>,
    /// `terminationGracePeriodSeconds`.
    pub termination_grace_seconds: Option<Sourced<u64>>,
}

impl Workload {
    /// The `istio-proxy` container (classic sidecar or native init-container sidecar).
    #[must_use]
    pub fn proxy(&self) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == "istio-proxy")
    }

    /// An annotation value.
    #[must_use]
    pub fn annotation(&self, key: &str) -> Option<&Sourced<String>> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// True when this is istiod (or the 1.3–1.4 `istio-pilot`).
    #[must_use]
    pub fn is_istiod(&self) -> bool {
        self.name.starts_with("istiod") || self.name == "istio-pilot"
    }

    /// Whether labels match every `selector` pair.
    #[must_use]
    pub fn matches(&self, selector: &[(String, String)]) -> bool {
        !selector.is_empty()
            && selector
                .iter()
                .all(|(k, v)| self.labels.iter().any(|(lk, lv)| lk == k && lv == v))
    }
}

/// A PeerAuthentication.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerAuthentication {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The object's first line.
    pub at: Location,
    /// `spec.selector.matchLabels` (`None` = namespace- or mesh-wide).
    pub selector: Option<Vec<(String, String)>>,
    /// `spec.mtls.mode` (absent = UNSET).
    pub mode: Option<Sourced<MtlsMode>>,
    /// `spec.portLevelMtls` (keys are container ports).
    pub port_level: Vec<(u16, Sourced<MtlsMode>)>,
}

/// The parts of a DestinationRule `trafficPolicy` that matter for resets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TrafficPolicy {
    /// `tls.mode`.
    pub tls_mode: Option<Sourced<String>>,
    /// `connectionPool.tcp.maxConnections`.
    pub max_connections: Option<Sourced<u64>>,
    /// `connectionPool.http.http1MaxPendingRequests`.
    pub http1_max_pending_requests: Option<Sourced<u64>>,
    /// `connectionPool.http.http2MaxRequests`.
    pub http2_max_requests: Option<Sourced<u64>>,
    /// `connectionPool.http.maxRequestsPerConnection`.
    pub max_requests_per_connection: Option<Sourced<u64>>,
    /// `connectionPool.http.idleTimeout`.
    pub http_idle_timeout: Option<Sourced<Duration>>,
    /// `connectionPool.tcp.idleTimeout`.
    pub tcp_idle_timeout: Option<Sourced<Duration>>,
    /// `connectionPool.tcp.maxConnectionDuration`.
    pub max_connection_duration: Option<Sourced<Duration>>,
    /// `outlierDetection.maxEjectionPercent`.
    pub max_ejection_percent: Option<Sourced<u64>>,
}

impl TrafficPolicy {
    /// Overlay `other` on `self` (port-level settings override the rule's defaults).
    #[must_use]
    pub fn overlay(&self, other: &TrafficPolicy) -> TrafficPolicy {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            b.clone().or_else(|| a.clone())
        }
        TrafficPolicy {
            tls_mode: pick(&self.tls_mode, &other.tls_mode),
            max_connections: pick(&self.max_connections, &other.max_connections),
            http1_max_pending_requests: pick(
                &self.http1_max_pending_requests,
                &other.http1_max_pending_requests,
            ),
            http2_max_requests: pick(&self.http2_max_requests, &other.http2_max_requests),
            max_requests_per_connection: pick(
                &self.max_requests_per_connection,
                &other.max_requests_per_connection,
            ),
            http_idle_timeout: pick(&self.http_idle_timeout, &other.http_idle_timeout),
            tcp_idle_timeout: pick(&self.tcp_idle_timeout, &other.tcp_idle_timeout),
            max_connection_duration: pick(
                &self.max_connection_duration,
                &other.max_connection_duration,
            ),
            max_ejection_percent: pick(&self.max_ejection_percent, &other.max_ejection_percent),
        }
    }
}

/// A DestinationRule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DestinationRule {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The object's first line.
    pub at: Location,
    /// `spec.host`.
    pub host: String,
    /// `spec.trafficPolicy`.
    pub policy: TrafficPolicy,
    /// `spec.trafficPolicy.portLevelSettings[]` by port number.
    pub port_level: Vec<(u16, TrafficPolicy)>,
    /// `spec.subsets[]` policies by subset name.
    pub subsets: Vec<(String, TrafficPolicy)>,
}

/// A VirtualService, ServiceEntry, Sidecar or AuthorizationPolicy: the few fields we use.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OtherResource {
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The object's first line.
    pub at: Location,
    /// `spec.hosts` (VirtualService, ServiceEntry).
    pub hosts: Vec<String>,
    /// VirtualService `http[].timeout` and `retries.perTryTimeout`.
    pub timeouts: Vec<Sourced<Duration>>,
    /// Sidecar `outboundTrafficPolicy.mode`.
    pub outbound_traffic_policy: Option<Sourced<String>>,
    /// AuthorizationPolicy `action` (ALLOW when absent).
    pub action: Option<Sourced<String>>,
    /// Sidecar `ingress[].defaultEndpoint` pointing at localhost (the fix for apps bound
    /// to 127.0.0.1 since Istio 1.10).
    pub localhost_ingress: bool,
}

/// Where an Istio version was seen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionSighting {
    /// The version.
    pub version: IstioVersion,
    /// Where.
    pub at: Location,
    /// True for control-plane sources (istiod image, IstioOperator `tag`, install labels).
    pub control_plane: bool,
    /// What it was read from (`istiod image`, `proxy image`, `bootstrap ISTIO_VERSION`...).
    pub source: &'static str,
}

/// A listener filter of an Envoy listener.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListenerFilter {
    /// `envoy.filters.listener.http_inspector`, `...tls_inspector`, `...original_dst`.
    pub name: String,
    /// Destination port ranges `[start, end)` the filter is disabled for.
    pub disabled_ports: Vec<(u32, u32)>,
}

/// A filter chain of an Envoy listener.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FilterChain {
    /// `name`.
    pub name: Option<String>,
    /// The chain's line.
    pub at: Location,
    /// `filter_chain_match.destination_port`.
    pub destination_port: Option<u32>,
    /// `filter_chain_match.transport_protocol`.
    pub transport_protocol: Option<String>,
    /// `filter_chain_match.application_protocols`.
    pub application_protocols: Vec<String>,
    /// `filter_chain_match.server_names`.
    pub server_names: Vec<String>,
    /// Network filter names.
    pub filters: Vec<String>,
    /// `tcp_proxy` target cluster.
    pub tcp_cluster: Option<String>,
    /// A TLS transport socket terminates TLS on this chain.
    pub tls: bool,
}

/// An Envoy listener from a config dump.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Listener {
    /// `name`.
    pub name: String,
    /// `address.socket_address.address`.
    pub address: Option<String>,
    /// `address.socket_address.port_value`.
    pub port: Option<u32>,
    /// `traffic_direction`.
    pub direction: Option<String>,
    /// The listener's line.
    pub at: Location,
    /// `listener_filters`.
    pub listener_filters: Vec<ListenerFilter>,
    /// `listener_filters_timeout` as written (absent = Envoy's 15 s).
    pub listener_filters_timeout: Option<Sourced<Duration>>,
    /// `continue_on_listener_filters_timeout` (absent = false).
    pub continue_on_timeout: bool,
    /// `filter_chains` (plus `default_filter_chain` last, named as such).
    pub filter_chains: Vec<FilterChain>,
}

impl Listener {
    /// True when a listener filter named like `inspector` (e.g. `http_inspector`) is active
    /// for port `port` (not covered by its `filter_disabled` ranges).
    #[must_use]
    pub fn inspects(&self, inspector: &str, port: Option<u32>) -> bool {
        self.listener_filters.iter().any(|f| {
            f.name.ends_with(inspector)
                && port.is_none_or(|p| !f.disabled_ports.iter().any(|(s, e)| (*s..*e).contains(&p)))
        })
    }
}

/// Circuit-breaker thresholds of a cluster (the `default` priority).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Thresholds {
    /// `max_connections`.
    pub max_connections: Option<u64>,
    /// `max_pending_requests`.
    pub max_pending_requests: Option<u64>,
    /// `max_requests`.
    pub max_requests: Option<u64>,
    /// `max_retries`.
    pub max_retries: Option<u64>,
}

/// An Envoy cluster from a config dump.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    /// `name`.
    pub name: String,
    /// The cluster's line.
    pub at: Location,
    /// `type` (EDS, ORIGINAL_DST...).
    pub kind: Option<String>,
    /// `connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// TLS origination: the transport socket is TLS (`sni` if set).
    pub tls: bool,
    /// `sni` of the upstream TLS context.
    pub sni: Option<String>,
    /// Circuit breakers.
    pub thresholds: Thresholds,
    /// Upstream HTTP idle timeout (`common_http_protocol_options.idle_timeout`).
    pub idle_timeout: Option<Duration>,
    /// `max_requests_per_connection`.
    pub max_requests_per_connection: Option<u64>,
}

/// What one Envoy config dump says.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvoyDump {
    /// File the dump came from.
    pub file: meshdoctor_model::FileId,
    /// Pod name from the bootstrap node id (`sidecar~ip~pod.ns~...`) or `NAME` metadata.
    pub pod: Option<String>,
    /// Namespace from the bootstrap node.
    pub namespace: Option<String>,
    /// The listeners.
    pub listeners: Vec<Listener>,
    /// The clusters.
    pub clusters: Vec<Cluster>,
}

/// A document that could not be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where.
    pub at: Location,
    /// Why.
    pub message: String,
}
