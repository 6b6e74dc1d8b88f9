//! Renders a diagnosis or a journey comparison as text for a terminal or as Markdown.
//!
//! The text report is written for an on-call engineer at 3 a.m.: verdict first, then who is
//! affected and how often, the evidence lines as written, the fix and how to verify it, why
//! other causes were ruled out, and what the inputs covered. Rendering only: no diagnosis
//! logic and no I/O (the functions return strings).

pub mod html;
pub mod redact;

use meshdoctor_diagnose::engine::{CompareOutput, Finding, InputSummary, JourneyStats};
use meshdoctor_diagnose::{Diagnosis, EvidenceLine};
use std::fmt::Write as _;

/// Text or Markdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Plain text for a terminal.
    Text,
    /// GitHub-flavoured Markdown.
    Markdown,
}

struct Out {
    s: String,
    style: Style,
}

impl Out {
    fn line(&mut self, text: &str) {
        self.s.push_str(text);
        self.s.push('\n');
    }
    fn blank(&mut self) {
        if !self.s.ends_with("\n\n") && !self.s.is_empty() {
            self.s.push('\n');
        }
    }
    fn heading(&mut self, text: &str) {
        self.blank();
        match self.style {
            Style::Text => self.line(&text.to_uppercase()),
            Style::Markdown => self.line(&format!("## {text}")),
        }
    }
    fn item(&mut self, text: &str) {
        match self.style {
            Style::Text => self.line(&format!("  {text}")),
            Style::Markdown => self.line(&format!("- {text}")),
        }
    }
    fn numbered(&mut self, n: usize, text: &str) {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        match self.style {
            Style::Text => {
                self.line(&format!("  {n}. {first}"));
                for l in lines {
                    self.line(&format!("     {l}"));
                }
            }
            Style::Markdown => {
                if text.contains('\n') {
                    self.line(&format!("{n}. {first}"));
                    self.line("   ```");
                    for l in lines {
                        self.line(&format!("   {l}"));
                    }
                    self.line("   ```");
                } else if first.contains('`') {
                    self.line(&format!("{n}. {first}"));
                } else {
                    self.line(&format!("{n}. `{first}`"));
                }
            }
        }
    }
    fn evidence(&mut self, lines: &[EvidenceLine]) {
        match self.style {
            Style::Text => {
                for l in lines {
                    self.line(&format!("  {}:{}", l.file, l.line));
                    self.line(&format!("    {}", l.text));
                }
            }
            Style::Markdown => {
                self.line("```");
                for l in lines {
                    self.line(&format!("{}:{}: {}", l.file, l.line, l.text));
                }
                self.line("```");
            }
        }
    }
}

