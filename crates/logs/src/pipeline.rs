//! The driver: read every input once, cut it into records, parse them in parallel, and hand
//! each event to a [`Sink`] while counting what was understood and what was skipped.
//!
//! Regular files are cut into byte ranges, read from a memory mapping (or, with
//! `use_mmap` off, in blocks by positioned reads into a buffer each worker reuses); gzip files
//! and stdin are streamed in the same blocks. Memory stays bounded by the block size times the
//! number of threads plus the sinks waiting to be merged, whatever the input size. Results do not
//! depend on how the input was cut: ranges start at record boundaries (see
//! [`crate::record`]), each range numbers its lines from its own start, and the sink of each
//! range is merged in input order after being shifted by the lines of the ranges before it,
//! which are known by then. So every byte is parsed once, and lines are counted while they
//! are read; only a range whose read ran into the end of the file, or stopped at a record
//! longer than 8 MiB, counts its own newlines again (see `newlines_in`), because the
//! next range's first record was never seen.

use crate::record::{MAX_CONTINUATION_LINES, MAX_LINE_BYTES, is_continuation};
use crate::wrapper::{Envelope, Unwrapped, unwrap_line};
use crate::{
    coverage::{FileCoverage, LineMark},
    dispatch::parse_record,
};
use meshdoctor_input::{
    Access, InputFile, MappedFile, PathNames, open_stream, read_at_most, read_full,
};
use meshdoctor_model::{Event, Family, FileId, Origin, SkipReason};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// Receives events. One sink is made per unit of work (a byte range of a file, or a whole
/// stream); sinks are merged in input order, so a sink sees a deterministic sequence whatever
/// the thread count.
pub trait Sink: Send + Sized {
    /// Called once per parsed record.
    fn event(&mut self, input: &InputContext<'_>, event: &Event<'_>);
    /// Append the sink of the work that follows this one in input order.
    fn merge(&mut self, later: Self);
    /// Add `lines` to every line number this sink kept. Line numbers of a range are counted
    /// from the range's start; before the range's sink is merged, the pipeline shifts it by
    /// the lines of the same file before the range. All lines in one such sink are of one file.
    fn shift_lines(&mut self, lines: u64);
}

/// A sink that keeps nothing (for a pure coverage scan).
#[derive(Default, Debug)]
pub struct NoSink;

impl Sink for NoSink {
    fn event(&mut self, _: &InputContext<'_>, _: &Event<'_>) {}
    fn merge(&mut self, _: Self) {}
    fn shift_lines(&mut self, _: u64) {}
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

impl<'a> InputContext<'a> {
    /// The workload an event belongs to: named in the record, else by its pod, else by the
    /// path, else by `--service`. Borrowed unless it has to be derived from a pod name, so
    /// asking per event costs no allocation in the usual cases.
    #[must_use]
    pub fn workload_of<'e>(&self, event: &'e Event<'_>) -> Option<Cow<'e, str>>
    where
        'a: 'e,
    {
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
            .map(Cow::Borrowed)
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
    /// Size of the byte ranges regular files are cut into (the unit of parallel work).
    pub range_bytes: usize,
    /// Bytes read at a time within a range or stream. Small enough that a block stays in
    /// the core's cache while the prefilter, the line splitter and the parsers walk over it
    /// (8 MiB blocks made every pass a trip to main memory), large enough that per-block
    /// work is negligible. Tests set it tiny to cut records at every possible place.
    pub block_bytes: usize,
    /// Read regular files through a memory mapping (no copy out of the page cache); off,
    /// they are read in blocks. See `meshdoctor_input::MappedFile` for the one hazard.
    pub use_mmap: bool,
    /// Only records whose text contains a match are parsed and given to the sink (issue 7:
    /// `timeline` at close to `rg -c` speed). Skipped lines are counted, not parsed.
    /// Leave `None` when a sink needs every record (`timeline --rate` counts all access rows).
    pub prefilter: Option<std::sync::Arc<Prefilter>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            progress: None,
            forced: None,
            service: None,
            range_bytes: 8 * 1024 * 1024,
            block_bytes: 256 * 1024,
            use_mmap: true,
            prefilter: None,
        }
    }
}

