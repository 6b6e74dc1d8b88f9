//! JSON application log lines in the common field sets, any key order, extra keys ignored.
//!
//! One borrowed struct ([`JsonLine`]), declared as a key table and filled in place, names
//! every key the supported encoders write; serde skips the rest with `IgnoredAny`. Each
//! key has its own field rather than sharing one (as a serde alias would), because real
//! lines carry several spellings at once (`timestamp` and `@timestamp`, `message` and
//! `event`) and aliases would reject such a line as a duplicate. Values are
//! [`Flex`]: a string borrowed from the line when it has no escapes, a number, or a nested
//! object read into a small struct (declared and filled the same way), so one key that
//! holds a string for one encoder and an object for another (`error`, `service`, `log`,
//! `event`) does not fail the line.
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
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
    /// An object, stored inline: the line struct is filled in place and never moved, so
    /// only objects that are large and rare (error objects) are worth a `Box` in `T`.
    Obj(T),
    /// An array; never used.
    Other,
}

impl<'a, T> Flex<'a, T> {
    /// The non-blank string, if this is one.
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Flex::Str(s) if !is_blank(&s) => Some(s),
            _ => None,
        }
    }

    /// Take the non-blank string out, if this is one; anything else stays.
    fn take_str(&mut self) -> Option<Cow<'a, str>> {
        match self {
            Flex::Str(s) if !is_blank(s) => Some(std::mem::take(s)),
            _ => None,
        }
    }

    /// Take the value out, leaving `Absent`.
    fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Flex::Str(s) if !is_blank(s) => Some(s),
            _ => None,
        }
    }

    fn as_obj(&self) -> Option<&T> {
        match self {
            Flex::Obj(t) => Some(t),
            _ => None,
        }
    }

    fn as_obj_mut(&mut self) -> Option<&mut T> {
        match self {
            Flex::Obj(t) => Some(t),
            _ => None,
        }
    }

    fn into_obj(self) -> Option<T> {
        match self {
            Flex::Obj(t) => Some(t),
            _ => None,
        }
    }

    fn is_present(&self) -> bool {
        !matches!(self, Flex::Absent)
    }

    /// Split into the string form and the object form.
    fn split(self) -> (Option<Cow<'a, str>>, Option<T>) {
        match self {
            Flex::Obj(t) => (None, Some(t)),
            other => (other.into_str(), None),
        }
    }
}

/// Whether a value is empty or only whitespace. Nearly every value starts with a visible
/// ASCII character, which settles it without the Unicode-aware trim.
fn is_blank(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(&b) if b.is_ascii() && !char::from(b).is_whitespace() => false,
        _ => s.trim().is_empty(),
    }
}

/// An object read into a value that already exists: its fields are written where they lie,
/// never staged and moved out through returns (a derived visitor does both, which for the
/// `kubernetes` object alone cost a tenth of reading an application log).
pub(super) trait FillObject<'de>: Default {
    /// Read the remaining entries of `map` into `self`.
    fn fill_object<A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error>;
}

/// Objects nobody reads are skipped.
impl<'de> FillObject<'de> for IgnoredAny {
    fn fill_object<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// Large, rare objects (error objects) live in a box so the line struct stays small.
impl<'de, T: FillObject<'de>> FillObject<'de> for Box<T> {
    fn fill_object<A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        (**self).fill_object(map)
    }
}

impl<'de: 'a, 'a, T: FillObject<'de>> Flex<'a, T> {
    /// Read the next value of `map` into `self`.
    fn read_from<A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        map.next_value_seed(FlexSeed(self))
    }
}

impl<'de: 'a, 'a, T: FillObject<'de>> Deserialize<'de> for Flex<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = Flex::Absent;
        FlexSeed(&mut value).deserialize(deserializer)?;
        Ok(value)
    }
}

/// Reads one JSON value into an existing [`Flex`].
struct FlexSeed<'s, 'a, T>(&'s mut Flex<'a, T>);

