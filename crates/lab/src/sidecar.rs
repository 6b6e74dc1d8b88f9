//! The lab's sidecars: a client sidecar (outbound listeners with Envoy-1.6-like protocol
//! sniffing and chain selection) and a server sidecar (inbound with TLS detection, STRICT or
//! PERMISSIVE, BoringSSL-faithful rejection of plaintext).
//!
//! Behaviour follows dataplane.md: the sniff timer starts at accept and waits for a complete
//! request line; on timeout Istio 1.6 silently passes plaintext through; the STRICT inbound
//! consumes exactly 5 bytes of plaintext and closes with the rest unread, so the kernel sends RST.
//! rustls never sees plaintext (it would answer with an alert, which BoringSSL does not).
//! Every loop here is bounded by the run's deadline or a byte cap. This module must not decide
//! what the ground truth is; it only behaves and logs.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::http::{self, ReadError, Reader};
use crate::logs::{AccessRow, Envoy, EnvoyLayout, now, site};
use crate::mesh::{CloseKind, Fallback, MtlsMode, Service, SidecarKnobs, StrictReject};

/// A byte stream the proxies can hold in pools.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The Envoy local-reply body for a reset before headers (95 bytes with this reason).
pub fn reset_body(reason: &str) -> String {
    format!("upstream connect error or disconnect/reset before headers. reset reason: {reason}")
}

/// Connect to `addr` from `bind_ip` (port chosen by the OS).
pub async fn connect_from(bind_ip: std::net::IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(bind_ip, 0))?;
    let s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Close a stream so that the peer sees RST (SO_LINGER 0) or FIN.
fn close_with(s: TcpStream, kind: CloseKind) {
    if kind == CloseKind::Rst {
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    }
    drop(s);
}

/// One upstream connection kept in a pool.
struct Pooled {
    io: Box<dyn Io>,
    id: u64,
    local: String,
}

/// How an HTTP chain reaches its upstream.
#[derive(Clone)]
pub enum Connector {
    /// Plain TCP (inbound -> app).
    Plain,
    /// mTLS with this client config and SNI (outbound -> server sidecar).
    Tls(Arc<rustls::ClientConfig>, String),
}

/// An upstream cluster: address, how to connect, and its idle connection pool.
#[derive(Clone)]
pub struct Cluster {
    /// Envoy cluster name.
    pub name: String,
    /// Endpoint.
    pub addr: SocketAddr,
    /// Source IP for upstream connections.
    pub bind_ip: std::net::IpAddr,
    /// TLS or not.
    pub connector: Connector,
    pool: Arc<Mutex<Vec<Pooled>>>,
}

impl Cluster {
    /// A cluster with an empty pool.
    pub fn new(
        name: String,
        addr: SocketAddr,
        bind_ip: std::net::IpAddr,
        connector: Connector,
    ) -> Self {
        Self {
            name,
            addr,
            bind_ip,
            connector,
            pool: Arc::default(),
        }
    }

    fn take(&self) -> Option<Pooled> {
        self.pool.lock().ok().and_then(|mut p| p.pop())
    }

    fn put(&self, c: Pooled) {
        if let Ok(mut p) = self.pool.lock()
            && p.len() < 64
        {
            p.push(c);
        }
    }

    /// Open a new upstream connection, logging like Envoy's connection_impl / ssl_socket.
    async fn open(&self, envoy: &Envoy) -> Result<Pooled, (u64, io::Error)> {
        let id = envoy.conn_id();
        envoy.log(
            "connection",
            site::CONNECTING,
            Some(id),
            None,
            &format!("connecting to {}", self.addr),
        );
        envoy.log(
            "connection",
            site::CONNECTING,
            Some(id),
            None,
            "connection in progress",
        );
        let tcp = connect_from(self.bind_ip, self.addr)
            .await
            .map_err(|e| (id, e))?;
        let local = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
        envoy.log("connection", site::CONNECTED, Some(id), None, "connected");
        let io: Box<dyn Io> = match &self.connector {
            Connector::Plain => Box::new(tcp),
            Connector::Tls(cfg, sni) => {
                let name =
                    ServerName::try_from(sni.clone()).map_err(|e| (id, io::Error::other(e)))?;
                // Newer Envoy logs the handshake only at trace level.
                let legacy = envoy.layout() == EnvoyLayout::Istio16;
                if legacy {
                    envoy.log(
                        "connection",
                        site::SSL_EXPECT,
                        Some(id),
                        None,
                        "handshake expecting read",
                    );
                }
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| (id, e))?;
                if legacy {
                    envoy.log(
                        "connection",
                        site::SSL_DONE,
                        Some(id),
                        None,
                        "handshake complete",
                    );
                }
                Box::new(tls)
            }
        };
        Ok(Pooled { io, id, local })
    }
}

