//! The lab's applications: minimal HTTP/1.1 (or server-first) servers, and a Java-like client
//! with a keep-alive pool and a seeded pause between `connect()` and the first request byte.
//!
//! The client logs every failure as it really saw it: the OS error (`Connection reset by peer
//! (os error 104)`) is recorded for the ground truth, and the app log carries what a Java
//! HttpURLConnection/Jersey client would print for that OS error, in the logstash/logback JSON
//! field set of the founding incident. Mapping (documented in the crate docs too):
//!
//! | what the socket said | Java root cause written to `stack_trace` |
//! |---|---|
//! | ECONNRESET on read | `java.net.SocketException: Connection reset` |
//! | ECONNRESET on write | `java.net.SocketException: Connection reset by peer` |
//! | EPIPE on write | `java.net.SocketException: Broken pipe (Write failed)` |
//! | EOF before a response | `java.net.SocketException: Unexpected end of file from server` |
//! | ECONNREFUSED | `java.net.ConnectException: Connection refused (Connection refused)` |
//! | read timeout | `java.net.SocketTimeoutException: Read timed out` |
//! | HTTP 503 from a sidecar | `javax.ws.rs.ServiceUnavailableException: HTTP 503 Service Unavailable` |
//!
//! The client does not model HttpURLConnection's silent retry. This module must not know which
//! cause a scenario reproduces.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::http::{Message, ReadError, Reader};
use crate::logs::{Sink, now, ts_millis};
use crate::sidecar::connect_from;

/// Pause between `connect()` returning and the first request byte: with probability
/// `stall_probability` a stall uniform in `[stall_min_ms, stall_max_ms]`, otherwise uniform in
/// `[0, base_max_ms]` (dataplane.md §5.6). Models GC pauses and CPU throttling.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DelayDist {
    /// Probability of a stall.
    pub stall_probability: f64,
    /// Shortest stall (ms).
    pub stall_min_ms: f64,
    /// Longest stall (ms).
    pub stall_max_ms: f64,
    /// Longest non-stall pause (ms).
    pub base_max_ms: f64,
}

impl DelayDist {
    /// No pause at all.
    pub const NONE: DelayDist = DelayDist {
        stall_probability: 0.0,
        stall_min_ms: 0.0,
        stall_max_ms: 0.0,
        base_max_ms: 0.0,
    };

    /// Draw one pause in ms.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        let u: f64 = rng.random();
        if u < self.stall_probability {
            self.stall_min_ms
                + rng.random::<f64>() * (self.stall_max_ms - self.stall_min_ms).max(0.0)
        } else {
            rng.random::<f64>() * self.base_max_ms.max(0.0)
        }
    }

    /// P(pause > t_ms), from the distribution (not from samples).
    pub fn prob_exceeds(&self, t_ms: f64) -> f64 {
        let tail = |lo: f64, hi: f64| {
            if hi <= lo {
                if lo > t_ms { 1.0 } else { 0.0 }
            } else {
                ((hi - t_ms) / (hi - lo)).clamp(0.0, 1.0)
            }
        };
        let p = self.stall_probability.clamp(0.0, 1.0);
        p * tail(self.stall_min_ms, self.stall_max_ms) + (1.0 - p) * tail(0.0, self.base_max_ms)
    }
}

/// Write one logstash-logback JSON line in the seed's field set.
#[allow(clippy::too_many_arguments)]
pub fn app_log(
    sink: &Sink,
    level: &str,
    logger: &str,
    message: &str,
    thread: &str,
    request_id: &str,
    stack_trace: Option<&str>,
) {
    let mut obj = serde_json::Map::new();
    obj.insert("timestamp".into(), ts_millis(now()).into());
    obj.insert("level".into(), level.into());
    obj.insert("logger_name".into(), logger.into());
    obj.insert("message".into(), message.into());
    obj.insert("process".into(), "NA".into());
    obj.insert("requestId".into(), request_id.into());
    obj.insert("serviceArchPath".into(), "NA".into());
    if let Some(st) = stack_trace {
        obj.insert("stack_trace".into(), st.into());
    }
    obj.insert("thread_name".into(), thread.into());
    obj.insert("x-correlation-id".into(), format!("{request_id}-1").into());
    sink.push(serde_json::Value::Object(obj).to_string());
}

