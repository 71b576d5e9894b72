//! The typed result of a check, and its renderers (text, JSON, Markdown). Renderers return
//! strings; the CLI writes them.

use std::fmt::Write as _;

use serde::Serialize;

use crate::ignore::ExpiredIgnore;
use crate::rules::{Direction, Level, Rule};
use crate::value::Location;

/// One incompatibility.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub level: Level,
    /// Where in the configuration: `a.b[2].c` (`[*]` for every list item).
    pub path: String,
    /// The pairings of code and configuration it breaks.
    pub breaks: Vec<Direction>,
    pub message: String,
    /// Where the value is in the old configuration, if it is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Location>,
    /// Where the value is in the new configuration, if it is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Location>,
}

impl Finding {
    fn breaks_text(&self) -> String {
        self.breaks
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn location(&self) -> Option<&Location> {
        self.new.as_ref().or(self.old.as_ref())
    }
}

/// A finding an ignore entry accepted.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub reason: String,
    pub expires: String,
}

/// The new configuration breaks its own schema.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub path: String,
    pub location: Location,
    pub message: String,
}

/// The result of comparing two configurations.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub old_source: String,
    pub new_source: String,
    /// No error finding breaks old code on the new configuration.
    pub rollback_safe: bool,
    /// No error finding breaks new code on the old configuration.
    pub mixed_fleet_safe: bool,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<IgnoredFinding>,
    /// Ignore entries past their date: the gate fails until they are renewed or removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expired_ignores: Vec<ExpiredIgnore>,
    /// The new configuration against the new code's schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<Violation>,
}

/// What the gate does with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Safe both ways.
    Compatible,
    /// An error-level finding: refuse the deploy (exit 2).
    Breaking,
    /// The inputs need fixing first: the new configuration is invalid, or an ignore expired
    /// (exit 1).
    Invalid,
}

impl Report {
    /// Safe in both directions, the new configuration valid and no ignore expired.
    pub fn is_compatible(&self) -> bool {
        self.verdict() == Verdict::Compatible
    }

    pub fn verdict(&self) -> Verdict {
        if !self.invalid.is_empty() || !self.expired_ignores.is_empty() {
            Verdict::Invalid
        } else if !(self.rollback_safe && self.mixed_fleet_safe) {
            Verdict::Breaking
        } else {
            Verdict::Compatible
        }
    }

    pub(crate) fn settle(&mut self) {
        self.findings
            .sort_by(|a, b| (a.level, &a.path, a.rule.id()).cmp(&(b.level, &b.path, b.rule.id())));
        let breaks = |d: Direction| {
            self.findings
                .iter()
                .any(|f| f.level == Level::Error && f.breaks.contains(&d))
        };
        self.rollback_safe = !breaks(Direction::Rollback);
        self.mixed_fleet_safe = !breaks(Direction::MixedFleet);
    }

    fn counts(&self) -> (usize, usize) {
        let errors = self
            .findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .count();
        (errors, self.findings.len() - errors)
    }

    /// `path:line:col: LEVEL RULE path: message [breaks: ...]` lines and a summary, like
    /// compiler output.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for v in &self.invalid {
            let _ = writeln!(out, "{}: invalid: {}: {}", v.location, v.path, v.message);
        }
        for e in &self.expired_ignores {
            let _ = writeln!(
                out,
                "{}: ignore of {} at {} expired on {}: renew or remove it",
                e.location, e.rule, e.path, e.expires
            );
        }
        for f in &self.findings {
            let at = f.location().map(|l| format!("{l}: ")).unwrap_or_default();
            let _ = writeln!(
                out,
                "{at}{} {} {}: {} [breaks: {}]",
                f.level.name(),
                f.rule.id(),
                f.path,
                f.message,
                f.breaks_text()
            );
        }
        for i in &self.ignored {
            let _ = writeln!(
                out,
                "ignored {} {} until {}: {}",
                i.finding.rule.id(),
                i.finding.path,
                i.expires,
                i.reason
            );
        }
        let (errors, warnings) = self.counts();
        let _ = writeln!(
            out,
            "{} -> {}: rollback {}, mixed fleet {}; {errors} error(s), {warnings} warning(s), {} ignored",
            self.old_source,
            self.new_source,
            if self.rollback_safe { "safe" } else { "UNSAFE" },
            if self.mixed_fleet_safe { "safe" } else { "UNSAFE" },
            self.ignored.len()
        );
        out
    }

    /// Pretty JSON: the contract `{"rollback_safe", "mixed_fleet_safe", "findings": [{"rule",
    /// "level", "path", "breaks", "message", "old", "new"}]}` plus the sources, ignored
    /// findings, expired ignores and violations.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// A Markdown summary for a pull request or a GitHub step summary.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let verdict = match self.verdict() {
            Verdict::Compatible => "compatible both ways",
            Verdict::Breaking => "**not compatible**",
            Verdict::Invalid => "**invalid input**",
        };
        let _ = writeln!(out, "### Config compatibility: {verdict}\n");
        let _ = writeln!(out, "`{}` → `{}`\n", self.old_source, self.new_source);
        let mark = |safe: bool| if safe { "✅ safe" } else { "❌ breaks" };
        let _ = writeln!(out, "| Direction | Verdict |\n| --- | --- |");
        let _ = writeln!(
            out,
            "| rollback (old code, new config) | {} |",
            mark(self.rollback_safe)
        );
        let _ = writeln!(
            out,
            "| mixed fleet (new code, old config) | {} |\n",
            mark(self.mixed_fleet_safe)
        );
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        if !self.invalid.is_empty() {
            let _ = writeln!(out, "#### New configuration is invalid\n");
            for v in &self.invalid {
                let _ = writeln!(out, "- `{}` `{}`: {}", v.location, v.path, cell(&v.message));
            }
            out.push('\n');
        }
        if !self.expired_ignores.is_empty() {
            let _ = writeln!(out, "#### Expired ignores\n");
            for e in &self.expired_ignores {
                let _ = writeln!(
                    out,
                    "- `{}` `{}` at `{}` expired {}",
                    e.location, e.rule, e.path, e.expires
                );
            }
            out.push('\n');
        }
        if !self.findings.is_empty() {
            let _ = writeln!(
                out,
                "| Level | Rule | Path | Breaks | Message | Where |\n| --- | --- | --- | --- | --- | --- |"
            );
            for f in &self.findings {
                let at = f.location().map(|l| format!("`{l}`")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} | `{}` | `{}` | {} | {} | {} |",
                    f.level.name(),
                    f.rule.id(),
                    cell(&f.path),
                    f.breaks_text(),
                    cell(&f.message),
                    at
                );
            }
            out.push('\n');
        }
        if !self.ignored.is_empty() {
            let _ = writeln!(
                out,
                "<details><summary>{} ignored</summary>\n",
                self.ignored.len()
            );
            for i in &self.ignored {
                let _ = writeln!(
                    out,
                    "- `{}` `{}` until {}: {}",
                    i.finding.rule.id(),
                    i.finding.path,
                    i.expires,
                    cell(&i.reason)
                );
            }
            let _ = writeln!(out, "\n</details>");
        }
        out
    }
}
