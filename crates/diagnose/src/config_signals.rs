//! Signals computed from configuration inputs (mesh ConfigMap, Pods/Deployments, Services,
//! PeerAuthentications, Envoy config dumps and stats) read by `meshdoctor-config`.
//!
//! Each signal cites the config line it rests on (file:line), so a finding that uses it shows
//! that line as evidence. This module only turns config facts into [`SignalResult`]s; it must
//! not parse config itself (that is `meshdoctor-config`) nor score rules (that is the engine).

use crate::engine::Analysis;
use crate::signals::SignalResult;
use crate::version::{Minor, VersionRange};
use meshdoctor_config::{ConfigSet, Protocol, ProtocolSource};
use meshdoctor_model::Location;
use std::collections::BTreeSet;
use std::time::Duration;

/// Config signals without a parameter: (name, what it counts).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "config.caller_without_sidecar",
        "workloads that log application errors (callers) whose Pod/Deployment has no istio-proxy container or opts out with `sidecar.istio.io/inject: \"false\"`",
    ),
    (
        "config.caller_with_sidecar",
        "callers (workloads that log application errors) whose Pod/Deployment runs an istio-proxy, when no caller lacks one",
    ),
    (
        "config.detection_timeout_short",
        "an effective outbound protocol detection timeout of at most 1 s (e.g. the Istio 1.6 chart's 100 ms) on Istio <= 1.7 or an unknown version; evidence is the ConfigMap / dump line",
    ),
    (
        "config.detection_timeout_long",
        "an effective outbound protocol detection timeout of at least 5 s, or disabled (0s): slow first bytes are not cut off by sniffing",
    ),
    (
        "config.port_undeclared_server_first",
        "a Service port of a server-first protocol (MySQL, SMTP, SSH, NATS, ...) whose name/appProtocol declares no protocol, so the client sidecar sniffs it and waits for client bytes",
    ),
];

/// Config signals with a parameter: (prefix, what the parameter is).
pub const PARAMETERISED: &[(&str, &str)] = &[
    (
        "config.risk:",
        "a cause id: config-only risk findings of `meshdoctor config` with that id, each with its file:line",
    ),
    (
        "stats:",
        "an Envoy counter name, e.g. downstream_pre_cx_timeout, upstream_rq_pending_overflow, upstream_cx_destroy_remote_with_active_rq (count = the sum over every scope when > 0)",
    ),
];

/// Server-first protocols by port and by a hint in the port name.
const SERVER_FIRST: &[(u16, &str)] = &[
    (21, "ftp"),
    (22, "ssh"),
    (25, "smtp"),
    (110, "pop3"),
    (143, "imap"),
    (587, "submission"),
    (3306, "mysql"),
    (4222, "nats"),
    (5432, "postgres"),
];

/// The version range to judge config facts with: the logs' when they name one, else the
/// config's (istiod image, proxy images).
#[must_use]
pub fn version_with_config(logs: VersionRange, config: &ConfigSet) -> VersionRange {
    if !logs.is_any() {
        return logs;
    }
    config.istio_version().map_or(logs, |v| {
        let m = Minor(
            u16::try_from(v.value.major).unwrap_or(u16::MAX),
            u16::try_from(v.value.minor).unwrap_or(u16::MAX),
        );
        VersionRange { lo: m, hi: m }
    })
}

fn hit_at(r: &mut SignalResult, workload: Option<&str>, at: Location) {
    r.hit(workload, None, (at.file, at.line));
}

/// Workloads that logged application errors (the callers), as log workload names.
fn callers(a: &Analysis) -> BTreeSet<&str> {
    a.collector
        .app_errors
        .iter()
        .filter_map(|e| e.workload.as_deref())
        .collect()
}

