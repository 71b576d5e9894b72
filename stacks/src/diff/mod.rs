//! Structural diff of two CloudFormation templates, with what each change does to the live
//! resources.
//!
//! Both templates are read into CloudFormation's JSON form ([`parse_template`]), compared
//! section by section, and every modified resource is classified:
//!
//! - `always`: a changed property that CloudFormation replaces the resource for (its resource
//!   provider schema lists it as create-only), with literal old and new values, or a changed
//!   `Type`;
//! - `conditional`: such a property whose value is only known at deploy time (an intrinsic on
//!   either side), a property that *may* replace, a resource type the embedded data does not
//!   know, or a create-only property that refers to a resource that is itself replaced only
//!   conditionally;
//! - `never`: only mutable properties changed.
//!
//! Replacement propagates: a replaced resource gets a new physical id and new attributes, so a
//! resource whose property refers to it (`Ref`, `Fn::GetAtt`, `${X}` in `Fn::Sub`) changes too,
//! and is replaced in turn when that property is create-only. Repeated until nothing changes.
//!
//! Flags say what hurts: replacing or removing stateful resources (with their DeletionPolicy /
//! UpdateReplacePolicy), replacing a custom-named resource without renaming it (CloudFormation
//! refuses), any IAM, resource-policy or security-group change, and removed exports.
//!
//! Access is examined as `cdk diff` does (its IAM statement and security-group tables):
//! `security` lists the statements and rules added and removed, and each resource's
//! `broadening` says what in its change widens access — a `Principal`, `Action` or `Resource`
//! gaining a wildcard or a `Principal` a new account that no old statement allowed as widely, a
//! `Deny` removed or narrowed, an ingress rule opened to `0.0.0.0/0` or `::/0` (however written)
//! or a public block as wide as `/8`, a public access block setting turned off, an encryption
//! setting removed.
//!
//! ## JSON contract (`schema_version` 1)
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "has_changes": true,
//!   "summary": {"add": 1, "remove": 0, "modify": 2, "replace": 1, "broadening": 1},
//!   "resources": [{
//!     "logical_id": "QueueUploads", "type": "AWS::SQS::Queue",
//!     "action": "add" | "remove" | "modify",
//!     "replacement": "never" | "always" | "conditional",
//!     "deletion_policy": "Retain" | null, "update_replace_policy": "Retain" | null,
//!     "changes": [{"path": "Properties.QueueName", "old": "a", "new": "b",
//!                  "replacement": "always", "reason": "..."}],
//!     "flags": [{"kind": "stateful_replacement", "message": "..."}],
//!     "broadening": [{"kind": "principal" | "action" | "resource" | "deny" | "ingress"
//!                             | "public_access" | "encryption",
//!                     "path": "Properties.Policies[0].PolicyDocument.Statement[0]",
//!                     "value": "*", "message": "Role: Action gains `*`"}]
//!   }],
//!   "parameters": [{"name": "...", "action": "...", "changes": [...]}],
//!   "mappings": [...], "conditions": [...], "outputs": [...], "other": [...],
//!   "flags": [{"kind": "export_removed", "message": "..."}],
//!   "security": {
//!     "statements": [{"action": "add" | "remove", "logical_id": "Role", "path": "...",
//!                     "effect": "Allow", "actions": ["*"], "resources": ["*"],
//!                     "principals": ["AWS:arn:aws:iam::123456789012:root"],
//!                     "condition": null}],
//!     "rules": [{"action": "add", "logical_id": "Sg", "group": "Sg",
//!                "direction": "ingress", "protocol": "tcp 22", "peer": "0.0.0.0/0"}]
//!   }
//! }
//! ```
//!
//! `old`/`new` are absent where a side has no value. A parameter, mapping, condition, output or
//! top-level key (`Transform`, `Description`, `Metadata`, ...) that is added or removed has one
//! change, at its name, with its whole value. Fields may be added in a later
//! `schema_version`; none is removed or renamed without bumping it.

mod load;
mod render;
pub mod replacement;
mod security;
mod yaml;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

pub use load::{load_template, parse_template, LoadError, MAX_DEPTH};
pub use render::{render_json, render_markdown, render_text};
pub use security::{
    Broadening, BroadeningKind, ChangeAction, RuleChange, Security, StatementChange,
};

/// What a modified resource's update does to the live resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Replacement {
    Never,
    Conditional,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Add,
    Remove,
    Modify,
}

/// One changed value, by its dotted path inside the entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
    pub replacement: Replacement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// A stateful resource (bucket, queue, table, parameter, ...) is replaced.
    StatefulReplacement,
    /// A stateful resource leaves the stack.
    StatefulRemoval,
    /// Replacing a resource whose name is set in the template fails unless the name changes.
    NamedReplacement,
    /// IAM, a resource policy or a security group changes.
    SecurityChange,
    /// An export disappears; stacks importing it block the update.
    ExportRemoved,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub kind: FlagKind,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceDiff {
    pub logical_id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub action: Action,
    pub replacement: Replacement,
    pub deletion_policy: Option<String>,
    pub update_replace_policy: Option<String>,
    pub changes: Vec<Change>,
    pub flags: Vec<Flag>,
    /// What in this change broadens access (see [`Broadening`]).
    pub broadening: Vec<Broadening>,
}

/// A parameter, mapping, condition, output or top-level key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryDiff {
    pub name: String,
    pub action: Action,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub remove: usize,
    pub modify: usize,
    /// Modified resources whose replacement is `always` or `conditional`.
    pub replace: usize,
    /// Broadenings of access, over all resources.
    pub broadening: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateDiff {
    pub schema_version: u32,
    pub has_changes: bool,
    pub summary: Summary,
    pub resources: Vec<ResourceDiff>,
    pub parameters: Vec<EntryDiff>,
    pub mappings: Vec<EntryDiff>,
    pub conditions: Vec<EntryDiff>,
    pub outputs: Vec<EntryDiff>,
    /// Top-level keys other than the sections above (Description, Transform, Metadata, ...).
    pub other: Vec<EntryDiff>,
    pub flags: Vec<Flag>,
    /// IAM statements and security-group rules added and removed.
    pub security: Security,
}

impl TemplateDiff {
    pub fn has_changes(&self) -> bool {
        self.has_changes
    }

    /// Every flag, the resources' and the template's.
    pub fn all_flags(&self) -> impl Iterator<Item = (&str, &Flag)> {
        self.resources
            .iter()
            .flat_map(|r| r.flags.iter().map(move |f| (r.logical_id.as_str(), f)))
            .chain(self.flags.iter().map(|f| ("", f)))
    }
}

/// What to leave out of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    /// Metadata keys (of resources and of the template) starting with one of these are noise,
    /// also inside a `Metadata` block added or removed as a whole: a block holding nothing else
    /// is no change.
    pub ignore_metadata_prefixes: Vec<String>,
    /// Dotted paths to ignore; `*` matches one segment (`Resources.*.Metadata.checkov`). A
    /// change at or below a matching path is dropped, and a value added or removed as a whole
    /// is compared without what lies at a matching path inside it.
    pub ignore_paths: Vec<String>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            ignore_metadata_prefixes: vec!["aws:cdk:".into(), "aws:asset:".into()],
            ignore_paths: Vec::new(),
        }
    }
}

impl DiffOptions {
    fn ignored(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('.').collect();
        self.ignore_paths.iter().any(|pattern| {
            let pat: Vec<&str> = pattern.split('.').collect();
            pat.len() <= segs.len()
                && pat
                    .iter()
                    .zip(&segs)
                    .all(|(p, s)| *p == "*" || p == s || strip_index(s) == *p)
        })
    }
}

