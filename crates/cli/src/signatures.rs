//! `meshdoctor signatures`: the failure signatures `timeline` and `verify` count, and what
//! each one matches. The catalog itself lives in `meshdoctor-timeline`.

use crate::Format;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `signatures`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let catalog = meshdoctor_timeline::signature::catalog();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &catalog)?;
            out.write_all(b"\n")?;
        }
        Format::Text => {
            for entry in &catalog {
                let note = if entry.available {
                    ""
                } else {
                    " (not available yet)"
                };
                writeln!(out, "{}{note}  [{}]", entry.name, entry.kinds)?;
                for line in wrap(entry.matches, 88) {
                    writeln!(out, "    {line}")?;
                }
                writeln!(out)?;
            }
            writeln!(
                out,
                "Use with: meshdoctor timeline PATHS --signature NAME [--by service,peer,flag,...]"
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}