/// Render a diagnosis.
#[must_use]
pub fn render_diagnosis(d: &Diagnosis, style: Style) -> String {
    let mut o = Out {
        s: String::new(),
        style,
    };
    if style == Style::Markdown {
        o.line("# meshdoctor diagnosis");
        o.blank();
    }
    let top = d.findings.first();
    if d.verdict == "inconclusive" {
        match style {
            Style::Text => o.line("VERDICT      inconclusive"),
            Style::Markdown => o.line("**Verdict: inconclusive**"),
        }
        o.line(&format!(
            "  No cause clears the bar (confidence >= {:.2} and a lead of {:.2} over the runner-up).",
            d.bar.min_confidence, d.bar.min_margin
        ));
        if d.findings.is_empty() {
            o.line("  No known failure signature was found in the inputs.");
        } else {
            let lead: Vec<String> = d
                .findings
                .iter()
                .take(3)
                .map(|f| format!("{} {:.2}", f.cause, f.confidence))
                .collect();
            o.line(&format!("  Leading candidates: {}.", lead.join(", ")));
            if d.findings.len() > 1 {
                o.line("  The evidence so far fits more than one of them; what is listed under");
                o.line("  \"Collect next\" is what tells them apart.");
            } else {
                o.line(
                    "  The evidence so far is too thin to name it; collect what is listed below.",
                );
            }
        }
        if !d.missing_evidence.is_empty() {
            o.heading("Collect next");
            for (i, m) in d.missing_evidence.iter().enumerate() {
                o.numbered(i + 1, m);
            }
        }
        for f in d.findings.iter().take(2) {
            o.heading(&format!("Candidate: {} ({:.2})", f.cause, f.confidence));
            finding_body(&mut o, f, false);
        }
    } else if let Some(f) = top {
        match style {
            Style::Text => o.line(&format!(
                "VERDICT      {}   (confidence {:.2})",
                f.cause, f.confidence
            )),
            Style::Markdown => o.line(&format!(
                "**Verdict: `{}`** (confidence {:.2})",
                f.cause, f.confidence
            )),
        }
        o.line(&format!("  {}", f.title));
        o.blank();
        o.line(&format!("  {}", f.summary));
        finding_body(&mut o, f, true);
    }
    let others: Vec<&Finding> = d
        .findings
        .iter()
        .skip(if d.verdict == "inconclusive" { 2 } else { 1 })
        .collect();
    if !others.is_empty() {
        o.heading("Other candidates, and why they are not the verdict");
        for f in others {
            o.item(&format!(
                "{} ({:.2}): {}",
                f.cause,
                f.confidence,
                f.ruled_out.as_deref().unwrap_or("")
            ));
        }
    }
    compare_section(&mut o, &d.compare, true);
    if !d.traffic.failing_by.is_empty() {
        o.heading("Failing traffic (access logs)");
        o.item(&format!(
            "{} of {} access rows failed",
            d.traffic.failing, d.traffic.rows
        ));
        for r in d.traffic.failing_by.iter().take(8) {
            o.item(&format!(
                "{} {} {} {} {}: {} rows ({:.0}% of its rows)",
                r.workload,
                r.direction,
                r.code,
                r.flags,
                r.cluster,
                r.count,
                r.rate * 100.0
            ));
        }
    }
    if !d.app_errors.is_empty() {
        let parts: Vec<String> = d
            .app_errors
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        o.heading("Application errors");
        o.item(&parts.join(", "));
    }
    inputs_section(&mut o, &d.inputs, &d.journeys);
    if d.traffic.rows > 0 {
        o.item(&format!(
            "access logs: {} rows, {} failing",
            d.traffic.rows, d.traffic.failing
        ));
    }
    o.item(&format!(
        "Istio version: {}{}",
        d.istio_version,
        if d.version_hints.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.version_hints.join("; "))
        }
    ));
    for n in &d.notes {
        o.item(&format!("note: {n}"));
    }
    o.s
}

