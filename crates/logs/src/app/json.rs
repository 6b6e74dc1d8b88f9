//! JSON application log lines in the common field sets, any key order, extra keys ignored.
//!
//! One borrowed struct ([`JsonLine`]), declared as a key table and filled in place, names
//! every key the supported encoders write; serde skips the rest with `IgnoredAny`. Each
//! key has its own place (a slot for a plain key, a field for an object) rather than
//! sharing one (as a serde alias would), because real lines carry several spellings at once (`timestamp` and `@timestamp`, `message` and
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
use smallvec::SmallVec;
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
    /// Bits of the keys that may repeat: keys only noted, never read into a value.
    const REPEATABLE: u128 = 0;
}

/// The next key of `map` that table `K` knows, skipping the values of the others, and
/// recording it in `seen` (bit [`KeyTable::index`]). A key seen before is an error, as
/// `#[derive(Deserialize)]` makes it (`duplicate field`, a data error).
fn next_known_key<'de, K: KeyTable, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut u128,
) -> Result<Option<K>, A::Error> {
    while let Some(key) = map.next_key_seed(KeySeed::<K>(PhantomData))? {
        let Some(key) = key else {
            map.next_value::<IgnoredAny>()?;
            continue;
        };
        let bit = 1u128 << key.index();
        if *seen & bit != 0 && K::REPEATABLE & bit == 0 {
            let name = K::NAMES.get(key.index()).copied();
            return Err(de::Error::duplicate_field(name.unwrap_or("?")));
        }
        *seen |= bit;
        return Ok(Some(key));
    }
    Ok(None)
}

