//! The diagnosis sink: keeps, with bounded memory, what the engine needs from every event.
//!
//! Envoy lines become compact [`Step`]s (only lines that are part of a connection's life);
//! access rows become counters plus capped examples (counted per row class while reading,
//! folded into the counters in input order); application errors and interesting pilot-agent
//! lines are kept compactly with exact counts; rule patterns are evaluated here, on the fly,
//! because events are borrowed and gone after the call (bit sets per family send an event
//! only to the patterns its texts may match). Everything merges in input order. This module
//! must not score or decide anything.

use crate::journey::{Step, StepKind, classify, truncate};
use crate::prefilter::{Cands, Test, TextFilter};
use crate::rules::{Pattern, RuleSet, family_of};
use crate::signals::{MAX_EXAMPLES, MAX_WORKLOADS, SignalResult};
use crate::version::{VersionHints, VersionRange};
use meshdoctor_logs::{InputContext, Sink};
use meshdoctor_model::{
    AccessEntry, AccessFormat, AgentLine, AppRecord, EnvoyLayout, EnvoyLine, ErrorClass, Event,
    Family, Payload, ResponseFlags, Severity,
};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Most steps kept (about 100 bytes each); beyond it steps are counted as dropped.
pub const MAX_STEPS: usize = 2_000_000;
/// Most application errors kept for correlation (counts stay exact).
pub const MAX_APP_ERRORS: usize = 200_000;
/// Most failing access rows kept for correlation.
pub const MAX_ACCESS_FAILURES: usize = 200_000;
/// Most agent lines kept.
pub const MAX_AGENT: usize = 50_000;
/// Most distinct access aggregate keys.
pub const MAX_AGG_KEYS: usize = 10_000;
/// Most addresses known to have a sidecar (see [`Collector::is_meshed_peer`]).
pub const MAX_MESHED_PEERS: usize = 100_000;
/// Most [`RowClass`]es counted before they are folded into the public fields.
const MAX_ROW_CLASSES: usize = 4096;
/// Most names interned for row classes before the tables are dropped at a fold.
const MAX_INTERNED: usize = 4096;

/// An application error, compact.
#[derive(Clone, Debug)]
pub struct AppErr {
    /// File id.
    pub file: u32,
    /// Line.
    pub line: u64,
    /// UTC ns.
    pub time: Option<i64>,
    /// Workload.
    pub workload: Option<String>,
    /// Error class.
    pub class: ErrorClass,
    /// Peer named in the error.
    pub peer: Option<Box<str>>,
    /// Request / correlation / trace ids.
    pub ids: Vec<Box<str>>,
}

/// A failing access row, compact.
#[derive(Clone, Debug)]
pub struct AccessFail {
    /// File id.
    pub file: u32,
    /// Line.
    pub line: u64,
    /// UTC ns.
    pub time: Option<i64>,
    /// Workload.
    pub workload: Option<String>,
    /// Response code.
    pub code: u16,
    /// Flags.
    pub flags: ResponseFlags,
    /// x-request-id.
    pub request_id: Option<Box<str>>,
}

/// Kinds of agent lines of interest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgentKindOfInterest {
    /// Drain / termination.
    Termination,
    /// `Envoy proxy is ready`.
    Ready,
    /// `Envoy proxy is NOT ready`.
    NotReady,
    /// Proxy (re)start.
    Restart,
    /// OOM hint.
    Oom,
}

/// An agent line of interest.
#[derive(Clone, Debug)]
pub struct AgentEvt {
    /// File id.
    pub file: u32,
    /// Line.
    pub line: u64,
    /// UTC ns.
    pub time: Option<i64>,
    /// Workload.
    pub workload: Option<String>,
    /// What it says.
    pub kind: AgentKindOfInterest,
}

/// Access aggregate key: workload, direction, code, flags, cluster.
pub type AggKey = (String, &'static str, u16, String, String);

/// What every per-row access counter looks at, with names interned: rows of one class
/// change the same counters the same way, so they are counted once per class while
/// reading and folded into the public fields (in input order) by [`Collector::flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RowClassKey {
    /// Index into [`Interned::workloads`] plus one; 0 when the row has no workload.
    workload: u32,
    /// Index into [`Interned::clusters`] (`-` when the row names none).
    cluster: u32,
    flags: ResponseFlags,
    code: u16,
    /// A TCP row to PassthroughCluster.
    tcp_passthrough: bool,
    /// NR with details `filter_chain_not_found`.
    chain_not_found: bool,
}

/// The rows of one [`RowClassKey`] since the last fold.
#[derive(Clone, Debug)]
struct RowClass {
    key: RowClassKey,
    count: u64,
    earliest: Option<i64>,
    latest: Option<i64>,
    /// The first [`MAX_EXAMPLES`] rows: (row number in the collector, file, line). The row
    /// number orders examples of different classes.
    examples: Vec<(u64, u32, u64)>,
}

/// Workload and cluster names of the row classes, each stored once.
#[derive(Debug, Default)]
struct Interned {
    workloads: Vec<Box<str>>,
    workload_ids: rustc_hash::FxHashMap<Box<str>, u32>,
    /// The workload of the previous row (rows come in runs of one workload).
    last_workload: Option<u32>,
    clusters: Vec<Box<str>>,
    cluster_ids: rustc_hash::FxHashMap<Box<str>, u32>,
}

impl Interned {
    fn workload(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else {
            return 0;
        };
        if let Some(id) = self.last_workload
            && self.workload_name(id) == Some(name)
        {
            return id;
        }
        let id = match self.workload_ids.get(name) {
            Some(id) => *id,
            None => {
                self.workloads.push(name.into());
                let id = u32::try_from(self.workloads.len()).unwrap_or(u32::MAX);
                self.workload_ids.insert(name.into(), id);
                id
            }
        };
        self.last_workload = Some(id);
        id
    }

    fn workload_name(&self, id: u32) -> Option<&str> {
        (id as usize)
            .checked_sub(1)
            .and_then(|i| self.workloads.get(i))
            .map(|w| &**w)
    }

    fn cluster(&mut self, name: &str) -> u32 {
        if let Some(id) = self.cluster_ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.clusters.len()).unwrap_or(u32::MAX);
        self.clusters.push(name.into());
        self.cluster_ids.insert(name.into(), id);
        id
    }

    fn cluster_name(&self, id: u32) -> &str {
        self.clusters.get(id as usize).map_or("-", |c| &**c)
    }

    fn len(&self) -> usize {
        self.workloads.len() + self.clusters.len()
    }
}

/// Peer addresses: dotted IPv4 in canonical form as numbers (no allocation and no string
/// hashing for each new caller), any other text as is.
#[derive(Debug, Default)]
struct PeerSet {
    v4: rustc_hash::FxHashSet<u32>,
    other: rustc_hash::FxHashSet<Box<str>>,
}

impl PeerSet {
    fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    fn insert(&mut self, ip: &str) {
        match canonical_v4(ip) {
            Some(n) => {
                self.v4.insert(n);
            }
            None => {
                if !self.other.contains(ip) {
                    self.other.insert(ip.into());
                }
            }
        }
    }

    fn contains(&self, ip: &str) -> bool {
        match canonical_v4(ip) {
            Some(n) => self.v4.contains(&n),
            None => self.other.contains(ip),
        }
    }

    fn extend(&mut self, later: PeerSet) {
        self.v4.extend(later.v4);
        self.other.extend(later.other);
    }

    /// Every address as text, in no order (a number prints back as the text it came from).
    fn texts(&self) -> impl Iterator<Item = String> + '_ {
        self.v4
            .iter()
            .map(|n| std::net::Ipv4Addr::from(*n).to_string())
            .chain(self.other.iter().map(|s| s.to_string()))
    }
}

