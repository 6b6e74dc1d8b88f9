//! The rule format: what a root-cause rule says, how it is read from TOML, and how it is
//! checked before use.
//!
//! A rule is data (see `RULES.md` next to `Cargo.toml` for the authoring guide): evidence
//! items that name signals with weights, declarative line patterns, and fix / verify text
//! with placeholders. Built-in rules are the files in `rules/`, embedded at build time;
//! users add more with `--rules FILE|DIR`. This module parses and validates; it must not
//! evaluate signals or read logs (that is [`crate::signals`] and [`crate::engine`]).

use crate::signals;
use crate::version::VersionRange;
use meshdoctor_model::{Family, ResponseFlags, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// Whether a cause is a fault of the mesh or something the mesh only reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Mesh configuration, sidecar lifecycle or data-plane behaviour.
    #[default]
    Mesh,
    /// The application, the client or the network; the mesh only reports it.
    NotMesh,
}

/// One root-cause rule, as written in a rule file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable kebab-case id (the cause id in reports and JSON).
    pub id: String,
    /// One-line title.
    pub title: String,
    /// One-sentence summary shown under the verdict; placeholders allowed.
    pub summary: String,
    /// Why this resets connections (the mechanism), a short paragraph.
    pub mechanism: String,
    /// Mesh fault or not.
    #[serde(default)]
    pub category: Category,
    /// Versions this cause applies to, free text for the report (e.g. `Istio 1.3-1.7`).
    #[serde(default)]
    pub versions: Option<String>,
    /// Evidence items with weights.
    pub evidence: Vec<Evidence>,
    /// Declarative line patterns, referenced as `pattern.<id>` from evidence.
    #[serde(default, rename = "pattern")]
    pub patterns: Vec<Pattern>,
    /// Fix steps (commands or YAML), placeholders allowed.
    pub fix: Vec<String>,
    /// How to verify the fix took effect.
    pub verify: Vec<String>,
    /// Version-specific fix/verify text; the first variant whose range contains the detected
    /// Istio version replaces `fix`/`verify`.
    #[serde(default, rename = "fix_variant")]
    pub fix_variants: Vec<FixVariant>,
    /// What to collect next when this cause is a candidate but not proven.
    #[serde(default)]
    pub collect: Vec<String>,
    /// Issue threads, docs, source.
    #[serde(default)]
    pub references: Vec<String>,
}

/// One piece of evidence a rule weighs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// A built-in signal name (see [`signals::BUILTIN`]) or `pattern.<id>` of this rule.
    pub signal: String,
    /// In `-1.0..=1.0`, not zero. Positive supports the cause, negative speaks against it.
    pub weight: f64,
    /// Anchors: a rule is only a candidate when at least one anchor fires.
    #[serde(default)]
    pub anchor: bool,
    /// Fires only when the signal counted at least this many occurrences.
    #[serde(default = "one")]
    pub min_count: u64,
    /// Fires only when count / denominator (e.g. failure rate over access rows of the same
    /// workloads) is at least this. Ignored when the signal has no denominator.
    #[serde(default)]
    pub min_rate: Option<f64>,
    /// Counts only when the detected Istio version range overlaps this (`<=1.7`, `>=1.8`,
    /// `1.3-1.7`). Unknown version: counts.
    #[serde(default)]
    pub istio: Option<String>,
    /// What it means when it fires, for the report.
    pub means: String,
    /// How to obtain this evidence when it is absent (listed under missing evidence).
    #[serde(default)]
    pub collect: Option<String>,
    /// Which side of the call the signal's workloads are: `server` or `client`
    /// (fills `{server}` / `{client}` placeholders).
    #[serde(default)]
    pub side: Option<Side>,
}

fn one() -> u64 {
    1
}

/// Caller or callee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The callee (inbound sidecar).
    Server,
    /// The caller (outbound sidecar, the app that logged the error).
    Client,
}

/// A version-specific fix.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FixVariant {
    /// Istio version range (same syntax as evidence `istio`).
    pub istio: String,
    /// Fix steps for that range.
    pub fix: Vec<String>,
    /// Verify steps for that range (empty keeps the rule's).
    #[serde(default)]
    pub verify: Vec<String>,
}

