//! Reading any CloudFormation template, JSON or YAML (short intrinsic tags included), into
//! CloudFormation's JSON form.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A template that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    /// The file (or other source) it came from.
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

/// How deep a template may nest, its own mapping being the first level. A deeper value is an
/// error in JSON and YAML alike: the parsers stop at 128 levels, and a value the comparison
/// cannot read must never pass as some other value.
pub const MAX_DEPTH: usize = 100;

/// Parses template text. JSON when it starts with `{`, YAML otherwise; `origin` names the
/// source in errors.
///
/// Every part of the template must be read: a key twice in one mapping, a value nested deeper
/// than [`MAX_DEPTH`], a number that is not finite, a `Resources` (or `Parameters`, `Mappings`,
/// `Conditions`, `Outputs`) that is not a mapping, a resource that is not a mapping or has no
/// string `Type`, are errors naming the resource where there is one.
pub fn parse_template(text: &str, origin: &str) -> Result<Value, LoadError> {
    let trimmed = body(text);
    let error = |line, message| LoadError {
        origin: origin.to_string(),
        line,
        message,
    };
    let value = if trimmed.starts_with('{') {
        let mut d = serde_json::Deserializer::from_str(trimmed);
        let read = serde::de::DeserializeSeed::deserialize(Strict::FULL, &mut d)
            .and_then(|v| d.end().map(|()| v));
        read.map_err(|e| {
            let message = match locate(trimmed, e.line(), e.column()) {
                Some(id) => format!("resource {id}: {e}"),
                None => e.to_string(),
            };
            error(Some(e.line()), message)
        })?
    } else {
        read_yaml(trimmed, origin)?.value
    };
    checked(value, origin)
}

/// A template's value checked as [`parse_template`] checks it, and normalized.
pub(crate) fn checked(value: Value, origin: &str) -> Result<Value, LoadError> {
    let error = |line, message| LoadError {
        origin: origin.to_string(),
        line,
        message,
    };
    let Value::Object(map) = &value else {
        return Err(error(
            None,
            "a template is a mapping with a `Resources` section".into(),
        ));
    };
    if !map.contains_key("Resources") && !map.is_empty() {
        return Err(error(
            None,
            "not a CloudFormation template: it has no `Resources` section".into(),
        ));
    }
    check_sections(map).map_err(|message| error(None, message))?;
    if let Some(Value::Object(resources)) = map.get("Resources") {
        for (id, r) in resources {
            check_resource(r).map_err(|m| error(None, format!("resource {id}: {m}")))?;
        }
    }
    Ok(normalize(value))
}

/// The sections that hold one entry per name: each a mapping where it is present.
const SECTIONS: [&str; 5] = [
    "Resources",
    "Parameters",
    "Mappings",
    "Conditions",
    "Outputs",
];

/// Why a template's sections cannot be read, if they cannot.
pub(crate) fn check_sections(template: &Map<String, Value>) -> Result<(), String> {
    for name in SECTIONS {
        match template.get(name) {
            None | Some(Value::Object(_)) => {}
            Some(other) => {
                return Err(format!(
                    "`{name}` is {}, not a mapping: it cannot be read",
                    kind(other)
                ))
            }
        }
    }
    Ok(())
}

