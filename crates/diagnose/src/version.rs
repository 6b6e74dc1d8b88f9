//! Istio version ranges: parsing the `istio = "<=1.7"` conditions of rules, and the range
//! the inputs imply (from the Envoy log layout and the access-log format).
//!
//! Detection is deliberately coarse (a range, never a point guess): the layouts changed at
//! known releases (formats.md §1.2, §3.1). This module must not read logs itself.

use serde::Serialize;
use std::fmt;

/// A minor version `major.minor`, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Minor(pub u16, pub u16);

impl Minor {
    /// Parse `1.7` or `1.7.3` (patch ignored).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let mut it = text.trim().split('.');
        let major = it.next()?.trim().parse().ok()?;
        let minor = it.next()?.trim().parse().ok()?;
        Some(Minor(major, minor))
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// An inclusive range of minor versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VersionRange {
    /// Lowest version included.
    pub lo: Minor,
    /// Highest version included.
    pub hi: Minor,
}

const FLOOR: Minor = Minor(1, 0);
const CEIL: Minor = Minor(1, 999);

impl VersionRange {
    /// Every version.
    pub const ANY: VersionRange = VersionRange {
        lo: FLOOR,
        hi: CEIL,
    };

    /// Parse `<=1.7`, `<1.8`, `>=1.8`, `>1.7`, `1.3-1.7`, `1.6` (exactly that minor).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let r = if let Some(v) = t.strip_prefix("<=") {
            VersionRange {
                lo: FLOOR,
                hi: Minor::parse(v)?,
            }
        } else if let Some(v) = t.strip_prefix(">=") {
            VersionRange {
                lo: Minor::parse(v)?,
                hi: CEIL,
            }
        } else if let Some(v) = t.strip_prefix('<') {
            let m = Minor::parse(v)?;
            VersionRange {
                lo: FLOOR,
                hi: Minor(m.0, m.1.checked_sub(1)?),
            }
        } else if let Some(v) = t.strip_prefix('>') {
            let m = Minor::parse(v)?;
            VersionRange {
                lo: Minor(m.0, m.1 + 1),
                hi: CEIL,
            }
        } else if let Some((a, b)) = t.split_once('-') {
            VersionRange {
                lo: Minor::parse(a)?,
                hi: Minor::parse(b)?,
            }
        } else {
            let m = Minor::parse(t)?;
            VersionRange { lo: m, hi: m }
        };
        (r.lo <= r.hi).then_some(r)
    }

    /// True when the two ranges share a version.
    #[must_use]
    pub fn overlaps(self, other: VersionRange) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }

    /// Intersection, or `None` when the evidence disagrees.
    #[must_use]
    pub fn intersect(self, other: VersionRange) -> Option<VersionRange> {
        let r = VersionRange {
            lo: self.lo.max(other.lo),
            hi: self.hi.min(other.hi),
        };
        (r.lo <= r.hi).then_some(r)
    }

    /// True when nothing narrowed it.
    #[must_use]
    pub fn is_any(self) -> bool {
        self == Self::ANY
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.lo == FLOOR, self.hi == CEIL) {
            (true, true) => f.write_str("unknown"),
            (true, false) => write!(f, "<={}", self.hi),
            (false, true) => write!(f, ">={}", self.lo),
            _ if self.lo == self.hi => write!(f, "{}", self.lo),
            _ => write!(f, "{}-{}", self.lo, self.hi),
        }
    }
}

/// Accumulates version hints seen in the inputs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VersionHints {
    /// Hints as (what was seen, the range it implies).
    pub hints: Vec<(String, VersionRange)>,
}

impl VersionHints {
    /// Record a hint once.
    pub fn add(&mut self, what: &str, range: VersionRange) {
        if !self.hints.iter().any(|(w, _)| w == what) {
            self.hints.push((what.to_string(), range));
        }
    }

    /// Merge another set of hints.
    pub fn merge(&mut self, other: VersionHints) {
        for (w, r) in other.hints {
            self.add(&w, r);
        }
    }

    /// The intersection of all hints; when hints disagree (mixed versions in one bundle,
    /// e.g. during an upgrade) the union of their ranges, which is the honest answer.
    #[must_use]
    pub fn range(&self) -> VersionRange {
        let mut acc = VersionRange::ANY;
        for (_, r) in &self.hints {
            match acc.intersect(*r) {
                Some(n) => acc = n,
                None => {
                    let lo = self.hints.iter().map(|(_, r)| r.lo).min().unwrap_or(FLOOR);
                    let hi = self.hints.iter().map(|(_, r)| r.hi).max().unwrap_or(CEIL);
                    return VersionRange { lo, hi };
                }
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_overlap() {
        let le17 = VersionRange::parse("<=1.7").expect("valid");
        let ge18 = VersionRange::parse(">=1.8").expect("valid");
        let lt18 = VersionRange::parse("<1.8").expect("valid");
        assert_eq!(le17, lt18);
        assert!(!le17.overlaps(ge18));
        let six = VersionRange::parse("1.6").expect("valid");
        assert!(six.overlaps(le17));
        assert_eq!(
            VersionRange::parse("1.3-1.7").expect("valid").to_string(),
            "1.3-1.7"
        );
        assert!(VersionRange::parse("1.9-1.3").is_none());
        assert!(VersionRange::parse("x").is_none());
    }

    #[test]
    fn hints_intersect_or_widen() {
        let mut h = VersionHints::default();
        h.add("a", VersionRange::parse("1.6-1.16").expect("valid"));
        h.add("b", VersionRange::parse("<=1.7").expect("valid"));
        assert_eq!(h.range().to_string(), "1.6-1.7");
        h.add("c", VersionRange::parse(">=1.17").expect("valid"));
        assert_eq!(h.range().to_string(), "unknown");
    }
}
