//! Kubernetes and Istio documents: ConfigMaps with mesh config, bare mesh documents,
//! IstioOperator and Helm values, Services, pods and their controllers, and the Istio
//! networking/security resources. `List` objects are unrolled.
//!
//! Each reader takes a [`Node`] tree and records facts with their lines into the
//! [`Collector`]; unknown kinds are counted, never errors. This module must not combine
//! facts (that is `effective`).

use crate::Collector;
use crate::facts::{
    Container, DestinationRule, MeshSettings, MtlsMode, OtherResource, PeerAuthentication, Problem,
    Service, ServicePort, Sourced, TrafficPolicy, VersionSighting, Workload,
};
use crate::node::{Node, Value, parse_yaml_documents};
use crate::values::{IstioVersion, parse_duration};
use meshdoctor_model::{FileId, Location};

/// Context of the file being read.
pub(crate) struct Doc<'a> {
    pub file: FileId,
    /// The whole file text (to tell block scalars from inline strings).
    pub text: &'a str,
    /// The file is JSON (strings are always inline).
    pub json: bool,
}

impl Doc<'_> {
    fn at(&self, line: u64) -> Location {
        Location {
            file: self.file,
            line,
        }
    }
}

/// Read one top-level document.
pub(crate) fn read_object(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    let kind = node.field("kind").as_str().unwrap_or("");
    if kind == "List" || (kind.ends_with("List") && node.get("items").is_some()) {
        for item in node.field("items").items() {
            read_object(doc, item, out);
        }
        return;
    }
    if kind.is_empty() {
        read_kindless(doc, node, out);
        return;
    }
    install_version_labels(doc, node, out);
    match kind {
        "ConfigMap" => read_configmap(doc, node, out),
        "IstioOperator" => read_istio_operator(doc, node, out),
        "Service" => read_service(doc, node, out),
        "Pod" => read_pod_like(doc, node, node, kind, out),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            let template = node.at(&["spec", "template"]).unwrap_or(node);
            read_pod_like(doc, node, template, kind, out);
        }
        "CronJob" => {
            let template = node
                .at(&["spec", "jobTemplate", "spec", "template"])
                .unwrap_or(node);
            read_pod_like(doc, node, template, kind, out);
        }
        "PeerAuthentication" => read_peer_authentication(doc, node, out),
        "DestinationRule" => read_destination_rule(doc, node, out),
        "VirtualService" | "ServiceEntry" | "Sidecar" | "AuthorizationPolicy" => {
            read_other(doc, node, kind, out);
        }
        // Known and harmless: nothing in them bears on resets.
        "Namespace" => {
            out.count_kind(kind, true);
            // Injection is decided per namespace unless a pod opts out.
            let labels = string_map(node.at(&["metadata", "labels"]));
            let injected = labels
                .iter()
                .any(|(k, v)| (k == "istio-injection" && v == "enabled") || k == "istio.io/rev");
            if injected {
                out.injected_namespaces.push(meta_name(node));
            }
        }
        "Endpoints" | "EndpointSlice" | "Secret" => out.count_kind(kind, true),
        other => out.count_kind(other, false),
    }
}

fn meta_name(node: &Node) -> String {
    node.at(&["metadata", "name"])
        .and_then(Node::text)
        .unwrap_or_default()
}

fn meta_namespace(node: &Node) -> String {
    node.at(&["metadata", "namespace"])
        .and_then(Node::text)
        .unwrap_or_else(|| "default".to_string())
}

fn string_map(node: Option<&Node>) -> Vec<(String, String)> {
    node.map(|n| {
        n.entries()
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.text()?)))
            .collect()
    })
    .unwrap_or_default()
}

