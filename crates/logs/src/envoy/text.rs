//! Lines that start with an ISO time: Istio's Envoy tab layouts and pilot-agent's zap text.
//!
//! * Istio 1.6–1.16: `%Y-%m-%dT%T.%fZ\t%l\tenvoy %n\t%v` (1.6 has `[file:line] ` inside `%v`).
//! * Istio 1.17+: `%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t`.
//! * pilot-agent: `<time>\t<level>\t[<scope>\t][<caller>\t]<msg>[\t<k>=<v>...]`.
//!
//! Envoy lines are told from agent lines by `envoy <logger>` in the third field (formats.md
//! §1.6). Tabs may have become runs of spaces in pasted logs, so any run of blanks separates
//! fields. Agent lines are claimed only with Istio's exact time shape (27 characters,
//! microseconds, `Z`) and a lowercase zap level, so that application lines with an ISO time
//! fall through to the application parser.

use super::{
    EnvoyParts, envoy_event, first_line, is_location, is_scope_byte, level_of, parse_u32,
    trim_record_end, zap_level,
};
use crate::Parsed;
use crate::timestamp::parse_iso;
use meshdoctor_model::{AgentKind, AgentLine, EnvoyLayout, Origin, Payload, SkipReason, Timestamp};
use std::borrow::Cow;

/// Length of Istio's zap time `2024-05-01T10:00:00.000000Z`.
const ZAP_TIME_LEN: usize = 27;

pub(super) fn parse(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let header = first_line(record);
    let b = header.as_bytes();
    // `dddd-dd-ddT`: cheap rejection of everything that is not an ISO date-time.
    if b.len() < 21
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
    {
        return None;
    }
    let time_end = memchr::memchr2(b'\t', b' ', b)?;
    let time = parse_iso(header.get(..time_end)?)
        .filter(|t| t.len == time_end)
        .map(|t| t.time);
    let level_from = skip_blanks(b, time_end);
    let level_end = level_from + memchr::memchr2(b'\t', b' ', b.get(level_from..)?)?;
    let level = header.get(level_from..level_end)?;
    let field_from = skip_blanks(b, level_end);
    if let Some(after) = b.get(field_from..).and_then(|f| f.strip_prefix(b"envoy "))
        && after.first().is_some_and(|&c| is_logger_byte(c))
    {
        return Some(envoy_line(record, header, time, level, field_from + 6));
    }
    agent_line(record, header, time, level, field_from)
}

fn envoy_line<'a>(
    record: &'a str,
    header: &'a str,
    time: Option<Timestamp>,
    level: &str,
    logger_from: usize,
) -> Result<Parsed<'a>, SkipReason> {
    let b = header.as_bytes();
    // Up to the next blank: tolerate logger names from builds with unusual extensions.
    let logger_end = logger_from
        + memchr::memchr2(b' ', b'\t', b.get(logger_from..).unwrap_or_default())
            .unwrap_or(b.len() - logger_from);
    let Some(time) = time else {
        return Err(SkipReason::BadTimestamp);
    };
    let Some(level) = level_of(level) else {
        return Err(SkipReason::Malformed);
    };
    let logger = header.get(logger_from..logger_end).unwrap_or("");
    // 1.17+: ` file:line` right after the logger, then the TAB before the message. In
    // 1.6–1.16 the TAB follows the logger directly (and a 1.6 location is `[...]`).
    let mut source_location = None;
    let mut message_from = skip_blanks(b, logger_end);
    if b.get(logger_end) != Some(&b'\t') {
        let token_end = message_from
            + memchr::memchr2(b' ', b'\t', b.get(message_from..).unwrap_or_default())
                .unwrap_or(b.len() - message_from);
        if let Some(token) = b.get(message_from..token_end)
            && is_location(token)
        {
            source_location = header.get(message_from..token_end);
            message_from = skip_blanks(b, token_end);
        }
    }
    let with_caller = source_location.is_some();
    let body = trim_record_end(record.get(message_from..).unwrap_or(""));
    let (message, thread) = match split_thread(body, with_caller) {
        Some((message, thread)) => (Cow::Borrowed(message), thread),
        None => thread_on_header(record, header, message_from, with_caller)
            .unwrap_or((Cow::Borrowed(body), None)),
    };
    Ok(envoy_event(EnvoyParts {
        layout: if with_caller {
            EnvoyLayout::IstioTabWithCaller
        } else {
            EnvoyLayout::IstioTab
        },
        time: Some(time),
        level,
        logger: Cow::Borrowed(logger),
        source_location: source_location.map(Cow::Borrowed),
        thread,
        connection_id: None,
        stream_id: None,
        message,
    }))
}

