//! Reads what the cluster says about itself, offline: the mesh config (`istio` ConfigMap,
//! bare mesh YAML, IstioOperator, Helm values), Kubernetes and Istio resources from
//! `kubectl get -o yaml|json` dumps, Envoy config dumps (admin snake_case and istioctl
//! camelCase) and Envoy stats (text and Prometheus). Every fact keeps its file and line.
//!
//! [`load`] turns inputs into a [`ConfigSet`]; [`ConfigSet::effective`] gives the effective
//! settings per workload and port (protocol, detection timeout for the detected Istio version,
//! mTLS mode after precedence, client TLS mode, timeouts) and [`ConfigSet::findings`] the
//! config-only risks, named with the cause ids of the root-cause catalogue.
//!
//! This crate never prints and never fails a run on bad content: unreadable documents become
//! [`Problem`]s with file:line, unknown kinds are counted.
//!
//! # For `diagnose`
//!
//! ```no_run
//! # let inputs: Vec<meshdoctor_input::InputFile> = Vec::new();
//! let config = meshdoctor_config::load(&inputs);
//! // Version first: several signatures flip with it.
//! let version = config.istio_version(); // Option<Sourced<IstioVersion>>
//! // Confirm or rule out protocol-sniffing-timeout for calls to `orders`:
//! if let Some((timeout, at)) = config.detection_timeout_for("orders.shop") {
//!     // zero = disabled; `at` is the ConfigMap line, dump listener or version sighting
//! }
//! let (mode, at) = config.mtls_mode_for("orders", 8080); // STRICT|PERMISSIVE|DISABLE|UNSET
//! // Config-only risks, by cause id of rootcauses.md, each with file:line:
//! for f in config.findings() { let _ = (f.id, f.at, &f.summary, &f.evidence); }
//! // Counters (absent = not instantiated, not zero):
//! let pre_cx_timeouts = config.stat_total("downstream_pre_cx_timeout");
//! # let _ = (version, mode, at, pre_cx_timeouts);
//! ```
//! File names for a [`Location`] come from [`ConfigSet::file_name`] (the input's display name).

mod effective;
mod envoy;
pub mod facts;
mod kube;
pub mod node;
pub mod report;
pub mod stats;
pub mod values;

pub use effective::{
    DetectionTimeout, Effective, Finding, Protocol, ProtocolSource, TimeoutSource,
    declared_protocol,
};
pub use facts::{
    Cluster, Container, DestinationRule, EnvoyDump, FilterChain, Listener, ListenerFilter,
    MeshSettings, MtlsMode, OtherResource, PeerAuthentication, Problem, Service, ServicePort,
    Sourced, Thresholds, TrafficPolicy, VersionSighting, Workload,
};
pub use report::Report;
pub use stats::{Stat, StatForm};
pub use values::{IstioVersion, format_duration, parse_duration};

use meshdoctor_input::{ContentKind, InputFile};
use meshdoctor_model::{FileId, Location};
use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

/// Largest config file read (config dumps of big meshes are tens of MB; logs are not read here).
const MAX_CONFIG_BYTES: u64 = 512 * 1024 * 1024;

/// Everything read from the configuration inputs.
#[derive(Clone, Debug, Default)]
pub struct ConfigSet {
    pub(crate) files: Vec<(FileId, String)>,
    pub(crate) mesh: MeshSettings,
    pub(crate) services: Vec<Service>,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) peer_authentications: Vec<PeerAuthentication>,
    pub(crate) destination_rules: Vec<DestinationRule>,
    pub(crate) others: Vec<OtherResource>,
    pub(crate) versions: Vec<VersionSighting>,
    pub(crate) dumps: Vec<EnvoyDump>,
    pub(crate) stats: Vec<(FileId, Stat)>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) kinds: BTreeMap<String, usize>,
    pub(crate) injected_namespaces: Vec<String>,
    pub(crate) unknown_kinds: BTreeMap<String, usize>,
}

pub(crate) type Collector = ConfigSet;

