//! One cheap "can any of these text tests match?" check per event text, so that an event's
//! message is scanned once instead of once per rule pattern.
//!
//! The filter only ever answers "maybe" or "no": a "no" must be exact (no test could pass),
//! a "maybe" is followed by the real tests. This module must not decide a match itself (a
//! caller that ran the tests may keep their answer as an exact [`Cands`]).

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind, Span};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Shortest literal worth a literal scan (shorter ones would say "maybe" too often).
const MIN_LITERAL: usize = 3;
/// Most literals in one literal scan.
const MAX_LITERALS: usize = 1024;
/// Most literals per fast (Teddy) gate searcher (the most a 16-bucket Teddy takes well).
const GATE_CHUNK: usize = 64;

thread_local! {
    /// The lowercased text the gate searches (reused: no allocation per event).
    static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A text test of one rule pattern: `contains` and/or `regex`, both required when both set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Test<'a> {
    /// Index of the pattern (its bit in [`Cands`]).
    pub id: usize,
    /// The regex source, compiled with the default options.
    pub regex: Option<&'a str>,
    /// A literal the text must contain.
    pub contains: Option<&'a str>,
    /// `contains` compares ASCII letters case-insensitively.
    pub ignore_case: bool,
}

/// Which patterns may match a text: bit `id` for patterns 0..128, `any` for the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cands {
    bits: u128,
    any: bool,
    /// The bits are the answer, not a "maybe" (see [`Cands::exactly`]).
    exact: bool,
}

impl Cands {
    /// Every pattern may match.
    pub(crate) const ALL: Cands = Cands {
        bits: u128::MAX,
        any: true,
        exact: false,
    };

    /// The tests already run: the patterns (all below 128) of `bits` match, no other does.
    /// The filter never answers this; a caller that ran the tests does.
    pub(crate) fn exactly(bits: u128) -> Cands {
        Cands {
            bits,
            any: false,
            exact: true,
        }
    }

    /// True when [`Cands::may`] is the answer itself.
    pub(crate) fn is_exact(self) -> bool {
        self.exact
    }

    /// Bit `id` set when pattern `id` (below 128) may match.
    pub(crate) fn bits(self) -> u128 {
        self.bits
    }

    /// False only when pattern `id` cannot match.
    pub(crate) fn may(self, id: usize) -> bool {
        match u32::try_from(id).ok().and_then(|i| 1u128.checked_shl(i)) {
            Some(bit) => self.bits & bit != 0,
            None => self.any,
        }
    }

    fn add(&mut self, id: usize) {
        self.any = true;
        if let Some(bit) = u32::try_from(id).ok().and_then(|i| 1u128.checked_shl(i)) {
            self.bits |= bit;
        }
    }
}

/// A filter over the tests that read one text.
#[derive(Debug)]
pub(crate) enum TextFilter {
    /// Every match of a test contains one of its literals, compared ASCII
    /// case-insensitively: both are searched lowercased.
    Literals {
        /// Fast SIMD searchers that find where the next literal starts (most texts hold
        /// none); empty when they could not be built.
        gate: Vec<aho_corasick::packed::Searcher>,
        /// All literals, to list every literal starting where the gate stopped (or to scan
        /// the whole text when there is no gate).
        searcher: AhoCorasick,
        /// Length of the longest literal.
        longest: usize,
        /// The tests (pattern ids) each literal stands for.
        owners: Vec<Vec<usize>>,
    },
    /// The alternation of every test (when some test has no required literal).
    Regex(regex::Regex),
}

