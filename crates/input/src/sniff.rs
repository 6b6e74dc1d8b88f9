//! Tell log files from configuration documents by their first bytes, never by their name.

use crate::Access;
use std::io::Read;
use std::path::Path;

/// What an input looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    /// Log lines (any family; records are classified one by one later).
    Log,
    /// YAML documents (Kubernetes/Istio resources, mesh config, IstioOperator, Helm values).
    Yaml,
    /// A JSON document that is not one-object-per-line: `kubectl get -o json` output.
    KubernetesJson,
    /// An Envoy `/config_dump` or `istioctl proxy-config ... -o json` document.
    EnvoyConfigDump,
    /// Envoy stats, text (`name: value`) or Prometheus form.
    EnvoyStats,
    /// A JSON document that is neither a log nor configuration we know (e.g. a report).
    JsonDocument,
    /// Empty input.
    Empty,
}

impl ContentKind {
    /// Stable kebab-case name for reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Log => "log",
            ContentKind::Yaml => "yaml",
            ContentKind::KubernetesJson => "kubernetes-json",
            ContentKind::EnvoyConfigDump => "envoy-config-dump",
            ContentKind::EnvoyStats => "envoy-stats",
            ContentKind::JsonDocument => "json-document",
            ContentKind::Empty => "empty",
        }
    }

    /// True for configuration documents (read by `meshdoctor-config`).
    #[must_use]
    pub fn is_config(self) -> bool {
        !matches!(
            self,
            ContentKind::Log | ContentKind::Empty | ContentKind::JsonDocument
        )
    }

    /// True for inputs the log pipeline reads.
    #[must_use]
    pub fn is_log(self) -> bool {
        matches!(self, ContentKind::Log | ContentKind::Empty)
    }
}

const SNIFF_BYTES: usize = 64 * 1024;

pub(crate) fn sniff_file(path: &Path) -> std::io::Result<(Access, ContentKind)> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = vec![0u8; SNIFF_BYTES.min(usize::try_from(len).unwrap_or(SNIFF_BYTES))];
    let n = read_up_to(&mut file, &mut head)?;
    head.truncate(n);
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = flate2::read::MultiGzDecoder::new(&head[..]);
        let mut plain = vec![0u8; SNIFF_BYTES];
        // A truncated header sample is fine: we only need the first few lines.
        let got = read_up_to(&mut decoder, &mut plain).unwrap_or(0);
        plain.truncate(got);
        return Ok((Access::Gzip, sniff_content(&plain)));
    }
    Ok((Access::Plain { len }, sniff_content(&head)))
}

/// Fill `buf` as far as the reader goes; a read that fails after some bytes came ends the
/// sample there (a sniff needs only the first lines).
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    match crate::read_full(reader, buf) {
        Ok(n) => Ok(n),
        Err((n, _)) if n > 0 => Ok(n),
        Err((_, e)) => Err(e),
    }
}

/// Classify the first bytes of an input.
#[must_use]
pub fn sniff_content(head: &[u8]) -> ContentKind {
    let text = String::from_utf8_lossy(head);
    let mut lines = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty());
    let Some(first) = lines.next() else {
        return ContentKind::Empty;
    };
    let first_trimmed = first.trim_start();
    if first_trimmed.starts_with('{')
        || first_trimmed.starts_with('[') && !looks_like_log_bracket(first_trimmed)
    {
        // One complete object on the first line means JSON lines (a log); a document that
        // opens and continues on the next lines is a pretty-printed JSON resource.
        let one_line_object = first_trimmed.starts_with('{')
            && first_trimmed.ends_with('}')
            && first_trimmed.len() > 2;
        if one_line_object {
            return ContentKind::Log;
        }
        if text.contains("\"configs\"") && text.contains("type.googleapis.com/envoy") {
            return ContentKind::EnvoyConfigDump;
        }
        if text.contains("\"apiVersion\"") || text.contains("\"kind\"") {
            return ContentKind::KubernetesJson;
        }
        // A pretty-printed document (a report, a ground-truth file): not log lines.
        if first_trimmed == "{" || first_trimmed == "[" {
            return ContentKind::JsonDocument;
        }
        return ContentKind::Log;
    }
    if first_trimmed == "---"
        || YAML_OPENERS.iter().any(|k| first_trimmed.starts_with(k))
        || first_trimmed.starts_with('#') && yaml_follows(&text)
    {
        return ContentKind::Yaml;
    }
    if first_trimmed.starts_with("# TYPE ") || first_trimmed.starts_with("# HELP ") {
        return ContentKind::EnvoyStats;
    }
    let sample: Vec<&str> = text.lines().take(20).filter(|l| !l.is_empty()).collect();
    if !sample.is_empty() && sample.iter().all(|l| is_stats_line(l)) {
        return ContentKind::EnvoyStats;
    }
    ContentKind::Log
}

