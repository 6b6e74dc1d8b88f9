//! Diagnosis: per-connection journeys from sidecar debug logs, correlation of application
//! errors with sidecar events, and a knowledge base of root-cause rules that weigh
//! evidence into a ranked, honest verdict.
//!
//! Flow: [`collect::Collector`] is a [`meshdoctor_logs::Sink`] that keeps compact, bounded
//! facts while the pipeline reads; [`journey`] assembles connection journeys from them;
//! [`compare`] contrasts failing with succeeding journeys; [`engine`] computes signals and
//! scores the [`rules::RuleSet`] into a [`Diagnosis`]. This crate does no printing and no
//! argument parsing (that is `meshdoctor-report` and the cli).

pub mod rules;
pub mod signals;
pub mod version;

pub use rules::{Rule, RuleError, RuleSet};
pub use signals::{EvidenceLine, SignalResult};
pub mod collect;
pub mod compare;
pub mod config_signals;
pub mod engine;
pub mod journey;
pub mod lines;
mod prefilter;

pub use engine::{Diagnosis, Finding, analyse, compare_inputs, diagnose, evaluate};
