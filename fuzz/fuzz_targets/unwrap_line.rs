//! Collector wrappers (kubectl, CRI, Docker, Splunk) on arbitrary lines: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshdoctor_logs::wrapper::unwrap_line(text);
    }
});