/// Read every configuration input (logs are skipped, except JSON listings from
/// `istioctl proxy-config` that the sniffer may take for a log). Unreadable files become
/// problems.
#[must_use]
pub fn load(inputs: &[InputFile]) -> ConfigSet {
    let mut set = ConfigSet::default();
    for input in inputs {
        // `istioctl proxy-config listener|cluster -o json` prints a bare array that the
        // sniffer may call a log or an unknown JSON document; those are read when they carry
        // listener/cluster markers.
        let maybe_listing = matches!(input.content, ContentKind::Log | ContentKind::JsonDocument);
        // Stdin can be read once and belongs to the log pipeline; callers that own it pass
        // its bytes to `ConfigSet::add_bytes`.
        if (!input.content.is_config() && !maybe_listing)
            || input.access == meshdoctor_input::Access::Stdin
        {
            continue;
        }
        let bytes = match read_all(input, maybe_listing) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(err) => {
                set.problems.push(Problem {
                    at: Location {
                        file: input.id,
                        line: 0,
                    },
                    message: format!("cannot read: {err}"),
                });
                continue;
            }
        };
        set.add_bytes(input.id, &input.display, input.content, &bytes);
    }
    set
}

/// Read a whole config file; for possible listings, only when the first 64 KiB carry
/// listener/cluster markers (a multi-gigabyte log is never slurped).
fn read_all(input: &InputFile, check_head: bool) -> std::io::Result<Option<Vec<u8>>> {
    let mut stream = meshdoctor_input::open_stream(input)?.take(MAX_CONFIG_BYTES);
    let mut bytes = Vec::new();
    if check_head {
        (&mut stream).take(64 * 1024).read_to_end(&mut bytes)?;
        if !log_may_be_dump(&bytes) {
            return Ok(None);
        }
    }
    stream.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

fn log_may_be_dump(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    let listing = first == Some(&b'[')
        && [
            &b"filterChains"[..],
            b"filter_chains",
            b"connectTimeout",
            b"connect_timeout",
        ]
        .iter()
        .any(|m| head.windows(m.len()).any(|w| w == *m));
    listing || looks_like_bare_mesh(head)
}

/// `kubectl get cm istio -o jsonpath={.data.mesh}` output whose first key the sniffer does not
/// know (`connectTimeout:`, `defaultProviders:`...): every meaningful line of the head is YAML
/// and some top-level key is a mesh-config key.
fn looks_like_bare_mesh(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let mut mesh_key = false;
    for line in text.lines().take(200) {
        let t = line.trim_end();
        if t.is_empty() || t.trim_start().starts_with('#') {
            continue;
        }
        let indented = t.starts_with([' ', '-']);
        if !indented {
            let Some((key, _)) = t.split_once(':') else {
                return false;
            };
            if !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return false;
            }
            mesh_key |= kube::MESH_KEYS.contains(&key);
        }
    }
    mesh_key
}

