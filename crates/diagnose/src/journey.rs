//! Connection journeys: each Envoy debug line normalised to a step kind, and the steps of
//! one connection joined in order, so journeys from different Envoy versions compare.
//!
//! Matching is on logger + message text (formats.md §2), never on source file paths, which
//! moved between Envoy versions. Journeys are keyed by (file, proxy instance, restart epoch,
//! connection id); listener-filter lines carry no id and are attached to the next
//! `new connection` of the same proxy (and thread, when known) within a short window
//! (formats.md §2.6). This module must not score or print anything.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::VecDeque;

/// What one Envoy line says happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// `original_dst: New connection accepted`.
    OriginalDst,
    /// `tls inspector: new connection accepted`.
    TlsInspector,
    /// `tls:onServerName(), requestedServerName: X` (the client sent SNI).
    Sni,
    /// `tls:onALPN(), ALPN: X`.
    Alpn,
    /// `tls inspector: parseClientHello failed` (plaintext on a TLS-only port).
    ClientHelloFailed,
    /// `http inspector: new connection accepted`.
    HttpInspector,
    /// `http inspector: set application protocol to X`.
    DetectedProtocol,
    /// `listener filter times out after N ms`.
    ListenerFilterTimeout,
    /// `fallback to default listener filter`.
    ListenerFilterFallback,
    /// `new connection` / `new connection from X` (conn_handler): the connection exists.
    Accepted,
    /// `closing connection...: no matching filter chain found`.
    FilterChainNotFound,
    /// `handshake complete` (old Envoy).
    HandshakeComplete,
    /// `handshake error: N` (old Envoy).
    HandshakeError,
    /// `TLS error: ...:REASON` or `TLS_error:|...:REASON:TLS_error_end`.
    TlsError,
    /// tcp_proxy `Creating connection to cluster X`.
    TcpProxy,
    /// tcp_proxy `Cluster not found X`.
    ClusterNotFound,
    /// Upstream connection established (`connected`).
    Connected,
    /// `delayed connect error` / `raising immediate error`.
    ConnectFailed,
    /// HTTP codec error (`dispatch error`, `protocol error`, `HPE_...`).
    CodecError,
    /// router `upstream reset: reset reason: X`.
    UpstreamReset,
    /// http `stream reset` (downstream stream).
    StreamReset,
    /// `rst close from peer`.
    RstFromPeer,
    /// `remote close` / `remote early close` / `closing socket: 0`.
    RemoteClose,
    /// `closing socket: 1` / `closing data_to_write=...` (Envoy closed it).
    LocalClose,
    /// `adding to cleanup list`.
    Cleanup,
    /// A proxy (re)start line from pilot-agent: connection ids restart.
    ProxyRestart,
}

impl StepKind {
    /// Stable short name used in patterns and reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StepKind::OriginalDst => "original_dst",
            StepKind::TlsInspector => "tls_inspector",
            StepKind::Sni => "sni (tls:onServerName)",
            StepKind::Alpn => "alpn (tls:onALPN)",
            StepKind::ClientHelloFailed => "client_hello_failed",
            StepKind::HttpInspector => "http_inspector",
            StepKind::DetectedProtocol => "detected_protocol",
            StepKind::ListenerFilterTimeout => "listener_filter_timeout",
            StepKind::ListenerFilterFallback => "listener_filter_fallback",
            StepKind::Accepted => "accepted",
            StepKind::FilterChainNotFound => "no_filter_chain",
            StepKind::HandshakeComplete => "handshake_complete",
            StepKind::HandshakeError => "handshake_error",
            StepKind::TlsError => "tls_error",
            StepKind::TcpProxy => "tcp_proxy",
            StepKind::ClusterNotFound => "cluster_not_found",
            StepKind::Connected => "connected",
            StepKind::ConnectFailed => "connect_failed",
            StepKind::CodecError => "codec_error",
            StepKind::UpstreamReset => "upstream_reset",
            StepKind::StreamReset => "stream_reset",
            StepKind::RstFromPeer => "rst_from_peer",
            StepKind::RemoteClose => "remote_close",
            StepKind::LocalClose => "local_close",
            StepKind::Cleanup => "cleanup",
            StepKind::ProxyRestart => "proxy_restart",
        }
    }

    /// Lines that happen before the connection object exists and carry no id.
    #[must_use]
    pub fn is_listener_filter(self) -> bool {
        matches!(
            self,
            StepKind::OriginalDst
                | StepKind::TlsInspector
                | StepKind::Sni
                | StepKind::Alpn
                | StepKind::ClientHelloFailed
                | StepKind::HttpInspector
                | StepKind::DetectedProtocol
                | StepKind::ListenerFilterTimeout
                | StepKind::ListenerFilterFallback
        )
    }

    /// Every step kind.
    pub const ALL: [StepKind; 26] = [
        StepKind::OriginalDst,
        StepKind::TlsInspector,
        StepKind::Sni,
        StepKind::Alpn,
        StepKind::ClientHelloFailed,
        StepKind::HttpInspector,
        StepKind::DetectedProtocol,
        StepKind::ListenerFilterTimeout,
        StepKind::ListenerFilterFallback,
        StepKind::Accepted,
        StepKind::FilterChainNotFound,
        StepKind::HandshakeComplete,
        StepKind::HandshakeError,
        StepKind::TlsError,
        StepKind::TcpProxy,
        StepKind::ClusterNotFound,
        StepKind::Connected,
        StepKind::ConnectFailed,
        StepKind::CodecError,
        StepKind::UpstreamReset,
        StepKind::StreamReset,
        StepKind::RstFromPeer,
        StepKind::RemoteClose,
        StepKind::LocalClose,
        StepKind::Cleanup,
        StepKind::ProxyRestart,
    ];

    /// Steps that mean the connection failed.
    #[must_use]
    pub const fn is_failure(self) -> bool {
        matches!(
            self,
            StepKind::ClientHelloFailed
                | StepKind::FilterChainNotFound
                | StepKind::HandshakeError
                | StepKind::TlsError
                | StepKind::ClusterNotFound
                | StepKind::ConnectFailed
                | StepKind::CodecError
                | StepKind::UpstreamReset
                | StepKind::RstFromPeer
        )
    }

    /// How much a step tells about the path a connection took (used to rank the steps
    /// in which failing journeys differ): decisions (SNI, protocol, cluster) over
    /// bookkeeping (accepted, cleanup).
    #[must_use]
    pub fn salience(self) -> u8 {
        match self {
            StepKind::Sni | StepKind::ListenerFilterTimeout | StepKind::FilterChainNotFound => 9,
            StepKind::Alpn
            | StepKind::DetectedProtocol
            | StepKind::TcpProxy
            | StepKind::ListenerFilterFallback
            | StepKind::TlsError
            | StepKind::ClientHelloFailed => 8,
            StepKind::HandshakeComplete
            | StepKind::HandshakeError
            | StepKind::UpstreamReset
            | StepKind::CodecError
            | StepKind::ConnectFailed
            | StepKind::ClusterNotFound
            | StepKind::RstFromPeer => 7,
            StepKind::Connected | StepKind::StreamReset => 5,
            StepKind::TlsInspector | StepKind::HttpInspector | StepKind::OriginalDst => 4,
            StepKind::RemoteClose | StepKind::LocalClose => 3,
            StepKind::Accepted | StepKind::Cleanup | StepKind::ProxyRestart => 1,
        }
    }
}

