//! Plain-text application log records: a header line in one of the common layouts, plus the
//! continuation lines (stack trace) the reader attached to it.
//!
//! Layouts, tried from the most specific: glog (`E0501 10:00:00.123456 1 file.go:12] msg`),
//! logfmt (`time=... level=error msg="..."`), then a timestamp (ISO, `YYYY/MM/DD`,
//! bracketed, or time-of-day only) followed by Spring Boot (`ERROR 1 --- [thread] logger :
//! msg`), Python (`- name - ERROR - msg`, `ERROR:root:msg`) or the logback/log4j token order
//! (`[thread] LEVEL logger - msg`, `LEVEL [thread] logger - msg`). A time of day without a
//! date, or a glog month/day without a year, gives no time rather than a guessed one.
//!
//! A header with neither a timestamp nor a level is only claimed when it (or its trace)
//! carries error text; otherwise [`parse`] returns `None` and the line counts as unknown.
//! Everything is borrowed from the record; no regex runs here.

use super::stack::exception_header;
use super::{Fields, build, errors, severity_word};
use crate::Parsed;
use crate::timestamp::{ParsedTime, parse_any, parse_iso};
use meshdoctor_model::{Severity, SkipReason, Timestamp};
use std::borrow::Cow;

/// Parse a text record; `None` when the header is not an application log line.
pub(super) fn parse(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let (header, rest) = match memchr::memchr(b'\n', record.as_bytes()) {
        Some(nl) => (&record[..nl], Some(&record[nl + 1..])),
        None => (record, None),
    };
    let header = header.trim_end_matches('\r');
    let stack = rest
        .map(str::trim_end)
        .filter(|s| !s.trim().is_empty())
        .map(Cow::Borrowed);

    let mut fields = match glog(header).or_else(|| logfmt(header)) {
        Some(f) => f,
        None => layout(header).or_else(|| bare_error(header, stack.as_deref()))?,
    };
    fields.stack_trace = match (fields.stack_trace.take(), stack) {
        (None, s) => s,
        (Some(own), None) => Some(own),
        // A logfmt `err=` value and a trace printed under it: keep both.
        (Some(own), Some(s)) => Some(Cow::Owned(format!("{own}\n{s}"))),
    };
    Some(Ok(build(fields)))
}

/// A header with no time and no level is still an app record when it is an error:
/// `java.net.SocketException: ...`, `Traceback (most recent call last):`, `panic: ...`, or
/// any known network error text, here or in its trace.
fn bare_error<'a>(header: &'a str, stack: Option<&str>) -> Option<Fields<'a>> {
    let body = header.trim();
    let is_error = exception_header(body, false).is_some()
        || body.starts_with("Exception in thread ")
        || body.starts_with("Traceback (most recent call last)")
        || body.starts_with("panic: ")
        || errors::mentions_network_error(body)
        || stack.is_some_and(|s| {
            exception_header(s.trim_start(), false).is_some() || errors::mentions_network_error(s)
        });
    is_error.then(|| Fields {
        message: Cow::Borrowed(body),
        ..Fields::default()
    })
}

/// Timestamp-led and level-led layouts.
fn layout(header: &str) -> Option<Fields<'_>> {
    let (time, had_clock, rest) = leading_time(header);
    let rest = rest.trim_start_matches([' ', '\t']);

    if let Some(f) = spring(rest) {
        return Some(Fields { time, ..f });
    }
    if let Some(f) = python_dash(rest) {
        return Some(Fields { time, ..f });
    }
    let mut f = tokens(rest);
    f.time = time;
    if f.severity.is_none() && !had_clock {
        return None;
    }
    Some(f)
}

