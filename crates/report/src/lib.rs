//! Renders a diagnosis or a journey comparison as text for a terminal or as Markdown.
//!
//! Rendering only: no diagnosis logic, no I/O (callers pass a writer or take the string).