/// Literals of which a record must contain one to be worth parsing, compiled once.
#[derive(Debug)]
pub struct Prefilter {
    automaton: aho_corasick::AhoCorasick,
}

impl Prefilter {
    /// Compile `literals` (case-sensitive; any one suffices).
    ///
    /// # Errors
    /// Only when the automaton would be too large, which a few literals never are.
    pub fn new<L: AsRef<str>>(literals: &[L]) -> Result<Self, aho_corasick::BuildError> {
        let automaton = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(literals.iter().map(AsRef::as_ref))?;
        Ok(Prefilter { automaton })
    }
}

/// How much of an input's start is searched for a Splunk list-view opener.
const LIST_VIEW_PROBE_BYTES: u64 = 64 * 1024;

/// True when an input starts like a Splunk list-view paste (an opener in its first 64 KiB).
/// Such pastes group lines into records by context, which jumping straight to a literal
/// would break; they are small, so they are read in full. Decided once per input, from
/// its start, so every range of a file (and its gzip copy) decides alike. Stdin cannot be
/// read twice: its stream decides on its first block instead ([`head_opens_list_view`]).
fn looks_like_list_view(input: &InputFile) -> bool {
    let Ok(stream) = open_stream(input) else {
        return false;
    };
    let mut head = Vec::new();
    if stream
        .take(LIST_VIEW_PROBE_BYTES)
        .read_to_end(&mut head)
        .is_err()
    {
        return false;
    }
    head_opens_list_view(&head)
}

/// True when a list-view opener line is in the first 64 KiB of `head`.
fn head_opens_list_view(head: &[u8]) -> bool {
    let head = &head[..head.len().min(LIST_VIEW_PROBE_BYTES as usize)];
    memchr::memmem::find_iter(head, b"{ [")
        .any(|at| opens_list_view(&String::from_utf8_lossy(line_at(head, at))))
}

/// The line of `buf` that contains byte `at`.
fn line_at(buf: &[u8], at: usize) -> &[u8] {
    let from = memchr::memrchr(b'\n', &buf[..at]).map_or(0, |i| i + 1);
    let to = memchr::memchr(b'\n', &buf[at..]).map_or(buf.len(), |i| at + i);
    &buf[from..to]
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
    Range { file: usize, start: u64, end: u64 },
    Stream { file: usize },
}

/// Per input: whether the prefilter may be used on it (not on Splunk list-view pastes).
type PrefilterUse = Vec<bool>;

impl Task {
    fn file(&self) -> usize {
        match *self {
            Task::Range { file, .. } | Task::Stream { file } => file,
        }
    }
}

/// How many tasks may finish ahead of the oldest unmerged one. Finished sinks wait in memory
/// until they can be merged in order; this bounds how many wait.
const MAX_TASKS_AHEAD: usize = 16;

/// What one task produced, waiting to be merged in input order.
struct TaskOutput<S> {
    file: usize,
    sink: S,
    coverage: FileCoverage,
    /// Newlines in the byte range the task owns: the line offset of the file's next range.
    lines: u64,
}

/// Merges task outputs in task order, shifting each by the lines before it in its file.
struct OrderedMerge<S> {
    next: usize,
    waiting: BTreeMap<usize, TaskOutput<S>>,
    sink: S,
    coverage: BTreeMap<usize, FileCoverage>,
    lines_before: BTreeMap<usize, u64>,
}

