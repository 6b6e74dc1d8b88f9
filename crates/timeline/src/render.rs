//! Counts as text (a pivot table with terminal bars), CSV and the stable JSON contract;
//! `verify` reports as text and JSON.
//!
//! Renderers return strings; they must not print or decide anything (the CLI prints).

use crate::count::{Counts, Row};
use crate::verify::{PairResult, VerifyReport};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Groups shown as their own column/series; the rest are summed as `other`.
pub const TOP_GROUPS: usize = 8;
const BAR_WIDTH: usize = 30;
/// Pairs listed in the text of `verify` (JSON lists all).
const MAX_TEXT_PAIRS: usize = 20;
/// Projections beyond this many hours are reported as "more than a month".
const MONTH_HOURS: f64 = 24.0 * 31.0;

/// The display name of a group: its values joined by `/` (`checkout/payments`).
#[must_use]
pub fn group_label(group: &[String]) -> String {
    if group.is_empty() {
        "all".to_string()
    } else {
        group.join("/")
    }
}

/// The JSON contract of `timeline --format json`:
/// `{"signature", "bucket", "rows": [{"start", "group": {dim: value}, "count", "requests"}],
/// "total"}` plus `time_zone`, `untimed`, `unknown_service`, `requests_total`, `examples`.
#[must_use]
pub fn json(counts: &Counts) -> Value {
    let rows: Vec<Value> = counts.rows.iter().map(|r| row_json(counts, r)).collect();
    json!({
        "signature": counts.signature,
        "bucket": counts.bucketer.spec().to_string(),
        "time_zone": counts.bucketer.zone_name(),
        "rows": rows,
        "total": counts.total,
        "untimed": counts.untimed,
        "unknown_service": counts.unknown_service,
        "requests_total": counts.requests_total,
        "untimed_requests": counts.untimed_requests,
        "examples": counts.examples,
    })
}

fn row_json(counts: &Counts, r: &Row) -> Value {
    let mut group = Map::new();
    for (d, v) in counts.dims.iter().zip(&r.group) {
        group.insert(d.as_str().to_string(), Value::String(v.clone()));
    }
    json!({
        "start": counts.bucketer.rfc3339(r.start),
        "group": group,
        "count": r.count,
        "requests": r.requests,
    })
}

