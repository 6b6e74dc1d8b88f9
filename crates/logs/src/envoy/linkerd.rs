//! linkerd-proxy lines (Rust `tracing` output with an uptime timer):
//! `[     0.002411s]  INFO ThreadId(01) linkerd2_proxy: Admin interface on 0.0.0.0:4191`,
//! with optional spans before the target:
//! `[ 12.3s]  WARN ThreadId(02) inbound:server{port=8080}: linkerd_app_core::serve: msg`.
//!
//! The uptime is relative to the proxy start, so these lines carry no wall-clock time
//! (`time: None`). The JSON form is read in `json`, which uses [`is_uptime`]. This must not
//! claim other bracketed lines: only `[<blanks><seconds>s]` starts a linkerd line.

use super::{first_line, trim_record_end};
use crate::Parsed;
use meshdoctor_model::{AgentKind, AgentLine, Origin, Payload, Severity, SkipReason};
use std::borrow::Cow;

pub(super) fn parse_text(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let header = first_line(record);
    let b = header.as_bytes();
    let close = uptime_end(b)?;
    let level_from = skip_blanks(b, close + 1);
    let level_len = b
        .get(level_from..)?
        .iter()
        .position(|&c| c == b' ' || c == b'\t')
        .unwrap_or(b.len() - level_from);
    let Some(level) = header
        .get(level_from..level_from + level_len)
        .and_then(Severity::parse)
    else {
        return Some(Err(SkipReason::Malformed));
    };
    let mut at = skip_blanks(b, level_from + level_len);
    if b.get(at..).is_some_and(|r| r.starts_with(b"ThreadId("))
        && let Some(paren) = b.get(at..).and_then(|r| memchr::memchr(b')', r))
    {
        at = skip_blanks(b, at + paren + 1);
    }
    let (target, message_from) = split_target(header.get(at..).unwrap_or(""));
    let scope = target.and_then(|r| header.get(at + r.start..at + r.end));
    let message = trim_record_end(record.get(at + message_from..).unwrap_or(""));
    Some(Ok(agent(
        level,
        scope.map(Cow::Borrowed),
        Cow::Borrowed(message),
    )))
}

/// The event for one linkerd-proxy line; no wall-clock time.
pub(super) fn agent<'a>(
    level: Severity,
    scope: Option<Cow<'a, str>>,
    message: Cow<'a, str>,
) -> Parsed<'a> {
    Parsed {
        time: None,
        origin: Origin::default(),
        payload: Payload::Agent(Box::new(AgentLine {
            proxy: AgentKind::LinkerdProxy,
            level,
            scope,
            message,
        })),
    }
}

/// True for linkerd's uptime stamp `[    12.345s]` as a whole string (the JSON `timestamp`).
pub(super) fn is_uptime(text: &str) -> bool {
    uptime_end(text.as_bytes()).is_some_and(|close| close + 1 == text.len())
}

/// `[<blanks><digits>[.<digits>]s]` at the start: the index of the `]`.
fn uptime_end(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'[') {
        return None;
    }
    let mut at = skip_blanks(b, 1);
    let int_from = at;
    while b.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    if at == int_from {
        return None;
    }
    if b.get(at) == Some(&b'.') {
        at += 1;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
    }
    (b.get(at) == Some(&b's') && b.get(at + 1) == Some(&b']')).then_some(at + 1)
}

/// Split `spans: target: message` (the spans are optional). Returns the target's range and
/// where the message starts. `tracing` separates the parts with `: `; span fields in `{...}`
/// may themselves contain `:` (addresses), so separators inside braces do not count.
pub(super) fn split_target(s: &str) -> (Option<std::ops::Range<usize>>, usize) {
    let b = s.as_bytes();
    let Some(first) = next_separator(b, 0) else {
        return (None, 0);
    };
    let first_segment = &b[..first];
    let second = next_separator(b, first + 2);
    let second_segment = b
        .get(first + 2..second.unwrap_or(b.len()))
        .unwrap_or_default();
    let is_span_list = first_segment.contains(&b'{')
        || has_lone_colon(first_segment)
        || (!contains_path_separator(first_segment)
            && second.is_some()
            && is_module_path(second_segment)
            && contains_path_separator(second_segment));
    if is_span_list {
        return match second {
            Some(end) if is_module_path(second_segment) => (Some(first + 2..end), end + 2),
            _ => (None, first + 2),
        };
    }
    if is_module_path(first_segment) {
        (Some(0..first), first + 2)
    } else {
        (None, 0)
    }
}

/// The next `: ` outside `{...}` at or after `from`.
fn next_separator(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0u32;
    let mut at = from;
    while let Some(&c) = b.get(at) {
        match c {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && b.get(at + 1) == Some(&b' ') => return Some(at),
            _ => {}
        }
        at += 1;
    }
    None
}

/// A Rust module path: `linkerd2_proxy`, `linkerd_app_core::serve`.
fn is_module_path(segment: &[u8]) -> bool {
    !segment.is_empty()
        && segment
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        && !has_lone_colon(segment)
}

fn contains_path_separator(segment: &[u8]) -> bool {
    segment.windows(2).any(|w| w == b"::")
}

/// A `:` that is not part of `::` (span separators, `inbound:server`).
fn has_lone_colon(segment: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&c) = segment.get(at) {
        if c == b':' {
            if segment.get(at + 1) == Some(&b':') {
                at += 2;
                continue;
            }
            return true;
        }
        at += 1;
    }
    false
}

fn skip_blanks(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(|&c| c == b' ' || c == b'\t') {
        at += 1;
    }
    at
}
