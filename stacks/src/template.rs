//! A typed CloudFormation template and its deterministic rendering to JSON and YAML.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Expr;

/// CloudFormation's hard limits we check before anything is sent.
pub mod limits {
    pub const RESOURCES: usize = 500;
    pub const PARAMETERS: usize = 200;
    pub const OUTPUTS: usize = 200;
    /// Largest template body accepted inline in a request (bytes).
    pub const BODY_BYTES: usize = 51_200;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Template {
    #[serde(rename = "AWSTemplateFormatVersion")]
    pub format_version: &'static str,
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "Metadata", skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Expr>,
    #[serde(rename = "Parameters", skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Parameter>,
    #[serde(rename = "Conditions", skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, Expr>,
    #[serde(rename = "Resources")]
    pub resources: BTreeMap<String, Resource>,
    #[serde(rename = "Outputs", skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Output>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    #[serde(rename = "Type")]
    pub type_: String,
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "Default", skip_serializing_if = "Option::is_none")]
    pub default: Option<Expr>,
    #[serde(rename = "AllowedValues", skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<String>,
    #[serde(rename = "AllowedPattern", skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    #[serde(rename = "NoEcho", skip_serializing_if = "std::ops::Not::not")]
    pub no_echo: bool,
}

impl Parameter {
    pub fn string(description: impl Into<String>) -> Self {
        Parameter {
            type_: "String".into(),
            description: Some(description.into()),
            default: None,
            allowed_values: Vec::new(),
            allowed_pattern: None,
            no_echo: false,
        }
    }

    pub fn with_default(mut self, default: impl Into<Expr>) -> Self {
        self.default = Some(default.into());
        self
    }
}

/// What CloudFormation does with a resource's physical resource when it leaves the stack
/// (`DeletionPolicy`) or is replaced (`UpdateReplacePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Policy {
    Delete,
    Retain,
    Snapshot,
    RetainExceptOnCreate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    #[serde(rename = "Type")]
    pub type_: String,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(rename = "DependsOn", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(rename = "Metadata", skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Expr>,
    #[serde(rename = "Properties", skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Expr>,
    #[serde(rename = "DeletionPolicy", skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<Policy>,
    #[serde(
        rename = "UpdateReplacePolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub update_replace_policy: Option<Policy>,
}

impl Resource {
    pub fn new(type_: impl Into<String>) -> Self {
        Resource {
            type_: type_.into(),
            condition: None,
            depends_on: Vec::new(),
            metadata: BTreeMap::new(),
            properties: BTreeMap::new(),
            deletion_policy: None,
            update_replace_policy: None,
        }
    }

    pub fn property(mut self, name: &str, value: impl Into<Expr>) -> Self {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    /// Keep the physical resource when it is removed from the stack or replaced: for data.
    pub fn retained(mut self) -> Self {
        self.deletion_policy = Some(Policy::Retain);
        self.update_replace_policy = Some(Policy::Retain);
        self
    }

    pub fn depends_on(mut self, logical_id: impl Into<String>) -> Self {
        self.depends_on.push(logical_id.into());
        self.depends_on.sort();
        self.depends_on.dedup();
        self
    }

    pub fn condition(mut self, name: impl Into<String>) -> Self {
        self.condition = Some(name.into());
        self
    }

    /// Suppress a checkov check on this resource, with the reason written next to it.
    pub fn skip_check(mut self, id: &str, reason: &str) -> Self {
        let entry = crate::map! { "id" => id, "comment" => reason };
        let checkov = self
            .metadata
            .entry("checkov".to_string())
            .or_insert_with(|| crate::map! { "skip" => Expr::List(Vec::new()) });
        if let Expr::Map(m) = checkov {
            if let Some(Expr::List(skips)) = m.get_mut("skip") {
                skips.push(entry);
            }
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Output {
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(rename = "Value")]
    pub value: Expr,
    #[serde(rename = "Export", skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Export {
    #[serde(rename = "Name")]
    pub name: Expr,
}

impl Output {
    /// An output exported as `<export_prefix>-<logical id>`.
    pub fn exported(description: &str, value: Expr, export_name: String) -> Self {
        Output {
            description: Some(description.to_string()),
            condition: None,
            value,
            export: Some(Export {
                name: Expr::Str(export_name),
            }),
        }
    }
}

/// A template that refers to something it does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{place} refers to `{name}`, which is neither a parameter nor a resource")]
    DanglingReference { place: String, name: String },
    #[error("{place} uses condition `{name}`, which is not defined")]
    UnknownCondition { place: String, name: String },
    #[error("resource `{resource}` depends on `{name}`, which is not a resource")]
    UnknownDependency { resource: String, name: String },
    #[error("the template has {count} {what}; CloudFormation allows {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
}

/// Output format of a rendered template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Yaml,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
        }
    }
}

impl Template {
    pub fn new(description: impl Into<String>) -> Self {
        Template {
            format_version: "2010-09-09",
            description: Some(description.into()),
            ..Template::default()
        }
    }

