//! Envoy stats in both forms: admin text (`name: value`) and Prometheus
//! (`envoy_name{tag="v"} value`), and the node's `conntrack -S` counters (`conntrack.<key>`).
//!
//! Every counter keeps its line. Histograms (`P0(...)` text values, `_bucket`/`_sum`/`_count`
//! series) are skipped without an error: they carry no reset evidence we use. This module
//! must not judge values (absence of a stat means "not instantiated", never zero).

use serde::Serialize;

/// Which form a stat came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatForm {
    /// `/stats` text: `cluster.outbound|8080||orders.shop.svc.cluster.local.upstream_cx_total: 3`.
    Text,
    /// `/stats/prometheus`: `envoy_cluster_upstream_cx_total{cluster_name="..."} 3`.
    Prometheus,
}

/// One counter or gauge.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// The name as written (dotted Envoy name, or the Prometheus metric name).
    pub name: String,
    /// Prometheus labels (empty in text form).
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// 1-based line.
    pub line: u64,
    /// The form.
    pub form: StatForm,
}

impl Stat {
    /// True when this stat is Envoy's `<scope>.<stat>` for the given stat name, in either form:
    /// text names end with `.stat` (or `;.stat` since Istio 1.23), Prometheus names with `_stat`
    /// (dots become underscores).
    #[must_use]
    pub fn is(&self, stat: &str) -> bool {
        match self.form {
            StatForm::Text => {
                self.name == stat
                    || self
                        .name
                        .strip_suffix(stat)
                        .is_some_and(|head| head.ends_with('.'))
            }
            StatForm::Prometheus => {
                let want = stat.replace('.', "_");
                self.name == want
                    || self
                        .name
                        .strip_suffix(want.as_str())
                        .is_some_and(|head| head.ends_with('_'))
            }
        }
    }

    /// A Prometheus label value.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// What the stat is about: the listener address or cluster name (from the text name's
    /// scope or the Istio Prometheus tag), if it names one.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        match self.form {
            StatForm::Prometheus => self
                .label("cluster_name")
                .or_else(|| self.label("listener_address"))
                .or_else(|| self.label("tcp_prefix"))
                .or_else(|| self.label("http_conn_manager_prefix")),
            StatForm::Text => {
                let rest = self
                    .name
                    .strip_prefix("listener.")
                    .or_else(|| self.name.strip_prefix("cluster."))?;
                // Cluster names contain dots; the stat is the last segment (or two for `ssl.*`).
                if let Some((scope, _)) = rest.split_once(";.") {
                    return Some(scope);
                }
                let (scope, last) = rest.rsplit_once('.')?;
                Some(match scope.rsplit_once('.') {
                    Some((inner, "ssl" | "http2" | "http1" | "outlier_detection")) => inner,
                    _ => {
                        let _ = last;
                        scope
                    }
                })
            }
        }
    }
}

/// What reading a stats file gave.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsFile {
    /// The counters and gauges.
    pub stats: Vec<Stat>,
    /// Lines that were neither a stat, a comment, a histogram nor blank: (line, text).
    pub bad_lines: Vec<u64>,
}

/// Parse a stats file in either form (the form is decided per line, so a concatenation of
/// both still reads).
#[must_use]
pub fn parse_stats(text: &str) -> StatsFile {
    let mut out = StatsFile::default();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(counters) = parse_conntrack(line, line_no) {
            out.stats.extend(counters);
            continue;
        }
        match parse_line(line, line_no) {
            Parsed::Stat(stat) => out.stats.push(stat),
            Parsed::Skip => {}
            Parsed::Bad => out.bad_lines.push(line_no),
        }
    }
    out
}

/// A `conntrack -S` line (`cpu=0 found=0 invalid=48211 ...`): one `conntrack.<key>` counter
/// per field, labelled with the CPU, so that `conntrack.invalid` sums over CPUs.
fn parse_conntrack(line: &str, line_no: u64) -> Option<Vec<Stat>> {
    let mut fields = line.split_whitespace();
    let cpu = fields.next()?.strip_prefix("cpu=")?;
    cpu.parse::<u32>().ok()?;
    let mut stats = Vec::new();
    for field in fields {
        let (key, value) = field.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        #[allow(clippy::cast_precision_loss)]
        stats.push(Stat {
            name: format!("conntrack.{key}"),
            labels: vec![("cpu".to_string(), cpu.to_string())],
            value: value as f64,
            line: line_no,
            form: StatForm::Text,
        });
    }
    (!stats.is_empty()).then_some(stats)
}

enum Parsed {
    Stat(Stat),
    Skip,
    Bad,
}