impl<S: Sink> OrderedMerge<S> {
    fn accept(&mut self, index: usize, output: TaskOutput<S>) {
        self.waiting.insert(index, output);
        while let Some(mut out) = self.waiting.remove(&self.next) {
            let before = self.lines_before.entry(out.file).or_default();
            out.sink.shift_lines(*before);
            out.coverage.shift_lines(*before);
            *before += out.lines;
            self.sink.merge(out.sink);
            match self.coverage.get_mut(&out.file) {
                Some(existing) => existing.merge(out.coverage),
                None => {
                    self.coverage.insert(out.file, out.coverage);
                }
            }
            self.next += 1;
        }
    }
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
    let mut prefilter_use: PrefilterUse = vec![false; inputs.len()];
    if options.prefilter.is_some() {
        for &idx in &log_inputs {
            // Stdin cannot be read twice: its stream looks at its first block itself.
            prefilter_use[idx] =
                inputs[idx].access == Access::Stdin || !looks_like_list_view(&inputs[idx]);
        }
    }
    for &idx in &log_inputs {
        match inputs[idx].access {
            Access::Plain { len } => {
                let range = options.range_bytes.max(1024) as u64;
                let mut start = 0;
                loop {
                    let end = (start + range).min(len);
                    tasks.push(Task::Range {
                        file: idx,
                        start,
                        end,
                    });
                    if end >= len {
                        break;
                    }
                    start = end;
                }
            }
            Access::Gzip | Access::Stdin => tasks.push(Task::Stream { file: idx }),
        }
    }

    // Workers take tasks in order from a shared counter (not rayon's splitting, which would
    // start the second half of the input early and make every sink of the first half wait
    // to be merged), so finished sinks are merged almost as soon as they are done.
    let next_task = AtomicUsize::new(0);
    let merge = Mutex::new(OrderedMerge {
        next: 0,
        waiting: BTreeMap::new(),
        sink: make_sink(),
        coverage: BTreeMap::new(),
        lines_before: BTreeMap::new(),
    });
    let merged = Condvar::new();
    let workers = rayon::current_num_threads().clamp(1, tasks.len().max(1));
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                let mut buffer = BlockBuffer::default();
                loop {
                    let index = next_task.fetch_add(1, Ordering::Relaxed);
                    let Some(task) = tasks.get(index) else { break };
                    {
                        let mut m = merge.lock().unwrap_or_else(PoisonError::into_inner);
                        while index >= m.next + MAX_TASKS_AHEAD {
                            m = merged.wait(m).unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                    let mut sink = make_sink();
                    let use_prefilter = prefilter_use[task.file()];
                    let (coverage, lines) =
                        run_task(task, inputs, options, use_prefilter, &mut sink, &mut buffer);
                    let output = TaskOutput {
                        file: task.file(),
                        sink,
                        coverage,
                        lines,
                    };
                    merge
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .accept(index, output);
                    merged.notify_all();
                }
            });
        }
    });
    let OrderedMerge {
        sink, mut coverage, ..
    } = merge.into_inner().unwrap_or_else(PoisonError::into_inner);

    let coverage = log_inputs
        .iter()
        .map(|&idx| {
            let mut c = coverage
                .remove(&idx)
                .unwrap_or_else(|| FileCoverage::new(&inputs[idx]));
            c.finish();
            c
        })
        .collect();
    RunOutput { sink, coverage }
}

/// Run one task; returns its coverage and the newlines of the range it owns.
fn run_task<S: Sink>(
    task: &Task,
    inputs: &[InputFile],
    options: &RunOptions,
    use_prefilter: bool,
    sink: &mut S,
    buffer: &mut BlockBuffer,
) -> (FileCoverage, u64) {
    let input = &inputs[task.file()];
    let mut cov = FileCoverage::new(input);
    let mut lines = 0;
    match *task {
        Task::Range { start, end, .. } => {
            match process_range(
                input,
                start,
                end,
                options,
                use_prefilter,
                sink,
                &mut cov,
                buffer,
            ) {
                Ok(owned) => lines = owned,
                Err(e) => {
                    cov.read_error.get_or_insert(e.to_string());
                }
            }
            if let Some(progress) = &options.progress {
                (progress.0)(end - start);
            }
        }
        Task::Stream { .. } => {
            if let Err(e) = process_stream(input, options, use_prefilter, sink, &mut cov, buffer) {
                cov.read_error.get_or_insert(e.to_string());
            }
        }
    }
    (cov, lines)
}

/// A worker's reusable read buffer: `data[..filled]` holds bytes not yet consumed, and
/// `data` only ever grows (a record longer than a block), so nothing is zeroed per read.
#[derive(Default)]
struct BlockBuffer {
    data: Vec<u8>,
    filled: usize,
}

impl BlockBuffer {
    /// Make room for one more block of `block` bytes after the bytes kept.
    fn room(&mut self, block: usize) -> &mut [u8] {
        let want = self.filled + block.max(1);
        if self.data.len() < want {
            self.data.resize(want, 0);
        }
        &mut self.data[self.filled..want]
    }

