//! Whatever a user types or a record names, parsing arguments and shortening hosts never
//! panics, and buckets always contain the instant they were asked about.

use meshdoctor_model::Timestamp;
use meshdoctor_timeline::count::short_host;
use meshdoctor_timeline::{BucketSpec, Bucketer, Dim, Signature, parse_instant};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arguments_never_panic(s in ".{0,40}") {
        let _ = Signature::parse(&s);
        let _ = BucketSpec::parse(&s);
        let _ = Dim::parse_list(&s);
        let _ = parse_instant(&s, "UTC");
        let _ = parse_instant("2020-10-27 14:00", &s);
        let _ = Bucketer::in_zone(BucketSpec { n: 1, unit: meshdoctor_timeline::Unit::Day }, &s);
        let _ = short_host(&s);
    }

    #[test]
    fn buckets_contain_their_instant(
        ns in i64::MIN..i64::MAX,
        width in 1u32..48,
        unit in 0usize..4,
        zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "+05:30", "Australia/Lord_Howe"]),
    ) {
        let unit = [
            meshdoctor_timeline::Unit::Second,
            meshdoctor_timeline::Unit::Minute,
            meshdoctor_timeline::Unit::Hour,
            meshdoctor_timeline::Unit::Day,
        ][unit];
        let spec = BucketSpec { n: width, unit };
        let mut b = Bucketer::in_zone(spec, zone).unwrap_or_else(|_| Bucketer::utc(spec));
        let t = Timestamp(ns);
        let (start, end) = b.bounds(t);
        prop_assert!(start <= t && t < end, "{start:?} {t:?} {end:?}");
        prop_assert_eq!(b.start_of(t), start);
        prop_assert!(b.next_start(start) > start);
        let _ = b.rfc3339(start);
        let _ = b.label(start);
    }
}
