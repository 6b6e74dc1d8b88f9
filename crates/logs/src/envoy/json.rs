//! JSON lines from the sidecar: Envoy (`--log_as_json`, Istio 1.8 to newest), pilot-agent
//! (zap JSON) and linkerd-proxy (tracing JSON).
//!
//! * Envoy: `level`, `time`, `scope` = `envoy <logger>`, `msg`, and from 1.17 `caller` and
//!   `thread` (a number in 1.17–1.21, a string from 1.22); newest Envoy may put the log tags
//!   in `ConnectionId`/`StreamId` keys instead of a `[Tags: ...]` message prefix.
//! * pilot-agent: `level`, `time`, `msg`, optional `scope` (not starting with `envoy `).
//! * linkerd-proxy: `timestamp` (`[  12.3s]`), `level`, `fields.message` (or a flattened
//!   `message`), `target`.
//!
//! Key order is free and extra keys are ignored. One borrowing struct is deserialized, so
//! unescaped strings are not copied. Application JSON must not be claimed: without the
//! shapes above the answer is `None`, and a line that merely fails to parse is only ours when
//! it names an `envoy ` scope.

use super::{
    EnvoyParts, envoy_event, first_line, is_scope_byte, level_of, linkerd, parse_u64, zap_level,
};
use crate::Parsed;
use crate::timestamp::parse_iso;
use meshdoctor_model::{AgentKind, AgentLine, EnvoyLayout, Origin, Payload, SkipReason};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

static LEVEL_KEY: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| crate::key_search::json_finder(b"\"level\""));
static MSG_KEY: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| crate::key_search::json_finder(b"\"msg\""));
static FIELDS_KEY: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| crate::key_search::json_finder(b"\"fields\""));
static TARGET_KEY: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| crate::key_search::json_finder(b"\"target\""));
static ENVOY_SCOPE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| crate::key_search::json_finder(b"\"scope\":\"envoy "));

/// Every key any of the three writers uses; all optional so the shape is decided after.
#[derive(Deserialize)]
struct SidecarJson<'a> {
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    scope: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    caller: Option<Cow<'a, str>>,
    #[serde(default)]
    thread: LenientId,
    #[serde(default, rename = "ConnectionId")]
    connection_id: LenientId,
    #[serde(default, rename = "StreamId")]
    stream_id: LenientId,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    fields: Option<TracingFields<'a>>,
    /// tracing JSON with flattened events puts the message at the top level.
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// linkerd's `fields` object: the message and, when present, the error that explains it.
#[derive(Deserialize)]
struct TracingFields<'a> {
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(default)]
    error: LenientText<'a>,
}

pub(super) fn names_envoy_scope(line: &str) -> bool {
    ENVOY_SCOPE.find(line.as_bytes()).is_some()
}

pub(super) fn parse(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    // Sidecar JSON is one physical line; anything after it is not part of the object.
    let line = first_line(record);
    let bytes = line.as_bytes();
    // Substring checks first: most application JSON (`"message"` rather than `"msg"`, no
    // `"level"`) and every access-log row are turned away without being parsed.
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let envoy_scope = ENVOY_SCOPE.find(bytes).is_some();
    if !envoy_scope
        && (LEVEL_KEY.find(bytes).is_none()
            || (MSG_KEY.find(bytes).is_none()
                && FIELDS_KEY.find(bytes).is_none()
                && TARGET_KEY.find(bytes).is_none()))
    {
        return None;
    }
    let Ok(json) = serde_json::from_str::<SidecarJson<'_>>(line) else {
        // Truncated or mangled: ours only if it names an Envoy scope.
        return envoy_scope.then_some(Err(SkipReason::InvalidJson));
    };
    if json
        .scope
        .as_deref()
        .is_some_and(|s| s.starts_with("envoy "))
    {
        return Some(envoy(json));
    }
    if json.target.is_some() && (json.fields.is_some() || json.message.is_some()) {
        return linkerd_json(json);
    }
    agent(json)
}

