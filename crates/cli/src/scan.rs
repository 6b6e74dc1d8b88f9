//! `meshdoctor scan`: what was understood in each input.

use crate::{Format, InputArgs};
use meshdoctor_logs::{FileCoverage, NoSink};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    inputs: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// The JSON document of `scan --format json` (a stable contract: fields may be added, the
/// existing ones keep their names and meaning).
#[derive(Serialize)]
struct ScanReport<'a> {
    inputs: Vec<ScanInput<'a>>,
    config_inputs: Vec<ConfigInput<'a>>,
    errors: &'a [String],
    totals: Totals,
}

#[derive(Serialize)]
struct ScanInput<'a> {
    #[serde(flatten)]
    coverage: &'a FileCoverage,
}

#[derive(Serialize)]
struct ConfigInput<'a> {
    file: &'a str,
    kind: &'static str,
}

#[derive(Serialize, Default)]
struct Totals {
    inputs: usize,
    bytes: u64,
    lines: u64,
    events: u64,
    skipped: u64,
}

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let (inputs, errors, options) = args.inputs.open();
    let output = meshdoctor_logs::run(&inputs, &options, || NoSink);
    let mut totals = Totals {
        inputs: inputs.len(),
        ..Totals::default()
    };
    for c in &output.coverage {
        totals.bytes += c.bytes;
        totals.lines += c.lines;
        totals.events += c.events;
        totals.skipped += c.skipped;
    }
    let config_inputs: Vec<ConfigInput<'_>> = inputs
        .iter()
        .filter(|i| !i.content.is_log())
        .map(|i| ConfigInput {
            file: &i.display,
            kind: i.content.as_str(),
        })
        .collect();
    let report = ScanReport {
        inputs: output
            .coverage
            .iter()
            .map(|coverage| ScanInput { coverage })
            .collect(),
        config_inputs,
        errors: &errors,
        totals,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => write_text(&mut out, &report)?,
    }
    if inputs.is_empty() && !errors.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_text(out: &mut impl Write, report: &ScanReport<'_>) -> std::io::Result<()> {
    for input in &report.inputs {
        let c = input.coverage;
        writeln!(out, "{}", c.display)?;
        writeln!(out, "  kind      {}", c.kind)?;
        writeln!(
            out,
            "  lines     {} ({} events, {} skipped, {} blank)",
            c.lines, c.events, c.skipped, c.blank_lines
        )?;
        if c.families.len() > 1 {
            let mix: Vec<String> = c
                .families
                .iter()
                .map(|(f, n)| format!("{} {n}", f.as_str()))
                .collect();
            writeln!(out, "  mix       {}", mix.join(", "))?;
        }
        match (c.first, c.last) {
            (Some(first), Some(last)) => writeln!(out, "  time      {first} .. {last}")?,
            _ => writeln!(out, "  time      (no timestamps)")?,
        }
        if c.out_of_order > 0 {
            writeln!(
                out,
                "  order     {} events out of time order",
                c.out_of_order
            )?;
        }
        if !c.workloads.is_empty() {
            let names: Vec<&str> = c.workloads.iter().map(String::as_str).collect();
            writeln!(out, "  workloads {}", names.join(", "))?;
        }
        for (reason, n) in &c.skipped_reasons {
            writeln!(out, "  skipped   {n} line(s): {}", reason.describe())?;
        }
        for ex in &c.skipped_examples {
            writeln!(
                out,
                "    {}:{}: {}: {}",
                c.display,
                ex.line,
                reason_name(ex.reason),
                ex.excerpt
            )?;
        }
        if let Some(err) = &c.read_error {
            writeln!(out, "  error     reading stopped early: {err}")?;
        }
    }
    for cfg in &report.config_inputs {
        writeln!(
            out,
            "{}\n  kind      {} (configuration)",
            cfg.file, cfg.kind
        )?;
    }
    for err in report.errors {
        writeln!(out, "error: {err}")?;
    }
    let t = &report.totals;
    writeln!(
        out,
        "\n{} input(s), {} bytes, {} lines: {} events, {} lines skipped",
        t.inputs, t.bytes, t.lines, t.events, t.skipped
    )
}

fn reason_name(reason: meshdoctor_model::SkipReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