/// Why a resource cannot be read, if it cannot: a resource is a mapping with a string `Type`
/// and, where present, a mapping of `Properties`.
pub(crate) fn check_resource(r: &Value) -> Result<(), String> {
    let Value::Object(m) = r else {
        return Err(format!("it is {}, not a mapping", kind(r)));
    };
    match m.get("Type") {
        Some(Value::String(_)) => {}
        None => return Err("it has no `Type`".into()),
        Some(other) => return Err(format!("its `Type` is {}, not a string", kind(other))),
    }
    match m.get("Properties") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(format!(
            "its `Properties` is {}, not a mapping",
            kind(other)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Reads one JSON value strictly (a key twice in a mapping, nesting deeper than [`MAX_DEPTH`]
/// and numbers that are not finite are errors). `depth` is the level of the value read;
/// `keep` how many levels are built: below them containers are left empty and strings
/// blank, so that text can be checked without being copied.
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
    keep: usize,
}

impl Strict {
    /// A whole template, built.
    const FULL: Strict = Strict {
        depth: 1,
        keep: usize::MAX,
    };

    fn child(self) -> Strict {
        Strict {
            depth: self.depth + 1,
            keep: self.keep.saturating_sub(1),
        }
    }

    fn enter<E: serde::de::Error>(self) -> Result<(), E> {
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format_args!(
                "nested deeper than {MAX_DEPTH} levels: it cannot be read"
            )));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(if self.keep > 0 {
            s.to_owned()
        } else {
            String::new()
        }))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(if self.keep > 0 { s } else { String::new() }))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child())? {
            if self.keep > 0 {
                items.push(v);
            }
        }
        Ok(array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde::de::Error;
        self.enter()?;
        let duplicate = |key: &str| A::Error::custom(format_args!("duplicate key `{key}`"));
        if self.keep > 0 {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(self.child())?;
                if out.contains_key(&key) {
                    return Err(duplicate(&key));
                }
                out.insert(key, value);
            }
            return Ok(object(out));
        }
        let mut seen = Seen::default();
        while let Some(key) = map.next_key_seed(Key)? {
            map.next_value_seed(self.child())?;
            if seen.contains(&key) {
                return Err(duplicate(&key));
            }
            seen.insert(key);
        }
        Ok(Value::Object(Map::new()))
    }
}

/// An array that holds no more than its items: a vector grows by doubling, and a read
/// template keeps thousands of short ones.
pub(crate) fn array(mut items: Vec<Value>) -> Value {
    items.shrink_to_fit();
    Value::Array(items)
}

/// A mapping that holds no more than its entries. An order-keeping map reserves room for the
/// entries its hash table could hold (three for one entry, seven for four), and a read
/// template is mostly mappings of one to five entries: moved into one sized for them, they
/// take about half the memory.
pub(crate) fn object(map: Map<String, Value>) -> Value {
    Value::Object(map.into_iter().collect())
}

/// A mapping key, borrowed from the text where it has no escape.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(s))
    }
}

/// The keys of one mapping seen so far: a list while short, a set past that. Most mappings
/// of a template have a few keys, which a list finds sooner than a hash does.
pub(crate) struct Seen<K> {
    list: Vec<K>,
    set: std::collections::HashSet<K, foldhash::fast::RandomState>,
}

impl<K> Default for Seen<K> {
    fn default() -> Self {
        Seen {
            list: Vec::new(),
            set: Default::default(),
        }
    }
}

impl<K: Eq + std::hash::Hash> Seen<K> {
    const SHORT: usize = 16;

    pub(crate) fn contains(&self, key: &K) -> bool {
        if self.set.is_empty() {
            self.list.contains(key)
        } else {
            self.set.contains(key)
        }
    }

    /// Adds a key known not to be there.
    pub(crate) fn insert(&mut self, key: K) {
        if self.set.is_empty() && self.list.len() < Self::SHORT {
            self.list.push(key);
        } else {
            if self.set.is_empty() {
                self.set.extend(self.list.drain(..));
            }
            self.set.insert(key);
        }
    }
}

/// The resource whose text holds a position of `text` (1-based line and column, as serde_json
/// gives them), where the text can be read as far as its resources.
fn locate(text: &str, line: usize, column: usize) -> Option<String> {
    let offset = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + column.saturating_sub(1);
    let (_, resources) = raw_entries(text).ok()?;
    resources?
        .into_iter()
        .filter_map(|(id, raw)| Some((id, raw?)))
        .find(|(_, raw)| {
            let start = offset_in(text, raw.get());
            (start..=start + raw.get().len()).contains(&offset)
        })
        .map(|(id, _)| id.into_owned())
}

