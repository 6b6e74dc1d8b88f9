//! JSON application log lines in the common field sets, any key order, extra keys ignored.
//!
//! One borrowed struct ([`JsonLine`]) names every key the supported encoders write; serde
//! skips the rest with `IgnoredAny`. Each key has its own field rather than a serde alias,
//! because real lines carry several spellings at once (`timestamp` and `@timestamp`,
//! `message` and `event`) and aliases would reject such a line as a duplicate. Values are
//! [`Flex`]: a string borrowed from the line when it has no escapes, a number, or a nested
//! object read into a small struct, so one key that holds a string for one encoder and an
//! object for another (`error`, `service`, `log`, `event`) does not fail the line.
//!
//! Field sets: logstash-logback-encoder and the founding incident's set; ECS (nested and
//! dotted keys); zap; pino/bunyan (numeric levels); Python json loggers and structlog;
//! Serilog compact (`@t`/`@l`/`@m`/`@mt`/`@x`) and its full JSON formatter, .NET's JSON
//! console (`LogLevel`, `Category`, `Exception`); GCP structured logging; log4j2 JsonLayout;
//! Spring's GELF (`_logger_name`, `_error_stack_trace`); fluentd/fluent-bit `kubernetes`
//! metadata. This module must not guess from values alone
//! (a key decides what a value means) and must not build `serde_json::Value`.

use super::{Fields, build, severity_number, severity_word};
use crate::Parsed;
use crate::timestamp::{ParsedTime, from_epoch_number, parse_any};
use meshdoctor_model::{Origin, Severity, SkipReason};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A JSON value whose type varies between encoders. Objects are read into `T`.
#[derive(Debug, Default)]
pub(super) enum Flex<'a, T = IgnoredAny> {
    /// Key absent or `null`.
    #[default]
    Absent,
    /// A string (borrowed unless it had escapes).
    Str(Cow<'a, str>),
    /// A number (or boolean as 0/1; only levels and times use numbers).
    Num(f64),
    /// An object. Boxed so the line struct stays small: it is moved a few times per line.
    Obj(Box<T>),
    /// An array; never used.
    Other,
}

impl<'a, T> Flex<'a, T> {
    /// The non-blank string, if this is one.
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Flex::Str(s) if !s.trim().is_empty() => Some(s),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Flex::Str(s) if !s.trim().is_empty() => Some(s),
            _ => None,
        }
    }

    fn into_obj(self) -> Option<T> {
        match self {
            Flex::Obj(t) => Some(*t),
            _ => None,
        }
    }

    fn is_present(&self) -> bool {
        !matches!(self, Flex::Absent)
    }

    /// Split into the string form and the object form.
    fn split(self) -> (Option<Cow<'a, str>>, Option<T>) {
        match self {
            Flex::Obj(t) => (None, Some(*t)),
            other => (other.into_str(), None),
        }
    }
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for Flex<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FlexVisitor(PhantomData))
    }
}

struct FlexVisitor<'a, T>(PhantomData<(&'a (), T)>);

impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for FlexVisitor<'a, T> {
    type Value = Flex<'a, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Flex::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Flex::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Flex::Str(Cow::Owned(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Flex::Num(f64::from(u8::from(v))))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Flex::Num(v as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Flex::Num(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Flex::Num(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Flex::Absent)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Flex::Absent)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Flex::deserialize(d)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|t| Flex::Obj(Box::new(t)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Flex::Other)
    }
}

/// `kubernetes` metadata from fluentd/fluent-bit (`namespace_name`, `pod_name`,
/// `container_name`) and ECS (`namespace`, `pod.name`, `container.name`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Kubernetes<'a> {
    #[serde(default, borrow)]
    namespace_name: Flex<'a>,
    #[serde(default, borrow)]
    namespace: Flex<'a>,
    #[serde(default, borrow)]
    pod_name: Flex<'a>,
    #[serde(default, borrow)]
    pod: Flex<'a, Named<'a>>,
    #[serde(default, borrow)]
    container_name: Flex<'a>,
    #[serde(default, borrow)]
    container: Flex<'a, Named<'a>>,
    #[serde(default, borrow)]
    labels: Flex<'a, Labels<'a>>,
}

