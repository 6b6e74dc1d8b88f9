//! Named failure signatures: what counts as "a connection reset" or "a 503 reset before
//! headers", whatever language, client library or proxy wrote the record.
//!
//! A [`Signature`] is two things that must agree:
//! * a predicate over a parsed [`Event`] ([`Signature::matches`]), and
//! * a [`Prefilter`]: literals of which every matching record contains at least one in its
//!   raw text. A reader may skip records without any of them *before parsing* (issue 7:
//!   counting gigabytes at close to `rg -c` speed). The predicates below re-check the same
//!   literals on the parsed fields, so a prefiltered count equals a full count by
//!   construction rather than by luck.
//!
//! This module must not count, bucket or print; it only decides whether one event matches.

use aho_corasick::AhoCorasick;
use meshdoctor_model::{
    AccessEntry, AppRecord, ErrorClass, Event, Payload, ResponseFlags, Severity,
};
use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

/// Phrases that report a reset by the peer, in every language we know: the spellings the
/// app classifier (`meshdoctor_logs::app`) maps to [`ErrorClass::ConnectionReset`], in the
/// case variants logs use. They double as the prefilter of `connection-reset`, and the
/// predicate requires one of them, so prefiltered and full counts agree by construction.
pub const RESET_PHRASES: &[&str] = &[
    // Java `SocketException: Connection reset`, Python `[Errno 104] Connection reset by
    // peer`, curl `Recv failure: Connection reset by peer`, Go `read: connection reset by
    // peer`, Rust `Connection reset by peer (os error 104)`.
    "Connection reset",
    "connection reset",
    "Connection Reset",
    "CONNECTION RESET",
    // .NET / WinHTTP `The underlying connection was closed: The connection was reset`.
    "connection was reset",
    "Connection was reset",
    // Node.js `read ECONNRESET`, Windows `WSAECONNRESET`, and Node's `socket hang up`
    // (reported by Node itself with `code: 'ECONNRESET'`).
    "ECONNRESET",
    "socket hang up",
    // Python exception type and errno.
    "ConnectionResetError",
    "[Errno 104]",
    // Chromium/.NET enum spelling.
    "CONNECTION_RESET",
    // .NET `An existing connection was forcibly closed by the remote host`.
    "forcibly closed",
];

/// Envoy's local reply body for resets before response headers, and the access-log detail.
const RESET_BEFORE_HEADERS_PHRASES: &[&str] = &[
    "reset before headers",
    "upstream_reset_before_response_started",
];

/// Envoy's local reply body alone.
const RESET_BEFORE_HEADERS_BODY: &[&str] = &["reset before headers"];

/// Flags that mean "the upstream connection failed or was reset before a response".
const RESET_BEFORE_HEADERS_FLAGS: &[&str] = &["UC", "UF", "URX", "UR", "LR", "UO"];

/// Phrases of TLS handshake failures: Envoy (`TLS error:`, old `handshake error`), Java
/// (`SSLHandshakeException`), Go (`tls: handshake failure`, `x509: certificate ...`),
/// Python (`[SSL: CERTIFICATE_VERIFY_FAILED]`), OpenSSL/curl (`SSL routines`).
const TLS_PHRASES: &[&str] = &[
    "TLS error",
    "handshake",
    "Handshake",
    "SSL",
    "ssl",
    "TLS",
    "tls:",
    "x509",
    "certificate",
    "CERTIFICATE",
    "HANDSHAKE",
    // Java `PKIX path building failed`, OpenSSL `wrong version number` (plaintext to TLS).
    "PKIX",
    "wrong version number",
    "WRONG_VERSION_NUMBER",
];

const PASSTHROUGH: &str = "PassthroughCluster";

