//! One `gatekeeper.toml` document: read once, every section a typed view, errors located by
//! the parser.
//!
//! A [`Document`] holds the file's text and, from one parse, the span of every key in it.
//! Each crate reads its own sections as a typed view ([`Document::view`]); a view that fails
//! names the exact path of the key at fault (`queues[1].name`, from `serde_path_to_error`) at
//! the place `toml` says (its span), never a guess from the surrounding lines. Sections no
//! view reads are refused when the document is parsed ([`SECTIONS`]), so a typo such as
//! `[canery]` is an error in every command, not only in those that read every section.
//! Validation after deserialization locates its errors with [`Document::error_at`].
//!
//! Every error reads `<file>:<line>:<col>: <key>: <message>`.
//!
//! The names derived from the configuration (the flag parameter, queues, alarms, the stack)
//! are made in one place, [`names`], which the rails stack, the canary preflight and
//! `iam-policy` all use.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub mod names;

/// The top-level keys of `gatekeeper.toml`, and the crate whose view reads each.
pub const SECTIONS: &[(&str, &str)] = &[
    ("service", "every view"),
    ("environment", "every view"),
    ("region", "stacks, canary"),
    ("stack", "stacks"),
    ("flag", "stacks, canary, maintenance"),
    ("buckets", "stacks"),
    ("queues", "stacks"),
    ("alarms", "stacks"),
    ("target_groups", "stacks"),
    ("canary", "canary"),
    ("maintenance", "maintenance"),
    ("state", "state"),
    ("pipeline", "pipelines"),
    ("notify", "canary"),
];

/// A configuration error, located in the text it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {}", file.display(), self.keyed_message())]
pub struct Error {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Path of the key at fault, when known (`queues[1].name`, `canary.deployer`).
    pub key: Option<String>,
    /// What is wrong, without the key.
    pub message: String,
}

impl Error {
    /// `<key>: <message>`, or the message alone when the key is not known.
    pub fn keyed_message(&self) -> String {
        match &self.key {
            Some(key) => format!("{key}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// A file that could not be read, or whose text is not a valid document.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] Error),
}

/// Where a key and its value are written.
#[derive(Debug, Clone)]
struct Place {
    key: Range<usize>,
    value: Range<usize>,
    /// A table (`[canary]`, an inline table, one of `[[queues]]`): errors point at its header.
    table: bool,
}

impl Place {
    /// Where an error about this key points: a table's header, else the value at fault.
    fn at(&self) -> usize {
        if self.table {
            self.key.start
        } else {
            self.value.start
        }
    }
}

/// The text of one `gatekeeper.toml` and where each of its keys is.
#[derive(Debug, Clone)]
pub struct Document {
    file: PathBuf,
    text: String,
    /// Every key's path (`canary.deployer.command`, `queues[1].name`) and place.
    places: BTreeMap<String, Place>,
}

impl Document {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Document, ReadError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Ok(Document::parse(path, text)?)
    }

    /// Parses `text`; `file` names it in errors. Refuses a syntax error and a top-level key
    /// that is not one of [`SECTIONS`].
    pub fn parse(file: &Path, text: impl Into<String>) -> Result<Document, Error> {
        let text = text.into();
        let mut document = Document {
            file: file.to_path_buf(),
            text,
            places: BTreeMap::new(),
        };
        let root = DeTable::parse(&document.text).map_err(|e| document.located_toml(&e, None))?;
        let mut places = BTreeMap::new();
        index_table(root.get_ref(), "", &mut places);
        document.places = places;
        for (key, _) in root.get_ref() {
            if !SECTIONS
                .iter()
                .any(|(name, _)| *name == key.get_ref().as_ref())
            {
                let known: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
                let (line, column) = line_col(&document.text, key.span().start);
                return Err(Error {
                    file: document.file.clone(),
                    line,
                    column,
                    key: Some(key.get_ref().to_string()),
                    message: format!(
                        "unknown section `{}`; gatekeeper.toml has {}",
                        key.get_ref(),
                        known.join(", ")
                    ),
                });
            }
        }
        Ok(document)
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `path` is written in the document (`canary.judge`, `queues[0].fifo`).
    pub fn contains(&self, path: &str) -> bool {
        self.places.contains_key(path)
    }

    /// The span of `path`'s key (its header for a table), when it is written.
    pub fn key_span(&self, path: &str) -> Option<Range<usize>> {
        self.places.get(path).map(|p| p.key.clone())
    }

    /// The span of `path`'s value, when it is written.
    pub fn value_span(&self, path: &str) -> Option<Range<usize>> {
        self.places.get(path).map(|p| p.value.clone())
    }

    /// Reads the document as `T`. A key that does not fit is named by its path and located
    /// where the parser found it.
    pub fn view<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let deserializer =
            toml::Deserializer::parse(&self.text).map_err(|e| self.located_toml(&e, None))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = key_path(e.path());
            self.located_toml(e.inner(), Some(path))
        })
    }

