//! meshdoctor lab: a miniature mesh with real sockets and real mTLS on loopback that fails for
//! the same reasons a real Istio mesh does, and writes the logs a real one writes.
//!
//! A run starts tokio tasks for a client app (`service-a`), server apps (`service-b`,
//! `service-c`), one client sidecar and one server sidecar per app, and a registry that maps
//! service names to listener addresses (OS-chosen ports on 127.0.x.y, which all reach `lo`).
//! It drives traffic for one [`Scenario`], then writes, under the output directory:
//!
//! * `default/<pod>/<container>.log` for every container: `istio-proxy.log` (Envoy debug lines
//!   in the Istio 1.6 layout, or 1.22 with `--log-layout`, interleaved with access-log rows and
//!   pilot-agent lines) and `<app>.log` (logstash/logback JSON with Java stack traces);
//! * `config/` with the mesh ConfigMap (`protocolDetectionTimeout`), Services,
//!   PeerAuthentication and Deployments describing the lab's own setup;
//! * `truth.json`: the scenario, its cause id (rootcauses.md), request and failure counts, and
//!   what each request saw.
//!
//! Java mapping of OS errors in app logs: see [`app`]. How the client sidecar closes the app's
//! connection after the server sidecar reset its upstream is a setting
//! ([`LabConfig::downstream_close_after_reset`]): `rst` (default) gives the app
//! `Connection reset`, as the founding incident's Java client reported; `fin` gives
//! `Unexpected end of file from server`, which is what a 2020 Envoy's plain close most likely
//! produced (dataplane.md §4.1 leaves this open). The optional netns/iptables mode is not
//! implemented: the client sidecar binds one outbound listener per service instead (dataplane.md
//! §5.2, "rootless"). This crate must not parse logs (that is the doctor's job) and must not
//! reach anything but loopback.

pub mod app;
pub mod bench;
pub mod cli;
pub mod http;
pub mod logs;
pub mod mesh;
mod out;
mod scenario;
pub mod sidecar;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use app::DelayDist;
pub use logs::{AccessFormat, EnvoyLayout, Wrapper};
pub use mesh::{CloseKind, Fallback, MtlsMode, StrictReject};

/// The scenarios the lab can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The founding incident: slow first bytes, 100 ms sniffing, plaintext passthrough to STRICT.
    SniffingTimeout,
    /// A caller without a sidecar sends plaintext to a STRICT server.
    StrictPlaintextClient,
    /// The server app closes idle keep-alive connections that its sidecar's pool reuses.
    IdleKeepaliveRace,
    /// The app calls out before its own sidecar listens.
    AppBeforeSidecar,
    /// A server-first protocol on an auto-detected port with no detection timeout.
    ServerFirstProtocol,
}

impl Scenario {
    /// Every scenario, in `lab list` order.
    pub const ALL: [Scenario; 5] = [
        Scenario::SniffingTimeout,
        Scenario::StrictPlaintextClient,
        Scenario::IdleKeepaliveRace,
        Scenario::AppBeforeSidecar,
        Scenario::ServerFirstProtocol,
    ];

    /// CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::SniffingTimeout => "sniffing-timeout",
            Scenario::StrictPlaintextClient => "strict-plaintext-client",
            Scenario::IdleKeepaliveRace => "idle-keepalive-race",
            Scenario::AppBeforeSidecar => "app-before-sidecar",
            Scenario::ServerFirstProtocol => "server-first-protocol",
        }
    }

    /// Cause id from the summary table of rootcauses.md.
    pub fn cause(self) -> &'static str {
        match self {
            Scenario::SniffingTimeout => "protocol-sniffing-timeout",
            Scenario::StrictPlaintextClient => "mtls-strict-plaintext-client",
            Scenario::IdleKeepaliveRace => "idle-timeout-keepalive-race",
            Scenario::AppBeforeSidecar => "app-starts-before-sidecar",
            Scenario::ServerFirstProtocol => "port-protocol-misdeclared",
        }
    }

    /// One-line description for `lab list`.
    pub fn describe(self) -> &'static str {
        match self {
            Scenario::SniffingTimeout => {
                "service-a pauses after connect (GC-like); 100 ms sniffing times out; plaintext passthrough hits STRICT service-b/c: resets. Fix: --protocol-detection-timeout 5s or --fallback mesh-tcp"
            }
            Scenario::StrictPlaintextClient => {
                "legacy-client (no sidecar) calls STRICT service-b in plaintext: HTTP_REQUEST TLS error and RST"
            }
            Scenario::IdleKeepaliveRace => {
                "service-b closes keep-alive connections idle for 60 ms; its sidecar's pool reuses them: 503 UC on the inbound cluster, 503 to service-a"
            }
            Scenario::AppBeforeSidecar => {
                "service-a calls out during its first 400 ms, before its sidecar listens: connection refused"
            }
            Scenario::ServerFirstProtocol => {
                "service-c speaks first on port 3306 named 'db' (auto-detected), detection timeout 0s: the client waits for a greeting that never comes. Fix: --protocol-detection-timeout 100ms"
            }
        }
    }

    /// Parse a CLI name.
    pub fn from_name(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// One lab run.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// Which scenario.
    pub scenario: Scenario,
    /// Outbound `protocolDetectionTimeout`: `None` = scenario default; `Some(ZERO)` = disabled.
    pub protocol_detection_timeout: Option<Duration>,
    /// Number of client requests (`None` = scenario default).
    pub requests: Option<usize>,
    /// Seed of every random choice.
    pub seed: u64,
    /// What the client sidecar does when sniffing gives up.
    pub fallback: Fallback,
    /// Where to write logs, config and truth.
    pub out_dir: PathBuf,
    /// Envoy debug-log layout.
    pub envoy_layout: EnvoyLayout,
    /// Access-log format.
    pub access_format: AccessFormat,
    /// How STRICT inbound rejects plaintext (Istio 1.6 TLS error, or 1.10+ no filter chain).
    pub strict_reject: StrictReject,
    /// Server sidecar PeerAuthentication.
    pub mtls: MtlsMode,
    /// How the server sidecar closes a rejected connection.
    pub reject_close: CloseKind,
    /// How the client sidecar closes the app's connection after the upstream reset it.
    pub downstream_close_after_reset: CloseKind,
    /// Pause distribution override (`None` = scenario default).
    pub delay: Option<DelayDist>,
    /// Hard limit on the run's duration.
    pub overall_timeout: Duration,
    /// Wrapper the log pipeline adds to every line.
    pub wrapper: Wrapper,
    /// Whether service-a reuses keep-alive connections (`None` = scenario default; the
    /// sniffing scenario opens one connection per request so the rate is per connection).
    pub keep_alive: Option<bool>,
}

