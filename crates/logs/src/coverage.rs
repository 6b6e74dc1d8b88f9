//! What was understood in each input and what was skipped, and why.
//!
//! Coverage is the honesty of the tool: every physical line is either part of an event, a
//! blank/ignorable line, or counted as skipped with a reason and (for the first few) its
//! location, so a report can say exactly how much of the input it used.

use crate::pipeline::InputContext;
use meshdoctor_input::{ContentKind, InputFile};
use meshdoctor_model::{Event, Family, FileId, SkipReason, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How many skipped lines are shown per input.
pub const SKIPPED_EXAMPLES: usize = 5;
/// How many distinct workload names are kept per input.
const MAX_WORKLOADS: usize = 256;
const EXCERPT_CHARS: usize = 120;

/// Where a line starts in its file: a landmark for reading a line back without counting
/// every newline before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineMark {
    /// Line number (1-based) of the line that starts at `offset`.
    pub line: u64,
    /// Byte offset of that line's first byte.
    pub offset: u64,
}

/// A skipped line shown as an example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedExample {
    /// 1-based line number.
    pub line: u64,
    /// Why it was skipped.
    pub reason: SkipReason,
    /// The start of the line (lossy UTF-8, control characters escaped).
    pub excerpt: String,
}

/// Coverage of one input.
#[derive(Clone, Debug, Serialize)]
pub struct FileCoverage {
    /// Input id.
    #[serde(skip)]
    pub file: FileId,
    /// Display name.
    #[serde(rename = "file")]
    pub display: String,
    /// Dominant family (`app-log`, `envoy-debug`, ...), or `unknown` / `empty`.
    pub kind: String,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Physical lines.
    pub lines: u64,
    /// Events produced.
    pub events: u64,
    /// Lines not used, with a reason.
    pub skipped: u64,
    /// Blank or ignorable lines (not counted as skipped).
    pub blank_lines: u64,
    /// Lines not parsed because no record in them could match what was asked for (a
    /// `timeline` signature's literals); they are neither events nor skipped.
    pub prefiltered_lines: u64,
    /// Events per family.
    pub families: BTreeMap<Family, u64>,
    /// Skipped lines per reason.
    pub skipped_reasons: BTreeMap<SkipReason, u64>,
    /// The first few skipped lines.
    pub skipped_examples: Vec<SkippedExample>,
    /// Workloads seen.
    pub workloads: BTreeSet<String>,
    /// Earliest event time.
    pub first: Option<Timestamp>,
    /// Latest event time.
    pub last: Option<Timestamp>,
    /// Events whose time is more than a second before the previous event's.
    pub out_of_order: u64,
    /// Events without a timestamp.
    pub untimed_events: u64,
    /// Why reading stopped early, if it did.
    pub read_error: Option<String>,
    /// The first line of each range read from a regular file, in line order (one per range,
    /// so a few per gigabyte): evidence lines are read back from the nearest one.
    #[serde(skip)]
    pub line_marks: Vec<LineMark>,
    #[serde(skip)]
    lines_counted: u64,
    #[serde(skip)]
    first_seen: Option<Timestamp>,
    #[serde(skip)]
    last_seen: Option<Timestamp>,
    /// The workload and pod names the last counted event carried. The events of one file
    /// nearly always repeat them, and then their workload is in `workloads` already: no
    /// set lookup, and no workload built from the pod name, per event.
    #[serde(skip)]
    last_source: Option<(Option<String>, Option<String>)>,
}

impl FileCoverage {
    /// Empty coverage for an input.
    #[must_use]
    pub fn new(input: &InputFile) -> Self {
        FileCoverage {
            file: input.id,
            display: input.display.clone(),
            kind: String::new(),
            bytes: 0,
            lines: 0,
            events: 0,
            skipped: 0,
            blank_lines: 0,
            prefiltered_lines: 0,
            families: BTreeMap::new(),
            skipped_reasons: BTreeMap::new(),
            skipped_examples: Vec::new(),
            workloads: BTreeSet::new(),
            first: None,
            last: None,
            out_of_order: 0,
            untimed_events: 0,
            read_error: None,
            line_marks: Vec::new(),
            lines_counted: 0,
            first_seen: None,
            last_seen: None,
            last_source: None,
        }
        .with_kind(input.content)
    }

    fn with_kind(mut self, content: ContentKind) -> Self {
        if content == ContentKind::Empty {
            self.kind = "empty".into();
        }
        self
    }

