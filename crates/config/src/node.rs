//! A document tree that remembers the line of every key and value.
//!
//! YAML goes through serde-saphyr (its `Spanned` values carry lines); multi-document files are
//! first cut at their `---` / `...` marker lines (a marker at column 0 can never be content, so
//! the cut is exact) so that one broken document is reported on its own and the others are
//! still used. JSON (config dumps, `kubectl -o json`) goes through a small parser of our own
//! that tracks lines and has no node budget, because Envoy dumps are large and deep.
//!
//! This module must not interpret documents (no Kubernetes or Envoy knowledge here).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One node: its 1-based line (the key's line for a mapping value) and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// 1-based line in the file; for a mapping value, the line of its key.
    pub line: u64,
    /// The value.
    pub value: Value,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or empty.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in document order.
    Map(Vec<(String, Node)>),
}

static NULL: Node = Node {
    line: 0,
    value: Value::Null,
};

impl Node {
    /// The entry `key` of a mapping. `key` is given in snake_case and also matches its
    /// camelCase spelling, because `/config_dump` is snake_case and `istioctl -o json` camelCase.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        let Value::Map(entries) = &self.value else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| k == key || snake_eq_camel(key, k))
            .map(|(_, v)| v)
    }

    /// Follow a path of mapping keys.
    #[must_use]
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        let mut node = self;
        for key in path {
            node = node.get(key)?;
        }
        Some(node)
    }

    /// The entry `key`, or a null node (for chaining).
    #[must_use]
    pub fn field(&self, key: &str) -> &Node {
        self.get(key).unwrap_or(&NULL)
    }

    /// A string value (numbers and booleans are given as their text).
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar as text, whatever its type (`8080`, `true`, `5s`).
    #[must_use]
    pub fn text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// An unsigned integer, from a number or a numeric string (`"8080"`).
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::Str(s) => s.trim().parse().ok(),
            // Ports written as 8080.0 do not exist in practice; floats are not ports.
            _ => None,
        }
    }

    /// A boolean, from a boolean or its string spelling.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The items of a sequence (empty for anything else).
    #[must_use]
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The entries of a mapping (empty for anything else).
    #[must_use]
    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// True for `null` (and for a missing field obtained through [`Node::field`]).
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    fn shift(&mut self, by: u64) {
        if self.line > 0 {
            self.line += by;
        }
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.shift(by)),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| n.shift(by)),
            _ => {}
        }
    }
}

/// `listener_filters_timeout` == `listenerFiltersTimeout`, without allocating.
fn snake_eq_camel(snake: &str, camel: &str) -> bool {
    let mut want = snake.bytes();
    let mut got = camel.bytes();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(b'_'), Some(g)) => match want.next() {
                Some(w) if w.to_ascii_uppercase() == g => {}
                _ => return false,
            },
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// YAML

struct NodeVisitor;

fn spanned_line<T>(s: &Spanned<T>) -> u64 {
    s.referenced.line()
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or_else(|_| Value::Str(v.to_string()), Value::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<YamlValue>>()? {
            items.push(Node {
                line: spanned_line(&item),
                value: item.value.0,
            });
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<YamlKey>>()? {
            let value = map.next_value::<Spanned<YamlValue>>()?;
            let line = match spanned_line(&key) {
                0 => spanned_line(&value),
                l => l,
            };
            entries.push((
                key.value.0,
                Node {
                    line,
                    value: value.value.0,
                },
            ));
        }
        Ok(Value::Map(entries))
    }
}

struct YamlValue(Value);

impl<'de> Deserialize<'de> for YamlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor).map(YamlValue)
    }
}

/// Mapping keys: any scalar becomes its text (`8080:` in `portLevelMtls` is an integer key).
struct YamlKey(String);

impl<'de> Deserialize<'de> for YamlKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = d.deserialize_any(NodeVisitor)?;
        Ok(YamlKey(match value {
            Value::Str(s) => s,
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            // Complex keys (`? [a, b]`) are legal YAML but meaningless in our documents.
            Value::Seq(_) | Value::Map(_) => "?".to_string(),
        }))
    }
}

