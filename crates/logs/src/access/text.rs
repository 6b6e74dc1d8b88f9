//! The text access log layouts: a fixed head read left to right, a quote-aware tail.
//!
//! Every Istio default layout (formats.md §3.1) and Envoy's own default share the head
//! `[%START_TIME%] "METHOD PATH PROTOCOL" CODE FLAGS` and the group
//! `BYTES_RECEIVED BYTES_SENT DURATION UPSTREAM_SERVICE_TIME "XFF" "UA" "REQ_ID" "AUTHORITY"
//! "UPSTREAM_HOST"`; they differ in the fields between the flags and the byte counts and in
//! the unquoted fields after the upstream host. Envoy does not escape `"` inside quoted
//! values, so the quoted group is split from both ends: X-Forwarded-For from the left, the
//! upstream host, authority and request id from the right, and the user agent (the value
//! most likely to hold quotes and spaces) is whatever remains in the middle.
//!
//! This module must not allocate or use regexes: it runs on every access row.

use super::{non_empty, strip_stat_suffix};
use crate::{Parsed, timestamp};
use memchr::{memchr, memrchr};
use meshdoctor_model::{
    AccessEntry, AccessFormat, Origin, Payload, ResponseFlags, SkipReason, Timestamp,
};
use std::borrow::Cow;

/// `%START_TIME%` with a custom format can be longer than ISO 8601, but never this long;
/// a `]` further away belongs to something else.
const MAX_TIME_LEN: usize = 64;

/// HTTP methods are short upper-case tokens (`GET`, `PROPFIND`, `M-SEARCH`); `-` for TCP.
const MAX_METHOD_LEN: usize = 24;

/// Tokens allowed between the flags and the byte counts. The Istio layouts have at most
/// three; a few more tolerates custom formats without scanning a whole line.
const MAX_MIDDLE_TOKENS: usize = 12;

/// The fixed start of a text access row, split but not otherwise interpreted.
///
/// Produced by [`split_head`] without scanning past the flags, so counting paths can read
/// the response code and flags of a row at the cost of a few dozen bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    /// The `%START_TIME%` text (inside the brackets when there are brackets).
    pub start_time: &'a str,
    /// `%REQ(:METHOD)%`, `-` for TCP rows.
    pub method: &'a str,
    /// `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%`, may be empty when the request line has one word.
    pub path: &'a str,
    /// `%PROTOCOL%`, may be empty when the request line has fewer than three words.
    pub protocol: &'a str,
    /// `%RESPONSE_CODE%`.
    pub response_code: u16,
    /// `%RESPONSE_FLAGS%` exactly as written (`UF,URX`, `-`).
    pub response_flags: &'a str,
    /// Byte offset in the line just after the flags, where the layout-specific part starts.
    pub rest: usize,
}

impl Head<'_> {
    /// `%START_TIME%` in UTC, or `None` when it is not a timestamp we can read.
    #[must_use]
    pub fn time(&self) -> Option<Timestamp> {
        timestamp::parse_any(self.start_time).map(|parsed| parsed.time)
    }
}

