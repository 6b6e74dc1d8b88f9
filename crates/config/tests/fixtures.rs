//! End-to-end reading of the documented config shapes under `testdata/config/`: the seed's
//! 1.6.8 install before and after the fix, every dump form, stats in both forms.

use meshdoctor_config::{ConfigSet, MtlsMode, Report, load};
use std::path::PathBuf;
use std::time::Duration;

fn set_of(paths: &[&str]) -> ConfigSet {
    let paths: Vec<PathBuf> = paths
        .iter()
        .map(|p| PathBuf::from("../../testdata/config").join(p))
        .collect();
    let (inputs, errors) =
        meshdoctor_input::discover(&paths, &meshdoctor_input::DiscoverOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    load(&inputs)
}

const SEED: &[&str] = &[
    "seed-1.6.8/istio-configmap.yaml",
    "seed-1.6.8/shop.yaml",
    "seed-1.6.8/istiod.json",
];

#[test]
fn seed_before_fix_json() {
    let set = set_of(SEED);
    insta::assert_json_snapshot!(Report::new(&set));
}

#[test]
fn seed_before_fix_text() {
    let set = set_of(SEED);
    insta::assert_snapshot!(Report::new(&set).to_text());
}

#[test]
fn seed_confirms_100ms_and_the_fix_shows_5s() {
    let before = set_of(SEED);
    let (timeout, at) = before.detection_timeout_for("orders.shop").unwrap();
    assert_eq!(timeout, Duration::from_millis(100));
    assert_eq!(
        before.file_name(at.file),
        "../../testdata/config/seed-1.6.8/istio-configmap.yaml"
    );
    assert_eq!(at.line, 29);
    assert_eq!(before.istio_version().unwrap().value.to_string(), "1.6.8");
    assert_eq!(before.mtls_mode_for("orders", 8080).0, MtlsMode::Strict);
    assert!(
        before
            .findings()
            .iter()
            .any(|f| f.id == "protocol-sniffing-timeout" && f.at == at)
    );

    let after = set_of(&[
        "seed-fixed/istio-configmap.yaml",
        "seed-1.6.8/shop.yaml",
        "seed-1.6.8/istiod.json",
    ]);
    let (timeout, _) = after.detection_timeout_for("orders").unwrap();
    assert_eq!(timeout, Duration::from_secs(5));
    assert!(
        !after
            .findings()
            .iter()
            .any(|f| f.id == "protocol-sniffing-timeout")
    );
}

#[test]
fn broken_document_is_reported_and_the_rest_is_used() {
    let set = set_of(&["seed-1.6.8/shop.yaml"]);
    assert_eq!(set.problems().len(), 1, "{:?}", set.problems());
    let p = &set.problems()[0];
    assert!((96..=98).contains(&p.at.line), "{p:?}");
    assert_eq!(set.services().len(), 3);
    assert_eq!(set.destination_rules().len(), 1);
    assert_eq!(set.unknown_kinds().get("HorizontalPodAutoscaler"), Some(&1));
}

#[test]
fn every_form_reads() {
    let set = set_of(&["forms"]);
    insta::assert_json_snapshot!(Report::new(&set));
}

#[test]
fn stats_in_both_forms_sum_per_stat() {
    let set = set_of(&["forms/stats.txt", "forms/stats.prom"]);
    let (total, at) = set.stat_total("downstream_pre_cx_timeout").unwrap();
    assert_eq!(total, 82.0);
    assert_eq!(at.line, 4);
    assert!(set.stat_total("upstream_rq_pending_overflow").is_none());
    assert_eq!(set.problems().len(), 0);
}

#[test]
fn mesh_config_sources_keep_their_lines() {
    let ms = |set: &ConfigSet| {
        let t = set.mesh().protocol_detection_timeout.as_ref().unwrap();
        (t.value.as_millis(), t.at.line)
    };
    // Inline JSON string: every key is on the `mesh` line.
    let json = set_of(&["forms/configmap.json"]);
    assert_eq!(ms(&json), (100, 4));
    assert_eq!(
        json.mesh().enable_auto_mtls.as_ref().map(|a| a.value),
        Some(false)
    );
    // Bare mesh YAML.
    let bare = set_of(&["forms/mesh.yaml"]);
    assert_eq!(ms(&bare), (0, 9));
    assert_eq!(
        bare.mesh()
            .termination_drain_duration
            .as_ref()
            .map(|d| d.value.as_secs()),
        Some(30)
    );
    // IstioOperator: meshConfig, pilot env, tag.
    let op = set_of(&["forms/istio-operator.yaml"]);
    assert_eq!(ms(&op), (200, 9));
    let env = op.mesh().inbound_detection_env.as_ref().unwrap();
    assert_eq!((env.value.as_millis(), env.at.line), (2000, 16));
    assert_eq!(op.istio_version().unwrap().value.to_string(), "1.7.3");
    // Helm values of the 1.6 charts.
    let helm = set_of(&["forms/helm-values.yaml"]);
    assert_eq!(ms(&helm), (100, 5));
    assert_eq!(helm.istio_version().unwrap().value.to_string(), "1.6.8");
    let findings = helm.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        (findings[0].id, findings[0].at.line),
        ("protocol-sniffing-timeout", 5)
    );
}

