//! `meshdoctor verify`: did the fix work? Failure counts and rates before and after a change
//! per service pair, an exact rate-ratio test, a verdict, and a chart with the change marked.
//!
//! Only argument handling and output live here; the statistics are in `meshdoctor-timeline`.

use crate::timeline::{coverage_note, skipped_by_reason, write_charts};
use crate::{Format, InputArgs, ReadingArgs, warn_unreadable};
use meshdoctor_model::Timestamp;
use meshdoctor_timeline::verify::{
    Period, VerifySink, compare, hours_between, merge_series, period_counts, split_counts,
};
use meshdoctor_timeline::{BucketSpec, Bucketer, CountSink, Signature, parse_instant, render, svg};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Inputs covering the time before and after the change (with --change-at).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// When the fix was rolled out: RFC 3339 (2020-10-27T14:00:00Z) or a local time
    /// (`2020-10-27 14:00`, taken in --tz).
    #[arg(long, value_name = "TIME")]
    change_at: Option<String>,
    /// Inputs from before the change (instead of PATHS and --change-at).
    #[arg(
        long,
        num_args = 1..,
        value_name = "PATH",
        requires = "after",
        conflicts_with = "change_at"
    )]
    before: Vec<PathBuf>,
    /// Inputs from after the change.
    #[arg(long, num_args = 1.., value_name = "PATH", requires = "before")]
    after: Vec<PathBuf>,
    /// What counts as a failure (see `meshdoctor signatures`).
    #[arg(
        long,
        short = 's',
        default_value = "connection-reset",
        value_name = "SIGNATURE"
    )]
    signature: String,
    /// Bucket width of the chart.
    #[arg(long, default_value = "1h", value_name = "WIDTH")]
    bucket: String,
    /// Time zone of the chart and of a --change-at without an offset.
    #[arg(long, default_value = "UTC", value_name = "ZONE")]
    tz: String,
    #[command(flatten)]
    reading: ReadingArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Also write the chart (failures per bucket per service, change marked) as SVG.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Also write the chart as PNG (runs `rsvg-convert`, see `timeline --help`).
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
}

struct Side {
    split: meshdoctor_timeline::Counts,
    series: meshdoctor_timeline::Counts,
    coverage: Vec<meshdoctor_logs::FileCoverage>,
}

fn count(
    args: &Args,
    paths: &[PathBuf],
    signature: &Arc<Signature>,
    split_at: Timestamp,
    chart: &Bucketer,
) -> Side {
    let inputs = InputArgs {
        paths: paths.to_vec(),
        reading: args.reading.clone(),
    };
    let (files, errors, options) = inputs.open();
    warn_unreadable(&errors);
    // Requests are always counted here: exposure by traffic is the better test, and verify
    // is not the path that has to run at `rg` speed.
    let (split, series) = VerifySink::options(Arc::clone(signature), split_at, chart.clone(), true);
    let out = meshdoctor_logs::run(&files, &options, || VerifySink {
        split: CountSink::new(Arc::clone(&split)),
        series: CountSink::new(Arc::clone(&series)),
    });
    Side {
        split: out.sink.split.finish(),
        series: out.sink.series.finish(),
        coverage: out.coverage,
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let signature = Arc::new(Signature::parse(&args.signature)?);
    let spec = BucketSpec::parse(&args.bucket).map_err(anyhow::Error::msg)?;
    let chart = Bucketer::in_zone(spec, &args.tz).map_err(anyhow::Error::msg)?;
    let name = signature.name();

    let (report, series, coverage, marker) = if !args.before.is_empty() {
        // Everything of a set lands in its "before" bucket; the sets are the periods.
        let never = Timestamp(i64::MAX);
        let b = count(args, &args.before, &signature, never, &chart);
        let a = count(args, &args.after, &signature, never, &chart);
        let change = a.split.first;
        let period = |c: &meshdoctor_timeline::Counts| Period {
            start: c.first,
            end: c.last,
            hours: hours_between(c.first, c.last),
            failures: 0,
            requests: None,
        };
        let report = compare(
            &name,
            None,
            (&period_counts(&b.split), period(&b.split)),
            (&period_counts(&a.split), period(&a.split)),
            b.split.untimed + a.split.untimed,
            b.split.unknown_service + a.split.unknown_service,
        );
        let mut coverage = b.coverage;
        coverage.extend(a.coverage);
        (report, merge_series(b.series, a.series), coverage, change)
    } else {
        let Some(at) = &args.change_at else {
            anyhow::bail!("give PATHS with --change-at TIME, or --before PATHS --after PATHS");
        };
        if args.paths.is_empty() {
            anyhow::bail!("give the inputs to compare: PATHS --change-at TIME");
        }
        let at = parse_instant(at, &args.tz).map_err(anyhow::Error::msg)?;
        let side = count(args, &args.paths, &signature, at, &chart);
        let (bc, ac) = split_counts(&side.split, at);
        let first = side.split.first.filter(|f| *f < at);
        let last = side.split.last.filter(|l| *l >= at);
        let before = Period {
            start: first,
            end: first.map(|_| at),
            hours: hours_between(first, Some(at)),
            failures: 0,
            requests: None,
        };
        let after = Period {
            start: last.map(|_| at),
            end: last,
            hours: hours_between(Some(at), last),
            failures: 0,
            requests: None,
        };
        let report = compare(
            &name,
            Some(at),
            (&bc, before),
            (&ac, after),
            side.split.untimed,
            side.split.unknown_service,
        );
        (report, side.series, side.coverage, Some(at))
    };

    if args.svg.is_some() || args.png.is_some() {
        let m = marker.map(|at| svg::Marker {
            at,
            label: "change".into(),
        });
        let title = format!(
            "{name} per {} by service, before and after the change",
            chart.spec()
        );
        let span = series.first.zip(series.last);
        let text = svg::chart_over(&series, &title, m.as_ref(), span);
        write_charts(&text, args.svg.as_deref(), args.png.as_deref())?;
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => {
            out.write_all(render::verify_text(&report).as_bytes())?;
            let skipped = skipped_by_reason(&coverage);
            out.write_all(coverage_note(&coverage, &skipped).as_bytes())?;
            for path in args.svg.iter().chain(args.png.iter()) {
                writeln!(out, "Chart written to {}.", path.display())?;
            }
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
