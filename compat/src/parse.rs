//! Parsers for YAML, JSON, TOML and `.env`, keeping the location of every value.
//!
//! [`parse`] is the single entry point; it never panics on any input (a property test feeds
//! it arbitrary and mutated bytes).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::LoadError;
use crate::value::{Config, Key, Kind, Location, Map, Node, SecretDigest, Storage, Value};

/// Files above this size are refused before they are read.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Deeper nesting is refused (it is never a real configuration, and keeps recursion bounded).
pub const MAX_DEPTH: usize = 64;
/// YAML aliases may not add more than this many values to a document (the values written
/// out are bounded by [`MAX_BYTES`]).
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
    LineIndex::new(bytes).line_col(offset)
}

/// Byte offsets to lines and columns in O(log n) each: where every line starts, and how
/// many characters precede every [`LineIndex::BLOCK`]-byte block (for columns on long lines).
struct LineIndex<'a> {
    bytes: &'a [u8],
    line_starts: Vec<usize>,
    chars_before_block: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    const BLOCK: usize = 256;

    fn new(bytes: &'a [u8]) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut chars_before_block = Vec::with_capacity(bytes.len() / Self::BLOCK + 1);
        let mut chars = 0;
        for block in bytes.chunks(Self::BLOCK) {
            chars_before_block.push(chars);
            chars += count_chars(block);
        }
        LineIndex {
            bytes,
            line_starts,
            chars_before_block,
        }
    }

    /// Characters before byte `offset`.
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / Self::BLOCK;
        self.chars_before_block.get(block).copied().unwrap_or(0)
            + count_chars(&self.bytes[block * Self::BLOCK..offset])
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.bytes.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = if offset - start <= Self::BLOCK {
            count_chars(&self.bytes[start..offset])
        } else {
            self.chars_before(offset) - self.chars_before(start)
        };
        (line, column + 1)
    }
}

/// Characters in UTF-8 bytes (a cut sequence counts as one character per lead byte).
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
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
        Value::Map(entries) => entries.values_mut().for_each(mark_secret_references),
        _ => {}
    }
}

/// Builds a map, refusing duplicate keys.
fn push_entry(entries: &mut Map, key: Key, value: Node) -> Result<(), LoadError> {
    entries
        .insert(key, value)
        .map_err(|(key, first)| LoadError::DuplicateKey {
            key: key.name,
            location: key.location,
            first: entries[first].0.location.clone(),
        })
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
        Map(Location, Map, Option<Key>),
    }

    struct Builder<'f> {
        file: &'f Arc<str>,
        stack: Vec<Frame>,
        /// Anchored values and how many values each holds.
        anchors: HashMap<usize, (Node, usize)>,
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
                self.anchors.insert(id, (node.clone(), count(node)));
            }
        }

        /// Counts `values` more values an alias brings in, refusing more than [`MAX_NODES`].
        fn grow(&mut self, values: usize, mark: Marker) -> bool {
            self.nodes += values;
            if self.nodes > MAX_NODES {
                let location = self.loc(mark);
                self.fail(LoadError::Syntax {
                    location,
                    message: format!(
                        "aliases expand to more than {MAX_NODES} values (alias expansion)"
                    ),
                });
                return false;
            }
            true
        }

        /// Adds a finished value to the enclosing collection (or makes it the root).
        fn add(&mut self, node: Node) {
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
                    self.add(node);
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
                        Frame::Map(loc, Map::new(), None)
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let anchor = self.pending_anchor.pop().unwrap_or(0);
                    let node = match self.stack.pop() {
                        Some(Frame::List(loc, items)) => Node::new(Value::List(items), loc),
                        Some(Frame::Map(loc, entries, _)) => Node::new(Value::Map(entries), loc),
                        None => return,
                    };
                    self.anchor(anchor, &node);
                    self.add(node);
                }
                Event::Alias(id) => match self.anchors.get(&id) {
                    Some((node, values)) => {
                        let (node, values) = (node.clone(), *values);
                        if self.grow(values, mark) {
                            self.add(node);
                        }
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
            anchors: HashMap::new(),
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
            Node::new(Value::Map(Map::new()), Location::new(file, 1, 1))
        }))
    }
}

