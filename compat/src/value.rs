//! The located configuration tree every source is loaded into.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use hashbrown::HashTable;
use serde::Serialize;

/// Where a value sits: a file (or SSM parameter, or `git:` revision), line and column, both
/// counted from 1. SSM parameters have no lines; their line and column are 0 and not shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn new(file: &Arc<str>, line: usize, column: usize) -> Self {
        Location {
            file: Arc::clone(file),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// How a value is stored: in plain text, or in secret storage (an SSM SecureString, or a
/// `{{resolve:secretsmanager:...}}` / `{{resolve:ssm-secure:...}}` reference in a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    Plain,
    Secret,
}

/// A SHA-256 digest of a secret value. The value itself is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest(pub [u8; 32]);

impl SecretDigest {
    pub fn of(value: &str) -> Self {
        use sha2::Digest;
        SecretDigest(sha2::Sha256::digest(value.as_bytes()).into())
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// A configuration value.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// A secret, known only by its digest.
    Secret(SecretDigest),
    List(Vec<Node>),
    /// Keys in document order; loaders refuse duplicates.
    Map(Map),
}

/// The entries of a map in document order, with an index by name once it is larger than
/// [`Map::SCANNED`]: a lookup is O(1), so comparing two maps is linear in their size. The
/// index holds positions, not copies of the keys; smaller maps are searched in order.
#[derive(Debug, Clone, Default)]
pub struct Map {
    entries: Vec<(Key, Node)>,
    index: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl Map {
    /// Maps of at most this many entries have no index.
    const SCANNED: usize = 8;

    pub fn new() -> Self {
        Map::default()
    }

    /// A map of entries whose keys are known to differ (a parser's own map), in the order
    /// given: indexed once, with no search for a duplicate.
    pub fn from_unique(entries: Vec<(Key, Node)>) -> Self {
        let mut map = Map {
            entries,
            ..Map::default()
        };
        if map.entries.len() > Self::SCANNED {
            map.index_from(0);
        }
        map
    }

    fn position(&self, name: &str) -> Option<usize> {
        if self.index.is_empty() {
            return self.entries.iter().position(|(k, _)| *k.name == *name);
        }
        let hash = self.hasher.hash_one(name);
        self.index
            .find(hash, |&i| *self.entries[i].0.name == *name)
            .copied()
    }

    /// Indexes the entries from `from` on (all of them when the index is built).
    fn index_from(&mut self, from: usize) {
        let Map {
            entries,
            index,
            hasher,
        } = self;
        for i in from..entries.len() {
            let hash = hasher.hash_one(&*entries[i].0.name);
            index.insert_unique(hash, i, |&j| hasher.hash_one(&*entries[j].0.name));
        }
    }

    /// Appends an entry; a key already present is handed back with the first one's index.
    pub fn insert(&mut self, key: Key, value: Node) -> Result<(), (Key, usize)> {
        if let Some(first) = self.position(&key.name) {
            return Err((key, first));
        }
        self.entries.push((key, value));
        let len = self.entries.len();
        if len > Self::SCANNED {
            self.index_from(if self.index.is_empty() { 0 } else { len - 1 });
        }
        Ok(())
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&(Key, Node)> {
        self.position(name).map(|i| &self.entries[i])
    }

    /// The value under `name`.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entry(name).map(|(_, v)| v)
    }

    /// The value under `name`, to change.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Node> {
        let i = self.position(name)?;
        Some(&mut self.entries[i].1)
    }

    /// Every value, to change (keys stay as they are).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl Deref for Map {
    type Target = [(Key, Node)];

    fn deref(&self) -> &[(Key, Node)] {
        &self.entries
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = &'a (Key, Node);
    type IntoIter = std::slice::Iter<'a, (Key, Node)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// A map key and where it was written.
#[derive(Debug, Clone)]
pub struct Key {
    /// Shared by every key of a document spelled alike (see [`Names`]).
    pub name: Arc<str>,
    pub location: Location,
}

/// The key names of one document, each stored once: the same fields in every entry of a long
/// list cost one string, not one per entry. The first [`Names::KEPT`] distinct names are kept;
/// past them a new name is not (a map of unique keys would only pay for the table).
#[derive(Default)]
pub struct Names {
    names: HashTable<Arc<str>>,
    hasher: foldhash::fast::RandomState,
}

impl Names {
    const KEPT: usize = 4096;

    /// The shared copy of `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        let Names { names, hasher } = self;
        let hash = hasher.hash_one(name);
        if let Some(found) = names.find(hash, |n| **n == *name) {
            return Arc::clone(found);
        }
        let shared: Arc<str> = Arc::from(name);
        if names.len() >= Self::KEPT {
            return shared;
        }
        names.insert_unique(hash, Arc::clone(&shared), |n| hasher.hash_one(&**n));
        shared
    }
}

/// A value with its location and storage.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub location: Location,
    pub storage: Storage,
}

/// The kind of a value, as rules and messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    List,
    Map,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Int => "integer",
            Kind::Float => "number",
            Kind::String => "string",
            Kind::List => "list",
            Kind::Map => "map",
        }
    }
}

