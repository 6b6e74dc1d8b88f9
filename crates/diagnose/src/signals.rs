//! The catalogue of built-in signals and their evaluation result type.
//!
//! A signal is a named, generic observation computed from the inputs (a mechanism or a
//! documented log string, never the wording of one fixture): how often it happened, where,
//! when, and example lines. Rules weigh signals; they never look at lines themselves.
//! This module names and validates signals and defines [`SignalResult`]; computing them is
//! [`crate::engine`]'s job.

use meshdoctor_model::ResponseFlags;
use serde::Serialize;
use std::collections::BTreeSet;

/// Built-in signals without a parameter: (name, what it counts).
pub const BUILTIN: &[(&str, &str)] = &[
    // Journeys (Envoy debug logs, joined per connection).
    (
        "journey.failing",
        "connection journeys that end in a failure step (TLS error, no filter chain, reset, codec error, connect failure)",
    ),
    (
        "journey.succeeding",
        "connection journeys with a handshake complete / upstream connected and no failure step",
    ),
    (
        "journey.tls_error",
        "downstream TLS handshake errors (old `TLS error:` and new `TLS_error:|...:TLS_error_end` forms)",
    ),
    (
        "journey.tls_error_http_request_without_sni",
        "TLS `HTTP_REQUEST` errors (plaintext HTTP on a TLS chain) on journeys with no `tls:onServerName` step, counted only where the listener-filter logger is visible (the journey has a listener-filter line or its proxy logged SNI elsewhere)",
    ),
    (
        "journey.tls_error_http_request_with_sni",
        "TLS `HTTP_REQUEST` errors on journeys that DO have an SNI step",
    ),
    (
        "journey.sni_on_success",
        "successful journeys on the same proxies that show the SNI step (proves the inspector logs at this level, so a missing SNI is meaningful)",
    ),
    (
        "journey.plaintext_from_unmeshed_peer",
        "plaintext rejections (TLS HTTP_REQUEST, no filter chain) whose peer IP is nowhere known to have a sidecar (never seen with an Istio SNI, never the source of a sidecar's outbound connection), while other peers are: a caller without a sidecar",
    ),
    (
        "journey.plaintext_from_meshed_peer",
        "plaintext rejections whose peer IP is known to have a sidecar (seen with an Istio SNI, or the source of a sidecar's outbound connections): a meshed caller that left without mTLS",
    ),
    (
        "journey.listener_filter_timeout",
        "`listener filter times out after N ms` (conn_handler; no connection id)",
    ),
    (
        "journey.listener_filter_fallback",
        "`fallback to default listener filter`",
    ),
    (
        "journey.passthrough_after_timeout",
        "journeys that hit a listener-filter timeout and then TCP-proxied to PassthroughCluster/BlackHoleCluster",
    ),
    (
        "journey.stalled_in_detection",
        "journeys that ran the HTTP inspector and then logged nothing else (no detected protocol, no timeout, no filter chain, no close): the sidecar is still waiting for the client's first bytes",
    ),
    (
        "journey.tcp_proxy_passthrough",
        "TCP proxy `Creating connection to cluster PassthroughCluster` (any cause)",
    ),
    (
        "journey.tcp_proxy_blackhole",
        "TCP proxy to BlackHoleCluster",
    ),
    (
        "journey.no_filter_chain",
        "`closing connection...: no matching filter chain found`",
    ),
    (
        "journey.client_hello_failed",
        "`tls inspector: parseClientHello failed`",
    ),
    (
        "journey.codec_error",
        "codec dispatch / protocol errors (`dispatch error`, `protocol error`, `HPE_...`)",
    ),
    (
        "journey.upstream_reset",
        "router `upstream reset: reset reason: ...` (any reason)",
    ),
    (
        "journey.connect_failed",
        "upstream connect failures (`delayed connect error`, `raising immediate error`)",
    ),
    (
        "journey.rst_from_peer",
        "`rst close from peer` (the peer sent a TCP RST)",
    ),
    (
        "journey.stream_reset",
        "downstream `stream reset` lines (http)",
    ),
    (
        "journey.remote_close",
        "connections closed by the peer (`remote close`, `closing socket: 0`)",
    ),
    (
        "inputs.caller_sidecar_debug",
        "Envoy debug lines from sidecars of workloads other than the ones whose inbound connections failed (the caller side is covered)",
    ),
    (
        "inputs.envoy_debug",
        "Envoy debug/trace lines of the connection loggers (conn_handler, connection, filter)",
    ),
    ("inputs.access_rows", "access log rows"),
    ("inputs.app_records", "application log records"),
    (
        "inputs.no_failures",
        "1 when the inputs hold traffic (Envoy debug lines, access rows or app records) but no failure at all: no failing journey, no failing access row, no application network error",
    ),
    // Access logs.
    (
        "access.failures",
        "access rows with a failure flag (UF, UC, UR, UH, UO, NR, URX, DC, UT, LR, DPE, UPE, SI) or a 5xx code",
    ),
    (
        "access.tcp_passthrough",
        "TCP rows (`- - -`) whose cluster is PassthroughCluster",
    ),
    (
        "access.filter_chain_not_found",
        "rows with NR and details `filter_chain_not_found`",
    ),
    // Application logs.
    (
        "app.errors",
        "application records reporting any network error class",
    ),
    (
        "app.resets",
        "application errors of the reset family: connection-reset, closed-without-response, broken-pipe",
    ),
    // Correlation.
    (
        "correlate.app_reset_near_failure",
        "app reset-family errors within the clock-skew window (2 s) of a failing journey or failing access row (when the error names its peer and that peer has sidecar logs, the failure must be on the peer's or the caller's own sidecar)",
    ),
    (
        "correlate.app_reset_near_tls_error",
        "app reset-family errors within 2 s of a sidecar TLS handshake error / plaintext rejection (same peer rule)",
    ),
    (
        "correlate.request_id_match",
        "app errors whose request / correlation id equals an access row's x-request-id with a failure",
    ),
    (
        "correlate.app_refused_before_ready",
        "app `connection-refused` errors before the same workload's `Envoy proxy is ready`",
    ),
    (
        "correlate.app_error_after_termination",
        "app errors within 60 s after the same workload's sidecar started terminating",
    ),
    // Agent (pilot-agent / linkerd-proxy).
    (
        "agent.termination",
        "pilot-agent drain/termination lines (`Agent draining Proxy for termination`, `Graceful termination period ...`, `terminating remaining proxies`)",
    ),
    ("agent.ready", "`Envoy proxy is ready`"),
    ("agent.not_ready", "`Envoy proxy is NOT ready`"),
    (
        "agent.restart",
        "proxy (re)start lines (`Envoy command:`, `Epoch N starting`, `Starting proxy agent`)",
    ),
    ("agent.oom", "`Envoy may have been out of memory killed`"),
];