    /// Count `count` skipped lines starting at `line`.
    pub fn skip(&mut self, line: u64, count: u32, reason: SkipReason, raw: &[u8]) {
        self.skipped += u64::from(count);
        self.lines_counted += u64::from(count);
        *self.skipped_reasons.entry(reason).or_default() += u64::from(count);
        if self.skipped_examples.len() < SKIPPED_EXAMPLES {
            self.skipped_examples.push(SkippedExample {
                line,
                reason,
                excerpt: excerpt(raw),
            });
        }
    }

    /// Count one event.
    pub fn record_event(&mut self, ctx: &InputContext<'_>, event: &Event<'_>) {
        self.events += 1;
        self.lines_counted += u64::from(event.line_count);
        *self.families.entry(event.payload.family()).or_default() += 1;
        let source = (
            event.origin.workload.as_deref(),
            event.origin.pod.as_deref(),
        );
        let same_source = self
            .last_source
            .as_ref()
            .is_some_and(|(w, p)| w.as_deref() == source.0 && p.as_deref() == source.1);
        if !same_source {
            // The workload follows from these names and the input alone (one input per
            // coverage record), so an event with the same names adds nothing.
            if self.workloads.len() < MAX_WORKLOADS
                && let Some(w) = ctx.workload_of(event)
                && !self.workloads.contains(w.as_ref())
            {
                self.workloads.insert(w.into_owned());
            }
            // The buffers are reused: in an input that interleaves pods this runs per event.
            let (workload, pod) = self.last_source.get_or_insert_with(Default::default);
            remember(workload, source.0);
            remember(pod, source.1);
        }
        match event.time {
            Some(t) => {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
                if self.first_seen.is_none() {
                    self.first_seen = Some(t);
                }
                if let Some(prev) = self.last_seen
                    && t.nanos_since(prev) < -1_000_000_000
                {
                    self.out_of_order += 1;
                }
                self.last_seen = Some(t);
            }
            None => self.untimed_events += 1,
        }
    }

    /// Add `lines` to the line numbers kept (see [`crate::Sink::shift_lines`]).
    pub fn shift_lines(&mut self, lines: u64) {
        for example in &mut self.skipped_examples {
            example.line += lines;
        }
        for mark in &mut self.line_marks {
            mark.line += lines;
        }
    }

    /// Append the coverage of the range that follows.
    pub fn merge(&mut self, later: FileCoverage) {
        self.bytes += later.bytes;
        self.events += later.events;
        self.skipped += later.skipped;
        self.blank_lines += later.blank_lines;
        self.prefiltered_lines += later.prefiltered_lines;
        self.lines_counted += later.lines_counted;
        for (k, v) in later.families {
            *self.families.entry(k).or_default() += v;
        }
        for (k, v) in later.skipped_reasons {
            *self.skipped_reasons.entry(k).or_default() += v;
        }
        let room = SKIPPED_EXAMPLES.saturating_sub(self.skipped_examples.len());
        self.skipped_examples
            .extend(later.skipped_examples.into_iter().take(room));
        for w in later.workloads {
            if self.workloads.len() >= MAX_WORKLOADS {
                break;
            }
            self.workloads.insert(w);
        }
        self.first = min_opt(self.first, later.first);
        self.last = max_opt(self.last, later.last);
        if let (Some(prev), Some(next)) = (self.last_seen, later.first_seen)
            && next.nanos_since(prev) < -1_000_000_000
        {
            self.out_of_order += 1;
        }
        self.out_of_order += later.out_of_order;
        self.untimed_events += later.untimed_events;
        if self.first_seen.is_none() {
            self.first_seen = later.first_seen;
        }
        if later.last_seen.is_some() {
            self.last_seen = later.last_seen;
        }
        if self.read_error.is_none() {
            self.read_error = later.read_error;
        }
        self.line_marks.extend(later.line_marks);
    }

    /// Settle derived fields once all ranges are merged.
    pub(crate) fn finish(&mut self) {
        self.lines = self.lines_counted + self.blank_lines + self.prefiltered_lines;
        if self.kind.is_empty() {
            self.kind = match self.families.iter().max_by_key(|(_, n)| **n) {
                Some((family, _)) => family.as_str().to_string(),
                None if self.lines == 0 => "empty".to_string(),
                None => "unknown".to_string(),
            };
        }
    }
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(EXCERPT_CHARS * 4)]);
    let mut out = String::new();
    for c in text.chars().take(EXCERPT_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Keep a copy of `value` in `slot`, reusing the slot's buffer.
fn remember(slot: &mut Option<String>, value: Option<&str>) {
    match value {
        Some(v) => {
            let copy = slot.get_or_insert_with(String::new);
            copy.clear();
            copy.push_str(v);
        }
        None => *slot = None,
    }
}
