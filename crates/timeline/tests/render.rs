//! Snapshots of every output of a count and a verify report, built from hand-made events
//! fed through the real sink (no parser involved), so layout changes are reviewed.

use meshdoctor_input::PathNames;
use meshdoctor_logs::{InputContext, Sink};
use meshdoctor_model::{
    AccessEntry, AppError, AppRecord, ErrorClass, Event, Origin, Payload, ResponseFlags, Severity,
    Timestamp,
};
use meshdoctor_timeline::verify::{Period, compare, split_counts};
use meshdoctor_timeline::{
    BucketSpec, Bucketer, CountOptions, CountSink, Counts, Dim, Signature, render, svg,
};
use std::borrow::Cow;
use std::sync::Arc;

fn at(s: &str) -> Timestamp {
    Timestamp::from_jiff(s.parse::<jiff::Timestamp>().expect("test timestamp"))
}

fn reset(time: &str, service: &str, peer: &str) -> Event<'static> {
    Event {
        line: 1,
        line_count: 3,
        time: Some(at(time)),
        collector_time: None,
        origin: Origin {
            workload: Some(Cow::Owned(service.into())),
            ..Origin::default()
        },
        payload: Payload::App(Box::new(AppRecord {
            severity: Some(Severity::Error),
            message: Cow::Borrowed("Call failed"),
            stack_trace: Some(Cow::Borrowed(
                "java.net.SocketException: Connection reset\n\tat java.net.SocketInputStream.read(SocketInputStream.java:186)",
            )),
            error: Some(AppError {
                class: ErrorClass::ConnectionReset,
                root_cause: Cow::Borrowed("java.net.SocketException: Connection reset"),
                chain: vec![Cow::Borrowed("java.net.SocketException")],
                peer: Some(Cow::Owned(format!("http://{peer}:8080/api"))),
            }),
            ..AppRecord::default()
        })),
    }
}

fn row(time: &str, service: &str, peer: &str, code: u16, flags: &str) -> Event<'static> {
    Event {
        line: 1,
        line_count: 1,
        time: Some(at(time)),
        collector_time: None,
        origin: Origin {
            workload: Some(Cow::Owned(service.into())),
            ..Origin::default()
        },
        payload: Payload::Access(Box::new(AccessEntry {
            response_code: code,
            response_flags: ResponseFlags::parse(flags),
            upstream_cluster: Some(Cow::Owned(format!(
                "outbound|8080||{peer}.shop.svc.cluster.local"
            ))),
            ..AccessEntry::default()
        })),
    }
}

fn feed(opts: CountOptions, events: &[Event<'static>]) -> Counts {
    let names = PathNames::default();
    let ctx = InputContext {
        file: 0,
        display: "bundle/app.log",
        path_names: &names,
        service_flag: None,
    };
    let opts = Arc::new(opts);
    // Two sinks merged, as the pipeline does with parallel ranges.
    let mut a = CountSink::new(Arc::clone(&opts));
    let mut b = CountSink::new(Arc::clone(&opts));
    let half = events.len() / 2;
    for e in &events[..half] {
        a.event(&ctx, e);
    }
    for e in &events[half..] {
        b.event(&ctx, e);
    }
    a.merge(b);
    a.finish()
}

fn corpus() -> Vec<Event<'static>> {
    let mut v = Vec::new();
    for (day, n_checkout, n_orders) in [(19, 3, 1), (20, 1, 0), (22, 9, 4)] {
        for i in 0..n_checkout {
            v.push(reset(
                &format!("2020-10-{day}T0{i}:15:00Z"),
                "checkout",
                "payments",
            ));
        }
        for i in 0..n_orders {
            v.push(reset(
                &format!("2020-10-{day}T1{i}:40:00Z"),
                "orders",
                "inventory",
            ));
        }
        for i in 0..40 {
            v.push(row(
                &format!("2020-10-{day}T1{}:00:00Z", i % 10),
                "checkout",
                "payments",
                200,
                "-",
            ));
        }
        v.push(row(
            &format!("2020-10-{day}T12:00:00Z"),
            "checkout",
            "payments",
            503,
            "UC",
        ));
        v.push(row(
            &format!("2020-10-{day}T12:30:00Z"),
            "orders",
            "inventory",
            503,
            "UF,URX",
        ));
    }
    // A match without a timestamp is counted apart, never dropped.
    let mut untimed = reset("2020-10-19T00:00:00Z", "checkout", "payments");
    untimed.time = None;
    v.push(untimed);
    v
}

fn options(sig: &str, dims: &str, requests: bool) -> CountOptions {
    CountOptions {
        signature: Arc::new(Signature::parse(sig).expect("signature")),
        bucketer: Bucketer::utc(BucketSpec::parse("1d").expect("bucket")),
        dims: Dim::parse_list(dims).expect("dims"),
        requests,
    }
}

#[test]
fn timeline_outputs() {
    let counts = feed(options("connection-reset", "service", true), &corpus());
    assert_eq!(counts.total, 18);
    assert_eq!(counts.untimed, 1);
    insta::assert_snapshot!("text", render::text(&counts));
    insta::assert_snapshot!("csv", render::csv(&counts));
    insta::assert_json_snapshot!("json", render::json(&counts));
    insta::assert_snapshot!(
        "svg",
        svg::chart(&counts, "connection-reset per 1d by service", None)
    );
    // Over a longer span with a change marked: empty days on both sides, a dashed line.
    let marker = svg::Marker {
        at: at("2020-10-21T12:00:00Z"),
        label: "change".into(),
    };
    let over = svg::chart_over(
        &counts,
        "connection-reset per 1d by service",
        Some(&marker),
        Some((at("2020-10-18T06:00:00Z"), at("2020-10-24T06:00:00Z"))),
    );
    assert_eq!(
        over.matches("<title>").count(),
        5,
        "one rect per non-zero stack part"
    );
    assert!(over.contains(">2020-10-18</text>") && over.contains(">2020-10-24</text>"));
    insta::assert_snapshot!("svg_marker", over);
}

#[test]
fn flags_by_service() {
    let counts = feed(options("status:503", "service,flag", false), &corpus());
    assert_eq!(counts.total, 6);
    insta::assert_snapshot!("flags_csv", render::csv(&counts));
}

#[test]
fn verify_report() {
    let change = at("2020-10-21T00:00:00Z");
    let opts = CountOptions {
        bucketer: Bucketer::split_at(change),
        ..options("connection-reset", "service,peer", false)
    };
    let counts = feed(opts, &corpus());
    let (before, after) = split_counts(&counts, change);
    let period = |s: &str, e: &str| Period {
        start: Some(at(s)),
        end: Some(at(e)),
        hours: 48.0,
        failures: 0,
        requests: None,
    };
    let report = compare(
        "connection-reset",
        Some(change),
        (
            &before,
            period("2020-10-19T00:00:00Z", "2020-10-21T00:00:00Z"),
        ),
        (
            &after,
            period("2020-10-21T00:00:00Z", "2020-10-23T00:00:00Z"),
        ),
        counts.untimed,
        counts.unknown_service,
    );
    insta::assert_snapshot!("verify_text", render::verify_text(&report));
    insta::assert_json_snapshot!("verify_json", report);
}
