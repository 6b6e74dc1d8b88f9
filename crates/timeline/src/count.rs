//! The counting sink: matches of one signature per (bucket start, group), and optionally
//! the request volume per bucket and group from access rows, so rates can be shown.
//!
//! Memory is a map of counts keyed by small integer ids of interned group values: it grows
//! with the number of distinct buckets × groups, never with the input. Nothing is dropped
//! silently: events without a time and matches without a known workload are counted and
//! reported. This module must not read files or format output.

use crate::bucket::Bucketer;
use crate::signature::Signature;
use meshdoctor_logs::{InputContext, Sink};
use meshdoctor_model::{AccessEntry, Event, Payload, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A dimension rows can be grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dim {
    /// The workload that wrote the record (the service).
    Service,
    /// The other side: the host an app error names, or the service of an access row's
    /// upstream cluster (`-` when unknown).
    Peer,
    /// Access row response flags in canonical order (`UF,URX`, `-`).
    Flag,
    /// Access row response code (`-` for other records).
    Code,
    /// Access row upstream cluster.
    Cluster,
    /// The input file.
    File,
    /// The record kind (`app-log`, `envoy-access`, ...).
    Kind,
}

/// Group value for records a dimension does not apply to.
pub const NOT_APPLICABLE: &str = "-";
/// Service value for records whose workload is unknown.
pub const UNKNOWN_SERVICE: &str = "(unknown)";
const MAX_DIMS: usize = 7;

impl Dim {
    /// Parse one name.
    ///
    /// # Errors
    /// Unknown names, with the list of known ones.
    pub fn parse(text: &str) -> Result<Dim, String> {
        Ok(match text.trim() {
            "service" | "workload" => Dim::Service,
            "peer" => Dim::Peer,
            "flag" | "flags" => Dim::Flag,
            "code" | "status" => Dim::Code,
            "cluster" => Dim::Cluster,
            "file" => Dim::File,
            "kind" => Dim::Kind,
            other => {
                return Err(format!(
                    "cannot group by `{other}`; use service, peer, flag, code, cluster, file or kind"
                ));
            }
        })
    }

    /// Parse a comma-separated list (`service,peer`). Duplicates are removed; order kept.
    ///
    /// # Errors
    /// Unknown names.
    pub fn parse_list(text: &str) -> Result<Vec<Dim>, String> {
        let mut out: Vec<Dim> = Vec::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let d = Dim::parse(part)?;
            if !out.contains(&d) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The name used in JSON and CSV.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Service => "service",
            Dim::Peer => "peer",
            Dim::Flag => "flag",
            Dim::Code => "code",
            Dim::Cluster => "cluster",
            Dim::File => "file",
            Dim::Kind => "kind",
        }
    }

    /// Dimensions that describe traffic (who talks to whom) rather than the outcome, so a
    /// request count can be attributed to them.
    fn is_traffic(self) -> bool {
        matches!(self, Dim::Service | Dim::Peer | Dim::Cluster | Dim::File)
    }
}

/// What to count.
#[derive(Clone, Debug)]
pub struct CountOptions {
    /// The signature.
    pub signature: Arc<Signature>,
    /// Time buckets.
    pub bucketer: Bucketer,
    /// Group-by dimensions, in output order.
    pub dims: Vec<Dim>,
    /// Also count requests from access rows (reads every access row; slower).
    pub requests: bool,
}

type Key = (i64, [u32; MAX_DIMS]);

/// Interned group values: an id per distinct string, looked up without allocating.
#[derive(Clone, Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }
}

/// A place a match was found, kept for the first few matches as examples.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Example {
    /// Display name of the file.
    pub file: String,
    /// 1-based line.
    pub line: u64,
}

const MAX_EXAMPLES: usize = 5;

/// The sink. Make one per parallel unit with [`CountSink::new`]; the pipeline merges them.
#[derive(Clone, Debug)]
pub struct CountSink {
    opts: Arc<CountOptions>,
    bucketer: Bucketer,
    strings: Interner,
    counts: HashMap<Key, u64>,
    requests: HashMap<Key, u64>,
    matched: u64,
    untimed_matches: u64,
    unknown_service: u64,
    untimed_requests: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    examples: Vec<Example>,
}

