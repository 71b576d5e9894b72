//! Parsers for YAML, JSON, TOML and `.env`, keeping the location of every value.
//!
//! [`parse`] is the single entry point; it never panics on any input (a property test feeds
//! it arbitrary and mutated bytes).

use std::sync::Arc;

use crate::error::LoadError;
use crate::value::{Config, Key, Location, Node, SecretDigest, Storage, Value};

/// Files above this size are refused before they are read.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Deeper nesting is refused (it is never a real configuration, and keeps recursion bounded).
pub const MAX_DEPTH: usize = 64;
/// YAML aliases may not expand a document past this many values.
pub const MAX_NODES: usize = 1_000_000;

/// The format of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
    Env,
}

impl Format {
    /// The format a file name says: `.yaml`/`.yml`, `.json`, `.toml`, `.env` (or a file named
    /// `.env` / `.env.<something>`).
    pub fn from_path(path: &str) -> Option<Format> {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        if lower == ".env" || lower.starts_with(".env.") || lower.ends_with(".env") {
            return Some(Format::Env);
        }
        match lower.rsplit_once('.').map(|(_, ext)| ext) {
            Some("yaml" | "yml") => Some(Format::Yaml),
            Some("json") => Some(Format::Json),
            Some("toml") => Some(Format::Toml),
            _ => None,
        }
    }
}