/// Split the head of a text access row.
///
/// `None` when the line does not start like an access row (a `[time]` or bare ISO time
/// followed by a quoted request line); `Some(Err(Malformed))` when it does but is cut off
/// or broken before the flags end. The time is not parsed here (see [`Head::time`]).
#[must_use]
pub fn split_head(line: &str) -> Option<Result<Head<'_>, SkipReason>> {
    let b = line.as_bytes();
    let (start_time, after_time) = match *b.first()? {
        b'[' => {
            let window = b.get(1..b.len().min(MAX_TIME_LEN + 2))?;
            let close = 1 + memchr(b']', window)?;
            (line.get(1..close)?, close + 1)
        }
        // Custom formats sometimes drop the brackets; only ISO times are accepted then, so
        // that Envoy's and pilot-agent's own `2024-...Z\tinfo\t...` lines fall through fast.
        c if c.is_ascii_digit() => {
            let parsed = timestamp::parse_iso(line)?;
            (line.get(..parsed.len)?, parsed.len)
        }
        _ => return None,
    };
    // Envoy's own bracket layout continues with `][thread][level]`, app logs with a level
    // word: only `] "METHOD ` is an access row, so this is where most lines stop.
    if !start_time
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    let req_open = skip_ws(b, after_time);
    if req_open == after_time || b.get(req_open) != Some(&b'"') {
        return None;
    }
    let method_start = req_open + 1;
    let method_end = scan(b, method_start, |c| {
        c.is_ascii_uppercase() || c == b'-' || c == b'_'
    });
    if method_end == method_start || method_end - method_start > MAX_METHOD_LEN {
        return None;
    }
    match b.get(method_end) {
        Some(&c) if is_ws(c) => {}
        None => return Some(Err(SkipReason::Malformed)),
        Some(_) => return None,
    }
    // From here on the line is an access row; anything missing means it was cut off.
    // The request line ends at the first quote followed by whitespace and a digit (the
    // code): a path may contain quotes, but not that sequence in practice.
    let mut from = method_end;
    let (close, code_start) = loop {
        let Some(off) = b.get(from..).and_then(|s| memchr(b'"', s)) else {
            return Some(Err(SkipReason::Malformed));
        };
        let quote = from + off;
        let next = skip_ws(b, quote + 1);
        if next > quote + 1 && b.get(next).is_some_and(u8::is_ascii_digit) {
            break (quote, next);
        }
        if next >= b.len() {
            return Some(Err(SkipReason::Malformed));
        }
        from = quote + 1;
    };
    let code_end = scan(b, code_start, |c| c.is_ascii_digit());
    let Some(response_code) = parse_code(b.get(code_start..code_end)?) else {
        return Some(Err(SkipReason::Malformed));
    };
    if !b.get(code_end).copied().is_some_and(is_ws) {
        return Some(Err(SkipReason::Malformed));
    }
    let flags_start = skip_ws(b, code_end);
    let flags_end = token_end(b, flags_start);
    if flags_end == flags_start {
        return Some(Err(SkipReason::Malformed));
    }
    let method = line.get(method_start..method_end)?;
    let words_start = method_end + 1;
    let (path, protocol) = match b.get(words_start..close)?.iter().rposition(|&c| is_ws(c)) {
        Some(space) => (
            line.get(words_start..words_start + space)?,
            line.get(words_start + space + 1..close)?,
        ),
        None => (line.get(words_start..close)?, ""),
    };
    Some(Ok(Head {
        start_time,
        method,
        path,
        protocol,
        response_code,
        response_flags: line.get(flags_start..flags_end)?,
        rest: flags_end,
    }))
}

/// Parse a full text row; see the module docs for the layouts.
pub(super) fn parse(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let line = first_line(record);
    let head = match split_head(line)? {
        Ok(head) => head,
        Err(reason) => return Some(Err(reason)),
    };
    let Some(time) = head.time() else {
        return Some(Err(SkipReason::BadTimestamp));
    };
    Some(parse_tail(line, &head).map(|entry| Parsed {
        time: Some(time),
        origin: Origin::default(),
        payload: Payload::Access(Box::new(entry)),
    }))
}

/// One whitespace-separated token between the flags and the quoted group.
#[derive(Clone, Copy, Debug)]
enum Token<'a> {
    /// An unquoted value.
    Bare(&'a str),
    /// A quoted value, without its quotes.
    Quoted(&'a str),
}

impl Token<'_> {
    /// True for the byte counts and durations: digits or `-`.
    fn is_number_slot(self) -> bool {
        match self {
            Token::Bare(text) => text == "-" || text.bytes().all(|c| c.is_ascii_digit()),
            Token::Quoted(_) => false,
        }
    }
}

/// The layout-specific values between the flags and the byte counts.
#[derive(Default)]
struct Middle<'a> {
    format: Option<AccessFormat>,
    details: Option<&'a str>,
    termination: Option<&'a str>,
    transport_failure: Option<&'a str>,
}

