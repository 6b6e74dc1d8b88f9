//! Application logs: JSON lines, text with multi-line stack traces, and the network errors they report.
//!
//! The dispatcher tries these parsers last, after the Envoy, agent and access parsers said
//! "not mine". [`parse_json`] reads JSON lines in the common field sets (logstash/logback,
//! ECS, zap, pino/bunyan, Python json loggers and structlog, Serilog compact, GCP, with
//! fluentd/fluent-bit `kubernetes` metadata) and the Splunk list-view paste (`{ [-]`);
//! [`parse_text`] reads text layouts (Spring Boot, logback/log4j, Python logging, glog,
//! logfmt, Go `log`). Both build an [`AppRecord`] through one builder that classifies the
//! network error, if any ([`errors`]), using the exception chain ([`stack`]).
//!
//! These parsers borrow from the record text and never allocate on the INFO path beyond
//! what JSON unescaping needs. They must not decide anything about causes (that is the
//! diagnose crate) and must not claim lines that carry neither a time, a level nor an error.

pub mod errors;
mod json;
mod splunk;
pub mod stack;
mod text;

use crate::Parsed;
use crate::timestamp::ParsedTime;
use meshdoctor_model::{AppRecord, Origin, Payload, Severity, SkipReason};
use std::borrow::Cow;

/// Parse an application text record (header plus continuation lines). `None` when it is
/// not such a line: no timestamp, no level and no error text.
#[must_use]
pub fn parse_text(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    if splunk::is_list_view(record) {
        return Some(splunk::parse(record));
    }
    text::parse(record)
}

/// Parse an application JSON record (or a Splunk list-view paste, which also starts with
/// `{`). Invalid JSON is `Some(Err(InvalidJson))`; valid JSON that is not an object or has
/// no usable field is `Some(Err(UnusableJson))`.
#[must_use]
pub fn parse_json(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    if splunk::is_list_view(record) {
        return Some(splunk::parse(record));
    }
    Some(json::parse(record))
}

/// [`parse_json`] for the dispatcher's application-first path, on a record of one
/// physical line (no newline; the dispatcher has looked): also says whether the object has
/// a top-level `msg`, `target` or `scope` key, the keys without which no sidecar JSON line
/// is claimed. `None` for a Splunk list-view paste.
#[must_use]
pub fn parse_json_line_noting_sidecar_keys(
    line: &str,
) -> Option<Result<(Parsed<'_>, bool), SkipReason>> {
    if splunk::is_list_view(line) {
        return None;
    }
    Some(json::parse_line_noting_sidecar_keys(line))
}

/// What every layout extracts before the record is built.
#[derive(Debug, Default)]
struct Fields<'a> {
    time: Option<ParsedTime>,
    severity: Option<Severity>,
    logger: Option<Cow<'a, str>>,
    thread: Option<Cow<'a, str>>,
    message: Cow<'a, str>,
    stack_trace: Option<Cow<'a, str>>,
    request_id: Option<Cow<'a, str>>,
    correlation_id: Option<Cow<'a, str>>,
    trace_id: Option<Cow<'a, str>>,
    origin: Origin<'a>,
}

/// Build the event, classifying the error only for candidates: a stack trace, or a level
/// of WARN or worse, or no level at all. INFO/DEBUG lines without a trace are never
/// classified, which keeps the common path as cheap as the parse and keeps success notices
/// that mention a reset out of the counts.
fn build(fields: Fields<'_>) -> Parsed<'_> {
    let candidate =
        fields.stack_trace.is_some() || fields.severity.is_none_or(|s| s >= Severity::Warn);
    let error = if candidate {
        errors::classify(&fields.message, fields.stack_trace.as_ref())
    } else {
        None
    };
    Parsed {
        time: fields.time.map(|t| t.time),
        origin: fields.origin,
        payload: Payload::App(Box::new(AppRecord {
            severity: fields.severity,
            logger: fields.logger,
            thread: fields.thread,
            message: fields.message,
            stack_trace: fields.stack_trace,
            request_id: fields.request_id,
            correlation_id: fields.correlation_id,
            trace_id: fields.trace_id,
            error,
            time_zone_assumed: fields.time.is_some_and(|t| !t.has_zone),
        })),
    }
}

/// Level names as applications write them, beyond [`Severity::parse`]: zerolog/Grafana
/// abbreviations, syslog and GCP names.
fn severity_word(text: &str) -> Option<Severity> {
    let t = text.trim();
    if let Some(s) = Severity::parse(t) {
        return Some(s);
    }
    let eq = |s: &str| t.eq_ignore_ascii_case(s);
    if eq("eror") || eq("errors") {
        Some(Severity::Error)
    } else if eq("wrn") || eq("warnings") {
        Some(Severity::Warn)
    } else if eq("inf") {
        Some(Severity::Info)
    } else if eq("dbg") {
        Some(Severity::Debug)
    } else if eq("trc") {
        Some(Severity::Trace)
    } else if eq("ftl") || eq("emergency") {
        Some(Severity::Critical)
    } else {
        None
    }
}

/// A numeric level: logback `level_value` (10000..50000), pino/bunyan (10..60), syslog and
/// GELF (0..7).
fn severity_number(value: f64) -> Option<Severity> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(if value >= 1000.0 {
        match value {
            v if v >= 50_000.0 => Severity::Critical,
            v if v >= 40_000.0 => Severity::Error,
            v if v >= 30_000.0 => Severity::Warn,
            v if v >= 20_000.0 => Severity::Info,
            v if v >= 10_000.0 => Severity::Debug,
            _ => Severity::Trace,
        }
    } else if value >= 10.0 {
        match value {
            v if v >= 60.0 => Severity::Critical,
            v if v >= 50.0 => Severity::Error,
            v if v >= 40.0 => Severity::Warn,
            v if v >= 30.0 => Severity::Info,
            v if v >= 20.0 => Severity::Debug,
            _ => Severity::Trace,
        }
    } else {
        match value {
            v if v < 3.0 => Severity::Critical,
            v if v < 4.0 => Severity::Error,
            v if v < 5.0 => Severity::Warn,
            v if v < 7.0 => Severity::Info,
            _ => Severity::Debug,
        }
    })
}

#[cfg(test)]
mod tests;
