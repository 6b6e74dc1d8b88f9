//! The reading pipeline gives the same result however the input is cut and packaged:
//! one range or many, plain or gzip. Also: every line is accounted for.

use meshdoctor_input::{DiscoverOptions, discover};
use meshdoctor_logs::{InputContext, RunOptions, Sink, run};
use meshdoctor_model::Event;
use proptest::prelude::*;
use std::io::Write;

/// Records what the sink saw, in order.
#[derive(Default, Debug)]
struct Seen(Vec<(u64, u32, String)>);

const LITERAL: &str = "Connection reset";

impl Sink for Seen {
    fn event(&mut self, _: &InputContext<'_>, event: &Event<'_>) {
        // Mark events whose content mentions the prefilter literal.
        let mentions = format!("{:?}", event.payload).contains(LITERAL);
        let family = event.payload.family().as_str();
        let mark = if mentions { "*" } else { "" };
        self.0
            .push((event.line, event.line_count, format!("{family}{mark}")));
    }
    fn merge(&mut self, later: Self) {
        self.0.extend(later.0);
    }
    fn shift_lines(&mut self, lines: u64) {
        for seen in &mut self.0 {
            seen.0 += lines;
        }
    }
}

const VOCABULARY: &[&str] = &[
    "2020-10-23T00:26:14.869776Z\tdebug\tenvoy connection\t[external/envoy/source/extensions/transport_sockets/tls/ssl_socket.cc:226] [C3656911] TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
    "2020-10-24T17:37:23.593562Z\tdebug\tenvoy filter\t[external/envoy/source/extensions/filters/listener/tls_inspector/tls_inspector.cc:148] tls:onServerName(), requestedServerName: outbound_.80_._.svc-b.preview.svc.cluster.local",
    "[2024-05-01T10:00:00.123Z] \"GET /api/orders/42 HTTP/1.1\" 503 UC upstream_reset_before_response_started{connection_termination} - \"-\" 0 95 3 - \"-\" \"okhttp/4.12.0\" \"0b6f3c1e\" \"orders:8080\" \"10.244.1.17:8080\" outbound|8080||orders.shop.svc.cluster.local 10.244.2.5:45678 10.96.12.34:8080 10.244.2.5:52110 - default",
    "{\"@timestamp\":\"2024-05-01T10:00:00.123Z\",\"level\":\"ERROR\",\"message\":\"call failed\",\"stack_trace\":\"java.net.SocketException: Connection reset\\n\\tat x.Y(Y.java:1)\\n\"}",
    "2024-05-01 10:00:00.123 ERROR 1 --- [exec-3] c.e.OrdersClient : call failed",
    "java.net.SocketException: Connection reset",
    "\tat java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:328)",
    "Caused by: java.io.IOException: boom",
    "\t... 40 common frames omitted",
    "",
    "{not json",
    "plain words nobody understands",
    "\u{1}\u{2}binary",
    "2024-05-01 10:00:00.123 ERROR 1 --- [exec-3] c.e.X : nul \u{0} inside",
    "\u{0}",
];

fn run_on(
    path: &std::path::Path,
    range_bytes: usize,
) -> (Vec<(u64, u32, String)>, serde_json::Value) {
    run_with(
        path,
        RunOptions {
            range_bytes,
            ..RunOptions::default()
        },
    )
}

fn run_in_blocks(
    path: &std::path::Path,
    range_bytes: usize,
    block_bytes: usize,
) -> (Vec<(u64, u32, String)>, serde_json::Value) {
    run_with(
        path,
        RunOptions {
            range_bytes,
            block_bytes,
            use_mmap: false,
            ..RunOptions::default()
        },
    )
}

fn run_with(
    path: &std::path::Path,
    options: RunOptions,
) -> (Vec<(u64, u32, String)>, serde_json::Value) {
    let (inputs, errors) = discover(&[path.to_path_buf()], &DiscoverOptions::default());
    assert!(errors.is_empty());
    let out = run(&inputs, &options, Seen::default);
    let mut cov = serde_json::to_value(&out.coverage).unwrap();
    // The display name differs between the plain and gzip copies.
    for c in cov.as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("file");
        c.as_object_mut().unwrap().remove("bytes");
    }
    (out.sink.0, cov)
}