fn parse_tail<'a>(line: &'a str, head: &Head<'a>) -> Result<AccessEntry<'a>, SkipReason> {
    let b = line.as_bytes();
    // The last quote of the row closes "%UPSTREAM_HOST%": every field after it is unquoted.
    let last_quote = memrchr(b'"', b)
        .filter(|&q| q >= head.rest)
        .ok_or(SkipReason::Malformed)?;

    // Left to right from the flags: the X-Forwarded-For field is the first quoted token
    // that follows four number slots (bytes received/sent, duration, service time).
    let mut tokens = [Token::Bare(""); MAX_MIDDLE_TOKENS];
    let mut n_tokens: usize = 0;
    let mut pos = head.rest;
    let xff_open = loop {
        pos = skip_ws(b, pos);
        if pos >= last_quote {
            return Err(SkipReason::Malformed);
        }
        if b.get(pos) == Some(&b'"') {
            let numbers_before = n_tokens
                .checked_sub(4)
                .and_then(|from| tokens.get(from..n_tokens))
                .is_some_and(|t| t.iter().all(|t| t.is_number_slot()));
            if numbers_before {
                break pos;
            }
            let end = quoted_end(b, pos + 1).ok_or(SkipReason::Malformed)?;
            push_token(
                &mut tokens,
                &mut n_tokens,
                Token::Quoted(sub(line, pos + 1, end)),
            )?;
            pos = end + 1;
        } else {
            let end = token_end(b, pos);
            push_token(&mut tokens, &mut n_tokens, Token::Bare(sub(line, pos, end)))?;
            pos = end;
        }
    };
    let (prefix, numbers) = tokens
        .get(..n_tokens)
        .zip(n_tokens.checked_sub(4))
        .and_then(|(t, at)| t.split_at_checked(at))
        .ok_or(SkipReason::Malformed)?;

    // The quoted group, split from both ends (see the module docs).
    let group_end = last_quote;
    let (xff_close, ua_start) =
        sep_forward(b, xff_open + 1, group_end).ok_or(SkipReason::Malformed)?;
    let (host_sep, host_start) =
        sep_backward(b, ua_start, group_end).ok_or(SkipReason::Malformed)?;
    let (auth_sep, auth_start) =
        sep_backward(b, ua_start, host_sep).ok_or(SkipReason::Malformed)?;
    let (reqid_sep, reqid_start) =
        sep_backward(b, ua_start, auth_sep).ok_or(SkipReason::Malformed)?;

    // Unquoted fields after the upstream host.
    let mut tail = [""; 6];
    let mut n_tail = 0;
    let mut pos = skip_ws(b, last_quote + 1);
    while pos < b.len() {
        let end = token_end(b, pos);
        if let Some(slot) = tail.get_mut(n_tail) {
            *slot = sub(line, pos, end);
        }
        n_tail += 1;
        pos = skip_ws(b, end);
    }
    // Istio layouts end in at least cluster, three addresses and SNI; fewer means the row
    // was cut. Envoy's own default has nothing after the upstream host.
    if !prefix.is_empty() && n_tail < 5 {
        return Err(SkipReason::Malformed);
    }

    let middle = classify_middle(prefix, n_tail);
    // Not `[0, 1, 2, 3].map(..)`: array map does not optimise well on this hot path.
    let number = |i: usize| match numbers.get(i) {
        Some(Token::Bare(text)) => parse_u64(text),
        _ => None,
    };
    let (received, sent, duration, service_time) = (number(0), number(1), number(2), number(3));
    let tail_field = |i: usize| tail.get(i).and_then(|w| non_empty(w)).map(Cow::Borrowed);
    let quoted = |from: usize, to: usize| non_empty(sub(line, from, to)).map(Cow::Borrowed);

    Ok(AccessEntry {
        format: middle.format,
        method: non_empty(head.method).map(Cow::Borrowed),
        path: non_empty(head.path).map(Cow::Borrowed),
        protocol: non_empty(head.protocol).map(Cow::Borrowed),
        response_code: head.response_code,
        response_flags: ResponseFlags::parse(head.response_flags),
        response_code_details: middle.details.and_then(non_empty).map(Cow::Borrowed),
        connection_termination_details: middle.termination.and_then(non_empty).map(Cow::Borrowed),
        upstream_transport_failure_reason: middle
            .transport_failure
            .and_then(non_empty)
            .map(Cow::Borrowed),
        bytes_received: received,
        bytes_sent: sent,
        duration_ms: duration,
        upstream_service_time_ms: service_time,
        x_forwarded_for: quoted(xff_open + 1, xff_close),
        user_agent: quoted(ua_start, reqid_sep),
        request_id: quoted(reqid_start, auth_sep),
        authority: quoted(auth_start, host_sep),
        upstream_host: quoted(host_start, group_end),
        upstream_cluster: tail
            .first()
            .map(|c| strip_stat_suffix(c))
            .and_then(non_empty)
            .map(Cow::Borrowed),
        upstream_local_address: tail_field(1),
        downstream_local_address: tail_field(2),
        downstream_remote_address: tail_field(3),
        requested_server_name: tail_field(4),
        route_name: tail_field(5),
    })
}

