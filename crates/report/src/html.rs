//! Renders a diagnosis as ONE self-contained HTML file to share during an incident: verdict
//! and confidence first, the failures-per-service chart, the journey diff, the evidence
//! lines (grouped by file, collapsible), the runner-up causes and why they were ruled out,
//! the fix and verify commands with copy buttons, and the inputs and what was skipped.
//!
//! Self-contained means no network at all: the CSS and the few lines of JS are inlined from
//! `assets/`, the chart is inline SVG, and a Content-Security-Policy forbids any fetch. Light
//! and dark mode follow `prefers-color-scheme`; the layout reflows at phone width.
//!
//! The [`Diagnosis`] carries no per-bucket counts, so the time chart is passed in as
//! [`HtmlOptions::chart_svg`] (the caller draws it with `meshdoctor_timeline::svg::chart`,
//! choosing the signature and bucket with [`chart_signature`] and [`chart_bucket`]). Without
//! it the report draws the failing access rows per service that the diagnosis does carry.
//!
//! Evidence text is redacted with [`crate::redact::redact`] unless
//! [`HtmlOptions::keep_secrets`] is set. Rendering only: no diagnosis logic and no I/O.

use crate::redact::redact;
use meshdoctor_diagnose::engine::{CompareOutput, Finding, InputSummary};
use meshdoctor_diagnose::{Diagnosis, EvidenceLine};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const CSS: &str = include_str!("../assets/report.css");
const JS: &str = include_str!("../assets/copy.js");

/// Failing journey patterns shown in the journey diff.
const MAX_PATTERNS: usize = 3;
/// Services in the fallback bar chart.
const MAX_BARS: usize = 8;
/// Largest chart SVG embedded; a bigger one is replaced by a note (keeps the file shareable).
const MAX_CHART_BYTES: usize = 2 * 1024 * 1024;

/// Options of [`render_html`]. `Default` gives a redacted report with the fallback chart.
#[derive(Clone, Debug, Default)]
pub struct HtmlOptions<'a> {
    /// A chart of failures per service over time, as an SVG document, typically
    /// `meshdoctor_timeline::svg::chart(&counts, title, marker)`. It is embedded inline (an
    /// XML declaration or doctype before `<svg` is dropped); anything that is not a plain
    /// `<svg>` element, or that contains a script, is refused and the fallback is drawn.
    pub chart_svg: Option<&'a str>,
    /// Caption under the chart: what was counted, bucket width and time zone.
    pub chart_caption: Option<&'a str>,
    /// Keep secrets in evidence lines (`--no-redact`). Off by default.
    pub keep_secrets: bool,
}

/// The signature to chart for this diagnosis (a `meshdoctor_timeline::Signature` name):
/// the failure the applications saw most, else `reset-before-headers` when only access logs
/// show failures, else `connection-reset`.
#[must_use]
pub fn chart_signature(d: &Diagnosis) -> &'static str {
    let get = |k: &str| d.app_errors.get(k).copied().unwrap_or(0);
    let candidates = [
        (get("connection-reset"), "connection-reset"),
        (
            get("envoy-reset-before-headers") + get("closed-without-response"),
            "reset-before-headers",
        ),
        (get("tls-handshake"), "tls-handshake-error"),
    ];
    let best = candidates
        .iter()
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n)
        .map(|(_, s)| *s);
    match best {
        Some(s) => s,
        None if d.traffic.failing > 0 => "reset-before-headers",
        None => "connection-reset",
    }
}

