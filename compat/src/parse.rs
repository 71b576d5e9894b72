//! Parsers for YAML, JSON, TOML and `.env`, keeping the location of every value.
//!
//! [`parse`] is the single entry point; it never panics on any input (a property test feeds
//! it arbitrary and mutated bytes).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::LoadError;
use crate::value::{Config, Key, Kind, Location, Map, Names, Node, SecretDigest, Storage, Value};

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
    /// The line (index into `line_starts`) of the last lookup: parsers ask in document order
    /// or close to it, so the next offset is mostly on that line or the next one.
    last: std::cell::Cell<usize>,
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
            last: std::cell::Cell::new(0),
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
        // The number of line starts at or before `offset`: the last line or the next, else
        // a binary search.
        let starts = &self.line_starts;
        let on = |line: usize| {
            starts.get(line).is_some_and(|&s| s <= offset)
                && starts.get(line + 1).is_none_or(|&s| s > offset)
        };
        let last = self.last.get();
        let line = if on(last) {
            last + 1
        } else if on(last + 1) {
            last + 2
        } else {
            starts.partition_point(|&s| s <= offset)
        };
        self.last.set(line - 1);
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
            key: key.name.to_string(),
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
        names: Names,
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
                    None => {
                        let Node {
                            value, location, ..
                        } = node;
                        match value {
                            Value::String(name) => {
                                *pending = Some(Key {
                                    name: self.names.get(&name),
                                    location,
                                })
                            }
                            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Null => {
                                *pending = Some(Key {
                                    name: self.names.get(&scalar_text(&value)),
                                    location,
                                })
                            }
                            _ => self.fail(LoadError::Syntax {
                                location,
                                message: "a map key must be a plain value, not a list or map"
                                    .into(),
                            }),
                        }
                    }
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
                        plain_scalar(text)
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
            names: Names::default(),
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

/// The value of a plain (unquoted, untagged) YAML scalar, typed as yaml-rust2's
/// `Yaml::from_str` types it (YAML 1.2 core schema), without copying a string that stays one.
fn plain_scalar(text: String) -> Value {
    typed_scalar(&text).unwrap_or(Value::String(text))
}

/// `Some` when a plain scalar is a null, boolean or number; the same decisions, in the same
/// order, as yaml-rust2's `Yaml::from_str`.
fn typed_scalar(v: &str) -> Option<Value> {
    if let Some(number) = v.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(number, 16) {
            return Some(Value::Int(i));
        }
    } else if let Some(number) = v.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(number, 8) {
            return Some(Value::Int(i));
        }
    } else if let Some(number) = v.strip_prefix('+') {
        if let Ok(i) = number.parse::<i64>() {
            return Some(Value::Int(i));
        }
    }
    Some(match v {
        "" | "~" | "null" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = v.parse::<i64>() {
                Value::Int(i)
            } else if is_yaml_real(v) {
                Value::Float(match v.parse::<f64>() {
                    Ok(f) => f,
                    Err(_) => match v {
                        ".inf" | ".Inf" | ".INF" | "+.inf" => f64::INFINITY,
                        "-.inf" | "-.Inf" | "-.INF" => f64::NEG_INFINITY,
                        _ => f64::NAN,
                    },
                })
            } else {
                return None;
            }
        }
    })
}

/// Whether yaml-rust2 reads a plain scalar as a real number.
fn is_yaml_real(v: &str) -> bool {
    match v {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => true,
        _ => v.bytes().any(|b| b.is_ascii_digit()) && v.parse::<f64>().is_ok(),
    }
}

fn yaml(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    yaml_events::parse(text, file)
}

/// JSON: serde_json checks the syntax strictly (with its line and column on error); the tree
/// with locations is then read by [`json_tree`] from the text serde_json accepted. Values,
/// keys and locations are those the YAML event parser gives for the same text (JSON being a
/// subset of YAML 1.2; a test holds the two to the same trees), at a fraction of its cost.
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
    json_tree::parse(text, file)
}

