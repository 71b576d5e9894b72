//! What a change does to access: the IAM statements and security-group rules it adds and
//! removes (the tables `cdk diff` shows), and which changes broaden access.
//!
//! Broadening is: an `Allow` statement whose `Action` gains a wildcard (a value holding `*`),
//! whose `Resource` gains `*` (or an ARN ending in `:*`), whose `Principal` gains `*` or an
//! account, unless an old `Allow` statement already allowed that value as widely (the same
//! value in the same field, every value of the other two fields among its own or its own a bare
//! `*`, and its condition the same or none): a wildcard moved to a statement with other
//! actions, resources or principals, or kept where its condition was dropped, broadens too; a
//! `Deny` statement removed or narrowed (no new `Deny` denies all it denied); an ingress rule
//! opened to `0.0.0.0/0` or `::/0`, however written, or to a public block of at least 2^24
//! IPv4 (2^96 IPv6) addresses; a public access block setting that was `true` and is no
//! longer; an encryption setting (bucket encryption, a KMS key, server-side encryption) removed
//! or turned off; a bucket's canned ACL now public. Policy documents written as JSON text (a
//! string, or the string of an `Fn::Sub`) are read as the documents they hold; a Lambda
//! permission is read as one statement; both branches of an `Fn::If` count.

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
    Deny,
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

/// The values a field may hold: each item of a list, both branches of an `Fn::If` (either may
/// be the one deployed), nothing for `AWS::NoValue`.
fn values(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|x| values(x, out)),
        Value::Object(m) if m.len() == 1 && m.contains_key("Fn::If") => {
            if let Some([_, yes, no]) = m["Fn::If"].as_array().map(Vec::as_slice) {
                values(yes, out);
                values(no, out);
            } else {
                out.push(cell(v));
            }
        }
        Value::Object(m) if m.len() == 1 && m.get("Ref") == Some(&Value::from("AWS::NoValue")) => {}
        other => out.push(cell(other)),
    }
}