/// Byte position of a literal in a text. `str::find` and `str::contains` with a text pattern
/// build a two-way searcher on every call, and [`classify`] runs on every Envoy line: this
/// builds one searcher per call site, once.
macro_rules! find_lit {
    ($hay:expr, $needle:literal) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        FINDER.find($hay.as_bytes())
    }};
}

/// The trimmed text after the first `marker` in `m`.
macro_rules! after_lit {
    ($m:expr, $marker:literal) => {{
        let m: &str = $m;
        find_lit!(m, $marker)
            .and_then(|i| m.get(i + $marker.len()..))
            .map(str::trim)
    }};
}

/// Strip what a parser may have left in front of the message: a `[file:line] ` location
/// (Istio 1.6 puts it inside the message) and `[C123]`/`[S456]`/`[Tags: ...]` prefixes.
fn strip_prefixes(mut m: &str) -> &str {
    loop {
        let t = m.trim_start();
        if let Some(rest) = t.strip_prefix('[')
            && let Some(end) = rest.find(']')
        {
            let inner = &rest[..end];
            // Connection ids first: they are the usual prefix and the cheapest test.
            let is_id = (inner.starts_with('C') || inner.starts_with('S'))
                && inner.len() > 1
                && inner[1..].bytes().all(|b| b.is_ascii_digit());
            if is_id
                || find_lit!(inner, ".cc:").is_some()
                || find_lit!(inner, ".h:").is_some()
                || inner.starts_with("Tags:")
            {
                m = &rest[end + 1..];
                continue;
            }
        }
        return t;
    }
}