impl Node {
    pub fn new(value: Value, location: Location) -> Self {
        Node {
            value,
            location,
            storage: Storage::Plain,
        }
    }

    pub fn kind(&self) -> Kind {
        match &self.value {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) => Kind::Int,
            Value::Float(_) => Kind::Float,
            Value::String(_) | Value::Secret(_) => Kind::String,
            Value::List(_) => Kind::List,
            Value::Map(_) => Kind::Map,
        }
    }

    /// The child under `key`, when this is a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.get(key),
            _ => None,
        }
    }

    /// The node at a path of map keys and list indices.
    pub fn at(&self, path: &[Segment]) -> Option<&Node> {
        let mut node = self;
        for segment in path {
            node = match (segment, &node.value) {
                (Segment::Key(k), Value::Map(_)) => node.get(k)?,
                (Segment::Index(i), Value::List(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Equal values, ignoring locations (secrets compare by digest).
    pub fn same_value(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Secret(a), Value::Secret(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(&k.name).is_some_and(|v2| v.same_value(v2)))
            }
            _ => false,
        }
    }

    /// A hash of the value that agrees with [`Node::same_value`]: equal values hash alike
    /// (map order does not count), so candidates can be found by hash.
    pub fn value_hash(&self, build: &impl BuildHasher) -> u64 {
        let mut h = build.build_hasher();
        std::mem::discriminant(&self.kind()).hash(&mut h);
        match &self.value {
            Value::Null => {}
            Value::Bool(b) => b.hash(&mut h),
            Value::Int(i) => i.hash(&mut h),
            // 0.0 == -0.0; NaN equals nothing, so any hash will do.
            Value::Float(f) => (if *f == 0.0 { 0.0f64 } else { *f }).to_bits().hash(&mut h),
            Value::String(s) => s.hash(&mut h),
            Value::Secret(d) => d.0.hash(&mut h),
            Value::List(items) => {
                items.len().hash(&mut h);
                for item in items {
                    item.value_hash(build).hash(&mut h);
                }
            }
            Value::Map(entries) => {
                entries.len().hash(&mut h);
                let mut sum = 0u64;
                for (k, v) in entries {
                    let mut e = build.build_hasher();
                    k.name.hash(&mut e);
                    v.value_hash(build).hash(&mut e);
                    sum = sum.wrapping_add(e.finish());
                }
                sum.hash(&mut h);
            }
        }
        h.finish()
    }

    /// The value as JSON, for schema validation. Secrets become the string `"<secret>"`;
    /// in an untyped source (`.env`, SSM) strings that read as booleans or numbers become them.
    pub fn to_json(&self, typed: bool) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) if !typed => infer_scalar(s),
            Value::String(s) => J::String(s.clone()),
            Value::Secret(_) => J::String("<secret>".into()),
            Value::List(items) => J::Array(items.iter().map(|n| n.to_json(typed)).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.to_string(), v.to_json(typed)))
                    .collect(),
            ),
        }
    }
}

fn infer_scalar(s: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match s {
        "true" => J::Bool(true),
        "false" => J::Bool(false),
        _ => {
            if let Ok(i) = s.parse::<i64>() {
                J::from(i)
            } else if let Some(n) = s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && s.contains('.'))
                .and_then(serde_json::Number::from_f64)
            {
                J::Number(n)
            } else {
                J::String(s.to_string())
            }
        }
    }
}

/// One step of a path into a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Renders a path as `a.b[2].c`; keys that are not plain identifiers are quoted:
/// `a["x.y"]`. The root is `$`.
pub fn path_string(path: &[Segment]) -> String {
    if path.is_empty() {
        return "$".to_string();
    }
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) => {
                let plain = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                } else {
                    out.push_str(&format!("[{}]", serde_json::Value::String(k.clone())));
                }
            }
            Segment::Index(usize::MAX) => out.push_str("[*]"),
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A loaded configuration: its root (a map) and where it came from.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: Node,
    /// How the source was named: a file path, `git:<rev>:<path>` or `ssm:/<path>`.
    pub source: String,
    /// Whether the format has types (YAML, JSON, TOML) or holds only strings (`.env`, SSM).
    pub typed: bool,
}

impl Config {
    pub fn to_json(&self) -> serde_json::Value {
        self.root.to_json(self.typed)
    }
}
