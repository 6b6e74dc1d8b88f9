//! Latency and throughput the lab's sidecar pair adds on loopback, against a direct
//! connection: app -> client sidecar -> mTLS -> server sidecar -> app, keep-alive everywhere.
//! Sidecar logging is discarded so the figures measure the data path. Bounded by request
//! counts and a deadline; loopback only. This module must not print.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::app::ServerApp;
use crate::http::{Message, Reader};
use crate::logs::{AccessFormat, Envoy, EnvoyLayout, Sink};
use crate::mesh::{CloseKind, Fallback, MtlsMode, NAMESPACE, Service, SidecarKnobs, StrictReject};
use crate::sidecar::{ClientSidecar, Cluster, Connector, OutboundRoute, ServerSidecar};
use crate::tls::{ALPN_HTTP11, ALPN_TCP, MeshCa};

/// Benchmark sizes.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Sequential requests on one keep-alive connection (latency).
    pub latency_requests: usize,
    /// Concurrent keep-alive connections (throughput).
    pub concurrency: usize,
    /// Requests per connection in the throughput phase.
    pub requests_per_connection: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            latency_requests: 2000,
            concurrency: 8,
            requests_per_connection: 500,
        }
    }
}

/// Figures for one path.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct PathFigures {
    /// Median request latency (µs).
    pub p50_us: f64,
    /// 99th percentile latency (µs).
    pub p99_us: f64,
    /// Requests per second with `concurrency` connections.
    pub throughput_rps: f64,
    /// Failed requests (should be 0).
    pub errors: usize,
}

/// Direct vs through the sidecar pair.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct BenchReport {
    /// App to app.
    pub direct: PathFigures,
    /// App to sidecar to sidecar (mTLS) to app.
    pub mesh: PathFigures,
}

async fn request(s: &mut TcpStream, r: &mut Reader, req: &[u8]) -> bool {
    if s.write_all(req).await.is_err() {
        return false;
    }
    matches!(r.read_message(s).await, Ok(m) if m.status() == 200)
}

async fn measure(addr: SocketAddr, cfg: BenchConfig, deadline: Instant) -> PathFigures {
    let req = Message {
        first_line: "GET /bench HTTP/1.1".into(),
        headers: vec![("host".into(), "service-b".into())],
        body: Vec::new(),
    }
    .to_bytes();
    let mut fig = PathFigures::default();
    let Ok(mut s) = TcpStream::connect(addr).await else {
        fig.errors = cfg.latency_requests;
        return fig;
    };
    let _ = s.set_nodelay(true);
    let mut r = Reader::with_prefix(Vec::new());
    // Warm up the pools (TLS handshake) before timing.
    for _ in 0..20 {
        let _ = request(&mut s, &mut r, &req).await;
    }
    let mut lat = Vec::with_capacity(cfg.latency_requests);
    for _ in 0..cfg.latency_requests {
        if Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        if request(&mut s, &mut r, &req).await {
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        } else {
            fig.errors += 1;
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    fig.p50_us = pct(0.5);
    fig.p99_us = pct(0.99);

    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..cfg.concurrency {
        let req = req.clone();
        set.spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                return (0usize, 1usize);
            };
            let _ = s.set_nodelay(true);
            let mut r = Reader::with_prefix(Vec::new());
            let (mut ok, mut err) = (0, 0);
            for _ in 0..cfg.requests_per_connection {
                if Instant::now() >= deadline {
                    break;
                }
                if request(&mut s, &mut r, &req).await {
                    ok += 1;
                } else {
                    err += 1;
                }
            }
            (ok, err)
        });
    }
    let mut ok = 0;
    while let Some(Ok((o, e))) = set.join_next().await {
        ok += o;
        fig.errors += e;
    }
    fig.throughput_rps = ok as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    fig
}

/// Run the benchmark (at most 60 s).
pub async fn run(cfg: BenchConfig) -> anyhow::Result<BenchReport> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let ca = MeshCa::new()?;
    let app_l = TcpListener::bind((lo, 0)).await?;
    let in_l = TcpListener::bind((lo, 0)).await?;
    let out_l = TcpListener::bind((lo, 0)).await?;
    let svc = Service {
        name: "service-b".into(),
        port: 80,
        port_name: "http".into(),
        outbound: out_l.local_addr()?,
        inbound: in_l.local_addr()?,
        app: app_l.local_addr()?,
        pod: "service-b-bench".into(),
        server_first: false,
    };
    let knobs = SidecarKnobs {
        detection_timeout: Some(Duration::from_secs(5)),
        inbound_detection_timeout: Duration::from_secs(1),
        fallback: Fallback::Passthrough,
        mtls: MtlsMode::Strict,
        strict_reject: StrictReject::TlsHttpRequest,
        reject_close: CloseKind::Rst,
        downstream_close_after_reset: CloseKind::Rst,
    };
    let envoy = || {
        Envoy::new(
            Sink::discard(),
            EnvoyLayout::Istio16,
            AccessFormat::Istio16,
            1,
            1,
        )
    };
    let mut tasks = tokio::task::JoinSet::new();
    let app = ServerApp {
        name: "service-b".into(),
        sink: Sink::discard(),
        idle_timeout: None,
        server_first: false,
        deadline,
    };
    tasks.spawn(app.serve(app_l));
    let id_b = ca.workload(NAMESPACE, "service-b")?;
    let id_a = ca.workload(NAMESPACE, "service-a")?;
    tasks.spawn(
        ServerSidecar::new(
            envoy(),
            knobs.clone(),
            svc.clone(),
            ca.server_config(&id_b)?,
            deadline,
        )
        .serve(in_l),
    );
    let route = OutboundRoute {
        http: Cluster::new(
            svc.outbound_cluster(),
            svc.inbound,
            lo,
            Connector::Tls(
                ca.client_config(&id_a, &svc.spiffe(), ALPN_HTTP11)?,
                svc.sni(),
            ),
        ),
        tcp_tls: ca.client_config(&id_a, &svc.spiffe(), ALPN_TCP)?,
        svc: svc.clone(),
    };
    tasks.spawn(ClientSidecar::new(envoy(), knobs, lo, deadline).serve(out_l, route));
    let direct = measure(svc.app, cfg, deadline).await;
    let mesh = measure(svc.outbound, cfg, deadline).await;
    tasks.abort_all();
    Ok(BenchReport { direct, mesh })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tiny_bench_has_no_errors() {
        let r = run(BenchConfig {
            latency_requests: 50,
            concurrency: 2,
            requests_per_connection: 20,
        })
        .await
        .unwrap();
        assert_eq!(r.direct.errors + r.mesh.errors, 0, "{r:?}");
        assert!(r.mesh.p50_us > 0.0 && r.direct.throughput_rps > 0.0);
    }
}
