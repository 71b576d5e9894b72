//! Errors, each naming what the user can fix.

use crate::value::Location;

/// A configuration source could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes is over the {limit}-byte limit for a configuration file")]
    TooLarge { file: String, size: u64, limit: u64 },
    #[error("{location}: not valid UTF-8 (configuration files must be UTF-8)")]
    NotUtf8 { location: Location },
    #[error("{location}: {message}")]
    Syntax { location: Location, message: String },
    #[error("{location}: duplicate key `{key}` (first defined at {first})")]
    DuplicateKey {
        key: String,
        location: Location,
        first: Location,
    },
    #[error("{location}: nesting deeper than {limit} levels")]
    TooDeep { location: Location, limit: usize },
    #[error("{location}: the top level must be a map of keys, found {found}")]
    NotAMap { location: Location, found: String },
    #[error("{file}: cannot tell the format from the name; use .yaml, .yml, .json, .toml or .env")]
    UnknownFormat { file: String },
    #[error("{spec}: git show failed: {message}")]
    Git { spec: String, message: String },
    #[error("{spec}: {message}")]
    Ssm { spec: String, message: String },
}

/// A JSON Schema file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{file}: not a valid JSON Schema (draft 2020-12): {message}")]
    Invalid { file: String, message: String },
}

/// An ignore file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{location}: {message}")]
    Entry { location: Location, message: String },
}
