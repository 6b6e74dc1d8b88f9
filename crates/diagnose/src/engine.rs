//! The engine: read inputs through the pipeline into a [`Collector`], assemble journeys,
//! compute signals (journeys, correlation, rates, patterns), score every rule, and produce
//! a [`Diagnosis`] with a verdict that is named only when it clears a documented bar.
//!
//! Scoring (also in `RULES.md`): confidence = (1 - prod(1 - w+)) x prod(1 - |w-|) over fired
//! evidence; a rule is a candidate only when an anchor fires; the verdict is the top
//! candidate when confidence >= [`VERDICT_BAR`] and it leads the runner-up by
//! [`VERDICT_MARGIN`]; otherwise `inconclusive` with the evidence to collect next.
//! What runs after the parallel read runs alone on one core unless joined with rayon, so
//! independent steps (folding counters, assembling journeys, reading config; the rules and
//! the journey comparison) run side by side. This module must not print or format for a
//! terminal.

use crate::collect::{AgentKindOfInterest, Collector, Patterns};
use crate::compare::{At, CompareResult, compare};
use crate::journey::{Journeys, StepKind, assemble};
use crate::lines::fill_lines;
use crate::rules::{Category, Rule, RuleSet, Side};
use crate::signals::{EvidenceLine, SignalResult};
use crate::version::VersionRange;
use meshdoctor_input::InputFile;
use meshdoctor_logs::{FileCoverage, RunOptions};
use meshdoctor_model::{ErrorClass, Timestamp};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Minimum confidence for a named verdict.
pub const VERDICT_BAR: f64 = 0.60;
/// Minimum lead over the runner-up for a named verdict.
pub const VERDICT_MARGIN: f64 = 0.15;
/// Clock-skew tolerance when joining app errors to sidecar events.
pub const SKEW_NS: i64 = 2_000_000_000;
/// Evidence lines shown per finding.
pub const MAX_EVIDENCE_LINES: usize = 8;

/// Everything read from the inputs, before rules are applied.
#[derive(Debug)]
pub struct Analysis {
    /// The merged sink.
    pub collector: Collector,
    /// Journeys assembled from its steps.
    pub journeys: Journeys,
    /// Coverage per log input.
    pub coverage: Vec<FileCoverage>,
    /// Display name per file id.
    pub file_names: BTreeMap<u32, String>,
    /// The inputs (to re-read evidence lines).
    pub inputs: Vec<InputFile>,
    /// Configuration read from the same inputs (mesh config, resources, dumps, stats).
    pub config: meshdoctor_config::ConfigSet,
}

/// Read inputs and assemble journeys. `rules` supplies the patterns evaluated while reading.
#[must_use]
pub fn analyse(inputs: &[InputFile], options: &RunOptions, rules: &RuleSet) -> Analysis {
    let patterns = Arc::new(Patterns::compile(rules));
    let mut out = meshdoctor_logs::run(inputs, options, || Collector::new(Arc::clone(&patterns)));
    // Three independent jobs after the parallel read, which would otherwise run one after
    // the other while a core idles: folding the access counters, joining steps into
    // journeys, reading the configuration.
    let steps = std::mem::take(&mut out.sink.steps);
    let ((journeys, config), ()) = rayon::join(
        || rayon::join(|| assemble(&steps), || meshdoctor_config::load(inputs)),
        || out.sink.finish(),
    );
    out.sink.steps = steps;
    Analysis {
        collector: out.sink,
        journeys,
        coverage: out.coverage,
        file_names: inputs.iter().map(|i| (i.id, i.display.clone())).collect(),
        inputs: inputs.to_vec(),
        config,
    }
}

/// One input in the report.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    /// Display name.
    pub file: String,
    /// Dominant family.
    pub kind: String,
    /// Physical lines.
    pub lines: u64,
    /// Lines skipped.
    pub skipped: u64,
    /// Events.
    pub events: u64,
    /// Skipped lines per reason.
    pub skipped_reasons: BTreeMap<String, u64>,
    /// Why reading stopped early.
    pub read_error: Option<String>,
}

/// How one evidence item of a rule came out.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceItem {
    /// Signal name.
    pub signal: String,
    /// What it means.
    pub means: String,
    /// Weight in the rule.
    pub weight: f64,
    /// Occurrences.
    pub count: u64,
    /// Rate over the denominator, if any.
    pub rate: Option<f64>,
    /// True when it counted in the score.
    pub fired: bool,
    /// Why it did not count although it was seen (version, threshold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_counted: Option<String>,
    /// Workloads where it was seen.
    pub workloads: Vec<String>,
}

/// One ranked cause.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Cause id.
    pub cause: String,
    /// Title.
    pub title: String,
    /// 0..1.
    pub confidence: f64,
    /// One sentence with names filled in.
    pub summary: String,
    /// Why this cause resets connections.
    pub mechanism: String,
    /// Mesh fault or not.
    pub category: Category,
    /// Affected workloads: servers first, then clients, then others.
    pub workloads: Vec<String>,
    /// Workloads on the callee side.
    pub servers: Vec<String>,
    /// Workloads on the caller side.
    pub clients: Vec<String>,
    /// Caller -> callee pairs, when both sides are known.
    pub workload_pairs: Vec<String>,
    /// Occurrences of the strongest fired anchor.
    pub occurrences: u64,
    /// Earliest occurrence (RFC 3339).
    pub first: Option<String>,
    /// Latest occurrence (RFC 3339).
    pub last: Option<String>,
    /// Evidence lines (file, line, text).
    pub evidence: Vec<EvidenceLine>,
    /// Lines of evidence that speak against it.
    pub counter_evidence: Vec<EvidenceLine>,
    /// Every evidence item with its outcome.
    pub items: Vec<EvidenceItem>,
    /// Why it is not the verdict (for runner-ups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruled_out: Option<String>,
    /// Fix steps.
    pub fix: Vec<String>,
    /// Verify steps.
    pub verify: Vec<String>,
    /// References.
    pub references: Vec<String>,
    /// Versions it applies to.
    pub versions: Option<String>,
}

/// Journey statistics for the report.
#[derive(Clone, Debug, Serialize, Default)]
pub struct JourneyStats {
    /// Steps kept.
    pub steps: u64,
    /// Steps dropped for memory.
    pub steps_dropped: u64,
    /// Journeys.
    pub journeys: u64,
    /// Listener-filter lines no connection claimed.
    pub orphan_listener_lines: u64,
    /// Proxy restarts detected.
    pub restarts: u64,
    /// Downstream connections linked to the upstream connection they were proxied to.
    pub linked_upstream: u64,
}

/// The result of `diagnose` (the JSON contract; fields may be added, never renamed).
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// The cause id, or `inconclusive`.
    pub verdict: String,
    /// Confidence of the verdict (of the top finding when inconclusive).
    pub confidence: f64,
    /// Candidates, best first.
    pub findings: Vec<Finding>,
    /// What to collect next (when inconclusive).
    pub missing_evidence: Vec<String>,
    /// Inputs and what was skipped.
    pub inputs: Vec<InputSummary>,
    /// Detected Istio version range (`unknown` when nothing narrowed it).
    pub istio_version: String,
    /// How versions were inferred.
    pub version_hints: Vec<String>,
    /// The bar a verdict must clear.
    pub bar: Bar,
    /// Journey statistics.
    pub journeys: JourneyStats,
    /// Failing vs succeeding journeys.
    pub compare: CompareOutput,
    /// Application errors by class.
    pub app_errors: BTreeMap<String, u64>,
    /// Access rows in total and failing.
    pub traffic: Traffic,
    /// Notes on limits hit or evidence quality.
    pub notes: Vec<String>,
}