/// Declares the key enum of a table and its [`KeyTable`] impl: one variant per key, in
/// table order.
macro_rules! key_table {
    ($keys:ident { $($field:ident = $key:literal,)* }) => {
        key_table!($keys { $($field = $key,)* } repeatable {});
    };
    ($keys:ident { $($field:ident = $key:literal,)* } repeatable { $($repeatable:ident),* }) => {
        /// A known key of the table.
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

            const REPEATABLE: u128 = 0 $(| (1u128 << ($keys::$repeatable as u32)))*;
        }

        const _: () = assert!(<$keys as KeyTable>::NAMES.len() <= 128, "the seen set is a u128");
    };
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

        key_table!($keys { $($field = $key,)* });

        impl<'de: 'a, 'a> FillObject<'de> for $name<'a> {
            fn fill_object<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
                let mut seen = 0u128;
                while let Some(key) = next_known_key::<$keys, A>(&mut map, &mut seen)? {
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

/// Declares [`JsonLine`] from its key table: plain keys (`field = "key"`, a [`Flex`] each)
/// and keys whose value may be an object (`field: type = "key"`).
///
/// The line has about a hundred plain keys and a real line carries a handful, so their
/// values are not a hundred struct fields (each written on creation and checked on drop,
/// for every line) but a short list in the order read, with one byte per key saying where
/// its value is. Object-valued keys are ordinary fields, filled in place.
macro_rules! json_line {
    (
        $(#[$doc:meta])*
        struct $name:ident, keys $keys:ident {
            $($plain:ident = $plain_key:literal,)*
        }
        objects {
            $($object:ident: $ty:ty = $object_key:literal,)*
        }
        noted {
            $($noted:ident = $noted_key:literal,)*
        }
    ) => {
        /// How many plain keys the table has.
        const PLAIN_KEYS: usize = [$($plain_key),*].len();

        /// The slot of a plain key that is absent.
        const NO_SLOT: u8 = u8::MAX;

        const _: () = assert!(PLAIN_KEYS < NO_SLOT as usize, "slots are bytes");

        $(#[$doc])*
        #[derive(Debug)]
        pub(super) struct $name<'a> {
            /// Where each plain key's value is in `values` ([`NO_SLOT`] when absent).
            slots: [u8; PLAIN_KEYS],
            /// Values of the plain keys present, in the order read.
            values: SmallVec<[Flex<'a>; 12]>,
            /// Bit [`KeyTable::index`] set for each key the line has (see `first_str!`).
            seen: u128,
            /// Bit [`KeyTable::index`] set for each noted key the line has with a value
            /// other than `null`.
            noted: u128,
            $($object: $ty,)*
        }

        impl Default for $name<'_> {
            fn default() -> Self {
                $name {
                    slots: [NO_SLOT; PLAIN_KEYS],
                    values: SmallVec::new(),
                    seen: 0,
                    noted: 0,
                    $($object: Default::default(),)*
                }
            }
        }

        // Plain keys first, so a plain key's index is its slot index.
        key_table!(
            $keys { $($plain = $plain_key,)* $($object = $object_key,)* $($noted = $noted_key,)* }
            repeatable { $($noted),* }
        );

        impl<'a> $name<'a> {
            /// Where a plain key's value is in `values`, if the line has the key.
            fn slot(&self, key: $keys) -> Option<usize> {
                match self.slots.get(key.index()) {
                    Some(&slot) if slot != NO_SLOT => Some(usize::from(slot)),
                    _ => None,
                }
            }

            /// The value of a plain key (`Absent` when the line does not have it).
            fn get(&self, key: $keys) -> &Flex<'a> {
                static ABSENT: Flex<'static> = Flex::Absent;
                self.slot(key)
                    .and_then(|slot| self.values.get(slot))
                    .unwrap_or(&ABSENT)
            }

            /// Take the non-blank string out of a plain key, if it holds one.
            fn take_str(&mut self, key: $keys) -> Option<Cow<'a, str>> {
                let slot = self.slot(key)?;
                self.values.get_mut(slot).and_then(Flex::take_str)
            }

            /// Whether a plain key is there with a value other than `null`.
            fn is_present(&self, key: $keys) -> bool {
                self.get(key).is_present()
            }

            /// Whether a noted key is there with a value other than `null`.
            fn is_noted(&self, key: $keys) -> bool {
                self.noted & (1u128 << key.index()) != 0
            }
        }

        impl<'de: 'a, 'a> FillObject<'de> for $name<'a> {
            fn fill_object<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
                let mut seen = 0u128;
                while let Some(key) = next_known_key::<$keys, A>(&mut map, &mut seen)? {
                    match key {
                        $($keys::$object => self.$object.read_from(&mut map)?,)*
                        $($keys::$noted => {
                            // Skipped as an unknown key would be (so it may repeat); only
                            // whether it holds something is kept.
                            if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                                self.noted |= 1u128 << $keys::$noted.index();
                            }
                        })*
                        plain => {
                            // Each plain key is read at most once (the seen set), so there
                            // are fewer values than plain keys and a slot fits in a byte.
                            let slot = u8::try_from(self.values.len()).unwrap_or(NO_SLOT);
                            self.values.push(Flex::Absent);
                            if let Some(value) = self.values.last_mut() {
                                value.read_from(&mut map)?;
                            }
                            if let Some(s) = self.slots.get_mut(plain.index()) {
                                *s = slot;
                            }
                        }
                    }
                }
                self.seen = seen;
                Ok(())
            }
        }
    };
}

