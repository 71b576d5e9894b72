//! Values of a template, intrinsic functions included, as Rust types.
//!
//! Builders never hand-build `{"Ref": ...}` maps or `${...}` strings by concatenation: they
//! construct an [`Expr`], and rendering turns it into CloudFormation's JSON form.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A value in a template: a literal, a list, a map, or an intrinsic function.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Expr>),
    Map(BTreeMap<String, Expr>),
    /// `{"Ref": name}`: a parameter, a resource's physical id, or a pseudo parameter.
    Ref(String),
    /// `{"Fn::GetAtt": [resource, attribute]}`.
    GetAtt(String, String),
    /// `{"Fn::Sub": template}` or `{"Fn::Sub": [template, {vars}]}`.
    Sub(String, BTreeMap<String, Expr>),
    /// `{"Fn::Join": [delimiter, [values]]}`.
    Join(String, Vec<Expr>),
    /// `{"Fn::If": [condition, then, else]}`.
    If(String, Box<Expr>, Box<Expr>),
    /// `{"Fn::ImportValue": export}`.
    ImportValue(Box<Expr>),
    /// `{"Fn::Select": [index, list]}`.
    Select(u32, Box<Expr>),
    /// `{"Fn::Split": [delimiter, source]}`.
    Split(String, Box<Expr>),
    /// `{"Fn::Equals": [a, b]}` (conditions).
    Equals(Box<Expr>, Box<Expr>),
    /// `{"Fn::Not": [condition]}`.
    Not(Box<Expr>),
    /// `{"Fn::And": [...]}`.
    And(Vec<Expr>),
    /// `{"Fn::Or": [...]}`.
    Or(Vec<Expr>),
    /// `{"Condition": name}` inside a condition expression.
    Condition(String),
    /// `{"Fn::FindInMap": [map, top, second]}`.
    FindInMap(String, Box<Expr>, Box<Expr>),
}

/// Pseudo parameters.
pub mod pseudo {
    pub const ACCOUNT_ID: &str = "AWS::AccountId";
    pub const REGION: &str = "AWS::Region";
    pub const PARTITION: &str = "AWS::Partition";
    pub const STACK_NAME: &str = "AWS::StackName";
    pub const NO_VALUE: &str = "AWS::NoValue";
}

impl Expr {
    pub fn str(s: impl Into<String>) -> Self {
        Expr::Str(s.into())
    }

    pub fn reference(name: impl Into<String>) -> Self {
        Expr::Ref(name.into())
    }

    pub fn get_att(resource: impl Into<String>, attribute: impl Into<String>) -> Self {
        Expr::GetAtt(resource.into(), attribute.into())
    }

    /// `Fn::Sub` with no variable map: `${Name}` refers to parameters, resources and pseudo
    /// parameters.
    pub fn sub(template: impl Into<String>) -> Self {
        Expr::Sub(template.into(), BTreeMap::new())
    }

    pub fn sub_with(template: impl Into<String>, vars: BTreeMap<String, Expr>) -> Self {
        Expr::Sub(template.into(), vars)
    }

    pub fn join(delimiter: impl Into<String>, parts: Vec<Expr>) -> Self {
        Expr::Join(delimiter.into(), parts)
    }

    pub fn if_(condition: impl Into<String>, then: Expr, otherwise: Expr) -> Self {
        Expr::If(condition.into(), Box::new(then), Box::new(otherwise))
    }

    pub fn import_value(export: Expr) -> Self {
        Expr::ImportValue(Box::new(export))
    }

    pub fn list<I: IntoIterator<Item = Expr>>(items: I) -> Self {
        Expr::List(items.into_iter().collect())
    }

    /// `Ref AWS::NoValue`: removes the property it is the value of.
    pub fn no_value() -> Self {
        Expr::Ref(pseudo::NO_VALUE.to_string())
    }

    /// Names of the parameters and resources this expression refers to (for `DependsOn`-free
    /// ordering checks and validation), pseudo parameters excluded.
    pub fn references(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        // An Expr's JSON form is a template value: the one walker reads it.
        if let Ok(v) = serde_json::to_value(self) {
            crate::refs::referenced_ids(&v, &mut out);
        }
        out.into_iter().collect()
    }