fn texts(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = v {
        values(v, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// `*`, or `AWS:arn...`, `Service:lambda.amazonaws.com`, per principal.
fn principals(v: Option<&Value>) -> Vec<String> {
    fn into(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) if m.len() == 1 && m.contains_key("Fn::If") => {
                match m["Fn::If"].as_array().map(Vec::as_slice) {
                    Some([_, yes, no]) => {
                        into(yes, out);
                        into(no, out);
                    }
                    _ => out.push(cell(v)),
                }
            }
            Value::Object(m) if !m.is_empty() && !m.contains_key("Ref") => {
                for (kind, v) in m {
                    let mut each = Vec::new();
                    values(v, &mut each);
                    out.extend(each.into_iter().map(|p| format!("{kind}:{p}")));
                }
            }
            other => values(other, out),
        }
    }
    let mut out = Vec::new();
    if let Some(v) = v {
        into(v, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// A Lambda permission is one statement: its `Principal` (`*`, an account, a service) may
/// invoke the function, held to its source ARN, account or organization when it names one.
fn lambda_permission(props: &Value) -> Statement {
    let principal = props.get("Principal").map(cell).map(|p| {
        if p == "*" {
            p
        } else if p.ends_with(".amazonaws.com") {
            format!("Service:{p}")
        } else {
            format!("AWS:{p}")
        }
    });
    let condition: serde_json::Map<String, Value> = [
        "SourceArn",
        "SourceAccount",
        "PrincipalOrgID",
        "FunctionUrlAuthType",
    ]
    .iter()
    .filter_map(|k| props.get(*k).map(|v| (k.to_string(), v.clone())))
    .collect();
    Statement {
        path: "Properties".into(),
        effect: "Allow".into(),
        actions: texts(props.get("Action")),
        resources: texts(props.get("FunctionName")),
        principals: principal.into_iter().collect(),
        condition: (!condition.is_empty()).then(|| Value::Object(condition).to_string()),
    }
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
            // A document written as JSON text, as `!Sub |` templates often are: read what it
            // holds (text that is no JSON document holds no statement CloudFormation takes).
            Value::String(text) if in_policy => {
                if let Ok(doc) = serde_json::from_str::<Value>(text) {
                    if doc.is_object() {
                        walk(&doc, path, true, out);
                    }
                }
            }
            Value::Object(m) if in_policy && m.len() == 1 && m.contains_key("Fn::Sub") => {
                match &m["Fn::Sub"] {
                    text @ Value::String(_) => walk(text, path, true, out),
                    Value::Array(a) if a.first().is_some_and(Value::is_string) => {
                        walk(&a[0], path, true, out)
                    }
                    _ => {}
                }
            }
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
        if resource.get("Type").and_then(Value::as_str) == Some("AWS::Lambda::Permission") {
            return vec![lambda_permission(p)];
        }
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

/// Whether an ingress peer opens to a wide public range: every address, however it is written
/// (`0.0.0.0/0`, `::/0`, `0:0:0:0:0:0:0:0/0`), or a block of 2^24 IPv4 or 2^96 IPv6 addresses
/// or more (`0.0.0.0/1` and `128.0.0.0/1` are the internet in two rules) that is not private
/// (`10.0.0.0/8`, `fc00::/7`) or loopback.
fn is_public_cidr(peer: &str) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let Some((addr, len)) = peer.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else {
        return false;
    };
    if let Ok(a) = addr.parse::<Ipv4Addr>() {
        len <= 8 && !(len == 8 && (a.octets()[0] == 10 || a.is_loopback()))
    } else if let Ok(a) = addr.parse::<Ipv6Addr>() {
        len <= 32 && !(len >= 7 && a.octets()[0] & 0xfe == 0xfc)
    } else {
        false
    }
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

/// A statement's field that may widen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Action,
    Resource,
    Principal,
}

impl Field {
    const ALL: [Field; 3] = [Field::Action, Field::Resource, Field::Principal];

    fn of(self, s: &Statement) -> &[String] {
        match self {
            Field::Action => &s.actions,
            Field::Resource => &s.resources,
            Field::Principal => &s.principals,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Action => "Action",
            Field::Resource => "Resource",
            Field::Principal => "Principal",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Field::Action => "actions",
            Field::Resource => "resources",
            Field::Principal => "principals",
        }
    }
}

/// Whether the old value `o` names all that the new value `v` names: the same text (actions
/// without regard to case, as IAM reads them), or an action or resource pattern that matches
/// `v` read literally (every name `v` matches, `o` matches too). A `NotAction`/`NotResource`
/// value and a principal cover only themselves.
fn covers(field: Field, o: &str, v: &str) -> bool {
    if o == v {
        return true;
    }
    if field == Field::Principal || o.starts_with("NOT ") || v.starts_with("NOT ") {
        return false;
    }
    let pattern = o.contains(['*', '?']);
    match field {
        Field::Action if pattern => crate::iam::glob_ignoring_case(o, v),
        Field::Action => o.eq_ignore_ascii_case(v),
        _ => pattern && crate::iam::glob(o, v),
    }
}

/// Whether every value of `new` is covered by one of `old`'s, or `old` holds the bare `*`.
fn within(field: Field, new: &[String], old: &[String]) -> bool {
    old.iter().any(|o| o == "*") || new.iter().all(|n| old.iter().any(|o| covers(field, o, n)))
}

/// The most work one diff spends telling whether old statements already allowed new ones: per
/// resource, the bytes of its old statements' values times those of its new (IAM takes at most
/// 20 KB a policy, so real templates stay far below it), summed over the resources. Beyond it,
/// in a resource that would exceed what is left, every wildcard of an added `Allow` held before
/// and every `Deny` gone counts as broadening, and says it was not compared.
pub(super) const COMPARE_BUDGET: usize = 100_000_000;

fn size(s: &Statement) -> usize {
    Field::ALL
        .into_iter()
        .flat_map(|f| f.of(s))
        .map(|v| v.len() + 1)
        .sum::<usize>()
        + 1
}

/// How a new statement's value reaches beyond what the old statements allowed.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    /// No old `Allow` statement held it.
    New,
    /// One held it with all the rest, but under a condition the new statement does not keep.
    Condition,
    /// Those that held it held fewer of these (`actions`, `resources and principals`, ...).
    Wider(String),
    /// Old statements held it, but the policies are too large to compare.
    Unchecked,
}

/// What an added `Allow` statement is compared with: each old `Allow` statement, whether each
/// field of the new one is within its own, and whether its condition is kept.
struct Against<'a> {
    old: &'a Statement,
    fits: [bool; 3],
    kept: bool,
}

fn against<'a>(old: &'a [Statement], new: &Statement) -> Vec<Against<'a>> {
    old.iter()
        .filter(|o| o.effect == "Allow")
        .map(|o| Against {
            old: o,
            fits: Field::ALL.map(|f| within(f, f.of(new), f.of(o))),
            kept: o.condition.is_none() || o.condition == new.condition,
        })
        .collect()
}