/// An object whose useful part is its `name`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Named<'a> {
    #[serde(default, borrow)]
    name: Flex<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Labels<'a> {
    #[serde(default, borrow)]
    app: Flex<'a>,
    #[serde(default, borrow, rename = "app.kubernetes.io/name")]
    app_kubernetes_io_name: Flex<'a>,
    #[serde(default, borrow, rename = "k8s-app")]
    k8s_app: Flex<'a>,
}

/// ECS `log` object.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EcsLog<'a> {
    #[serde(default, borrow)]
    level: Flex<'a>,
    #[serde(default, borrow)]
    logger: Flex<'a>,
}

/// An error object: ECS `error`, pino/bunyan `err`, log4j2 `thrown`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorObj<'a> {
    #[serde(default, borrow)]
    message: Flex<'a>,
    #[serde(default, borrow, rename = "type")]
    kind: Flex<'a>,
    #[serde(default, borrow)]
    name: Flex<'a>,
    #[serde(default, borrow)]
    stack_trace: Flex<'a>,
    #[serde(default, borrow)]
    stack: Flex<'a>,
    #[serde(default, borrow)]
    code: Flex<'a>,
}

/// ECS `trace`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Trace<'a> {
    #[serde(default, borrow)]
    id: Flex<'a>,
}

/// GCP's `timestamp` object and log4j2's `instant`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SecondsNanos {
    #[serde(default, alias = "epochSecond")]
    seconds: Option<f64>,
    #[serde(default, alias = "nanoOfSecond")]
    nanos: Option<f64>,
}