impl CountSink {
    /// An empty sink.
    #[must_use]
    pub fn new(opts: Arc<CountOptions>) -> CountSink {
        let bucketer = opts.bucketer.clone();
        let mut strings = Interner::default();
        // Id 0 is the wildcard of request keys.
        strings.id("*");
        CountSink {
            opts,
            bucketer,
            strings,
            counts: HashMap::new(),
            requests: HashMap::new(),
            matched: 0,
            untimed_matches: 0,
            unknown_service: 0,
            untimed_requests: 0,
            first: None,
            last: None,
            examples: Vec::new(),
        }
    }

    fn key(
        &mut self,
        start: i64,
        ctx: &InputContext<'_>,
        event: &Event<'_>,
        traffic_only: bool,
    ) -> (Key, bool) {
        let mut ids = [0u32; MAX_DIMS];
        let mut unknown = false;
        // An Arc clone, not a Vec clone: this runs for every access row when counting requests.
        let opts = Arc::clone(&self.opts);
        for (slot, dim) in ids.iter_mut().zip(opts.dims.iter()) {
            if traffic_only && !dim.is_traffic() {
                continue;
            }
            *slot = match dim {
                Dim::Service => match ctx.workload_of(event) {
                    Some(w) => self.strings.id(&w),
                    None => {
                        unknown = true;
                        self.strings.id(UNKNOWN_SERVICE)
                    }
                },
                Dim::Peer => {
                    let p = peer_of(event);
                    self.strings.id(p.as_deref().unwrap_or(NOT_APPLICABLE))
                }
                Dim::Flag => match &event.payload {
                    Payload::Access(row) => {
                        let f = row.response_flags.to_string();
                        self.strings.id(&f)
                    }
                    _ => self.strings.id(NOT_APPLICABLE),
                },
                Dim::Code => match &event.payload {
                    Payload::Access(row) => {
                        let mut buf = [0u8; 8];
                        let s = fmt_u16(row.response_code, &mut buf);
                        self.strings.id(s)
                    }
                    _ => self.strings.id(NOT_APPLICABLE),
                },
                Dim::Cluster => match &event.payload {
                    Payload::Access(row) => self
                        .strings
                        .id(row.upstream_cluster.as_deref().unwrap_or(NOT_APPLICABLE)),
                    _ => self.strings.id(NOT_APPLICABLE),
                },
                Dim::File => self.strings.id(ctx.display),
                Dim::Kind => self.strings.id(event.payload.family().as_str()),
            };
        }
        ((start, ids), unknown)
    }

    /// The merged result, sorted by bucket start then group values.
    #[must_use]
    pub fn finish(self) -> Counts {
        let dims = self.opts.dims.clone();
        let names = |ids: &[u32; MAX_DIMS], s: &Interner| -> Vec<String> {
            dims.iter()
                .zip(ids.iter())
                .map(|(_, id)| s.name(*id).to_string())
                .collect()
        };
        let traffic_mask: Vec<bool> = dims.iter().map(|d| d.is_traffic()).collect();
        let project = |ids: &[u32; MAX_DIMS]| {
            let mut p = *ids;
            for (slot, traffic) in p.iter_mut().zip(traffic_mask.iter()) {
                if !traffic {
                    *slot = 0;
                }
            }
            p
        };
        let mut rows: BTreeMap<(i64, Vec<String>), Row> = BTreeMap::new();
        for (&(start, ids), &count) in &self.counts {
            let requests = if self.opts.requests {
                Some(
                    self.requests
                        .get(&(start, project(&ids)))
                        .copied()
                        .unwrap_or(0),
                )
            } else {
                None
            };
            let group = names(&ids, &self.strings);
            rows.insert(
                (start, group.clone()),
                Row {
                    start: Timestamp(start),
                    group,
                    count,
                    requests,
                },
            );
        }
        // Buckets and groups with traffic but no failure are rows too (rate 0), when every
        // dimension is a traffic dimension (otherwise "which flag?" has no answer).
        if self.opts.requests && traffic_mask.iter().all(|t| *t) {
            for (&(start, ids), &n) in &self.requests {
                let group = names(&ids, &self.strings);
                rows.entry((start, group.clone())).or_insert(Row {
                    start: Timestamp(start),
                    group,
                    count: 0,
                    requests: Some(n),
                });
            }
        }
        let requests_total = self
            .opts
            .requests
            .then(|| self.requests.values().sum::<u64>());
        Counts {
            signature: self.opts.signature.name(),
            bucketer: self.bucketer,
            dims: self.opts.dims.clone(),
            rows: rows.into_values().collect(),
            total: self.matched - self.untimed_matches,
            untimed: self.untimed_matches,
            unknown_service: self.unknown_service,
            requests_total,
            untimed_requests: self.untimed_requests,
            first: self.first,
            last: self.last,
            examples: self.examples,
        }
    }
}

