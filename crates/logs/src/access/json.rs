//! The JSON encoding of Istio's access log (`accessLogEncoding: JSON`, formats.md §3.2).
//!
//! Keys come in any order and extra keys are allowed. Envoy writes numbers for numeric
//! operators, but custom formats and log shippers turn them into strings, and missing values
//! are `null` or `"-"`: every field accepts all of these. Values are borrowed from the input
//! unless JSON escapes force a copy. This module must not claim application JSON logs: an
//! object is an access row only when it has `response_code` and one more access-log key.

use super::{non_empty, strip_stat_suffix};
use crate::{Parsed, timestamp};
use memchr::memmem;
use meshdoctor_model::{AccessEntry, AccessFormat, Origin, Payload, ResponseFlags, SkipReason};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Keys of which at least one must be present next to `response_code`.
const COMPANION_KEYS: [&[u8]; 4] = [
    b"\"upstream_cluster\"",
    b"\"start_time\"",
    b"\"response_flags\"",
    b"\"duration\"",
];

/// One JSON value as the access log writes it.
#[derive(Debug, Default, PartialEq)]
enum Value<'a> {
    /// The key is not in the object.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A string, borrowed when it had no escapes.
    Str(Cow<'a, str>),
    /// A non-negative integer.
    Unsigned(u64),
    /// A negative integer.
    Signed(i64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A boolean, an object or an array: never a value of ours.
    Other,
}

// `'de: 'a` (rather than `Value<'de>`) is what `#[serde(borrow)]` on the fields expects.
impl<'de: 'a, 'a> Deserialize<'de> for Value<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor(PhantomData))
    }
}

struct ValueVisitor<'a>(PhantomData<&'a str>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = Value<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an access log value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Value::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Value::Signed(v), Value::Unsigned))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Value::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Other)
    }
}

impl<'a> Value<'a> {
    fn is_present(&self) -> bool {
        !matches!(self, Value::Absent)
    }

    /// A text field: `None` for missing, `null`, `""` and `"-"`. Numbers are rendered.
    fn into_text(self) -> Option<Cow<'a, str>> {
        match self {
            Value::Str(Cow::Borrowed(s)) => non_empty(s).map(Cow::Borrowed),
            Value::Str(Cow::Owned(s)) => non_empty(&s).is_some().then_some(Cow::Owned(s)),
            Value::Unsigned(n) => Some(Cow::Owned(n.to_string())),
            Value::Signed(n) => Some(Cow::Owned(n.to_string())),
            Value::Float(n) => Some(Cow::Owned(n.to_string())),
            Value::Absent | Value::Null | Value::Other => None,
        }
    }

    /// A count or duration: a number or a numeric string; anything else is `None`.
    fn to_u64(&self) -> Option<u64> {
        match self {
            Value::Unsigned(n) => Some(*n),
            Value::Str(s) => s.trim().parse().ok(),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Value::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1.8e19 => Some(*f as u64),
            _ => None,
        }
    }
}

/// The keys of formats.md §3.2; anything else in the object is skipped by serde.
#[derive(Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    start_time: Value<'a>,
    #[serde(borrow, default)]
    method: Value<'a>,
    #[serde(borrow, default)]
    path: Value<'a>,
    #[serde(borrow, default)]
    protocol: Value<'a>,
    #[serde(borrow, default)]
    response_code: Value<'a>,
    #[serde(borrow, default)]
    response_flags: Value<'a>,
    #[serde(borrow, default)]
    response_code_details: Value<'a>,
    #[serde(borrow, default)]
    connection_termination_details: Value<'a>,
    #[serde(borrow, default)]
    upstream_transport_failure_reason: Value<'a>,
    #[serde(borrow, default)]
    bytes_received: Value<'a>,
    #[serde(borrow, default)]
    bytes_sent: Value<'a>,
    #[serde(borrow, default)]
    duration: Value<'a>,
    #[serde(borrow, default)]
    upstream_service_time: Value<'a>,
    #[serde(borrow, default)]
    x_forwarded_for: Value<'a>,
    #[serde(borrow, default)]
    user_agent: Value<'a>,
    #[serde(borrow, default)]
    request_id: Value<'a>,
    #[serde(borrow, default)]
    authority: Value<'a>,
    #[serde(borrow, default)]
    upstream_host: Value<'a>,
    #[serde(borrow, default)]
    upstream_cluster: Value<'a>,
    #[serde(borrow, default)]
    upstream_local_address: Value<'a>,
    #[serde(borrow, default)]
    downstream_local_address: Value<'a>,
    #[serde(borrow, default)]
    downstream_remote_address: Value<'a>,
    #[serde(borrow, default)]
    requested_server_name: Value<'a>,
    #[serde(borrow, default)]
    route_name: Value<'a>,
}

