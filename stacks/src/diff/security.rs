//! What a change does to access: the IAM statements and security-group rules it adds and
//! removes (the tables `cdk diff` shows), and which changes broaden access.
//!
//! Broadening is: an `Allow` statement whose `Action` gains a wildcard (a value holding `*`),
//! whose `Resource` gains `*` (or an ARN ending in `:*`), whose `Principal` gains `*` or an
//! account; an ingress rule opened to
//! `0.0.0.0/0` or `::/0`; a public access block setting that was `true` and is no longer; an
//! encryption setting (bucket encryption, a KMS key, server-side encryption) removed or turned
//! off.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::{display, Action, ResourceDiff};

/// What widened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadeningKind {
    Principal,
    Action,
    Resource,
    Ingress,
    PublicAccess,
    Encryption,
}

/// One broadening of access in a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broadening {
    pub kind: BroadeningKind,
    /// Where, inside the resource (`Properties.Policies[0].PolicyDocument.Statement[1]`).
    pub path: String,
    /// The value that widened access: the wildcard, the account, the CIDR, the setting.
    pub value: String,
    pub message: String,
}

/// An IAM statement added or removed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StatementChange {
    pub action: ChangeAction,
    pub logical_id: String,
    pub path: String,
    pub effect: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub principals: Vec<String>,
    pub condition: Option<String>,
}

/// A security-group rule added or removed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleChange {
    pub action: ChangeAction,
    pub logical_id: String,
    pub group: String,
    pub direction: String,
    pub protocol: String,
    pub peer: String,
}

/// A row's side: added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Add,
    Remove,
}

/// The security tables of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Security {
    pub statements: Vec<StatementChange>,
    pub rules: Vec<RuleChange>,
}

impl Security {
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.rules.is_empty()
    }
}

/// One statement, its fields as sorted lists of text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Statement {
    path: String,
    effect: String,
    actions: Vec<String>,
    resources: Vec<String>,
    principals: Vec<String>,
    condition: Option<String>,
}

impl Statement {
    fn key(&self) -> (&str, &[String], &[String], &[String], &Option<String>) {
        (
            &self.effect,
            &self.actions,
            &self.resources,
            &self.principals,
            &self.condition,
        )
    }
}

/// A value as a table shows it: references as `${Id}` and `${Id.Attr}`, as `cdk diff` does.
fn cell(v: &Value) -> String {
    match (v.get("Ref"), v.get("Fn::GetAtt")) {
        (Some(Value::String(id)), _) => format!("${{{id}}}"),
        (_, Some(Value::Array(a))) if a.len() == 2 && a.iter().all(Value::is_string) => {
            format!("${{{}.{}}}", display(&a[0]), display(&a[1]))
        }
        _ => display(v),
    }
}

fn texts(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = match v {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(cell).collect(),
        Some(other) => vec![cell(other)],
    };
    out.sort();
    out.dedup();
    out
}

/// `*`, or `AWS:arn...`, `Service:lambda.amazonaws.com`, per principal.
fn principals(v: Option<&Value>) -> Vec<String> {
    let mut out = match v {
        Some(Value::Object(m)) if !m.is_empty() => m
            .iter()
            .flat_map(|(kind, v)| {
                texts(Some(v))
                    .into_iter()
                    .map(move |p| format!("{kind}:{p}"))
            })
            .collect(),
        other => texts(other),
    };
    out.sort();
    out.dedup();
    out
}

fn statement(path: String, s: &Value) -> Statement {
    let field = |name: &str, not: &str| {
        let mut v = texts(s.get(name));
        v.extend(texts(s.get(not)).into_iter().map(|x| format!("NOT {x}")));
        v
    };
    let mut p = principals(s.get("Principal"));
    p.extend(
        principals(s.get("NotPrincipal"))
            .into_iter()
            .map(|x| format!("NOT {x}")),
    );
    Statement {
        path,
        effect: s
            .get("Effect")
            .map(display)
            .unwrap_or_else(|| "Allow".into()),
        actions: field("Action", "NotAction"),
        resources: field("Resource", "NotResource"),
        principals: p,
        condition: s.get("Condition").map(|c| c.to_string()),
    }
}