/// A declarative line pattern, evaluated on every event of its family while reading.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    /// Referenced as `pattern.<id>` from this rule's evidence.
    pub id: String,
    /// `envoy-debug`, `envoy-access`, `app-log`, `proxy-agent` or `linkerd-proxy`.
    pub family: String,
    /// Field to match (see `RULES.md` for the fields of each family). Default `message`
    /// (for access rows: `response_code_details`).
    #[serde(default)]
    pub field: Option<String>,
    /// Literal the field must contain.
    #[serde(default)]
    pub contains: Option<String>,
    /// Make `contains` case-insensitive.
    #[serde(default)]
    pub ignore_case: bool,
    /// Regular expression the field must match (checked after `contains`).
    #[serde(default)]
    pub regex: Option<String>,
    /// Envoy/agent logger or scope must equal this.
    #[serde(default)]
    pub logger: Option<String>,
    /// Minimum level (`debug`, `info`, `warn`, `error`).
    #[serde(default)]
    pub level_min: Option<String>,
    /// Access rows: response code must be one of these.
    #[serde(default)]
    pub code: Vec<u16>,
    /// Access rows: at least one of these flags.
    #[serde(default)]
    pub flags_any: Vec<String>,
    /// Access rows: all of these flags.
    #[serde(default)]
    pub flags_all: Vec<String>,
    /// Access rows: only TCP rows (`true`) or only HTTP rows (`false`).
    #[serde(default)]
    pub tcp: Option<bool>,
    /// Access rows: duration at least this many ms.
    #[serde(default)]
    pub duration_ms_min: Option<u64>,
    /// Access rows: duration at most this many ms.
    #[serde(default)]
    pub duration_ms_max: Option<u64>,
    /// App records: error class must be one of these (`connection-reset`, ...).
    #[serde(default)]
    pub class: Vec<String>,
}

/// A set of validated rules, in load order (built-ins first, then user files; a user rule
/// with a built-in's id replaces it).
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    /// The rules.
    pub rules: Vec<Rule>,
}

/// Why a rule file was rejected.
#[derive(Debug)]
pub struct RuleError {
    /// File the rule came from.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for RuleError {}

impl RuleSet {
    /// The embedded rules.
    ///
    /// # Errors
    /// A built-in file does not parse or validate (a build defect; tests catch it).
    pub fn builtin() -> Result<Self, RuleError> {
        let mut set = RuleSet::default();
        for (name, text) in BUILTIN_RULE_FILES {
            set.add(parse_rule(name, text)?);
        }
        Ok(set)
    }

    /// Add rules from a file (one rule per file) or from every `*.toml` in a directory.
    ///
    /// # Errors
    /// The path cannot be read, or a rule does not parse or validate.
    pub fn load_path(&mut self, path: &Path) -> Result<usize, RuleError> {
        let err = |message: String| RuleError {
            file: path.display().to_string(),
            message,
        };
        let mut files = Vec::new();
        if path.is_dir() {
            let rd = std::fs::read_dir(path).map_err(|e| err(e.to_string()))?;
            for entry in rd.filter_map(Result::ok) {
                let p = entry.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    files.push(p);
                }
            }
            files.sort();
        } else {
            files.push(path.to_path_buf());
        }
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|e| RuleError {
                file: file.display().to_string(),
                message: e.to_string(),
            })?;
            self.add(parse_rule(&file.display().to_string(), &text)?);
        }
        Ok(files.len())
    }

    /// Add one rule, replacing a rule with the same id.
    pub fn add(&mut self, rule: Rule) {
        match self.rules.iter_mut().find(|r| r.id == rule.id) {
            Some(existing) => *existing = rule,
            None => self.rules.push(rule),
        }
    }
}

