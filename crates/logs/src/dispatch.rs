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
    let b = record.as_bytes();
    let first = b.first().copied().unwrap_or(b' ');
    let allow = |family: Family| forced.is_none_or(|f| f == family);
    let agent_ok = allow(Family::ProxyAgent);

    // Splunk's list view pasted as text (`{ [-]` then `key: value` lines) is not JSON.
    if (record.starts_with("{ [-]") || record.starts_with("{ [+]")) && allow(Family::AppLog) {
        return app::parse_text(record).unwrap_or(Err(SkipReason::UnknownFormat));
    }
    if first == b'{' {
        if (allow(Family::EnvoyDebug) || agent_ok)
            && let Some(r) = envoy::parse_json(record)
        {
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
    if (first == b'[' || first.is_ascii_digit())
        && (allow(Family::EnvoyDebug) || agent_ok)
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
    record.split('\n').next().unwrap_or(record)
}