/// CSV with a header: `start,<dims...>,count,requests` (requests empty when not counted).
#[must_use]
pub fn csv(counts: &Counts) -> String {
    let mut out = String::from("start");
    for d in &counts.dims {
        out.push(',');
        out.push_str(d.as_str());
    }
    out.push_str(",count,requests\n");
    for r in &counts.rows {
        out.push_str(&counts.bucketer.rfc3339(r.start));
        for g in &r.group {
            out.push(',');
            out.push_str(&csv_field(g));
        }
        let _ = write!(out, ",{},", r.count);
        if let Some(q) = r.requests {
            let _ = write!(out, "{q}");
        }
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A bar of `value / max` of `width` cells with eighth-block resolution.
#[must_use]
pub fn bar(value: u64, max: u64, width: usize) -> String {
    if max == 0 || value == 0 {
        return String::new();
    }
    let eighths = ((value as f64 / max as f64) * (width * 8) as f64).round() as usize;
    let eighths = eighths.max(1);
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[eighths % 8]);
    s
}

/// The top groups (by total) and whether there are more.
fn top_groups(counts: &Counts) -> (Vec<Vec<String>>, bool) {
    let totals = counts.group_totals();
    let more = totals.len() > TOP_GROUPS;
    let shown = if more { TOP_GROUPS - 1 } else { TOP_GROUPS };
    (
        totals.into_iter().take(shown).map(|(g, _)| g).collect(),
        more,
    )
}

/// Text report: a header, then one line per bucket with counts of the top groups, the
/// total, requests and rate when known, and a bar.
#[must_use]
pub fn text(counts: &Counts) -> String {
    let mut out = String::new();
    let dims: Vec<&str> = counts.dims.iter().map(|d| d.as_str()).collect();
    let _ = writeln!(
        out,
        "{} per {} by {} ({}): {} in {} bucket(s)",
        counts.signature,
        counts.bucketer.spec(),
        if dims.is_empty() {
            "nothing".to_string()
        } else {
            dims.join(",")
        },
        counts.bucketer.zone_name(),
        counts.total,
        counts.bucket_totals().len(),
    );
    if counts.rows.is_empty() {
        out.push_str("\nNo matches.\n");
        footer(counts, &mut out);
        return out;
    }
    let (top, more) = top_groups(counts);
    let mut cols: Vec<String> = top.iter().map(|g| group_label(g)).collect();
    if more {
        cols.push("other".into());
    }
    // Pivot: bucket -> column -> count.
    let index: BTreeMap<&[String], usize> = top
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_slice(), i))
        .collect();
    let mut pivot: BTreeMap<meshdoctor_model::Timestamp, Vec<u64>> = BTreeMap::new();
    for r in &counts.rows {
        let line = pivot.entry(r.start).or_insert_with(|| vec![0; cols.len()]);
        let col = index
            .get(r.group.as_slice())
            .copied()
            .unwrap_or(cols.len() - 1);
        if let Some(c) = line.get_mut(col) {
            *c += r.count;
        }
    }
    let totals = counts.bucket_totals();
    let max_total = totals.iter().map(|t| t.1).max().unwrap_or(0);
    let with_requests = counts.requests_total.is_some();
    let label_w = totals
        .iter()
        .map(|t| counts.bucketer.label(t.0).chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let max_val = pivot
                .values()
                .map(|v| v.get(i).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            c.chars().count().max(max_val.to_string().len())
        })
        .collect();
    let total_w = max_total.to_string().len().max(5);
    out.push('\n');
    let _ = write!(out, "{:<label_w$}", "bucket");
    for (c, w) in cols.iter().zip(&widths) {
        let _ = write!(out, "  {c:>w$}");
    }
    let _ = write!(out, "  {:>total_w$}", "total");
    if with_requests {
        let _ = write!(out, "  {:>9}  {:>8}", "requests", "per 1k");
    }
    out.push('\n');
    for (start, total, requests) in &totals {
        let _ = write!(out, "{:<label_w$}", counts.bucketer.label(*start));
        let empty = Vec::new();
        let line = pivot.get(start).unwrap_or(&empty);
        for (i, w) in widths.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", line.get(i).copied().unwrap_or(0));
        }
        let _ = write!(out, "  {total:>total_w$}");
        if with_requests {
            let q = requests.unwrap_or(0);
            let rate = if q > 0 {
                format!("{:.2}", *total as f64 / q as f64 * 1000.0)
            } else {
                "-".into()
            };
            let _ = write!(out, "  {q:>9}  {rate:>8}");
        }
        let _ = writeln!(out, "  {}", bar(*total, max_total, BAR_WIDTH));
    }
    footer(counts, &mut out);
    out
}

fn footer(counts: &Counts, out: &mut String) {
    if counts.untimed > 0 {
        let _ = writeln!(
            out,
            "\n{} match(es) had no usable timestamp and are in no bucket.",
            counts.untimed
        );
    }
    if counts.unknown_service > 0 {
        let _ = writeln!(
            out,
            "{} match(es) came from records and paths that name no workload (shown as `(unknown)`; use --service).",
            counts.unknown_service
        );
    }
    if counts.untimed_requests > 0 {
        let _ = writeln!(
            out,
            "{} access row(s) had no usable timestamp and are in no request count.",
            counts.untimed_requests
        );
    }
}

/// `26.5 h`, `12.0 min`, `1.7 s`: short periods (the lab) are not "0.0 h".
fn fmt_hours(h: f64) -> String {
    if h >= 1.0 {
        format!("{h:.1} h")
    } else if h * 60.0 >= 1.0 {
        format!("{:.1} min", h * 60.0)
    } else {
        format!("{:.1} s", h * 3600.0)
    }
}

fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "inf".into()
    }
}

