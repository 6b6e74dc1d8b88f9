//! Time buckets: which `1d` / `1h` / `5m` bucket an instant falls in, in UTC or in a named
//! time zone, with calendar days that follow daylight saving (a local day can be 23 or 25
//! hours long).
//!
//! Bucketing runs once per matching event, so the zone lookup is cached: the bucket of the
//! previous event is remembered and reused while instants stay inside it (logs are mostly
//! in time order). This module must not know about events or signatures.

use jiff::tz::TimeZone;
use meshdoctor_model::Timestamp;
use std::fmt;

const NS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// 1970-01-05, the first Monday after the epoch.
const MONDAY_OFFSET_DAYS: i64 = 4;

/// Unit of a bucket width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Seconds.
    Second,
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Calendar days (local midnight to local midnight).
    Day,
}

/// A bucket width such as `1d`, `1h`, `5m`, `30s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketSpec {
    /// How many units.
    pub n: u32,
    /// Which unit.
    pub unit: Unit,
}

impl BucketSpec {
    /// Parse `N` followed by `s`, `m`, `h` or `d` (`N` defaults to 1: `h` = `1h`).
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(text: &str) -> Result<BucketSpec, String> {
        let t = text.trim();
        let err = || format!("bucket `{t}`: expected a width such as 1d, 1h, 15m or 30s");
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (num, unit) = t.split_at(split);
        let n = if num.is_empty() {
            1
        } else {
            num.parse::<u32>().map_err(|_| err())?
        };
        let unit = match unit {
            "s" | "sec" => Unit::Second,
            "m" | "min" => Unit::Minute,
            "h" | "hour" => Unit::Hour,
            "d" | "day" => Unit::Day,
            _ => return Err(err()),
        };
        if n == 0 || n > 366 * 24 * 3600 {
            return Err(err());
        }
        Ok(BucketSpec { n, unit })
    }

    /// Nominal width in seconds (a local day with a DST change is an hour shorter or longer).
    #[must_use]
    pub fn nominal_secs(self) -> i64 {
        i64::from(self.n)
            * match self.unit {
                Unit::Second => 1,
                Unit::Minute => 60,
                Unit::Hour => 3600,
                Unit::Day => SECS_PER_DAY,
            }
    }
}

impl fmt::Display for BucketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self.unit {
            Unit::Second => "s",
            Unit::Minute => "m",
            Unit::Hour => "h",
            Unit::Day => "d",
        };
        write!(f, "{}{u}", self.n)
    }
}

/// Assigns instants to bucket starts. Cheap to clone (one per parallel sink).
#[derive(Clone, Debug)]
pub struct Bucketer {
    spec: BucketSpec,
    /// `None` means UTC, the fast path: plain integer division.
    tz: Option<TimeZone>,
    tz_name: String,
    /// The last bucket computed, `[start, end)` in ns; reused while instants stay inside.
    cache: Option<(i64, i64)>,
    /// Two buckets only, before and after this instant (for `verify`).
    split: Option<i64>,
}

impl Bucketer {
    /// Buckets in UTC.
    #[must_use]
    pub fn utc(spec: BucketSpec) -> Bucketer {
        Bucketer {
            spec,
            tz: None,
            tz_name: "UTC".into(),
            cache: None,
            split: None,
        }
    }

    /// Two buckets: everything before `at` (start [`Timestamp`]`(i64::MIN)`) and everything
    /// from `at` on (start `at`). Used to compare periods exactly.
    #[must_use]
    pub fn split_at(at: Timestamp) -> Bucketer {
        let mut b = Bucketer::utc(BucketSpec {
            n: 1,
            unit: Unit::Day,
        });
        b.split = Some(at.0);
        b
    }

    /// Buckets in a named IANA zone (`Europe/Berlin`) or a fixed offset (`+02:00`).
    /// `UTC`/`Z` give the fast UTC bucketer.
    ///
    /// # Errors
    /// Unknown zone names.
    pub fn in_zone(spec: BucketSpec, zone: &str) -> Result<Bucketer, String> {
        let z = zone.trim();
        if z.eq_ignore_ascii_case("utc") || z == "Z" || z == "+00:00" {
            return Ok(Bucketer::utc(spec));
        }
        let tz = if let Some(off) = parse_offset(z) {
            TimeZone::fixed(off)
        } else {
            TimeZone::get(z).map_err(|e| format!("time zone `{z}`: {e}"))?
        };
        Ok(Bucketer {
            spec,
            tz: Some(tz),
            tz_name: z.to_string(),
            cache: None,
            split: None,
        })
    }

