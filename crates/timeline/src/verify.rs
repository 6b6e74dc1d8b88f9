//! Did the fix work? Failure counts and rates before and after a change, per workload pair
//! (service → peer), an exact rate-ratio test with a 95% interval, and a verdict.
//!
//! Exposure is the number of requests when access logs give the pair's traffic on both
//! sides, else the hours of log before and after the change. Verdicts, with R the after/
//! before rate ratio and [lo, hi] its 95% interval:
//! * **fixed**: no failure after, and hi ≤ 0.25 (at least 75% fewer, with 95% confidence);
//! * **improved**: hi < 1 (significantly fewer, but some remain or too little data after
//!   to call it fixed);
//! * **worse**: lo > 1;
//! * **no change**: 0.5 ≤ lo and hi ≤ 2 (any change is less than a factor of two);
//! * **not enough data**: otherwise. If the after-rate stays as observed, the report says
//!   how many more hours of after-data would decide (a projection, not a promise).
//!
//! This module must not read files or format output.

use crate::bucket::Bucketer;
use crate::count::{CountOptions, CountSink, Counts, Dim, NOT_APPLICABLE};
use crate::stats::{RateRatio, rate_ratio};
use meshdoctor_logs::{InputContext, Sink};
use meshdoctor_model::{Event, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;

const ALPHA: f64 = 0.05;
const FIXED_UPPER: f64 = 0.25;
const NO_CHANGE_BAND: (f64, f64) = (0.5, 2.0);
/// Projections stop here (about 11 years).
const MAX_PROJECTION_HOURS: f64 = 100_000.0;
const NS_PER_HOUR: f64 = 3_600_000_000_000.0;

/// The verdict for one pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No failures after, and the rate dropped by at least 75% with 95% confidence.
    Fixed,
    /// Significantly fewer failures.
    Improved,
    /// Rate within a factor of two of before, with 95% confidence.
    NoChange,
    /// Significantly more failures.
    Worse,
    /// The data cannot tell.
    NotEnoughData,
}

impl Verdict {
    /// Words for reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Fixed => "fixed",
            Verdict::Improved => "improved",
            Verdict::NoChange => "no change",
            Verdict::Worse => "worse",
            Verdict::NotEnoughData => "not enough data",
        }
    }
}

/// Decide from counts and exposures.
#[must_use]
pub fn decide(x1: u64, e1: f64, x2: u64, e2: f64) -> (Verdict, RateRatio) {
    let r = rate_ratio(x1, e1, x2, e2, ALPHA);
    let v = if x1 + x2 == 0 {
        Verdict::NotEnoughData
    } else if r.high < 1.0 {
        if x2 == 0 && r.high <= FIXED_UPPER {
            Verdict::Fixed
        } else {
            Verdict::Improved
        }
    } else if r.low > 1.0 {
        Verdict::Worse
    } else if r.low >= NO_CHANGE_BAND.0 && r.high <= NO_CHANGE_BAND.1 {
        Verdict::NoChange
    } else {
        Verdict::NotEnoughData
    };
    (v, r)
}

/// Hours of additional after-data (at the observed after-rate and traffic) until the
/// verdict would leave `from`; `None` when no amount would (e.g. nothing failed before).
#[must_use]
pub fn more_hours_needed(
    x1: u64,
    e1: f64,
    x2: u64,
    e2: f64,
    after_hours: f64,
    from: Verdict,
) -> Option<f64> {
    if after_hours <= 0.0 || e2 <= 0.0 || x1 == 0 {
        return None;
    }
    let per_hour = e2 / after_hours;
    let rate = x2 as f64 / e2;
    let decided = |h: f64| {
        let e = e2 + per_hour * h;
        let x = (rate * e).round() as u64;
        decide(x1, e1, x, e).0 != from
    };
    let mut hi = 1.0;
    while !decided(hi) {
        hi *= 2.0;
        if hi > MAX_PROJECTION_HOURS {
            return None;
        }
    }
    let mut lo = hi / 2.0;
    if hi <= 1.0 {
        return Some(1.0);
    }
    while hi - lo > 1.0 {
        let mid = ((lo + hi) / 2.0).round();
        if decided(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi.ceil())
}

/// One side of the comparison.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Period {
    /// Earliest event time of this period's input.
    pub start: Option<Timestamp>,
    /// Latest event time (or the change time).
    pub end: Option<Timestamp>,
    /// Hours between them.
    pub hours: f64,
    /// Failures.
    pub failures: u64,
    /// Requests, when access logs gave them.
    pub requests: Option<u64>,
}

