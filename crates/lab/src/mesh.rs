//! The lab's control-plane stand-in: the service registry (name -> addresses, port declaration,
//! identity) and the knobs that decide how the sidecars behave. Plain data, no I/O.

use std::net::SocketAddr;
use std::time::Duration;

/// Cluster-local namespace of every lab workload.
pub const NAMESPACE: &str = "default";

/// What the client sidecar does when sniffing times out (or the bytes are not HTTP).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// Istio 1.6 on an explicit HTTP port: catch-all chain, plaintext to PassthroughCluster.
    Passthrough,
    /// Linkerd-like: opaque TCP, still over mTLS to the meshed peer.
    MeshTcp,
}

/// Server sidecar PeerAuthentication mode.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    /// Only mTLS accepted.
    Strict,
    /// mTLS and plaintext accepted.
    Permissive,
}

/// How a STRICT inbound rejects plaintext.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum StrictReject {
    /// Istio <= 1.9: the plaintext lands on the TLS chain; BoringSSL reads 5 bytes and fails
    /// with `HTTP_REQUEST`.
    TlsHttpRequest,
    /// Istio >= 1.10: STRICT chains require transport `tls`; `no matching filter chain found`, NR.
    NoFilterChain,
}

/// How a socket is closed after an error.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum CloseKind {
    /// Plain close; RST only if unread data is queued (what Envoy does).
    Rst,
    /// Drain what is readable first, so the kernel sends FIN.
    Fin,
}

/// One service in the registry.
#[derive(Clone, Debug)]
pub struct Service {
    /// Short name (`service-b`).
    pub name: String,
    /// Declared Service port (`80`).
    pub port: u16,
    /// Declared port name (`http`, or something Istio cannot map, like `db`).
    pub port_name: String,
    /// The client sidecar's outbound listener for this service (stands in for VIP:port + iptables).
    pub outbound: SocketAddr,
    /// The server sidecar's inbound listener (stands in for pod:port + iptables to 15006).
    pub inbound: SocketAddr,
    /// The app's own listener.
    pub app: SocketAddr,
    /// Pod name of the server.
    pub pod: String,
    /// Whether the server app speaks first.
    pub server_first: bool,
}

impl Service {
    /// `service-b.default.svc.cluster.local`.
    pub fn fqdn(&self) -> String {
        format!("{}.{NAMESPACE}.svc.cluster.local", self.name)
    }
    /// Istio SNI: `outbound_.80_._.service-b.default.svc.cluster.local`.
    pub fn sni(&self) -> String {
        format!("outbound_.{}_._.{}", self.port, self.fqdn())
    }
    /// Outbound cluster name.
    pub fn outbound_cluster(&self) -> String {
        format!("outbound|{}||{}", self.port, self.fqdn())
    }
    /// Inbound cluster name in the Istio <= 1.7 form.
    pub fn inbound_cluster(&self) -> String {
        format!("inbound|{}|{}|{}", self.port, self.port_name, self.fqdn())
    }
    /// Whether the port name declares HTTP explicitly (`http`, `http-*`).
    pub fn explicit_http(&self) -> bool {
        self.port_name == "http" || self.port_name.starts_with("http-")
    }
    /// SPIFFE id of the server workload (service account = service name).
    pub fn spiffe(&self) -> String {
        crate::tls::spiffe_id(NAMESPACE, &self.name)
    }
}

/// Knobs shared by the sidecars of one run.
#[derive(Clone, Debug)]
pub struct SidecarKnobs {
    /// Outbound `protocolDetectionTimeout`; `None` = 0s = wait for bytes (Istio >= 1.8).
    pub detection_timeout: Option<Duration>,
    /// Inbound listener-filter timeout (1 s in 1.6, env `PILOT_INBOUND_PROTOCOL_DETECTION_TIMEOUT`).
    pub inbound_detection_timeout: Duration,
    /// Fallback on sniff timeout.
    pub fallback: Fallback,
    /// PeerAuthentication of the servers.
    pub mtls: MtlsMode,
    /// How STRICT rejects plaintext.
    pub strict_reject: StrictReject,
    /// How the server sidecar closes a rejected plaintext connection.
    pub reject_close: CloseKind,
    /// How the client sidecar closes the app's connection after its upstream was reset.
    pub downstream_close_after_reset: CloseKind,
}