/// A server application.
#[derive(Clone)]
pub struct ServerApp {
    /// Service name (`service-b`).
    pub name: String,
    /// Its container log.
    pub sink: Sink,
    /// Close keep-alive connections idle for this long (Node.js-like `keepAliveTimeout`).
    pub idle_timeout: Option<Duration>,
    /// Speak first (MySQL-like greeting) instead of HTTP.
    pub server_first: bool,
    /// Deadline of the run.
    pub deadline: Instant,
}

impl ServerApp {
    /// Serve until the deadline.
    pub async fn serve(self, listener: TcpListener) {
        let mut n = 0u64;
        while let Ok(Ok((s, _))) = tokio::time::timeout_at(self.deadline, listener.accept()).await {
            n += 1;
            let me = self.clone();
            tokio::spawn(async move { me.handle(s, n).await });
        }
    }

    async fn handle(&self, mut s: TcpStream, conn_no: u64) {
        let _ = s.set_nodelay(true);
        let thread = format!("http-nio-8080-exec-{}", conn_no % 10 + 1);
        let logger = format!("c.e.{}.web.ApiController", self.name.replace('-', ""));
        if self.server_first {
            let _ = s
                .write_all(b"J\x00\x00\x00\x0a5.7.31-lab\x00greeting\n")
                .await;
            let mut buf = [0u8; 1024];
            if let Ok(Ok(n)) = tokio::time::timeout_at(self.deadline, s.read(&mut buf)).await
                && n > 0
            {
                let _ = s.write_all(b"OK\n").await;
                app_log(
                    &self.sink,
                    "INFO",
                    &logger,
                    "query served",
                    &thread,
                    "-",
                    None,
                );
            }
            return;
        }
        let mut reader = Reader::with_prefix(Vec::new());
        // Bounded by the deadline and a per-connection request cap.
        for _ in 0..100_000 {
            let wait = match self.idle_timeout {
                Some(t) => (Instant::now() + t).min(self.deadline),
                None => self.deadline,
            };
            let req = match tokio::time::timeout_at(wait, reader.read_message(&mut s)).await {
                Ok(Ok(r)) => r,
                // Idle timeout: close the keep-alive connection (FIN), as Node/Tomcat do.
                _ => break,
            };
            let (m, p) = req.method_path();
            let rid = req.header("x-request-id").unwrap_or("-").to_string();
            app_log(
                &self.sink,
                "INFO",
                &logger,
                &format!("{m} {p} 200"),
                &thread,
                &rid,
                None,
            );
            let body = format!("{{\"service\":\"{}\",\"path\":\"{}\"}}", self.name, p);
            let resp = Message {
                first_line: "HTTP/1.1 200 OK".into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into_bytes(),
            };
            if s.write_all(&resp.to_bytes()).await.is_err() || req.wants_close() {
                break;
            }
        }
    }
}

/// Where and how the client sends its requests.
#[derive(Clone, Debug)]
pub struct Target {
    /// Service name.
    pub service: String,
    /// Address the app connects to (its sidecar's outbound listener, or the peer directly).
    pub addr: SocketAddr,
    /// `Host` header.
    pub host: String,
}

/// The client's plan.
#[derive(Clone, Debug)]
pub struct ClientPlan {
    /// App (container) name, e.g. `service-a`.
    pub name: String,
    /// Targets, used round-robin.
    pub targets: Vec<Target>,
    /// Number of requests.
    pub requests: usize,
    /// Concurrent workers (threads of a Tomcat pool).
    pub workers: usize,
    /// Pause after connect.
    pub delay: DelayDist,
    /// Keep-alive reuse.
    pub reuse: bool,
    /// Gap between a worker's requests, uniform in [lo, hi] ms.
    pub gap_ms: (f64, f64),
    /// Read timeout.
    pub read_timeout: Duration,
    /// Speak the server-first protocol instead of HTTP.
    pub server_first: bool,
    /// Source IP.
    pub bind_ip: IpAddr,
    /// Seed.
    pub seed: u64,
    /// Delay before the first request.
    pub start_after: Duration,
}

