//! `meshdoctor config`: the effective mesh settings per service port and the config-only
//! risks, read from what the operator collected.
//!
//! Reading and judging live in `meshdoctor-config`; this module only finds the inputs, feeds
//! stdin (which it owns here) and writes the report. Exit code 0 whether or not risks were
//! found: a config listing is not a diagnosis.

use crate::Format;
use meshdoctor_config::{ConfigSet, Report};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `config`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config files or directories: the `istio` ConfigMap or its `data.mesh`, IstioOperator or
    /// Helm values, `kubectl get ... -o yaml|json` dumps, Envoy config dumps, Envoy stats.
    /// `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (inputs, errors) =
        meshdoctor_input::discover(&args.paths, &meshdoctor_input::DiscoverOptions::default());
    let mut set: ConfigSet = meshdoctor_config::load(&inputs);
    for input in inputs
        .iter()
        .filter(|i| i.access == meshdoctor_input::Access::Stdin)
    {
        let mut bytes = Vec::new();
        std::io::stdin().lock().read_to_end(&mut bytes)?;
        let kind = meshdoctor_input::sniff_content(&bytes);
        set.add_bytes(input.id, &input.display, kind, &bytes);
    }
    let report = Report::new(&set);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct WithErrors<'a> {
                #[serde(flatten)]
                report: &'a Report,
                errors: Vec<String>,
            }
            let doc = WithErrors {
                report: &report,
                errors: errors.iter().map(ToString::to_string).collect(),
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Text => {
            out.write_all(report.to_text().as_bytes())?;
            for e in &errors {
                writeln!(out, "warning: {e}")?;
            }
        }
    }
    out.flush()?;
    if inputs.is_empty() && !errors.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
