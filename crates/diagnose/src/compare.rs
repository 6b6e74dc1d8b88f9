//! `compare`: cluster journeys into patterns (sequences of step kinds), split failing from
//! succeeding ones, and show in which steps each failing pattern differs from the nearest
//! successful pattern, with counts and one example connection each.
//!
//! Only downstream journeys (those that show the accept or listener-filter side) are
//! compared; upstream connections have their own, different shape. This module must not
//! read files or print; examples are locations that the caller fills with line text.

use crate::journey::{Journey, Outcome, Step, StepKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A location of an example, by file id; the engine turns it into file name + text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct At {
    /// Input file id.
    pub file: u32,
    /// 1-based line.
    pub line: u64,
}

/// One pattern: journeys with the same outcome and the same sequence of step kinds.
#[derive(Clone, Debug, Serialize)]
pub struct PatternSummary {
    /// `ok`, `listener_filter_timeout`, or the failure label (`tls_error:HTTP_REQUEST`).
    pub outcome: String,
    /// Step kinds in order (consecutive repeats folded).
    pub steps: Vec<StepKind>,
    /// Journeys with this pattern.
    pub count: u64,
    /// Workloads of the proxies where it was seen.
    pub workloads: BTreeSet<String>,
    /// All lines of one example journey (at most 16).
    pub example: Vec<At>,
}

/// A failing pattern and how it differs from the nearest successful one.
#[derive(Clone, Debug, Serialize)]
pub struct FailingPattern {
    /// The failing pattern.
    pub pattern: PatternSummary,
    /// Index into [`CompareResult::succeeding`] of the nearest successful pattern.
    pub nearest: Option<usize>,
    /// Steps the successful pattern has and this one lacks, most telling first.
    pub missing: Vec<StepKind>,
    /// Steps this one has and the successful pattern lacks, most telling first.
    pub extra: Vec<StepKind>,
    /// One sentence saying what differs.
    pub headline: String,
}

/// Share of succeeding and failing journeys that have a step kind.
#[derive(Clone, Debug, Serialize)]
pub struct StepShare {
    /// The step kind.
    pub step: StepKind,
    /// Fraction of succeeding journeys with it.
    pub in_succeeding: f64,
    /// Fraction of failing journeys with it.
    pub in_failing: f64,
}

/// The whole comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CompareResult {
    /// Journeys assembled (all).
    pub journeys: u64,
    /// Downstream journeys compared.
    pub compared: u64,
    /// Of which succeeding.
    pub succeeding_count: u64,
    /// Of which failing.
    pub failing_count: u64,
    /// Failing patterns, most frequent first.
    pub failing: Vec<FailingPattern>,
    /// Succeeding patterns, most frequent first.
    pub succeeding: Vec<PatternSummary>,
    /// Step kinds that separate succeeding from failing journeys, strongest first.
    pub discriminating: Vec<StepShare>,
}

/// Steps that appear in a pattern (consecutive repeats folded; restarts dropped).
#[must_use]
pub fn pattern_of(j: &Journey, steps: &[Step]) -> Vec<StepKind> {
    let mut out: Vec<StepKind> = Vec::new();
    for k in j.kinds(steps) {
        if k == StepKind::ProxyRestart || out.last() == Some(&k) {
            continue;
        }
        out.push(k);
    }
    out
}