/// A multi-line record whose `thread=N` is on the header line rather than at the very end
/// (lines appended after a finished 1.17+ record): header message + the rest, owned.
fn thread_on_header<'a>(
    record: &'a str,
    header: &'a str,
    message_from: usize,
    with_caller: bool,
) -> Option<(Cow<'a, str>, Option<u32>)> {
    let rest = record.get(header.len()..)?.trim_start_matches('\r');
    let rest = trim_record_end(rest.strip_prefix('\n')?);
    let (head, thread) = split_thread(header.get(message_from..)?.trim_end(), with_caller)?;
    let mut message = String::with_capacity(head.len() + 1 + rest.len());
    message.push_str(head);
    message.push('\n');
    message.push_str(rest);
    Some((Cow::Owned(message), thread))
}

/// Split a trailing `\tthread=N` (or ` thread=N` when tabs may have become spaces and the
/// layout is known to carry it) off the message.
fn split_thread(message: &str, spaces_ok: bool) -> Option<(&str, Option<u32>)> {
    let b = message.as_bytes();
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let key_at = (b.len() - digits).checked_sub(7)?;
    if b.get(key_at..key_at + 7) != Some(b"thread=") {
        return None;
    }
    let thread = parse_u32(&b[b.len() - digits..]);
    if key_at == 0 {
        // The message was empty and its separator was skipped with the other blanks.
        return spaces_ok.then_some(("", thread));
    }
    match b[key_at - 1] {
        b'\t' => {}
        b' ' if spaces_ok => {}
        _ => return None,
    }
    let head = message.get(..key_at)?.trim_end_matches([' ', '\t']);
    Some((head, thread))
}

fn agent_line<'a>(
    record: &'a str,
    header: &'a str,
    time: Option<Timestamp>,
    level: &str,
    field_from: usize,
) -> Option<Result<Parsed<'a>, SkipReason>> {
    let b = header.as_bytes();
    // Istio's zap writes a fixed-width UTC time; demanding it keeps application lines out.
    if b.get(ZAP_TIME_LEN - 8) != Some(&b'.')
        || b.get(ZAP_TIME_LEN - 1) != Some(&b'Z')
        || !b.get(ZAP_TIME_LEN).is_some_and(|&c| is_blank(c))
    {
        return None;
    }
    let time = time?;
    let level = zap_level(level)?;
    let tabbed = b.get(ZAP_TIME_LEN) == Some(&b'\t');
    let mut at = field_from;
    let mut scope = None;
    if let Some((token, next)) = column(b, at, tabbed)
        && token.iter().all(|&c| is_scope_byte(c))
    {
        scope = header.get(at..at + token.len());
        at = next;
    }
    // `--log_caller` adds a `file.go:123` column before the message.
    if let Some((token, next)) = column(b, at, tabbed)
        && is_location(token)
    {
        at = next;
    }
    let message = trim_record_end(record.get(at..).unwrap_or(""));
    Some(Ok(Parsed {
        time: Some(time),
        origin: Origin::default(),
        payload: Payload::Agent(Box::new(AgentLine {
            proxy: AgentKind::IstioAgent,
            level,
            scope: scope.map(Cow::Borrowed),
            message: Cow::Borrowed(message),
        })),
    }))
}

/// A whole column at `at`: a non-empty token followed by a TAB, or, when the line's tabs
/// became spaces, by at least two blanks (one space is a space inside the message).
fn column(b: &[u8], at: usize, tabbed: bool) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| is_blank(c))?;
    if end == 0 || end > 64 {
        return None;
    }
    let wide = match (rest[end], rest.get(end + 1)) {
        (b'\t', _) => true,
        (b' ', Some(b' ' | b'\t')) => !tabbed,
        _ => false,
    };
    wide.then(|| (&rest[..end], skip_blanks(b, at + end)))
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn skip_blanks(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(|&c| is_blank(c)) {
        at += 1;
    }
    at
}

/// Envoy logger names are lowercase words with `_` (`conn_handler`, `http2`).
fn is_logger_byte(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'
}
