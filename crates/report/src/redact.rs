//! Masks credentials in text that is about to be shown in a report: header values of
//! `Authorization`, `Cookie`, `Set-Cookie` and API-key headers, bearer tokens, JWTs, API keys,
//! passwords and tokens written as `key=value`, `key: value` or JSON, and AWS access key ids.
//!
//! Reports are pasted into chat channels and tickets, so evidence lines must not carry the
//! secrets a log happened to record. Masking replaces the secret with [`MASK`] and keeps the
//! name (and the auth scheme), so a reader still sees *that* a credential was sent.
//!
//! Cheap when nothing matches: one Aho-Corasick scan for trigger words decides whether any
//! regex runs, and clean text is returned borrowed. Idempotent: the mask never matches again.
//! This module must not decide what is evidence or change anything but the secret values.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use meshdoctor_diagnose::{Diagnosis, EvidenceLine};
use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// What a masked value is replaced with.
pub const MASK: &str = "[redacted]";

/// Words at least one of which every secret shape contains (ASCII case-insensitive).
const TRIGGERS: &[&str] = &[
    "authorization",
    "cookie",
    "bearer",
    "eyj",
    "token",
    "secret",
    "passw",
    "pwd",
    "apikey",
    "api_key",
    "api-key",
    "access_key",
    "access-key",
    "akia",
    "asia",
];

static PREFILTER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(TRIGGERS)
        .ok()
});

/// A header whose whole value is a credential. Group 1: the name; group 2 or 3: the opening
/// quote of the value (JSON `"cookie": "…"`, Envoy's `'cookie', '…'` header dump).
static HEADER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:^|[^a-z0-9_-])((?:proxy-)?authorization|(?:set-)?cookie|x-api-key|x-auth-token|api-key)["']?[ \t]*(?:[:=][ \t]*(["']?)|,[ \t]*(["']))"#,
    )
    .ok()
});

/// A `key=value` / `key: value` / `"key": "value"` whose value is a secret.
static KEY_VALUE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:^|[^a-z0-9_-])([a-z0-9_-]*(?:token|secret|passwd|password|pwd|api[_-]?key|access[_-]key(?:[_-]id)?))["']?[ \t]*(?:[:=][ \t]*(["']?)|,[ \t]*(["']))"#,
    )
    .ok()
});

/// `Bearer <token>` anywhere (e.g. quoted in an application error message).
static BEARER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\bbearer[ \t]+([A-Za-z0-9\-._~+/]+=*)").ok());

/// A JSON Web Token: three base64url segments, the header starting `eyJ` (`{"`).
static JWT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*").ok());

/// AWS access key ids (long-term `AKIA…` and temporary `ASIA…`, and the other id prefixes).
static AWS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b").ok()
});

/// Auth schemes kept visible in front of a masked `Authorization` value.
const SCHEMES: &[&str] = &["bearer", "basic", "digest", "negotiate", "aws4-hmac-sha256"];

/// Mask every credential in `text`. Returns the input borrowed when nothing was masked.
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    let Some(pre) = PREFILTER.as_ref() else {
        return Cow::Borrowed(text);
    };
    if !pre.is_match(text) {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    if let Some(re) = HEADER.as_ref() {
        out = mask_values(out, re, true);
    }
    if let Some(re) = KEY_VALUE.as_ref() {
        out = mask_values(out, re, false);
    }
    if let Some(re) = BEARER.as_ref() {
        out = mask_group(out, re, 1);
    }
    if let Some(re) = JWT.as_ref() {
        out = mask_group(out, re, 0);
    }
    if let Some(re) = AWS.as_ref() {
        out = mask_group(out, re, 0);
    }
    out
}

/// Mask the evidence and free text of a diagnosis in place, for every report format.
pub fn redact_diagnosis(d: &mut Diagnosis) {
    fn field(s: &mut String) {
        if let Cow::Owned(o) = redact(s) {
            *s = o;
        }
    }
    fn lines(v: &mut [EvidenceLine]) {
        for l in v {
            field(&mut l.text);
        }
    }
    for f in &mut d.findings {
        field(&mut f.summary);
        lines(&mut f.evidence);
        lines(&mut f.counter_evidence);
    }
    for ex in &mut d.compare.failing_examples {
        lines(ex);
    }
    for ex in &mut d.compare.succeeding_examples {
        lines(ex);
    }
    for p in &mut d.compare.result.failing {
        field(&mut p.headline);
    }
    for n in &mut d.notes {
        field(n);
    }
}

fn mask_group<'a>(text: Cow<'a, str>, re: &Regex, group: usize) -> Cow<'a, str> {
    let mut spans = Vec::new();
    for c in re.captures_iter(&text) {
        if let Some(m) = c.get(group) {
            spans.push((m.start(), m.end()));
        }
    }
    apply(text, &spans)
}

