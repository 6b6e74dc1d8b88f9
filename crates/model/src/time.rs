//! Instants in UTC with nanosecond resolution.
//!
//! All timestamps are normalised to UTC at the parser edge; nothing downstream knows about
//! time zones. Formatting uses jiff so RFC 3339 output is exact.

use serde::{Serialize, Serializer};
use std::fmt;

/// Nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    /// Build from seconds since the epoch plus a sub-second nanosecond part.
    #[must_use]
    pub fn from_parts(seconds: i64, nanos: u32) -> Self {
        Timestamp(
            seconds
                .saturating_mul(NANOS_PER_SEC)
                .saturating_add(i64::from(nanos)),
        )
    }

    /// Build from milliseconds since the epoch.
    #[must_use]
    pub fn from_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// Whole seconds since the epoch (floor).
    #[must_use]
    pub fn seconds(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// Nanoseconds within the second.
    #[must_use]
    pub fn subsec_nanos(self) -> u32 {
        u32::try_from(self.0.rem_euclid(NANOS_PER_SEC)).unwrap_or(0)
    }

    /// Milliseconds since the epoch (floor).
    #[must_use]
    pub fn millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Signed distance `self - earlier` in nanoseconds.
    #[must_use]
    pub fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Convert to a jiff timestamp (for calendar arithmetic and formatting).
    #[must_use]
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_nanosecond(i128::from(self.0)).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// Convert from a jiff timestamp, saturating outside the i64 nanosecond range.
    #[must_use]
    pub fn from_jiff(ts: jiff::Timestamp) -> Self {
        let nanos = ts.as_nanosecond();
        Timestamp(i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX }))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with as many fractional digits as needed (at most 9).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_jiff())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_rfc3339_utc() {
        let ts = Timestamp::from_parts(1_603_412_774, 869_776_000);
        assert_eq!(ts.to_string(), "2020-10-23T00:26:14.869776Z");
        assert_eq!(ts.millis(), 1_603_412_774_869);
    }

    #[test]
    fn negative_instants_floor() {
        let ts = Timestamp(-1);
        assert_eq!(ts.seconds(), -1);
        assert_eq!(ts.subsec_nanos(), 999_999_999);
    }
}
