//! `meshdoctor timeline`: failures of one signature per time bucket per group, as a table
//! with terminal bars, CSV or JSON, and a stacked chart (SVG, or PNG through rsvg-convert).
//!
//! Only argument handling and output live here; counting, bucketing and rendering are in
//! `meshdoctor-timeline`.

use crate::InputArgs;
use anyhow::Context as _;
use meshdoctor_logs::FileCoverage;
use meshdoctor_timeline::{
    BucketSpec, Bucketer, CountOptions, CountSink, Dim, Signature, render, svg,
};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Output formats of `timeline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum TableFormat {
    /// A table per bucket with terminal bars.
    #[default]
    Text,
    /// The stable JSON contract: {"signature", "bucket", "rows": [{"start", "group",
    /// "count", "requests"}], "total", ...}.
    Json,
    /// One row per bucket and group: start,<group columns>,count,requests.
    Csv,
}

/// Arguments of `timeline`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    inputs: InputArgs,
    /// What to count: connection-reset, reset-before-headers, tls-handshake-error,
    /// passthrough, status:NNN, flag:XX or regex:PATTERN (`meshdoctor signatures` lists them).
    #[arg(
        long,
        short = 's',
        default_value = "connection-reset",
        value_name = "SIGNATURE"
    )]
    signature: String,
    /// Bucket width: 1d, 1h, 15m, 30s, ... Days are calendar days in --tz.
    #[arg(long, default_value = "1d", value_name = "WIDTH")]
    bucket: String,
    /// Group by any of service, peer, flag, code, cluster, file, kind (comma-separated).
    #[arg(long, default_value = "service", value_name = "DIMS")]
    by: String,
    /// Time zone of the buckets: UTC (default), an IANA name (Europe/Berlin) or an offset
    /// (+02:00). Timestamps written with an offset are always converted correctly.
    #[arg(long, default_value = "UTC", value_name = "ZONE")]
    tz: String,
    /// Also count requests per bucket and group from access logs and show failure rates:
    /// for connection-reset the service's outbound rows (the calls that could be reset),
    /// for the other signatures every row of the group. Reads every access row, so it is
    /// slower on large inputs.
    #[arg(long)]
    rate: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: TableFormat,
    /// Also write a stacked bar chart as SVG to this file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Also write the chart as PNG. meshdoctor has no rasterizer of its own (it would need
    /// fonts and a large crate): this runs `rsvg-convert` (package librsvg2-bin) on the SVG
    /// and fails with a hint when it is not installed.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let signature = Signature::parse(&args.signature)?;
    let spec = BucketSpec::parse(&args.bucket).map_err(anyhow::Error::msg)?;
    let bucketer = Bucketer::in_zone(spec, &args.tz).map_err(anyhow::Error::msg)?;
    let dims = Dim::parse_list(&args.by).map_err(anyhow::Error::msg)?;
    let (inputs, errors, mut options) = args.inputs.open();
    crate::warn_unreadable(&errors);
    // Without --rate only matching records matter: skip the rest before parsing them.
    if !args.rate
        && let Some(prefilter) = signature.prefilter()
    {
        options.prefilter = Some(Arc::new(meshdoctor_logs::Prefilter::new(
            &prefilter.literals,
        )?));
    }
    let opts = Arc::new(CountOptions {
        signature: Arc::new(signature),
        bucketer,
        dims,
        requests: args.rate,
    });
    let output = meshdoctor_logs::run(&inputs, &options, || CountSink::new(Arc::clone(&opts)));
    let counts = output.sink.finish();

    if args.svg.is_some() || args.png.is_some() {
        let title = format!(
            "{} per {} by {}",
            counts.signature,
            counts.bucketer.spec(),
            args.by
        );
        // Over the whole time the input covers, so quiet buckets show as empty.
        let span = counts.first.zip(counts.last);
        let chart = svg::chart_over(&counts, &title, None, span);
        write_charts(&chart, args.svg.as_deref(), args.png.as_deref())?;
    }
    let skipped = skipped_by_reason(&output.coverage);
    let mut out = std::io::stdout().lock();
    match args.format {
        TableFormat::Text => {
            out.write_all(render::text(&counts).as_bytes())?;
            out.write_all(coverage_note(&output.coverage, &skipped).as_bytes())?;
            for path in args.svg.iter().chain(args.png.iter()) {
                writeln!(out, "Chart written to {}.", path.display())?;
            }
        }
        TableFormat::Json => {
            let mut doc = render::json(&counts);
            if let Some(map) = doc.as_object_mut() {
                map.insert("inputs".into(), serde_json::json!(output.coverage.len()));
                map.insert("skipped".into(), serde_json::json!(skipped));
                map.insert("errors".into(), serde_json::json!(errors));
            }
            serde_json::to_writer_pretty(&mut out, &doc)?;
            out.write_all(b"\n")?;
        }
        TableFormat::Csv => out.write_all(render::csv(&counts).as_bytes())?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Lines not used, per reason, over all inputs (bad timestamps among them).
pub fn skipped_by_reason(coverage: &[FileCoverage]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for c in coverage {
        for (reason, n) in &c.skipped_reasons {
            let key = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{reason:?}"));
            *m.entry(key).or_default() += n;
        }
    }
    m
}

/// One paragraph on what was read and what was not.
pub fn coverage_note(coverage: &[FileCoverage], skipped: &BTreeMap<String, u64>) -> String {
    let lines: u64 = coverage.iter().map(|c| c.lines).sum();
    let events: u64 = coverage.iter().map(|c| c.events).sum();
    let mut s = format!(
        "\nRead {} input(s): {lines} line(s), {events} event(s).",
        coverage.len()
    );
    if !skipped.is_empty() {
        let parts: Vec<String> = skipped.iter().map(|(r, n)| format!("{n} {r}")).collect();
        s.push_str(&format!(
            " Skipped lines (not counted): {}; `meshdoctor scan` shows where.",
            parts.join(", ")
        ));
    }
    for c in coverage {
        if let Some(e) = &c.read_error {
            s.push_str(&format!("\n{}: reading stopped early: {e}", c.display));
        }
    }
    s.push('\n');
    s
}

/// Write the chart as SVG and/or PNG (through `rsvg-convert`, bounded to a minute).
pub fn write_charts(
    svg_text: &str,
    svg_path: Option<&std::path::Path>,
    png_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if let Some(path) = svg_path {
        std::fs::write(path, svg_text).with_context(|| format!("writing {}", path.display()))?;
    }
    let Some(png) = png_path else {
        return Ok(());
    };
    let mut child = std::process::Command::new("rsvg-convert")
        .args(["--format", "png", "--background-color", "white", "-o"])
        .arg(png)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "--png needs `rsvg-convert` (package librsvg2-bin / librsvg): {e}; or use --svg"
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(svg_text.as_bytes())?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            anyhow::bail!("rsvg-convert failed ({status}): {}", err.trim());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("rsvg-convert did not finish within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
