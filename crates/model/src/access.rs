//! Envoy access log rows and response flags.

use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// Which access log layout a row was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessFormat {
    /// Istio default text, 1.3–1.7 (mixer status field after the flags).
    TextIstio13,
    /// Istio default text, 1.8 (no mixer field, no details).
    TextIstio18,
    /// Istio default text, 1.9 and newer (response code details and termination details).
    TextIstio19,
    /// Istio/Envoy JSON encoding.
    Json,
}

/// One access log row. Missing values (`-`, `null`) are `None`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AccessEntry<'a> {
    /// Layout of the row.
    pub format: Option<AccessFormat>,
    /// `%REQ(:METHOD)%`; `None` for TCP rows.
    pub method: Option<Cow<'a, str>>,
    /// Request path.
    pub path: Option<Cow<'a, str>>,
    /// `%PROTOCOL%` (`HTTP/1.1`, `HTTP/2`); `None` for TCP.
    pub protocol: Option<Cow<'a, str>>,
    /// `%RESPONSE_CODE%`; 0 for TCP or when nothing was sent downstream.
    pub response_code: u16,
    /// `%RESPONSE_FLAGS%` as a set.
    pub response_flags: ResponseFlags,
    /// `%RESPONSE_CODE_DETAILS%`.
    pub response_code_details: Option<Cow<'a, str>>,
    /// `%CONNECTION_TERMINATION_DETAILS%`.
    pub connection_termination_details: Option<Cow<'a, str>>,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
    pub upstream_transport_failure_reason: Option<Cow<'a, str>>,
    /// `%BYTES_RECEIVED%`.
    pub bytes_received: Option<u64>,
    /// `%BYTES_SENT%`.
    pub bytes_sent: Option<u64>,
    /// `%DURATION%` in milliseconds.
    pub duration_ms: Option<u64>,
    /// `x-envoy-upstream-service-time` in milliseconds.
    pub upstream_service_time_ms: Option<u64>,
    /// `x-forwarded-for`.
    pub x_forwarded_for: Option<Cow<'a, str>>,
    /// `user-agent`.
    pub user_agent: Option<Cow<'a, str>>,
    /// `x-request-id`.
    pub request_id: Option<Cow<'a, str>>,
    /// `:authority`.
    pub authority: Option<Cow<'a, str>>,
    /// `%UPSTREAM_HOST%`.
    pub upstream_host: Option<Cow<'a, str>>,
    /// `%UPSTREAM_CLUSTER%`, with one trailing `;` (Istio 1.23 alt stat name) removed.
    pub upstream_cluster: Option<Cow<'a, str>>,
    /// `%UPSTREAM_LOCAL_ADDRESS%`.
    pub upstream_local_address: Option<Cow<'a, str>>,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    pub downstream_local_address: Option<Cow<'a, str>>,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    pub downstream_remote_address: Option<Cow<'a, str>>,
    /// `%REQUESTED_SERVER_NAME%` (SNI).
    pub requested_server_name: Option<Cow<'a, str>>,
    /// `%ROUTE_NAME%`.
    pub route_name: Option<Cow<'a, str>>,
}

impl AccessEntry<'_> {
    /// True for TCP-proxy rows (request line `"- - -"`).
    #[must_use]
    pub fn is_tcp(&self) -> bool {
        self.method.is_none() && self.protocol.is_none()
    }
}

/// Envoy's short response flag names, in bit order. Unknown flags set [`ResponseFlags::OTHER`].
pub const RESPONSE_FLAG_NAMES: [&str; 28] = [
    "UH", "UF", "UO", "NR", "URX", "NC", "DT", "DC", "LH", "UT", "LR", "UR", "UC", "DI", "FI",
    "RL", "UAEX", "RLSE", "SI", "IH", "DPE", "UPE", "UMSDR", "RFCF", "NFCF", "OM", "DF", "DO",
];

/// A set of response flags. Order in the log is not stable, so it is kept as a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseFlags(pub u32);

impl ResponseFlags {
    /// Set when the row held a flag name this version does not know.
    pub const OTHER: u32 = 1 << 31;

    /// Parse a `%RESPONSE_FLAGS%` value such as `UF,URX` or `-`.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut bits = 0;
        if text == "-" || text.is_empty() {
            return ResponseFlags(0);
        }
        for name in text.split(',') {
            let name = name.trim();
            match RESPONSE_FLAG_NAMES.iter().position(|known| *known == name) {
                Some(idx) => bits |= 1 << idx,
                None => bits |= Self::OTHER,
            }
        }
        ResponseFlags(bits)
    }

    /// The bit for one named flag, if it is a known name.
    #[must_use]
    pub fn flag(name: &str) -> Option<Self> {
        RESPONSE_FLAG_NAMES
            .iter()
            .position(|known| *known == name)
            .map(|idx| ResponseFlags(1 << idx))
    }

    /// True when every flag of `other` is set here.
    #[must_use]
    pub fn contains(self, other: ResponseFlags) -> bool {
        other.0 != 0 && self.0 & other.0 == other.0
    }

    /// True when the named flag is set.
    #[must_use]
    pub fn has(self, name: &str) -> bool {
        Self::flag(name).is_some_and(|f| self.contains(f))
    }

    /// True for `-`.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the set flags, in Envoy's canonical order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        RESPONSE_FLAG_NAMES
            .iter()
            .enumerate()
            .filter(move |(idx, _)| self.0 & (1 << idx) != 0)
            .map(|(_, name)| *name)
            .chain((self.0 & Self::OTHER != 0).then_some("OTHER"))
    }
}

impl fmt::Display for ResponseFlags {
    /// Canonical form: names in Envoy's order joined by `,`, or `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for name in self.names() {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

impl Serialize for ResponseFlags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_a_set() {
        assert_eq!(
            ResponseFlags::parse("URX,UF"),
            ResponseFlags::parse("UF,URX")
        );
        assert_eq!(ResponseFlags::parse("URX,UF").to_string(), "UF,URX");
        assert_eq!(ResponseFlags::parse("-").to_string(), "-");
        assert!(ResponseFlags::parse("UC").has("UC"));
        assert!(!ResponseFlags::parse("UC").has("UF"));
        assert_eq!(ResponseFlags::parse("ZZ").to_string(), "OTHER");
    }
}