fn strip_index(seg: &str) -> &str {
    seg.split('[').next().unwrap_or(seg)
}

/// Types whose replacement or removal loses data.
const STATEFUL: &[&str] = &[
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::SSM::Parameter",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBCluster",
    "AWS::EFS::FileSystem",
    "AWS::Logs::LogGroup",
    "AWS::KMS::Key",
    "AWS::Kinesis::Stream",
    "AWS::ElastiCache::CacheCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::OpenSearchService::Domain",
    "AWS::Elasticsearch::Domain",
    "AWS::Cognito::UserPool",
    "AWS::SecretsManager::Secret",
    "AWS::ECR::Repository",
    "AWS::Backup::BackupVault",
    "AWS::DocDB::DBCluster",
    "AWS::Neptune::DBCluster",
    "AWS::Redshift::Cluster",
    "AWS::SNS::Topic",
    "AWS::EC2::Volume",
    "AWS::FSx::FileSystem",
    "AWS::Timestream::Table",
    "AWS::MSK::Cluster",
];

/// Types that are access control through and through.
const SECURITY_TYPES: &[&str] = &[
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::InstanceProfile",
    "AWS::IAM::UserToGroupAddition",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::Lambda::Permission",
    "AWS::KMS::Key",
    "AWS::SecretsManager::ResourcePolicy",
    "AWS::ECR::RepositoryPolicy",
];

/// Property names that carry access control on any type.
fn is_security_property(name: &str) -> bool {
    matches!(
        name,
        "PolicyDocument"
            | "Policies"
            | "ManagedPolicyArns"
            | "AssumeRolePolicyDocument"
            | "PermissionsBoundary"
            | "KeyPolicy"
            | "ResourcePolicy"
            | "AccessPolicies"
            | "RepositoryPolicyText"
            | "Principal"
            | "AccessControl"
            | "SecurityGroups"
            | "SecurityGroupIds"
            | "SecurityGroupIngress"
            | "SecurityGroupEgress"
            | "VpcSecurityGroupIds"
    )
}

/// A comparison, with the two templates as far as it read them (in CloudFormation's JSON form;
/// the resources and outputs it did not need to compare are left out).
#[derive(Debug)]
pub struct Compared {
    pub diff: TemplateDiff,
    pub old: Value,
    pub new: Value,
}

/// Reads and compares two template files: [`compare_texts`] on their contents.
pub fn diff_files(
    old: &std::path::Path,
    new: &std::path::Path,
    options: &DiffOptions,
) -> Result<Compared, LoadError> {
    let (old_text, old_origin) = load::read_text(old)?;
    let (new_text, new_origin) = load::read_text(new)?;
    // The new text is given away: a reading may drop it as soon as it has what it needs.
    let read = read_texts(
        (&old_text, &old_origin),
        (Cow::Owned(new_text), &new_origin),
        options,
    )?;
    // The texts are not needed to compare what was read of them: they go first.
    drop(old_text);
    Ok(read.compare(options))
}

/// Two templates read as far as comparing them needs.
struct Read {
    old: Value,
    new: Value,
    /// The diffs of resources already made while reading, by id.
    made: BTreeMap<String, ResourceDiff>,
    /// The export names of outputs left out of both sides because they are the same on both.
    exports_both: BTreeSet<String>,
}

impl Read {
    fn whole(old: Value, new: Value) -> Read {
        Read {
            old,
            new,
            made: BTreeMap::new(),
            exports_both: BTreeSet::new(),
        }
    }

    fn compare(self, options: &DiffOptions) -> Compared {
        let diff = compare(&self.old, &self.new, options, self.made, &self.exports_both);
        Compared {
            diff,
            old: self.old,
            new: self.new,
        }
    }
}

/// Compares two templates given as text, each with the name it is reported under: the same
/// result as [`parse_template`] on both and [`diff_templates`], reached faster.
pub fn diff_texts(
    old: (&str, &str),
    new: (&str, &str),
    options: &DiffOptions,
) -> Result<TemplateDiff, LoadError> {
    compare_texts(old, new, options).map(|c| c.diff)
}

/// [`diff_texts`], keeping what it read.
///
/// When both are JSON, resources whose text is the same on both sides are not parsed at all,
/// with one exception: a resource that refers to one that may be replaced (its `Ref`,
/// `Fn::GetAtt` or `${...}` may change at deploy time) is compared, and then so is every
/// resource that refers to it in turn. A large template with a few changes costs little more
/// than reading its text once.
pub fn compare_texts(
    old: (&str, &str),
    new: (&str, &str),
    options: &DiffOptions,
) -> Result<Compared, LoadError> {
    let new = (Cow::Borrowed(new.0), new.1);
    Ok(read_texts(old, new, options)?.compare(options))
}