impl<'de: 'a, 'a, T: FillObject<'de>> DeserializeSeed<'de> for FlexSeed<'_, 'a, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de: 'a, 'a, T: FillObject<'de>> Visitor<'de> for FlexSeed<'_, 'a, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        *self.0 = Flex::Str(Cow::Borrowed(v));
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        *self.0 = Flex::Str(Cow::Owned(v.to_owned()));
        Ok(())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        *self.0 = Flex::Str(Cow::Owned(v));
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        *self.0 = Flex::Num(f64::from(u8::from(v)));
        Ok(())
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        *self.0 = Flex::Num(v as f64);
        Ok(())
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        *self.0 = Flex::Num(v as f64);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        *self.0 = Flex::Num(v);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        *self.0 = Flex::Absent;
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        *self.0 = Flex::Absent;
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        *self.0 = Flex::Obj(T::default());
        match self.0 {
            Flex::Obj(object) => object.fill_object(map),
            _ => Ok(()),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        *self.0 = Flex::Other;
        Ok(())
    }
}

/// The key set of one object type, for [`KeySeed`].
trait KeyTable: Copy {
    /// The keys, in table order; a key's position is its bit in the seen set.
    const NAMES: &'static [&'static str];
    /// The key named `name`, if the table has it.
    fn of(name: &str) -> Option<Self>;
    /// The key's position in [`KeyTable::NAMES`].
    fn index(self) -> usize;
}

/// Declares an object struct from its key table (`field: type = "key"`, one row per key,
/// every type a [`Flex`]) with its key enum and its in-place reader ([`FillObject`]).
///
/// The table replaces `#[derive(Deserialize)]`: the derived visitor stages every field in
/// an `Option` and then moves the finished struct out through each return, which cost more
/// than reading the line. Here the caller's struct is written directly and a bit set
/// stands in for the `Option`s to reject a repeated key exactly as the derive did
/// (`duplicate field`, a data error). Keys not in the table are skipped.
macro_rules! json_object {
    (
        $(#[$doc:meta])*
        struct $name:ident, keys $keys:ident {
            $($field:ident: $ty:ty = $key:literal,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub(super) struct $name<'a> {
            $($field: $ty,)*
        }

        /// A known key of the object.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum $keys {
            $($field,)*
        }

        impl KeyTable for $keys {
            const NAMES: &'static [&'static str] = &[$($key),*];

            fn of(name: &str) -> Option<Self> {
                match name {
                    $($key => Some($keys::$field),)*
                    _ => None,
                }
            }

            fn index(self) -> usize {
                self as usize
            }
        }

        const _: () = assert!(<$keys as KeyTable>::NAMES.len() <= 128, "the seen set is a u128");

        impl<'de: 'a, 'a> FillObject<'de> for $name<'a> {
            fn fill_object<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
                let mut seen = 0u128;
                while let Some(key) = map.next_key_seed(KeySeed::<$keys>(PhantomData))? {
                    let Some(key) = key else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let bit = 1u128 << key.index();
                    if seen & bit != 0 {
                        let name = <$keys as KeyTable>::NAMES.get(key.index()).copied();
                        return Err(de::Error::duplicate_field(name.unwrap_or("?")));
                    }
                    seen |= bit;
                    match key {
                        $($keys::$field => self.$field.read_from(&mut map)?,)*
                    }
                }
                Ok(())
            }
        }
    };
}

json_object! {
    /// `kubernetes` metadata from fluentd/fluent-bit (`namespace_name`, `pod_name`,
    /// `container_name`) and ECS (`namespace`, `pod.name`, `container.name`).
    struct Kubernetes, keys KubernetesKey {
        namespace_name: Flex<'a> = "namespace_name",
        namespace: Flex<'a> = "namespace",
        pod_name: Flex<'a> = "pod_name",
        pod: Flex<'a, Named<'a>> = "pod",
        container_name: Flex<'a> = "container_name",
        container: Flex<'a, Named<'a>> = "container",
        labels: Flex<'a, Labels<'a>> = "labels",
    }
}