/// The comparison for one service → peer pair (or all pairs together).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PairResult {
    /// The service whose records failed.
    pub service: String,
    /// The other side (`-` when unknown; `*` for the total).
    pub peer: String,
    /// Failures before.
    pub before: u64,
    /// Failures after.
    pub after: u64,
    /// Requests before, when known.
    pub requests_before: Option<u64>,
    /// Requests after, when known.
    pub requests_after: Option<u64>,
    /// `requests` or `hours`: what the rates are per.
    pub exposure: &'static str,
    /// Failures per hour (or per 1000 requests) before.
    pub rate_before: f64,
    /// Failures per hour (or per 1000 requests) after.
    pub rate_after: f64,
    /// The test.
    pub test: RateRatio,
    /// The verdict.
    pub verdict: Verdict,
    /// For "not enough data" (and "improved" with none after): more hours of after-data
    /// that would decide (to "fixed" for the latter), at the observed rates.
    pub more_hours: Option<f64>,
}

/// The full verify result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifyReport {
    /// Signature name.
    pub signature: String,
    /// The change time (`--change-at`), or the start of the after inputs.
    pub change_at: Option<Timestamp>,
    /// Before the change.
    pub before: Period,
    /// After the change.
    pub after: Period,
    /// Every pair with at least one failure, most failures before first.
    pub pairs: Vec<PairResult>,
    /// All pairs together.
    pub total: PairResult,
    /// Matches without a timestamp (in neither period).
    pub untimed: u64,
    /// Matches whose workload is unknown.
    pub unknown_service: u64,
}

/// Counts per (service, peer) for one period.
#[derive(Clone, Debug, Default)]
pub struct PeriodCounts {
    /// Failures and requests per pair.
    pub pairs: BTreeMap<(String, String), (u64, u64)>,
    /// Whether requests were counted.
    pub has_requests: bool,
}

/// Split a [`Counts`] made with dims `[service, peer]` and a [`Bucketer::split_at`] bucketer
/// into before and after.
#[must_use]
pub fn split_counts(counts: &Counts, at: Timestamp) -> (PeriodCounts, PeriodCounts) {
    let mut before = PeriodCounts {
        has_requests: counts.requests_total.is_some(),
        ..PeriodCounts::default()
    };
    let mut after = before.clone();
    for r in &counts.rows {
        let side = if r.start < at {
            &mut before
        } else {
            &mut after
        };
        let key = (
            r.group.first().cloned().unwrap_or_default(),
            r.group.get(1).cloned().unwrap_or_default(),
        );
        let e = side.pairs.entry(key).or_default();
        e.0 += r.count;
        e.1 += r.requests.unwrap_or(0);
    }
    (before, after)
}

/// All periods' counts for a single-period input (dims `[service, peer]`, any bucketer).
#[must_use]
pub fn period_counts(counts: &Counts) -> PeriodCounts {
    let mut out = PeriodCounts {
        has_requests: counts.requests_total.is_some(),
        ..PeriodCounts::default()
    };
    for r in &counts.rows {
        let key = (
            r.group.first().cloned().unwrap_or_default(),
            r.group.get(1).cloned().unwrap_or_default(),
        );
        let e = out.pairs.entry(key).or_default();
        e.0 += r.count;
        e.1 += r.requests.unwrap_or(0);
    }
    out
}

