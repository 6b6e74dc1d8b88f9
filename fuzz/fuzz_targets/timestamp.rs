//! Timestamp readers on arbitrary text: must never panic or overflow.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshdoctor_logs::timestamp::parse_iso(text);
        let _ = meshdoctor_logs::timestamp::parse_any(text);
    }
});