json_object! {
    /// An object whose useful part is its `name`.
    struct Named, keys NamedKey {
        name: Flex<'a> = "name",
    }
}

json_object! {
    /// Pod labels that name the workload.
    struct Labels, keys LabelsKey {
        app: Flex<'a> = "app",
        app_kubernetes_io_name: Flex<'a> = "app.kubernetes.io/name",
        k8s_app: Flex<'a> = "k8s-app",
    }
}

json_object! {
    /// ECS `log` object.
    struct EcsLog, keys EcsLogKey {
        level: Flex<'a> = "level",
        logger: Flex<'a> = "logger",
    }
}

json_object! {
    /// An error object: ECS `error`, pino/bunyan `err`, log4j2 `thrown`.
    struct ErrorObj, keys ErrorObjKey {
        message: Flex<'a> = "message",
        kind: Flex<'a> = "type",
        name: Flex<'a> = "name",
        stack_trace: Flex<'a> = "stack_trace",
        stack: Flex<'a> = "stack",
        code: Flex<'a> = "code",
    }
}

json_object! {
    /// ECS `trace`.
    struct Trace, keys TraceKey {
        id: Flex<'a> = "id",
    }
}

/// GCP's `timestamp` object and log4j2's `instant`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SecondsNanos {
    #[serde(default, alias = "epochSecond")]
    seconds: Option<f64>,
    #[serde(default, alias = "nanoOfSecond")]
    nanos: Option<f64>,
}

/// Rare (GCP, log4j2) and small, with aliases: the derived reader is kept.
impl<'de> FillObject<'de> for SecondsNanos {
    fn fill_object<A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        *self = SecondsNanos::deserialize(MapAccessDeserializer::new(map))?;
        Ok(())
    }
}

