//! The driver: read every input once, cut it into records, parse them in parallel, and hand
//! each event to a [`Sink`] while counting what was understood and what was skipped.
//!
//! Regular files are cut into byte ranges that are read with positioned reads and processed
//! on the rayon pool; gzip files and stdin are streamed in blocks. Memory stays bounded by
//! the range size times the number of threads, whatever the input size. Results do not
//! depend on how the input was cut: ranges start at record boundaries (see
//! [`crate::record`]) and sinks are merged in input order.

use crate::record::{MAX_CONTINUATION_LINES, MAX_LINE_BYTES, is_continuation};
use crate::wrapper::{Envelope, Unwrapped, unwrap_line};
use crate::{coverage::FileCoverage, dispatch::parse_record};
use meshdoctor_input::{Access, InputFile, PathNames, open_stream, read_range};
use meshdoctor_model::{Event, Family, FileId, Origin, SkipReason};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;

/// Receives events. One sink is made per unit of parallel work; sinks are merged in input
/// order, so a sink sees a deterministic sequence whatever the thread count.
pub trait Sink: Send + Sized {
    /// Called once per parsed record.
    fn event(&mut self, input: &InputContext<'_>, event: &Event<'_>);
    /// Append the sink of the work that follows this one in input order.
    fn merge(&mut self, later: Self);
}

/// A sink that keeps nothing (for a pure coverage scan).
#[derive(Default, Debug)]
pub struct NoSink;

impl Sink for NoSink {
    fn event(&mut self, _: &InputContext<'_>, _: &Event<'_>) {}
    fn merge(&mut self, _: Self) {}
}

/// What a sink knows about the input an event came from.
#[derive(Debug, Clone, Copy)]
pub struct InputContext<'a> {
    /// Input id.
    pub file: FileId,
    /// Display name.
    pub display: &'a str,
    /// Names implied by the path.
    pub path_names: &'a PathNames,
    /// The `--service` flag, the last resort for a workload name.
    pub service_flag: Option<&'a str>,
}

impl InputContext<'_> {
    /// The workload an event belongs to: named in the record, else by its pod, else by the
    /// path, else by `--service`.
    #[must_use]
    pub fn workload_of<'e>(&self, event: &'e Event<'_>) -> Option<Cow<'e, str>> {
        if let Some(w) = event.origin.workload.as_deref() {
            return Some(Cow::Borrowed(w));
        }
        if let Some(pod) = event.origin.pod.as_deref() {
            return Some(Cow::Owned(meshdoctor_input::workload_from_pod(pod)));
        }
        self.path_names
            .workload
            .as_deref()
            .or(self.service_flag)
            .map(|w| Cow::Owned(w.to_string()))
    }
}

/// A callback told how many more input bytes were processed (for progress bars). Called
/// from worker threads.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// Options for [`run`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Told about processed bytes as work completes.
    pub progress: Option<Progress>,
    /// Parse every record as this family only (`--kind`).
    pub forced: Option<Family>,
    /// Workload name for inputs that name none (`--service`).
    pub service: Option<String>,
    /// Size of the byte ranges regular files are cut into.
    pub range_bytes: usize,
    /// Only records whose text contains a match are parsed and given to the sink (issue 7:
    /// `timeline` at close to `rg -c` speed). Skipped lines are counted, not parsed.
    /// Leave `None` when a sink needs every record (`timeline --rate` counts all access rows).
    pub prefilter: Option<std::sync::Arc<aho_corasick::AhoCorasick>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            progress: None,
            forced: None,
            service: None,
            range_bytes: 8 * 1024 * 1024,
            prefilter: None,
        }
    }
}

/// What [`run`] returns: the merged sink and one coverage record per log input.
#[derive(Debug)]
pub struct RunOutput<S> {
    /// The merged sink.
    pub sink: S,
    /// Coverage per input, in input order.
    pub coverage: Vec<FileCoverage>,
}

enum Task {
    Range {
        file: usize,
        start: u64,
        end: u64,
        first_line: u64,
    },
    Stream {
        file: usize,
    },
}

