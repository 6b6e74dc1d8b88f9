//! Log writers for the lab's "containers": Envoy debug lines in the Istio 1.6 or newer layout,
//! Istio access-log rows (1.6 or 1.9+ TEXT), pilot-agent lines and the apps' logstash JSON.
//!
//! Every line is built from the templates of formats.md §1.2, §2 and §3.1 (and the seed); the
//! lab's own ground truth (connection delays, causes) never goes into these files. Lines are
//! kept in memory per container and written once at the end. This module must not decide
//! behaviour: it only formats what the sidecars and apps report.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Layout of Envoy debug lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EnvoyLayout {
    /// Istio 1.6: `TS\tlevel\tenvoy logger\t[external/envoy/source/...cc:N] [C1] msg`.
    Istio16,
    /// Istio 1.22+: `TS\tlevel\tenvoy logger file:N\t[Tags: "ConnectionId":"1"] msg\tthread=N`.
    Istio122,
}

/// Istio access-log TEXT format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AccessFormat {
    /// 1.3-1.7: with `"%DYNAMIC_METADATA(istio.mixer:status)%"` after the flags.
    Istio16,
    /// 1.9+: `%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%` after the flags.
    Istio19,
    /// `accessLogEncoding: JSON` with the 1.9+ keys (formats.md §3.2).
    Json,
}

