//! Reading YAML templates straight from the parser's events into CloudFormation's JSON form.
//!
//! yaml-rust2's event parser streams the document: no list of every event and no YAML value
//! tree is built first, and each resource's lines are noted, so that a comparison can tell the
//! resources whose text is the same on both sides. Plain scalars resolve as serde_norway (the
//! YAML 1.2 core schema) resolves them; the rules of [`super::load`] hold: a key twice, nesting
//! past [`MAX_DEPTH`] (a short-form tag being a level, as its mapping is), an unknown tag and
//! an alias expanding past a bound are errors naming the resource and line.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::load::MAX_DEPTH;

/// An alias may bring in at most this many values in all: an alias bomb is an error.
const MAX_ALIASED: usize = 1_000_000;

/// A YAML template read: its value, and where each resource's text is, when it can be told.
pub(crate) struct YamlTemplate<'s> {
    pub(crate) value: Value,
    /// Each resource's text (from its key's line to the next key's line), by id, when the
    /// `Resources` mapping is in block style and no alias or tag directive can make the same
    /// text mean something else; empty otherwise.
    pub(crate) texts: Texts,
    /// The same for the entries skipped (see [`read_skipping`]), which are not in `value`,
    /// in the order of the text.
    pub(crate) skipped: Vec<Found<'s>>,
}

/// Each resource's text in its template, by id.
pub(crate) type Texts =
    std::collections::HashMap<String, std::ops::Range<usize>, foldhash::fast::RandomState>;

/// Each resource's text as [`scan_texts`] finds it, by id.
pub(crate) type Scan<'a> = std::collections::HashMap<&'a str, &'a str, foldhash::fast::RandomState>;

/// The ids of the resources a reading skips.
pub(crate) type Skipped<'a> = std::collections::HashSet<&'a str, foldhash::fast::RandomState>;

/// An error and the line (1-based) it is on.
pub(crate) struct YamlError {
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
    /// A syntax error, which does not name the resource it is in.
    pub(crate) syntax: bool,
}

enum Container {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

struct Frame {
    container: Container,
    /// The short-form tag's function (`Fn::Sub`, `Ref`...) that wraps the value, if any.
    wrap: Option<&'static str>,
    /// Levels this frame adds: 1, or 2 with a tag.
    levels: usize,
    anchor: usize,
    /// Whether this is the `Resources` or the `Outputs` mapping.
    section: Option<Section>,
    /// Whether the values in it are kept; when not, only checked (a mapping's keys are kept
    /// in `seen`, to find one written twice) and the container ends empty.
    keep: bool,
    /// Whether the collections in it are not kept: the value of a resource that is skipped.
    shallow: bool,
    /// The keys of a mapping whose values are not kept.
    seen: super::load::Seen<String>,
}

/// The two sections whose entries a reading may leave out, each entry's text telling where it
/// is: `Resources` and `Outputs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    Resources = 0,
    Outputs = 1,
}

impl Section {
    pub(crate) const BOTH: [Section; 2] = [Section::Resources, Section::Outputs];

    fn of(key: &str) -> Option<Section> {
        match key {
            "Resources" => Some(Section::Resources),
            "Outputs" => Some(Section::Outputs),
            _ => None,
        }
    }
}

/// The entries of a section a reading leaves out of the value it builds (see
/// [`read_skipping`]).
#[derive(Clone, Copy)]
pub(crate) struct Left<'r, 's> {
    /// Left out: only checked as the parser passes them, and resources as resources.
    pub(crate) skipped: &'r Skipped<'s>,
    /// Among them, those whose text was cut to a stub, `<id>:` alone: their value must be
    /// null, and is not checked.
    pub(crate) stubs: &'r Skipped<'s>,
}

/// What a reading leaves out: of `Resources`, and of `Outputs`.
pub(crate) type Skip<'r, 's> = [Left<'r, 's>; 2];

/// Where a skipped entry was in the text read: its section, its id, its lines.
pub(crate) type Found<'s> = (Section, &'s str, std::ops::Range<usize>);

/// An entry's key in a section: a resource kept in the value built (its id), an output
/// kept, or an entry skipped.
enum Key<'s> {
    Kept(String),
    KeptOutput,
    Skipped(&'s str),
}

/// Where a section's mapping starts (line, column), its keys (key, line, column) and the line
/// and column its end was seen at.
#[derive(Default)]
struct Marks<'s> {
    start: Option<(usize, usize)>,
    keys: Vec<(Key<'s>, usize, usize)>,
    end: Option<(usize, usize)>,
}