/// Read all `inputs` whose content is a log and feed their events to sinks made by
/// `make_sink`. Inputs that fail to read are reported in their coverage record.
pub fn run<S: Sink>(
    inputs: &[InputFile],
    options: &RunOptions,
    make_sink: impl Fn() -> S + Sync,
) -> RunOutput<S> {
    let log_inputs: Vec<usize> = (0..inputs.len())
        .filter(|&i| inputs[i].content.is_log())
        .collect();
    let mut tasks = Vec::new();
    let mut line_errors: BTreeMap<usize, String> = BTreeMap::new();
    for &idx in &log_inputs {
        match inputs[idx].access {
            Access::Plain { len } => match plan_ranges(&inputs[idx], len, options.range_bytes) {
                Ok(ranges) => {
                    for (start, end, first_line) in ranges {
                        tasks.push(Task::Range {
                            file: idx,
                            start,
                            end,
                            first_line,
                        });
                    }
                }
                Err(e) => {
                    line_errors.insert(idx, e.to_string());
                }
            },
            Access::Gzip | Access::Stdin => tasks.push(Task::Stream { file: idx }),
        }
    }

    let fold_identity = || (make_sink(), BTreeMap::<usize, FileCoverage>::new());
    let (sink, mut cov) = tasks
        .par_iter()
        .fold(fold_identity, |(mut sink, mut covs), task| {
            let (file, part) = run_task(task, inputs, options, &mut sink);
            merge_cov(&mut covs, file, part);
            (sink, covs)
        })
        .reduce(fold_identity, |(mut sink_a, mut cov_a), (sink_b, cov_b)| {
            sink_a.merge(sink_b);
            for (file, part) in cov_b {
                merge_cov(&mut cov_a, file, part);
            }
            (sink_a, cov_a)
        });

    let coverage = log_inputs
        .iter()
        .map(|&idx| {
            let mut c = cov
                .remove(&idx)
                .unwrap_or_else(|| FileCoverage::new(&inputs[idx]));
            if let Some(err) = line_errors.remove(&idx) {
                c.read_error.get_or_insert(err);
            }
            c.finish();
            c
        })
        .collect();
    RunOutput { sink, coverage }
}

fn merge_cov(covs: &mut BTreeMap<usize, FileCoverage>, file: usize, part: FileCoverage) {
    match covs.get_mut(&file) {
        Some(existing) => existing.merge(part),
        None => {
            covs.insert(file, part);
        }
    }
}

/// Cut a regular file into ranges and count the lines before each, so every range knows its
/// first line number. Counting newlines is an order of magnitude cheaper than parsing.
fn plan_ranges(
    input: &InputFile,
    len: u64,
    range_bytes: usize,
) -> std::io::Result<Vec<(u64, u64, u64)>> {
    let range = range_bytes.max(1024) as u64;
    let n = len.div_ceil(range).max(1);
    let bounds: Vec<(u64, u64)> = (0..n)
        .map(|i| (i * range, ((i + 1) * range).min(len)))
        .collect();
    if bounds.len() == 1 {
        return Ok(vec![(0, len, 1)]);
    }
    let counts: Vec<std::io::Result<u64>> = bounds
        .par_iter()
        .map(|&(start, end)| {
            let file = std::fs::File::open(&input.path)?;
            let mut buf = Vec::new();
            let mut count = 0u64;
            let mut pos = start;
            while pos < end {
                let want = usize::try_from((end - pos).min(1 << 20)).unwrap_or(1 << 20);
                read_range(&file, pos, want, &mut buf)?;
                if buf.is_empty() {
                    break;
                }
                count += memchr::memchr_iter(b'\n', &buf).count() as u64;
                pos += buf.len() as u64;
            }
            Ok(count)
        })
        .collect();
    let mut out = Vec::with_capacity(bounds.len());
    let mut line = 1;
    for ((start, end), count) in bounds.into_iter().zip(counts) {
        out.push((start, end, line));
        line += count?;
    }
    Ok(out)
}

fn run_task<S: Sink>(
    task: &Task,
    inputs: &[InputFile],
    options: &RunOptions,
    sink: &mut S,
) -> (usize, FileCoverage) {
    match *task {
        Task::Range {
            file,
            start,
            end,
            first_line,
        } => {
            let input = &inputs[file];
            let mut cov = FileCoverage::new(input);
            if let Err(e) = process_range(input, start, end, first_line, options, sink, &mut cov) {
                cov.read_error.get_or_insert(e.to_string());
            }
            if let Some(progress) = &options.progress {
                (progress.0)(end - start);
            }
            (file, cov)
        }
        Task::Stream { file } => {
            let input = &inputs[file];
            let mut cov = FileCoverage::new(input);
            if let Err(e) = process_stream(input, options, sink, &mut cov) {
                cov.read_error.get_or_insert(e.to_string());
            }
            (file, cov)
        }
    }
}

