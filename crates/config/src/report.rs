//! The `meshdoctor config` report: a stable JSON shape and its plain-text table.
//!
//! JSON contract (fields may be added, never renamed): `{"effective": [{"service",
//! "namespace", "port", "protocol", "detection_timeout_ms": N|null, "mtls_mode"}],
//! "findings": [{"id", "file", "line", "summary"}]}`. This module formats values into
//! strings; it never prints (the CLI writes the result).

use crate::{ConfigSet, Location, format_duration};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One row of `effective`.
#[derive(Clone, Debug, Serialize)]
pub struct EffectiveRow {
    /// Service name.
    pub service: String,
    /// Namespace.
    pub namespace: String,
    /// Service port.
    pub port: u16,
    /// Protocol (`http`, `tcp`, ..., `auto` = sniffed).
    pub protocol: &'static str,
    /// Outbound detection timeout in ms (0 = disabled), null when detection does not apply
    /// or nothing is known.
    pub detection_timeout_ms: Option<u64>,
    /// STRICT | PERMISSIVE | DISABLE | UNSET.
    pub mtls_mode: &'static str,
    /// Target port.
    pub target_port: Option<u16>,
    /// Port name.
    pub port_name: Option<String>,
    /// Why the protocol (`port-name`, `app-protocol`, `sniffed`...).
    pub protocol_source: crate::ProtocolSource,
    /// `file:line` of the port.
    pub port_at: String,
    /// Where the detection timeout comes from (`file:line`) and why.
    pub detection_timeout_at: Option<String>,
    /// Explanation of the detection timeout.
    pub detection_timeout_note: Option<String>,
    /// Inbound (server sidecar) detection timeout in ms.
    pub inbound_detection_timeout_ms: Option<u64>,
    /// `file:line` of the deciding PeerAuthentication.
    pub mtls_at: Option<String>,
    /// Client-side TLS mode from a DestinationRule (null = auto mTLS).
    pub client_tls_mode: Option<String>,
    /// DestinationRule applying.
    pub destination_rule: Option<String>,
    /// `connectionPool.http.idleTimeout` in ms, when set.
    pub http_idle_timeout_ms: Option<u64>,
    /// `connectionPool.tcp.idleTimeout` in ms, when set.
    pub tcp_idle_timeout_ms: Option<u64>,
    /// The server sidecar's `terminationDrainDuration` in ms, when set.
    pub termination_drain_ms: Option<u64>,
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct FindingRow {
    /// Cause id.
    pub id: &'static str,
    /// File.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// One line.
    pub summary: String,
    /// Supporting `file:line`s.
    pub evidence: Vec<String>,
}

/// A document that could not be used.
#[derive(Clone, Debug, Serialize)]
pub struct ProblemRow {
    /// File.
    pub file: String,
    /// 1-based line (0 = the whole file).
    pub line: u64,
    /// Why.
    pub message: String,
}

/// A config-dump listener whose listener filters wait for the first bytes.
#[derive(Clone, Debug, Serialize)]
pub struct ListenerRow {
    /// Pod of the dump, if the bootstrap names it.
    pub pod: Option<String>,
    /// Listener name.
    pub listener: String,
    /// `listener_filters_timeout` in ms (absent = 15000, Envoy's default).
    pub listener_filters_timeout_ms: u64,
    /// `continue_on_listener_filters_timeout`.
    pub continue_on_timeout: bool,
    /// Has an active `http_inspector`.
    pub sniffs_http: bool,
    /// `file:line`.
    pub at: String,
}

/// A reset-related Envoy counter found in the stats, summed over scopes and files.
#[derive(Clone, Debug, Serialize)]
pub struct CounterRow {
    /// Envoy stat name (the part after the listener/cluster scope).
    pub stat: &'static str,
    /// Sum.
    pub total: f64,
    /// `file:line` of the largest contributor.
    pub at: String,
}

/// Stats that bear on resets (rootcauses.md (d) evidence); absent ones are not listed,
/// because Istio does not create most of them unless asked (absent is not zero).
const COUNTERS: &[&str] = &[
    "downstream_pre_cx_timeout",
    "downstream_listener_filter_remote_close",
    "no_filter_chain_match",
    "ssl.connection_error",
    "upstream_cx_destroy_remote_with_active_rq",
    "upstream_cx_destroy_local_with_active_rq",
    "upstream_cx_connect_fail",
    "upstream_cx_connect_timeout",
    "upstream_cx_protocol_error",
    "upstream_cx_idle_timeout",
    "upstream_cx_max_requests",
    "upstream_cx_max_duration_reached",
    "upstream_rq_pending_overflow",
    "upstream_cx_overflow",
    "upstream_rq_rx_reset",
    "upstream_rq_tx_reset",
    "upstream_rq_timeout",
    "rbac.denied",
];

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The Istio version settings were resolved for.
    pub istio_version: Option<String>,
    /// Where it was seen.
    pub istio_version_at: Option<String>,
    /// Effective settings per service port.
    pub effective: Vec<EffectiveRow>,
    /// Config-only risks.
    pub findings: Vec<FindingRow>,
    /// Listeners from config dumps that run listener filters.
    pub listeners: Vec<ListenerRow>,
    /// Unusable documents.
    pub problems: Vec<ProblemRow>,
    /// Objects read per kind.
    pub kinds: BTreeMap<String, usize>,
    /// Objects ignored per unknown kind.
    pub ignored_kinds: BTreeMap<String, usize>,
    /// Stats read.
    pub stats: usize,
    /// Reset-related counters present in the stats.
    pub counters: Vec<CounterRow>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Report {
    /// Build the report of a set.
    #[must_use]
    pub fn new(set: &ConfigSet) -> Self {
        let loc = |at: Location| format!("{}:{}", set.file_name(at.file), at.line);
        let version = set.istio_version();
        let effective = set
            .effective()
            .into_iter()
            .map(|r| EffectiveRow {
                service: r.service,
                namespace: r.namespace,
                port: r.port,
                protocol: r.protocol.as_str(),
                detection_timeout_ms: r.detection_timeout.as_ref().map(|d| ms(d.value)),
                mtls_mode: r.mtls_mode.as_str(),
                target_port: r.target_port,
                port_name: r.port_name,
                protocol_source: r.protocol_source,
                port_at: loc(r.port_at),
                detection_timeout_at: r.detection_timeout.as_ref().map(|d| loc(d.at)),
                detection_timeout_note: r.detection_timeout.as_ref().map(|d| d.note.clone()),
                inbound_detection_timeout_ms: r
                    .inbound_detection_timeout
                    .as_ref()
                    .map(|d| ms(d.value)),
                mtls_at: r.mtls_at.map(loc),
                client_tls_mode: r.client_tls_mode.map(|t| t.value),
                destination_rule: r.destination_rule,
                http_idle_timeout_ms: r.policy.http_idle_timeout.as_ref().map(|d| ms(d.value)),
                tcp_idle_timeout_ms: r.policy.tcp_idle_timeout.as_ref().map(|d| ms(d.value)),
                termination_drain_ms: r.termination_drain.as_ref().map(|d| ms(d.value)),
            })
            .collect();
        let findings = set
            .findings()
            .into_iter()
            .map(|f| FindingRow {
                id: f.id,
                file: set.file_name(f.at.file).to_string(),
                line: f.at.line,
                summary: f.summary,
                evidence: f.evidence.into_iter().map(loc).collect(),
            })
            .collect();
        let listeners = set
            .envoy_dumps()
            .iter()
            .flat_map(|d| d.listeners.iter().map(move |l| (d, l)))
            .filter(|(_, l)| {
                l.inspects("http_inspector", None) || l.inspects("tls_inspector", None)
            })
            .map(|(d, l)| ListenerRow {
                pod: d.pod.clone(),
                listener: l.name.clone(),
                listener_filters_timeout_ms: l
                    .listener_filters_timeout
                    .as_ref()
                    .map_or(15_000, |t| ms(t.value)),
                continue_on_timeout: l.continue_on_timeout,
                sniffs_http: l.inspects("http_inspector", None),
                at: loc(l.at),
            })
            .collect();
        Report {
            istio_version: version.as_ref().map(|v| v.value.to_string()),
            istio_version_at: version.as_ref().map(|v| loc(v.at)),
            effective,
            findings,
            listeners,
            problems: set
                .problems()
                .iter()
                .map(|p| ProblemRow {
                    file: set.file_name(p.at.file).to_string(),
                    line: p.at.line,
                    message: p.message.clone(),
                })
                .collect(),
            kinds: set.kinds().clone(),
            ignored_kinds: set.unknown_kinds().clone(),
            stats: set.stats().len(),
            counters: COUNTERS
                .iter()
                .filter_map(|stat| {
                    let (total, at) = set.stat_total(stat)?;
                    Some(CounterRow {
                        stat,
                        total,
                        at: loc(at),
                    })
                })
                .collect(),
        }
    }

    /// The plain-text rendering: version, the effective table, findings, problems.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match (&self.istio_version, &self.istio_version_at) {
            (Some(v), Some(at)) => {
                let _ = writeln!(out, "Istio version: {v} (from {at})");
            }
            _ => out.push_str(
                "Istio version: unknown (no istiod/proxy image, IstioOperator or dump)\n",
            ),
        }
        out.push('\n');
        if self.effective.is_empty() {
            out.push_str("No Service ports found.\n");
        } else {
            let mut rows = vec![[
                "SERVICE".to_string(),
                "PORT".to_string(),
                "PROTOCOL".to_string(),
                "DETECTION".to_string(),
                "MTLS".to_string(),
                "CLIENT TLS".to_string(),
                "IDLE".to_string(),
            ]];
            for r in &self.effective {
                let proto = if r.protocol == "auto" {
                    "auto (sniffed)".to_string()
                } else {
                    r.protocol.to_string()
                };
                let detection = r.detection_timeout_ms.map_or_else(
                    || "-".to_string(),
                    |v| {
                        if v == 0 {
                            "disabled".to_string()
                        } else {
                            format_duration(std::time::Duration::from_millis(v))
                        }
                    },
                );
                let idle = r
                    .http_idle_timeout_ms
                    .or(r.tcp_idle_timeout_ms)
                    .map_or_else(
                        || "-".to_string(),
                        |v| format_duration(std::time::Duration::from_millis(v)),
                    );
                rows.push([
                    format!("{}.{}", r.service, r.namespace),
                    r.port.to_string(),
                    proto,
                    detection,
                    r.mtls_mode.to_string(),
                    r.client_tls_mode
                        .clone()
                        .unwrap_or_else(|| "auto".to_string()),
                    idle,
                ]);
            }
            let mut widths = [0usize; 7];
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row.iter()) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for row in &rows {
                let mut line = String::new();
                for (i, (cell, w)) in row.iter().zip(widths.iter()).enumerate() {
                    if i + 1 == row.len() {
                        line.push_str(cell);
                    } else {
                        let _ = write!(line, "{cell:<w$}  ");
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        if !self.listeners.is_empty() {
            out.push_str("\nConfig-dump listeners with listener filters:\n");
            for l in &self.listeners {
                let _ = writeln!(
                    out,
                    "  {}{}  timeout {}{}{}  ({})",
                    l.pod
                        .as_deref()
                        .map(|p| format!("{p} "))
                        .unwrap_or_default(),
                    l.listener,
                    format_duration(std::time::Duration::from_millis(
                        l.listener_filters_timeout_ms
                    )),
                    if l.continue_on_timeout {
                        ", continue on timeout"
                    } else {
                        ""
                    },
                    if l.sniffs_http { ", sniffs HTTP" } else { "" },
                    l.at
                );
            }
        }
        if !self.counters.is_empty() {
            out.push_str("\nReset-related Envoy counters:\n");
            for c in &self.counters {
                let _ = writeln!(out, "  {} = {}  ({})", c.stat, c.total, c.at);
            }
        }
        out.push('\n');
        if self.findings.is_empty() {
            out.push_str("No config-only risks found.\n");
        } else {
            let _ = writeln!(out, "Findings ({}):", self.findings.len());
            for f in &self.findings {
                let _ = writeln!(out, "  {}:{}  [{}]  {}", f.file, f.line, f.id, f.summary);
            }
        }
        if !self.problems.is_empty() {
            let _ = writeln!(out, "\nUnusable documents ({}):", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(out, "  {}:{}  {}", p.file, p.line, p.message);
            }
        }
        let ignored: usize = self.ignored_kinds.values().sum();
        if ignored > 0 {
            let list: Vec<String> = self
                .ignored_kinds
                .iter()
                .map(|(k, n)| format!("{k} x{n}"))
                .collect();
            let _ = writeln!(
                out,
                "\nIgnored {ignored} object(s) of other kinds: {}",
                list.join(", ")
            );
        }
        out
    }
}