/// Normalise one Envoy line to a step kind and a short detail (SNI, reason, cluster...).
/// `None` when the line is not part of a connection's life.
#[must_use]
pub fn classify(logger: &str, message: &str) -> Option<(StepKind, Option<String>)> {
    let m = strip_prefixes(message);
    let first = m.lines().next().unwrap_or(m);
    let m = first.trim_end();
    let detail = |s: &str| Some(truncate(s.trim(), 160));
    match logger {
        "conn_handler" => {
            if m.starts_with("new connection") {
                Some((
                    StepKind::Accepted,
                    after_lit!(m, "from").map(|s| truncate(s, 80)),
                ))
            } else if find_lit!(m, "no matching filter chain found").is_some() {
                // `closing connection from <ip:port>: no matching filter chain found`
                let peer = after_lit!(m, "from ")
                    .and_then(|s| s.split(": no matching").next())
                    .filter(|s| !s.is_empty() && !s.contains(' '))
                    .map(|s| truncate(s, 80));
                Some((StepKind::FilterChainNotFound, peer))
            } else if m.starts_with("listener filter times out") {
                Some((StepKind::ListenerFilterTimeout, detail(m)))
            } else if m.starts_with("fallback to default listener filter") {
                Some((StepKind::ListenerFilterFallback, None))
            } else if m.starts_with("adding to cleanup list") {
                Some((StepKind::Cleanup, None))
            } else {
                None
            }
        }
        "filter" => {
            // Compared in place: no lowercased copy per line.
            if m.as_bytes()
                .get(..24)
                .is_some_and(|b| b.eq_ignore_ascii_case(b"original_dst: new connec"))
            {
                Some((StepKind::OriginalDst, None))
            } else if m.starts_with("tls:onServerName()") {
                Some((
                    StepKind::Sni,
                    after_lit!(m, "requestedServerName:").and_then(&detail),
                ))
            } else if m.starts_with("tls:onALPN()") {
                Some((StepKind::Alpn, after_lit!(m, "ALPN:").and_then(&detail)))
            } else if m.starts_with("tls inspector: new connection accepted") {
                Some((StepKind::TlsInspector, None))
            } else if m.starts_with("tls inspector: parseClientHello failed") {
                Some((StepKind::ClientHelloFailed, tls_reason(m)))
            } else if m.starts_with("http inspector: new connection accepted") {
                Some((StepKind::HttpInspector, None))
            } else if m.starts_with("http inspector: set application protocol to") {
                Some((
                    StepKind::DetectedProtocol,
                    after_lit!(m, "protocol to").and_then(&detail),
                ))
            } else if let Some(c) = after_lit!(m, "Creating connection to cluster") {
                Some((StepKind::TcpProxy, detail(c)))
            } else if m.starts_with("Cluster not found") {
                Some((StepKind::ClusterNotFound, detail(m)))
            } else {
                None
            }
        }
        "connection" => {
            if m.starts_with("TLS error:") || find_lit!(m, "TLS_error:").is_some() {
                Some((StepKind::TlsError, tls_reason(m)))
            } else if m.starts_with("handshake error:") {
                Some((StepKind::HandshakeError, detail(m)))
            } else if m.starts_with("handshake complete") {
                Some((StepKind::HandshakeComplete, None))
            } else if let Some(e) = after_lit!(m, "closing socket:") {
                Some(if e.starts_with('1') {
                    (StepKind::LocalClose, None)
                } else {
                    (StepKind::RemoteClose, None)
                })
            } else if m.starts_with("closing data_to_write") {
                Some((StepKind::LocalClose, detail(m)))
            } else if m.starts_with("remote close") || m.starts_with("remote early close") {
                Some((StepKind::RemoteClose, None))
            } else if find_lit!(m, "rst close from peer").is_some() {
                Some((StepKind::RstFromPeer, None))
            } else if m.starts_with("delayed connect error")
                || m.starts_with("raising immediate error")
            {
                Some((StepKind::ConnectFailed, detail(m)))
            } else if m == "connected" {
                Some((StepKind::Connected, None))
            } else if find_lit!(m, "protocol error").is_some()
                || find_lit!(m, "dispatch error").is_some()
            {
                Some((StepKind::CodecError, detail(m)))
            } else {
                None
            }
        }
        "router" => after_lit!(m, "upstream reset: reset reason:").map(|r| {
            let reason = r.split(',').next().unwrap_or(r);
            (StepKind::UpstreamReset, detail(reason))
        }),
        "http" | "http2" | "client" => {
            if find_lit!(m, "dispatch error").is_some()
                || find_lit!(m, "protocol error").is_some()
                || find_lit!(m, "HPE_").is_some()
            {
                Some((StepKind::CodecError, detail(m)))
            } else if logger == "http" && m.starts_with("stream reset") {
                Some((StepKind::StreamReset, detail(m)))
            } else if logger == "client" && m == "connected" {
                Some((StepKind::Connected, None))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The BoringSSL reason symbol of a TLS error line, either form:
/// `TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST` or
/// `remote address:...,TLS_error:|268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST:TLS_error_end`.
#[must_use]
pub fn tls_reason(m: &str) -> Option<String> {
    let i = m.find("OPENSSL_internal:")?;
    let rest = &m[i + "OPENSSL_internal:".len()..];
    let end = rest.find([':', '|']).unwrap_or(rest.len());
    let reason = rest[..end].trim();
    // Old form joins several errors with a space: keep the first.
    let reason = if reason
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit() || b == b' ')
    {
        reason.split(' ').next().unwrap_or(reason)
    } else {
        reason
    };
    (!reason.is_empty()).then(|| truncate(reason, 80))
}

/// The IP of an `ip:port` / `[v6]:port` address (what a peer is known by across pods).
#[must_use]
pub fn peer_ip(addr: &str) -> &str {
    let a = addr.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match a.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => a,
    }
}

/// Cut a string to at most `max` bytes on a char boundary.
#[must_use]
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One normalised line, owned and compact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Input file id.
    pub file: u32,
    /// 1-based line.
    pub line: u64,
    /// UTC ns, if known.
    pub time: Option<i64>,
    /// Proxy instance within the file (hash of the pod name; 0 when none).
    pub instance: u64,
    /// Envoy thread id, when the layout has one.
    pub thread: Option<u32>,
    /// Connection id.
    pub conn: Option<u64>,
    /// Stream id.
    pub stream: Option<u64>,
    /// What happened.
    pub kind: StepKind,
    /// Short detail (SNI, TLS reason, cluster, reset reason).
    pub detail: Option<Box<str>>,
}

/// One connection's steps, in log order.
#[derive(Clone, Debug, Default)]
pub struct Journey {
    /// Input file id.
    pub file: u32,
    /// Proxy instance within the file.
    pub instance: u64,
    /// Restart epoch of that proxy (ids restart with Envoy).
    pub epoch: u32,
    /// Connection id (`None` for a connection refused before it got one).
    pub conn: Option<u64>,
    /// Indexes into the step list.
    pub steps: Vec<usize>,
    /// The upstream connection this (downstream) connection was proxied to, when it could
    /// be linked (index into [`Journeys::journeys`]).
    pub upstream: Option<usize>,
    /// Bit `kind as u32` set for each kind among `steps`, filled by [`assemble`]: signals
    /// ask [`Journey::has`] and [`Journey::is_failing`] of every journey.
    kind_set: u32,
}

/// Journeys plus the bookkeeping of what could not be attached.
#[derive(Clone, Debug, Default)]
pub struct Journeys {
    /// All journeys, in order of their first step.
    pub journeys: Vec<Journey>,
    /// Listener-filter lines no connection claimed within the window.
    pub orphan_listener_lines: u64,
    /// Restarts detected (agent lines or ids going backwards).
    pub restarts: u64,
    /// Downstream connections linked to their upstream connection.
    pub linked_upstream: u64,
}

/// How long listener-filter lines wait for their `new connection` line. The sniffing
/// timeout itself can be up to seconds before the fallback, so this is generous.
pub const ATTACH_WINDOW_NS: i64 = 10_000_000_000;

struct Group {
    thread: Option<u32>,
    first: Option<i64>,
    last: Option<i64>,
    steps: Vec<usize>,
    kinds: Vec<StepKind>,
}

#[derive(Default)]
struct ProxyState {
    dirty: bool,
    epoch: u32,
    max_conn: u64,
    pending: VecDeque<Group>,
}

/// Join steps (in input order: by file, then line) into journeys.
#[must_use]
pub fn assemble(steps: &[Step]) -> Journeys {
    // A proxy's state never reaches into another file, and the reading pipeline keeps each
    // file's steps together in input order: files are assembled on every core and joined in
    // file order, which gives the journeys of one pass, in the same order.
    let runs = file_runs(steps);
    let mut files: Vec<u32> = runs.iter().map(|r| r.0).collect();
    files.sort_unstable();
    files.dedup();
    if files.len() != runs.len() {
        // A file's steps in two places (not what the pipeline makes): one pass keeps its
        // proxies' state across the gap.
        return assemble_run(steps, 0..steps.len());
    }
    let parts: Vec<Journeys> = runs
        .into_par_iter()
        .map(|(_, range)| assemble_run(steps, range))
        .collect();
    let mut out = Journeys::default();
    for part in parts {
        let before = out.journeys.len();
        out.journeys.extend(part.journeys.into_iter().map(|mut j| {
            j.upstream = j.upstream.map(|u| u + before);
            j
        }));
        out.orphan_listener_lines += part.orphan_listener_lines;
        out.restarts += part.restarts;
        out.linked_upstream += part.linked_upstream;
    }
    out
}

/// The runs of consecutive steps from one file: (file, index range).
fn file_runs(steps: &[Step]) -> Vec<(u32, std::ops::Range<usize>)> {
    let mut runs: Vec<(u32, std::ops::Range<usize>)> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match runs.last_mut() {
            Some((file, range)) if *file == s.file => range.end = i + 1,
            _ => runs.push((s.file, i..i + 1)),
        }
    }
    runs
}