fn process_range<S: Sink>(
    input: &InputFile,
    start: u64,
    end: u64,
    first_line: u64,
    options: &RunOptions,
    sink: &mut S,
    cov: &mut FileCoverage,
) -> std::io::Result<()> {
    let file = std::fs::File::open(&input.path)?;
    let file_len = file.metadata()?.len();
    cov.bytes += end - start;
    // Read from one byte early: a line that straddles `start` belongs to the previous range,
    // and the line starting exactly at `start` is ours only if the byte before it is '\n'.
    let base = start.saturating_sub(1);
    let mut buf = Vec::new();
    let want = usize::try_from(end - base).unwrap_or(usize::MAX);
    read_range(&file, base, want, &mut buf)?;
    let ctx = context(input, options);
    let mut line = first_line;
    let mut done = 0usize;
    if start > 0 {
        match memchr::memchr(b'\n', &buf) {
            Some(nl) => {
                done = nl + 1;
                if nl > 0 {
                    // That newline is at or after `start`, so it was counted in this range.
                    line += 1;
                }
            }
            // The whole range is inside one line that started earlier.
            None => return Ok(()),
        }
    }
    let mut cursor = Cursor {
        line,
        skip_leading_continuations: start > 0,
    };
    // A range owns the records whose first line starts inside it; the last one may run on
    // past `end`, so read on in blocks until it is complete.
    let limit = buf.len();
    loop {
        let at_eof = base + buf.len() as u64 >= file_len;
        let step = process_buffer(
            &buf[done..],
            limit.saturating_sub(done),
            at_eof,
            &ctx,
            options,
            &mut cursor,
            sink,
            cov,
        );
        done += step.consumed;
        if step.complete || at_eof {
            break;
        }
        let extra = 256 * 1024;
        let mut more = Vec::new();
        read_range(&file, base + buf.len() as u64, extra, &mut more)?;
        if more.is_empty() {
            break;
        }
        buf.extend_from_slice(&more);
        if buf.len() - done > MAX_LINE_BYTES * 8 {
            // A pathological record: stop extending; the rest belongs to the next range.
            break;
        }
    }
    Ok(())
}

fn process_stream<S: Sink>(
    input: &InputFile,
    options: &RunOptions,
    sink: &mut S,
    cov: &mut FileCoverage,
) -> std::io::Result<()> {
    let mut reader = open_stream(input)?;
    let ctx = context(input, options);
    let mut cursor = Cursor {
        line: 1,
        skip_leading_continuations: false,
    };
    let block = options.range_bytes.clamp(1024, 16 << 20);
    let mut buf: Vec<u8> = Vec::with_capacity(block * 2);
    let mut at_eof = false;
    while !at_eof {
        let old = buf.len();
        buf.resize(old + block, 0);
        let mut filled = old;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    at_eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    buf.truncate(filled);
                    cov.bytes += (filled - old) as u64;
                    // Use what was read before the error (a truncated .gz still has lines).
                    process_buffer(&buf, buf.len(), true, &ctx, options, &mut cursor, sink, cov);
                    return Err(e);
                }
            }
        }
        buf.truncate(filled);
        cov.bytes += (filled - old) as u64;
        if let Some(progress) = &options.progress {
            (progress.0)((filled - old) as u64);
        }
        let step = process_buffer(
            &buf,
            buf.len(),
            at_eof,
            &ctx,
            options,
            &mut cursor,
            sink,
            cov,
        );
        buf.drain(..step.consumed);
        if !at_eof && buf.len() > MAX_LINE_BYTES * 8 {
            // Nothing ended in 8 MiB: force progress by treating it as complete.
            let step = process_buffer(&buf, buf.len(), true, &ctx, options, &mut cursor, sink, cov);
            buf.drain(..step.consumed);
        }
    }
    Ok(())
}