/// Read the time at the start of a header: `2024-05-01 10:00:00,123`, `2024/05/01 10:00:00`,
/// `2024-05-01T10:00:00.123+02:00`, `[2024-05-01 10:00:00,123]`, or a time of day alone
/// (which gives no instant). Returns the time, whether any clock was there, and the rest.
fn leading_time(header: &str) -> (Option<ParsedTime>, bool, &str) {
    let (inner, bracketed) = match header.strip_prefix('[') {
        Some(inner) => (inner, true),
        None => (header, false),
    };
    if let Some(mut t) = parse_iso(inner) {
        let mut rest = inner.get(t.len..).unwrap_or("");
        // Some layouts name the zone after the time (`... 10:00:00 UTC`).
        if !t.has_zone
            && let Some(after) = rest
                .strip_prefix(" UTC")
                .or_else(|| rest.strip_prefix(" GMT"))
                .filter(|a| a.is_empty() || a.starts_with([' ', ']', '\t']))
        {
            t.has_zone = true;
            rest = after;
        } else if !t.has_zone
            && let Some((offset_secs, after)) = spaced_offset(rest)
        {
            // Serilog's `{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz}` puts the offset after a space.
            t.time = Timestamp(
                t.time
                    .0
                    .saturating_sub(offset_secs.saturating_mul(1_000_000_000)),
            );
            t.has_zone = true;
            rest = after;
        }
        if bracketed {
            return match rest.strip_prefix(']') {
                Some(after) => (Some(t), true, after),
                None => (None, false, header),
            };
        }
        return (Some(t), true, rest);
    }
    if let Some(len) = time_of_day(inner) {
        let rest = inner.get(len..).unwrap_or("");
        if bracketed {
            return match rest.strip_prefix(']') {
                Some(after) => (None, true, after),
                None => (None, false, header),
            };
        }
        return (None, true, rest);
    }
    (None, false, header)
}

/// ` +HH:MM` or ` -HHMM` after a time: the offset in seconds and the rest.
fn spaced_offset(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b' ') {
        return None;
    }
    let sign = match b.get(1)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let num = |i: usize| -> Option<i64> {
        let d = b.get(i..i + 2)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
    };
    let hours = num(2)?;
    let (minutes, len) = if b.get(4) == Some(&b':') {
        (num(5)?, 7)
    } else {
        (num(4)?, 6)
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    let after = s.get(len..)?;
    if !(after.is_empty() || after.starts_with([' ', '\t', ']'])) {
        return None;
    }
    Some((sign * (hours * 3600 + minutes * 60), after))
}

/// `HH:MM:SS` with an optional `.fff`/`,fff`, followed by a space or the end.
fn time_of_day(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    if !(digit(0) && digit(1) && b.get(2) == Some(&b':') && digit(3) && digit(4))
        || b.get(5) != Some(&b':')
        || !(digit(6) && digit(7))
    {
        return None;
    }
    let mut len = 8;
    if matches!(b.get(8), Some(b'.' | b',')) && digit(9) {
        len = 9;
        while digit(len) {
            len += 1;
        }
    }
    match b.get(len) {
        None | Some(b' ' | b'\t' | b']') => Some(len),
        _ => None,
    }
}

/// A level word as text layouts write it: whole word, upper, lower or capitalised case.
fn level_token(token: &str) -> Option<Severity> {
    if !(4..=8).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let rest = token.get(1..).unwrap_or("");
    let upper = token.bytes().all(|b| b.is_ascii_uppercase());
    let lower = token.bytes().all(|b| b.is_ascii_lowercase());
    let capital = token.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && rest.bytes().all(|b| b.is_ascii_lowercase());
    if !(upper || lower || capital) {
        return None;
    }
    const WORDS: &[(&str, Severity)] = &[
        ("trace", Severity::Trace),
        ("finest", Severity::Trace),
        ("finer", Severity::Trace),
        ("debug", Severity::Debug),
        ("fine", Severity::Debug),
        ("info", Severity::Info),
        ("notice", Severity::Info),
        ("warn", Severity::Warn),
        ("warning", Severity::Warn),
        ("error", Severity::Error),
        ("severe", Severity::Error),
        ("fatal", Severity::Critical),
        ("critical", Severity::Critical),
        ("crit", Severity::Critical),
        ("panic", Severity::Critical),
        ("emerg", Severity::Critical),
    ];
    WORDS
        .iter()
        .find(|(w, _)| token.eq_ignore_ascii_case(w))
        .map(|(_, s)| *s)
}