/// Whether an old `Allow` statement already allowed, as widely, the value of the new
/// statement's `field` that `holds` picks: it held such a value in that field, the new
/// statement's other two fields are within its own, and its condition is the new one or it
/// had none. `None` when one did.
fn reach(compared: &[Against], field: Field, holds: &dyn Fn(&str) -> bool) -> Option<Reach> {
    let mut fewest: Option<Vec<Field>> = None;
    let mut condition = false;
    for c in compared {
        if !field.of(c.old).iter().any(|v| holds(v)) {
            continue;
        }
        let short: Vec<Field> = Field::ALL
            .into_iter()
            .zip(c.fits)
            .filter(|(f, fits)| *f != field && !fits)
            .map(|(f, _)| f)
            .collect();
        match (short.is_empty(), c.kept) {
            (true, true) => return None,
            (true, false) => condition = true,
            _ => {
                if fewest.as_ref().is_none_or(|f| short.len() < f.len()) {
                    fewest = Some(short);
                }
            }
        }
    }
    if condition {
        return Some(Reach::Condition);
    }
    Some(match fewest {
        None => Reach::New,
        Some(short) => Reach::Wider(
            short
                .iter()
                .map(|f| f.plural())
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    })
}

/// The statement and rule rows of one resource, old and new (either may be absent), and what
/// in them broadens access; `diff` is its entry in the report.
pub(super) fn examine(
    diff: &ResourceDiff,
    old: Option<&Value>,
    new: Option<&Value>,
    security: &mut Security,
    budget: &mut usize,
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
    let bytes = |all: &[Statement]| all.iter().map(size).sum::<usize>();
    let cost = bytes(&old_statements).saturating_mul(bytes(&new_statements));
    let compare = cost <= *budget;
    if compare {
        *budget -= cost;
    }
    // Every value the old `Allow` statements held, per field: a value none held is new.
    let held: [BTreeSet<&str>; 3] = Field::ALL.map(|f| {
        old_statements
            .iter()
            .filter(|o| o.effect == "Allow")
            .flat_map(|o| f.of(o).iter().map(String::as_str))
            .collect()
    });
    let old_accounts: BTreeSet<&str> = held[2].iter().filter_map(|p| account(p)).collect();
    for s in &new_statements {
        if old_keys.contains(&s.key()) {
            continue;
        }
        security.statements.push(row(ChangeAction::Add, s));
        if s.effect != "Allow" {
            continue;
        }
        let compared = if compare {
            against(&old_statements, s)
        } else {
            Vec::new()
        };
        let mut widened =
            |field: Field, value: &str, what: String, known: bool, holds: &dyn Fn(&str) -> bool| {
                let reach = if !known {
                    Some(Reach::New)
                } else if compare {
                    reach(&compared, field, holds)
                } else {
                    Some(Reach::Unchecked)
                };
                let name = field.name();
                let message = match reach {
                    None => return,
                    Some(Reach::New) => format!("{id}: {name} gains {what}"),
                    Some(Reach::Condition) if s.condition.is_none() => {
                        format!("{id}: {name} {what} is allowed without the condition it had")
                    }
                    Some(Reach::Condition) => {
                        format!(
                            "{id}: {name} {what} is allowed under another condition than it was"
                        )
                    }
                    Some(Reach::Wider(others)) => {
                        format!("{id}: {name} {what} is allowed for more {others} than it was")
                    }
                    Some(Reach::Unchecked) => format!(
                    "{id}: {name} {what} is in an added statement (the policies are too large to \
                     compare with the old ones)"
                ),
                };
                out.push(Broadening {
                    kind: match field {
                        Field::Action => BroadeningKind::Action,
                        Field::Resource => BroadeningKind::Resource,
                        Field::Principal => BroadeningKind::Principal,
                    },
                    path: s.path.clone(),
                    value: value.to_string(),
                    message,
                })
            };
        // An action pattern may be covered by a wider one; whether any old value could is
        // known only by comparing, so only an exact match counts as held without it.
        let held_or_covered = |f: Field, v: &str| held[f as usize].contains(v) || compare;
        for a in s.actions.iter().filter(|a| a.contains('*')) {
            let known = held_or_covered(Field::Action, a);
            widened(Field::Action, a, format!("`{a}`"), known, &|x| {
                covers(Field::Action, x, a)
            });
        }
        // `arn:aws:s3:::bucket/*` names the objects of one bucket; `*` and `...:*` name all.
        for r in s
            .resources
            .iter()
            .filter(|r| *r == "*" || r.ends_with(":*"))
        {
            let known = held_or_covered(Field::Resource, r);
            widened(Field::Resource, r, format!("`{r}`"), known, &|x| {
                covers(Field::Resource, x, r)
            });
        }
        for p in &s.principals {
            if p == "*" || p.ends_with(":*") {
                let known = held[2].contains(p.as_str());
                widened(Field::Principal, p, format!("`{p}`"), known, &|x| x == p);
            } else if let Some(a) = account(p) {
                let known = old_accounts.contains(a);
                widened(Field::Principal, a, format!("account {a}"), known, &|x| {
                    account(x) == Some(a)
                });
            }
        }
    }
    // A `Deny` gone or narrowed: no new `Deny` denies all it denied, under its condition or none.
    for d in old_statements.iter().filter(|s| s.effect == "Deny") {
        if new_keys.contains(&d.key()) {
            continue;
        }
        let still = compare
            && new_statements.iter().any(|n| {
                n.effect == "Deny"
                    && Field::ALL.into_iter().all(|f| within(f, f.of(d), f.of(n)))
                    && (n.condition.is_none() || n.condition == d.condition)
            });
        if !still {
            let actions = d.actions.join(", ");
            let unchecked = if compare {
                ""
            } else {
                " (the policies are too large to compare)"
            };
            out.push(Broadening {
                kind: BroadeningKind::Deny,
                path: d.path.clone(),
                value: actions.clone(),
                message: format!(
                    "{id}: a Deny of {actions} on {} is removed or narrowed{unchecked}",
                    d.resources.join(", ")
                ),
            });
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

    // A canned ACL that opens a bucket to everyone (or every AWS account), new or changed to.
    let acl = |r: Option<&Value>| {
        r.and_then(|r| r.get("Properties")?.get("AccessControl"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(now) = acl(new).filter(|a| {
        matches!(
            a.as_str(),
            "PublicRead" | "PublicReadWrite" | "AuthenticatedRead"
        )
    }) {
        if acl(old).as_ref() != Some(&now) {
            out.push(Broadening {
                kind: BroadeningKind::PublicAccess,
                path: "Properties.AccessControl".into(),
                value: now.clone(),
                message: format!("{id}: bucket ACL is now {now}"),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diff::DiffOptions;

    /// What broadens access from one policy document to another, in a role.
    fn broadening(old: Value, new: Value) -> Vec<String> {
        let role = |doc: Value| {
            json!({"Resources": {"Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"Policies": [{"PolicyName": "p", "PolicyDocument": doc}]}
            }}})
        };
        let d = crate::diff::diff_templates(&role(old), &role(new), &DiffOptions::default());
        d.resources
            .iter()
            .flat_map(|r| &r.broadening)
            .map(|b| b.message.clone())
            .collect()
    }

    fn doc(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    #[test]
    fn a_wildcard_an_old_statement_already_allowed_as_widely_is_no_broadening() {
        // Split in two, or joined under a bare `*` the old statement had: nothing widens.
        let old = doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]));
        let new = doc(json!([
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::a/*"},
            {"Effect": "Allow", "Action": ["s3:*", "s3:GetObject", "S3:Get*"], "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        ]));
        assert_eq!(broadening(old, new), Vec::<String>::new());
    }

    #[test]
    fn wide_public_blocks_are_public_however_written() {
        for open in [
            "0.0.0.0/0",
            "::/0",
            "0:0:0:0:0:0:0:0/0",
            "::0/0",
            "0.0.0.0/1",
            "128.0.0.0/1",
            "52.0.0.0/8",
            "2000::/3",
            "2001:db8::/32",
        ] {
            assert!(is_public_cidr(open), "{open}");
        }
        for closed in [
            "10.0.0.0/8",
            "127.0.0.0/8",
            "52.0.0.0/9",
            "203.0.113.5/32",
            "fd00::/8",
            "fc00::/7",
            "2001:db8::/33",
            "sg-123",
            "0.0.0.0",
            "0.0.0.0/x",
            "pl-1234/0",
        ] {
            assert!(!is_public_cidr(closed), "{closed}");
        }
    }

    #[test]
    fn a_pattern_covers_only_what_it_matches() {
        let old = doc(json!([{"Effect": "Allow", "Action": "s3:Get*",
                              "Resource": "arn:aws:s3:::a-*/*"}]));
        let new = doc(
            json!([{"Effect": "Allow", "Action": ["s3:GetObject*", "s3:*"],
                              "Resource": ["arn:aws:s3:::a-1/*", "arn:aws:s3:::*"]}]),
        );
        assert_eq!(
            broadening(old, new),
            [
                "Role: Action gains `s3:*`",
                "Role: Action `s3:GetObject*` is allowed for more resources than it was",
                "Role: Resource gains `arn:aws:s3:::*`",
            ]
        );
    }

    #[test]
    fn policies_too_large_to_compare_count_as_broadening_and_say_so() {
        // 40,000 statements a side (about 1.6 MB of values each): more than one diff compares.
        let many = |resource: &str| {
            let all: Vec<Value> = (0..40_000)
                .map(|i| {
                    json!({"Effect": "Allow", "Action": "s3:*",
                                "Resource": format!("arn:aws:s3:::b{i}/{resource}")})
                })
                .chain([json!({"Effect": "Deny", "Action": "s3:DeleteBucket",
                               "Resource": format!("arn:aws:s3:::{resource}")})])
                .collect();
            doc(Value::Array(all))
        };
        let got = broadening(many("*"), many("x*"));
        assert!(
            got.len() == 40_001 && got.iter().all(|m| m.contains("too large to compare")),
            "{} broadenings: {:?}",
            got.len(),
            got.first()
        );
    }

    #[test]
    fn a_deny_made_wider_or_unconditional_is_no_broadening() {
        let old = doc(json!([
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::a/*",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}},
        ]));
        let new = doc(json!([
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Deny", "Action": ["s3:DeleteObject", "s3:PutObject"], "Resource": "*"},
        ]));
        assert_eq!(broadening(old, new), Vec::<String>::new());
    }

    #[test]
    fn a_deny_kept_only_under_a_new_condition_is_narrowed() {
        let deny = |condition: Value| {
            doc(
                json!([{"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*",
                        "Condition": condition}]),
            )
        };
        let got = broadening(
            deny(json!({"Bool": {"aws:MultiFactorAuthPresent": "false"}})),
            deny(json!({"StringEquals": {"aws:PrincipalTag/team": "other"}})),
        );
        assert_eq!(
            got,
            ["Role: a Deny of s3:DeleteObject on * is removed or narrowed"]
        );
    }

    #[test]
    fn an_account_granted_more_than_it_had_broadens() {
        let grant = |actions: Value| {
            doc(
                json!([{"Effect": "Allow", "Action": actions, "Resource": "arn:aws:s3:::a/*",
                        "Principal": {"AWS": "arn:aws:iam::999999999999:root"}}]),
            )
        };
        let got = broadening(
            grant(json!("s3:GetObject")),
            grant(json!(["s3:GetObject", "s3:PutObject"])),
        );
        assert_eq!(
            got,
            ["Role: Principal account 999999999999 is allowed for more actions than it was"]
        );
    }

    #[test]
    fn policy_text_that_is_no_document_holds_no_statement() {
        // Too deep to read, not JSON, or JSON that is no mapping: no statement, no panic; the
        // change is still a change (and a security-property change) of the resource.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for text in [deep.as_str(), "Statement: [", "[1, 2]", "\"*\""] {
            let new = json!({"Fn::Sub": text});
            assert_eq!(
                broadening(doc(json!([])), new.clone()),
                Vec::<String>::new()
            );
            assert_eq!(
                broadening(json!(text), doc(json!([]))),
                Vec::<String>::new()
            );
        }
        let widened = doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]));
        let got = broadening(json!({"Fn::Sub": ["{}", {}]}), json!(widened.to_string()));
        assert_eq!(got, ["Role: Action gains `*`", "Role: Resource gains `*`"]);
    }
}
