//! The comparison itself: a structural diff of the two configurations, then, with schemas,
//! what each code version accepts.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};

use crate::ignore::{ExpiredIgnore, Ignores};
use crate::parse::collection_kind;
use crate::report::{Finding, IgnoredFinding, Report, Violation};
use crate::rules::{Direction, Level, Rule};
use crate::schema::{compare, SchemaChange, SchemaViolation, Schemas, ViolationKind, ANY_ITEM};
use crate::value::{path_string, Config, Kind, Location, Node, Segment, Storage, Value};

use Direction::{MixedFleet, Rollback};

#[derive(Debug, Clone)]
struct Draft {
    rule: Rule,
    level: Level,
    path: Vec<Segment>,
    breaks: Vec<Direction>,
    message: String,
}

fn draft(rule: Rule, path: &[Segment], breaks: &[Direction], message: String) -> Draft {
    Draft {
        rule,
        level: rule.default_level(),
        path: path.to_vec(),
        breaks: breaks.to_vec(),
        message,
    }
}

/// Compares `old` with `new`: what breaks old code on the new configuration (rollback) and
/// new code on the old configuration (mixed fleet). With schemas, each code version's schema
/// is the judge; ignores hide accepted findings.
pub fn check(old: &Config, new: &Config, schemas: Option<&Schemas>, ignores: &Ignores) -> Report {
    let typed = old.typed && new.typed;
    let mut drafts = Vec::new();
    let mut removed = Vec::new();
    let mut added = Vec::new();
    diff(
        &old.root,
        &new.root,
        typed,
        &mut Vec::new(),
        &mut drafts,
        &mut removed,
        &mut added,
    );
    renames(removed, added, &old.root, &new.root, &mut drafts);

    let mut invalid = Vec::new();
    if let Some(schemas) = schemas {
        judge_by_schemas(old, new, schemas, &mut drafts, &mut invalid);
    }

    // One finding per rule and path.
    let mut merged: Vec<Draft> = Vec::new();
    let mut seen: HashMap<(Rule, Vec<Segment>), usize> = HashMap::new();
    for d in drafts {
        match seen.get(&(d.rule, d.path.clone())) {
            Some(&i) => {
                let m = &mut merged[i];
                m.level = m.level.min(d.level);
                for b in d.breaks {
                    if !m.breaks.contains(&b) {
                        m.breaks.push(b);
                    }
                }
                m.breaks.sort();
            }
            None => {
                seen.insert((d.rule, d.path.clone()), merged.len());
                merged.push(d);
            }
        }
    }

    let mut report = Report {
        old_source: old.source.clone(),
        new_source: new.source.clone(),
        rollback_safe: true,
        mixed_fleet_safe: true,
        findings: Vec::new(),
        ignored: Vec::new(),
        expired_ignores: Vec::new(),
        invalid,
    };
    for d in merged {
        let finding = Finding {
            rule: d.rule,
            level: d.level,
            path: path_string(&d.path),
            breaks: d.breaks,
            message: d.message,
            old: locate(&old.root, &d.path),
            new: locate(&new.root, &d.path),
        };
        let entry = ignores
            .entries
            .iter()
            .find(|e| e.expires >= ignores.today && e.matches(&finding));
        match entry {
            Some(e) => report.ignored.push(IgnoredFinding {
                finding,
                reason: e.reason.clone(),
                expires: e.expires.to_string(),
            }),
            None => report.findings.push(finding),
        }
    }
    for e in ignores.entries.iter().filter(|e| e.expires < ignores.today) {
        report.expired_ignores.push(ExpiredIgnore {
            rule: e.rule,
            path: e.path.clone(),
            expires: e.expires.to_string(),
            location: e.location.clone(),
        });
    }
    report.settle();
    report
}

/// The location of the value at `path`, or `None` when it is not there.
fn locate(root: &Node, path: &[Segment]) -> Option<Location> {
    root.at(path).map(|n| n.location.clone())
}