/// Tell the layouts apart by the shape of the fields between the flags and the byte counts.
fn classify_middle<'a>(prefix: &[Token<'a>], n_tail: usize) -> Middle<'a> {
    match *prefix {
        [
            Token::Bare(details),
            Token::Bare(termination),
            Token::Quoted(tfr),
        ] => Middle {
            format: Some(AccessFormat::TextIstio19),
            details: Some(details),
            termination: Some(termination),
            transport_failure: Some(tfr),
        },
        [Token::Quoted(_mixer), Token::Quoted(tfr)] => Middle {
            format: Some(AccessFormat::TextIstio13),
            transport_failure: Some(tfr),
            ..Middle::default()
        },
        // One quoted value: the 1.8 transport failure reason when the row ends in a route
        // name, else the mixer status of the oldest layouts, which had no route name.
        [Token::Quoted(tfr)] if n_tail >= 6 => Middle {
            format: Some(AccessFormat::TextIstio18),
            transport_failure: Some(tfr),
            ..Middle::default()
        },
        [Token::Quoted(_mixer)] => Middle {
            format: Some(AccessFormat::TextIstio13),
            ..Middle::default()
        },
        // Envoy's own default format, or a custom one: keep only what is certain.
        _ => Middle {
            transport_failure: match prefix.last() {
                Some(Token::Quoted(tfr)) => Some(tfr),
                _ => None,
            },
            ..Middle::default()
        },
    }
}

fn push_token<'a>(
    tokens: &mut [Token<'a>; MAX_MIDDLE_TOKENS],
    n_tokens: &mut usize,
    token: Token<'a>,
) -> Result<(), SkipReason> {
    let slot = tokens.get_mut(*n_tokens).ok_or(SkipReason::Malformed)?;
    *slot = token;
    *n_tokens += 1;
    Ok(())
}