/// A line of `conntrack -S`: `cpu=0 found=0 invalid=48211 ignore=... insert_failed=0 ...`.
/// Node-level counters, read with the Envoy stats because they answer the same question
/// (what did the data path count), e.g. for conntrack-INVALID resets.
fn is_conntrack_stats_line(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("cpu=")
        && line.contains("invalid=")
        && line.split_whitespace().all(|field| {
            field
                .split_once('=')
                .is_some_and(|(key, value)| !key.is_empty() && value.parse::<u64>().is_ok())
        })
}

const YAML_OPENERS: &[&str] = &[
    "apiVersion:",
    "kind:",
    "metadata:",
    "meshConfig:",
    "defaultConfig:",
    "accessLogFile:",
    "accessLogEncoding:",
    "protocolDetectionTimeout:",
    "enableAutoMtls:",
    "outboundTrafficPolicy:",
    "values:",
    "spec:",
    "items:",
    "mesh:",
    "data:",
    "global:",
    "pilot:",
];

fn yaml_follows(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l == "---" || YAML_OPENERS.iter().any(|k| l.starts_with(k)))
}

fn looks_like_log_bracket(line: &str) -> bool {
    // `[2024-05-01T...]` access rows, `[2019-06-28 13:...][` Envoy lines, `[Envoy (Epoch 0)]`,
    // `[pod/x/y] ` kubectl --prefix.
    let b = line.as_bytes();
    b.len() > 2
        && (b[1].is_ascii_digit() || line.starts_with("[Envoy") || line.starts_with("[pod/"))
}

fn is_stats_line(line: &str) -> bool {
    if is_conntrack_stats_line(line) {
        return true;
    }
    let Some((name, value)) = line.rsplit_once(": ") else {
        return false;
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-|:;/".contains(&b))
        && name.contains('.')
        && (value.trim().parse::<f64>().is_ok()
            || value.starts_with("P0(")
            || value.starts_with("No recorded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_content() {
        assert_eq!(sniff_content(b""), ContentKind::Empty);
        assert_eq!(
            sniff_content(b"{\"level\":\"info\",\"msg\":\"x\"}\n"),
            ContentKind::Log
        );
        assert_eq!(
            sniff_content(b"apiVersion: v1\nkind: Service\n"),
            ContentKind::Yaml
        );
        assert_eq!(
            sniff_content(b"# comment\n---\nkind: Service\n"),
            ContentKind::Yaml
        );
        assert_eq!(
            sniff_content(b"{\n \"configs\": [ {\"@type\": \"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\"}]}"),
            ContentKind::EnvoyConfigDump
        );
        assert_eq!(
            sniff_content(b"{\n \"apiVersion\": \"v1\",\n \"kind\": \"List\"\n}"),
            ContentKind::KubernetesJson
        );
        assert_eq!(
            sniff_content(b"cluster.x.upstream_cx_total: 4\nserver.uptime: 30\n"),
            ContentKind::EnvoyStats
        );
        assert_eq!(
            sniff_content(b"# TYPE envoy_cluster_upstream_cx_total counter\n"),
            ContentKind::EnvoyStats
        );
        assert_eq!(
            sniff_content(b"[2024-05-01T10:00:00.123Z] \"GET / HTTP/1.1\" 200 - via_upstream - \"-\" 0 1 2 1\n"),
            ContentKind::Log
        );
        assert_eq!(
            sniff_content(b"2020-10-23T00:26:14.869776Z\tdebug\tenvoy filter\tx\n"),
            ContentKind::Log
        );
    }
}
