//! Reading Istio's `%UPSTREAM_CLUSTER%` names and Envoy's `%RESPONSE_CODE_DETAILS%` values.
//!
//! Rules ask "was this row inbound or outbound, and to which service?"; the answer is in the
//! cluster name (formats.md §3.7). These helpers are pure string splitting on borrowed
//! input; they must not allocate, and they do not decide anything about causes.

use super::strip_stat_suffix;
use meshdoctor_model::AccessEntry;

/// Which way a row's traffic went, as told by its upstream cluster name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// `inbound|<port>|...`: a request to the local application.
    Inbound,
    /// `outbound|<port>|<subset>|<fqdn>`: a call to a mesh service.
    Outbound,
    /// `PassthroughCluster` (and `AllowAnyDynamicDNSCluster`): outbound traffic to a
    /// destination the mesh does not know, let through by `ALLOW_ANY`.
    Passthrough,
    /// `BlackHoleCluster`: outbound traffic dropped by `REGISTRY_ONLY` (or a capture loop).
    BlackHole,
    /// `InboundPassthroughClusterIpv4`/`Ipv6` (≤1.22) or `InboundPassthroughCluster` (1.23+):
    /// inbound traffic to a port no Service declares.
    InboundPassthrough,
    /// Any other name (gateways, custom clusters, `-`).
    Other,
}

/// Classify a `%UPSTREAM_CLUSTER%` value. One trailing `;` (Istio 1.23+ alt stat name) is
/// ignored. The SNI-like form `outbound_.8080_._.fqdn` is classified like `outbound|...`.
#[must_use]
pub fn cluster_direction(cluster: &str) -> Direction {
    let cluster = strip_stat_suffix(cluster);
    match cluster {
        "PassthroughCluster" | "AllowAnyDynamicDNSCluster" => Direction::Passthrough,
        "BlackHoleCluster" => Direction::BlackHole,
        "InboundPassthroughClusterIpv4"
        | "InboundPassthroughClusterIpv6"
        | "InboundPassthroughCluster" => Direction::InboundPassthrough,
        _ if cluster.starts_with("outbound|") || cluster.starts_with("outbound_.") => {
            Direction::Outbound
        }
        _ if cluster.starts_with("inbound|") || cluster.starts_with("inbound_.") => {
            Direction::Inbound
        }
        _ => Direction::Other,
    }
}

/// Split a service cluster name into `(port, subset, fqdn)`.
///
/// * `outbound|8080||orders.shop.svc.cluster.local` gives `("8080", "", "orders.shop...")`.
/// * `inbound|8080||` (Istio ≥1.8) gives `("8080", "", "")`: the target port only.
/// * `inbound|9080|http|reviews.default.svc.cluster.local` (Istio ≤1.7) gives
///   `("9080", "http", "reviews...")`: there the middle slot is the port *name*, not a subset.
/// * The SNI form `outbound_.8080_.v1_.orders.shop.svc.cluster.local` gives
///   `("8080", "v1", "orders...")`; `_._.` is the empty subset.
///
/// One trailing `;` is ignored. `None` for the special clusters and anything else.
#[must_use]
pub fn cluster_service(cluster: &str) -> Option<(&str, &str, &str)> {
    let cluster = strip_stat_suffix(cluster);
    let (port, subset, fqdn) = if let Some(rest) = cluster
        .strip_prefix("outbound|")
        .or_else(|| cluster.strip_prefix("inbound|"))
    {
        let mut parts = rest.splitn(3, '|');
        (parts.next()?, parts.next()?, parts.next()?)
    } else if let Some(rest) = cluster
        .strip_prefix("outbound_.")
        .or_else(|| cluster.strip_prefix("inbound_."))
    {
        let mut parts = rest.splitn(3, "_.");
        (parts.next()?, parts.next()?, parts.next()?)
    } else {
        return None;
    };
    if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((port, subset, fqdn))
}

/// Split a `%RESPONSE_CODE_DETAILS%` value into its name and the text in its outer braces,
/// parentheses or brackets.
///
/// `upstream_reset_before_response_started{connection_termination}` gives
/// `("upstream_reset_before_response_started", Some("connection_termination"))`;
/// `downstream_local_disconnect(on_idle_timeout)` gives the reason in parentheses;
/// `via_upstream` gives `("via_upstream", None)`. Inner text keeps Envoy's `_` for spaces.
#[must_use]
pub fn split_details(details: &str) -> (&str, Option<&str>) {
    let Some(open) = details.find(['{', '(', '[']) else {
        return (details, None);
    };
    let close = match details.as_bytes().get(open) {
        Some(b'{') => '}',
        Some(b'(') => ')',
        _ => ']',
    };
    let name = details.get(..open).unwrap_or(details);
    let inner = details.get(open + 1..).unwrap_or("");
    // A cut-off value has no closing bracket; keep what is there.
    let inner = inner.strip_suffix(close).unwrap_or(inner);
    (name, Some(inner))
}