/// Mask the value after each `name <sep>` match of `re`. `to_line_end`: an unquoted value
/// runs to the end of the line (header values contain spaces and `;`); otherwise it stops at
/// the first delimiter of a query string, key=value list or JSON.
fn mask_values<'a>(text: Cow<'a, str>, re: &Regex, to_line_end: bool) -> Cow<'a, str> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let bytes = text.as_bytes();
    for c in re.captures_iter(&text) {
        let Some(all) = c.get(0) else { continue };
        let start = all.end();
        if spans.last().is_some_and(|&(_, e)| all.start() < e) {
            continue;
        }
        let quote = c
            .get(2)
            .or_else(|| c.get(3))
            .and_then(|q| q.as_str().bytes().next());
        let (mut vs, ve) = match quote {
            Some(q) => (start, quoted_end(bytes, start, q)),
            None => (start, unquoted_end(bytes, start, to_line_end)),
        };
        let is_auth = c
            .get(1)
            .is_some_and(|n| n.as_str().to_ascii_lowercase().ends_with("authorization"));
        if is_auth {
            vs = skip_scheme(&text, vs, ve);
        }
        if vs >= ve || text.get(vs..ve).is_none_or(|v| v.starts_with(MASK)) {
            continue;
        }
        spans.push((vs, ve));
    }
    apply(text, &spans)
}

