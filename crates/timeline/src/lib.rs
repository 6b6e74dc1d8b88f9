//! Failure signatures counted over time: the "connection resets per day per service" chart,
//! from raw files, and the before/after verdict that says whether a fix worked.
//!
//! * [`signature`] names failures that mean the same thing across languages and proxies
//!   (`connection-reset`, `reset-before-headers`, `status:503`, ...) as a predicate over
//!   [`meshdoctor_model::Event`] plus the literals any matching record must contain, so a
//!   reader can skip records without them before parsing.
//! * [`bucket`] cuts time into buckets (`1d`, `1h`, `5m`) in UTC or a named time zone.
//! * [`count`] is the [`meshdoctor_logs::Sink`] that counts matches (and, optionally,
//!   requests from access rows) per bucket and group, in memory bounded by the number of
//!   distinct buckets × groups, never by input size.
//! * [`stats`] and [`verify`] compare two periods with an exact rate-ratio test.
//! * [`render`] and [`svg`] turn counts into text tables, terminal bars, CSV, JSON and SVG.
//!
//! This crate does not read files (the pipeline does), does not print, and does not
//! diagnose causes.

pub mod bucket;
pub mod count;
pub mod render;
pub mod signature;
pub mod stats;
pub mod svg;
pub mod verify;

pub use bucket::{BucketSpec, Bucketer, Unit, parse_instant};
pub use count::{CountOptions, CountSink, Counts, Dim, Row};
pub use signature::{Prefilter, Signature, SignatureError};
pub use svg::chart_over;
pub use verify::{PairResult, Verdict, VerifyReport};