/// The resource defined at or above a line of YAML text: the last key, at the first
/// indentation under a top-level `Resources:`, on a line up to `line` (1-based). For error
/// messages only.
fn yaml_resource_at(text: &str, line: usize) -> Option<String> {
    let mut found = None;
    let mut inside = false;
    let mut indent = None;
    for l in text.lines().take(line) {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let spaces = l.len() - l.trim_start_matches(' ').len();
        if spaces == 0 {
            inside = l.starts_with("Resources:");
            indent = None;
            // Past `Resources`, a line belongs to no resource.
            found = None;
            continue;
        }
        if inside && *indent.get_or_insert(spaces) == spaces {
            found = l
                .trim()
                .split(':')
                .next()
                .map(|k| k.trim_matches(['"', '\'']).to_string());
        }
    }
    found
}

/// YAML template text (after a byte-order mark and leading space) read, its resources' text
/// noted; errors name the resource and line where there is one.
pub(crate) fn read_yaml(
    text: &str,
    origin: &str,
) -> Result<super::yaml::YamlTemplate<'static>, LoadError> {
    super::yaml::read(text).map_err(|e| {
        let message = match e.line.and_then(|l| yaml_resource_at(text, l)) {
            Some(id) if e.syntax => format!("resource {id}: {}", e.message),
            _ => e.message,
        };
        LoadError {
            origin: origin.to_string(),
            line: e.line,
            message,
        }
    })
}

/// A template's text from where its reading starts: past a byte-order mark and leading space.
/// JSON when it starts with `{`, YAML otherwise.
pub(crate) fn body(text: &str) -> &str {
    text.trim_start_matches('\u{feff}').trim_start()
}

/// Where `part`, a slice of `text`, starts in it.
pub(crate) fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

/// Reads a template file.
pub fn load_template(path: &std::path::Path) -> Result<Value, LoadError> {
    let (text, origin) = read_text(path)?;
    parse_template(&text, &origin)
}