/// A bucket width (a `meshdoctor_timeline::BucketSpec`) that gives a readable number of bars
/// for the time span of the findings: `10s` up to 5 minutes, `1m` up to 2 hours, `5m` up to
/// 8 hours, `1h` up to 3 days, `1d` beyond or when the span is unknown.
#[must_use]
pub fn chart_bucket(d: &Diagnosis) -> &'static str {
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    for f in &d.findings {
        for t in [&f.first, &f.last].into_iter().flatten() {
            if let Ok(ts) = meshdoctor_timeline::parse_instant(t, "UTC") {
                let s = ts.seconds();
                lo = Some(lo.map_or(s, |l| l.min(s)));
                hi = Some(hi.map_or(s, |h| h.max(s)));
            }
        }
    }
    match (lo, hi) {
        (Some(a), Some(b)) => match b.saturating_sub(a) {
            s if s <= 300 => "10s",
            s if s <= 2 * 3600 => "1m",
            s if s <= 8 * 3600 => "5m",
            s if s <= 3 * 86_400 => "1h",
            _ => "1d",
        },
        _ => "1d",
    }
}

/// Render the whole report as one HTML document.
#[must_use]
pub fn render_html(d: &Diagnosis, opts: &HtmlOptions<'_>) -> String {
    let mut h = Html {
        s: String::with_capacity(64 * 1024),
        keep_secrets: opts.keep_secrets,
        ids: 0,
    };
    let inconclusive = d.verdict == "inconclusive";
    let top = d.findings.first();
    let title = if inconclusive {
        "meshdoctor: inconclusive".to_string()
    } else {
        format!("meshdoctor: {}", d.verdict)
    };
    h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // No fetch of any kind: the report must open the same offline, in a chat preview or a
    // mail attachment, and must not leak that it was opened.
    h.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n");
    h.raw("<meta name=\"color-scheme\" content=\"light dark\">\n");
    let _ = writeln!(h.s, "<title>{}</title>", esc(&title));
    let _ = writeln!(h.s, "<style>\n{CSS}</style>\n</head>\n<body>\n<main>");
    h.raw("<h1>meshdoctor diagnosis</h1>\n");

    verdict_section(&mut h, d, top);
    chart_section(&mut h, d, opts);
    journey_section(&mut h, &d.compare);

    if inconclusive {
        for f in d.findings.iter().take(2) {
            let _ = writeln!(
                h.s,
                "<h2>Candidate: <code>{}</code> ({:.2})</h2>",
                esc(&f.cause),
                f.confidence
            );
            finding_sections(&mut h, f, false, 3);
        }
    } else if let Some(f) = top {
        finding_sections(&mut h, f, true, 2);
    }
    ruled_out_section(&mut h, d, inconclusive);
    traffic_section(&mut h, d);
    inputs_section(&mut h, d);

    h.raw("<footer><p>Generated by meshdoctor. This file is self-contained: it loads nothing from the network.");
    if !opts.keep_secrets {
        h.raw(" Credentials found in evidence lines are shown as <code>[redacted]</code>.");
    }
    h.raw("</p></footer>\n</main>\n");
    h.raw("<p id=\"copy-status\" class=\"sr\" role=\"status\" aria-live=\"polite\"></p>\n");
    let _ = writeln!(h.s, "<script>\n{JS}</script>\n</body>\n</html>");
    h.s
}

struct Html {
    s: String,
    keep_secrets: bool,
    ids: usize,
}

impl Html {
    fn raw(&mut self, s: &str) {
        self.s.push_str(s);
    }
    fn id(&mut self, prefix: &str) -> String {
        self.ids += 1;
        format!("{prefix}-{}", self.ids)
    }
    /// Evidence text, redacted unless asked not to.
    fn ev<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.keep_secrets {
            Cow::Borrowed(text)
        } else {
            redact(text)
        }
    }
}