/// Installed objects carry `operator.istio.io/version` / `app.kubernetes.io/version` labels.
fn install_version_labels(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    let Some(labels) = node.at(&["metadata", "labels"]) else {
        return;
    };
    for key in [
        "operator.istio.io/version",
        "install.operator.istio.io/version",
    ] {
        if let Some(v) = labels.get(key)
            && let Some(version) = v.text().as_deref().and_then(IstioVersion::parse)
        {
            out.versions.push(VersionSighting {
                version,
                at: doc.at(v.line),
                control_plane: true,
                source: "install label",
            });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mesh config

pub(crate) const MESH_KEYS: &[&str] = &[
    "protocolDetectionTimeout",
    "defaultConfig",
    "accessLogFile",
    "accessLogEncoding",
    "accessLogFormat",
    "enableAutoMtls",
    "outboundTrafficPolicy",
    "rootNamespace",
    "trustDomain",
    "defaultProviders",
    "enablePrometheusMerge",
    "connectTimeout",
    "ingressClass",
    "meshMTLS",
    "extensionProviders",
    "discoverySelectors",
    "enableTracing",
    "localityLbSetting",
    "trustDomainAliases",
    "defaultDestinationRuleExportTo",
    "inboundTrafficPolicy",
];

fn read_kindless(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    // A bare mesh document (`kubectl get cm istio -o jsonpath={.data.mesh}`).
    if MESH_KEYS.iter().any(|k| node.get(k).is_some()) {
        read_mesh(doc, node, out);
        return;
    }
    // Helm values (istiod chart or the 1.6 umbrella chart), possibly under `values:`.
    let mut used = false;
    if let Some(mesh) = node.get("meshConfig") {
        read_mesh(doc, mesh, out);
        used = true;
    }
    for values in [Some(node), node.get("values")].into_iter().flatten() {
        used |= read_helm_values(doc, values, out);
    }
    if !used {
        out.count_kind("(document without kind)", false);
    }
}

fn read_helm_values(doc: &Doc<'_>, values: &Node, out: &mut Collector) -> bool {
    let mut used = false;
    // 1.6 charts: `global.proxy.protocolDetectionTimeout` rendered into the ConfigMap.
    if let Some(t) = values.at(&["global", "proxy", "protocolDetectionTimeout"]) {
        set_duration(doc, t, &mut out.mesh.protocol_detection_timeout);
        used = true;
    }
    if let Some(m) = values.get("meshConfig") {
        read_mesh(doc, m, out);
        used = true;
    }
    for path in [&["pilot", "env"][..], &["global", "pilot", "env"][..]] {
        if let Some(env) = values.at(path) {
            read_pilot_env_map(doc, env, out);
            used = true;
        }
    }
    for path in [&["global", "tag"][..], &["pilot", "tag"][..]] {
        if let Some(tag) = values.at(path)
            && let Some(version) = tag.text().as_deref().and_then(IstioVersion::parse)
        {
            out.versions.push(VersionSighting {
                version,
                at: doc.at(tag.line),
                control_plane: true,
                source: "helm values tag",
            });
            used = true;
        }
    }
    used |= values.get("global").is_some() || values.get("pilot").is_some();
    used
}

fn read_pilot_env_map(doc: &Doc<'_>, env: &Node, out: &mut Collector) {
    // Helm: a map `NAME: value`; IstioOperator k8s.env: a list of `{name, value}`.
    let mut pairs: Vec<(String, &Node)> =
        env.entries().iter().map(|(k, v)| (k.clone(), v)).collect();
    for item in env.items() {
        if let (Some(name), Some(value)) = (item.field("name").text(), item.get("value")) {
            pairs.push((name, value));
        }
    }
    for (name, value) in pairs {
        if name == "PILOT_INBOUND_PROTOCOL_DETECTION_TIMEOUT" {
            set_duration(doc, value, &mut out.mesh.inbound_detection_env);
        }
    }
}

fn set_duration(doc: &Doc<'_>, node: &Node, slot: &mut Option<Sourced<std::time::Duration>>) {
    if let Some(d) = node.text().as_deref().and_then(parse_duration) {
        *slot = Some(Sourced::new(d, doc.at(node.line)));
    }
}

fn read_mesh(doc: &Doc<'_>, mesh: &Node, out: &mut Collector) {
    let m: &mut MeshSettings = &mut out.mesh;
    m.mesh_config_at = Some(doc.at(mesh.line));
    if let Some(t) = mesh.get("protocolDetectionTimeout") {
        set_duration(doc, t, &mut m.protocol_detection_timeout);
    }
    if let Some(b) = mesh.get("enableAutoMtls")
        && let Some(v) = b.as_bool()
    {
        m.enable_auto_mtls = Some(Sourced::new(v, doc.at(b.line)));
    }
    if let Some(mode) = mesh.at(&["outboundTrafficPolicy", "mode"])
        && let Some(v) = mode.text()
    {
        m.outbound_traffic_policy = Some(Sourced::new(v, doc.at(mode.line)));
    }
    if let Some(ns) = mesh.get("rootNamespace")
        && let Some(v) = ns.text()
    {
        m.root_namespace = Some(Sourced::new(v, doc.at(ns.line)));
    }
    if let Some(dc) = mesh.get("defaultConfig") {
        if let Some(t) = dc.get("terminationDrainDuration") {
            set_duration(doc, t, &mut m.termination_drain_duration);
        }
        if let Some(t) = dc.get("drainDuration") {
            set_duration(doc, t, &mut m.drain_duration);
        }
        if let Some(b) = dc.get("holdApplicationUntilProxyStarts")
            && let Some(v) = b.as_bool()
        {
            m.hold_application_until_proxy_starts = Some(Sourced::new(v, doc.at(b.line)));
        }
    }
}

fn read_configmap(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    let name = meta_name(node);
    // `istio`, or `istio-<revision>` for revisioned installs.
    let is_mesh = name == "istio" || name.starts_with("istio-");
    let Some(mesh) = node.at(&["data", "mesh"]).filter(|_| is_mesh) else {
        out.count_kind("ConfigMap", true);
        return;
    };
    out.count_kind("ConfigMap", true);
    let Some(text) = mesh.as_str() else {
        return;
    };
    // A block scalar (`mesh: |`) starts on the next line and keeps its line structure; an
    // inline or JSON string puts everything on the key's line.
    let key_line_text = doc
        .text
        .lines()
        .nth(usize::try_from(mesh.line.saturating_sub(1)).unwrap_or(usize::MAX))
        .unwrap_or("");
    let block = !doc.json && {
        let after = key_line_text.split_once(':').map_or("", |(_, v)| v).trim();
        after.starts_with('|') || after.starts_with('>')
    };
    for inner in parse_yaml_documents(text) {
        match inner.result {
            Ok(mut tree) => {
                remap_lines(&mut tree, |l| if block { l + mesh.line } else { mesh.line });
                read_mesh(doc, &tree, out);
                out.mesh.mesh_config_at = Some(doc.at(mesh.line));
            }
            Err((line, message)) => out.problems.push(Problem {
                at: doc.at(if block { line + mesh.line } else { mesh.line }),
                message: format!("ConfigMap {name} data.mesh: {message}"),
            }),
        }
    }
}

fn remap_lines(node: &mut Node, f: impl Fn(u64) -> u64 + Copy) {
    node.line = f(node.line);
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| remap_lines(n, f)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| remap_lines(n, f)),
        _ => {}
    }
}

fn read_istio_operator(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    out.count_kind("IstioOperator", true);
    let spec = node.field("spec");
    if let Some(mesh) = spec.get("meshConfig") {
        read_mesh(doc, mesh, out);
    }
    if let Some(values) = spec.get("values") {
        read_helm_values(doc, values, out);
    }
    if let Some(env) = spec.at(&["components", "pilot", "k8s", "env"]) {
        read_pilot_env_map(doc, env, out);
    }
    if let Some(tag) = spec.get("tag")
        && let Some(version) = tag.text().as_deref().and_then(IstioVersion::parse)
    {
        out.versions.push(VersionSighting {
            version,
            at: doc.at(tag.line),
            control_plane: true,
            source: "IstioOperator tag",
        });
    }
}

// ---------------------------------------------------------------------------------------
// Services and workloads

fn read_service(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    out.count_kind("Service", true);
    let spec = node.field("spec");
    let mut ports = Vec::new();
    for p in spec.field("ports").items() {
        let Some(port) = p.field("port").as_u64().and_then(|v| u16::try_from(v).ok()) else {
            out.problems.push(Problem {
                at: doc.at(p.line),
                message: "Service port without a usable `port` number".to_string(),
            });
            continue;
        };
        let target = p.field("targetPort");
        ports.push(ServicePort {
            name: p.field("name").text(),
            port,
            target_port: target.as_u64().and_then(|v| u16::try_from(v).ok()),
            target_port_name: target
                .as_str()
                .filter(|s| s.parse::<u64>().is_err())
                .map(String::from),
            protocol: p
                .field("protocol")
                .text()
                .unwrap_or_else(|| "TCP".to_string()),
            app_protocol: p.field("appProtocol").text(),
            at: doc.at(p.line),
        });
    }
    out.services.push(Service {
        name: meta_name(node),
        namespace: meta_namespace(node),
        at: doc.at(node.line),
        selector: string_map(spec.get("selector")),
        headless: spec.field("clusterIP").as_str() == Some("None"),
        ports,
    });
}

fn read_pod_like(doc: &Doc<'_>, node: &Node, template: &Node, kind: &str, out: &mut Collector) {
    out.count_kind(kind, true);
    let pod_spec = template.field("spec");
    let mut containers = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in pod_spec.field(list).items() {
            containers.push(read_container(doc, c));
        }
    }
    let template_meta = template.field("metadata");
    let mut labels = string_map(template_meta.get("labels"));
    if labels.is_empty() {
        labels = string_map(node.at(&["metadata", "labels"]));
    }
    let annotations = template_meta
        .field("annotations")
        .entries()
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), Sourced::new(v.text()?, doc.at(v.line)))))
        .collect();
    let workload = Workload {
        kind: kind.to_string(),
        name: meta_name(node),
        namespace: meta_namespace(node),
        at: doc.at(node.line),
        labels,
        annotations,
        containers,
        termination_grace_seconds: pod_spec
            .get("terminationGracePeriodSeconds")
            .and_then(|n| Some(Sourced::new(n.as_u64()?, doc.at(n.line)))),
    };
    for c in &workload.containers {
        let Some(image) = &c.image else { continue };
        let Some(version) = IstioVersion::from_image(&image.value) else {
            continue;
        };
        let (control_plane, source) = if workload.is_istiod() || image.value.contains("/pilot:") {
            (true, "istiod image")
        } else if c.name == "istio-proxy" {
            (false, "proxy image")
        } else {
            continue;
        };
        out.versions.push(VersionSighting {
            version,
            at: image.at,
            control_plane,
            source,
        });
    }
    if workload.is_istiod() {
        for c in &workload.containers {
            for (name, value) in &c.env {
                if name == "PILOT_INBOUND_PROTOCOL_DETECTION_TIMEOUT"
                    && let Some(d) = parse_duration(&value.value)
                {
                    out.mesh.inbound_detection_env = Some(Sourced::new(d, value.at));
                }
            }
        }
    }
    out.workloads.push(workload);
}