/// A named failure signature.
#[derive(Clone, Debug)]
pub enum Signature {
    /// Application records reporting a connection reset by the peer (see
    /// [`Signature::describe`]).
    ConnectionReset,
    /// Envoy "reset before headers" 503s: bodies quoted in app logs and access rows.
    ResetBeforeHeaders,
    /// TLS handshake failures on the proxy or in the application.
    TlsHandshakeError,
    /// Traffic through `PassthroughCluster` (no ServiceEntry / unknown port).
    Passthrough,
    /// Access rows with this `%RESPONSE_CODE%`.
    Status(u16),
    /// Access rows carrying this response flag.
    Flag(&'static str),
    /// Records whose text matches a user regex.
    Regex(Regex),
}

/// Why a signature string could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureError(pub String);

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SignatureError {}

/// Literals of which every matching record contains at least one, byte for byte, in its
/// raw text. `None` from [`Signature::prefilter`] means "cannot tell; parse everything".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefilter {
    /// Alternatives (any one suffices). Case-sensitive.
    pub literals: Vec<String>,
}

impl Prefilter {
    /// True when `text` contains one of the literals.
    #[must_use]
    pub fn admits(&self, text: &str) -> bool {
        self.literals.iter().any(|l| text.contains(l.as_str()))
    }
}

/// One entry of the catalog shown by `meshdoctor signatures`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CatalogEntry {
    /// The name as typed on the command line (`status:NNN` for the parameterised ones).
    pub name: &'static str,
    /// What it matches, in one or two sentences.
    pub matches: &'static str,
    /// Which record kinds it looks at.
    pub kinds: &'static str,
    /// Whether it works in this build.
    pub available: bool,
}

/// Every signature, for `meshdoctor signatures`.
#[must_use]
pub fn catalog() -> Vec<CatalogEntry> {
    vec![
        CatalogEntry {
            name: "connection-reset",
            matches: "An application error reporting a reset by the peer: Java `SocketException: \
                Connection reset` (any depth of `Caused by:`), Go `connection reset by peer`, \
                Python `ConnectionResetError` / `[Errno 104]`, Node `ECONNRESET` / `socket hang up`, \
                curl `Recv failure: Connection reset`, .NET `forcibly closed`. Only failures count: the record carries a stack \
                trace, or is logged at ERROR or above, or has no level; a WARN/INFO notice that \
                merely mentions a reset (\"Retrying after Connection reset\") does not.",
            kinds: "app-log",
            available: true,
        },
        CatalogEntry {
            name: "reset-before-headers",
            matches: "Envoy's 503 `upstream connect error or disconnect/reset before headers` \
                quoted in application logs, and access rows with code 503 and a flag among \
                UC, UF, URX, UR, LR, UO, or with details `upstream_reset_before_response_started`.",
            kinds: "app-log, envoy-access",
            available: true,
        },
        CatalogEntry {
            name: "tls-handshake-error",
            matches: "Envoy `TLS error:` and `handshake error` lines, access rows whose upstream \
                transport failure reason is a TLS error, and application errors classified as \
                TLS handshake failures (SSLHandshakeException, `tls: handshake failure`, x509).",
            kinds: "envoy-debug, envoy-access, app-log",
            available: true,
        },
        CatalogEntry {
            name: "passthrough",
            matches: "Access rows whose upstream cluster is PassthroughCluster (or \
                InboundPassthroughCluster*), and sidecar debug lines naming it: traffic the mesh \
                did not recognise (no ServiceEntry, undeclared port).",
            kinds: "envoy-access, envoy-debug",
            available: true,
        },
        CatalogEntry {
            name: "status:NNN",
            matches: "Access rows whose %RESPONSE_CODE% is NNN (e.g. status:503; 0 for TCP rows \
                and requests that got no response).",
            kinds: "envoy-access",
            available: true,
        },
        CatalogEntry {
            name: "flag:XX",
            matches: "Access rows whose %RESPONSE_FLAGS% include XX (e.g. flag:UC, flag:URX).",
            kinds: "envoy-access",
            available: true,
        },
        CatalogEntry {
            name: "cause:<id>",
            matches: "Events used as evidence by a diagnose rule. Not available in this build: \
                the diagnose rules have not landed yet.",
            kinds: "any",
            available: false,
        },
        CatalogEntry {
            name: "regex:<pattern>",
            matches: "Records whose text matches the regex (Rust syntax): the message and stack \
                trace of app and proxy lines; for access rows the code, flags, details, \
                cluster, authority, path and transport failure reason, space-separated.",
            kinds: "any",
            available: true,
        },
    ]
}