/// Every statement of every policy document in a resource: any value under a key that names
/// a policy document (`PolicyDocument`, `AssumeRolePolicyDocument`, `KeyPolicy`, ...).
fn statements(resource: &Value) -> Vec<Statement> {
    fn walk(v: &Value, path: &str, in_policy: bool, out: &mut Vec<Statement>) {
        match v {
            Value::Object(m) => {
                if in_policy {
                    match m.get("Statement") {
                        Some(Value::Array(items)) => {
                            for (i, s) in items.iter().enumerate() {
                                out.push(statement(format!("{path}.Statement[{i}]"), s));
                            }
                        }
                        Some(s @ Value::Object(_)) => {
                            out.push(statement(format!("{path}.Statement"), s))
                        }
                        _ => {}
                    }
                    return;
                }
                for (k, x) in m {
                    let policy = matches!(
                        k.as_str(),
                        "PolicyDocument"
                            | "AssumeRolePolicyDocument"
                            | "KeyPolicy"
                            | "ResourcePolicy"
                            | "AccessPolicies"
                            | "RepositoryPolicyText"
                            | "Policy"
                    );
                    walk(x, &format!("{path}.{k}"), policy, out);
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    walk(x, &format!("{path}[{i}]"), in_policy, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(p) = resource.get("Properties") {
        walk(p, "Properties", false, &mut out);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    group: String,
    direction: String,
    protocol: String,
    peer: String,
}

fn rule(group: String, direction: &str, r: &Value) -> Rule {
    let field = |k: &str| r.get(k).map(cell);
    let protocol = match field("IpProtocol").as_deref() {
        Some("-1") | None => "all".to_string(),
        Some(p) => match (field("FromPort"), field("ToPort")) {
            (Some(a), Some(b)) if a == b => format!("{p} {a}"),
            (Some(a), Some(b)) => format!("{p} {a}-{b}"),
            _ => p.to_string(),
        },
    };
    let peer = [
        "CidrIp",
        "CidrIpv6",
        "SourceSecurityGroupId",
        "SourceSecurityGroupName",
        "DestinationSecurityGroupId",
        "SourcePrefixListId",
        "DestinationPrefixListId",
    ]
    .iter()
    .find_map(|k| field(k))
    .unwrap_or_default();
    Rule {
        group,
        direction: direction.to_string(),
        protocol,
        peer,
    }
}

/// The ingress and egress rules a resource defines.
fn rules(id: &str, resource: &Value) -> Vec<Rule> {
    let t = resource.get("Type").and_then(Value::as_str).unwrap_or("");
    let Some(props) = resource.get("Properties") else {
        return Vec::new();
    };
    match t {
        "AWS::EC2::SecurityGroup" => {
            let mut out = Vec::new();
            for (key, direction) in [
                ("SecurityGroupIngress", "ingress"),
                ("SecurityGroupEgress", "egress"),
            ] {
                if let Some(Value::Array(items)) = props.get(key) {
                    out.extend(items.iter().map(|r| rule(id.to_string(), direction, r)));
                }
            }
            out
        }
        "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
            let group = props
                .get("GroupId")
                .or_else(|| props.get("GroupName"))
                .map(cell)
                .unwrap_or_default();
            let direction = if t.ends_with("Ingress") {
                "ingress"
            } else {
                "egress"
            };
            vec![rule(group, direction, props)]
        }
        _ => Vec::new(),
    }
}

/// A 12-digit account id in a principal, if it names one.
fn account(principal: &str) -> Option<&str> {
    let digits = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    let p = principal.strip_prefix("AWS:").unwrap_or(principal);
    if digits(p) {
        return Some(p);
    }
    p.strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(3))
        .filter(|a| digits(a))
}

fn is_public_cidr(peer: &str) -> bool {
    matches!(peer, "0.0.0.0/0" | "::/0")
}

/// Whether a property names an encryption setting.
fn is_encryption_setting(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("encrypt")
        || n.contains("kmskey")
        || n.contains("kmsmasterkey")
        || matches!(
            n.as_str(),
            "sseenabled" | "ssespecification" | "sqsmanagedsseenabled" | "ssealgorithm"
        )
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => !s.eq_ignore_ascii_case("false") && !s.is_empty(),
        Value::Null => false,
        _ => true,
    }
}

/// The statement and rule rows of one resource, old and new (either may be absent), and what
/// in them broadens access; `diff` is its entry in the report.
pub(super) fn examine(
    diff: &ResourceDiff,
    old: Option<&Value>,
    new: Option<&Value>,
    security: &mut Security,
) -> Vec<Broadening> {
    let id = diff.logical_id.as_str();
    let mut out = Vec::new();

    let old_statements = old.map(statements).unwrap_or_default();
    let new_statements = new.map(statements).unwrap_or_default();
    let old_keys: BTreeSet<_> = old_statements.iter().map(Statement::key).collect();
    let new_keys: BTreeSet<_> = new_statements.iter().map(Statement::key).collect();
    let row = |action, s: &Statement| StatementChange {
        action,
        logical_id: id.to_string(),
        path: s.path.clone(),
        effect: s.effect.clone(),
        actions: s.actions.clone(),
        resources: s.resources.clone(),
        principals: s.principals.clone(),
        condition: s.condition.clone(),
    };
    for s in &old_statements {
        if !new_keys.contains(&s.key()) {
            security.statements.push(row(ChangeAction::Remove, s));
        }
    }
    // What the old statements allowed: a wildcard or account already there is no broadening.
    let allowed = |pick: fn(&Statement) -> &Vec<String>| -> BTreeSet<String> {
        old_statements
            .iter()
            .filter(|s| s.effect == "Allow")
            .flat_map(|s| pick(s).iter().cloned())
            .collect()
    };
    let (old_actions, old_resources, old_principals) = (
        allowed(|s| &s.actions),
        allowed(|s| &s.resources),
        allowed(|s| &s.principals),
    );
    let old_accounts: BTreeSet<&str> = old_principals.iter().filter_map(|p| account(p)).collect();
    for s in &new_statements {
        if old_keys.contains(&s.key()) {
            continue;
        }
        security.statements.push(row(ChangeAction::Add, s));
        if s.effect != "Allow" {
            continue;
        }
        let mut widened = |kind, field: &str, value: &str, what: String| {
            out.push(Broadening {
                kind,
                path: s.path.clone(),
                value: value.to_string(),
                message: format!("{id}: {field} gains {what}"),
            })
        };
        for a in s.actions.iter().filter(|a| a.contains('*')) {
            if !old_actions.contains(a) {
                widened(BroadeningKind::Action, "Action", a, format!("`{a}`"));
            }
        }
        // `arn:aws:s3:::bucket/*` names the objects of one bucket; `*` and `...:*` name all.
        for r in s
            .resources
            .iter()
            .filter(|r| *r == "*" || r.ends_with(":*"))
        {
            if !old_resources.contains(r) {
                widened(BroadeningKind::Resource, "Resource", r, format!("`{r}`"));
            }
        }
        for p in &s.principals {
            let wildcard = p == "*" || p.ends_with(":*");
            if wildcard && !old_principals.contains(p) {
                widened(BroadeningKind::Principal, "Principal", p, format!("`{p}`"));
            } else if let Some(a) = account(p).filter(|a| !old_accounts.contains(a)) {
                widened(
                    BroadeningKind::Principal,
                    "Principal",
                    a,
                    format!("account {a}"),
                );
            }
        }
    }

    let old_rules = old.map(|o| rules(id, o)).unwrap_or_default();
    let new_rules = new.map(|n| rules(id, n)).unwrap_or_default();
    let rule_row = |action, r: &Rule| RuleChange {
        action,
        logical_id: id.to_string(),
        group: r.group.clone(),
        direction: r.direction.clone(),
        protocol: r.protocol.clone(),
        peer: r.peer.clone(),
    };
    for r in &old_rules {
        if !new_rules.contains(r) {
            security.rules.push(rule_row(ChangeAction::Remove, r));
        }
    }
    for r in &new_rules {
        if old_rules.contains(r) {
            continue;
        }
        security.rules.push(rule_row(ChangeAction::Add, r));
        if r.direction == "ingress" && is_public_cidr(&r.peer) {
            out.push(Broadening {
                kind: BroadeningKind::Ingress,
                path: "Properties".into(),
                value: r.peer.clone(),
                message: format!(
                    "{id}: ingress opened to {} ({}) on {}",
                    r.peer, r.group, r.protocol
                ),
            });
        }
    }

    if diff.action == Action::Modify {
        for c in &diff.changes {
            let Some(rest) = c.path.strip_prefix("Properties.") else {
                continue;
            };
            let segments: Vec<&str> = rest.split('.').map(super::strip_index).collect();
            let last = segments.last().copied().unwrap_or("");
            let was_on = c.old.as_ref().is_some_and(truthy);
            let now_on = c.new.as_ref().is_some_and(truthy);
            if segments.first() == Some(&"PublicAccessBlockConfiguration") {
                let loosened: Vec<String> = match (&c.old, &c.new) {
                    // The whole block, or one of its settings, gone or turned off.
                    (Some(Value::Object(o)), n) => o
                        .iter()
                        .filter(|(k, v)| {
                            truthy(v)
                                && !n
                                    .as_ref()
                                    .and_then(|n| n.get(k.as_str()))
                                    .is_some_and(truthy)
                        })
                        .map(|(k, _)| k.clone())
                        .collect(),
                    _ if was_on && !now_on => vec![last.to_string()],
                    _ => Vec::new(),
                };
                for setting in loosened {
                    out.push(Broadening {
                        kind: BroadeningKind::PublicAccess,
                        path: c.path.clone(),
                        value: setting.clone(),
                        message: format!("{id}: public access block {setting} is no longer on"),
                    });
                }
            } else if segments.iter().any(|s| is_encryption_setting(s)) && was_on && !now_on {
                out.push(Broadening {
                    kind: BroadeningKind::Encryption,
                    path: c.path.clone(),
                    value: last.to_string(),
                    message: format!(
                        "{id}: encryption setting {rest} is {}",
                        if c.new.is_some() {
                            "turned off"
                        } else {
                            "removed"
                        }
                    ),
                });
            }
        }
    }
    out
}