/// Built-in signals with a parameter: (prefix, what the parameter is).
pub const PARAMETERISED: &[(&str, &str)] = &[
    (
        "journey.tls_error:",
        "a BoringSSL reason symbol, e.g. HTTP_REQUEST, WRONG_VERSION_NUMBER, CERTIFICATE_VERIFY_FAILED",
    ),
    (
        "journey.upstream_reset:",
        "a reset reason with spaces as `_`, e.g. connection_termination, remote_reset, overflow, connection_failure",
    ),
    (
        "journey.tcp_proxy:",
        "a cluster name prefix, e.g. `outbound|`, `InboundPassthroughCluster`",
    ),
    ("access.flag:", "a response flag, e.g. UC, UF, NR, DC"),
    ("access.code:", "a response code, e.g. 503, 0"),
    (
        "app.error_class:",
        "an application error class, e.g. connection-reset, connection-refused",
    ),
];

/// Application error classes as they appear in signal names and patterns.
pub const ERROR_CLASSES: &[&str] = &[
    "connection-reset",
    "closed-without-response",
    "broken-pipe",
    "connection-refused",
    "tls-handshake",
    "envoy-reset-before-headers",
    "envoy-no-healthy-upstream",
    "envoy-upstream-timeout",
    "envoy-rbac-denied",
    "grpc-unavailable",
    "timeout",
];