fn parse_line(line: &str, line_no: u64) -> Parsed {
    // Prometheus: `name{...} value [ts]` or `name value [ts]`; text: `name: value`.
    if let Some((name, value)) = line.rsplit_once(": ")
        && !name.contains('{')
        && !name.contains(' ')
    {
        let value = value.trim();
        if let Ok(v) = value.parse::<f64>() {
            return Parsed::Stat(Stat {
                name: name.to_string(),
                labels: Vec::new(),
                value: v,
                line: line_no,
                form: StatForm::Text,
            });
        }
        // Histogram summaries (`P0(nan,0) P25(...)`) and `No recorded values`.
        if value.starts_with('P') || value.starts_with("No recorded") || value.is_empty() {
            return Parsed::Skip;
        }
        return Parsed::Bad;
    }
    parse_prometheus(line, line_no)
}

fn parse_prometheus(line: &str, line_no: u64) -> Parsed {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        return Parsed::Bad;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        match parse_labels(&rest[1..]) {
            Some((parsed, after)) => {
                labels = parsed;
                rest = after;
            }
            None => return Parsed::Bad,
        }
    }
    let mut fields = rest.split_whitespace();
    let Some(value) = fields.next() else {
        return Parsed::Bad;
    };
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => match v.parse::<f64>() {
            Ok(v) => v,
            Err(_) => return Parsed::Bad,
        },
    };
    if name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count") {
        return Parsed::Skip;
    }
    Parsed::Stat(Stat {
        name: name.to_string(),
        labels,
        value,
        line: line_no,
        form: StatForm::Prometheus,
    })
}

/// Parse `k="v",k2="v2"}` (after the `{`); returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_counters_sum_over_cpus() {
        let text = "cpu=0   \tfound=0 invalid=48211 ignore=1877221 insert=0 insert_failed=0 drop=0 early_drop=0 error=12 search_restart=3311 \n\
cpu=1   \tfound=0 invalid=51090 ignore=1790045 insert=0 insert_failed=0 drop=0 early_drop=0 error=9 search_restart=3102\n";
        let file = parse_stats(text);
        assert!(file.bad_lines.is_empty());
        let invalid: Vec<&Stat> = file
            .stats
            .iter()
            .filter(|s| s.is("conntrack.invalid"))
            .collect();
        assert_eq!(invalid.len(), 2);
        assert_eq!(invalid.iter().map(|s| s.value).sum::<f64>(), 99_301.0);
        assert_eq!(invalid[1].line, 2);
        assert_eq!(
            invalid[1].labels,
            vec![("cpu".to_string(), "1".to_string())]
        );
        // A malformed field makes the line not a conntrack line at all.
        assert!(parse_conntrack("cpu=0 invalid=x", 1).is_none());
    }

    #[test]
    fn both_forms() {
        let text = "cluster.outbound|8080||orders.shop.svc.cluster.local.upstream_cx_destroy_remote_with_active_rq: 7\n\
listener.0.0.0.0_8080.downstream_pre_cx_timeout: 3\n\
cluster.outbound|80||a.b.svc.cluster.local.ssl.connection_error: 1\n\
cluster.outbound|80||a.b.svc.cluster.local;.upstream_cx_total: 9\n\
listener.0.0.0.0_15006.downstream_cx_length_ms: P0(nan,0) P25(nan,0)\n\
# TYPE envoy_listener_downstream_pre_cx_timeout counter\n\
envoy_listener_downstream_pre_cx_timeout{listener_address=\"0.0.0.0_15006\"} 12\n\
envoy_cluster_upstream_cx_total{cluster_name=\"outbound|8080||x\",a=\"q\\\"uote\"} 4 1700000000\n\
envoy_cluster_upstream_cx_length_ms_bucket{le=\"0.5\"} 0\n\
garbage line here\n";
        let file = parse_stats(text);
        assert_eq!(file.bad_lines, vec![10]);
        let s = &file.stats;
        assert_eq!(s.len(), 6);
        assert!(s[0].is("upstream_cx_destroy_remote_with_active_rq"));
        assert_eq!(
            s[0].subject(),
            Some("outbound|8080||orders.shop.svc.cluster.local")
        );
        assert_eq!(s[1].subject(), Some("0.0.0.0_8080"));
        assert_eq!(s[2].subject(), Some("outbound|80||a.b.svc.cluster.local"));
        assert!(s[2].is("ssl.connection_error"));
        assert_eq!(s[3].subject(), Some("outbound|80||a.b.svc.cluster.local"));
        assert!(s[4].is("downstream_pre_cx_timeout"));
        assert_eq!(s[4].subject(), Some("0.0.0.0_15006"));
        assert_eq!(s[5].label("a"), Some("q\"uote"));
        assert_eq!(s[5].value, 4.0);
    }
}
