//! Run one lab scenario from the command line (until `meshdoctor lab` is wired):
//! `cargo run -p meshdoctor-lab --example lab_run -- SCENARIO OUT_DIR [TIMEOUT] [mesh-tcp]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: lab_run SCENARIO OUT_DIR [PROTOCOL_DETECTION_TIMEOUT] [mesh-tcp]");
        return ExitCode::from(2);
    };
    let Some(scenario) = meshdoctor_lab::Scenario::from_name(name) else {
        eprintln!("unknown scenario {name}");
        return ExitCode::from(2);
    };
    let mut cfg = meshdoctor_lab::LabConfig::new(scenario, out);
    cfg.protocol_detection_timeout = args.get(3).and_then(|s| meshdoctor_lab::parse_duration(s));
    if args.get(4).is_some_and(|s| s == "mesh-tcp") {
        cfg.fallback = meshdoctor_lab::Fallback::MeshTcp;
    }
    match meshdoctor_lab::run_blocking(cfg) {
        Ok(s) => {
            println!(
                "{}: {} requests, {} failures ({:.1}%), expected {:?}, {:?}, {} ms",
                s.scenario,
                s.requests,
                s.failures,
                s.failure_rate * 100.0,
                s.expected_failure_rate,
                s.failures_by_class,
                s.duration_ms
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lab failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