/// Every key the supported encoders write. Dotted names (`log.level`) are the flattened
/// forms ECS loggers and collectors write.
#[derive(Debug, Default, Deserialize)]
pub(super) struct JsonLine<'a> {
    // Time.
    #[serde(default, borrow, rename = "@timestamp")]
    at_timestamp: Flex<'a>,
    #[serde(default, borrow)]
    timestamp: Flex<'a, SecondsNanos>,
    #[serde(default, borrow)]
    time: Flex<'a>,
    #[serde(default, borrow)]
    ts: Flex<'a>,
    #[serde(default, borrow, rename = "@t")]
    at_t: Flex<'a>,
    #[serde(default, borrow)]
    asctime: Flex<'a>,
    #[serde(default, borrow)]
    datetime: Flex<'a>,
    #[serde(default, borrow, rename = "timeMillis")]
    time_millis: Flex<'a>,
    #[serde(default, borrow, rename = "Timestamp")]
    timestamp_pascal: Flex<'a>,
    #[serde(default, borrow)]
    created: Flex<'a>,
    #[serde(default, borrow)]
    instant: Flex<'a, SecondsNanos>,

    // Level.
    #[serde(default, borrow)]
    level: Flex<'a>,
    #[serde(default, borrow)]
    levelname: Flex<'a>,
    #[serde(default, borrow)]
    severity: Flex<'a>,
    #[serde(default, borrow, rename = "@l")]
    at_l: Flex<'a>,
    #[serde(default, borrow, rename = "log.level")]
    log_level: Flex<'a>,
    #[serde(default, borrow)]
    level_value: Flex<'a>,
    #[serde(default, borrow)]
    lvl: Flex<'a>,
    #[serde(default, borrow, rename = "Level")]
    level_pascal: Flex<'a>,
    #[serde(default, borrow, rename = "LogLevel")]
    log_level_pascal: Flex<'a>,

    // Message.
    #[serde(default, borrow)]
    message: Flex<'a>,
    #[serde(default, borrow)]
    msg: Flex<'a>,
    #[serde(default, borrow, rename = "@m")]
    at_m: Flex<'a>,
    #[serde(default, borrow, rename = "@mt")]
    at_mt: Flex<'a>,
    #[serde(default, borrow, rename = "Message")]
    message_pascal: Flex<'a>,
    #[serde(default, borrow, rename = "RenderedMessage")]
    rendered_message: Flex<'a>,
    #[serde(default, borrow, rename = "MessageTemplate")]
    message_template: Flex<'a>,
    #[serde(default, borrow)]
    event: Flex<'a>,
    #[serde(default, borrow)]
    short_message: Flex<'a>,
    #[serde(default, borrow)]
    log: Flex<'a, EcsLog<'a>>,

    // Logger and thread.
    #[serde(default, borrow)]
    logger_name: Flex<'a>,
    #[serde(default, borrow)]
    logger: Flex<'a>,
    #[serde(default, borrow, rename = "loggerName")]
    logger_name_camel: Flex<'a>,
    #[serde(default, borrow, rename = "Category")]
    category: Flex<'a>,
    #[serde(default, borrow, rename = "_logger_name")]
    gelf_logger: Flex<'a>,
    #[serde(default, borrow, rename = "log.logger")]
    log_logger: Flex<'a>,
    #[serde(default, borrow)]
    name: Flex<'a>,
    #[serde(default, borrow)]
    thread_name: Flex<'a>,
    #[serde(default, borrow)]
    thread: Flex<'a>,
    #[serde(default, borrow, rename = "threadName")]
    thread_name_camel: Flex<'a>,
    #[serde(default, borrow, rename = "_thread_name")]
    gelf_thread: Flex<'a>,
    #[serde(default, borrow, rename = "process.thread.name")]
    process_thread_name: Flex<'a>,

    // Stack traces and error values.
    #[serde(default, borrow)]
    stack_trace: Flex<'a>,
    #[serde(default, borrow)]
    stacktrace: Flex<'a>,
    #[serde(default, borrow)]
    stack: Flex<'a>,
    #[serde(default, borrow)]
    exception: Flex<'a, ErrorObj<'a>>,
    #[serde(default, borrow)]
    exc_info: Flex<'a>,
    #[serde(default, borrow)]
    exc_text: Flex<'a>,
    #[serde(default, borrow, rename = "Exception")]
    exception_pascal: Flex<'a>,
    #[serde(default, borrow, rename = "_error_stack_trace")]
    gelf_stack: Flex<'a>,
    #[serde(default, borrow, rename = "@x")]
    at_x: Flex<'a>,
    #[serde(default, borrow)]
    error: Flex<'a, ErrorObj<'a>>,
    #[serde(default, borrow)]
    err: Flex<'a, ErrorObj<'a>>,
    #[serde(default, borrow)]
    thrown: Flex<'a, ErrorObj<'a>>,
    #[serde(default, borrow, rename = "error.stack_trace")]
    error_stack_trace: Flex<'a>,
    #[serde(default, borrow, rename = "error.message")]
    error_message: Flex<'a>,
    #[serde(default, borrow, rename = "error.type")]
    error_type: Flex<'a>,

    // Ids.
    #[serde(default, borrow, rename = "requestId")]
    request_id_camel: Flex<'a>,
    #[serde(default, borrow, rename = "RequestId")]
    request_id_pascal: Flex<'a>,
    #[serde(default, borrow)]
    request_id: Flex<'a>,
    #[serde(default, borrow, rename = "x-request-id")]
    x_request_id: Flex<'a>,
    #[serde(default, borrow, rename = "X-Request-ID")]
    x_request_id_upper: Flex<'a>,
    #[serde(default, borrow, rename = "reqId")]
    req_id_camel: Flex<'a>,
    #[serde(default, borrow)]
    req_id: Flex<'a>,
    #[serde(default, borrow, rename = "http.request.id")]
    http_request_id: Flex<'a>,
    #[serde(default, borrow, rename = "x-correlation-id")]
    x_correlation_id: Flex<'a>,
    #[serde(default, borrow, rename = "X-Correlation-ID")]
    x_correlation_id_upper: Flex<'a>,
    #[serde(default, borrow, rename = "correlationId")]
    correlation_id_camel: Flex<'a>,
    #[serde(default, borrow, rename = "CorrelationId")]
    correlation_id_pascal: Flex<'a>,
    #[serde(default, borrow)]
    correlation_id: Flex<'a>,
    #[serde(default, borrow, rename = "traceId")]
    trace_id_camel: Flex<'a>,
    #[serde(default, borrow, rename = "TraceId")]
    trace_id_pascal: Flex<'a>,
    #[serde(default, borrow)]
    trace_id: Flex<'a>,
    #[serde(default, borrow, rename = "traceID")]
    trace_id_upper: Flex<'a>,
    #[serde(default, borrow, rename = "trace.id")]
    trace_dot_id: Flex<'a>,
    #[serde(default, borrow, rename = "X-B3-TraceId")]
    b3_trace_id: Flex<'a>,
    #[serde(default, borrow, rename = "dd.trace_id")]
    dd_trace_id: Flex<'a>,
    #[serde(default, borrow, rename = "logging.googleapis.com/trace")]
    gcp_trace: Flex<'a>,
    #[serde(default, borrow, rename = "@tr")]
    at_tr: Flex<'a>,
    #[serde(default, borrow)]
    trace: Flex<'a, Trace<'a>>,

    // Origin.
    #[serde(default, borrow)]
    service: Flex<'a, Named<'a>>,
    #[serde(default, borrow, rename = "service.name")]
    service_name_dotted: Flex<'a>,
    #[serde(default, borrow, rename = "serviceName")]
    service_name_camel: Flex<'a>,
    #[serde(default, borrow)]
    app: Flex<'a>,
    #[serde(default, borrow)]
    application: Flex<'a>,
    #[serde(default, borrow)]
    hostname: Flex<'a>,
    #[serde(default, borrow)]
    kubernetes: Flex<'a, Kubernetes<'a>>,
    #[serde(default, borrow, rename = "kubernetes.namespace_name")]
    k8s_namespace_name: Flex<'a>,
    #[serde(default, borrow, rename = "kubernetes.namespace")]
    k8s_namespace: Flex<'a>,
    #[serde(default, borrow, rename = "kubernetes.pod_name")]
    k8s_pod_name: Flex<'a>,
    #[serde(default, borrow, rename = "kubernetes.pod.name")]
    k8s_pod_dot_name: Flex<'a>,
    #[serde(default, borrow, rename = "kubernetes.container_name")]
    k8s_container_name: Flex<'a>,
    #[serde(default, borrow, rename = "kubernetes.container.name")]
    k8s_container_dot_name: Flex<'a>,
    #[serde(default, borrow, rename = "kubernetes.labels.app")]
    k8s_labels_app: Flex<'a>,
    #[serde(default, borrow, rename = "container.name")]
    container_dot_name: Flex<'a>,
    #[serde(default, borrow)]
    container: Flex<'a, Named<'a>>,
}

