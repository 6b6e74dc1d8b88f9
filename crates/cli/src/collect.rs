//! `meshdoctor collect`: gather a bundle that `diagnose`, `scan` and `config` read unchanged.
//!
//! It runs `kubectl` only (istioctl is not needed: the sidecar's admin endpoint is reached
//! through `kubectl exec ... pilot-agent request GET ...`), each command with a time limit,
//! output streamed straight into the bundle. The exact commands, in order (`-n NS` and
//! `--context C` added where given, `--request-timeout=30s` on every call):
//!
//! 1. `kubectl get configmap -n istio-system -o jsonpath={range .items[?(@.data.mesh)]}{.metadata.name}{"\n"}{end}`
//!    — the names of the maps that hold a mesh config (`istio`, `istio-<revision>`), nothing
//!    else of any other map. Then for each:
//!    `kubectl get configmap NAME -n istio-system -o yaml` → `mesh/configmap-NAME.yaml`
//! 2. `kubectl get deployments -n istio-system -l app=istiod -o yaml` → `mesh/istiod.yaml`
//! 3. `kubectl get peerauthentications -n istio-system -o yaml` → `mesh/peerauthentications.yaml`
//! 4. `kubectl get services,deployments,statefulsets,daemonsets,pods -n NS -o yaml` → `NS/workloads.yaml`
//! 5. `kubectl get peerauthentications,destinationrules,virtualservices,serviceentries,sidecars,authorizationpolicies -n NS -o yaml` → `NS/istio.yaml`
//! 6. `kubectl get pods -n NS -o json` — the pod list (read for names and restart counts,
//!    not kept: step 4 already holds the pods)
//! 7. per pod and container: `kubectl logs POD -n NS -c CONTAINER --timestamps [--since=D | --since-time=T]`
//!    → `NS/POD/CONTAINER.log`; if the container restarted, the same with `--previous`
//!    → `NS/POD/CONTAINER.previous.log`
//! 8. per pod with `istio-proxy`: `kubectl exec POD -n NS -c istio-proxy -- pilot-agent request GET config_dump`
//!    → `NS/POD/config_dump.json`, and `... GET stats` → `NS/POD/stats.txt`
//!
//! Every command, its exit status and output file go into `.collect-manifest.txt` (hidden, so
//! that the readers, which skip dot-files, see the bundle exactly as collected).
//!
//! Secrets are never copied: no command names secrets, config dumps are asked without
//! `include_eds`/secrets (Envoy redacts private keys anyway), and any output that holds a
//! `kind: Secret` object is deleted instead of kept. A failing command (missing CRD, no
//! permission, pod gone) is recorded and the collection goes on. This module must not
//! interpret what it collects.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Arguments of `collect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Namespace of the workloads to collect.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: String,
    /// kubectl context (default: the current one).
    #[arg(long, value_name = "CONTEXT")]
    context: Option<String>,
    /// Directory to write the bundle into (created; existing files are overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only logs newer than this (kubectl duration: 30m, 2h).
    #[arg(long, value_name = "DURATION", conflicts_with = "since_time")]
    since: Option<String>,
    /// Only logs after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since_time: Option<String>,
    /// Namespace of the Istio control plane.
    #[arg(long, value_name = "NS", default_value = "istio-system")]
    istio_namespace: String,
    /// The kubectl to run.
    #[arg(long, value_name = "PATH", default_value = "kubectl")]
    kubectl: PathBuf,
    /// Time limit of each command, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// Do not print progress to stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Pods at most; a namespace with more is cut (and the cut is recorded).
const MAX_PODS: usize = 500;

struct Collector<'a> {
    args: &'a Args,
    manifest: String,
    step: usize,
    failures: usize,
}

enum Outcome {
    Written(u64),
    Failed(String),
}

impl Collector<'_> {
    fn base(&self) -> Vec<String> {
        let mut v = vec!["--request-timeout=30s".to_string()];
        if let Some(c) = &self.args.context {
            v.push(format!("--context={c}"));
        }
        v
    }

    /// Run kubectl with `args`, stdout into `dest` (relative to the bundle).
    fn run(&mut self, args: &[String], dest: &str) -> Outcome {
        self.step += 1;
        let mut full = self.base();
        full.extend(args.iter().cloned());
        let shown = format!("kubectl {}", full.join(" "));
        if !self.args.quiet {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("[{}] {shown}", self.step);
            }
        }
        let path = self.args.out.join(dest);
        let outcome = run_to_file(
            &self.args.kubectl,
            &full,
            &path,
            Duration::from_secs(self.args.timeout),
        );
        let outcome = match outcome {
            Outcome::Written(n) if holds_secret(&path) => {
                let _ = std::fs::remove_file(&path);
                let _ = n;
                Outcome::Failed("output held a Secret object; not kept".to_string())
            }
            other => other,
        };
        match &outcome {
            Outcome::Written(n) => {
                let _ = writeln!(self.manifest, "ok\t{dest}\t{n} bytes\t{shown}");
            }
            Outcome::Failed(why) => {
                self.failures += 1;
                let _ = std::fs::remove_file(&path);
                let _ = writeln!(self.manifest, "failed\t{dest}\t{why}\t{shown}");
            }
        }
        outcome
    }
}