fn context<'a>(input: &'a InputFile, options: &'a RunOptions) -> InputContext<'a> {
    InputContext {
        file: input.id,
        display: &input.display,
        path_names: &input.names,
        service_flag: options.service.as_deref(),
    }
}

struct Cursor {
    /// Line number of the next physical line.
    line: u64,
    /// At the start of a range, continuation lines belong to the previous range.
    skip_leading_continuations: bool,
}

struct Step {
    /// Bytes fully handled (the start of an unfinished trailing record, if any).
    consumed: usize,
    /// True when every record starting before the limit was finished.
    complete: bool,
}

/// True for the first line of an event copied from Splunk's list view (`{ [-]`), whose
/// `key: value` lines up to a lone `}` belong to one record. This is the one place where
/// record boundaries depend on context; such pastes are small, so they are never cut into
/// ranges.
fn opens_list_view(inner: &str) -> bool {
    let t = inner.trim();
    t == "{ [-]" || t == "{ [+]"
}

/// The record being assembled.
struct Pending<'b> {
    /// Inside a Splunk list-view block: every line continues until a lone `}`.
    list_view_open: bool,
    line: u64,
    line_count: u32,
    dropped_continuations: u32,
    start: usize,
    text: PendingText,
    env: Envelope<'b>,
}

enum PendingText {
    /// Contiguous in the buffer: `buf[from..to]`.
    Slice { from: usize, to: usize },
    /// Had to be assembled (wrappers on continuation lines, unescaped JSON, lossy UTF-8).
    Owned(String),
}

