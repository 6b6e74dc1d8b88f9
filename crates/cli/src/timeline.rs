//! `meshdoctor timeline`.
//!
//! Being written in this session; wired so that each part can land on its own.

use std::process::ExitCode;

/// Arguments of `timeline`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Inputs.
    #[arg(value_name = "PATH")]
    paths: Vec<std::path::PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`timeline` is not available in this build yet")
}
