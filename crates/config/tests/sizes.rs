//! Large inputs: a config dump with hundreds of listeners and clusters and a namespace dump
//! with hundreds of objects are read whole. (Timings belong in benchmarks, not in tests.)

use meshdoctor_config::ConfigSet;
use meshdoctor_input::ContentKind;
use std::fmt::Write as _;

fn big_dump(listeners: usize, clusters: usize) -> String {
    let mut s = String::from(
        "{\"configs\": [{\"@type\": \"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\", \"dynamic_listeners\": [\n",
    );
    for i in 0..listeners {
        let port = 1000 + i;
        let _ = writeln!(
            s,
            "{}{{\"name\": \"0.0.0.0_{port}\", \"active_state\": {{\"listener\": {{\"name\": \"0.0.0.0_{port}\", \"address\": {{\"socket_address\": {{\"address\": \"0.0.0.0\", \"port_value\": {port}}}}}, \"listener_filters\": [{{\"name\": \"envoy.filters.listener.tls_inspector\"}}, {{\"name\": \"envoy.filters.listener.http_inspector\"}}], \"listener_filters_timeout\": \"0.100s\", \"continue_on_listener_filters_timeout\": true, \"traffic_direction\": \"OUTBOUND\", \"filter_chains\": [{{\"filter_chain_match\": {{\"application_protocols\": [\"http/1.1\", \"h2c\"]}}, \"filters\": [{{\"name\": \"envoy.filters.network.http_connection_manager\", \"typed_config\": {{\"stat_prefix\": \"x\", \"route_config\": {{\"virtual_hosts\": [{{\"name\": \"a\", \"domains\": [\"*\"], \"routes\": [{{\"match\": {{\"prefix\": \"/\"}}, \"route\": {{\"cluster\": \"c\", \"timeout\": \"0s\"}}}}]}}]}}}}}}]}}]}}}}}}",
            if i == 0 { "" } else { "," }
        );
    }
    s.push_str("]}, {\"@type\": \"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\", \"dynamic_active_clusters\": [\n");
    for i in 0..clusters {
        let _ = writeln!(
            s,
            "{}{{\"cluster\": {{\"name\": \"outbound|{i}||svc{i}.ns.svc.cluster.local\", \"type\": \"EDS\", \"connect_timeout\": \"10s\", \"circuit_breakers\": {{\"thresholds\": [{{\"max_connections\": 4294967295, \"max_pending_requests\": 4294967295}}]}}, \"transport_socket\": {{\"name\": \"envoy.transport_sockets.tls\", \"typed_config\": {{\"sni\": \"outbound_.{i}_._.svc{i}.ns.svc.cluster.local\"}}}}}}}}",
            if i == 0 { "" } else { "," }
        );
    }
    s.push_str("]}]}\n");
    s
}

fn big_yaml(services: usize) -> String {
    let mut s = String::new();
    for i in 0..services {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc{i}\n  namespace: shop\n  labels:\n    app: svc{i}\nspec:\n  selector:\n    app: svc{i}\n  ports:\n  - name: http\n    port: 8080\n    targetPort: 8080\n  - name: grpc\n    port: 9090\n"
        );
    }
    s
}

#[test]
fn large_inputs_read_whole() {
    let dump = big_dump(300, 300);
    let mut set = ConfigSet::new();
    set.add_bytes(0, "dump", ContentKind::EnvoyConfigDump, dump.as_bytes());
    assert_eq!(set.envoy_dumps()[0].listeners.len(), 300);
    assert_eq!(set.envoy_dumps()[0].clusters.len(), 300);
    let yaml = big_yaml(300);
    set.add_bytes(1, "svc", ContentKind::Yaml, yaml.as_bytes());
    assert_eq!(set.services().len(), 300);
    assert_eq!(set.effective().len(), 600);
}