fn write_corpus(
    dir: &std::path::Path,
    picks: &[usize],
) -> (std::path::PathBuf, std::path::PathBuf, usize) {
    let mut text = String::new();
    for &i in picks {
        text.push_str(VOCABULARY[i % VOCABULARY.len()]);
        text.push('\n');
    }
    let plain = dir.join("mixed.log");
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.join("mixed.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    (plain, gz, picks.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn same_result_however_the_input_is_cut(picks in prop::collection::vec(0usize..64, 50..400), range in 1024usize..6000, block in 16usize..3000) {
        let dir = tempfile::tempdir().unwrap();
        let (plain, gz, n_lines) = write_corpus(dir.path(), &picks);
        let whole = run_on(&plain, 64 << 20);
        let cut = run_on(&plain, range);
        let streamed = run_on(&gz, range);
        prop_assert_eq!(&whole, &cut);
        prop_assert_eq!(&whole, &streamed);
        // Read in small blocks too: records and lines cut by block ends, not only ranges.
        prop_assert_eq!(&whole, &run_in_blocks(&plain, range, block));
        prop_assert_eq!(&whole, &run_in_blocks(&gz, range, block));
        // With a prefilter, every event whose content mentions the literal is still seen, with
        // the same line numbers; nothing is seen that the full run did not produce (a record
        // may hold the literal in a part its parser drops); every line is still accounted for.
        let prefilter = Some(std::sync::Arc::new(meshdoctor_logs::Prefilter::new(&[LITERAL]).unwrap()));
        for target in [&plain, &gz] {
            let filtered = run_with(target, RunOptions { range_bytes: range, block_bytes: block, use_mmap: false, prefilter: prefilter.clone(), ..RunOptions::default() });
            let mapped = run_with(target, RunOptions { range_bytes: range, block_bytes: block, prefilter: prefilter.clone(), ..RunOptions::default() });
            prop_assert_eq!(&filtered, &mapped);
            let mentioning: Vec<_> = whole.0.iter().filter(|e| e.2.ends_with('*')).cloned().collect();
            let seen_mentioning: Vec<_> = filtered.0.iter().filter(|e| e.2.ends_with('*')).cloned().collect();
            prop_assert_eq!(&seen_mentioning, &mentioning);
            prop_assert!(filtered.0.iter().all(|e| whole.0.contains(e)));
            prop_assert_eq!(&filtered.1[0]["lines"], &whole.1[0]["lines"]);
        }
        // Every physical line is an event line, a skipped line or a blank line.
        let cov = &whole.1[0];
        prop_assert_eq!(cov["lines"].as_u64().unwrap(), n_lines as u64);
        let event_lines: u64 = whole.0.iter().map(|e| u64::from(e.1)).sum();
        prop_assert_eq!(
            event_lines + cov["skipped"].as_u64().unwrap() + cov["blank_lines"].as_u64().unwrap(),
            n_lines as u64
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Each range leaves a mark where one of its lines starts, with that line's number:
    /// reading a line back from the nearest mark finds the line the events were numbered by.
    #[test]
    fn line_marks_point_at_their_lines(picks in prop::collection::vec(0usize..64, 50..400), range in 1024usize..6000, block in 16usize..3000, mapped in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let (plain, _, _) = write_corpus(dir.path(), &picks);
        let bytes = std::fs::read(&plain).unwrap();
        let (inputs, _) = discover(std::slice::from_ref(&plain), &DiscoverOptions::default());
        let options = RunOptions { range_bytes: range, block_bytes: block, use_mmap: mapped, ..RunOptions::default() };
        let out = run(&inputs, &options, Seen::default);
        let marks = &out.coverage[0].line_marks;
        prop_assert!(!marks.is_empty());
        prop_assert!(marks.windows(2).all(|w| w[0].line < w[1].line && w[0].offset < w[1].offset));
        for mark in marks {
            let offset = usize::try_from(mark.offset).unwrap();
            prop_assert!(offset == 0 || bytes[offset - 1] == b'\n', "{mark:?} is not at a line start");
            let before = bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
            prop_assert_eq!(before + 1, mark.line, "{:?}", mark);
        }
    }
}

#[test]
fn list_view_paste_is_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paste.txt");
    std::fs::write(
        &path,
        "{ [-]\nlevel: ERROR\nmessage: boom\nstack_trace: java.net.SocketException: Connection reset\nat x.Y.z(Y.java:1)\ntimestamp: 2020-10-23T00:26:14.871Z\n}\n",
    )
    .unwrap();
    let (seen, cov) = run_on(&path, 64 << 20);
    let cov = &cov[0];
    let used = seen.len() as u64 + cov["skipped_examples"].as_array().unwrap().len() as u64;
    assert_eq!(used, 1, "the paste is one record: {seen:?} {cov}");
    assert_eq!(cov["lines"], 7);
}

/// Inputs the pipeline fuzz target once failed on (`fuzz/regressions/pipeline/`): replayed
/// on every test run with the fuzz target's checks.
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/pipeline");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions folder") {
        let path = entry.unwrap().path();
        let scratch = tempfile::tempdir().unwrap();
        let copy = scratch.path().join("input.log");
        std::fs::copy(&path, &copy).unwrap();
        let prefilter = Some(std::sync::Arc::new(
            meshdoctor_logs::Prefilter::new(&["reset", " 503 ", "x"]).unwrap(),
        ));
        let whole = run_with(&copy, RunOptions::default());
        let cut = run_with(
            &copy,
            RunOptions {
                range_bytes: 1024,
                block_bytes: 100,
                use_mmap: false,
                ..RunOptions::default()
            },
        );
        assert_eq!(whole, cut, "{}", path.display());
        let filtered_whole = run_with(
            &copy,
            RunOptions {
                prefilter: prefilter.clone(),
                ..RunOptions::default()
            },
        );
        let filtered_cut = run_with(
            &copy,
            RunOptions {
                range_bytes: 1024,
                block_bytes: 100,
                use_mmap: false,
                prefilter,
                ..RunOptions::default()
            },
        );
        assert_eq!(filtered_whole.0, filtered_cut.0, "{}", path.display());
        assert_eq!(
            filtered_whole.1[0]["lines"],
            whole.1[0]["lines"],
            "{}",
            path.display()
        );
        assert_eq!(
            filtered_cut.1[0]["lines"],
            whole.1[0]["lines"],
            "{}",
            path.display()
        );
        replayed += 1;
    }
    assert!(
        replayed >= 2,
        "expected the saved fuzz inputs in {}",
        dir.display()
    );
}
