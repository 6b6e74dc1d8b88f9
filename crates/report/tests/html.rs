//! The HTML report: structure snapshots on seed scenarios, no planted secret in any report
//! format, and an end-to-end check in real headless Chromium (no console errors, verdict
//! and chart in the rendered DOM, screenshots saved as artifacts).

#[path = "../../diagnose/tests/common/mod.rs"]
mod common;

use common::{case_inputs, scenario, seed_rules};
use meshdoctor_diagnose::{Diagnosis, EvidenceLine, diagnose};
use meshdoctor_input::InputFile;
use meshdoctor_logs::RunOptions;
use meshdoctor_report::html::{HtmlOptions, chart_bucket, chart_signature, render_html};
use meshdoctor_report::redact::redact_diagnosis;
use meshdoctor_report::{Style, render_diagnosis};
use meshdoctor_timeline::{BucketSpec, Bucketer, CountOptions, CountSink, Dim, Signature};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn inputs(rel: &str) -> Vec<InputFile> {
    case_inputs(&scenario(rel))
}

/// The chart the CLI draws for `--html`: the diagnosis' signature per service over time.
fn chart(ins: &[InputFile], d: &Diagnosis) -> (String, String) {
    let sig = Signature::parse(chart_signature(d)).expect("signature");
    let spec = BucketSpec::parse(chart_bucket(d)).expect("bucket");
    let opts = Arc::new(CountOptions {
        signature: Arc::new(sig),
        bucketer: Bucketer::utc(spec),
        dims: vec![Dim::Service],
        requests: false,
    });
    let counts = meshdoctor_logs::run(ins, &RunOptions::default(), || {
        CountSink::new(Arc::clone(&opts))
    })
    .sink
    .finish();
    let title = format!("{} per {spec}, per service (UTC)", chart_signature(d));
    let svg = meshdoctor_timeline::svg::chart(&counts, &title, None);
    let caption = format!(
        "{} matching records; {} without a timestamp are not drawn.",
        counts.total, counts.untimed
    );
    (svg, caption)
}

fn report(rel: &str, with_chart: bool) -> (Diagnosis, String) {
    let ins = inputs(rel);
    let mut d = diagnose(&ins, &RunOptions::default(), &seed_rules());
    redact_diagnosis(&mut d);
    let (svg, caption) = chart(&ins, &d);
    let opts = HtmlOptions {
        chart_svg: with_chart.then_some(svg.as_str()),
        chart_caption: with_chart.then_some(caption.as_str()),
        keep_secrets: false,
    };
    let html = render_html(&d, &opts);
    (d, html)
}