struct Builder<'r, 's> {
    skip: Option<Skip<'r, 's>>,
    /// An anchor was seen while values are skipped, or a stub did not read as one: the
    /// reading cannot be used.
    unusable: bool,
    /// The skipped entries seen so far in each section, to find one written twice.
    skipped_seen: [std::collections::HashSet<&'s str, foldhash::fast::RandomState>; 2],
    /// The next value is a stub's.
    stub_next: bool,
    /// The value just ended was a skipped resource's, checked as it ended.
    checked_value: bool,
    stack: Vec<Frame>,
    depth: usize,
    anchors: std::collections::HashMap<usize, (Value, usize)>,
    aliased: usize,
    has_alias: bool,
    root: Option<Value>,
    documents: usize,
    error: Option<YamlError>,
    /// The resource being read (its id), for errors.
    resource: Option<String>,
    /// Where the `Resources` and the `Outputs` mapping and their keys are.
    marks: [Marks<'s>; 2],
}

/// Values an expanded alias adds.
fn count(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(count).sum::<usize>(),
        _ => 1,
    }
}

/// CloudFormation's short-form tags (`!Sub`) and the functions they stand for.
const FNS: [(&str, &str); 21] = [
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("GetAtt", "Fn::GetAtt"),
    ("Base64", "Fn::Base64"),
    ("Cidr", "Fn::Cidr"),
    ("FindInMap", "Fn::FindInMap"),
    ("GetAZs", "Fn::GetAZs"),
    ("ImportValue", "Fn::ImportValue"),
    ("Join", "Fn::Join"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("Sub", "Fn::Sub"),
    ("Transform", "Fn::Transform"),
    ("And", "Fn::And"),
    ("Equals", "Fn::Equals"),
    ("If", "Fn::If"),
    ("Not", "Fn::Not"),
    ("Or", "Fn::Or"),
    ("Length", "Fn::Length"),
    ("ToJsonString", "Fn::ToJsonString"),
    ("ForEach", "Fn::ForEach"),
];

/// The function a short-form tag's name (`Sub` of `!Sub`) stands for.
fn short_function(name: &str) -> Option<&'static str> {
    FNS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The function a short-form tag stands for, or an error for a tag CloudFormation does not know.
fn short_form(tag: &Tag) -> Result<Option<&'static str>, String> {
    if tag.handle.starts_with("tag:yaml.org,2002:") {
        return Ok(None);
    }
    if tag.handle == "!" {
        if let Some(f) = short_function(&tag.suffix) {
            return Ok(Some(f));
        }
    }
    let name = if tag.handle == "!" {
        tag.suffix.clone()
    } else {
        format!("{}{}", tag.handle.trim_start_matches('!'), tag.suffix)
    };
    Err(format!("unknown tag `!{name}`"))
}

/// Whether a plain scalar is a string by its first look: not empty, null or a boolean, and not
/// starting as a number does. [`resolve`] takes these as they are.
fn plain_string(v: &str) -> bool {
    let Some(&first) = v.as_bytes().first() else {
        return false;
    };
    let number = first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.');
    let word = matches!(
        v,
        "null" | "Null" | "NULL" | "~" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
    );
    !number && !word
}

/// A plain scalar as serde_norway reads it (YAML 1.2 core schema).
fn resolve(s: String) -> Result<Value, String> {
    if plain_string(&s) {
        return Ok(Value::String(s));
    }
    let v = s.as_str();
    if v.is_empty() || matches!(v, "null" | "Null" | "NULL" | "~") {
        return Ok(Value::Null);
    }
    match v {
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    // From here `v` starts as a number does.
    if let Some(n) = unsigned(v) {
        return Ok(Value::from(n));
    }
    if let Some(n) = negative(v) {
        return Ok(Value::from(n));
    }
    if wide(v) {
        return Err(format!("`{v}` is out of range: it cannot be read"));
    }
    if !digits_but_not_number(v) {
        if let Some(f) = float(v) {
            if !f.is_finite() {
                return Err(format!("`{v}` is not a finite number: it cannot be read"));
            }
            return Ok(Number::from_f64(f).map_or(Value::Null, Value::Number));
        }
    }
    Ok(Value::String(s))
}

fn radix_int<T>(v: &str, parse: fn(&str, u32) -> Result<T, std::num::ParseIntError>) -> Option<T> {
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = v.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(n) = parse(rest, radix) {
                return Some(n);
            }
        }
    }
    if digits_but_not_number(v) {
        return None;
    }
    parse(v, 10).ok()
}

fn unsigned(v: &str) -> Option<u64> {
    radix_int(v.strip_prefix('+').unwrap_or(v), u64::from_str_radix)
}

fn negative(v: &str) -> Option<i64> {
    let rest = v.strip_prefix('-')?;
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = rest.strip_prefix(prefix) {
            if let Ok(n) = i64::from_str_radix(&format!("-{digits}"), radix) {
                return Some(n);
            }
        }
    }
    if digits_but_not_number(v) {
        return None;
    }
    v.parse().ok()
}

/// An integer serde_norway reads as 128-bit, which its value type refuses.
fn wide(v: &str) -> bool {
    let u = v.strip_prefix('+').unwrap_or(v);
    radix_int(u, u128::from_str_radix).is_some()
        || v.strip_prefix('-').is_some_and(|rest| {
            !digits_but_not_number(v) && rest.parse::<u128>().is_ok() && v.parse::<i128>().is_ok()
        })
}

fn digits_but_not_number(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    v.len() > 1 && v.starts_with('0') && v[1..].bytes().all(|b| b.is_ascii_digit())
}

fn float(v: &str) -> Option<f64> {
    let unsigned = match v.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => v,
    };
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    match v {
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // Rust reads `inf`, `nan` and `infinity`, which YAML does not.
    if unsigned
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return None;
    }
    unsigned.parse::<f64>().ok().filter(|f| f.is_finite())
}

impl Builder<'_, '_> {
    fn fail(&mut self, mark: Marker, message: String) {
        if self.error.is_none() {
            let message = match &self.resource {
                Some(id) => format!("resource {id}: {message}"),
                None => match self.stack.first() {
                    Some(Frame {
                        container: Container::Map(_, Some(key)),
                        ..
                    }) if self.stack.len() > 1 => format!("`{key}`: {message}"),
                    _ => message,
                },
            };
            self.error = Some(YamlError {
                line: Some(mark.line()),
                message,
                syntax: false,
            });
        }
    }

    /// Whether a node at the current depth, adding `levels`, stays within [`MAX_DEPTH`].
    fn within(&mut self, levels: usize, mark: Marker) -> bool {
        if self.depth + levels - 1 > MAX_DEPTH {
            self.fail(
                mark,
                format!("nested deeper than {MAX_DEPTH} levels: it cannot be read"),
            );
            return false;
        }
        true
    }

    fn wrap(f: Option<&'static str>, v: Value) -> Value {
        match f {
            None => v,
            Some("Fn::GetAtt") => {
                let v = match v {
                    Value::String(s) => match s.split_once('.') {
                        Some((r, a)) => Value::Array(vec![r.into(), a.into()]),
                        None => Value::String(s),
                    },
                    other => other,
                };
                single("Fn::GetAtt", v)
            }
            Some(f) => single(f, v),
        }
    }

