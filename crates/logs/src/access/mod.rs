//! Envoy access log rows: every Istio default text layout, Envoy's own default, and JSON.
//!
//! [`parse_text`] reads `[%START_TIME%] "%REQ(:METHOD)% path %PROTOCOL%" %RESPONSE_CODE%
//! %RESPONSE_FLAGS% ...` rows and tells the Istio layouts apart by the shape of the fields
//! between the flags and the byte counts (formats.md §3.1), never by guessing a version:
//!
//! | fields after the flags | layout |
//! |---|---|
//! | `DETAILS TERMINATION "TFR"` | Istio 1.9+ ([`TextIstio19`](meshdoctor_model::AccessFormat::TextIstio19)) |
//! | `"TFR"` | Istio 1.8 ([`TextIstio18`](meshdoctor_model::AccessFormat::TextIstio18)) |
//! | `"MIXER" "TFR"` | Istio ≤1.7 ([`TextIstio13`](meshdoctor_model::AccessFormat::TextIstio13)) |
//! | nothing | Envoy's own default (no Istio tail; `format: None`) |
//!
//! [`parse_json`] reads the JSON encoding (formats.md §3.2) with a borrowed serde struct.
//! [`parse_head`] reads only the fixed head (time, code, flags) for counting paths that must
//! run near grep speed. The [`cluster`] helpers classify `%UPSTREAM_CLUSTER%` values.
//!
//! Both parsers answer `None` for records that are not access rows at all (so the dispatcher
//! tries the next family), `Some(Err(_))` for rows that clearly are access rows but cannot be
//! used (truncated, bad timestamp), and never panic. They do not allocate for the common case
//! and they do not interpret rows (no counting, no diagnosis): that is the callers' job.

pub mod cluster;
mod json;
mod text;

pub use cluster::{AccessEntryExt, Direction, cluster_direction, cluster_service, split_details};
pub use text::{Head, split_head};

use crate::Parsed;
use meshdoctor_model::{ResponseFlags, SkipReason, Timestamp};

/// Parse an access log text row (`[time] "GET /path HTTP/1.1" 503 UC ...`).
///
/// Only the first line of `record` is read. Returns `None` when the record is not an access
/// row (Envoy's own `[time][thread][level]` lines, app logs), `Some(Err(_))` when it starts
/// like one but is truncated or malformed.
#[must_use]
pub fn parse_text(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    text::parse(record)
}

/// Parse an access log JSON row (`{"response_code":503,"response_flags":"UC",...}`).
///
/// Only objects that carry `response_code` plus one of `upstream_cluster`, `start_time`,
/// `response_flags` or `duration` are claimed; other JSON (application logs) gives `None`.
#[must_use]
pub fn parse_json(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    json::parse(record)
}

/// Whether [`parse_json`] could claim this line: it contains the `"response_code"` key.
/// Without it the answer is `None` whatever else the line holds.
#[must_use]
pub fn may_be_json_row(line: &str) -> bool {
    json::has_response_code(line)
}

/// Read only the fixed head of a text row: `%START_TIME%`, `%RESPONSE_CODE%` and
/// `%RESPONSE_FLAGS%`, without looking at the rest of the line.
///
/// This is the fast path for counting (e.g. 503s per flag over gigabytes): callers should
/// prefilter lines on a literal such as `" 503 "` and call this only on candidates. `None`
/// when the line is not a text access row or its head is broken.
#[must_use]
pub fn parse_head(line: &str) -> Option<(Timestamp, u16, ResponseFlags)> {
    let head = split_head(line)?.ok()?;
    let time = head.time()?;
    Some((
        time,
        head.response_code,
        ResponseFlags::parse(head.response_flags),
    ))
}

/// `-` and the empty string are Envoy's "no value".
fn non_empty(value: &str) -> Option<&str> {
    if value.is_empty() || value == "-" {
        None
    } else {
        Some(value)
    }
}

/// Strip the one `;` Istio 1.23+ appends to `%UPSTREAM_CLUSTER%` (the alt stat name).
fn strip_stat_suffix(cluster: &str) -> &str {
    cluster.strip_suffix(';').unwrap_or(cluster)
}

#[cfg(test)]
mod tests;