/// A dotted IPv4 address that prints back exactly as written (four decimal parts up to
/// 255, no leading zeros), as a number: exactly what the standard parser accepts.
fn canonical_v4(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

/// Names of one proxy instance.
#[derive(Clone, Debug, Default)]
pub struct InstanceInfo {
    /// Workload.
    pub workload: Option<String>,
    /// Pod.
    pub pod: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
}

/// A compiled rule pattern.
#[derive(Debug)]
pub struct CompiledPattern {
    /// `<rule-id>/pattern.<id>`.
    pub key: String,
    /// Index among the patterns of its family (`Patterns::by_family`): its bit in the
    /// prefilter's [`Cands`] and in [`AccessGates`].
    id: usize,
    family: Family,
    field: Field,
    contains: Option<String>,
    /// Searcher for `contains`, built once (case-sensitive patterns only).
    finder: Option<memchr::memmem::Finder<'static>>,
    ignore_case: bool,
    regex: Option<regex::Regex>,
    logger: Option<String>,
    level_min: Option<Severity>,
    code: Vec<u16>,
    flags_any: Vec<ResponseFlags>,
    flags_all: Vec<ResponseFlags>,
    tcp: Option<bool>,
    dmin: Option<u64>,
    dmax: Option<u64>,
    class: Vec<String>,
}

/// The text a pattern reads, resolved once from its family and `field` name (so no string
/// comparison per event). Each variant but `Any` is one text of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Message,
    Logger,
    Scope,
    RootCause,
    StackTrace,
    /// App records: message, stack trace or root cause.
    Any,
    ConnectionTerminationDetails,
    UpstreamTransportFailureReason,
    UpstreamCluster,
    UpstreamHost,
    RouteName,
    RequestedServerName,
    Authority,
    Path,
    Method,
    UserAgent,
    DownstreamRemoteAddress,
    DownstreamLocalAddress,
    ResponseCodeDetails,
}

/// Number of [`Field`] variants (texts are indexed by `Field as usize`).
const FIELDS: usize = Field::ResponseCodeDetails as usize + 1;
/// Number of [`Family`] variants.
const FAMILIES: usize = Family::ALL.len();

impl Field {
    fn resolve(family: Family, name: &str) -> Field {
        match family {
            Family::EnvoyDebug if name == "logger" => Field::Logger,
            Family::EnvoyDebug => Field::Message,
            Family::ProxyAgent | Family::LinkerdProxy if name == "scope" => Field::Scope,
            Family::ProxyAgent | Family::LinkerdProxy => Field::Message,
            Family::AppLog => match name {
                "root_cause" => Field::RootCause,
                "stack_trace" => Field::StackTrace,
                "logger" => Field::Logger,
                "any" => Field::Any,
                _ => Field::Message,
            },
            Family::EnvoyAccess => match name {
                "connection_termination_details" => Field::ConnectionTerminationDetails,
                "upstream_transport_failure_reason" => Field::UpstreamTransportFailureReason,
                "upstream_cluster" => Field::UpstreamCluster,
                "upstream_host" => Field::UpstreamHost,
                "route_name" => Field::RouteName,
                "requested_server_name" => Field::RequestedServerName,
                "authority" => Field::Authority,
                "path" => Field::Path,
                "method" => Field::Method,
                "user_agent" => Field::UserAgent,
                "downstream_remote_address" => Field::DownstreamRemoteAddress,
                "downstream_local_address" => Field::DownstreamLocalAddress,
                _ => Field::ResponseCodeDetails,
            },
        }
    }

    /// The texts this field reads.
    fn sources(self) -> &'static [Field] {
        match self {
            Field::Any => &[Field::Message, Field::StackTrace, Field::RootCause],
            Field::Message => &[Field::Message],
            Field::Logger => &[Field::Logger],
            Field::Scope => &[Field::Scope],
            Field::RootCause => &[Field::RootCause],
            Field::StackTrace => &[Field::StackTrace],
            Field::ConnectionTerminationDetails => &[Field::ConnectionTerminationDetails],
            Field::UpstreamTransportFailureReason => &[Field::UpstreamTransportFailureReason],
            Field::UpstreamCluster => &[Field::UpstreamCluster],
            Field::UpstreamHost => &[Field::UpstreamHost],
            Field::RouteName => &[Field::RouteName],
            Field::RequestedServerName => &[Field::RequestedServerName],
            Field::Authority => &[Field::Authority],
            Field::Path => &[Field::Path],
            Field::Method => &[Field::Method],
            Field::UserAgent => &[Field::UserAgent],
            Field::DownstreamRemoteAddress => &[Field::DownstreamRemoteAddress],
            Field::DownstreamLocalAddress => &[Field::DownstreamLocalAddress],
            Field::ResponseCodeDetails => &[Field::ResponseCodeDetails],
        }
    }
}

/// Every pattern of a rule set, compiled once and shared by all sinks.
#[derive(Debug, Default)]
pub struct Patterns {
    /// The patterns, in rule order.
    pub list: Vec<CompiledPattern>,
    /// Indexes into `list` per family (`Family as usize`), in rule order.
    by_family: [Vec<usize>; FAMILIES],
    /// Per family and text: one [`TextFilter`] (a literal scan, else one regex) matching
    /// whatever any of the family's text tests on that text could match. When it does not match, no text test on that text can pass,
    /// so each text is scanned once instead of once per pattern.
    prefilter: Vec<Option<TextFilter>>,
    /// Per family, the texts its patterns test (`None` with too many patterns: then each
    /// is tried in turn).
    text_masks: [Option<TextMasks>; FAMILIES],
    /// The row conditions of the access patterns (`None` with too many patterns).
    access_gates: Option<AccessGates>,
}

/// The row conditions of the access patterns (code, flags, TCP, duration) as bit sets over
/// those patterns (bit `id`): a row visits only the patterns whose conditions it meets
/// instead of reading every pattern's conditions (most rows meet only the text-only
/// patterns').
#[derive(Debug, Default)]
struct AccessGates {
    /// Patterns without a code condition.
    any_code: u128,
    /// Patterns that list each code.
    by_code: rustc_hash::FxHashMap<u16, u128>,
    /// Patterns without `flags_any`.
    no_flags_any: u128,
    /// Patterns whose `flags_any` has each flag bit.
    flags_any: [u128; 32],
    /// Patterns with `flags_all`: their bit and the flag bits they need.
    flags_all: Vec<(u128, u32)>,
    /// Patterns for TCP rows only.
    tcp_only: u128,
    /// Patterns for HTTP rows only.
    http_only: u128,
    /// Patterns with a duration bound: their bit, minimum and maximum.
    duration: Vec<(u128, Option<u64>, Option<u64>)>,
}

/// Most patterns of one family the bit sets ([`TextMasks`], [`AccessGates`], [`Cands`]) index;
/// a family with more is visited pattern by pattern.
const MAX_INDEXED: usize = 128;

/// Which patterns of one family test which text, as bit sets over the family's patterns
/// (bit `id`), so an event visits only the patterns its texts may match: most events match
/// none, and asking every pattern in turn cost more than the prefilter itself.
#[derive(Debug, Default)]
struct TextMasks {
    /// Patterns without a text test (always visited).
    no_text: u128,
    /// Per text: the patterns with a test on it.
    by_src: Vec<(Field, u128)>,
}

impl TextMasks {
    /// `None` when the family has more patterns than bits.
    fn new(list: &[CompiledPattern], ids: &[usize]) -> Option<TextMasks> {
        if ids.len() > MAX_INDEXED {
            return None;
        }
        let mut m = TextMasks::default();
        for p in ids.iter().filter_map(|&i| list.get(i)) {
            let bit = 1u128 << p.id;
            if p.contains.is_none() && p.regex.is_none() {
                m.no_text |= bit;
                continue;
            }
            for src in p.field.sources() {
                match m.by_src.iter_mut().find(|(f, _)| f == src) {
                    Some((_, mask)) => *mask |= bit,
                    None => m.by_src.push((*src, bit)),
                }
            }
        }
        Some(m)
    }
}

impl AccessGates {
    fn new(list: &[CompiledPattern], ids: &[usize]) -> Option<AccessGates> {
        if ids.len() > MAX_INDEXED {
            return None;
        }
        let mut g = AccessGates::default();
        for p in ids.iter().filter_map(|&i| list.get(i)) {
            let bit = 1u128 << p.id;
            if p.code.is_empty() {
                g.any_code |= bit;
            }
            for code in &p.code {
                *g.by_code.entry(*code).or_default() |= bit;
            }
            if p.flags_any.is_empty() {
                g.no_flags_any |= bit;
            }
            for f in &p.flags_any {
                for (b, slot) in g.flags_any.iter_mut().enumerate() {
                    if f.0 & (1 << b) != 0 {
                        *slot |= bit;
                    }
                }
            }
            if !p.flags_all.is_empty() {
                g.flags_all
                    .push((bit, p.flags_all.iter().fold(0, |m, f| m | f.0)));
            }
            match p.tcp {
                Some(true) => g.tcp_only |= bit,
                Some(false) => g.http_only |= bit,
                None => {}
            }
            if p.dmin.is_some() || p.dmax.is_some() {
                g.duration.push((bit, p.dmin, p.dmax));
            }
        }
        Some(g)
    }