    /// Names of the conditions this expression uses (`Fn::If`, `Condition`).
    pub fn conditions(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| match e {
            Expr::If(c, _, _) | Expr::Condition(c) => out.push(c.clone()),
            _ => {}
        });
        out.sort();
        out.dedup();
        out
    }

    fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::List(items) | Expr::Join(_, items) | Expr::And(items) | Expr::Or(items) => {
                items.iter().for_each(|v| v.walk(f))
            }
            Expr::Map(map) | Expr::Sub(_, map) => map.values().for_each(|v| v.walk(f)),
            Expr::If(_, a, b) | Expr::Equals(a, b) | Expr::FindInMap(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::ImportValue(e) | Expr::Select(_, e) | Expr::Split(_, e) | Expr::Not(e) => {
                e.walk(f)
            }
            _ => {}
        }
    }
}

/// The `${...}` variables of an `Fn::Sub` template (`${!Literal}` escapes excluded).
pub fn sub_variables(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') && !name.is_empty() {
            out.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

impl From<&str> for Expr {
    fn from(s: &str) -> Self {
        Expr::Str(s.to_string())
    }
}

impl From<String> for Expr {
    fn from(s: String) -> Self {
        Expr::Str(s)
    }
}

impl From<bool> for Expr {
    fn from(b: bool) -> Self {
        Expr::Bool(b)
    }
}

impl From<i64> for Expr {
    fn from(n: i64) -> Self {
        Expr::Int(n)
    }
}

impl From<u32> for Expr {
    fn from(n: u32) -> Self {
        Expr::Int(i64::from(n))
    }
}

impl<V: Into<Expr>> FromIterator<(String, V)> for Expr {
    fn from_iter<T: IntoIterator<Item = (String, V)>>(iter: T) -> Self {
        Expr::Map(iter.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

/// Builds an [`Expr::Map`] from `key => value` pairs.
#[macro_export]
macro_rules! map {
    ($($key:expr => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = ::std::collections::BTreeMap::<String, $crate::Expr>::new();
        $( m.insert(String::from($key), $crate::Expr::from($value)); )*
        $crate::Expr::Map(m)
    }};
}

struct OneKey<'a, V: Serialize + ?Sized>(&'a str, &'a V);

impl<V: Serialize + ?Sized> Serialize for OneKey<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

/// A JSON array of expressions of mixed origin (`[delimiter, [values]]` and the like).
struct Tuple<'a>(Vec<&'a Expr>);

impl Serialize for Tuple<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in &self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Expr::Bool(b) => serializer.serialize_bool(*b),
            Expr::Int(n) => serializer.serialize_i64(*n),
            Expr::Float(x) => serializer.serialize_f64(*x),
            Expr::Str(s) => serializer.serialize_str(s),
            Expr::List(items) => items.serialize(serializer),
            Expr::Map(map) => map.serialize(serializer),
            Expr::Ref(name) => OneKey("Ref", name).serialize(serializer),
            Expr::GetAtt(resource, attribute) => {
                OneKey("Fn::GetAtt", &[resource, attribute]).serialize(serializer)
            }
            Expr::Sub(template, vars) if vars.is_empty() => {
                OneKey("Fn::Sub", template).serialize(serializer)
            }
            Expr::Sub(template, vars) => OneKey(
                "Fn::Sub",
                &Tuple(vec![&Expr::Str(template.clone()), &Expr::Map(vars.clone())]),
            )
            .serialize(serializer),
            Expr::Join(delimiter, parts) => OneKey(
                "Fn::Join",
                &Tuple(vec![
                    &Expr::Str(delimiter.clone()),
                    &Expr::List(parts.clone()),
                ]),
            )
            .serialize(serializer),
            Expr::If(condition, then, otherwise) => OneKey(
                "Fn::If",
                &Tuple(vec![&Expr::Str(condition.clone()), then, otherwise]),
            )
            .serialize(serializer),
            Expr::ImportValue(export) => OneKey("Fn::ImportValue", export).serialize(serializer),
            Expr::Select(index, list) => OneKey(
                "Fn::Select",
                &Tuple(vec![&Expr::Str(index.to_string()), list]),
            )
            .serialize(serializer),
            Expr::Split(delimiter, source) => OneKey(
                "Fn::Split",
                &Tuple(vec![&Expr::Str(delimiter.clone()), source]),
            )
            .serialize(serializer),
            Expr::Equals(a, b) => OneKey("Fn::Equals", &Tuple(vec![a, b])).serialize(serializer),
            Expr::Not(c) => OneKey("Fn::Not", &Tuple(vec![c])).serialize(serializer),
            Expr::And(items) => OneKey("Fn::And", items).serialize(serializer),
            Expr::Or(items) => OneKey("Fn::Or", items).serialize(serializer),
            Expr::Condition(name) => OneKey("Condition", name).serialize(serializer),
            Expr::FindInMap(map, top, second) => OneKey(
                "Fn::FindInMap",
                &Tuple(vec![&Expr::Str(map.clone()), top, second]),
            )
            .serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(e: &Expr) -> String {
        serde_json::to_string(e).unwrap()
    }

    #[test]
    fn intrinsics_render_in_json_form() {
        assert_eq!(json(&Expr::reference("Topic")), r#"{"Ref":"Topic"}"#);
        assert_eq!(
            json(&Expr::get_att("Queue", "Arn")),
            r#"{"Fn::GetAtt":["Queue","Arn"]}"#
        );
        assert_eq!(
            json(&Expr::sub("${AWS::StackName}-x")),
            r#"{"Fn::Sub":"${AWS::StackName}-x"}"#
        );
        let vars = BTreeMap::from([("Q".to_string(), Expr::get_att("Queue", "QueueName"))]);
        assert_eq!(
            json(&Expr::sub_with("${Q}-dlq", vars)),
            r#"{"Fn::Sub":["${Q}-dlq",{"Q":{"Fn::GetAtt":["Queue","QueueName"]}}]}"#
        );
        assert_eq!(
            json(&Expr::join(",", vec!["a".into(), Expr::reference("B")])),
            r#"{"Fn::Join":[",",["a",{"Ref":"B"}]]}"#
        );
        assert_eq!(
            json(&Expr::if_("HasEmail", "x".into(), Expr::no_value())),
            r#"{"Fn::If":["HasEmail","x",{"Ref":"AWS::NoValue"}]}"#
        );
        assert_eq!(
            json(&Expr::import_value(Expr::sub("${Env}-QueueArn"))),
            r#"{"Fn::ImportValue":{"Fn::Sub":"${Env}-QueueArn"}}"#
        );
        assert_eq!(
            json(&Expr::Not(Box::new(Expr::Equals(
                Box::new(Expr::reference("Email")),
                Box::new("".into())
            )))),
            r#"{"Fn::Not":[{"Fn::Equals":[{"Ref":"Email"},""]}]}"#
        );
        assert_eq!(
            json(&Expr::Select(
                0,
                Box::new(Expr::Split(",".into(), Box::new(Expr::reference("L"))))
            )),
            r#"{"Fn::Select":["0",{"Fn::Split":[",",{"Ref":"L"}]}]}"#
        );
    }

    #[test]
    fn references_cover_sub_variables_but_not_pseudo_parameters() {
        let vars = BTreeMap::from([("Local".to_string(), Expr::reference("Param"))]);
        let e = Expr::list([
            Expr::sub_with("${Queue.Arn}/${AWS::Region}/${Local}/${!Literal}", vars),
            Expr::get_att("Topic", "TopicName"),
            Expr::reference("AWS::AccountId"),
        ]);
        assert_eq!(e.references(), vec!["Param", "Queue", "Topic"]);
    }

    #[test]
    fn conditions_are_collected() {
        let e = Expr::if_(
            "A",
            Expr::And(vec![Expr::Condition("B".into())]),
            Expr::no_value(),
        );
        assert_eq!(e.conditions(), vec!["A", "B"]);
    }
}