/// Per-listener facts used in log lines.
#[derive(Clone)]
struct Downstream {
    id: u64,
    local: String,
    remote: String,
    sni: String,
}

/// Stream ids: random-looking 64-bit values, as Envoy prints them.
fn stream_id(counter: &AtomicU64) -> u64 {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B;
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 1
}

/// Run an HTTP connection manager over `down`: read requests (after replaying `prefix`), route
/// them to `cluster` over pooled connections, write responses, and log access rows.
#[allow(clippy::too_many_arguments)]
async fn http_chain<D: Io>(
    envoy: &Envoy,
    mut down: D,
    prefix: Vec<u8>,
    ds: &Downstream,
    cluster: &Cluster,
    route: &str,
    deadline: Instant,
    streams: &AtomicU64,
) -> D {
    let mut reader = Reader::with_prefix(prefix);
    // Bounded by the deadline and a request cap per connection.
    for _ in 0..100_000 {
        let req = match tokio::time::timeout_at(deadline, reader.read_message(&mut down)).await {
            Ok(Ok(r)) => r,
            Ok(Err(ReadError::Closed))
            | Ok(Err(ReadError::Truncated))
            | Ok(Err(ReadError::Io(_))) => {
                envoy.remote_close(ds.id);
                envoy.close_socket(ds.id, 0);
                break;
            }
            Ok(Err(ReadError::Protocol(what))) => {
                envoy.log(
                    "http",
                    site::HCM,
                    Some(ds.id),
                    None,
                    &format!("dispatch error: http/1.1 protocol error: {what}"),
                );
                envoy.log(
                    "connection",
                    site::CLOSING,
                    Some(ds.id),
                    None,
                    "closing data_to_write=0 type=2",
                );
                envoy.close_socket(ds.id, 1);
                break;
            }
            Err(_) => break,
        };
        // START_TIME and DURATION count from the request, not from the keep-alive idle wait.
        let started = now();
        let t0 = Instant::now();
        let sid = stream_id(streams);
        let (method, path) = req.method_path();
        envoy.log("http", site::HCM, Some(ds.id), Some(sid), "new stream");
        envoy.log(
            "router",
            site::ROUTER,
            Some(ds.id),
            Some(sid),
            &format!("cluster '{}' match for URL '{}'", cluster.name, path),
        );
        let mut row = AccessRow {
            start: started,
            request: Some((method, path)),
            code: 0,
            flags: "",
            details: String::new(),
            transport_failure: String::new(),
            bytes_received: req.body.len() as u64,
            bytes_sent: 0,
            duration_ms: 0,
            upstream_service_time: None,
            user_agent: req.header("user-agent").unwrap_or("").to_string(),
            request_id: req.header("x-request-id").unwrap_or("").to_string(),
            authority: req.header("host").unwrap_or("").to_string(),
            upstream_host: cluster.addr.to_string(),
            cluster: cluster.name.clone(),
            upstream_local: String::new(),
            downstream_local: ds.local.clone(),
            downstream_remote: ds.remote.clone(),
            sni: ds.sni.clone(),
            route: route.to_string(),
        };
        let close_after = req.wants_close();
        let up = match cluster.take() {
            Some(p) => {
                envoy.log(
                    "pool",
                    site::HTTP_POOL,
                    Some(p.id),
                    None,
                    "using existing connection",
                );
                Ok(p)
            }
            None => {
                envoy.log(
                    "pool",
                    site::HTTP_POOL,
                    None,
                    None,
                    "creating a new connection",
                );
                cluster.open(envoy).await
            }
        };
        let (resp, keep) = match up {
            Err((up_id, e)) => {
                envoy.log(
                    "connection",
                    site::CONNECTING,
                    Some(up_id),
                    None,
                    &format!("delayed connect error: {}", e.raw_os_error().unwrap_or(111)),
                );
                envoy.log(
                    "router",
                    site::ROUTER_RESET,
                    Some(ds.id),
                    Some(sid),
                    "upstream reset: reset reason connection failure",
                );
                row.flags = "UF";
                row.details = "upstream_reset_before_response_started{connection_failure}".into();
                (
                    local_reply(
                        envoy,
                        ds.id,
                        sid,
                        503,
                        "connection failure",
                        "connection failure",
                    ),
                    None,
                )
            }
            Ok(mut p) => {
                row.upstream_local = p.local.clone();
                envoy.log(
                    "pool",
                    site::HTTP_POOL,
                    Some(p.id),
                    None,
                    "attaching to next request",
                );
                envoy.log("router", site::ROUTER, Some(ds.id), Some(sid), "pool ready");
                let bytes = req.to_bytes();
                let sent = p.io.write_all(&bytes).await;
                let mut ur = Reader::with_prefix(Vec::new());
                let got = match sent {
                    Ok(()) => tokio::time::timeout_at(deadline, ur.read_message(&mut p.io))
                        .await
                        .ok(),
                    Err(e) => Some(Err(ReadError::Io(e))),
                };
                match got {
                    Some(Ok(resp)) => {
                        envoy.log(
                            "client",
                            site::CODEC_CLIENT,
                            Some(p.id),
                            None,
                            "response complete",
                        );
                        row.code = resp.status();
                        row.details = "via_upstream".into();
                        row.upstream_service_time = Some(t0.elapsed().as_millis() as u64);
                        let keep = !resp.wants_close() && ur.buffered() == 0;
                        (resp, keep.then_some(p))
                    }
                    _ => {
                        envoy.remote_close(p.id);
                        envoy.close_socket(p.id, 0);
                        envoy.log(
                            "client",
                            site::CODEC_CLIENT,
                            Some(p.id),
                            None,
                            "disconnect. resetting 1 pending requests",
                        );
                        envoy.log(
                            "client",
                            site::CODEC_CLIENT,
                            Some(p.id),
                            None,
                            "request reset",
                        );
                        envoy.log(
                            "router",
                            site::ROUTER_RESET,
                            Some(ds.id),
                            Some(sid),
                            "upstream reset: reset reason connection termination",
                        );
                        row.flags = "UC";
                        row.details =
                            "upstream_reset_before_response_started{connection_termination}".into();
                        (
                            local_reply(
                                envoy,
                                ds.id,
                                sid,
                                503,
                                "connection termination",
                                "connection termination",
                            ),
                            None,
                        )
                    }
                }
            }
        };
        let out = resp.to_bytes();
        row.code = resp.status();
        row.bytes_sent = resp.body.len() as u64;
        let wrote = down.write_all(&out).await;
        row.duration_ms = t0.elapsed().as_millis() as u64;
        envoy.access_log(&row);
        if let Some(p) = keep {
            cluster.put(p);
        }
        if wrote.is_err() || close_after {
            envoy.log(
                "connection",
                site::CLOSING,
                Some(ds.id),
                None,
                "closing data_to_write=0 type=1",
            );
            envoy.close_socket(ds.id, 1);
            break;
        }
    }
    envoy.cleanup(ds.id);
    down
}