/// Compute a `config.*` or `stats:*` signal; unknown names give an empty result.
#[must_use]
pub fn compute(a: &Analysis, version: VersionRange, name: &str) -> SignalResult {
    let config = &a.config;
    let mut r = SignalResult::default();
    if let Some(id) = name.strip_prefix("config.risk:") {
        for f in config.findings().iter().filter(|f| f.id == id) {
            hit_at(&mut r, None, f.at);
        }
        return r;
    }
    if let Some(stat) = name.strip_prefix("stats:") {
        if let Some((total, at)) = config.stat_total(stat)
            && total > 0.0
        {
            hit_at(&mut r, None, at);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                r.count = total.min(u64::MAX as f64) as u64;
            }
        }
        return r;
    }
    match name {
        "config.caller_without_sidecar" | "config.caller_with_sidecar" => {
            let callers = callers(a);
            let mut without = SignalResult::default();
            let mut with = SignalResult::default();
            for w in config.workloads() {
                let log_name = if w.kind == "Pod" {
                    meshdoctor_input::workload_from_pod(&w.name)
                } else {
                    w.name.clone()
                };
                if !callers.contains(log_name.as_str()) {
                    continue;
                }
                // A sidecar that outbound traffic bypasses for some ports or ranges does not
                // make the caller meshed for those calls: it counts as neither.
                let bypasses = [
                    "traffic.sidecar.istio.io/excludeOutboundPorts",
                    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
                ]
                .iter()
                .any(|k| w.annotation(k).is_some_and(|a| !a.value.trim().is_empty()));
                if config.has_sidecar(w) {
                    if !bypasses {
                        hit_at(&mut with, Some(&log_name), w.at);
                    }
                } else {
                    let at = w
                        .annotation("sidecar.istio.io/inject")
                        .map_or(w.at, |a| a.at);
                    hit_at(&mut without, Some(&log_name), at);
                }
            }
            if name == "config.caller_without_sidecar" {
                without
            } else if without.count == 0 {
                with
            } else {
                SignalResult::default()
            }
        }
        "config.detection_timeout_short" | "config.detection_timeout_long" => {
            let short = name == "config.detection_timeout_short";
            let version = version_with_config(version, config);
            let old = version.is_any() || version.lo <= Minor(1, 7);
            // Per service port first (what the sidecars resolve), then the mesh-wide value.
            let mut seen: Vec<(Duration, Location, String)> = config
                .effective()
                .into_iter()
                .filter(|row| row.protocol == Protocol::Auto)
                .filter_map(|row| {
                    row.detection_timeout
                        .map(|d| (d.value, d.at, format!("{}.{}", row.service, row.namespace)))
                })
                .collect();
            if seen.is_empty()
                && let Some((d, at)) = config.detection_timeout_for("*")
            {
                seen.push((d, at, String::new()));
            }
            for (d, at, service) in seen {
                let is_short = !d.is_zero() && d <= Duration::from_secs(1);
                let is_long = d.is_zero() || d >= Duration::from_secs(5);
                let w = (!service.is_empty()).then_some(service.as_str());
                if (short && is_short && old) || (!short && is_long) {
                    hit_at(&mut r, w, at);
                }
            }
            r
        }
        "config.port_undeclared_server_first" => {
            for row in config.effective() {
                // Undeclared: the name/appProtocol gave no protocol (sniffed, or TCP only by
                // a well-known port default that not every version applies).
                let undeclared = row.protocol == Protocol::Auto
                    || row.protocol_source == ProtocolSource::WellKnownPort;
                let name = row.port_name.as_deref().unwrap_or("").to_ascii_lowercase();
                let server_first = SERVER_FIRST.iter().any(|(p, hint)| {
                    *p == row.port
                        || Some(*p) == row.target_port
                        || (!name.is_empty() && name.contains(hint))
                });
                if undeclared && server_first {
                    hit_at(&mut r, Some(&row.service), row.port_at);
                }
            }
            r
        }
        _ => r,
    }
}

/// The `{detection_timeout}` placeholder: the mesh-wide outbound protocol detection timeout
/// read from config with where it was read (`100ms at istio-system/istio-configmap.yaml:29`),
/// or `not read (no mesh config in the inputs)`.
#[must_use]
pub fn mesh_detection_timeout(a: &Analysis) -> String {
    // No service is called `*`, so this resolves to the mesh-wide value (or a version default).
    a.config.detection_timeout_for("*").map_or_else(
        || "not read (no mesh config in the inputs)".to_string(),
        |(d, at)| {
            let shown = if d.is_zero() {
                "0s (disabled)".to_string()
            } else {
                meshdoctor_config::format_duration(d)
            };
            format!("{shown} at {}:{}", a.config.file_name(at.file), at.line)
        },
    )
}