/// Compare two periods.
#[must_use]
pub fn compare(
    signature: &str,
    change_at: Option<Timestamp>,
    before: (&PeriodCounts, Period),
    after: (&PeriodCounts, Period),
    untimed: u64,
    unknown_service: u64,
) -> VerifyReport {
    let (bc, mut bp) = before;
    let (ac, mut ap) = after;
    let keys: std::collections::BTreeSet<&(String, String)> =
        bc.pairs.keys().chain(ac.pairs.keys()).collect();
    let mut pairs = Vec::new();
    let (mut tb, mut ta, mut qb, mut qa) = (0u64, 0u64, 0u64, 0u64);
    for key in keys {
        let (x1, q1) = bc.pairs.get(key).copied().unwrap_or((0, 0));
        let (x2, q2) = ac.pairs.get(key).copied().unwrap_or((0, 0));
        tb += x1;
        ta += x2;
        qb += q1;
        qa += q2;
        if x1 + x2 == 0 {
            continue;
        }
        // A failure that names no peer is compared with all of its service's traffic.
        let (q1, q2) = if key.1 == NOT_APPLICABLE && q1 == 0 && q2 == 0 {
            (service_requests(bc, &key.0), service_requests(ac, &key.0))
        } else {
            (q1, q2)
        };
        let q = (bc.has_requests && ac.has_requests).then_some((q1, q2));
        pairs.push(pair_result(&key.0, &key.1, (x1, x2), q, bp.hours, ap.hours));
    }
    pairs.sort_by(|a, b| {
        b.before
            .cmp(&a.before)
            .then(b.after.cmp(&a.after))
            .then_with(|| (&a.service, &a.peer).cmp(&(&b.service, &b.peer)))
    });
    let q = (bc.has_requests && ac.has_requests).then_some((qb, qa));
    let total = pair_result("*", "*", (tb, ta), q, bp.hours, ap.hours);
    bp.failures = tb;
    ap.failures = ta;
    if bc.has_requests {
        bp.requests = Some(qb);
    }
    if ac.has_requests {
        ap.requests = Some(qa);
    }
    VerifyReport {
        signature: signature.to_string(),
        change_at,
        before: bp,
        after: ap,
        pairs,
        total,
        untimed,
        unknown_service,
    }
}

fn pair_result(
    service: &str,
    peer: &str,
    (x1, x2): (u64, u64),
    requests: Option<(u64, u64)>,
    hours_before: f64,
    hours_after: f64,
) -> PairResult {
    // Requests are the better exposure, but only when both sides saw this pair's traffic
    // (app-only inputs, or a peer named differently in app and access logs, give none).
    let by_requests = requests.filter(|(a, b)| *a > 0 && *b > 0);
    let (e1, e2, exposure, scale) = match by_requests {
        Some((a, b)) => (a as f64, b as f64, "requests", 1000.0),
        None => (hours_before, hours_after, "hours", 1.0),
    };
    let (verdict, test) = decide(x1, e1, x2, e2);
    let more_hours = match verdict {
        Verdict::NotEnoughData => more_hours_needed(x1, e1, x2, e2, hours_after, verdict),
        Verdict::Improved if x2 == 0 => more_hours_needed(x1, e1, x2, e2, hours_after, verdict),
        _ => None,
    };
    let rate = |x: u64, e: f64| if e > 0.0 { x as f64 / e * scale } else { 0.0 };
    PairResult {
        service: service.to_string(),
        peer: peer.to_string(),
        before: x1,
        after: x2,
        requests_before: requests.map(|r| r.0),
        requests_after: requests.map(|r| r.1),
        exposure,
        rate_before: rate(x1, e1),
        rate_after: rate(x2, e2),
        test,
        verdict,
        more_hours,
    }
}

/// Put two series made with the same options side by side (the `--before` and `--after`
/// inputs), summing rows that share a bucket and group.
#[must_use]
pub fn merge_series(mut a: Counts, b: Counts) -> Counts {
    let mut rows: BTreeMap<(Timestamp, Vec<String>), crate::count::Row> = BTreeMap::new();
    for r in a.rows.drain(..).chain(b.rows) {
        match rows.get_mut(&(r.start, r.group.clone())) {
            Some(e) => {
                e.count += r.count;
                e.requests = match (e.requests, r.requests) {
                    (Some(x), Some(y)) => Some(x + y),
                    (x, y) => x.or(y),
                };
            }
            None => {
                rows.insert((r.start, r.group.clone()), r);
            }
        }
    }
    a.rows = rows.into_values().collect();
    a.total += b.total;
    a.untimed += b.untimed;
    a.unknown_service += b.unknown_service;
    a.first = match (a.first, b.first) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    a.last = match (a.last, b.last) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    a
}

/// Requests of a service to every peer in one period.
fn service_requests(period: &PeriodCounts, service: &str) -> u64 {
    period
        .pairs
        .iter()
        .filter(|((s, _), _)| s == service)
        .map(|(_, (_, q))| q)
        .sum()
}

/// Hours between two instants (0 when either is unknown or they are reversed).
#[must_use]
pub fn hours_between(a: Option<Timestamp>, b: Option<Timestamp>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) if b > a => b.nanos_since(a) as f64 / NS_PER_HOUR,
        _ => 0.0,
    }
}