/// One YAML document of a file: its tree, or why it could not be read.
#[derive(Clone, Debug)]
pub struct YamlDoc {
    /// 1-based line where the document starts (its first line after a `---` marker).
    pub start_line: u64,
    /// The tree, or the error with its 1-based file line.
    pub result: Result<Node, (u64, String)>,
}

fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    // Kubernetes dumps of a whole namespace are large; the defaults are sized for app configs.
    budget.max_events = 20_000_000;
    budget.max_nodes = 5_000_000;
    budget.max_depth = 128;
    options.budget = Some(budget);
    // Kubernetes reads `0755`-like values as text-ish; keep the spelling instead of a float.
    options.leading_zero_numbers_as_strings = true;
    options
}

/// Stack for the YAML reader: serde's recursion costs several KiB per nesting level in debug
/// builds, more than a test thread's 2 MiB at the depth budget.
const YAML_STACK: usize = 64 * 1024 * 1024;

/// Split YAML text into documents at marker lines and parse each one on its own.
/// Empty documents (only comments or blank lines) are dropped. Runs on a thread with a
/// large stack so that the depth budget, not the stack, bounds nesting.
#[must_use]
pub fn parse_yaml_documents(text: &str) -> Vec<YamlDoc> {
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("yaml".to_string())
            .stack_size(YAML_STACK)
            .spawn_scoped(scope, || split_and_parse(text))
        {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                vec![YamlDoc {
                    start_line: 1,
                    result: Err((1, "the YAML reader failed on this file".to_string())),
                }]
            }),
            // Spawning fails only when the OS refuses a thread; parse here then.
            Err(_) => split_and_parse(text),
        }
    })
}

fn split_and_parse(text: &str) -> Vec<YamlDoc> {
    let mut docs = Vec::new();
    let mut start = 0usize; // byte offset of the current document
    let mut start_line = 1u64;
    let mut offset = 0usize;
    for (line_no, line) in (1u64..).zip(text.split_inclusive('\n')) {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_marker = is_marker(trimmed, "---") || is_marker(trimmed, "...");
        if is_marker {
            push_doc(&mut docs, &text[start..offset], start_line);
            // `--- {a: 1}` / `--- !tag` keep content on the marker line; YAML allows it.
            let rest = trimmed.get(3..).unwrap_or("").trim();
            if trimmed.starts_with("---") && !rest.is_empty() && !rest.starts_with('#') {
                start = offset + 3;
                start_line = line_no;
            } else {
                start = offset + line.len();
                start_line = line_no + 1;
            }
        }
        offset += line.len();
    }
    push_doc(&mut docs, &text[start.min(text.len())..], start_line);
    docs
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

fn push_doc(docs: &mut Vec<YamlDoc>, text: &str, start_line: u64) {
    let meaningful = text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !t.starts_with('%')
    });
    if !meaningful {
        return;
    }
    let offset = start_line.saturating_sub(1);
    let result =
        match serde_saphyr::from_str_with_options::<Spanned<YamlValue>>(text, yaml_options()) {
            Ok(spanned) => {
                let mut node = Node {
                    line: spanned_line(&spanned).max(1),
                    value: spanned.value.0,
                };
                node.shift(offset);
                Ok(node)
            }
            Err(err) => {
                let line = err.location().map_or(1, |l| l.line().max(1)) + offset;
                let message = err.to_string();
                // The first line of saphyr's message is the reason; the rest is a source snippet.
                let first = message.lines().next().unwrap_or("invalid YAML");
                // `error: line 8 column 16: reason` counts lines inside the document; we give the
                // file line ourselves, so keep only the reason.
                let reason = first.trim_start_matches("error: ");
                let reason = match reason.strip_prefix("line ") {
                    Some(rest) => rest.split_once(": ").map_or(reason, |(_, r)| r),
                    None => reason,
                };
                Err((line, reason.to_string()))
            }
        };
    docs.push(YamlDoc { start_line, result });
}

// ---------------------------------------------------------------------------------------
// JSON

/// Why JSON text could not be read: the 1-based line and a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// 1-based line of the problem.
    pub line: u64,
    /// What was wrong.
    pub reason: &'static str,
}

