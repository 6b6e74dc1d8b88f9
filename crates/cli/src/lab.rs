//! `meshdoctor lab`: run the real-socket miniature mesh of crate `meshdoctor-lab` and print
//! what it did. Argument types and report text live in `meshdoctor_lab::cli`; this file only
//! prints (library crates never print).

use std::process::ExitCode;

/// Arguments of `lab` (`run`, `list`, `bench`).
pub type Args = meshdoctor_lab::cli::Args;

/// Run `meshdoctor lab ...`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let text = meshdoctor_lab::cli::execute(args)?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