fn local_reply(
    envoy: &Envoy,
    c: u64,
    s: u64,
    code: u16,
    reason: &str,
    detail: &str,
) -> http::Message {
    envoy.log(
        "http",
        site::LOCAL_REPLY,
        Some(c),
        Some(s),
        &format!(
            "Sending local reply with details upstream_reset_before_response_started{{{}}}",
            detail
        ),
    );
    http::Message {
        first_line: format!("HTTP/1.1 {code} Service Unavailable"),
        headers: vec![
            ("content-type".into(), "text/plain".into()),
            ("server".into(), "envoy".into()),
        ],
        body: reset_body(reason).into_bytes(),
    }
}

/// Result of a byte pipe.
struct PipeEnd {
    down_to_up: u64,
    up_to_down: u64,
    upstream_reset: bool,
    upstream_closed_first: bool,
}

/// Copy bytes both ways until one side ends (bounded by `deadline`).
async fn pipe<D: AsyncRead + AsyncWrite + Unpin, U: AsyncRead + AsyncWrite + Unpin>(
    down: &mut D,
    up: &mut U,
    prefix: &[u8],
    deadline: Instant,
) -> PipeEnd {
    let mut end = PipeEnd {
        down_to_up: 0,
        up_to_down: 0,
        upstream_reset: false,
        upstream_closed_first: false,
    };
    if !prefix.is_empty() {
        if up.write_all(prefix).await.is_err() {
            end.upstream_reset = true;
            end.upstream_closed_first = true;
            return end;
        }
        end.down_to_up += prefix.len() as u64;
    }
    let (mut dr, mut dw) = tokio::io::split(down);
    let (mut ur, mut uw) = tokio::io::split(up);
    let d2u = AtomicU64::new(0);
    let u2d = AtomicU64::new(0);
    let a = copy_count(&mut dr, &mut uw, &d2u);
    let b = copy_count(&mut ur, &mut dw, &u2d);
    tokio::pin!(a, b);
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    tokio::select! {
        r = &mut b => {
            end.upstream_closed_first = true;
            end.upstream_reset = matches!(r, Err(Side::Read(ref e)) if e.kind() == io::ErrorKind::ConnectionReset);
        }
        r = &mut a => {
            if matches!(r, Err(Side::Write(_))) {
                end.upstream_closed_first = true;
                end.upstream_reset = true;
            } else {
                // Downstream finished (upstream already half-closed): let the response drain briefly.
                let _ = tokio::time::timeout(Duration::from_millis(500), &mut b).await;
            }
        }
        () = &mut sleep => {}
    }
    end.down_to_up += d2u.load(Ordering::Relaxed);
    end.up_to_down = u2d.load(Ordering::Relaxed);
    end
}

