//! Envoy access log rows, text (every Istio default layout) and JSON.
//!
//! PLACEHOLDER: parsers land in the next commit; until then no record is claimed.

use crate::Parsed;
use meshdoctor_model::SkipReason;

/// Parse an access log text row. `None` when it is not such a line.
#[must_use]
pub fn parse_text(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let _ = record;
    None
}

/// Parse an access log JSON row. `None` when it is not such a line.
#[must_use]
pub fn parse_json(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let _ = record;
    None
}