/// The location of the value at `path`, or of its nearest ancestor that exists.
fn nearest(root: &Node, path: &[Segment]) -> Location {
    (0..=path.len())
        .rev()
        .find_map(|n| root.at(&path[..n]))
        .map_or_else(|| root.location.clone(), |n| n.location.clone())
}

fn json_kind(s: &str) -> Option<Kind> {
    let t = s.trim_start();
    if !(t.starts_with('[') || t.starts_with('{')) {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(s).ok()? {
        serde_json::Value::Array(_) => Some(Kind::List),
        serde_json::Value::Object(_) => Some(Kind::Map),
        _ => None,
    }
}

fn storage_name(s: Storage) -> &'static str {
    match s {
        Storage::Plain => "plain",
        Storage::Secret => "secret",
    }
}

/// A step of the path [`diff`] is at, borrowing the key: paths are copied only for findings.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn owned(path: &[Step<'_>]) -> Vec<Segment> {
    path.iter()
        .map(|s| match *s {
            Step::Key(k) => Segment::Key(k.to_string()),
            Step::Index(i) => Segment::Index(i),
        })
        .collect()
}

fn draft_at(rule: Rule, path: &[Step<'_>], breaks: &[Direction], message: String) -> Draft {
    draft(rule, &owned(path), breaks, message)
}

fn diff<'a>(
    old: &'a Node,
    new: &'a Node,
    typed: bool,
    path: &mut Vec<Step<'a>>,
    out: &mut Vec<Draft>,
    removed: &mut Vec<(Vec<Segment>, &'a Node)>,
    added: &mut Vec<(Vec<Segment>, &'a Node)>,
) {
    let both = [Rollback, MixedFleet];
    if old.storage != new.storage {
        out.push(draft_at(
            Rule::SecretStorageChanged,
            path,
            &both,
            format!(
                "moved from {} to {} storage",
                storage_name(old.storage),
                storage_name(new.storage)
            ),
        ));
        return;
    }
    let (ko, kn) = (old.kind(), new.kind());
    if ko != kn {
        let scalar = |k: Kind| !matches!(k, Kind::List | Kind::Map);
        let json_in = |n: &Node| match &n.value {
            Value::String(s) => json_kind(s),
            _ => None,
        };
        if let (Some(inner), true) = (json_in(new), matches!(ko, Kind::List | Kind::Map)) {
            out.push(draft_at(
                Rule::JsonStringTypeChanged,
                path,
                &both,
                format!(
                    "was a {}, now a string holding JSON (a {})",
                    ko.name(),
                    inner.name()
                ),
            ));
        } else if let (Some(inner), true) = (json_in(old), matches!(kn, Kind::List | Kind::Map)) {
            out.push(draft_at(
                Rule::JsonStringTypeChanged,
                path,
                &both,
                format!(
                    "was a string holding JSON (a {}), now a {}",
                    inner.name(),
                    kn.name()
                ),
            ));
        } else if !typed && scalar(ko) && scalar(kn) {
            // `.env` and SSM hold strings: no scalar type to compare.
        } else {
            let mut d = draft_at(
                Rule::TypeChanged,
                path,
                &both,
                format!("type changed from {} to {}", ko.name(), kn.name()),
            );
            if matches!(
                (ko, kn),
                (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int)
            ) {
                d.level = Level::Warn;
            }
            out.push(d);
        }
        return;
    }
    match (&old.value, &new.value) {
        (Value::Map(eo), Value::Map(en)) => {
            for (k, vo) in eo {
                path.push(Step::Key(&k.name));
                match new.get(&k.name) {
                    Some(vn) => diff(vo, vn, typed, path, out, removed, added),
                    None => removed.push((owned(path), vo)),
                }
                path.pop();
            }
            for (k, vn) in en {
                if old.get(&k.name).is_none() {
                    path.push(Step::Key(&k.name));
                    added.push((owned(path), vn));
                    path.pop();
                }
            }
        }
        (Value::String(so), Value::String(sn)) if so != sn => {
            // A string holding a collection where it held plain text, or the reverse.
            let (eo, en) = (collection_kind(so), collection_kind(sn));
            if eo.is_some() != en.is_some() {
                let message = match (eo, en) {
                    (None, Some(k)) => format!(
                        "was a plain string, now a string holding a {} as JSON/YAML text (encoded twice?)",
                        k.name()
                    ),
                    (Some(k), _) => format!(
                        "was a string holding a {} as JSON/YAML text, now a plain string",
                        k.name()
                    ),
                    (None, None) => unreachable!("one side holds a collection"),
                };
                out.push(draft_at(Rule::DoubleEncodedValue, path, &both, message));
            }
        }
        (Value::List(lo), Value::List(ln)) => {
            for (i, (a, b)) in lo.iter().zip(ln).enumerate() {
                path.push(Step::Index(i));
                diff(a, b, typed, path, out, removed, added);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A removed key and an added key with the same (non-trivial) value, under the same parent
/// or with the same name, are one rename.
fn renames(
    removed: Vec<(Vec<Segment>, &Node)>,
    added: Vec<(Vec<Segment>, &Node)>,
    old_root: &Node,
    new_root: &Node,
    out: &mut Vec<Draft>,
) {
    let _ = (old_root, new_root);
    let trivial = |n: &Node| match &n.value {
        Value::Null | Value::Bool(_) => true,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    };
    // The first unused added key with the same value under the same parent, or with the
    // same name: candidates are queued by value hash and parent, and by value hash and name,
    // so each removed key costs O(1) amortised (a hash collision costs a scan of its queue).
    let build = RandomState::new();
    let parent = |p: &[Segment]| p[..p.len() - 1].to_vec();
    let mut by_parent: HashMap<(u64, Vec<Segment>), VecDeque<usize>> = HashMap::new();
    let mut by_name: HashMap<(u64, Option<Segment>), VecDeque<usize>> = HashMap::new();
    for (i, (apath, anode)) in added.iter().enumerate() {
        if trivial(anode) {
            continue;
        }
        let h = anode.value_hash(&build);
        by_parent
            .entry((h, parent(apath)))
            .or_default()
            .push_back(i);
        by_name
            .entry((h, apath.last().cloned()))
            .or_default()
            .push_back(i);
    }
    let mut used: HashSet<usize> = HashSet::new();
    let first_match = |queue: Option<&mut VecDeque<usize>>, used: &HashSet<usize>, rnode: &Node| {
        let queue = queue?;
        while queue.front().is_some_and(|i| used.contains(i)) {
            queue.pop_front();
        }
        queue.iter().copied().find(|&i| {
            !used.contains(&i)
                && rnode.storage == added[i].1.storage
                && rnode.same_value(added[i].1)
        })
    };
    for (rpath, rnode) in &removed {
        let candidate = if trivial(rnode) {
            None
        } else {
            let h = rnode.value_hash(&build);
            let a = first_match(by_parent.get_mut(&(h, parent(rpath))), &used, rnode);
            let b = first_match(by_name.get_mut(&(h, rpath.last().cloned())), &used, rnode);
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        match candidate.map(|i| (i, &added[i])) {
            Some((i, (apath, _))) => {
                used.insert(i);
                out.push(draft(
                    Rule::KeyRenamed,
                    rpath,
                    &[Rollback, MixedFleet],
                    format!("renamed to {} (same value)", path_string(apath)),
                ));
            }
            None => out.push(draft(
                Rule::KeyRemoved,
                rpath,
                &[Rollback],
                "removed; old code still reads it".to_string(),
            )),
        }
    }
    for (i, (apath, _)) in added.iter().enumerate() {
        if !used.contains(&i) {
            out.push(draft(
                Rule::KeyAdded,
                apath,
                &[MixedFleet],
                "added; new code may need it, and the old configuration lacks it".to_string(),
            ));
        }
    }
}

/// Whether a schema-change or finding path (where `[*]` matches any index) is a prefix of a
/// violation path.
fn covers(prefix: &[Segment], path: &[Segment]) -> bool {
    prefix.len() <= path.len()
        && prefix.iter().zip(path).all(|(p, v)| match (p, v) {
            (Segment::Index(ANY_ITEM), Segment::Index(_)) => true,
            _ => p == v,
        })
}

/// The violations under each path: every prefix of a violation's path leads to it, so a
/// finding finds the violations it explains without scanning them all.
fn by_prefix(violations: Option<&[SchemaViolation]>) -> HashMap<&[Segment], Vec<usize>> {
    let mut under: HashMap<&[Segment], Vec<usize>> = HashMap::new();
    for (i, v) in violations.unwrap_or(&[]).iter().enumerate() {
        for n in 0..=v.path.len() {
            under.entry(&v.path[..n]).or_default().push(i);
        }
    }
    under
}

fn judge_by_schemas(
    old: &Config,
    new: &Config,
    schemas: &Schemas,
    drafts: &mut Vec<Draft>,
    invalid: &mut Vec<Violation>,
) {
    // Rollback: the old code's schema on the new configuration; mixed fleet: the new code's
    // schema on the old configuration.
    let rollback: Option<Vec<SchemaViolation>> = schemas.old.as_ref().map(|s| s.validate(new));
    let mixed: Option<Vec<SchemaViolation>> = schemas.new.as_ref().map(|s| s.validate(old));
    let (rollback_under, mixed_under) =
        (by_prefix(rollback.as_deref()), by_prefix(mixed.as_deref()));
    if let Some(schema) = &schemas.new {
        for v in schema.validate(new) {
            invalid.push(Violation {
                path: path_string(&v.path),
                location: nearest(&new.root, &v.path),
                message: v.message,
            });
        }
    }
    let violations = |d: Direction| match d {
        Rollback => rollback.as_deref(),
        MixedFleet => mixed.as_deref(),
    };
    let under = |d: Direction| match d {
        Rollback => &rollback_under,
        MixedFleet => &mixed_under,
    };
    let mut consumed: HashSet<(Direction, usize)> = HashSet::new();
    let hit = |d: Direction, path: &[Segment], consumed: &mut HashSet<(Direction, usize)>| {
        let mut any = false;
        let mut take = |i: usize| {
            consumed.insert((d, i));
            any = true;
        };
        if path.contains(&Segment::Index(ANY_ITEM)) {
            for (i, v) in violations(d).unwrap_or(&[]).iter().enumerate() {
                if covers(path, &v.path) {
                    take(i);
                }
            }
        } else if let Some(found) = under(d).get(path) {
            found.iter().for_each(|&i| take(i));
        }
        any
    };

    // Structural findings: where a direction has a schema, it breaks only if the schema
    // rejects the configuration there, and then surely: a warning the schema confirms is an
    // error. An added key is the schema's to judge (REQUIRED_ADDED_WITHOUT_DEFAULT below);
    // secret storage and double encoding stand whatever the schema accepts.
    drafts.retain_mut(|d| {
        if d.rule == Rule::SecretStorageChanged {
            return true;
        }
        if d.rule == Rule::KeyAdded {
            d.breaks.retain(|&dir| violations(dir).is_none());
            return !d.breaks.is_empty();
        }
        let path = d.path.clone();
        let all = d.breaks.clone();
        d.breaks
            .retain(|&dir| violations(dir).is_none() || hit(dir, &path, &mut consumed));
        let confirmed = d.breaks.iter().any(|&dir| violations(dir).is_some());
        if confirmed && d.level == Level::Warn {
            d.breaks.retain(|&dir| violations(dir).is_some());
            d.level = Level::Error;
            for dir in &d.breaks {
                d.message.push_str(match dir {
                    Rollback => "; the old code's schema rejects the new value",
                    MixedFleet => "; the new code's schema rejects the old value",
                });
            }
        } else if !confirmed && d.rule == Rule::DoubleEncodedValue {
            d.breaks = all;
        }
        !d.breaks.is_empty()
    });

    // Schema against schema.
    if let (Some(so), Some(sn)) = (&schemas.old, &schemas.new) {
        if so.document != sn.document {
            for (path, change) in compare(&so.document, &sn.document) {
                let (rule, message, mut breaks) = match change {
                    SchemaChange::TypeNarrowed { removed } => (
                        Rule::TypeChanged,
                        format!("new code no longer accepts type {}", removed.join(", ")),
                        vec![MixedFleet],
                    ),
                    SchemaChange::EnumValuesRemoved { removed } => (
                        Rule::EnumValueRemoved,
                        format!(
                            "new code no longer accepts {}",
                            removed
                                .iter()
                                .map(|v| v.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        vec![MixedFleet],
                    ),
                    SchemaChange::RangeNarrowed { what } => {
                        (Rule::RangeNarrowed, what, vec![MixedFleet])
                    }
                    SchemaChange::PatternChanged { old, new } => (
                        Rule::PatternChanged,
                        format!("pattern changed from `{old}` to `{new}`"),
                        vec![Rollback, MixedFleet],
                    ),
                    SchemaChange::RequiredAdded => (
                        Rule::RequiredAddedWithoutDefault,
                        "new code requires it and has no default".to_string(),
                        vec![MixedFleet],
                    ),
                    SchemaChange::DefaultChanged => {
                        if new.root.at(&path).is_some() {
                            continue;
                        }
                        (
                            Rule::DefaultChanged,
                            "default changed and the new configuration leaves it out".to_string(),
                            vec![Rollback, MixedFleet],
                        )
                    }
                };
                let mut level = Level::Warn;
                if rule != Rule::DefaultChanged {
                    let hits: Vec<Direction> = breaks
                        .iter()
                        .copied()
                        .filter(|&d| hit(d, &path, &mut consumed))
                        .collect();
                    if !hits.is_empty() {
                        level = Level::Error;
                        breaks = hits;
                    }
                }
                drafts.push(Draft {
                    rule,
                    level,
                    path,
                    breaks,
                    message,
                });
            }
        }
    }

    // A required key is named once, by the narrower rule.
    let required: HashSet<Vec<Segment>> = drafts
        .iter()
        .filter(|d| d.rule == Rule::RequiredAddedWithoutDefault)
        .map(|d| d.path.clone())
        .collect();
    drafts.retain(|d| !(d.rule == Rule::KeyAdded && required.contains(&d.path)));

    // What the schemas reject that no rule above explains.
    for d in [Rollback, MixedFleet] {
        for (i, v) in violations(d).unwrap_or(&[]).iter().enumerate() {
            if consumed.contains(&(d, i)) {
                continue;
            }
            let (who, config) = match d {
                Rollback => ("old code's schema rejects the new configuration", new),
                MixedFleet => ("new code's schema rejects the old configuration", old),
            };
            let _ = config;
            let rule = match (v.kind, d) {
                (ViolationKind::Required, MixedFleet) => Rule::RequiredAddedWithoutDefault,
                (ViolationKind::Required, Rollback) => Rule::KeyRemoved,
                (ViolationKind::Type, _) => Rule::SchemaTypeMismatch,
                (ViolationKind::Enum, _) => Rule::SchemaEnumMismatch,
                (ViolationKind::Other, _) => Rule::SchemaViolation,
            };
            drafts.push(Draft {
                rule,
                level: Level::Error,
                path: v.path.clone(),
                breaks: vec![d],
                message: format!("{who}: {}", v.message),
            });
        }
    }
}
