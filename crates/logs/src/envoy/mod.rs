//! Sidecar-side lines: Envoy's own log in every istio-proxy layout, pilot-agent (zap) lines
//! and linkerd-proxy lines, as text or JSON.
//!
//! Layouts (see `formats.md` §1): plain Envoy `[%Y-%m-%d %T.%e][%t][%l][%n] %v` with or
//! without the `[%g:%#] ` token and the `[Envoy (Epoch N)] ` prefix of Istio 1.4/1.5
//! ([`bracketed`]); the tab layouts of Istio 1.6 and newer and pilot-agent's zap text
//! ([`text`]); linkerd-proxy's uptime-stamped tracing lines ([`linkerd`]); and the JSON of
//! all three ([`json`]). The connection/stream id prefix (`[C1][S2]`, `[Tags: ...]`) and the
//! `[file:line] ` location of old layouts are taken off the message here.
//!
//! This runs on every sidecar line of multi-gigabyte inputs: decisions are byte checks at
//! fixed offsets, no regex, and the common case borrows from the record without allocating.
//! It must not claim lines of other families: an application line or an access-log row
//! makes these functions return `None`, so the next parser is tried. It does no
//! interpretation of the messages (that is the diagnosis' job).

mod bracketed;
mod json;
mod linkerd;
mod text;

#[cfg(test)]
mod tests;

use crate::Parsed;
use meshdoctor_model::{EnvoyLayout, EnvoyLine, Origin, Payload, Severity, SkipReason, Timestamp};
use std::borrow::Cow;

/// Parse an Envoy, pilot-agent or linkerd-proxy text record (header line plus continuation
/// lines joined by `\n`). `None` when it is not such a line.
#[must_use]
pub fn parse_text(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    match record.as_bytes().first()? {
        b'[' => bracketed::parse(record).or_else(|| linkerd::parse_text(record)),
        b'0'..=b'9' => text::parse(record),
        _ => None,
    }
}

/// Parse an Envoy, pilot-agent or linkerd-proxy JSON record. `None` when it is not such a
/// line (application JSON, access-log JSON).
#[must_use]
pub fn parse_json(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    json::parse(record)
}

/// Whether a one-line JSON object may be an Envoy line whatever its keys: it names an
/// `envoy ` scope. Without that, [`parse_json`] claims only objects with a top-level `msg`,
/// `target` or `scope` key (pilot-agent, linkerd-proxy, Envoy with spaced JSON), which lets
/// the dispatcher read application JSON first and ask this parser only when those keys are
/// there.
#[must_use]
pub fn names_envoy_scope(line: &str) -> bool {
    json::names_envoy_scope(line)
}

/// The parts of an Envoy line that every layout provides, before the message prefixes are
/// taken off.
struct EnvoyParts<'a> {
    layout: EnvoyLayout,
    time: Option<Timestamp>,
    level: Severity,
    logger: Cow<'a, str>,
    /// Location from a separate field (`%g:%#` in 1.17+, `caller` in JSON).
    source_location: Option<Cow<'a, str>>,
    thread: Option<u32>,
    /// Ids from separate JSON keys, which win over the prefix in the message.
    connection_id: Option<u64>,
    stream_id: Option<u64>,
    /// The message as written, possibly still starting with `[file:line] ` and an id prefix.
    message: Cow<'a, str>,
}

/// Take the location and id prefixes off the message and build the event.
fn envoy_event(parts: EnvoyParts<'_>) -> Parsed<'_> {
    let EnvoyParts {
        layout,
        time,
        level,
        logger,
        mut source_location,
        thread,
        connection_id,
        stream_id,
        message,
    } = parts;
    let prefix = read_prefix(&message);
    let message = match message {
        Cow::Borrowed(text) => {
            if source_location.is_none()
                && let Some(range) = prefix.location.clone()
            {
                source_location = text.get(range).map(Cow::Borrowed);
            }
            Cow::Borrowed(text.get(prefix.consumed..).unwrap_or(""))
        }
        Cow::Owned(mut text) => {
            if source_location.is_none()
                && let Some(range) = prefix.location.clone()
            {
                source_location = text.get(range).map(|s| Cow::Owned(s.to_owned()));
            }
            if prefix.consumed > 0 && text.is_char_boundary(prefix.consumed) {
                // In place: no second allocation for JSON messages that needed unescaping.
                text.drain(..prefix.consumed);
            }
            Cow::Owned(text)
        }
    };
    Parsed {
        time,
        origin: Origin::default(),
        payload: Payload::Envoy(Box::new(EnvoyLine {
            layout,
            level,
            logger,
            source_location,
            thread,
            connection_id: connection_id.or(prefix.connection_id),
            stream_id: stream_id.or(prefix.stream_id),
            message,
        })),
    }
}

/// What the start of an Envoy message carried.
#[derive(Debug, Default, PartialEq, Eq)]
struct Prefix {
    /// Byte range of `file:line` inside the message (`[file:line] ` of Envoy ≤ 1.16 and
    /// the `[%g:%#] ` token of plain Envoy).
    location: Option<std::ops::Range<usize>>,
    connection_id: Option<u64>,
    stream_id: Option<u64>,
    /// Bytes of the message taken by the prefixes (including one following space each).
    consumed: usize,
}

/// Read `[file:line] ` then `[C1]`, `[C1][S2]` or `[Tags: "k":"v",...]` at the start of
/// an Envoy message. Anything that does not have exactly that shape is left in the message.
fn read_prefix(message: &str) -> Prefix {
    let b = message.as_bytes();
    let mut prefix = Prefix::default();
    let mut at = 0;
    if let Some(end) = location_in_brackets(b) {
        prefix.location = Some(1..end);
        at = skip_one_space(b, end + 1);
    }
    let rest = b.get(at..).unwrap_or_default();
    if rest.starts_with(b"[C") {
        if let Some((conn, after)) = bracketed_id(rest, b'C') {
            prefix.connection_id = Some(conn);
            let mut used = after;
            if let Some(stream_part) = rest.get(after..)
                && stream_part.starts_with(b"[S")
                && let Some((stream, after_stream)) = bracketed_id(stream_part, b'S')
            {
                prefix.stream_id = Some(stream);
                used += after_stream;
            }
            at = skip_one_space(b, at + used);
        }
    } else if let Some(tags) = rest.strip_prefix(b"[Tags: ")
        && let Some((conn, stream, used)) = read_tags(tags)
    {
        prefix.connection_id = conn;
        prefix.stream_id = stream;
        at = skip_one_space(b, at + 7 + used);
    }
    prefix.consumed = at;
    prefix
}

fn skip_one_space(b: &[u8], at: usize) -> usize {
    if b.get(at) == Some(&b' ') { at + 1 } else { at }
}

/// `[file:line]` at the start: returns the index of the closing `]`. The content has no
/// spaces, ends in `:digits`, and has a path-like part before the colon (so `[C12]` or
/// `[Tags: ...]` never match).
fn location_in_brackets(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'[') {
        return None;
    }
    // Envoy paths are long but bounded; do not scan a whole message for a bracket.
    let window = b.get(1..b.len().min(512))?;
    let close = memchr::memchr2(b']', b' ', window)?;
    if window.get(close) != Some(&b']') {
        return None;
    }
    is_location(window.get(..close)?).then_some(close + 1)
}