/// The three-letter levels of Serilog (`{Level:u3}`) and .NET console loggers, accepted
/// only inside brackets where they cannot be an ordinary word.
fn short_level(token: &str) -> Option<Severity> {
    match token {
        "VRB" | "TRC" | "trce" => Some(Severity::Trace),
        "DBG" | "dbug" => Some(Severity::Debug),
        "INF" | "info" => Some(Severity::Info),
        "WRN" | "warn" => Some(Severity::Warn),
        "ERR" | "fail" => Some(Severity::Error),
        "FTL" | "crit" => Some(Severity::Critical),
        _ => None,
    }
}

/// Split off the first whitespace-delimited word.
fn word(s: &str) -> (&str, &str) {
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    (s.get(..end).unwrap_or(s), s.get(end..).unwrap_or(""))
}

/// `[inner]` at the start of `s`: the inner text and what follows.
fn bracket(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find(']')?;
    Some((inner.get(..close)?, inner.get(close + 1..)?))
}

/// Spring Boot: `ERROR 1 --- [thread] logger : msg`, with 3.2's `[app] [thread]` form.
fn spring(s: &str) -> Option<Fields<'_>> {
    let (level, rest) = word(s);
    let severity = level_token(level)?;
    let mut rest = rest.trim_start();
    let mut trace_id = None;
    // Spring Cloud Sleuth puts `[app,traceId,spanId(,export)]` between the level and the PID.
    while let Some((inner, after)) = bracket(rest) {
        trace_id = trace_id.or_else(|| correlation(inner));
        rest = after.trim_start();
    }
    let (pid, after_pid) = word(rest);
    let rest = if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
        after_pid.trim_start()
    } else {
        rest
    };
    let mut rest = rest.strip_prefix("---")?.trim_start();
    let mut names: [Option<&str>; 2] = [None, None];
    while let Some((inner, after)) = bracket(rest) {
        // Spring Boot 3.2+ writes `[app] [thread] [traceId-spanId] `; the last bracket that
        // is not a correlation id is the thread.
        if let Some(id) = correlation(inner) {
            trace_id = trace_id.or(Some(id));
        } else if !inner.trim().is_empty() || names[1].is_none() {
            names = [names[1], Some(inner.trim())];
        }
        rest = after.trim_start();
    }
    let thread = names[1];
    let (logger, rest) = word(rest);
    let message = rest
        .trim_start()
        .strip_prefix(':')
        .map_or(rest, str::trim_start);
    // Spring pads the logger column; `logger: msg` without the space also occurs.
    let (logger, message) = match logger.strip_suffix(':') {
        Some(l) => (l, rest.trim_start()),
        None => (logger, message),
    };
    Some(Fields {
        severity: Some(severity),
        thread: thread.filter(|t| !t.is_empty()).map(Cow::Borrowed),
        logger: (!logger.is_empty()).then_some(Cow::Borrowed(logger)),
        message: Cow::Borrowed(message.trim_end()),
        trace_id: trace_id.map(Cow::Borrowed),
        ..Fields::default()
    })
}

/// The trace id of a correlation bracket: Sleuth's `app,traceId,spanId[,export]` or
/// Micrometer's `traceId-spanId` (both ids hex). `None` for anything else, such as a thread.
fn correlation(inner: &str) -> Option<&str> {
    let inner = inner.trim();
    let is_hex = |t: &str| t.len() >= 8 && t.bytes().all(|b| b.is_ascii_hexdigit());
    let mut parts = inner.split(',').map(str::trim);
    if let (Some(_), Some(trace), Some(span)) = (parts.next(), parts.next(), parts.next())
        && is_hex(trace)
        && is_hex(span)
    {
        return Some(trace);
    }
    let (trace, span) = inner.split_once('-')?;
    (is_hex(trace) && is_hex(span)).then_some(trace)
}