impl Row<'_> {
    fn is_access_row(&self) -> bool {
        self.response_code.is_present()
            && (self.upstream_cluster.is_present()
                || self.start_time.is_present()
                || self.response_flags.is_present()
                || self.duration.is_present())
    }
}

// Built once: a memmem searcher costs more to build than to run on one line.
static RESPONSE_CODE_KEY: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| crate::key_search::json_finder(b"\"response_code\""));
static COMPANION_FINDERS: std::sync::LazyLock<Vec<memmem::Finder<'static>>> =
    std::sync::LazyLock::new(|| {
        COMPANION_KEYS
            .iter()
            .map(|key| crate::key_search::json_finder(key))
            .collect()
    });

pub(super) fn has_response_code(line: &str) -> bool {
    RESPONSE_CODE_KEY.find(line.as_bytes()).is_some()
}

/// Parse a JSON record; see the module docs.
pub(super) fn parse(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let line = memchr::memchr(b'\n', record.as_bytes()).map_or(record, |nl| &record[..nl]);
    let line = line.strip_suffix('\r').unwrap_or(line).trim_end();
    let bytes = line.as_bytes();
    // Cheap substring test first: most JSON lines in a mixed log are not access rows, and
    // full deserialisation is the expensive part.
    if !line.starts_with('{')
        || RESPONSE_CODE_KEY.find(bytes).is_none()
        || !COMPANION_FINDERS
            .iter()
            .any(|key| key.find(bytes).is_some())
    {
        return None;
    }
    let row: Row<'_> = match serde_json::from_str(line) {
        Ok(row) => row,
        // The keys are there, so this is an access row that was cut off or mangled.
        Err(_) => return Some(Err(SkipReason::InvalidJson)),
    };
    if !row.is_access_row() {
        // The key names appeared only inside other values (an app log quoting them).
        return None;
    }
    Some(build(row))
}

fn build(row: Row<'_>) -> Result<Parsed<'_>, SkipReason> {
    let response_code = match &row.response_code {
        Value::Null => 0,
        Value::Str(s) if non_empty(s).is_none() => 0,
        other => other
            .to_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(SkipReason::Malformed)?,
    };
    let time = match &row.start_time {
        Value::Absent | Value::Null => None,
        Value::Str(s) if non_empty(s).is_none() => None,
        Value::Str(s) => Some(
            timestamp::parse_any(s)
                .ok_or(SkipReason::BadTimestamp)?
                .time,
        ),
        #[allow(clippy::cast_precision_loss)]
        Value::Unsigned(n) => {
            Some(timestamp::from_epoch_number(*n as f64).ok_or(SkipReason::BadTimestamp)?)
        }
        Value::Float(f) => Some(timestamp::from_epoch_number(*f).ok_or(SkipReason::BadTimestamp)?),
        Value::Signed(_) | Value::Other => return Err(SkipReason::BadTimestamp),
    };
    let response_flags = match &row.response_flags {
        Value::Str(s) => ResponseFlags::parse(s.trim()),
        _ => ResponseFlags::default(),
    };
    let upstream_cluster = match row.upstream_cluster.into_text() {
        Some(Cow::Borrowed(c)) => non_empty(strip_stat_suffix(c)).map(Cow::Borrowed),
        Some(Cow::Owned(mut c)) => {
            if c.ends_with(';') {
                c.pop();
            }
            non_empty(&c).is_some().then_some(Cow::Owned(c))
        }
        None => None,
    };
    let entry = AccessEntry {
        format: Some(AccessFormat::Json),
        method: row.method.into_text(),
        path: row.path.into_text(),
        protocol: row.protocol.into_text(),
        response_code,
        response_flags,
        response_code_details: row.response_code_details.into_text(),
        connection_termination_details: row.connection_termination_details.into_text(),
        upstream_transport_failure_reason: row.upstream_transport_failure_reason.into_text(),
        bytes_received: row.bytes_received.to_u64(),
        bytes_sent: row.bytes_sent.to_u64(),
        duration_ms: row.duration.to_u64(),
        upstream_service_time_ms: row.upstream_service_time.to_u64(),
        x_forwarded_for: row.x_forwarded_for.into_text(),
        user_agent: row.user_agent.into_text(),
        request_id: row.request_id.into_text(),
        authority: row.authority.into_text(),
        upstream_host: row.upstream_host.into_text(),
        upstream_cluster,
        upstream_local_address: row.upstream_local_address.into_text(),
        downstream_local_address: row.downstream_local_address.into_text(),
        downstream_remote_address: row.downstream_remote_address.into_text(),
        requested_server_name: row.requested_server_name.into_text(),
        route_name: row.route_name.into_text(),
    };
    Ok(Parsed {
        time,
        origin: Origin::default(),
        payload: Payload::Access(Box::new(entry)),
    })
}