    fn bytes(&self) -> &[u8] {
        &self.data[..self.filled]
    }

    /// Drop the first `n` bytes, keeping the rest at the front.
    fn consume(&mut self, n: usize) {
        self.data.copy_within(n..self.filled, 0);
        self.filled -= n;
    }
}

/// The bytes of one range as they become available: a window over a memory mapping (it
/// grows for free), or the worker's buffer filled by positioned reads, block by block.
enum RangeBytes<'a> {
    Mapped {
        bytes: &'a [u8],
        /// The window is `bytes[from..to]`.
        from: usize,
        to: usize,
    },
    Read {
        file: &'a std::fs::File,
        file_len: u64,
        buffer: &'a mut BlockBuffer,
        /// File offset of the buffer's first byte.
        offset: u64,
        /// A read returned nothing.
        exhausted: bool,
    },
}

impl RangeBytes<'_> {
    /// File offset of the window's first byte.
    fn offset(&self) -> u64 {
        match self {
            RangeBytes::Mapped { from, .. } => *from as u64,
            RangeBytes::Read { offset, .. } => *offset,
        }
    }

    fn window(&self) -> &[u8] {
        match self {
            RangeBytes::Mapped { bytes, from, to } => &bytes[*from..*to],
            RangeBytes::Read { buffer, .. } => buffer.bytes(),
        }
    }

    /// True when the window reaches the end of the file.
    fn at_eof(&self) -> bool {
        match self {
            RangeBytes::Mapped { bytes, to, .. } => *to == bytes.len(),
            RangeBytes::Read {
                file_len,
                buffer,
                offset,
                exhausted,
                ..
            } => *exhausted || *offset + buffer.filled as u64 >= *file_len,
        }
    }

    /// Extend the window by one block (less at the end of the file).
    fn grow(&mut self, block: usize) -> std::io::Result<()> {
        match self {
            RangeBytes::Mapped { bytes, to, .. } => *to = to.saturating_add(block).min(bytes.len()),
            RangeBytes::Read {
                file,
                buffer,
                offset,
                exhausted,
                ..
            } => {
                let at = *offset + buffer.filled as u64;
                let got = read_at_most(file, at, buffer.room(block))?;
                buffer.filled += got;
                *exhausted = got == 0;
            }
        }
        Ok(())
    }

    /// Drop the window's first `n` bytes.
    fn consume(&mut self, n: usize) {
        match self {
            RangeBytes::Mapped { from, .. } => *from += n,
            RangeBytes::Read { buffer, offset, .. } => {
                buffer.consume(n);
                *offset += n as u64;
            }
        }
    }

    /// Newlines in `start..end` of the file (read again when not mapped; only needed when a
    /// range ended abnormally).
    fn newlines_in(&mut self, start: u64, end: u64, block: usize) -> std::io::Result<u64> {
        match self {
            RangeBytes::Mapped { bytes, .. } => {
                let at = |o: u64| usize::try_from(o).unwrap_or(usize::MAX).min(bytes.len());
                Ok(count_newlines(&bytes[at(start)..at(end).max(at(start))]))
            }
            RangeBytes::Read { file, buffer, .. } => {
                let mut count = 0;
                let mut pos = start;
                while pos < end {
                    buffer.filled = 0;
                    let room = buffer.room(block);
                    let want = usize::try_from(end - pos)
                        .unwrap_or(usize::MAX)
                        .min(room.len());
                    let got = read_at_most(file, pos, &mut room[..want])?;
                    if got == 0 {
                        break;
                    }
                    count += count_newlines(&buffer.data[..got]);
                    pos += got as u64;
                }
                Ok(count)
            }
        }
    }
}

