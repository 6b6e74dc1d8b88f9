//! Counts on a generated corpus equal the generator's ground truth exactly: connection-reset
//! exceptions per UTC day per service (two services log with +02:00 / -04:00 offsets, and
//! WARN retry notices mention "Connection reset" without being exceptions), and 503s per
//! response flag, overall and per service.

use meshdoctor_input::{DiscoverOptions, discover};
use meshdoctor_logs::{RunOptions, run};
use meshdoctor_timeline::{BucketSpec, Bucketer, CountOptions, CountSink, Counts, Dim, Signature};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn generator() -> PathBuf {
    // `$MESHDOCTOR_GENLOGS`, else a copy in the workspace's `bench/`, else the shared bench
    // generator next to the workspace.
    if let Some(p) = std::env::var_os("MESHDOCTOR_GENLOGS") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let vendored = root.join("bench/genlogs.py");
    if vendored.exists() {
        return vendored;
    }
    root.join("../shared/bench/genlogs.py")
}

fn corpus(dir: &Path) -> Value {
    let status = Command::new("python3")
        .arg(generator())
        .arg(dir)
        .args(["--size-mb", "8", "--seed", "5", "--jobs", "2"])
        .status()
        .expect("python3 runs genlogs.py");
    assert!(status.success(), "genlogs.py failed");
    let text = std::fs::read_to_string(dir.join("ground_truth.json")).expect("ground truth");
    serde_json::from_str(&text).expect("ground truth is JSON")
}

fn count(paths: &[PathBuf], signature: &str, dims: &str) -> Counts {
    let (inputs, errors) = discover(paths, &DiscoverOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let opts = Arc::new(CountOptions {
        signature: Arc::new(Signature::parse(signature).expect("signature")),
        bucketer: Bucketer::utc(BucketSpec::parse("1d").expect("bucket")),
        dims: Dim::parse_list(dims).expect("dims"),
        requests: false,
    });
    let out = run(&inputs, &RunOptions::default(), || {
        CountSink::new(Arc::clone(&opts))
    });
    out.sink.finish()
}

/// `{day: {service: n}}` from rows grouped by service.
fn by_day_service(c: &Counts) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut m: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &c.rows {
        let day = c.bucketer.label(r.start);
        *m.entry(day)
            .or_default()
            .entry(r.group[0].clone())
            .or_default() += r.count;
    }
    m
}

fn table(v: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    serde_json::from_value(v.clone()).expect("a two-level table of counts")
}

#[test]
fn counts_equal_ground_truth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = corpus(dir.path());
    let app = vec![dir.path().join("app")];
    let all = vec![
        dir.path().join("app"),
        dir.path().join("envoy-access"),
        dir.path().join("envoy-debug"),
    ];

    // Connection resets per UTC day per service, over every input (the debug and access
    // logs must contribute nothing).
    let resets = count(&all, "connection-reset", "service");
    assert_eq!(resets.untimed, 0);
    assert_eq!(resets.unknown_service, 0);
    assert_eq!(
        by_day_service(&resets),
        table(&truth["app"]["reset_by_day_service"])
    );
    assert_eq!(
        resets.total,
        truth["app"]["reset_exceptions_total"]
            .as_u64()
            .unwrap_or(u64::MAX)
    );
    // The same on the app logs alone.
    assert_eq!(
        count(&app, "connection-reset", "service").total,
        resets.total
    );

    // 503s per response flag, and per service and flag.
    let by_flag = count(&all, "status:503", "flag");
    let mut flags: BTreeMap<String, u64> = BTreeMap::new();
    for r in &by_flag.rows {
        *flags.entry(r.group[0].clone()).or_default() += r.count;
    }
    let want: BTreeMap<String, u64> =
        serde_json::from_value(truth["envoy_access"]["503_by_flag"].clone()).expect("flags");
    assert_eq!(flags, want);

    let by_service_flag = count(&all, "status:503", "service,flag");
    let mut sf: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &by_service_flag.rows {
        *sf.entry(r.group[0].clone())
            .or_default()
            .entry(r.group[1].clone())
            .or_default() += r.count;
    }
    assert_eq!(sf, table(&truth["envoy_access"]["503_by_service_flag"]));
}