/// The document without the inlined CSS, JS and chart drawing, with the scenario root
/// made relative: what the snapshot should pin is the structure and the words.
fn structure(html: &str) -> String {
    let root = scenario("").display().to_string();
    let mut s = html.replace(&root, "[SCENARIOS]/");
    for (open, close, what) in [
        ("<style>", "</style>", "css"),
        ("<script>", "</script>", "js"),
        ("<svg", "</svg>", "svg"),
    ] {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find(open) {
            let Some(j) = rest[i..].find(close) else {
                break;
            };
            out.push_str(&rest[..i]);
            out.push_str(&format!("[{what}]"));
            rest = &rest[i + j + close.len()..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

#[test]
fn html_verdict_report_structure() {
    let (d, html) = report("protocol-sniffing-timeout/fires", true);
    assert_eq!(d.verdict, "protocol-sniffing-timeout");
    // Verdict first: nothing but the page heading comes before it.
    let verdict_at = html.find("id=\"verdict\"").expect("verdict");
    let body = html.find("<main>").expect("main");
    assert!(!html[body..verdict_at].contains("<h2"));
    assert!(html.contains("<svg role=\"img\" aria-labelledby=\"chart-heading\""));
    assert!(
        html.contains("class=\"missing\""),
        "journey diff highlights the missing step"
    );
    assert!(html.contains("<details open><summary>"));
    assert!(html.contains("data-copy=\"fix-"));
    // Self-contained: no reference to anything outside the file.
    for needle in [
        "src=\"http",
        "href=\"http:",
        "<link",
        "@import",
        "url(",
        "<iframe",
    ] {
        assert!(!html.contains(needle), "{needle}");
    }
    insta::assert_snapshot!("sniffing_fires_structure", structure(&html));
}

#[test]
fn html_inconclusive_report_structure() {
    let (d, html) = report("protocol-sniffing-timeout/server-side-only", false);
    assert_eq!(d.verdict, "inconclusive");
    assert!(html.contains("Inconclusive"));
    assert!(html.contains("<h2>Collect next</h2>"));
    insta::assert_snapshot!("sniffing_server_only_structure", structure(&html));
}

const SECRETS: &[&str] = &[
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBsYW50ZWQ",
    "PlantedBearer0123456789",
    "PlantedCookie9876",
    "PlantedApiKey4242",
    "PlantedPassw0rd",
    "AKIAPLANTEDKEY123456",
];

fn plant(d: &mut Diagnosis) {
    let lines = [
        format!("GET /orders authorization: Bearer {}", SECRETS[1]),
        format!("'cookie', 'sid={}; theme=dark'", SECRETS[2]),
        format!(
            "\"GET /v1/x?api_key={}&page=2 HTTP/1.1\" 503 UC",
            SECRETS[3]
        ),
        format!("{{\"password\":\"{}\",\"user\":\"app\"}}", SECRETS[4]),
        format!("x-jwt {} key {}", SECRETS[0], SECRETS[5]),
    ];
    let ev = |i: usize| EvidenceLine {
        file: "planted.log".into(),
        line: i as u64 + 1,
        text: lines[i % lines.len()].clone(),
    };
    for f in &mut d.findings {
        f.evidence.extend((0..lines.len()).map(ev));
        f.counter_evidence.push(ev(0));
    }
    for ex in &mut d.compare.failing_examples {
        ex.push(ev(1));
    }
    d.notes.push(lines[2].clone());
}

#[test]
fn no_planted_secret_in_any_report() {
    let ins = inputs("protocol-sniffing-timeout/fires");
    let mut d = diagnose(&ins, &RunOptions::default(), &seed_rules());
    plant(&mut d);

    // The HTML renderer redacts on its own, even without redact_diagnosis...
    let html = render_html(&d, &HtmlOptions::default());
    // ...and keeps the secrets only when asked (proves the planted lines reach the page).
    let kept = render_html(
        &d,
        &HtmlOptions {
            keep_secrets: true,
            ..HtmlOptions::default()
        },
    );
    for s in SECRETS {
        assert!(!html.contains(s), "{s} leaked into the HTML");
        assert!(
            kept.contains(s),
            "{s} was not planted where the report shows it"
        );
    }
    assert!(html.contains("[redacted]"));

    redact_diagnosis(&mut d);
    let json = serde_json_string(&d);
    let text = render_diagnosis(&d, Style::Text);
    let md = render_diagnosis(&d, Style::Markdown);
    for s in SECRETS {
        for (name, out) in [("json", &json), ("text", &text), ("markdown", &md)] {
            assert!(!out.contains(s), "{s} leaked into the {name} report");
        }
    }
}

fn serde_json_string(d: &Diagnosis) -> String {
    // The report crate has no serde_json; Debug prints every field the JSON has.
    format!("{d:?}")
}

// ---------------------------------------------------------------------------------------
// Headless Chromium.

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("MESHDOCTOR_ARTIFACTS")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
        .join("html-report");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// Run Chromium headless on `page` with `extra` arguments; returns (stdout, stderr).
fn run_chromium(bin: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let profile = artifacts().join(format!("profile-{}", std::process::id()));
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()));
    let out = cmd.output().expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Console messages of the page: any at all is a failure (the report logs nothing, so a
/// message is an error, a CSP violation or a blocked fetch).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn chromium_renders_report_without_errors() {
    let Some(bin) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed; CI must install it: apt-get install -y chromium");
        }
        println!(
            "SKIPPED chromium_renders_report_without_errors: no chromium on PATH \
             (install with `apt-get install -y chromium`, or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let dir = artifacts();
    for (name, rel, chart) in [
        ("report", "protocol-sniffing-timeout/fires", true),
        (
            "inconclusive",
            "protocol-sniffing-timeout/server-side-only",
            false,
        ),
    ] {
        let (_, html) = report(rel, chart);
        let page = dir.join(format!("{name}.html"));
        std::fs::write(&page, &html).expect("write report");

        let (dom, err) = run_chromium(&bin, &page, &["--dump-dom".into()]);
        let console = console_lines(&err);
        assert!(console.is_empty(), "console output on {name}: {console:#?}");
        assert!(dom.contains("id=\"verdict\""), "verdict not in the DOM");
        if chart {
            assert!(
                dom.contains("id=\"chart\"") && dom.contains("<rect"),
                "chart not in the DOM"
            );
        }
        for (suffix, size, dark) in [
            ("", "1280,2000", false),
            ("-phone", "390,2400", false),
            ("-dark", "1280,2000", true),
        ] {
            let png = dir.join(format!("{name}{suffix}.png"));
            let mut args = vec![
                format!("--screenshot={}", png.display()),
                format!("--window-size={size}"),
            ];
            if dark {
                args.push("--force-dark-mode".into());
                args.push("--blink-settings=preferredColorScheme=0".into());
            }
            let (_, err) = run_chromium(&bin, &page, &args);
            let console = console_lines(&err);
            assert!(console.is_empty(), "console output: {console:#?}");
            let meta = std::fs::metadata(&png).expect("screenshot written");
            assert!(meta.len() > 10_000, "screenshot too small to show anything");
            println!("screenshot: {}", png.display());
        }
    }
}