/// The located tree of a JSON text that serde_json has already accepted: one pass, keeping
/// the line and column (in characters) of every value and key as it goes.
mod json_tree {
    use super::*;

    struct Reader<'t, 'f> {
        bytes: &'t [u8],
        text: &'t str,
        file: &'f Arc<str>,
        names: Names,
        pos: usize,
        /// The line of `pos`, from 1.
        line: usize,
        /// A byte offset on the current line and the characters before it on that line:
        /// columns are counted on from there, so a long line is counted once.
        col_at: usize,
        col: usize,
    }

    impl Reader<'_, '_> {
        fn location(&mut self) -> Location {
            self.col += count_chars(&self.bytes[self.col_at..self.pos]);
            self.col_at = self.pos;
            Location::new(self.file, self.line, self.col + 1)
        }

        fn skip_whitespace(&mut self) {
            while let Some(&b) = self.bytes.get(self.pos) {
                match b {
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        self.col_at = self.pos;
                        self.col = 0;
                    }
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    _ => break,
                }
            }
        }

        /// The string starting at `pos` (its opening quote), unescaped.
        fn string(&mut self) -> String {
            let start = self.pos + 1;
            let mut end = start;
            let mut escaped = false;
            loop {
                match memchr::memchr2(b'"', b'\\', &self.bytes[end..]) {
                    Some(i) if self.bytes[end + i] == b'\\' => {
                        escaped = true;
                        end += i + 2;
                    }
                    Some(i) => {
                        end += i;
                        break;
                    }
                    None => {
                        end = self.bytes.len();
                        break;
                    }
                }
            }
            self.pos = (end + 1).min(self.bytes.len());
            if escaped {
                // serde_json accepted the text, so the escapes are valid JSON escapes.
                serde_json::from_str(&self.text[start - 1..self.pos]).unwrap_or_default()
            } else {
                self.text[start..end].to_string()
            }
        }