/// Parse one JSON record. Text after the object (a plain stack trace a logger printed on
/// the following lines) becomes the stack trace when the object carries none.
pub(super) fn parse(record: &str) -> Result<Parsed<'_>, SkipReason> {
    let trimmed = record.trim_start();
    if !trimmed.starts_with('{') {
        return Err(
            if serde_json::from_str::<IgnoredAny>(record.trim()).is_ok() {
                SkipReason::UnusableJson
            } else {
                SkipReason::InvalidJson
            },
        );
    }
    let (line, trailing) = if memchr::memchr(b'\n', trimmed.as_bytes()).is_none() {
        // One physical line, the common case: no stream bookkeeping and no trailing trace.
        let line = serde_json::from_str::<JsonLine<'_>>(trimmed).map_err(skip_reason)?;
        (line, "")
    } else {
        let mut stream = serde_json::Deserializer::from_str(trimmed).into_iter::<JsonLine<'_>>();
        let line = match stream.next() {
            Some(Ok(line)) => line,
            Some(Err(e)) => return Err(skip_reason(e)),
            None => return Err(SkipReason::InvalidJson),
        };
        let after = trimmed.get(stream.byte_offset()..).unwrap_or("");
        // Text on the same line after the object means a broken line, not a trace.
        let (same_line, next_lines) = after.split_once('\n').unwrap_or((after, ""));
        if !same_line.trim().is_empty() {
            return Err(SkipReason::InvalidJson);
        }
        (line, next_lines.trim_end())
    };
    let mut fields = resolve(line).ok_or(SkipReason::UnusableJson)?;
    if fields.stack_trace.is_none() && !trailing.trim().is_empty() {
        fields.stack_trace = Some(Cow::Borrowed(trailing));
    }
    Ok(build(fields))
}

/// Broken syntax is invalid JSON; a valid value of the wrong shape (a duplicate key, an
/// array where an object is needed) is unusable JSON.
fn skip_reason(e: serde_json::Error) -> SkipReason {
    if e.is_data() {
        SkipReason::UnusableJson
    } else {
        SkipReason::InvalidJson
    }
}

/// The first `Some` of several expressions, evaluated lazily. A macro rather than an
/// array so the untaken values are neither built nor copied: this runs on every line.
macro_rules! first {
    ($e:expr $(,)?) => { $e };
    ($e:expr, $($rest:expr),+ $(,)?) => {
        match $e {
            Some(v) => Some(v),
            None => first!($($rest),+),
        }
    };
}

fn level_of<T>(value: Flex<'_, T>) -> Option<Severity> {
    match value {
        Flex::Str(s) => severity_word(&s),
        Flex::Num(n) => severity_number(n),
        _ => None,
    }
}

