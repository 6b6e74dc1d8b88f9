//! Workload, pod and container names implied by where a file lives.
//!
//! Collectors lay logs out in a few well-known ways; when a record does not name its
//! workload itself, the path is the next best witness.

use std::path::Path;

/// Names derived from a path. All optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathNames {
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
    /// Container name.
    pub container: Option<String>,
    /// Workload (service) name: the pod name without its ReplicaSet/pod hash, or the file
    /// stem for a `<service>.log` layout.
    pub workload: Option<String>,
}

/// Stems that name a log rather than a workload.
const GENERIC_STEMS: &[&str] = &[
    "log",
    "logs",
    "output",
    "out",
    "stdout",
    "stderr",
    "app",
    "application",
    "current",
    "istio-proxy",
    "envoy",
    "sidecar",
    "proxy",
    "access",
    "debug",
    "combined",
    "all",
    "0",
    "1",
    "messages",
];

/// Derive names from a path. Recognised layouts, most specific first:
/// `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log`,
/// `/var/log/containers/<pod>_<ns>_<container>-<id>.log`,
/// `<namespace>/<pod>/<container>.log` (what `meshdoctor collect` writes), and
/// `<anything>/<service>.log`.
#[must_use]
pub fn names_from_path(path: &Path) -> PathNames {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let Some(file_name) = parts.last() else {
        return PathNames::default();
    };
    let stem = strip_extensions(file_name);

    // /var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log
    if parts.len() >= 3 {
        let pod_dir = &parts[parts.len() - 3];
        let fields: Vec<&str> = pod_dir.split('_').collect();
        if fields.len() == 3 && fields[2].len() >= 32 && stem.bytes().all(|b| b.is_ascii_digit()) {
            let container = parts[parts.len() - 2].clone();
            return from_pod(Some(fields[0].to_string()), fields[1], Some(container));
        }
    }
    // /var/log/containers/<pod>_<ns>_<container>-<64 hex>.log
    let fields: Vec<&str> = stem.split('_').collect();
    if fields.len() == 3
        && let Some((container, id)) = fields[2].rsplit_once('-')
        && id.len() == 64
        && id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return from_pod(
            Some(fields[1].to_string()),
            fields[0],
            Some(container.to_string()),
        );
    }
    // <namespace>/<pod>/<container>.log
    if parts.len() >= 3 {
        let pod = &parts[parts.len() - 2];
        if looks_like_pod(pod) {
            let namespace = Some(parts[parts.len() - 3].clone()).filter(|ns| is_dns_label(ns));
            return from_pod(namespace, pod, Some(stem.to_string()));
        }
    }
    // <anything>/<service>.log
    if is_dns_label(stem) && !GENERIC_STEMS.contains(&stem) {
        let workload = if looks_like_pod(stem) {
            workload_from_pod(stem)
        } else {
            stem.to_string()
        };
        return PathNames {
            workload: Some(workload),
            ..PathNames::default()
        };
    }
    PathNames::default()
}

fn from_pod(namespace: Option<String>, pod: &str, container: Option<String>) -> PathNames {
    PathNames {
        namespace,
        pod: Some(pod.to_string()),
        container,
        workload: Some(workload_from_pod(pod)),
    }
}

fn strip_extensions(name: &str) -> &str {
    let mut stem = name;
    for ext in [
        ".gz",
        ".log",
        ".txt",
        ".json",
        ".jsonl",
        ".ndjson",
        ".previous",
        ".current",
    ] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s;
        }
    }
    stem
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with('-')
}

/// Pod names end in a generated suffix: `-<rs hash>-<5 chars>` (Deployment),
/// `-<5 chars>` (DaemonSet/Job) or `-<ordinal>` (StatefulSet).
fn looks_like_pod(s: &str) -> bool {
    is_dns_label(s) && workload_from_pod(s) != s
}