impl TextFilter {
    /// A filter for these tests, or `None` when there is nothing to gain (fewer than two
    /// tests) or no filter could be built.
    pub(crate) fn new(tests: &[Test<'_>]) -> Option<TextFilter> {
        if tests.len() < 2 {
            return None;
        }
        if let Some((lits, owners)) = literals(tests)
            && let Ok(searcher) = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&lits)
        {
            // Teddy stops wherever a bucket's fingerprint (the first bytes of its literals,
            // merged) fits the text, so the literals are dealt out to keep buckets alike:
            // as few searchers as the limit allows, of equal size (a full one beside a
            // small one crowds its buckets), each given a run of the sorted literals (it
            // puts literals with the same first bytes in one bucket). For the 83 literals
            // of the built-in application rules this scans messages a fifth and stack
            // traces a third faster than 64 + 19 in rule order.
            let mut sorted: Vec<&str> = lits.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            let searchers = sorted.len().div_ceil(GATE_CHUNK).max(1);
            let gate: Option<Vec<_>> = sorted
                .chunks(sorted.len().div_ceil(searchers).max(1))
                .map(|chunk| {
                    aho_corasick::packed::Config::new()
                        .builder()
                        .extend(chunk)
                        .build()
                })
                .collect();
            let longest = lits.iter().map(String::len).max().unwrap_or(0);
            return Some(TextFilter::Literals {
                gate: gate.unwrap_or_default(),
                searcher,
                longest,
                owners,
            });
        }
        // A pattern with both `contains` and `regex` needs both, so its regex alone is a
        // superset. `(?i)` matches every ASCII case variant `contains_ci` does (and more),
        // which is fine for a filter that only says "maybe".
        let alts: Vec<String> = tests
            .iter()
            .filter_map(|t| match (t.regex, t.contains) {
                (Some(r), _) => Some(format!("(?:{r})")),
                (None, Some(c)) if t.ignore_case => Some(format!("(?i:{})", regex::escape(c))),
                (None, Some(c)) => Some(format!("(?:{})", regex::escape(c))),
                (None, None) => None,
            })
            .collect();
        if alts.len() < tests.len() {
            // A test without text conditions always passes: nothing to filter.
            return None;
        }
        regex::Regex::new(&alts.join("|"))
            .ok()
            .map(TextFilter::Regex)
    }

    /// The tests that may match `text` (a test left out cannot match).
    pub(crate) fn candidates(&self, text: &str) -> Cands {
        match self {
            TextFilter::Literals {
                gate,
                searcher,
                longest,
                owners,
            } => LOWER.with_borrow_mut(|lower| {
                fold_into(lower, text);
                let hay = lower.as_slice();
                let mut c = Cands::default();
                let mut add = |input: Input<'_>| -> bool {
                    let Ok(found) = searcher.try_find_overlapping_iter(input) else {
                        return false;
                    };
                    for m in found {
                        for &id in owners.get(m.pattern().as_usize()).into_iter().flatten() {
                            c.add(id);
                        }
                    }
                    true
                };
                if gate.is_empty() {
                    if !add(Input::new(hay)) {
                        return Cands::ALL;
                    }
                    return c;
                }
                // Each gate search returns the leftmost literal start at or after `at`, so
                // every position where any literal starts is visited; there the automaton
                // lists every literal in the next `longest` bytes, so every literal starting
                // at that position (overlaps included; others found there occur too).
                for g in gate {
                    let mut at = 0;
                    while let Some(m) = g.find_in(
                        hay,
                        Span {
                            start: at,
                            end: hay.len(),
                        },
                    ) {
                        let end = hay.len().min(m.start().saturating_add(*longest));
                        let input = Input::new(hay).span(m.start()..end);
                        if !add(input) {
                            return Cands::ALL;
                        }
                        at = m.start() + 1;
                        if at >= hay.len() {
                            break;
                        }
                    }
                }
                c
            }),
            TextFilter::Regex(r) if r.is_match(text) => Cands::ALL,
            TextFilter::Regex(_) => Cands::default(),
        }
    }
}

/// The two characters outside ASCII that Unicode case folding equates with ASCII letters.
const LONG_S: char = '\u{17F}';
const KELVIN: char = '\u{212A}';