/// [`assemble`] over `steps[range]`; journeys hold indexes into the whole `steps`.
fn assemble_run(steps: &[Step], range: std::ops::Range<usize>) -> Journeys {
    let mut out = Journeys::default();
    // Looked up once per step (hundreds of thousands): a fast hash, and nothing here
    // depends on iteration order.
    let mut proxies: FxHashMap<(u32, u64), ProxyState> = FxHashMap::default();
    let mut open: FxHashMap<(u32, u64, u32, u64), usize> = FxHashMap::default();
    let first = range.start;
    for (idx, s) in steps.get(range).unwrap_or_default().iter().enumerate() {
        let idx = first + idx;
        let key = (s.file, s.instance);
        let st = proxies.entry(key).or_default();
        if s.kind == StepKind::ProxyRestart {
            // One start prints several lines (`Starting proxy agent`, `Epoch 0 starting`,
            // `Envoy command:`); only a start after connection lines is a restart.
            if !st.dirty {
                continue;
            }
            st.dirty = false;
            st.epoch += 1;
            st.max_conn = 0;
            out.orphan_listener_lines += st
                .pending
                .drain(..)
                .map(|g| g.steps.len() as u64)
                .sum::<u64>();
            out.restarts += 1;
            continue;
        }
        st.dirty = true;
        // Expire pending groups that waited too long.
        if let Some(now) = s.time {
            while let Some(g) = st.pending.front() {
                if g.first
                    .is_some_and(|f| now.saturating_sub(f) > ATTACH_WINDOW_NS)
                {
                    out.orphan_listener_lines += g.steps.len() as u64;
                    st.pending.pop_front();
                } else {
                    break;
                }
            }
        }
        match s.conn {
            None if s.kind.is_listener_filter() => {
                // A new group starts with original_dst, or when the thread's latest group
                // already saw this kind (the next socket's filters began). A timeout belongs
                // to the group that has waited longest; the fallback follows its timeout.
                let on_thread = |g: &Group| thread_matches(g.thread, s.thread);
                let pos = match s.kind {
                    StepKind::OriginalDst => None,
                    StepKind::ListenerFilterTimeout => st
                        .pending
                        .iter()
                        .position(|g| on_thread(g) && !g.kinds.contains(&s.kind)),
                    StepKind::ListenerFilterFallback => st.pending.iter().rposition(|g| {
                        on_thread(g)
                            && g.kinds.contains(&StepKind::ListenerFilterTimeout)
                            && !g.kinds.contains(&s.kind)
                    }),
                    _ => st
                        .pending
                        .iter()
                        .rposition(on_thread)
                        .filter(|&p| !st.pending[p].kinds.contains(&s.kind)),
                };
                match pos {
                    Some(p) => {
                        st.pending[p].steps.push(idx);
                        st.pending[p].kinds.push(s.kind);
                        st.pending[p].last = s.time.or(st.pending[p].last);
                    }
                    None => st.pending.push_back(Group {
                        thread: s.thread,
                        first: s.time,
                        last: s.time,
                        steps: vec![idx],
                        kinds: vec![s.kind],
                    }),
                }
            }
            None if s.kind == StepKind::FilterChainNotFound => {
                let mut j = Journey {
                    file: s.file,
                    instance: s.instance,
                    epoch: st.epoch,
                    conn: None,
                    steps: Vec::new(),
                    upstream: None,
                    kind_set: 0,
                };
                if let Some(g) = take_group(&mut st.pending, s.thread) {
                    j.steps = g.steps;
                }
                j.steps.push(idx);
                out.journeys.push(j);
            }
            None => {}
            Some(id) => {
                if s.kind == StepKind::Accepted {
                    // Ids are a process-wide counter: a big step backwards means Envoy
                    // restarted without an agent line in this file.
                    if st.max_conn > 1000 && id < st.max_conn / 2 {
                        st.epoch += 1;
                        out.restarts += 1;
                    }
                    st.max_conn = st.max_conn.max(id);
                    let mut j = Journey {
                        file: s.file,
                        instance: s.instance,
                        epoch: st.epoch,
                        conn: Some(id),
                        steps: Vec::new(),
                        upstream: None,
                        kind_set: 0,
                    };
                    if let Some(g) = take_group(&mut st.pending, s.thread) {
                        j.steps = g.steps;
                    }
                    j.steps.push(idx);
                    open.insert((s.file, s.instance, st.epoch, id), out.journeys.len());
                    out.journeys.push(j);
                } else {
                    st.max_conn = st.max_conn.max(id);
                    let k = (s.file, s.instance, st.epoch, id);
                    match open.get(&k) {
                        Some(&j) => {
                            if let Some(journey) = out.journeys.get_mut(j) {
                                journey.steps.push(idx);
                            }
                        }
                        None => {
                            open.insert(k, out.journeys.len());
                            out.journeys.push(Journey {
                                file: s.file,
                                instance: s.instance,
                                epoch: st.epoch,
                                conn: Some(id),
                                steps: vec![idx],
                                upstream: None,
                                kind_set: 0,
                            });
                        }
                    }
                }
            }
        }
    }
    out.orphan_listener_lines += proxies
        .values()
        .flat_map(|p| p.pending.iter())
        .map(|g| g.steps.len() as u64)
        .sum::<u64>();
    for j in &mut out.journeys {
        j.kind_set = j.kinds(steps).fold(0, |set, k| set | kind_bit(k));
    }
    link_upstreams(&mut out, steps);
    out
}

