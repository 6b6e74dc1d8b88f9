//! The `meshdoctor lab` command line before the binary depends on this crate:
//! `cargo run -p meshdoctor-lab --example lab_cli -- run --scenario sniffing-timeout --out /tmp/lab`.

use clap::Parser as _;

#[derive(clap::Parser, Debug)]
#[command(name = "meshdoctor-lab")]
struct Top {
    #[command(flatten)]
    lab: meshdoctor_lab::cli::Args,
}

fn main() -> std::process::ExitCode {
    let top = Top::parse();
    match meshdoctor_lab::cli::execute(&top.lab) {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