fn read_container(doc: &Doc<'_>, c: &Node) -> Container {
    let mut args = Vec::new();
    for list in ["command", "args"] {
        for a in c.field(list).items() {
            if let Some(t) = a.text() {
                args.push(Sourced::new(t, doc.at(a.line)));
            }
        }
    }
    Container {
        name: c.field("name").text().unwrap_or_default(),
        image: c
            .get("image")
            .and_then(|n| Some(Sourced::new(n.text()?, doc.at(n.line)))),
        ports: c
            .field("ports")
            .items()
            .iter()
            .filter_map(|p| {
                let port = u16::try_from(p.field("containerPort").as_u64()?).ok()?;
                Some((port, p.field("name").text()))
            })
            .collect(),
        env: c
            .field("env")
            .items()
            .iter()
            .filter_map(|e| {
                let value = e.get("value")?;
                Some((
                    e.field("name").text()?,
                    Sourced::new(value.text()?, doc.at(value.line)),
                ))
            })
            .collect(),
        args,
        cpu_limit: c
            .at(&["resources", "limits", "cpu"])
            .and_then(|n| Some(Sourced::new(n.text()?, doc.at(n.line)))),
    }
}

// ---------------------------------------------------------------------------------------
// Istio resources

fn mode_at(doc: &Doc<'_>, node: Option<&Node>) -> Option<Sourced<MtlsMode>> {
    let node = node?;
    Some(Sourced::new(
        MtlsMode::parse(&node.text()?)?,
        doc.at(node.line),
    ))
}