impl Signature {
    /// Parse a name as typed on the command line.
    ///
    /// # Errors
    /// Unknown names, malformed parameters, and `cause:` (not available yet).
    pub fn parse(text: &str) -> Result<Signature, SignatureError> {
        let t = text.trim();
        match t {
            "connection-reset" => return Ok(Signature::ConnectionReset),
            "reset-before-headers" => return Ok(Signature::ResetBeforeHeaders),
            "tls-handshake-error" => return Ok(Signature::TlsHandshakeError),
            "passthrough" => return Ok(Signature::Passthrough),
            _ => {}
        }
        if let Some(code) = t.strip_prefix("status:") {
            return code
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|c| *c < 1000)
                .map(Signature::Status)
                .ok_or_else(|| {
                    SignatureError(format!(
                        "`{t}`: the status must be an HTTP code such as status:503"
                    ))
                });
        }
        if let Some(flag) = t.strip_prefix("flag:") {
            let flag = flag.trim();
            return meshdoctor_model::access::RESPONSE_FLAG_NAMES
                .iter()
                .find(|known| **known == flag)
                .map(|known| Signature::Flag(known))
                .ok_or_else(|| {
                    SignatureError(format!(
                        "`{t}`: unknown response flag; known flags: {}",
                        meshdoctor_model::access::RESPONSE_FLAG_NAMES.join(", ")
                    ))
                });
        }
        if let Some(id) = t.strip_prefix("cause:") {
            return Err(SignatureError(format!(
                "`cause:{id}`: cause signatures need the diagnose rules, which are not in this \
                 build yet; use a named signature or regex:<pattern>"
            )));
        }
        if let Some(pattern) = t.strip_prefix("regex:") {
            return Regex::new(pattern)
                .map(Signature::Regex)
                .map_err(|e| SignatureError(format!("`{t}`: invalid regex: {e}")));
        }
        Err(SignatureError(format!(
            "unknown signature `{t}`; run `meshdoctor signatures` for the list"
        )))
    }

    /// The canonical name (round-trips through [`Signature::parse`]).
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Signature::ConnectionReset => "connection-reset".into(),
            Signature::ResetBeforeHeaders => "reset-before-headers".into(),
            Signature::TlsHandshakeError => "tls-handshake-error".into(),
            Signature::Passthrough => "passthrough".into(),
            Signature::Status(c) => format!("status:{c}"),
            Signature::Flag(f) => format!("flag:{f}"),
            Signature::Regex(r) => format!("regex:{}", r.as_str()),
        }
    }

    /// True when failures of this signature are seen by the caller's application, so the
    /// traffic it should be compared with is the caller's outbound requests.
    #[must_use]
    pub fn is_caller_side(&self) -> bool {
        matches!(self, Signature::ConnectionReset)
    }

    /// The literals every matching record contains; `None` when no such set is known
    /// (user regex).
    #[must_use]
    pub fn prefilter(&self) -> Option<Prefilter> {
        let lits: Vec<String> = match self {
            Signature::ConnectionReset => RESET_PHRASES.iter().map(|s| (*s).into()).collect(),
            Signature::ResetBeforeHeaders => RESET_BEFORE_HEADERS_PHRASES
                .iter()
                .map(|s| (*s).to_string())
                .chain(std::iter::once("503".to_string()))
                .collect(),
            Signature::TlsHandshakeError => TLS_PHRASES.iter().map(|s| (*s).into()).collect(),
            Signature::Passthrough => vec![PASSTHROUGH.into()],
            Signature::Status(c) => vec![c.to_string()],
            Signature::Flag(f) => vec![(*f).to_string()],
            Signature::Regex(_) => return None,
        };
        Some(Prefilter { literals: lits })
    }

    /// Does this event match?
    #[must_use]
    pub fn matches(&self, event: &Event<'_>) -> bool {
        match self {
            Signature::ConnectionReset => match &event.payload {
                Payload::App(app) => is_failure_record(app) && app_mentions(app, &RESET_SET),
                _ => false,
            },
            Signature::ResetBeforeHeaders => match &event.payload {
                Payload::App(app) => {
                    (app.error.as_ref().map(|e| e.class)
                        == Some(ErrorClass::EnvoyResetBeforeHeaders)
                        || app_mentions(app, &RESET_BEFORE_HEADERS_BODY_SET))
                        && app_mentions(app, &RESET_BEFORE_HEADERS_SET)
                }
                Payload::Access(row) => access_reset_before_headers(row),
                _ => false,
            },
            Signature::TlsHandshakeError => match &event.payload {
                Payload::Envoy(line) => {
                    line.message.contains("TLS error") || line.message.contains("handshake error")
                }
                Payload::Access(row) => row
                    .upstream_transport_failure_reason
                    .as_deref()
                    .is_some_and(|r| r.contains("TLS error")),
                Payload::App(app) => {
                    app.error.as_ref().map(|e| e.class) == Some(ErrorClass::TlsHandshake)
                        && is_failure_record(app)
                        && app_mentions(app, &TLS_SET)
                }
                Payload::Agent(_) => false,
            },
            Signature::Passthrough => match &event.payload {
                Payload::Access(row) => row
                    .upstream_cluster
                    .as_deref()
                    .is_some_and(|c| c.contains(PASSTHROUGH)),
                Payload::Envoy(line) => line.message.contains(PASSTHROUGH),
                _ => false,
            },
            Signature::Status(code) => match &event.payload {
                Payload::Access(row) => row.response_code == *code,
                _ => false,
            },
            Signature::Flag(flag) => match &event.payload {
                Payload::Access(row) => row.response_flags.has(flag),
                _ => false,
            },
            Signature::Regex(re) => regex_matches(re, event),
        }
    }
}

