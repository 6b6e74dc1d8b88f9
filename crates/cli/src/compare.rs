//! `meshdoctor compare`: follow each connection through the sidecar debug logs and show in
//! which steps failing connections differ from successful ones.
//!
//! Rendering and exit codes only; the journeys and the comparison are `meshdoctor-diagnose`.

use crate::{Format, InputArgs};
use meshdoctor_report::{Style, render_compare};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `compare`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Needs istio-proxy debug logs of the connection loggers, e.g. \
    `istioctl proxy-config log <pod> --level conn_handler:debug,connection:debug,filter:debug`.\n\
    Exit codes: 0 success, 2 on usage or I/O errors."
)]
pub struct Args {
    #[command(flatten)]
    inputs: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Serialize)]
struct CompareJson<'a> {
    compare: &'a meshdoctor_diagnose::engine::CompareOutput,
    journeys: &'a meshdoctor_diagnose::engine::JourneyStats,
    inputs: &'a [meshdoctor_diagnose::engine::InputSummary],
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (inputs, errors, options) = args.inputs.open();
    crate::warn_unreadable(&errors);
    if inputs.is_empty() {
        anyhow::bail!("no readable input among the given paths");
    }
    let (compare, summaries, stats) = meshdoctor_diagnose::compare_inputs(&inputs, &options);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &CompareJson {
                    compare: &compare,
                    journeys: &stats,
                    inputs: &summaries,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            out.write_all(render_compare(&compare, &summaries, &stats, Style::Text).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