/// The verdict bar.
#[derive(Clone, Debug, Serialize)]
pub struct Bar {
    /// Minimum confidence.
    pub min_confidence: f64,
    /// Minimum lead over the runner-up.
    pub min_margin: f64,
}

/// Access-log traffic totals.
#[derive(Clone, Debug, Serialize, Default)]
pub struct Traffic {
    /// Rows.
    pub rows: u64,
    /// Failing rows.
    pub failing: u64,
    /// Failing rows by workload, code and flags.
    pub failing_by: Vec<TrafficRow>,
}

/// One aggregate of failing access rows.
#[derive(Clone, Debug, Serialize)]
pub struct TrafficRow {
    /// Workload.
    pub workload: String,
    /// inbound/outbound.
    pub direction: String,
    /// Code.
    pub code: u16,
    /// Flags.
    pub flags: String,
    /// Cluster.
    pub cluster: String,
    /// Rows.
    pub count: u64,
    /// Share of the workload's rows.
    pub rate: f64,
}

/// A comparison with file names and line texts filled in.
#[derive(Clone, Debug, Serialize, Default)]
pub struct CompareOutput {
    /// The comparison.
    #[serde(flatten)]
    pub result: CompareResult,
    /// Example lines per failing pattern (same order as `failing`).
    pub failing_examples: Vec<Vec<EvidenceLine>>,
    /// Example lines per succeeding pattern (same order as `succeeding`).
    pub succeeding_examples: Vec<Vec<EvidenceLine>>,
}

struct Ctx<'a> {
    a: &'a Analysis,
    cache: BTreeMap<String, SignalResult>,
    version: VersionRange,
    /// [`Ctx::journey_meshed_peers`], worked out once for the signals that ask.
    journey_peers: std::sync::OnceLock<BTreeSet<&'a str>>,
}

impl<'a> Ctx<'a> {
    fn new(a: &'a Analysis, version: VersionRange) -> Self {
        Ctx {
            a,
            cache: BTreeMap::new(),
            version,
            journey_peers: std::sync::OnceLock::new(),
        }
    }
}

/// Run the whole diagnosis.
#[must_use]
pub fn diagnose(inputs: &[InputFile], options: &RunOptions, rules: &RuleSet) -> Diagnosis {
    let analysis = analyse(inputs, options, rules);
    let diagnosis = evaluate(&analysis, rules);
    // Freeing what was collected (steps, rows, names: many small allocations) takes as long
    // as some of the analysis; nothing waits for it, so it happens beside the report.
    rayon::spawn(move || drop(analysis));
    diagnosis
}

/// Only the journey comparison.
#[must_use]
pub fn compare_inputs(
    inputs: &[InputFile],
    options: &RunOptions,
) -> (CompareOutput, Vec<InputSummary>, JourneyStats) {
    let analysis = analyse(inputs, options, &RuleSet::default());
    (
        compare_output(&analysis),
        input_summaries(&analysis),
        journey_stats(&analysis),
    )
}

fn journey_stats(a: &Analysis) -> JourneyStats {
    JourneyStats {
        steps: a.collector.steps.len() as u64,
        steps_dropped: a.collector.steps_dropped,
        journeys: a.journeys.journeys.len() as u64,
        orphan_listener_lines: a.journeys.orphan_listener_lines,
        restarts: a.journeys.restarts,
        linked_upstream: a.journeys.linked_upstream,
    }
}

fn input_summaries(a: &Analysis) -> Vec<InputSummary> {
    a.coverage
        .iter()
        .map(|c| InputSummary {
            file: c.display.clone(),
            kind: c.kind.clone(),
            lines: c.lines,
            skipped: c.skipped,
            events: c.events,
            skipped_reasons: c
                .skipped_reasons
                .iter()
                .map(|(r, n)| (r.describe().to_string(), *n))
                .collect(),
            read_error: c.read_error.clone(),
        })
        .collect()
}

/// The comparison with example lines read back from the inputs.
#[must_use]
pub fn compare_output(a: &Analysis) -> CompareOutput {
    let mut out = compare_unfilled(a);
    fill_lines(&a.inputs, &a.coverage, &mut out.example_lines());
    out
}

/// The comparison with its example lines' texts still empty.
fn compare_unfilled(a: &Analysis) -> CompareOutput {
    let c = &a.collector;
    let result = compare(&a.journeys.journeys, &c.steps, |f, i| c.workload_of(f, i));
    let failing_examples = result
        .failing
        .iter()
        .map(|f| to_lines(a, &f.pattern.example))
        .collect();
    let succeeding_examples = result
        .succeeding
        .iter()
        .map(|s| to_lines(a, &s.example))
        .collect();
    CompareOutput {
        result,
        failing_examples,
        succeeding_examples,
    }
}

impl CompareOutput {
    /// Every example line, to fill.
    fn example_lines(&mut self) -> Vec<&mut EvidenceLine> {
        self.failing_examples
            .iter_mut()
            .chain(self.succeeding_examples.iter_mut())
            .flatten()
            .collect()
    }
}

fn to_lines(a: &Analysis, at: &[At]) -> Vec<EvidenceLine> {
    at.iter()
        .map(|x| EvidenceLine {
            file: a.file_names.get(&x.file).cloned().unwrap_or_default(),
            line: x.line,
            text: String::new(),
        })
        .collect()
}

fn loc_lines(a: &Analysis, at: &[(u32, u64)]) -> Vec<EvidenceLine> {
    at.iter()
        .map(|(f, l)| EvidenceLine {
            file: a.file_names.get(f).cloned().unwrap_or_default(),
            line: *l,
            text: String::new(),
        })
        .collect()
}

/// Apply rules to an analysis.
#[must_use]
pub fn evaluate(a: &Analysis, rules: &RuleSet) -> Diagnosis {
    // The journey comparison reads nothing the rules write: it runs beside them. The lines
    // both quote are read back together, one pass per file.
    let (compare, diagnosis) = rayon::join(|| compare_unfilled(a), || score(a, rules));
    let mut d = Diagnosis {
        compare,
        ..diagnosis
    };
    let mut all: Vec<&mut EvidenceLine> = d
        .findings
        .iter_mut()
        .flat_map(|f| f.evidence.iter_mut().chain(f.counter_evidence.iter_mut()))
        .collect();
    all.extend(d.compare.example_lines());
    fill_lines(&a.inputs, &a.coverage, &mut all);
    d
}