#[allow(clippy::too_many_arguments)]
fn process_buffer<S: Sink>(
    buf: &[u8],
    limit: usize,
    at_eof: bool,
    ctx: &InputContext<'_>,
    options: &RunOptions,
    cursor: &mut Cursor,
    sink: &mut S,
    cov: &mut FileCoverage,
) -> Step {
    let mut pos = 0usize;
    let mut pending: Option<Pending<'_>> = None;
    let mut line_no = cursor.line;
    // Splunk list-view pastes group records by context, which jumping straight to a literal
    // would break; they are small, so such buffers are simply read in full.
    let prefilter = options
        .prefilter
        .as_deref()
        .filter(|_| memchr::memmem::find(buf, b"{ [").is_none());
    loop {
        if let Some(pf) = prefilter
            && pending.is_none()
            && !cursor.skip_leading_continuations
            && pos < buf.len()
        {
            // The first record start at or after `limit`: records from there on belong to the
            // next range, and continuation lines before it to this one (as in the full path).
            let first_line_after = if pos >= limit {
                Some(pos)
            } else {
                memchr::memchr(b'\n', &buf[limit - 1..]).map(|i| limit + i)
            };
            let stop = first_line_after.and_then(|from| next_record_start(buf, from, at_eof));
            let stop = match stop {
                Some(stop) => stop,
                // The buffer ends before we know: scan up to its last full line, then ask for more.
                None if at_eof => buf.len(),
                None => usize::MAX,
            };
            // A hit in the unfinished last line cannot be placed: that line may be a
            // continuation whose prefix the buffer end cut off. Search complete lines only.
            let search_end = if at_eof {
                buf.len()
            } else {
                memchr::memrchr(b'\n', &buf[pos..]).map_or(pos, |i| pos + i + 1)
            };
            let rec = pf
                .find(&buf[pos..search_end])
                .map(|m| record_start(buf, pos, pos + m.start()))
                .filter(|rs| *rs < stop);
            match rec {
                Some(rs) => {
                    if rs > pos {
                        let n = count_newlines(&buf[pos..rs]);
                        line_no += n;
                        cov.prefiltered_lines += n;
                        pos = rs;
                    }
                }
                None => {
                    let (end, complete) = if stop <= buf.len() && (stop < buf.len() || at_eof) {
                        (stop, true)
                    } else if at_eof {
                        (buf.len(), true)
                    } else {
                        // More input is needed; resume at the start of the last record, so a
                        // literal cut by the buffer end is searched again whole, in context.
                        // The last line is cut by the buffer end and cannot be classified
                        // yet: go back to the record holding the last complete line.
                        let last = memchr::memrchr(b'\n', &buf[pos..]).map_or(pos, |i| pos + i + 1);
                        let resume = match last.checked_sub(1).filter(|&nl| nl > pos) {
                            Some(nl) => {
                                let prev = memchr::memrchr(b'\n', &buf[pos..nl])
                                    .map_or(pos, |i| pos + i + 1);
                                record_start(buf, pos, prev)
                            }
                            None => pos,
                        };
                        (resume, false)
                    };
                    let n = count_newlines(&buf[pos..end]);
                    let n = if end == buf.len() && at_eof && !buf.ends_with(b"\n") && end > pos {
                        n + 1
                    } else {
                        n
                    };
                    line_no += n;
                    cov.prefiltered_lines += n;
                    cursor.line = line_no;
                    return Step {
                        consumed: end,
                        complete,
                    };
                }
            }
        }
        let line_start = pos;
        if line_start >= buf.len() {
            break;
        }
        let (line_end, next) = match memchr::memchr(b'\n', &buf[line_start..]) {
            Some(i) => (line_start + i, line_start + i + 1),
            None if at_eof => (buf.len(), buf.len()),
            None => {
                // An incomplete last line: whatever it is, it is not finished yet.
                let consumed = pending.as_ref().map_or(line_start, |p| p.start);
                cursor.line = pending.as_ref().map_or(line_no, |p| p.line);
                return Step {
                    consumed,
                    complete: line_start >= limit && pending.is_none(),
                };
            }
        };
        let mut raw = &buf[line_start..line_end];
        if raw.last() == Some(&b'\r') {
            raw = &raw[..raw.len() - 1];
        }
        let this_line = line_no;
        // Decide what this physical line is.
        let classified = classify_line(raw, line_start);
        let inner_text = match &classified {
            Line::Text { inner, .. } => Some(*inner),
            Line::Owned { inner, .. } => Some(inner.as_str()),
            Line::Ignorable | Line::Bad(_) => None,
        };
        let in_list_view = pending.as_ref().is_some_and(|p| p.list_view_open);
        let continues = in_list_view || inner_text.is_some_and(|t| is_continuation(t.as_bytes()));
        let closes_list_view = in_list_view && inner_text.is_some_and(|t| t.trim() == "}");
        if continues {
            if cursor.skip_leading_continuations {
                // Owned by the previous range.
                pos = next;
                line_no += 1;
                continue;
            }
            if let Some(p) = pending.as_mut() {
                append_continuation(p, classified, buf, line_end, raw.len());
                if closes_list_view {
                    p.list_view_open = false;
                }
            } else if raw.iter().all(u8::is_ascii_whitespace) {
                cov.blank_lines += 1;
            } else {
                cov.skip(this_line, 1, SkipReason::OrphanContinuation, raw);
            }
            pos = next;
            line_no += 1;
            continue;
        }
        if cursor.skip_leading_continuations {
            cursor.skip_leading_continuations = false;
            if prefilter.is_some() {
                // The first record of this range: let the prefilter decide about it.
                pos = line_start;
                continue;
            }
        }
        // A new record starts here: the previous one is complete.
        if let Some(p) = pending.take() {
            finish_record(p, buf, ctx, options, sink, cov);
            if prefilter.is_some() {
                // Let the prefilter decide whether this new record is worth parsing.
                pos = line_start;
                continue;
            }
        }
        if line_start >= limit {
            cursor.line = this_line;
            return Step {
                consumed: line_start,
                complete: true,
            };
        }
        match classified {
            Line::Ignorable => {
                cov.blank_lines += 1;
            }
            Line::Bad(reason) => {
                cov.skip(this_line, 1, reason, raw);
            }
            Line::Text {
                inner_from,
                inner,
                env,
            } => {
                let to = inner_from + inner.len();
                pending = Some(Pending {
                    list_view_open: opens_list_view(inner),
                    line: this_line,
                    line_count: 1,
                    dropped_continuations: 0,
                    start: line_start,
                    text: PendingText::Slice {
                        from: inner_from,
                        to,
                    },
                    env,
                });
            }
            Line::Owned { inner, env } => {
                pending = Some(Pending {
                    list_view_open: opens_list_view(&inner),
                    line: this_line,
                    line_count: 1,
                    dropped_continuations: 0,
                    start: line_start,
                    text: PendingText::Owned(inner),
                    env,
                });
            }
        }
        pos = next;
        line_no += 1;
    }
    // End of buffer.
    if let Some(p) = pending.take() {
        if at_eof {
            finish_record(p, buf, ctx, options, sink, cov);
        } else {
            cursor.line = p.line;
            return Step {
                consumed: p.start,
                complete: false,
            };
        }
    }
    cursor.line = line_no;
    Step {
        consumed: buf.len(),
        complete: at_eof,
    }
}