/// Check a `config.*` / `stats:*` signal name.
///
/// # Errors
/// Unknown name or missing parameter.
pub fn check_name(name: &str) -> Option<Result<(), String>> {
    if BUILTIN.iter().any(|(n, _)| *n == name) {
        return Some(Ok(()));
    }
    for (prefix, _) in PARAMETERISED {
        if let Some(p) = name.strip_prefix(prefix) {
            return Some(if p.is_empty() {
                Err(format!("signal `{name}` needs a parameter after `:`"))
            } else {
                Ok(())
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{AppErr, Collector, Patterns};
    use crate::journey::Journeys;
    use meshdoctor_input::ContentKind;
    use meshdoctor_model::ErrorClass;
    use std::sync::Arc;

    fn analysis(files: &[(&str, ContentKind, &str)], app_workload: Option<&str>) -> Analysis {
        let mut config = ConfigSet::new();
        for (i, (name, kind, text)) in files.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            config.add_bytes(id, name, *kind, text.as_bytes());
        }
        let mut collector = Collector::new(Arc::new(Patterns::default()));
        if let Some(w) = app_workload {
            collector.app_errors.push(AppErr {
                file: 99,
                line: 1,
                time: None,
                workload: Some(w.to_string()),
                class: ErrorClass::ConnectionReset,
                peer: None,
                ids: Vec::new(),
            });
        }
        Analysis {
            collector,
            journeys: Journeys::default(),
            coverage: Vec::new(),
            file_names: std::collections::BTreeMap::new(),
            inputs: Vec::new(),
            config,
        }
    }

    const MESH_100MS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n  namespace: istio-system\ndata:\n  mesh: |-\n    accessLogFile: /dev/stdout\n    protocolDetectionTimeout: 100ms\n";

    #[test]
    fn short_timeout_cites_the_configmap_line_and_respects_the_version() {
        let a = analysis(&[("cm.yaml", ContentKind::Yaml, MESH_100MS)], None);
        let r = compute(&a, VersionRange::ANY, "config.detection_timeout_short");
        assert_eq!(r.count, 1);
        assert_eq!(r.examples, vec![(0, 9)]);
        assert_eq!(
            compute(&a, VersionRange::ANY, "config.detection_timeout_long").count,
            0
        );
        // On 1.9 the short value is not the 1.6-era risk this signal names.
        let v19 = VersionRange::parse("1.9").expect("range");
        assert_eq!(compute(&a, v19, "config.detection_timeout_short").count, 0);
        assert!(mesh_detection_timeout(&a).starts_with("100ms at cm.yaml:9"));
    }

    #[test]
    fn five_seconds_or_disabled_is_long() {
        for value in ["5s", "0s"] {
            let text = MESH_100MS.replace("100ms", value);
            let a = analysis(&[("cm.yaml", ContentKind::Yaml, &text)], None);
            assert_eq!(
                compute(&a, VersionRange::ANY, "config.detection_timeout_long").count,
                1,
                "{value}"
            );
            assert_eq!(
                compute(&a, VersionRange::ANY, "config.detection_timeout_short").count,
                0
            );
        }
    }

    const PODS: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: legacy-7d9f8c6b5-x2x9k\n  namespace: shop\n  annotations:\n    sidecar.istio.io/inject: \"false\"\nspec:\n  containers:\n  - name: legacy\n    image: legacy:1\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: orders-5c7f9b8d4-q8w2n\n  namespace: shop\nspec:\n  containers:\n  - name: orders\n    image: orders:1\n  - name: istio-proxy\n    image: docker.io/istio/proxyv2:1.6.8\n";

    #[test]
    fn a_caller_without_sidecar_is_named_from_its_pod_spec() {
        let a = analysis(&[("pods.yaml", ContentKind::Yaml, PODS)], Some("legacy"));
        let r = compute(&a, VersionRange::ANY, "config.caller_without_sidecar");
        assert_eq!(r.count, 1);
        assert!(r.workloads.contains("legacy"));
        assert_eq!(r.examples, vec![(0, 7)], "the inject annotation line");
        assert_eq!(
            compute(&a, VersionRange::ANY, "config.caller_with_sidecar").count,
            0
        );
        let meshed = analysis(&[("pods.yaml", ContentKind::Yaml, PODS)], Some("orders"));
        assert_eq!(
            compute(&meshed, VersionRange::ANY, "config.caller_with_sidecar").count,
            1
        );
        assert_eq!(
            compute(&meshed, VersionRange::ANY, "config.caller_without_sidecar").count,
            0
        );
        // A workload that logs nothing is not a caller.
        let quiet = analysis(&[("pods.yaml", ContentKind::Yaml, PODS)], None);
        assert_eq!(
            compute(&quiet, VersionRange::ANY, "config.caller_without_sidecar").count,
            0
        );
    }

    #[test]
    fn undeclared_server_first_port() {
        let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  namespace: shop\nspec:\n  selector:\n    app: db\n  ports:\n  - name: db\n    port: 3306\n";
        let a = analysis(&[("svc.yaml", ContentKind::Yaml, svc)], None);
        let r = compute(&a, VersionRange::ANY, "config.port_undeclared_server_first");
        assert_eq!(r.count, 1);
        let declared = svc.replace("name: db\n    port", "name: tcp-mysql\n    port");
        let a = analysis(&[("svc.yaml", ContentKind::Yaml, &declared)], None);
        assert_eq!(
            compute(&a, VersionRange::ANY, "config.port_undeclared_server_first").count,
            0
        );
    }

    #[test]
    fn stats_sum_counters_and_zero_is_not_seen() {
        let text = "cluster.outbound|80||a.shop.svc.cluster.local.upstream_rq_pending_overflow: 3\ncluster.outbound|80||b.shop.svc.cluster.local.upstream_rq_pending_overflow: 4\nlistener.0.0.0.0_80.downstream_pre_cx_timeout: 0\n";
        let a = analysis(&[("stats.txt", ContentKind::EnvoyStats, text)], None);
        let r = compute(&a, VersionRange::ANY, "stats:upstream_rq_pending_overflow");
        assert_eq!(r.count, 7);
        assert_eq!(r.examples, vec![(0, 2)], "the largest contributor");
        assert_eq!(
            compute(&a, VersionRange::ANY, "stats:downstream_pre_cx_timeout").count,
            0
        );
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(
            check_name("config.risk:"),
            Some(Err(
                "signal `config.risk:` needs a parameter after `:`".into()
            ))
        );
        assert_eq!(
            check_name("stats:upstream_rq_pending_overflow"),
            Some(Ok(()))
        );
        assert_eq!(check_name("config.caller_without_sidecar"), Some(Ok(())));
        assert_eq!(check_name("journey.failing"), None);
    }
}
