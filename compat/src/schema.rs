//! JSON Schemas (draft 2020-12) of the old and new code: validation of a configuration, and
//! the schema-to-schema comparison behind ENUM_VALUE_REMOVED, RANGE_NARROWED, PATTERN_CHANGED,
//! REQUIRED_ADDED_WITHOUT_DEFAULT, DEFAULT_CHANGED and schema TYPE_CHANGED.

use std::path::Path;

use serde_json::Value as J;

use crate::error::SchemaError;
use crate::source::load_file;
use crate::value::{Config, Node, Segment, Value};

/// A compiled schema and the document it came from.
pub struct Schema {
    pub file: String,
    pub document: J,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("file", &self.file).finish()
    }
}

impl Schema {
    /// Loads a JSON or YAML schema file. Only local `$ref`s resolve: nothing is fetched.
    pub fn load(path: &Path) -> Result<Schema, SchemaError> {
        let config = load_file(path)?;
        Self::from_json(&path.display().to_string(), config.to_json())
    }

    pub fn from_json(file: &str, document: J) -> Result<Schema, SchemaError> {
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&document)
            .map_err(|e| SchemaError::Invalid {
                file: file.to_string(),
                message: e.to_string(),
            })?;
        Ok(Schema {
            file: file.to_string(),
            document,
            validator,
        })
    }

    /// Every place the schema rejects the configuration.
    pub fn validate(&self, config: &Config) -> Vec<SchemaViolation> {
        let instance = config.to_json();
        let mut out = Vec::new();
        for error in self.validator.iter_errors(&instance) {
            use jsonschema::error::ValidationErrorKind as E;
            let mut path = pointer_path(error.instance_path().as_str(), &config.root);
            let mut kind = ViolationKind::Other;
            match error.kind() {
                E::Required { property } => {
                    if let Some(p) = property.as_str() {
                        path.push(Segment::Key(p.to_string()));
                        kind = ViolationKind::Required;
                    }
                }
                E::Type { .. } => kind = ViolationKind::Type,
                E::Enum { .. } | E::Constant { .. } => kind = ViolationKind::Enum,
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for key in unexpected {
                        let mut p = path.clone();
                        p.push(Segment::Key(key.clone()));
                        out.push(SchemaViolation {
                            path: p,
                            message: format!("`{key}` is not allowed (additionalProperties)"),
                            kind: ViolationKind::Other,
                        });
                    }
                    continue;
                }
                _ => {}
            }
            out.push(SchemaViolation {
                path,
                message: error.to_string(),
                kind,
            });
        }
        out
    }
}

/// A place a schema rejects a configuration.
#[derive(Debug, Clone)]
pub struct SchemaViolation {
    pub path: Vec<Segment>,
    pub message: String,
    pub kind: ViolationKind,
}

/// What a schema rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// A required key is missing (the path names it).
    Required,
    /// The value has a type the schema does not allow (`type`).
    Type,
    /// The value is not one the schema lists (`enum`, `const`).
    Enum,
    /// Anything else: a bound, a pattern, an unknown key...
    Other,
}

/// The schemas of the old and new code. `--schema` gives both the same one.
#[derive(Debug, Default)]
pub struct Schemas {
    pub old: Option<Schema>,
    pub new: Option<Schema>,
}

fn pointer_path(pointer: &str, root: &Node) -> Vec<Segment> {
    let mut path = Vec::new();
    let mut node = Some(root);
    for raw in pointer.split('/').skip(1) {
        let key = raw.replace("~1", "/").replace("~0", "~");
        let segment = match (node.map(|n| &n.value), key.parse::<usize>()) {
            (Some(Value::List(_)), Ok(i)) => Segment::Index(i),
            _ => Segment::Key(key),
        };
        node = node.and_then(|n| n.at(std::slice::from_ref(&segment)));
        path.push(segment);
    }
    path
}

/// A difference between two schemas at a path (`Segment::Index(usize::MAX)` stands for every
/// list item).
#[derive(Debug, Clone)]
pub enum SchemaChange {
    TypeNarrowed { removed: Vec<String> },
    EnumValuesRemoved { removed: Vec<J> },
    RangeNarrowed { what: String },
    PatternChanged { old: String, new: String },
    DefaultChanged,
    RequiredAdded,
}

/// Any item of a list.
pub const ANY_ITEM: usize = usize::MAX;

/// Compares the old schema with the new one, property by property.
pub fn compare(old: &J, new: &J) -> Vec<(Vec<Segment>, SchemaChange)> {
    let mut out = Vec::new();
    walk(old, old, new, new, &mut Vec::new(), &mut out, 0);
    out
}