    /// Checks that every `Ref`, `Fn::GetAtt`, `Fn::Sub` variable, condition and `DependsOn`
    /// names something the template defines, and that CloudFormation's limits hold.
    pub fn validate(&self) -> Result<(), TemplateError> {
        for (what, count, limit) in [
            ("resources", self.resources.len(), limits::RESOURCES),
            ("parameters", self.parameters.len(), limits::PARAMETERS),
            ("outputs", self.outputs.len(), limits::OUTPUTS),
        ] {
            if count > limit {
                return Err(TemplateError::TooMany { what, count, limit });
            }
        }
        let defined =
            |name: &str| self.parameters.contains_key(name) || self.resources.contains_key(name);
        let check_expr = |place: String, expr: &Expr| -> Result<(), TemplateError> {
            if let Some(name) = expr.references().into_iter().find(|n| !defined(n)) {
                return Err(TemplateError::DanglingReference { place, name });
            }
            if let Some(name) = expr
                .conditions()
                .into_iter()
                .find(|c| !self.conditions.contains_key(c))
            {
                return Err(TemplateError::UnknownCondition { place, name });
            }
            Ok(())
        };
        for (id, resource) in &self.resources {
            for (prop, value) in &resource.properties {
                check_expr(format!("Resources.{id}.Properties.{prop}"), value)?;
            }
            if let Some(c) = &resource.condition {
                if !self.conditions.contains_key(c) {
                    return Err(TemplateError::UnknownCondition {
                        place: format!("Resources.{id}.Condition"),
                        name: c.clone(),
                    });
                }
            }
            if let Some(dep) = resource
                .depends_on
                .iter()
                .find(|d| !self.resources.contains_key(*d))
            {
                return Err(TemplateError::UnknownDependency {
                    resource: id.clone(),
                    name: dep.clone(),
                });
            }
        }
        for (id, output) in &self.outputs {
            check_expr(format!("Outputs.{id}.Value"), &output.value)?;
            if let Some(export) = &output.export {
                check_expr(format!("Outputs.{id}.Export.Name"), &export.name)?;
            }
        }
        for (id, condition) in &self.conditions {
            check_expr(format!("Conditions.{id}"), condition)?;
        }
        Ok(())
    }

    /// The template as text. Byte-for-byte the same for the same template on any machine:
    /// maps are ordered by key, sections in CloudFormation's conventional order, and the text
    /// ends with one newline.
    pub fn render(&self, format: Format) -> String {
        let mut text = match format {
            Format::Json => {
                serde_json::to_string_pretty(self).expect("a template always serializes")
            }
            Format::Yaml => serde_norway::to_string(self).expect("a template always serializes"),
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Template {
        let mut t = Template::new("sample");
        t.parameters.insert(
            "Email".into(),
            Parameter::string("who gets alarms").with_default(""),
        );
        t.conditions.insert(
            "HasEmail".into(),
            Expr::Not(Box::new(Expr::Equals(
                Box::new(Expr::reference("Email")),
                Box::new("".into()),
            ))),
        );
        t.resources.insert(
            "Topic".into(),
            Resource::new("AWS::SNS::Topic").property("TopicName", "t"),
        );
        t.resources.insert(
            "Sub".into(),
            Resource::new("AWS::SNS::Subscription")
                .condition("HasEmail")
                .property("TopicArn", Expr::reference("Topic"))
                .property("Protocol", "email")
                .property("Endpoint", Expr::reference("Email"))
                .depends_on("Topic"),
        );
        t.outputs.insert(
            "TopicArn".into(),
            Output::exported("the topic", Expr::reference("Topic"), "s-TopicArn".into()),
        );
        t
    }

    #[test]
    fn sections_render_in_conventional_order() {
        let json = sample().render(Format::Json);
        let pos = |k: &str| json.find(k).unwrap_or_else(|| panic!("{k} missing"));
        assert!(pos("AWSTemplateFormatVersion") < pos("\"Description\""));
        assert!(pos("\"Description\"") < pos("\"Parameters\""));
        assert!(pos("\"Parameters\"") < pos("\"Conditions\""));
        assert!(pos("\"Conditions\"") < pos("\"Resources\""));
        assert!(pos("\"Resources\"") < pos("\"Outputs\""));
        assert!(json.ends_with("}\n"));
    }

    #[test]
    fn yaml_and_json_carry_the_same_document() {
        let t = sample();
        let from_json: serde_json::Value = serde_json::from_str(&t.render(Format::Json)).unwrap();
        let from_yaml: serde_json::Value = serde_norway::from_str(&t.render(Format::Yaml)).unwrap();
        assert_eq!(from_json, from_yaml);
    }

    #[test]
    fn validation_finds_dangling_references() {
        let mut t = sample();
        assert_eq!(t.validate(), Ok(()));
        t.resources.insert(
            "Bad".into(),
            Resource::new("AWS::SQS::Queue").property("QueueName", Expr::sub("${Missing}-q")),
        );
        assert_eq!(
            t.validate(),
            Err(TemplateError::DanglingReference {
                place: "Resources.Bad.Properties.QueueName".into(),
                name: "Missing".into()
            })
        );
    }

    #[test]
    fn validation_finds_unknown_conditions_and_dependencies() {
        let mut t = sample();
        t.resources.insert(
            "X".into(),
            Resource::new("AWS::SNS::Topic").condition("Nope"),
        );
        assert!(matches!(
            t.validate(),
            Err(TemplateError::UnknownCondition { .. })
        ));
        let mut t = sample();
        t.resources.insert(
            "X".into(),
            Resource::new("AWS::SNS::Topic").depends_on("Ghost"),
        );
        assert!(matches!(
            t.validate(),
            Err(TemplateError::UnknownDependency { .. })
        ));
    }

    #[test]
    fn skip_check_accumulates_reasons() {
        let r = Resource::new("AWS::S3::Bucket")
            .skip_check("CKV_AWS_18", "one")
            .skip_check("CKV_AWS_21", "two");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["Metadata"]["checkov"]["skip"][1]["id"], "CKV_AWS_21");
        assert_eq!(v["Metadata"]["checkov"]["skip"][0]["comment"], "one");
    }
}