enum Line<'b> {
    /// Text borrowed from the buffer; `inner_from` is its offset in the buffer.
    Text {
        inner_from: usize,
        inner: &'b str,
        env: Envelope<'b>,
    },
    /// Text that had to be copied.
    Owned { inner: String, env: Envelope<'b> },
    /// Carries no record (Splunk preview rows).
    Ignorable,
    /// Cannot be read as text.
    Bad(SkipReason),
}

fn classify_line(raw: &[u8], offset: usize) -> Line<'_> {
    if raw.len() > MAX_LINE_BYTES {
        return Line::Bad(SkipReason::TooLong);
    }
    if memchr::memchr(0, raw).is_some() {
        return Line::Bad(SkipReason::Binary);
    }
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(_) => {
            let lossy = String::from_utf8_lossy(raw);
            // Mostly-garbage lines are binary junk; a stray bad byte in a message is not.
            let bad = lossy
                .chars()
                .filter(|&c| c == char::REPLACEMENT_CHARACTER)
                .count();
            if bad * 8 > lossy.chars().count().max(1) {
                return Line::Bad(SkipReason::InvalidUtf8);
            }
            return match unwrap_line(&lossy) {
                Unwrapped::Borrowed(inner, env) => Line::Owned {
                    inner: inner.to_string(),
                    env: own_env(env),
                },
                Unwrapped::Owned(inner, env) => Line::Owned { inner, env },
                Unwrapped::Ignorable => Line::Ignorable,
            };
        }
    };
    match unwrap_line(text) {
        Unwrapped::Borrowed(inner, env) => {
            let inner_from = offset + (inner.as_ptr() as usize - text.as_ptr() as usize);
            Line::Text {
                inner_from,
                inner,
                env,
            }
        }
        Unwrapped::Owned(inner, env) => Line::Owned { inner, env },
        Unwrapped::Ignorable => Line::Ignorable,
    }
}

fn own_env(env: Envelope<'_>) -> Envelope<'static> {
    Envelope {
        collector_time: env.collector_time,
        pod: env.pod.map(|c| Cow::Owned(c.into_owned())),
        container: env.container.map(|c| Cow::Owned(c.into_owned())),
        namespace: env.namespace.map(|c| Cow::Owned(c.into_owned())),
    }
}

fn append_continuation(
    p: &mut Pending<'_>,
    line: Line<'_>,
    buf: &[u8],
    line_end: usize,
    raw_len: usize,
) {
    if p.line_count >= MAX_CONTINUATION_LINES {
        p.dropped_continuations += 1;
        p.line_count += 1;
        return;
    }
    p.line_count += 1;
    match (&mut p.text, line) {
        // The common case: an unwrapped continuation right after the record so far.
        (
            PendingText::Slice { to, .. },
            Line::Text {
                inner_from, inner, ..
            },
        ) if inner_from == *to + 1 && inner.len() == raw_len => {
            *to = inner_from + inner.len();
            let _ = line_end;
        }
        (PendingText::Slice { from, to }, line) => {
            let mut owned = String::from_utf8_lossy(&buf[*from..*to]).into_owned();
            push_line(&mut owned, line);
            p.text = PendingText::Owned(owned);
        }
        (PendingText::Owned(owned), line) => push_line(owned, line),
    }
}

fn push_line(owned: &mut String, line: Line<'_>) {
    owned.push('\n');
    match line {
        Line::Text { inner, .. } => owned.push_str(inner),
        Line::Owned { inner, .. } => owned.push_str(&inner),
        Line::Ignorable | Line::Bad(_) => {}
    }
}

fn finish_record<S: Sink>(
    p: Pending<'_>,
    buf: &[u8],
    ctx: &InputContext<'_>,
    options: &RunOptions,
    sink: &mut S,
    cov: &mut FileCoverage,
) {
    if p.dropped_continuations > 0 {
        let first_dropped = p.line + u64::from(MAX_CONTINUATION_LINES);
        cov.skip(
            first_dropped,
            p.dropped_continuations,
            SkipReason::TooLong,
            b"(continuation lines beyond the per-record limit)",
        );
    }
    let owned_storage;
    let text: &str = match &p.text {
        // The slice was validated as UTF-8 line by line and joined by '\n'.
        PendingText::Slice { from, to } => match std::str::from_utf8(&buf[*from..*to]) {
            Ok(t) => t,
            Err(_) => {
                owned_storage = String::from_utf8_lossy(&buf[*from..*to]).into_owned();
                &owned_storage
            }
        },
        PendingText::Owned(s) => s,
    };
    let parsed_lines = p.line_count - p.dropped_continuations;
    match parse_record(text, options.forced) {
        Ok(parsed) => {
            let origin = merge_origin(parsed.origin, &p.env);
            let event = Event {
                line: p.line,
                line_count: parsed_lines,
                time: parsed.time.or(p.env.collector_time),
                collector_time: p.env.collector_time,
                origin,
                payload: parsed.payload,
            };
            cov.record_event(ctx, &event);
            sink.event(ctx, &event);
        }
        Err(reason) => {
            let first = text.split('\n').next().unwrap_or("");
            cov.skip(p.line, parsed_lines, reason, first.as_bytes());
        }
    }
}

fn merge_origin<'a>(parsed: Origin<'a>, env: &'a Envelope<'_>) -> Origin<'a> {
    Origin {
        namespace: parsed
            .namespace
            .or_else(|| env.namespace.as_deref().map(Cow::Borrowed)),
        pod: parsed.pod.or_else(|| env.pod.as_deref().map(Cow::Borrowed)),
        container: parsed
            .container
            .or_else(|| env.container.as_deref().map(Cow::Borrowed)),
        workload: parsed.workload,
    }
}