fn fmt_p(p: f64) -> String {
    if p < 0.0001 {
        "<0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// Text report of `verify`.
#[must_use]
pub fn verify_text(report: &VerifyReport) -> String {
    let mut out = String::new();
    let when = report.change_at.map_or_else(
        || "between the two input sets".to_string(),
        |t| format!("at {t}"),
    );
    let _ = writeln!(
        out,
        "{} before and after the change {when}",
        report.signature
    );
    let period = |name: &str, p: &crate::verify::Period| {
        let span = match (p.start, p.end) {
            (Some(s), Some(e)) => format!("{s} .. {e}"),
            _ => "no timed events".into(),
        };
        let req = p
            .requests
            .map_or_else(String::new, |q| format!(", {q} requests"));
        format!(
            "  {name:<7}{span} ({}): {} failure(s){req}\n",
            fmt_hours(p.hours),
            p.failures
        )
    };
    out.push_str(&period("before", &report.before));
    out.push_str(&period("after", &report.after));
    out.push('\n');
    let mut rows: Vec<&PairResult> = report.pairs.iter().take(MAX_TEXT_PAIRS).collect();
    let hidden = report.pairs.len().saturating_sub(MAX_TEXT_PAIRS);
    rows.push(&report.total);
    let name = |p: &PairResult| {
        if p.service == "*" {
            "all pairs".to_string()
        } else {
            format!("{} -> {}", p.service, p.peer)
        }
    };
    let w = rows
        .iter()
        .map(|p| name(p).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<w$}  {:>7}  {:>7}  {:>12}  {:>6}  {:>16}  {:>8}  verdict",
        "pair", "before", "after", "rate per", "ratio", "95% interval", "p"
    );
    for p in rows {
        let per = if p.exposure == "requests" {
            "1k req"
        } else {
            "hour"
        };
        let rates = format!("{:.2}->{:.2}/{per}", p.rate_before, p.rate_after);
        let ratio = p.test.ratio.map_or_else(|| "-".into(), fmt_ratio);
        let ci = format!("{}..{}", fmt_ratio(p.test.low), fmt_ratio(p.test.high));
        let mut verdict = p.verdict.as_str().to_string();
        if let Some(h) = p.more_hours {
            let goal = if p.verdict == crate::verify::Verdict::Improved {
                "to call it fixed"
            } else {
                "to decide"
            };
            if h <= MONTH_HOURS {
                let _ = write!(
                    verdict,
                    " (about {h:.0} more hour(s) of data after the change {goal})"
                );
            } else {
                let _ = write!(
                    verdict,
                    " (more than a month more data after the change {goal})"
                );
            }
        } else if p.verdict == crate::verify::Verdict::NotEnoughData {
            verdict.push_str(" (more data after the change alone would not decide)");
        }
        let _ = writeln!(
            out,
            "{:<w$}  {:>7}  {:>7}  {:>12}  {:>6}  {:>16}  {:>8}  {verdict}",
            name(p),
            p.before,
            p.after,
            rates,
            ratio,
            ci,
            fmt_p(p.test.p_value)
        );
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "({hidden} more pair(s) with fewer failures; --format json lists them all)"
        );
    }
    if report.pairs.is_empty() {
        out.push_str("\nNo failures of this signature in either period.\n");
    }
    if report.untimed > 0 {
        let _ = writeln!(
            out,
            "\n{} match(es) had no usable timestamp and are in neither period.",
            report.untimed
        );
    }
    if report.unknown_service > 0 {
        let _ = writeln!(
            out,
            "{} match(es) name no workload (shown as `(unknown)`).",
            report.unknown_service
        );
    }
    out.push_str(
        "\nTest: exact conditional (binomial) test of the two Poisson rates; exposure is the \
         pair's requests when access logs give them on both sides, else hours of log.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        assert_eq!(bar(0, 10, 10), "");
        assert_eq!(bar(10, 10, 4), "████");
        assert_eq!(bar(5, 10, 1), "▌");
        // Anything non-zero shows at least a sliver.
        assert_eq!(bar(1, 1_000_000, 10), "▏");
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("q\"u,"), "\"q\"\"u,\"");
    }
}
