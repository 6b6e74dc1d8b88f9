//! The `meshdoctor` command line: argument parsing, progress, output and exit codes.
//!
//! No domain logic lives here; every subcommand calls into the library crates and renders
//! what they return. Exit codes: 0 success (nothing found, or a report was printed),
//! 1 a diagnosis named a cause (for `diagnose`), 2 usage or I/O errors.

mod collect;
mod compare;
mod config;
mod diagnose;
mod lab;
mod scan;
mod signatures;
mod timeline;
mod verify;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// meshdoctor finds why calls between services in a service mesh fail with
/// "Connection reset" or 503 "reset before headers", shows the evidence, and names the fix.
///
/// Give it what you collected: application logs, istio-proxy logs (debug and access logs),
/// mesh and Kubernetes config, Envoy config dumps and stats. Files, directories, .gz and
/// `-` for stdin are all fine; the kind of each file is detected from its content.
#[derive(Parser, Debug)]
#[command(name = "meshdoctor", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what meshdoctor understood in each input: kind, lines, events, time range,
    /// workloads, and the lines it skipped with the reason.
    ///
    /// Example: meshdoctor scan ./bundle --format json
    Scan(scan::ScanArgs),
    /// Name the root cause of connection resets and 503s, with evidence, the fix and how to
    /// verify it.
    ///
    /// Example: meshdoctor diagnose examples/sniffing-timeout
    Diagnose(diagnose::Args),
    /// Follow each connection through the sidecar debug logs and show which steps failing
    /// connections miss compared with successful ones.
    Compare(compare::Args),
    /// Count failures per time bucket per service (the Splunk query), with a chart.
    Timeline(timeline::Args),
    /// Say whether a fix worked: failures before and after a change per service pair, an
    /// exact rate-ratio test and a verdict (fixed / improved / no change / worse / not
    /// enough data).
    ///
    /// Example: meshdoctor verify --before examples/sniffing-timeout --after examples/sniffing-timeout-fixed
    Verify(verify::Args),
    /// List the failure signatures `timeline` and `verify` can count, and what each matches.
    Signatures(signatures::Args),
    /// Show the effective mesh settings per workload and port read from config files.
    Config(config::Args),
    /// Gather a bundle (logs with timestamps, mesh config, resources, config dumps, stats)
    /// from a cluster with kubectl, ready for `diagnose`. Secrets are never copied.
    ///
    /// Example: meshdoctor collect --namespace shop --out ./bundle
    Collect(collect::Args),
    /// Run the lab: a real-socket miniature mesh that reproduces known causes.
    Lab(lab::Args),
}

/// Output format shared by the subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// Stable machine-readable JSON.
    Json,
}

/// Arguments every subcommand that reads inputs takes.
#[derive(clap::Args, Debug, Clone)]
pub struct InputArgs {
    /// Files or directories to read (directories recursively; `.gz` is decompressed;
    /// `-` reads stdin).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How they are read.
    #[command(flatten)]
    pub reading: ReadingArgs,
}

/// How inputs are read, for every subcommand that reads logs (also `verify`, whose paths
/// come as --before/--after instead).
#[derive(clap::Args, Debug, Clone)]
pub struct ReadingArgs {
    /// Parse every record as this kind instead of detecting it per record.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Workload name for inputs whose records and paths name none.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Read files with plain reads instead of memory maps. Maps are faster, but if another
    /// process truncates a file while it is read (logrotate's copytruncate on a live log),
    /// a mapped read is killed by the operating system (SIGBUS).
    #[arg(long)]
    pub no_mmap: bool,
}

/// Paths that could not be read are reported, never silently dropped.
#[allow(clippy::print_stderr)]
pub fn warn_unreadable(errors: &[String]) {
    for e in errors {
        eprintln!("meshdoctor: warning: {e}");
    }
}

/// `--kind` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Application logs.
    AppLog,
    /// Envoy/istio-proxy debug logs.
    EnvoyDebug,
    /// Envoy access logs.
    EnvoyAccess,
    /// pilot-agent lines.
    ProxyAgent,
    /// linkerd-proxy lines.
    LinkerdProxy,
}

impl KindArg {
    fn family(self) -> meshdoctor_model::Family {
        use meshdoctor_model::Family;
        match self {
            KindArg::AppLog => Family::AppLog,
            KindArg::EnvoyDebug => Family::EnvoyDebug,
            KindArg::EnvoyAccess => Family::EnvoyAccess,
            KindArg::ProxyAgent => Family::ProxyAgent,
            KindArg::LinkerdProxy => Family::LinkerdProxy,
        }
    }
}

impl InputArgs {
    /// Discover inputs and build run options; unreadable paths are returned as warnings.
    pub fn open(
        &self,
    ) -> (
        Vec<meshdoctor_input::InputFile>,
        Vec<String>,
        meshdoctor_logs::RunOptions,
    ) {
        let (inputs, errors) =
            meshdoctor_input::discover(&self.paths, &meshdoctor_input::DiscoverOptions::default());
        let options = meshdoctor_logs::RunOptions {
            progress: progress_bar(&inputs),
            forced: self.reading.kind.map(KindArg::family),
            service: self.reading.service.clone(),
            use_mmap: !self.reading.no_mmap,
            ..meshdoctor_logs::RunOptions::default()
        };
        (
            inputs,
            errors.iter().map(ToString::to_string).collect(),
            options,
        )
    }
}

/// A progress bar on stderr for large inputs (hidden when stderr is not a terminal).
fn progress_bar(inputs: &[meshdoctor_input::InputFile]) -> Option<meshdoctor_logs::Progress> {
    use meshdoctor_input::Access;
    const SHOW_ABOVE_BYTES: u64 = 64 << 20;
    let on_disk: u64 = inputs
        .iter()
        .map(|i| match i.access {
            Access::Plain { len } => len,
            Access::Gzip => std::fs::metadata(&i.path).map_or(0, |m| m.len() * 8),
            Access::Stdin => 0,
        })
        .sum();
    if on_disk < SHOW_ABOVE_BYTES || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(on_disk),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} reading {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(meshdoctor_logs::Progress(std::sync::Arc::new(move |n| {
        bar.inc(n);
        if bar.position() >= bar.length().unwrap_or(u64::MAX) {
            bar.finish_and_clear();
        }
    })))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Diagnose(args) => diagnose::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Timeline(args) => timeline::run(&args),
        Command::Config(args) => config::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Signatures(args) => signatures::run(&args),
        Command::Collect(args) => collect::run(&args),
        Command::Lab(args) => lab::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("meshdoctor: error: {err:#}");
            }
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