/// Parse and validate one rule file.
///
/// # Errors
/// TOML syntax, unknown keys, or a failed check (see [`validate`]).
pub fn parse_rule(file: &str, text: &str) -> Result<Rule, RuleError> {
    let rule: Rule = toml::from_str(text).map_err(|e| RuleError {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    validate(&rule).map_err(|message| RuleError {
        file: file.to_string(),
        message: format!("rule `{}`: {message}", rule.id),
    })?;
    Ok(rule)
}

/// A rule pattern's regex, compiled once per process: validating a rule compiles it, and
/// the collector needs the same regex again (compiling each twice was a third of the time
/// `diagnose` spends before reading).
pub(crate) fn compile_regex(re: &str) -> Result<regex::Regex, regex::Error> {
    static COMPILED: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, regex::Regex>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut compiled = COMPILED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = compiled.get(re) {
        return Ok(r.clone());
    }
    let r = regex::Regex::new(re)?;
    compiled.insert(re.to_string(), r.clone());
    Ok(r)
}

/// Check a rule: kebab-case id, weights, at least one anchor, known signals, valid
/// patterns and version ranges.
///
/// # Errors
/// What is wrong, in words.
pub fn validate(rule: &Rule) -> Result<(), String> {
    if rule.id.is_empty()
        || !rule
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || rule.id.starts_with('-')
        || rule.id.ends_with('-')
    {
        return Err("id must be kebab-case (a-z, 0-9, -)".into());
    }
    if rule.evidence.is_empty() {
        return Err("no evidence items".into());
    }
    if !rule.evidence.iter().any(|e| e.anchor && e.weight > 0.0) {
        return Err("needs at least one positive evidence item with anchor = true".into());
    }
    if rule.fix.is_empty() || rule.verify.is_empty() {
        return Err("fix and verify must each have at least one step".into());
    }
    let mut pattern_ids = BTreeSet::new();
    for p in &rule.patterns {
        if !pattern_ids.insert(p.id.as_str()) {
            return Err(format!("pattern id `{}` used twice", p.id));
        }
        check_pattern(p).map_err(|m| format!("pattern `{}`: {m}", p.id))?;
    }
    for e in &rule.evidence {
        if !(e.weight.is_finite() && e.weight != 0.0 && (-1.0..=1.0).contains(&e.weight)) {
            return Err(format!(
                "signal `{}`: weight must be in -1..=1 and not 0",
                e.signal
            ));
        }
        if e.anchor && e.weight < 0.0 {
            return Err(format!("signal `{}`: an anchor must be positive", e.signal));
        }
        if let Some(local) = e.signal.strip_prefix("pattern.") {
            if !pattern_ids.contains(local) {
                return Err(format!("evidence refers to unknown pattern `{local}`"));
            }
        } else {
            signals::check_name(&e.signal)?;
        }
        if let Some(r) = &e.istio {
            VersionRange::parse(r).ok_or_else(|| format!("bad istio range `{r}`"))?;
        }
        if let Some(rate) = e.min_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!("signal `{}`: min_rate must be in 0..=1", e.signal));
        }
    }
    for v in &rule.fix_variants {
        VersionRange::parse(&v.istio).ok_or_else(|| format!("bad istio range `{}`", v.istio))?;
        if v.fix.is_empty() {
            return Err(format!("fix_variant `{}` has no fix steps", v.istio));
        }
    }
    Ok(())
}

/// Fields each family allows in a pattern.
pub const PATTERN_FIELDS: &[(&str, &[&str])] = &[
    ("envoy-debug", &["message", "logger"]),
    (
        "envoy-access",
        &[
            "response_code_details",
            "connection_termination_details",
            "upstream_transport_failure_reason",
            "upstream_cluster",
            "upstream_host",
            "route_name",
            "requested_server_name",
            "authority",
            "path",
            "method",
            "user_agent",
            "downstream_remote_address",
            "downstream_local_address",
        ],
    ),
    (
        "app-log",
        &["message", "root_cause", "stack_trace", "logger", "any"],
    ),
    ("proxy-agent", &["message", "scope"]),
    ("linkerd-proxy", &["message", "scope"]),
];

/// The family named in a pattern.
#[must_use]
pub fn family_of(name: &str) -> Option<Family> {
    Family::ALL.into_iter().find(|f| f.as_str() == name)
}