/// A template file's text and the name errors give it.
pub(crate) fn read_text(path: &std::path::Path) -> Result<(String, String), LoadError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LoadError {
        origin: origin.clone(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| LoadError {
        origin: origin.clone(),
        line: None,
        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    Ok((text, origin))
}

/// A JSON template read only as far as its sections and resources: each kept as its raw text,
/// so that a comparison parses just the resources whose text differs.
pub(crate) struct RawTemplate<'a> {
    /// The text (after a byte-order mark and leading space) and the name errors give it.
    text: &'a str,
    origin: &'a str,
    /// The top-level keys in document order, each with its raw value (`None` for `Resources`).
    top: Entries<'a>,
    /// The resources in document order.
    pub(crate) resources: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The entries of `Outputs` in document order, where they can be read one by one exactly
    /// as the whole section is read ([`outputs_of`]).
    pub(crate) outputs: Option<Vec<(Cow<'a, str>, &'a RawValue)>>,
}

/// Raw entries of a JSON object, in document order.
/// Keys are borrowed from the text where they have no escape: a large template has thousands.
type Entries<'a> = Vec<(Cow<'a, str>, Option<&'a RawValue>)>;

/// Reads a JSON object's entries, in document order, each value left as raw text. With
/// `split`, the value of `Resources` is read entry by entry in the same pass (its own value is
/// then `None`).
struct RawMap {
    split: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for RawMap {
    /// The entries, and those of `Resources` when split.
    type Value = (Entries<'de>, Option<Entries<'de>>);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RawMap {
    type Value = (Entries<'de>, Option<Entries<'de>>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut entries, mut resources) = (Vec::new(), None);
        while let Some(key) = map.next_key_seed(Key)? {
            if self.split && key == "Resources" {
                resources = Some(map.next_value_seed(RawMap { split: false })?.0);
                entries.push((key, None));
            } else {
                entries.push((key, Some(map.next_value()?)));
            }
        }
        Ok((entries, resources))
    }
}

/// The top-level entries of JSON template text and, when `Resources` is a mapping, its
/// entries, each value as raw text.
fn raw_entries(text: &str) -> serde_json::Result<(Entries<'_>, Option<Entries<'_>>)> {
    let mut d = serde_json::Deserializer::from_str(text);
    let read = serde::de::DeserializeSeed::deserialize(RawMap { split: true }, &mut d)?;
    d.end()?;
    Ok(read)
}

/// The entries of an `Outputs` value, when it is a mapping whose entries read one by one give
/// what reading it whole gives: no name twice (reading it whole reports that), and no name that
/// [`normalize`] rewrites at a mapping's level.
fn outputs_of(raw: &RawValue) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    let mut d = serde_json::Deserializer::from_str(raw.get());
    let (entries, _) =
        serde::de::DeserializeSeed::deserialize(RawMap { split: false }, &mut d).ok()?;
    if repeated(entries.iter().map(|(k, _)| k.as_ref())).is_some()
        || entries
            .iter()
            .any(|(k, _)| k == "Fn::GetAtt" || k == "DependsOn")
    {
        return None;
    }
    entries
        .into_iter()
        .map(|(k, raw)| Some((k, raw?)))
        .collect()
}

/// The first name that is there twice, if any.
fn repeated<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::BTreeSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

impl<'a> RawTemplate<'a> {
    /// Reads JSON template text this far. `Ok(None)` when the text is not JSON, or is JSON
    /// without a `Resources` key: the caller then parses it whole. Syntax errors are reported
    /// as [`parse_template`] reports them; a `Resources` that is not a mapping and a key twice
    /// are errors.
    pub(crate) fn read(text: &'a str, origin: &'a str) -> Result<Option<Self>, LoadError> {
        let trimmed = body(text);
        if !trimmed.starts_with('{') {
            return Ok(None);
        }
        let error = |line, message| LoadError {
            origin: origin.to_string(),
            line,
            message,
        };
        let (top, resources) = match raw_entries(trimmed) {
            Ok(read) => read,
            // The only value read as a mapping, at the top level, is `Resources`.
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                return Err(error(
                    Some(e.line()),
                    "`Resources` is not a mapping: it cannot be read".into(),
                ))
            }
            Err(e) => return Err(error(Some(e.line()), e.to_string())),
        };
        let Some(resources) = resources else {
            return Ok(None);
        };
        if let Some(key) = repeated(top.iter().map(|(k, _)| k.as_ref())) {
            return Err(error(None, format!("duplicate key `{key}`")));
        }
        if let Some(id) = repeated(resources.iter().map(|(k, _)| k.as_ref())) {
            return Err(error(None, format!("duplicate key `{id}` in `Resources`")));
        }
        let resources = resources
            .into_iter()
            .filter_map(|(id, raw)| Some((id, raw?)))
            .collect();
        let outputs = top
            .iter()
            .find(|(k, _)| k == "Outputs")
            .and_then(|(_, raw)| outputs_of(raw.as_ref()?));
        Ok(Some(RawTemplate {
            text: trimmed,
            origin,
            top,
            resources,
            outputs,
        }))
    }

    /// The line of the text a raw value starts on.
    fn line_of(&self, raw: &RawValue) -> usize {
        let at = offset_in(self.text, raw.get()).min(self.text.len());
        1 + memchr::memchr_iter(b'\n', &self.text.as_bytes()[..at]).count()
    }

    /// One raw value of this template read strictly: `what` names it in errors, `depth` is its
    /// level, `keep` how many of its levels are built (see [`Strict`]).
    fn read_value(
        &self,
        raw: &RawValue,
        what: &str,
        depth: usize,
        keep: usize,
    ) -> Result<Value, LoadError> {
        let mut d = serde_json::Deserializer::from_str(raw.get());
        serde::de::DeserializeSeed::deserialize(Strict { depth, keep }, &mut d).map_err(|e| {
            let line = self.line_of(raw) + e.line() - 1;
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            LoadError {
                origin: self.origin.to_string(),
                line: Some(line),
                message: format!(
                    "{what}: {}",
                    message.strip_suffix(&suffix).unwrap_or(&message)
                ),
            }
        })
    }

    /// One resource, read whole and normalized, or, with `check_only`, only checked to be
    /// readable (its value then holds nothing of use).
    pub(crate) fn resource(
        &self,
        id: &str,
        raw: &RawValue,
        check_only: bool,
    ) -> Result<Value, LoadError> {
        let what = format!("resource {id}");
        let keep = if check_only { 1 } else { usize::MAX };
        let value = self.read_value(raw, &what, 3, keep)?;
        check_resource(&value).map_err(|m| LoadError {
            origin: self.origin.to_string(),
            line: Some(self.line_of(raw)),
            message: format!("{what}: {m}"),
        })?;
        Ok(if check_only { value } else { normalize(value) })
    }

    /// One entry of [`outputs`](Self::outputs), read and normalized as reading the whole
    /// section would.
    pub(crate) fn output(&self, raw: &RawValue) -> Result<Value, LoadError> {
        Ok(normalize(self.read_value(
            raw,
            "`Outputs`",
            3,
            usize::MAX,
        )?))
    }

    /// The template in CloudFormation's JSON form with only the resources `keep` names and,
    /// where [`outputs`](Self::outputs) are read one by one, the outputs `keep_output` names,
    /// exactly as [`parse_template`] would give them; `parsed` holds resources already read.
    pub(crate) fn assemble(
        &self,
        keep: impl Fn(&str) -> bool,
        keep_output: impl Fn(&str) -> bool,
        parsed: &mut std::collections::BTreeMap<String, Value>,
    ) -> Result<Value, LoadError> {
        let mut out = Map::new();
        for (key, raw) in &self.top {
            let value = match raw {
                Some(_) if key == "Outputs" && self.outputs.is_some() => {
                    let mut outputs = Map::new();
                    for (name, raw) in self.outputs.iter().flatten() {
                        if keep_output(name) {
                            outputs.insert(name.to_string(), self.output(raw)?);
                        }
                    }
                    Value::Object(outputs)
                }
                Some(raw) => normalize(self.read_value(raw, &format!("`{key}`"), 2, usize::MAX)?),
                None => {
                    let mut resources = Map::new();
                    for (id, raw) in self.resources.iter().filter(|(id, _)| keep(id)) {
                        let value = match parsed.remove(id.as_ref()) {
                            Some(v) => v,
                            None => self.resource(id, raw, false)?,
                        };
                        resources.insert(id.to_string(), value);
                    }
                    normalize_keys(&mut resources);
                    Value::Object(resources)
                }
            };
            out.insert(key.to_string(), value);
        }
        check_sections(&out).map_err(|message| LoadError {
            origin: self.origin.to_string(),
            line: None,
            message,
        })?;
        normalize_keys(&mut out);
        Ok(Value::Object(out))
    }
}