/// The rules' part of [`evaluate`]: `compare` is left empty and evidence texts unread.
fn score(a: &Analysis, rules: &RuleSet) -> Diagnosis {
    // Config (istiod / proxy images) names the version when the log layout does not.
    let version =
        crate::config_signals::version_with_config(a.collector.versions.range(), &a.config);
    let mut ctx = Ctx::new(a, version);
    // Each signal is its own pass over the steps, journeys or rows, and none reads another:
    // they are worked out on every core first, and the rules then read them in order.
    let mut keys: Vec<String> = rules
        .rules
        .iter()
        .flat_map(|r| r.evidence.iter().map(move |e| signal_key(r, &e.signal)))
        .chain([CLIENT_SIGNAL.to_string()])
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let computed: Vec<(String, SignalResult)> = keys
        .into_par_iter()
        .map(|k| {
            let r = ctx.compute(&k);
            (k, r)
        })
        .collect();
    ctx.cache.extend(computed);
    let mut findings: Vec<(Finding, u64)> = rules
        .rules
        .iter()
        .filter_map(|r| score_rule(&mut ctx, r))
        .collect();
    findings.sort_by(|(fa, oa), (fb, ob)| {
        fb.confidence
            .total_cmp(&fa.confidence)
            .then(ob.cmp(oa))
            .then(fa.cause.cmp(&fb.cause))
    });
    let mut findings: Vec<Finding> = findings.into_iter().map(|(f, _)| f).collect();
    let top = findings.first().map_or(0.0, |f| f.confidence);
    let second = findings.get(1).map_or(0.0, |f| f.confidence);
    let named = top >= VERDICT_BAR && top - second >= VERDICT_MARGIN;
    let verdict = if named {
        findings
            .first()
            .map_or_else(|| "inconclusive".to_string(), |f| f.cause.clone())
    } else {
        "inconclusive".to_string()
    };
    // Explain why the others are not the verdict.
    let top_id = findings.first().map(|f| f.cause.clone());
    for (i, f) in findings.iter_mut().enumerate() {
        f.ruled_out = ruled_out(f, i, named, top, top_id.as_deref());
    }
    let missing_evidence = if named {
        Vec::new()
    } else {
        missing(&findings, rules, a, version)
    };
    let mut notes = Vec::new();
    if a.collector.steps_dropped > 0 {
        notes.push(format!(
            "{} Envoy connection lines beyond the memory cap were not joined into journeys",
            a.collector.steps_dropped
        ));
    }
    if a.collector.app_errors_dropped > 0 {
        notes.push(format!(
            "{} application errors beyond the cap were counted but not correlated",
            a.collector.app_errors_dropped
        ));
    }
    if a.collector.envoy_debug_lines == 0 {
        notes.push("no Envoy debug lines of the connection loggers: journeys cannot be built (raise the sidecar log level, see missing evidence)".into());
    }
    if a.collector.access_rows == 0 {
        notes.push("no access log rows: failure rates cannot be computed".into());
    }
    Diagnosis {
        verdict,
        confidence: top,
        findings,
        missing_evidence,
        inputs: input_summaries(a),
        istio_version: version.to_string(),
        version_hints: a
            .collector
            .versions
            .hints
            .iter()
            .map(|(w, r)| format!("{w} => Istio {r}"))
            .collect(),
        bar: Bar {
            min_confidence: VERDICT_BAR,
            min_margin: VERDICT_MARGIN,
        },
        journeys: journey_stats(a),
        compare: CompareOutput::default(),
        app_errors: a
            .collector
            .app_classes
            .iter()
            .map(|(c, r)| (c.as_str().to_string(), r.count))
            .collect(),
        traffic: traffic(a),
        notes,
    }
}

