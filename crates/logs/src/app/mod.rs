//! Application logs: JSON lines, text with multi-line stack traces, and the network errors they report.
//!
//! PLACEHOLDER: parsers land in the next commit; until then no record is claimed.

use crate::Parsed;
use meshdoctor_model::SkipReason;

/// Parse an application text record (header plus continuation lines). `None` when it is not such a line.
#[must_use]
pub fn parse_text(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let _ = record;
    None
}

/// Parse an application JSON record. `None` when it is not such a line.
#[must_use]
pub fn parse_json(record: &str) -> Option<Result<Parsed<'_>, SkipReason>> {
    let _ = record;
    None
}
