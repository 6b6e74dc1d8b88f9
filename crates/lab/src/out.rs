//! Writing a run's outputs: one log file per container under `<ns>/<pod>/<container>.log`, the
//! Kubernetes/Istio configuration that describes the lab's own setup under `config/`, and
//! `truth.json`. The YAML is what `kubectl get -o yaml` would roughly show, reduced to the
//! fields that matter for resets. This module must not run anything.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;

use crate::logs::Envoy;
use crate::mesh::{MtlsMode, NAMESPACE, Service};
use crate::scenario::Pod;
use crate::{LabConfig, LabSummary};

/// The pilot-agent lines an istio-proxy container starts with.
pub(crate) fn agent_startup(env: &Envoy, pod: &Pod, version: &str) {
    env.agent("info", "FLAG: --concurrency=\"2\"");
    env.agent("info", "FLAG: --proxyLogLevel=\"warning\"");
    env.agent("info", "FLAG: --proxyComponentLogLevel=\"misc:error,connection:debug,conn_handler:debug,filter:debug,http:debug,router:debug,pool:debug,client:debug\"");
    env.agent(
        "info",
        &format!("Version {version}-abc0e2e2fa4ac8e3e2a5e8f2d3b1c0a9f8e7d6c5-Clean"),
    );
    env.agent(
        "info",
        &format!("Proxy role: &model.Proxy{{Type:sidecar IPAddresses:[{}] ID:{}.{NAMESPACE} DNSDomain:{NAMESPACE}.svc.cluster.local}}", pod.ip, pod.pod),
    );
    env.agent("info", "Starting proxy agent");
    env.agent("info", "Epoch 0 starting");
    env.agent(
        "info",
        &format!(
            "Envoy command: [-c etc/istio/proxy/envoy-rev0.json --restart-epoch 0 --drain-time-s 45 --parent-shutdown-time-s 60 --service-cluster {}.{NAMESPACE} --service-node sidecar~{}~{}.{NAMESPACE}~{NAMESPACE}.svc.cluster.local --local-address-ip-version v4 -l warning --component-log-level misc:error --concurrency 2]",
            pod.app, pod.ip, pod.pod
        ),
    );
}

fn duration_yaml(d: Option<Duration>) -> String {
    match d {
        None => "0s".into(),
        Some(d) if d.subsec_millis() == 0 => format!("{}s", d.as_secs()),
        Some(d) => format!("{}ms", d.as_millis()),
    }
}

