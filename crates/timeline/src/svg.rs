//! A stacked bar chart of counts per bucket per group, as a self-contained SVG document
//! (hand-written: no fonts to embed, no rendering crate), optionally with a vertical line
//! marking a change.
//!
//! Output is deterministic (fixed layout, fixed number formatting, groups in a fixed order)
//! so it can be snapshot-tested. This module must not decide what to count.

use crate::count::Counts;
use crate::render::{TOP_GROUPS, group_label};
use meshdoctor_model::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 210.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 112.0;
/// More buckets than this are drawn as they come (no empty buckets filled in).
const MAX_FILLED_BUCKETS: usize = 2000;

/// Tableau 10, in order; the last series ("other") is grey.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// A vertical marker (e.g. the change time in `verify`).
#[derive(Clone, Debug)]
pub struct Marker {
    /// Where.
    pub at: Timestamp,
    /// Its label.
    pub label: String,
}

/// Render the chart over the buckets that have matches. `title` is drawn at the top.
#[must_use]
pub fn chart(counts: &Counts, title: &str, marker: Option<&Marker>) -> String {
    chart_over(counts, title, marker, None)
}

/// Render the chart over every bucket from `span.0` to `span.1` (e.g. the first and last
/// event of the input), so quiet periods show as empty buckets instead of vanishing.
#[must_use]
pub fn chart_over(
    counts: &Counts,
    title: &str,
    marker: Option<&Marker>,
    span: Option<(Timestamp, Timestamp)>,
) -> String {
    // Series: top groups by total, then "other".
    let totals = counts.group_totals();
    let more = totals.len() > TOP_GROUPS;
    let shown = if more { TOP_GROUPS - 1 } else { TOP_GROUPS };
    let series: Vec<Vec<String>> = totals.iter().take(shown).map(|(g, _)| g.clone()).collect();
    let mut names: Vec<String> = series.iter().map(|g| group_label(g)).collect();
    if more {
        names.push("other".into());
    }
    let index: BTreeMap<&[String], usize> = series
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_slice(), i))
        .collect();

    // Buckets: every bucket from the first to the last, so gaps show as gaps.
    let mut stacks: BTreeMap<Timestamp, Vec<u64>> = BTreeMap::new();
    for r in &counts.rows {
        let col = index
            .get(r.group.as_slice())
            .copied()
            .unwrap_or(names.len().saturating_sub(1));
        let v = stacks
            .entry(r.start)
            .or_insert_with(|| vec![0; names.len()]);
        if let Some(c) = v.get_mut(col) {
            *c += r.count;
        }
    }
    let mut bucketer = counts.bucketer.clone();
    let range = match span {
        Some((a, b)) if a <= b => Some((bucketer.start_of(a), bucketer.start_of(b))),
        _ => None,
    }
    .or_else(|| {
        stacks
            .keys()
            .next()
            .copied()
            .zip(stacks.keys().next_back().copied())
    });
    // Too many buckets to draw one by one: draw only those with matches.
    let fillable = range.is_some_and(|(a, b)| {
        let width = counts.bucketer.spec().nominal_secs().max(1) as f64 * 1e9;
        (b.nanos_since(a) as f64 / width) < MAX_FILLED_BUCKETS as f64
    });
    if let Some((first, last)) = range.filter(|_| fillable) {
        stacks.entry(first).or_insert_with(|| vec![0; names.len()]);
        stacks.entry(last).or_insert_with(|| vec![0; names.len()]);
        let mut t = first;
        let mut n = 0;
        while t < last && n < MAX_FILLED_BUCKETS {
            stacks.entry(t).or_insert_with(|| vec![0; names.len()]);
            let next = counts.bucketer.next_start(t);
            if next <= t {
                break;
            }
            t = next;
            n += 1;
        }
    }
    let buckets: Vec<(Timestamp, Vec<u64>)> = stacks.into_iter().collect();
    let max = buckets
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let (ymax, step) = nice_axis(max);

    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = buckets.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.8).max(1.0);
    let y = |v: f64| TOP + plot_h - v / ymax as f64 * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // Y grid and labels.
    let mut v = 0;
    while v <= ymax {
        let yy = y(v as f64);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e0e0e0"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            LEFT - 6.0,
            yy + 4.0
        );
        v += step.max(1);
    }
    // Bars.
    for (i, (_, vals)) in buckets.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
        let mut acc = 0u64;
        for (k, val) in vals.iter().enumerate() {
            if *val == 0 {
                continue;
            }
            let y0 = y((acc + val) as f64);
            let h = y(acc as f64) - y0;
            let color = if more && k == names.len() - 1 {
                PALETTE[9]
            } else {
                PALETTE[k % 9]
            };
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y0:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{color}"><title>{}: {val}</title></rect>"#,
                esc(&names[k])
            );
            acc += val;
        }
    }
    // X axis and labels (at most about 12).
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333333"/>"##,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    );
    let every = buckets.len().div_ceil(12).max(1);
    for (i, (t, _)) in buckets.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = LEFT + (i as f64 + 0.5) * slot;
        let yy = TOP + plot_h + 14.0;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{yy:.1}" text-anchor="end" transform="rotate(-35 {x:.1} {yy:.1})">{}</text>"#,
            esc(&counts.bucketer.label(*t))
        );
    }
    // The marker, placed proportionally inside its bucket.
    if let Some(m) = marker
        && let Some(pos) = marker_position(&buckets, counts, m.at)
    {
        let x = LEFT + pos * slot;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#d62728" stroke-width="2" stroke-dasharray="6 4"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#d62728">{}</text>"##,
            x + 4.0,
            TOP + 12.0,
            esc(&m.label)
        );
    }
    // Legend.
    let lx = WIDTH - RIGHT + 16.0;
    for (k, name) in names.iter().enumerate() {
        let ly = TOP + k as f64 * 20.0;
        let color = if more && k == names.len() - 1 {
            PALETTE[9]
        } else {
            PALETTE[k % 9]
        };
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{ly:.1}" width="12" height="12" fill="{color}"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 18.0,
            ly + 10.0,
            esc(&truncate(name, 26))
        );
    }
    s.push_str("</svg>\n");
    s
}

fn marker_position(
    buckets: &[(Timestamp, Vec<u64>)],
    counts: &Counts,
    at: Timestamp,
) -> Option<f64> {
    let first = buckets.first()?.0;
    if at < first {
        return Some(0.0);
    }
    for (i, (start, _)) in buckets.iter().enumerate() {
        let end = counts.bucketer.next_start(*start);
        if at >= *start && at < end {
            let frac = at.nanos_since(*start) as f64 / end.nanos_since(*start).max(1) as f64;
            return Some(i as f64 + frac);
        }
    }
    Some(buckets.len() as f64)
}

/// A round axis maximum ≥ `max` and a step giving 4–10 grid lines.
fn nice_axis(max: u64) -> (u64, u64) {
    if max == 0 {
        return (1, 1);
    }
    let mut step = 1u64;
    loop {
        for m in [1u64, 2, 5] {
            let s = step.saturating_mul(m);
            if max.div_ceil(s) <= 8 {
                return (max.div_ceil(s).saturating_mul(s), s);
            }
        }
        step = step.saturating_mul(10);
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis() {
        assert_eq!(nice_axis(0), (1, 1));
        assert_eq!(nice_axis(7), (7, 1));
        assert_eq!(nice_axis(9), (10, 2));
        assert_eq!(nice_axis(123), (140, 20));
        assert!(nice_axis(u64::MAX / 2).0 >= u64::MAX / 2);
        assert!(nice_axis(u64::MAX).0 > 0);
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