fn verdict_section(h: &mut Html, d: &Diagnosis, top: Option<&Finding>) {
    let inconclusive = d.verdict == "inconclusive";
    let _ = writeln!(
        h.s,
        "<section class=\"verdict{}\" aria-labelledby=\"verdict-label\">",
        if inconclusive { " inconclusive" } else { "" }
    );
    h.raw("<p class=\"label\" id=\"verdict-label\">Verdict</p>\n");
    let conf = d.confidence.clamp(0.0, 1.0);
    if inconclusive {
        h.raw("<p class=\"cause\" id=\"verdict\">Inconclusive</p>\n");
        let _ = writeln!(
            h.s,
            "<p class=\"title\">No cause clears the bar (confidence &ge; {:.2} and a lead of {:.2} over the runner-up).</p>",
            d.bar.min_confidence, d.bar.min_margin
        );
        if d.findings.is_empty() {
            h.raw("<p>No known failure signature was found in the inputs.</p>\n");
        } else {
            let lead: Vec<String> = d
                .findings
                .iter()
                .take(3)
                .map(|f| format!("<code>{}</code> {:.2}", esc(&f.cause), f.confidence))
                .collect();
            let _ = writeln!(h.s, "<p>Leading candidates: {}.</p>", lead.join(", "));
        }
    } else if let Some(f) = top {
        let _ = writeln!(
            h.s,
            "<p class=\"cause\" id=\"verdict\">{}</p>\n<p class=\"title\">{}{}</p>",
            esc(&f.cause),
            esc(&f.title),
            match f.category {
                meshdoctor_diagnose::rules::Category::Mesh => " <span class=\"badge\">mesh</span>",
                meshdoctor_diagnose::rules::Category::NotMesh =>
                    " <span class=\"badge\">not the mesh</span>",
            }
        );
    }
    let pct = (conf * 100.0).round();
    let _ = writeln!(
        h.s,
        "<div class=\"meter\"><div class=\"bar\" role=\"meter\" aria-label=\"confidence\" aria-valuemin=\"0\" aria-valuemax=\"1\" aria-valuenow=\"{conf:.2}\"><div class=\"fill\" style=\"width:{pct}%\"></div></div><span>confidence <strong>{conf:.2}</strong></span></div>"
    );
    if let (false, Some(f)) = (inconclusive, top) {
        let _ = writeln!(h.s, "<p>{}</p>", rich(&h.ev(&f.summary)));
        h.raw("<dl class=\"facts\">\n");
        if !f.workload_pairs.is_empty() {
            let pairs: Vec<String> = f
                .workload_pairs
                .iter()
                .map(|p| format!("<code>{}</code>", esc(p)))
                .collect();
            let _ = writeln!(
                h.s,
                "<dt>Affected (caller &rarr; callee)</dt><dd>{}</dd>",
                pairs.join(", ")
            );
        } else if !f.workloads.is_empty() {
            let _ = writeln!(
                h.s,
                "<dt>Affected</dt><dd>{}</dd>",
                esc(&f.workloads.join(", "))
            );
        }
        let _ = writeln!(
            h.s,
            "<dt>Occurrences</dt><dd>{}</dd>\n<dt>When</dt><dd>{}</dd>",
            f.occurrences,
            esc(&when(f))
        );
        let _ = writeln!(
            h.s,
            "<dt>Istio version</dt><dd>{}</dd>",
            esc(&d.istio_version)
        );
        h.raw("</dl>\n");
    }
    if inconclusive && !d.missing_evidence.is_empty() {
        h.raw("<h2>Collect next</h2>\n");
        commands(h, &d.missing_evidence, "collect", "collection step");
    }
    h.raw("</section>\n");
}

fn when(f: &Finding) -> String {
    match (&f.first, &f.last) {
        (Some(a), Some(b)) if a != b => format!("{a} .. {b}"),
        (Some(a), _) => a.clone(),
        _ => "no timestamps".into(),
    }
}

