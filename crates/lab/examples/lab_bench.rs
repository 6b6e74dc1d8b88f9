//! Measure the latency and throughput the lab's sidecar pair adds on loopback:
//! `cargo run --release -p meshdoctor-lab --example lab_bench`.

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let r = rt.block_on(meshdoctor_lab::bench::run(
        meshdoctor_lab::bench::BenchConfig::default(),
    ))?;
    for (name, f) in [("direct", r.direct), ("sidecars+mTLS", r.mesh)] {
        println!(
            "{name:>14}: p50 {:.0} µs  p99 {:.0} µs  {:.0} req/s  errors {}",
            f.p50_us, f.p99_us, f.throughput_rps, f.errors
        );
    }
    println!(
        "added by the sidecar pair: p50 +{:.0} µs, p99 +{:.0} µs",
        r.mesh.p50_us - r.direct.p50_us,
        r.mesh.p99_us - r.direct.p99_us
    );
    Ok(())
}