/// The kind of collection (list or map) `text` holds as JSON or YAML, if it holds one: a
/// flow collection (`[...]`, `{...}`) or a block one over several lines (`a: 1\nb: 2`). One
/// line of `key: value` text is not taken for a map.
pub(crate) fn collection_kind(text: &str) -> Option<Kind> {
    let t = text.trim();
    let flow = t.starts_with('[') || t.starts_with('{');
    if !flow && !t.contains('\n') {
        return None;
    }
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Array(_) => Some(Kind::List),
        serde_json::Value::Object(_) => Some(Kind::Map),
        _ => None,
    };
    if flow {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
            return kind(&v);
        }
    }
    let node = yaml_events::parse(t, &Arc::from("value")).ok()?;
    matches!(node.kind(), Kind::List | Kind::Map).then(|| node.kind())
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

    let bytes = text.as_bytes();
    let index = LineIndex::new(bytes);
    let loc = |offset: usize| {
        let (line, column) = index.line_col(offset);
        Location::new(file, line, column)
    };

    // Bound nesting before the parser recurses into it.
    if let Some(offset) = toml_too_deep(bytes) {
        return Err(LoadError::TooDeep {
            location: loc(offset),
            limit: MAX_DEPTH,
        });
    }

    let table = DeTable::parse(text).map_err(|e| {
        let location = loc(e.span().map_or(0, |s| s.start));
        match e.message().trim() {
            // The parser's own bound, reached by dotted keys before ours.
            "recursion limit" => LoadError::TooDeep {
                location,
                limit: MAX_DEPTH,
            },
            message => LoadError::Syntax {
                location,
                message: message.to_string(),
            },
        }
    })?;

    fn convert(
        v: &Spanned<DeValue<'_>>,
        loc: &dyn Fn(usize) -> Location,
        depth: usize,
    ) -> Result<Node, LoadError> {
        let location = loc(v.span().start);
        if depth > MAX_DEPTH {
            // Dotted keys and table headers nest without brackets.
            return Err(LoadError::TooDeep {
                location,
                limit: MAX_DEPTH,
            });
        }
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
                    .map(|item| convert(item, loc, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            DeValue::Table(t) => Value::Map(table_entries(t, loc, depth + 1)?),
        };
        Ok(Node::new(value, location))
    }

    fn table_entries(
        t: &DeTable<'_>,
        loc: &dyn Fn(usize) -> Location,
        depth: usize,
    ) -> Result<Map, LoadError> {
        let mut entries = Map::new();
        for (k, v) in t.iter() {
            let key = Key {
                name: k.get_ref().to_string(),
                location: loc(k.span().start),
            };
            push_entry(&mut entries, key, convert(v, loc, depth)?)?;
        }
        entries.sort_by_location();
        Ok(entries)
    }

    let entries = table_entries(table.get_ref(), &loc, 1)?;
    Ok(Node::new(Value::Map(entries), Location::new(file, 1, 1)))
}

/// Where TOML brackets (`[`, `{`) first nest deeper than [`MAX_DEPTH`], or `None`. Brackets
/// inside strings and comments do not count: the scan follows TOML's four string forms
/// (basic and literal, single- and multi-line) the way the parser's lexer does.
fn toml_too_deep(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    let starts = |i: usize, pat: &[u8]| bytes[i..].starts_with(pat);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if starts(i, b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !starts(i, b"\"\"\"") {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 3;
            }
            b'\'' if starts(i, b"'''") => {
                i += 3;
                while i < bytes.len() && !starts(i, b"'''") {
                    i += 1;
                }
                i += 3;
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if quote == b'"' && bytes[i] == b'\\' {
                        2
                    } else {
                        1
                    };
                }
                i += 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// .env: `KEY=value` lines, `#` comments, optional `export `, single or double quotes.

fn env(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    let mut entries = Map::new();
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