fn resolve<'a>(root: &'a J, mut s: &'a J) -> &'a J {
    for _ in 0..16 {
        match s.get("$ref").and_then(J::as_str) {
            Some(r) if r.starts_with("#/") => match root.pointer(&r[1..]) {
                Some(target) => s = target,
                None => return s,
            },
            _ => return s,
        }
    }
    s
}

fn types(s: &J) -> Option<Vec<String>> {
    match s.get("type")? {
        J::String(t) => Some(vec![t.clone()]),
        J::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

fn num(s: &J, key: &str) -> Option<f64> {
    s.get(key).and_then(J::as_f64)
}

fn walk(
    old_root: &J,
    old: &J,
    new_root: &J,
    new: &J,
    path: &mut Vec<Segment>,
    out: &mut Vec<(Vec<Segment>, SchemaChange)>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let old = resolve(old_root, old);
    let new = resolve(new_root, new);
    let here = |c| (path.clone(), c);

    if let (Some(to), Some(tn)) = (types(old), types(new)) {
        let accepts = |t: &str| {
            tn.iter()
                .any(|n| n == t || (n == "number" && t == "integer"))
        };
        let removed: Vec<String> = to.into_iter().filter(|t| !accepts(t)).collect();
        if !removed.is_empty() {
            out.push(here(SchemaChange::TypeNarrowed { removed }));
        }
    }
    if let (Some(J::Array(eo)), Some(J::Array(en))) = (old.get("enum"), new.get("enum")) {
        let removed: Vec<J> = eo.iter().filter(|v| !en.contains(v)).cloned().collect();
        if !removed.is_empty() {
            out.push(here(SchemaChange::EnumValuesRemoved { removed }));
        }
    }
    let mut narrowed = Vec::new();
    for key in [
        "minimum",
        "exclusiveMinimum",
        "minLength",
        "minItems",
        "minProperties",
    ] {
        match (num(old, key), num(new, key)) {
            (Some(o), Some(n)) if n > o => narrowed.push(format!("{key} raised from {o} to {n}")),
            (None, Some(n)) => narrowed.push(format!("{key} {n} added")),
            _ => {}
        }
    }
    for key in [
        "maximum",
        "exclusiveMaximum",
        "maxLength",
        "maxItems",
        "maxProperties",
    ] {
        match (num(old, key), num(new, key)) {
            (Some(o), Some(n)) if n < o => narrowed.push(format!("{key} lowered from {o} to {n}")),
            (None, Some(n)) => narrowed.push(format!("{key} {n} added")),
            _ => {}
        }
    }
    if !narrowed.is_empty() {
        out.push(here(SchemaChange::RangeNarrowed {
            what: narrowed.join(", "),
        }));
    }
    let pattern = |s: &J| s.get("pattern").and_then(J::as_str).map(String::from);
    match (pattern(old), pattern(new)) {
        (o, Some(n)) if o.as_deref() != Some(n.as_str()) => {
            out.push(here(SchemaChange::PatternChanged {
                old: o.unwrap_or_else(|| "(none)".into()),
                new: n,
            }))
        }
        _ => {}
    }
    if let (Some(d_old), Some(d_new)) = (old.get("default"), new.get("default")) {
        if d_old != d_new {
            out.push(here(SchemaChange::DefaultChanged));
        }
    }

    let required = |s: &J| -> Vec<String> {
        s.get("required")
            .and_then(J::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (req_old, req_new) = (required(old), required(new));
    let new_props = new.get("properties").and_then(J::as_object);
    let old_props = old.get("properties").and_then(J::as_object);
    for key in &req_new {
        if req_old.contains(key) {
            continue;
        }
        let has_default = new_props
            .and_then(|p| p.get(key))
            .map(|p| resolve(new_root, p).get("default").is_some())
            .unwrap_or(false);
        if !has_default {
            let mut p = path.clone();
            p.push(Segment::Key(key.clone()));
            out.push((p, SchemaChange::RequiredAdded));
        }
    }
    if let (Some(po), Some(pn)) = (old_props, new_props) {
        for (key, so) in po {
            if let Some(sn) = pn.get(key) {
                path.push(Segment::Key(key.clone()));
                walk(old_root, so, new_root, sn, path, out, depth + 1);
                path.pop();
            }
        }
    }
    if let (Some(io), Some(in_)) = (old.get("items"), new.get("items")) {
        if io.is_object() && in_.is_object() {
            path.push(Segment::Index(ANY_ITEM));
            walk(old_root, io, new_root, in_, path, out, depth + 1);
            path.pop();
        }
    }
}