/// Python logging `%(asctime)s - %(name)s - %(levelname)s - %(message)s` (and the variant
/// without the name).
fn python_dash(s: &str) -> Option<Fields<'_>> {
    let s = s.strip_prefix("- ")?;
    let mut parts = s.splitn(3, " - ");
    let a = parts.next()?;
    let b = parts.next()?;
    let c = parts.next();
    if let (Some(severity), Some(message)) = (level_token(b.trim()), c) {
        return Some(Fields {
            severity: Some(severity),
            logger: Some(Cow::Borrowed(a.trim())),
            message: Cow::Borrowed(message.trim_end()),
            ..Fields::default()
        });
    }
    let severity = level_token(a.trim())?;
    let message = s.split_once(" - ").map_or("", |(_, m)| m);
    Some(Fields {
        severity: Some(severity),
        message: Cow::Borrowed(message.trim_end()),
        ..Fields::default()
    })
}

/// The logback/log4j token order and its relatives: up to four leading tokens among a level
/// (bare, bracketed or with a colon), a bracketed thread and a logger, then the message.
fn tokens(s: &str) -> Fields<'_> {
    let mut rest = s.trim_start();
    let mut severity = None;
    let mut thread = None;
    let mut logger = None;
    for _ in 0..4 {
        if let Some((inner, after)) = bracket(rest) {
            let inner = inner.trim();
            if severity.is_none()
                && let Some(l) = level_token(inner).or_else(|| short_level(inner))
            {
                severity = Some(l);
            } else if thread.is_none() && !inner.is_empty() {
                thread = Some(inner);
            } else {
                break;
            }
            rest = after.trim_start();
            continue;
        }
        if severity.is_some() {
            break;
        }
        let (w, after) = word(rest);
        // `ERROR: msg` and Python's default `ERROR:root:msg`.
        if let Some((lw, tail)) = w.split_once(':')
            && let Some(l) = level_token(lw)
        {
            severity = Some(l);
            let tail_and_after = rest.get(lw.len() + 1..).unwrap_or("");
            if !tail.is_empty()
                && let Some((name, msg)) = tail_and_after.split_once(':')
                && !name.contains([' ', '\t'])
            {
                logger = Some(name);
                rest = msg;
            } else {
                rest = tail_and_after.trim_start();
            }
            return Fields {
                severity,
                thread: thread.map(Cow::Borrowed),
                logger: logger.map(Cow::Borrowed),
                message: Cow::Borrowed(rest.trim()),
                ..Fields::default()
            };
        }
        if let Some(l) = level_token(w) {
            severity = Some(l);
            rest = after.trim_start();
            continue;
        }
        // `logger LEVEL msg` (Python `%(name)s %(levelname)s`): one word before the level.
        let (next, after_next) = word(after.trim_start());
        if logger.is_none()
            && !w.is_empty()
            && let Some(l) = level_token(next)
        {
            logger = Some(w);
            severity = Some(l);
            rest = after_next.trim_start();
            continue;
        }
        break;
    }
    if severity.is_some() && logger.is_none() {
        let (w, after) = word(rest);
        if let Some(msg) = after
            .strip_prefix(" - ")
            .or_else(|| after.strip_prefix(" : "))
            .or_else(|| after.trim_start().strip_prefix("- "))
        {
            logger = Some(w);
            rest = msg;
        } else if let Some(name) = w.strip_suffix(':')
            && name.contains('.')
        {
            logger = Some(name);
            rest = after;
        }
    }
    Fields {
        severity,
        thread: thread.map(Cow::Borrowed),
        logger: logger.filter(|l| !l.is_empty()).map(Cow::Borrowed),
        message: Cow::Borrowed(rest.trim()),
        ..Fields::default()
    }
}

/// glog/klog: `E0501 10:00:00.123456 1 file.go:12] msg`. There is no year, so no time.
fn glog(header: &str) -> Option<Fields<'_>> {
    let b = header.as_bytes();
    let severity = match b.first()? {
        b'I' => Severity::Info,
        b'W' => Severity::Warn,
        b'E' => Severity::Error,
        b'F' => Severity::Critical,
        _ => return None,
    };
    if !b.get(1..5)?.iter().all(u8::is_ascii_digit) || *b.get(5)? != b' ' {
        return None;
    }
    let clock = header.get(6..)?;
    let len = time_of_day(clock)?;
    let rest = clock.get(len..)?.trim_start();
    let (thread_id, rest) = word(rest);
    if !thread_id.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (location, message) = rest
        .trim_start()
        .split_once("] ")
        .or_else(|| rest.trim_start().strip_suffix(']').map(|l| (l, "")))?;
    Some(Fields {
        severity: Some(severity),
        logger: Some(Cow::Borrowed(location)),
        message: Cow::Borrowed(message.trim_end()),
        ..Fields::default()
    })
}

