//! Substring searchers for JSON keys (`"level"`, `"response_code"`, ...), which the parsers
//! use to turn away lines that cannot be theirs before deserialising them.
//!
//! memchr's searcher looks first for the needle's two rarest bytes, judged by how often
//! bytes occur in ordinary text, where a quote is rare. In JSON every other token is a
//! quote, so a searcher for `"msg"` keyed on its quotes stopped at every string of every
//! application line. This ranking calls JSON punctuation the commonest bytes, so the
//! searcher keys on the letters of the key instead. It changes speed only, never a result.

use memchr::arch::all::packedpair::HeuristicFrequencyRank;
use memchr::memmem::{Finder, FinderBuilder};

/// Byte frequencies as seen in JSON log lines (higher = more common).
struct JsonRank;

impl HeuristicFrequencyRank for JsonRank {
    fn rank(&self, byte: u8) -> u8 {
        match byte {
            b'"' | b':' | b',' | b'{' | b'}' | b' ' => 255,
            b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 220,
            b'0'..=b'9' | b'_' | b'-' | b'.' => 200,
            b'l' | b'c' | b'd' | b'h' | b'u' | b'm' | b'p' => 180,
            b'a'..=b'z' => 120,
            _ => 100,
        }
    }
}

/// A searcher for `needle` (a JSON key with its quotes, or any literal inside JSON).
pub(crate) fn json_finder(needle: &'static [u8]) -> Finder<'static> {
    FinderBuilder::new().build_forward_with_ranker(JsonRank, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_the_default_searcher_finds() {
        let line = br#"{"@timestamp":"2020-10-19T00:00:00Z","level":"WARN","message":"msg \"msg\" here","msg":"x"}"#;
        for needle in [
            &b"\"level\""[..],
            b"\"msg\"",
            b"\"target\"",
            b"\"message\":",
        ] {
            let ours = json_finder(needle).find_iter(line).collect::<Vec<_>>();
            let default = memchr::memmem::find_iter(line, needle).collect::<Vec<_>>();
            assert_eq!(ours, default, "{}", String::from_utf8_lossy(needle));
        }
    }
}