    /// A finished value: into the enclosing collection, or the document's root.
    fn add(&mut self, v: Value, mark: Marker) {
        let in_section = if self.stack.len() == 2 {
            self.stack[1].section
        } else {
            None
        };
        let in_resources = in_section == Some(Section::Resources);
        let top = self.stack.len() == 1;
        let Some(frame) = self.stack.last_mut() else {
            self.documents += 1;
            if self.root.is_none() {
                self.root = Some(v);
            }
            return;
        };
        let Frame {
            container,
            keep,
            seen,
            ..
        } = frame;
        let keep = *keep;
        match container {
            Container::Seq(items) => {
                if keep {
                    items.push(v)
                }
            }
            Container::Map(map, pending) => match pending.take() {
                None => {
                    let key = match v {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            let message = format!("unsupported mapping key {other}");
                            return self.fail(mark, message);
                        }
                    };
                    let skipped = match (self.skip, in_section) {
                        (Some(skip), Some(s)) => skip[s as usize]
                            .skipped
                            .get(key.as_str())
                            .map(|id| (s, *id)),
                        _ => None,
                    };
                    let twice = match skipped {
                        Some((s, id)) => !self.skipped_seen[s as usize].insert(id),
                        None if keep => map.contains_key(&key),
                        None => seen.contains(&key),
                    };
                    if twice {
                        let message = if in_resources {
                            self.resource = None;
                            format!("duplicate key `{key}` in `Resources`")
                        } else {
                            format!("duplicate key `{key}`")
                        };
                        if top || in_resources {
                            self.error = Some(YamlError {
                                line: Some(mark.line()),
                                message,
                                syntax: false,
                            });
                            return;
                        }
                        return self.fail(mark, message);
                    }
                    if let Some(section) = in_section {
                        let (line, col) = (mark.line(), mark.col());
                        let keys = &mut self.marks[section as usize].keys;
                        match skipped {
                            Some((s, id)) => {
                                keys.push((Key::Skipped(id), line, col));
                                let stub =
                                    self.skip.is_some_and(|k| k[s as usize].stubs.contains(id));
                                self.stub_next = stub;
                                if in_resources && !stub {
                                    self.resource = Some(key.clone());
                                }
                            }
                            None if in_resources => {
                                keys.push((Key::Kept(key.clone()), line, col));
                                self.resource = Some(key.clone());
                            }
                            // Outputs are told apart only to read some of them.
                            None if self.skip.is_some() => keys.push((Key::KeptOutput, line, col)),
                            None => {}
                        }
                    }
                    *pending = Some(key);
                }
                Some(key) => {
                    let left = match (self.skip, in_section) {
                        (Some(skip), Some(s)) => Some(skip[s as usize]),
                        _ => None,
                    };
                    if let Some(left) = left.filter(|l| l.skipped.contains(key.as_str())) {
                        // Left out of the value. A stub's value was read as one (see
                        // `on_event`); any other resource was checked as a resource where it
                        // ended, or is checked here.
                        let checked = std::mem::take(&mut self.checked_value);
                        let stub = left.stubs.contains(key.as_str());
                        if in_resources && !stub && !checked {
                            if let Err(m) = super::load::check_resource(&v) {
                                return self.fail(mark, m);
                            }
                        }
                    } else if keep {
                        map.insert(key, v);
                    } else {
                        seen.insert(key);
                    }
                    if in_resources {
                        self.resource = None;
                    }
                }
            },
        }
    }

    fn remember(&mut self, anchor: usize, v: &Value) {
        // What an anchor names may be a value not kept, or hold one.
        if anchor > 0 && self.skip.is_some() {
            self.unusable = true;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, (v.clone(), count(v)));
        }
    }

    /// Whether the next value is that of an entry skipped, only checked.
    fn skipped_next(&self) -> bool {
        let Some(skip) = self.skip else {
            return false;
        };
        self.stack.len() == 2
            && match (&self.stack[1].section, &self.stack[1].container) {
                (Some(s), Container::Map(_, Some(id))) => {
                    skip[*s as usize].skipped.contains(id.as_str())
                }
                _ => false,
            }
    }

    /// The section the next value is, if it is `Resources` or `Outputs`.
    fn section_next(&self) -> Option<Section> {
        match &self.stack[..] {
            [Frame {
                container: Container::Map(_, Some(key)),
                ..
            }] => Section::of(key),
            _ => None,
        }
    }
}

fn single(key: &str, value: Value) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(key.to_string(), value);
    Value::Object(m)
}