json_object! {
    /// Every key the supported encoders write. Dotted names (`log.level`) are the flattened
    /// forms ECS loggers and collectors write.
    struct JsonLine, keys Key {
    // Time.
    at_timestamp: Flex<'a> = "@timestamp",
    timestamp: Flex<'a, SecondsNanos> = "timestamp",
    time: Flex<'a> = "time",
    ts: Flex<'a> = "ts",
    at_t: Flex<'a> = "@t",
    asctime: Flex<'a> = "asctime",
    datetime: Flex<'a> = "datetime",
    time_millis: Flex<'a> = "timeMillis",
    timestamp_pascal: Flex<'a> = "Timestamp",
    created: Flex<'a> = "created",
    instant: Flex<'a, SecondsNanos> = "instant",

    // Level.
    level: Flex<'a> = "level",
    levelname: Flex<'a> = "levelname",
    severity: Flex<'a> = "severity",
    at_l: Flex<'a> = "@l",
    log_level: Flex<'a> = "log.level",
    level_value: Flex<'a> = "level_value",
    lvl: Flex<'a> = "lvl",
    level_pascal: Flex<'a> = "Level",
    log_level_pascal: Flex<'a> = "LogLevel",

    // Message.
    message: Flex<'a> = "message",
    msg: Flex<'a> = "msg",
    at_m: Flex<'a> = "@m",
    at_mt: Flex<'a> = "@mt",
    message_pascal: Flex<'a> = "Message",
    rendered_message: Flex<'a> = "RenderedMessage",
    message_template: Flex<'a> = "MessageTemplate",
    event: Flex<'a> = "event",
    short_message: Flex<'a> = "short_message",
    log: Flex<'a, EcsLog<'a>> = "log",

    // Logger and thread.
    logger_name: Flex<'a> = "logger_name",
    logger: Flex<'a> = "logger",
    logger_name_camel: Flex<'a> = "loggerName",
    category: Flex<'a> = "Category",
    gelf_logger: Flex<'a> = "_logger_name",
    log_logger: Flex<'a> = "log.logger",
    name: Flex<'a> = "name",
    thread_name: Flex<'a> = "thread_name",
    thread: Flex<'a> = "thread",
    thread_name_camel: Flex<'a> = "threadName",
    gelf_thread: Flex<'a> = "_thread_name",
    process_thread_name: Flex<'a> = "process.thread.name",

    // Stack traces and error values.
    stack_trace: Flex<'a> = "stack_trace",
    stacktrace: Flex<'a> = "stacktrace",
    stack: Flex<'a> = "stack",
    exception: Flex<'a, Box<ErrorObj<'a>>> = "exception",
    exc_info: Flex<'a> = "exc_info",
    exc_text: Flex<'a> = "exc_text",
    exception_pascal: Flex<'a> = "Exception",
    gelf_stack: Flex<'a> = "_error_stack_trace",
    at_x: Flex<'a> = "@x",
    error: Flex<'a, Box<ErrorObj<'a>>> = "error",
    err: Flex<'a, Box<ErrorObj<'a>>> = "err",
    thrown: Flex<'a, Box<ErrorObj<'a>>> = "thrown",
    error_stack_trace: Flex<'a> = "error.stack_trace",
    error_message: Flex<'a> = "error.message",
    error_type: Flex<'a> = "error.type",

    // Ids.
    request_id_camel: Flex<'a> = "requestId",
    request_id_pascal: Flex<'a> = "RequestId",
    request_id: Flex<'a> = "request_id",
    x_request_id: Flex<'a> = "x-request-id",
    x_request_id_upper: Flex<'a> = "X-Request-ID",
    req_id_camel: Flex<'a> = "reqId",
    req_id: Flex<'a> = "req_id",
    http_request_id: Flex<'a> = "http.request.id",
    x_correlation_id: Flex<'a> = "x-correlation-id",
    x_correlation_id_upper: Flex<'a> = "X-Correlation-ID",
    correlation_id_camel: Flex<'a> = "correlationId",
    correlation_id_pascal: Flex<'a> = "CorrelationId",
    correlation_id: Flex<'a> = "correlation_id",
    trace_id_camel: Flex<'a> = "traceId",
    trace_id_pascal: Flex<'a> = "TraceId",
    trace_id: Flex<'a> = "trace_id",
    trace_id_upper: Flex<'a> = "traceID",
    trace_dot_id: Flex<'a> = "trace.id",
    b3_trace_id: Flex<'a> = "X-B3-TraceId",
    dd_trace_id: Flex<'a> = "dd.trace_id",
    gcp_trace: Flex<'a> = "logging.googleapis.com/trace",
    at_tr: Flex<'a> = "@tr",
    trace: Flex<'a, Trace<'a>> = "trace",

    // Origin.
    service: Flex<'a, Named<'a>> = "service",
    service_name_dotted: Flex<'a> = "service.name",
    service_name_camel: Flex<'a> = "serviceName",
    app: Flex<'a> = "app",
    application: Flex<'a> = "application",
    hostname: Flex<'a> = "hostname",
    kubernetes: Flex<'a, Kubernetes<'a>> = "kubernetes",
    k8s_namespace_name: Flex<'a> = "kubernetes.namespace_name",
    k8s_namespace: Flex<'a> = "kubernetes.namespace",
    k8s_pod_name: Flex<'a> = "kubernetes.pod_name",
    k8s_pod_dot_name: Flex<'a> = "kubernetes.pod.name",
    k8s_container_name: Flex<'a> = "kubernetes.container_name",
    k8s_container_dot_name: Flex<'a> = "kubernetes.container.name",
    k8s_labels_app: Flex<'a> = "kubernetes.labels.app",
    container_dot_name: Flex<'a> = "container.name",
    container: Flex<'a, Named<'a>> = "container",

    // Never part of a record: keys sidecar JSON writes, noted for the dispatcher
    // (see [`parse_noting_sidecar_keys`]).
    target: Flex<'a> = "target",
    scope: Flex<'a> = "scope",
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonLine<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut line = JsonLine::default();
        Fill(&mut line).deserialize(deserializer)?;
        Ok(line)
    }
}

