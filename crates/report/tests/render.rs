//! Snapshot tests of the text and Markdown reports on the seed-cause scenarios.

#[path = "../../diagnose/tests/common/mod.rs"]
mod common;

use common::{case_inputs, scenario, seed_rules};
use meshdoctor_diagnose::{compare_inputs, diagnose};
use meshdoctor_logs::RunOptions;
use meshdoctor_report::{Style, render_compare, render_diagnosis};

fn root() -> String {
    scenario("").display().to_string()
}

fn inputs(rel: &str) -> Vec<meshdoctor_input::InputFile> {
    case_inputs(&scenario(rel))
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex::escape(&root()), "[SCENARIOS]/");
    s
}

#[test]
fn text_report_names_the_seed_cause() {
    let rules = seed_rules();
    let d = diagnose(
        &inputs("protocol-sniffing-timeout/fires"),
        &RunOptions::default(),
        &rules,
    );
    let text = render_diagnosis(&d, Style::Text);
    assert!(
        text.starts_with("VERDICT      protocol-sniffing-timeout"),
        "{text}"
    );
    assert!(text.contains("TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST"));
    assert!(text.contains("protocolDetectionTimeout"));
    settings().bind(|| insta::assert_snapshot!("sniffing_fires_text", text));
}

#[test]
fn inconclusive_report_says_what_to_collect() {
    let rules = seed_rules();
    let d = diagnose(
        &inputs("protocol-sniffing-timeout/server-side-only"),
        &RunOptions::default(),
        &rules,
    );
    let text = render_diagnosis(&d, Style::Text);
    assert!(text.starts_with("VERDICT      inconclusive"), "{text}");
    assert!(text.contains("COLLECT NEXT"));
    assert!(text.contains("client sidecar debug log"));
    settings().bind(|| insta::assert_snapshot!("sniffing_server_only_text", text));
    let md = render_diagnosis(&d, Style::Markdown);
    settings().bind(|| insta::assert_snapshot!("sniffing_server_only_markdown", md));
}

#[test]
fn compare_report_points_at_missing_sni() {
    let (c, ins, j) = compare_inputs(
        &inputs("protocol-sniffing-timeout/server-side-only"),
        &RunOptions::default(),
    );
    let text = render_compare(&c, &ins, &j, Style::Text);
    assert!(
        text.contains("lack the `sni (tls:onServerName)` step"),
        "{text}"
    );
    settings().bind(|| insta::assert_snapshot!("compare_server_only_text", text));
}