fn check_pattern(p: &Pattern) -> Result<(), String> {
    let fields = PATTERN_FIELDS
        .iter()
        .find(|(f, _)| *f == p.family)
        .map(|(_, fields)| *fields)
        .ok_or_else(|| format!("unknown family `{}`", p.family))?;
    if let Some(field) = &p.field
        && !fields.contains(&field.as_str())
    {
        return Err(format!(
            "family `{}` has no field `{field}` (fields: {})",
            p.family,
            fields.join(", ")
        ));
    }
    if let Some(re) = &p.regex {
        compile_regex(re).map_err(|e| format!("regex: {e}"))?;
    }
    for f in p.flags_any.iter().chain(&p.flags_all) {
        if ResponseFlags::flag(f).is_none() {
            return Err(format!("unknown response flag `{f}`"));
        }
    }
    if let Some(l) = &p.level_min
        && Severity::parse(l).is_none()
    {
        return Err(format!("unknown level `{l}`"));
    }
    for c in &p.class {
        if !signals::ERROR_CLASSES.contains(&c.as_str()) {
            return Err(format!("unknown error class `{c}`"));
        }
    }
    let access_only = !p.code.is_empty()
        || !p.flags_any.is_empty()
        || !p.flags_all.is_empty()
        || p.tcp.is_some()
        || p.duration_ms_min.is_some()
        || p.duration_ms_max.is_some();
    if access_only && p.family != "envoy-access" {
        return Err("code/flags/tcp/duration conditions need family = \"envoy-access\"".into());
    }
    if !p.class.is_empty() && p.family != "app-log" {
        return Err("class needs family = \"app-log\"".into());
    }
    let has_condition =
        p.contains.is_some() || p.regex.is_some() || access_only || !p.class.is_empty();
    if !has_condition {
        return Err("needs at least one of contains, regex, code, flags, duration, class".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_load_and_validate() {
        let set = RuleSet::builtin().expect("built-in rules are valid");
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
        assert!(ids.contains(&"protocol-sniffing-timeout"), "{ids:?}");
        assert!(ids.contains(&"mtls-strict-plaintext-client"), "{ids:?}");
        for (name, _) in BUILTIN_RULE_FILES {
            let stem = name.trim_end_matches(".toml");
            assert!(ids.contains(&stem), "file {name} must hold rule `{stem}`");
        }
    }

    #[test]
    fn rejects_unknown_signal_and_bad_weight() {
        let base = r#"
id = "x-y"
title = "t"
summary = "s"
mechanism = "m"
fix = ["f"]
verify = ["v"]
[[evidence]]
signal = "SIGNAL"
weight = WEIGHT
anchor = true
means = "m"
"#;
        let bad_signal = base
            .replace("SIGNAL", "journey.no_such_thing")
            .replace("WEIGHT", "0.5");
        assert!(parse_rule("t", &bad_signal).is_err());
        let bad_weight = base
            .replace("SIGNAL", "journey.no_filter_chain")
            .replace("WEIGHT", "1.5");
        assert!(parse_rule("t", &bad_weight).is_err());
        let ok = base
            .replace("SIGNAL", "access.flag:UC")
            .replace("WEIGHT", "0.5");
        assert!(parse_rule("t", &ok).is_ok());
        let bad_flag = base
            .replace("SIGNAL", "access.flag:ZZ")
            .replace("WEIGHT", "0.5");
        assert!(parse_rule("t", &bad_flag).is_err());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_patterns() {
        let text = r#"
id = "a-b"
title = "t"
summary = "s"
mechanism = "m"
fix = ["f"]
verify = ["v"]
typo_key = 1
[[evidence]]
signal = "journey.no_filter_chain"
weight = 0.5
anchor = true
means = "m"
"#;
        assert!(parse_rule("t", text).is_err());
        let pat = r#"
id = "a-b"
title = "t"
summary = "s"
mechanism = "m"
fix = ["f"]
verify = ["v"]
[[pattern]]
id = "p"
family = "app-log"
code = [503]
[[evidence]]
signal = "pattern.p"
weight = 0.5
anchor = true
means = "m"
"#;
        let e = parse_rule("t", pat).expect_err("code needs envoy-access");
        assert!(e.message.contains("envoy-access"), "{e}");
    }
}