/// Wall-clock time in UTC, formatted the way each log family writes it.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// `2020-10-23T00:26:14.869776Z` (Envoy under Istio, pilot-agent).
pub fn ts_micros(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `2020-10-23T00:26:14.871Z` (access-log `%START_TIME%`, logback).
pub fn ts_millis(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// One container's log, kept in memory until the run ends.
#[derive(Clone, Default)]
pub struct Sink {
    lines: Arc<Mutex<Vec<(jiff::Timestamp, String)>>>,
    discard: bool,
}

/// What the log pipeline wraps around each container line (formats.md §1.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Wrapper {
    /// The bare container line.
    #[default]
    None,
    /// `kubectl logs --timestamps`: `RFC3339Nano(9 digits)Z <line>`.
    Kubectl,
    /// CRI node log file: `<RFC3339Nano> stdout F <line>`.
    Cri,
}

impl Sink {
    /// A sink that drops everything (benchmarks measure the data path, not log formatting).
    pub fn discard() -> Self {
        Self {
            lines: Arc::default(),
            discard: true,
        }
    }

    /// Append one line (without newline).
    pub fn push(&self, line: String) {
        if self.discard {
            return;
        }
        if let Ok(mut l) = self.lines.lock() {
            // Bounded: the lab's request counts are capped, but guard against a runaway anyway.
            if l.len() < 2_000_000 {
                l.push((now(), line));
            }
        }
    }

    /// Whether lines are dropped.
    pub fn is_discard(&self) -> bool {
        self.discard
    }

    /// Copy of the lines so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().map(|(_, s)| s.clone()).collect())
            .unwrap_or_default()
    }

    /// Write all lines to `path`, creating parent directories, wrapped as a log pipeline would.
    pub fn write_to(&self, path: &Path, wrapper: Wrapper) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        let mut text = String::new();
        for (t, line) in lines {
            // The runtime stamps a line a little after the process wrote it.
            let seen = t
                .checked_add(jiff::SignedDuration::from_micros(41))
                .unwrap_or(t);
            match wrapper {
                Wrapper::None => {}
                Wrapper::Kubectl => {
                    text.push_str(&seen.strftime("%Y-%m-%dT%H:%M:%S%.9fZ ").to_string());
                }
                Wrapper::Cri => {
                    let stamp = seen.strftime("%Y-%m-%dT%H:%M:%S%.9f").to_string();
                    // Go's RFC3339Nano drops trailing zeros of the fraction.
                    let stamp = stamp.trim_end_matches('0').trim_end_matches('.');
                    text.push_str(stamp);
                    text.push_str("Z stdout F ");
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(path, text)
    }
}

/// A source location in both Envoy eras: (1.6 path, line, newer path, line).
#[derive(Clone, Copy, Debug)]
pub struct Site(pub &'static str, pub u32, pub &'static str, pub u32);

/// Source locations used by the lab's lines. The 1.6 ones that appear in the seed are copied
/// from it; the others are plausible for Envoy of mid-2020 (parsers must key on logger + text,
/// never on paths, formats.md §1.2).
pub mod site {
    use super::Site;
    const LM: &str = "source/common/listener_manager/active_tcp_listener.cc";
    /// original_dst filter.
    pub const ORIGINAL_DST: Site = Site(
        "source/extensions/filters/listener/original_dst/original_dst.cc",
        18,
        "source/extensions/filters/listener/original_dst/original_dst.cc",
        69,
    );
    /// tls_inspector: new connection.
    pub const TLS_INSPECTOR: Site = Site(
        "source/extensions/filters/listener/tls_inspector/tls_inspector.cc",
        78,
        "source/extensions/filters/listener/tls_inspector/tls_inspector.cc",
        137,
    );
    /// tls_inspector: SNI callback.
    pub const TLS_SNI: Site = Site(
        "source/extensions/filters/listener/tls_inspector/tls_inspector.cc",
        148,
        "source/extensions/filters/listener/tls_inspector/tls_inspector.cc",
        118,
    );
    /// http_inspector: new connection.
    pub const HTTP_INSPECTOR: Site = Site(
        "source/extensions/filters/listener/http_inspector/http_inspector.cc",
        37,
        "source/extensions/filters/listener/http_inspector/http_inspector.cc",
        53,
    );
    /// http_inspector: protocol decided.
    pub const HTTP_SET: Site = Site(
        "source/extensions/filters/listener/http_inspector/http_inspector.cc",
        180,
        "source/extensions/filters/listener/http_inspector/http_inspector.cc",
        139,
    );
    /// Listener-filter timeout.
    pub const LF_TIMEOUT: Site = Site(
        "source/server/connection_handler_impl.cc",
        279,
        "source/common/listener_manager/active_tcp_socket.cc",
        24,
    );
    /// Continue after the timeout.
    pub const LF_FALLBACK: Site = Site(
        "source/server/connection_handler_impl.cc",
        281,
        "source/common/listener_manager/active_tcp_socket.cc",
        26,
    );
    /// New downstream connection.
    pub const NEW_CONN: Site = Site("source/server/connection_handler_impl.cc", 411, LM, 160);
    /// No chain matched.
    pub const NO_CHAIN: Site = Site(
        "source/server/connection_handler_impl.cc",
        395,
        "source/common/listener_manager/active_stream_listener_base.cc",
        47,
    );
    /// Cleanup.
    pub const CLEANUP: Site = Site(
        "source/server/connection_handler_impl.cc",
        111,
        "source/common/listener_manager/active_stream_listener_base.cc",
        121,
    );
    /// TLS handshake lines.
    pub const SSL_EXPECT: Site = Site(
        "source/extensions/transport_sockets/tls/ssl_socket.cc",
        191,
        "source/common/tls/ssl_handshaker.cc",
        239,
    );
    /// Handshake done.
    pub const SSL_DONE: Site = Site(
        "source/extensions/transport_sockets/tls/ssl_socket.cc",
        176,
        "source/common/tls/ssl_handshaker.cc",
        208,
    );
    /// Handshake error number.
    pub const SSL_ERR: Site = Site(
        "source/extensions/transport_sockets/tls/ssl_socket.cc",
        198,
        "source/common/tls/ssl_socket.cc",
        248,
    );
    /// TLS error string.
    pub const SSL_TLS_ERROR: Site = Site(
        "source/extensions/transport_sockets/tls/ssl_socket.cc",
        226,
        "source/common/tls/ssl_socket.cc",
        248,
    );
    /// connection_impl close.
    pub const CLOSE_SOCKET: Site = Site(
        "source/common/network/connection_impl.cc",
        200,
        "source/common/network/connection_impl.cc",
        281,
    );
    /// connection_impl closing (local decision).
    pub const CLOSING: Site = Site(
        "source/common/network/connection_impl.cc",
        109,
        "source/common/network/connection_impl.cc",
        146,
    );
    /// connection_impl remote close.
    pub const REMOTE_CLOSE: Site = Site(
        "source/common/network/connection_impl.cc",
        568,
        "source/common/network/connection_impl.cc",
        714,
    );
    /// connection_impl connect.
    pub const CONNECTING: Site = Site(
        "source/common/network/connection_impl.cc",
        727,
        "source/common/network/connection_impl.cc",
        1011,
    );
    /// connection_impl connected.
    pub const CONNECTED: Site = Site(
        "source/common/network/connection_impl.cc",
        580,
        "source/common/network/connection_impl.cc",
        746,
    );
    /// tcp_proxy lines.
    pub const TCP_PROXY: Site = Site(
        "source/common/tcp_proxy/tcp_proxy.cc",
        344,
        "source/common/tcp_proxy/tcp_proxy.cc",
        512,
    );
    /// tcp_proxy upstream event.
    pub const TCP_UPSTREAM: Site = Site(
        "source/common/tcp_proxy/tcp_proxy.cc",
        600,
        "source/common/tcp_proxy/tcp_proxy.cc",
        781,
    );
    /// tcp conn pool.
    pub const TCP_POOL: Site = Site(
        "source/common/tcp/conn_pool.cc",
        83,
        "source/common/conn_pool/conn_pool_base.cc",
        275,
    );
    /// http conn pool.
    pub const HTTP_POOL: Site = Site(
        "source/common/http/conn_pool_base.cc",
        40,
        "source/common/conn_pool/conn_pool_base.cc",
        275,
    );
    /// HCM.
    pub const HCM: Site = Site(
        "source/common/http/conn_manager_impl.cc",
        259,
        "source/common/http/conn_manager_impl.cc",
        391,
    );
    /// Router.
    pub const ROUTER: Site = Site(
        "source/common/router/router.cc",
        477,
        "source/common/router/router.cc",
        514,
    );
    /// Router upstream reset.
    pub const ROUTER_RESET: Site = Site(
        "source/common/router/router.cc",
        1009,
        "source/common/router/router.cc",
        1325,
    );
    /// Codec client.
    pub const CODEC_CLIENT: Site = Site(
        "source/common/http/codec_client.cc",
        91,
        "source/common/http/codec_client.cc",
        107,
    );
    /// Local reply.
    pub const LOCAL_REPLY: Site = Site(
        "source/common/http/conn_manager_impl.cc",
        1383,
        "source/common/http/filter_manager.cc",
        1084,
    );
}

/// One Envoy process: its debug log, its connection id counter and its access log (both go to
/// the same istio-proxy container log, as in a real pod).
#[derive(Clone)]
pub struct Envoy {
    /// The istio-proxy container's log.
    pub sink: Sink,
    layout: EnvoyLayout,
    access: AccessFormat,
    next_id: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    thread: u64,
}

impl Envoy {
    /// A new Envoy whose connection ids start at `first_id`.
    pub fn new(
        sink: Sink,
        layout: EnvoyLayout,
        access: AccessFormat,
        first_id: u64,
        thread: u64,
    ) -> Self {
        Self {
            sink,
            layout,
            access,
            next_id: Arc::new(AtomicU64::new(first_id)),
            accepted: Arc::default(),
            thread,
        }
    }

    /// The same Envoy as seen from the worker thread that owns the next accepted socket
    /// (`--concurrency 2`: accepted sockets alternate between two workers, and every line of
    /// a connection, upstream included, comes from its worker).
    pub fn worker(&self) -> Envoy {
        let n = self.accepted.fetch_add(1, Ordering::Relaxed);
        let mut e = self.clone();
        e.thread = self.thread + n % 2;
        e
    }

    /// Which layout this Envoy writes.
    pub fn layout(&self) -> EnvoyLayout {
        self.layout
    }

    /// Which access-log format this Envoy writes.
    pub fn access_format(&self) -> AccessFormat {
        self.access
    }

    /// Next process-wide connection id (shared by downstream and upstream, as in Envoy).
    pub fn conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `[C<id>] closing socket: <event>` (0 = remote close, 1 = local close).
    pub fn close_socket(&self, id: u64, event: u8) {
        self.log(
            "connection",
            site::CLOSE_SOCKET,
            Some(id),
            None,
            &format!("closing socket: {event}"),
        );
    }

    /// `[C<id>] adding to cleanup list`: the last line of a downstream connection.
    pub fn cleanup(&self, id: u64) {
        self.log(
            "conn_handler",
            site::CLEANUP,
            Some(id),
            None,
            "adding to cleanup list",
        );
    }

    /// `[C<id>] remote close`: the peer closed (FIN or RST alike in old Envoy).
    pub fn remote_close(&self, id: u64) {
        self.log(
            "connection",
            site::REMOTE_CLOSE,
            Some(id),
            None,
            "remote close",
        );
    }

    /// `[C<id>] closing data_to_write=0 type=0`: Envoy decided to close (FlushWrite).
    pub fn closing(&self, id: u64) {
        self.log(
            "connection",
            site::CLOSING,
            Some(id),
            None,
            "closing data_to_write=0 type=0",
        );
    }

    /// A failed TLS handshake in the pre-1.17 layout: `handshake error: 1`, then the
    /// BoringSSL error (`TLS error: <code>:SSL routines:OPENSSL_internal:<reason>`).
    pub fn legacy_tls_error(&self, id: u64, code: u32, reason: &str) {
        self.log(
            "connection",
            site::SSL_ERR,
            Some(id),
            None,
            "handshake error: 1",
        );
        self.log(
            "connection",
            site::SSL_TLS_ERROR,
            Some(id),
            None,
            &format!("TLS error: {code}:SSL routines:OPENSSL_internal:{reason}"),
        );
    }

    /// The two lines of a listener filter (protocol detection) that gave up waiting for the
    /// first bytes after `ms` milliseconds and let the connection through undetected.
    pub fn listener_filter_timeout(&self, ms: u128) {
        self.log(
            "conn_handler",
            site::LF_TIMEOUT,
            None,
            None,
            &format!("listener filter times out after {ms} ms"),
        );
        self.log(
            "conn_handler",
            site::LF_FALLBACK,
            None,
            None,
            "fallback to default listener filter",
        );
    }

    /// The first two listener-filter lines of an accepted socket (no connection id yet).
    pub fn listener_filters_accepted(&self) {
        self.log(
            "filter",
            site::ORIGINAL_DST,
            None,
            None,
            "original_dst: New connection accepted",
        );
        self.log(
            "filter",
            site::TLS_INSPECTOR,
            None,
            None,
            "tls inspector: new connection accepted",
        );
    }

    /// Write one debug line.
    pub fn log(&self, logger: &str, site: Site, conn: Option<u64>, stream: Option<u64>, msg: &str) {
        if self.sink.is_discard() {
            return;
        }
        let t = ts_micros(now());
        let mut line = String::with_capacity(160);
        match self.layout {
            EnvoyLayout::Istio16 => {
                let _ = write!(
                    line,
                    "{t}\tdebug\tenvoy {logger}\t[external/envoy/{}:{}] ",
                    site.0, site.1
                );
                match (conn, stream) {
                    (Some(c), Some(s)) => {
                        let _ = write!(line, "[C{c}][S{s}] ");
                    }
                    (Some(c), None) => {
                        let _ = write!(line, "[C{c}] ");
                    }
                    _ => {}
                }
                line.push_str(msg);
            }
            EnvoyLayout::Istio122 => {
                let _ = write!(
                    line,
                    "{t}\tdebug\tenvoy {logger} external/envoy/{}:{}\t",
                    site.2, site.3
                );
                match (conn, stream) {
                    (Some(c), Some(s)) => {
                        let _ = write!(
                            line,
                            "[Tags: \"ConnectionId\":\"{c}\",\"StreamId\":\"{s}\"] "
                        );
                    }
                    (Some(c), None) => {
                        let _ = write!(line, "[Tags: \"ConnectionId\":\"{c}\"] ");
                    }
                    _ => {}
                }
                line.push_str(msg);
                let _ = write!(line, "\tthread={}", self.thread);
            }
        }
        self.sink.push(line);
    }

    /// Write one pilot-agent line (`TS\tinfo\tmsg`).
    pub fn agent(&self, level: &str, msg: &str) {
        self.sink
            .push(format!("{}\t{level}\t{msg}", ts_micros(now())));
    }

    /// Write one access-log row.
    pub fn access_log(&self, row: &AccessRow) {
        self.sink.push(row.format(self.access));
    }
}

/// Values of one access-log row (`-` where Envoy prints a dash).
#[derive(Clone, Debug)]
pub struct AccessRow {
    /// `%START_TIME%`.
    pub start: jiff::Timestamp,
    /// `"METHOD PATH PROTOCOL"` or `None` for TCP (`"- - -"`).
    pub request: Option<(String, String)>,
    /// `%RESPONSE_CODE%` (0 for TCP).
    pub code: u16,
    /// `%RESPONSE_FLAGS%`.
    pub flags: &'static str,
    /// `%RESPONSE_CODE_DETAILS%` (1.9+ only).
    pub details: String,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
    pub transport_failure: String,
    /// `%BYTES_RECEIVED%`.
    pub bytes_received: u64,
    /// `%BYTES_SENT%`.
    pub bytes_sent: u64,
    /// `%DURATION%` in ms.
    pub duration_ms: u64,
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%`.
    pub upstream_service_time: Option<u64>,
    /// `%REQ(USER-AGENT)%`.
    pub user_agent: String,
    /// `%REQ(X-REQUEST-ID)%`.
    pub request_id: String,
    /// `%REQ(:AUTHORITY)%`.
    pub authority: String,
    /// `%UPSTREAM_HOST%`.
    pub upstream_host: String,
    /// `%UPSTREAM_CLUSTER%`.
    pub cluster: String,
    /// `%UPSTREAM_LOCAL_ADDRESS%`.
    pub upstream_local: String,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    pub downstream_local: String,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    pub downstream_remote: String,
    /// `%REQUESTED_SERVER_NAME%`.
    pub sni: String,
    /// `%ROUTE_NAME%`.
    pub route: String,
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

impl AccessRow {
    /// Render in the given format (formats.md §3.1).
    pub fn format(&self, f: AccessFormat) -> String {
        if f == AccessFormat::Json {
            return self.json();
        }
        let req = match &self.request {
            Some((m, p)) => format!("{m} {p} HTTP/1.1"),
            None => "- - -".to_string(),
        };
        let mid = match f {
            AccessFormat::Istio16 => "\"-\"".to_string(),
            AccessFormat::Istio19 | AccessFormat::Json => format!("{} -", dash(&self.details)),
        };
        let ust = self
            .upstream_service_time
            .map_or("-".to_string(), |v| v.to_string());
        format!(
            "[{}] \"{}\" {} {} {} \"{}\" {} {} {} {} \"-\" \"{}\" \"{}\" \"{}\" \"{}\" {} {} {} {} {} {}",
            ts_millis(self.start),
            req,
            self.code,
            dash(self.flags),
            mid,
            dash(&self.transport_failure),
            self.bytes_received,
            self.bytes_sent,
            self.duration_ms,
            ust,
            dash(&self.user_agent),
            dash(&self.request_id),
            dash(&self.authority),
            dash(&self.upstream_host),
            dash(&self.cluster),
            dash(&self.upstream_local),
            dash(&self.downstream_local),
            dash(&self.downstream_remote),
            dash(&self.sni),
            dash(&self.route),
        )
    }
}

impl AccessRow {
    /// Envoy's JSON formatter: numbers for numeric operators, `null` for missing values.
    fn json(&self) -> String {
        use serde_json::Value;
        let opt = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                Value::from(s)
            }
        };
        let (method, path, protocol) = match &self.request {
            Some((m, p)) => (
                Value::from(m.as_str()),
                Value::from(p.as_str()),
                Value::from("HTTP/1.1"),
            ),
            None => (Value::Null, Value::Null, Value::Null),
        };
        let mut o = serde_json::Map::new();
        o.insert("authority".into(), opt(&self.authority));
        o.insert("bytes_received".into(), self.bytes_received.into());
        o.insert("bytes_sent".into(), self.bytes_sent.into());
        o.insert("connection_termination_details".into(), Value::Null);
        o.insert(
            "downstream_local_address".into(),
            opt(&self.downstream_local),
        );
        o.insert(
            "downstream_remote_address".into(),
            opt(&self.downstream_remote),
        );
        o.insert("duration".into(), self.duration_ms.into());
        o.insert("method".into(), method);
        o.insert("path".into(), path);
        o.insert("protocol".into(), protocol);
        o.insert("request_id".into(), opt(&self.request_id));
        o.insert("requested_server_name".into(), opt(&self.sni));
        o.insert("response_code".into(), self.code.into());
        o.insert("response_code_details".into(), opt(&self.details));
        o.insert("response_flags".into(), Value::from(dash(self.flags)));
        o.insert("route_name".into(), opt(&self.route));
        o.insert("start_time".into(), Value::from(ts_millis(self.start)));
        o.insert("upstream_cluster".into(), opt(&self.cluster));
        o.insert("upstream_host".into(), opt(&self.upstream_host));
        o.insert("upstream_local_address".into(), opt(&self.upstream_local));
        o.insert(
            "upstream_service_time".into(),
            self.upstream_service_time.map_or(Value::Null, Value::from),
        );
        o.insert(
            "upstream_transport_failure_reason".into(),
            opt(&self.transport_failure),
        );
        o.insert("user_agent".into(), opt(&self.user_agent));
        o.insert("x_forwarded_for".into(), Value::Null);
        Value::Object(o).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AccessRow {
        AccessRow {
            start: jiff::Timestamp::from_second(1_603_412_774).unwrap(),
            request: None,
            code: 0,
            flags: "",
            details: String::new(),
            transport_failure: String::new(),
            bytes_received: 151,
            bytes_sent: 0,
            duration_ms: 2,
            upstream_service_time: None,
            user_agent: String::new(),
            request_id: String::new(),
            authority: String::new(),
            upstream_host: "127.0.10.2:40001".into(),
            cluster: "PassthroughCluster".into(),
            upstream_local: "127.0.10.1:50000".into(),
            downstream_local: "127.0.20.2:40002".into(),
            downstream_remote: "127.0.10.1:50001".into(),
            sni: String::new(),
            route: String::new(),
        }
    }

    #[test]
    fn passthrough_row_in_16_format() {
        assert_eq!(
            row().format(AccessFormat::Istio16),
            "[2020-10-23T00:26:14.000Z] \"- - -\" 0 - \"-\" \"-\" 151 0 2 - \"-\" \"-\" \"-\" \"-\" \"127.0.10.2:40001\" PassthroughCluster 127.0.10.1:50000 127.0.20.2:40002 127.0.10.1:50001 - -"
        );
    }

    #[test]
    fn uc_row_in_19_format() {
        let mut r = row();
        r.request = Some(("GET".into(), "/api/orders/1".into()));
        r.code = 503;
        r.flags = "UC";
        r.details = "upstream_reset_before_response_started{connection_termination}".into();
        r.route = "default".into();
        let s = r.format(AccessFormat::Istio19);
        assert!(s.contains("\"GET /api/orders/1 HTTP/1.1\" 503 UC upstream_reset_before_response_started{connection_termination} - \"-\" 151 0 2 -"), "{s}");
    }

    #[test]
    fn json_row_keys_and_types() {
        let v: serde_json::Value = serde_json::from_str(&row().format(AccessFormat::Json)).unwrap();
        assert_eq!(v["upstream_cluster"], "PassthroughCluster");
        assert_eq!(v["response_code"], 0);
        assert_eq!(v["bytes_received"], 151);
        assert!(v["requested_server_name"].is_null());
        assert_eq!(v["start_time"], "2020-10-23T00:26:14.000Z");
    }

    #[test]
    fn envoy_16_line_shape() {
        let sink = Sink::default();
        let e = Envoy::new(
            sink.clone(),
            EnvoyLayout::Istio16,
            AccessFormat::Istio16,
            7,
            20,
        );
        e.log(
            "connection",
            site::SSL_TLS_ERROR,
            Some(7),
            None,
            "TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
        );
        let l = sink.snapshot().pop().unwrap();
        let rest = l.split_once('\t').unwrap().1;
        assert_eq!(
            rest,
            "debug\tenvoy connection\t[external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:226] [C7] TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST"
        );
    }

    #[test]
    fn envoy_122_line_shape() {
        let sink = Sink::default();
        let e = Envoy::new(
            sink.clone(),
            EnvoyLayout::Istio122,
            AccessFormat::Istio19,
            7,
            20,
        );
        e.log(
            "connection",
            site::CLOSE_SOCKET,
            Some(43),
            None,
            "closing socket: 0",
        );
        let l = sink.snapshot().pop().unwrap();
        let rest = l.split_once('\t').unwrap().1;
        assert_eq!(
            rest,
            "debug\tenvoy connection external/envoy/source/common/network/connection_impl.cc:281\t[Tags: \"ConnectionId\":\"43\"] closing socket: 0\tthread=20"
        );
    }
}