    /// An error about `path` (`canary.canary_weight`), located at its value (a table: at its
    /// header); at the nearest enclosing table that is written when the key itself is not;
    /// else at 1:1.
    pub fn error_at(&self, path: &str, message: impl Display) -> Error {
        let offset = self.nearest(path).map(Place::at);
        self.error(offset, Some(path.to_string()), message.to_string())
    }

    /// The place of `path`, or of its nearest written ancestor.
    fn nearest(&self, path: &str) -> Option<&Place> {
        let mut path = path;
        loop {
            if let Some(place) = self.places.get(path) {
                return Some(place);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    fn error(&self, offset: Option<usize>, key: Option<String>, message: String) -> Error {
        let (line, column) = line_col(&self.text, offset.unwrap_or(0));
        Error {
            file: self.file.clone(),
            line,
            column,
            key,
            message,
        }
    }

    /// Locates a `toml` error; `path` is where deserialization stood (`.` at the top).
    fn located_toml(&self, e: &toml::de::Error, path: Option<String>) -> Error {
        let message = e.message().trim().to_string();
        let path = path.filter(|p| p != ".");
        let join = |field: &str| match &path {
            Some(p) => format!("{p}.{field}"),
            None => field.to_string(),
        };
        let key = if let Some(field) = quoted_after(&message, "missing field `") {
            Some(join(field))
        } else if let Some(field) = quoted_after(&message, "unknown field `") {
            match &path {
                Some(p) if p == field || p.ends_with(&format!(".{field}")) => Some(p.clone()),
                _ => Some(join(field)),
            }
        } else {
            path.clone()
        };
        // A missing top-level field has no place but the start of the file.
        let top_level_missing = path.is_none() && message.starts_with("missing field");
        let offset = if top_level_missing {
            None
        } else {
            e.span().filter(|s| s.end > 0).map(|s| s.start).or_else(|| {
                key.as_deref()
                    .and_then(|k| self.nearest(k))
                    .map(|p| p.key.start)
            })
        };
        self.error(offset, key, message)
    }
}

/// The path as written in the file: `queues[1].name`; `toml::Spanned`'s inner fields and enum
/// variants (a tagged table's `kind`) are not keys of the file. `.` when at the top.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => {}
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The text between `prefix` and the next backtick, when `message` starts with `prefix`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
}

fn index_table(table: &DeTable<'_>, prefix: &str, places: &mut BTreeMap<String, Place>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        index_value(value, &path, Some(key.span()), places);
    }
}

fn index_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    key: Option<Range<usize>>,
    places: &mut BTreeMap<String, Place>,
) {
    let key = key.unwrap_or_else(|| value.span());
    places.insert(
        path.to_string(),
        Place {
            key,
            value: value.span(),
            table: matches!(value.get_ref(), DeValue::Table(_)),
        },
    );
    match value.get_ref() {
        DeValue::Table(table) => index_table(table, path, places),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                index_value(item, &format!("{path}[{i}]"), None, places);
            }
        }
        _ => {}
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

/// `offset`, clamped to `text` and moved back to the start of the character it falls in.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests;