/// A sink that feeds two count sinks: the exact before/after split per pair, and a
/// bucketed series for the chart.
#[derive(Clone, Debug)]
pub struct VerifySink {
    /// The split counts (dims service, peer).
    pub split: CountSink,
    /// The series for the chart (dims service).
    pub series: CountSink,
}

impl VerifySink {
    /// Options for the two parts.
    #[must_use]
    pub fn options(
        signature: Arc<crate::Signature>,
        change_at: Timestamp,
        chart: Bucketer,
        requests: bool,
    ) -> (Arc<CountOptions>, Arc<CountOptions>) {
        (
            Arc::new(CountOptions {
                signature: Arc::clone(&signature),
                bucketer: Bucketer::split_at(change_at),
                dims: vec![Dim::Service, Dim::Peer],
                requests,
            }),
            Arc::new(CountOptions {
                signature,
                bucketer: chart,
                dims: vec![Dim::Service],
                requests: false,
            }),
        )
    }
}

impl Sink for VerifySink {
    fn event(&mut self, input: &InputContext<'_>, event: &Event<'_>) {
        self.split.event(input, event);
        self.series.event(input, event);
    }

    fn merge(&mut self, later: Self) {
        self.split.merge(later.split);
        self.series.merge(later.series);
    }

    fn shift_lines(&mut self, lines: u64) {
        self.split.shift_lines(lines);
        self.series.shift_lines(lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        // 120 resets in 24 h, none in the next 24 h: fixed.
        assert_eq!(decide(120, 24.0, 0, 24.0).0, Verdict::Fixed);
        // 120 vs 30: improved, not fixed.
        assert_eq!(decide(120, 24.0, 30, 24.0).0, Verdict::Improved);
        // 120 vs 300: worse.
        assert_eq!(decide(120, 24.0, 300, 24.0).0, Verdict::Worse);
        // 1000 vs 1000: no change.
        assert_eq!(decide(1000, 24.0, 1000, 24.0).0, Verdict::NoChange);
        // 3 vs 1: cannot tell.
        assert_eq!(decide(3, 24.0, 1, 24.0).0, Verdict::NotEnoughData);
        assert_eq!(decide(0, 24.0, 0, 24.0).0, Verdict::NotEnoughData);
    }

    #[test]
    fn projection_of_hours() {
        // 10 per hour before for 24 h, none in the first half hour after: improved or not
        // enough yet; a few more hours of silence decide.
        let (v, _) = decide(240, 24.0, 0, 0.1);
        let h = more_hours_needed(240, 24.0, 0, 0.1, 0.1, v);
        assert!(h.is_some_and(|h| (1.0..10.0).contains(&h)), "{v:?} {h:?}");
        if let Some(h) = h {
            assert_ne!(decide(240, 24.0, 0, 0.1 + h).0, v);
            if h > 1.0 {
                assert_eq!(decide(240, 24.0, 0, 0.1 + h - 1.0).0, v);
            }
        }
        // Nothing before: no amount of after-data makes it "fixed".
        assert_eq!(
            more_hours_needed(0, 24.0, 0, 1.0, 1.0, Verdict::NotEnoughData),
            None
        );
    }

    #[test]
    fn compare_pairs() {
        let mut b = PeriodCounts::default();
        b.pairs
            .insert(("checkout".into(), "payments".into()), (200, 0));
        b.pairs.insert(("orders".into(), "payments".into()), (5, 0));
        let mut a = PeriodCounts::default();
        a.pairs.insert(("orders".into(), "payments".into()), (4, 0));
        let period = |h: f64| Period {
            start: None,
            end: None,
            hours: h,
            failures: 0,
            requests: None,
        };
        let r = compare(
            "connection-reset",
            None,
            (&b, period(24.0)),
            (&a, period(24.0)),
            0,
            0,
        );
        assert_eq!(r.pairs.len(), 2);
        assert_eq!(r.pairs[0].service, "checkout");
        assert_eq!(r.pairs[0].verdict, Verdict::Fixed);
        assert_eq!(r.pairs[1].verdict, Verdict::NotEnoughData);
        assert_eq!(r.total.before, 205);
        assert_eq!(r.total.after, 4);
        assert_eq!(r.before.failures, 205);
    }
}