/// The reading of [`compare_texts`]: each side as far as comparing them needs.
fn read_texts(
    (old_text, old_origin): (&str, &str),
    (new_text, new_origin): (Cow<'_, str>, &str),
    options: &DiffOptions,
) -> Result<Read, LoadError> {
    let yaml = |t: &str| !load::body(t).starts_with('{');
    if yaml(old_text) && yaml(&new_text) {
        return compare_yaml((old_text, old_origin), (new_text, new_origin), options);
    }
    let new_text: &str = &new_text;
    let old_raw = load::RawTemplate::read(old_text, old_origin)?;
    let new_raw = load::RawTemplate::read(new_text, new_origin)?;
    let (Some(old_raw), Some(new_raw)) = (old_raw, new_raw) else {
        let old = parse_template(old_text, old_origin)?;
        let new = parse_template(new_text, new_origin)?;
        return Ok(Read::whole(old, new));
    };
    let old_by_id: BTreeMap<&str, &serde_json::value::RawValue> = old_raw
        .resources
        .iter()
        .map(|(id, raw)| (id.as_ref(), *raw))
        .collect();
    // The resources on both sides, in the new template's order: (id, new text, same text).
    let mut both: Vec<(&str, &str, bool)> = Vec::new();
    let mut old_parsed = BTreeMap::new();
    let mut new_parsed = BTreeMap::new();
    let mut made = BTreeMap::new();
    // Resources that may be replaced (indexes into `both`): the changed ones found to be.
    let mut replaceable: Vec<usize> = Vec::new();
    for (id, raw) in &new_raw.resources {
        let Some(old) = old_by_id.get(id.as_ref()) else {
            continue;
        };
        let same = old.get() == raw.get();
        if same {
            // Not compared, but read all the same: what cannot be read is an error.
            old_raw.resource(id, old, true)?;
        } else {
            let o = old_raw.resource(id, old, false)?;
            let n = new_raw.resource(id, raw, false)?;
            let r = modified(id, &o, &n, options);
            if r.replacement != Replacement::Never {
                replaceable.push(both.len());
            }
            made.insert(id.to_string(), r);
            old_parsed.insert(id.to_string(), o);
            new_parsed.insert(id.to_string(), n);
        }
        both.push((id, raw.get(), same));
    }
    let ids: Vec<&str> = both.iter().map(|(id, _, _)| *id).collect();
    let reached = spread(&ids, |i, name| strings(both[i].1, name), replaceable);
    let skip: BTreeSet<&str> = both
        .iter()
        .zip(&reached)
        .filter(|((_, _, same), reached)| *same && !**reached)
        .map(|((id, _, _), _)| *id)
        .collect();
    let keep = |id: &str| !skip.contains(id);
    // Outputs whose text is the same on both sides are read (what cannot be read is an error)
    // for their export names, and then dropped: the same value on both sides is no change.
    let mut same_outputs = BTreeSet::new();
    let mut exports_both = BTreeSet::new();
    if let (Some(old_out), Some(new_out)) = (&old_raw.outputs, &new_raw.outputs) {
        let new_by_name: BTreeMap<&str, &str> = new_out
            .iter()
            .map(|(k, raw)| (k.as_ref(), raw.get()))
            .collect();
        for (name, raw) in old_out {
            if new_by_name.get(name.as_ref()) == Some(&raw.get()) {
                let value = old_raw.output(raw)?;
                if let Some(export) = value.get("Export").and_then(|e| e.get("Name")) {
                    exports_both.insert(display(export));
                }
                same_outputs.insert(name.as_ref());
            }
        }
    }
    let keep_output = |name: &str| !same_outputs.contains(name);
    let old = old_raw.assemble(keep, keep_output, &mut old_parsed)?;
    let new = new_raw.assemble(keep, keep_output, &mut new_parsed)?;
    Ok(Read {
        old,
        new,
        made,
        exports_both,
    })
}

/// [`compare_texts`] for two YAML templates. The event parser streams (no YAML tree is
/// built), and a resource whose text is the same on both sides is compared only when
/// replacement may reach it, as for JSON. Such a resource is not even built when a scan of the
/// lines finds its text the same on both sides ([`skim_yaml`]); otherwise both are read whole.
fn compare_yaml(
    (old_text, old_origin): (&str, &str),
    (new_text, new_origin): (Cow<'_, str>, &str),
    options: &DiffOptions,
) -> Result<Read, LoadError> {
    let old_trimmed = load::body(old_text);
    let new_trimmed = match new_text {
        Cow::Borrowed(t) => Cow::Borrowed(load::body(t)),
        Cow::Owned(mut t) => {
            t.drain(..t.len() - load::body(&t).len());
            Cow::Owned(t)
        }
    };
    let new_trimmed = match skim_yaml(
        (old_trimmed, old_origin),
        (new_trimmed, new_origin),
        options,
    ) {
        Ok(read) => return Ok(read),
        Err(text) => text,
    };
    let new_trimmed: &str = &new_trimmed;
    fn read(text: &str, origin: &str) -> Result<(Value, yaml::Texts), LoadError> {
        let read = load::read_yaml(text, origin)?;
        Ok((load::checked(read.value, origin)?, read.texts))
    }
    let (old, old_texts) = read(old_trimmed, old_origin)?;
    let (new, new_texts) = read(new_trimmed, new_origin)?;
    let sides = YamlSides {
        texts: (old_trimmed, new_trimmed),
        ranges: (&old_texts, &new_texts),
        skipped: &yaml::Skipped::default(),
        scanned: &yaml::Scan::default(),
        skipped_outputs: &yaml::Skipped::default(),
        scanned_outputs: &yaml::Scan::default(),
    };
    Ok(sides
        .prepare(old, new, options)
        .expect("nothing was skipped, so nothing is read again"))
}

/// The fast path of [`compare_yaml`], for the resources whose lines a scan finds the same on
/// both sides (`skipped`):
///
/// - the new side is read with each of their texts cut down to one line, `<id>:` (a stub),
///   which the parser must find where it was put, an entry of `Resources` ending on its line,
///   with a null value;
/// - the old side is read the same way where a resource's lines alone show what it is and that
///   it reads without error ([`yaml::plain_resource`]); the others the parser only checks as it
///   passes them, and must find each exactly where the scan did, its own entry of `Resources`.
///
/// None of them is in the values read: the parser notes where each was, and a skipped
/// resource that replacement reaches is read again from its text. Each side is read on a
/// thread of its own.
///
/// The text of such a resource then means on the new side what it means on the old: it
/// starts where an entry of `Resources` starts, and ends where one ends, with no alias or tag
/// directive to read it otherwise. YAML is read once for it, not twice, and for most not at all.
///
/// The new text, given away, is dropped once it is cut: what was cut from it is the same text
/// on the old side.
///
/// The new text (put together again when it was given away) when that cannot be shown, or
/// either side is in error: the whole reading reports it.
fn skim_yaml<'t>(
    (old_text, old_origin): (&str, &str),
    (new_text, new_origin): (Cow<'t, str>, &str),
    options: &DiffOptions,
) -> Result<Read, Cow<'t, str>> {
    use yaml::Section;
    let old_scan = yaml::scan_texts(old_text);
    let new_scan = yaml::scan_texts(&new_text);
    let skipped: [yaml::Skipped; 2] = Section::BOTH.map(|s| {
        let (old, new) = (&old_scan[s as usize], &new_scan[s as usize]);
        old.iter()
            .filter(|(id, text)| new.get(*id) == Some(text))
            .map(|(id, _)| *id)
            .collect()
    });
    if skipped.iter().all(|s| s.is_empty()) {
        drop(new_scan);
        return Err(new_text);
    }
    let (new_cut, new_at, _) = cut(&new_text, &new_scan, &skipped, |_, _, _| true);
    drop(new_scan);
    let new_text = match new_text {
        Cow::Borrowed(t) => Some(t),
        Cow::Owned(t) => {
            drop(t);
            None
        }
    };
    let whole = || match new_text {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(uncut(&new_cut, &new_at, &old_scan)),
    };
    // The two sides are read at once, on two threads.
    let ((old, old_cut, old_at), new) = std::thread::scope(|scope| {
        let new = scope.spawn(|| {
            let skip = [0, 1].map(|s| yaml::Left {
                skipped: &skipped[s],
                stubs: &skipped[s],
            });
            yaml::read_skipping(&new_cut, skip)
        });
        let plain = |section, id: &str, text: &str| match section {
            Section::Resources => yaml::plain_resource(id, text),
            Section::Outputs => yaml::plain_output(id, text),
        };
        let (old_cut, old_at, stubs) = cut(old_text, &old_scan, &skipped, plain);
        let skip = [0, 1].map(|s| yaml::Left {
            skipped: &skipped[s],
            stubs: &stubs[s],
        });
        let old = yaml::read_skipping(&old_cut, skip);
        // A panic of the parser is a bug: it is not hidden by reading the text again.
        let new = new.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        ((old, old_cut, old_at), new)
    });
    let (Ok(Some(old)), Ok(Some(new))) = (old, new) else {
        return Err(whole());
    };
    // Each skipped entry is where it was put, an entry of its section of its own.
    if old.skipped != old_at || new.skipped != new_at {
        return Err(whole());
    }
    let (Ok(old_value), Ok(new_value)) = (
        load::checked(old.value, old_origin),
        load::checked(new.value, new_origin),
    ) else {
        return Err(whole());
    };
    let [resources, outputs] = &skipped;
    let [scanned, scanned_outputs] = &old_scan;
    let sides = YamlSides {
        texts: (&old_cut, &new_cut),
        ranges: (&old.texts, &new.texts),
        skipped: resources,
        scanned,
        skipped_outputs: outputs,
        scanned_outputs,
    };
    sides
        .prepare(old_value, new_value, options)
        .ok_or_else(whole)
}

/// The text [`cut`] was given, from what it gave (`at`: every skipped entry it cut to a stub)
/// and the entries' texts.
fn uncut(cut: &str, at: &[yaml::Found<'_>], scans: &[yaml::Scan<'_>; 2]) -> String {
    let part = |(s, id, _): &yaml::Found<'_>| scans[*s as usize][id];
    let mut out =
        String::with_capacity(cut.len() + at.iter().map(|f| part(f).len()).sum::<usize>());
    let mut from = 0;
    for found in at {
        out.push_str(&cut[from..found.2.start]);
        out.push_str(part(found));
        from = found.2.end;
    }
    out.push_str(&cut[from..]);
    out
}

/// `text` with each skipped entry that `stub` takes (given its section, id and text) cut to
/// one line, `<id>:`; where each skipped entry is in what it gives (its stub, or its own
/// lines), in order; and the ids cut, by section.
#[allow(clippy::type_complexity)]
fn cut<'k>(
    text: &str,
    scans: &[yaml::Scan<'_>; 2],
    skipped: &[yaml::Skipped<'k>; 2],
    stub: impl Fn(yaml::Section, &str, &str) -> bool,
) -> (String, Vec<yaml::Found<'k>>, [yaml::Skipped<'k>; 2]) {
    let mut cuts: Vec<(usize, yaml::Section, &str, &str)> = yaml::Section::BOTH
        .iter()
        .flat_map(|&s| {
            let scan = &scans[s as usize];
            skipped[s as usize]
                .iter()
                .map(move |id| (load::offset_in(text, scan[id]), s, *id, scan[id]))
        })
        .collect();
    cuts.sort_unstable();
    let mut out = String::with_capacity(text.len() / 4);
    let mut found = Vec::with_capacity(cuts.len());
    let mut stubs: [yaml::Skipped; 2] = Default::default();
    let mut at = 0;
    for (start, section, id, part) in cuts {
        out.push_str(&text[at..start]);
        let from = out.len();
        if stub(section, id, part) {
            let indent = part.len() - part.trim_start_matches(' ').len();
            out.push_str(&part[..indent]);
            out.push_str(id);
            out.push_str(":\n");
            stubs[section as usize].insert(id);
        } else {
            out.push_str(part);
        }
        found.push((section, id, from..out.len()));
        at = start + part.len();
    }
    out.push_str(&text[at..]);
    (out, found, stubs)
}

/// Two YAML templates' texts as read, where each resource's text is in them, and the
/// resources and outputs left out of both (their text is the same on both sides), with that
/// text as the scan found it.
struct YamlSides<'a> {
    texts: (&'a str, &'a str),
    ranges: (&'a yaml::Texts, &'a yaml::Texts),
    skipped: &'a yaml::Skipped<'a>,
    scanned: &'a yaml::Scan<'a>,
    skipped_outputs: &'a yaml::Skipped<'a>,
    scanned_outputs: &'a yaml::Scan<'a>,
}

