//! Application log records and the classes of network error they report.

use serde::Serialize;
use std::borrow::Cow;

/// Normalised severity. Envoy's `warning` and zap's `warn` both become [`Severity::Warn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// trace / finest.
    Trace,
    /// debug / fine.
    Debug,
    /// info / notice.
    Info,
    /// warn / warning.
    Warn,
    /// error / severe.
    Error,
    /// critical / fatal / panic.
    Critical,
}

impl Severity {
    /// Parse a level name in any common spelling and case (`WARN`, `warning`, `E`, `40000`).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let eq = |s: &str| t.eq_ignore_ascii_case(s);
        Some(
            if eq("trace") || eq("finest") || eq("finer") || eq("t") || eq("10000") {
                Severity::Trace
            } else if eq("debug") || eq("fine") || eq("d") || eq("dbug") || eq("verbose") {
                Severity::Debug
            } else if eq("info")
                || eq("information")
                || eq("notice")
                || eq("i")
                || eq("20000")
                || eq("config")
            {
                Severity::Info
            } else if eq("warn") || eq("warning") || eq("w") || eq("30000") {
                Severity::Warn
            } else if eq("error")
                || eq("err")
                || eq("severe")
                || eq("e")
                || eq("40000")
                || eq("fail")
            {
                Severity::Error
            } else if eq("critical")
                || eq("crit")
                || eq("fatal")
                || eq("panic")
                || eq("dpanic")
                || eq("alert")
                || eq("emerg")
                || eq("50000")
            {
                Severity::Critical
            } else {
                return None;
            },
        )
    }
}

/// What kind of network failure an application reported, independent of language.
/// The names are a stable contract (used in JSON output and signatures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// The peer reset the connection (RST): Java `Connection reset`, Go `connection reset by
    /// peer`, Python `ConnectionResetError`, Node `ECONNRESET`, .NET `forcibly closed`.
    ConnectionReset,
    /// The peer closed without sending a response (EOF, `RemoteDisconnected`,
    /// `NoHttpResponseException`, `PrematureCloseException`, `response ended prematurely`).
    ClosedWithoutResponse,
    /// Write to a closed connection (`Broken pipe`, `EPIPE`).
    BrokenPipe,
    /// Nothing listening (`Connection refused`, `ECONNREFUSED`, errno 111).
    ConnectionRefused,
    /// The TLS handshake failed on the application side.
    TlsHandshake,
    /// An Envoy 503 body: `upstream connect error or disconnect/reset before headers`.
    EnvoyResetBeforeHeaders,
    /// Envoy body `no healthy upstream`.
    EnvoyNoHealthyUpstream,
    /// Envoy body `upstream request timeout`.
    EnvoyUpstreamTimeout,
    /// Envoy body `RBAC: access denied`.
    EnvoyRbacDenied,
    /// gRPC `UNAVAILABLE` without a more specific cause.
    GrpcUnavailable,
    /// The caller's own read/connect timeout (not a reset, but often confused with one).
    Timeout,
}

impl ErrorClass {
    /// Stable kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::ConnectionReset => "connection-reset",
            ErrorClass::ClosedWithoutResponse => "closed-without-response",
            ErrorClass::BrokenPipe => "broken-pipe",
            ErrorClass::ConnectionRefused => "connection-refused",
            ErrorClass::TlsHandshake => "tls-handshake",
            ErrorClass::EnvoyResetBeforeHeaders => "envoy-reset-before-headers",
            ErrorClass::EnvoyNoHealthyUpstream => "envoy-no-healthy-upstream",
            ErrorClass::EnvoyUpstreamTimeout => "envoy-upstream-timeout",
            ErrorClass::EnvoyRbacDenied => "envoy-rbac-denied",
            ErrorClass::GrpcUnavailable => "grpc-unavailable",
            ErrorClass::Timeout => "timeout",
        }
    }
}

/// The network error an application record reports, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct AppError<'a> {
    /// The class of failure.
    pub class: ErrorClass,
    /// The root cause as written: the innermost exception line (`java.net.SocketException:
    /// Connection reset`) or the matching error text.
    pub root_cause: Cow<'a, str>,
    /// Exception type names from outermost to innermost when a chain was found.
    pub chain: Vec<Cow<'a, str>>,
    /// The remote `host:port` or URL named by the error, when present.
    pub peer: Option<Cow<'a, str>>,
}

/// One application log record (a JSON line, or a text line plus its stack trace).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AppRecord<'a> {
    /// Normalised level, if the record has one.
    pub severity: Option<Severity>,
    /// Logger name (`logger_name`, `log.logger`, ...).
    pub logger: Option<Cow<'a, str>>,
    /// Thread name.
    pub thread: Option<Cow<'a, str>>,
    /// The message.
    pub message: Cow<'a, str>,
    /// Stack trace text (the `stack_trace` field, or the continuation lines of a text record).
    pub stack_trace: Option<Cow<'a, str>>,
    /// Request id (`requestId`, `x-request-id`, `request_id`).
    pub request_id: Option<Cow<'a, str>>,
    /// Correlation id (`x-correlation-id`, `correlationId`).
    pub correlation_id: Option<Cow<'a, str>>,
    /// Trace id (`traceId`, `trace.id`, `trace_id`).
    pub trace_id: Option<Cow<'a, str>>,
    /// The classified network error, when the record reports one.
    pub error: Option<AppError<'a>>,
    /// True when the timestamp had no zone and UTC was assumed.
    pub time_zone_assumed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_spellings() {
        assert_eq!(Severity::parse("WARN"), Some(Severity::Warn));
        assert_eq!(Severity::parse("warning"), Some(Severity::Warn));
        assert_eq!(Severity::parse("40000"), Some(Severity::Error));
        assert_eq!(Severity::parse("nonsense"), None);
    }
}