/// Turn the keys that were present into record fields. `None` when nothing usable (no
/// message, level or error) was there.
#[allow(clippy::too_many_lines)]
pub(super) fn resolve(line: JsonLine<'_>) -> Option<Fields<'_>> {
    let JsonLine {
        at_timestamp,
        timestamp,
        time,
        ts,
        at_t,
        asctime,
        datetime,
        time_millis,
        timestamp_pascal,
        created,
        instant,
        level,
        levelname,
        severity,
        at_l,
        log_level,
        level_value,
        lvl,
        level_pascal,
        log_level_pascal,
        message,
        msg,
        at_m,
        at_mt,
        message_pascal,
        rendered_message,
        message_template,
        event,
        short_message,
        log,
        logger_name,
        logger,
        logger_name_camel,
        category,
        gelf_logger,
        log_logger,
        name,
        thread_name,
        thread,
        thread_name_camel,
        gelf_thread,
        process_thread_name,
        stack_trace,
        stacktrace,
        stack,
        exception,
        exc_info,
        exc_text,
        exception_pascal,
        gelf_stack,
        at_x,
        error,
        err,
        thrown,
        error_stack_trace,
        error_message,
        error_type,
        request_id_camel,
        request_id_pascal,
        request_id,
        x_request_id,
        x_request_id_upper,
        req_id_camel,
        req_id,
        http_request_id,
        x_correlation_id,
        x_correlation_id_upper,
        correlation_id_camel,
        correlation_id_pascal,
        correlation_id,
        trace_id_camel,
        trace_id_pascal,
        trace_id,
        trace_id_upper,
        trace_dot_id,
        b3_trace_id,
        dd_trace_id,
        gcp_trace,
        at_tr,
        trace,
        service,
        service_name_dotted,
        service_name_camel,
        app,
        application,
        hostname,
        kubernetes,
        k8s_namespace_name,
        k8s_namespace,
        k8s_pod_name,
        k8s_pod_dot_name,
        k8s_container_name,
        k8s_container_dot_name,
        k8s_labels_app,
        container_dot_name,
        container,
    } = line;

    // Time: the first key that holds a readable time wins.
    let serilog = at_t.is_present();
    let time = first!(
        time_of(at_timestamp),
        match timestamp {
            Flex::Obj(t) => seconds_nanos(*t),
            other => time_of(other),
        },
        time_of(time),
        time_of(ts),
        time_of(at_t),
        time_of(asctime),
        time_of(datetime),
        time_of(time_millis),
        time_of(timestamp_pascal),
        instant.into_obj().and_then(seconds_nanos),
        time_of(created),
    );

    // Level.
    let (log_str, log_obj) = log.split();
    let (ecs_level, ecs_logger) =
        log_obj.map_or((Flex::Absent, Flex::Absent), |l| (l.level, l.logger));
    let numeric_level = matches!(level, Flex::Num(_));
    let severity = first!(
        level_of(level),
        level_of(levelname),
        level_of(severity),
        level_of(at_l),
        level_of(log_level),
        level_of(ecs_level),
        level_of(lvl),
        level_of(level_pascal),
        level_of(log_level_pascal),
        level_of(level_value),
    )
    // Serilog's compact format leaves `@l` out for Information.
    .or(serilog.then_some(Severity::Info));

    // Message. structlog puts it in `event`; ECS uses `event` for an object (ignored).
    let message = first!(
        message.into_str(),
        msg.into_str(),
        at_m.into_str(),
        message_pascal.into_str(),
        rendered_message.into_str(),
        at_mt.into_str(),
        message_template.into_str(),
        event.into_str(),
        short_message.into_str(),
        log_str,
    );

    // pino and bunyan write the program name in `name`, next to `hostname` and a numeric
    // level; Python json loggers write the logger name there.
    let name_is_program = numeric_level && hostname.is_present();
    let (name_as_logger, name_as_program) = if name_is_program {
        (None, name.into_str())
    } else {
        (name.into_str(), None)
    };
    let logger = first!(
        logger_name.into_str(),
        logger.into_str(),
        logger_name_camel.into_str(),
        category.into_str(),
        gelf_logger.into_str(),
        log_logger.into_str(),
        ecs_logger.into_str(),
        name_as_logger,
    );
    let thread = first!(
        thread_name.into_str(),
        thread.into_str(),
        thread_name_camel.into_str(),
        gelf_thread.into_str(),
        process_thread_name.into_str(),
    );

    let stack_trace = error_text(ErrorParts {
        stack_trace: first_flex([stack_trace, exception_pascal, gelf_stack]),
        stacktrace,
        stack,
        exception,
        exc_info,
        exc_text,
        at_x,
        error,
        err,
        thrown,
        error_stack_trace,
        error_message,
        error_type,
    });

    if message.is_none() && stack_trace.is_none() && severity.is_none() {
        return None;
    }

    let request_id = first!(
        request_id_camel.into_str(),
        request_id_pascal.into_str(),
        request_id.into_str(),
        x_request_id.into_str(),
        x_request_id_upper.into_str(),
        req_id_camel.into_str(),
        req_id.into_str(),
        http_request_id.into_str(),
    );
    let correlation_id = first!(
        x_correlation_id.into_str(),
        x_correlation_id_upper.into_str(),
        correlation_id_camel.into_str(),
        correlation_id_pascal.into_str(),
        correlation_id.into_str(),
    );
    let (trace_str, trace_obj) = trace.split();
    let trace_id = first!(
        trace_id_camel.into_str(),
        trace_id_pascal.into_str(),
        trace_id.into_str(),
        trace_id_upper.into_str(),
        trace_dot_id.into_str(),
        trace_obj.and_then(|t| t.id.into_str()),
        trace_str,
        b3_trace_id.into_str(),
        dd_trace_id.into_str(),
        gcp_trace.into_str(),
        at_tr.into_str(),
    );

    let k8s = kubernetes.into_obj().unwrap_or_default();
    let (k8s_pod_str, k8s_pod_obj) = k8s.pod.split();
    let (k8s_container_str, k8s_container_obj) = k8s.container.split();
    let labels = k8s.labels.into_obj().unwrap_or_default();
    let (container_str, container_obj) = container.split();
    let container = first!(
        k8s.container_name.into_str(),
        k8s_container_obj.and_then(|c| c.name.into_str()),
        k8s_container_str,
        k8s_container_name.into_str(),
        k8s_container_dot_name.into_str(),
        container_dot_name.into_str(),
        container_obj.and_then(|c| c.name.into_str()),
        container_str,
    );
    let (service_str, service_obj) = service.split();
    let workload = first!(
        service_str,
        service_obj.and_then(|s| s.name.into_str()),
        service_name_dotted.into_str(),
        service_name_camel.into_str(),
        app.into_str(),
        application.into_str(),
        name_as_program,
        labels.app.into_str(),
        labels.app_kubernetes_io_name.into_str(),
        labels.k8s_app.into_str(),
        k8s_labels_app.into_str(),
    )
    // The app container is named after the workload in nearly every chart; the sidecar's
    // container never writes app JSON lines.
    .or_else(|| container.clone());
    let origin = Origin {
        namespace: first!(
            k8s.namespace_name.into_str(),
            k8s.namespace.into_str(),
            k8s_namespace_name.into_str(),
            k8s_namespace.into_str(),
        ),
        pod: first!(
            k8s.pod_name.into_str(),
            k8s_pod_obj.and_then(|p| p.name.into_str()),
            k8s_pod_str,
            k8s_pod_name.into_str(),
            k8s_pod_dot_name.into_str(),
        ),
        container,
        workload,
    };

    Some(Fields {
        time,
        severity,
        logger,
        thread,
        message: message.unwrap_or(Cow::Borrowed("")),
        stack_trace,
        request_id,
        correlation_id,
        trace_id,
        origin,
    })
}

/// The first of several string-holding keys that is present, as one value.
fn first_flex<const N: usize>(candidates: [Flex<'_>; N]) -> Flex<'_> {
    candidates
        .into_iter()
        .find(|f| f.as_str().is_some())
        .unwrap_or_default()
}

fn time_of<T>(value: Flex<'_, T>) -> Option<ParsedTime> {
    match value {
        Flex::Str(s) => parse_any(&s),
        Flex::Num(n) => from_epoch_number(n).map(|time| ParsedTime {
            // Epoch seconds as an f64 (zap's `ts`) carry microseconds at best; the digits
            // below are rounding noise, so they are rounded away.
            time: if n < 1e10 {
                meshdoctor_model::Timestamp((time.0 + 500).div_euclid(1000) * 1000)
            } else {
                time
            },
            len: 0,
            has_zone: true,
        }),
        _ => None,
    }
}

#[allow(clippy::cast_possible_truncation)]
fn seconds_nanos(t: SecondsNanos) -> Option<ParsedTime> {
    let seconds = t.seconds?;
    if !seconds.is_finite() || !(0.0..1e11).contains(&seconds) {
        return None;
    }
    let nanos = t.nanos.unwrap_or(0.0).clamp(0.0, 999_999_999.0);
    Some(ParsedTime {
        time: meshdoctor_model::Timestamp::from_parts(seconds as i64, nanos as u32),
        len: 0,
        has_zone: true,
    })
}

struct ErrorParts<'a> {
    stack_trace: Flex<'a>,
    stacktrace: Flex<'a>,
    stack: Flex<'a>,
    exception: Flex<'a, ErrorObj<'a>>,
    exc_info: Flex<'a>,
    exc_text: Flex<'a>,
    at_x: Flex<'a>,
    error: Flex<'a, ErrorObj<'a>>,
    err: Flex<'a, ErrorObj<'a>>,
    thrown: Flex<'a, ErrorObj<'a>>,
    error_stack_trace: Flex<'a>,
    error_message: Flex<'a>,
    error_type: Flex<'a>,
}

/// The logged error value and its stack, as one text. Encoders that keep the stack in its
/// own field without the error line (zap's `error` + `stacktrace`, pino's `err.code`) get the
/// parts joined, so the text always names the error; that copy only happens on error lines.
fn error_text(parts: ErrorParts<'_>) -> Option<Cow<'_, str>> {
    let ErrorParts {
        stack_trace,
        stacktrace,
        stack,
        exception,
        exc_info,
        exc_text,
        at_x,
        error,
        err,
        thrown,
        error_stack_trace,
        error_message,
        error_type,
    } = parts;
    let (exception_str, exception_obj) = exception.split();
    let (error_str, error_obj) = error.split();
    let (err_str, err_obj) = err.split();
    let thrown_obj = thrown.into_obj();

    // A full trace as one string, in order of how explicit the key is.
    let full = first!(
        stack_trace.into_str(),
        at_x.into_str(),
        error_stack_trace.into_str(),
        exception_str,
        exc_info.into_str(),
        exc_text.into_str(),
    );
    if let Some(full) = full {
        return Some(full);
    }

    let object = [error_obj, err_obj, exception_obj, thrown_obj]
        .into_iter()
        .flatten()
        .next();
    if let Some(obj) = object {
        return object_text(obj, error_message.into_str(), error_type.into_str());
    }

    // zap and logrus: `error` is the message of the error value, `stacktrace` the Go stack.
    let value = first!(error_str, err_str)
        .or_else(|| type_message(error_type.into_str(), error_message.into_str()));
    let go_stack = first!(stacktrace.into_str(), stack.into_str());
    match (value, go_stack) {
        (Some(v), Some(s)) if s.contains(v.as_ref()) => Some(s),
        (Some(v), Some(s)) => Some(Cow::Owned(format!("{v}\n{s}"))),
        (Some(v), None) => Some(v),
        (None, s) => s,
    }
}

fn type_message<'a>(
    kind: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
) -> Option<Cow<'a, str>> {
    match (kind, message) {
        (Some(k), Some(m)) => Some(Cow::Owned(format!("{k}: {m}"))),
        (Some(k), None) => Some(k),
        (None, Some(m)) => Some(m),
        (None, None) => None,
    }
}

fn object_text<'a>(
    obj: ErrorObj<'a>,
    dotted_message: Option<Cow<'a, str>>,
    dotted_type: Option<Cow<'a, str>>,
) -> Option<Cow<'a, str>> {
    let code = obj.code.as_str().map(str::to_owned);
    let trace = first!(obj.stack_trace.into_str(), obj.stack.into_str());
    let text = trace.or_else(|| {
        type_message(
            first!(obj.kind.into_str(), obj.name.into_str(), dotted_type),
            first!(obj.message.into_str(), dotted_message),
        )
    })?;
    // Node keeps `code: 'ECONNRESET'` outside `err.stack`; `Error: aborted` says nothing
    // without it.
    match code {
        Some(code) if !text.contains(code.as_str()) => {
            Some(Cow::Owned(format!("{text}\ncode: '{code}'")))
        }
        _ => Some(text),
    }
}
