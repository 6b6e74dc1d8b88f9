//! Envoy's own log lines and pilot-agent lines from the istio-proxy container.

use crate::app::Severity;
use serde::Serialize;
use std::borrow::Cow;

/// Which layout a sidecar line was written in. Kept so reports can name the Istio era and
/// rules can be version-aware (e.g. `handshake error` lines only exist in old Envoy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvoyLayout {
    /// `[%Y-%m-%d %T.%e][%t][%l][%n] %v` — plain Envoy and Istio 1.3 (optionally with
    /// the `[Envoy (Epoch N)] ` prefix of Istio 1.4/1.5).
    Bracketed,
    /// `%Y-%m-%dT%T.%fZ\t%l\tenvoy %n\t%v` — Istio 1.6 to 1.16.
    IstioTab,
    /// `%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t` — Istio 1.17 and newer.
    IstioTabWithCaller,
    /// Istio JSON (`--log_as_json`), any version.
    Json,
}

/// One Envoy log line (header plus continuation lines), with the id prefix split off.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvoyLine<'a> {
    /// The layout it was written in.
    pub layout: EnvoyLayout,
    /// Level as Envoy names it (`warning`, not `warn`).
    pub level: Severity,
    /// Logger/component name (`connection`, `conn_handler`, `filter`, `router`, ...).
    pub logger: Cow<'a, str>,
    /// Source location `file:line` if the layout carries one.
    pub source_location: Option<Cow<'a, str>>,
    /// Envoy thread id when present (`%t`, `thread=`).
    pub thread: Option<u32>,
    /// Connection id from `[C123]` or `"ConnectionId":"123"`.
    pub connection_id: Option<u64>,
    /// Stream id from `[S456]` or `"StreamId":"456"`.
    pub stream_id: Option<u64>,
    /// The message with the location and id prefixes removed. Multi-line messages keep
    /// their continuation lines, joined with `\n`.
    pub message: Cow<'a, str>,
}

/// Which proxy-side program wrote an [`AgentLine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Istio's pilot-agent / istio-agent (zap logger).
    IstioAgent,
    /// linkerd-proxy (Rust tracing output).
    LinkerdProxy,
}

/// One pilot-agent (istio-agent) or linkerd-proxy line: text or JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentLine<'a> {
    /// Who wrote it.
    pub proxy: AgentKind,
    /// Level as zap names it (`warn`, not `warning`).
    pub level: Severity,
    /// Scope (`xdsproxy`, `sds`, ...; for linkerd the tracing target such as
    /// `linkerd_app_core::serve`); `None` for the default scope.
    pub scope: Option<Cow<'a, str>>,
    /// The message.
    pub message: Cow<'a, str>,
}
