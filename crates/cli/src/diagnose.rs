//! `meshdoctor diagnose`: name the root cause with evidence, fix and verification.
//!
//! Reads the inputs once, hands them to `meshdoctor-diagnose`, renders the result with
//! `meshdoctor-report`, and maps the verdict to the exit code. No domain logic here.

use crate::InputArgs;
use anyhow::Context as _;
use meshdoctor_diagnose::RuleSet;
use meshdoctor_report::{Style, render_diagnosis};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut rules = RuleSet::builtin().context("built-in rules")?;
    for path in &args.rules {
        rules
            .load_path(path)
            .with_context(|| format!("loading rules from {}", path.display()))?;
    }
    let (inputs, errors, options) = args.inputs.open();
    for e in &errors {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("meshdoctor: warning: {e}");
        }
    }
    if inputs.is_empty() {
        anyhow::bail!("no readable input among the given paths");
    }
    let diagnosis = meshdoctor_diagnose::diagnose(&inputs, &options, &rules);
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