/// Reads a JSON object into an existing [`JsonLine`], so the struct is never moved.
struct Fill<'s, 'a>(&'s mut JsonLine<'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for Fill<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("JsonLine", <Key as KeyTable>::NAMES, self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Fill<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct JsonLine")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.fill_object(map)
    }
}

/// Reads an object key straight into a key of table `K` (`None` for keys no encoder here
/// writes), without building a string.
struct KeySeed<K>(PhantomData<K>);

impl<'de, K: KeyTable> DeserializeSeed<'de> for KeySeed<K> {
    type Value = Option<K>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<K: KeyTable> Visitor<'_> for KeySeed<K> {
    type Value = Option<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(K::of(v))
    }
}

/// Parse one JSON record. Text after the object (a plain stack trace a logger printed on
/// the following lines) becomes the stack trace when the object carries none.
pub(super) fn parse(record: &str) -> Result<Parsed<'_>, SkipReason> {
    parse_noting_sidecar_keys(record).0
}

/// [`parse`], also telling whether the object has a top-level `msg`, `target` or `scope`
/// key (not null): every pilot-agent and linkerd-proxy JSON line has one, so without them
/// the sidecar parser need not be asked (see `envoy::names_envoy_scope`).
pub(super) fn parse_noting_sidecar_keys(record: &str) -> (Result<Parsed<'_>, SkipReason>, bool) {
    let mut sidecar_keys = false;
    let result = parse_line(record, &mut sidecar_keys);
    (result, sidecar_keys)
}

