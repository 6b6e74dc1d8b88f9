//! The whole reading pipeline on arbitrary file bytes: must never panic, and must find the
//! same records whether the file is read in one piece or cut into 1 KiB ranges (the
//! pipeline's promise that results do not depend on how the input was cut). With a literal
//! prefilter the same holds, and every record it lets through is a record of the full read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshdoctor_input::{ContentKind, DiscoverOptions, discover};
use meshdoctor_logs::{InputContext, RunOptions, Sink};
use meshdoctor_model::Event;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// Literals as a signature would give them; short ones so that random bytes hit them.
static PREFILTER: LazyLock<Arc<meshdoctor_logs::Prefilter>> = LazyLock::new(|| {
    Arc::new(meshdoctor_logs::Prefilter::new(&["reset", " 503 ", "x"]).expect("valid literals"))
});

/// Keeps where each record started and how many lines it spans, in input order.
#[derive(Default)]
struct Records(Vec<(u64, u32)>);

impl Sink for Records {
    fn event(&mut self, _: &InputContext<'_>, event: &Event<'_>) {
        self.0.push((event.line, event.line_count));
    }
    fn merge(&mut self, later: Self) {
        self.0.extend(later.0);
    }
    fn shift_lines(&mut self, lines: u64) {
        for record in &mut self.0 {
            record.0 += lines;
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    // One file per call so that parallel fuzz jobs (-jobs=N) never share a path.
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("meshdoctor-fuzz-{}-{n}.log", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let (mut inputs, _) = discover(std::slice::from_ref(&path), &DiscoverOptions::default());
    // Sniffing may call arbitrary bytes a config document; parse them as a log anyway.
    for input in &mut inputs {
        input.content = ContentKind::Log;
    }
    let whole = meshdoctor_logs::run(&inputs, &RunOptions::default(), Records::default);
    let cut_options = RunOptions {
        range_bytes: 1024,
        block_bytes: 100,
        use_mmap: false,
        ..RunOptions::default()
    };
    let cut = meshdoctor_logs::run(&inputs, &cut_options, Records::default);
    let filtered = RunOptions {
        prefilter: Some(Arc::clone(&PREFILTER)),
        ..RunOptions::default()
    };
    let filtered_whole = meshdoctor_logs::run(&inputs, &filtered, Records::default);
    let filtered_cut = meshdoctor_logs::run(
        &inputs,
        &RunOptions {
            range_bytes: 1024,
            block_bytes: 100,
            use_mmap: false,
            ..filtered
        },
        Records::default,
    );
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        filtered_whole.sink.0, filtered_cut.sink.0,
        "prefiltered records differ when the file is cut into ranges"
    );
    for record in &filtered_whole.sink.0 {
        assert!(
            whole.sink.0.contains(record),
            "the prefilter produced a record the full read does not have: {record:?}"
        );
    }
    assert_eq!(
        whole.sink.0, cut.sink.0,
        "records differ when the file is cut into ranges"
    );
    let totals = |out: &meshdoctor_logs::RunOutput<Records>| -> Vec<(u64, u64, u64)> {
        out.coverage
            .iter()
            .map(|c| (c.lines, c.events, c.skipped))
            .collect()
    };
    assert_eq!(
        totals(&whole),
        totals(&cut),
        "coverage differs when the file is cut into ranges"
    );
});
