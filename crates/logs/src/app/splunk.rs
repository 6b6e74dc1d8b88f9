//! The Splunk list-view paste: `{ [-]`, then one `key: value` line per field, then `}`.
//!
//! This is what people copy out of Splunk's event viewer into tickets (the founding
//! incident's record is one). Values are shown unquoted, nested objects open with
//! `key: { [-]` and close with `}`, and a multi-line value such as `stack_trace` simply
//! continues on the following lines until the next `key: ` line. The pairs are fed through
//! the same [`JsonLine`] mapping as real JSON, so every field set works here too. This
//! module must not be used for anything that is not such a block.

use super::build;
use super::json::{JsonLine, resolve};
use crate::Parsed;
use meshdoctor_model::SkipReason;
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError, MapDeserializer};
use std::borrow::Cow;

/// Type-name endings that mark a `Name: text` line as an exception, not a field.
const EXCEPTION_SUFFIXES: &[&str] = &["Exception", "Error", "Throwable", "Fault", "Exit"];

/// True when the record's first line opens a list-view block (`{ [-]` or collapsed `{ [+]`).
///
/// Asked of every JSON line, so it reads from the front and stops at the first byte that
/// rules the block out instead of finding the end of the first line.
pub(super) fn is_list_view(record: &str) -> bool {
    let blank_in_line = |c: char| c != '\n' && c.is_whitespace();
    let Some(rest) = record.trim_start_matches(blank_in_line).strip_prefix('{') else {
        return false;
    };
    let rest = rest.trim_start_matches(blank_in_line);
    let Some(after) = rest
        .strip_prefix("[-]")
        .or_else(|| rest.strip_prefix("[+]"))
    else {
        return false;
    };
    after.split('\n').next().unwrap_or("").trim().is_empty()
}

/// Parse a list-view block into an app record.
pub(super) fn parse(record: &str) -> Result<Parsed<'_>, SkipReason> {
    let pairs = collect(record);
    let map = MapDeserializer::<_, ValueError>::new(
        pairs
            .into_iter()
            .map(|(key, value)| (key, BorrowedStrDeserializer::<ValueError>::new(value))),
    );
    let mut line = JsonLine::deserialize(map).map_err(|_| SkipReason::UnusableJson)?;
    resolve(&mut line)
        .map(build)
        .ok_or(SkipReason::UnusableJson)
}

struct Open<'a> {
    key: Cow<'a, str>,
    start: usize,
    end: usize,
}

/// The `(dotted key, value)` pairs of the block, values borrowed from `record`. Keys seen
/// twice keep their first value (the mapping rejects duplicates).
fn collect(record: &str) -> Vec<(Cow<'_, str>, &str)> {
    let mut pairs: Vec<(Cow<'_, str>, &str)> = Vec::new();
    let mut scope: Vec<&str> = Vec::new();
    let mut array_depth: usize = 0;
    let mut open: Option<Open<'_>> = None;
    let mut pos = 0;

    for (idx, raw) in record.split('\n').enumerate() {
        let line_start = pos;
        pos += raw.len() + 1;
        if idx == 0 {
            continue;
        }
        let line = raw.trim_end_matches('\r');
        let body = line.trim();
        if body == "}" || body == "]" {
            finish(record, &mut open, &mut pairs);
            if body == "]" {
                array_depth = array_depth.saturating_sub(1);
            } else if array_depth > 0 {
                // An object inside an array closes; still inside the array.
            } else if scope.pop().is_none() {
                break;
            }
            continue;
        }
        if array_depth > 0 {
            if opens(body.rsplit_once(": ").map_or(body, |(_, v)| v)) == Some('[') {
                array_depth += 1;
            }
            continue;
        }
        let indented = line.len() != line.trim_start().len();
        let key_value = if scope.is_empty() && indented {
            None
        } else {
            key_line(body)
        };
        if let Some((key, value)) = key_value {
            finish(record, &mut open, &mut pairs);
            match opens(value) {
                Some('{') => {
                    scope.push(key);
                    continue;
                }
                Some(_) => {
                    array_depth += 1;
                    continue;
                }
                None => {}
            }
            let full_key = if scope.is_empty() {
                Cow::Borrowed(key)
            } else {
                Cow::Owned(format!("{}.{key}", scope.join(".")))
            };
            let value_at =
                line_start + (value.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
            open = Some(Open {
                key: full_key,
                start: value_at,
                end: value_at + value.len(),
            });
        } else if let Some(o) = open.as_mut() {
            o.end = line_start + line.len();
        }
    }
    finish(record, &mut open, &mut pairs);
    pairs
}

fn finish<'a>(
    record: &'a str,
    open: &mut Option<Open<'a>>,
    pairs: &mut Vec<(Cow<'a, str>, &'a str)>,
) {
    if let Some(o) = open.take() {
        let value = record.get(o.start..o.end).unwrap_or("").trim();
        if !pairs.iter().any(|(k, _)| *k == o.key) {
            pairs.push((o.key, value));
        }
    }
}

/// `{ [-]`, `{ [+]`, `{` open an object; the same with `[` open an array.
fn opens(value: &str) -> Option<char> {
    let v = value.trim();
    let bracket = v.chars().next()?;
    if bracket != '{' && bracket != '[' {
        return None;
    }
    let rest = v.get(1..)?.trim();
    matches!(rest, "" | "[-]" | "[+]").then_some(bracket)
}

/// `key: value` or `key:` with a key made of identifier characters that does not look like
/// an exception type (`java.net.SocketException: Connection reset` continues a trace).
fn key_line(body: &str) -> Option<(&str, &str)> {
    let (key, value) = match body.split_once(": ") {
        Some((k, v)) => (k, v),
        None => (body.strip_suffix(':')?, ""),
    };
    let first = key.bytes().next()?;
    let key_chars = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-' | b'/'));
    if !(first.is_ascii_alphabetic() || first == b'_' || first == b'@') || !key_chars {
        return None;
    }
    if EXCEPTION_SUFFIXES.iter().any(|s| key.ends_with(s)) {
        return None;
    }
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_with_nested_and_multiline_values() {
        let block = "{ [-]\nkubernetes: { [-]\n  container_name: orders\n  labels: { [+]\n  }\n}\nlevel: ERROR\nstack_trace: java.io.IOException: x\nat a.B.c(B.java:1)\nCaused by: java.net.SocketException: Connection reset\nat a.B.d(B.java:2)\n\ntags: [ [-]\n  a\n  b\n]\nthread_name: main\n}";
        let pairs = collect(block);
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(
            keys,
            [
                "kubernetes.container_name",
                "level",
                "stack_trace",
                "thread_name"
            ]
        );
        assert_eq!(
            pairs[2].1,
            "java.io.IOException: x\nat a.B.c(B.java:1)\nCaused by: java.net.SocketException: Connection reset\nat a.B.d(B.java:2)"
        );
    }

    #[test]
    fn exception_lines_are_not_keys() {
        assert!(key_line("java.net.SocketException: Connection reset").is_none());
        assert!(key_line("Caused by: x").is_none());
        assert!(key_line("at a.B(B.java:12)").is_none());
        assert_eq!(
            key_line("x-correlation-id: abc"),
            Some(("x-correlation-id", "abc"))
        );
    }
}
