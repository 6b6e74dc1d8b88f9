//! Layers that log pipelines wrap around the original line.
//!
//! `kubectl logs --prefix` (`[pod/<pod>/<container>] `), `kubectl logs --timestamps` and the
//! CRI file format (a 9-digit RFC 3339 receive time, optionally `stdout F`), Docker's
//! json-file (`{"log": ..., "time": ...}`) and Splunk JSON exports (`{"result": {"_raw": ...}}`).
//! Unwrapping yields the original line plus what the wrapper told us (receive time, pod and
//! container); the parsers never see the wrappers.

use crate::timestamp;
use meshdoctor_model::Timestamp;
use serde::Deserialize;
use std::borrow::Cow;

/// What unwrapping found around a line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Receive time written by the collector.
    pub collector_time: Option<Timestamp>,
    /// Pod named by the wrapper.
    pub pod: Option<Cow<'a, str>>,
    /// Container named by the wrapper.
    pub container: Option<Cow<'a, str>>,
    /// Namespace named by the wrapper (Splunk metadata).
    pub namespace: Option<Cow<'a, str>>,
}

/// Result of unwrapping one physical line.
#[derive(Debug, PartialEq, Eq)]
pub enum Unwrapped<'a> {
    /// The original line, borrowed from the input.
    Borrowed(&'a str, Envelope<'a>),
    /// The original line had to be unescaped out of JSON.
    Owned(String, Envelope<'static>),
    /// A line that carries no log record (Splunk preview rows and trailer rows).
    Ignorable,
}

/// Strip the text wrappers (`[pod/...] `, kubelet timestamps, CRI stream tags) at the start
/// of a line. Cheap: returns the line untouched unless a wrapper is there.
#[must_use]
pub fn strip_text_wrappers(mut line: &str) -> (&str, Envelope<'_>) {
    let mut env = Envelope::default();
    if let Some(rest) = line.strip_prefix("[pod/")
        && let Some(close) = rest.find("] ")
    {
        let inside = &rest[..close];
        let (pod, container) = inside.split_once('/').unwrap_or((inside, ""));
        env.pod = Some(Cow::Borrowed(pod));
        if !container.is_empty() {
            env.container = Some(Cow::Borrowed(container));
        }
        line = &rest[close + 2..];
    }
    // Kubelet writes RFC3339Nano with a fixed 9-digit fraction; the logs themselves almost
    // never do, so the fixed width tells the wrapper from the record's own timestamp.
    let b = line.as_bytes();
    if b.len() > 31
        && b[0].is_ascii_digit()
        && b[19] == b'.'
        && b[29] == b'Z'
        && b[30] == b' '
        && b[20..29].iter().all(u8::is_ascii_digit)
        && let Some(parsed) = timestamp::parse_iso(&line[..30])
    {
        env.collector_time = Some(parsed.time);
        line = &line[31..];
        for tag in ["stdout F ", "stderr F ", "stdout P ", "stderr P "] {
            if let Some(rest) = line.strip_prefix(tag) {
                line = rest;
                break;
            }
        }
    }
    (line, env)
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(default, borrow)]
    time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SplunkRow<'a> {
    #[serde(default)]
    preview: bool,
    #[serde(default, borrow)]
    result: Option<SplunkResult<'a>>,
}

#[derive(Deserialize)]
struct SplunkResult<'a> {
    #[serde(rename = "_raw", borrow)]
    raw: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pod: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    container_name: Option<Cow<'a, str>>,
}

// Built once: a memmem searcher costs more to build than to run on one line.
static LOG_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| crate::key_search::json_finder(b"\"log\":"));
static STREAM_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| crate::key_search::json_finder(b"\"stream\":"));

