//! Arguments and report text of `meshdoctor lab` (`run`, `list`, `bench`). The binary's
//! `lab.rs` only parses with these types and prints the returned text: this module never prints
//! and never exits.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::{
    AccessFormat, CloseKind, EnvoyLayout, Fallback, LabConfig, LabSummary, MtlsMode, Scenario,
    StrictReject,
};

/// Arguments of `meshdoctor lab`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `lab` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Run one scenario and write its logs, config and truth.json to --out.
    Run(RunArgs),
    /// List the scenarios and the cause each reproduces.
    List,
    /// Measure the latency and throughput the sidecar pair adds on loopback.
    Bench(BenchArgs),
}

/// Arguments of `lab run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario name (see `meshdoctor lab list`).
    #[arg(long, value_parser = scenario_names())]
    pub scenario: String,
    /// Outbound meshConfig.protocolDetectionTimeout, e.g. 100ms, 5s, 0 (disabled).
    #[arg(long, value_name = "DURATION")]
    pub protocol_detection_timeout: Option<String>,
    /// Number of client requests (default depends on the scenario).
    #[arg(long)]
    pub requests: Option<usize>,
    /// Seed of every random choice (pauses, ids, pod names).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What the client sidecar does when sniffing gives up.
    #[arg(long, value_enum, default_value = "passthrough")]
    pub fallback: Fallback,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Envoy debug-log layout (Istio 1.6 or 1.22+).
    #[arg(long, value_enum, default_value = "istio16")]
    pub log_layout: EnvoyLayout,
    /// Access-log format (1.6 with the mixer field, or 1.9+ with response details).
    #[arg(long, value_enum, default_value = "istio16")]
    pub access_format: AccessFormat,
    /// How STRICT rejects plaintext: Istio <= 1.9 TLS error, or 1.10+ no matching filter chain.
    #[arg(long, value_enum, default_value = "tls-http-request")]
    pub strict_reject: StrictReject,
    /// PeerAuthentication mode of the servers.
    #[arg(long, value_enum, default_value = "strict")]
    pub mtls: MtlsMode,
    /// How the server sidecar closes a rejected plaintext connection.
    #[arg(long, value_enum, default_value = "rst")]
    pub reject_close: CloseKind,
    /// How the client sidecar closes the app's connection after its upstream was reset.
    #[arg(long, value_enum, default_value = "rst")]
    pub app_close_after_reset: CloseKind,
    /// Wrap every log line as a log pipeline does (kubectl --timestamps, CRI node files).
    #[arg(long, value_enum, default_value = "none")]
    pub wrap: crate::Wrapper,
    /// Reuse keep-alive connections in service-a (the sniffing scenario defaults to a new
    /// connection per request, so its rate is per connection).
    #[arg(long)]
    pub keep_alive: Option<bool>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `lab bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Sequential requests for the latency figures.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Concurrent keep-alive connections for the throughput figure.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

fn scenario_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Scenario::ALL.map(Scenario::name))
}

/// Execute the command; returns the text to print.
pub fn execute(args: &Args) -> anyhow::Result<String> {
    match &args.command {
        Command::List => Ok(list()),
        Command::Run(r) => {
            let scenario = Scenario::from_name(&r.scenario)
                .ok_or_else(|| anyhow::anyhow!("unknown scenario {}", r.scenario))?;
            let mut cfg = LabConfig::new(scenario, &r.out);
            if let Some(d) = &r.protocol_detection_timeout {
                cfg.protocol_detection_timeout =
                    Some(crate::parse_duration(d).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--protocol-detection-timeout: cannot read {d:?} (try 100ms, 5s, 0)"
                        )
                    })?);
            }
            cfg.requests = r.requests.map(|n| n.clamp(1, 100_000));
            cfg.seed = r.seed;
            cfg.fallback = r.fallback;
            cfg.envoy_layout = r.log_layout;
            cfg.access_format = r.access_format;
            cfg.strict_reject = r.strict_reject;
            cfg.mtls = r.mtls;
            cfg.reject_close = r.reject_close;
            cfg.downstream_close_after_reset = r.app_close_after_reset;
            cfg.wrapper = r.wrap;
            cfg.keep_alive = r.keep_alive;
            let summary = crate::run_blocking(cfg)?;
            if r.json {
                let mut v = serde_json::to_value(&summary)?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("outcomes");
                }
                Ok(serde_json::to_string_pretty(&v)?)
            } else {
                Ok(render(&summary, &r.out))
            }
        }
        Command::Bench(b) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let cfg = crate::bench::BenchConfig {
                latency_requests: b.requests.clamp(10, 1_000_000),
                concurrency: b.concurrency.clamp(1, 256),
                requests_per_connection: 500,
            };
            let r = rt.block_on(crate::bench::run(cfg))?;
            let mut s = String::new();
            for (name, f) in [("direct", r.direct), ("through sidecars (mTLS)", r.mesh)] {
                let _ = writeln!(
                    s,
                    "{name:>24}: p50 {:>6.0} µs  p99 {:>6.0} µs  {:>8.0} req/s ({} connections)  errors {}",
                    f.p50_us, f.p99_us, f.throughput_rps, cfg.concurrency, f.errors
                );
            }
            let _ = writeln!(
                s,
                "{:>24}: p50 +{:.0} µs, p99 +{:.0} µs",
                "added by the pair",
                r.mesh.p50_us - r.direct.p50_us,
                r.mesh.p99_us - r.direct.p99_us
            );
            Ok(s)
        }
    }
}

fn list() -> String {
    let mut s = String::new();
    for sc in Scenario::ALL {
        let _ = writeln!(s, "{:<24} cause: {}", sc.name(), sc.cause());
        let _ = writeln!(s, "{:<24} {}", "", sc.describe());
    }
    s
}

/// The human summary of a run.
pub fn render(s: &LabSummary, out: &std::path::Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "scenario    {} (cause: {})", s.scenario, s.cause);
    let _ = write!(
        t,
        "requests    {}, failures {} ({:.1}%)",
        s.requests,
        s.failures,
        s.failure_rate * 100.0
    );
    if let Some(p) = s.expected_failure_rate {
        let _ = write!(
            t,
            ", predicted {:.1}% from the pause distribution",
            p * 100.0
        );
    }
    t.push('\n');
    let timeout = if s.protocol_detection_timeout_ms == 0 {
        "0s (disabled)".to_string()
    } else {
        format!("{}ms", s.protocol_detection_timeout_ms)
    };
    let _ = writeln!(
        t,
        "mesh        protocolDetectionTimeout {timeout}, fallback {}, mTLS {}, logs as Istio {}",
        match s.fallback {
            Fallback::Passthrough => "passthrough",
            Fallback::MeshTcp => "mesh-tcp",
        },
        match s.mtls {
            MtlsMode::Strict => "STRICT",
            MtlsMode::Permissive => "PERMISSIVE",
        },
        s.istio_version
    );
    if s.connections_delayed_past_timeout > 0 {
        let _ = writeln!(
            t,
            "pauses      {} of {} new connections paused longer than the detection timeout",
            s.connections_delayed_past_timeout, s.new_connections
        );
    }
    for c in &s.failures_by_class {
        let _ = writeln!(
            t,
            "failed      {} x {}{}",
            c.count,
            c.class,
            c.example_os_error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        t,
        "wrote       {} files under {} (truth.json, config/, default/<pod>/<container>.log) in {} ms",
        s.files.len(),
        out.display(),
        s.duration_ms
    );
    let _ = writeln!(t, "next        meshdoctor diagnose {}", out.display());
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser, Debug)]
    struct Top {
        #[command(subcommand)]
        cmd: Sub,
    }
    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Lab(Args),
    }

    #[test]
    fn parses_the_documented_command_line() {
        let t = Top::try_parse_from([
            "meshdoctor",
            "lab",
            "run",
            "--scenario",
            "sniffing-timeout",
            "--protocol-detection-timeout",
            "100ms",
            "--requests",
            "50",
            "--seed",
            "7",
            "--fallback",
            "mesh-tcp",
            "--out",
            "/tmp/x",
        ])
        .unwrap();
        let Sub::Lab(a) = t.cmd;
        let Command::Run(r) = a.command else {
            panic!("not run")
        };
        assert_eq!(r.scenario, "sniffing-timeout");
        assert_eq!(r.fallback, Fallback::MeshTcp);
        assert_eq!(r.requests, Some(50));
        assert!(
            Top::try_parse_from([
                "meshdoctor",
                "lab",
                "run",
                "--scenario",
                "nope",
                "--out",
                "x"
            ])
            .is_err()
        );
        assert!(Top::try_parse_from(["meshdoctor", "lab", "list"]).is_ok());
    }

    #[test]
    fn run_summary_text() {
        let s = LabSummary {
            scenario: "sniffing-timeout".into(),
            cause: "protocol-sniffing-timeout".into(),
            requests: 200,
            failures: 41,
            failure_rate: 0.205,
            expected_failure_rate: Some(0.225),
            protocol_detection_timeout_ms: 100,
            fallback: Fallback::Passthrough,
            mtls: MtlsMode::Strict,
            seed: 1,
            new_connections: 200,
            connections_delayed_past_timeout: 41,
            failures_by_class: vec![crate::ClassCount {
                class: "reset".into(),
                count: 41,
                example_os_error: Some("Connection reset by peer (os error 104)".into()),
            }],
            duration_ms: 1800,
            started_at: "2020-10-23T00:26:00Z".into(),
            istio_version: "1.6.8".into(),
            files: vec!["truth.json".into(); 11],
            outcomes: Vec::new(),
        };
        insta::assert_snapshot!(render(&s, std::path::Path::new("/tmp/lab")));
    }

    #[test]
    fn scenario_list_text() {
        insta::assert_snapshot!(list());
    }

    #[test]
    fn list_names_every_cause() {
        let l = list();
        for sc in Scenario::ALL {
            assert!(l.contains(sc.cause()));
        }
    }
}