/// `text` as the literals are searched: ASCII letters lowercased, and the long s and the
/// Kelvin sign folded to `s` and `k` as the rules' `(?i)` regexes fold them.
fn fold_into(out: &mut Vec<u8>, text: &str) {
    out.clear();
    if text.is_ascii() {
        out.extend_from_slice(text.as_bytes());
        out.make_ascii_lowercase();
        return;
    }
    for ch in text.chars() {
        match ch {
            LONG_S => out.push(b's'),
            KELVIN => out.push(b'k'),
            _ => {
                let mut buf = [0u8; 4];
                out.extend(
                    ch.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| b.to_ascii_lowercase()),
                );
            }
        }
    }
}

/// Lowercased literals such that every match of a test contains one of the test's literals
/// (ASCII case-insensitively), with the tests each literal stands for; `None` when some test
/// has no such literals.
fn literals(tests: &[Test<'_>]) -> Option<(Vec<String>, Vec<Vec<usize>>)> {
    let mut out: Vec<String> = Vec::new();
    let mut owners: Vec<Vec<usize>> = Vec::new();
    for t in tests {
        let lits = if let Some(c) = t.contains {
            vec![c.as_bytes().to_ascii_lowercase()]
        } else {
            let hir = regex_syntax::Parser::new().parse(t.regex?).ok()?;
            match required(&hir) {
                Req::Exact(s) => vec![s],
                Req::Set(v) => v,
                Req::Unknown => return None,
            }
        };
        for l in lits {
            // Folded as the searched text is, or a literal holding `ſ` or the Kelvin sign
            // (a case-sensitive user rule) would never be found in it.
            let mut folded = Vec::new();
            fold_into(&mut folded, std::str::from_utf8(&l).ok()?);
            if folded.len() < MIN_LITERAL {
                return None;
            }
            let l = String::from_utf8(folded).ok()?;
            match out.iter().position(|o| *o == l) {
                Some(i) => owners.get_mut(i)?.push(t.id),
                None => {
                    out.push(l);
                    owners.push(vec![t.id]);
                }
            }
        }
    }
    (out.len() <= MAX_LITERALS).then_some((out, owners))
}

/// What every match of an expression must contain (bytes ASCII-lowercased).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    /// Every match is exactly this (so it can be joined with its neighbours).
    Exact(Vec<u8>),
    /// Every match contains one of these.
    Set(Vec<Vec<u8>>),
    /// Nothing known.
    Unknown,
}

impl Req {
    /// Length of the shortest literal (0 when nothing is known).
    fn strength(&self) -> usize {
        match self {
            Req::Exact(s) => s.len(),
            Req::Set(v) => v.iter().map(Vec::len).min().unwrap_or(0),
            Req::Unknown => 0,
        }
    }

    fn into_set(self) -> Req {
        match self {
            Req::Exact(s) => Req::Set(vec![s]),
            r => r,
        }
    }
}

fn required(h: &Hir) -> Req {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Req::Exact(Vec::new()),
        HirKind::Literal(l) => Req::Exact(l.0.to_ascii_lowercase()),
        HirKind::Class(c) => class_byte(c).map_or(Req::Unknown, |b| Req::Exact(vec![b])),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => match required(&r.sub) {
            // Repeated, so it cannot be joined with its neighbours.
            Req::Exact(s) if s.is_empty() => Req::Unknown,
            Req::Exact(s) if r.max == Some(1) => Req::Exact(s),
            other => other.into_set(),
        },
        HirKind::Repetition(_) => Req::Unknown,
        HirKind::Concat(items) => concat(items),
        HirKind::Alternation(items) => {
            let mut set = Vec::new();
            for item in items {
                match required(item) {
                    Req::Exact(s) => set.push(s),
                    Req::Set(v) => set.extend(v),
                    Req::Unknown => return Req::Unknown,
                }
            }
            if set.iter().any(Vec::is_empty) {
                return Req::Unknown;
            }
            Req::Set(set)
        }
    }
}