fn finding_body(o: &mut Out, f: &Finding, verdict: bool) {
    if !f.workload_pairs.is_empty() {
        o.heading("Affected");
        for p in &f.workload_pairs {
            o.item(&format!("{p}   (caller -> callee)"));
        }
    } else if !f.workloads.is_empty() {
        o.heading("Affected");
        if !f.servers.is_empty() {
            o.item(&format!("callee (server side): {}", f.servers.join(", ")));
        }
        if !f.clients.is_empty() {
            o.item(&format!("caller (client side): {}", f.clients.join(", ")));
        }
        let others: Vec<&str> = f
            .workloads
            .iter()
            .filter(|w| !f.servers.contains(w) && !f.clients.contains(w))
            .map(String::as_str)
            .collect();
        if !others.is_empty() {
            o.item(&others.join(", "));
        }
    }
    let when = match (&f.first, &f.last) {
        (Some(a), Some(b)) if a != b => format!("{a} .. {b}"),
        (Some(a), _) => a.clone(),
        _ => "no timestamps".into(),
    };
    o.item(&format!("{} occurrence(s), {when}", f.occurrences));
    o.heading("Evidence");
    for i in &f.items {
        if i.count == 0 && !i.fired {
            continue;
        }
        let mark = match (i.fired, i.weight > 0.0) {
            (true, true) => "+",
            (true, false) => "-",
            _ => "?",
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
        o.item(&format!("{mark} {} ({}x{rate}{wl})", i.means, i.count));
        if let Some(n) = &i.not_counted {
            o.item(&format!("    not counted: {n}"));
        }
    }
    let unseen: Vec<&str> = f
        .items
        .iter()
        .filter(|i| i.count == 0 && i.weight > 0.0)
        .map(|i| i.means.as_str())
        .collect();
    if !unseen.is_empty() {
        o.item(&format!("not seen: {}", unseen.join("; ")));
    }
    if !f.evidence.is_empty() {
        o.blank();
        o.evidence(&f.evidence);
    }
    if !f.counter_evidence.is_empty() {
        o.item("against:");
        o.evidence(&f.counter_evidence);
    }
    if verdict {
        o.heading("Why it resets");
        for l in wrap(&f.mechanism, 94) {
            o.item(&l);
        }
        if let Some(v) = &f.versions {
            o.item(&format!("applies to {v}"));
        }
    }
    if verdict || f.confidence >= 0.3 {
        o.heading(if verdict { "Fix" } else { "Fix, if confirmed" });
        for (i, s) in f.fix.iter().enumerate() {
            o.numbered(i + 1, s);
        }
        o.heading("Verify");
        for (i, s) in f.verify.iter().enumerate() {
            o.numbered(i + 1, s);
        }
    }
    if verdict && !f.references.is_empty() {
        o.heading("References");
        for r in &f.references {
            o.item(r);
        }
    }
}

fn compare_section(o: &mut Out, c: &CompareOutput, short: bool) {
    let r = &c.result;
    if r.compared == 0 {
        return;
    }
    o.heading("Connections (sidecar debug journeys)");
    o.item(&format!(
        "{} connections compared: {} succeeding, {} failing",
        r.compared, r.succeeding_count, r.failing_count
    ));
    let limit = if short { 3 } else { 20 };
    for (i, f) in r.failing.iter().take(limit).enumerate() {
        o.item(&format!("{}. {}", i + 1, f.headline));
        let names: Vec<&str> = f.pattern.steps.iter().map(|k| k.name()).collect();
        o.item(&format!("   failing:    {}", names.join(" > ")));
        if let Some(s) = f.nearest.and_then(|n| r.succeeding.get(n)) {
            let names: Vec<&str> = s.steps.iter().map(|k| k.name()).collect();
            o.item(&format!(
                "   succeeding: {} ({} connections)",
                names.join(" > "),
                s.count
            ));
        }
        if !f.missing.is_empty() {
            let m: Vec<&str> = f.missing.iter().map(|k| k.name()).collect();
            o.item(&format!("   missing:    {}", m.join(", ")));
        }
        if !f.extra.is_empty() {
            let m: Vec<&str> = f.extra.iter().map(|k| k.name()).collect();
            o.item(&format!("   extra:      {}", m.join(", ")));
        }
        if let Some(ex) = c.failing_examples.get(i) {
            let take = if short { 8 } else { 16 };
            o.item("   example:");
            o.evidence(&ex[..ex.len().min(take)]);
        }
    }
    if !short {
        for (i, s) in r.succeeding.iter().take(5).enumerate() {
            let names: Vec<&str> = s.steps.iter().map(|k| k.name()).collect();
            o.item(&format!(
                "ok pattern {} ({} connections): {}",
                i + 1,
                s.count,
                names.join(" > ")
            ));
            if let Some(ex) = c.succeeding_examples.get(i) {
                o.evidence(&ex[..ex.len().min(10)]);
            }
        }
    }
}

fn inputs_section(o: &mut Out, inputs: &[InputSummary], j: &JourneyStats) {
    o.heading("Inputs");
    for i in inputs {
        let mut line = format!(
            "{}  {}  {} lines, {} skipped",
            i.file, i.kind, i.lines, i.skipped
        );
        if !i.skipped_reasons.is_empty() {
            let r: Vec<String> = i
                .skipped_reasons
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            let _ = write!(line, " ({})", r.join(", "));
        }
        if let Some(e) = &i.read_error {
            let _ = write!(line, "; reading stopped early: {e}");
        }
        o.item(&line);
    }
    if j.journeys > 0 {
        o.item(&format!(
            "{} connection journeys from {} sidecar lines ({} linked to their upstream connection); {} restarts; {} listener-filter lines without a connection",
            j.journeys, j.steps, j.linked_upstream, j.restarts, j.orphan_listener_lines
        ));
    }
}

/// Render a journey comparison (`meshdoctor compare`).
#[must_use]
pub fn render_compare(
    c: &CompareOutput,
    inputs: &[InputSummary],
    j: &JourneyStats,
    style: Style,
) -> String {
    let mut o = Out {
        s: String::new(),
        style,
    };
    if style == Style::Markdown {
        o.line("# meshdoctor compare");
    }
    if c.result.compared == 0 {
        o.line("No connection journeys found: the inputs hold no Envoy debug lines of the connection loggers.");
        o.line("Collect them with: istioctl proxy-config log <pod> --level conn_handler:debug,connection:debug,filter:debug");
    } else if c.result.failing_count == 0 {
        o.line(&format!("{} connections, none failing.", c.result.compared));
    }
    compare_section(&mut o, c, false);
    inputs_section(&mut o, inputs, j);
    o.s
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