    /// The patterns whose row conditions (what [`CompiledPattern::access_conditions`] checks
    /// before the text) this row meets.
    fn candidates(&self, a: &AccessEntry<'_>) -> u128 {
        let mut c = self.any_code | self.by_code.get(&a.response_code).copied().unwrap_or(0);
        let flags = a.response_flags.0;
        let mut any = self.no_flags_any;
        let mut rest = flags;
        while rest != 0 {
            any |= self
                .flags_any
                .get(rest.trailing_zeros() as usize)
                .copied()
                .unwrap_or(0);
            rest &= rest - 1;
        }
        c &= any;
        for &(bit, need) in &self.flags_all {
            if flags & need != need {
                c &= !bit;
            }
        }
        c &= if a.is_tcp() {
            !self.http_only
        } else {
            !self.tcp_only
        };
        for &(bit, min, max) in &self.duration {
            let ok = a
                .duration_ms
                .is_some_and(|d| min.is_none_or(|min| d >= min) && max.is_none_or(|max| d <= max));
            if !ok {
                c &= !bit;
            }
        }
        c
    }
}

impl Patterns {
    /// Compile the patterns of all rules (rules were validated, so this does not fail;
    /// a pattern that still does not compile is left out).
    #[must_use]
    pub fn compile(rules: &RuleSet) -> Self {
        let mut list = Vec::new();
        for r in &rules.rules {
            for p in &r.patterns {
                if let Some(c) = compile_one(&r.id, p) {
                    list.push(c);
                }
            }
        }
        let mut by_family: [Vec<usize>; FAMILIES] = Default::default();
        for (i, p) in list.iter_mut().enumerate() {
            if let Some(v) = by_family.get_mut(p.family as usize) {
                p.id = v.len();
                v.push(i);
            }
        }
        let prefilter = build_prefilters(&list);
        let access_gates = by_family
            .get(Family::EnvoyAccess as usize)
            .and_then(|ids| AccessGates::new(&list, ids));
        let text_masks = by_family.each_ref().map(|ids| TextMasks::new(&list, ids));
        Patterns {
            list,
            by_family,
            prefilter,
            text_masks,
            access_gates,
        }
    }

    fn prefilter(&self, family: Family, text: Field) -> Option<&TextFilter> {
        self.prefilter
            .get(family as usize * FIELDS + text as usize)
            .and_then(Option::as_ref)
    }

    /// Run the tests the prefilter's answer `maybe` leaves on text `src` of a `family`
    /// event: the exact answer, or `maybe` itself when the family has too many patterns
    /// for one bit set.
    fn exact(&self, family: Family, src: Field, text: &str, maybe: Cands) -> Cands {
        let (Some(Some(masks)), Some(ids)) = (
            self.text_masks.get(family as usize),
            self.by_family.get(family as usize),
        ) else {
            return maybe;
        };
        let Some(&(_, mask)) = masks.by_src.iter().find(|(f, _)| *f == src) else {
            return maybe;
        };
        let mut left = maybe.bits() & mask;
        let mut bits = 0;
        while left != 0 {
            let j = left.trailing_zeros() as usize;
            left &= left - 1;
            if ids
                .get(j)
                .and_then(|&i| self.list.get(i))
                .is_some_and(|p| p.text_test(text))
            {
                bits |= 1 << j;
            }
        }
        Cands::exactly(bits)
    }

    /// Index of a pattern by key.
    #[must_use]
    pub fn index(&self, key: &str) -> Option<usize> {
        self.list.iter().position(|p| p.key == key)
    }
}

fn compile_one(rule: &str, p: &Pattern) -> Option<CompiledPattern> {
    let family = family_of(&p.family)?;
    let default_field = if family == Family::EnvoyAccess {
        "response_code_details"
    } else {
        "message"
    };
    let regex = match &p.regex {
        Some(r) => Some(crate::rules::compile_regex(r).ok()?),
        None => None,
    };
    let finder = p
        .contains
        .as_deref()
        .filter(|_| !p.ignore_case)
        .map(|c| memchr::memmem::Finder::new(c).into_owned());
    Some(CompiledPattern {
        key: format!("{rule}/pattern.{}", p.id),
        id: 0,
        family,
        field: Field::resolve(family, p.field.as_deref().unwrap_or(default_field)),
        contains: p.contains.clone(),
        finder,
        ignore_case: p.ignore_case,
        regex,
        logger: p.logger.clone(),
        level_min: p.level_min.as_deref().and_then(Severity::parse),
        code: p.code.clone(),
        flags_any: p
            .flags_any
            .iter()
            .filter_map(|f| ResponseFlags::flag(f))
            .collect(),
        flags_all: p
            .flags_all
            .iter()
            .filter_map(|f| ResponseFlags::flag(f))
            .collect(),
        tcp: p.tcp,
        dmin: p.duration_ms_min,
        dmax: p.duration_ms_max,
        class: p.class.clone(),
    })
}

fn build_prefilters(list: &[CompiledPattern]) -> Vec<Option<TextFilter>> {
    let mut tests: Vec<Vec<Test<'_>>> = vec![Vec::new(); FAMILIES * FIELDS];
    for p in list {
        if p.contains.is_none() && p.regex.is_none() {
            continue;
        }
        let test = Test {
            id: p.id,
            regex: p.regex.as_ref().map(regex::Regex::as_str),
            contains: p.contains.as_deref(),
            ignore_case: p.ignore_case,
        };
        for src in p.field.sources() {
            if let Some(v) = tests.get_mut(p.family as usize * FIELDS + *src as usize) {
                v.push(test);
            }
        }
    }
    tests.iter().map(|t| TextFilter::new(t)).collect()
}

/// Per-event memo of the prefilters, one slot per text. The texts of one event do not
/// change, so each filter runs at most once.
struct Pre<'p> {
    patterns: &'p Patterns,
    family: Family,
    state: [Option<Cands>; FIELDS],
    /// The collector's [`FilterMemo`].
    memo: &'p mut FilterMemo,
}

/// Prefilter answers for short texts, per family and text: access fields (`via_upstream`,
/// cluster names) repeat row after row.
type FilterMemo = Vec<Memo>;

/// The remembered answers for one family and text.
#[derive(Clone, Debug, Default)]
struct Memo {
    answers: rustc_hash::FxHashMap<String, Cands>,
    hits: u64,
    misses: u64,
}

impl Memo {
    /// Worth a lookup: on a text that rarely repeats (application messages) the lookup
    /// only costs a hash of the text, so after a trial such a memo is no longer asked.
    fn useful(&self) -> bool {
        self.misses < MEMO_TRIAL || self.hits >= self.misses
    }
}

/// Longest text remembered by the [`FilterMemo`].
const MEMO_MAX: usize = 128;
/// Most texts remembered per family and text.
const MEMO_ENTRIES: usize = 512;
/// Lookups a memo may miss before it must have hit as often; one that has not is asked no
/// more for the rest of its collector (its counters stop there).
const MEMO_TRIAL: u64 = 2 * MEMO_ENTRIES as u64;