/// The strongest requirement of a concatenation: runs of exact parts are joined.
fn concat(items: &[Hir]) -> Req {
    let mut best = Req::Unknown;
    let mut run: Vec<u8> = Vec::new();
    let mut all_exact = true;
    for item in items {
        match required(item) {
            Req::Exact(s) => run.extend(s),
            other => {
                all_exact = false;
                let done = Req::Set(vec![std::mem::take(&mut run)]);
                for cand in [done, other] {
                    if cand.strength() > best.strength() {
                        best = cand;
                    }
                }
            }
        }
    }
    if all_exact {
        return Req::Exact(run);
    }
    let last = Req::Set(vec![run]);
    if last.strength() > best.strength() {
        best = last;
    }
    best
}

/// The one ASCII letter (lowercased) or byte a class stands for, if it is one ASCII
/// character up to case. Unicode case folding puts the long s (`ſ`) in `(?i)s` and the
/// Kelvin sign in `(?i)k`; the search text has them folded to `s` and `k` too (see
/// [`fold_into`]), so those classes still stand for their letter. Any other non-ASCII
/// member makes the class unknown, since the lowercased-ASCII search would miss it.
fn class_byte(c: &Class) -> Option<u8> {
    let mut one: Option<u8> = None;
    let mut note = |b: u32| -> Option<()> {
        let b = match char::from_u32(b) {
            Some(LONG_S) => u32::from(b's'),
            Some(KELVIN) => u32::from(b'k'),
            _ => b,
        };
        let b = u8::try_from(b)
            .ok()
            .filter(u8::is_ascii)?
            .to_ascii_lowercase();
        match one {
            None => one = Some(b),
            Some(o) if o == b => {}
            Some(_) => return None,
        }
        Some(())
    };
    let ranges: Vec<(u32, u32)> = match c {
        Class::Unicode(u) => u
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        Class::Bytes(b) => b
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
    };
    for (s, e) in ranges {
        if e - s > 1 {
            return None;
        }
        for b in s..=e {
            note(b)?;
        }
    }
    one
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(re: &str) -> Req {
        required(&regex_syntax::Parser::new().parse(re).unwrap())
    }

    fn set(v: &[&str]) -> Req {
        Req::Set(v.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    #[test]
    fn literals_of_common_shapes() {
        assert_eq!(req("abc"), Req::Exact(b"abc".to_vec()));
        assert_eq!(req("(?i)GoAway"), Req::Exact(b"goaway".to_vec()));
        assert_eq!(req("a|bcd"), set(&["a", "bcd"]));
        assert_eq!(req("x.*yz"), set(&["yz"]));
        assert_eq!(req("^panic: "), Req::Exact(b"panic: ".to_vec()));
        // `(?i)k` also matches the Kelvin sign and `(?i)s` the long s; the search text
        // folds both, so they stay letters.
        assert_eq!(req("(?i)kk"), Req::Exact(b"kk".to_vec()));
        assert_eq!(req("(?i)walk"), Req::Exact(b"walk".to_vec()));
        assert_eq!(req("(?i)RST_STREAM"), Req::Exact(b"rst_stream".to_vec()));
        // Other letters outside ASCII are not searched for.
        assert_eq!(req("(?i)éé"), Req::Unknown);
        assert_eq!(req("a?"), Req::Unknown);
        assert_eq!(req("stream \\d+ closed"), set(&["stream "]));
    }

    fn filter(tests: &[Test<'_>]) -> TextFilter {
        TextFilter::new(tests).unwrap()
    }

    fn re(id: usize, r: &str) -> Test<'_> {
        Test {
            id,
            regex: Some(r),
            contains: None,
            ignore_case: false,
        }
    }

    #[test]
    fn filter_never_says_no_to_a_match() {
        let tests = [
            re(0, "(?i)goaway|RST_STREAM|reset reason: remote reset"),
            re(1, "WORKER TIMEOUT|^panic: "),
            Test {
                id: 200,
                regex: None,
                contains: Some("Upstream"),
                ignore_case: true,
            },
        ];
        let f = filter(&tests);
        assert!(matches!(f, TextFilter::Literals { .. }));
        for (text, id) in [
            ("got GOAWAY frame", 0),
            ("x RST_STREAM y", 0),
            ("panic: boom", 1),
            ("the UPSTREAM died", 200),
            ("[CRITICAL] WORKER TIMEOUT (pid:1)", 1),
        ] {
            let c = f.candidates(text);
            assert!(c.may(id), "{text}");
        }
        let c = f.candidates("panic: boom");
        // Patterns past the 128 bits are a "maybe" as soon as anything matched.
        assert!(!c.may(0) && c.may(200));
        let c = f.candidates("all good here");
        assert!(!c.may(0) && !c.may(1) && !c.may(200));
    }

    proptest::proptest! {
        /// Whatever the number of literals (one gate searcher or several) and wherever they
        /// fall in the text, a test whose literal the text holds is a candidate.
        #[test]
        fn no_literal_in_the_text_is_missed(
            literals in proptest::collection::vec("[abAB :_]{3,7}", 2..150),
            text in "[abAB :_x]{0,200}",
        ) {
            let tests: Vec<Test<'_>> = literals
                .iter()
                .enumerate()
                .map(|(id, l)| Test { id, regex: None, contains: Some(l), ignore_case: true })
                .collect();
            let f = filter(&tests);
            let c = f.candidates(&text);
            let hay = text.to_ascii_lowercase();
            for t in &tests {
                let lit = t.contains.unwrap().to_ascii_lowercase();
                if hay.contains(&lit) {
                    proptest::prop_assert!(c.may(t.id), "{:?} in {:?}", lit, text);
                }
            }
        }
    }

    #[test]
    fn literals_starting_at_one_place_are_all_found() {
        let tests = [
            re(0, "connection reset"),
            re(1, "connection reset by peer"),
            re(2, "reset by"),
        ];
        let f = filter(&tests);
        // Long enough for the SIMD gate, with the literals late in the text.
        let text = format!("{} Connection RESET by peer", "x".repeat(80));
        let c = f.candidates(&text);
        assert!(c.may(0) && c.may(1) && c.may(2));
        for t in &tests {
            let r = regex::Regex::new(&format!("(?i){}", t.regex.unwrap())).unwrap();
            assert!(r.is_match(&text));
        }
    }

    #[test]
    fn unknown_literals_fall_back_to_one_regex() {
        let f = filter(&[re(0, "(?i)éé"), re(1, "a+b")]);
        assert!(matches!(f, TextFilter::Regex(_)));
        assert!(f.candidates("xÉé").may(0));
        assert!(f.candidates("aab").may(1));
        assert!(!f.candidates("zzz").may(1));
    }

    #[test]
    fn long_s_and_kelvin_sign_match_as_their_letters() {
        let tests = [
            re(0, "(?i)RST_STREAM|listening on"),
            re(1, "(?i)Kill"),
            re(2, "plain"),
        ];
        let f = filter(&tests);
        assert!(matches!(f, TextFilter::Literals { .. }));
        for (text, id) in [
            ("got rst_\u{17F}tream", 0),
            ("Li\u{17F}tening ON 0.0.0.0:80", 0),
            ("\u{212A}ILL -9", 1),
            ("é plain", 2),
        ] {
            let r = regex::Regex::new(tests[id].regex.unwrap()).unwrap();
            assert!(r.is_match(text), "{text}");
            assert!(f.candidates(text).may(id), "{text}");
        }
        assert!(!f.candidates("upstream connection").may(0));
    }

    #[test]
    fn case_sensitive_literals_with_long_s_are_folded_too() {
        let tests = [re(0, "me\u{17F}\u{17F}age"), re(1, "plain")];
        let f = filter(&tests);
        assert!(matches!(f, TextFilter::Literals { .. }));
        let text = "a me\u{17F}\u{17F}age here";
        assert!(
            regex::Regex::new(tests[0].regex.unwrap())
                .unwrap()
                .is_match(text)
        );
        assert!(f.candidates(text).may(0));
    }
}