/// End of a value opened by `q` at `start`: the next unescaped `q`, else the line end.
fn quoted_end(bytes: &[u8], start: usize, q: u8) -> usize {
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == q || b == b'\n' || b == b'\r' {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

fn unquoted_end(bytes: &[u8], start: usize, to_line_end: bool) -> usize {
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        let stop = if to_line_end {
            matches!(b, b'\n' | b'\r' | b'"' | b'\'')
        } else {
            b.is_ascii_whitespace()
                || matches!(
                    b,
                    b'&' | b',' | b';' | b'"' | b'\'' | b'}' | b']' | b')' | b'>' | b'['
                )
        };
        if stop {
            break;
        }
        i += 1;
    }
    // Trailing spaces are not part of a header value.
    while i > start && bytes.get(i - 1).is_some_and(|b| *b == b' ' || *b == b'\t') {
        i -= 1;
    }
    // Never end inside a UTF-8 sequence (the stop bytes are ASCII, so `i` is a boundary
    // unless the loop ran off a truncated string; `apply` re-checks anyway).
    i.min(bytes.len())
}

/// Keep a leading auth scheme (`Bearer `, `Basic `) visible.
fn skip_scheme(text: &str, vs: usize, ve: usize) -> usize {
    let Some(value) = text.get(vs..ve) else {
        return vs;
    };
    for s in SCHEMES {
        if let Some(head) = value.get(..s.len())
            && head.eq_ignore_ascii_case(s)
        {
            let rest = value.get(s.len()..).unwrap_or("");
            let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            if spaces > 0 {
                return vs + s.len() + spaces;
            }
        }
    }
    vs
}

/// Replace the spans (sorted, non-overlapping after filtering) with [`MASK`].
fn apply<'a>(text: Cow<'a, str>, spans: &[(usize, usize)]) -> Cow<'a, str> {
    if spans.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(s, e) in spans {
        if s < at || e <= s || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            continue;
        }
        out.push_str(text.get(at..s).unwrap_or(""));
        out.push_str(MASK);
        at = e;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: &str) -> String {
        redact(s).into_owned()
    }

    #[test]
    fn authorization_header_keeps_scheme() {
        assert_eq!(
            r("GET / authorization: Bearer abc.def-123"),
            "GET / authorization: Bearer [redacted]"
        );
        assert_eq!(
            r("Authorization: Basic dXNlcjpwYXNz"),
            "Authorization: Basic [redacted]"
        );
        assert_eq!(
            r(r#"{"authorization":"Bearer s3cr3t","path":"/x"}"#),
            r#"{"authorization":"Bearer [redacted]","path":"/x"}"#
        );
        // Envoy's request header dump at debug level.
        assert_eq!(
            r("'authorization', 'Basic Zm9vOmJhcg=='"),
            "'authorization', 'Basic [redacted]'"
        );
    }

    #[test]
    fn cookies() {
        assert_eq!(
            r("Cookie: session=abc123; theme=dark"),
            "Cookie: [redacted]"
        );
        assert_eq!(
            r("'set-cookie', 'sid=XYZ; Path=/; HttpOnly'"),
            "'set-cookie', '[redacted]'"
        );
        assert_eq!(
            r(r#"{"set-cookie": "id=1", "code": 200}"#),
            r#"{"set-cookie": "[redacted]", "code": 200}"#
        );
    }

    #[test]
    fn bearer_anywhere() {
        assert_eq!(
            r("401 from upstream for bearer AbC123+/= while calling"),
            "401 from upstream for bearer [redacted] while calling"
        );
    }

    #[test]
    fn jwt() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let out = r(&format!("x-jwt-assertion={jwt} ok"));
        assert!(!out.contains("eyJ"), "{out}");
        let out = r(&format!("forwarding {jwt} upstream"));
        assert_eq!(out, "forwarding [redacted] upstream");
    }

    #[test]
    fn keys_in_queries_kv_and_json() {
        assert_eq!(
            r("GET /v1/items?api_key=AbCd123&page=2 HTTP/1.1"),
            "GET /v1/items?api_key=[redacted]&page=2 HTTP/1.1"
        );
        assert_eq!(
            r("\"GET /x?token=t0k&secret=s3c HTTP/1.1\" 200"),
            "\"GET /x?token=[redacted]&secret=[redacted] HTTP/1.1\" 200"
        );
        assert_eq!(
            r("db connect user=app password=hunter2 host=db"),
            "db connect user=app password=[redacted] host=db"
        );
        assert_eq!(
            r(r#"{"apikey": "k-123", "x-api-key":"k2", "client_secret":"a b"}"#),
            r#"{"apikey": "[redacted]", "x-api-key":"[redacted]", "client_secret":"[redacted]"}"#
        );
        assert_eq!(r("X-Api-Key: 12345"), "X-Api-Key: [redacted]");
        assert_eq!(
            r("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "aws_secret_access_key=[redacted]"
        );
    }

    #[test]
    fn aws_key_ids() {
        assert_eq!(
            r("using AKIAIOSFODNN7EXAMPLE for s3"),
            "using [redacted] for s3"
        );
        assert_eq!(r("ASIAY34FZKBOKMUTVV7A"), "[redacted]");
    }

    #[test]
    fn ordinary_lines_are_untouched_and_borrowed() {
        for l in [
            "2026-11-27T10:00:00.123Z debug envoy connection [C42] closing data_to_write=0 type=1",
            "[2026-11-27T10:00:01.000Z] \"GET /api/orders HTTP/1.1\" 503 UC upstream_reset_before_response_started{connection_termination} - \"-\" 0 95 3 - \"-\" \"curl/8\" \"abc\" \"orders:8080\" \"10.0.0.7:8080\" outbound|8080||orders.default.svc.cluster.local",
            "java.net.SocketException: Connection reset",
            "TLS error: 268435612:SSL routines:OPENSSL_internal:HTTP_REQUEST",
            "listener filter times out after 5000 ms",
            "token bucket refill rate 10/s",
            "Asia/Tokyo time zone",
            "",
        ] {
            assert!(matches!(redact(l), Cow::Borrowed(_)), "{l}");
        }
    }

    #[test]
    fn several_on_one_line() {
        let out = r("authorization: Bearer a1\r\ncookie: c=1\r\nuser-agent: curl");
        assert_eq!(
            out,
            "authorization: Bearer [redacted]\r\ncookie: [redacted]\r\nuser-agent: curl"
        );
    }

    /// Secret values a test plants; none may survive redaction whatever surrounds them.
    fn planted() -> impl Strategy<Value = (String, String)> {
        let secret = "[A-Za-z0-9]{12,24}";
        (secret, 0usize..9).prop_map(|(s, shape)| {
            let line = match shape {
                0 => format!("authorization: Bearer {s}"),
                1 => format!("Cookie: sid={s}; x=1"),
                2 => format!("GET /p?api_key={s}&a=b"),
                3 => format!("{{\"password\": \"{s}\"}}"),
                4 => format!("set-cookie: {s}"),
                5 => format!("token={s}"),
                6 => format!("x-api-key: {s}"),
                7 => format!("eyJ{s}.{s}.{s}"),
                _ => format!("Bearer {s}"),
            };
            (line, s)
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(s in "\\PC{0,200}") {
            let once = redact(&s).into_owned();
            let twice = redact(&once).into_owned();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn idempotent_on_secret_like_text(
            s in "((authorization|cookie|token|secret|api_key|bearer|eyJ|AKIA|[:=,'\" \\n&;]|[a-zA-Z0-9.]{1,8})){0,30}"
        ) {
            let once = redact(&s).into_owned();
            let twice = redact(&once).into_owned();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn planted_secret_never_survives(
            (line, secret) in planted(),
            before in "[ a-z0-9=:/.]{0,30}",
            after in "[ a-z0-9=:/.]{0,30}",
        ) {
            let text = format!("{before} {line} {after}");
            let out = redact(&text);
            prop_assert!(!out.contains(&secret), "{} -> {}", text, out);
        }
    }
}