/// A record that reports a failure rather than a notice about one: it carries a stack
/// trace, or is logged at ERROR or above, or has no level at all (plain Go/Python lines).
/// This is what keeps WARN retry notices ("Retrying after Connection reset") out while
/// keeping reset exceptions logged at WARN with their stack trace in.
fn is_failure_record(app: &AppRecord<'_>) -> bool {
    app.stack_trace.as_deref().is_some_and(|s| !s.is_empty())
        || app.severity.is_none_or(|s| s >= Severity::Error)
}

/// A phrase list and its automaton, built on first use: a stack trace is searched once,
/// not once per phrase.
struct PhraseSet {
    phrases: &'static [&'static str],
    automaton: LazyLock<Option<AhoCorasick>>,
}

static RESET_SET: PhraseSet = PhraseSet {
    phrases: RESET_PHRASES,
    automaton: LazyLock::new(|| AhoCorasick::new(RESET_PHRASES).ok()),
};
static TLS_SET: PhraseSet = PhraseSet {
    phrases: TLS_PHRASES,
    automaton: LazyLock::new(|| AhoCorasick::new(TLS_PHRASES).ok()),
};
static RESET_BEFORE_HEADERS_SET: PhraseSet = PhraseSet {
    phrases: RESET_BEFORE_HEADERS_PHRASES,
    automaton: LazyLock::new(|| AhoCorasick::new(RESET_BEFORE_HEADERS_PHRASES).ok()),
};
static RESET_BEFORE_HEADERS_BODY_SET: PhraseSet = PhraseSet {
    phrases: RESET_BEFORE_HEADERS_BODY,
    automaton: LazyLock::new(|| AhoCorasick::new(RESET_BEFORE_HEADERS_BODY).ok()),
};