/// Start of the record containing byte `hit`: walk back over continuation lines (bounded),
/// never before `floor` (a record start or the start of the buffer).
fn record_start(buf: &[u8], floor: usize, hit: usize) -> usize {
    let mut ls = memchr::memrchr(b'\n', &buf[floor..hit]).map_or(floor, |i| floor + i + 1);
    for _ in 0..MAX_CONTINUATION_LINES {
        if ls <= floor {
            return floor;
        }
        let end = memchr::memchr(b'\n', &buf[ls..]).map_or(buf.len(), |i| ls + i);
        let mut raw = &buf[ls..end];
        if raw.last() == Some(&b'\r') {
            raw = &raw[..raw.len() - 1];
        }
        let cont = match classify_line(raw, ls) {
            Line::Text { inner, .. } => is_continuation(inner.as_bytes()),
            Line::Owned { inner, .. } => is_continuation(inner.as_bytes()),
            Line::Ignorable | Line::Bad(_) => false,
        };
        if !cont {
            return ls;
        }
        ls = memchr::memrchr(b'\n', &buf[floor..ls - 1]).map_or(floor, |i| floor + i + 1);
    }
    ls
}

/// The first line starting at or after `from` (itself a line start) that begins a record,
/// or `buf.len()` at end of input; `None` when the buffer ends first and more may come.
fn next_record_start(buf: &[u8], from: usize, at_eof: bool) -> Option<usize> {
    let mut ls = from;
    for _ in 0..=MAX_CONTINUATION_LINES {
        if ls >= buf.len() {
            return at_eof.then_some(buf.len());
        }
        let Some(nl) = memchr::memchr(b'\n', &buf[ls..]) else {
            // An unterminated last line: only final at end of input.
            return at_eof.then(|| {
                if line_continues(&buf[ls..], ls) {
                    buf.len()
                } else {
                    ls
                }
            });
        };
        let end = ls + nl;
        if !line_continues(&buf[ls..end], ls) {
            return Some(ls);
        }
        ls = end + 1;
    }
    Some(ls)
}

fn line_continues(raw: &[u8], offset: usize) -> bool {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    match classify_line(raw, offset) {
        Line::Text { inner, .. } => is_continuation(inner.as_bytes()),
        Line::Owned { inner, .. } => is_continuation(inner.as_bytes()),
        Line::Ignorable | Line::Bad(_) => false,
    }
}

/// Newlines in a skipped region (for line numbers and coverage).
fn count_newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}