pub(crate) fn write_all(
    cfg: &LabConfig,
    summary: &LabSummary,
    pods: &[Pod],
    services: &[Service],
    detection_timeout: Option<Duration>,
) -> anyhow::Result<Vec<String>> {
    let out = &cfg.out_dir;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut files = Vec::new();
    for p in pods {
        let rel = format!("{NAMESPACE}/{}/{}.log", p.pod, p.app);
        p.app_sink
            .write_to(&out.join(&rel), cfg.wrapper)
            .with_context(|| rel.clone())?;
        files.push(rel);
        if let Some(proxy) = &p.proxy_sink {
            let rel = format!("{NAMESPACE}/{}/istio-proxy.log", p.pod);
            proxy
                .write_to(&out.join(&rel), cfg.wrapper)
                .with_context(|| rel.clone())?;
            files.push(rel);
        }
    }
    let version = &summary.istio_version;
    let cfgdir = out.join("config");
    std::fs::create_dir_all(&cfgdir)?;
    let mesh = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n  namespace: istio-system\n  labels:\n    app: istio\n    release: istio\n    istio.io/rev: default\ndata:\n  mesh: |-\n    accessLogEncoding: {encoding}\n    accessLogFile: /dev/stdout\n    accessLogFormat: \"\"\n    defaultConfig:\n      concurrency: 2\n      discoveryAddress: istiod.istio-system.svc:15012\n      drainDuration: 45s\n      parentShutdownDuration: 1m0s\n      proxyMetadata: {{}}\n      tracing:\n        zipkin:\n          address: zipkin.istio-system:9411\n    disableMixerHttpReports: true\n    enableAutoMtls: true\n    enablePrometheusMerge: true\n    outboundTrafficPolicy:\n      mode: ALLOW_ANY\n    protocolDetectionTimeout: {}\n    rootNamespace: istio-system\n    trustDomain: cluster.local\n  meshNetworks: 'networks: {{}}'\n",
        duration_yaml(detection_timeout),
        encoding = if cfg.access_format == crate::AccessFormat::Json {
            "JSON"
        } else {
            "TEXT"
        },
    );
    std::fs::write(cfgdir.join("istio-configmap.yaml"), mesh)?;
    files.push("config/istio-configmap.yaml".into());

    let mut svc_yaml = String::new();
    for s in services {
        let target = if s.server_first { 3306 } else { 8080 };
        let _ = write!(
            svc_yaml,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {n}\n  namespace: {NAMESPACE}\n  labels:\n    app: {n}\nspec:\n  type: ClusterIP\n  selector:\n    app: {n}\n  ports:\n  - name: {pn}\n    port: {p}\n    protocol: TCP\n    targetPort: {target}\n",
            n = s.name,
            pn = s.port_name,
            p = s.port
        );
    }
    std::fs::write(cfgdir.join("services.yaml"), svc_yaml)?;
    files.push("config/services.yaml".into());

    let mode = match cfg.mtls {
        MtlsMode::Strict => "STRICT",
        MtlsMode::Permissive => "PERMISSIVE",
    };
    std::fs::write(
        cfgdir.join("peerauthentication.yaml"),
        format!(
            "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: istio-system\nspec:\n  mtls:\n    mode: {mode}\n"
        ),
    )?;
    files.push("config/peerauthentication.yaml".into());

    let mut deps = String::new();
    for p in pods {
        let injected = p.proxy_sink.is_some();
        // The lab never holds the app until the proxy starts (1.6 default).
        let hold = "false";
        let _ = write!(
            deps,
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {NAMESPACE}\n  labels:\n    app: {app}\n  annotations:\n    sidecar.istio.io/inject: \"{injected}\"\n{extra}spec:\n  containers:\n  - name: {app}\n    image: registry.example.invalid/{app}:1.4.2\n    ports:\n    - containerPort: 8080\n{proxy}status:\n  phase: Running\n  podIP: {ip}\n  startTime: \"{start}\"\n  containerStatuses:\n{statuses}",
            pod = p.pod,
            app = p.app,
            ip = p.ip,
            start = summary.started_at,
            statuses = {
                let mut st = String::new();
                let names: Vec<&str> = if injected {
                    vec![p.app.as_str(), "istio-proxy"]
                } else {
                    vec![p.app.as_str()]
                };
                for n in names {
                    let _ = write!(
                        st,
                        "  - name: {n}\n    ready: true\n    restartCount: 0\n    started: true\n    state:\n      running:\n        startedAt: \"{}\"\n",
                        summary.started_at
                    );
                }
                st
            },
            extra = if injected {
                format!(
                    "    sidecar.istio.io/status: '{{\"version\":\"{version}\",\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"]}}'\n    proxy.istio.io/config: '{{\"holdApplicationUntilProxyStarts\": {hold}}}'\n"
                )
            } else {
                String::new()
            },
            proxy = if injected {
                format!("  - name: istio-proxy\n    image: docker.io/istio/proxyv2:{version}\n")
            } else {
                String::new()
            },
        );
    }
    std::fs::write(cfgdir.join("pods.yaml"), deps)?;
    files.push("config/pods.yaml".into());

    files.push("truth.json".into());
    let mut truth = serde_json::to_value(summary)?;
    if let Some(obj) = truth.as_object_mut() {
        obj.insert("files".into(), serde_json::to_value(&files)?);
    }
    std::fs::write(
        out.join("truth.json"),
        serde_json::to_string_pretty(&truth)?,
    )?;
    Ok(files)
}