/// Parses `bytes` as `format`; `label` names the source in locations and errors.
pub fn parse(bytes: &[u8], format: Format, label: &str) -> Result<Config, LoadError> {
    let file: Arc<str> = Arc::from(label);
    if bytes.len() as u64 > MAX_BYTES {
        return Err(LoadError::TooLarge {
            file: label.to_string(),
            size: bytes.len() as u64,
            limit: MAX_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(bytes, e.valid_up_to());
        LoadError::NotUtf8 {
            location: Location::new(&file, line, column),
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = match format {
        Format::Yaml => yaml(text, &file)?,
        Format::Json => json(text, &file)?,
        Format::Toml => toml(text, &file)?,
        Format::Env => env(text, &file)?,
    };
    if !matches!(root.value, Value::Map(_)) {
        return Err(LoadError::NotAMap {
            location: root.location.clone(),
            found: root.kind().name().to_string(),
        });
    }
    let mut root = root;
    mark_secret_references(&mut root);
    Ok(Config {
        root,
        source: label.to_string(),
        typed: format != Format::Env,
    })
}

/// Line and column (from 1; the column counts characters) of a byte offset.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Strings that are references into secret storage are stored as secrets.
fn mark_secret_references(node: &mut Node) {
    match &mut node.value {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with("{{resolve:secretsmanager:")
                || t.starts_with("{{resolve:ssm-secure:")
                || t.starts_with("arn:aws:secretsmanager:")
            {
                node.storage = Storage::Secret;
            }
        }
        Value::List(items) => items.iter_mut().for_each(mark_secret_references),
        Value::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| mark_secret_references(v)),
        _ => {}
    }
}

/// Builds a map, refusing duplicate keys.
fn push_entry(entries: &mut Vec<(Key, Node)>, key: Key, value: Node) -> Result<(), LoadError> {
    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == key.name) {
        return Err(LoadError::DuplicateKey {
            key: key.name,
            location: key.location,
            first: first.location.clone(),
        });
    }
    entries.push((key, value));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// YAML (and JSON positions) through yaml-rust2's event parser.

mod yaml_events {
    use super::*;
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::{Marker, TScalarStyle};
    use yaml_rust2::Yaml;

    enum Frame {
        List(Location, Vec<Node>),
        Map(Location, Vec<(Key, Node)>, Option<Key>),
    }

    struct Builder<'f> {
        file: &'f Arc<str>,
        stack: Vec<Frame>,
        anchors: Vec<(usize, Node)>,
        pending_anchor: Vec<usize>,
        root: Option<Node>,
        documents: usize,
        nodes: usize,
        error: Option<LoadError>,
    }

    fn count(node: &Node) -> usize {
        match &node.value {
            Value::List(items) => 1 + items.iter().map(count).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, v)| count(v)).sum::<usize>(),
            _ => 1,
        }
    }

    impl Builder<'_> {
        fn loc(&self, mark: Marker) -> Location {
            Location::new(self.file, mark.line(), mark.col() + 1)
        }

        fn fail(&mut self, error: LoadError) {
            if self.error.is_none() {
                self.error = Some(error);
            }
        }

        fn anchor(&mut self, id: usize, node: &Node) {
            if id > 0 {
                self.anchors.push((id, node.clone()));
            }
        }

        /// Adds a finished value to the enclosing collection (or makes it the root).
        fn add(&mut self, node: Node, mark: Marker) {
            self.nodes += count(&node);
            if self.nodes > MAX_NODES {
                let location = self.loc(mark);
                self.fail(LoadError::Syntax {
                    location,
                    message: format!("more than {MAX_NODES} values (alias expansion?)"),
                });
                return;
            }
            match self.stack.last_mut() {
                None => {
                    self.documents += 1;
                    if self.root.is_none() {
                        self.root = Some(node);
                    }
                }
                Some(Frame::List(_, items)) => items.push(node),
                Some(Frame::Map(_, entries, pending)) => match pending.take() {
                    None => match &node.value {
                        Value::String(s) => {
                            *pending = Some(Key {
                                name: s.clone(),
                                location: node.location.clone(),
                            })
                        }
                        Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Null => {
                            *pending = Some(Key {
                                name: scalar_text(&node.value),
                                location: node.location.clone(),
                            })
                        }
                        _ => {
                            let location = node.location.clone();
                            self.fail(LoadError::Syntax {
                                location,
                                message: "a map key must be a plain value, not a list or map"
                                    .into(),
                            })
                        }
                    },
                    Some(key) => {
                        if let Err(e) = push_entry(entries, key, node) {
                            self.fail(e);
                        }
                    }
                },
            }
        }
    }

    fn scalar_text(v: &Value) -> String {
        match v {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            _ => String::new(),
        }
    }

    impl MarkedEventReceiver for Builder<'_> {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            if self.error.is_some() {
                return;
            }
            match ev {
                Event::Scalar(text, style, anchor, tag) => {
                    let as_str = style != TScalarStyle::Plain
                        || tag.as_ref().is_some_and(|t| t.suffix == "str");
                    let value = if as_str {
                        Value::String(text)
                    } else {
                        match Yaml::from_str(&text) {
                            Yaml::Integer(i) => Value::Int(i),
                            Yaml::Real(r) => match r.parse::<f64>() {
                                Ok(f) => Value::Float(f),
                                Err(_) => match r.as_str() {
                                    ".inf" | ".Inf" | ".INF" | "+.inf" => {
                                        Value::Float(f64::INFINITY)
                                    }
                                    "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
                                    _ => Value::Float(f64::NAN),
                                },
                            },
                            Yaml::Boolean(b) => Value::Bool(b),
                            Yaml::Null => Value::Null,
                            _ => Value::String(text),
                        }
                    };
                    let node = Node::new(value, self.loc(mark));
                    self.anchor(anchor, &node);
                    self.add(node, mark);
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if self.stack.len() >= MAX_DEPTH {
                        let location = self.loc(mark);
                        self.fail(LoadError::TooDeep {
                            location,
                            limit: MAX_DEPTH,
                        });
                        return;
                    }
                    self.pending_anchor.push(anchor);
                    let loc = self.loc(mark);
                    self.stack.push(if matches!(ev, Event::SequenceStart(..)) {
                        Frame::List(loc, Vec::new())
                    } else {
                        Frame::Map(loc, Vec::new(), None)
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let anchor = self.pending_anchor.pop().unwrap_or(0);
                    let node = match self.stack.pop() {
                        Some(Frame::List(loc, items)) => Node::new(Value::List(items), loc),
                        Some(Frame::Map(loc, entries, _)) => Node::new(Value::Map(entries), loc),
                        None => return,
                    };
                    // The node was counted value by value as it was built.
                    self.nodes = self.nodes.saturating_sub(count(&node));
                    self.anchor(anchor, &node);
                    self.add(node, mark);
                }
                Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                    Some((_, node)) => {
                        let node = node.clone();
                        self.add(node, mark);
                    }
                    None => {
                        let location = self.loc(mark);
                        self.fail(LoadError::Syntax {
                            location,
                            message: "alias to an unknown anchor".into(),
                        });
                    }
                },
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart
                | Event::DocumentEnd
                | Event::Nothing => {}
            }
        }
    }

    pub(super) fn parse(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
        let mut builder = Builder {
            file,
            stack: Vec::new(),
            anchors: Vec::new(),
            pending_anchor: Vec::new(),
            root: None,
            documents: 0,
            nodes: 0,
            error: None,
        };
        let mut parser = Parser::new_from_str(text);
        if let Err(e) = parser.load(&mut builder, true) {
            return Err(LoadError::Syntax {
                location: Location::new(file, e.marker().line(), e.marker().col() + 1),
                message: e.info().to_string(),
            });
        }
        if let Some(e) = builder.error {
            return Err(e);
        }
        if builder.documents > 1 {
            return Err(LoadError::Syntax {
                location: Location::new(file, 1, 1),
                message: format!(
                    "{} YAML documents; a configuration is one document",
                    builder.documents
                ),
            });
        }
        Ok(builder.root.unwrap_or_else(|| {
            // An empty file is an empty configuration.
            Node::new(Value::Map(Vec::new()), Location::new(file, 1, 1))
        }))
    }
}

fn yaml(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    yaml_events::parse(text, file)
}

/// JSON: serde_json checks the syntax strictly (with its line and column on error); the tree
/// with locations comes from the YAML event parser, JSON being a subset of YAML 1.2.
fn json(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_string();
        return Err(LoadError::Syntax {
            location: Location::new(file, e.line().max(1), e.column().max(1)),
            message,
        });
    }
    yaml_events::parse(text, file)
}

