//! Envoy's own default layout `[%Y-%m-%d %T.%e][%t][%l][%n] %v` (plain Envoy, Istio ≤ 1.3),
//! with the `[Envoy (Epoch N)] ` prefix Istio 1.4/1.5 put in front.
//!
//! The `[file:line] ` location (inside `%v` in old Envoy, the `[%g:%#] ` token in newer
//! Envoy) and the id prefix are taken off the message by the caller. This must not claim
//! access-log rows, which also start with a bracketed time but continue with `] "` rather
//! than `][`.

use super::{EnvoyParts, envoy_event, first_line, level_of, parse_u32, trim_record_end};
use crate::Parsed;
use crate::timestamp::parse_iso;
use meshdoctor_model::{EnvoyLayout, SkipReason};
use std::borrow::Cow;

const EPOCH_PREFIX: &str = "[Envoy (Epoch ";

/// Longest bracketed header token (thread, level, logger) we accept; they are short words.
const MAX_TOKEN: usize = 64;

pub(super) fn parse(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let header = first_line(record);
    let b = header.as_bytes();
    let mut start = 0;
    let epoch = b.starts_with(EPOCH_PREFIX.as_bytes());
    if epoch {
        // `[Envoy (Epoch 12)] ` — once this literal is there the line is Envoy's for sure.
        let after = EPOCH_PREFIX.len();
        let digits = b
            .get(after..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || b.get(after + digits..after + digits + 3) != Some(b")] ") {
            return Some(Err(SkipReason::Malformed));
        }
        start = after + digits + 3;
    }
    let not_ours = if epoch {
        Some(Err(SkipReason::Malformed))
    } else {
        None
    };
    // `[2019-...`: the first bytes of the bracketed time.
    let looks_like_time = b.get(start) == Some(&b'[')
        && b.get(start + 1..start + 5)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && b.get(start + 5) == Some(&b'-');
    if !looks_like_time {
        return not_ours;
    }
    let time_from = start + 1;
    let Some(close) = b
        .get(time_from..b.len().min(time_from + 40))
        .and_then(|w| memchr::memchr(b']', w))
        .map(|i| time_from + i)
    else {
        return not_ours;
    };
    if b.get(close + 1) != Some(&b'[') {
        // An access-log row (`[time] "GET ...`) or something else.
        return not_ours;
    }
    let time = match parse_iso(header.get(time_from..close)?) {
        Some(t) if t.len == close - time_from => t.time,
        _ => return Some(Err(SkipReason::BadTimestamp)),
    };
    let Some((thread, after_thread)) = token(header, close + 1) else {
        return Some(Err(SkipReason::Malformed));
    };
    let Some((level, after_level)) = token(header, after_thread) else {
        return Some(Err(SkipReason::Malformed));
    };
    let Some((logger, after_logger)) = token(header, after_level) else {
        return Some(Err(SkipReason::Malformed));
    };
    // Java layouts such as `[%d][%t][%p][%c]` look alike; Envoy's thread is a number, its
    // level and logger names are lowercase words.
    let envoy_shape = thread.bytes().all(|c| c.is_ascii_digit())
        && level.bytes().all(|c| c.is_ascii_lowercase())
        && logger
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if !envoy_shape {
        return not_ours;
    }
    let Some(level) = level_of(level) else {
        return Some(Err(SkipReason::Malformed));
    };
    let message_from = if b.get(after_logger) == Some(&b' ') {
        after_logger + 1
    } else {
        after_logger
    };
    let message = trim_record_end(record.get(message_from..).unwrap_or(""));
    Some(Ok(envoy_event(EnvoyParts {
        layout: EnvoyLayout::Bracketed,
        time: Some(time),
        level,
        logger: Cow::Borrowed(logger),
        source_location: None,
        thread: parse_u32(thread.as_bytes()),
        connection_id: None,
        stream_id: None,
        message: Cow::Borrowed(message),
    })))
}

/// `[word]` at `at`: the word and the index after `]`.
fn token(header: &str, at: usize) -> Option<(&str, usize)> {
    let b = header.as_bytes();
    if b.get(at) != Some(&b'[') {
        return None;
    }
    let from = at + 1;
    let window = b.get(from..b.len().min(from + MAX_TOKEN + 1))?;
    let close = window.iter().position(|&c| c == b']' || c == b' ')?;
    if window.get(close) != Some(&b']') || close == 0 {
        return None;
    }
    Some((header.get(from..from + close)?, from + close + 1))
}