fn chart_section(h: &mut Html, d: &Diagnosis, opts: &HtmlOptions<'_>) {
    let given = opts.chart_svg.and_then(inline_svg);
    if let Some(svg) = given {
        h.raw("<h2 id=\"chart-heading\">Failures over time, per service</h2>\n");
        h.raw("<figure>\n<div class=\"chart\" id=\"chart\">\n");
        // Name the image for screen readers on the root element.
        let labelled = svg.replacen(
            "<svg",
            "<svg role=\"img\" aria-labelledby=\"chart-heading\"",
            1,
        );
        h.raw(&labelled);
        h.raw("\n</div>\n");
        if let Some(c) = opts.chart_caption {
            let _ = writeln!(h.s, "<figcaption>{}</figcaption>", esc(c));
        }
        h.raw("</figure>\n");
        return;
    }
    // Fallback: failing access rows per service, from what the diagnosis carries.
    let mut per: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &d.traffic.failing_by {
        *per.entry(r.workload.as_str()).or_default() += r.count;
    }
    if per.is_empty() {
        return;
    }
    let mut bars: Vec<(&str, u64)> = per.into_iter().collect();
    bars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    bars.truncate(MAX_BARS);
    h.raw("<h2 id=\"chart-heading\">Failing requests per service</h2>\n");
    h.raw("<figure>\n<div class=\"chart adaptive\" id=\"chart\">\n");
    h.raw(&bar_chart(&bars));
    h.raw("\n</div>\n");
    let _ = writeln!(
        h.s,
        "<figcaption>{} of {} access-log rows failed; no time series was given, so this counts the whole input.</figcaption>",
        d.traffic.failing, d.traffic.rows
    );
    h.raw("</figure>\n");
}

/// The `<svg>…</svg>` element of an SVG document, or `None` when it is not one we can
/// embed safely.
fn inline_svg(doc: &str) -> Option<&str> {
    if doc.len() > MAX_CHART_BYTES {
        return None;
    }
    let start = doc.find("<svg")?;
    let end = doc.rfind("</svg>")? + "</svg>".len();
    if end <= start {
        return None;
    }
    let svg = doc.get(start..end)?;
    let lower = svg.to_ascii_lowercase();
    if lower.contains("<script")
        || lower.contains("<foreignobject")
        || lower.contains("javascript:")
        || has_event_attribute(&lower)
    {
        return None;
    }
    Some(svg)
}

/// True when `svg` has an `on…=` attribute (an event handler).
fn has_event_attribute(svg: &str) -> bool {
    let b = svg.as_bytes();
    let mut from = 0;
    while let Some(i) = svg.get(from..).and_then(|t| t.find(" on")) {
        let mut j = from + i + 3;
        while b.get(j).is_some_and(u8::is_ascii_alphabetic) {
            j += 1;
        }
        while b.get(j).is_some_and(|c| *c == b' ') {
            j += 1;
        }
        if j > from + i + 3 && b.get(j) == Some(&b'=') {
            return true;
        }
        from = from + i + 3;
    }
    false
}

/// Horizontal bars drawn in `currentColor` so they follow light and dark mode.
fn bar_chart(bars: &[(&str, u64)]) -> String {
    const W: f64 = 720.0;
    const LABEL: f64 = 220.0;
    const ROW: f64 = 28.0;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let height = ROW * bars.len() as f64 + 8.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"chart-heading\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\" fill=\"currentColor\">"
    );
    for (i, (name, n)) in bars.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW;
        let w = ((W - LABEL - 80.0) * (*n as f64) / max).max(1.0);
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"#e15759\"><title>{}: {n}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
            LABEL - 8.0,
            y + 17.0,
            esc(&truncate(name, 30)),
            y + 3.0,
            ROW - 8.0,
            esc(name),
            LABEL + w + 6.0,
            y + 17.0
        );
    }
    s.push_str("</svg>");
    s
}