fn parse_line<'a>(record: &'a str, sidecar_keys: &mut bool) -> Result<Parsed<'a>, SkipReason> {
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
    let mut line = JsonLine::default();
    let trailing = if memchr::memchr(b'\n', trimmed.as_bytes()).is_none() {
        // One physical line, the common case: no stream bookkeeping and no trailing trace,
        // and the struct is filled where it lies.
        let mut de = serde_json::Deserializer::from_str(trimmed);
        Fill(&mut line)
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(skip_reason)?;
        ""
    } else {
        let mut stream = serde_json::Deserializer::from_str(trimmed).into_iter::<JsonLine<'_>>();
        line = match stream.next() {
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
        next_lines.trim_end()
    };
    *sidecar_keys = line.msg.is_present() || line.target.is_present() || line.scope.is_present();
    let mut fields = resolve(&mut line).ok_or(SkipReason::UnusableJson)?;
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

fn level_of<T>(value: &Flex<'_, T>) -> Option<Severity> {
    match value {
        Flex::Str(s) => severity_word(s),
        Flex::Num(n) => severity_number(*n),
        _ => None,
    }
}

/// Turn the keys that were present into record fields. `None` when nothing usable (no
/// message, level or error) was there. Values are taken out of `line` as they are used,
/// so nothing is copied or moved wholesale.
#[allow(clippy::too_many_lines)]
pub(super) fn resolve<'a>(line: &mut JsonLine<'a>) -> Option<Fields<'a>> {
    let l = line;

    // Time: the first key that holds a readable time wins.
    let serilog = l.at_t.is_present();
    let time = first!(
        time_of(&l.at_timestamp),
        match &l.timestamp {
            Flex::Obj(t) => seconds_nanos(t),
            other => time_of(other),
        },
        time_of(&l.time),
        time_of(&l.ts),
        time_of(&l.at_t),
        time_of(&l.asctime),
        time_of(&l.datetime),
        time_of(&l.time_millis),
        time_of(&l.timestamp_pascal),
        l.instant.as_obj().and_then(seconds_nanos),
        time_of(&l.created),
    );

    // Level.
    let (log_str, log_obj) = l.log.take().split();
    let (ecs_level, ecs_logger) =
        log_obj.map_or((Flex::Absent, Flex::Absent), |log| (log.level, log.logger));
    let numeric_level = matches!(l.level, Flex::Num(_));
    let severity = first!(
        level_of(&l.level),
        level_of(&l.levelname),
        level_of(&l.severity),
        level_of(&l.at_l),
        level_of(&l.log_level),
        level_of(&ecs_level),
        level_of(&l.lvl),
        level_of(&l.level_pascal),
        level_of(&l.log_level_pascal),
        level_of(&l.level_value),
    )
    // Serilog's compact format leaves `@l` out for Information.
    .or(serilog.then_some(Severity::Info));

    // Message. structlog puts it in `event`; ECS uses `event` for an object (ignored).
    let message = first!(
        l.message.take_str(),
        l.msg.take_str(),
        l.at_m.take_str(),
        l.message_pascal.take_str(),
        l.rendered_message.take_str(),
        l.at_mt.take_str(),
        l.message_template.take_str(),
        l.event.take_str(),
        l.short_message.take_str(),
        log_str,
    );

    // pino and bunyan write the program name in `name`, next to `hostname` and a numeric
    // level; Python json loggers write the logger name there.
    let name_is_program = numeric_level && l.hostname.is_present();
    let (name_as_logger, name_as_program) = if name_is_program {
        (None, l.name.take_str())
    } else {
        (l.name.take_str(), None)
    };
    let logger = first!(
        l.logger_name.take_str(),
        l.logger.take_str(),
        l.logger_name_camel.take_str(),
        l.category.take_str(),
        l.gelf_logger.take_str(),
        l.log_logger.take_str(),
        ecs_logger.into_str(),
        name_as_logger,
    );
    let thread = first!(
        l.thread_name.take_str(),
        l.thread.take_str(),
        l.thread_name_camel.take_str(),
        l.gelf_thread.take_str(),
        l.process_thread_name.take_str(),
    );

    let stack_trace = error_text(l);

    if message.is_none() && stack_trace.is_none() && severity.is_none() {
        return None;
    }

    let request_id = first!(
        l.request_id_camel.take_str(),
        l.request_id_pascal.take_str(),
        l.request_id.take_str(),
        l.x_request_id.take_str(),
        l.x_request_id_upper.take_str(),
        l.req_id_camel.take_str(),
        l.req_id.take_str(),
        l.http_request_id.take_str(),
    );
    let correlation_id = first!(
        l.x_correlation_id.take_str(),
        l.x_correlation_id_upper.take_str(),
        l.correlation_id_camel.take_str(),
        l.correlation_id_pascal.take_str(),
        l.correlation_id.take_str(),
    );
    let (trace_str, trace_obj) = l.trace.take().split();
    let trace_id = first!(
        l.trace_id_camel.take_str(),
        l.trace_id_pascal.take_str(),
        l.trace_id.take_str(),
        l.trace_id_upper.take_str(),
        l.trace_dot_id.take_str(),
        trace_obj.and_then(|t| t.id.into_str()),
        trace_str,
        l.b3_trace_id.take_str(),
        l.dd_trace_id.take_str(),
        l.gcp_trace.take_str(),
        l.at_tr.take_str(),
    );

    let k8s = l.kubernetes.take().into_obj().unwrap_or_default();
    let (k8s_pod_str, k8s_pod_obj) = k8s.pod.split();
    let (k8s_container_str, k8s_container_obj) = k8s.container.split();
    let labels = k8s.labels.into_obj().unwrap_or_default();
    let (container_str, container_obj) = l.container.take().split();
    let container = first!(
        k8s.container_name.into_str(),
        k8s_container_obj.and_then(|c| c.name.into_str()),
        k8s_container_str,
        l.k8s_container_name.take_str(),
        l.k8s_container_dot_name.take_str(),
        l.container_dot_name.take_str(),
        container_obj.and_then(|c| c.name.into_str()),
        container_str,
    );
    let (service_str, service_obj) = l.service.take().split();
    let workload = first!(
        service_str,
        service_obj.and_then(|s| s.name.into_str()),
        l.service_name_dotted.take_str(),
        l.service_name_camel.take_str(),
        l.app.take_str(),
        l.application.take_str(),
        name_as_program,
        labels.app.into_str(),
        labels.app_kubernetes_io_name.into_str(),
        labels.k8s_app.into_str(),
        l.k8s_labels_app.take_str(),
    )
    // The app container is named after the workload in nearly every chart; the sidecar's
    // container never writes app JSON lines.
    .or_else(|| container.clone());
    let origin = Origin {
        namespace: first!(
            k8s.namespace_name.into_str(),
            k8s.namespace.into_str(),
            l.k8s_namespace_name.take_str(),
            l.k8s_namespace.take_str(),
        ),
        pod: first!(
            k8s.pod_name.into_str(),
            k8s_pod_obj.and_then(|p| p.name.into_str()),
            k8s_pod_str,
            l.k8s_pod_name.take_str(),
            l.k8s_pod_dot_name.take_str(),
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

fn time_of<T>(value: &Flex<'_, T>) -> Option<ParsedTime> {
    match *value {
        Flex::Str(ref s) => parse_any(s),
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
fn seconds_nanos(t: &SecondsNanos) -> Option<ParsedTime> {
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

/// The logged error value and its stack, as one text. Encoders that keep the stack in its
/// own field without the error line (zap's `error` + `stacktrace`, pino's `err.code`) get the
/// parts joined, so the text always names the error; that copy only happens on error lines.
fn error_text<'a>(l: &mut JsonLine<'a>) -> Option<Cow<'a, str>> {
    // A full trace as one string, in order of how explicit the key is.
    let full = first!(
        l.stack_trace.take_str(),
        l.exception_pascal.take_str(),
        l.gelf_stack.take_str(),
        l.at_x.take_str(),
        l.error_stack_trace.take_str(),
        l.exception.take_str(),
        l.exc_info.take_str(),
        l.exc_text.take_str(),
    );
    if let Some(full) = full {
        return Some(full);
    }

    let object = first!(
        l.error.as_obj_mut(),
        l.err.as_obj_mut(),
        l.exception.as_obj_mut(),
        l.thrown.as_obj_mut(),
    );
    if let Some(obj) = object {
        return object_text(obj, l.error_message.take_str(), l.error_type.take_str());
    }

    // zap and logrus: `error` is the message of the error value, `stacktrace` the Go stack.
    let value = first!(l.error.take_str(), l.err.take_str())
        .or_else(|| type_message(l.error_type.take_str(), l.error_message.take_str()));
    let go_stack = first!(l.stacktrace.take_str(), l.stack.take_str());
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
    obj: &mut ErrorObj<'a>,
    dotted_message: Option<Cow<'a, str>>,
    dotted_type: Option<Cow<'a, str>>,
) -> Option<Cow<'a, str>> {
    let trace = first!(obj.stack_trace.take_str(), obj.stack.take_str());
    let text = trace.or_else(|| {
        type_message(
            first!(obj.kind.take_str(), obj.name.take_str(), dotted_type),
            first!(obj.message.take_str(), dotted_message),
        )
    })?;
    // Node keeps `code: 'ECONNRESET'` outside `err.stack`; `Error: aborted` says nothing
    // without it.
    match obj.code.as_str() {
        Some(code) if !text.contains(code) => Some(Cow::Owned(format!("{text}\ncode: '{code}'"))),
        _ => Some(text),
    }
}