fn traffic(a: &Analysis) -> Traffic {
    let c = &a.collector;
    let mut rows: Vec<TrafficRow> = c
        .access_agg
        .iter()
        .filter(|((_, _, code, flags, _), _)| *code >= 500 || flags != "-")
        .map(|((w, d, code, flags, cluster), n)| {
            let total = c
                .access_rows_by_workload
                .get(w)
                .copied()
                .unwrap_or(0)
                .max(1);
            #[allow(clippy::cast_precision_loss)]
            let rate = round2(*n as f64 / total as f64);
            TrafficRow {
                workload: w.clone(),
                direction: (*d).to_string(),
                code: *code,
                flags: flags.clone(),
                cluster: cluster.clone(),
                count: *n,
                rate,
            }
        })
        .collect();
    rows.sort_by(|x, y| y.count.cmp(&x.count).then(x.workload.cmp(&y.workload)));
    rows.truncate(20);
    Traffic {
        rows: c.access_rows,
        failing: c.access_failures.count,
        failing_by: rows,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ruled_out(
    f: &Finding,
    idx: usize,
    named: bool,
    top: f64,
    top_id: Option<&str>,
) -> Option<String> {
    if idx == 0 && named {
        return None;
    }
    let against: Vec<String> = f
        .items
        .iter()
        .filter(|i| i.fired && i.weight < 0.0)
        .map(|i| format!("{} ({}x)", i.means, i.count))
        .collect();
    let unseen: Vec<String> = f
        .items
        .iter()
        .filter(|i| !i.fired && i.weight > 0.0)
        .take(2)
        .map(|i| i.means.clone())
        .collect();
    let mut parts = Vec::new();
    if !against.is_empty() {
        parts.push(format!("speaks against it: {}", against.join("; ")));
    }
    if idx == 0 {
        if f.confidence < VERDICT_BAR {
            parts.push(format!(
                "confidence {:.2} is below the bar of {VERDICT_BAR:.2}",
                f.confidence
            ));
        } else {
            parts.push(format!(
                "it does not lead the runner-up by {VERDICT_MARGIN:.2}: the evidence fits more than one cause"
            ));
        }
    } else if let Some(t) = top_id {
        parts.push(format!(
            "scores {:.2} against {:.2} for {t}",
            f.confidence, top
        ));
    }
    if !unseen.is_empty() {
        parts.push(format!("not seen: {}", unseen.join("; ")));
    }
    Some(parts.join("; "))
}

fn missing(
    findings: &[Finding],
    rules: &RuleSet,
    a: &Analysis,
    version: VersionRange,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    // First what would confirm or refute the leading candidates (unseen positive evidence
    // that can exist in this version), then the leader's own collection list.
    for f in findings.iter().take(2) {
        if let Some(rule) = rules.rules.iter().find(|r| r.id == f.cause) {
            for (e, item) in rule.evidence.iter().zip(&f.items) {
                let applies = e
                    .istio
                    .as_deref()
                    .and_then(VersionRange::parse)
                    .is_none_or(|r| version.is_any() || r.overlaps(version));
                if e.weight > 0.0
                    && !item.fired
                    && item.count == 0
                    && applies
                    && let Some(c) = &e.collect
                {
                    push(c);
                }
            }
        }
    }
    // The leader's own collection list, then the first two of the runner-up's (what would
    // confirm the alternative).
    for (i, f) in findings.iter().take(2).enumerate() {
        if let Some(rule) = rules.rules.iter().find(|r| r.id == f.cause) {
            for c in rule
                .collect
                .iter()
                .take(if i == 0 { usize::MAX } else { 2 })
            {
                push(c);
            }
        }
    }
    if findings.is_empty() {
        if a.collector.envoy_debug_lines == 0 {
            push(
                "sidecar debug logs of the server (callee) pod while the failure happens: istioctl proxy-config log <server-pod> --level connection:debug,conn_handler:debug,filter:debug,http:debug,router:debug (and the same on the client pod)",
            );
        }
        if a.collector.access_rows == 0 {
            push(
                "Envoy access logs of both sidecars: meshConfig.accessLogFile=/dev/stdout (or the Telemetry API with the envoy provider)",
            );
        }
        if a.collector.app_records == 0 {
            push("the calling application's log with timestamps for the same period");
        }
        push(
            "listener and cluster stats, which Istio does not emit by default: proxyStatsMatcher inclusionPrefixes [\"listener.\", \"cluster.outbound\", \"cluster.inbound\"] (1.6/1.7: sidecar.istio.io/statsInclusionPrefixes), then `pilot-agent request GET stats` (downstream_pre_cx_timeout, upstream_cx_destroy_remote_with_active_rq, ...)",
        );
    }
    out
}

/// The signal that names the client side of a finding when its evidence names none.
const CLIENT_SIGNAL: &str = "app.resets";

/// The cache key of a rule's evidence signal: a rule's own patterns are named by the rule.
fn signal_key(rule: &Rule, signal: &str) -> String {
    if signal.starts_with("pattern.") {
        format!("{}/{}", rule.id, signal)
    } else {
        signal.to_string()
    }
}

fn score_rule(ctx: &mut Ctx<'_>, rule: &Rule) -> Option<(Finding, u64)> {
    let mut items = Vec::new();
    let mut pos = 1.0f64;
    let mut neg = 1.0f64;
    let mut anchor_fired = false;
    let mut anchor_occ = 0u64;
    let mut anchor_total = 0u64;
    let mut servers: BTreeSet<String> = BTreeSet::new();
    let mut clients: BTreeSet<String> = BTreeSet::new();
    let mut all_workloads: BTreeSet<String> = BTreeSet::new();
    let mut evidence: Vec<(u32, u64)> = Vec::new();
    let mut counter: Vec<(u32, u64)> = Vec::new();
    let mut first: Option<i64> = None;
    let mut last: Option<i64> = None;
    for e in &rule.evidence {
        let res = ctx.signal(&signal_key(rule, &e.signal));
        let rate = res.rate();
        let version_ok = e
            .istio
            .as_deref()
            .and_then(VersionRange::parse)
            .is_none_or(|r| ctx.version.is_any() || r.overlaps(ctx.version));
        let count_ok = res.count >= e.min_count.max(1);
        let rate_ok = match (e.min_rate, rate) {
            (Some(min), Some(r)) => r >= min,
            _ => true,
        };
        let fired = count_ok && rate_ok && version_ok;
        let not_counted = if res.count > 0 && !fired {
            Some(if !version_ok {
                format!(
                    "seen, but only counts for Istio {} and the inputs look like Istio {}",
                    e.istio.as_deref().unwrap_or("?"),
                    ctx.version
                )
            } else if !count_ok {
                format!("seen {} time(s), needs {}", res.count, e.min_count)
            } else {
                format!(
                    "rate {:.3} is below {:.3}",
                    rate.unwrap_or(0.0),
                    e.min_rate.unwrap_or(0.0)
                )
            })
        } else {
            None
        };
        if fired {
            if e.weight > 0.0 {
                pos *= 1.0 - e.weight;
                // Anchors show two lines, corroboration one; the time range is the anchors'.
                let take = if e.anchor { 2 } else { 1 };
                // A config fact is one line that often settles the case (the ConfigMap's
                // timeout, the Pod without a sidecar): it may use two extra slots.
                let cap = if e.signal.starts_with("config.") || e.signal.starts_with("stats:") {
                    MAX_EVIDENCE_LINES + 2
                } else {
                    MAX_EVIDENCE_LINES
                };
                for (f, l) in res.examples.iter().take(take) {
                    if evidence.len() < cap && !evidence.contains(&(*f, *l)) {
                        evidence.push((*f, *l));
                    }
                }
                if e.anchor {
                    if let Some(t) = res.first {
                        first = Some(first.map_or(t, |x| x.min(t)));
                    }
                    if let Some(t) = res.last {
                        last = Some(last.map_or(t, |x| x.max(t)));
                    }
                }
                match e.side {
                    Some(Side::Server) => servers.extend(res.workloads.iter().cloned()),
                    Some(Side::Client) => clients.extend(res.workloads.iter().cloned()),
                    None => {}
                }
                all_workloads.extend(res.workloads.iter().cloned());
            } else {
                neg *= 1.0 - e.weight.abs();
                for (f, l) in res.examples.iter().take(2) {
                    if counter.len() < 4 {
                        counter.push((*f, *l));
                    }
                }
            }
            if e.anchor {
                anchor_fired = true;
                anchor_occ = anchor_occ.max(res.count);
                anchor_total += res.count;
            }
        }
        items.push(EvidenceItem {
            signal: e.signal.clone(),
            means: e.means.clone(),
            weight: e.weight,
            count: res.count,
            rate: rate.map(|r| (r * 1000.0).round() / 1000.0),
            fired,
            not_counted,
            workloads: res.workloads.iter().cloned().collect(),
        });
    }
    if !anchor_fired {
        return None;
    }
    let confidence = round2((1.0 - pos) * neg);
    // The client side of a pair is better named by who logged the app errors.
    if clients.is_empty() {
        let app = ctx.signal(CLIENT_SIGNAL);
        clients.extend(
            app.workloads
                .iter()
                .filter(|w| !servers.contains(*w))
                .cloned(),
        );
    }
    let mut workloads: Vec<String> = Vec::new();
    for s in &servers {
        workloads.push(s.clone());
    }
    for c in &clients {
        if !servers.contains(c) {
            workloads.push(c.clone());
        }
    }
    for w in &all_workloads {
        if !servers.contains(w) && !clients.contains(w) {
            workloads.push(w.clone());
        }
    }
    let workload_pairs: Vec<String> = clients
        .iter()
        .flat_map(|c| {
            servers
                .iter()
                .filter(move |s| *s != c)
                .map(move |s| format!("{c} -> {s}"))
        })
        .take(16)
        .collect();
    let namespace = servers.iter().find_map(|s| {
        ctx.a
            .collector
            .instances
            .values()
            .find(|i| i.workload.as_deref() == Some(s.as_str()))
            .and_then(|i| i.namespace.clone())
    });
    let names = Names {
        server: join_or(&servers, "<server>"),
        client: join_or(&clients, "<client>"),
        namespace: namespace.unwrap_or_else(|| "<namespace>".into()),
        version: if ctx.version.is_any() {
            "Istio version unknown".into()
        } else {
            format!("detected Istio {}", ctx.version)
        },
        detection_timeout: crate::config_signals::mesh_detection_timeout(ctx.a),
    };
    let (fix, verify) = pick_fix(rule, ctx.version);
    let a = ctx.a;
    Some((
        Finding {
            cause: rule.id.clone(),
            title: rule.title.clone(),
            confidence,
            summary: names.fill(&rule.summary),
            mechanism: rule
                .mechanism
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            category: rule.category,
            workloads,
            servers: servers.iter().cloned().collect(),
            clients: clients
                .iter()
                .filter(|c| !servers.contains(*c))
                .cloned()
                .collect(),
            workload_pairs,
            occurrences: anchor_occ,
            first: first.map(|t| Timestamp(t).to_string()),
            last: last.map(|t| Timestamp(t).to_string()),
            evidence: loc_lines(a, &evidence),
            counter_evidence: loc_lines(a, &counter),
            items,
            ruled_out: None,
            fix: fix.iter().map(|s| names.fill(s)).collect(),
            verify: verify.iter().map(|s| names.fill(s)).collect(),
            references: rule.references.clone(),
            versions: rule.versions.clone(),
        },
        anchor_total,
    ))
}

fn join_or(set: &BTreeSet<String>, default: &str) -> String {
    if set.is_empty() {
        default.to_string()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn pick_fix(rule: &Rule, version: VersionRange) -> (&[String], &[String]) {
    if !version.is_any() {
        for v in &rule.fix_variants {
            if let Some(r) = VersionRange::parse(&v.istio)
                && r.lo <= version.lo
                && version.hi <= r.hi
            {
                let verify = if v.verify.is_empty() {
                    &rule.verify
                } else {
                    &v.verify
                };
                return (&v.fix, verify);
            }
        }
    }
    (&rule.fix, &rule.verify)
}

struct Names {
    server: String,
    client: String,
    namespace: String,
    version: String,
    detection_timeout: String,
}

impl Names {
    fn fill(&self, text: &str) -> String {
        // `<client-pod of {client}>` reads as `<client-pod>` when the name is unknown.
        let mut text = text.to_string();
        for (key, value) in [("{client}", &self.client), ("{server}", &self.server)] {
            if value.starts_with('<') {
                text = text.replace(&format!(" of {key}>"), ">");
            }
        }
        text.replace("{server}", &self.server)
            .replace("{client}", &self.client)
            .replace("{namespace}", &self.namespace)
            .replace("{istio_version}", &self.version)
            .replace("{detection_timeout}", &self.detection_timeout)
    }
}

/// A plaintext rejection (TLS `HTTP_REQUEST`, no filter chain, unparsable ClientHello) whose
/// peer address is known: the step to cite and the peer.
fn plaintext_rejection<'s>(
    j: &crate::journey::Journey,
    steps: &'s [crate::journey::Step],
) -> Option<(&'s crate::journey::Step, &'s str)> {
    let at = j.steps.iter().filter_map(|&i| steps.get(i)).find(|s| {
        (s.kind == StepKind::TlsError && s.detail.as_deref() == Some("HTTP_REQUEST"))
            || s.kind == StepKind::FilterChainNotFound
            || s.kind == StepKind::ClientHelloFailed
    })?;
    let peer = match at.kind {
        StepKind::FilterChainNotFound => at.detail.as_deref(),
        _ => j
            .first_of(steps, StepKind::Accepted)
            .and_then(|s| s.detail.as_deref()),
    }?;
    Some((at, peer))
}

const RESET_FAMILY: [ErrorClass; 3] = [
    ErrorClass::ConnectionReset,
    ErrorClass::ClosedWithoutResponse,
    ErrorClass::BrokenPipe,
];

impl<'a> Ctx<'a> {
    fn signal(&mut self, name: &str) -> SignalResult {
        if let Some(r) = self.cache.get(name) {
            return r.clone();
        }
        let r = self.compute(name);
        self.cache.insert(name.to_string(), r.clone());
        r
    }

    fn with_denominator(&self, mut r: SignalResult) -> SignalResult {
        let c = &self.a.collector;
        let d: u64 = if r.workloads.is_empty() {
            c.access_rows
        } else {
            r.workloads
                .iter()
                .map(|w| c.access_rows_by_workload.get(w).copied().unwrap_or(0))
                .sum()
        };
        r.denominator = Some(d);
        r
    }

    fn step_signal(&self, pred: impl Fn(StepKind, Option<&str>) -> bool) -> SignalResult {
        let c = &self.a.collector;
        let mut r = SignalResult::default();
        for s in &c.steps {
            if pred(s.kind, s.detail.as_deref()) {
                r.hit(c.workload_of(s.file, s.instance), s.time, (s.file, s.line));
            }
        }
        r
    }

    /// A signal over journeys: `pred` returns the step to cite when the journey counts.
    fn journey_signal(
        &self,
        pred: impl Fn(&crate::journey::Journey) -> Option<(u32, u64, Option<i64>)>,
    ) -> SignalResult {
        let c = &self.a.collector;
        let mut r = SignalResult::default();
        for j in &self.a.journeys.journeys {
            if let Some((f, l, t)) = pred(j) {
                r.hit(c.workload_of(j.file, j.instance), t, (f, l));
            }
        }
        r
    }

    /// Times of sidecar failures with the workload whose sidecar logged them, sorted.
    fn failure_times(&self, only_tls: bool) -> Vec<(i64, Option<&str>)> {
        let c = &self.a.collector;
        let mut t: Vec<(i64, Option<&str>)> = c
            .steps
            .iter()
            .filter(|s| {
                if only_tls {
                    s.kind == StepKind::TlsError
                        || s.kind == StepKind::ClientHelloFailed
                        || s.kind == StepKind::FilterChainNotFound
                } else {
                    s.kind.is_failure()
                }
            })
            .filter_map(|s| s.time.map(|t| (t, c.workload_of(s.file, s.instance))))
            .collect();
        if !only_tls {
            t.extend(
                c.access_fail_rows
                    .iter()
                    .filter_map(|r| r.time.map(|t| (t, r.workload.as_deref()))),
            );
        }
        t.sort_unstable();
        t
    }

    /// App reset-family errors with a sidecar failure within the clock-skew window. When the
    /// error names its peer and some failure in the window comes from a workload that the
    /// peer names (or from the caller's own sidecar), only those count as the pair; when
    /// no workload in the window matches the peer, time alone decides.
    fn correlate_resets(&self, only_tls: bool) -> SignalResult {
        let c = &self.a.collector;
        let times = self.failure_times(only_tls);
        let mut r = SignalResult::default();
        for e in &c.app_errors {
            if !RESET_FAMILY.contains(&e.class) {
                continue;
            }
            let Some(t) = e.time else { continue };
            let lo = times.partition_point(|(x, _)| *x < t.saturating_sub(SKEW_NS));
            let hi = times.partition_point(|(x, _)| *x <= t.saturating_add(SKEW_NS));
            let window = times.get(lo..hi).unwrap_or(&[]);
            if window.is_empty() {
                continue;
            }
            let pair = |w: Option<&str>| {
                w.is_some_and(|w| {
                    e.workload.as_deref() == Some(w)
                        || e.peer.as_deref().is_some_and(|p| p.contains(w))
                })
            };
            let peer_names_someone = e.peer.as_deref().is_some_and(|p| {
                c.instances
                    .values()
                    .filter_map(|i| i.workload.as_deref())
                    .any(|w| p.contains(w))
            });
            if !peer_names_someone || window.iter().any(|(_, w)| pair(*w)) {
                r.hit(e.workload.as_deref(), Some(t), (e.file, e.line));
            }
        }
        r
    }

    fn compute(&self, name: &str) -> SignalResult {
        let a = self.a;
        let c = &a.collector;
        let steps = &c.steps;
        if name.contains("/pattern.") {
            let key = name;
            let mut r = c
                .patterns_index(key)
                .and_then(|i| c.pattern_results.get(i))
                .cloned()
                .unwrap_or_default();
            if c.pattern_is_access(key) {
                r = self.with_denominator(r);
            }
            return r;
        }
        if name.starts_with("config.") || name.starts_with("stats:") {
            return crate::config_signals::compute(a, self.version, name);
        }
        if let Some(reason) = name.strip_prefix("journey.tls_error:") {
            return self.step_signal(|k, d| k == StepKind::TlsError && d == Some(reason));
        }
        if let Some(reason) = name.strip_prefix("journey.upstream_reset:") {
            let want = reason.replace('_', " ");
            return self.step_signal(|k, d| {
                k == StepKind::UpstreamReset && d.is_some_and(|d| d.replace('_', " ") == want)
            });
        }
        if let Some(prefix) = name.strip_prefix("journey.tcp_proxy:") {
            return self.step_signal(|k, d| {
                k == StepKind::TcpProxy && d.is_some_and(|d| d.starts_with(prefix))
            });
        }
        if let Some(flag) = name.strip_prefix("access.flag:") {
            return self.with_denominator(c.access_flags.get(flag).cloned().unwrap_or_default());
        }
        if let Some(code) = name.strip_prefix("access.code:") {
            let code: u16 = code.parse().unwrap_or(u16::MAX);
            return self.with_denominator(c.access_codes.get(&code).cloned().unwrap_or_default());
        }
        if let Some(class) = name.strip_prefix("app.error_class:") {
            return c
                .app_classes
                .iter()
                .find(|(k, _)| k.as_str() == class)
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
        }
        let tls_step = |j: &crate::journey::Journey| {
            j.first_of(steps, StepKind::TlsError)
                .map(|s| (s.file, s.line, s.time))
        };
        match name {
            "journey.failing" => self.journey_signal(|j| {
                j.is_failing(steps)
                    .then(|| {
                        j.steps
                            .iter()
                            .filter_map(|&i| steps.get(i))
                            .find(|s| s.kind.is_failure())
                    })
                    .flatten()
                    .map(|s| (s.file, s.line, s.time))
            }),
            "journey.succeeding" => self.journey_signal(|j| {
                (!j.is_failing(steps)
                    && (j.has(steps, StepKind::HandshakeComplete)
                        || j.has(steps, StepKind::Connected)
                        || j.has(steps, StepKind::TcpProxy)))
                .then(|| j.first_location(steps))
                .flatten()
                .map(|(f, l)| (f, l, j.start(steps)))
            }),
            "journey.tls_error" => self.step_signal(|k, _| k == StepKind::TlsError),
            "journey.tls_error_http_request_without_sni" => {
                // A missing SNI line is evidence only where the listener-filter logger is
                // visible: the journey shows some listener filter, or its proxy logged SNI.
                let sni_proxies: BTreeSet<(u32, u64)> = steps
                    .iter()
                    .filter(|s| s.kind == StepKind::Sni)
                    .map(|s| (s.file, s.instance))
                    .collect();
                self.journey_signal(|j| {
                    let t = j.first_of(steps, StepKind::TlsError)?;
                    let visible = sni_proxies.contains(&(j.file, j.instance))
                        || j.kinds(steps).any(StepKind::is_listener_filter);
                    (t.detail.as_deref() == Some("HTTP_REQUEST")
                        && !j.has(steps, StepKind::Sni)
                        && visible)
                        .then_some((t.file, t.line, t.time))
                })
            }
            "journey.tls_error_http_request_with_sni" => self.journey_signal(|j| {
                let t = j.first_of(steps, StepKind::TlsError)?;
                (t.detail.as_deref() == Some("HTTP_REQUEST") && j.has(steps, StepKind::Sni))
                    .then_some((t.file, t.line, t.time))
            }),
            "journey.sni_on_success" => {
                let failing_proxies: BTreeSet<(u32, u64)> = a
                    .journeys
                    .journeys
                    .iter()
                    .filter(|j| {
                        tls_step(j).is_some() || j.has(steps, StepKind::FilterChainNotFound)
                    })
                    .map(|j| (j.file, j.instance))
                    .collect();
                self.journey_signal(|j| {
                    if !failing_proxies.contains(&(j.file, j.instance)) || j.is_failing(steps) {
                        return None;
                    }
                    let s = j.first_of(steps, StepKind::Sni)?;
                    Some((s.file, s.line, s.time))
                })
            }
            "journey.plaintext_from_unmeshed_peer" | "journey.plaintext_from_meshed_peer" => {
                let from_journeys = self
                    .journey_peers
                    .get_or_init(|| self.journey_meshed_peers());
                let want_meshed = name == "journey.plaintext_from_meshed_peer";
                let c = &self.a.collector;
                if from_journeys.is_empty() && !c.knows_meshed_peers() {
                    return SignalResult::default();
                }
                self.journey_signal(|j| {
                    let (at, peer) = plaintext_rejection(j, steps)?;
                    let ip = crate::journey::peer_ip(peer);
                    let known = c.is_meshed_peer(ip) || from_journeys.contains(ip);
                    (known == want_meshed).then_some((at.file, at.line, at.time))
                })
            }
            "journey.listener_filter_timeout" => {
                self.step_signal(|k, _| k == StepKind::ListenerFilterTimeout)
            }
            "journey.listener_filter_fallback" => {
                self.step_signal(|k, _| k == StepKind::ListenerFilterFallback)
            }
            "journey.passthrough_after_timeout" => self.journey_signal(|j| {
                if !j.has(steps, StepKind::ListenerFilterTimeout) {
                    return None;
                }
                let t = j.steps.iter().filter_map(|&i| steps.get(i)).find(|s| {
                    s.kind == StepKind::TcpProxy
                        && s.detail.as_deref().is_some_and(|d| {
                            d.starts_with("PassthroughCluster") || d.starts_with("BlackHoleCluster")
                        })
                })?;
                Some((t.file, t.line, t.time))
            }),
            "journey.stalled_in_detection" => {
                // Listener-filter lines carry no connection id, so match them per proxy in
                // order: every HTTP-inspector start is finished by the connection being
                // accepted (conn_handler `new connection`), a listener-filter timeout or a
                // missing filter chain. Starts left over were still waiting for bytes.
                let mut open: BTreeMap<(u32, u64), std::collections::VecDeque<usize>> =
                    BTreeMap::new();
                for (i, st) in steps.iter().enumerate() {
                    let q = open.entry((st.file, st.instance)).or_default();
                    match st.kind {
                        StepKind::HttpInspector => q.push_back(i),
                        StepKind::Accepted
                        | StepKind::ListenerFilterTimeout
                        | StepKind::FilterChainNotFound => {
                            q.pop_front();
                        }
                        _ => {}
                    }
                }
                let mut r = SignalResult::default();
                for ((file, instance), q) in &open {
                    for st in q.iter().filter_map(|&i| steps.get(i)) {
                        r.hit(c.workload_of(*file, *instance), st.time, (st.file, st.line));
                    }
                }
                r
            }
            "journey.tcp_proxy_passthrough" => self.step_signal(|k, d| {
                k == StepKind::TcpProxy && d.is_some_and(|d| d.starts_with("PassthroughCluster"))
            }),
            "journey.tcp_proxy_blackhole" => self.step_signal(|k, d| {
                k == StepKind::TcpProxy && d.is_some_and(|d| d.starts_with("BlackHoleCluster"))
            }),
            "journey.no_filter_chain" => {
                self.step_signal(|k, _| k == StepKind::FilterChainNotFound)
            }
            "journey.client_hello_failed" => {
                self.step_signal(|k, _| k == StepKind::ClientHelloFailed)
            }
            "journey.codec_error" => self.step_signal(|k, _| k == StepKind::CodecError),
            "journey.upstream_reset" => self.step_signal(|k, _| k == StepKind::UpstreamReset),
            "journey.connect_failed" => self.step_signal(|k, _| k == StepKind::ConnectFailed),
            "journey.rst_from_peer" => self.step_signal(|k, _| k == StepKind::RstFromPeer),
            "journey.stream_reset" => self.step_signal(|k, _| k == StepKind::StreamReset),
            "journey.remote_close" => self.step_signal(|k, _| k == StepKind::RemoteClose),
            "inputs.caller_sidecar_debug" => {
                let servers: BTreeSet<&str> = a
                    .journeys
                    .journeys
                    .iter()
                    .filter(|j| {
                        tls_step(j).is_some() || j.has(steps, StepKind::FilterChainNotFound)
                    })
                    .filter_map(|j| c.workload_of(j.file, j.instance))
                    .collect();
                let mut r = SignalResult::default();
                for (w, n) in &c.envoy_debug_by_workload {
                    if !servers.contains(w.as_str()) {
                        r.count += n;
                        r.workloads.insert(w.clone());
                    }
                }
                r
            }
            "inputs.envoy_debug" => SignalResult {
                count: c.envoy_debug_lines,
                ..SignalResult::default()
            },
            "inputs.access_rows" => SignalResult {
                count: c.access_rows,
                ..SignalResult::default()
            },
            "inputs.app_records" => SignalResult {
                count: c.app_records,
                ..SignalResult::default()
            },
            "inputs.no_failures" => {
                // Absence is evidence only when there was traffic to fail.
                let traffic = c.envoy_debug_lines + c.access_rows + c.app_records > 0;
                let failing = self.compute("journey.failing").count
                    + c.access_failures.count
                    + c.app_classes.values().map(|r| r.count).sum::<u64>();
                SignalResult {
                    count: u64::from(traffic && failing == 0),
                    ..SignalResult::default()
                }
            }
            "access.failures" => self.with_denominator(c.access_failures.clone()),
            "access.tcp_passthrough" => self.with_denominator(c.access_tcp_passthrough.clone()),
            "access.filter_chain_not_found" => {
                self.with_denominator(c.access_filter_chain_not_found.clone())
            }
            "app.errors" => {
                let mut r = SignalResult::default();
                for v in c.app_classes.values() {
                    r.merge(v.clone());
                }
                r
            }
            "app.resets" => {
                let mut r = SignalResult::default();
                for (k, v) in &c.app_classes {
                    if RESET_FAMILY.contains(k) {
                        r.merge(v.clone());
                    }
                }
                r
            }
            "correlate.app_reset_near_failure" => self.correlate_resets(false),
            "correlate.app_reset_near_tls_error" => self.correlate_resets(true),
            "correlate.request_id_match" => {
                let ids: BTreeSet<&str> = c
                    .access_fail_rows
                    .iter()
                    .filter_map(|r| r.request_id.as_deref())
                    .collect();
                let mut r = SignalResult::default();
                for e in &c.app_errors {
                    if e.ids.iter().any(|i| ids.contains(i.as_ref())) {
                        r.hit(e.workload.as_deref(), e.time, (e.file, e.line));
                    }
                }
                r
            }
            "correlate.app_refused_before_ready" => {
                let mut r = SignalResult::default();
                for e in c
                    .app_errors
                    .iter()
                    .filter(|e| e.class == ErrorClass::ConnectionRefused)
                {
                    let (Some(t), Some(w)) = (e.time, e.workload.as_deref()) else {
                        continue;
                    };
                    let before_ready = c.agent.iter().any(|g| {
                        g.kind == AgentKindOfInterest::Ready
                            && g.workload.as_deref() == Some(w)
                            && g.time
                                .is_some_and(|rt| rt >= t && rt - t <= 120 * 1_000_000_000)
                    });
                    if before_ready {
                        r.hit(Some(w), Some(t), (e.file, e.line));
                    }
                }
                r
            }
            "correlate.app_error_after_termination" => {
                let mut r = SignalResult::default();
                for e in &c.app_errors {
                    let (Some(t), Some(w)) = (e.time, e.workload.as_deref()) else {
                        continue;
                    };
                    let after = c.agent.iter().any(|g| {
                        g.kind == AgentKindOfInterest::Termination
                            && g.workload.as_deref() == Some(w)
                            && g.time
                                .is_some_and(|gt| t >= gt && t - gt <= 60 * 1_000_000_000)
                    });
                    if after {
                        r.hit(Some(w), Some(t), (e.file, e.line));
                    }
                }
                r
            }
            "agent.termination" => self.agent_signal(AgentKindOfInterest::Termination),
            "agent.ready" => self.agent_signal(AgentKindOfInterest::Ready),
            "agent.not_ready" => self.agent_signal(AgentKindOfInterest::NotReady),
            "agent.restart" => self.agent_signal(AgentKindOfInterest::Restart),
            "agent.oom" => self.agent_signal(AgentKindOfInterest::Oom),
            _ => SignalResult::default(),
        }
    }

    /// Peers the journeys show to have a sidecar, beyond those the access log showed
    /// ([`Collector::is_meshed_peer`]): journeys whose accept line names the peer and that
    /// carried SNI or went outbound.
    fn journey_meshed_peers(&self) -> BTreeSet<&'a str> {
        let steps = &self.a.collector.steps;
        let mut set = BTreeSet::new();
        for j in &self.a.journeys.journeys {
            // SNI means the peer's sidecar did mTLS; an outbound journey (sniffing timeout,
            // TCP proxy to an outbound or passthrough cluster) starts at a pod with a sidecar.
            let outbound = j.has(steps, StepKind::ListenerFilterTimeout)
                || j.steps.iter().filter_map(|&i| steps.get(i)).any(|s| {
                    s.kind == StepKind::TcpProxy
                        && s.detail.as_deref().is_some_and(|d| {
                            d.starts_with("outbound|")
                                || d.starts_with("PassthroughCluster")
                                || d.starts_with("BlackHoleCluster")
                        })
                });
            if (outbound || j.has(steps, StepKind::Sni))
                && let Some(peer) = j
                    .first_of(steps, StepKind::Accepted)
                    .and_then(|s| s.detail.as_deref())
            {
                set.insert(crate::journey::peer_ip(peer));
            }
        }
        set
    }

    fn agent_signal(&self, kind: AgentKindOfInterest) -> SignalResult {
        let mut r = SignalResult::default();
        for g in self.a.collector.agent.iter().filter(|g| g.kind == kind) {
            r.hit(g.workload.as_deref(), g.time, (g.file, g.line));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::AppErr;
    use crate::journey::Step;
    use crate::rules::parse_rule;

    fn step(line: u64, ms: i64, conn: Option<u64>, kind: StepKind, detail: Option<&str>) -> Step {
        Step {
            file: 0,
            line,
            time: Some(ms * 1_000_000),
            instance: 0,
            thread: None,
            conn,
            stream: None,
            kind,
            detail: detail.map(Into::into),
        }
    }

    fn analysis(steps: Vec<Step>, app: Vec<AppErr>) -> Analysis {
        let mut c = Collector::new(Arc::new(Patterns::default()));
        c.steps = steps;
        c.app_errors = app;
        c.instances.insert(
            (0, 0),
            crate::collect::InstanceInfo {
                workload: Some("server".into()),
                ..Default::default()
            },
        );
        let journeys = assemble(&c.steps);
        Analysis {
            collector: c,
            journeys,
            coverage: Vec::new(),
            file_names: [(0, "proxy.log".to_string())].into_iter().collect(),
            inputs: Vec::new(),
            config: meshdoctor_config::ConfigSet::new(),
        }
    }

    fn rule(id: &str, items: &str) -> Rule {
        let text = format!(
            "id = \"{id}\"\ntitle = \"t\"\nsummary = \"s {{server}}\"\nmechanism = \"m\"\nfix = [\"f {{server}} {{client}}\"]\nverify = [\"v\"]\n{items}"
        );
        parse_rule("test", &text).expect("valid test rule")
    }

    fn item(signal: &str, weight: f64, anchor: bool, extra: &str) -> String {
        format!(
            "[[evidence]]\nsignal = \"{signal}\"\nweight = {weight}\nanchor = {anchor}\nmeans = \"{signal}\"\n{extra}\n"
        )
    }

    fn sniff_steps() -> Vec<Step> {
        vec![
            step(1, 0, None, StepKind::ListenerFilterTimeout, None),
            step(2, 0, None, StepKind::ListenerFilterFallback, None),
            step(3, 0, Some(1), StepKind::Accepted, None),
            step(
                4,
                1,
                Some(1),
                StepKind::TcpProxy,
                Some("PassthroughCluster"),
            ),
            step(5, 2, Some(9), StepKind::Accepted, None),
            step(6, 3, Some(9), StepKind::TlsError, Some("HTTP_REQUEST")),
        ]
    }

    #[test]
    fn noisy_or_with_negative_evidence() {
        let a = analysis(sniff_steps(), Vec::new());
        let pos = rule(
            "pos",
            &(item(
                "journey.listener_filter_timeout",
                0.5,
                true,
                "side = \"server\"",
            ) + &item("journey.passthrough_after_timeout", 0.5, false, "")),
        );
        let neg = rule(
            "neg",
            &(item("journey.listener_filter_timeout", 0.5, true, "")
                + &item("journey.passthrough_after_timeout", 0.5, false, "")
                + &item("journey.tls_error:HTTP_REQUEST", -0.5, false, "")),
        );
        let unanchored = rule(
            "unanchored",
            &(item("journey.no_filter_chain", 0.9, true, "")
                + &item("journey.listener_filter_timeout", 0.5, false, "")),
        );
        let set = RuleSet {
            rules: vec![pos, neg, unanchored],
        };
        let d = evaluate(&a, &set);
        let conf: Vec<(&str, f64)> = d
            .findings
            .iter()
            .map(|f| (f.cause.as_str(), f.confidence))
            .collect();
        assert_eq!(conf, vec![("pos", 0.75), ("neg", 0.38)]);
        assert_eq!(d.verdict, "pos");
        assert!(
            d.findings[1]
                .ruled_out
                .as_deref()
                .is_some_and(|r| r.contains("speaks against"))
        );
        assert_eq!(d.findings[0].fix, vec!["f server <client>".to_string()]);
    }

    #[test]
    fn close_candidates_are_inconclusive_with_collect_list() {
        let a = analysis(sniff_steps(), Vec::new());
        let one = rule(
            "one",
            &(item("journey.listener_filter_timeout", 0.7, true, "")
                + &item(
                    "journey.no_filter_chain",
                    0.3,
                    false,
                    "collect = \"get the server log\"",
                )),
        );
        let two = rule("two", &item("journey.tls_error", 0.65, true, ""));
        let d = evaluate(
            &a,
            &RuleSet {
                rules: vec![one, two],
            },
        );
        assert_eq!(d.verdict, "inconclusive");
        assert!(
            d.missing_evidence
                .contains(&"get the server log".to_string())
        );
        assert!(
            d.findings[0]
                .ruled_out
                .as_deref()
                .is_some_and(|r| r.contains("runner-up"))
        );
    }

    #[test]
    fn version_conditions_gate_evidence() {
        let mut a = analysis(sniff_steps(), Vec::new());
        a.collector
            .versions
            .add("layout", VersionRange::parse(">=1.17").expect("range"));
        let r = rule(
            "old-only",
            &(item(
                "journey.listener_filter_timeout",
                0.7,
                true,
                "istio = \"<=1.7\"",
            ) + &item("journey.tls_error", 0.3, true, "")),
        );
        let d = evaluate(&a, &RuleSet { rules: vec![r] });
        let f = &d.findings[0];
        assert_eq!(f.confidence, 0.3);
        assert!(
            f.items[0]
                .not_counted
                .as_deref()
                .is_some_and(|n| n.contains("<=1.7"))
        );
    }

    #[test]
    fn app_resets_join_sidecar_failures_within_skew() {
        let app = |line: u64, ms: i64| AppErr {
            file: 1,
            line,
            time: Some(ms * 1_000_000),
            workload: Some("client".into()),
            class: ErrorClass::ConnectionReset,
            peer: None,
            ids: Vec::new(),
        };
        // TLS error at 3 ms; app resets at 1.5 s (inside 2 s) and 5 s (outside).
        let a = analysis(sniff_steps(), vec![app(1, 1_500), app(2, 5_000)]);
        let ctx = Ctx::new(&a, VersionRange::ANY);
        let r = ctx.compute("correlate.app_reset_near_tls_error");
        assert_eq!(r.count, 1);
        assert_eq!(r.examples, vec![(1, 1)]);
        assert!(r.workloads.contains("client"));
        let all = ctx.compute("correlate.app_reset_near_failure");
        assert_eq!(all.count, 1);
        // An error whose peer names a workload with a sidecar log, in a window where only
        // another workload failed, is not joined.
        let mut other = app(3, 1_500);
        other.peer = Some("http://server:8080/x".into());
        let mut elsewhere = app(4, 1_500);
        elsewhere.peer = Some("http://billing:8080/x".into());
        let mut a2 = analysis(sniff_steps(), vec![other, elsewhere]);
        a2.collector.instances.insert(
            (5, 0),
            crate::collect::InstanceInfo {
                workload: Some("billing".into()),
                ..Default::default()
            },
        );
        let ctx2 = Ctx::new(&a2, VersionRange::ANY);
        let r2 = ctx2.compute("correlate.app_reset_near_tls_error");
        assert_eq!(r2.examples, vec![(1, 3)]);
        assert_eq!(
            ctx.compute("app.resets").count,
            0,
            "app_classes not filled here"
        );
    }

    #[test]
    fn missing_sni_signal_needs_the_journey_shape() {
        let mut steps = sniff_steps();
        steps.push(step(7, 10, None, StepKind::Sni, Some("outbound_.80_._.b")));
        steps.push(step(8, 10, Some(11), StepKind::Accepted, None));
        steps.push(step(9, 11, Some(11), StepKind::HandshakeComplete, None));
        let a = analysis(steps, Vec::new());
        let ctx = Ctx::new(&a, VersionRange::ANY);
        assert_eq!(
            ctx.compute("journey.tls_error_http_request_without_sni")
                .count,
            1
        );
        assert_eq!(
            ctx.compute("journey.tls_error_http_request_with_sni").count,
            0
        );
        assert_eq!(ctx.compute("journey.sni_on_success").count, 1);
        assert_eq!(ctx.compute("journey.passthrough_after_timeout").count, 1);
    }

    #[test]
    fn detection_starts_without_an_outcome_are_stalled() {
        let steps = vec![
            // Connection 1: inspected, then accepted (finished).
            step(1, 0, None, StepKind::OriginalDst, None),
            step(2, 0, None, StepKind::HttpInspector, None),
            step(3, 1, Some(1), StepKind::Accepted, None),
            // Connection 2: inspected, timed out (finished).
            step(4, 5, None, StepKind::HttpInspector, None),
            step(5, 105, None, StepKind::ListenerFilterTimeout, None),
            // Connections 3 and 4: inspected, then nothing.
            step(6, 200, None, StepKind::HttpInspector, None),
            step(7, 201, None, StepKind::HttpInspector, None),
        ];
        let a = analysis(steps, Vec::new());
        let ctx = Ctx::new(&a, VersionRange::ANY);
        let r = ctx.compute("journey.stalled_in_detection");
        assert_eq!(r.count, 2);
        assert_eq!(r.examples, vec![(0, 6), (0, 7)]);
    }
}