impl Sink for CountSink {
    fn shift_lines(&mut self, lines: u64) {
        for example in &mut self.examples {
            example.line += lines;
        }
    }

    fn event(&mut self, ctx: &InputContext<'_>, event: &Event<'_>) {
        if let Some(t) = event.time {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        if self.opts.requests
            && let Payload::Access(row) = &event.payload
            && (!self.opts.signature.is_caller_side() || !is_inbound(row))
        {
            match event.time {
                Some(t) => {
                    let start = self.bucketer.start_of(t).0;
                    let (key, _) = self.key(start, ctx, event, true);
                    *self.requests.entry(key).or_default() += 1;
                }
                None => self.untimed_requests += 1,
            }
        }
        if !self.opts.signature.matches(event) {
            return;
        }
        self.matched += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(Example {
                file: ctx.display.to_string(),
                line: event.line,
            });
        }
        let Some(t) = event.time else {
            self.untimed_matches += 1;
            if ctx.workload_of(event).is_none() {
                self.unknown_service += 1;
            }
            return;
        };
        let start = self.bucketer.start_of(t).0;
        let (key, unknown) = self.key(start, ctx, event, false);
        if unknown || (!self.opts.dims.contains(&Dim::Service) && ctx.workload_of(event).is_none())
        {
            self.unknown_service += 1;
        }
        *self.counts.entry(key).or_default() += 1;
    }

    fn merge(&mut self, later: Self) {
        let remap: Vec<u32> = later
            .strings
            .names
            .iter()
            .map(|n| self.strings.id(n))
            .collect();
        let map_key = |(s, ids): Key| -> Key {
            let mut out = ids;
            for slot in &mut out {
                *slot = remap.get(*slot as usize).copied().unwrap_or(0);
            }
            (s, out)
        };
        for (k, v) in later.counts {
            *self.counts.entry(map_key(k)).or_default() += v;
        }
        for (k, v) in later.requests {
            *self.requests.entry(map_key(k)).or_default() += v;
        }
        self.matched += later.matched;
        self.untimed_matches += later.untimed_matches;
        self.unknown_service += later.unknown_service;
        self.untimed_requests += later.untimed_requests;
        self.first = match (self.first, later.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, later.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let room = MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(later.examples.into_iter().take(room));
    }
}

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Bucket start.
    pub start: Timestamp,
    /// Group values, in the order of [`Counts::dims`].
    pub group: Vec<String>,
    /// Matches.
    pub count: u64,
    /// Requests in the same bucket and traffic group, when counted.
    pub requests: Option<u64>,
}

/// The result of a count.
#[derive(Clone, Debug)]
pub struct Counts {
    /// Canonical signature name.
    pub signature: String,
    /// The bucketer used (for labels).
    pub bucketer: Bucketer,
    /// Group-by dimensions.
    pub dims: Vec<Dim>,
    /// Rows sorted by start, then group.
    pub rows: Vec<Row>,
    /// Matches placed in a bucket.
    pub total: u64,
    /// Matches without a usable timestamp (in no bucket).
    pub untimed: u64,
    /// Matches whose workload is unknown (grouped as `(unknown)`).
    pub unknown_service: u64,
    /// Requests counted, when requested.
    pub requests_total: Option<u64>,
    /// Access rows without a timestamp (not in any request count).
    pub untimed_requests: u64,
    /// Earliest event time seen (any event, matching or not).
    pub first: Option<Timestamp>,
    /// Latest event time seen.
    pub last: Option<Timestamp>,
    /// The first few matches.
    pub examples: Vec<Example>,
}