fn run_to_file(program: &Path, args: &[String], dest: &Path, limit: Duration) -> Outcome {
    if let Some(parent) = dest.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        return Outcome::Failed(format!("cannot create {}: {e}", parent.display()));
    }
    let file = match std::fs::File::create(dest) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(format!("cannot write {}: {e}", dest.display())),
    };
    let err_path = dest.with_extension("stderr.tmp");
    let Ok(err_file) = std::fs::File::create(&err_path) else {
        return Outcome::Failed("cannot create a temporary file".to_string());
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err_file))
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&err_path);
            return Outcome::Failed(format!("cannot run {}: {e}", program.display()));
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    match status {
        Some(s) if s.success() => {
            Outcome::Written(std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
        }
        Some(s) => Outcome::Failed(format!(
            "exit {}: {}",
            s.code().unwrap_or(-1),
            stderr.lines().next().unwrap_or("").trim()
        )),
        None => Outcome::Failed(format!("timed out after {}s", limit.as_secs())),
    }
}

/// A resource listing (YAML, or the pod JSON) that contains a Secret object. Logs, stats and
/// config dumps are not resource listings and are not read back (they can be large).
fn holds_secret(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if !(name.ends_with(".yaml") || name.ends_with("pods.json")) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    text.lines().any(|l| {
        let t = l.trim().trim_start_matches("- ");
        t == "kind: Secret" || t.replace(' ', "").starts_with("\"kind\":\"Secret\"")
    })
}

/// Pod name, containers (name, restarted) and whether it has a sidecar.
fn pods_from_json(text: &str) -> Vec<(String, Vec<(String, bool)>)> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let mut pods = Vec::new();
    for item in doc["items"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Some(name) = item["metadata"]["name"].as_str() else {
            continue;
        };
        let restarted = |c: &str| {
            ["containerStatuses", "initContainerStatuses"]
                .iter()
                .any(|k| {
                    item["status"][k]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                        .iter()
                        .any(|s| s["name"] == c && s["restartCount"].as_u64().unwrap_or(0) > 0)
                })
        };
        let mut containers = Vec::new();
        for list in ["initContainers", "containers"] {
            for c in item["spec"][list]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                if let Some(cn) = c["name"].as_str()
                    && safe_name(cn)
                {
                    containers.push((cn.to_string(), restarted(cn)));
                }
            }
        }
        if safe_name(name) {
            pods.push((name.to_string(), containers));
        }
    }
    pods
}