/// A step of this kind makes its journey fail (see [`Journey::outcome`]).
const fn fails(kind: StepKind) -> bool {
    kind.is_failure() || matches!(kind, StepKind::ListenerFilterTimeout)
}

/// The bit of `kind` in [`Journey::kind_set`].
const fn kind_bit(kind: StepKind) -> u32 {
    match 1u32.checked_shl(kind as u32) {
        Some(bit) => bit,
        None => 0,
    }
}

/// The bits of the kinds that [`fails`]: a journey fails when its kind set meets them.
const FAILING_KINDS: u32 = {
    let mut mask = 0;
    let mut i = 0;
    while i < StepKind::ALL.len() {
        if fails(StepKind::ALL[i]) {
            mask |= kind_bit(StepKind::ALL[i]);
        }
        i += 1;
    }
    mask
};

const _: () = assert!((StepKind::ProxyRestart as u32) < 32, "kind sets are u32");

/// How far after `Creating connection to cluster` the upstream connection must start.
pub const UPSTREAM_LINK_WINDOW_NS: i64 = 1_000_000_000;

/// Link each TCP-proxied downstream journey to the upstream connection it opened: the next
/// journey of the same proxy and epoch that is not a downstream one, starting on the same
/// thread (when known) within [`UPSTREAM_LINK_WINDOW_NS`] (formats.md §2.6 item 4). Looks at
/// a bounded number of following journeys, so the pass stays linear.
fn link_upstreams(out: &mut Journeys, steps: &[Step]) {
    let mut claimed = vec![false; out.journeys.len()];
    for d in 0..out.journeys.len() {
        let Some(proxy) = out.journeys.get(d).and_then(|j| {
            j.steps
                .iter()
                .filter_map(|&i| steps.get(i))
                .find(|s| s.kind == StepKind::TcpProxy)
                .cloned()
        }) else {
            continue;
        };
        let (file, instance, epoch) = match out.journeys.get(d) {
            Some(j) => (j.file, j.instance, j.epoch),
            None => continue,
        };
        let found = (d + 1..out.journeys.len().min(d + 65)).find(|&u| {
            let Some(up) = out.journeys.get(u) else {
                return false;
            };
            let Some(first) = up.steps.first().and_then(|&i| steps.get(i)) else {
                return false;
            };
            !claimed[u]
                && up.file == file
                && up.instance == instance
                && up.epoch == epoch
                && up.conn.is_some()
                && !up.is_downstream(steps)
                && thread_matches(first.thread, proxy.thread)
                && match (first.time, proxy.time) {
                    (Some(a), Some(b)) => a >= b && a - b <= UPSTREAM_LINK_WINDOW_NS,
                    _ => first.line > proxy.line,
                }
        });
        if let Some(u) = found {
            claimed[u] = true;
            if let Some(j) = out.journeys.get_mut(d) {
                j.upstream = Some(u);
            }
            out.linked_upstream += 1;
        }
    }
}

/// The listener filters that just finished are the group with the latest activity: the
/// connection object is created right after its last listener-filter line.
fn take_group(pending: &mut VecDeque<Group>, thread: Option<u32>) -> Option<Group> {
    let p = pending
        .iter()
        .enumerate()
        .filter(|(_, g)| thread_matches(g.thread, thread))
        .max_by_key(|(i, g)| (g.last, *i))
        .map(|(i, _)| i)?;
    pending.remove(p)
}

fn thread_matches(a: Option<u32>, b: Option<u32>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// How a journey ended, for grouping.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Outcome {
    /// No failure step.
    Ok,
    /// Listener filters timed out (the connection went on without a detected protocol).
    SniffTimeout,
    /// A failure step; the label names it (`tls_error:HTTP_REQUEST`, `no_filter_chain`...).
    Failed(String),
}

