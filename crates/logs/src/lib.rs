//! Turns raw log bytes into typed events.
//!
//! [`pipeline::run`] reads inputs (in parallel ranges), cuts them into records
//! ([`record`]), removes collector wrappers ([`wrapper`]), routes each record to the parser
//! of its family ([`dispatch`]) — [`app`], [`envoy`], [`access`] — and hands events to a
//! [`pipeline::Sink`], while [`coverage`] counts every line that was used or skipped.
//!
//! Parsers never panic and never fail the run on bad input: a record they cannot use is a
//! [`meshdoctor_model::SkipReason`], counted and shown with its file and line. This crate
//! does not interpret events (no diagnosis, no counting by signature) and does no output.

pub mod access;
pub mod app;
pub mod coverage;
pub mod dispatch;
pub mod envoy;
mod key_search;
pub mod pipeline;
pub mod record;
pub mod timestamp;
pub mod wrapper;

pub use coverage::FileCoverage;
pub use pipeline::{InputContext, NoSink, Prefilter, Progress, RunOptions, RunOutput, Sink, run};

pub use meshdoctor_model::Family;
use meshdoctor_model::{Origin, Payload, Timestamp};

/// What a family parser returns for one record; the pipeline adds the location.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed<'a> {
    /// The record's own time, in UTC.
    pub time: Option<Timestamp>,
    /// Names the record itself gives.
    pub origin: Origin<'a>,
    /// Typed content.
    pub payload: Payload<'a>,
}
