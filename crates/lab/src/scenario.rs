//! Orchestration of one lab run: mint identities, bind listeners, start apps and sidecars with
//! the scenario's settings, drive the clients, stop everything and write the outputs.
//! Every task stops at the run's deadline and is aborted when the clients are done.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::app::{self, ClientPlan, DelayDist, ServerApp, Target};
use crate::logs::{Envoy, Sink};
use crate::mesh::{Fallback, NAMESPACE, Service, SidecarKnobs};
use crate::sidecar::{ClientSidecar, Cluster, Connector, OutboundRoute, ServerSidecar};
use crate::tls::{ALPN_HTTP11, ALPN_TCP, MeshCa};
use crate::{ClassCount, LabConfig, LabSummary, Scenario, out};

/// Default pause distribution of the sniffing scenario: 30 % stalls of 50-250 ms, else < 2 ms.
/// P(pause > 100 ms) = 0.3 * 150/200 = 0.225; P(pause > 5 s) = 0.
pub const SNIFF_DELAY: DelayDist = DelayDist {
    stall_probability: 0.3,
    stall_min_ms: 50.0,
    stall_max_ms: 250.0,
    base_max_ms: 2.0,
};

/// service-b's keep-alive idle timeout in the idle race (Node.js uses 5 s; the lab compresses
/// time so a run takes about a second).
pub const IDLE_RACE_SERVER_IDLE: Duration = Duration::from_millis(60);

/// A pod: names and its IP.
#[derive(Clone)]
pub(crate) struct Pod {
    pub app: String,
    pub pod: String,
    pub ip: IpAddr,
    pub app_sink: Sink,
    pub proxy_sink: Option<Sink>,
}

fn pod_name(app: &str, rng: &mut ChaCha8Rng) -> String {
    // Kubernetes' safe alphabet for generated names.
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(*ALPHA.get(rng.random_range(0..ALPHA.len())).unwrap_or(&b'x')))
            .collect()
    };
    let rs = pick(9);
    let suffix = pick(5);
    format!("{app}-{rs}-{suffix}")
}

/// Whether 127.0.x.y other than 127.0.0.1 can be bound (Linux: yes).
async fn distinct_loopback_ok() -> bool {
    TcpListener::bind("127.0.10.254:0").await.is_ok()
}

async fn bind(ip: IpAddr) -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind(SocketAddr::new(ip, 0)).await?)
}

