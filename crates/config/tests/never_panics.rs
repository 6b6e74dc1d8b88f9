//! The readers never panic, whatever bytes they get: YAML (multi-document), JSON, stats.

use meshdoctor_config::ConfigSet;
use meshdoctor_input::ContentKind;
use proptest::prelude::*;

fn read_all_kinds(bytes: &[u8]) {
    for kind in [
        ContentKind::Yaml,
        ContentKind::KubernetesJson,
        ContentKind::EnvoyConfigDump,
        ContentKind::EnvoyStats,
    ] {
        let mut set = ConfigSet::new();
        set.add_bytes(0, "x", kind, bytes);
        let _ = set.effective();
        let _ = set.findings();
        let _ = meshdoctor_config::Report::new(&set).to_text();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_all_kinds(&bytes);
    }

    #[test]
    fn yaml_like_text(text in "((kind|apiVersion|spec|metadata|ports|mesh|- name|  port|  mode|---|\\{|\\[|\"|: |\n|  |[a-z0-9]{1,6}|8080|STRICT|100ms)){0,60}") {
        read_all_kinds(text.as_bytes());
    }

    #[test]
    fn json_like_text(text in "(\\{|\\}|\\[|\\]|,|:|\"configs\"|\"name\"|\"listener_filters_timeout\"|\"0.1s\"|\"\\\\u00|[0-9]{1,4}|true|null|\n| ){0,80}") {
        read_all_kinds(text.as_bytes());
    }

    #[test]
    fn stats_like_text(text in "((cluster|listener|envoy_x)[._a-z|0-9]{0,10}(\\{[a-z]{1,3}=\"[^\"]{0,4}\"\\}|: )?[ 0-9.e+-]{0,6}\n){0,40}") {
        read_all_kinds(text.as_bytes());
    }
}

#[test]
fn deep_json_is_refused_not_overflowed() {
    let deep = "[".repeat(100_000);
    read_all_kinds(deep.as_bytes());
}

#[test]
fn deep_yaml_is_refused_not_overflowed() {
    let deep_yaml = "a:\n".to_string() + &" - ".repeat(5_000);
    read_all_kinds(deep_yaml.as_bytes());
    let flow = "a: ".to_string() + &"[".repeat(5_000);
    read_all_kinds(flow.as_bytes());
}
