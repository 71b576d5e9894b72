//! Ignore files: accepted findings, each with a reason and an expiry date.
//!
//! ```toml
//! [[ignore]]
//! rule = "KEY_REMOVED"
//! path = "legacy.timeout"      # exact, or `*` for one key, `**` for any depth
//! reason = "nothing reads it since 2.3"
//! expires = 2027-01-31
//! ```
//!
//! The same in YAML: `ignore: [{rule, path, reason, expires}]`. Unknown rule IDs and missing
//! fields are errors. An entry past its date stops hiding anything and fails the check (the
//! CLI exits 1) until it is renewed or removed: an exception must be looked at again.

use std::path::Path;

use serde::Serialize;

use crate::error::IgnoreError;
use crate::report::Finding;
use crate::rules::Rule;
use crate::source::load_file;
use crate::value::{Location, Node, Value};

/// A calendar date, `YYYY-MM-DD`.
pub type Date = time::Date;

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// Today in UTC.
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// One accepted finding.
#[derive(Debug, Clone)]
pub struct IgnoreEntry {
    pub rule: Rule,
    pub path: String,
    pub reason: String,
    pub expires: Date,
    /// Where the entry is written.
    pub location: Location,
}

impl IgnoreEntry {
    pub fn matches(&self, finding: &Finding) -> bool {
        self.rule == finding.rule && glob(&self.path, &finding.path)
    }
}

/// An ignore entry past its date.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiredIgnore {
    pub rule: Rule,
    pub path: String,
    pub expires: String,
    pub location: Location,
}

/// The entries of an ignore file and the date they are judged on.
#[derive(Debug, Clone)]
pub struct Ignores {
    pub entries: Vec<IgnoreEntry>,
    pub today: Date,
}

impl Default for Ignores {
    fn default() -> Self {
        Ignores {
            entries: Vec::new(),
            today: today(),
        }
    }
}

impl Ignores {
    /// Judge expiry on `today` instead of the current date.
    pub fn on(mut self, today: Date) -> Self {
        self.today = today;
        self
    }

    /// Loads a TOML or YAML ignore file.
    pub fn load(path: &Path) -> Result<Ignores, IgnoreError> {
        let config = load_file(path)?;
        Self::from_node(&config.root)
    }

    /// Reads entries from a loaded document: `ignore` is a list of maps.
    pub fn from_node(root: &Node) -> Result<Ignores, IgnoreError> {
        let err = |location: &Location, message: String| IgnoreError::Entry {
            location: location.clone(),
            message,
        };
        let Value::Map(top) = &root.value else {
            return Err(err(&root.location, "expected a map with `ignore`".into()));
        };
        if let Some((k, _)) = top.iter().find(|(k, _)| &*k.name != "ignore") {
            return Err(err(
                &k.location,
                format!("unknown key `{}`; expected `ignore`", k.name),
            ));
        }
        let mut entries = Vec::new();
        let Some(list) = root.get("ignore") else {
            return Ok(Ignores {
                entries,
                today: today(),
            });
        };
        let Value::List(items) = &list.value else {
            return Err(err(
                &list.location,
                "`ignore` must be a list of entries".into(),
            ));
        };
        for item in items {
            let Value::Map(fields) = &item.value else {
                return Err(err(
                    &item.location,
                    "an ignore entry is a map {rule, path, reason, expires}".into(),
                ));
            };
            if let Some((k, _)) = fields
                .iter()
                .find(|(k, _)| !matches!(&*k.name, "rule" | "path" | "reason" | "expires"))
            {
                return Err(err(
                    &k.location,
                    format!(
                        "unknown field `{}`; expected rule, path, reason, expires",
                        k.name
                    ),
                ));
            }
            let text = |name: &str| -> Result<(String, Location), IgnoreError> {
                match item.get(name) {
                    Some(Node {
                        value: Value::String(s),
                        location,
                        ..
                    }) if !s.trim().is_empty() => Ok((s.clone(), location.clone())),
                    Some(other) => Err(err(
                        &other.location,
                        format!("`{name}` must be a non-empty string"),
                    )),
                    None => Err(err(&item.location, format!("missing `{name}`"))),
                }
            };
            let (rule_id, rule_at) = text("rule")?;
            let rule = Rule::from_id(&rule_id).ok_or_else(|| {
                err(
                    &rule_at,
                    format!(
                        "unknown rule `{rule_id}`; rules are {}",
                        Rule::ALL
                            .iter()
                            .map(|r| r.id())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            let (path, _) = text("path")?;
            let (reason, _) = text("reason")?;
            let (expires, expires_at) = text("expires")?;
            let expires = parse_date(&expires).ok_or_else(|| {
                err(
                    &expires_at,
                    format!("`expires` must be a date YYYY-MM-DD, found `{expires}`"),
                )
            })?;
            entries.push(IgnoreEntry {
                rule,
                path,
                reason,
                expires,
                location: item.location.clone(),
            });
        }
        Ok(Ignores {
            entries,
            today: today(),
        })
    }
}

/// `*` matches within one path step (up to a `.` or `[`), `**` matches anything.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => (0..=t.len()).any(|i| go(&p[2..], &t[i..])),
            Some(b'*') => {
                let stop = t
                    .iter()
                    .position(|&c| c == b'.' || c == b'[')
                    .unwrap_or(t.len());
                (0..=stop).any(|i| go(&p[1..], &t[i..]))
            }
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}