impl Pre<'_> {
    /// The patterns that may match `text`, the text `src` of this event. A short text is
    /// remembered with the exact answer (the tests run once per distinct text), so access
    /// fields that repeat row after row cost one lookup.
    fn cands(&mut self, src: Field, text: &str) -> Cands {
        let Some(slot) = self.state.get_mut(src as usize) else {
            return Cands::ALL;
        };
        *slot.get_or_insert_with(|| {
            let filter = self.patterns.prefilter(self.family, src);
            let maybe = |text: &str| filter.map_or(Cands::ALL, |f| f.candidates(text));
            let memo = self
                .memo
                .get_mut(self.family as usize * FIELDS + src as usize)
                .filter(|m| text.len() <= MEMO_MAX && m.useful());
            let Some(memo) = memo else {
                return maybe(text);
            };
            if let Some(c) = memo.answers.get(text) {
                memo.hits += 1;
                return *c;
            }
            memo.misses += 1;
            if memo.answers.len() >= MEMO_ENTRIES {
                return maybe(text);
            }
            let c = self.patterns.exact(self.family, src, text, maybe(text));
            memo.answers.insert(text.to_string(), c);
            c
        })
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

impl CompiledPattern {
    fn text_ok(&self, src: Field, text: Option<&str>, pre: &mut Pre<'_>) -> bool {
        let Some(t) = text else {
            return self.contains.is_none() && self.regex.is_none();
        };
        if self.contains.is_none() && self.regex.is_none() {
            return true;
        }
        let c = pre.cands(src, t);
        if !c.may(self.id) {
            return false;
        }
        if c.is_exact() {
            return true;
        }
        self.text_test(t)
    }

    /// Whether the pattern matches this payload. `gated`: an access row's conditions were
    /// already checked by the access gates, so only its text is left.
    fn matches(&self, payload: &Payload<'_>, gated: bool, pre: &mut Pre<'_>) -> bool {
        let conditions_hold = match payload {
            Payload::Envoy(e) => self.envoy_conditions(e),
            Payload::Access(a) => gated || self.access_conditions(a),
            Payload::App(r) => self.app_conditions(r),
            Payload::Agent(a) => self.agent_conditions(a),
        };
        // The text comes from [`event_text`], the one place that says which text a field
        // names. An `any` pattern matches through any text the record has.
        conditions_hold
            && match self.field {
                Field::Any => Field::Any.sources().iter().any(|&src| {
                    event_text(payload, src).is_some_and(|t| self.text_ok(src, Some(t), pre))
                }),
                field => self.text_ok(field, event_text(payload, field), pre),
            }
    }

    /// The `contains` and `regex` tests on one text.
    fn text_test(&self, t: &str) -> bool {
        if let Some(c) = &self.contains {
            let hit = match &self.finder {
                // A searcher is built for every case-sensitive `contains`.
                Some(f) => f.find(t.as_bytes()).is_some(),
                None => contains_ci(t, c),
            };
            if !hit {
                return false;
            }
        }
        self.regex.as_ref().is_none_or(|r| r.is_match(t))
    }

    /// The logger and level conditions of an Envoy pattern.
    fn envoy_conditions(&self, e: &EnvoyLine<'_>) -> bool {
        self.logger.as_deref().is_none_or(|l| l == e.logger)
            && self.level_min.is_none_or(|l| e.level >= l)
    }

    /// The scope and level conditions of an agent pattern.
    fn agent_conditions(&self, a: &AgentLine<'_>) -> bool {
        self.logger
            .as_deref()
            .is_none_or(|l| Some(l) == a.scope.as_deref())
            && self.level_min.is_none_or(|l| a.level >= l)
    }

    /// The row conditions of an access pattern (code, flags, protocol, duration).
    fn access_conditions(&self, a: &AccessEntry<'_>) -> bool {
        (self.code.is_empty() || self.code.contains(&a.response_code))
            && (self.flags_any.is_empty()
                || self.flags_any.iter().any(|f| a.response_flags.contains(*f)))
            && self.flags_all.iter().all(|f| a.response_flags.contains(*f))
            && self.tcp.is_none_or(|t| t == a.is_tcp())
            && self
                .dmin
                .is_none_or(|min| a.duration_ms.is_some_and(|d| d >= min))
            && self
                .dmax
                .is_none_or(|max| a.duration_ms.is_some_and(|d| d <= max))
    }

    /// The error class and level conditions of an application pattern.
    fn app_conditions(&self, r: &AppRecord<'_>) -> bool {
        (self.class.is_empty()
            || r.error
                .as_ref()
                .is_some_and(|e| self.class.iter().any(|c| c == e.class.as_str())))
            && self
                .level_min
                .is_none_or(|l| r.severity.is_some_and(|s| s >= l))
    }
}

/// What the sink keeps. Public fields are read by the engine after the run.
#[derive(Debug)]
pub struct Collector {
    patterns: Arc<Patterns>,
    /// Normalised Envoy steps, in input order.
    pub steps: Vec<Step>,
    /// Steps not kept because of [`MAX_STEPS`].
    pub steps_dropped: u64,
    /// Names per (file, instance).
    pub instances: BTreeMap<(u32, u64), InstanceInfo>,
    /// Envoy connection-logger lines per workload.
    pub envoy_debug_by_workload: BTreeMap<String, u64>,
    /// Envoy connection-logger lines in total.
    pub envoy_debug_lines: u64,
    /// Access rows per workload ("" when unknown).
    pub access_rows_by_workload: BTreeMap<String, u64>,
    /// Access rows in total.
    pub access_rows: u64,
    /// Access counters: workload, direction, code, flags, cluster.
    pub access_agg: BTreeMap<AggKey, u64>,
    /// Rows that did not fit in [`MAX_AGG_KEYS`].
    pub access_agg_overflow: u64,
    /// Access rows by flag.
    pub access_flags: BTreeMap<&'static str, SignalResult>,
    /// Access rows by code.
    pub access_codes: BTreeMap<u16, SignalResult>,
    /// Failing access rows (flags or 5xx).
    pub access_failures: SignalResult,
    /// TCP rows to PassthroughCluster.
    pub access_tcp_passthrough: SignalResult,
    /// NR + filter_chain_not_found rows.
    pub access_filter_chain_not_found: SignalResult,
    /// Failing rows kept for correlation.
    pub access_fail_rows: Vec<AccessFail>,
    /// Application records in total.
    pub app_records: u64,
    /// Application errors by class.
    pub app_classes: BTreeMap<ErrorClass, SignalResult>,
    /// Application errors kept for correlation.
    pub app_errors: Vec<AppErr>,
    /// App errors not kept because of [`MAX_APP_ERRORS`].
    pub app_errors_dropped: u64,
    /// Agent lines of interest.
    pub agent: Vec<AgentEvt>,
    /// Results of the rule patterns, same index as [`Patterns::list`].
    pub pattern_results: Vec<SignalResult>,
    /// Istio version hints.
    pub versions: VersionHints,
    /// IPs known to have a sidecar: callers of inbound rows with an Istio SNI, and sources of
    /// outbound rows (asked through [`Collector::is_meshed_peer`]). A hash set, because every
    /// outbound row looks its source up and every merge adds a range's set (a sorted set cost
    /// a dozen string comparisons per row and a walk over all kept addresses per merge).
    peers: PeerSet,
    /// Version hints already recorded (bits of [`Collector::hint`]).
    hinted: u8,
    /// Recent prefilter answers.
    filter_memo: FilterMemo,
    /// Access rows since the last fold, by class, in order of first appearance.
    row_classes: Vec<RowClass>,
    /// Index in `row_classes` by key.
    row_class_ids: rustc_hash::FxHashMap<RowClassKey, usize>,
    /// Names the row class keys refer to.
    interned: Interned,
    /// The latest address added to (or found in) `peers`.
    last_peer: Option<String>,
}

impl Collector {
    /// A collector that evaluates these patterns.
    #[must_use]
    pub fn new(patterns: Arc<Patterns>) -> Self {
        let n = patterns.list.len();
        Collector {
            patterns,
            steps: Vec::new(),
            steps_dropped: 0,
            instances: BTreeMap::new(),
            envoy_debug_by_workload: BTreeMap::new(),
            envoy_debug_lines: 0,
            access_rows_by_workload: BTreeMap::new(),
            access_rows: 0,
            access_agg: BTreeMap::new(),
            access_agg_overflow: 0,
            access_flags: BTreeMap::new(),
            access_codes: BTreeMap::new(),
            access_failures: SignalResult::default(),
            access_tcp_passthrough: SignalResult::default(),
            access_filter_chain_not_found: SignalResult::default(),
            access_fail_rows: Vec::new(),
            app_records: 0,
            app_classes: BTreeMap::new(),
            app_errors: Vec::new(),
            app_errors_dropped: 0,
            agent: Vec::new(),
            pattern_results: vec![SignalResult::default(); n],
            versions: VersionHints::default(),
            peers: PeerSet::default(),
            hinted: 0,
            filter_memo: vec![Memo::default(); FAMILIES * FIELDS],
            row_classes: Vec::new(),
            row_class_ids: rustc_hash::FxHashMap::default(),
            interned: Interned::default(),
            last_peer: None,
        }
    }

    /// Move what is still counted in working structures into the public fields; call once
    /// reading is over, before reading the access counters (`access_*`).
    pub fn finish(&mut self) {
        self.flush();
    }

    /// Whether `ip` is known to have a sidecar (see `peers`).
    #[must_use]
    pub fn is_meshed_peer(&self, ip: &str) -> bool {
        self.peers.contains(ip)
    }

    /// Whether any address is known to have a sidecar.
    #[must_use]
    pub fn knows_meshed_peers(&self) -> bool {
        self.peers.len() > 0
    }

    /// Fold the row classes into the public access counters, exactly as if every row had
    /// been counted there on its own, in input order: classes are visited in order of their
    /// first row, so new aggregate keys and workloads are admitted in the same order, and
    /// examples are the earliest rows by row number.
    fn flush(&mut self) {
        let classes = std::mem::take(&mut self.row_classes);
        self.row_class_ids.clear();
        // Classes per signal, in order of first row.
        let mut by_flag: BTreeMap<&'static str, Vec<&RowClass>> = BTreeMap::new();
        let mut by_code: BTreeMap<u16, Vec<&RowClass>> = BTreeMap::new();
        let mut failures = Vec::new();
        let mut tcp_passthrough = Vec::new();
        let mut chain_not_found = Vec::new();
        for c in &classes {
            let k = &c.key;
            let workload = self.interned.workload_name(k.workload);
            let cluster = self.interned.cluster_name(k.cluster);
            match self
                .access_rows_by_workload
                .get_mut(workload.unwrap_or_default())
            {
                Some(n) => *n += c.count,
                None => {
                    self.access_rows_by_workload
                        .insert(workload.unwrap_or_default().to_string(), c.count);
                }
            }
            let key: AggKey = (
                workload.unwrap_or_default().to_string(),
                direction(cluster),
                k.code,
                k.flags.to_string(),
                cluster.to_string(),
            );
            if let Some(n) = self.access_agg.get_mut(&key) {
                *n += c.count;
            } else if self.access_agg.len() < MAX_AGG_KEYS {
                self.access_agg.insert(key, c.count);
            } else {
                self.access_agg_overflow += c.count;
            }
            for name in k.flags.names() {
                if name != "OTHER" {
                    by_flag.entry(name).or_default().push(c);
                }
            }
            by_code.entry(k.code).or_default().push(c);
            if is_failing(k.code, k.flags) {
                failures.push(c);
            }
            if k.tcp_passthrough {
                tcp_passthrough.push(c);
            }
            if k.chain_not_found {
                chain_not_found.push(c);
            }
        }
        let names = &self.interned;
        for (name, cs) in by_flag {
            add_classes(self.access_flags.entry(name).or_default(), &cs, names);
        }
        for (code, cs) in by_code {
            add_classes(self.access_codes.entry(code).or_default(), &cs, names);
        }
        add_classes(&mut self.access_failures, &failures, names);
        add_classes(&mut self.access_tcp_passthrough, &tcp_passthrough, names);
        add_classes(
            &mut self.access_filter_chain_not_found,
            &chain_not_found,
            names,
        );
        if self.interned.len() >= MAX_INTERNED {
            self.interned = Interned::default();
        }
    }

    /// Count one access row in its class (see [`Collector::flush`]).
    fn count_row(&mut self, key: RowClassKey, time: Option<i64>, at: (u32, u64)) {
        let seq = self.access_rows;
        let i = match self.row_class_ids.get(&key) {
            Some(i) => *i,
            None => {
                self.row_classes.push(RowClass {
                    key,
                    count: 0,
                    earliest: None,
                    latest: None,
                    examples: Vec::new(),
                });
                let i = self.row_classes.len() - 1;
                self.row_class_ids.insert(key, i);
                i
            }
        };
        let Some(c) = self.row_classes.get_mut(i) else {
            return;
        };
        c.count += 1;
        if let Some(t) = time {
            c.earliest = Some(c.earliest.map_or(t, |e| e.min(t)));
            c.latest = Some(c.latest.map_or(t, |l| l.max(t)));
        }
        if c.examples.len() < MAX_EXAMPLES {
            c.examples.push((seq, at.0, at.1));
        }
    }

    /// Index of a rule pattern by its key `<rule-id>/pattern.<id>`.
    #[must_use]
    pub fn patterns_index(&self, key: &str) -> Option<usize> {
        self.patterns.index(key)
    }

    /// True when the pattern reads access rows (so a rate makes sense).
    #[must_use]
    pub fn pattern_is_access(&self, key: &str) -> bool {
        self.patterns
            .index(key)
            .and_then(|i| self.patterns.list.get(i))
            .is_some_and(|p| p.family == Family::EnvoyAccess)
    }

    /// Workload of the proxy instance a step belongs to.
    #[must_use]
    pub fn workload_of(&self, file: u32, instance: u64) -> Option<&str> {
        self.instances
            .get(&(file, instance))
            .and_then(|i| i.workload.as_deref())
    }

    fn instance_key(ctx: &InputContext<'_>, event: &Event<'_>) -> u64 {
        let pod = event
            .origin
            .pod
            .as_deref()
            .or(ctx.path_names.pod.as_deref())
            .unwrap_or("");
        if pod.is_empty() {
            return 0;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pod.hash(&mut h);
        h.finish()
    }

    fn note_instance(&mut self, ctx: &InputContext<'_>, event: &Event<'_>, instance: u64) {
        let key = (ctx.file, instance);
        self.instances.entry(key).or_insert_with(|| InstanceInfo {
            workload: ctx.workload_of(event).map(|w| w.into_owned()),
            pod: event
                .origin
                .pod
                .as_deref()
                .map(str::to_string)
                .or_else(|| ctx.path_names.pod.clone()),
            namespace: event
                .origin
                .namespace
                .as_deref()
                .map(str::to_string)
                .or_else(|| ctx.path_names.namespace.clone()),
        });
    }

    /// Record a version hint once (`bit` names it): a bit test per line instead of a parse
    /// and a search.
    fn hint(&mut self, bit: u8, what: &str, r: &str) {
        if self.hinted & bit == 0 {
            self.hinted |= bit;
            self.versions.add(what, range(r));
        }
    }

    fn envoy(&mut self, ctx: &InputContext<'_>, event: &Event<'_>, e: &EnvoyLine<'_>) {
        match e.layout {
            EnvoyLayout::Bracketed => self.hint(1, "envoy bracketed layout", "<=1.5"),
            EnvoyLayout::IstioTab
                if e.source_location.is_some() || e.message.starts_with("[external/") =>
            {
                self.hint(2, "envoy 1.6 layout (location in message)", "1.6");
            }
            EnvoyLayout::IstioTab => self.hint(4, "envoy tab layout", "1.6-1.16"),
            EnvoyLayout::IstioTabWithCaller => self.hint(8, "envoy layout with thread=", ">=1.17"),
            EnvoyLayout::Json => {}
        }
        let connection_logger = matches!(
            e.logger.as_ref(),
            "conn_handler"
                | "connection"
                | "filter"
                | "router"
                | "http"
                | "http2"
                | "client"
                | "pool"
        );
        if connection_logger {
            self.envoy_debug_lines += 1;
        }
        let Some((kind, detail)) = classify(&e.logger, &e.message) else {
            return;
        };
        let instance = Self::instance_key(ctx, event);
        self.note_instance(ctx, event, instance);
        // No allocation per line: the workload string exists once per proxy instance.
        if let Some(w) = self
            .instances
            .get(&(ctx.file, instance))
            .and_then(|i| i.workload.as_deref())
        {
            match self.envoy_debug_by_workload.get_mut(w) {
                Some(n) => *n += 1,
                None => {
                    self.envoy_debug_by_workload.insert(w.to_string(), 1);
                }
            }
        }
        self.push_step(Step {
            file: ctx.file,
            line: event.line,
            time: event.time.map(|t| t.0),
            instance,
            thread: e.thread,
            conn: e.connection_id,
            stream: e.stream_id,
            kind,
            detail: detail.map(String::into_boxed_str),
        });
    }

    fn push_step(&mut self, s: Step) {
        if self.steps.len() < MAX_STEPS {
            self.steps.push(s);
        } else {
            self.steps_dropped += 1;
        }
    }

    fn access(&mut self, ctx: &InputContext<'_>, event: &Event<'_>, a: &AccessEntry<'_>) {
        match a.format {
            Some(AccessFormat::TextIstio13) => {
                self.hint(16, "access log with mixer field", "1.3-1.7");
            }
            Some(AccessFormat::TextIstio18) => {
                self.hint(32, "access log without details", "1.8-1.10");
            }
            Some(AccessFormat::TextIstio19) => self.hint(64, "access log with details", ">=1.9"),
            _ => {}
        }
        let workload = ctx.workload_of(event);
        let wl = workload.as_deref();
        let at = (ctx.file, event.line);
        let time = event.time.map(|t| t.0);
        // Bounded memory for a long stream: fold before interning this row's names (a fold
        // may drop the names the keys refer to).
        if self.row_classes.len() >= MAX_ROW_CLASSES || self.interned.len() >= MAX_INTERNED {
            self.flush();
        }
        let cluster = a.upstream_cluster.as_deref().unwrap_or("-");
        let direction = direction(cluster);
        static NR: std::sync::LazyLock<Option<ResponseFlags>> =
            std::sync::LazyLock::new(|| ResponseFlags::flag("NR"));
        let key = RowClassKey {
            workload: self.interned.workload(wl),
            cluster: self.interned.cluster(cluster),
            flags: a.response_flags,
            code: a.response_code,
            tcp_passthrough: a.is_tcp() && cluster == "PassthroughCluster",
            chain_not_found: NR.is_some_and(|nr| a.response_flags.contains(nr))
                && a.response_code_details
                    .as_deref()
                    .is_some_and(|d| d.contains("filter_chain_not_found")),
        };
        self.count_row(key, time, at);
        self.access_rows += 1;
        if is_failing(a.response_code, a.response_flags)
            && self.access_fail_rows.len() < MAX_ACCESS_FAILURES
        {
            self.access_fail_rows.push(AccessFail {
                file: ctx.file,
                line: event.line,
                time,
                workload: wl.map(str::to_string),
                code: a.response_code,
                flags: a.response_flags,
                request_id: a
                    .request_id
                    .as_deref()
                    .map(|r| truncate(r, 80).into_boxed_str()),
            });
        }
        // A caller that presented Istio's SNI had a sidecar doing mTLS; the source of an
        // outbound row is the pod of the sidecar that logged it.
        if (direction == "outbound"
            || a.requested_server_name
                .as_deref()
                .is_some_and(|s| s.starts_with("outbound_.")))
            && self.peers.len() < MAX_MESHED_PEERS
            && let Some(remote) = a.downstream_remote_address.as_deref()
        {
            let ip = crate::journey::peer_ip(remote);
            // Rows of one sidecar repeat its own address: skip the set lookup then.
            if self.last_peer.as_deref() != Some(ip) {
                self.peers.insert(ip);
                let last = self.last_peer.get_or_insert_with(String::new);
                last.clear();
                last.push_str(ip);
            }
        }
    }

    fn app(&mut self, ctx: &InputContext<'_>, event: &Event<'_>, r: &AppRecord<'_>) {
        self.app_records += 1;
        let Some(err) = &r.error else {
            return;
        };
        let workload = ctx.workload_of(event).map(|w| w.into_owned());
        let time = event.time.map(|t| t.0);
        self.app_classes.entry(err.class).or_default().hit(
            workload.as_deref(),
            time,
            (ctx.file, event.line),
        );
        if self.app_errors.len() >= MAX_APP_ERRORS {
            self.app_errors_dropped += 1;
            return;
        }
        let ids = [&r.request_id, &r.correlation_id, &r.trace_id]
            .into_iter()
            .filter_map(|i| i.as_deref())
            .map(|i| truncate(i, 80).into_boxed_str())
            .collect();
        self.app_errors.push(AppErr {
            file: ctx.file,
            line: event.line,
            time,
            workload,
            class: err.class,
            peer: err
                .peer
                .as_deref()
                .map(|p| truncate(p, 120).into_boxed_str()),
            ids,
        });
    }

    fn agent(&mut self, ctx: &InputContext<'_>, event: &Event<'_>, a: &AgentLine<'_>) {
        let m = a.message.as_ref();
        let kind = if m.contains("draining Proxy for termination")
            || m.contains("Graceful termination period")
            || m.contains("terminating remaining proxies")
            || m.contains("Agent draining proxy")
        {
            AgentKindOfInterest::Termination
        } else if m.starts_with("Envoy proxy is ready") {
            AgentKindOfInterest::Ready
        } else if m.starts_with("Envoy proxy is NOT ready") {
            AgentKindOfInterest::NotReady
        } else if m.starts_with("Envoy command:")
            || (m.starts_with("Epoch ") && m.contains("starting"))
            || m.starts_with("Starting proxy agent")
        {
            AgentKindOfInterest::Restart
        } else if m.contains("out of memory killed") {
            AgentKindOfInterest::Oom
        } else {
            return;
        };
        let workload = ctx.workload_of(event).map(|w| w.into_owned());
        if kind == AgentKindOfInterest::Restart {
            // Envoy restarts: connection ids start again.
            let instance = Self::instance_key(ctx, event);
            self.push_step(Step {
                file: ctx.file,
                line: event.line,
                time: event.time.map(|t| t.0),
                instance,
                thread: None,
                conn: None,
                stream: None,
                kind: StepKind::ProxyRestart,
                detail: None,
            });
        }
        if self.agent.len() < MAX_AGENT {
            self.agent.push(AgentEvt {
                file: ctx.file,
                line: event.line,
                time: event.time.map(|t| t.0),
                workload,
                kind,
            });
        }
    }

    fn patterns(&mut self, ctx: &InputContext<'_>, event: &Event<'_>) {
        // Borrowed field by field: cloning the shared `Arc` per event made every worker
        // write its reference count, one cache line bouncing between cores.
        let Collector {
            patterns,
            filter_memo,
            pattern_results,
            ..
        } = self;
        let patterns: &Patterns = patterns;
        if patterns.list.is_empty() {
            return;
        }
        let family = event.payload.family();
        let Some(indexes) = patterns.by_family.get(family as usize) else {
            return;
        };
        let mut pre = Pre {
            patterns,
            family,
            state: [None; FIELDS],
            memo: filter_memo,
        };
        // The workload is looked up (and maybe built) once per event, and only on a hit.
        let mut workload = None;
        let mut hit_at = |i: usize| {
            if let Some(res) = pattern_results.get_mut(i) {
                let w = workload.get_or_insert_with(|| ctx.workload_of(event));
                res.hit(
                    w.as_deref(),
                    event.time.map(|t| t.0),
                    (ctx.file, event.line),
                );
            }
        };
        if let Some(masks) = patterns
            .text_masks
            .get(family as usize)
            .and_then(Option::as_ref)
        {
            let mut cands = match &event.payload {
                Payload::Access(a) => match &patterns.access_gates {
                    Some(gates) => {
                        // Each access pattern tests one text: drop those whose text is
                        // missing or ruled out, asking only about texts still needed.
                        let mut c = gates.candidates(a);
                        for &(src, mask) in &masks.by_src {
                            if c & mask == 0 {
                                continue;
                            }
                            match access_text(a, src) {
                                None => c &= !mask,
                                Some(t) => c &= pre.cands(src, t).bits() | !mask,
                            }
                        }
                        c
                    }
                    None => u128::MAX,
                },
                payload => {
                    // An `any` pattern may match through any of its texts.
                    let mut c = masks.no_text;
                    for &(src, mask) in &masks.by_src {
                        if let Some(t) = event_text(payload, src) {
                            c |= pre.cands(src, t).bits() & mask;
                        }
                    }
                    c
                }
            };
            let gated = patterns.access_gates.is_some();
            while cands != 0 {
                let j = cands.trailing_zeros() as usize;
                cands &= cands - 1;
                let Some(&i) = indexes.get(j) else {
                    continue;
                };
                let Some(p) = patterns.list.get(i) else {
                    continue;
                };
                if p.matches(&event.payload, gated, &mut pre) {
                    hit_at(i);
                }
            }
            return;
        }
        for &i in indexes {
            let Some(p) = patterns.list.get(i) else {
                continue;
            };
            if p.matches(&event.payload, false, &mut pre) {
                hit_at(i);
            }
        }
    }
}

/// The text `src` of an event (see [`Field::sources`]); for an access row, [`access_text`].
fn event_text<'e>(payload: &'e Payload<'_>, src: Field) -> Option<&'e str> {
    match payload {
        Payload::Envoy(e) if src == Field::Logger => Some(&e.logger),
        Payload::Envoy(e) => Some(&e.message),
        Payload::Agent(a) if src == Field::Scope => a.scope.as_deref(),
        Payload::Agent(a) => Some(&a.message),
        Payload::App(r) => match src {
            Field::StackTrace => r.stack_trace.as_deref(),
            Field::RootCause => r.error.as_ref().map(|e| e.root_cause.as_ref()),
            Field::Logger => r.logger.as_deref(),
            _ => Some(&r.message),
        },
        Payload::Access(a) => access_text(a, src),
    }
}

/// The text of an access row an access pattern's `field` names.
fn access_text<'a>(a: &'a AccessEntry<'_>, field: Field) -> Option<&'a str> {
    match field {
        Field::ConnectionTerminationDetails => a.connection_termination_details.as_deref(),
        Field::UpstreamTransportFailureReason => a.upstream_transport_failure_reason.as_deref(),
        Field::UpstreamCluster => a.upstream_cluster.as_deref(),
        Field::UpstreamHost => a.upstream_host.as_deref(),
        Field::RouteName => a.route_name.as_deref(),
        Field::RequestedServerName => a.requested_server_name.as_deref(),
        Field::Authority => a.authority.as_deref(),
        Field::Path => a.path.as_deref(),
        Field::Method => a.method.as_deref(),
        Field::UserAgent => a.user_agent.as_deref(),
        Field::DownstreamRemoteAddress => a.downstream_remote_address.as_deref(),
        Field::DownstreamLocalAddress => a.downstream_local_address.as_deref(),
        _ => a.response_code_details.as_deref(),
    }
}

/// Direction of an access row by its cluster (`-` when it names none).
fn direction(cluster: &str) -> &'static str {
    if cluster.starts_with("inbound") || cluster.starts_with("InboundPassthrough") {
        "inbound"
    } else if cluster == "-" {
        "unknown"
    } else {
        "outbound"
    }
}

/// An access row with a failure flag or a 5xx code.
fn is_failing(code: u16, flags: ResponseFlags) -> bool {
    const FAILURE_FLAGS: [&str; 13] = [
        "UF", "UC", "UR", "UH", "UO", "NR", "URX", "DC", "UT", "LR", "DPE", "UPE", "SI",
    ];
    static FAILURE_MASK: std::sync::LazyLock<u32> = std::sync::LazyLock::new(|| {
        FAILURE_FLAGS
            .iter()
            .filter_map(|f| ResponseFlags::flag(f))
            .fold(0, |m, f| m | f.0)
    });
    code >= 500 || flags.0 & *FAILURE_MASK != 0
}

/// Add the rows of these classes (in order of first row) to a signal, as if each row had
/// been a [`SignalResult::hit`] in input order.
fn add_classes(signal: &mut SignalResult, classes: &[&RowClass], names: &Interned) {
    for c in classes {
        signal.count += c.count;
        if let Some(t) = c.earliest {
            signal.first = Some(signal.first.map_or(t, |f| f.min(t)));
        }
        if let Some(t) = c.latest {
            signal.last = Some(signal.last.map_or(t, |l| l.max(t)));
        }
        // A class's first row is its workload's first row among these classes.
        if let Some(w) = names.workload_name(c.key.workload)
            && signal.workloads.len() < MAX_WORKLOADS
            && !signal.workloads.contains(w)
        {
            signal.workloads.insert(w.to_string());
        }
    }
    let room = MAX_EXAMPLES.saturating_sub(signal.examples.len());
    if room > 0 {
        let mut rows: Vec<(u64, u32, u64)> = classes
            .iter()
            .flat_map(|c| c.examples.iter().copied())
            .collect();
        rows.sort_unstable();
        signal
            .examples
            .extend(rows.into_iter().take(room).map(|(_, f, l)| (f, l)));
    }
}

fn range(s: &str) -> VersionRange {
    VersionRange::parse(s).unwrap_or(VersionRange::ANY)
}

impl Sink for Collector {
    fn event(&mut self, input: &InputContext<'_>, event: &Event<'_>) {
        match &event.payload {
            Payload::Envoy(e) => self.envoy(input, event, e),
            Payload::Access(a) => self.access(input, event, a),
            Payload::App(r) => self.app(input, event, r),
            Payload::Agent(a) => self.agent(input, event, a),
        }
        self.patterns(input, event);
    }

    fn shift_lines(&mut self, lines: u64) {
        // Every place that keeps a line number; a new one must be added here.
        self.steps.iter_mut().for_each(|s| s.line += lines);
        self.access_fail_rows
            .iter_mut()
            .for_each(|r| r.line += lines);
        self.app_errors.iter_mut().for_each(|e| e.line += lines);
        self.agent.iter_mut().for_each(|a| a.line += lines);
        for c in &mut self.row_classes {
            c.examples.iter_mut().for_each(|e| e.2 += lines);
        }
        let signals = self
            .access_flags
            .values_mut()
            .chain(self.access_codes.values_mut())
            .chain(self.app_classes.values_mut())
            .chain(self.pattern_results.iter_mut())
            .chain([
                &mut self.access_failures,
                &mut self.access_tcp_passthrough,
                &mut self.access_filter_chain_not_found,
            ]);
        for signal in signals {
            signal.shift_lines(lines);
        }
    }

    fn merge(&mut self, later: Self) {
        let mut later = later;
        self.flush();
        later.flush();
        let room = MAX_STEPS.saturating_sub(self.steps.len());
        self.steps_dropped += later.steps_dropped + later.steps.len().saturating_sub(room) as u64;
        self.steps.extend(later.steps.into_iter().take(room));
        for (k, v) in later.instances {
            self.instances.entry(k).or_insert(v);
        }
        for (k, v) in later.envoy_debug_by_workload {
            *self.envoy_debug_by_workload.entry(k).or_default() += v;
        }
        self.envoy_debug_lines += later.envoy_debug_lines;
        for (k, v) in later.access_rows_by_workload {
            *self.access_rows_by_workload.entry(k).or_default() += v;
        }
        self.access_rows += later.access_rows;
        for (k, v) in later.access_agg {
            if let Some(n) = self.access_agg.get_mut(&k) {
                *n += v;
            } else if self.access_agg.len() < MAX_AGG_KEYS {
                self.access_agg.insert(k, v);
            } else {
                self.access_agg_overflow += v;
            }
        }
        self.access_agg_overflow += later.access_agg_overflow;
        for (k, v) in later.access_flags {
            self.access_flags.entry(k).or_default().merge(v);
        }
        for (k, v) in later.access_codes {
            self.access_codes.entry(k).or_default().merge(v);
        }
        self.access_failures.merge(later.access_failures);
        self.access_tcp_passthrough
            .merge(later.access_tcp_passthrough);
        self.access_filter_chain_not_found
            .merge(later.access_filter_chain_not_found);
        let room = MAX_ACCESS_FAILURES.saturating_sub(self.access_fail_rows.len());
        self.access_fail_rows
            .extend(later.access_fail_rows.into_iter().take(room));
        self.app_records += later.app_records;
        for (k, v) in later.app_classes {
            self.app_classes.entry(k).or_default().merge(v);
        }
        let room = MAX_APP_ERRORS.saturating_sub(self.app_errors.len());
        self.app_errors_dropped +=
            later.app_errors_dropped + later.app_errors.len().saturating_sub(room) as u64;
        self.app_errors
            .extend(later.app_errors.into_iter().take(room));
        let room = MAX_AGENT.saturating_sub(self.agent.len());
        self.agent.extend(later.agent.into_iter().take(room));
        for (mine, theirs) in self.pattern_results.iter_mut().zip(later.pattern_results) {
            mine.merge(theirs);
        }
        self.versions.merge(later.versions);
        let later_peers = later.peers;
        if self.peers.len() + later_peers.len() <= MAX_MESHED_PEERS {
            self.peers.extend(later_peers);
        } else if self.peers.len() < MAX_MESHED_PEERS {
            // Over the cap, the later range's addresses fill the room in sorted order (as a
            // union of sorted sets would), so which ones are kept does not depend on hashing.
            let mut later_peers: Vec<String> = later_peers.texts().collect();
            later_peers.sort_unstable();
            for ip in later_peers {
                if self.peers.len() >= MAX_MESHED_PEERS {
                    break;
                }
                self.peers.insert(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshdoctor_input::PathNames;
    use meshdoctor_model::{Origin, Timestamp};
    use std::borrow::Cow;
    use std::collections::BTreeSet;

    /// One generated access row: workload, cluster, code, flags, TCP, details, time.
    type Row = (
        Option<String>,
        Option<String>,
        u16,
        u32,
        bool,
        Option<&'static str>,
        Option<i64>,
    );

    /// Rows from a fixed pseudo-random sequence: runs of one workload (more than
    /// [`MAX_WORKLOADS`] in all), more clusters than [`MAX_INTERNED`] and more classes than
    /// [`MAX_ROW_CLASSES`] and aggregate keys than [`MAX_AGG_KEYS`] when `wide`.
    fn rows(n: usize, wide: bool) -> Vec<Row> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let flag = |name| ResponseFlags::flag(name).map_or(0, |f| f.0);
        let flag_sets = [
            0,
            flag("UF"),
            flag("NR"),
            flag("UC") | flag("URX"),
            ResponseFlags::OTHER,
            flag("DC") | ResponseFlags::OTHER,
        ];
        let (workloads, clusters) = if wide { (80, 6000) } else { (20, 30) };
        let mut workload = None;
        (0..n)
            .map(|_| {
                if next(20) == 0 {
                    workload = match next(workloads + 1) {
                        0 => None,
                        w => Some(format!("w{w}")),
                    };
                }
                let cluster = match next(clusters + 3) {
                    0 => None,
                    1 => Some("PassthroughCluster".to_string()),
                    2 => Some("inbound|8080||".to_string()),
                    c => Some(format!("outbound|80||c{c}")),
                };
                let code = [200, 0, 503, 404, 204][next(5) as usize];
                let flags = flag_sets[next(flag_sets.len() as u64) as usize];
                let details = ["via_upstream", "filter_chain_not_found"][next(2) as usize];
                let time = (next(10) != 0).then(|| next(1_000_000) as i64);
                (
                    workload.clone(),
                    cluster,
                    code,
                    flags,
                    next(3) == 0,
                    Some(details),
                    time,
                )
            })
            .collect()
    }

    fn feed(c: &mut Collector, rows: &[Row], first_line: u64) {
        let names = PathNames::default();
        let ctx = InputContext {
            file: 7,
            display: "x",
            path_names: &names,
            service_flag: None,
        };
        for (i, (workload, cluster, code, flags, tcp, details, time)) in rows.iter().enumerate() {
            let entry = AccessEntry {
                upstream_cluster: cluster.as_deref().map(Cow::Borrowed),
                response_code: *code,
                response_flags: ResponseFlags(*flags),
                method: (!tcp).then_some(Cow::Borrowed("GET")),
                response_code_details: details.map(Cow::Borrowed),
                ..AccessEntry::default()
            };
            let event = Event {
                line: first_line + i as u64,
                line_count: 1,
                time: time.map(Timestamp),
                collector_time: None,
                origin: Origin {
                    workload: workload.as_deref().map(Cow::Borrowed),
                    ..Origin::default()
                },
                payload: Payload::Access(Box::new(entry)),
            };
            c.event(&ctx, &event);
        }
    }

    /// Every access counter, one row at a time, as the collector counted before row
    /// classes.
    fn one_by_one(rows: &[Row]) -> Collector {
        let mut c = Collector::new(Arc::new(Patterns::default()));
        for (i, (workload, cluster, code, flags, tcp, details, time)) in rows.iter().enumerate() {
            let wl = workload.as_deref();
            let at = (7, 1 + i as u64);
            let flags = ResponseFlags(*flags);
            c.access_rows += 1;
            *c.access_rows_by_workload
                .entry(wl.unwrap_or_default().to_string())
                .or_default() += 1;
            let cluster = cluster.as_deref().unwrap_or("-");
            let key: AggKey = (
                wl.unwrap_or_default().to_string(),
                direction(cluster),
                *code,
                flags.to_string(),
                cluster.to_string(),
            );
            if let Some(n) = c.access_agg.get_mut(&key) {
                *n += 1;
            } else if c.access_agg.len() < MAX_AGG_KEYS {
                c.access_agg.insert(key, 1);
            } else {
                c.access_agg_overflow += 1;
            }
            for name in flags.names().filter(|n| *n != "OTHER") {
                c.access_flags.entry(name).or_default().hit(wl, *time, at);
            }
            c.access_codes.entry(*code).or_default().hit(wl, *time, at);
            if is_failing(*code, flags) {
                c.access_failures.hit(wl, *time, at);
            }
            if *tcp && cluster == "PassthroughCluster" {
                c.access_tcp_passthrough.hit(wl, *time, at);
            }
            if flags.has("NR") && *details == Some("filter_chain_not_found") {
                c.access_filter_chain_not_found.hit(wl, *time, at);
            }
        }
        c
    }

    /// The access counters as text (all but the private `last_workload`).
    fn counters(c: &Collector) -> String {
        let s = |r: &SignalResult| {
            format!(
                "{} {:?} {:?} {:?} {:?}\n",
                r.count, r.workloads, r.first, r.last, r.examples
            )
        };
        let mut out = format!(
            "{} {:?}\n{:?}\n{}\n",
            c.access_rows, c.access_rows_by_workload, c.access_agg, c.access_agg_overflow
        );
        for (k, v) in &c.access_flags {
            out += &format!("{k} {}", s(v));
        }
        for (k, v) in &c.access_codes {
            out += &format!("{k} {}", s(v));
        }
        for r in [
            &c.access_failures,
            &c.access_tcp_passthrough,
            &c.access_filter_chain_not_found,
        ] {
            out += &s(r);
        }
        out
    }

    #[test]
    fn row_classes_count_what_rows_counted_one_by_one() {
        for (n, wide) in [(3000, false), (40_000, true)] {
            let rows = rows(n, wide);
            let mut c = Collector::new(Arc::new(Patterns::default()));
            feed(&mut c, &rows, 1);
            if wide {
                // Only a fold writes this: the class limits were reached while reading.
                assert!(!c.access_rows_by_workload.is_empty());
            }
            c.finish();
            let expected = one_by_one(&rows);
            assert!(
                counters(&c) == counters(&expected),
                "{n} rows differ:\n{}\n---\n{}",
                counters(&c),
                counters(&expected)
            );
            if wide {
                // Past the aggregate and workload caps, as row by row.
                assert!(c.access_agg_overflow > 0);
                assert_eq!(c.access_flags["UF"].workloads.len(), MAX_WORKLOADS);
            }
        }
    }

    #[test]
    fn indexed_patterns_find_what_every_pattern_in_turn_finds() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let (inputs, _) = meshdoctor_input::discover(
            &[root.join("examples"), root.join("testdata/scenarios")],
            &meshdoctor_input::DiscoverOptions::default(),
        );
        let rules = crate::rules::RuleSet::builtin().expect("built-in rules load");
        let indexed = Arc::new(Patterns::compile(&rules));
        // No prefilter, masks or gates: every pattern asked in turn, every test run.
        let mut plain = Patterns::compile(&rules);
        plain.prefilter.clear();
        plain.text_masks = Default::default();
        plain.access_gates = None;
        let plain = Arc::new(plain);
        let run = |patterns: &Arc<Patterns>| {
            let options = meshdoctor_logs::RunOptions::default();
            let mut out =
                meshdoctor_logs::run(&inputs, &options, || Collector::new(Arc::clone(patterns)));
            out.sink.finish();
            out.sink.pattern_results
        };
        let (got, expected) = (run(&indexed), run(&plain));
        let families: BTreeSet<Family> = got
            .iter()
            .zip(&indexed.list)
            .filter(|(r, _)| r.count > 0)
            .map(|(_, p)| p.family)
            .collect();
        assert!(families.len() >= 3, "hits in {families:?}");
        for ((g, e), p) in got.iter().zip(&expected).zip(&indexed.list) {
            assert_eq!(
                (g.count, &g.workloads, g.first, g.last, &g.examples),
                (e.count, &e.workloads, e.first, e.last, &e.examples),
                "{}",
                p.key
            );
        }
    }

    #[test]
    fn peer_addresses_kept_as_numbers_print_back_as_written() {
        for ip in ["10.0.0.1", "0.0.0.0", "255.255.255.255", "192.168.10.200"] {
            let n = canonical_v4(ip).expect(ip);
            assert_eq!(std::net::Ipv4Addr::from(n).to_string(), ip);
        }
        for ip in [
            "010.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "::1",
            "",
            "1..2.3",
            "a.b.c.d",
            "1.2.3.4 ",
        ] {
            assert_eq!(canonical_v4(ip), None, "{ip}");
        }
        // The standard parser accepts exactly the texts that print back as written (the
        // assumption `PeerSet` stands on).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 17) as usize;
            let text: String = (0..len)
                .map(|i| b"0123456789.2.5"[((x >> (4 + 4 * i % 56)) % 14) as usize] as char)
                .collect();
            let expected = text
                .parse::<std::net::Ipv4Addr>()
                .ok()
                .filter(|a| a.to_string() == text)
                .map(u32::from);
            assert_eq!(canonical_v4(&text), expected, "{text}");
        }
        let mut set = PeerSet::default();
        for ip in ["10.0.0.1", "10.0.0.1", "010.0.0.1", "fe80::1", "fe80::1"] {
            set.insert(ip);
        }
        let mut texts: Vec<String> = set.texts().collect();
        texts.sort();
        assert_eq!(texts, ["010.0.0.1", "10.0.0.1", "fe80::1"]);
    }

    #[test]
    fn cut_and_merged_rows_count_as_one_run() {
        // Within the limits, a merge of shifted pieces equals one run.
        let rows = rows(3000, false);
        let mut whole = Collector::new(Arc::new(Patterns::default()));
        feed(&mut whole, &rows, 1);
        whole.finish();
        let mut merged: Option<Collector> = None;
        // Short first pieces, so later pieces' lines are among the examples.
        for (start, end) in [(0, 2), (2, 3), (3, 1500), (1500, 3000)] {
            let mut piece = Collector::new(Arc::new(Patterns::default()));
            feed(&mut piece, &rows[start..end], 1);
            piece.shift_lines(start as u64);
            match &mut merged {
                Some(m) => m.merge(piece),
                None => merged = Some(piece),
            }
        }
        let mut merged = merged.unwrap();
        merged.finish();
        assert_eq!(counters(&merged), counters(&whole));
    }
}
