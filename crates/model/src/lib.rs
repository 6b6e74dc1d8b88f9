//! The shared vocabulary of meshdoctor.
//!
//! Every other crate speaks in these types: a [`Timestamp`] is UTC nanoseconds, a
//! [`Location`] names a file and line, an [`Event`] is one parsed log record with a typed
//! [`Payload`]. Payloads borrow from the input buffer (`'a`) so parsing does not allocate
//! per line; consumers that keep an event turn the parts they need into owned values.
//!
//! This crate does no I/O and no parsing of log text; it must stay small and dependency-free
//! apart from serde and jiff, because everything depends on it.

pub mod access;
pub mod app;
pub mod envoy;
pub mod event;
pub mod time;

pub use access::{AccessEntry, AccessFormat, ResponseFlags};
pub use app::{AppError, AppRecord, ErrorClass, Severity};
pub use envoy::{AgentKind, AgentLine, EnvoyLayout, EnvoyLine};
pub use event::{Event, Family, FileId, Location, Origin, Payload, SkipReason};
pub use time::Timestamp;