pub(crate) async fn run(cfg: LabConfig) -> anyhow::Result<LabSummary> {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let deadline = started + cfg.overall_timeout;
    let sc = cfg.scenario;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let ca = MeshCa::new()?;

    let multi = distinct_loopback_ok().await;
    let ip = |last: u8, third: u8| -> IpAddr {
        if multi {
            IpAddr::V4(Ipv4Addr::new(127, 0, third, last))
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    };

    // Scenario defaults.
    let detection_timeout = match (cfg.protocol_detection_timeout, sc) {
        (Some(d), _) if d.is_zero() => None,
        (Some(d), _) => Some(d),
        (None, Scenario::ServerFirstProtocol) => None,
        (None, _) => Some(Duration::from_millis(100)),
    };
    let knobs = SidecarKnobs {
        detection_timeout,
        inbound_detection_timeout: Duration::from_secs(1),
        fallback: cfg.fallback,
        mtls: cfg.mtls,
        strict_reject: cfg.strict_reject,
        reject_close: cfg.reject_close,
        downstream_close_after_reset: cfg.downstream_close_after_reset,
    };

    let new_pod = |app: &str, ip: IpAddr, sidecar: bool, rng: &mut ChaCha8Rng| Pod {
        app: app.to_string(),
        pod: pod_name(app, rng),
        ip,
        app_sink: Sink::default(),
        proxy_sink: sidecar.then(Sink::default),
    };
    let pod_a = new_pod("service-a", ip(1, 10), true, &mut rng);
    let pod_b = new_pod("service-b", ip(2, 10), true, &mut rng);
    let pod_c = new_pod("service-c", ip(3, 10), true, &mut rng);
    let legacy = (sc == Scenario::StrictPlaintextClient)
        .then(|| new_pod("legacy-client", ip(9, 10), false, &mut rng));

    let envoy_for = |pod: &Pod, first_id: u64, thread: u64| {
        Envoy::new(
            pod.proxy_sink.clone().unwrap_or_default(),
            cfg.envoy_layout,
            cfg.access_format,
            first_id,
            thread,
        )
    };
    let first_id = |rng: &mut ChaCha8Rng| rng.random_range(1_000u64..900_000);
    let env_a = envoy_for(&pod_a, first_id(&mut rng), 22);
    let env_b = envoy_for(&pod_b, first_id(&mut rng), 23);
    let env_c = envoy_for(&pod_c, first_id(&mut rng), 24);
    for (env, pod) in [(&env_a, &pod_a), (&env_b, &pod_b), (&env_c, &pod_c)] {
        out::agent_startup(env, pod, istio_version(cfg.envoy_layout));
    }

    let mut tasks = JoinSet::new();

    // Server apps and their sidecars.
    let server_first_c = sc == Scenario::ServerFirstProtocol;
    let mut services = Vec::new();
    for (pod, env, server_first) in [(&pod_b, &env_b, false), (&pod_c, &env_c, server_first_c)] {
        let app_l = bind(IpAddr::V4(Ipv4Addr::LOCALHOST)).await?;
        let in_l = bind(pod.ip).await?;
        let vip_l = bind(ip(pod.ip_last(), 20)).await?;
        let svc = Service {
            name: pod.app.clone(),
            port: if server_first { 3306 } else { 80 },
            port_name: if server_first {
                "db".into()
            } else {
                "http".into()
            },
            outbound: vip_l.local_addr()?,
            inbound: in_l.local_addr()?,
            app: app_l.local_addr()?,
            pod: pod.pod.clone(),
            server_first,
        };
        let idle_timeout = (sc == Scenario::IdleKeepaliveRace && pod.app == "service-b")
            .then_some(IDLE_RACE_SERVER_IDLE);
        let server = ServerApp {
            name: pod.app.clone(),
            sink: pod.app_sink.clone(),
            idle_timeout,
            server_first,
            deadline,
        };
        tasks.spawn(server.serve(app_l));
        let id = ca.workload(NAMESPACE, &pod.app)?;
        let sidecar = ServerSidecar::new(
            env.clone(),
            knobs.clone(),
            svc.clone(),
            ca.server_config(&id)?,
            deadline,
        );
        tasks.spawn(sidecar.serve(in_l));
        services.push((svc, vip_l));
    }

    // service-a's client sidecar: one outbound listener per service.
    let id_a = ca.workload(NAMESPACE, "service-a")?;
    let client_sidecar = ClientSidecar::new(env_a.clone(), knobs.clone(), pod_a.ip, deadline);
    let late_start = (sc == Scenario::AppBeforeSidecar).then(|| Duration::from_millis(400));
    let mut routes = Vec::new();
    let mut reserved = Vec::new();
    for (svc, vip_l) in services.iter().map(|(s, l)| (s.clone(), l)) {
        let route = OutboundRoute {
            http: Cluster::new(
                svc.outbound_cluster(),
                svc.inbound,
                pod_a.ip,
                Connector::Tls(
                    ca.client_config(&id_a, &svc.spiffe(), ALPN_HTTP11)?,
                    svc.sni(),
                ),
            ),
            tcp_tls: ca.client_config(&id_a, &svc.spiffe(), ALPN_TCP)?,
            svc: svc.clone(),
        };
        routes.push(route.clone());
        reserved.push(vip_l.local_addr()?);
    }
    let mut listeners: Vec<TcpListener> = services.into_iter().map(|(_, l)| l).collect();
    if let Some(delay) = late_start {
        // Free the ports now; the sidecar binds them again when it "starts".
        listeners.clear();
        let cs = client_sidecar.clone();
        let routes2 = routes.clone();
        let env = env_a.clone();
        let reserved2 = reserved.clone();
        tasks.spawn(async move {
            let t0 = Instant::now();
            // Bounded: at most delay / 100 ms iterations.
            while t0.elapsed() < delay {
                env.agent(
                    "warn",
                    "Envoy proxy is NOT ready: config not received from Pilot (is Pilot running?): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected",
                );
                tokio::time::sleep(Duration::from_millis(100).min(delay)).await;
            }
            let mut inner = JoinSet::new();
            for (addr, route) in reserved2.into_iter().zip(routes2) {
                if let Ok(l) = TcpListener::bind(addr).await {
                    inner.spawn(cs.clone().serve(l, route));
                }
            }
            env.agent("info", "Envoy proxy is ready");
            while inner.join_next().await.is_some() {}
        });
    } else {
        for (l, route) in listeners.drain(..).zip(routes.clone()) {
            tasks.spawn(client_sidecar.clone().serve(l, route));
        }
        env_a.agent("info", "Envoy proxy is ready");
    }
    env_b.agent("info", "Envoy proxy is ready");
    env_c.agent("info", "Envoy proxy is ready");

    // Clients.
    let svc_of = |name: &str| {
        routes
            .iter()
            .find(|r| r.svc.name == name)
            .map(|r| r.svc.clone())
    };
    let target = |svc: &Service, direct: bool| Target {
        service: svc.name.clone(),
        addr: if direct { svc.inbound } else { svc.outbound },
        host: if svc.port == 80 {
            svc.name.clone()
        } else {
            format!("{}:{}", svc.name, svc.port)
        },
    };
    let b = svc_of("service-b").ok_or_else(|| anyhow::anyhow!("no service-b"))?;
    let c = svc_of("service-c").ok_or_else(|| anyhow::anyhow!("no service-c"))?;
    let base = ClientPlan {
        name: "service-a".into(),
        targets: vec![target(&b, false), target(&c, false)],
        requests: 0,
        workers: 8,
        delay: DelayDist::NONE,
        reuse: true,
        gap_ms: (0.0, 5.0),
        read_timeout: Duration::from_secs(3),
        server_first: false,
        bind_ip: pod_a.ip,
        seed: cfg.seed,
        start_after: Duration::ZERO,
    };
    let mut plans: Vec<(ClientPlan, Sink)> = Vec::new();
    let mut expected = None;
    match sc {
        Scenario::SniffingTimeout => {
            let delay = cfg.delay.unwrap_or(SNIFF_DELAY);
            let t_ms = detection_timeout.map_or(f64::INFINITY, |d| d.as_secs_f64() * 1000.0);
            let p = if cfg.fallback == Fallback::MeshTcp {
                0.0
            } else {
                delay.prob_exceeds(t_ms)
            };
            expected = Some(p);
            plans.push((
                ClientPlan {
                    requests: cfg.requests.unwrap_or(200),
                    delay,
                    reuse: cfg.keep_alive.unwrap_or(false),
                    ..base.clone()
                },
                pod_a.app_sink.clone(),
            ));
        }
        Scenario::StrictPlaintextClient => {
            let n = cfg.requests.unwrap_or(60);
            let Some(lp) = &legacy else {
                anyhow::bail!("legacy pod missing")
            };
            plans.push((
                ClientPlan {
                    requests: n / 2,
                    workers: 4,
                    ..base.clone()
                },
                pod_a.app_sink.clone(),
            ));
            plans.push((
                ClientPlan {
                    name: "legacy-client".into(),
                    targets: vec![target(&b, true)],
                    requests: n - n / 2,
                    workers: 4,
                    reuse: false,
                    bind_ip: lp.ip,
                    seed: cfg.seed.wrapping_add(7),
                    ..base.clone()
                },
                lp.app_sink.clone(),
            ));
        }
        Scenario::IdleKeepaliveRace => {
            plans.push((
                ClientPlan {
                    targets: vec![target(&b, false)],
                    requests: cfg.requests.unwrap_or(30),
                    workers: 2,
                    gap_ms: (30.0, 110.0),
                    ..base.clone()
                },
                pod_a.app_sink.clone(),
            ));
        }
        Scenario::AppBeforeSidecar => {
            plans.push((
                ClientPlan {
                    requests: cfg.requests.unwrap_or(40),
                    workers: 2,
                    reuse: false,
                    gap_ms: (30.0, 50.0),
                    ..base.clone()
                },
                pod_a.app_sink.clone(),
            ));
        }
        Scenario::ServerFirstProtocol => {
            plans.push((
                ClientPlan {
                    targets: vec![target(&c, false)],
                    requests: cfg.requests.unwrap_or(12),
                    workers: 6,
                    reuse: false,
                    read_timeout: Duration::from_millis(800),
                    server_first: true,
                    ..base.clone()
                },
                pod_a.app_sink.clone(),
            ));
        }
    }
    let mut outcomes = Vec::new();
    let mut clients = JoinSet::new();
    for (plan, sink) in plans {
        clients.spawn(async move { app::run_client(&plan, &sink, started, deadline).await });
    }
    while let Some(r) = clients.join_next().await {
        if let Ok(v) = r {
            outcomes.extend(v);
        }
    }
    // Let in-flight close paths log, then stop every task.
    tokio::time::sleep(Duration::from_millis(60)).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}

    // Summary.
    let requests = outcomes.len();
    let failures = outcomes.iter().filter(|o| o.failed).count();
    let mut by_class: Vec<ClassCount> = Vec::new();
    for o in outcomes.iter().filter(|o| o.failed) {
        let class = o.error_class.clone().unwrap_or_default();
        match by_class.iter_mut().find(|c| c.class == class) {
            Some(c) => c.count += 1,
            None => by_class.push(ClassCount {
                class,
                count: 1,
                example_os_error: o.os_error.clone(),
            }),
        }
    }
    let t_ms = detection_timeout.map(|d| d.as_secs_f64() * 1000.0);
    let new_connections = outcomes.iter().filter(|o| o.new_connection).count();
    let delayed = match t_ms {
        Some(t) => outcomes
            .iter()
            .filter(|o| o.delay_ms.is_some_and(|d| d > t))
            .count(),
        None => 0,
    };
    let mut summary = LabSummary {
        scenario: sc.name().into(),
        cause: sc.cause().into(),
        requests,
        failures,
        failure_rate: if requests == 0 {
            0.0
        } else {
            failures as f64 / requests as f64
        },
        // Sniffing happens per new connection: with keep-alive only new connections are exposed.
        expected_failure_rate: expected.map(|p| {
            if requests == 0 {
                p
            } else {
                p * new_connections as f64 / requests as f64
            }
        }),
        protocol_detection_timeout_ms: detection_timeout.map_or(0, |d| d.as_millis() as u64),
        fallback: cfg.fallback,
        mtls: cfg.mtls,
        seed: cfg.seed,
        new_connections,
        connections_delayed_past_timeout: delayed,
        failures_by_class: by_class,
        duration_ms: started.elapsed().as_millis() as u64,
        started_at,
        istio_version: istio_version(cfg.envoy_layout).into(),
        files: Vec::new(),
        outcomes,
    };
    let mut pods = vec![pod_a, pod_b, pod_c];
    pods.extend(legacy);
    let svcs: Vec<Service> = routes.iter().map(|r| r.svc.clone()).collect();
    summary.files = out::write_all(&cfg, &summary, &pods, &svcs, detection_timeout)?;
    Ok(summary)
}

/// The Istio release whose log layout the run imitates.
fn istio_version(layout: crate::EnvoyLayout) -> &'static str {
    match layout {
        crate::EnvoyLayout::Istio16 => "1.6.8",
        crate::EnvoyLayout::Istio122 => "1.22.3",
    }
}

impl Pod {
    fn ip_last(&self) -> u8 {
        match self.ip {
            IpAddr::V4(v) => {
                let [_, _, _, last] = v.octets();
                last
            }
            IpAddr::V6(_) => 1,
        }
    }
}