fn read_peer_authentication(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    out.count_kind("PeerAuthentication", true);
    let spec = node.field("spec");
    let selector = spec
        .at(&["selector", "matchLabels"])
        .map(|n| string_map(Some(n)))
        .filter(|s| !s.is_empty());
    let port_level = spec
        .field("portLevelMtls")
        .entries()
        .iter()
        .filter_map(|(port, v)| {
            let port: u16 = port.trim().parse().ok()?;
            Some((port, mode_at(doc, v.get("mode"))?))
        })
        .collect();
    out.peer_authentications.push(PeerAuthentication {
        name: meta_name(node),
        namespace: meta_namespace(node),
        at: doc.at(node.line),
        selector,
        mode: mode_at(doc, spec.at(&["mtls", "mode"])),
        port_level,
    });
}

fn traffic_policy(doc: &Doc<'_>, p: &Node) -> TrafficPolicy {
    let num = |path: &[&str]| {
        p.at(path)
            .and_then(|n| Some(Sourced::new(n.as_u64()?, doc.at(n.line))))
    };
    let dur = |path: &[&str]| {
        p.at(path)
            .and_then(|n| Some(Sourced::new(parse_duration(&n.text()?)?, doc.at(n.line))))
    };
    TrafficPolicy {
        tls_mode: p
            .at(&["tls", "mode"])
            .and_then(|n| Some(Sourced::new(n.text()?.to_ascii_uppercase(), doc.at(n.line)))),
        max_connections: num(&["connectionPool", "tcp", "maxConnections"]),
        http1_max_pending_requests: num(&["connectionPool", "http", "http1MaxPendingRequests"]),
        http2_max_requests: num(&["connectionPool", "http", "http2MaxRequests"]),
        max_requests_per_connection: num(&["connectionPool", "http", "maxRequestsPerConnection"]),
        http_idle_timeout: dur(&["connectionPool", "http", "idleTimeout"]),
        tcp_idle_timeout: dur(&["connectionPool", "tcp", "idleTimeout"]),
        max_connection_duration: dur(&["connectionPool", "tcp", "maxConnectionDuration"]),
        max_ejection_percent: num(&["outlierDetection", "maxEjectionPercent"]),
    }
}