/// What [`normalize`] does at the top level of an object whose values are normalized already.
fn normalize_keys(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        match (k.as_str(), &mut *v) {
            ("Fn::GetAtt", Value::String(s)) => *v = split_get_att(s),
            ("DependsOn", Value::String(s)) => {
                *v = Value::Array(vec![Value::String(std::mem::take(s))])
            }
            ("DependsOn", Value::Array(items)) => items.sort_by_key(|i| i.to_string()),
            _ => {}
        }
    }
}

fn split_get_att(s: &str) -> Value {
    match s.split_once('.') {
        Some((resource, attribute)) => Value::Array(vec![
            Value::String(resource.to_string()),
            Value::String(attribute.to_string()),
        ]),
        None => Value::String(s.to_string()),
    }
}

/// One spelling for the same meaning: string `Fn::GetAtt` as an array, `DependsOn` as a sorted
/// list. In place: a template is rewritten only where a spelling differs.
pub(crate) fn normalize(mut v: Value) -> Value {
    normalize_in_place(&mut v);
    v
}

fn normalize_in_place(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.values_mut().for_each(normalize_in_place);
            normalize_keys(map);
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_in_place),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tags_become_the_json_form() {
        let yaml = r#"
Resources:
  Q:
    Type: AWS::SQS::Queue
    DependsOn: Z
    Properties:
      QueueName: !Sub "${AWS::StackName}-q"
      Other: !GetAtt Dlq.Arn
      Policy: !If [IsProd, !Ref P, !Ref "AWS::NoValue"]
      J: !Join [",", [!Select [0, !GetAZs ""], b]]
"#;
        let v = parse_template(yaml, "t.yaml").unwrap();
        let p = &v["Resources"]["Q"]["Properties"];
        assert_eq!(p["QueueName"]["Fn::Sub"], "${AWS::StackName}-q");
        assert_eq!(p["Other"]["Fn::GetAtt"], serde_json::json!(["Dlq", "Arn"]));
        assert_eq!(p["Policy"]["Fn::If"][1]["Ref"], "P");
        assert_eq!(p["J"]["Fn::Join"][1][0]["Fn::Select"][1]["Fn::GetAZs"], "");
        assert_eq!(v["Resources"]["Q"]["DependsOn"], serde_json::json!(["Z"]));
    }

    #[test]
    fn seen_keys_are_found_in_the_list_and_past_it_in_the_set() {
        let mut seen = Seen::default();
        for i in 0..40 {
            let key = format!("k{i}");
            assert!(!seen.contains(&key), "{key}");
            seen.insert(key);
            for j in 0..=i {
                assert!(seen.contains(&format!("k{j}")), "k{j} after k{i}");
            }
        }
    }

    #[test]
    fn a_yaml_syntax_error_names_the_resource_it_is_in_and_no_other() {
        let text = "Resources:\n  A:\n    Type: X\n    Properties: {P: [1}\nOutputs:\n  O:\n    Value: 1\n";
        let e = parse_template(text, "t.yaml").unwrap_err();
        assert!(e.message.starts_with("resource A: "), "{e:?}");
        let text = "Resources:\n  A:\n    Type: X\nOutputs:\n  O:\n    Value: [1}\n";
        let e = parse_template(text, "t.yaml").unwrap_err();
        assert_eq!(e.line, Some(6), "{e:?}");
        assert!(!e.message.contains("resource"), "{e:?}");
    }

    #[test]
    fn string_get_att_in_json_is_normalized() {
        let v = parse_template(
            r#"{"Resources":{"A":{"Type":"X","Properties":{"P":{"Fn::GetAtt":"B.Arn"}}}}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(
            v["Resources"]["A"]["Properties"]["P"]["Fn::GetAtt"],
            serde_json::json!(["B", "Arn"])
        );
    }

    #[test]
    fn errors_name_the_origin_and_line() {
        let e = parse_template("{\n\"Resources\": {\n}, }", "a.json").unwrap_err();
        assert_eq!(e.origin, "a.json");
        assert_eq!(e.line, Some(3));
        let e = parse_template("Resources:\n  A: [\n", "b.yaml").unwrap_err();
        assert!(e.to_string().starts_with("b.yaml:"), "{e}");
        let e = parse_template("Resources:\n  A: !Bogus x\n", "c.yaml").unwrap_err();
        assert!(e.message.contains("!Bogus"));
        let e = parse_template("Resources: {}\nResources: {}\n", "d.yaml").unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
        let e = parse_template("[1, 2]", "e.yaml").unwrap_err();
        assert!(e.message.contains("mapping"));
    }
}
