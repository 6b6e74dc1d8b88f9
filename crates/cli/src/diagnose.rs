//! `meshdoctor diagnose`: name the root cause with evidence, fix and verification.
//!
//! Reads the inputs once, hands them to `meshdoctor-diagnose`, renders the result with
//! `meshdoctor-report`, and maps the verdict to the exit code. No domain logic here.

use crate::InputArgs;
use anyhow::Context as _;
use meshdoctor_diagnose::{Diagnosis, RuleSet};
use meshdoctor_input::InputFile;
use meshdoctor_logs::RunOptions;
use meshdoctor_report::html::{HtmlOptions, chart_bucket, chart_signature, render_html};
use meshdoctor_report::redact::redact_diagnosis;
use meshdoctor_report::{Style, render_diagnosis};
use meshdoctor_timeline::{BucketSpec, Bucketer, CountOptions, CountSink, Dim, Signature};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Output formats of `diagnose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum DiagnoseFormat {
    /// Human-readable report: verdict first.
    #[default]
    Text,
    /// The stable JSON contract (verdict, findings, missing_evidence, inputs).
    Json,
    /// The text report as Markdown (for tickets and post-mortems).
    Markdown,
}

/// Arguments of `diagnose`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 1 when a cause is named, 0 when the verdict is \
    `inconclusive` or nothing was found, 2 on usage or I/O errors.\n\n\
    Rules: the built-in knowledge base is always loaded; --rules adds rule files (TOML, \
    one rule per file, or a directory of them); a rule with a built-in's id replaces it. \
    The rule format is described in crates/diagnose/RULES.md."
)]
pub struct Args {
    #[command(flatten)]
    inputs: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: DiagnoseFormat,
    /// Add rules from a TOML file or a directory of them (repeatable).
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Also write a self-contained HTML report (verdict, chart, evidence, fix) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Keep credentials (Authorization, cookies, bearer tokens, JWTs, API keys) in evidence
    /// lines. By default they are masked in every format.
    #[arg(long)]
    no_redact: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut rules = RuleSet::builtin().context("built-in rules")?;
    for path in &args.rules {
        rules
            .load_path(path)
            .with_context(|| format!("loading rules from {}", path.display()))?;
    }
    let (inputs, errors, options) = args.inputs.open();
    crate::warn_unreadable(&errors);
    if inputs.is_empty() {
        anyhow::bail!("no readable input among the given paths");
    }
    let mut diagnosis = meshdoctor_diagnose::diagnose(&inputs, &options, &rules);
    if !args.no_redact {
        redact_diagnosis(&mut diagnosis);
    }
    if let Some(path) = &args.html {
        let (svg, caption) = failures_chart(&inputs, &options, &diagnosis);
        let html = render_html(
            &diagnosis,
            &HtmlOptions {
                chart_svg: svg.as_deref(),
                chart_caption: caption.as_deref(),
                keep_secrets: args.no_redact,
            },
        );
        std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        DiagnoseFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &diagnosis)?;
            writeln!(out)?;
        }
        DiagnoseFormat::Text => {
            out.write_all(render_diagnosis(&diagnosis, Style::Text).as_bytes())?
        }
        DiagnoseFormat::Markdown => {
            out.write_all(render_diagnosis(&diagnosis, Style::Markdown).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(if diagnosis.verdict == "inconclusive" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The failures-per-service chart of the HTML report: one more pass over the inputs that
/// counts the diagnosis' failure signature per service and bucket (stdin cannot be re-read,
/// so the report then falls back to the access-log bars the diagnosis carries).
fn failures_chart(
    inputs: &[InputFile],
    options: &RunOptions,
    d: &Diagnosis,
) -> (Option<String>, Option<String>) {
    let name = chart_signature(d);
    let (Ok(sig), Ok(spec)) = (Signature::parse(name), BucketSpec::parse(chart_bucket(d))) else {
        return (None, None);
    };
    let opts = Arc::new(CountOptions {
        signature: Arc::new(sig),
        bucketer: Bucketer::utc(spec),
        dims: vec![Dim::Service],
        requests: false,
    });
    let counts = meshdoctor_logs::run(inputs, options, || CountSink::new(Arc::clone(&opts)))
        .sink
        .finish();
    if counts.rows.is_empty() {
        return (None, None);
    }
    let svg = meshdoctor_timeline::svg::chart(
        &counts,
        &format!("{name} per {spec}, per service (UTC)"),
        None,
    );
    let caption = format!(
        "{} records matched `{name}`; {} without a timestamp are not drawn.",
        counts.total, counts.untimed
    );
    (Some(svg), Some(caption))
}