impl MarkedEventReceiver for Builder<'_, '_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        if std::mem::take(&mut self.stub_next) {
            // A stub is `<id>:` alone, a null; anything else is not the stub that was put.
            let null = matches!(
                &ev,
                Event::Scalar(text, TScalarStyle::Plain, 0, None) if text.is_empty() || text == "~"
            );
            if !null {
                self.unusable = true;
            }
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let (wrap, core) = match &tag {
                    None => (None, None),
                    Some(t) => match short_form(t) {
                        Ok(f) => (f, f.is_none().then_some(t.suffix.as_str())),
                        Err(m) => return self.fail(mark, m),
                    },
                };
                if wrap.is_some() && !self.within(1, mark) {
                    return;
                }
                let value = if style != TScalarStyle::Plain || core == Some("str") {
                    Value::String(text)
                } else {
                    match resolve(text) {
                        Ok(v) => v,
                        Err(m) => return self.fail(mark, m),
                    }
                };
                let value = Builder::wrap(wrap, value);
                self.remember(anchor, &value);
                self.add(value, mark);
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                let wrap = match tag.as_ref().map(short_form).transpose() {
                    Ok(f) => f.flatten(),
                    Err(m) => return self.fail(mark, m),
                };
                let levels = if wrap.is_some() { 2 } else { 1 };
                if !self.within(levels, mark) {
                    return;
                }
                let map = matches!(ev, Event::MappingStart(..));
                let section = self
                    .section_next()
                    .filter(|s| map && self.marks[*s as usize].start.is_none());
                if let Some(s) = section {
                    self.marks[s as usize].start = Some((mark.line(), mark.col()));
                }
                let shallow = self.skipped_next();
                let keep = self.stack.last().is_none_or(|f| f.keep && !f.shallow);
                self.depth += levels;
                self.stack.push(Frame {
                    container: if map {
                        Container::Map(Map::new(), None)
                    } else {
                        Container::Seq(Vec::new())
                    },
                    wrap,
                    levels,
                    anchor,
                    section,
                    keep,
                    shallow,
                    seen: Default::default(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(s) = self.stack.last().and_then(|f| f.section) {
                    self.marks[s as usize].end = Some((mark.line(), mark.col()));
                }
                let Some(frame) = self.stack.pop() else {
                    return;
                };
                self.depth -= frame.levels;
                let value = match frame.container {
                    Container::Seq(items) => super::load::array(items),
                    Container::Map(map, _) if frame.keep => super::load::object(map),
                    Container::Map(..) => Value::Object(Map::new()),
                };
                let mut value = Builder::wrap(frame.wrap, value);
                if frame.shallow {
                    // A skipped resource is checked here; a skipped entry then holds nothing.
                    if self.stack.get(1).and_then(|f| f.section) == Some(Section::Resources) {
                        if let Err(m) = super::load::check_resource(&value) {
                            return self.fail(mark, m);
                        }
                        self.checked_value = true;
                    }
                    value = Value::Null;
                }
                self.remember(frame.anchor, &value);
                self.add(value, mark);
            }
            Event::Alias(id) => {
                self.has_alias = true;
                match self.anchors.get(&id) {
                    Some((v, n)) => {
                        let (v, n) = (v.clone(), *n);
                        self.aliased += n;
                        if self.aliased > MAX_ALIASED {
                            return self.fail(
                                mark,
                                format!("aliases expand to more than {MAX_ALIASED} values"),
                            );
                        }
                        self.add(v, mark);
                    }
                    None => self.fail(mark, "alias to an unknown anchor".into()),
                }
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
    }
}

/// Reads YAML template text (without a byte-order mark) into CloudFormation's JSON form.
pub(crate) fn read(text: &str) -> Result<YamlTemplate<'static>, YamlError> {
    read_with(text, None, 1).map(|(t, _)| t)
}

/// [`read`], with the resources `skip` names left out of the value: a stub's value must be
/// null; any other is only checked, as the parser passes it (depth, tags, keys twice,
/// scalars), and as a resource ([`super::load::check_resource`], on its own scalars and empty
/// collections of the same kinds as its). [`YamlTemplate::skipped`] says where each was.
/// `Ok(None)` when the text has an anchor (what it names may not be kept) or a stub does not
/// read as one: the caller reads the text whole.
pub(crate) fn read_skipping<'s>(
    text: &str,
    skip: Skip<'_, 's>,
) -> Result<Option<YamlTemplate<'s>>, YamlError> {
    let (read, unusable) = read_with(text, Some(skip), 1)?;
    Ok((!unusable).then_some(read))
}

/// The value of one resource from its text alone (its key's line to the next key's), as
/// [`read`] reads it inside its template: `Ok(None)` when the text is not one mapping of one
/// key. Only for text [`read`] has already found to be a resource and that holds no alias,
/// so that it means the same on its own.
pub(crate) fn read_resource(text: &str) -> Result<Option<Value>, YamlError> {
    // Read as the `Resources` mapping is: two levels down.
    let (read, _) = read_with(text, None, 2)?;
    Ok(match read.value {
        Value::Object(m) if m.len() == 1 => m.into_iter().next().map(|(_, v)| v),
        _ => None,
    })
}

fn read_with<'s>(
    text: &str,
    skip: Option<Skip<'_, 's>>,
    depth: usize,
) -> Result<(YamlTemplate<'s>, bool), YamlError> {
    let mut b = Builder {
        skip,
        unusable: false,
        skipped_seen: Default::default(),
        stub_next: false,
        checked_value: false,
        stack: Vec::new(),
        depth,
        anchors: Default::default(),
        aliased: 0,
        has_alias: false,
        root: None,
        documents: 0,
        error: None,
        resource: None,
        marks: Default::default(),
    };
    if let Err(e) = Parser::new_from_str(text).load(&mut b, true) {
        return Err(YamlError {
            line: Some(e.marker().line()),
            message: e.info().to_string(),
            syntax: true,
        });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    if b.documents > 1 {
        return Err(YamlError {
            line: None,
            message: "more than one YAML document: a template is one".into(),
            syntax: false,
        });
    }
    let mut skipped = Vec::new();
    let texts = if b.has_alias || text.contains("%TAG") {
        Default::default()
    } else {
        let mut line_starts = vec![0, 0];
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        let [resources, outputs] = &b.marks;
        let texts = entry_texts(
            text,
            &line_starts,
            resources,
            Section::Resources,
            &mut skipped,
        );
        entry_texts(text, &line_starts, outputs, Section::Outputs, &mut skipped);
        // In the order of the text.
        skipped.sort_unstable_by_key(|(_, _, range)| range.start);
        texts
    };
    Ok((
        YamlTemplate {
            value: b.root.unwrap_or(Value::Null),
            texts,
            skipped,
        },
        b.unusable,
    ))
}

/// Each entry's text in a section: from the start of its key's line to the start of the next
/// key's line (the last: to where the mapping ends), when every key begins its line and the
/// mapping is in block style; none otherwise. Those of kept resources by id, and those of
/// skipped entries into `skipped`.
fn entry_texts<'s>(
    text: &str,
    line_starts: &[usize],
    marks: &Marks<'s>,
    section: Section,
    skipped: &mut Vec<Found<'s>>,
) -> Texts {
    let none = Default::default;
    let (Some(_), Some(end)) = (marks.start, marks.end) else {
        return none();
    };
    let bytes = text.as_bytes();
    // The offset of (line, column) when only spaces precede it on its line.
    let at = |(line, col): (usize, usize)| -> Option<usize> {
        let s = *line_starts.get(line)?;
        let prefix = bytes.get(s..s + col)?;
        prefix.iter().all(|&c| c == b' ').then_some(s + col)
    };
    // Block style only: the first key begins its line, and the last line with text before it
    // (the section's own) opens no flow collection.
    let Some((_, first, col)) = marks.keys.first() else {
        return none();
    };
    if at((*first, *col)).is_none() {
        return none();
    }
    let before = text[..line_starts[*first]]
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if before.is_none_or(|l| l.contains(['{', '['])) {
        return none();
    }
    let close = at(end);
    let kept = marks
        .keys
        .iter()
        .filter(|(k, ..)| matches!(k, Key::Kept(_)));
    let mut out = Texts::with_capacity_and_hasher(kept.count(), Default::default());
    for (i, (id, line, col)) in marks.keys.iter().enumerate() {
        // An entry whose key or end shares a line with other text is compared.
        if at((*line, *col)).is_none() {
            continue;
        }
        let next = match marks.keys.get(i + 1) {
            Some((_, l, c)) => at((*l, *c)).map(|_| line_starts[*l]),
            None => close,
        };
        match next {
            Some(next) if next > line_starts[*line] => {
                let range = line_starts[*line]..next;
                match id {
                    Key::Kept(id) => {
                        out.insert(id.clone(), range);
                    }
                    Key::KeptOutput => {}
                    Key::Skipped(id) => skipped.push((section, *id, range)),
                }
            }
            _ => {}
        }
    }
    out
}

