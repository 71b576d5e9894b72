//! Configuration backward-compatibility checks, in both directions.
//!
//! A deploy must be undoable by putting the old code back, with no configuration revert.
//! So a configuration change is judged twice:
//!
//! - **rollback**: old code reading the new configuration (Confluent's FORWARD);
//! - **mixed fleet**: new code reading the old configuration, as a canary does (BACKWARD).
//!
//! Both together are FULL compatibility. [`check`] compares two loaded [`Config`]s; without
//! schemas it judges by structure and the types of the values, with the JSON Schemas of the
//! old and new code ([`Schemas`]) each code version's schema is the judge.
//!
//! ```no_run
//! use compat::{check, load, Ignores, Source};
//! let old = load(&Source::parse("git:HEAD~1:config/app.yaml")?, None)?;
//! let new = load(&Source::parse("config/app.yaml")?, None)?;
//! let report = check(&old, &new, None, &Ignores::default());
//! if !report.is_compatible() {
//!     eprint!("{}", report.to_text());
//! }
//! # Ok::<(), compat::LoadError>(())
//! ```
//!
//! # Invariants
//! - This crate never talks to AWS: SSM parameters come through [`ParameterSource`].
//! - Nothing here prints; reports render to strings.
//! - Secret values are never kept: only their SHA-256 digest.
//! - Every value knows its file, line and column; parsers never panic and refuse files over
//!   [`parse::MAX_BYTES`].
//!
//! # Rules
//!
//! Findings have a level: `error` fails the gate, `warn` is shown. Levels depend on evidence:
//! a schema-to-schema change is an error when the configuration at hand is affected, and a
//! warning otherwise (another environment's configuration may be).
//!
#![doc = include_str!("../RULES.md")]

pub mod check;
pub mod error;
pub mod ignore;
pub mod parse;
pub mod report;
pub mod rules;
pub mod schema;
pub mod source;
pub mod value;

pub use check::check;
pub use error::{IgnoreError, LoadError, SchemaError};
pub use ignore::{IgnoreEntry, Ignores};
pub use parse::{parse, Format};
pub use report::{Finding, Report, Verdict};
pub use rules::{Direction, Level, Rule};
pub use schema::{Schema, Schemas};
pub use source::{load, load_both, Parameter, ParameterKind, ParameterSource, Source};
pub use value::{Config, Location, Node, Value};