#[test]
fn istioctl_listing_in_camel_case_reads_like_the_admin_dump() {
    let set = set_of(&["forms/proxy-config-listener.json"]);
    let dump = &set.envoy_dumps()[0];
    let l = &dump.listeners[0];
    assert_eq!(l.name, "0.0.0.0_9080");
    assert_eq!(l.port, Some(9080));
    let t = l.listener_filters_timeout.as_ref().unwrap();
    assert_eq!((t.value, t.at.line), (Duration::from_secs(5), 53));
    assert!(l.continue_on_timeout && l.inspects("http_inspector", Some(9080)));
    assert_eq!(l.filter_chains.len(), 2);
    assert_eq!(
        l.filter_chains[1].tcp_cluster.as_deref(),
        Some("PassthroughCluster")
    );

    let admin = set_of(&["forms/config_dump.json"]);
    let dump = &admin.envoy_dumps()[0];
    assert_eq!(dump.pod.as_deref(), Some("frontend-6d9f7c8b5-x2k4p"));
    let inbound = dump
        .listeners
        .iter()
        .find(|l| l.name == "virtualInbound")
        .unwrap();
    assert!(!inbound.inspects("http_inspector", Some(8080)));
    assert!(inbound.inspects("http_inspector", Some(9080)));
    let orders = &dump.clusters[1];
    assert!(orders.tls);
    assert_eq!(
        orders.sni.as_deref(),
        Some("outbound_.8080_._.orders.shop.svc.cluster.local")
    );
    let payments = &dump.clusters[2];
    assert_eq!(payments.thresholds.max_pending_requests, Some(1));
    assert_eq!(payments.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(payments.max_requests_per_connection, Some(1));
}

#[test]
fn lookups_by_deployment_name_and_by_dump_owner() {
    let set = set_of(SEED);
    // `payments` Deployment: Service port 9090 targets 9090 (PERMISSIVE at port level).
    assert_eq!(
        set.mtls_mode_for("payments.shop", 9090).0,
        MtlsMode::Permissive
    );
    assert_eq!(set.mtls_mode_for("payments", 9080).0, MtlsMode::Strict);
    assert_eq!(set.mtls_mode_for("unknown", 1).0, MtlsMode::Unset);

    let dump = set_of(&["forms/config_dump.json"]);
    let (timeout, at) = dump.detection_timeout_for("frontend").unwrap();
    assert_eq!((timeout, at.line), (Duration::from_millis(100), 107));
    assert!(
        set_of(&["forms/stats.txt"])
            .detection_timeout_for("frontend")
            .is_none()
    );
}

#[test]
fn one_risk_per_object_on_istio_1_12() {
    let set = set_of(&["risks-1.12.yaml"]);
    assert!(set.problems().is_empty(), "{:?}", set.problems());
    insta::assert_json_snapshot!(Report::new(&set));
}

#[test]
fn yaml_1_1_spellings_and_string_ports_read_as_kubernetes_does() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data}\nspec:\n  selector: {app: db}\n  ports:\n  - {name: mysql-main, port: \"3306\", targetPort: \"3306\"}\n  - name: 0755\n    port: 8080\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: backup, namespace: data}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          annotations:\n            sidecar.istio.io/inject: no\n        spec:\n          containers: [{name: backup, image: 'mysql:8'}]\n---\nkind: PeerAuthentication\nmetadata: {name: default, namespace: data}\nspec: {mtls: {mode: strict}}\n";
    let mut set = ConfigSet::new();
    set.add_bytes(
        0,
        "mixed.yaml",
        meshdoctor_input::ContentKind::Yaml,
        text.as_bytes(),
    );
    assert!(set.problems().is_empty(), "{:?}", set.problems());
    let rows = set.effective();
    assert_eq!((rows[0].port, rows[0].target_port), (3306, Some(3306)));
    assert_eq!(rows[0].protocol, meshdoctor_config::Protocol::Mysql);
    // `0755` stays text (a name), so the port is sniffed rather than misread as a number.
    assert_eq!(rows[1].port_name.as_deref(), Some("0755"));
    assert_eq!(rows[1].protocol, meshdoctor_config::Protocol::Auto);
    assert_eq!(rows[0].mtls_mode, MtlsMode::Strict);
    let findings = set.findings();
    assert!(
        findings
            .iter()
            .any(|f| f.id == "mtls-strict-plaintext-client" && f.at.line == 20),
        "{findings:#?}"
    );
}

#[test]
fn bare_mesh_with_an_unusual_first_key_is_read_but_logs_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = dir.path().join("mesh.txt");
    std::fs::write(
        &mesh,
        "connectTimeout: 10s\ndefaultProviders:\n  metrics:\n  - prometheus\nprotocolDetectionTimeout: 100ms\n",
    )
    .unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "2024-05-01T10:00:00Z level: info\nprotocolDetectionTimeout: 100ms\n",
    )
    .unwrap();
    let (inputs, _) =
        meshdoctor_input::discover(&[mesh, log], &meshdoctor_input::DiscoverOptions::default());
    let set = load(&inputs);
    let t = set.mesh().protocol_detection_timeout.as_ref().unwrap();
    assert_eq!((t.value.as_millis(), t.at.file, t.at.line), (100, 0, 5));
    assert_eq!(set.problems().len(), 0);
}

#[test]
fn namespace_injection_counts_as_a_sidecar() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n  labels:\n    istio-injection: enabled\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: site, namespace: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: site\n        image: registry.example.com/site:1\n        args: [\"--listen\", \"127.0.0.1:8080\"]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: istiod, namespace: istio-system}\nspec:\n  template:\n    spec:\n      containers: [{name: discovery, image: \"docker.io/istio/pilot:1.20.3\"}]\n";
    let mut set = ConfigSet::new();
    set.add_bytes(
        0,
        "web.yaml",
        meshdoctor_input::ContentKind::Yaml,
        text.as_bytes(),
    );
    assert!(set.has_sidecar(&set.workloads()[0]));
    let findings = set.findings();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        (findings[0].id, findings[0].at.line),
        ("app-binds-localhost", 17)
    );
}