    /// The width.
    #[must_use]
    pub fn spec(&self) -> BucketSpec {
        self.spec
    }

    /// The zone's name as given (`UTC` by default).
    #[must_use]
    pub fn zone_name(&self) -> &str {
        &self.tz_name
    }

    /// Start of the bucket containing `t`.
    pub fn start_of(&mut self, t: Timestamp) -> Timestamp {
        if let Some((s, e)) = self.cache
            && t.0 >= s
            && t.0 < e
        {
            return Timestamp(s);
        }
        let (s, e) = self.bounds(t);
        self.cache = Some((s.0, e.0));
        s
    }

    /// Start of the bucket after the one starting at `start`.
    #[must_use]
    pub fn next_start(&self, start: Timestamp) -> Timestamp {
        self.bounds(start).1
    }

    /// `[start, end)` of the bucket containing `t`.
    #[must_use]
    pub fn bounds(&self, t: Timestamp) -> (Timestamp, Timestamp) {
        if let Some(at) = self.split {
            return if t.0 < at {
                (Timestamp(i64::MIN), Timestamp(at))
            } else {
                (Timestamp(at), Timestamp(i64::MAX))
            };
        }
        let width_ns = self.spec.nominal_secs().saturating_mul(NS_PER_SEC);
        let Some(tz) = &self.tz else {
            // Multi-day buckets count from a Monday, so `7d` buckets are ISO weeks.
            let origin = if self.spec.unit == Unit::Day {
                MONDAY_OFFSET_DAYS * SECS_PER_DAY * NS_PER_SEC
            } else {
                0
            };
            let s =
                t.0.saturating_sub(origin)
                    .div_euclid(width_ns)
                    .saturating_mul(width_ns)
                    .saturating_add(origin);
            return (Timestamp(s), Timestamp(s.saturating_add(width_ns)));
        };
        if self.spec.unit == Unit::Day {
            return day_bounds(tz, t, self.spec.n);
        }
        // Sub-day widths: floor on the local clock, using this instant's own offset, so
        // the repeated hour of a DST fall-back gives two distinct buckets.
        let off = i64::from(tz.to_offset(t.to_jiff()).seconds()) * NS_PER_SEC;
        let local = t.0.saturating_add(off);
        let start = local
            .div_euclid(width_ns)
            .saturating_mul(width_ns)
            .saturating_sub(off);
        let end = start.saturating_add(width_ns);
        // An offset change inside the bucket would move the later instants; end the bucket
        // there instead (only ever at a DST transition).
        let end_off = i64::from(
            tz.to_offset(Timestamp(end.saturating_sub(1)).to_jiff())
                .seconds(),
        ) * NS_PER_SEC;
        if end_off != off {
            let mut lo = t.0;
            let mut hi = end - 1;
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let mo = i64::from(tz.to_offset(Timestamp(mid).to_jiff()).seconds()) * NS_PER_SEC;
                if mo == off { lo = mid } else { hi = mid }
            }
            return (Timestamp(start), Timestamp(hi));
        }
        (Timestamp(start), Timestamp(end))
    }

    /// RFC 3339 form of a bucket start: `Z` in UTC, the local offset otherwise.
    #[must_use]
    pub fn rfc3339(&self, start: Timestamp) -> String {
        match &self.tz {
            None => start.to_jiff().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Some(tz) => start
                .to_jiff()
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
        }
    }

    /// Short label for tables: the date for day buckets, date and time otherwise.
    #[must_use]
    pub fn label(&self, start: Timestamp) -> String {
        let fmt = match self.spec.unit {
            Unit::Day => "%Y-%m-%d",
            Unit::Hour | Unit::Minute => "%Y-%m-%d %H:%M",
            Unit::Second => "%Y-%m-%d %H:%M:%S",
        };
        match &self.tz {
            None => start.to_jiff().strftime(fmt).to_string(),
            Some(tz) => start
                .to_jiff()
                .to_zoned(tz.clone())
                .strftime(fmt)
                .to_string(),
        }
    }
}