// ---------------------------------------------------------------------------------------
// TOML through toml's spanned document parser.

fn toml(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    use toml::de::{DeTable, DeValue};
    use toml::Spanned;

    // Bound nesting before the parser recurses into it.
    let mut depth = 0usize;
    let mut max = 0usize;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_DEPTH {
        return Err(LoadError::TooDeep {
            location: Location::new(file, 1, 1),
            limit: MAX_DEPTH,
        });
    }

    let bytes = text.as_bytes();
    let loc = |offset: usize| {
        let (line, column) = line_col(bytes, offset);
        Location::new(file, line, column)
    };
    let table = DeTable::parse(text).map_err(|e| LoadError::Syntax {
        location: loc(e.span().map_or(0, |s| s.start)),
        message: e.message().trim().to_string(),
    })?;

    fn convert(
        v: &Spanned<DeValue<'_>>,
        loc: &dyn Fn(usize) -> Location,
    ) -> Result<Node, LoadError> {
        let location = loc(v.span().start);
        let value = match v.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let parsed = i64::from_str_radix(
                    digits
                        .trim_start_matches("0x")
                        .trim_start_matches("0o")
                        .trim_start_matches("0b"),
                    i.radix(),
                );
                match parsed {
                    Ok(n) => Value::Int(n),
                    Err(_) => {
                        return Err(LoadError::Syntax {
                            location,
                            message: format!("integer `{}` is out of range", i.as_str()),
                        })
                    }
                }
            }
            DeValue::Float(f) => {
                let t = f.as_str().replace('_', "");
                Value::Float(match t.as_str() {
                    "inf" | "+inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    "nan" | "+nan" | "-nan" => f64::NAN,
                    other => other.parse().unwrap_or(f64::NAN),
                })
            }
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => Value::List(
                items
                    .iter()
                    .map(|item| convert(item, loc))
                    .collect::<Result<_, _>>()?,
            ),
            DeValue::Table(t) => Value::Map(table_entries(t, loc)?),
        };
        Ok(Node::new(value, location))
    }

    fn table_entries(
        t: &DeTable<'_>,
        loc: &dyn Fn(usize) -> Location,
    ) -> Result<Vec<(Key, Node)>, LoadError> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        for (k, v) in t.iter() {
            let key = Key {
                name: k.get_ref().to_string(),
                location: loc(k.span().start),
            };
            push_entry(&mut entries, key, convert(v, loc)?)?;
        }
        entries.sort_by_key(|(k, _)| (k.location.line, k.location.column));
        Ok(entries)
    }

    let entries = table_entries(table.get_ref(), &loc)?;
    Ok(Node::new(Value::Map(entries), Location::new(file, 1, 1)))
}

// ---------------------------------------------------------------------------------------
// .env: `KEY=value` lines, `#` comments, optional `export `, single or double quotes.

fn env(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    let mut entries: Vec<(Key, Node)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (line, offset) = match line.strip_prefix("export ") {
            Some(rest) => (
                rest.trim_start(),
                indent + (line.len() - rest.trim_start().len()),
            ),
            None => (line, indent),
        };
        let col = |byte: usize| raw[..(offset + byte).min(raw.len())].chars().count() + 1;
        let err = |byte: usize, message: String| LoadError::Syntax {
            location: Location::new(file, line_no, col(byte)),
            message,
        };
        let Some(eq) = line.find('=') else {
            return Err(err(0, "expected KEY=value".into()));
        };
        let name = line[..eq].trim_end();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(err(0, format!("`{name}` is not a valid variable name")));
        }
        let after = &line[eq + 1..];
        let lead = after.len() - after.trim_start().len();
        let value_start = eq + 1 + lead;
        let rest = after.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            match body.find('\'') {
                Some(end) => body[..end].to_string(),
                None => return Err(err(value_start, "unterminated single quote".into())),
            }
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = body.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some(other) => out.push(other),
                        None => break,
                    },
                    other => out.push(other),
                }
            }
            if !closed {
                return Err(err(value_start, "unterminated double quote".into()));
            }
            out
        } else {
            let v = match rest.find(" #") {
                Some(p) => &rest[..p],
                None => rest,
            };
            v.trim_end().to_string()
        };
        let key = Key {
            name: name.to_string(),
            location: Location::new(file, line_no, col(0)),
        };
        let node = Node::new(
            Value::String(value),
            Location::new(file, line_no, col(value_start)),
        );
        push_entry(&mut entries, key, node)?;
    }
    Ok(Node::new(Value::Map(entries), Location::new(file, 1, 1)))
}

/// A secret value, kept only as its digest.
pub(crate) fn secret_node(value: &str, location: Location) -> Node {
    Node {
        value: Value::Secret(SecretDigest::of(value)),
        location,
        storage: Storage::Secret,
    }
}