impl LabConfig {
    /// Defaults for a scenario, writing to `out_dir`.
    pub fn new(scenario: Scenario, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            scenario,
            protocol_detection_timeout: None,
            requests: None,
            seed: 1,
            fallback: Fallback::Passthrough,
            out_dir: out_dir.into(),
            envoy_layout: EnvoyLayout::Istio16,
            access_format: AccessFormat::Istio16,
            strict_reject: StrictReject::TlsHttpRequest,
            mtls: MtlsMode::Strict,
            reject_close: CloseKind::Rst,
            downstream_close_after_reset: CloseKind::Rst,
            delay: None,
            overall_timeout: Duration::from_secs(20),
            wrapper: Wrapper::None,
            keep_alive: None,
        }
    }
}

/// Counts of one failure class.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ClassCount {
    /// Failure class (`reset`, `eof`, `refused`, `timeout`, `http-503`).
    pub class: String,
    /// How many requests.
    pub count: usize,
    /// One OS error text seen for it.
    pub example_os_error: Option<String>,
}

/// What a run did (also written as `truth.json`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct LabSummary {
    /// Scenario name.
    pub scenario: String,
    /// Cause id (rootcauses.md).
    pub cause: String,
    /// Requests sent (all clients).
    pub requests: usize,
    /// Requests that failed.
    pub failures: usize,
    /// failures / requests.
    pub failure_rate: f64,
    /// P(failure) per request predicted from the delay distribution (times the share of
    /// requests that opened a connection), where the scenario has one.
    pub expected_failure_rate: Option<f64>,
    /// Effective outbound detection timeout in ms (0 = disabled).
    pub protocol_detection_timeout_ms: u64,
    /// Fallback policy.
    pub fallback: Fallback,
    /// Server mTLS mode.
    pub mtls: MtlsMode,
    /// Seed.
    pub seed: u64,
    /// New connections opened by clients.
    pub new_connections: usize,
    /// New connections whose pause exceeded the detection timeout.
    pub connections_delayed_past_timeout: usize,
    /// Failures by class.
    pub failures_by_class: Vec<ClassCount>,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// When the run (and every pod and container) started, RFC 3339 UTC.
    pub started_at: String,
    /// Istio version the logs imitate.
    pub istio_version: String,
    /// Files written, relative to the output directory.
    pub files: Vec<String>,
    /// Per-request outcomes.
    pub outcomes: Vec<app::Outcome>,
}

/// Run one scenario (async).
pub async fn run(config: LabConfig) -> anyhow::Result<LabSummary> {
    scenario::run(config).await
}

/// Run one scenario on a fresh multi-threaded runtime.
pub fn run_blocking(config: LabConfig) -> anyhow::Result<LabSummary> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(config))
}

/// Parse a duration such as `100ms`, `5s`, `1.5s`, `0`, `0s`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mul) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    let n: f64 = num.trim().parse().ok()?;
    if !n.is_finite() || n < 0.0 || n * mul > 3600.0 {
        return None;
    }
    Some(Duration::from_secs_f64(n * mul))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("abc"), None);
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
    }
}