/// What one request saw (ground truth, never written to the app's own log in this form).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    /// Index of the request.
    pub index: usize,
    /// Target service.
    pub service: String,
    /// Whether it opened a new connection.
    pub new_connection: bool,
    /// Measured time from `connect()` returning to the first request write (ms), for new
    /// connections: the drawn pause plus any scheduling delay of the client.
    pub delay_ms: Option<f64>,
    /// The pause drawn from the distribution (ms), for new connections.
    pub planned_delay_ms: Option<f64>,
    /// HTTP status (0 when none).
    pub status: u16,
    /// Whether it failed.
    pub failed: bool,
    /// Failure class: `reset`, `eof`, `refused`, `timeout`, `http-503`, ...
    pub error_class: Option<String>,
    /// The OS error text as the socket reported it.
    pub os_error: Option<String>,
    /// Java root-cause line written to the app log.
    pub java_error: Option<String>,
    /// Milliseconds since the run started.
    pub at_ms: u64,
}

enum Phase {
    Connect,
    Write,
    Read,
}

fn classify(phase: &Phase, e: &io::Error) -> (&'static str, &'static str) {
    match (phase, e.kind()) {
        (_, io::ErrorKind::ConnectionRefused) => (
            "refused",
            "java.net.ConnectException: Connection refused (Connection refused)",
        ),
        (Phase::Write, io::ErrorKind::ConnectionReset) => (
            "reset",
            "java.net.SocketException: Connection reset by peer",
        ),
        (_, io::ErrorKind::ConnectionReset) => {
            ("reset", "java.net.SocketException: Connection reset")
        }
        (_, io::ErrorKind::BrokenPipe) => (
            "broken-pipe",
            "java.net.SocketException: Broken pipe (Write failed)",
        ),
        (_, io::ErrorKind::UnexpectedEof) => (
            "eof",
            "java.net.SocketException: Unexpected end of file from server",
        ),
        (Phase::Connect, io::ErrorKind::TimedOut) => (
            "timeout",
            "java.net.SocketTimeoutException: connect timed out",
        ),
        (_, io::ErrorKind::TimedOut) => {
            ("timeout", "java.net.SocketTimeoutException: Read timed out")
        }
        _ => ("io", "java.net.SocketException: Socket closed"),
    }
}

/// Java frames under the root cause, per failure class (what the JDK 11 stack looks like).
fn root_frames(class: &str) -> &'static str {
    match class {
        "refused" => {
            "\tat java.base/java.net.PlainSocketImpl.socketConnect(Native Method)\n\tat java.base/java.net.AbstractPlainSocketImpl.doConnect(Unknown Source)\n\tat java.base/java.net.Socket.connect(Unknown Source)\n\tat java.base/sun.net.NetworkClient.doConnect(Unknown Source)\n\tat java.base/sun.net.www.http.HttpClient.openServer(Unknown Source)\n\tat java.base/sun.net.www.protocol.http.HttpURLConnection.connect(Unknown Source)\n"
        }
        "timeout" => {
            "\tat java.base/java.net.SocketInputStream.socketRead0(Native Method)\n\tat java.base/java.net.SocketInputStream.read(Unknown Source)\n\tat java.base/java.io.BufferedInputStream.fill(Unknown Source)\n"
        }
        "http-503" => {
            "\tat org.glassfish.jersey.client.JerseyInvocation.convertToException(JerseyInvocation.java:1098)\n\tat org.glassfish.jersey.client.JerseyInvocation.translate(JerseyInvocation.java:894)\n"
        }
        _ => {
            "\tat java.base/java.net.SocketInputStream.read(Unknown Source)\n\tat java.base/java.net.SocketInputStream.read(Unknown Source)\n\tat java.base/java.io.BufferedInputStream.fill(Unknown Source)\n\tat java.base/java.io.BufferedInputStream.read1(Unknown Source)\n\tat java.base/java.io.BufferedInputStream.read(Unknown Source)\n\tat java.base/sun.net.www.http.HttpClient.parseHTTPHeader(Unknown Source)\n\tat java.base/sun.net.www.http.HttpClient.parseHTTP(Unknown Source)\n\tat java.base/sun.net.www.protocol.http.HttpURLConnection.getInputStream0(Unknown Source)\n\tat java.base/sun.net.www.protocol.http.HttpURLConnection.getInputStream(Unknown Source)\n\tat java.base/java.net.HttpURLConnection.getResponseCode(Unknown Source)\n\tat org.glassfish.jersey.client.internal.HttpUrlConnector._apply(HttpUrlConnector.java:390)\n\tat org.glassfish.jersey.client.internal.HttpUrlConnector.apply(HttpUrlConnector.java:282)\n\t... 43 common frames omitted\n"
        }
    }
}