/// Kubernetes names are DNS labels; refuse anything else before using it in a path.
fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn mesh_configmaps(text: &str) -> Vec<String> {
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|n| safe_name(n))
        .map(String::from)
        .collect();
    if names.is_empty() {
        vec!["istio".to_string()]
    } else {
        names
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if !safe_name(&args.namespace) || !safe_name(&args.istio_namespace) {
        anyhow::bail!("namespace names are DNS labels (a-z, 0-9, '-', '.')");
    }
    std::fs::create_dir_all(&args.out)?;
    let mut c = Collector {
        args,
        manifest: String::new(),
        step: 0,
        failures: 0,
    };
    let ns = args.namespace.as_str();
    let ins = args.istio_namespace.as_str();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();

    // Only the names of mesh maps are asked for: other configmaps may hold anything.
    let listing = c.run(
        &s(&[
            "get",
            "configmap",
            "-n",
            ins,
            "-o",
            "jsonpath={range .items[?(@.data.mesh)]}{.metadata.name}{\"\\n\"}{end}",
        ]),
        "mesh/.configmaps.txt",
    );
    let listing_path = args.out.join("mesh/.configmaps.txt");
    let names = match listing {
        Outcome::Written(_) => mesh_configmaps(&std::fs::read_to_string(&listing_path)?),
        Outcome::Failed(_) => vec!["istio".to_string()],
    };
    let _ = std::fs::remove_file(&listing_path);
    for name in names {
        c.run(
            &s(&["get", "configmap", &name, "-n", ins, "-o", "yaml"]),
            &format!("mesh/configmap-{name}.yaml"),
        );
    }
    c.run(
        &s(&[
            "get",
            "deployments",
            "-n",
            ins,
            "-l",
            "app=istiod",
            "-o",
            "yaml",
        ]),
        "mesh/istiod.yaml",
    );
    c.run(
        &s(&["get", "peerauthentications", "-n", ins, "-o", "yaml"]),
        "mesh/peerauthentications.yaml",
    );
    c.run(
        &s(&[
            "get",
            "services,deployments,statefulsets,daemonsets,pods",
            "-n",
            ns,
            "-o",
            "yaml",
        ]),
        &format!("{ns}/workloads.yaml"),
    );
    c.run(
        &s(&[
            "get",
            "peerauthentications,destinationrules,virtualservices,serviceentries,sidecars,authorizationpolicies",
            "-n",
            ns,
            "-o",
            "yaml",
        ]),
        &format!("{ns}/istio.yaml"),
    );
    let pods_file = format!("{ns}/.pods.json");
    let pods = match c.run(&s(&["get", "pods", "-n", ns, "-o", "json"]), &pods_file) {
        Outcome::Written(_) => pods_from_json(&std::fs::read_to_string(args.out.join(&pods_file))?),
        Outcome::Failed(_) => Vec::new(),
    };
    let _ = std::fs::remove_file(args.out.join(&pods_file));
    if pods.len() > MAX_PODS {
        let _ = writeln!(
            c.manifest,
            "note\t{} pods, only the first {MAX_PODS} collected",
            pods.len()
        );
    }
    let window: Vec<String> = match (&args.since, &args.since_time) {
        (Some(d), _) => vec![format!("--since={d}")],
        (None, Some(t)) => vec![format!("--since-time={t}")],
        (None, None) => Vec::new(),
    };
    for (pod, containers) in pods.iter().take(MAX_PODS) {
        for (container, restarted) in containers {
            let mut logs = s(&["logs", pod, "-n", ns, "-c", container, "--timestamps"]);
            logs.extend(window.iter().cloned());
            c.run(&logs, &format!("{ns}/{pod}/{container}.log"));
            if *restarted {
                logs.push("--previous".to_string());
                c.run(&logs, &format!("{ns}/{pod}/{container}.previous.log"));
            }
        }
        if containers.iter().any(|(n, _)| n == "istio-proxy") {
            for (what, file) in [("config_dump", "config_dump.json"), ("stats", "stats.txt")] {
                c.run(
                    &s(&[
                        "exec",
                        pod,
                        "-n",
                        ns,
                        "-c",
                        "istio-proxy",
                        "--",
                        "pilot-agent",
                        "request",
                        "GET",
                        what,
                    ]),
                    &format!("{ns}/{pod}/{file}"),
                );
            }
        }
    }
    let manifest = args.out.join(".collect-manifest.txt");
    std::fs::write(&manifest, &c.manifest)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Collected {} command outputs into {} ({} failed; commands and results in {})",
        c.step - c.failures,
        args.out.display(),
        c.failures,
        manifest.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_they_become_paths() {
        assert!(safe_name("orders-5d8f9c7b6-abcde"));
        assert!(!safe_name("../etc"));
        assert!(!safe_name("a/b"));
        assert!(!safe_name(""));
    }

    #[test]
    fn listings_with_a_secret_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("x.yaml");
        std::fs::write(
            &yaml,
            "items:\n- apiVersion: v1\n  data: {password: c2VjcmV0}\n  kind: Secret\n",
        )
        .unwrap();
        assert!(holds_secret(&yaml));
        std::fs::write(&yaml, "items:\n- kind: ConfigMap\n  data: {kind: Secret}\n").unwrap();
        assert!(!holds_secret(&yaml));
        let log = dir.path().join("app.log");
        std::fs::write(&log, "kind: Secret\n").unwrap();
        assert!(!holds_secret(&log));
    }

    #[test]
    fn pods_and_restarts_from_kubectl_json() {
        let json = r#"{"items":[{"metadata":{"name":"orders-1"},"spec":{"containers":[{"name":"app"},{"name":"istio-proxy"}]},"status":{"containerStatuses":[{"name":"app","restartCount":2}]}},{"metadata":{"name":"../x"}}]}"#;
        let pods = pods_from_json(json);
        assert_eq!(pods.len(), 1);
        assert_eq!(
            pods[0].1,
            vec![
                ("app".to_string(), true),
                ("istio-proxy".to_string(), false)
            ]
        );
        assert!(pods_from_json("not json").is_empty());
    }
}