fn envoy(json: SidecarJson<'_>) -> Result<Parsed<'_>, SkipReason> {
    let level = json
        .level
        .as_deref()
        .and_then(level_of)
        .ok_or(SkipReason::Malformed)?;
    let time = match json.time.as_deref() {
        Some(text) => Some(parse_iso(text).ok_or(SkipReason::BadTimestamp)?.time),
        None => None,
    };
    let message = json.msg.ok_or(SkipReason::Malformed)?;
    let logger = match json.scope {
        Some(Cow::Borrowed(s)) => Cow::Borrowed(s.get(6..).unwrap_or("").trim()),
        Some(Cow::Owned(s)) => Cow::Owned(s.get(6..).unwrap_or("").trim().to_owned()),
        None => Cow::Borrowed(""),
    };
    Ok(envoy_event(EnvoyParts {
        layout: EnvoyLayout::Json,
        time,
        level,
        logger,
        source_location: json.caller.filter(|c| !c.is_empty()),
        thread: json.thread.0.and_then(|t| u32::try_from(t).ok()),
        connection_id: json.connection_id.0,
        stream_id: json.stream_id.0,
        message: trim_cow_end(message),
    }))
}

fn linkerd_json(json: SidecarJson<'_>) -> Option<Result<Parsed<'_>, SkipReason>> {
    let target = json.target?;
    let from_uptime = json.timestamp.as_deref().is_some_and(linkerd::is_uptime);
    // Other Rust services log tracing JSON too; only linkerd's own targets or its uptime
    // clock make it a proxy line.
    if !from_uptime && !target.starts_with("linkerd") {
        return None;
    }
    let Some(level) = json.level.as_deref().and_then(level_of) else {
        return Some(Err(SkipReason::Malformed));
    };
    let (message, error) = match json.fields {
        Some(fields) => (fields.message.or(json.message), fields.error.0),
        None => (json.message, None),
    };
    let mut message = message.unwrap_or(Cow::Borrowed(""));
    // The text form prints fields after the message (`... error=TLS detection timeout`);
    // keep the same text so rules see one message whichever encoding was used.
    if let Some(error) = error {
        let mut owned = message.into_owned();
        owned.push_str(" error=");
        owned.push_str(&error);
        message = Cow::Owned(owned);
    }
    Some(Ok(linkerd::agent(level, Some(target), message)))
}

fn agent(json: SidecarJson<'_>) -> Option<Result<Parsed<'_>, SkipReason>> {
    let level = zap_level(json.level.as_deref()?)?;
    let time_text = json.time.as_deref()?;
    let time = parse_iso(time_text)?;
    // zap JSON without a scope looks like many applications' JSON; Istio's fixed time shape
    // (microseconds, `Z`) is what tells its default scope apart.
    let istio_time = time_text.len() == 27 && time_text.ends_with('Z') && time.len == 27;
    let scope_ok = json
        .scope
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s.bytes().all(is_scope_byte));
    if !scope_ok && !istio_time {
        return None;
    }
    let message = json.msg?;
    Some(Ok(Parsed {
        time: Some(time.time),
        origin: Origin::default(),
        payload: Payload::Agent(Box::new(AgentLine {
            proxy: AgentKind::IstioAgent,
            level,
            scope: json.scope.filter(|_| scope_ok),
            message: trim_cow_end(message),
        })),
    }))
}

/// Envoy's `%j` keeps a trailing newline of multi-line messages; drop trailing blanks.
fn trim_cow_end(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_end()),
        Cow::Owned(mut s) => {
            let keep = s.trim_end().len();
            s.truncate(keep);
            Cow::Owned(s)
        }
    }
}

/// A number that may be written as a JSON number or a string (`"thread":22` in Istio
/// 1.17–1.21, `"thread":"22"` later). Anything else becomes `None` instead of an error.
#[derive(Default)]
struct LenientId(Option<u64>);

impl<'de> Deserialize<'de> for LenientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = LenientId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id as number or string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientId, E> {
                Ok(LenientId(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientId, E> {
                Ok(LenientId(u64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LenientId, E> {
                Ok(LenientId(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LenientId, E> {
                Ok(LenientId(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientId, E> {
                Ok(LenientId(parse_u64(v.trim().as_bytes())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientId, E> {
                Ok(LenientId(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<LenientId, E> {
                Ok(LenientId(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LenientId, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientId(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LenientId, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientId(None))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A string if the value is one (borrowed when unescaped); any other value is ignored.
#[derive(Default)]
struct LenientText<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LenientText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = LenientText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientText(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientText(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientText(Some(Cow::Owned(v))))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LenientText(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LenientText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientText(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientText(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientText(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientText(None))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}