/// A logback `stack_trace` for a failed upstream call whose root cause is `root`.
pub fn java_stack_trace(app: &str, class: &str, root: &str) -> String {
    let pkg = app.replace('-', "");
    let mut st = format!(
        "com.example.{pkg}.exception.UpstreamServiceException: Required Upstream Service unreachable\n\
         \tat com.example.{pkg}.exception.UpstreamServiceException.createError(UpstreamServiceException.java:53)\n\
         \tat com.example.{pkg}.client.DownstreamClient.call(DownstreamClient.java:88)\n\
         \tat org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1040)\n\
         \tat org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:61)\n\
         \tat java.base/java.lang.Thread.run(Unknown Source)\n"
    );
    if class == "refused"
        || class == "timeout"
        || class == "http-503"
        || class == "reset"
        || class == "eof"
        || class == "broken-pipe"
        || class == "io"
    {
        st.push_str(&format!(
            "Caused by: javax.ws.rs.ProcessingException: {root}\n\
             \tat org.glassfish.jersey.client.internal.HttpUrlConnector.apply(HttpUrlConnector.java:284)\n\
             \tat org.glassfish.jersey.client.ClientRuntime.invoke(ClientRuntime.java:278)\n\
             \tat org.glassfish.jersey.client.JerseyInvocation$Builder.get(JerseyInvocation.java:319)\n\
             \t... 32 common frames omitted\n"
        ));
    }
    st.push_str("Caused by: ");
    st.push_str(root);
    st.push('\n');
    st.push_str(root_frames(class));
    st
}

fn request_id(rng: &mut ChaCha8Rng) -> String {
    let a: u32 = rng.random();
    let b: u16 = rng.random();
    let c: u16 = rng.random();
    let d: u16 = rng.random();
    let e: u64 = rng.random::<u64>() & 0xffff_ffff_ffff;
    format!(
        "{a:08x}-{b:04x}-4{:03x}-{:04x}-{e:012x}",
        c & 0xfff,
        (d & 0x3fff) | 0x8000
    )
}

/// Run the client plan; returns one outcome per request.
pub async fn run_client(
    plan: &ClientPlan,
    sink: &Sink,
    started: Instant,
    deadline: Instant,
) -> Vec<Outcome> {
    let workers = plan.workers.max(1);
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let plan = plan.clone();
        let sink = sink.clone();
        set.spawn(async move { worker(w, workers, &plan, &sink, started, deadline).await });
    }
    let mut all = Vec::with_capacity(plan.requests);
    while let Some(r) = set.join_next().await {
        if let Ok(v) = r {
            all.extend(v);
        }
    }
    all.sort_by_key(|o| o.index);
    all
}