impl YamlSides<'_> {
    /// Two read templates made ready to compare; `None` when a skipped resource that
    /// replacement reaches cannot be read from its text alone.
    fn prepare(&self, mut old: Value, mut new: Value, options: &DiffOptions) -> Option<Read> {
        let (old_ranges, new_ranges) = self.ranges;
        let (old_text, new_text) = self.texts;
        let empty = Map::new();
        let (skip, made, reread) = {
            let old_res = old
                .get("Resources")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let new_res = new
                .get("Resources")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let mut ids = Vec::new();
            let mut same = Vec::new();
            let mut made = BTreeMap::new();
            let mut replaceable = Vec::new();
            for (id, n) in new_res {
                let Some(o) = old_res.get(id) else { continue };
                let text_same = match (old_ranges.get(id), new_ranges.get(id)) {
                    (Some(a), Some(b)) => old_text[a.clone()] == new_text[b.clone()],
                    _ => false,
                };
                if !text_same {
                    let r = modified(id, o, n, options);
                    if r.replacement != Replacement::Never {
                        replaceable.push(ids.len());
                    }
                    made.insert(id.clone(), r);
                }
                ids.push(id.as_str());
                same.push(text_same);
            }
            let values: Vec<&Value> = ids.iter().map(|id| &new_res[*id]).collect();
            // The skipped resources, on both sides, come after the others.
            ids.extend(self.skipped.iter().copied());
            same.resize(ids.len(), true);
            // A skipped resource's names come from its text, where every id is plain.
            let plain = ids
                .iter()
                .all(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()));
            let reached = spread(
                &ids,
                |i, name| match values.get(i) {
                    Some(value) => value_strings(value, name),
                    None => plain && words(self.scanned[ids[i]], name),
                },
                replaceable,
            );
            // Read resources with the same text that replacement does not reach are left out
            // as the skipped ones are; skipped ones it reaches are read again.
            let mut skip =
                std::collections::HashSet::<String, foldhash::fast::RandomState>::default();
            let mut reread = Vec::new();
            for (i, (id, (same, reached))) in ids.iter().zip(same.iter().zip(&reached)).enumerate()
            {
                match (i < values.len(), *same, *reached) {
                    (true, true, false) => {
                        skip.insert(id.to_string());
                    }
                    (false, _, true) => reread.push(id.to_string()),
                    _ => {}
                }
            }
            (skip, made, reread)
        };
        // A skipped resource that replacement reaches: its text is the same on both sides,
        // so it is read once, on its own.
        let mut values = BTreeMap::new();
        for id in reread {
            let text = self.scanned.get(id.as_str())?;
            let value = yaml::read_resource(text).ok()??;
            values.insert(id, load::normalize(value));
        }
        // Into the old side a copy, into the new side the value itself.
        for (t, last) in [(&mut old, false), (&mut new, true)] {
            let Some(Value::Object(r)) = t.get_mut("Resources") else {
                // Each skipped resource was found in both sides' `Resources`.
                return None;
            };
            r.retain(|id, _| !skip.contains(id));
            if last {
                r.extend(std::mem::take(&mut values));
            } else {
                r.extend(values.iter().map(|(id, v)| (id.clone(), v.clone())));
            }
        }
        // The export names of the outputs left out of both sides are still exported. They are
        // read only when an export of the outputs read is gone.
        let exports = |t: &Value| -> BTreeSet<String> {
            let outputs = t.get("Outputs").and_then(Value::as_object);
            outputs
                .into_iter()
                .flat_map(|o| o.values())
                .filter_map(|o| o.get("Export")?.get("Name"))
                .map(display)
                .collect()
        };
        let new_exports = exports(&new);
        let mut exports_both = BTreeSet::new();
        if exports(&old).iter().any(|e| !new_exports.contains(e)) {
            for id in self.skipped_outputs {
                let text = self.scanned_outputs.get(id)?;
                let output = load::normalize(yaml::read_resource(text).ok()??);
                if let Some(name) = output.get("Export").and_then(|e| e.get("Name")) {
                    exports_both.insert(display(name));
                }
            }
        }
        Some(Read {
            made,
            exports_both,
            ..Read::whole(old, new)
        })
    }
}

/// Calls `name` with every run of ASCII letters and digits in YAML text: every id a value in
/// it may name, when ids are such runs. `false` (and stops) at a `\`, where an escape may
/// spell an id otherwise.
fn words(text: &str, name: &mut dyn FnMut(&str)) -> bool {
    let bytes = text.as_bytes();
    if memchr::memchr(b'\\', bytes).is_some() {
        return false;
    }
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at].is_ascii_alphanumeric() {
            let start = at;
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            name(&text[start..at]);
        } else {
            at += 1;
        }
    }
    true
}

/// [`strings`] over a parsed value: each string (keys too) up to its first `.`, and each
/// `${...}` in it up to its first `.`.
fn value_strings(v: &Value, name: &mut dyn FnMut(&str)) -> bool {
    let text = |s: &str, name: &mut dyn FnMut(&str)| {
        name(s.split('.').next().unwrap_or(s));
        let mut rest = s;
        while let Some(open) = rest.find("${") {
            let after = &rest[open + 2..];
            let Some(close) = after.find('}') else { break };
            let inner = &after[..close];
            name(inner.split('.').next().unwrap_or(inner));
            rest = &after[close + 1..];
        }
    };
    match v {
        Value::String(s) => text(s, name),
        Value::Array(items) => {
            for i in items {
                value_strings(i, name);
            }
        }
        Value::Object(m) => {
            for (k, i) in m {
                text(k, name);
                value_strings(i, name);
            }
        }
        _ => {}
    }
    true
}