/// Check a signal name (built-in or parameterised).
///
/// # Errors
/// Unknown name or bad parameter, in words.
pub fn check_name(name: &str) -> Result<(), String> {
    if let Some(r) = crate::config_signals::check_name(name) {
        return r;
    }
    if BUILTIN.iter().any(|(n, _)| *n == name) {
        return Ok(());
    }
    for (prefix, _) in PARAMETERISED {
        if let Some(param) = name.strip_prefix(prefix) {
            if param.is_empty() {
                return Err(format!("signal `{name}` needs a parameter after `:`"));
            }
            return match *prefix {
                "access.flag:" if ResponseFlags::flag(param).is_none() => {
                    Err(format!("unknown response flag in `{name}`"))
                }
                "access.code:" if param.parse::<u16>().is_err() => {
                    Err(format!("bad response code in `{name}`"))
                }
                "app.error_class:" if !ERROR_CLASSES.contains(&param) => {
                    Err(format!("unknown error class in `{name}`"))
                }
                _ => Ok(()),
            };
        }
    }
    Err(format!(
        "unknown signal `{name}` (see RULES.md for the catalogue, or use pattern.<id>)"
    ))
}

/// A line shown as evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EvidenceLine {
    /// Input display name.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// The line as written (re-read from the input), or a reconstruction when the input
    /// cannot be re-read (stdin).
    pub text: String,
}

/// What evaluating one signal found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SignalResult {
    /// Occurrences.
    pub count: u64,
    /// Traffic the count is a share of (e.g. access rows of the same workloads), if any.
    pub denominator: Option<u64>,
    /// Workloads where it was seen.
    pub workloads: BTreeSet<String>,
    /// Earliest occurrence (UTC ns).
    pub first: Option<i64>,
    /// Latest occurrence (UTC ns).
    pub last: Option<i64>,
    /// A few example locations (file id, line), in input order.
    #[serde(skip)]
    pub examples: Vec<(u32, u64)>,
    /// The workload of the latest [`SignalResult::hit`], always one of `workloads`: hits come
    /// in runs from one workload, so this saves a set lookup per hit.
    #[serde(skip)]
    pub(crate) last_workload: Option<String>,
}

/// How many example lines a signal keeps.
pub const MAX_EXAMPLES: usize = 5;
/// How many workloads a signal names.
pub const MAX_WORKLOADS: usize = 64;

impl SignalResult {
    /// Count one occurrence.
    pub fn hit(&mut self, workload: Option<&str>, time: Option<i64>, at: (u32, u64)) {
        self.count += 1;
        if let Some(w) = workload
            && self.workloads.len() < MAX_WORKLOADS
            && self.last_workload.as_deref() != Some(w)
        {
            if !self.workloads.contains(w) {
                self.workloads.insert(w.to_string());
            }
            match &mut self.last_workload {
                Some(last) => {
                    last.clear();
                    last.push_str(w);
                }
                None => self.last_workload = Some(w.to_string()),
            }
        }
        if let Some(t) = time {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(at);
        }
    }

    /// Add `lines` to the example line numbers (see `Sink::shift_lines`).
    pub fn shift_lines(&mut self, lines: u64) {
        for (_, line) in &mut self.examples {
            *line += lines;
        }
    }

    /// Append a later result (input order preserved for examples).
    pub fn merge(&mut self, later: SignalResult) {
        self.count += later.count;
        self.denominator = match (self.denominator, later.denominator) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        let mut later_workloads = later.workloads;
        if self.workloads.len() + later_workloads.len() <= MAX_WORKLOADS {
            // Same union as the loop below, in one linear merge.
            self.workloads.append(&mut later_workloads);
        }
        for w in later_workloads {
            if self.workloads.len() >= MAX_WORKLOADS {
                break;
            }
            self.workloads.insert(w);
        }
        self.first = match (self.first, later.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, later.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let room = MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(later.examples.into_iter().take(room));
    }

    /// count / denominator when both are known.
    #[must_use]
    pub fn rate(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        self.denominator
            .filter(|d| *d > 0)
            .map(|d| self.count as f64 / d as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("journey.tls_error:HTTP_REQUEST").is_ok());
        assert!(check_name("app.error_class:connection-reset").is_ok());
        assert!(check_name("app.error_class:nope").is_err());
        assert!(check_name("access.code:abc").is_err());
        assert!(check_name("journey.tls_error:").is_err());
        assert!(check_name("agent.termination").is_ok());
    }
}