fn journey_section(h: &mut Html, c: &CompareOutput) {
    let r = &c.result;
    if r.compared == 0 || r.failing.is_empty() {
        return;
    }
    h.raw("<h2 id=\"journeys\">Failing vs. succeeding connections</h2>\n");
    let _ = writeln!(
        h.s,
        "<p>{} connections compared from sidecar debug logs: {} succeeding, {} failing. Steps the failing connections lack are <span class=\"chip missing\">outlined in dashes</span>; steps only they have are <span class=\"chip extra\">outlined</span>.</p>",
        r.compared, r.succeeding_count, r.failing_count
    );
    for (i, f) in r.failing.iter().take(MAX_PATTERNS).enumerate() {
        h.raw("<div class=\"journey\">\n");
        let _ = writeln!(
            h.s,
            "<h3>Pattern {} ({} connection{})</h3>\n<p>{}</p>",
            i + 1,
            f.pattern.count,
            if f.pattern.count == 1 { "" } else { "s" },
            rich(&f.headline)
        );
        let nearest = f.nearest.and_then(|n| r.succeeding.get(n));
        h.raw("<p class=\"rowlabel\">Failing</p>\n<ol class=\"steps\" aria-label=\"steps of the failing connections\">");
        for k in &f.pattern.steps {
            let class = if f.extra.contains(k) {
                " class=\"extra\""
            } else if k.is_failure() {
                " class=\"fail\""
            } else {
                ""
            };
            let note = if f.extra.contains(k) {
                " <span class=\"sr\">(not in the succeeding connections)</span>"
            } else {
                ""
            };
            let _ = write!(h.s, "<li{class}>{}{note}</li>", esc(k.name()));
        }
        // Missing steps shown at the end of the failing row too, so the gap is visible
        // where the reader looks.
        for k in &f.missing {
            let _ = write!(
                h.s,
                "<li class=\"missing\">{} <span>(missing)</span></li>",
                esc(k.name())
            );
        }
        h.raw("</ol>\n");
        if let Some(s) = nearest {
            let _ = writeln!(
                h.s,
                "<p class=\"rowlabel\">Succeeding ({} connection{})</p>",
                s.count,
                if s.count == 1 { "" } else { "s" }
            );
            h.raw("<ol class=\"steps\" aria-label=\"steps of the succeeding connections\">");
            for k in &s.steps {
                let missing = f.missing.contains(k);
                let _ = write!(
                    h.s,
                    "<li{}>{}{}</li>",
                    if missing { " class=\"missing\"" } else { "" },
                    esc(k.name()),
                    if missing {
                        " <span>(missing in failing)</span>"
                    } else {
                        ""
                    }
                );
            }
            h.raw("</ol>\n");
        }
        if let Some(ex) = c.failing_examples.get(i).filter(|e| !e.is_empty()) {
            evidence_group(h, "Example failing connection", ex, false);
        }
        h.raw("</div>\n");
    }
}