impl Outcome {
    /// True for anything but `Ok`.
    #[must_use]
    pub fn is_failing(&self) -> bool {
        !matches!(self, Outcome::Ok)
    }

    /// Short label.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::SniffTimeout => "listener_filter_timeout".into(),
            Outcome::Failed(l) => l.clone(),
        }
    }
}

impl Journey {
    /// Step kinds in order.
    pub fn kinds<'s>(&'s self, steps: &'s [Step]) -> impl Iterator<Item = StepKind> + 's {
        self.steps
            .iter()
            .filter_map(|&i| steps.get(i))
            .map(|s| s.kind)
    }

    /// True when the journey has a step of this kind.
    #[must_use]
    pub fn has(&self, steps: &[Step], kind: StepKind) -> bool {
        if self.kind_set != 0 {
            return self.kind_set & kind_bit(kind) != 0;
        }
        self.kinds(steps).any(|k| k == kind)
    }

    /// The first step of a kind.
    #[must_use]
    pub fn first_of<'s>(&self, steps: &'s [Step], kind: StepKind) -> Option<&'s Step> {
        self.steps
            .iter()
            .filter_map(|&i| steps.get(i))
            .find(|s| s.kind == kind)
    }

    /// The first failure step, else a listener-filter timeout, else ok.
    #[must_use]
    pub fn outcome(&self, steps: &[Step]) -> Outcome {
        let fail = self
            .steps
            .iter()
            .filter_map(|&i| steps.get(i))
            .find(|s| s.kind.is_failure());
        match fail {
            Some(s) => {
                let label = match (s.kind, s.detail.as_deref()) {
                    (StepKind::TlsError | StepKind::UpstreamReset, Some(d)) => {
                        format!("{}:{}", s.kind.name(), d.replace(' ', "_"))
                    }
                    (StepKind::HandshakeError, _) => {
                        // Old Envoy logs `handshake error` then the `TLS error` reason.
                        match self
                            .first_of(steps, StepKind::TlsError)
                            .and_then(|t| t.detail.as_deref())
                        {
                            Some(d) => format!("tls_error:{}", d.replace(' ', "_")),
                            None => "tls_error".into(),
                        }
                    }
                    (k, _) => k.name().to_string(),
                };
                Outcome::Failed(label)
            }
            None if self.has(steps, StepKind::ListenerFilterTimeout) => Outcome::SniffTimeout,
            None => Outcome::Ok,
        }
    }

    /// `self.outcome(steps).is_failing()` without building the outcome's label: signals
    /// ask it of every journey.
    #[must_use]
    pub fn is_failing(&self, steps: &[Step]) -> bool {
        if self.kind_set != 0 {
            return self.kind_set & FAILING_KINDS != 0;
        }
        self.kinds(steps).any(fails)
    }

    /// Like [`Journey::outcome`], but a downstream connection without a failure of its own
    /// takes the failure of the upstream connection it was linked to (`upstream_<label>`).
    #[must_use]
    pub fn outcome_linked(&self, all: &[Journey], steps: &[Step]) -> Outcome {
        let own = self.outcome(steps);
        if own.is_failing() {
            return own;
        }
        match self
            .upstream
            .and_then(|u| all.get(u))
            .map(|u| u.outcome(steps))
        {
            Some(Outcome::Failed(l)) => Outcome::Failed(format!("upstream_{l}")),
            _ => own,
        }
    }

    /// Time of the first step with a time.
    #[must_use]
    pub fn start(&self, steps: &[Step]) -> Option<i64> {
        self.steps
            .iter()
            .filter_map(|&i| steps.get(i))
            .find_map(|s| s.time)
    }

    /// The first step's location.
    #[must_use]
    pub fn first_location(&self, steps: &[Step]) -> Option<(u32, u64)> {
        self.steps
            .first()
            .and_then(|&i| steps.get(i))
            .map(|s| (s.file, s.line))
    }

    /// True when the journey shows the downstream side (accepted or listener filters).
    #[must_use]
    pub fn is_downstream(&self, steps: &[Step]) -> bool {
        self.kinds(steps).any(|k| {
            k == StepKind::Accepted || k.is_listener_filter() || k == StepKind::FilterChainNotFound
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_tls_error_forms() {
        let old = classify(
            "connection",
            "TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
        );
        assert_eq!(old, Some((StepKind::TlsError, Some("HTTP_REQUEST".into()))));
        let new = classify(
            "connection",
            "remote address:10.244.3.9:51234,TLS_error:|268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST:TLS_error_end",
        );
        assert_eq!(new, Some((StepKind::TlsError, Some("HTTP_REQUEST".into()))));
        let located = classify(
            "connection",
            "[external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:226] [C3656911] TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
        );
        assert_eq!(located, old);
        let multi = classify(
            "connection",
            "TLS error: 268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED 268435456:SSL routines:OPENSSL_internal:X",
        );
        assert_eq!(
            multi.and_then(|(_, d)| d).as_deref(),
            Some("CERTIFICATE_VERIFY_FAILED")
        );
    }

    #[test]
    fn listener_and_handler_lines() {
        let cases = [
            (
                "filter",
                "original_dst: New connection accepted",
                StepKind::OriginalDst,
            ),
            (
                "filter",
                "tls inspector: new connection accepted",
                StepKind::TlsInspector,
            ),
            (
                "filter",
                "tls:onServerName(), requestedServerName: outbound_.80_._.b.ns.svc.cluster.local",
                StepKind::Sni,
            ),
            (
                "filter",
                "http inspector: new connection accepted",
                StepKind::HttpInspector,
            ),
            (
                "filter",
                "http inspector: set application protocol to http/1.1",
                StepKind::DetectedProtocol,
            ),
            (
                "conn_handler",
                "listener filter times out after 100 ms",
                StepKind::ListenerFilterTimeout,
            ),
            (
                "conn_handler",
                "fallback to default listener filter",
                StepKind::ListenerFilterFallback,
            ),
            ("conn_handler", "new connection", StepKind::Accepted),
            (
                "conn_handler",
                "new connection from 10.0.0.1:4000",
                StepKind::Accepted,
            ),
            (
                "conn_handler",
                "closing connection from 10.0.0.1:4000: no matching filter chain found",
                StepKind::FilterChainNotFound,
            ),
            ("conn_handler", "adding to cleanup list", StepKind::Cleanup),
            (
                "filter",
                "Creating connection to cluster PassthroughCluster",
                StepKind::TcpProxy,
            ),
            ("connection", "closing socket: 0", StepKind::RemoteClose),
            ("connection", "closing socket: 1", StepKind::LocalClose),
            ("connection", "handshake error: 1", StepKind::HandshakeError),
            (
                "connection",
                "handshake complete",
                StepKind::HandshakeComplete,
            ),
            (
                "connection",
                "read: rst close from peer",
                StepKind::RstFromPeer,
            ),
            (
                "connection",
                "delayed connect error: 111",
                StepKind::ConnectFailed,
            ),
            (
                "router",
                "upstream reset: reset reason: connection termination, transport failure reason: ",
                StepKind::UpstreamReset,
            ),
            (
                "http",
                "dispatch error: http/1.1 protocol error: HPE_INVALID_METHOD",
                StepKind::CodecError,
            ),
        ];
        for (logger, msg, want) in cases {
            assert_eq!(
                classify(logger, msg).map(|(k, _)| k),
                Some(want),
                "{logger} {msg}"
            );
        }
        assert_eq!(classify("connection", "handshake expecting read"), None);
        assert_eq!(
            classify(
                "conn_handler",
                "closing connection from 10.244.7.31:40001: no matching filter chain found"
            )
            .and_then(|(_, d)| d)
            .as_deref(),
            Some("10.244.7.31:40001")
        );
        assert_eq!(peer_ip("10.1.2.3:80"), "10.1.2.3");
        assert_eq!(peer_ip("[fd00::1]:80"), "fd00::1");
        assert_eq!(peer_ip("fd00::1"), "fd00::1");
        assert_eq!(
            classify(
                "filter",
                "Creating connection to cluster PassthroughCluster"
            )
            .and_then(|(_, d)| d)
            .as_deref(),
            Some("PassthroughCluster")
        );
        assert_eq!(
            classify(
                "router",
                "upstream reset: reset reason: connection termination, transport failure reason: "
            )
            .and_then(|(_, d)| d)
            .as_deref(),
            Some("connection termination")
        );
    }

    fn step(line: u64, ms: i64, conn: Option<u64>, kind: StepKind) -> Step {
        Step {
            file: 0,
            line,
            time: Some(ms * 1_000_000),
            instance: 0,
            thread: None,
            conn,
            stream: None,
            kind,
            detail: None,
        }
    }

    #[test]
    fn kind_sets_answer_as_the_steps_do() {
        use StepKind::Accepted;
        let kinds = StepKind::ALL;
        // Every kind alone and every pair, after an accepted connection.
        for (a, b) in kinds
            .iter()
            .flat_map(|&a| kinds.iter().map(move |&b| (a, b)))
        {
            let steps = vec![
                step(1, 0, Some(1), Accepted),
                step(2, 1, Some(1), a),
                step(3, 2, Some(1), b),
            ];
            for j in &assemble(&steps).journeys {
                assert_eq!(
                    j.is_failing(&steps),
                    j.outcome(&steps).is_failing(),
                    "{a:?} {b:?}"
                );
                for k in kinds {
                    assert_eq!(j.has(&steps, k), j.kinds(&steps).any(|x| x == k), "{k:?}");
                }
            }
        }
    }

    #[test]
    fn listener_lines_attach_to_next_connection() {
        let steps = vec![
            step(1, 0, None, StepKind::OriginalDst),
            step(2, 0, None, StepKind::TlsInspector),
            step(3, 0, None, StepKind::Sni),
            step(4, 1, Some(7), StepKind::Accepted),
            step(5, 2, None, StepKind::HttpInspector),
            step(6, 2, Some(8), StepKind::Accepted),
            step(7, 3, Some(7), StepKind::HandshakeComplete),
            step(8, 3, Some(8), StepKind::TlsError),
        ];
        let j = assemble(&steps);
        assert_eq!(j.journeys.len(), 2);
        assert_eq!(j.journeys[0].steps, vec![0, 1, 2, 3, 6]);
        assert_eq!(j.journeys[1].steps, vec![4, 5, 7]);
        assert_eq!(j.orphan_listener_lines, 0);
        assert!(j.journeys[0].has(&steps, StepKind::Sni));
        assert!(!j.journeys[1].has(&steps, StepKind::Sni));
    }

    #[test]
    fn id_reuse_after_restart_is_a_new_journey() {
        let steps = vec![
            step(1, 0, Some(5000), StepKind::Accepted),
            step(2, 1, Some(5000), StepKind::HandshakeComplete),
            step(3, 2, None, StepKind::ProxyRestart),
            step(3, 2, None, StepKind::ProxyRestart),
            step(4, 3, Some(5000), StepKind::TlsError),
            // Ids going backwards without an agent line also start an epoch.
            step(5, 4, Some(9000), StepKind::Accepted),
            step(6, 5, Some(12), StepKind::Accepted),
            step(7, 6, Some(12), StepKind::Cleanup),
        ];
        let j = assemble(&steps);
        assert_eq!(j.restarts, 2);
        assert_eq!(j.journeys.len(), 4);
        assert_eq!(j.journeys[0].steps, vec![0, 1]);
        assert_eq!(j.journeys[1].steps, vec![4]);
        assert_eq!(j.journeys[3].steps, vec![6, 7]);
        assert_ne!(j.journeys[0].epoch, j.journeys[1].epoch);
    }

    #[test]
    fn timed_out_filters_skip_a_faster_connection() {
        // Socket A starts, socket B starts and completes, A times out and falls back.
        let steps = vec![
            step(1, 0, None, StepKind::OriginalDst),
            step(2, 0, None, StepKind::HttpInspector),
            step(3, 10, None, StepKind::OriginalDst),
            step(4, 10, None, StepKind::HttpInspector),
            step(5, 12, None, StepKind::DetectedProtocol),
            step(6, 12, Some(2), StepKind::Accepted),
            step(7, 100, None, StepKind::ListenerFilterTimeout),
            step(8, 100, None, StepKind::ListenerFilterFallback),
            step(9, 100, Some(3), StepKind::Accepted),
        ];
        let j = assemble(&steps);
        assert_eq!(j.journeys[0].steps, vec![2, 3, 4, 5]);
        assert_eq!(j.journeys[1].steps, vec![0, 1, 6, 7, 8]);
    }

    #[test]
    fn tcp_proxy_links_to_its_upstream_connection() {
        let mut s = vec![
            step(1, 0, Some(10), StepKind::Accepted),
            step(2, 0, Some(10), StepKind::TcpProxy),
            step(3, 1, Some(11), StepKind::Connected),
            step(4, 2, Some(11), StepKind::RemoteClose),
            step(5, 2, Some(10), StepKind::LocalClose),
        ];
        s[1].detail = Some("PassthroughCluster".into());
        let j = assemble(&s);
        assert_eq!(j.journeys.len(), 2);
        assert_eq!(j.journeys[0].upstream, Some(1));
        assert_eq!(j.journeys[1].upstream, None);
        assert_eq!(j.linked_upstream, 1);
    }

    #[test]
    fn orphans_expire() {
        let steps = vec![
            step(1, 0, None, StepKind::HttpInspector),
            step(2, 20_000, Some(1), StepKind::Accepted),
        ];
        let j = assemble(&steps);
        assert_eq!(j.orphan_listener_lines, 1);
        assert_eq!(j.journeys[0].steps, vec![1]);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn classify_never_panics(logger in "[a-z_]{0,12}", msg in "\\PC{0,200}") {
            let _ = classify(&logger, &msg);
            let _ = tls_reason(&msg);
            let _ = truncate(&msg, 7);
        }

        #[test]
        fn classify_never_panics_near_markers(
            logger in prop::sample::select(vec!["connection", "conn_handler", "filter", "router", "http"]),
            prefix in "\\PC{0,20}",
            marker in prop::sample::select(vec![
                "TLS error:", "TLS_error:|", "OPENSSL_internal:", "tls:onServerName(), requestedServerName:",
                "Creating connection to cluster", "upstream reset: reset reason:", "closing socket:",
                "[C", "[Tags: ", "new connection from",
            ]),
            suffix in "\\PC{0,40}",
        ) {
            let _ = classify(logger, &format!("{prefix}{marker}{suffix}"));
        }

        #[test]
        fn assembly_never_panics(kinds in prop::collection::vec((0u8..26, prop::option::of(0u64..5), 0i64..100), 0..60)) {
            let all = StepKind::ALL;
            let steps: Vec<Step> = kinds.iter().enumerate().map(|(i, (k, c, t))| Step {
                file: 0, line: i as u64 + 1, time: Some(*t * 1_000_000), instance: 0, thread: None,
                conn: *c, stream: None, kind: all[usize::from(*k) % all.len()], detail: None,
            }).collect();
            let j = assemble(&steps);
            let placed: usize = j.journeys.iter().map(|x| x.steps.len()).sum();
            prop_assert!(placed <= steps.len());
            for x in &j.journeys {
                let _ = x.outcome(&steps);
            }
            let _ = crate::compare::compare(&j.journeys, &steps, |_, _| None);
        }

        /// Files assembled apart and joined give the journeys of one pass over all steps,
        /// in the same order, with the same upstream links and counts.
        #[test]
        fn files_assembled_apart_join_into_one_pass(
            files in prop::collection::vec(
                prop::collection::vec((0u8..26, prop::option::of(0u64..4), 0i64..40, 0u64..2), 0..30),
                0..4,
            ),
        ) {
            let all = StepKind::ALL;
            let mut steps = Vec::new();
            for (file, kinds) in files.iter().enumerate() {
                for (i, (k, c, t, instance)) in kinds.iter().enumerate() {
                    steps.push(Step {
                        file: u32::try_from(file).unwrap(),
                        line: i as u64 + 1,
                        time: Some(*t * 100_000_000),
                        instance: *instance,
                        thread: u32::try_from(i % 2).ok(),
                        conn: *c,
                        stream: None,
                        kind: all[usize::from(*k) % all.len()],
                        detail: None,
                    });
                }
            }
            let joined = assemble(&steps);
            let one_pass = assemble_run(&steps, 0..steps.len());
            prop_assert_eq!(format!("{:?}", joined.journeys), format!("{:?}", one_pass.journeys));
            prop_assert_eq!(
                (joined.orphan_listener_lines, joined.restarts, joined.linked_upstream),
                (one_pass.orphan_listener_lines, one_pass.restarts, one_pass.linked_upstream)
            );
        }
    }
}
