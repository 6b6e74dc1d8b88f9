//! Fast timestamp readers for the shapes logs use.
//!
//! Parsing a timestamp is the one thing done on every line, so this is hand-written digit
//! arithmetic rather than a general date parser; a property test checks it against jiff.

use meshdoctor_model::Timestamp;

/// A timestamp read from the start of a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedTime {
    /// The instant in UTC (local times without a zone are taken as UTC).
    pub time: Timestamp,
    /// Bytes consumed.
    pub len: usize,
    /// Whether the text carried a zone (`Z` or an offset).
    pub has_zone: bool,
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    let mut v: i64 = 0;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
#[must_use]
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Read `YYYY-MM-DD[T ]HH:MM:SS[.,fraction][Z|±HH:MM|±HHMM|±HH]` at the start of `s`.
/// Also accepts `YYYY/MM/DD`. Returns `None` when the start is not such a timestamp or a
/// field is out of range.
#[must_use]
pub fn parse_iso(s: &str) -> Option<ParsedTime> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    let sep = *b.get(4)?;
    if sep != b'-' && sep != b'/' {
        return None;
    }
    let month = digits(b, 5, 2)?;
    if *b.get(7)? != sep {
        return None;
    }
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10)?, b'T' | b' ' | b't') {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    if *b.get(13)? != b':' {
        return None;
    }
    let minute = digits(b, 14, 2)?;
    if *b.get(16)? != b':' {
        return None;
    }
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut nanos: i64 = 0;
    if matches!(b.get(pos), Some(b'.' | b',')) && b.get(pos + 1).is_some_and(u8::is_ascii_digit) {
        pos += 1;
        let mut scale = 100_000_000;
        while let Some(&c) = b.get(pos) {
            if !c.is_ascii_digit() {
                break;
            }
            nanos += i64::from(c - b'0') * scale;
            scale /= 10;
            pos += 1;
        }
    }
    let mut offset_secs: i64 = 0;
    let mut has_zone = false;
    match b.get(pos) {
        Some(b'Z' | b'z') => {
            has_zone = true;
            pos += 1;
        }
        Some(&sign @ (b'+' | b'-')) => {
            if let Some(oh) = digits(b, pos + 1, 2) {
                let (om, used) = if b.get(pos + 3) == Some(&b':') {
                    (digits(b, pos + 4, 2).unwrap_or(0), 6)
                } else if let Some(om) = digits(b, pos + 3, 2) {
                    (om, 5)
                } else {
                    (0, 3)
                };
                if oh <= 23 && om <= 59 {
                    offset_secs = (oh * 3600 + om * 60) * if sign == b'+' { 1 } else { -1 };
                    has_zone = true;
                    pos += used;
                }
            }
        }
        _ => {}
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    Some(ParsedTime {
        time: Timestamp(secs.checked_mul(1_000_000_000)?.checked_add(nanos)?),
        len: pos,
        has_zone,
    })
}

/// Read a number of seconds, milliseconds, microseconds or nanoseconds since the epoch,
/// telling the unit from the magnitude (the way log shippers do).
#[must_use]
pub fn from_epoch_number(value: f64) -> Option<Timestamp> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    // Years 2001..2286 in each unit. Whole and fractional parts are scaled separately so
    // that f64 rounding never shows in the nanoseconds.
    let scale: i64 = if value < 1e10 {
        1_000_000_000
    } else if value < 1e13 {
        1_000_000
    } else if value < 1e16 {
        1_000
    } else {
        1
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    {
        let whole = value.trunc();
        if whole > 9.2e18 {
            return None;
        }
        // An f64 holds epoch seconds to about 0.1 µs: round the fraction to whole
        // microseconds so `.123456` does not come out as `.123456001`.
        let frac_nanos = if scale == 1_000_000_000 {
            ((value - whole) * 1e6).round() as i64 * 1_000
        } else {
            ((value - whole) * scale as f64).round() as i64
        };
        (whole as i64)
            .checked_mul(scale)?
            .checked_add(frac_nanos)
            .map(Timestamp)
    }
}

/// Read any timestamp a JSON log field may hold: an ISO string, or an epoch number (possibly
/// as a string).
#[must_use]
pub fn parse_any(s: &str) -> Option<ParsedTime> {
    if let Some(t) = parse_iso(s) {
        return Some(t);
    }
    let trimmed = s.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let v: f64 = trimmed.parse().ok()?;
        return from_epoch_number(v).map(|time| ParsedTime {
            time,
            len: s.len(),
            has_zone: true,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iso(s: &str) -> String {
        parse_iso(s).unwrap().time.to_string()
    }

    #[test]
    fn common_shapes() {
        assert_eq!(
            iso("2020-10-23T00:26:14.869776Z\tdebug"),
            "2020-10-23T00:26:14.869776Z"
        );
        assert_eq!(
            iso("2021-04-01T05:09:24.193719454Z x"),
            "2021-04-01T05:09:24.193719454Z"
        );
        assert_eq!(
            iso("2024-05-01T10:00:00.123+02:00"),
            "2024-05-01T08:00:00.123Z"
        );
        assert_eq!(
            iso("2024-05-01T10:00:00.123-0400"),
            "2024-05-01T14:00:00.123Z"
        );
        assert_eq!(
            iso("2019-06-28 13:02:36.789][36]"),
            "2019-06-28T13:02:36.789Z"
        );
        assert_eq!(
            iso("2024-05-01 10:00:00,123 ERROR"),
            "2024-05-01T10:00:00.123Z"
        );
        assert!(!parse_iso("2024-05-01 10:00:00 x").unwrap().has_zone);
        assert!(parse_iso("2024-13-01T10:00:00Z").is_none());
        assert!(parse_iso("2023-02-29T10:00:00Z").is_none());
        assert!(parse_iso("hello").is_none());
    }

    #[test]
    fn epoch_numbers() {
        assert_eq!(
            from_epoch_number(1_603_412_774.5).unwrap().to_string(),
            "2020-10-23T00:26:14.5Z"
        );
        assert_eq!(
            from_epoch_number(1_603_412_774_869.0).unwrap().to_string(),
            "2020-10-23T00:26:14.869Z"
        );
    }

    proptest! {
        #[test]
        fn agrees_with_jiff(secs in 0i64..8_000_000_000, nanos in 0u32..1_000_000_000, off_min in -840i32..840) {
            let ts = jiff::Timestamp::new(secs, i32::try_from(nanos).unwrap()).unwrap();
            let offset = jiff::tz::Offset::from_seconds(off_min * 60).unwrap();
            let text = ts.display_with_offset(offset).to_string();
            let ours = parse_iso(&text).unwrap();
            prop_assert_eq!(i128::from(ours.time.0), ts.as_nanosecond());
            prop_assert_eq!(ours.len, text.len());
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_iso(&s);
            let _ = parse_any(&s);
        }
    }
}
