//! Every parser, through the dispatcher, on arbitrary records: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshdoctor_logs::dispatch::parse_record(text, None);
        for family in meshdoctor_model_families() {
            let _ = meshdoctor_logs::dispatch::parse_record(text, Some(family));
        }
        let _ = meshdoctor_logs::record::is_continuation(data);
    }
});

fn meshdoctor_model_families() -> [meshdoctor_logs::Family; 4] {
    use meshdoctor_logs::Family;
    [
        Family::AppLog,
        Family::EnvoyDebug,
        Family::EnvoyAccess,
        Family::ProxyAgent,
    ]
}