impl PhraseSet {
    fn in_text(&self, text: &str) -> bool {
        match self.automaton.as_ref() {
            Some(ac) => ac.is_match(text),
            None => self.phrases.iter().any(|p| text.contains(p)),
        }
    }
}

/// True when the message, stack trace or classified root cause contains one of the phrases.
fn app_mentions(app: &AppRecord<'_>, set: &PhraseSet) -> bool {
    let has = |text: &str| set.in_text(text);
    has(&app.message)
        || app.stack_trace.as_deref().is_some_and(has)
        || app.error.as_ref().is_some_and(|e| has(&e.root_cause))
}

fn access_reset_before_headers(row: &AccessEntry<'_>) -> bool {
    let details_say = row
        .response_code_details
        .as_deref()
        .is_some_and(|d| d.starts_with("upstream_reset_before_response_started"));
    let flagged_503 = row.response_code == 503
        && RESET_BEFORE_HEADERS_FLAGS
            .iter()
            .filter_map(|f| ResponseFlags::flag(f))
            .any(|f| row.response_flags.contains(f));
    details_say || flagged_503
}

fn regex_matches(re: &Regex, event: &Event<'_>) -> bool {
    match &event.payload {
        Payload::App(app) => {
            re.is_match(&app.message) || app.stack_trace.as_deref().is_some_and(|s| re.is_match(s))
        }
        Payload::Envoy(line) => re.is_match(&line.message),
        Payload::Agent(line) => re.is_match(&line.message),
        Payload::Access(row) => {
            let text = format!(
                "{} {} {} {} {} {} {}",
                row.response_code,
                row.response_flags,
                row.response_code_details.as_deref().unwrap_or("-"),
                row.upstream_cluster.as_deref().unwrap_or("-"),
                row.authority.as_deref().unwrap_or("-"),
                row.path.as_deref().unwrap_or("-"),
                row.upstream_transport_failure_reason
                    .as_deref()
                    .unwrap_or("-"),
            );
            re.is_match(&text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshdoctor_model::{AppError, EnvoyLayout, EnvoyLine, Origin};
    use std::borrow::Cow;

    fn app(severity: Option<Severity>, message: &str, stack: Option<&str>) -> Event<'static> {
        Event {
            line: 1,
            line_count: 1,
            time: None,
            collector_time: None,
            origin: Origin::default(),
            payload: Payload::App(Box::new(AppRecord {
                severity,
                message: Cow::Owned(message.into()),
                stack_trace: stack.map(|s| Cow::Owned(s.into())),
                ..AppRecord::default()
            })),
        }
    }

    fn access(code: u16, flags: &str, details: &str) -> Event<'static> {
        Event {
            line: 1,
            line_count: 1,
            time: None,
            collector_time: None,
            origin: Origin::default(),
            payload: Payload::Access(Box::new(AccessEntry {
                response_code: code,
                response_flags: ResponseFlags::parse(flags),
                response_code_details: Some(Cow::Owned(details.into())),
                upstream_cluster: Some(Cow::Borrowed("outbound|8080||payments.svc")),
                ..AccessEntry::default()
            })),
        }
    }

    #[test]
    fn reset_counts_failures_not_notices() {
        let sig = Signature::ConnectionReset;
        let java = "java.net.SocketException: Connection reset\n\tat x.y(Z.java:1)";
        assert!(sig.matches(&app(Some(Severity::Error), "Call failed", Some(java))));
        // Logged at WARN but with the exception: counts.
        assert!(sig.matches(&app(Some(Severity::Warn), "I/O error", Some(java))));
        // WARN retry notice without a stack trace: does not.
        assert!(!sig.matches(&app(
            Some(Severity::Warn),
            "Retrying POST after I/O error: Connection reset (attempt 1/3)",
            None
        )));
        // Other languages, at ERROR without a stack trace.
        for msg in [
            "read tcp 10.0.0.1:5555->10.0.0.2:8080: read: connection reset by peer",
            "ConnectionResetError: [Errno 104] Connection reset by peer",
            "Error: read ECONNRESET",
            "curl: (56) Recv failure: Connection reset by peer",
            "An existing connection was forcibly closed by the remote host",
        ] {
            assert!(sig.matches(&app(Some(Severity::Error), msg, None)), "{msg}");
            assert!(sig.prefilter().is_some_and(|p| p.admits(msg)), "{msg}");
        }
        // No level at all: a plain log.Printf line.
        assert!(sig.matches(&app(None, "dial: connection reset by peer", None)));
        assert!(!sig.matches(&app(Some(Severity::Error), "Connection refused", None)));
        assert!(!sig.matches(&access(0, "UC", "-")));
    }

    #[test]
    fn reset_class_without_phrase_is_not_counted() {
        // The prefilter contract: a match must contain a literal. A classifier verdict on
        // text without any reset phrase cannot be seen by a prefiltered reader, so the
        // predicate refuses it too.
        let mut e = app(Some(Severity::Error), "peer went away", None);
        if let Payload::App(a) = &mut e.payload {
            a.error = Some(AppError {
                class: ErrorClass::ConnectionReset,
                root_cause: Cow::Borrowed("peer went away"),
                chain: vec![],
                peer: None,
            });
        }
        assert!(!Signature::ConnectionReset.matches(&e));
    }

    #[test]
    fn reset_before_headers_rows() {
        let sig = Signature::ResetBeforeHeaders;
        assert!(sig.matches(&access(
            503,
            "UC",
            "upstream_reset_before_response_started{connection_termination}"
        )));
        assert!(sig.matches(&access(503, "UF,URX", "via_upstream")));
        assert!(!sig.matches(&access(503, "-", "via_upstream")));
        assert!(!sig.matches(&access(503, "UH", "no_healthy_upstream")));
        assert!(!sig.matches(&access(200, "UC", "upstream_reset_after_response_started")));
        assert!(sig.matches(&app(
            Some(Severity::Error),
            "503 Service Unavailable: [upstream connect error or disconnect/reset before headers. reset reason: connection termination]",
            None
        )));
    }

    #[test]
    fn status_and_flag() {
        assert!(Signature::parse("status:503").is_ok_and(|s| s.matches(&access(503, "-", "x"))));
        assert!(Signature::parse("flag:URX").is_ok_and(|s| s.matches(&access(503, "UF,URX", "x"))));
        assert!(Signature::parse("flag:ZZ").is_err());
        assert!(Signature::parse("status:abc").is_err());
        let cause = Signature::parse("cause:idle-timeout");
        assert!(cause.is_err_and(|e| e.0.contains("diagnose")));
        assert!(Signature::parse("nonsense").is_err());
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "connection-reset",
            "reset-before-headers",
            "tls-handshake-error",
            "passthrough",
            "status:503",
            "flag:UC",
            "regex:reset.*peer",
        ] {
            let sig = Signature::parse(name).map(|s| s.name());
            assert_eq!(sig.as_deref(), Ok(name));
        }
    }

    #[test]
    fn tls_envoy_lines_and_regex() {
        let e = Event {
            line: 1,
            line_count: 1,
            time: None,
            collector_time: None,
            origin: Origin::default(),
            payload: Payload::Envoy(Box::new(EnvoyLine {
                layout: EnvoyLayout::IstioTab,
                level: Severity::Debug,
                logger: Cow::Borrowed("connection"),
                source_location: None,
                thread: None,
                connection_id: Some(1),
                stream_id: None,
                message: Cow::Borrowed(
                    "TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
                ),
            })),
        };
        assert!(Signature::TlsHandshakeError.matches(&e));
        assert!(
            Signature::parse("regex:HTTP_REQ")
                .is_ok_and(|s| s.matches(&e) && s.prefilter().is_none())
        );
        assert!(!Signature::Passthrough.matches(&e));
    }
}