enum Side {
    Read(io::Error),
    Write(#[allow(dead_code)] io::Error),
}

async fn copy_count<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut R,
    w: &mut W,
    count: &AtomicU64,
) -> Result<(), Side> {
    let mut buf = vec![0u8; 16 * 1024];
    // Bounded: ends at EOF or error; the caller bounds it in time.
    loop {
        let n = r.read(&mut buf).await.map_err(Side::Read)?;
        if n == 0 {
            // Propagate the half-close, as tcp_proxy does.
            let _ = w.shutdown().await;
            return Ok(());
        }
        w.write_all(buf.get(..n).unwrap_or(&[]))
            .await
            .map_err(Side::Write)?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The client sidecar of one pod.
#[derive(Clone)]
pub struct ClientSidecar {
    /// Its Envoy.
    pub envoy: Envoy,
    /// Knobs.
    pub knobs: SidecarKnobs,
    /// Pod IP (source of upstream connections).
    pub pod_ip: std::net::IpAddr,
    /// Deadline of the run.
    pub deadline: Instant,
    streams: Arc<AtomicU64>,
}

/// Per-service upstream clusters of the client sidecar.
#[derive(Clone)]
pub struct OutboundRoute {
    /// The service.
    pub svc: Service,
    /// mTLS HTTP cluster.
    pub http: Cluster,
    /// mTLS TCP config (ALPN istio-peer-exchange).
    pub tcp_tls: Arc<rustls::ClientConfig>,
}

enum Sniff {
    Http,
    NotHttp,
    Timeout,
    Closed,
}

impl ClientSidecar {
    /// A client sidecar.
    pub fn new(
        envoy: Envoy,
        knobs: SidecarKnobs,
        pod_ip: std::net::IpAddr,
        deadline: Instant,
    ) -> Self {
        Self {
            envoy,
            knobs,
            pod_ip,
            deadline,
            streams: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Serve one outbound listener (one per service) until the deadline.
    pub async fn serve(self, listener: TcpListener, route: OutboundRoute) {
        // Bounded by the deadline (the caller also aborts the task at the end of the run).
        while let Ok(Ok((s, peer))) =
            tokio::time::timeout_at(self.deadline, listener.accept()).await
        {
            let me = self.clone();
            let route = route.clone();
            let local = listener.local_addr().ok();
            tokio::spawn(async move { me.handle(s, peer, local, route).await });
        }
    }

    async fn handle(
        &self,
        mut s: TcpStream,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        route: OutboundRoute,
    ) {
        let _ = s.set_nodelay(true);
        let accepted = Instant::now();
        let start_ts = now();
        let worker = self.envoy.worker();
        let e = &worker;
        let legacy = e.layout() == EnvoyLayout::Istio16;
        if legacy {
            e.listener_filters_accepted();
            e.log(
                "filter",
                site::HTTP_INSPECTOR,
                None,
                None,
                "http inspector: new connection accepted",
            );
        }
        // Sniff: read (not peek, to avoid busy-spinning) until the first '\n', replaying later.
        let mut buf = Vec::with_capacity(1024);
        let sniff = {
            let read_line = async {
                let mut chunk = [0u8; 2048];
                // Bounded by the 8 KiB cap (Envoy's inspector has a max too).
                loop {
                    if let Some(p) = memchr_nl(&buf) {
                        let line = buf.get(..p).unwrap_or(&[]);
                        return if http::is_request_line(line) {
                            Sniff::Http
                        } else {
                            Sniff::NotHttp
                        };
                    }
                    if buf.first().is_some_and(|b| *b == 0x16) || buf.len() > 8192 {
                        return Sniff::NotHttp;
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return Sniff::Closed,
                        Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                    }
                }
            };
            let limit = match self.knobs.detection_timeout {
                Some(t) => (accepted + t).min(self.deadline),
                None => self.deadline,
            };
            // `timeout_at` polls the read first, so bytes already there beat an expired timer.
            match tokio::time::timeout_at(limit, read_line).await {
                Ok(v) => v,
                Err(_) if self.knobs.detection_timeout.is_some() => Sniff::Timeout,
                Err(_) => Sniff::Closed,
            }
        };
        let ms = self.knobs.detection_timeout.map_or(0, |d| d.as_millis());
        match sniff {
            Sniff::Timeout => {
                e.listener_filter_timeout(ms);
            }
            Sniff::Http => {
                e.log(
                    "filter",
                    site::HTTP_SET,
                    None,
                    None,
                    "http inspector: set application protocol to http/1.1",
                );
            }
            Sniff::NotHttp | Sniff::Closed => {}
        }
        if matches!(sniff, Sniff::Closed) {
            return;
        }
        let id = e.conn_id();
        let new_msg = if legacy {
            "new connection".to_string()
        } else {
            format!("new connection from {peer}")
        };
        e.log("conn_handler", site::NEW_CONN, Some(id), None, &new_msg);
        let ds = Downstream {
            id,
            local: local.map(|a| a.to_string()).unwrap_or_default(),
            remote: peer.to_string(),
            sni: String::new(),
        };
        if matches!(sniff, Sniff::Http) {
            let _ = http_chain(
                e,
                s,
                buf,
                &ds,
                &route.http,
                "default",
                self.deadline,
                &self.streams,
            )
            .await;
            return;
        }
        // TCP chains.
        let passthrough = route.svc.explicit_http() && self.knobs.fallback == Fallback::Passthrough;
        let cluster_name = if passthrough {
            "PassthroughCluster".to_string()
        } else {
            route.svc.outbound_cluster()
        };
        e.log(
            "filter",
            site::TCP_PROXY,
            Some(id),
            None,
            "new tcp proxy session",
        );
        e.log(
            "filter",
            site::TCP_PROXY,
            Some(id),
            None,
            &format!("Creating connection to cluster {cluster_name}"),
        );
        e.log(
            "pool",
            site::TCP_POOL,
            None,
            None,
            "creating a new connection",
        );
        let connector = if passthrough {
            Connector::Plain
        } else {
            Connector::Tls(route.tcp_tls.clone(), route.svc.sni())
        };
        let cluster = Cluster::new(
            cluster_name.clone(),
            route.svc.inbound,
            self.pod_ip,
            connector,
        );
        let mut row = AccessRow {
            start: start_ts,
            request: None,
            code: 0,
            flags: "",
            details: String::new(),
            transport_failure: String::new(),
            bytes_received: 0,
            bytes_sent: 0,
            duration_ms: 0,
            upstream_service_time: None,
            user_agent: String::new(),
            request_id: String::new(),
            authority: String::new(),
            upstream_host: route.svc.inbound.to_string(),
            cluster: cluster_name,
            upstream_local: String::new(),
            downstream_local: ds.local.clone(),
            downstream_remote: ds.remote.clone(),
            sni: String::new(),
            route: String::new(),
        };
        let mut up = match cluster.open(e).await {
            Ok(p) => p,
            Err((up_id, err)) => {
                e.log(
                    "connection",
                    site::CONNECTING,
                    Some(up_id),
                    None,
                    &format!(
                        "delayed connect error: {}",
                        err.raw_os_error().unwrap_or(111)
                    ),
                );
                row.flags = "UF";
                row.duration_ms = accepted.elapsed().as_millis() as u64;
                e.access_log(&row);
                e.close_socket(id, 1);
                e.cleanup(id);
                return;
            }
        };
        row.upstream_local = up.local.clone();
        e.log(
            "filter",
            site::TCP_UPSTREAM,
            Some(id),
            None,
            "TCP:onUpstreamEvent(), requestedServerName: ",
        );
        let end = pipe(&mut s, &mut up.io, &buf, self.deadline).await;
        row.bytes_received = end.down_to_up;
        row.bytes_sent = end.up_to_down;
        if end.upstream_closed_first {
            // Old Envoy logs FIN and RST alike as "remote close".
            e.remote_close(up.id);
            e.close_socket(up.id, 0);
            e.closing(id);
            e.close_socket(id, 1);
        } else {
            e.remote_close(id);
            e.close_socket(id, 0);
            e.closing(up.id);
            e.close_socket(up.id, 1);
        }
        e.cleanup(id);
        row.duration_ms = accepted.elapsed().as_millis() as u64;
        e.access_log(&row);
        let kind = if end.upstream_reset {
            self.knobs.downstream_close_after_reset
        } else {
            CloseKind::Fin
        };
        drop(up);
        if kind == CloseKind::Fin {
            let _ = s.shutdown().await;
        }
        close_with(s, kind);
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

/// The server sidecar of one pod.
#[derive(Clone)]
pub struct ServerSidecar {
    /// Its Envoy.
    pub envoy: Envoy,
    /// Knobs.
    pub knobs: SidecarKnobs,
    /// The service it fronts.
    pub svc: Service,
    /// TLS server config.
    pub tls: Arc<rustls::ServerConfig>,
    /// HTTP cluster to the app (pooled).
    pub app: Cluster,
    /// Deadline of the run.
    pub deadline: Instant,
    streams: Arc<AtomicU64>,
}

/// BoringSSL's verdict on the first 5 bytes of a connection on a TLS chain.
pub fn boringssl_reject(first5: &[u8]) -> Option<(u32, &'static str)> {
    if first5.starts_with(b"GET ")
        || first5.starts_with(b"POST ")
        || first5.starts_with(b"HEAD ")
        || first5.starts_with(b"PUT ")
    {
        Some((268_435_612, "HTTP_REQUEST"))
    } else if first5.starts_with(b"CONNE") {
        Some((268_435_611, "HTTPS_PROXY_REQUEST"))
    } else if first5.first() == Some(&0x16) && first5.get(1) == Some(&0x03) {
        None
    } else {
        Some((268_435_703, "WRONG_VERSION_NUMBER"))
    }
}

impl ServerSidecar {
    /// A server sidecar.
    pub fn new(
        envoy: Envoy,
        knobs: SidecarKnobs,
        svc: Service,
        tls: Arc<rustls::ServerConfig>,
        deadline: Instant,
    ) -> Self {
        let app = Cluster::new(
            svc.inbound_cluster(),
            svc.app,
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            Connector::Plain,
        );
        Self {
            envoy,
            knobs,
            svc,
            tls,
            app,
            deadline,
            streams: Arc::new(AtomicU64::new(7)),
        }
    }

    /// Serve the inbound listener until the deadline.
    pub async fn serve(self, listener: TcpListener) {
        while let Ok(Ok((s, peer))) =
            tokio::time::timeout_at(self.deadline, listener.accept()).await
        {
            let me = self.clone();
            let local = listener.local_addr().ok();
            tokio::spawn(async move { me.handle(s, peer, local).await });
        }
    }

    async fn handle(&self, mut s: TcpStream, peer: SocketAddr, local: Option<SocketAddr>) {
        let _ = s.set_nodelay(true);
        let worker = self.envoy.worker();
        let e = &worker;
        let accepted = Instant::now();
        let start_ts = now();
        let legacy = e.layout() == EnvoyLayout::Istio16;
        if legacy {
            e.listener_filters_accepted();
        }
        // TLS detection by peeking: one peek returns as soon as any byte is there (no loop).
        let mut first = [0u8; 1];
        let peeked = tokio::time::timeout(
            self.knobs
                .inbound_detection_timeout
                .min(self.deadline.saturating_duration_since(accepted)),
            s.peek(&mut first),
        )
        .await;
        let is_tls = match peeked {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => first[0] == 0x16,
            Err(_) => {
                let ms = self.knobs.inbound_detection_timeout.as_millis();
                e.listener_filter_timeout(ms);
                false
            }
        };
        let ds_local = local.map(|a| a.to_string()).unwrap_or_default();
        if is_tls {
            self.handle_tls(e, s, peer, ds_local, accepted, legacy)
                .await;
            return;
        }
        if legacy {
            e.log(
                "filter",
                site::HTTP_INSPECTOR,
                None,
                None,
                "http inspector: new connection accepted",
            );
        }
        match (self.knobs.mtls, self.knobs.strict_reject) {
            (MtlsMode::Strict, StrictReject::NoFilterChain) => {
                e.log(
                    "conn_handler",
                    site::NO_CHAIN,
                    None,
                    None,
                    &format!("closing connection from {peer}: no matching filter chain found"),
                );
                let row = AccessRow {
                    start: start_ts,
                    request: None,
                    code: 0,
                    flags: "NR",
                    details: "filter_chain_not_found".into(),
                    transport_failure: String::new(),
                    bytes_received: 0,
                    bytes_sent: 0,
                    duration_ms: accepted.elapsed().as_millis() as u64,
                    upstream_service_time: None,
                    user_agent: String::new(),
                    request_id: String::new(),
                    authority: String::new(),
                    upstream_host: String::new(),
                    cluster: String::new(),
                    upstream_local: String::new(),
                    downstream_local: ds_local,
                    downstream_remote: peer.to_string(),
                    sni: String::new(),
                    route: String::new(),
                };
                e.access_log(&row);
                // Only peeked: the request is still queued, so this close is an RST.
                self.reject_close(s).await;
            }
            (MtlsMode::Strict, StrictReject::TlsHttpRequest) => {
                let id = e.conn_id();
                let new_msg = if legacy {
                    "new connection".to_string()
                } else {
                    format!("new connection from {peer}")
                };
                e.log("conn_handler", site::NEW_CONN, Some(id), None, &new_msg);
                // BoringSSL's first read asks for exactly the 5-byte record header.
                let mut five = [0u8; 5];
                let got = tokio::time::timeout_at(self.deadline, s.read_exact(&mut five)).await;
                if !matches!(got, Ok(Ok(_))) {
                    e.remote_close(id);
                    e.close_socket(id, 0);
                    e.cleanup(id);
                    return;
                }
                let (code, reason) =
                    boringssl_reject(&five).unwrap_or((268_435_681, "UNEXPECTED_RECORD"));
                if legacy {
                    e.legacy_tls_error(id, code, reason);
                } else {
                    e.log(
                        "connection",
                        site::SSL_TLS_ERROR,
                        Some(id),
                        None,
                        &format!("remote address:{peer},TLS_error:|{code}:SSL routines:OPENSSL_internal:{reason}:TLS_error_end"),
                    );
                }
                e.close_socket(id, 0);
                e.cleanup(id);
                self.reject_close(s).await;
            }
            (MtlsMode::Permissive, _) => {
                let id = e.conn_id();
                e.log(
                    "conn_handler",
                    site::NEW_CONN,
                    Some(id),
                    None,
                    "new connection",
                );
                let ds = Downstream {
                    id,
                    local: ds_local,
                    remote: peer.to_string(),
                    sni: String::new(),
                };
                let _ = http_chain(
                    e,
                    s,
                    Vec::new(),
                    &ds,
                    &self.app,
                    "default",
                    self.deadline,
                    &self.streams,
                )
                .await;
            }
        }
    }

    async fn reject_close(&self, mut s: TcpStream) {
        if self.knobs.reject_close == CloseKind::Fin {
            // Drain what is queued (bounded) so the close is a FIN, as a setting.
            let mut sink = [0u8; 4096];
            for _ in 0..64 {
                match tokio::time::timeout(Duration::from_millis(20), s.read(&mut sink)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => break,
                }
            }
            let _ = s.shutdown().await;
        }
        // A plain close: with unread bytes queued the kernel answers with RST.
        drop(s);
    }

    async fn handle_tls(
        &self,
        e: &Envoy,
        s: TcpStream,
        peer: SocketAddr,
        ds_local: String,
        accepted: Instant,
        legacy: bool,
    ) {
        let lazy = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), s);
        let Ok(Ok(start)) = tokio::time::timeout_at(self.deadline, lazy).await else {
            return;
        };
        let hello = start.client_hello();
        let sni = hello.server_name().unwrap_or("").to_string();
        let alpn: Vec<Vec<u8>> = hello
            .alpn()
            .map(|a| a.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        if legacy {
            e.log(
                "filter",
                site::TLS_SNI,
                None,
                None,
                &format!("tls:onServerName(), requestedServerName: {sni}"),
            );
            e.log(
                "filter",
                site::HTTP_INSPECTOR,
                None,
                None,
                "http inspector: new connection accepted",
            );
        }
        let id = e.conn_id();
        let new_msg = if legacy {
            "new connection".to_string()
        } else {
            format!("new connection from {peer}")
        };
        e.log("conn_handler", site::NEW_CONN, Some(id), None, &new_msg);
        if legacy {
            e.log(
                "connection",
                site::SSL_EXPECT,
                Some(id),
                None,
                "handshake expecting read",
            );
            e.log(
                "connection",
                site::SSL_EXPECT,
                Some(id),
                None,
                "handshake expecting read",
            );
        }
        let tls = match tokio::time::timeout_at(self.deadline, start.into_stream(self.tls.clone()))
            .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(err)) => {
                let reason = if err.to_string().contains("certificate") {
                    (268_435_581u32, "CERTIFICATE_VERIFY_FAILED")
                } else {
                    (268_435_593, "DECODE_ERROR")
                };
                if legacy {
                    e.legacy_tls_error(id, reason.0, reason.1);
                }
                e.close_socket(id, 0);
                e.cleanup(id);
                return;
            }
            Err(_) => return,
        };
        if legacy {
            e.log(
                "connection",
                site::SSL_DONE,
                Some(id),
                None,
                "handshake complete",
            );
        }
        let ds = Downstream {
            id,
            local: ds_local.clone(),
            remote: peer.to_string(),
            sni: sni.clone(),
        };
        let is_http = alpn
            .iter()
            .any(|p| p.as_slice() == b"istio-http/1.1" || p.as_slice() == b"istio-http/1.0");
        if is_http {
            let _ = http_chain(
                e,
                tls,
                Vec::new(),
                &ds,
                &self.app,
                "default",
                self.deadline,
                &self.streams,
            )
            .await;
            return;
        }
        // TCP over mTLS: one app connection per downstream connection.
        let cluster = self.svc.inbound_cluster();
        e.log(
            "filter",
            site::TCP_PROXY,
            Some(id),
            None,
            "new tcp proxy session",
        );
        e.log(
            "filter",
            site::TCP_PROXY,
            Some(id),
            None,
            &format!("Creating connection to cluster {cluster}"),
        );
        let app = Cluster::new(
            cluster.clone(),
            self.svc.app,
            self.app.bind_ip,
            Connector::Plain,
        );
        let mut tls = tls;
        let start_ts = now();
        let Ok(mut up) = app.open(e).await else {
            e.close_socket(id, 1);
            return;
        };
        let end = pipe(&mut tls, &mut up.io, &[], self.deadline).await;
        e.remote_close(if end.upstream_closed_first { up.id } else { id });
        e.cleanup(id);
        let row = AccessRow {
            start: start_ts,
            request: None,
            code: 0,
            flags: "",
            details: String::new(),
            transport_failure: String::new(),
            bytes_received: end.down_to_up,
            bytes_sent: end.up_to_down,
            duration_ms: accepted.elapsed().as_millis() as u64,
            upstream_service_time: None,
            user_agent: String::new(),
            request_id: String::new(),
            authority: String::new(),
            upstream_host: self.svc.app.to_string(),
            cluster,
            upstream_local: up.local.clone(),
            downstream_local: ds_local,
            downstream_remote: peer.to_string(),
            sni,
            route: String::new(),
        };
        e.access_log(&row);
        let _ = tls.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boringssl_verdicts() {
        assert_eq!(
            boringssl_reject(b"GET /"),
            Some((268_435_612, "HTTP_REQUEST"))
        );
        assert_eq!(
            boringssl_reject(b"POST "),
            Some((268_435_612, "HTTP_REQUEST"))
        );
        assert_eq!(
            boringssl_reject(b"CONNE"),
            Some((268_435_611, "HTTPS_PROXY_REQUEST"))
        );
        assert_eq!(boringssl_reject(&[0x16, 0x03, 0x01, 0x00, 0x10]), None);
        assert_eq!(
            boringssl_reject(b"\x00\x01\x02\x03\x04"),
            Some((268_435_703, "WRONG_VERSION_NUMBER"))
        );
        assert_eq!(
            boringssl_reject(b""),
            Some((268_435_703, "WRONG_VERSION_NUMBER"))
        );
    }

    #[test]
    fn reset_body_is_95_bytes() {
        assert_eq!(reset_body("connection termination").len(), 95);
    }
}