/// One `key=value` pair of a logfmt line; the value unquoted (copied only when it had
/// escapes).
fn logfmt_pair(s: &str) -> Option<(&str, Cow<'_, str>, &str)> {
    let s = s.trim_start();
    let eq = s.find('=')?;
    let key = s.get(..eq)?;
    if key.is_empty() || key.contains([' ', '\t', '"']) {
        return None;
    }
    let rest = s.get(eq + 1..)?;
    if let Some(quoted) = rest.strip_prefix('"') {
        let bytes = quoted.as_bytes();
        let mut i = 0;
        let mut escaped = false;
        while let Some(&c) = bytes.get(i) {
            match c {
                b'\\' => {
                    escaped = true;
                    i += 2;
                    continue;
                }
                b'"' => break,
                _ => i += 1,
            }
        }
        let inner = quoted.get(..i.min(quoted.len()))?;
        let after = quoted.get(i.min(quoted.len())..)?;
        let after = after.strip_prefix('"').unwrap_or(after);
        let value = if escaped {
            Cow::Owned(unescape(inner))
        } else {
            Cow::Borrowed(inner)
        };
        return Some((key, value, after));
    }
    let end = rest.find([' ', '\t']).unwrap_or(rest.len());
    Some((key, Cow::Borrowed(rest.get(..end)?), rest.get(end..)?))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => {}
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// logfmt (logrus, go-kit, Grafana): `time=... level=error msg="..." err="..."`. Claimed
/// only when the first token is a pair and a time, level or message key is present.
fn logfmt(header: &str) -> Option<Fields<'_>> {
    let b = header.as_bytes();
    if !b
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b'@')
    {
        return None;
    }
    let first_eq = memchr::memchr(b'=', b)?;
    if memchr::memchr2(b' ', b'\t', b.get(..first_eq)?).is_some() {
        return None;
    }
    let mut f = Fields::default();
    let mut known = false;
    let mut message = None;
    let mut rest = header;
    for _ in 0..128 {
        if rest.trim().is_empty() {
            break;
        }
        let Some((key, value, after)) = logfmt_pair(rest) else {
            // A bare word: skip it.
            let (_, after) = word(rest.trim_start());
            rest = after;
            continue;
        };
        rest = after;
        match key {
            "time" | "ts" | "t" | "timestamp" | "@timestamp" | "datetime" => {
                if f.time.is_none() {
                    f.time = parse_any(&value);
                }
                known = true;
            }
            "level" | "lvl" | "severity" | "loglevel" | "log.level" => {
                f.severity = f.severity.or_else(|| severity_word(&value));
                known = true;
            }
            "msg" | "message" => {
                message = message.or(Some(value));
                known = true;
            }
            "err" | "error" | "exception" | "stacktrace" | "stack" | "error.message"
                if f.stack_trace.is_none() && !value.is_empty() =>
            {
                f.stack_trace = Some(value);
            }
            "logger" | "component" | "module" if f.logger.is_none() => f.logger = Some(value),
            "thread" => f.thread = Some(value),
            "request_id" | "requestId" | "req_id" | "x-request-id" | "reqid" => {
                f.request_id = Some(value);
            }
            "correlation_id" | "correlationId" | "x-correlation-id" => {
                f.correlation_id = Some(value);
            }
            "trace_id" | "traceId" | "traceID" | "trace.id" => f.trace_id = Some(value),
            "service" | "app" | "service.name" | "application" if f.origin.workload.is_none() => {
                f.origin.workload = Some(value);
            }
            "pod" => f.origin.pod = Some(value),
            "namespace" => f.origin.namespace = Some(value),
            "container" => f.origin.container = Some(value),
            _ => {}
        }
    }
    if !known {
        return None;
    }
    f.message = message.unwrap_or(Cow::Borrowed(""));
    Some(f)
}