/// Local-midnight-to-local-midnight bounds, grouping `n` calendar days counted from
/// 1970-01-01.
fn day_bounds(tz: &TimeZone, t: Timestamp, n: u32) -> (Timestamp, Timestamp) {
    let zoned = t.to_jiff().to_zoned(tz.clone());
    let date = zoned.date();
    // Counted from Monday 1970-01-05, so `7d` buckets are ISO weeks.
    let epoch = jiff::civil::date(1970, 1, 5);
    let days = i64::from((date - epoch).get_days());
    let first = days.div_euclid(i64::from(n)) * i64::from(n);
    let start_date = epoch
        .checked_add(jiff::Span::new().days(first))
        .unwrap_or(date);
    let end_date = start_date
        .checked_add(jiff::Span::new().days(i64::from(n)))
        .unwrap_or(date);
    let midnight = |d: jiff::civil::Date| {
        d.to_zoned(tz.clone())
            .ok()
            .and_then(|z| z.start_of_day().ok())
            .map(|z| Timestamp::from_jiff(z.timestamp()))
    };
    match (midnight(start_date), midnight(end_date)) {
        (Some(s), Some(e)) if s <= t && t < e => (s, e),
        // Outside jiff's range: fall back to fixed-width days at the instant's offset.
        _ => {
            let off = i64::from(tz.to_offset(t.to_jiff()).seconds()) * NS_PER_SEC;
            let w = SECS_PER_DAY * NS_PER_SEC * i64::from(n);
            let s =
                t.0.saturating_add(off)
                    .div_euclid(w)
                    .saturating_mul(w)
                    .saturating_sub(off);
            (Timestamp(s), Timestamp(s.saturating_add(w)))
        }
    }
}

/// Read an instant typed by a user: RFC 3339 with a zone (`2020-10-27T14:00:00Z`,
/// `...+02:00`), or a civil time without one (`2020-10-27 14:00`, `2020-10-27T14:00:05`,
/// `2020-10-27`) taken in `zone` (`UTC`, an IANA name or a fixed offset).
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_instant(text: &str, zone: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(Timestamp::from_jiff(ts));
    }
    let civil = t
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            t.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| {
            format!(
                "time `{t}`: expected RFC 3339 (2020-10-27T14:00:00Z) or a local time such as \
                 `2020-10-27 14:00` (taken in --tz)"
            )
        })?;
    let z = zone.trim();
    let tz = if z.eq_ignore_ascii_case("utc") || z == "Z" {
        TimeZone::UTC
    } else if let Some(off) = parse_offset(z) {
        TimeZone::fixed(off)
    } else {
        TimeZone::get(z).map_err(|e| format!("time zone `{z}`: {e}"))?
    };
    civil
        .to_zoned(tz)
        .map(|zdt| Timestamp::from_jiff(zdt.timestamp()))
        .map_err(|e| format!("time `{t}` in {z}: {e}"))
}

