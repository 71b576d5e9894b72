//! The evidence of a canary bake: the record of what the judge saw and concluded at every look
//! ([`record`]).
//!
//! Invariant: pure. No AWS SDK, no async runtime, no I/O.

pub mod record;

pub use record::{BakeRecord, Entry, Look};