/// Compare journeys. `workload_of(file, instance)` names the proxy of a journey.
pub fn compare<'w>(
    journeys: &[Journey],
    steps: &[Step],
    workload_of: impl Fn(u32, u64) -> Option<&'w str>,
) -> CompareResult {
    let mut result = CompareResult {
        journeys: journeys.len() as u64,
        ..CompareResult::default()
    };
    let mut groups: BTreeMap<(bool, String, Vec<StepKind>), PatternSummary> = BTreeMap::new();
    let mut succ_kinds: BTreeMap<StepKind, u64> = BTreeMap::new();
    // Succeeding journeys and their step kinds per proxy workload, so a failing pattern is
    // compared with successes on the same proxies (client and server journeys differ).
    let mut succ_by_wl: BTreeMap<String, (u64, BTreeMap<StepKind, u64>)> = BTreeMap::new();
    let mut fail_kinds: BTreeMap<StepKind, u64> = BTreeMap::new();
    for j in journeys {
        if !j.is_downstream(steps) {
            continue;
        }
        result.compared += 1;
        let outcome = j.outcome_linked(journeys, steps);
        let failing = outcome.is_failing();
        if failing {
            result.failing_count += 1;
        } else {
            result.succeeding_count += 1;
        }
        let pat = pattern_of(j, steps);
        let set: BTreeSet<StepKind> = pat.iter().copied().collect();
        if !failing {
            let e = succ_by_wl
                .entry(workload_of(j.file, j.instance).unwrap_or("").to_string())
                .or_default();
            e.0 += 1;
            for k in &set {
                *e.1.entry(*k).or_default() += 1;
            }
        }
        for k in set {
            *if failing {
                &mut fail_kinds
            } else {
                &mut succ_kinds
            }
            .entry(k)
            .or_default() += 1;
        }
        let label = outcome.label();
        let entry = groups
            .entry((failing, label.clone(), pat.clone()))
            .or_insert_with(|| PatternSummary {
                outcome: label,
                steps: pat,
                count: 0,
                workloads: BTreeSet::new(),
                example: j
                    .steps
                    .iter()
                    .chain(
                        j.upstream
                            .and_then(|u| journeys.get(u))
                            .map(|u| u.steps.as_slice())
                            .unwrap_or(&[]),
                    )
                    .take(16)
                    .filter_map(|&i| steps.get(i))
                    .map(|s| At {
                        file: s.file,
                        line: s.line,
                    })
                    .collect(),
            });
        entry.count += 1;
        if let Some(w) = workload_of(j.file, j.instance)
            && entry.workloads.len() < 16
        {
            entry.workloads.insert(w.to_string());
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let share = |m: &BTreeMap<StepKind, u64>, k: StepKind, n: u64| {
        if n == 0 {
            0.0
        } else {
            *m.get(&k).unwrap_or(&0) as f64 / n as f64
        }
    };
    let all_kinds: BTreeSet<StepKind> = succ_kinds
        .keys()
        .chain(fail_kinds.keys())
        .copied()
        .collect();
    let mut disc: Vec<StepShare> = all_kinds
        .into_iter()
        .map(|k| StepShare {
            step: k,
            in_succeeding: share(&succ_kinds, k, result.succeeding_count),
            in_failing: share(&fail_kinds, k, result.failing_count),
        })
        .filter(|s| (s.in_succeeding - s.in_failing).abs() >= 0.5)
        .collect();
    disc.sort_by(|a, b| {
        let da = (a.in_succeeding - a.in_failing).abs();
        let db = (b.in_succeeding - b.in_failing).abs();
        db.total_cmp(&da)
            .then(b.step.salience().cmp(&a.step.salience()))
            .then(a.step.cmp(&b.step))
    });
    result.discriminating = disc;

    let mut succeeding: Vec<PatternSummary> = Vec::new();
    let mut failing: Vec<PatternSummary> = Vec::new();
    for ((is_fail, _, _), p) in groups {
        if is_fail {
            failing.push(p);
        } else {
            succeeding.push(p);
        }
    }
    let by_count = |a: &PatternSummary, b: &PatternSummary| {
        b.count.cmp(&a.count).then_with(|| a.steps.cmp(&b.steps))
    };
    succeeding.sort_by(by_count);
    failing.sort_by(by_count);
    for f in failing {
        let nearest = nearest_success(&f, &succeeding);
        let (missing, extra, headline) = match nearest.and_then(|i| succeeding.get(i)) {
            Some(s) => {
                let fset: BTreeSet<StepKind> = f.steps.iter().copied().collect();
                let sset: BTreeSet<StepKind> = s.steps.iter().copied().collect();
                let mut missing: Vec<StepKind> = sset.difference(&fset).copied().collect();
                let local = local_share(&succ_by_wl, &f.workloads);
                let gap = |k: &StepKind| {
                    local(*k).unwrap_or_else(|| share(&succ_kinds, *k, result.succeeding_count))
                        - share(&fail_kinds, *k, result.failing_count)
                };
                missing.sort_by(|a, b| {
                    gap(b)
                        .total_cmp(&gap(a))
                        .then(b.salience().cmp(&a.salience()))
                        .then(a.cmp(b))
                });
                let mut extra: Vec<StepKind> = fset.difference(&sset).copied().collect();
                extra.sort_by(|a, b| {
                    b.is_failure()
                        .cmp(&a.is_failure())
                        .then(b.salience().cmp(&a.salience()))
                        .then(a.cmp(b))
                });
                let headline = headline(&f, &missing, &extra, |k| {
                    local(k).unwrap_or_else(|| share(&succ_kinds, k, result.succeeding_count))
                });
                (missing, extra, headline)
            }
            None => (
                Vec::new(),
                Vec::new(),
                format!(
                    "{} connection(s) ended in {}; no successful connection was logged to compare with",
                    f.count, f.outcome
                ),
            ),
        };
        result.failing.push(FailingPattern {
            pattern: f,
            nearest,
            missing,
            extra,
            headline,
        });
    }
    result.succeeding = succeeding;
    result
}

/// Share of succeeding journeys on the given workloads' proxies that have a step kind;
/// `None` when those proxies logged no successful journey.
fn local_share<'m>(
    by_wl: &'m BTreeMap<String, (u64, BTreeMap<StepKind, u64>)>,
    workloads: &'m BTreeSet<String>,
) -> impl Fn(StepKind) -> Option<f64> + 'm {
    move |k| {
        let (mut n, mut with) = (0u64, 0u64);
        for w in workloads {
            if let Some((count, kinds)) = by_wl.get(w) {
                n += count;
                with += kinds.get(&k).copied().unwrap_or(0);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        (n > 0).then(|| with as f64 / n as f64)
    }
}

/// The successful pattern closest to a failing one: same proxies first, then the fewest
/// edits between the step sequences, then the most frequent.
fn nearest_success(f: &PatternSummary, succeeding: &[PatternSummary]) -> Option<usize> {
    succeeding
        .iter()
        .enumerate()
        .min_by_key(|(i, s)| {
            let same_proxy = !f.workloads.is_empty() && !s.workloads.is_disjoint(&f.workloads);
            (
                !same_proxy,
                edit_distance(&f.steps, &s.steps),
                std::cmp::Reverse(s.count),
                *i,
            )
        })
        .map(|(i, _)| i)
}

fn edit_distance(a: &[StepKind], b: &[StepKind]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn explain_missing(k: StepKind) -> &'static str {
    match k {
        StepKind::Sni => {
            " — no SNI means the TLS inspector saw no ClientHello: the peer sent plaintext, not mTLS"
        }
        StepKind::Alpn => " — no ALPN: the peer did not offer Istio's mTLS protocols",
        StepKind::HandshakeComplete => " — the TLS handshake never completed",
        StepKind::DetectedProtocol => " — the protocol was never detected",
        StepKind::TcpProxy => " — the connection was never forwarded",
        _ => "",
    }
}

fn headline(
    f: &PatternSummary,
    missing: &[StepKind],
    extra: &[StepKind],
    succ_share: impl Fn(StepKind) -> f64,
) -> String {
    let fail_step = extra.iter().find(|k| k.is_failure());
    let ended = match fail_step {
        Some(k) => format!(" and end in {}", k.name()),
        None if f.outcome == Outcome::SniffTimeout.label() => {
            " and hit a listener-filter (protocol sniffing) timeout".to_string()
        }
        None => String::new(),
    };
    match missing.first() {
        Some(k) => {
            let pct = (succ_share(*k) * 100.0).round();
            format!(
                "{} failing connection(s) ({}) lack the `{}` step that {pct}% of successful connections on the same sidecar(s) have{}{}",
                f.count,
                f.outcome,
                k.name(),
                explain_missing(*k),
                if ended.is_empty() {
                    String::new()
                } else {
                    format!(";{ended}")
                },
            )
        }
        None => format!(
            "{} failing connection(s) ({}) have every step of the successful pattern{}",
            f.count, f.outcome, ended
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::assemble;

    fn s(line: u64, conn: Option<u64>, kind: StepKind, detail: Option<&str>) -> Step {
        Step {
            file: 0,
            line,
            time: Some(line as i64 * 1000),
            instance: 0,
            thread: None,
            conn,
            stream: None,
            kind,
            detail: detail.map(Into::into),
        }
    }

    #[test]
    fn seed_journeys_point_at_missing_sni() {
        use StepKind::*;
        let mut steps = vec![
            // Failing (seed incident, server sidecar).
            s(1, None, HttpInspector, None),
            s(2, Some(3656911), Accepted, None),
            s(3, Some(3656911), HandshakeError, Some("handshake error: 1")),
            s(4, Some(3656911), TlsError, Some("HTTP_REQUEST")),
            s(5, Some(3656911), RemoteClose, None),
            s(6, Some(3656911), Cleanup, None),
        ];
        // Successful.
        let mut line = 7;
        for id in [3849060, 3849061] {
            for (conn, kind, d) in [
                (None, OriginalDst, None),
                (None, TlsInspector, None),
                (None, Sni, Some("outbound_.80_._.b.svc.cluster.local")),
                (None, HttpInspector, None),
                (Some(id), Accepted, None),
                (Some(id), HandshakeComplete, None),
            ] {
                steps.push(s(line, conn, kind, d));
                line += 1;
            }
        }
        let j = assemble(&steps);
        let r = compare(&j.journeys, &steps, |_, _| Some("b"));
        assert_eq!(r.failing_count, 1);
        assert_eq!(r.succeeding_count, 2);
        let f = &r.failing[0];
        assert_eq!(f.pattern.outcome, "tls_error:HTTP_REQUEST");
        assert_eq!(f.missing.first(), Some(&Sni), "{:?}", f.missing);
        assert!(f.headline.contains("sni"), "{}", f.headline);
        assert_eq!(f.extra.first().map(|k| k.is_failure()), Some(true));
        assert_eq!(r.discriminating.first().map(|d| d.step), Some(Sni));
        assert_eq!(f.pattern.example.first(), Some(&At { file: 0, line: 1 }));
    }

    #[test]
    fn edit_distance_basics() {
        use StepKind::*;
        assert_eq!(edit_distance(&[Accepted, Cleanup], &[Accepted, Cleanup]), 0);
        assert_eq!(edit_distance(&[Accepted], &[Accepted, Sni, Cleanup]), 2);
        assert_eq!(edit_distance(&[], &[Sni]), 1);
    }
}