        fn value(&mut self, depth: usize) -> Result<Node, LoadError> {
            let location = self.location();
            let value = match self.bytes.get(self.pos) {
                Some(b'{') => {
                    if depth >= MAX_DEPTH {
                        return Err(LoadError::TooDeep {
                            location,
                            limit: MAX_DEPTH,
                        });
                    }
                    self.pos += 1;
                    let mut entries = Map::new();
                    loop {
                        self.skip_whitespace();
                        match self.bytes.get(self.pos) {
                            Some(b'"') => {}
                            Some(b',') => {
                                self.pos += 1;
                                continue;
                            }
                            _ => {
                                self.pos += 1;
                                break;
                            }
                        }
                        let key_location = self.location();
                        let name = self.string();
                        let name = self.names.get(&name);
                        self.skip_whitespace();
                        self.pos += 1; // the colon
                        self.skip_whitespace();
                        let node = self.value(depth + 1)?;
                        let key = Key {
                            name,
                            location: key_location,
                        };
                        push_entry(&mut entries, key, node)?;
                    }
                    Value::Map(entries)
                }
                Some(b'[') => {
                    if depth >= MAX_DEPTH {
                        return Err(LoadError::TooDeep {
                            location,
                            limit: MAX_DEPTH,
                        });
                    }
                    self.pos += 1;
                    let mut items = Vec::new();
                    loop {
                        self.skip_whitespace();
                        match self.bytes.get(self.pos) {
                            Some(b']') | None => {
                                self.pos += 1;
                                break;
                            }
                            Some(b',') => self.pos += 1,
                            Some(_) => items.push(self.value(depth + 1)?),
                        }
                    }
                    Value::List(items)
                }
                Some(b'"') => Value::String(self.string()),
                _ => {
                    let start = self.pos;
                    while self.bytes.get(self.pos).is_some_and(|b| {
                        !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n')
                    }) {
                        self.pos += 1;
                    }
                    let token = &self.text[start..self.pos];
                    typed_scalar(token).unwrap_or_else(|| Value::String(token.to_string()))
                }
            };
            Ok(Node::new(value, location))
        }
    }

    pub(super) fn parse(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
        let mut reader = Reader {
            bytes: text.as_bytes(),
            text,
            file,
            names: Names::default(),
            pos: 0,
            line: 1,
            col_at: 0,
            col: 0,
        };
        reader.skip_whitespace();
        reader.value(0)
    }
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
        v: Spanned<DeValue<'_>>,
        loc: &dyn Fn(usize) -> Location,
        names: &mut Names,
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
        let value = match v.into_inner() {
            DeValue::String(s) => Value::String(s.into_owned()),
            DeValue::Integer(i) => {
                let digits = without_underscores(i.as_str());
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
                let t = without_underscores(f.as_str());
                Value::Float(match &*t {
                    "inf" | "+inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    "nan" | "+nan" | "-nan" => f64::NAN,
                    other => other.parse().unwrap_or(f64::NAN),
                })
            }
            DeValue::Boolean(b) => Value::Bool(b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => Value::List(
                items
                    .into_iter()
                    .map(|item| convert(item, loc, names, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            DeValue::Table(t) => Value::Map(table_entries(t, loc, names, depth + 1)?),
        };
        Ok(Node::new(value, location))
    }

    fn table_entries(
        t: DeTable<'_>,
        loc: &dyn Fn(usize) -> Location,
        names: &mut Names,
        depth: usize,
    ) -> Result<Map, LoadError> {
        let mut entries = Vec::with_capacity(t.len());
        for (k, v) in t {
            let key = Key {
                name: names.get(k.get_ref()),
                location: loc(k.span().start),
            };
            entries.push((key, convert(v, loc, names, depth)?));
        }
        // toml's map is ordered by name, and refuses a key twice.
        entries.sort_by_key(|(k, _)| (k.location.line, k.location.column));
        Ok(Map::from_unique(entries))
    }

    // Consumed as it is converted: its memory is freed while ours is taken.
    let entries = table_entries(table.into_inner(), &loc, &mut Names::default(), 1)?;
    Ok(Node::new(Value::Map(entries), Location::new(file, 1, 1)))
}

/// A TOML number's digits without the `_` separators (copied only when it has some).
fn without_underscores(digits: &str) -> std::borrow::Cow<'_, str> {
    if digits.contains('_') {
        digits.replace('_', "").into()
    } else {
        digits.into()
    }
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
            name: Arc::from(name),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    /// The line index answers lookups in any order as a count from the start does: its
    /// remembered line is only a guess that is checked.
    #[test]
    fn line_index_answers_in_any_order() {
        let text = "a\n\nbé\n  c = 1\nx\n\n".repeat(40);
        let bytes = text.as_bytes();
        let index = LineIndex::new(bytes);
        let naive = |offset: usize| {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            (line, text[start..offset].chars().count() + 1)
        };
        let offsets: Vec<usize> = (0..=text.len())
            .filter(|&o| text.is_char_boundary(o))
            .collect();
        let orders = [
            offsets.clone(),
            offsets.iter().rev().copied().collect(),
            offsets
                .iter()
                .map(|&o| offsets[(o * 7919) % offsets.len()])
                .collect(),
        ];
        for order in orders {
            for o in order {
                assert_eq!(index.line_col(o), naive(o), "offset {o}");
            }
        }
    }

    /// Every value, key and location of a tree, in order.
    fn describe(node: &Node, out: &mut String) {
        let _ = write!(out, "@{} ", node.location);
        match &node.value {
            Value::Map(m) => {
                out.push('{');
                for (k, v) in m {
                    let _ = write!(out, "{:?}@{}: ", k.name, k.location);
                    describe(v, out);
                    out.push_str(", ");
                }
                out.push('}');
            }
            Value::List(items) => {
                out.push('[');
                for v in items {
                    describe(v, out);
                    out.push_str(", ");
                }
                out.push(']');
            }
            Value::Float(f) if f.is_nan() => out.push_str("NaN"),
            other => {
                let _ = write!(out, "{other:?}");
            }
        }
    }

    fn tree(r: Result<Node, LoadError>) -> String {
        match r {
            Ok(node) => {
                let mut out = String::new();
                describe(&node, &mut out);
                out
            }
            Err(e) => format!("error: {e}"),
        }
    }

    /// The JSON reader gives the tree the YAML event parser gives for the same text.
    #[test]
    fn json_reads_as_the_yaml_parser_does() {
        let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        let cases = [
            r#"{"a": 1, "b": [true, false, null], "c": {"d": "e"}}"#,
            "{\n  \"x\": -0,\n  \"y\": 1.5e3,\n  \"z\": 123456789012345678901234,\n  \"w\": 1E400\n}",
            r#"{"é": "ü", "k": "a\"b\\c\u00e9", "n": -12, "f": 0.1}"#,
            "{\"ü\\u00e9\":{\"ö\":[1,{\"a\":[]},{}],\"b\":\"\"}}",
            "\t{ \"a\" : 1 ,\r\n \"b\": [ ] }\n\n",
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": {"b": 1, "b": [1, 2]}}"#,
            r#"[1, 2, 3]"#,
            r#""text""#,
            r#"{"s": "0x1F", "t": "true", "u": "null", "v": "", "w": "~"}"#,
            r#"{"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9, "k10": 10, "k3": 0}"#,
            &deep,
        ];
        let file: Arc<str> = Arc::from("cfg");
        for text in cases {
            assert_eq!(
                tree(json_tree::parse(text, &file)),
                tree(yaml_events::parse(text, &file)),
                "{text}"
            );
        }
        // Valid JSON that yaml-rust2 refuses (a surrogate pair) is read as JSON means it.
        assert_eq!(
            tree(json_tree::parse(r#"{"k": "\ud83d\ude00"}"#, &file)),
            "@cfg:1:1 {\"k\"@cfg:1:2: @cfg:1:7 String(\"😀\"), }"
        );
    }

    /// Plain scalars are typed as yaml-rust2 types them.
    #[test]
    fn plain_scalars_are_typed_as_yaml_rust2_does() {
        use yaml_rust2::Yaml;
        for v in [
            "",
            "~",
            "null",
            "Null",
            "true",
            "True",
            "TRUE",
            "tRue",
            "false",
            "FALSE",
            "0",
            "-0",
            "+12",
            "0x1f",
            "0x",
            "0o17",
            "0o9",
            "+0x1",
            "1_000",
            "1.5",
            "-1.5e3",
            "1e400",
            ".5",
            "5.",
            ".inf",
            "+.inf",
            "+.Inf",
            "-.INF",
            ".nan",
            ".NaN",
            "inf",
            "nan",
            "NaN",
            "1e",
            "12345678901234567890",
            "value-1",
            "abc",
            "0.0.1",
            "+",
            "-",
            "1,5",
        ] {
            let ours = plain_scalar(v.to_string());
            let theirs = match Yaml::from_str(v) {
                Yaml::Integer(i) => Value::Int(i),
                Yaml::Real(r) => Value::Float(match r.parse::<f64>() {
                    Ok(f) => f,
                    Err(_) => match r.as_str() {
                        ".inf" | ".Inf" | ".INF" | "+.inf" => f64::INFINITY,
                        "-.inf" | "-.Inf" | "-.INF" => f64::NEG_INFINITY,
                        _ => f64::NAN,
                    },
                }),
                Yaml::Boolean(b) => Value::Bool(b),
                Yaml::Null => Value::Null,
                _ => Value::String(v.to_string()),
            };
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{v}");
        }
    }
}