async fn worker(
    w: usize,
    workers: usize,
    plan: &ClientPlan,
    sink: &Sink,
    started: Instant,
    deadline: Instant,
) -> Vec<Outcome> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(plan.seed ^ ((w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let mut pool: Vec<Option<(TcpStream, Reader)>> = plan.targets.iter().map(|_| None).collect();
    let thread = format!("http-nio-8080-exec-{}", w + 1);
    let mut out = Vec::new();
    tokio::time::sleep(plan.start_after).await;
    // Bounded by the request count and the deadline.
    for index in (w..plan.requests).step_by(workers) {
        if Instant::now() >= deadline {
            break;
        }
        if index >= workers {
            let (lo, hi) = plan.gap_ms;
            let gap = lo + rng.random::<f64>() * (hi - lo).max(0.0);
            tokio::time::sleep(Duration::from_secs_f64(gap.max(0.0) / 1000.0)).await;
        }
        let ti = index % plan.targets.len().max(1);
        let Some(target) = plan.targets.get(ti) else {
            break;
        };
        let rid = request_id(&mut rng);
        let delay = plan.delay.sample(&mut rng);
        let at_ms = started.elapsed().as_millis() as u64;
        let pooled = if plan.reuse {
            pool.get_mut(ti).and_then(Option::take)
        } else {
            None
        };
        let mut measured = None;
        let res = one_request(plan, target, pooled, delay, &rid, deadline, &mut measured).await;
        let (new_connection, result) = res;
        let mut o = Outcome {
            index,
            service: target.service.clone(),
            new_connection,
            delay_ms: measured,
            planned_delay_ms: new_connection.then_some(delay),
            status: 0,
            failed: false,
            error_class: None,
            os_error: None,
            java_error: None,
            at_ms,
        };
        let logger = format!("c.e.{}.client.DownstreamClient", plan.name.replace('-', ""));
        match result {
            Ok((status, _, keep)) if status < 500 => {
                o.status = status;
                app_log(
                    sink,
                    "INFO",
                    &logger,
                    &format!(
                        "GET http://{}/api/v1/items/{index} -> {status}",
                        target.host
                    ),
                    &thread,
                    &rid,
                    None,
                );
                if let (Some(k), Some(slot)) = (keep, pool.get_mut(ti)) {
                    *slot = Some(k);
                }
            }
            Ok((status, body, _)) => {
                o.status = status;
                o.failed = true;
                o.error_class = Some("http-503".into());
                let root = format!(
                    "javax.ws.rs.ServiceUnavailableException: HTTP {status} Service Unavailable"
                );
                let st = java_stack_trace(&plan.name, "http-503", &root);
                app_log(
                    sink,
                    "ERROR",
                    "c.e.a.e.CustomExceptionHandler",
                    &format!(
                        "getMessageWithRootCause >> Exception occurred. Upstream {} returned {status}: {body}",
                        target.service
                    ),
                    &thread,
                    &rid,
                    Some(&st),
                );
                o.java_error = Some(root);
            }
            Err((phase, e)) => {
                let (class, root) = classify(&phase, &e);
                o.failed = true;
                o.error_class = Some(class.into());
                o.os_error = Some(e.to_string());
                o.java_error = Some(root.to_string());
                let st = java_stack_trace(&plan.name, class, root);
                app_log(
                    sink,
                    "ERROR",
                    "c.e.a.e.CustomExceptionHandler",
                    "getMessageWithRootCause >> Exception occurred.",
                    &thread,
                    &rid,
                    Some(&st),
                );
            }
        }
        out.push(o);
    }
    out
}

type ReqResult = Result<(u16, String, Option<(TcpStream, Reader)>), (Phase, io::Error)>;

async fn one_request(
    plan: &ClientPlan,
    target: &Target,
    pooled: Option<(TcpStream, Reader)>,
    delay_ms: f64,
    rid: &str,
    deadline: Instant,
    measured_pause: &mut Option<f64>,
) -> (bool, ReqResult) {
    let new = pooled.is_none();
    let (mut s, mut reader) = match pooled {
        Some(p) => p,
        None => {
            match tokio::time::timeout(plan.read_timeout, connect_from(plan.bind_ip, target.addr))
                .await
            {
                Ok(Ok(s)) => (s, Reader::with_prefix(Vec::new())),
                Ok(Err(e)) => return (true, Err((Phase::Connect, e))),
                Err(_) => {
                    return (
                        true,
                        Err((Phase::Connect, io::Error::from(io::ErrorKind::TimedOut))),
                    );
                }
            }
        }
    };
    let connected = Instant::now();
    if new && delay_ms > 0.0 {
        // The pause between connect() and the first write: the sniff timer is already running.
        tokio::time::sleep(Duration::from_secs_f64(delay_ms / 1000.0)).await;
    }
    let limit = (Instant::now() + plan.read_timeout).min(deadline);
    if plan.server_first {
        let mut buf = [0u8; 256];
        let r = match tokio::time::timeout_at(limit, s.read(&mut buf)).await {
            Ok(Ok(0)) => Err((Phase::Read, io::Error::from(io::ErrorKind::UnexpectedEof))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err((Phase::Read, e)),
            Err(_) => Err((Phase::Read, io::Error::from(io::ErrorKind::TimedOut))),
        };
        if let Err(e) = r {
            return (true, Err(e));
        }
        if let Err(e) = s.write_all(b"SELECT 1\n").await {
            return (true, Err((Phase::Write, e)));
        }
        return match tokio::time::timeout_at(limit, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => (true, Ok((200, String::new(), None))),
            Ok(Ok(_)) => (
                true,
                Err((Phase::Read, io::Error::from(io::ErrorKind::UnexpectedEof))),
            ),
            Ok(Err(e)) => (true, Err((Phase::Read, e))),
            Err(_) => (
                true,
                Err((Phase::Read, io::Error::from(io::ErrorKind::TimedOut))),
            ),
        };
    }
    let req = Message {
        first_line: format!("GET /api/v1/items/{} HTTP/1.1", rid.get(..8).unwrap_or("0")),
        headers: vec![
            ("host".into(), target.host.clone()),
            ("user-agent".into(), "Java/11.0.8".into()),
            ("accept".into(), "application/json".into()),
            ("x-request-id".into(), rid.to_string()),
            ("x-correlation-id".into(), format!("{rid}-1")),
        ],
        body: Vec::new(),
    };
    if new {
        *measured_pause = Some(connected.elapsed().as_secs_f64() * 1000.0);
    }
    // One write, so the request line arrives whole (TCP_NODELAY is set).
    if let Err(e) = s.write_all(&req.to_bytes()).await {
        return (new, Err((Phase::Write, e)));
    }
    match tokio::time::timeout_at(limit, reader.read_message(&mut s)).await {
        Ok(Ok(resp)) => {
            let keep = (!resp.wants_close()).then_some((s, reader));
            (
                new,
                Ok((
                    resp.status(),
                    String::from_utf8_lossy(&resp.body).into_owned(),
                    keep,
                )),
            )
        }
        Ok(Err(ReadError::Io(e))) => (new, Err((Phase::Read, e))),
        Ok(Err(ReadError::Closed | ReadError::Truncated)) => (
            new,
            Err((Phase::Read, io::Error::from(io::ErrorKind::UnexpectedEof))),
        ),
        Ok(Err(ReadError::Protocol(p))) => (
            new,
            Err((Phase::Read, io::Error::new(io::ErrorKind::InvalidData, p))),
        ),
        Err(_) => (
            new,
            Err((Phase::Read, io::Error::from(io::ErrorKind::TimedOut))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prob_exceeds_matches_the_formula() {
        let d = DelayDist {
            stall_probability: 0.3,
            stall_min_ms: 50.0,
            stall_max_ms: 250.0,
            base_max_ms: 2.0,
        };
        assert!((d.prob_exceeds(100.0) - 0.225).abs() < 1e-9);
        assert!(d.prob_exceeds(5000.0).abs() < 1e-12);
        assert!((DelayDist::NONE.prob_exceeds(1.0)).abs() < 1e-12);
    }

    #[test]
    fn sample_rate_is_close_to_the_formula() {
        let d = DelayDist {
            stall_probability: 0.3,
            stall_min_ms: 50.0,
            stall_max_ms: 250.0,
            base_max_ms: 2.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 20_000;
        let over = (0..n).filter(|_| d.sample(&mut rng) > 100.0).count() as f64 / n as f64;
        assert!((over - 0.225).abs() < 0.015, "{over}");
    }

    #[test]
    fn stack_trace_root_cause_is_last_caused_by() {
        let st = java_stack_trace(
            "service-a",
            "reset",
            "java.net.SocketException: Connection reset",
        );
        let last = st.lines().rfind(|l| l.starts_with("Caused by: ")).unwrap();
        assert_eq!(
            last,
            "Caused by: java.net.SocketException: Connection reset"
        );
        assert!(st.contains(
            "\n\tat java.base/sun.net.www.http.HttpClient.parseHTTPHeader(Unknown Source)\n"
        ));
    }
}