/// Each entry's text in `Resources` and in `Outputs` as a scan of the lines finds it, by id:
/// under a line `Resources:` (or `Outputs:`) at the left margin, each line at the first
/// indentation below it starts an entry, which runs to the next such line or the next line
/// at the margin. A guess, made before parsing to choose the entries [`read_skipping`] skips;
/// where the parse finds them is what a comparison trusts.
pub(crate) fn scan_texts(text: &str) -> [Scan<'_>; 2] {
    let mut out: [Scan; 2] = Default::default();
    let mut seen = [false; 2];
    let mut offset = 0;
    let mut inside: Option<Section> = None;
    let mut indent = None;
    let mut open: Option<(&str, usize)> = None;
    let bytes = text.as_bytes();
    while offset < bytes.len() {
        let start = offset;
        offset = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i + 1);
        let mut end = offset;
        while end > start && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let body = &text[start..end];
        let spaces = body.bytes().take_while(|&b| b == b' ').count();
        let trimmed = &body[spaces..];
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if spaces == 0 {
            if let (Some((id, from)), Some(s)) = (open.take(), inside) {
                out[s as usize].insert(id, &text[from..start]);
            }
            // A section named twice is scanned once: the parser refuses the template.
            inside = body.split_once(':').and_then(|(name, rest)| {
                let rest = rest.trim_start();
                let s = Section::of(name).filter(|s| !seen[*s as usize])?;
                (rest.is_empty() || rest.starts_with('#')).then_some(s)
            });
            if let Some(s) = inside {
                seen[s as usize] = true;
            }
            indent = None;
            continue;
        }
        let Some(section) = inside else { continue };
        if *indent.get_or_insert(spaces) == spaces {
            if let Some((id, from)) = open.take() {
                out[section as usize].insert(id, &text[from..start]);
            }
            if let Some((id, _)) = trimmed.split_once(':') {
                open = Some((id.trim_end(), start));
            }
        }
    }
    if let (Some((id, from)), Some(s)) = (open, inside) {
        out[s as usize].insert(id, &text[from..]);
    }
    out
}

/// Deeper than this, [`plain_resource`] leaves a resource to the parser: far below
/// [`MAX_DEPTH`] however its levels are counted.
const PLAIN_DEPTH: usize = 32;

/// What the value a line leaves open must be.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// The resource's own value: a mapping.
    Resource,
    /// The resource's `Properties`: a mapping, untagged.
    Properties,
    Other,
}

/// A value left open by a line (`key:`, `-`, or a tag alone): a block must start below it.
#[derive(Clone, Copy)]
struct Open {
    /// The column of the key or dash that left it open.
    column: usize,
    tagged: bool,
    role: Role,
    depth: usize,
}

/// A block collection [`plain_resource`] is in.
struct Block<'t> {
    seq: bool,
    indent: usize,
    depth: usize,
    keys: super::load::Seen<&'t str>,
}

impl Block<'_> {
    fn new(seq: bool, indent: usize, depth: usize) -> Self {
        Block {
            seq,
            indent,
            depth,
            keys: Default::default(),
        }
    }
}

/// Whether one resource's text, as [`scan_texts`] finds it (its line `<id>:` first), is in a
/// form whose lines alone say what it means, and reads without error: then the parser need not
/// read it to show either.
///
/// Every line with text is `key: scalar`, `key:`, `- scalar`, `- key: scalar`, `- key:` or `-`,
/// in printable ASCII without a tab or a comment after text, ending in a line feed (after a
/// carriage return or not); a value left open is a block
/// collection on the lines below it. Keys are plain words (letters, digits, `_ . : / -`) that
/// read as themselves, each once in its mapping; scalars are plain (resolving without error),
/// or quoted on one line without escapes, with at most a known short-form tag; each block's
/// lines share one indentation. The resource is a mapping with a string `Type` and, if any, a
/// mapping of `Properties`. No anchor, alias, flow collection, block scalar or scalar over
/// two lines: nothing before or after the text can change what it means.
///
/// `false` says only that this reading cannot tell.
pub(crate) fn plain_resource(id: &str, text: &str) -> bool {
    plain_entry(id, text, true)
}

/// [`plain_resource`] for an output's text: the same lines, but its value is any block
/// collection, with no `Type` or `Properties` asked of it.
pub(crate) fn plain_output(id: &str, text: &str) -> bool {
    plain_entry(id, text, false)
}