/// Process the records that start in `start..end`; returns the newlines in that range (the
/// line offset of the file's next range).
#[allow(clippy::too_many_arguments)]
fn process_range<S: Sink>(
    input: &InputFile,
    start: u64,
    end: u64,
    options: &RunOptions,
    use_prefilter: bool,
    sink: &mut S,
    cov: &mut FileCoverage,
    buffer: &mut BlockBuffer,
) -> std::io::Result<u64> {
    let file = std::fs::File::open(&input.path)?;
    let map = options.use_mmap.then(|| MappedFile::open(&file)).flatten();
    let file_len = map.as_ref().map_or_else(
        || file.metadata().map(|m| m.len()),
        |m| Ok(m.bytes().len() as u64),
    )?;
    let end = end.min(file_len);
    let start = start.min(end);
    cov.bytes += end - start;
    let ctx = context(input, options);
    let block = options.block_bytes.max(1);
    // Reading starts one byte early: a line that straddles `start` belongs to the previous
    // range, and the line starting exactly at `start` is ours only if the byte before it
    // is '\n'.
    let base = start.saturating_sub(1);
    let mut bytes = match &map {
        Some(map) => {
            // Positions in a mapping fit in usize; the whole range is one window.
            let at = |o: u64| usize::try_from(o).unwrap_or(usize::MAX);
            map.will_read(at(start), at(end - start).saturating_add(block));
            RangeBytes::Mapped {
                bytes: map.bytes(),
                from: at(base),
                to: at(end).saturating_add(block).min(map.bytes().len()),
            }
        }
        None => {
            buffer.filled = 0;
            let mut read = RangeBytes::Read {
                file: &file,
                file_len,
                buffer,
                offset: base,
                exhausted: false,
            };
            read.grow(block)?;
            read
        }
    };
    // Lines are numbered from this range's start; the merge adds the lines before it.
    let mut cursor = Cursor {
        line: 1,
        skip_leading_continuations: start > 0,
        use_prefilter,
    };
    if start > 0 {
        // Skip to the first line that starts in the range.
        loop {
            let offset = bytes.offset();
            let window = bytes.window();
            let scan_to = usize::try_from(end - offset)
                .unwrap_or(usize::MAX)
                .min(window.len());
            match memchr::memchr(b'\n', &window[..scan_to]) {
                Some(nl) => {
                    if offset + nl as u64 >= start {
                        // That newline is in the range: the first line here is its second.
                        cursor.line += 1;
                    }
                    bytes.consume(nl + 1);
                    break;
                }
                // No line starts in the range: it is inside one line that started earlier
                // (so it holds no newline either).
                None if scan_to < window.len() || bytes.at_eof() => return Ok(0),
                None => {
                    let seen = window.len();
                    bytes.consume(seen);
                    bytes.grow(block)?;
                }
            }
        }
    }
    cov.line_marks.push(LineMark {
        line: cursor.line,
        offset: bytes.offset(),
    });
    // Newlines between `end` and the first record after it, once the range's records ended:
    // those already consumed (the last record ran on past `end`) plus those in the window.
    let mut consumed_after_end = 0;
    let mut lines_after_end = None;
    loop {
        let window = bytes.window();
        let at_eof = bytes.at_eof();
        // Records that start at or after `end` belong to the next range.
        let limit = usize::try_from(end.saturating_sub(bytes.offset()))
            .unwrap_or(usize::MAX)
            .min(window.len());
        let step = process_buffer(window, limit, at_eof, &ctx, options, &mut cursor, sink, cov);
        if step.complete && !at_eof {
            let next_record = step.consumed.max(limit);
            lines_after_end =
                Some(consumed_after_end + count_newlines(&window[limit..next_record]));
        }
        if step.complete || at_eof {
            break;
        }
        consumed_after_end += count_newlines(&window[limit.min(step.consumed)..step.consumed]);
        bytes.consume(step.consumed);
        bytes.grow(block)?;
        if bytes.window().len() > MAX_LINE_BYTES * 8 {
            // A pathological record: stop here; the rest belongs to the next range.
            break;
        }
    }
    // The cursor counted lines up to the first record after `end`; the lines between `end`
    // and that record are taken back. No second pass over the range.
    match lines_after_end {
        Some(after) => Ok((cursor.line - 1).saturating_sub(after)),
        // Nothing of this file follows the range.
        None if end >= file_len => Ok(0),
        None => bytes.newlines_in(start, end, block),
    }
}

