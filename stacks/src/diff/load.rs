//! Reading any CloudFormation template, JSON or YAML (short intrinsic tags included), into
//! CloudFormation's JSON form.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use serde_norway::value::{Tag, TaggedValue};

/// A template that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    /// The file (or other source) it came from.
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Parses template text. JSON when it starts with `{`, YAML otherwise; `origin` names the
/// source in errors.
pub fn parse_template(text: &str, origin: &str) -> Result<Value, LoadError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let value = if trimmed.starts_with('{') {
        serde_json::from_str::<Value>(trimmed).map_err(|e| LoadError {
            origin: origin.to_string(),
            line: Some(e.line()),
            message: e.to_string(),
        })?
    } else {
        let yaml: serde_norway::Value = serde_norway::from_str(trimmed).map_err(|e| LoadError {
            origin: origin.to_string(),
            line: e.location().map(|l| l.line()),
            message: e.to_string(),
        })?;
        from_yaml(yaml).map_err(|message| LoadError {
            origin: origin.to_string(),
            line: None,
            message,
        })?
    };
    let Value::Object(map) = &value else {
        return Err(LoadError {
            origin: origin.to_string(),
            line: None,
            message: "a template is a mapping with a `Resources` section".into(),
        });
    };
    if !map.contains_key("Resources") && !map.is_empty() {
        return Err(LoadError {
            origin: origin.to_string(),
            line: None,
            message: "not a CloudFormation template: it has no `Resources` section".into(),
        });
    }
    Ok(normalize(value))
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
    /// The top-level keys in document order, each with its raw value (`None` for `Resources`).
    top: Vec<(String, Option<&'a RawValue>)>,
    /// The resources in document order.
    pub(crate) resources: Vec<(String, &'a RawValue)>,
}

/// Raw entries of a JSON object, in document order.
type Entries<'a> = Vec<(String, Option<&'a RawValue>)>;

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
        while let Some(key) = map.next_key::<String>()? {
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

/// Whether every name is there once.
fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    names.into_iter().all(|n| seen.insert(n))
}

impl<'a> RawTemplate<'a> {
    /// Reads JSON template text this far. `Ok(None)` when the text is not JSON, or is JSON this
    /// reading leaves to [`parse_template`] (no `Resources` mapping, a key twice): the caller
    /// then parses it whole. Syntax errors are reported as [`parse_template`] reports them.
    pub(crate) fn read(text: &'a str, origin: &str) -> Result<Option<Self>, LoadError> {
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if !trimmed.starts_with('{') {
            return Ok(None);
        }
        let read = |text| -> serde_json::Result<_> {
            let mut d = serde_json::Deserializer::from_str(text);
            let read = serde::de::DeserializeSeed::deserialize(RawMap { split: true }, &mut d)?;
            d.end()?;
            Ok(read)
        };
        let (top, resources) = match read(trimmed) {
            Ok(read) => read,
            // `Resources` is not a mapping.
            Err(e) if e.classify() == serde_json::error::Category::Data => return Ok(None),
            Err(e) => {
                return Err(LoadError {
                    origin: origin.to_string(),
                    line: Some(e.line()),
                    message: e.to_string(),
                })
            }
        };
        let Some(resources) = resources else {
            return Ok(None);
        };
        if !distinct(top.iter().map(|(k, _)| k.as_str()))
            || !distinct(resources.iter().map(|(k, _)| k.as_str()))
        {
            return Ok(None);
        }
        let resources = resources
            .into_iter()
            .filter_map(|(id, raw)| Some((id, raw?)))
            .collect();
        Ok(Some(RawTemplate { top, resources }))
    }

    /// The template in CloudFormation's JSON form with only the resources `keep` names, exactly
    /// as [`parse_template`] would give them; `parsed` holds resources already read.
    pub(crate) fn assemble(
        &self,
        keep: impl Fn(&str) -> bool,
        parsed: &mut std::collections::BTreeMap<String, Value>,
    ) -> Value {
        let mut out = Map::new();
        for (key, raw) in &self.top {
            let value = match raw {
                Some(raw) => parse_raw(raw),
                None => {
                    let mut resources = Map::new();
                    for (id, raw) in self.resources.iter().filter(|(id, _)| keep(id)) {
                        let value = parsed.remove(id).unwrap_or_else(|| parse_raw(raw));
                        resources.insert(id.clone(), value);
                    }
                    normalize_keys(&mut resources);
                    Value::Object(resources)
                }
            };
            out.insert(key.clone(), value);
        }
        normalize_keys(&mut out);
        Value::Object(out)
    }
}

/// One value of a template whose text has been read once already, normalized.
pub(crate) fn parse_raw(raw: &RawValue) -> Value {
    // The text was read as JSON a first time: it parses.
    normalize(serde_json::from_str(raw.get()).unwrap_or(Value::Null))
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

fn from_yaml(v: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(|e| e.to_string())?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(from_yaml).collect::<Result<_, _>>()?)
        }
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                if out.insert(key.clone(), from_yaml(v)?).is_some() {
                    return Err(format!("duplicate key `{key}`"));
                }
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => short_form(*tagged)?,
    })
}

/// `!Ref x` → `{"Ref": x}`, `!GetAtt a.b` → `{"Fn::GetAtt": [a, b]}`, `!Sub s` →
/// `{"Fn::Sub": s}`, and so on for every short form CloudFormation accepts.
fn short_form(tagged: TaggedValue) -> Result<Value, String> {
    let TaggedValue { tag, value } = tagged;
    let name = tag_name(&tag);
    let inner = from_yaml(value)?;
    let key = match name.as_str() {
        "Ref" => "Ref",
        "Condition" => "Condition",
        "GetAtt" => {
            let v = match inner {
                Value::String(s) => split_get_att(&s),
                other => other,
            };
            return Ok(single("Fn::GetAtt", v));
        }
        other => {
            const FNS: [&str; 18] = [
                "Base64",
                "Cidr",
                "FindInMap",
                "GetAZs",
                "ImportValue",
                "Join",
                "Select",
                "Split",
                "Sub",
                "Transform",
                "And",
                "Equals",
                "If",
                "Not",
                "Or",
                "Length",
                "ToJsonString",
                "ForEach",
            ];
            if FNS.contains(&other) {
                return Ok(single(&format!("Fn::{other}"), inner));
            }
            return Err(format!("unknown tag `!{other}`"));
        }
    };
    Ok(single(key, inner))
}

fn tag_name(tag: &Tag) -> String {
    tag.to_string().trim_start_matches('!').to_string()
}

fn single(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), value);
    Value::Object(m)
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
