//! Envoy's own log lines in every istio-proxy layout, and pilot-agent lines.
//!
//! PLACEHOLDER: parsers land in the next commit; until then no record is claimed.

use crate::Parsed;
use meshdoctor_model::SkipReason;

/// Parse an Envoy or pilot-agent text record. `None` when it is not such a line.
#[must_use]
pub fn parse_text(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let _ = record;
    None
}

/// Parse an Envoy or pilot-agent JSON record. `None` when it is not such a line.
#[must_use]
pub fn parse_json(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let _ = record;
    None
}