fn plain_entry(id: &str, text: &str, resource: bool) -> bool {
    // A line ends in a line feed, or a carriage return and a line feed.
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let Some(first) = lines.next() else {
        return false;
    };
    let first = first.trim_end_matches(' ');
    let column = first.len() - first.trim_start_matches(' ').len();
    if first[column..].strip_suffix(':') != Some(id) || !plain_key(id) {
        return false;
    }
    let mut open = Some(Open {
        column,
        tagged: false,
        role: if resource {
            Role::Resource
        } else {
            Role::Other
        },
        depth: 3,
    });
    let mut blocks: Vec<Block> = Vec::new();
    let mut typed = false;
    for line in lines {
        if !line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return false;
        }
        let body = line.trim_end_matches(' ');
        let trimmed = body.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bytes = trimmed.as_bytes();
        if memchr::memchr_iter(b'#', bytes).any(|i| i > 0 && bytes[i - 1] == b' ') {
            return false;
        }
        let indent = body.len() - trimmed.len();
        if indent <= column {
            return false;
        }
        let dash = trimmed == "-" || trimmed.starts_with("- ");
        if let Some(o) = open.take() {
            // A block starts below what was left open; a sequence may start at a key's column.
            let compact = dash && indent == o.column && o.role == Role::Other && !o.tagged;
            if !(indent > o.column || compact) || (o.role != Role::Other && (dash || o.tagged)) {
                return false;
            }
            let depth = o.depth + 1 + usize::from(o.tagged);
            if depth > PLAIN_DEPTH {
                return false;
            }
            blocks.push(Block::new(dash, indent, depth));
        } else {
            while blocks.last().is_some_and(|b| b.indent > indent) {
                blocks.pop();
            }
            // A sequence at its key's column ends at the mapping's next key.
            if !dash && blocks.last().is_some_and(|b| b.seq && b.indent == indent) {
                blocks.pop();
            }
            match blocks.last() {
                Some(b) if b.indent == indent && b.seq == dash => {}
                _ => return false,
            }
        }
        let resource_level = blocks.len() == 1;
        let Some(top) = blocks.last() else {
            return false;
        };
        let depth = top.depth;
        let (column, content) = if dash {
            let rest = &trimmed[1..];
            let content = rest.trim_start_matches(' ');
            if content == "-" || content.starts_with("- ") {
                return false;
            }
            if split_key(content).is_none() {
                // `-` or `- scalar`: an item of the sequence on top.
                match line_value(content) {
                    LineValue::Bad => return false,
                    LineValue::Open { tagged } => {
                        open = Some(Open {
                            column: indent,
                            tagged,
                            role: Role::Other,
                            depth,
                        })
                    }
                    LineValue::Scalar { .. } => {}
                }
                continue;
            }
            // `- key: ...`: a mapping whose keys are at the column after the dash.
            let column = indent + 1 + (rest.len() - content.len());
            if depth + 1 > PLAIN_DEPTH {
                return false;
            }
            blocks.push(Block::new(false, column, depth + 1));
            (column, content)
        } else {
            (indent, trimmed)
        };
        // A `key: ...` line, in the mapping on top.
        let Some((key, value)) = split_key(content) else {
            return false;
        };
        let Some(map) = blocks.last_mut() else {
            return false;
        };
        if !plain_key(key) || map.keys.contains(&key) {
            return false;
        }
        map.keys.insert(key);
        let depth = map.depth;
        let at_resource = resource && resource_level && column == indent;
        let role = if at_resource && key == "Properties" {
            Role::Properties
        } else {
            Role::Other
        };
        match line_value(value) {
            LineValue::Bad => return false,
            LineValue::Open { tagged: true } if role == Role::Properties => return false,
            LineValue::Open { tagged } => {
                open = Some(Open {
                    column,
                    tagged,
                    role,
                    depth,
                })
            }
            LineValue::Scalar { string } => {
                if role == Role::Properties {
                    return false;
                }
                if at_resource && key == "Type" {
                    if !string {
                        return false;
                    }
                    typed = true;
                }
            }
        }
    }
    // A value left open at the end is empty: the parser says what it is.
    open.is_none() && (typed || !resource)
}

/// Where the first `a` followed by `b` is in `s`.
fn find_pair(s: &str, a: u8, b: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    memchr::memchr_iter(a, bytes).find(|&i| bytes.get(i + 1) == Some(&b))
}

/// A `key: value` or `key:` line's key and value (empty when none).
fn split_key(s: &str) -> Option<(&str, &str)> {
    match find_pair(s, b':', b' ') {
        Some(at) => Some((&s[..at], s[at + 2..].trim_start_matches(' '))),
        None => s.strip_suffix(':').map(|k| (k, "")),
    }
}

/// A plain word, at most 256 bytes, that reads as itself: not a number, boolean or null.
fn plain_key(key: &str) -> bool {
    key.len() <= 256
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'))
        && !key.ends_with(':')
        && (plain_string(key)
            || matches!(resolve(key.to_string()), Ok(Value::String(s)) if s == key))
}

/// What the rest of a line after `key:` or `-` is, to [`plain_resource`].
enum LineValue {
    /// A scalar that reads without error; `string` when it reads as an untagged string.
    Scalar { string: bool },
    /// Nothing, or a known short-form tag alone: the value is a block below.
    Open { tagged: bool },
    /// Anything else.
    Bad,
}

