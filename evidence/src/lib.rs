//! The evidence of a canary bake: the record of what the judge saw and concluded at every look
//! ([`record`]), the reports rendered from it ([`render`](mod@render): text, markdown, JSON and a
//! self-contained HTML page with charts), and the export of its observations in
//! `gatekeeper judge`'s input format ([`export`]), so anyone can replay the decision.
//!
//! Invariant: pure. No AWS SDK, no async runtime, no I/O: the canary crate writes the record
//! into the run's journal, the CLI reads it back and writes what these functions return.

pub mod export;
pub mod record;
pub mod render;

pub use record::{BakeRecord, Entry, Look};
pub use render::{render, Format};
