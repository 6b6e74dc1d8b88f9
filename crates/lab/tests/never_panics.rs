//! The lab's own parsers (HTTP reader, request-line check, DER SAN walk, BoringSSL verdict)
//! never panic on arbitrary bytes: the sidecars feed them whatever a socket delivers.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn http_reader_never_panics(prefix in proptest::collection::vec(any::<u8>(), 0..600),
                                rest in proptest::collection::vec(any::<u8>(), 0..600)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut r = meshdoctor_lab::http::Reader::with_prefix(prefix);
            let mut s: &[u8] = &rest;
            // At most a few messages fit in 1200 bytes; each call consumes input or ends.
            for _ in 0..8 {
                if r.read_message(&mut s).await.is_err() {
                    break;
                }
            }
        });
    }

    #[test]
    fn request_line_check_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = meshdoctor_lab::http::is_request_line(&line);
    }

    #[test]
    fn san_walk_never_panics(der in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut with_oid = vec![0x06, 0x03, 0x55, 0x1d, 0x11];
        with_oid.extend_from_slice(&der);
        let _ = meshdoctor_lab::tls::uri_sans(&der);
        let _ = meshdoctor_lab::tls::uri_sans(&with_oid);
    }

    #[test]
    fn boringssl_verdict_never_panics(b in proptest::collection::vec(any::<u8>(), 0..8)) {
        let _ = meshdoctor_lab::sidecar::boringssl_reject(&b);
    }
}