/// Strip the generated pod suffix: `orders-5d8f9c7b6-x2x4z` becomes `orders`.
#[must_use]
pub fn workload_from_pod(pod: &str) -> String {
    let mut pieces: Vec<&str> = pod.split('-').collect();
    // Kubernetes builds generated suffixes from an alphabet without vowels and without
    // 0, 1 and 3 (k8s.io/apimachinery rand.SafeEncodeString); hand-edited or anonymised
    // names often break that rule but keep a digit. Either way a plain word such as
    // `server` is never mistaken for a suffix.
    let generated = |p: &str| {
        p.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
            || (p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && p.bytes().any(|b| b.is_ascii_digit()))
    };
    let is_suffix5 = |p: &str| p.len() == 5 && generated(p);
    let is_rs_hash = |p: &str| (6..=10).contains(&p.len()) && generated(p);
    if pieces.len() >= 3
        && is_suffix5(pieces[pieces.len() - 1])
        && is_rs_hash(pieces[pieces.len() - 2])
    {
        pieces.truncate(pieces.len() - 2);
    } else if pieces.len() >= 2 {
        let last = pieces[pieces.len() - 1];
        let daemonset_suffix = is_suffix5(last);
        let statefulset_ordinal = last.len() <= 3 && last.bytes().all(|b| b.is_ascii_digit());
        if daemonset_suffix || statefulset_ordinal {
            pieces.truncate(pieces.len() - 1);
        }
    }
    pieces.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &str) -> PathNames {
        names_from_path(Path::new(p))
    }

    #[test]
    fn kubelet_pod_directory() {
        let n = names(
            "/var/log/pods/shop_orders-5d8f9c7b6-x2x4z_0f8e2c3a-1111-2222-3333-444455556666/istio-proxy/0.log",
        );
        assert_eq!(n.namespace.as_deref(), Some("shop"));
        assert_eq!(n.pod.as_deref(), Some("orders-5d8f9c7b6-x2x4z"));
        assert_eq!(n.container.as_deref(), Some("istio-proxy"));
        assert_eq!(n.workload.as_deref(), Some("orders"));
    }

    #[test]
    fn kubelet_containers_symlink() {
        let id = "a".repeat(64);
        let n = names(&format!(
            "/var/log/containers/orders-5d8f9c7b6-x2x4z_shop_istio-proxy-{id}.log"
        ));
        assert_eq!(n.namespace.as_deref(), Some("shop"));
        assert_eq!(n.container.as_deref(), Some("istio-proxy"));
        assert_eq!(n.workload.as_deref(), Some("orders"));
    }

    #[test]
    fn collect_layout_and_service_files() {
        let n = names("bundle/shop/orders-5d8f9c7b6-x2x4z/app.log");
        assert_eq!(n.namespace.as_deref(), Some("shop"));
        assert_eq!(n.container.as_deref(), Some("app"));
        assert_eq!(n.workload.as_deref(), Some("orders"));
        assert_eq!(
            names("corpus/envoy-access/orders.log.gz")
                .workload
                .as_deref(),
            Some("orders")
        );
        assert_eq!(names("logs/istio-proxy.log").workload, None);
        assert_eq!(names("web-0.log").workload.as_deref(), Some("web"));
    }

    #[test]
    fn pod_suffixes() {
        assert_eq!(workload_from_pod("service-b-7d9f8c6b5-x2x4z"), "service-b");
        assert_eq!(workload_from_pod("fluentd-x2x4z"), "fluentd");
        assert_eq!(workload_from_pod("redis-2"), "redis");
        assert_eq!(workload_from_pod("service-b"), "service-b");
        assert_eq!(workload_from_pod("service-a-fgggkzbzc-kwzvj"), "service-a");
        assert_eq!(workload_from_pod("api-server"), "api-server");
        assert_eq!(
            workload_from_pod("istio-ingressgateway"),
            "istio-ingressgateway"
        );
    }
}