/// `+02:00`, `-0400`, `+05` as a fixed offset.
fn parse_offset(z: &str) -> Option<jiff::tz::Offset> {
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest: String = z[1..].chars().filter(|c| *c != ':').collect();
    if rest.is_empty() || rest.len() > 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = if rest.len() <= 2 {
        (rest.parse::<i32>().ok()?, 0)
    } else {
        let (h, m) = rest.split_at(rest.len() - 2);
        (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)
    };
    if h > 23 || m > 59 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(
            s.parse::<jiff::Timestamp>()
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        )
    }

    #[test]
    fn parse_specs() {
        assert_eq!(
            BucketSpec::parse("1d"),
            Ok(BucketSpec {
                n: 1,
                unit: Unit::Day
            })
        );
        assert_eq!(BucketSpec::parse("5m").map(|b| b.nominal_secs()), Ok(300));
        assert_eq!(
            BucketSpec::parse("h").map(|b| b.to_string()),
            Ok("1h".into())
        );
        assert!(BucketSpec::parse("0h").is_err());
        assert!(BucketSpec::parse("3x").is_err());
        assert!(BucketSpec::parse("").is_err());
    }

    #[test]
    fn utc_days() {
        let mut b = Bucketer::utc(BucketSpec::parse("1d").unwrap_or(BucketSpec {
            n: 1,
            unit: Unit::Day,
        }));
        let s = b.start_of(ts("2020-10-19T23:59:59.999Z"));
        assert_eq!(b.rfc3339(s), "2020-10-19T00:00:00Z");
        let s2 = b.start_of(ts("2020-10-20T00:00:00Z"));
        assert_eq!(b.rfc3339(s2), "2020-10-20T00:00:00Z");
        // Before 1970: floor, not truncation.
        let s3 = b.start_of(ts("1969-12-31T12:00:00Z"));
        assert_eq!(b.rfc3339(s3), "1969-12-31T00:00:00Z");
    }

    #[test]
    fn weeks_start_on_monday() {
        let spec = BucketSpec {
            n: 7,
            unit: Unit::Day,
        };
        let mut b = Bucketer::utc(spec);
        // 2020-10-22 is a Thursday; its ISO week starts on Monday 2020-10-19.
        let s = b.start_of(ts("2020-10-22T12:00:00Z"));
        assert_eq!(b.rfc3339(s), "2020-10-19T00:00:00Z");
        if let Ok(mut z) = Bucketer::in_zone(spec, "Europe/Berlin") {
            let s = z.start_of(ts("2020-10-22T12:00:00Z"));
            assert_eq!(z.rfc3339(s), "2020-10-19T00:00:00+02:00");
        }
    }

    #[test]
    fn zoned_days_follow_dst() {
        let spec = BucketSpec {
            n: 1,
            unit: Unit::Day,
        };
        let Ok(mut b) = Bucketer::in_zone(spec, "Europe/Berlin") else {
            // No tz database on this machine; the UTC path is tested above.
            return;
        };
        // 2020-10-25 is the autumn change in Berlin: the local day lasts 25 hours.
        let (s, e) = b.bounds(ts("2020-10-25T12:00:00Z"));
        assert_eq!(b.rfc3339(s), "2020-10-25T00:00:00+02:00");
        assert_eq!(b.rfc3339(e), "2020-10-26T00:00:00+01:00");
        assert_eq!(e.nanos_since(s), 25 * 3600 * NS_PER_SEC);
        // 22:30Z on the 25th is 23:30 local: same local day.
        assert_eq!(b.start_of(ts("2020-10-25T22:30:00Z")), s);
        // 23:30Z is 00:30 on the 26th local.
        assert_eq!(b.start_of(ts("2020-10-25T23:30:00Z")), e);
        // Spring change: 23 hours.
        let (s, e) = b.bounds(ts("2020-03-29T12:00:00Z"));
        assert_eq!(e.nanos_since(s), 23 * 3600 * NS_PER_SEC);
    }

    #[test]
    fn zoned_hours_at_fall_back_are_distinct() {
        let spec = BucketSpec {
            n: 1,
            unit: Unit::Hour,
        };
        let Ok(mut b) = Bucketer::in_zone(spec, "Europe/Berlin") else {
            return;
        };
        // 00:30Z = 02:30 CEST and 01:30Z = 02:30 CET: the same local hour twice.
        let first = b.start_of(ts("2020-10-25T00:30:00Z"));
        let second = b.start_of(ts("2020-10-25T01:30:00Z"));
        assert_ne!(first, second);
        assert_eq!(b.label(first), "2020-10-25 02:00");
        assert_eq!(b.label(second), "2020-10-25 02:00");
        assert_eq!(b.rfc3339(first), "2020-10-25T02:00:00+02:00");
        assert_eq!(b.rfc3339(second), "2020-10-25T02:00:00+01:00");
    }

    #[test]
    fn fixed_offsets_and_half_hours() {
        let spec = BucketSpec {
            n: 1,
            unit: Unit::Day,
        };
        let mut b = Bucketer::in_zone(spec, "-04:00").unwrap_or_else(|_| Bucketer::utc(spec));
        let s = b.start_of(ts("2020-10-20T03:00:00Z"));
        assert_eq!(b.rfc3339(s), "2020-10-19T00:00:00-04:00");
        let hour = BucketSpec {
            n: 1,
            unit: Unit::Hour,
        };
        let mut k = Bucketer::in_zone(hour, "+05:30").unwrap_or_else(|_| Bucketer::utc(hour));
        let s = k.start_of(ts("2020-10-20T03:00:00Z"));
        assert_eq!(k.rfc3339(s), "2020-10-20T08:00:00+05:30");
        assert!(Bucketer::in_zone(spec, "Mars/Olympus").is_err());
    }

    #[test]
    fn instants() {
        assert_eq!(
            parse_instant("2020-10-27T14:00:00Z", "UTC"),
            Ok(ts("2020-10-27T14:00:00Z"))
        );
        assert_eq!(
            parse_instant("2020-10-27T16:00:00+02:00", "UTC"),
            Ok(ts("2020-10-27T14:00:00Z"))
        );
        assert_eq!(
            parse_instant("2020-10-27 14:00", "UTC"),
            Ok(ts("2020-10-27T14:00:00Z"))
        );
        assert_eq!(
            parse_instant("2020-10-27", "-04:00"),
            Ok(ts("2020-10-27T04:00:00Z"))
        );
        assert!(parse_instant("yesterday", "UTC").is_err());
    }

    #[test]
    fn cache_agrees_with_bounds() {
        let spec = BucketSpec {
            n: 5,
            unit: Unit::Minute,
        };
        let mut b = Bucketer::utc(spec);
        for i in 0..2000i64 {
            let t = Timestamp(1_600_000_000 * NS_PER_SEC + i * 7_919 * 1_000_000);
            assert_eq!(b.start_of(t), b.bounds(t).0);
        }
    }
}