fn read_destination_rule(doc: &Doc<'_>, node: &Node, out: &mut Collector) {
    out.count_kind("DestinationRule", true);
    let spec = node.field("spec");
    let tp = spec.field("trafficPolicy");
    let port_level = tp
        .field("portLevelSettings")
        .items()
        .iter()
        .filter_map(|s| {
            let port = u16::try_from(s.at(&["port", "number"])?.as_u64()?).ok()?;
            Some((port, traffic_policy(doc, s)))
        })
        .collect();
    let subsets = spec
        .field("subsets")
        .items()
        .iter()
        .filter_map(|s| {
            Some((
                s.field("name").text()?,
                traffic_policy(doc, s.get("trafficPolicy")?),
            ))
        })
        .collect();
    out.destination_rules.push(DestinationRule {
        name: meta_name(node),
        namespace: meta_namespace(node),
        at: doc.at(node.line),
        host: spec.field("host").text().unwrap_or_default(),
        policy: traffic_policy(doc, tp),
        port_level,
        subsets,
    });
}

fn read_other(doc: &Doc<'_>, node: &Node, kind: &str, out: &mut Collector) {
    out.count_kind(kind, true);
    let spec = node.field("spec");
    let mut timeouts = Vec::new();
    for route in spec.field("http").items() {
        for path in [&["timeout"][..], &["retries", "perTryTimeout"][..]] {
            if let Some(n) = route.at(path)
                && let Some(d) = n.text().as_deref().and_then(parse_duration)
            {
                timeouts.push(Sourced::new(d, doc.at(n.line)));
            }
        }
    }
    out.others.push(OtherResource {
        kind: kind.to_string(),
        name: meta_name(node),
        namespace: meta_namespace(node),
        at: doc.at(node.line),
        hosts: spec
            .field("hosts")
            .items()
            .iter()
            .filter_map(Node::text)
            .collect(),
        timeouts,
        outbound_traffic_policy: spec
            .at(&["outboundTrafficPolicy", "mode"])
            .and_then(|n| Some(Sourced::new(n.text()?, doc.at(n.line)))),
        action: spec
            .get("action")
            .and_then(|n| Some(Sourced::new(n.text()?, doc.at(n.line)))),
        localhost_ingress: spec.field("ingress").items().iter().any(|i| {
            i.field("defaultEndpoint").as_str().is_some_and(|e| {
                e.starts_with("127.0.0.1:")
                    || e.starts_with("localhost:")
                    || e.starts_with("[::1]:")
            })
        }),
    });
}
