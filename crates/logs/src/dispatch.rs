//! Route one record to the parser of its family.
//!
//! The first bytes decide which parsers are worth trying; each parser answers `None` when
//! the record is not its layout at all, so the next one is tried, and `Some(Err(reason))`
//! when it is its layout but broken, which is final.

use crate::{Parsed, access, app, envoy};
use meshdoctor_model::{Family, SkipReason};

/// Parse one record (header line plus continuation lines joined by `\n`, wrappers removed).
/// `forced` restricts parsing to one family (`--kind`).
///
/// # Errors
/// The reason the record could not be used.
pub fn parse_record<'a>(record: &'a str, forced: Option<Family>) -> Result<Parsed<'a>, SkipReason> {
    let allow = |family: Family| forced.is_none_or(|f| f == family);
    // One parser reads Envoy, pilot-agent and linkerd-proxy lines.
    let sidecar_ok =
        allow(Family::EnvoyDebug) || allow(Family::ProxyAgent) || allow(Family::LinkerdProxy);
    let result = route(record, &allow, sidecar_ok);
    // With `--kind`, a record of another family is not what the user asked for.
    match (forced, result) {
        (Some(kind), Ok(parsed)) if parsed.payload.family() != kind => {
            Err(SkipReason::UnknownFormat)
        }
        (_, result) => result,
    }
}

fn route<'a>(
    record: &'a str,
    allow: &dyn Fn(Family) -> bool,
    sidecar_ok: bool,
) -> Result<Parsed<'a>, SkipReason> {
    let b = record.as_bytes();
    let first = b.first().copied().unwrap_or(b' ');

    // Splunk's list view pasted as text (`{ [-]` then `key: value` lines) is not JSON.
    if (record.starts_with("{ [-]") || record.starts_with("{ [+]")) && allow(Family::AppLog) {
        return app::parse_text(record).unwrap_or(Err(SkipReason::UnknownFormat));
    }
    if first == b'{' {
        if sidecar_ok && let Some(r) = envoy::parse_json(record) {
            return r;
        }
        if allow(Family::EnvoyAccess)
            && let Some(r) = access::parse_json(record)
        {
            return r;
        }
        if allow(Family::AppLog)
            && let Some(r) = app::parse_json(record)
        {
            return r;
        }
        return Err(
            if serde_json::from_str::<serde::de::IgnoredAny>(first_line(record)).is_ok() {
                SkipReason::UnusableJson
            } else {
                SkipReason::InvalidJson
            },
        );
    }
    if first == b'['
        && allow(Family::EnvoyAccess)
        && let Some(r) = access::parse_text(record)
    {
        return r;
    }
    // Old pilot-agents print `FLAG: --name="value"` lines without a timestamp.
    if (first == b'[' || first.is_ascii_digit() || record.starts_with("FLAG: "))
        && sidecar_ok
        && let Some(r) = envoy::parse_text(record)
    {
        return r;
    }
    if first.is_ascii_digit() && allow(Family::EnvoyAccess) {
        // Custom access formats sometimes drop the brackets around START_TIME.
        if let Some(r) = access::parse_text(record) {
            return r;
        }
    }
    if allow(Family::AppLog)
        && let Some(r) = app::parse_text(record)
    {
        return r;
    }
    Err(SkipReason::UnknownFormat)
}

fn first_line(record: &str) -> &str {
    memchr::memchr(b'\n', record.as_bytes()).map_or(record, |nl| &record[..nl])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVOY: &str = "2020-10-23T00:26:14.869808Z\tdebug\tenvoy connection\t[external/envoy/source/common/network/connection_impl.cc:200] [C3656911] closing socket: 0";
    const AGENT: &str = "2024-05-01T10:00:01.000000Z\tinfo\tEnvoy proxy is ready";
    const LINKERD: &str = "[    12.300000s]  WARN ThreadId(02) inbound:server{port=8080}: linkerd_app_core::serve: Connection closed error=TLS detection timeout";

    #[test]
    fn forced_kind_keeps_only_that_family() {
        assert_eq!(
            parse_record(ENVOY, None).unwrap().payload.family(),
            Family::EnvoyDebug
        );
        assert!(parse_record(ENVOY, Some(Family::EnvoyDebug)).is_ok());
        assert!(parse_record(ENVOY, Some(Family::ProxyAgent)).is_err());
        assert_eq!(
            parse_record(AGENT, Some(Family::ProxyAgent))
                .unwrap()
                .payload
                .family(),
            Family::ProxyAgent
        );
        assert!(parse_record(AGENT, Some(Family::EnvoyDebug)).is_err());
        assert_eq!(
            parse_record(LINKERD, Some(Family::LinkerdProxy))
                .unwrap()
                .payload
                .family(),
            Family::LinkerdProxy
        );
    }
}