impl Counts {
    /// Sum of counts per group over all buckets, largest first (ties by name).
    #[must_use]
    pub fn group_totals(&self) -> Vec<(Vec<String>, u64)> {
        let mut m: BTreeMap<&[String], u64> = BTreeMap::new();
        for r in &self.rows {
            *m.entry(&r.group).or_default() += r.count;
        }
        let mut v: Vec<(Vec<String>, u64)> = m.into_iter().map(|(k, n)| (k.to_vec(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Sum of counts (and requests, when known) per bucket start, in time order.
    #[must_use]
    pub fn bucket_totals(&self) -> Vec<(Timestamp, u64, Option<u64>)> {
        let mut m: BTreeMap<Timestamp, (u64, Option<u64>)> = BTreeMap::new();
        // Requests per bucket: each traffic projection once (rows sharing it repeat it).
        let mut seen: std::collections::BTreeSet<(Timestamp, Vec<String>)> = Default::default();
        for r in &self.rows {
            let e = m
                .entry(r.start)
                .or_insert((0, self.requests_total.map(|_| 0)));
            e.0 += r.count;
            if let (Some(n), Some(acc)) = (r.requests, e.1.as_mut()) {
                let proj: Vec<String> = self
                    .dims
                    .iter()
                    .zip(&r.group)
                    .map(|(d, g)| {
                        if d.is_traffic() {
                            g.clone()
                        } else {
                            "*".into()
                        }
                    })
                    .collect();
                if seen.insert((r.start, proj)) {
                    *acc += n;
                }
            }
        }
        m.into_iter().map(|(t, (c, q))| (t, c, q)).collect()
    }
}

fn is_inbound(row: &AccessEntry<'_>) -> bool {
    row.upstream_cluster
        .as_deref()
        .is_some_and(|c| c.starts_with("inbound|") || c.starts_with("InboundPassthrough"))
}

fn fmt_u16(n: u16, buf: &mut [u8; 8]) -> &str {
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// The peer of an event as a short service-like name: `payments` from
/// `http://payments.shop.svc.cluster.local:8080/x` or `outbound|8080||payments.shop.svc.cluster.local`.
#[must_use]
pub fn peer_of<'e>(event: &'e Event<'_>) -> Option<std::borrow::Cow<'e, str>> {
    use std::borrow::Cow;
    match &event.payload {
        Payload::App(app) => app
            .error
            .as_ref()
            .and_then(|e| e.peer.as_deref())
            .map(|p| Cow::Borrowed(short_host(p))),
        Payload::Access(row) => {
            if is_inbound(row) {
                return None;
            }
            if let Some(c) = row.upstream_cluster.as_deref() {
                if let Some(host) = c
                    .strip_prefix("outbound|")
                    .and_then(|r| r.rsplit('|').next())
                    && !host.is_empty()
                {
                    return Some(Cow::Borrowed(short_host(host)));
                }
                if c.contains("Passthrough") {
                    return row
                        .requested_server_name
                        .as_deref()
                        .or(row.authority.as_deref())
                        .or(row.upstream_host.as_deref())
                        .map(|h| Cow::Borrowed(short_host(h)));
                }
            }
            row.authority
                .as_deref()
                .map(|h| Cow::Borrowed(short_host(h)))
        }
        _ => None,
    }
}

/// Strip scheme, path, port and the Kubernetes service suffix from a host.
#[must_use]
pub fn short_host(text: &str) -> &str {
    let t = text.trim();
    let t = t.split_once("://").map_or(t, |(_, rest)| rest);
    let t = t.split(['/', '?']).next().unwrap_or(t);
    let t = t.rsplit_once('@').map_or(t, |(_, h)| h);
    // Bracketed IPv6 `[::1]:80`.
    let t = if let Some(rest) = t.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if t.matches(':').count() == 1 {
        t.split(':').next().unwrap_or(t)
    } else {
        t
    };
    if t.parse::<std::net::IpAddr>().is_ok() {
        return t;
    }
    if t.contains(".svc") || t.ends_with(".cluster.local") {
        return t.split('.').next().unwrap_or(t);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(short_host("http://payments:8080/api/v1/x"), "payments");
        assert_eq!(
            short_host("http://payments.payments.svc.cluster.local:8080/api"),
            "payments"
        );
        assert_eq!(
            short_host("payments.payments.svc.cluster.local"),
            "payments"
        );
        assert_eq!(short_host("10.0.0.1:8080"), "10.0.0.1");
        assert_eq!(short_host("[::1]:443"), "::1");
        assert_eq!(short_host("api.stripe.com:443"), "api.stripe.com");
        assert_eq!(short_host(""), "");
    }

    #[test]
    fn dims() {
        assert_eq!(
            Dim::parse_list("service, peer,service"),
            Ok(vec![Dim::Service, Dim::Peer])
        );
        assert!(Dim::parse_list("colour").is_err());
        let mut b = [0u8; 8];
        assert_eq!(fmt_u16(503, &mut b), "503");
        assert_eq!(fmt_u16(0, &mut b), "0");
    }
}