fn line_value(v: &str) -> LineValue {
    if v.is_empty() {
        return LineValue::Open { tagged: false };
    }
    let (tagged, rest) = match v.strip_prefix('!') {
        Some(t) => {
            let (name, rest) = t.split_once(' ').unwrap_or((t, ""));
            if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric())
                || short_function(name).is_none()
            {
                return LineValue::Bad;
            }
            (true, rest.trim_start_matches(' '))
        }
        None => (false, v),
    };
    if rest.is_empty() {
        return LineValue::Open { tagged: true };
    }
    let quoted = |q: char| {
        rest.len() >= 2 && rest.starts_with(q) && rest.ends_with(q) && {
            let inner = &rest[1..rest.len() - 1];
            if q == '\'' {
                // Each quote inside is one of a pair, `''`.
                let mut bytes = inner.bytes();
                loop {
                    match bytes.next() {
                        Some(b'\'') if bytes.next() != Some(b'\'') => break false,
                        Some(_) => {}
                        None => break true,
                    }
                }
            } else {
                !inner.contains(['"', '\\'])
            }
        }
    };
    if quoted('\'') || quoted('"') {
        return LineValue::Scalar { string: !tagged };
    }
    let b = rest.as_bytes();
    let starts = b[0].is_ascii_alphanumeric()
        || matches!(b[0], b'/' | b'_' | b'$' | b'.' | b'(')
        || (b[0] == b'-' && b.get(1).is_some_and(u8::is_ascii_digit));
    if !starts || find_pair(rest, b':', b' ').is_some() || rest.ends_with(':') {
        return LineValue::Bad;
    }
    // A string by its first look needs no copy to resolve.
    if plain_string(rest) {
        return LineValue::Scalar { string: !tagged };
    }
    match resolve(rest.to_string()) {
        Ok(Value::String(_)) => LineValue::Scalar { string: !tagged },
        Ok(_) => LineValue::Scalar { string: false },
        Err(_) => LineValue::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// A resource's text in the shapes a template has and many it should not: each line a key,
    /// a dash or a comment at one of a few indentations, with keys and scalars that are fine,
    /// odd, or wrong.
    fn resource() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "Type",
            "Properties",
            "Name",
            "A",
            "b.c",
            "Fn::GetAtt",
            "1",
            "true",
            "a b",
            "x:",
            "_k",
            "Type",
            "'q'",
            "K",
        ]);
        let value = prop::sample::select(vec![
            "x",
            "'q'",
            "'a''b'",
            "\"d\"",
            "\"a\\b\"",
            "!Ref R",
            "!GetAtt A.B",
            "!Bogus x",
            "!Sub",
            "!If",
            "5",
            "1e400",
            "123456789012345678901234567890",
            "-1",
            "- a",
            "a: b",
            "a #c",
            "${AWS::Region}",
            "{a}",
            "[b]",
            "a,b",
            "*x",
            "&y z",
            "|",
            ">",
            "@x",
            "`x",
            "%x",
            "\u{e9}",
            "\t1",
            "'open",
            "\"open",
            ".inf",
            "~",
            "null",
            "a*b",
            "?x",
            "x?",
            "a}",
            "a:b",
            "'a' b",
            "!Sub 'x'",
            "-",
            "",
        ]);
        let line = (0..8u8, key, value, 0..6usize).prop_map(|(kind, k, v, indent)| {
            let pad = " ".repeat([4, 4, 6, 6, 8, 5][indent]);
            match kind {
                0..=3 => format!("{pad}{k}: {v}"),
                4 => format!("{pad}{k}:"),
                5 => format!("{pad}- {v}"),
                6 => format!("{pad}- {k}: {v}"),
                _ => format!("{pad}# {v}"),
            }
        });
        (prop::collection::vec(line, 0..8), any::<bool>()).prop_map(|(lines, typed)| {
            let mut text = String::from("  R:\n");
            if typed {
                text.push_str("    Type: AWS::X\n");
            }
            for l in lines {
                text.push_str(&l);
                text.push('\n');
            }
            text
        })
    }

    /// A value written as a template's author writes it.
    #[derive(Clone, Debug)]
    enum Tree {
        Scalar(&'static str),
        Map(Vec<(&'static str, Tree)>),
        Seq(Vec<Tree>),
        /// A short-form tag on a collection.
        Tagged(&'static str, Box<Tree>),
    }

    fn tree() -> impl Strategy<Value = Tree> {
        let scalar = prop::sample::select(vec![
            "x",
            "a b",
            "'q'",
            "'a''b'",
            "\"d\"",
            "!Ref R",
            "!GetAtt A.B",
            "!Sub 'x-${R}'",
            "5",
            "-1",
            "0.5",
            "true",
            "null",
            "${AWS::Region}",
            "a,b",
            "a}",
            "arn:aws:s3:::b/*",
            "10.0.0.0/16",
            "''",
            "1e3",
            "x.y",
            "(a)",
        ])
        .prop_map(Tree::Scalar);
        let key = prop::sample::select(vec![
            "Name",
            "Value",
            "Key",
            "Fn::If",
            "a.b",
            "x_y",
            "Tags",
            "Statement",
            "Action",
        ]);
        scalar.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec((key.clone(), inner.clone()), 1..4).prop_map(Tree::Map),
                prop::collection::vec(inner.clone(), 1..4).prop_map(Tree::Seq),
                (
                    prop::sample::select(vec!["!Join", "!If", "!Sub", "!Select"]),
                    inner
                )
                    .prop_map(|(tag, t)| {
                        // A tag on a collection: a scalar goes into a sequence.
                        let t = match t {
                            Tree::Scalar(_) => Tree::Seq(vec![t]),
                            t => t,
                        };
                        Tree::Tagged(tag, Box::new(t))
                    }),
            ]
        })
    }

    /// Writes `t` in block style at `indent`, nested blocks `width` deeper, a mapping's
    /// sequences at its keys' column when `compact`.
    fn write(t: &Tree, indent: usize, width: usize, compact: bool, out: &mut String) {
        let pad = " ".repeat(indent);
        // A collection's opening: the tag left on the line before, if any.
        fn open(t: &Tree) -> (String, &Tree) {
            match t {
                Tree::Tagged(tag, inner) => (format!(" {tag}"), &**inner),
                other => (String::new(), other),
            }
        }
        match t {
            Tree::Scalar(s) => out.push_str(&format!("{pad}{s}\n")),
            Tree::Tagged(_, inner) => write(inner, indent, width, compact, out),
            Tree::Map(entries) => {
                for (k, v) in entries {
                    match v {
                        Tree::Scalar(s) => out.push_str(&format!("{pad}{k}: {s}\n")),
                        v => {
                            let (tag, inner) = open(v);
                            out.push_str(&format!("{pad}{k}:{tag}\n"));
                            let same = compact && tag.is_empty() && matches!(inner, Tree::Seq(_));
                            let at = if same { indent } else { indent + width };
                            write(inner, at, width, compact, out);
                        }
                    }
                }
            }
            Tree::Seq(items) => {
                for item in items {
                    match item {
                        Tree::Scalar(s) => out.push_str(&format!("{pad}- {s}\n")),
                        Tree::Map(_) => {
                            let mut inner = String::new();
                            write(item, indent + 2, width, compact, &mut inner);
                            out.push_str(&pad);
                            out.push_str("- ");
                            out.push_str(&inner[indent + 2..]);
                        }
                        v => {
                            let (tag, inner) = open(v);
                            out.push_str(&format!("{pad}-{tag}\n"));
                            write(inner, indent + width, width, compact, out);
                        }
                    }
                }
            }
        }
    }

    /// Resources as authors write them, most plain, some with one line broken: shifted, a
    /// comment after it, its `: ` lost, written twice, or a tab.
    fn written() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(
                (prop::sample::select(vec!["Name", "Tags", "Policy"]), tree()),
                0..4,
            ),
            2..5usize,
            any::<bool>(),
            (0..12u8, any::<prop::sample::Index>()),
        )
            .prop_map(|(props, width, compact, (how, at))| {
                let mut text = String::from("  R:\n    Type: AWS::X\n");
                if !props.is_empty() {
                    text.push_str("    Properties:\n");
                    write(&Tree::Map(props), 4 + width, width, compact, &mut text);
                }
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                let i = at.index(lines.len());
                match how {
                    0 => lines[i].insert(0, ' '),
                    1 if lines[i].starts_with("  ") => {
                        lines[i].remove(0);
                    }
                    2 => lines[i].push_str(" # c"),
                    3 => lines[i] = lines[i].replacen(": ", ":", 1),
                    4 => lines.insert(i, lines[i].clone()),
                    5 => lines[i] = lines[i].replacen(' ', "\t", 1),
                    // A carriage return alone, a line break of its own.
                    6 => {
                        let mid = lines[i].len() / 2;
                        lines[i].insert(mid, '\r');
                    }
                    _ => {}
                }
                // Lines end in a line feed, or in a carriage return and a line feed.
                let end = if how == 7 || how == 8 { "\r\n" } else { "\n" };
                lines.iter().map(|l| format!("{l}{end}")).collect()
            })
    }

    /// What `plain_resource` (and `plain_output`) accepts, the parser reads without error, to
    /// the same value on its own and inside a template, where the parser finds it exactly where
    /// the scan does.
    #[test]
    #[expect(
        clippy::print_stderr,
        reason = "the tally of cases goes to the test log"
    )]
    fn a_plain_resource_reads_as_its_lines_say() {
        let cases = std::env::var("PLAIN_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(4096);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let (accepted, in_context) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        let outputs = std::cell::Cell::new(0);
        runner
            .run(&prop_oneof![resource(), written()], |text| {
                for section in Section::BOTH {
                    let resource = section == Section::Resources;
                    let plain = if resource {
                        plain_resource("R", &text)
                    } else {
                        plain_output("R", &text)
                    };
                    if !plain {
                        continue;
                    }
                    if resource {
                        accepted.set(accepted.get() + 1);
                    } else {
                        outputs.set(outputs.get() + 1);
                    }
                    let alone = read_resource(&text);
                    let Ok(Some(alone)) = alone else {
                        panic!(
                            "accepted, but alone: {:?}\n{text}",
                            alone.err().map(|e| e.message)
                        );
                    };
                    if resource {
                        super::super::load::check_resource(&alone).unwrap();
                    }
                    for (before, after) in [
                        ("", ""),
                        (
                            "  P:\n    Type: X\n",
                            "  N:\n    Type: X\nMetadata:\n  O:\n    Value: 1\n",
                        ),
                    ] {
                        let (name, first) = if resource {
                            ("Resources", String::new())
                        } else {
                            ("Outputs", "Resources:\n  Q:\n    Type: X\n".to_string())
                        };
                        let whole = format!("{first}{name}:\n{before}{text}{after}");
                        // Only what the scan finds as an entry's text is ever given to it.
                        let scan = scan_texts(&whole);
                        let found = scan[section as usize].get("R");
                        let Some(&scanned) = found.filter(|t| **t == text) else {
                            continue;
                        };
                        in_context.set(in_context.get() + 1);
                        let skip = Skipped::from_iter(["R"]);
                        let none = Skipped::default();
                        let mut left = [0, 1].map(|_| Left {
                            skipped: &none,
                            stubs: &none,
                        });
                        left[section as usize].skipped = &skip;
                        let read =
                            read(&whole).unwrap_or_else(|e| panic!("{}\n{whole}", e.message));
                        assert_eq!(read.value[name]["R"], alone, "{whole}");
                        // Where the parser finds it, read or skipped.
                        let start = super::super::load::offset_in(&whole, scanned);
                        let range = start..start + scanned.len();
                        if resource {
                            assert_eq!(read.texts.get("R"), Some(&range));
                        }
                        let skipping = read_skipping(&whole, left)
                            .unwrap_or_else(|e| panic!("{}\n{whole}", e.message))
                            .expect("no anchor");
                        assert_eq!(skipping.skipped, [(section, "R", range)], "{whole}");
                    }
                }
                Ok(())
            })
            .unwrap();
        eprintln!(
            "{cases} cases, {} accepted as resources, {} as outputs, {} readings in a template",
            accepted.get(),
            outputs.get(),
            in_context.get()
        );
        assert!(
            accepted.get() * 20 > cases as usize && in_context.get() > accepted.get(),
            "too few accepted or read in a template: the test says little"
        );
    }
}