/// `path/to/file.cc:123`: a `:digits` end and a path-like part (with `/` or `.`) before it.
fn is_location(token: &[u8]) -> bool {
    let Some(colon) = memchr::memrchr(b':', token) else {
        return false;
    };
    let (path, line) = (&token[..colon], &token[colon + 1..]);
    // memchr rather than byte loops: paths are 40-100 bytes and this runs on every line.
    !line.is_empty()
        && line.iter().all(u8::is_ascii_digit)
        && path.first().is_some_and(|&c| c != b'[')
        && memchr::memchr2(b'/', b'.', path).is_some()
        && memchr::memchr3(b' ', b'\t', b']', path).is_none()
}

/// `[C123]` (with `letter` = `C`) or `[S456]`: the id and the bytes used.
fn bracketed_id(b: &[u8], letter: u8) -> Option<(u64, usize)> {
    if b.first() != Some(&b'[') || b.get(1) != Some(&letter) {
        return None;
    }
    let digits = b.get(2..)?;
    let close = digits.iter().position(|&c| c == b']')?;
    Some((parse_u64(digits.get(..close)?)?, close + 3))
}

/// `"ConnectionId":"123","StreamId":"456"]` (the part after `[Tags: `): both ids if present,
/// and the bytes used including the `]`. `None` when it is not that shape.
fn read_tags(b: &[u8]) -> Option<(Option<u64>, Option<u64>, usize)> {
    let mut conn = None;
    let mut stream = None;
    let mut at = 0;
    // Every round consumes at least five bytes, so the loop ends with the input.
    loop {
        let (key, after_key) = quoted(b, at)?;
        if b.get(after_key) != Some(&b':') {
            return None;
        }
        let (value, after_value) = quoted(b, after_key + 1)?;
        match key {
            b"ConnectionId" => conn = parse_u64(value),
            b"StreamId" => stream = parse_u64(value),
            _ => {}
        }
        match b.get(after_value) {
            Some(b',') => at = after_value + 1,
            Some(b']') => return Some((conn, stream, after_value + 1)),
            _ => return None,
        }
    }
}

/// A `"..."` string at `at`: its content and the index after the closing quote.
fn quoted(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let content = b.get(at + 1..)?;
    let close = memchr::memchr(b'"', content)?;
    Some((&content[..close], at + 2 + close))
}

/// Decimal digits only, no sign, no overflow.
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Envoy's and zap's level names, exact spellings first (the common case), then any
/// spelling [`Severity::parse`] knows.
fn level_of(text: &str) -> Option<Severity> {
    match text {
        "debug" => Some(Severity::Debug),
        "trace" => Some(Severity::Trace),
        "info" => Some(Severity::Info),
        "warning" | "warn" => Some(Severity::Warn),
        "error" => Some(Severity::Error),
        "critical" => Some(Severity::Critical),
        _ => Severity::parse(text),
    }
}

/// zap's lowercase level names (Istio's agent never writes Envoy's `warning`).
fn zap_level(level: &str) -> Option<Severity> {
    Some(match level {
        "debug" => Severity::Debug,
        "info" => Severity::Info,
        "warn" => Severity::Warn,
        "error" => Severity::Error,
        "fatal" | "panic" | "dpanic" => Severity::Critical,
        _ => return None,
    })
}

/// Istio scopes (`xdsproxy`, `sds`, `cache`; ztunnel targets such as `xds::client`).
fn is_scope_byte(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'.' | b':')
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    parse_u64(b).and_then(|v| u32::try_from(v).ok())
}

/// The record with trailing blank lines and whitespace removed (continuation lines kept).
fn trim_record_end(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_ascii_whitespace())
}

/// The header line of a record (without `\r`).
fn first_line(record: &str) -> &str {
    let line = match memchr::memchr(b'\n', record.as_bytes()) {
        Some(nl) => record.get(..nl).unwrap_or(record),
        None => record,
    };
    line.strip_suffix('\r').unwrap_or(line)
}