fn finding_sections(h: &mut Html, f: &Finding, verdict: bool, level: u8) {
    let hx = if level >= 3 { "h3" } else { "h2" };
    if !verdict {
        let _ = writeln!(h.s, "<p>{}</p>", rich(&h.ev(&f.summary)));
    }
    // Anchors only on the verdict's sections, so ids stay unique.
    let anchor = |name: &str| {
        if verdict {
            format!(" id=\"{name}\"")
        } else {
            String::new()
        }
    };
    let _ = writeln!(h.s, "<{hx}{}>Evidence</{hx}>", anchor("evidence"));
    let shown: Vec<_> = f.items.iter().filter(|i| i.count > 0 || i.fired).collect();
    if !shown.is_empty() {
        h.raw("<ul class=\"items\">\n");
        for i in shown {
            let (class, mark, label) = match (i.fired, i.weight > 0.0) {
                (true, true) => ("for", "+", "supports"),
                (true, false) => ("against", "&minus;", "speaks against"),
                _ => ("unseen", "?", "seen but not counted"),
            };
            let rate = i
                .rate
                .map(|r| format!(", {:.1}% of traffic", r * 100.0))
                .unwrap_or_default();
            let wl = if i.workloads.is_empty() {
                String::new()
            } else {
                format!(" in {}", i.workloads.join(", "))
            };
            let _ = write!(
                h.s,
                "<li><span class=\"mark {class}\" aria-hidden=\"true\">{mark}</span><span class=\"sr\">{label}: </span>{} <span class=\"muted\">({}&times;{}{})</span>",
                rich(&i.means),
                i.count,
                esc(&rate),
                esc(&wl)
            );
            if let Some(n) = &i.not_counted {
                let _ = write!(h.s, " <span class=\"muted\">not counted: {}</span>", esc(n));
            }
            h.raw("</li>\n");
        }
        h.raw("</ul>\n");
    }
    let unseen: Vec<&str> = f
        .items
        .iter()
        .filter(|i| i.count == 0 && i.weight > 0.0)
        .map(|i| i.means.as_str())
        .collect();
    if !unseen.is_empty() {
        let _ = writeln!(
            h.s,
            "<p class=\"muted\">Not seen: {}</p>",
            rich(&unseen.join("; "))
        );
    }
    // Evidence lines grouped by file; the first group open so the proof is one glance away.
    let mut first = true;
    for (file, lines) in group_by_file(&f.evidence) {
        evidence_group(h, file, &lines, first);
        first = false;
    }
    if !f.counter_evidence.is_empty() {
        evidence_group(h, "Lines that speak against it", &f.counter_evidence, false);
    }
    if verdict {
        let _ = writeln!(
            h.s,
            "<{hx}{}>Why it resets</{hx}>\n<p>{}</p>",
            anchor("mechanism"),
            rich(&f.mechanism)
        );
        if let Some(v) = &f.versions {
            let _ = writeln!(h.s, "<p class=\"muted\">Applies to {}.</p>", esc(v));
        }
    }
    if verdict || f.confidence >= 0.3 {
        let _ = writeln!(
            h.s,
            "<{hx}{}>{}</{hx}>",
            anchor("fix"),
            if verdict { "Fix" } else { "Fix, if confirmed" }
        );
        commands(h, &f.fix, "fix", "fix step");
        let _ = writeln!(h.s, "<{hx}{}>Verify</{hx}>", anchor("verify"));
        commands(h, &f.verify, "verify", "verify step");
    }
    if verdict && !f.references.is_empty() {
        let _ = writeln!(h.s, "<{hx}>References</{hx}>\n<ul>");
        for r in &f.references {
            if r.starts_with("https://") && !r.contains(['"', '<', '>', ' ']) {
                let _ = writeln!(h.s, "<li><a href=\"{0}\">{0}</a></li>", esc(r));
            } else {
                let _ = writeln!(h.s, "<li>{}</li>", esc(r));
            }
        }
        h.raw("</ul>\n");
    }
}

fn group_by_file(lines: &[EvidenceLine]) -> Vec<(&str, Vec<EvidenceLine>)> {
    let mut out: Vec<(&str, Vec<EvidenceLine>)> = Vec::new();
    for l in lines {
        match out.iter_mut().find(|(f, _)| *f == l.file) {
            Some((_, v)) => v.push(l.clone()),
            None => out.push((l.file.as_str(), vec![l.clone()])),
        }
    }
    out
}

fn evidence_group(h: &mut Html, title: &str, lines: &[EvidenceLine], open: bool) {
    let _ = writeln!(
        h.s,
        "<details{}><summary>{} <span class=\"muted\">({} line{})</span></summary>\n<ol class=\"lines\">",
        if open { " open" } else { "" },
        esc(title),
        lines.len(),
        if lines.len() == 1 { "" } else { "s" }
    );
    for l in lines {
        let text = h.ev(&l.text).into_owned();
        let _ = writeln!(
            h.s,
            "<li><span class=\"ln\" title=\"{0}:{1}\">{2}:{1}</span><code>{3}</code></li>",
            esc(&l.file),
            l.line,
            esc(short_file(&l.file)),
            esc(&text)
        );
    }
    h.raw("</ol>\n</details>\n");
}

/// The last two path components: enough to find the file, short enough for a phone.
fn short_file(path: &str) -> &str {
    let mut cut = path.len();
    for _ in 0..2 {
        match path.get(..cut).and_then(|p| p.rfind('/')) {
            Some(i) => cut = i,
            None => return path,
        }
    }
    path.get(cut + 1..).unwrap_or(path)
}

