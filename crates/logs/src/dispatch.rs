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
        // Only without `--kind` (every family allowed) may the order of parsers change.
        if allow(Family::EnvoyAccess)
            && allow(Family::AppLog)
            && let Some(r) = application_json_first(record)
        {
            return r;
        }
        return json_in_order(record, allow, sidecar_ok);
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

/// A JSON record: the sidecar parser, then the access parser, then the application parser;
/// the first that claims it answers.
fn json_in_order<'a>(
    record: &'a str,
    allow: &dyn Fn(Family) -> bool,
    sidecar_ok: bool,
) -> Result<Parsed<'a>, SkipReason> {
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
    Err(
        if serde_json::from_str::<serde::de::IgnoredAny>(first_line(record)).is_ok() {
            SkipReason::UnusableJson
        } else {
            SkipReason::InvalidJson
        },
    )
}

/// [`json_in_order`] read as a shortcut for the common case, a one-line application JSON
/// object, with the same answer: such a line is neither an
/// access row (no `"response_code"`) nor a sidecar line (no `envoy ` scope, and no
/// top-level `msg`/`target`/`scope` key, which the application parse notes as it reads
/// the keys). Deciding that from the one parse saves the sidecar parser's four substring
/// searches over every application line. `None` means "take the long way". The price is
/// paid by the rarer lines: a line the application parser rejects is parsed by it again on
/// the long way, and a pilot-agent or linkerd JSON line is read as application JSON before
/// the sidecar parser takes it.
fn application_json_first(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    if memchr::memchr(b'\n', record.as_bytes()).is_some()
        || envoy::names_envoy_scope(record)
        || access::may_be_json_row(record)
    {
        return None;
    }
    // A line the application parser rejects may still be a sidecar's.
    let (parsed, sidecar_keys) = app::parse_json_line_noting_sidecar_keys(record)?.ok()?;
    if sidecar_keys && let Some(r) = envoy::parse_json(record) {
        return Some(r);
    }
    Some(Ok(parsed))
}

fn first_line(record: &str) -> &str {
    memchr::memchr(b'\n', record.as_bytes()).map_or(record, |nl| &record[..nl])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    /// Keys every family writes, so generated objects hit each parser's claim rules.
    const KEYS: &[&str] = &[
        "msg",
        "message",
        "level",
        "time",
        "@timestamp",
        "ts",
        "scope",
        "target",
        "fields",
        "timestamp",
        "caller",
        "response_code",
        "response_flags",
        "duration",
        "upstream_cluster",
        "start_time",
        "kubernetes",
        "error",
        "stack_trace",
        "logger_name",
    ];

    /// Values of every JSON type, including ones that break a parser's expectations.
    const VALUES: &[&str] = &[
        r#""envoy connection""#,
        r#""envoy ""#,
        r#""linkerd_app_core::serve""#,
        r#""info""#,
        r#""WARN""#,
        r#""2024-05-01T10:00:01.000000Z""#,
        r#""2024-05-01T10:00:01.123+02:00""#,
        r#""[    12.3s]""#,
        r#""Connection reset""#,
        r#""msg""#,
        "503",
        "null",
        "true",
        "1.5",
        r#"{"message":"m","error":"e"}"#,
        r#"{"namespace_name":"n","pod_name":"p"}"#,
        "[1,2]",
        r#""UF,URX""#,
        r#""outbound|8080||a.b.svc.cluster.local""#,
        r#""\"quoted\" \n""#,
    ];

    /// Starting objects, one per kind of JSON line the dispatcher tells apart.
    const BASES: &[&str] = &[
        r#""level":"info","time":"2024-05-01T10:00:01.000000Z","msg":"Envoy proxy is ready""#,
        r#""level":"warn","time":"2024-05-01T10:00:01.123Z","scope":"ads","msg":"push""#,
        r#""timestamp":"[    12.3s]","level":"INFO","target":"linkerd_app_core::serve","fields":{"message":"Connection closed","error":"TLS detection timeout"}"#,
        r#""level":"debug","time":"2024-05-01T10:00:01.000000Z","scope": "envoy connection","msg":"[C1] closing socket: 0""#,
        r#""response_code":503,"response_flags":"UF","duration":3"#,
        r#""@timestamp":"2024-05-01T10:00:01.123+02:00","level":"INFO","message":"Order 1 accepted","logger_name":"x""#,
        "",
    ];

    /// The shortcut takes application lines and hands sidecar lines to the sidecar parser;
    /// the property below compares answers only where it answers at all.
    #[test]
    fn application_first_answers_application_and_sidecar_lines() {
        let family = |record: &str| {
            application_json_first(record)
                .and_then(Result::ok)
                .map(|p| p.payload.family())
        };
        assert_eq!(family(&format!("{{{}}}", BASES[5])), Some(Family::AppLog));
        assert_eq!(
            family(&format!("{{{}}}", BASES[0])),
            Some(Family::ProxyAgent)
        );
        // A repeated sidecar key does not turn an application line away.
        let repeated =
            r#"{"@timestamp":"2024-05-01T10:00:01Z","message":"m","scope":"a","scope":"b"}"#;
        assert_eq!(family(repeated), Some(Family::AppLog));
        assert_eq!(
            parse_record(repeated, None).map(|p| p.payload.family()),
            Ok(Family::AppLog)
        );
    }

    proptest! {
        /// The application-first shortcut answers exactly what the parsers in order answer.
        #[test]
        fn application_first_agrees_with_the_parsers_in_order(
            base in 0..BASES.len(),
            pairs in proptest::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..4),
            spaced in any::<bool>(),
            tail in prop_oneof![Just(""), Just(" "), Just("x"), Just("}")],
        ) {
            let sep = if spaced { ": " } else { ":" };
            let extra = pairs
                .iter()
                .map(|&(k, v)| format!("\"{}\"{sep}{}", KEYS[k], VALUES[v]));
            let body = std::iter::once(BASES[base].to_string())
                .filter(|b| !b.is_empty())
                .chain(extra)
                .collect::<Vec<_>>()
                .join(",");
            let record = format!("{{{body}}}{tail}");
            if let Some(fast) = application_json_first(&record) {
                let in_order = json_in_order(&record, &|_| true, true);
                prop_assert_eq!(fast, in_order, "{}", record);
            }
        }
    }
}