json_line! {
    /// Every key the supported encoders write. Dotted names (`log.level`) are the flattened
    /// forms ECS loggers and collectors write.
    struct JsonLine, keys Key {
    // Time.
    at_timestamp = "@timestamp",
    time = "time",
    ts = "ts",
    at_t = "@t",
    asctime = "asctime",
    datetime = "datetime",
    time_millis = "timeMillis",
    timestamp_pascal = "Timestamp",
    created = "created",

    // Level.
    level = "level",
    levelname = "levelname",
    severity = "severity",
    at_l = "@l",
    log_level = "log.level",
    level_value = "level_value",
    lvl = "lvl",
    level_pascal = "Level",
    log_level_pascal = "LogLevel",

    // Message.
    message = "message",
    msg = "msg",
    at_m = "@m",
    at_mt = "@mt",
    message_pascal = "Message",
    rendered_message = "RenderedMessage",
    message_template = "MessageTemplate",
    event = "event",
    short_message = "short_message",

    // Logger and thread.
    logger_name = "logger_name",
    logger = "logger",
    logger_name_camel = "loggerName",
    category = "Category",
    gelf_logger = "_logger_name",
    log_logger = "log.logger",
    name = "name",
    thread_name = "thread_name",
    thread = "thread",
    thread_name_camel = "threadName",
    gelf_thread = "_thread_name",
    process_thread_name = "process.thread.name",

    // Stack traces and error values.
    stack_trace = "stack_trace",
    stacktrace = "stacktrace",
    stack = "stack",
    exc_info = "exc_info",
    exc_text = "exc_text",
    exception_pascal = "Exception",
    gelf_stack = "_error_stack_trace",
    at_x = "@x",
    error_stack_trace = "error.stack_trace",
    error_message = "error.message",
    error_type = "error.type",

    // Ids.
    request_id_camel = "requestId",
    request_id_pascal = "RequestId",
    request_id = "request_id",
    x_request_id = "x-request-id",
    x_request_id_upper = "X-Request-ID",
    req_id_camel = "reqId",
    req_id = "req_id",
    http_request_id = "http.request.id",
    x_correlation_id = "x-correlation-id",
    x_correlation_id_upper = "X-Correlation-ID",
    correlation_id_camel = "correlationId",
    correlation_id_pascal = "CorrelationId",
    correlation_id = "correlation_id",
    trace_id_camel = "traceId",
    trace_id_pascal = "TraceId",
    trace_id = "trace_id",
    trace_id_upper = "traceID",
    trace_dot_id = "trace.id",
    b3_trace_id = "X-B3-TraceId",
    dd_trace_id = "dd.trace_id",
    gcp_trace = "logging.googleapis.com/trace",
    at_tr = "@tr",

    // Origin.
    service_name_dotted = "service.name",
    service_name_camel = "serviceName",
    app = "app",
    application = "application",
    hostname = "hostname",
    k8s_namespace_name = "kubernetes.namespace_name",
    k8s_namespace = "kubernetes.namespace",
    k8s_pod_name = "kubernetes.pod_name",
    k8s_pod_dot_name = "kubernetes.pod.name",
    k8s_container_name = "kubernetes.container_name",
    k8s_container_dot_name = "kubernetes.container.name",
    k8s_labels_app = "kubernetes.labels.app",
    container_dot_name = "container.name",
    }
    // Keys whose value may be an object, read into its own struct.
    objects {
    timestamp: Flex<'a, SecondsNanos> = "timestamp",
    instant: Flex<'a, SecondsNanos> = "instant",
    log: Flex<'a, EcsLog<'a>> = "log",
    exception: Flex<'a, Box<ErrorObj<'a>>> = "exception",
    error: Flex<'a, Box<ErrorObj<'a>>> = "error",
    err: Flex<'a, Box<ErrorObj<'a>>> = "err",
    thrown: Flex<'a, Box<ErrorObj<'a>>> = "thrown",
    trace: Flex<'a, Trace<'a>> = "trace",
    service: Flex<'a, Named<'a>> = "service",
    kubernetes: Flex<'a, Kubernetes<'a>> = "kubernetes",
    container: Flex<'a, Named<'a>> = "container",
    }
    // Never part of a record: keys sidecar JSON writes, noted for the dispatcher (see
    // [`parse_line_noting_sidecar_keys`]). An application line may repeat them, as it may
    // any key it does not know.
    noted {
    target = "target",
    scope = "scope",
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
    let one_line = memchr::memchr(b'\n', record.trim_start().as_bytes()).is_none();
    parse_line(record, one_line).map(|(parsed, _)| parsed)
}

/// [`parse`] of a record known to be one physical line (the caller looked for a newline
/// already), also telling whether the object has a top-level `msg`, `target` or `scope`
/// key (not null): every pilot-agent and linkerd-proxy JSON line has one, so without them
/// the sidecar parser need not be asked (see `envoy::names_envoy_scope`).
pub(super) fn parse_line_noting_sidecar_keys(line: &str) -> Result<(Parsed<'_>, bool), SkipReason> {
    parse_line(line, true)
}

/// The record, and whether it has a top-level `msg`, `target` or `scope` key (see
/// [`parse_line_noting_sidecar_keys`]). `one_line`: the record holds no newline (then no
/// trailing text can follow the object).
fn parse_line(record: &str, one_line: bool) -> Result<(Parsed<'_>, bool), SkipReason> {
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
    let trailing = if one_line {
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
    let sidecar_keys =
        line.is_present(Key::msg) || line.is_noted(Key::target) || line.is_noted(Key::scope);
    let mut fields = resolve(&mut line).ok_or(SkipReason::UnusableJson)?;
    if fields.stack_trace.is_none() && !trailing.trim().is_empty() {
        fields.stack_trace = Some(Cow::Borrowed(trailing));
    }
    Ok((build(fields), sidecar_keys))
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

/// The first non-blank string among the plain keys listed, in order, like `first!` over
/// `take_str`; one test of the seen set answers for a group the line has none of, the
/// usual case (most lines carry one spelling of a field, or none).
macro_rules! first_str {
    ($l:expr, [$($k:ident),+ $(,)?]) => {{
        const MASK: u128 = 0 $(| (1u128 << (Key::$k as u32)))+;
        if $l.seen & MASK == 0 {
            None
        } else {
            first!($($l.take_str(Key::$k)),+)
        }
    }};
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
    let serilog = l.is_present(Key::at_t);
    let time = first!(
        time_of(l.get(Key::at_timestamp)),
        match &l.timestamp {
            Flex::Obj(t) => seconds_nanos(t),
            other => time_of(other),
        },
        time_of(l.get(Key::time)),
        time_of(l.get(Key::ts)),
        time_of(l.get(Key::at_t)),
        time_of(l.get(Key::asctime)),
        time_of(l.get(Key::datetime)),
        time_of(l.get(Key::time_millis)),
        time_of(l.get(Key::timestamp_pascal)),
        l.instant.as_obj().and_then(seconds_nanos),
        time_of(l.get(Key::created)),
    );

    // Level.
    let (log_str, log_obj) = l.log.take().split();
    let (ecs_level, ecs_logger) =
        log_obj.map_or((Flex::Absent, Flex::Absent), |log| (log.level, log.logger));
    let numeric_level = matches!(l.get(Key::level), Flex::Num(_));
    let severity = first!(
        level_of(l.get(Key::level)),
        level_of(l.get(Key::levelname)),
        level_of(l.get(Key::severity)),
        level_of(l.get(Key::at_l)),
        level_of(l.get(Key::log_level)),
        level_of(&ecs_level),
        level_of(l.get(Key::lvl)),
        level_of(l.get(Key::level_pascal)),
        level_of(l.get(Key::log_level_pascal)),
        level_of(l.get(Key::level_value)),
    )
    // Serilog's compact format leaves `@l` out for Information.
    .or(serilog.then_some(Severity::Info));

    // Message. structlog puts it in `event`; ECS uses `event` for an object (ignored).
    let message = first_str!(
        l,
        [
            message,
            msg,
            at_m,
            message_pascal,
            rendered_message,
            at_mt,
            message_template,
            event,
            short_message,
        ]
    )
    .or(log_str);

    // pino and bunyan write the program name in `name`, next to `hostname` and a numeric
    // level; Python json loggers write the logger name there.
    let name_is_program = numeric_level && l.is_present(Key::hostname);
    let (name_as_logger, name_as_program) = if name_is_program {
        (None, l.take_str(Key::name))
    } else {
        (l.take_str(Key::name), None)
    };
    let logger = first_str!(
        l,
        [
            logger_name,
            logger,
            logger_name_camel,
            category,
            gelf_logger,
            log_logger,
        ]
    )
    .or_else(|| ecs_logger.into_str())
    .or(name_as_logger);
    let thread = first_str!(
        l,
        [
            thread_name,
            thread,
            thread_name_camel,
            gelf_thread,
            process_thread_name,
        ]
    );

    let stack_trace = error_text(l);

    if message.is_none() && stack_trace.is_none() && severity.is_none() {
        return None;
    }

    let request_id = first_str!(
        l,
        [
            request_id_camel,
            request_id_pascal,
            request_id,
            x_request_id,
            x_request_id_upper,
            req_id_camel,
            req_id,
            http_request_id,
        ]
    );
    let correlation_id = first_str!(
        l,
        [
            x_correlation_id,
            x_correlation_id_upper,
            correlation_id_camel,
            correlation_id_pascal,
            correlation_id,
        ]
    );
    let (trace_str, trace_obj) = l.trace.take().split();
    let trace_id = first_str!(
        l,
        [
            trace_id_camel,
            trace_id_pascal,
            trace_id,
            trace_id_upper,
            trace_dot_id,
        ]
    )
    .or_else(|| trace_obj.and_then(|t| t.id.into_str()))
    .or(trace_str)
    .or_else(|| first_str!(l, [b3_trace_id, dd_trace_id, gcp_trace, at_tr]));

    let k8s = l.kubernetes.take().into_obj().unwrap_or_default();
    let (k8s_pod_str, k8s_pod_obj) = k8s.pod.split();
    let (k8s_container_str, k8s_container_obj) = k8s.container.split();
    let labels = k8s.labels.into_obj().unwrap_or_default();
    let (container_str, container_obj) = l.container.take().split();
    let container = first!(
        k8s.container_name.into_str(),
        k8s_container_obj.and_then(|c| c.name.into_str()),
        k8s_container_str,
        l.take_str(Key::k8s_container_name),
        l.take_str(Key::k8s_container_dot_name),
        l.take_str(Key::container_dot_name),
        container_obj.and_then(|c| c.name.into_str()),
        container_str,
    );
    let (service_str, service_obj) = l.service.take().split();
    let workload = first!(
        service_str,
        service_obj.and_then(|s| s.name.into_str()),
        l.take_str(Key::service_name_dotted),
        l.take_str(Key::service_name_camel),
        l.take_str(Key::app),
        l.take_str(Key::application),
        name_as_program,
        labels.app.into_str(),
        labels.app_kubernetes_io_name.into_str(),
        labels.k8s_app.into_str(),
        l.take_str(Key::k8s_labels_app),
    )
    // The app container is named after the workload in nearly every chart; the sidecar's
    // container never writes app JSON lines.
    .or_else(|| container.clone());
    let origin = Origin {
        namespace: first!(
            k8s.namespace_name.into_str(),
            k8s.namespace.into_str(),
            l.take_str(Key::k8s_namespace_name),
            l.take_str(Key::k8s_namespace),
        ),
        pod: first!(
            k8s.pod_name.into_str(),
            k8s_pod_obj.and_then(|p| p.name.into_str()),
            k8s_pod_str,
            l.take_str(Key::k8s_pod_name),
            l.take_str(Key::k8s_pod_dot_name),
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
    let full = first_str!(
        l,
        [
            stack_trace,
            exception_pascal,
            gelf_stack,
            at_x,
            error_stack_trace,
        ]
    )
    .or_else(|| l.exception.take_str())
    .or_else(|| first_str!(l, [exc_info, exc_text]));
    if let Some(full) = full {
        return Some(full);
    }

    // ECS writes `error.message` and `error.type` dotted; nothing else reads them.
    let (dotted_message, dotted_type) =
        (l.take_str(Key::error_message), l.take_str(Key::error_type));
    if let Some(obj) = first!(
        l.error.as_obj_mut(),
        l.err.as_obj_mut(),
        l.exception.as_obj_mut(),
        l.thrown.as_obj_mut(),
    ) {
        return object_text(obj, dotted_message, dotted_type);
    }

    // zap and logrus: `error` is the message of the error value, `stacktrace` the Go stack.
    let value = first!(l.error.take_str(), l.err.take_str())
        .or_else(|| type_message(dotted_type, dotted_message));
    let go_stack = first_str!(l, [stacktrace, stack]);
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