/// Unwrap one physical line completely: JSON envelopes first, then text wrappers.
#[must_use]
pub fn unwrap_line(line: &str) -> Unwrapped<'_> {
    let b = line.as_bytes();
    if b.first() == Some(&b'{') {
        if b.starts_with(b"{\"log\":")
            || (b.len() < 8192 && LOG_KEY.find(b).is_some() && STREAM_KEY.find(b).is_some())
        {
            if let Ok(docker) = serde_json::from_str::<DockerLine<'_>>(line) {
                let collector_time = docker
                    .time
                    .as_deref()
                    .and_then(timestamp::parse_iso)
                    .map(|t| t.time);
                let inner = docker.log.trim_end_matches(['\n', '\r']).to_string();
                let (stripped, env) = strip_text_wrappers(&inner);
                let env = Envelope {
                    collector_time: env.collector_time.or(collector_time),
                    pod: env.pod.map(|p| Cow::Owned(p.into_owned())),
                    container: env.container.map(|c| Cow::Owned(c.into_owned())),
                    namespace: None,
                };
                return Unwrapped::Owned(stripped.to_string(), env);
            }
        } else if (b.starts_with(b"{\"preview\":")
            || b.starts_with(b"{\"result\":")
            || b.starts_with(b"{\"lastrow\""))
            && let Ok(row) = serde_json::from_str::<SplunkRow<'_>>(line)
        {
            if row.preview {
                return Unwrapped::Ignorable;
            }
            let Some(result) = row.result else {
                return Unwrapped::Ignorable;
            };
            let Some(raw) = result.raw else {
                return Unwrapped::Ignorable;
            };
            let env = Envelope {
                collector_time: None,
                pod: result.pod.map(|p| Cow::Owned(p.into_owned())),
                container: result.container_name.map(|c| Cow::Owned(c.into_owned())),
                namespace: result.namespace.map(|n| Cow::Owned(n.into_owned())),
            };
            // `_raw` may itself be a kubelet/CRI line.
            let (stripped, inner_env) = strip_text_wrappers(&raw);
            let env = Envelope {
                collector_time: inner_env.collector_time,
                ..env
            };
            return Unwrapped::Owned(stripped.trim_end_matches(['\n', '\r']).to_string(), env);
        }
    }
    let (inner, env) = strip_text_wrappers(line);
    Unwrapped::Borrowed(inner, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_prefix_and_timestamps() {
        let (inner, env) = strip_text_wrappers(
            "[pod/orders-5d8f9c7b6-abcde/istio-proxy] 2021-04-01T05:09:24.193719454Z 2021-04-01T05:09:24.193000Z\tinfo\tEnvoy proxy is ready",
        );
        assert_eq!(
            inner,
            "2021-04-01T05:09:24.193000Z\tinfo\tEnvoy proxy is ready"
        );
        assert_eq!(env.pod.as_deref(), Some("orders-5d8f9c7b6-abcde"));
        assert_eq!(env.container.as_deref(), Some("istio-proxy"));
        assert_eq!(
            env.collector_time.unwrap().to_string(),
            "2021-04-01T05:09:24.193719454Z"
        );
    }

    #[test]
    fn cri_stream_tag() {
        let (inner, env) =
            strip_text_wrappers("2021-04-01T05:09:24.193719454Z stdout F hello world");
        assert_eq!(inner, "hello world");
        assert!(env.collector_time.is_some());
    }

    #[test]
    fn app_timestamps_are_not_wrappers() {
        let (inner, env) = strip_text_wrappers("2024-05-01T10:00:00.123Z INFO started");
        assert_eq!(inner, "2024-05-01T10:00:00.123Z INFO started");
        assert!(env.collector_time.is_none());
    }

    #[test]
    fn docker_and_splunk() {
        match unwrap_line(
            r#"{"log":"\tat x.Y.z(Y.java:1)\n","stream":"stdout","time":"2021-04-01T05:09:24.193719454Z"}"#,
        ) {
            Unwrapped::Owned(inner, env) => {
                assert_eq!(inner, "\tat x.Y.z(Y.java:1)");
                assert!(env.collector_time.is_some());
            }
            other => panic!("{other:?}"),
        }
        match unwrap_line(
            r#"{"preview":false,"offset":0,"result":{"_raw":"2020-10-23T00:26:14.869776Z\tdebug\tenvoy filter\tx","_time":"2020-10-23T00:26:14.869+00:00","host":"n1"}}"#,
        ) {
            Unwrapped::Owned(inner, _) => {
                assert!(inner.starts_with("2020-10-23T00:26:14.869776Z\tdebug"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            unwrap_line(r#"{"preview":true,"result":{"_raw":"x"}}"#),
            Unwrapped::Ignorable
        );
        assert_eq!(
            unwrap_line(r#"{"preview":false,"lastrow":true}"#),
            Unwrapped::Ignorable
        );
    }
}