impl ConfigSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Read one file's bytes. `kind` is what the input sniffer said; the content decides in
    /// the end (JSON vs YAML by the first character).
    pub fn add_bytes(&mut self, file: FileId, display: &str, kind: ContentKind, bytes: &[u8]) {
        self.files.push((file, display.to_string()));
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if kind == ContentKind::EnvoyStats {
            let parsed = stats::parse_stats(text);
            for line in parsed.bad_lines.iter().take(20) {
                self.problems.push(Problem {
                    at: Location { file, line: *line },
                    message: "not a stats line".to_string(),
                });
            }
            self.stats
                .extend(parsed.stats.into_iter().map(|s| (file, s)));
            return;
        }
        let first = text.trim_start().chars().next();
        if matches!(first, Some('{' | '[')) {
            match node::parse_json(text) {
                Ok(tree) => self.add_tree(file, text, true, &tree),
                Err(e) => {
                    // JSON lines or a truncated dump: YAML may still read a `{...}` flow map.
                    self.problems.push(Problem {
                        at: Location { file, line: e.line },
                        message: format!("invalid JSON: {}", e.reason),
                    });
                }
            }
            return;
        }
        for doc in node::parse_yaml_documents(text) {
            match doc.result {
                Ok(tree) => self.add_tree(file, text, false, &tree),
                Err((line, message)) => self.problems.push(Problem {
                    at: Location { file, line },
                    message: format!(
                        "invalid YAML document (starting at line {}): {message}",
                        doc.start_line
                    ),
                }),
            }
        }
    }

    fn add_tree(&mut self, file: FileId, text: &str, json: bool, tree: &node::Node) {
        if envoy::looks_like_dump(tree) {
            envoy::read_dump(file, tree, self);
            return;
        }
        let doc = kube::Doc { file, text, json };
        match &tree.value {
            node::Value::Map(_) => kube::read_object(&doc, tree, self),
            // A YAML/JSON array of objects: read each.
            node::Value::Seq(items) => items.iter().for_each(|i| kube::read_object(&doc, i, self)),
            _ => self.count_kind("(scalar document)", false),
        }
    }

    pub(crate) fn count_kind(&mut self, kind: &str, known: bool) {
        let map = if known {
            &mut self.kinds
        } else {
            &mut self.unknown_kinds
        };
        *map.entry(kind.to_string()).or_default() += 1;
    }

    /// The display name of a file.
    #[must_use]
    pub fn file_name(&self, file: FileId) -> &str {
        self.files
            .iter()
            .find(|(id, _)| *id == file)
            .map_or("?", |(_, name)| name.as_str())
    }

    /// Mesh-wide settings read.
    #[must_use]
    pub fn mesh(&self) -> &MeshSettings {
        &self.mesh
    }

    /// Services read.
    #[must_use]
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Pods and controllers read.
    #[must_use]
    pub fn workloads(&self) -> &[Workload] {
        &self.workloads
    }

    /// PeerAuthentications read.
    #[must_use]
    pub fn peer_authentications(&self) -> &[PeerAuthentication] {
        &self.peer_authentications
    }

    /// DestinationRules read.
    #[must_use]
    pub fn destination_rules(&self) -> &[DestinationRule] {
        &self.destination_rules
    }

    /// VirtualServices, ServiceEntries, Sidecars and AuthorizationPolicies read.
    #[must_use]
    pub fn other_resources(&self) -> &[OtherResource] {
        &self.others
    }

    /// Envoy config dumps read.
    #[must_use]
    pub fn envoy_dumps(&self) -> &[EnvoyDump] {
        &self.dumps
    }

    /// Stats read, with their file.
    #[must_use]
    pub fn stats(&self) -> &[(FileId, Stat)] {
        &self.stats
    }

    /// Sum of a stat (e.g. `downstream_pre_cx_timeout`) over every scope and file, with the
    /// location of the largest contributor; `None` when no file has it (absent is not zero).
    #[must_use]
    pub fn stat_total(&self, stat: &str) -> Option<(f64, Location)> {
        let mut total = 0.0;
        let mut best: Option<(f64, Location)> = None;
        for (file, s) in &self.stats {
            if s.is(stat) {
                total += s.value;
                if best.is_none_or(|(v, _)| s.value > v) {
                    best = Some((
                        s.value,
                        Location {
                            file: *file,
                            line: s.line,
                        },
                    ));
                }
            }
        }
        best.map(|(_, at)| (total, at))
    }

    /// Documents that could not be used, with file:line.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// True when `workload` runs with a sidecar: an `istio-proxy` container, or injection
    /// asked by annotation or namespace label (and not refused by the pod).
    #[must_use]
    pub fn has_sidecar(&self, workload: &Workload) -> bool {
        if workload.proxy().is_some() {
            return true;
        }
        match workload
            .annotation("sidecar.istio.io/inject")
            .map(|a| a.value.to_ascii_lowercase())
            .as_deref()
        {
            Some("true") => true,
            Some("false") => false,
            _ => {
                self.injected_namespaces.contains(&workload.namespace)
                    || workload
                        .labels
                        .iter()
                        .any(|(k, v)| k == "sidecar.istio.io/inject" && v == "true")
            }
        }
    }

    /// Objects read per known kind.
    #[must_use]
    pub fn kinds(&self) -> &BTreeMap<String, usize> {
        &self.kinds
    }

    /// Objects ignored per unknown kind.
    #[must_use]
    pub fn unknown_kinds(&self) -> &BTreeMap<String, usize> {
        &self.unknown_kinds
    }

    /// Every place an Istio version was seen.
    #[must_use]
    pub fn version_sightings(&self) -> &[VersionSighting] {
        &self.versions
    }

    /// The Istio version the settings are resolved for: the control plane's (istiod image,
    /// IstioOperator tag, install labels) when known, else the most common proxy version.
    #[must_use]
    pub fn istio_version(&self) -> Option<Sourced<IstioVersion>> {
        let pick = |control_plane: bool| {
            let mut counts: BTreeMap<IstioVersion, (usize, Location)> = BTreeMap::new();
            for s in self
                .versions
                .iter()
                .filter(|s| s.control_plane == control_plane)
            {
                counts.entry(s.version).or_insert((0, s.at)).0 += 1;
            }
            counts
                .into_iter()
                .max_by_key(|(v, (n, _))| (*n, *v))
                .map(|(v, (_, at))| Sourced::new(v, at))
        };
        pick(true).or_else(|| pick(false))
    }

    /// The effective settings per service port.
    #[must_use]
    pub fn effective(&self) -> Vec<Effective> {
        effective::effective(self)
    }

    /// Config-only risk findings, each with a cause id and file:line.
    #[must_use]
    pub fn findings(&self) -> Vec<Finding> {
        effective::findings(self)
    }

    /// The effective outbound protocol detection timeout for connections to `workload`
    /// (a Service name, or a Deployment/workload name its selector picks, optionally as
    /// `name.namespace`), with where it comes from. Falls back to a config dump of that
    /// workload's own sidecar, then to the mesh-wide value. `None` when nothing is known (no
    /// version, no mesh config, no dump). A zero duration means disabled.
    #[must_use]
    pub fn detection_timeout_for(&self, workload: &str) -> Option<(Duration, Location)> {
        let rows = self.effective();
        let (name, ns) = split_workload(workload);
        rows.iter()
            .filter(|r| self.row_is_for(r, name, ns))
            .find_map(|r| r.detection_timeout.as_ref().map(|d| (d.value, d.at)))
            .or_else(|| self.dump_timeout_of(name))
            .or_else(|| {
                let mesh = effective::mesh_detection_timeout(self)?;
                Some((mesh.value, mesh.at))
            })
    }

    /// The effective mTLS mode of `workload`'s `port` (Service port or target port) after
    /// mesh/namespace/workload/port precedence, with the deciding PeerAuthentication's location.
    /// `UNSET` (Istio's default, PERMISSIVE behaviour) when no policy applies or the workload
    /// is unknown.
    #[must_use]
    pub fn mtls_mode_for(&self, workload: &str, port: u16) -> (MtlsMode, Option<Location>) {
        let (name, ns) = split_workload(workload);
        self.effective()
            .iter()
            .find(|r| {
                self.row_is_for(r, name, ns) && (r.port == port || r.target_port == Some(port))
            })
            .map_or((MtlsMode::Unset, None), |r| (r.mtls_mode, r.mtls_at))
    }

    /// A row is for `name` when its Service is called so, or selects a workload called so.
    fn row_is_for(&self, row: &Effective, name: &str, ns: Option<&str>) -> bool {
        if ns.is_some_and(|n| row.namespace != n) {
            return false;
        }
        if row.service == name {
            return true;
        }
        let Some(svc) = self
            .services
            .iter()
            .find(|s| s.name == row.service && s.namespace == row.namespace)
        else {
            return false;
        };
        self.workloads.iter().any(|w| {
            w.namespace == svc.namespace
                && (w.name == name || meshdoctor_input::workload_from_pod(&w.name) == name)
                && w.matches(&svc.selector)
        })
    }

    /// The shortest listener-filter timeout on the outbound listeners of `name`'s own dump.
    fn dump_timeout_of(&self, name: &str) -> Option<(Duration, Location)> {
        self.dumps
            .iter()
            .filter(|d| {
                d.pod
                    .as_deref()
                    .is_some_and(|p| p == name || meshdoctor_input::workload_from_pod(p) == name)
            })
            .flat_map(|d| d.listeners.iter())
            .filter(|l| l.name != "virtualInbound" && l.direction.as_deref() != Some("INBOUND"))
            .filter(|l| l.inspects("http_inspector", None) || l.inspects("tls_inspector", None))
            .map(|l| match &l.listener_filters_timeout {
                Some(t) => (t.value, t.at),
                None => (Duration::from_secs(15), l.at),
            })
            .min_by_key(|(d, _)| *d)
    }
}

fn split_workload(workload: &str) -> (&str, Option<&str>) {
    match workload.split_once('.') {
        Some((name, ns)) => (name, Some(ns.split('.').next().unwrap_or(ns))),
        None => (workload, None),
    }
}