/// Convenience readings of an [`AccessEntry`] for rules.
pub trait AccessEntryExt {
    /// Direction from the upstream cluster; `None` when the row names no cluster.
    fn direction(&self) -> Option<Direction>;
    /// `(port, subset, fqdn)` of the upstream cluster, see [`cluster_service`].
    fn service(&self) -> Option<(&str, &str, &str)>;
    /// The reason inside the response code details, e.g. `connection_termination` for
    /// `upstream_reset_before_response_started{connection_termination}`.
    fn details_reason(&self) -> Option<&str>;
}

impl AccessEntryExt for AccessEntry<'_> {
    fn direction(&self) -> Option<Direction> {
        self.upstream_cluster.as_deref().map(cluster_direction)
    }

    fn service(&self) -> Option<(&str, &str, &str)> {
        self.upstream_cluster.as_deref().and_then(cluster_service)
    }

    fn details_reason(&self) -> Option<&str> {
        self.response_code_details
            .as_deref()
            .and_then(|d| split_details(d).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions() {
        for (name, want) in [
            (
                "outbound|8080||orders.shop.svc.cluster.local",
                Direction::Outbound,
            ),
            (
                "outbound|8080||orders.shop.svc.cluster.local;",
                Direction::Outbound,
            ),
            (
                "outbound_.8080_._.orders.shop.svc.cluster.local",
                Direction::Outbound,
            ),
            ("inbound|8080||", Direction::Inbound),
            (
                "inbound|9080|http|reviews.default.svc.cluster.local",
                Direction::Inbound,
            ),
            ("PassthroughCluster", Direction::Passthrough),
            ("PassthroughCluster;", Direction::Passthrough),
            ("AllowAnyDynamicDNSCluster", Direction::Passthrough),
            ("BlackHoleCluster", Direction::BlackHole),
            (
                "InboundPassthroughClusterIpv4",
                Direction::InboundPassthrough,
            ),
            (
                "InboundPassthroughClusterIpv6",
                Direction::InboundPassthrough,
            ),
            ("InboundPassthroughCluster", Direction::InboundPassthrough),
            ("xds-grpc", Direction::Other),
            ("-", Direction::Other),
            ("", Direction::Other),
            ("outboundish", Direction::Other),
        ] {
            assert_eq!(cluster_direction(name), want, "{name}");
        }
    }

    #[test]
    fn services() {
        for (name, want) in [
            (
                "outbound|8080||orders.shop.svc.cluster.local",
                Some(("8080", "", "orders.shop.svc.cluster.local")),
            ),
            (
                "outbound|8080|v2|orders.shop.svc.cluster.local;",
                Some(("8080", "v2", "orders.shop.svc.cluster.local")),
            ),
            ("inbound|8080||", Some(("8080", "", ""))),
            (
                "inbound|9080|http|reviews.default.svc.cluster.local",
                Some(("9080", "http", "reviews.default.svc.cluster.local")),
            ),
            (
                "outbound_.8080_._.orders.shop.svc.cluster.local",
                Some(("8080", "", "orders.shop.svc.cluster.local")),
            ),
            (
                "outbound_.8080_.v1_.orders.shop.svc.cluster.local",
                Some(("8080", "v1", "orders.shop.svc.cluster.local")),
            ),
            ("outbound|8080", None),
            ("outbound|http||x", None),
            ("PassthroughCluster", None),
            ("", None),
        ] {
            assert_eq!(cluster_service(name), want, "{name}");
        }
    }

    #[test]
    fn details() {
        assert_eq!(
            split_details("upstream_reset_before_response_started{connection_termination}"),
            (
                "upstream_reset_before_response_started",
                Some("connection_termination")
            )
        );
        assert_eq!(
            split_details("downstream_local_disconnect(on_idle_timeout)"),
            ("downstream_local_disconnect", Some("on_idle_timeout"))
        );
        assert_eq!(
            split_details("rbac_access_denied_matched_policy[ns[foo]-policy[deny]-rule[0]]"),
            (
                "rbac_access_denied_matched_policy",
                Some("ns[foo]-policy[deny]-rule[0]")
            )
        );
        assert_eq!(split_details("via_upstream"), ("via_upstream", None));
        assert_eq!(
            split_details("upstream_reset_before_response_started{remote_"),
            ("upstream_reset_before_response_started", Some("remote_"))
        );
    }
}