fn process_stream<S: Sink>(
    input: &InputFile,
    options: &RunOptions,
    use_prefilter: bool,
    sink: &mut S,
    cov: &mut FileCoverage,
    buffer: &mut BlockBuffer,
) -> std::io::Result<()> {
    let mut reader = open_stream(input)?;
    let ctx = context(input, options);
    let mut cursor = Cursor {
        line: 1,
        skip_leading_continuations: false,
        use_prefilter,
    };
    // A stream has no ranges: every record in the bytes so far is this task's.
    let mut process = |bytes: &[u8], at_eof: bool, cursor: &mut Cursor, cov: &mut FileCoverage| {
        process_buffer(bytes, bytes.len(), at_eof, &ctx, options, cursor, sink, cov)
    };
    let mut first_block = true;
    buffer.filled = 0;
    loop {
        let room = buffer.room(options.block_bytes);
        let room_len = room.len();
        let got = match read_full(&mut reader, room) {
            Ok(got) => got,
            Err((got, e)) => {
                buffer.filled += got;
                cov.bytes += got as u64;
                // Use what was read before the error (a truncated .gz still has lines).
                process(buffer.bytes(), true, &mut cursor, cov);
                return Err(e);
            }
        };
        buffer.filled += got;
        cov.bytes += got as u64;
        if let Some(progress) = &options.progress {
            (progress.0)(got as u64);
        }
        let at_eof = got < room_len;
        if first_block {
            first_block = false;
            // Stdin cannot be read twice, so its first block decides what other inputs
            // decide before reading (see `looks_like_list_view`).
            if input.access == Access::Stdin && head_opens_list_view(buffer.bytes()) {
                cursor.use_prefilter = false;
            }
        }
        let step = process(buffer.bytes(), at_eof, &mut cursor, cov);
        if at_eof {
            return Ok(());
        }
        buffer.consume(step.consumed);
        if buffer.filled > MAX_LINE_BYTES * 8 {
            // Nothing ended in 8 MiB: force progress by treating it as complete.
            let step = process(buffer.bytes(), true, &mut cursor, cov);
            buffer.consume(step.consumed);
        }
    }
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
    /// Jump between prefilter hits (false for Splunk list-view pastes).
    use_prefilter: bool,
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
    text: PendingText<'b>,
    env: Envelope<'b>,
}

enum PendingText<'b> {
    /// Contiguous in the buffer: `buf[from..to]`; `checked` is that text while it is one
    /// line, already validated as UTF-8 (most records), so it is not validated twice.
    Slice {
        from: usize,
        to: usize,
        checked: Option<&'b str>,
    },
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
    let prefilter = options
        .prefilter
        .as_deref()
        .filter(|_| cursor.use_prefilter);
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
                .automaton
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
                // An incomplete last line: whatever it is, it is not finished yet. Even past
                // `limit` the range is not complete: until the line is whole it is not known
                // whether it starts the next range's first record or continues this range's
                // last one (then the next range skips it as ours).
                let consumed = pending.as_ref().map_or(line_start, |p| p.start);
                cursor.line = pending.as_ref().map_or(line_no, |p| p.line);
                return Step {
                    consumed,
                    complete: false,
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
                        checked: Some(inner),
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
    let text = match utf8(raw) {
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

/// UTF-8 validation with SIMD: every byte of every line goes through it, and on log text
/// (nearly all ASCII) it is several times faster than the standard library's check. Only
/// whether the bytes are valid matters here; the callers' lossy paths find where they are
/// not.
fn utf8(raw: &[u8]) -> Result<&str, simdutf8::basic::Utf8Error> {
    simdutf8::basic::from_utf8(raw)
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
            PendingText::Slice { to, checked, .. },
            Line::Text {
                inner_from, inner, ..
            },
        ) if inner_from == *to + 1 && inner.len() == raw_len => {
            *to = inner_from + inner.len();
            *checked = None;
            let _ = line_end;
        }
        (PendingText::Slice { from, to, .. }, line) => {
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
        PendingText::Slice {
            checked: Some(text),
            ..
        } => text,
        // Lines validated one by one and joined by '\n'.
        PendingText::Slice { from, to, .. } => match utf8(&buf[*from..*to]) {
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
