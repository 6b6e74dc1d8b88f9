//! One parsed log record and where it came from.

use crate::{AccessEntry, AgentKind, AgentLine, AppRecord, EnvoyLine, Timestamp};
use serde::Serialize;
use std::borrow::Cow;

/// Index of an input file in the list the pipeline was given.
pub type FileId = u32;

/// A place in the input: file (by id) and 1-based physical line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// Which input file.
    pub file: FileId,
    /// 1-based line number of the first physical line of the record.
    pub line: u64,
}

/// The family of log a record belongs to. Files are classified by their dominant family,
/// but every record is classified on its own: a `kubectl logs --all-containers` dump mixes
/// application and sidecar lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Application log (JSON or text, with stack traces).
    AppLog,
    /// Envoy's own log lines (debug/trace/info/warning/...), any Istio layout.
    EnvoyDebug,
    /// Envoy access log rows (text or JSON).
    EnvoyAccess,
    /// pilot-agent / istio-agent lines in the istio-proxy container.
    ProxyAgent,
    /// linkerd-proxy lines.
    LinkerdProxy,
}

impl Family {
    /// The stable kebab-case name used in JSON output and `--kind`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Family::AppLog => "app-log",
            Family::EnvoyDebug => "envoy-debug",
            Family::EnvoyAccess => "envoy-access",
            Family::ProxyAgent => "proxy-agent",
            Family::LinkerdProxy => "linkerd-proxy",
        }
    }

    /// Every family, in a fixed order.
    pub const ALL: [Family; 5] = [
        Family::AppLog,
        Family::EnvoyDebug,
        Family::EnvoyAccess,
        Family::ProxyAgent,
        Family::LinkerdProxy,
    ];
}

/// One log record: a header line plus its continuation lines (stack frames, header dumps).
#[derive(Clone, Debug, PartialEq)]
pub struct Event<'a> {
    /// 1-based line number of the record's first line in its file.
    pub line: u64,
    /// Number of physical lines in the record (1 for single-line records).
    pub line_count: u32,
    /// When it happened, in UTC. `None` when the record carries no usable time.
    pub time: Option<Timestamp>,
    /// A second clock: the collector's receive time (`kubectl logs --timestamps`), if present.
    pub collector_time: Option<Timestamp>,
    /// Workload/pod/container named inside the record (e.g. `kubectl --prefix`, Kubernetes
    /// metadata in JSON). The pipeline falls back to the name derived from the file path.
    pub origin: Origin<'a>,
    /// The typed content.
    pub payload: Payload<'a>,
}

/// Names a record gives for where it came from; all optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Kubernetes namespace.
    pub namespace: Option<Cow<'a, str>>,
    /// Pod name.
    pub pod: Option<Cow<'a, str>>,
    /// Container name (`istio-proxy`, the app container...).
    pub container: Option<Cow<'a, str>>,
    /// Service/workload name (app label, `service` field, container name of the app).
    pub workload: Option<Cow<'a, str>>,
}

impl Origin<'_> {
    /// True when no name is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.namespace.is_none()
            && self.pod.is_none()
            && self.container.is_none()
            && self.workload.is_none()
    }
}

/// The typed content of a record.
// Events live on the stack for one sink call; boxing the large variant would cost an
// allocation per line on the hottest path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Payload<'a> {
    /// Application log record. Boxed, like `Access`: an event is moved several times on its
    /// way from the parser to a sink, and the largest variant sets the size of every move
    /// (an unboxed access row made each event 624 bytes, a tenth of `scan` was memmove).
    App(Box<AppRecord<'a>>),
    /// Envoy log line (component logger, any level). Boxed too: an unboxed line made every
    /// event 264 bytes, copied on each hand-over.
    Envoy(Box<EnvoyLine<'a>>),
    /// Envoy access log row.
    Access(Box<AccessEntry<'a>>),
    /// pilot-agent line (boxed like the others).
    Agent(Box<AgentLine<'a>>),
}

impl Payload<'_> {
    /// The family this payload belongs to.
    #[must_use]
    pub fn family(&self) -> Family {
        match self {
            Payload::App(_) => Family::AppLog,
            Payload::Envoy(_) => Family::EnvoyDebug,
            Payload::Access(_) => Family::EnvoyAccess,
            Payload::Agent(a) if a.proxy == AgentKind::LinkerdProxy => Family::LinkerdProxy,
            Payload::Agent(_) => Family::ProxyAgent,
        }
    }
}

/// Why a line was not turned into an event. Every skipped line is counted with one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Not valid UTF-8 (binary junk or a broken encoding).
    InvalidUtf8,
    /// Control bytes such as NUL: looks binary.
    Binary,
    /// Starts like JSON but does not parse.
    InvalidJson,
    /// A JSON value that is not an object, or an object we cannot use.
    UnusableJson,
    /// Looked like a known layout but a required field was malformed.
    Malformed,
    /// A timestamp that could not be read.
    BadTimestamp,
    /// Longer than the line limit.
    TooLong,
    /// No known layout matched.
    UnknownFormat,
    /// A continuation line with no record to attach to.
    OrphanContinuation,
    /// A preview row of a Splunk export, or another duplicate by construction.
    Duplicate,
}

impl SkipReason {
    /// Human explanation used in reports.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::InvalidUtf8 => "not valid UTF-8",
            SkipReason::Binary => "binary data (control bytes)",
            SkipReason::InvalidJson => "starts like JSON but does not parse",
            SkipReason::UnusableJson => "JSON without usable log fields",
            SkipReason::Malformed => "known layout, malformed field",
            SkipReason::BadTimestamp => "timestamp could not be read",
            SkipReason::TooLong => "line longer than the 1 MiB limit",
            SkipReason::UnknownFormat => "no known log layout matched",
            SkipReason::OrphanContinuation => "continuation line with no record before it",
            SkipReason::Duplicate => "preview/duplicate row of an export",
        }
    }
}