/// The first line of a record, without a trailing `\r`.
fn first_line(record: &str) -> &str {
    let line = match memchr(b'\n', record.as_bytes()) {
        Some(end) => record.get(..end).unwrap_or(record),
        None => record,
    };
    line.strip_suffix('\r').unwrap_or(line)
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn skip_ws(b: &[u8], from: usize) -> usize {
    scan(b, from, is_ws)
}

/// The first index at or after `from` whose byte does not satisfy `keep` (or the length).
fn scan(b: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    match b.get(from..) {
        Some(rest) => from + rest.iter().position(|&c| !keep(c)).unwrap_or(rest.len()),
        None => from,
    }
}

/// The end of the unquoted token starting at `from`: the next space or tab, or the length.
///
/// Tokens (addresses, cluster names) are 10–60 bytes: too short for memchr2's setup to pay,
/// long enough that testing eight bytes per step (SWAR) halves the cost of a row's tail.
fn token_end(b: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let Some(rest) = b.get(from..) else {
        return from;
    };
    let mut at = 0;
    while let Some(chunk) = rest.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A byte equal to ' ' or '\t' becomes zero after the xor; the classic zero-byte
        // test marks it, and the lowest mark is always a true match.
        let spaces = word ^ (ONES * u64::from(b' '));
        let tabs = word ^ (ONES * u64::from(b'\t'));
        let marks = (spaces.wrapping_sub(ONES) & !spaces & HIGHS)
            | (tabs.wrapping_sub(ONES) & !tabs & HIGHS);
        if marks != 0 {
            return from + at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    scan(b, from + at, |c| !is_ws(c))
}

/// `line[from..to]`, or `""` when the range is not valid (it always is for ranges built
/// from ASCII delimiters; this keeps the parser free of panics regardless).
fn sub(line: &str, from: usize, to: usize) -> &str {
    line.get(from..to).unwrap_or("")
}

/// The closing quote of a quoted middle token starting at `from`: a quote followed by
/// whitespace or the end of the line.
fn quoted_end(b: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    loop {
        let quote = pos + memchr(b'"', b.get(pos..)?)?;
        if b.get(quote + 1).is_none_or(|&c| is_ws(c)) {
            return Some(quote);
        }
        pos = quote + 1;
    }
}

/// The first `" "` separator in `b[lo..hi]`: returns (closing quote, start of next value).
fn sep_forward(b: &[u8], lo: usize, hi: usize) -> Option<(usize, usize)> {
    let mut from = lo;
    while from < hi {
        let quote = from + memchr(b'"', b.get(from..hi)?)?;
        let open = skip_ws(b, quote + 1).min(hi);
        if open > quote + 1 && open < hi && b.get(open) == Some(&b'"') {
            return Some((quote, open + 1));
        }
        from = quote + 1;
    }
    None
}

/// The last `" "` separator in `b[lo..hi]` whose closing quote is at or after `lo`:
/// returns (closing quote, start of next value).
fn sep_backward(b: &[u8], lo: usize, hi: usize) -> Option<(usize, usize)> {
    let mut end = hi;
    while end > lo {
        let open = lo + memrchr(b'"', b.get(lo..end)?)?;
        let mut close = open;
        while close > lo && b.get(close - 1).copied().is_some_and(is_ws) {
            close -= 1;
        }
        if close < open && close > lo && b.get(close - 1) == Some(&b'"') {
            return Some((close - 1, open + 1));
        }
        end = open;
    }
    None
}

fn parse_code(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    let mut value: u32 = 0;
    for &c in digits {
        value = value * 10 + u32::from(c.wrapping_sub(b'0'));
    }
    u16::try_from(value).ok()
}

/// Digits to a number; `-`, empty, non-digits and overflow give `None`.
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for c in text.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_allow_empty_and_quoted_values() {
        let b = br#"-" "" "id"#;
        assert_eq!(sep_forward(b, 0, b.len()), Some((1, 4)));
        assert_eq!(sep_backward(b, 4, b.len()), Some((4, 7)));
        let b = br#"a "b" c" "id"#;
        assert_eq!(sep_backward(b, 0, b.len()), Some((7, 10)));
        assert_eq!(sep_forward(b"no separator", 0, 12), None);
    }

    #[test]
    fn head_of_a_tcp_row() {
        let line = r#"[2024-05-01T10:00:00.456Z] "- - -" 0 UF,URX - - "-" 0 0 10001 -"#;
        let head = split_head(line).unwrap().unwrap();
        assert_eq!(
            (head.method, head.path, head.protocol, head.response_code),
            ("-", "-", "-", 0)
        );
        assert_eq!(head.response_flags, "UF,URX");
        assert_eq!(&line[head.rest..head.rest + 3], " - ");
    }

    #[test]
    fn token_end_matches_a_plain_scan() {
        let text = b"outbound|8080||orders.shop.svc.cluster.local 10.0.0.1:80\tx  y z";
        for from in 0..=text.len() + 1 {
            assert_eq!(
                token_end(text, from),
                scan(text, from, |c| !is_ws(c)),
                "{from}"
            );
        }
        assert_eq!(token_end(b"", 0), 0);
    }

    #[test]
    fn first_line_drops_continuations_and_cr() {
        assert_eq!(first_line("a b\r\n c"), "a b");
        assert_eq!(first_line("a b"), "a b");
    }
}