/// Which resources replacement may reach from the resources in `from` (indexes into
/// `resources`: id, JSON text, whether that text is the same on both sides): those that may
/// refer to one of them, and so on.
///
/// A superset: a `Ref` or `Fn::GetAtt` to an id is the string `"id"` (or `"id.Attr"`), a
/// `Fn::Sub` names it as `${id}` or `${id.Attr}`; any string spelled so counts, wherever it is
/// in the resource's text. A resource whose text holds a `\u` escape, which may spell any id,
/// is reached from anything.
fn spread(
    resources: &[&str],
    mut names: impl FnMut(usize, &mut dyn FnMut(&str)) -> bool,
    mut from: Vec<usize>,
) -> Vec<bool> {
    let mut reached = vec![false; resources.len()];
    if from.is_empty() {
        return reached;
    }
    for &i in &from {
        reached[i] = true;
    }
    type Fast = foldhash::fast::RandomState;
    let index: std::collections::HashMap<&str, usize, Fast> = resources
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    // A name no id has the length or the first byte of is not looked up.
    let shortest = resources.iter().map(|id| id.len()).min().unwrap_or(0);
    let longest = resources.iter().map(|id| id.len()).max().unwrap_or(0);
    let mut firsts = [false; 256];
    for id in resources {
        if let Some(&b) = id.as_bytes().first() {
            firsts[usize::from(b)] = true;
        }
    }
    let possible = |name: &str| {
        (shortest..=longest).contains(&name.len())
            && name
                .as_bytes()
                .first()
                .is_none_or(|&b| firsts[usize::from(b)])
    };
    // referrers[j]: the resources that may refer to resource j.
    let mut referrers: Vec<Vec<usize>> = vec![Vec::new(); resources.len()];
    let mut to_anything = Vec::new();
    for i in 0..resources.len() {
        let found = names(i, &mut |name| {
            if !possible(name) {
                return;
            }
            if let Some(&j) = index.get(name) {
                if referrers[j].last() != Some(&i) {
                    referrers[j].push(i);
                }
            }
        });
        if !found {
            to_anything.push(i);
        }
    }
    while let Some(target) = from.pop() {
        for &i in referrers[target].iter().chain(&to_anything) {
            if !reached[i] {
                reached[i] = true;
                from.push(i);
            }
        }
    }
    reached
}

/// Calls `name` with what each JSON string in `text` may name: the string up to its first `.`,
/// and each `${...}` in it up to its first `.`. `false` (and stops) at a string with a `\u`
/// escape.
fn strings(text: &str, name: &mut dyn FnMut(&str)) -> bool {
    let bytes = text.as_bytes();
    fn root(s: &str) -> &str {
        s.split('.').next().unwrap_or(s)
    }
    let mut at = 0;
    while let Some(open) = memchr::memchr(b'"', &bytes[at..]) {
        let start = at + open + 1;
        let mut end = start;
        loop {
            match memchr::memchr2(b'"', b'\\', &bytes[end..]) {
                None => {
                    end = bytes.len();
                    break;
                }
                Some(k) if bytes[end + k] == b'"' => {
                    end += k;
                    break;
                }
                Some(k) => {
                    if bytes.get(end + k + 1) == Some(&b'u') {
                        return false;
                    }
                    end += k + 2;
                }
            }
        }
        let content = &text[start..end.min(text.len())];
        name(root(content));
        let mut rest = content;
        while let Some(open) = memchr::memmem::find(rest.as_bytes(), b"${") {
            let after = &rest[open + 2..];
            let Some(close) = after.find('}') else { break };
            name(root(&after[..close]));
            rest = &after[close + 1..];
        }
        at = end + 1;
        if at >= bytes.len() {
            break;
        }
    }
    true
}

/// Compares two templates (both in CloudFormation's JSON form).
pub fn diff_templates(old: &Value, new: &Value, options: &DiffOptions) -> TemplateDiff {
    compare(old, new, options, BTreeMap::new(), &BTreeSet::new())
}