/// A numbered list of commands, each with a copy button.
fn commands(h: &mut Html, steps: &[String], prefix: &str, what: &str) {
    h.raw("<ol class=\"cmds\">\n");
    for (n, step) in steps.iter().enumerate() {
        let id = h.id(prefix);
        let _ = writeln!(
            h.s,
            "<li><div class=\"cmd\"><pre id=\"{id}\">{}</pre><button type=\"button\" class=\"copy\" data-copy=\"{id}\" aria-label=\"Copy {what} {}\">Copy</button></div></li>",
            esc(step),
            n + 1
        );
    }
    h.raw("</ol>\n");
}

fn ruled_out_section(h: &mut Html, d: &Diagnosis, inconclusive: bool) {
    let others: Vec<&Finding> = d
        .findings
        .iter()
        .skip(if inconclusive { 2 } else { 1 })
        .collect();
    if others.is_empty() {
        return;
    }
    h.raw("<h2 id=\"ruled-out\">Other candidates, and why they are not the verdict</h2>\n<ul class=\"ruled\">\n");
    for f in others {
        let _ = writeln!(
            h.s,
            "<li><code>{}</code> <span class=\"muted\">({:.2})</span>: {}</li>",
            esc(&f.cause),
            f.confidence,
            rich(f.ruled_out.as_deref().unwrap_or("below the bar"))
        );
    }
    h.raw("</ul>\n");
}

fn traffic_section(h: &mut Html, d: &Diagnosis) {
    if !d.traffic.failing_by.is_empty() {
        h.raw("<h2>Failing traffic (access logs)</h2>\n");
        let _ = writeln!(
            h.s,
            "<p>{} of {} access rows failed.</p>\n<div class=\"table\"><table>\n<thead><tr><th scope=\"col\">Service</th><th scope=\"col\">Direction</th><th scope=\"col\" class=\"num\">Code</th><th scope=\"col\">Flags</th><th scope=\"col\">Cluster</th><th scope=\"col\" class=\"num\">Rows</th><th scope=\"col\" class=\"num\">Share</th></tr></thead><tbody>",
            d.traffic.failing, d.traffic.rows
        );
        for r in d.traffic.failing_by.iter().take(12) {
            let _ = writeln!(
                h.s,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{:.0}%</td></tr>",
                esc(&r.workload),
                esc(&r.direction),
                r.code,
                esc(&r.flags),
                esc(&r.cluster),
                r.count,
                r.rate * 100.0
            );
        }
        h.raw("</tbody></table></div>\n");
    }
    if !d.app_errors.is_empty() {
        h.raw("<h2>Application errors</h2>\n<ul>\n");
        for (c, n) in &d.app_errors {
            let _ = writeln!(h.s, "<li><code>{}</code>: {n}</li>", esc(c));
        }
        h.raw("</ul>\n");
    }
}

fn inputs_section(h: &mut Html, d: &Diagnosis) {
    h.raw("<h2 id=\"inputs\">Inputs and coverage</h2>\n");
    h.raw("<div class=\"table\"><table>\n<thead><tr><th scope=\"col\">File</th><th scope=\"col\">Kind</th><th scope=\"col\" class=\"num\">Lines</th><th scope=\"col\" class=\"num\">Skipped</th><th scope=\"col\">Why skipped</th></tr></thead><tbody>\n");
    for i in &d.inputs {
        input_row(h, i);
    }
    h.raw("</tbody></table></div>\n<ul>\n");
    let j = &d.journeys;
    if j.journeys > 0 {
        let _ = writeln!(
            h.s,
            "<li>{} connection journeys from {} sidecar lines; {} restarts; {} listener-filter lines without a connection{}.</li>",
            j.journeys,
            j.steps,
            j.restarts,
            j.orphan_listener_lines,
            if j.steps_dropped > 0 {
                format!("; {} steps dropped to bound memory", j.steps_dropped)
            } else {
                String::new()
            }
        );
    }
    let _ = write!(h.s, "<li>Istio version: {}", esc(&d.istio_version));
    if !d.version_hints.is_empty() {
        let _ = write!(h.s, " ({})", esc(&d.version_hints.join("; ")));
    }
    h.raw("</li>\n");
    for n in &d.notes {
        let _ = writeln!(h.s, "<li>Note: {}</li>", esc(&h.ev(n)));
    }
    h.raw("</ul>\n");
}