const MAX_JSON_DEPTH: usize = 512;

/// Parse one JSON value (a whole file) into a [`Node`] tree with lines.
///
/// # Errors
/// On malformed JSON, with the line of the problem.
pub fn parse_json(text: &str) -> Result<Node, JsonError> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    // A UTF-8 byte order mark is legal noise in front of JSON written by some tools.
    if parser.bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        parser.pos = 3;
    }
    parser.skip_ws();
    let node = parser.value(0)?;
    parser.skip_ws();
    if parser.pos < parser.bytes.len() {
        return Err(parser.err("trailing characters after the JSON value"));
    }
    Ok(node)
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
}

impl JsonParser<'_> {
    fn err(&self, reason: &'static str) -> JsonError {
        JsonError {
            line: self.line,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, JsonError> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let line = self.line;
        let value = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.err("unexpected character")),
            None => return Err(self.err("unexpected end of input")),
        };
        Ok(Node { line, value })
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos])
            .map_err(|_| self.err("invalid number"))?;
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.err("invalid number"))
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            // Copy the run of plain bytes in one go; only quotes, escapes and newlines stop it.
            let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
            let run = rest
                .iter()
                .position(|b| matches!(b, b'"' | b'\\' | b'\n'))
                .unwrap_or(rest.len());
            out.extend_from_slice(&rest[..run]);
            self.pos += run;
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                b'\n' => {
                    // Raw newlines are invalid JSON; accept them but keep counting lines.
                    self.line += 1;
                    out.push(b);
                }
                _ => out.push(b),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("short unicode escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("invalid unicode escape"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("invalid unicode escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.bytes[self.pos..].starts_with(b"\\u") {
            self.pos += 2;
            let second = self.hex4()?;
            if (0xDC00..0xE000).contains(&second) {
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            return Ok('\u{FFFD}');
        }
        Ok(char::from_u32(first).unwrap_or('\u{FFFD}'))
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Seq(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Seq(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.pos += 1;
        let mut entries = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Map(entries));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key_line = self.line;
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let mut node = self.value(depth + 1)?;
            node.line = key_line;
            entries.push((key, node));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Map(entries));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lines_follow_keys_across_documents_and_a_broken_one_is_isolated() {
        let text = "# header\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: orders\n---\nkind: [oops\n---\nkind: PeerAuthentication\nspec:\n  portLevelMtls:\n    8080:\n      mode: STRICT\n";
        let docs = parse_yaml_documents(text);
        assert_eq!(docs.len(), 3);
        let first = docs[0].result.as_ref().unwrap();
        assert_eq!(first.at(&["metadata", "name"]).unwrap().line, 6);
        let (line, _) = docs[1].result.as_ref().unwrap_err();
        assert!((8..=9).contains(line), "{line}");
        let third = docs[2].result.as_ref().unwrap();
        let mode = third
            .at(&["spec", "portLevelMtls", "8080", "mode"])
            .unwrap();
        assert_eq!((mode.line, mode.as_str()), (14, Some("STRICT")));
    }

    #[test]
    fn json_lines_and_camel_case_lookup() {
        let text = "{\n  \"listenerFiltersTimeout\": \"0.100s\",\n  \"a\": [1, \"x\\u00e9\"],\n  \"n\": -1.5e2\n}";
        let node = parse_json(text).unwrap();
        let t = node.get("listener_filters_timeout").unwrap();
        assert_eq!((t.line, t.as_str()), (2, Some("0.100s")));
        assert_eq!(node.field("a").items()[1].as_str(), Some("xé"));
        assert_eq!(node.field("n").value, Value::Float(-150.0));
        assert_eq!(parse_json("{\n\"a\": }").unwrap_err().line, 2);
    }

    #[test]
    fn snake_camel_matching() {
        assert!(snake_eq_camel("filter_chain_match", "filterChainMatch"));
        assert!(!snake_eq_camel("filter_chain_match", "filterChain"));
        assert!(!snake_eq_camel("a_b", "a_b_c"));
    }
}