/// [`diff_templates`], with the diffs of some resources on both sides already made, and the
/// export names of outputs left out of both sides because they are the same on both.
fn compare(
    old: &Value,
    new: &Value,
    options: &DiffOptions,
    mut made: BTreeMap<String, ResourceDiff>,
    exports_both: &BTreeSet<String>,
) -> TemplateDiff {
    let empty = Map::new();
    fn section_of<'a>(
        t: &'a Value,
        name: &str,
        empty: &'a Map<String, Value>,
    ) -> &'a Map<String, Value> {
        t.get(name).and_then(Value::as_object).unwrap_or(empty)
    }
    let section = |t, name| section_of(t, name, &empty);
    let old_res = section(old, "Resources");
    let new_res = section(new, "Resources");

    let mut resources = Vec::new();
    let ids: BTreeSet<&String> = old_res.keys().chain(new_res.keys()).collect();
    for id in ids {
        match (old_res.get(id), new_res.get(id)) {
            (None, Some(n)) => resources.push(added_or_removed(id, n, Action::Add)),
            (Some(o), None) => resources.push(added_or_removed(id, o, Action::Remove)),
            (Some(o), Some(n)) => match made.remove(id.as_str()) {
                Some(r) => resources.push(r),
                None => resources.push(modified(id, o, n, options)),
            },
            (None, None) => unreachable!(),
        }
    }
    propagate(&mut resources, new_res);
    for r in &mut resources {
        if r.action == Action::Modify {
            r.flags = modify_flags(r, new_res.get(&r.logical_id));
        }
    }
    resources.retain(|r| r.action != Action::Modify || !r.changes.is_empty());
    let mut security = Security::default();
    let mut budget = security::COMPARE_BUDGET;
    for r in &mut resources {
        let (o, n) = match r.action {
            Action::Add => (None, new_res.get(&r.logical_id)),
            Action::Remove => (old_res.get(&r.logical_id), None),
            Action::Modify => (old_res.get(&r.logical_id), new_res.get(&r.logical_id)),
        };
        r.broadening = security::examine(r, o, n, &mut security, &mut budget);
    }

    let mut flags = Vec::new();
    let outputs = entries(
        section(old, "Outputs"),
        section(new, "Outputs"),
        "Outputs",
        options,
    );
    let exports = |t: &Value| -> BTreeMap<String, String> {
        section_of(t, "Outputs", &empty)
            .iter()
            .filter_map(|(k, o)| {
                let name = o.get("Export")?.get("Name")?;
                Some((display(name), k.clone()))
            })
            .collect()
    };
    let new_exports = exports(new);
    for (name, output) in exports(old) {
        if !new_exports.contains_key(&name) && !exports_both.contains(&name) {
            flags.push(Flag {
                kind: FlagKind::ExportRemoved,
                message: format!(
                    "export {name} (output {output}) is removed or renamed: CloudFormation refuses the update while another stack imports it"
                ),
            });
        }
    }

    let known = [
        "Resources",
        "Parameters",
        "Mappings",
        "Conditions",
        "Outputs",
    ];
    // `AWSTemplateFormatVersion` has one value, assumed where it is left out.
    // An empty `Metadata` is none at all.
    let implied = |k: &str, v: &Value| {
        (k == "AWSTemplateFormatVersion" && v.as_str() == Some("2010-09-09"))
            || (k == "Metadata" && v.as_object().is_some_and(Map::is_empty))
    };
    let others = |t: &Value| -> Map<String, Value> {
        t.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| !known.contains(&k.as_str()) && !implied(k, v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let other = entries(&others(old), &others(new), "", options);

    let parameters = entries(
        section(old, "Parameters"),
        section(new, "Parameters"),
        "Parameters",
        options,
    );
    let mappings = entries(
        section(old, "Mappings"),
        section(new, "Mappings"),
        "Mappings",
        options,
    );
    let conditions = entries(
        section(old, "Conditions"),
        section(new, "Conditions"),
        "Conditions",
        options,
    );

    let summary = Summary {
        add: resources.iter().filter(|r| r.action == Action::Add).count(),
        remove: resources
            .iter()
            .filter(|r| r.action == Action::Remove)
            .count(),
        modify: resources
            .iter()
            .filter(|r| r.action == Action::Modify)
            .count(),
        replace: resources
            .iter()
            .filter(|r| r.action == Action::Modify && r.replacement != Replacement::Never)
            .count(),
        broadening: resources.iter().map(|r| r.broadening.len()).sum(),
    };
    let has_changes = !resources.is_empty()
        || !parameters.is_empty()
        || !mappings.is_empty()
        || !conditions.is_empty()
        || !outputs.is_empty()
        || !other.is_empty();
    TemplateDiff {
        schema_version: 1,
        has_changes,
        summary,
        resources,
        parameters,
        mappings,
        conditions,
        outputs,
        other,
        flags,
        security,
    }
}

/// Whether a full path (`Metadata.<key>...` of the template, `Resources.<id>.Metadata.<key>...`
/// of a resource) is under a metadata key that is noise.
fn metadata_noise(full_path: &str, options: &DiffOptions) -> bool {
    let segs: Vec<&str> = full_path.split('.').collect();
    let key = match segs.as_slice() {
        ["Metadata", key, ..] => key,
        ["Resources", _, "Metadata", key, ..] => key,
        _ => return false,
    };
    options
        .ignore_metadata_prefixes
        .iter()
        .any(|p| key.starts_with(p.as_str()))
}

/// Whether a change at this full path is left out: an ignored path or metadata noise.
fn dropped(full_path: &str, options: &DiffOptions) -> bool {
    options.ignored(full_path) || metadata_noise(full_path, options)
}

/// A value at `full_path` without its dropped parts, or `None` when nothing else is in it. A
/// block that appears or disappears as a whole (a resource's `Metadata`, a template's
/// `Metadata`) is compared without what would be dropped key by key.
fn prune(v: &Value, full_path: &str, options: &DiffOptions) -> Option<Value> {
    if dropped(full_path, options) {
        return None;
    }
    match v {
        Value::Object(m) if !m.is_empty() && !is_intrinsic(m) => {
            let kept: Map<String, Value> = m
                .iter()
                .filter_map(|(k, x)| {
                    prune(x, &format!("{full_path}.{k}"), options).map(|x| (k.clone(), x))
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

type RawChange = (String, Option<Value>, Option<Value>);

/// The changes `walk` found that are not dropped, whole values pruned; `full` turns a change's
/// path into the full path that ignore paths and metadata noise match.
fn kept(
    raw: Vec<RawChange>,
    full: impl Fn(&str) -> String,
    options: &DiffOptions,
) -> Vec<RawChange> {
    raw.into_iter()
        .filter_map(|(path, old, new)| {
            let at = full(&path);
            if dropped(&at, options) {
                return None;
            }
            let old = old.and_then(|v| prune(&v, &at, options));
            let new = new.and_then(|v| prune(&v, &at, options));
            match (&old, &new) {
                (None, None) => None,
                (Some(a), Some(b)) if loosely_equal(a, b) => None,
                _ => Some((path, old, new)),
            }
        })
        .collect()
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn added_or_removed(id: &str, r: &Value, action: Action) -> ResourceDiff {
    let resource_type = str_field(r, "Type").unwrap_or_default();
    let deletion_policy = str_field(r, "DeletionPolicy");
    let mut flags = Vec::new();
    if action == Action::Remove && STATEFUL.contains(&resource_type.as_str()) {
        let fate = match deletion_policy.as_deref() {
            Some("Retain") | Some("RetainExceptOnCreate") => {
                "DeletionPolicy Retain: it is orphaned — kept in the account, no longer managed"
                    .to_string()
            }
            Some("Snapshot") => {
                "DeletionPolicy Snapshot: deleted after a final snapshot".to_string()
            }
            _ => "no DeletionPolicy: it is DELETED with its data".to_string(),
        };
        flags.push(Flag {
            kind: FlagKind::StatefulRemoval,
            message: format!("{resource_type} {id} leaves the stack; {fate}"),
        });
    }
    if SECURITY_TYPES.contains(&resource_type.as_str()) {
        flags.push(Flag {
            kind: FlagKind::SecurityChange,
            message: format!(
                "{resource_type} {id} is {}",
                if action == Action::Add {
                    "added"
                } else {
                    "removed"
                }
            ),
        });
    }
    ResourceDiff {
        logical_id: id.to_string(),
        resource_type,
        action,
        replacement: Replacement::Never,
        deletion_policy,
        update_replace_policy: str_field(r, "UpdateReplacePolicy"),
        changes: Vec::new(),
        flags,
        broadening: Vec::new(),
    }
}

fn modified(id: &str, old: &Value, new: &Value, options: &DiffOptions) -> ResourceDiff {
    let old_type = str_field(old, "Type").unwrap_or_default();
    let new_type = str_field(new, "Type").unwrap_or_default();
    let mut changes = Vec::new();
    if old_type != new_type {
        changes.push(Change {
            path: "Type".into(),
            old: Some(Value::String(old_type.clone())),
            new: Some(Value::String(new_type.clone())),
            replacement: Replacement::Always,
            reason: Some("a resource whose type changes is a new resource".into()),
        });
    }
    let rules = replacement::rules(&new_type);
    let empty = Value::Object(Map::new());
    let old_props = old.get("Properties").unwrap_or(&empty);
    let new_props = new.get("Properties").unwrap_or(&empty);
    let mut prop_changes = Vec::new();
    walk(old_props, new_props, "Properties", &mut prop_changes);
    let full = |path: &str| format!("Resources.{id}.{path}");
    for (path, o, n) in kept(prop_changes, full, options) {
        let top = strip_index(path.split('.').nth(1).unwrap_or(""));
        let (replacement, reason) = classify(rules, &new_type, top, o.as_ref(), n.as_ref());
        changes.push(Change {
            path,
            old: o,
            new: n,
            replacement,
            reason,
        });
    }
    for attr in [
        "DependsOn",
        "DeletionPolicy",
        "UpdateReplacePolicy",
        "Condition",
        "Metadata",
        "UpdatePolicy",
        "CreationPolicy",
    ] {
        // An empty `Metadata` is none at all.
        fn value<'v>(r: &'v Value, attr: &str) -> &'v Value {
            match r.get(attr) {
                Some(Value::Object(m)) if attr == "Metadata" && m.is_empty() => &Value::Null,
                Some(v) => v,
                None => &Value::Null,
            }
        }
        let mut attr_changes = Vec::new();
        walk(value(old, attr), value(new, attr), attr, &mut attr_changes);
        for (path, o, n) in kept(attr_changes, full, options) {
            changes.push(Change {
                path,
                old: o,
                new: n,
                replacement: Replacement::Never,
                reason: None,
            });
        }
    }
    let replacement = changes
        .iter()
        .map(|c| c.replacement)
        .max()
        .unwrap_or(Replacement::Never);
    ResourceDiff {
        logical_id: id.to_string(),
        resource_type: new_type,
        action: Action::Modify,
        replacement,
        deletion_policy: str_field(new, "DeletionPolicy"),
        update_replace_policy: str_field(new, "UpdateReplacePolicy"),
        changes,
        flags: Vec::new(),
        broadening: Vec::new(),
    }
}

fn classify(
    rules: Option<&replacement::TypeRules>,
    resource_type: &str,
    property: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> (Replacement, Option<String>) {
    let Some(rules) = rules else {
        return (
            Replacement::Conditional,
            Some(format!(
                "{resource_type} is not in the embedded resource data ({}): its update behaviour is unknown",
                replacement::source()
            )),
        );
    };
    if rules.always.contains(&property) {
        let dynamic = old.is_some_and(is_dynamic) || new.is_some_and(is_dynamic);
        if dynamic {
            return (
                Replacement::Conditional,
                Some(format!(
                    "{property} requires replacement; its value is only known at deploy time"
                )),
            );
        }
        return (
            Replacement::Always,
            Some(format!("{property}: update requires replacement")),
        );
    }
    if rules.maybe.contains(&property) {
        return (
            Replacement::Conditional,
            Some(format!("{property}: update may require replacement")),
        );
    }
    (Replacement::Never, None)
}

/// Pseudo parameters whose value is fixed for a given stack: two templates that differ only
/// in text around them resolve to different values.
const STABLE_PSEUDO: &[&str] = &[
    "AWS::StackName",
    "AWS::Region",
    "AWS::AccountId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::StackId",
];

/// Whether a value holds an intrinsic function resolved only at deploy time (pseudo parameters
/// that are fixed per stack do not count).
fn is_dynamic(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("Ref") {
                if m.len() == 1 && STABLE_PSEUDO.contains(&r.as_str()) {
                    return false;
                }
            }
            if let Some(Value::String(t)) = m.get("Fn::Sub") {
                if m.len() == 1
                    && crate::sub_variables(t)
                        .iter()
                        .all(|name| STABLE_PSEUDO.contains(&name.as_str()))
                {
                    return false;
                }
            }
            if m.len() == 1 {
                let k = m.keys().next().map(String::as_str).unwrap_or("");
                if k == "Ref" || k.starts_with("Fn::") {
                    return true;
                }
            }
            m.values().any(is_dynamic)
        }
        Value::Array(items) => items.iter().any(is_dynamic),
        _ => false,
    }
}

use crate::refs::referenced_ids;

/// Spreads replacement to the resources that refer to a replaced one.
fn propagate(resources: &mut [ResourceDiff], new_res: &Map<String, Value>) {
    let index: BTreeMap<String, usize> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.logical_id.clone(), i))
        .collect();
    // What each property of a modified resource refers to, found once: the loop below runs
    // until replacement stops spreading.
    let mut referring = Vec::new();
    for (id, new) in new_res {
        let Some(&i) = index.get(id) else { continue };
        if resources[i].action != Action::Modify {
            continue;
        }
        let Some(props) = new.get("Properties").and_then(Value::as_object) else {
            continue;
        };
        for (prop, value) in props {
            let mut refs = BTreeSet::new();
            referenced_ids(value, &mut refs);
            if !refs.is_empty() {
                referring.push((i, prop, value, refs));
            }
        }
    }
    loop {
        let replaced: BTreeMap<String, Replacement> = resources
            .iter()
            .filter(|r| r.action == Action::Modify && r.replacement != Replacement::Never)
            .map(|r| (r.logical_id.clone(), r.replacement))
            .collect();
        let mut progressed = false;
        for &(i, prop, value, ref refs) in &referring {
            let Some((cause, level)) = refs
                .iter()
                .filter_map(|r| replaced.get(r).map(|l| (r.clone(), *l)))
                .max_by_key(|(_, l)| *l)
            else {
                continue;
            };
            let path = format!("Properties.{prop}");
            let already = resources[i].changes.iter().any(|c| {
                c.path == path
                    || c.path.starts_with(&format!("{path}."))
                    || c.path.starts_with(&format!("{path}["))
            });
            if already {
                continue;
            }
            let rules = replacement::rules(&resources[i].resource_type);
            let replacement = match rules {
                None => Replacement::Conditional,
                Some(r) if r.always.contains(&prop.as_str()) => level,
                Some(r) if r.maybe.contains(&prop.as_str()) => Replacement::Conditional,
                Some(_) => Replacement::Never,
            };
            resources[i].changes.push(Change {
                path,
                old: Some(value.clone()),
                new: Some(value.clone()),
                replacement,
                reason: Some(format!(
                    "refers to {cause}, which is replaced: its value changes at deploy time"
                )),
            });
            if replacement > resources[i].replacement {
                resources[i].replacement = replacement;
            }
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
}

fn modify_flags(r: &ResourceDiff, new: Option<&Value>) -> Vec<Flag> {
    let mut flags = Vec::new();
    let t = r.resource_type.as_str();
    if r.replacement != Replacement::Never && STATEFUL.contains(&t) {
        let fate = match r.update_replace_policy.as_deref() {
            Some("Retain") => {
                "UpdateReplacePolicy Retain: the old one is kept, orphaned, with its data"
            }
            Some("Snapshot") => {
                "UpdateReplacePolicy Snapshot: the old one is deleted after a snapshot"
            }
            _ => "the old one is DELETED with its data",
        };
        flags.push(Flag {
            kind: FlagKind::StatefulReplacement,
            message: format!(
                "{t} {} {} replaced by a new, empty one; {fate}",
                r.logical_id,
                if r.replacement == Replacement::Always {
                    "is"
                } else {
                    "may be"
                }
            ),
        });
    }
    if r.replacement != Replacement::Never {
        if let (Some(rules), Some(props)) = (
            replacement::rules(t),
            new.and_then(|n| n.get("Properties"))
                .and_then(Value::as_object),
        ) {
            // The resource's own name (`Name`, `BucketName` of a bucket, `GroupName` of a
            // security group), not another's it refers to (`FunctionName` of a permission).
            let kind = t.rsplit("::").next().unwrap_or(t);
            let own = |p: &&&str| {
                p.strip_suffix("Name")
                    .is_some_and(|of| of.is_empty() || kind.ends_with(of))
            };
            for name in rules.always.iter().filter(own) {
                let changed = r
                    .changes
                    .iter()
                    .any(|c| c.path == format!("Properties.{name}"));
                if props.contains_key(*name) && !changed {
                    flags.push(Flag {
                        kind: FlagKind::NamedReplacement,
                        message: format!(
                            "{} has a custom {name}: CloudFormation cannot replace it unless the name changes too",
                            r.logical_id
                        ),
                    });
                }
            }
        }
    }
    let security_props: Vec<&str> = r
        .changes
        .iter()
        .filter_map(|c| c.path.split('.').nth(1))
        .map(strip_index)
        .filter(|p| is_security_property(p))
        .collect();
    if SECURITY_TYPES.contains(&t) || !security_props.is_empty() {
        let what = if security_props.is_empty() {
            "access control".to_string()
        } else {
            let mut p = security_props.clone();
            p.dedup();
            p.join(", ")
        };
        flags.push(Flag {
            kind: FlagKind::SecurityChange,
            message: format!("{t} {} changes {what}", r.logical_id),
        });
    }
    flags
}

fn entries(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    section: &str,
    options: &DiffOptions,
) -> Vec<EntryDiff> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let full = |path: &str| {
            if section.is_empty() {
                path.to_string()
            } else {
                format!("{section}.{path}")
            }
        };
        let prefix = full(name);
        if options.ignored(&prefix) {
            continue;
        }
        // An entry that appears or disappears is one change: its whole value, at its name.
        let whole = |action: Action, v: &Value| {
            let v = prune(v, &prefix, options)?;
            let (old, new) = match action {
                Action::Add => (None, Some(v)),
                _ => (Some(v), None),
            };
            Some(EntryDiff {
                name: name.clone(),
                action,
                changes: vec![Change {
                    path: name.clone(),
                    old,
                    new,
                    replacement: Replacement::Never,
                    reason: None,
                }],
            })
        };
        match (old.get(name), new.get(name)) {
            (None, Some(n)) => out.extend(whole(Action::Add, n)),
            (Some(o), None) => out.extend(whole(Action::Remove, o)),
            (Some(o), Some(n)) => {
                let mut raw = Vec::new();
                walk(o, n, name, &mut raw);
                let changes: Vec<Change> = kept(raw, full, options)
                    .into_iter()
                    .map(|(path, old, new)| Change {
                        path,
                        old,
                        new,
                        replacement: Replacement::Never,
                        reason: None,
                    })
                    .collect();
                if !changes.is_empty() {
                    out.push(EntryDiff {
                        name: name.clone(),
                        action: Action::Modify,
                        changes,
                    });
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// Whether a map is one intrinsic function: compared as a whole, never key by key.
fn is_intrinsic(m: &Map<String, Value>) -> bool {
    m.len() == 1
        && m.keys()
            .next()
            .is_some_and(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
}

/// Leaf differences between two values, as (path, old, new).
fn walk(
    old: &Value,
    new: &Value,
    path: &str,
    out: &mut Vec<(String, Option<Value>, Option<Value>)>,
) {
    if loosely_equal(old, new) {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !is_intrinsic(a) && !is_intrinsic(b) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(x, y, &p, out),
                    (x, y) => out.push((p, x.cloned(), y.cloned())),
                }
            }
        }
        (Value::Array(a), Value::Array(b))
            if a.len() == b.len()
                && a.iter().all(|x| {
                    !x.is_object() || !matches!(x, Value::Object(m) if is_intrinsic(m))
                }) =>
        {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Null, y) => out.push((path.to_string(), None, Some(y.clone()))),
        (x, Value::Null) => out.push((path.to_string(), Some(x.clone()), None)),
        (x, y) => out.push((path.to_string(), Some(x.clone()), Some(y.clone()))),
    }
}

/// CloudFormation's view of equality: `"10"` equals `10` and `"true"` equals `true`.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        (Value::String(s), Value::Bool(x)) | (Value::Bool(x), Value::String(s)) => {
            s.eq_ignore_ascii_case(if *x { "true" } else { "false" })
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| loosely_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| loosely_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A value as short text: strings bare, everything else as compact JSON.
pub(crate) fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_equality_follows_cloudformation() {
        assert!(loosely_equal(&json!("10"), &json!(10)));
        assert!(loosely_equal(&json!("true"), &json!(true)));
        assert!(!loosely_equal(&json!("10"), &json!(11)));
        assert!(loosely_equal(&json!({"a": ["1"]}), &json!({"a": [1]})));
    }

    #[test]
    fn dynamic_values_are_recognised() {
        assert!(is_dynamic(&json!({"Ref": "X"})));
        assert!(is_dynamic(&json!(["a", {"Fn::Sub": "${X}"}])));
        assert!(!is_dynamic(&json!({"Key": "Value"})));
        assert!(!is_dynamic(&json!({"Fn::Sub": "${AWS::StackName}-q"})));
        assert!(is_dynamic(&json!({"Fn::Sub": "${AWS::StackName}-${Env}"})));
        assert!(!is_dynamic(&json!({"Ref": "AWS::Region"})));
    }

    #[test]
    fn ignore_paths_match_segments() {
        let o = DiffOptions {
            ignore_paths: vec!["Resources.*.Metadata.checkov".into()],
            ..DiffOptions::default()
        };
        assert!(o.ignored("Resources.Bucket.Metadata.checkov.skip[0]"));
        assert!(!o.ignored("Resources.Bucket.Properties.BucketName"));
    }

    fn queue(metadata: Option<Value>) -> Value {
        let mut q = json!({"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders"}});
        if let Some(m) = metadata {
            q["Metadata"] = m;
        }
        json!({"Resources": {"Q": q}})
    }

    #[test]
    fn a_whole_metadata_block_is_compared_without_its_noise() {
        let options = DiffOptions::default();
        let with = queue(Some(json!({
            "aws:cdk:path": "Stack/Q/Resource",
            "checkov": {"skip": [{"id": "CKV_AWS_27"}]}
        })));
        for (old, new, action) in [
            (queue(None), with.clone(), "new"),
            (with, queue(None), "old"),
        ] {
            let d = diff_templates(&old, &new, &options);
            assert_eq!(d.resources.len(), 1, "{d:?}");
            let c = &d.resources[0].changes;
            assert_eq!(c.len(), 1, "{c:?}");
            assert_eq!(c[0].path, "Metadata");
            let value = if action == "new" {
                &c[0].new
            } else {
                &c[0].old
            };
            assert_eq!(
                value.as_ref(),
                Some(&json!({"checkov": {"skip": [{"id": "CKV_AWS_27"}]}})),
                "noise keys are cut out of the {action} value"
            );
            let ignoring = DiffOptions {
                ignore_paths: vec!["Resources.*.Metadata.checkov".into()],
                ..DiffOptions::default()
            };
            assert!(!diff_templates(&old, &new, &ignoring).has_changes);
        }
        let noise = queue(Some(json!({"aws:cdk:path": "Stack/Q/Resource"})));
        assert!(!diff_templates(&queue(None), &noise, &options).has_changes);
        assert!(!diff_templates(&noise, &queue(None), &options).has_changes);
        let counted = DiffOptions {
            ignore_metadata_prefixes: vec![],
            ..DiffOptions::default()
        };
        assert!(diff_templates(&queue(None), &noise, &counted).has_changes);
    }

    #[test]
    fn top_level_keys_added_or_removed_are_changes() {
        let options = DiffOptions::default();
        let mut described = queue(None);
        described["Description"] = json!("orders");
        let d = diff_templates(&described, &queue(None), &options);
        assert!(d.has_changes);
        assert_eq!(d.other.len(), 1);
        assert_eq!(d.other[0].action, Action::Remove);
        assert_eq!(d.other[0].changes[0].old, Some(json!("orders")));
        assert_eq!(d.other[0].changes[0].new, None);

        let mut meta = queue(None);
        meta["Metadata"] = json!({"aws:cdk:version": "2", "Owner": {"Team": "photos"}});
        let d = diff_templates(&queue(None), &meta, &options);
        assert_eq!(d.other.len(), 1);
        assert_eq!(d.other[0].action, Action::Add);
        assert_eq!(
            d.other[0].changes[0].new,
            Some(json!({"Owner": {"Team": "photos"}}))
        );
        let mut noise = queue(None);
        noise["Metadata"] = json!({"aws:cdk:version": "2"});
        assert!(!diff_templates(&queue(None), &noise, &options).has_changes);

        let mut empty = queue(None);
        empty["Metadata"] = json!({});
        assert!(
            !diff_templates(&queue(None), &empty, &options).has_changes,
            "an empty Metadata is none"
        );
        assert!(
            !diff_templates(&queue(Some(json!({}))), &queue(None), &options).has_changes,
            "an empty resource Metadata is none"
        );
        assert!(diff_templates(&queue(Some(json!({"a": 1}))), &queue(None), &options).has_changes);

        let mut versioned = queue(None);
        versioned["AWSTemplateFormatVersion"] = json!("2010-09-09");
        assert!(
            !diff_templates(&queue(None), &versioned, &options).has_changes,
            "the one format version is implied where it is left out"
        );
    }

    #[test]
    fn sub_references_are_found() {
        let mut refs = BTreeSet::new();
        referenced_ids(
            &json!({"Fn::Sub": ["${Queue.Arn}/${Local}/${AWS::Region}", {"Local": {"Ref": "P"}}]}),
            &mut refs,
        );
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), vec!["P", "Queue"]);
    }
}