fn input_row(h: &mut Html, i: &InputSummary) {
    let mut why: Vec<String> = i
        .skipped_reasons
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if let Some(e) = &i.read_error {
        why.push(format!("reading stopped early: {e}"));
    }
    let _ = writeln!(
        h.s,
        "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        esc(&i.file),
        esc(&i.kind),
        i.lines,
        i.skipped,
        esc(&why.join(", "))
    );
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Escaped text with `backtick` spans shown as code (rule texts quote log strings so).
fn rich(s: &str) -> String {
    let e = esc(s);
    if !e.contains('`') {
        return e.into_owned();
    }
    let parts: Vec<&str> = e.split('`').collect();
    // An odd number of backticks: leave the text as written rather than guess.
    if parts.len().is_multiple_of(2) {
        return e.into_owned();
    }
    let mut out = String::with_capacity(e.len() + 16);
    for (i, p) in parts.iter().enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(p);
            out.push_str("</code>");
        } else {
            out.push_str(p);
        }
    }
    out
}

/// Escape for HTML text and double-quoted attributes; control characters become spaces so
/// a binary line cannot break the document.
fn esc(s: &str) -> Cow<'_, str> {
    if !s
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'') || b.is_ascii_control())
        && !s.chars().any(char::is_control)
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push('\n'),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("a<b & \"c\" 'd'"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;"
        );
        assert_eq!(esc("x\u{7}y"), "x y");
        assert!(matches!(esc("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn chart_defaults_without_findings() {
        let d = Diagnosis {
            verdict: "inconclusive".into(),
            confidence: 0.0,
            findings: Vec::new(),
            missing_evidence: Vec::new(),
            inputs: Vec::new(),
            istio_version: "unknown".into(),
            version_hints: Vec::new(),
            bar: meshdoctor_diagnose::engine::Bar {
                min_confidence: 0.6,
                min_margin: 0.15,
            },
            journeys: Default::default(),
            compare: Default::default(),
            app_errors: [("tls-handshake".to_string(), 3u64)].into_iter().collect(),
            traffic: Default::default(),
            notes: Vec::new(),
        };
        assert_eq!(chart_bucket(&d), "1d");
        assert_eq!(chart_signature(&d), "tls-handshake-error");
        let html = render_html(&d, &HtmlOptions::default());
        assert!(html.contains("id=\"verdict\">Inconclusive"));
        assert!(!html.contains("id=\"chart\""), "no data, no chart");
    }

    #[test]
    fn backticks_become_code() {
        assert_eq!(rich("lack `sni` step"), "lack <code>sni</code> step");
        assert_eq!(rich("odd ` one"), "odd ` one");
        assert_eq!(rich("`<b>`"), "<code>&lt;b&gt;</code>");
    }

    #[test]
    fn svg_is_embedded_only_when_safe() {
        assert_eq!(
            inline_svg("<?xml version=\"1.0\"?>\n<svg a=\"1\"><rect/></svg>\n"),
            Some("<svg a=\"1\"><rect/></svg>")
        );
        assert_eq!(inline_svg("<svg><script>alert(1)</script></svg>"), None);
        assert_eq!(inline_svg("<svg onload=\"x()\"></svg>"), None);
        assert_eq!(inline_svg("no svg here"), None);
        assert_eq!(inline_svg("</svg><svg"), None);
    }

    #[test]
    fn short_file_keeps_two_components() {
        assert_eq!(short_file("/a/b/c/d.log"), "c/d.log");
        assert_eq!(short_file("d.log"), "d.log");
        assert_eq!(short_file("c/d.log"), "c/d.log");
    }
}
